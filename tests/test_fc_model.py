"""Tests for course_utils.fc_model: the syllabus's documented usage runs, learns, saves and reloads."""

import pytest
import torch
from torch import nn, optim

from course_utils import fc_model
from course_utils.core import devices
from course_utils.datasets import mnist
from course_utils.datasets.sources import DATA_DIR_ENV


@pytest.fixture(scope="module", autouse=True)
def threads():
    """Honour $COURSE_THREADS: oversubscribed CPU threads make small training steps crawl."""
    return devices.set_threads()


@pytest.fixture(scope="module")
def fashion_loaders(tmp_path_factory):
    """512 real Fashion-MNIST training images and 256 held-out validation images, as batches of 64."""
    with pytest.MonkeyPatch.context() as mp:  # a private cache: tests never write into the project's data/
        mp.setenv(DATA_DIR_ENV, str(tmp_path_factory.mktemp("cache")))
        images, labels = mnist.load_tensors("fashion_mnist", train=True)
    train_idx, val_idx = mnist.split_indices(len(labels), val_fraction=0.1, seed=0)
    train_idx, val_idx = train_idx[:512], val_idx[:256]
    train = mnist.TensorBatches(images[train_idx], labels[train_idx], batch_size=64, shuffle=True, seed=0)
    val = mnist.TensorBatches(images[val_idx], labels[val_idx], batch_size=64)
    return train, val


@pytest.mark.parametrize("input_shape, hidden_layers, output_size", [
    ((1, 28, 28), [256, 128, 64], 10),   # the course's Fashion-MNIST MLP on image-shaped input
    ((784,), [512, 256, 128], 10),       # the syllabus's sizes on flat input
    ((3, 8, 8), [32], 7),                # colour input, one hidden layer
    ((5,), [4, 4, 4, 4], 2),
])
def test_network_shapes_and_log_probs(input_shape, hidden_layers, output_size):
    torch.manual_seed(0)
    input_size = torch.Size(input_shape).numel()
    net = fc_model.Network(input_size, output_size, hidden_layers)
    assert [layer.out_features for layer in net.hidden_layers] == hidden_layers
    assert net.hidden_layers[0].in_features == input_size
    assert (net.output.in_features, net.output.out_features) == (hidden_layers[-1], output_size)

    log_probs = net(torch.randn(6, *input_shape))
    assert log_probs.shape == (6, output_size)
    assert (log_probs <= 0).all()
    torch.testing.assert_close(log_probs.exp().sum(dim=1), torch.ones(6))


def test_network_dropout_only_in_training_mode():
    torch.manual_seed(0)
    net = fc_model.Network(20, 3, [64, 64], drop_p=0.5)
    x = torch.randn(4, 20)
    net.train()
    assert not torch.equal(net(x), net(x))
    net.eval()
    assert torch.equal(net(x), net(x))
    assert net.dropout.p == 0.5


def test_network_needs_a_hidden_layer():
    with pytest.raises(ValueError, match="hidden_layers"):
        fc_model.Network(784, 10, [])


def test_train_and_validation_reduce_the_loss(fashion_loaders, capsys):
    train_loader, val_loader = fashion_loaders
    torch.manual_seed(0)
    model = fc_model.Network(784, 10, [128, 64], drop_p=0.2)
    criterion = nn.NLLLoss()
    optimizer = optim.Adam(model.parameters(), lr=0.001)

    model.eval()
    loss_before, accuracy_before = (s / len(val_loader) for s in fc_model.validation(model, val_loader, criterion))
    fc_model.train(model, train_loader, val_loader, criterion, optimizer, epochs=3, print_every=8)
    model.eval()
    loss_after, accuracy_after = (s / len(val_loader) for s in fc_model.validation(model, val_loader, criterion))

    assert loss_after < loss_before - 0.5
    assert accuracy_after > accuracy_before + 0.3
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 3 * len(train_loader) // 8  # one line per print_every steps
    assert lines[-1].startswith("Epoch: 3/3.. Training Loss: ")
    assert "Validation Loss: " in lines[-1] and "Validation Accuracy: " in lines[-1]  # it is given validation data
    assert "Test" not in lines[-1]


def test_validation_sums_batch_means(fashion_loaders):
    _, val_loader = fashion_loaders
    torch.manual_seed(0)
    model = fc_model.Network(784, 10, [32]).eval()
    loss_sum, accuracy_sum = fc_model.validation(model, val_loader, nn.NLLLoss())
    expected_loss = sum(nn.functional.nll_loss(model(x), y).item() for x, y in val_loader)
    expected_accuracy = sum((model(x).argmax(dim=1) == y).float().mean().item() for x, y in val_loader)
    assert loss_sum == pytest.approx(expected_loss, rel=1e-5)
    assert accuracy_sum == pytest.approx(expected_accuracy, rel=1e-6)


@pytest.mark.parametrize("epochs, print_every", [(0, 40), (1, 0)])
def test_train_rejects_bad_counts(fashion_loaders, epochs, print_every):
    train_loader, val_loader = fashion_loaders
    model = fc_model.Network(784, 10, [16])
    with pytest.raises(ValueError, match="must be a whole number >= 1"):
        fc_model.train(model, train_loader, val_loader, nn.NLLLoss(), optim.Adam(model.parameters()),
                       epochs=epochs, print_every=print_every)


@pytest.mark.parametrize("hidden_sizes, drop_p", [([256, 128, 64], 0.5), ([32], 0.2)])
def test_save_model_load_checkpoint_round_trip(tmp_path, fashion_loaders, hidden_sizes, drop_p):
    _, val_loader = fashion_loaders
    torch.manual_seed(0)
    model = fc_model.Network(784, 10, hidden_sizes, drop_p=drop_p)
    filepath = tmp_path / "checkpoint.pth"
    assert fc_model.save_model(filepath, model, 784, 10, hidden_sizes) == filepath
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint.pth"]  # no temporary file left behind

    loaded = fc_model.load_checkpoint(filepath)
    assert isinstance(loaded, fc_model.Network)
    assert [layer.out_features for layer in loaded.hidden_layers] == hidden_sizes
    assert loaded.dropout.p == drop_p
    model.eval()
    loaded.eval()
    images, _ = next(iter(val_loader))
    assert torch.equal(model(images), loaded(images))


@pytest.mark.parametrize("map_location", ["cpu", torch.device("cpu")])
def test_load_checkpoint_map_location(tmp_path, map_location):
    model = fc_model.Network(10, 2, [4])
    fc_model.save_model(tmp_path / "m.pth", model, 10, 2, [4])
    loaded = fc_model.load_checkpoint(tmp_path / "m.pth", map_location=map_location)
    assert all(p.device.type == "cpu" for p in loaded.parameters())
