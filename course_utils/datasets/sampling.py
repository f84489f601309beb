"""Drawing samples by class: a sampler that balances the classes, a random subset with set counts per class."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch.utils.data import WeightedRandomSampler


def balanced_sampler(targets: Sequence[int] | torch.Tensor, num_samples: int | None = None,
                     generator: torch.Generator | None = None) -> WeightedRandomSampler:
    """A sampler that draws every class equally often on average: weight of a sample = 1 / (count of its class)."""
    targets = torch.as_tensor(targets)
    if targets.ndim != 1 or len(targets) == 0 or targets.dtype.is_floating_point or targets.min() < 0:
        raise ValueError("targets must be a non-empty 1-D sequence of class indices >= 0")
    counts = torch.bincount(targets)
    weights = 1.0 / counts[targets].double()  # (N,): rare classes get large weights
    return WeightedRandomSampler(weights, num_samples or len(targets), replacement=True, generator=generator)


def class_subset(targets: Sequence[int] | torch.Tensor, per_class: int | Sequence[int], seed: int = 0) -> list[int]:
    """Indices of a random subset with `per_class[c]` samples of class c (an int: the same for every class)."""
    targets = torch.as_tensor(targets)
    num_classes = int(targets.max()) + 1 if len(targets) else 0
    sizes = [per_class] * num_classes if isinstance(per_class, int) else list(per_class)
    if len(sizes) != num_classes:
        raise ValueError(f"{len(sizes)} subset sizes for {num_classes} classes")
    generator = torch.Generator().manual_seed(seed)
    chosen = []
    for label, size in enumerate(sizes):
        members = (targets == label).nonzero().flatten()
        if not 0 <= size <= len(members):
            raise ValueError(f"class {label} has {len(members)} samples; cannot take {size}")
        chosen.append(members[torch.randperm(len(members), generator=generator)[:size]])
    return torch.cat(chosen).sort().values.tolist() if chosen else []
