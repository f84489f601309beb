"""The older notes' helper functions (imshow, view_classify, view_recon, test_network), made current."""

from __future__ import annotations

import torch
from torch import nn, optim

from course_utils.core import plotting
from course_utils.core.training import eval_mode
from course_utils.datasets.mnist import CLASS_NAMES, MEAN, STD

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
VERSIONS = {"MNIST": CLASS_NAMES["mnist"], "Fashion": CLASS_NAMES["fashion_mnist"]}


def test_network(net: nn.Module, trainloader) -> bool:
    """One Adam step of `net` as an autoencoder on one batch; True if every parameter got a gradient and the loss fell.

    Raises RuntimeError, saying what went wrong, otherwise.
    """
    criterion = nn.MSELoss()
    optimizer = optim.Adam(net.parameters(), lr=0.001)
    device = next(net.parameters()).device
    images, _ = next(iter(trainloader))  # the built-in next(); Python 3 iterators have no next method
    inputs = images.to(device)
    targets = inputs.flatten(start_dim=1)

    @torch.no_grad()
    def batch_loss() -> float:  # in eval mode, so dropout does not make the two losses differ by chance
        with eval_mode(net):
            return criterion(net(inputs).flatten(start_dim=1), targets).item()

    before = batch_loss()
    optimizer.zero_grad(set_to_none=True)
    criterion(net(inputs).flatten(start_dim=1), targets).backward()
    no_grad = [name for name, p in net.named_parameters()
               if p.requires_grad and (p.grad is None or not torch.isfinite(p.grad).all())]
    if no_grad:
        raise RuntimeError(f"no usable gradient reached {', '.join(no_grad)}: are they part of forward()?")
    optimizer.step()
    after = batch_loss()
    if not after < before:
        raise RuntimeError(f"one optimisation step did not lower the loss on the batch ({before:.6g} -> {after:.6g})")
    return True


def imshow(image: torch.Tensor, ax=None, title=None, normalize: bool = True, mean=None, std=None):
    """Show a (C, H, W) tensor; `normalize` undoes Normalize(mean, std).

    Without `mean`/`std` it assumes the stats the course uses: ImageNet's for 3 channels,
    (0.5, 0.5) for 1 channel (Fashion-MNIST, MNIST).
    """
    if normalize and (mean is None or std is None):
        channels = image.shape[0] if image.dim() == 3 else 1
        if channels not in (1, 3):
            raise ValueError(f"no default normalisation for a {channels}-channel image: pass mean and std")
        mean, std = (IMAGENET_MEAN, IMAGENET_STD) if channels == 3 else (MEAN, STD)
    elif not normalize:
        mean, std = None, None
    return plotting.imshow(image, ax=ax, title=title, mean=mean, std=std)


def view_recon(img: torch.Tensor, recon: torch.Tensor):
    """An image beside its reconstruction."""
    return plotting.view_recon(img, recon)


def view_classify(img: torch.Tensor, ps: torch.Tensor, version: str = "MNIST"):
    """An image beside its class probabilities; `version` is "MNIST" or "Fashion"."""
    if version not in VERSIONS:
        raise ValueError(f"version must be one of {', '.join(VERSIONS)}, got {version!r}")
    return plotting.view_classify(img, ps, VERSIONS[version], mean=MEAN, std=STD)
