"""Pictures for the lessons: training curves, images, image grids, predictions and class probabilities."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch


def plot_history(history: dict[str, list[float]], metric: str = "loss", ax: plt.Axes | None = None,
                 label: str = "") -> plt.Axes:
    """Plot `train_<metric>` and `val_<metric>` per epoch from a history dict; return the Axes."""
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 4))
    prefix = f"{label} " if label else ""
    for split, style in (("train", "-"), ("val", "--")):
        values = history.get(f"{split}_{metric}")
        if values:
            ax.plot(range(1, len(values) + 1), values, style, marker="o", label=f"{prefix}{split}")
    ax.set_xlabel("epoch")
    ax.set_ylabel(metric)
    ax.legend()
    ax.grid(alpha=0.3)
    return ax


def to_display(image: torch.Tensor, mean: Sequence[float] | float | None = None,
               std: Sequence[float] | float | None = None) -> np.ndarray:
    """A (C, H, W) or (H, W) tensor, un-normalised with mean/std, as an (H, W[, C]) array in [0, 1]."""
    image = image.detach().cpu().float()
    if image.ndim not in (2, 3):
        raise ValueError(f"expected an image of shape (C, H, W) or (H, W), got {tuple(image.shape)}")
    if image.ndim == 3:
        channels = image.shape[0]
        if mean is not None and std is not None:
            mean_t = torch.as_tensor(mean, dtype=image.dtype).reshape(-1, 1, 1)
            std_t = torch.as_tensor(std, dtype=image.dtype).reshape(-1, 1, 1)
            image = image * std_t + mean_t
        image = image.permute(1, 2, 0)
        if channels == 1:
            image = image[..., 0]
    elif mean is not None and std is not None:
        image = image * float(np.mean(std)) + float(np.mean(mean))
    return image.clamp(0, 1).numpy()


def imshow(image: torch.Tensor, ax: plt.Axes | None = None, title: str | None = None,
           mean: Sequence[float] | float | None = None, std: Sequence[float] | float | None = None) -> plt.Axes:
    """Show one image tensor (grayscale or RGB), undoing `Normalize(mean, std)` if given."""
    if ax is None:
        _, ax = plt.subplots()
    array = to_display(image, mean, std)
    ax.imshow(array, cmap="gray" if array.ndim == 2 else None)
    ax.set_axis_off()
    if title:
        ax.set_title(title)
    return ax


def show_grid(images: torch.Tensor, labels: Sequence[int] | torch.Tensor | None = None,
              class_names: Sequence[str] | None = None, mean=None, std=None, ncols: int = 8,
              size: float = 1.5) -> np.ndarray:
    """A grid of images (N, C, H, W) titled with their class names; return the array of Axes."""
    n = len(images)
    nrows = -(-n // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(ncols * size, nrows * size), squeeze=False)
    for i, ax in enumerate(axes.flat):
        if i >= n:
            ax.set_axis_off()
            continue
        title = None
        if labels is not None:
            label = int(labels[i])
            title = class_names[label] if class_names is not None else str(label)
        imshow(images[i], ax=ax, title=title, mean=mean, std=std)
    fig.tight_layout()
    return axes


def show_predictions(images: torch.Tensor, predictions: Sequence[int] | torch.Tensor,
                     labels: Sequence[int] | torch.Tensor, class_names: Sequence[str], mean=None, std=None,
                     ncols: int = 8, size: float = 1.5) -> np.ndarray:
    """A grid of images titled "predicted (true)", wrong predictions in red; return the array of Axes."""
    if not len(images) == len(predictions) == len(labels):
        raise ValueError(f"{len(images)} images, {len(predictions)} predictions and {len(labels)} labels")
    axes = show_grid(images, predictions, class_names, mean=mean, std=std, ncols=ncols, size=size)
    for ax, predicted, true in zip(axes.flat, predictions, labels):
        predicted, true = int(predicted), int(true)
        wrong = predicted != true
        ax.set_title(f"{class_names[predicted]}\n({class_names[true]})", size="small",
                     color="tab:red" if wrong else "black", fontweight="bold" if wrong else "normal")
    axes.flat[0].figure.tight_layout()
    return axes


def plot_confusion_matrix(confusion: torch.Tensor, class_names: Sequence[str], ax: plt.Axes | None = None,
                          cmap: str = "Blues") -> plt.Axes:
    """A confusion matrix (rows: true class, columns: predicted) as a heatmap with its counts; return the Axes."""
    counts = torch.as_tensor(confusion).detach().cpu().numpy()
    if counts.shape != (len(class_names), len(class_names)):
        raise ValueError(f"a {counts.shape} matrix for {len(class_names)} class names")
    if ax is None:
        _, ax = plt.subplots(figsize=(0.6 * len(class_names) + 2, 0.6 * len(class_names) + 1.5))
    image = ax.imshow(counts, cmap=cmap)
    threshold = counts.max() / 2
    for (row, col), count in np.ndenumerate(counts):
        ax.text(col, row, f"{count:g}", ha="center", va="center", size="small",
                color="white" if count > threshold else "black")
    positions = np.arange(len(class_names))
    ax.set_xticks(positions, labels=class_names, rotation=45, ha="right")
    ax.set_yticks(positions, labels=class_names)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.figure.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    return ax


def view_classify(image: torch.Tensor, probs: torch.Tensor, class_names: Sequence[str],
                  mean=None, std=None, axes: Sequence[plt.Axes] | None = None) -> Sequence[plt.Axes]:
    """An image beside a bar chart of its class probabilities; return the two Axes."""
    probs = probs.detach().cpu().flatten().numpy()
    if len(probs) != len(class_names):
        raise ValueError(f"{len(probs)} probabilities but {len(class_names)} class names")
    if axes is None:
        _, axes = plt.subplots(ncols=2, figsize=(7, 3.5), width_ratios=(1, 1.3))
    image = image.detach().cpu()
    if image.ndim == 1 or (image.ndim == 2 and 1 in image.shape):  # flattened: (784,) or (1, 784)
        side = int(round(image.numel() ** 0.5))
        if side * side != image.numel():
            raise ValueError(f"cannot show a flat image of {image.numel()} values as a square")
        image = image.reshape(1, side, side)
    imshow(image, ax=axes[0], mean=mean, std=std)
    positions = np.arange(len(class_names))
    axes[1].barh(positions, probs)
    axes[1].set_yticks(positions, labels=class_names, size="small")
    axes[1].invert_yaxis()
    axes[1].set_xlim(0, 1.05)
    axes[1].set_title("class probability")
    axes[0].figure.tight_layout()  # room for long class names
    return axes


def view_recon(image: torch.Tensor, recon: torch.Tensor) -> Sequence[plt.Axes]:
    """An image beside its reconstruction; return the two Axes."""
    _, axes = plt.subplots(ncols=2, sharex=True, sharey=True)
    for ax, picture, title in zip(axes, (image, recon), ("input", "reconstruction")):
        picture = picture.detach().cpu().squeeze()
        ax.imshow(picture.numpy(), cmap="gray" if picture.ndim == 2 else None)
        ax.set_title(title)
        ax.set_axis_off()
    return axes
