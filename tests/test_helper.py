"""Tests for course_utils.helper: the syllabus's plotting helpers and test_network, made current."""

import matplotlib

matplotlib.use("Agg")  # no display in tests

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

from course_utils import data, helper  # noqa: E402


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def fashion_test():
    """The first 64 real Fashion-MNIST test images, normalised to [-1, 1], and their labels."""
    images, labels = data.load_tensors("fashion_mnist", train=False)
    return images[:64], labels[:64]


@pytest.mark.parametrize("version, class_names", [
    ("MNIST", [str(digit) for digit in range(10)]),
    ("Fashion", ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                 "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]),
])
@pytest.mark.parametrize("flat", [False, True])
def test_view_classify_versions(fashion_test, version, class_names, flat):
    images, _ = fashion_test
    image = images[0].flatten() if flat else images[0]  # (784,) or (1, 28, 28), as the syllabus passes
    probs = torch.softmax(torch.linspace(-2, 2, 10), dim=0).unsqueeze(0)  # (1, 10), as model output
    axes = helper.view_classify(image, probs, version=version)
    assert len(axes) == 2
    assert [t.get_text() for t in axes[1].get_yticklabels()] == class_names
    np.testing.assert_allclose([bar.get_width() for bar in axes[1].patches], probs[0].numpy(), rtol=1e-6)
    shown = axes[0].images[0].get_array()
    assert shown.shape == (28, 28)
    expected = (images[0, 0] * 0.5 + 0.5).numpy()  # view_classify undoes Normalize((0.5,), (0.5,))
    np.testing.assert_allclose(shown, expected, atol=1e-6)


def test_view_classify_default_version_is_mnist(fashion_test):
    axes = helper.view_classify(fashion_test[0][0], torch.full((1, 10), 0.1))
    assert axes[1].get_yticklabels()[0].get_text() == "0"


@pytest.mark.parametrize("version", ["fashion", "CIFAR", ""])
def test_view_classify_rejects_unknown_version(fashion_test, version):
    with pytest.raises(ValueError, match="version must be one of MNIST, Fashion"):
        helper.view_classify(fashion_test[0][0], torch.full((1, 10), 0.1), version=version)


def test_view_classify_rejects_wrong_number_of_probabilities(fashion_test):
    with pytest.raises(ValueError, match="5 probabilities but 10 class names"):
        helper.view_classify(fashion_test[0][0], torch.full((1, 5), 0.2), version="Fashion")


def test_imshow_undoes_imagenet_normalisation():
    torch.manual_seed(0)
    picture = torch.rand(3, 16, 12)  # an RGB image in [0, 1], (C, H, W)
    mean = torch.tensor(helper.IMAGENET_MEAN).view(3, 1, 1)
    std = torch.tensor(helper.IMAGENET_STD).view(3, 1, 1)
    ax = helper.imshow((picture - mean) / std, title="photo")
    assert isinstance(ax, plt.Axes)
    assert ax.get_title() == "photo"
    np.testing.assert_allclose(ax.images[0].get_array(), picture.permute(1, 2, 0).numpy(), atol=1e-5)


def test_imshow_without_normalize_on_given_axes(fashion_test):
    image = fashion_test[0][0] * 0.5 + 0.5  # (1, 28, 28) in [0, 1]
    _, ax = plt.subplots()
    returned = helper.imshow(image, ax=ax, normalize=False)
    assert returned is ax
    np.testing.assert_allclose(ax.images[0].get_array(), image[0].numpy(), atol=1e-6)
    assert ax.images[0].get_cmap().name == "gray"


def test_view_recon_returns_two_axes(fashion_test):
    image = fashion_test[0][0]
    axes = helper.view_recon(image, image.flip(-1))
    assert [ax.get_title() for ax in axes] == ["input", "reconstruction"]
    assert all(ax.images[0].get_array().shape == (28, 28) for ax in axes)


def test_test_network_takes_one_step_and_returns_true(fashion_test):
    images, labels = fashion_test
    loader = data.TensorBatches(images, labels, batch_size=16)
    torch.manual_seed(0)
    autoencoder = nn.Sequential(nn.Flatten(), nn.Linear(784, 32), nn.ReLU(), nn.Linear(32, 784))
    before = [p.detach().clone() for p in autoencoder.parameters()]
    assert helper.test_network(autoencoder, loader) is True
    after = list(autoencoder.parameters())
    assert all(not torch.equal(b, a) for b, a in zip(before, after))
