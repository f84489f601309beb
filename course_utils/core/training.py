"""Device-aware training and evaluation loops that return numbers and a history dict."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Callable, Iterable

import torch
from torch import nn
from tqdm import tqdm

from course_utils.core.checkpoints import save_checkpoint
from course_utils.core.checks import check_count  # also importable from here (sequence, lessons)

Batch = tuple[torch.Tensor, torch.Tensor]


def check_epochs(num_epochs: int) -> int:
    """Validate an epoch count before any training starts."""
    return check_count("num_epochs", num_epochs)


def _step(model: nn.Module, batch: Batch, loss_fn: Callable, device: torch.device) -> tuple[torch.Tensor, int, int]:
    """Shared by train and eval: (mean loss of the batch, number correct, batch size)."""
    inputs, targets = (t.to(device, non_blocking=True) for t in batch)
    outputs = model(inputs)  # logits or log-probabilities: argmax is the same
    loss = loss_fn(outputs, targets)
    correct = (outputs.argmax(dim=1) == targets).sum().item()
    return loss, correct, len(targets)


def train_one_epoch(model: nn.Module, loader: Iterable[Batch], loss_fn: Callable,
                    optimizer: torch.optim.Optimizer, device: torch.device,
                    progress: bool = False, description: str = "train") -> dict[str, float]:
    """One pass over `loader` with weight updates; loss and accuracy averaged per sample."""
    model.train()
    total_loss, total_correct, total = 0.0, 0, 0
    for batch in tqdm(loader, desc=description, leave=False, disable=not progress):
        loss, correct, n = _step(model, batch, loss_fn, device)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        total_loss += loss.item() * n  # mean over the batch -> sum, so the epoch mean is per sample
        total_correct += correct
        total += n
    if total == 0:
        raise ValueError("the training loader yielded no batches")
    return {"loss": total_loss / total, "accuracy": total_correct / total}


@torch.no_grad()
def evaluate(model: nn.Module, loader: Iterable[Batch], loss_fn: Callable, device: torch.device) -> dict[str, float]:
    """Loss and accuracy over `loader` in eval mode (dropout off, batch-norm running stats)."""
    model.eval()
    total_loss, total_correct, total = 0.0, 0, 0
    for batch in loader:
        loss, correct, n = _step(model, batch, loss_fn, device)
        total_loss += loss.item() * n
        total_correct += correct
        total += n
    if total == 0:
        raise ValueError("the evaluation loader yielded no batches")
    return {"loss": total_loss / total, "accuracy": total_correct / total}


def fit(model: nn.Module, train_loader: Iterable[Batch], val_loader: Iterable[Batch], loss_fn: Callable,
        optimizer: torch.optim.Optimizer, device: torch.device, num_epochs: int, *,
        scheduler: torch.optim.lr_scheduler.LRScheduler | None = None,
        checkpoint_path: str | Path | None = None, model_config: dict | None = None,
        progress: bool = False, verbose: bool = True) -> dict[str, list[float]]:
    """Train for `num_epochs`, evaluating after each; keep the best (lowest val loss) checkpoint.

    Returns the history dict `{"train_loss", "train_accuracy", "val_loss", "val_accuracy"}`.
    """
    check_epochs(num_epochs)
    if checkpoint_path is not None and model_config is None:
        raise ValueError("checkpoint_path needs model_config, so the checkpoint can rebuild the model")
    history: dict[str, list[float]] = {"train_loss": [], "train_accuracy": [], "val_loss": [], "val_accuracy": []}
    best_val_loss = math.inf
    for epoch in range(1, num_epochs + 1):
        train = train_one_epoch(model, train_loader, loss_fn, optimizer, device, progress,
                                description=f"epoch {epoch}/{num_epochs}")
        val = evaluate(model, val_loader, loss_fn, device)
        if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
            scheduler.step(val["loss"])  # it lowers the rate when this metric stops improving
        elif scheduler is not None:
            scheduler.step()
        for split, metrics in (("train", train), ("val", val)):
            for key, value in metrics.items():
                history[f"{split}_{key}"].append(value)
        improved = val["loss"] < best_val_loss
        if improved:
            best_val_loss = val["loss"]
            if checkpoint_path is not None:
                save_checkpoint(checkpoint_path, model, model_config, optimizer=optimizer, epoch=epoch,
                                val_loss=val["loss"], val_accuracy=val["accuracy"])
        if verbose:
            print(f"epoch {epoch:>2}/{num_epochs}  train loss {train['loss']:.3f}  acc {train['accuracy']:.3f}  "
                  f"| val loss {val['loss']:.3f}  acc {val['accuracy']:.3f}{'  *' if improved else ''}")
    return history


@torch.no_grad()
def predict_probs(model: nn.Module, inputs: torch.Tensor, device: torch.device) -> torch.Tensor:
    """Class probabilities for a batch, whether the model ends in logits or log-softmax."""
    model.eval()
    outputs = model(inputs.to(device))
    return outputs.softmax(dim=1)  # softmax(log_softmax(x)) == softmax(x), so both kinds work
