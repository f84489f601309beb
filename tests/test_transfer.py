"""Tests for course_utils.models.transfer: freezing, cached features, a head trained on them, fine-tuning helpers."""

import copy
import shutil
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from course_utils.core import training
from course_utils.datasets import images, mnist
from course_utils.models import backbones, transfer


def tiny_backbone() -> nn.Sequential:
    """A small conv net ending in pooled features (N, 8): the generic, non-EfficientNet path."""
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten())


@pytest.fixture(scope="module")
def lite0():
    return backbones.efficientnet_lite0(num_classes=2)


def test_freeze_and_count(lite0):
    model = transfer.freeze(copy.deepcopy(lite0))
    assert transfer.count_parameters(model) == 0
    total = transfer.count_parameters(model, trainable_only=False)
    model._fc = nn.Linear(backbones.LITE0_FEATURES, 2)  # a new head is trainable again
    assert transfer.count_parameters(model) == backbones.LITE0_FEATURES * 2 + 2
    assert transfer.count_parameters(model, trainable_only=False) == total


@pytest.mark.parametrize("batch_size", [1, 3, 10])
def test_extract_features_generic_model(batch_size):
    model = tiny_backbone()
    model.train()  # extract_features must switch to eval mode itself
    inputs, labels = torch.randn(7, 3, 12, 12), torch.arange(7)
    loader = DataLoader(TensorDataset(inputs, labels), batch_size=batch_size)
    features, got_labels = transfer.extract_features(model, loader, torch.device("cpu"))
    assert features.shape == (7, 8) and features.dtype == torch.float32
    assert torch.equal(got_labels, labels)
    assert not model.training
    with torch.no_grad():
        assert torch.allclose(features, model(inputs), atol=1e-5)
    assert not features.is_inference()  # usable by autograd when a head trains on it


def test_extract_features_rejects_an_empty_loader():
    with pytest.raises(ValueError, match="no batches"):
        transfer.extract_features(tiny_backbone(), [], torch.device("cpu"))


def test_head_trains_on_cached_features():
    torch.manual_seed(0)
    inputs = torch.randn(64, 3, 8, 8) * 0.1 + torch.randn(64, 3, 1, 1)  # one brightness per image and channel
    labels = (inputs[:, 0].mean(dim=(1, 2)) > 0).long()  # a rule the pooled features can express
    features, labels = transfer.extract_features(
        nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten()), DataLoader(TensorDataset(inputs, labels), 16),
        torch.device("cpu"))
    head = nn.Linear(3, 2)
    loader = mnist.TensorBatches(features, labels, batch_size=16, shuffle=True)
    history = training.fit(head, loader, loader, nn.CrossEntropyLoss(), torch.optim.Adam(head.parameters(), lr=0.05),
                           torch.device("cpu"), num_epochs=15, verbose=False)
    assert history["train_loss"][-1] < 0.5 * history["train_loss"][0]
    assert history["val_accuracy"][-1] >= 0.9


def real_photos(mirror: Path, folder: Path, per_class: int):
    """The first `per_class` training photos of each class from the mirror, copied to `folder` (tmp_path)."""
    for name in images.CAT_DOG_CLASSES:
        (folder / name).mkdir(parents=True)
        for photo in sorted((mirror / "cat_dog" / "train" / name).iterdir())[:per_class]:
            shutil.copy(photo, folder / name / photo.name)
    transform = images.eval_transform(backbones.LITE0_INPUT_SIZE, backbones.LITE0_MEAN, backbones.LITE0_STD)
    return images.image_folder(folder, transform, class_names=images.CAT_DOG_CLASSES)


def test_lite0_features_of_real_photos(lite0, mirror, tmp_path):
    photos = real_photos(mirror, tmp_path, per_class=1)
    features, labels = transfer.extract_features(lite0, DataLoader(photos, batch_size=2), torch.device("cpu"))
    assert features.shape == (2, backbones.LITE0_FEATURES)
    assert labels.tolist() == [0, 1]
    # EfficientNet-Lite's activations are ReLU6 (swish does not quantise well), so pooled features lie in [0, 6]
    assert features.min() >= 0 and features.max() <= 6, "not ReLU6 activations: is Swish patched in?"
    # the model's own forward is pooling -> dropout (off in eval) -> _fc: the same as the head on the features
    batch = torch.stack([photos[i][0] for i in range(2)])
    with torch.no_grad():
        assert torch.allclose(lite0(batch), lite0._fc(features), atol=1e-4)


def test_head_on_real_lite0_features_learns(lite0, mirror, tmp_path):
    features, labels = transfer.extract_features(lite0, DataLoader(real_photos(mirror, tmp_path, per_class=4),
                                                                   batch_size=8),
                                                 torch.device("cpu"))
    torch.manual_seed(0)
    head = nn.Linear(backbones.LITE0_FEATURES, 2)
    loader = mnist.TensorBatches(features, labels, batch_size=8)
    history = training.fit(head, loader, loader, nn.CrossEntropyLoss(), torch.optim.Adam(head.parameters(), lr=1e-3),
                           torch.device("cpu"), num_epochs=10, verbose=False)
    assert history["train_loss"][-1] < history["train_loss"][0]
    assert history["val_accuracy"][-1] == 1.0


def test_unfreeze_last_blocks(lite0):
    model = transfer.freeze(copy.deepcopy(lite0))
    parameters = transfer.unfreeze_last_blocks(model, 2)
    expected = sum(p.numel() for module in [*model._blocks[-2:], model._conv_head, model._bn1, model._fc]
                   for p in module.parameters())
    assert transfer.count_parameters(model) == sum(p.numel() for p in parameters) == expected
    assert not any(p.requires_grad for p in model._blocks[0].parameters())
    assert len(transfer.unfreeze_last_blocks(transfer.freeze(model), 0)) == len(list(
        [*model._conv_head.parameters(), *model._bn1.parameters(), *model._fc.parameters()]))


