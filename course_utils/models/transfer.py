"""Transfer learning: freeze a pretrained backbone, cache its pooled features, train a new head, fine-tune the top."""

from __future__ import annotations

from typing import Iterable

import torch
from torch import nn
from torchvision.ops import FrozenBatchNorm2d
from tqdm import tqdm

from course_utils.models.layers import count_parameters  # noqa: F401  (re-exported for the lessons)


def freeze(model: nn.Module) -> nn.Module:
    """Stop gradients for every parameter of `model`; return it."""
    model.requires_grad_(False)
    return model


def pooled_features(model: nn.Module, images: torch.Tensor) -> torch.Tensor:
    """The backbone's feature vector per image, (N, C, H, W) -> (N, F), what the classifier head sees.

    EfficientNet (`extract_features` then average pooling); any other model is called as it is, so
    give it an `nn.Identity()` classifier first (e.g. `resnet.fc = nn.Identity()`).
    """
    if hasattr(model, "extract_features") and hasattr(model, "_avg_pooling"):
        return model._avg_pooling(model.extract_features(images)).flatten(1)  # (N, 1280, 7, 7) -> (N, 1280)
    return model(images).flatten(1)


def extract_features(model: nn.Module, loader: Iterable, device: torch.device,
                     progress: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """One pass of the frozen backbone over `loader`: (features (N, F) float32, labels (N,)) on the CPU.

    Eval mode (batch-norm running statistics, no dropout) under `torch.inference_mode()`; images
    go in channels-last, which makes convolutions faster on CPUs and GPUs alike.
    """
    model.eval()
    features, labels = [], []
    with torch.inference_mode():
        for images, targets in tqdm(loader, desc="features", leave=False, disable=not progress):
            images = images.to(device, memory_format=torch.channels_last)
            features.append(pooled_features(model, images).float().cpu())
            labels.append(targets.cpu())
    if not features:
        raise ValueError("the loader yielded no batches")
    # torch.cat outside inference mode gives ordinary tensors, which autograd may use to train a head
    return torch.cat(features), torch.cat(labels)


def unfreeze_last_blocks(model: nn.Module, num_blocks: int) -> list[nn.Parameter]:
    """Unfreeze the last `num_blocks` blocks, head convolution and `_fc` of an EfficientNet; return those parameters."""
    blocks = getattr(model, "_blocks", None)
    if blocks is None:
        raise TypeError(f"{type(model).__name__} has no `_blocks`; this works on efficientnet_lite_pytorch models")
    if isinstance(num_blocks, bool) or not isinstance(num_blocks, int) or not 0 <= num_blocks <= len(blocks):
        raise ValueError(f"num_blocks must be a whole number from 0 to {len(blocks)}, got {num_blocks!r}")
    modules = list(blocks[len(blocks) - num_blocks:]) + [model._conv_head, model._bn1, model._fc]
    parameters = [p for module in modules for p in module.parameters()]
    for parameter in parameters:
        parameter.requires_grad_(True)
    return parameters


def freeze_batchnorm(module: nn.Module) -> nn.Module:
    """Replace every BatchNorm2d by a FrozenBatchNorm2d with the same statistics and affine values; return `module`.

    `model.train()` would otherwise let small fine-tuning batches overwrite the running statistics
    learnt on ImageNet. Frozen batch norm always normalises with the stored statistics.
    """
    for name, child in module.named_children():
        if isinstance(child, nn.BatchNorm2d):
            if child.running_mean is None:
                raise ValueError(f"batch norm {name} keeps no running statistics, so there is nothing to freeze")
            frozen = FrozenBatchNorm2d(child.num_features, eps=child.eps).to(child.running_mean.device)
            with torch.no_grad():
                for key in ("weight", "bias", "running_mean", "running_var"):
                    if getattr(child, key) is not None:  # affine=False keeps FrozenBatchNorm2d's 1 and 0
                        getattr(frozen, key).copy_(getattr(child, key))
            setattr(module, name, frozen)
        else:
            freeze_batchnorm(child)
    return module
