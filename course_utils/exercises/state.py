"""PyTorch's process-wide settings that an answer can change: read them, set them, check under standard ones."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator

import torch

CPU = torch.device("cpu")


@dataclasses.dataclass(frozen=True)
class TorchState:
    """The global settings a learner's line such as torch.set_default_dtype(torch.float64) changes for everyone."""

    default_dtype: torch.dtype
    default_device: torch.device
    grad_enabled: bool
    deterministic: bool
    deterministic_warn_only: bool
    anomaly_detection: bool
    float32_matmul_precision: str
    num_threads: int


# what each setting is called in a message, and the call that changes it
SETTINGS = {
    "default_dtype": "torch.set_default_dtype",
    "default_device": "torch.set_default_device",
    "grad_enabled": "torch.set_grad_enabled",
    "deterministic": "torch.use_deterministic_algorithms",
    "deterministic_warn_only": "torch.use_deterministic_algorithms(..., warn_only=...)",
    "anomaly_detection": "torch.autograd.set_detect_anomaly",
    "float32_matmul_precision": "torch.set_float32_matmul_precision",
    "num_threads": "torch.set_num_threads",
}


def current() -> TorchState:
    """PyTorch's global settings now."""
    return TorchState(
        default_dtype=torch.get_default_dtype(),
        default_device=torch.get_default_device(),
        grad_enabled=torch.is_grad_enabled(),
        deterministic=torch.are_deterministic_algorithms_enabled(),
        deterministic_warn_only=torch.is_deterministic_algorithms_warn_only_enabled(),
        anomaly_detection=torch.is_anomaly_enabled(),
        float32_matmul_precision=torch.get_float32_matmul_precision(),
        num_threads=torch.get_num_threads(),
    )


def standard(now: TorchState) -> TorchState:
    """The settings every check runs under: PyTorch's defaults, with the number of threads left as it is."""
    return TorchState(default_dtype=torch.float32, default_device=CPU, grad_enabled=True, deterministic=False,
                      deterministic_warn_only=False, anomaly_detection=False, float32_matmul_precision="highest",
                      num_threads=now.num_threads)


def apply(state: TorchState) -> None:
    """Make PyTorch's global settings those of `state` (only the ones that differ are touched)."""
    now = current()
    if now.default_dtype != state.default_dtype:
        torch.set_default_dtype(state.default_dtype)
    if now.default_device != state.default_device:
        # None removes the device mode entirely; "cpu" would install one that every torch call then passes through
        torch.set_default_device(None if state.default_device == CPU else state.default_device)
    if now.grad_enabled != state.grad_enabled:
        torch.set_grad_enabled(state.grad_enabled)
    if (now.deterministic, now.deterministic_warn_only) != (state.deterministic, state.deterministic_warn_only):
        torch.use_deterministic_algorithms(state.deterministic, warn_only=state.deterministic_warn_only)
    if now.anomaly_detection != state.anomaly_detection:
        torch.set_anomaly_enabled(state.anomaly_detection)
    if now.float32_matmul_precision != state.float32_matmul_precision:
        torch.set_float32_matmul_precision(state.float32_matmul_precision)
    if now.num_threads != state.num_threads:
        torch.set_num_threads(state.num_threads)


def changes(before: TorchState, after: TorchState) -> list[str]:
    """'torch.set_default_dtype (torch.float32 -> torch.float64)' for each setting that differs."""
    return [f"{SETTINGS[f.name]} ({getattr(before, f.name)} -> {getattr(after, f.name)})"
            for f in dataclasses.fields(TorchState) if getattr(before, f.name) != getattr(after, f.name)]


@contextlib.contextmanager
def standard_settings() -> Iterator[list[str]]:
    """Run the block under the standard settings and the caller's random state, then put both back as they were.

    Yields a list that, after the block, names each setting the block changed (and that is now restored).
    """
    before = current()
    checked = standard(before)
    changed: list[str] = []
    with torch.random.fork_rng(devices=[]):
        try:
            apply(checked)
            yield changed
        finally:
            changed += changes(checked, current())
            apply(before)