@pytest.mark.parametrize("num_blocks", [-1, 17, 1.5, True])
def test_unfreeze_last_blocks_rejects_bad_counts(lite0, num_blocks):
    with pytest.raises(ValueError, match="num_blocks must be"):
        transfer.unfreeze_last_blocks(lite0, num_blocks)


def test_unfreeze_last_blocks_needs_efficientnet():
    with pytest.raises(TypeError, match="no `_blocks`"):
        transfer.unfreeze_last_blocks(tiny_backbone(), 1)


def randomise_batchnorms(model: nn.Module) -> None:
    """Running statistics and affine values away from 0 and 1, so that using the wrong ones shows."""
    torch.manual_seed(1)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.running_mean.uniform_(-1, 1)
                module.running_var.uniform_(0.5, 2)
                module.weight.uniform_(0.5, 1.5)


def test_freeze_batchnorm_keeps_eval_behaviour_in_train_mode():
    model = tiny_backbone()
    randomise_batchnorms(model)
    inputs = torch.randn(4, 3, 6, 6)
    expected = model.eval()(inputs)
    transfer.freeze_batchnorm(transfer.freeze(model))
    model.train()
    assert torch.allclose(model(inputs), expected, atol=1e-5)
    assert torch.allclose(model(inputs), expected, atol=1e-5)  # running statistics did not move
    assert model.training and model[1].training  # the mode the learner set is kept


def test_freeze_batchnorm_leaves_trainable_batchnorm_training():
    model = tiny_backbone()
    randomise_batchnorms(model)
    transfer.freeze_batchnorm(model)  # nothing frozen: batch norm behaves as usual
    before = model[1].running_mean.clone()
    outputs = model.train()(torch.randn(4, 3, 6, 6))
    assert not torch.equal(model[1].running_mean, before)
    outputs.sum().backward()
    assert model[1].weight.grad.abs().amax() > 0


def test_freeze_batchnorm_follows_requires_grad_set_later():
    model = transfer.freeze_batchnorm(tiny_backbone())
    randomise_batchnorms(model)
    transfer.freeze(model)  # frozen after the call: its statistics must stay
    before = model[1].running_mean.clone()
    model.train()(torch.randn(4, 3, 6, 6))
    assert torch.equal(model[1].running_mean, before)
    model.requires_grad_(True)  # unfrozen again: batch statistics again
    model(torch.randn(4, 3, 6, 6))
    assert not torch.equal(model[1].running_mean, before)


def test_freeze_batchnorm_rejects_batchnorm_without_statistics():
    with pytest.raises(ValueError, match="no running statistics"):
        transfer.freeze_batchnorm(nn.Sequential(nn.BatchNorm2d(3, track_running_stats=False)))


def test_freeze_batchnorm_on_lite0(lite0):
    model = copy.deepcopy(lite0).eval()
    inputs = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        expected = model(inputs)
        transfer.freeze_batchnorm(transfer.freeze(model))
        assert torch.allclose(model(inputs), expected, atol=1e-4)
        before = {name: b.clone() for name, b in model.named_buffers()}
        model.train()(inputs)  # train mode (drop-connect, dropout on) leaves the statistics alone
        assert all(torch.equal(before[name], b) for name, b in model.named_buffers())
        assert torch.allclose(model.eval()(inputs), expected, atol=1e-4)


def fine_tune_setup(lite0, batchnorm_first: bool):
    """freeze -> freeze_batchnorm -> unfreeze_last_blocks(2), or with the last two swapped."""
    model = transfer.freeze(copy.deepcopy(lite0))
    if batchnorm_first:
        transfer.freeze_batchnorm(model)
        parameters = transfer.unfreeze_last_blocks(model, 2)
    else:
        parameters = transfer.unfreeze_last_blocks(model, 2)
        transfer.freeze_batchnorm(model)
    return model, parameters


@pytest.mark.parametrize("batchnorm_first", [True, False])
def test_fine_tuning_setup_is_order_independent(lite0, batchnorm_first):
    model, parameters = fine_tune_setup(lite0, batchnorm_first)
    other, _ = fine_tune_setup(lite0, not batchnorm_first)
    # the returned parameters are exactly the model's trainable ones, and the same in both orders
    trainable = [name for name, p in model.named_parameters() if p.requires_grad]
    assert {id(p) for p in parameters} == {id(p) for p in model.parameters() if p.requires_grad}
    assert trainable == [name for name, p in other.named_parameters() if p.requires_grad]
    assert "_blocks.15._bn2.weight" in trainable and "_bn1.weight" in trainable  # unfrozen blocks' batch norms train
    assert not any(name.startswith("_blocks.0.") for name in trainable)
    before = {name: b.clone() for name, b in model.named_buffers()}
    inputs = torch.randn(2, 3, 64, 64)
    outputs = []
    for net in (model, other):
        torch.manual_seed(0)  # the same drop-connect masks
        outputs.append(net.train()(inputs))
    assert torch.equal(outputs[0], outputs[1])
    for (name, buffer), (_, other_buffer) in zip(model.named_buffers(), other.named_buffers()):
        assert torch.equal(buffer, other_buffer), name
    moved = {name for name, b in model.named_buffers() if not torch.equal(before[name], b)}
    assert "_blocks.15._bn2.running_mean" in moved and "_bn1.running_mean" in moved
    assert not any(name.startswith("_blocks.0.") for name in moved)  # frozen blocks keep ImageNet's statistics
    outputs[0].sum().backward()
    assert model._blocks[15]._bn2.weight.grad.abs().amax() > 0
