"""Choosing the compute device, seeding every RNG, and setting the CPU thread count."""

from __future__ import annotations

import random

import numpy as np
import torch

from course_utils.core.arguments import THREADS_ENV, check_count, env_threads  # noqa: F401 (devices.THREADS_ENV)

DEVICE_CHOICES = ("auto", "cpu", "cuda", "mps")


def check_device_name(name: str) -> str:
    """The kind of device `name` asks for ("auto", "cpu", "cuda", "mps"); a clear error if it is not one."""
    if not isinstance(name, str):
        raise TypeError(f"device must be a string such as 'auto' or 'cuda:0', not {type(name).__name__}")
    kind, _, index = name.partition(":")
    if kind not in DEVICE_CHOICES or (index and not index.isdigit()):
        raise ValueError(f"unknown device {name!r}; choose one of {', '.join(DEVICE_CHOICES)} (or 'cuda:N')")
    return kind


def get_device(name: str = "auto") -> torch.device:
    """Return the torch.device for `name`: "auto" picks cuda, then mps, then cpu."""
    kind = check_device_name(name)
    if kind == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if kind == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"device {name!r} was asked for, but PyTorch sees no CUDA GPU; use 'auto' or 'cpu'")
    if kind == "mps" and not torch.backends.mps.is_available():
        raise RuntimeError("device 'mps' was asked for, but this machine has no Apple-silicon GPU; use 'auto' or 'cpu'")
    return torch.device(name)


def set_threads(threads: int | None = None) -> int:
    """Set PyTorch's CPU thread count (argument, else $COURSE_THREADS, else unchanged); return it."""
    if threads is None:
        threads = env_threads()  # a clear ValueError for a value that is not a count
    if threads is not None:
        torch.set_num_threads(check_count("threads", threads))
    return torch.get_num_threads()


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python, NumPy and PyTorch (CPU and GPU); return a torch.Generator seeded the same."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # also seeds every CUDA device
    return torch.Generator().manual_seed(seed)


def setup(device: str = "auto", seed: int = 0, threads: int | None = None) -> torch.device:
    """The first line of every lesson: validate settings, seed, set threads, return the device."""
    resolved = get_device(device)
    set_threads(threads)
    seed_everything(seed)
    return resolved


def describe(device: torch.device) -> str:
    """One line naming the device, with the GPU model when there is one (what a lesson shows the learner)."""
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    return device.type
