"""Device-aware training and evaluation loops that return numbers and a history dict."""

from __future__ import annotations

import contextlib
import math
import os
import sys
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import torch
from torch import nn
from tqdm.auto import tqdm

from course_utils.core.arguments import check_count  # also importable from here (sequence, lessons)
from course_utils.core.checkpoints import save_checkpoint

Batch = tuple[torch.Tensor, torch.Tensor]
HISTORY_KEYS = ("train_loss", "train_accuracy", "val_loss", "val_accuracy")
PROGRESS_INTERVAL_S = 0.5  # the bar redraws at most twice a second, so drawing never slows the loop
PROGRESS_ENV = "COURSE_PROGRESS"  # "0": no bars (the runner sets it for its kernels: committed outputs stay clean)


def show_progress(progress: bool | None) -> bool:
    """An explicit choice; else a bar in a Jupyter kernel (a widget in JupyterLab), unless $COURSE_PROGRESS is 0."""
    if progress is not None:
        return progress
    return os.environ.get(PROGRESS_ENV) != "0" and "ipykernel" in sys.modules


def check_epochs(num_epochs: int) -> int:
    """Validate an epoch count before any training starts."""
    return check_count("num_epochs", num_epochs)


def loss_reduction(loss_fn: Callable) -> str:
    """'mean' or 'sum': how `loss_fn` reduces a batch; any other reduction is refused in plain words."""
    # a plain function (F.cross_entropy) has no attribute: it reduces by its default, the mean
    reduction = getattr(loss_fn, "reduction", "mean")
    if reduction not in ("mean", "sum"):
        raise ValueError(f"the loss function has reduction={reduction!r}; training needs one number per "
                         "batch to call backward() on: use reduction='mean' (the default) or 'sum'")
    return reduction


@contextlib.contextmanager
def eval_mode(model: nn.Module) -> Iterator[nn.Module]:
    """Put `model` in eval mode, then give every submodule back the mode it had (frozen parts stay frozen)."""
    modes = [(module, module.training) for module in model.modules()]
    model.eval()
    try:
        yield model
    finally:
        for module, training in modes:
            module.training = training


def _run_epoch(model: nn.Module, loader: Iterable[Batch], loss_fn: Callable, device: torch.device,
               optimizer: torch.optim.Optimizer | None, progress: bool, description: str) -> dict[str, float]:
    """The one loop of train and eval: one pass over `loader`, updating weights if an optimizer is given."""
    per_batch_mean = loss_reduction(loss_fn) == "mean"
    # Sums stay on the device and are read once at the end: reading them every batch (.item())
    # would make the CPU wait for the GPU at every step.
    accumulate = torch.float32 if torch.device(device).type == "mps" else torch.float64  # mps has no float64
    loss_sum = torch.zeros((), dtype=accumulate, device=device)
    correct = torch.zeros((), dtype=torch.int64, device=device)
    total = 0
    # The bar is told the length, not handed the loader: tqdm.auto's asyncio base calls iter() on an
    # iterable as soon as it is built, which would start a DataLoader twice and draw its shuffle twice.
    bar = tqdm(total=len(loader) if hasattr(loader, "__len__") else None, desc=description, leave=False,
               disable=not progress, mininterval=PROGRESS_INTERVAL_S)
    for inputs, targets in loader:
        inputs, targets = inputs.to(device, non_blocking=True), targets.to(device, non_blocking=True)
        outputs = model(inputs)  # logits or log-probabilities: argmax is the same
        loss = loss_fn(outputs, targets)
        if loss.ndim != 0:  # a loss function without a `reduction` attribute that returns one loss per sample
            raise ValueError(f"the loss function returned a tensor of shape {tuple(loss.shape)}; training needs "
                             "one number per batch: reduce it with a mean (or a sum) over the batch")
        if optimizer is not None:
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        n = len(targets)
        loss_sum.add_(loss.detach(), alpha=n if per_batch_mean else 1)  # a sum over the samples either way
        correct += (outputs.argmax(dim=1) == targets).sum()
        total += n
        bar.update()
    bar.close()
    if total == 0:
        raise ValueError(f"the {'training' if optimizer is not None else 'evaluation'} loader yielded no batches")
    return {"loss": loss_sum.item() / total, "accuracy": correct.item() / total}


