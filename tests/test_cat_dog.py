"""Tests for course_utils.models.cat_dog: lesson 08's checkpoint for lesson 13, and the fallback head."""

import pytest
import torch
from torch.utils.data import Subset

from course_utils.core.checkpoints import CheckpointError, save_checkpoint
from course_utils.datasets import images
from course_utils.models import backbones, cat_dog, transfer


def photos_of(model, seed=0):
    """Random inputs in the backbone's [-1, 1] range."""
    return torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(seed)) * 2 - 1


@pytest.mark.parametrize("fine_tuned", [False, True])
def test_save_then_load_rebuilds_the_same_model(tmp_path, fine_tuned):
    torch.manual_seed(1)
    model = backbones.efficientnet_lite0(2).eval()
    if fine_tuned:  # what lesson 08's fine-tuning does to the model before saving
        transfer.freeze_batchnorm(model)
        transfer.unfreeze_last_blocks(model, 2)
        with torch.no_grad():
            model._blocks[-1]._bn2.weight.mul_(1.5)  # a fine-tuned weight differs from ImageNet's
    path = cat_dog.save(tmp_path / "m.pt", model, ["cat", "dog"], 0.97, fine_tuned=fine_tuned, test_photos=2000)
    loaded, facts = cat_dog.load(path)
    assert facts == {"class_names": ["cat", "dog"], "test_accuracy": 0.97, "test_photos": 2000,
                     "fine_tuned": fine_tuned}
    assert not loaded.training
    with torch.no_grad():
        torch.testing.assert_close(loaded(photos_of(model)), model(photos_of(model)), atol=0, rtol=0)


def test_load_refuses_another_models_checkpoint(tmp_path):
    path = save_checkpoint(tmp_path / "mlp.pt", torch.nn.Linear(3, 2), {"in_features": 3, "out_features": 2})
    with pytest.raises(CheckpointError, match="not a cats-vs-dogs checkpoint"):
        cat_dog.load(path)
    with pytest.raises(FileNotFoundError):
        cat_dog.load(tmp_path / "missing.pt")


def test_train_head_learns_only_the_head(mirror):
    root = mirror / "cat_dog" / "train"
    data = images.image_folder(root, images.eval_transform(backbones.LITE0_INPUT_SIZE, backbones.LITE0_MEAN,
                                                           backbones.LITE0_STD))
    chosen = images.class_subset(data.targets, 4, seed=0)
    model = cat_dog.train_head(Subset(data, chosen), num_epochs=2, seed=0)
    torch.manual_seed(0)
    untrained = backbones.efficientnet_lite0(2).state_dict()  # the same head initialisation, before training
    changed = {name for name, value in model.state_dict().items() if not torch.equal(value, untrained[name])}
    assert changed == {"_fc.weight", "_fc.bias"} and not model.training
