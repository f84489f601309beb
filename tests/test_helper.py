"""Tests for course_utils.helper: the syllabus's plotting helpers and test_network, made current."""

import matplotlib

matplotlib.use("Agg")  # no display in tests

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
from torch import nn

from course_utils import helper
from course_utils.datasets import mnist
from course_utils.datasets.sources import DATA_DIR_ENV


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def fashion_test(tmp_path_factory):
    """The first 64 real Fashion-MNIST test images, normalised to [-1, 1], and their labels."""
    with pytest.MonkeyPatch.context() as mp:  # a private cache: tests never write into the project's data/
        mp.setenv(DATA_DIR_ENV, str(tmp_path_factory.mktemp("cache")))
        images, labels = mnist.load_tensors("fashion_mnist", train=False)
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


def test_imshow_normalize_uses_one_channel_stats_for_one_channel_images(fashion_test):
    image = fashion_test[0][0]  # (1, 28, 28), normalised with mean 0.5, std 0.5
    ax = helper.imshow(image)
    np.testing.assert_allclose(ax.images[0].get_array(), (image[0] * 0.5 + 0.5).numpy(), atol=1e-6)


def test_imshow_normalize_with_given_stats():
    picture = torch.rand(1, 5, 5)
    ax = helper.imshow((picture - 0.1307) / 0.3081, mean=(0.1307,), std=(0.3081,))  # MNIST's usual stats
    np.testing.assert_allclose(ax.images[0].get_array(), picture[0].numpy(), atol=1e-5)


def test_imshow_asks_for_stats_it_cannot_guess():
    with pytest.raises(ValueError, match="2-channel image: pass mean and std"):
        helper.imshow(torch.zeros(2, 4, 4))


def _autoencoder():
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(784, 32), nn.ReLU(), nn.Linear(32, 784))


def test_test_network_takes_one_step_and_returns_true(fashion_test):
    images, labels = fashion_test
    loader = mnist.TensorBatches(images, labels, batch_size=16)
    autoencoder = _autoencoder()
    before = [p.detach().clone() for p in autoencoder.parameters()]
    assert helper.test_network(autoencoder, loader) is True
    after = list(autoencoder.parameters())
    assert all(not torch.equal(b, a) for b, a in zip(before, after))


class _WithUnusedLayer(nn.Module):
    def __init__(self):
        super().__init__()
        self.net, self.unused = _autoencoder(), nn.Linear(3, 3)

    def forward(self, x):
        return self.net(x)


def test_test_network_reports_parameters_without_gradient(fashion_test):
    loader = mnist.TensorBatches(*fashion_test, batch_size=16)
    with pytest.raises(RuntimeError, match="no usable gradient reached unused.weight, unused.bias"):
        helper.test_network(_WithUnusedLayer(), loader)


def test_test_network_reports_a_step_that_does_not_lower_the_loss(fashion_test):
    loader = mnist.TensorBatches(*fashion_test, batch_size=16)
    autoencoder = _autoencoder()
    autoencoder[1].weight.requires_grad_(False)  # nothing before the ReLU learns ...
    autoencoder[1].bias.requires_grad_(False)
    autoencoder[3].weight.register_hook(lambda grad: -grad)  # ... and the output layer climbs the loss
    autoencoder[3].bias.register_hook(lambda grad: -grad)
    with pytest.raises(RuntimeError, match="did not lower the loss"):
        helper.test_network(autoencoder, loader)
    assert autoencoder.training  # the mode it had is back
