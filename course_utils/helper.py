"""The syllabus's helper functions (imshow, view_classify, view_recon, test_network), made current."""

from __future__ import annotations

import torch
from torch import nn, optim

from course_utils import plotting
from course_utils.datasets.mnist import CLASS_NAMES, MEAN, STD

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
VERSIONS = {"MNIST": CLASS_NAMES["mnist"], "Fashion": CLASS_NAMES["fashion_mnist"]}


def test_network(net: nn.Module, trainloader) -> bool:
    """One optimisation step of `net` as an autoencoder on one batch: checks that it trains at all."""
    criterion = nn.MSELoss()
    optimizer = optim.Adam(net.parameters(), lr=0.001)
    device = next(net.parameters()).device
    images, _ = next(iter(trainloader))  # the built-in next(); Python 3 iterators have no next method
    inputs = images.to(device)
    targets = inputs.flatten(start_dim=1)
    optimizer.zero_grad()
    loss = criterion(net(inputs).flatten(start_dim=1), targets)
    loss.backward()
    optimizer.step()
    return True


def imshow(image: torch.Tensor, ax=None, title=None, normalize: bool = True):
    """Show a (C, H, W) tensor; `normalize` undoes ImageNet normalisation, as the syllabus's helper did."""
    mean, std = (IMAGENET_MEAN, IMAGENET_STD) if normalize else (None, None)
    return plotting.imshow(image, ax=ax, title=title, mean=mean, std=std)


def view_recon(img: torch.Tensor, recon: torch.Tensor):
    """An image beside its reconstruction."""
    return plotting.view_recon(img, recon)


def view_classify(img: torch.Tensor, ps: torch.Tensor, version: str = "MNIST"):
    """An image beside its class probabilities; `version` is "MNIST" or "Fashion"."""
    if version not in VERSIONS:
        raise ValueError(f"version must be one of {', '.join(VERSIONS)}, got {version!r}")
    return plotting.view_classify(img, ps, VERSIONS[version], mean=MEAN, std=STD)
