"""Lesson 08's cats-vs-dogs model (frozen EfficientNet-Lite0 + trained head): saved, rebuilt, or retrained."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader, Subset

from course_utils.core import checkpoints, training
from course_utils.datasets import images
from course_utils.datasets.mnist import TensorBatches
from course_utils.models import backbones, transfer
from course_utils.paths import PROJECT_ROOT

CHECKPOINT = PROJECT_ROOT / "checkpoints" / "08_transfer_learning" / "cat_dog_lite0.pt"  # git-ignored folder
ARCHITECTURE = "efficientnet-lite0"


def save(path: str | Path, model: nn.Module, class_names: Sequence[str], test_accuracy: float, *,
         fine_tuned: bool, test_photos: int) -> Path:
    """Write the whole model (backbone and head) as a course checkpoint that `load` rebuilds."""
    config = {"architecture": ARCHITECTURE, "num_classes": len(class_names)}
    return checkpoints.save_checkpoint(path, model, config, class_names=list(class_names),
                                       test_accuracy=float(test_accuracy), test_photos=int(test_photos),
                                       fine_tuned=bool(fine_tuned))


def load(path: str | Path = CHECKPOINT) -> tuple[nn.Module, dict]:
    """(the model in eval mode on the CPU, the checkpoint's facts: class_names, test_accuracy, ...)."""
    checkpoint = checkpoints.load_checkpoint(path)
    config = checkpoint["model_config"]
    if config.get("architecture") != ARCHITECTURE or "class_names" not in checkpoint:
        raise checkpoints.CheckpointError(f"{path} is not a cats-vs-dogs checkpoint of lesson 08 "
                                          f"(architecture {config.get('architecture')!r})")
    model = backbones.efficientnet_lite0(config["num_classes"])  # fine-tuning changes weights, not modules
    checkpoints.load_state_checked(model, checkpoint["model_state"], str(path))
    facts = {key: checkpoint[key] for key in ("class_names", "test_accuracy", "test_photos", "fine_tuned")}
    return model.eval(), facts


def train_head(train_photos: Subset, num_epochs: int = 30, lr: float = 0.001, batch_size: int = 32,
               seed: int = 0) -> nn.Module:
    """Lite0 with a new 2-class head trained on the frozen backbone's features of `train_photos` (lesson 08's way)."""
    torch.manual_seed(seed)  # the head's initial weights
    model = transfer.freeze(backbones.efficientnet_lite0(len(images.CAT_DOG_CLASSES)))
    model._fc.requires_grad_(True)
    features, labels = transfer.extract_features(model, DataLoader(train_photos, batch_size=1), torch.device("cpu"))
    head = nn.Sequential(model._dropout, model._fc)  # the same modules as in the model: (N, 1280) -> (N, 2)
    optimizer = torch.optim.Adam(model._fc.parameters(), lr=lr)
    batches = TensorBatches(features, labels, batch_size, shuffle=True, seed=seed)
    for _ in range(training.check_epochs(num_epochs)):
        training.train_one_epoch(head, batches, nn.CrossEntropyLoss(), optimizer, torch.device("cpu"))
    return model.eval()
