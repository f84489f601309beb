"""Transfer learning: freeze a pretrained backbone, cache its pooled features, train a new head, fine-tune the top."""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn
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


def _is_frozen(batchnorm: nn.Module) -> bool:
    """True when no parameter of this batch norm trains (affine=False has none: it counts as frozen)."""
    return not any(p.requires_grad for p in batchnorm.parameters())


def _stored_statistics_when_frozen(batchnorm: nn.Module, args: tuple) -> None:
    # Decided at every forward from requires_grad, so freeze / unfreeze / freeze_batchnorm may come in any order.
    batchnorm._course_mode = batchnorm.training
    if batchnorm.training and _is_frozen(batchnorm):
        batchnorm.training = False  # normalise with the stored statistics and leave them unchanged


def _restore_mode(batchnorm: nn.Module, args: tuple, output: torch.Tensor) -> None:
    batchnorm.training = batchnorm._course_mode


def freeze_batchnorm(module: nn.Module) -> nn.Module:
    """Make every batch norm of a frozen block keep its stored statistics, in train mode too; return `module`.

    `model.train()` would otherwise let small fine-tuning batches overwrite the running statistics
    learnt on ImageNet in blocks whose weights stay fixed. A batch norm whose parameters train (an
    unfrozen block) normalises with batch statistics as usual, so its weights and statistics adapt.
    """
    for name, batchnorm in module.named_modules():
        if isinstance(batchnorm, nn.modules.batchnorm._BatchNorm) and not hasattr(batchnorm, "_course_mode"):
            if batchnorm.running_mean is None:
                raise ValueError(f"batch norm {name or type(module).__name__} keeps no running statistics, "
                                 "so there is nothing to freeze")
            batchnorm._course_mode = batchnorm.training  # also marks it as hooked, so a second call adds nothing
            batchnorm.register_forward_pre_hook(_stored_statistics_when_frozen)
            batchnorm.register_forward_hook(_restore_mode, always_call=True)
    return module
