import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch

from course_utils.core import plotting


def test_plot_history_draws_train_and_val():
    ax = plotting.plot_history({"train_loss": [3, 2, 1], "val_loss": [3.5, 2.5, 2.0]})
    lines = ax.get_lines()
    assert [line.get_label() for line in lines] == ["train", "val"]
    assert list(lines[1].get_ydata()) == [3.5, 2.5, 2.0]
    plt.close("all")


def test_plot_history_on_given_axes_with_label():
    _, ax = plt.subplots()
    returned = plotting.plot_history({"train_accuracy": [0.5, 0.7]}, "accuracy", ax=ax, label="bn")
    assert returned is ax and ax.get_lines()[0].get_label() == "bn train"
    plt.close("all")


def test_to_display_undoes_normalisation():
    image = torch.full((3, 2, 2), 0.0)  # normalised with mean=std=0.5 -> raw value 0.5
    array = plotting.to_display(image, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))
    assert array.shape == (2, 2, 3) and np.allclose(array, 0.5)
    gray = plotting.to_display(torch.full((1, 4, 4), -1.0), mean=0.5, std=0.5)
    assert gray.shape == (4, 4) and np.allclose(gray, 0.0)


def test_to_display_rejects_bad_shapes():
    with pytest.raises(ValueError, match=r"got \(1, 1, 2, 2\)"):
        plotting.to_display(torch.zeros(1, 1, 2, 2))
    with pytest.raises(ValueError, match=r"got \(2, 1, 4, 4\)"):  # a batch, even with mean and std given
        plotting.to_display(torch.zeros(2, 1, 4, 4), mean=0.5, std=0.5)


def test_view_classify_checks_class_count_and_accepts_flat_images():
    with pytest.raises(ValueError, match="3 probabilities but 2 class names"):
        plotting.view_classify(torch.zeros(1, 28, 28), torch.ones(3) / 3, ["a", "b"])
    axes = plotting.view_classify(torch.zeros(784), torch.ones(2) / 2, ["a", "b"])
    assert [t.get_text() for t in axes[1].get_yticklabels()] == ["a", "b"]
    plt.close("all")


def test_show_grid_titles_with_class_names():
    axes = plotting.show_grid(torch.zeros(3, 1, 8, 8), [0, 1, 1], ["cat", "dog"], ncols=2)
    assert [ax.get_title() for ax in axes.flat[:3]] == ["cat", "dog", "dog"]
    assert not axes.flat[3].axison  # the spare cell is blank
    plt.close("all")


def test_show_predictions_marks_wrong_ones_in_red():
    axes = plotting.show_predictions(torch.zeros(3, 1, 8, 8), [0, 1, 0], [0, 0, 0], ["cat", "dog"], ncols=3)
    titles = [ax.title for ax in axes.flat]
    assert [t.get_text() for t in titles] == ["cat\n(cat)", "dog\n(cat)", "cat\n(cat)"]
    assert [t.get_color() for t in titles] == ["black", "tab:red", "black"]
    with pytest.raises(ValueError, match="3 images, 2 predictions and 3 labels"):
        plotting.show_predictions(torch.zeros(3, 1, 8, 8), [0, 1], [0, 0, 0], ["cat", "dog"])
    plt.close("all")


def test_plot_confusion_matrix_writes_every_count_and_names_the_axes():
    confusion = torch.tensor([[5, 1], [0, 7]])
    ax = plotting.plot_confusion_matrix(confusion, ["cat", "dog"])
    assert sorted(t.get_text() for t in ax.texts) == ["0", "1", "5", "7"]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["cat", "dog"]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["cat", "dog"]
    assert ax.get_xlabel() == "predicted class" and ax.get_ylabel() == "true class"
    with pytest.raises(ValueError, match="for 3 class names"):
        plotting.plot_confusion_matrix(confusion, ["a", "b", "c"])
    plt.close("all")