def train_one_epoch(model: nn.Module, loader: Iterable[Batch], loss_fn: Callable,
                    optimizer: torch.optim.Optimizer, device: torch.device,
                    progress: bool | None = None, description: str = "train") -> dict[str, float]:
    """One pass over `loader` with weight updates; loss and accuracy averaged per sample."""
    model.train()
    return _run_epoch(model, loader, loss_fn, device, optimizer, show_progress(progress), description)


@torch.no_grad()
def evaluate(model: nn.Module, loader: Iterable[Batch], loss_fn: Callable, device: torch.device) -> dict[str, float]:
    """Loss and accuracy over `loader` in eval mode (dropout off, batch-norm running stats); the mode is restored."""
    with eval_mode(model):
        return _run_epoch(model, loader, loss_fn, device, None, False, "eval")


def new_history() -> dict[str, list[float]]:
    """An empty history dict, as `fit` returns and continues."""
    return {key: [] for key in HISTORY_KEYS}


def fit(model: nn.Module, train_loader: Iterable[Batch], val_loader: Iterable[Batch], loss_fn: Callable,
        optimizer: torch.optim.Optimizer, device: torch.device, num_epochs: int, *,
        scheduler: torch.optim.lr_scheduler.LRScheduler | None = None,
        checkpoint_path: str | Path | None = None, model_config: dict | None = None,
        history: dict[str, list[float]] | None = None,
        progress: bool | None = None, verbose: bool = True) -> dict[str, list[float]]:
    """Train `num_epochs` more epochs, evaluating after each; keep the best (lowest val loss) checkpoint.

    Returns the history dict `{"train_loss", "train_accuracy", "val_loss", "val_accuracy"}`. Given a
    `history` (from an earlier call or a checkpoint) it appends to it and numbers epochs after it.
    """
    check_epochs(num_epochs)
    if checkpoint_path is not None and model_config is None:
        raise ValueError("checkpoint_path needs model_config, so the checkpoint can rebuild the model")
    if history is None:
        history = new_history()
    lengths = {len(history.get(key, [])) for key in HISTORY_KEYS}
    if set(history) != set(HISTORY_KEYS) or len(lengths) != 1:
        raise ValueError(f"history must have the keys {', '.join(HISTORY_KEYS)}, with one value per epoch in each")
    done = lengths.pop()
    best_val_loss = min(history["val_loss"], default=math.inf)  # '*' and the checkpoint mean: best so far
    last = done + num_epochs
    generator = getattr(train_loader, "generator", None)  # the shuffling, saved so a resume draws the same batches
    for epoch in range(done + 1, last + 1):
        train = train_one_epoch(model, train_loader, loss_fn, optimizer, device, progress,
                                description=f"epoch {epoch}/{last}")
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
                                scheduler=scheduler, generators=[generator] if generator is not None else [],
                                val_loss=val["loss"], val_accuracy=val["accuracy"], history=history)
        if verbose:
            print(f"epoch {epoch:>2}/{last}  train loss {train['loss']:.3f}  acc {train['accuracy']:.3f}  "
                  f"| val loss {val['loss']:.3f}  acc {val['accuracy']:.3f}{'  *' if improved else ''}")
    return history


@torch.no_grad()
def predict_probs(model: nn.Module, inputs: torch.Tensor, device: torch.device) -> torch.Tensor:
    """Class probabilities for a batch, whether the model ends in logits or log-softmax; the mode is restored."""
    with eval_mode(model):
        outputs = model(inputs.to(device))
    return outputs.softmax(dim=1)  # softmax(log_softmax(x)) == softmax(x), so both kinds work
