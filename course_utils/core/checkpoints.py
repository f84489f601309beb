"""Checkpoints that rebuild their model: written atomically, loaded safely, mismatches explained."""

from __future__ import annotations

import pickle
import random
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from course_utils.core.files import atomic_write  # used below; also importable from here

REQUIRED_KEYS = ("model_config", "model_state")


class CheckpointError(ValueError):
    """A checkpoint file is unreadable, incomplete, or does not fit the model."""


def atomic_save(obj: Any, path: str | Path) -> Path:
    """torch.save to a temporary file in the same folder, then rename over `path`."""
    return atomic_write(path, lambda f: torch.save(obj, f))


def rng_state(generators: Iterable[torch.Generator] = ()) -> dict:
    """Every random number generator a training run draws from, as plain types and tensors."""
    kind, keys, position, has_gauss, cached_gauss = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),  # dropout and initialisation on the CPU
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],  # dropout on GPUs
        "python": random.getstate(),
        "numpy": (kind, torch.from_numpy(keys.copy()), position, has_gauss, cached_gauss),
        "generators": [generator.get_state() for generator in generators],  # e.g. a loader's shuffling
    }


def set_rng_state(state: dict, generators: Iterable[torch.Generator] = ()) -> None:
    """Put back what `rng_state` saved; `generators` in the same order as when it was saved."""
    generators = list(generators)
    if len(generators) != len(state["generators"]):
        raise CheckpointError(f"the checkpoint saved {len(state['generators'])} generator state(s), "
                              f"but {len(generators)} generator(s) were given to put them back into: pass the "
                              "same ones as when saving, e.g. generators=[train_loader.generator]")
    torch.set_rng_state(state["torch"].cpu())  # map_location may have moved it; the CPU RNG needs it on the CPU
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    kind, keys, position, has_gauss, cached_gauss = state["numpy"]
    np.random.set_state((kind, keys.cpu().numpy(), position, has_gauss, cached_gauss))
    for generator, saved in zip(generators, state["generators"]):
        generator.set_state(saved.cpu())


def save_checkpoint(path: str | Path, model: nn.Module, model_config: dict, *,
                    optimizer: torch.optim.Optimizer | None = None, epoch: int | None = None,
                    scheduler: Any = None, generators: Iterable[torch.Generator] = (),
                    **extra: Any) -> Path:
    """Save what rebuilds and resumes `model`: config, weights, optimizer and scheduler state, epoch, RNG state.

    `generators` are extra torch.Generators the run draws from (a loader's `.generator`), so a
    resumed run shuffles the same batches as an uninterrupted one.
    """
    checkpoint = {
        "model_config": dict(model_config),
        "model_state": model.state_dict(),
        "optimizer_state": optimizer.state_dict() if optimizer is not None else None,
        "scheduler_state": scheduler.state_dict() if scheduler is not None else None,
        "rng_state": rng_state(generators),
        "epoch": epoch,
        **extra,
    }
    return atomic_save(checkpoint, path)


def resume(checkpoint: dict, optimizer: torch.optim.Optimizer | None = None, scheduler: Any = None,
           generators: Iterable[torch.Generator] = ()) -> int:
    """Load the optimizer, scheduler and RNG states of `checkpoint` into fresh objects; return the next epoch."""
    for name, target in (("optimizer", optimizer), ("scheduler", scheduler)):
        if target is None:
            continue
        if checkpoint.get(f"{name}_state") is None:
            raise CheckpointError(f"the checkpoint has no {name} state to resume from: it was saved without "
                                  f"save_checkpoint(..., {name}=...)")
        target.load_state_dict(checkpoint[f"{name}_state"])
    if "rng_state" not in checkpoint:
        raise CheckpointError("the checkpoint has no RNG state: it was saved before checkpoints kept one, "
                              "so the resumed run cannot draw the same dropout masks and batches")
    set_rng_state(checkpoint["rng_state"], generators)
    return (checkpoint.get("epoch") or 0) + 1


MapLocation = str | torch.device | dict[str, str] | Callable


def load_checkpoint(path: str | Path, map_location: MapLocation = "cpu") -> dict:
    """Load a checkpoint dict safely (weights_only) onto `map_location`; plain-words errors."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    if isinstance(map_location, (str, torch.device)) and torch.device(map_location).type == "cuda" \
            and not torch.cuda.is_available():
        raise RuntimeError(f"map_location={str(map_location)!r}, but this machine has no CUDA GPU; "
                           "load with map_location='cpu'")
    try:
        checkpoint = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        if "Weights only load failed" not in str(err):
            raise CheckpointError(f"{path} is not a readable PyTorch checkpoint: "
                                  "the file is truncated or corrupt") from err
        raise CheckpointError(
            f"{path} holds Python objects beyond tensors and plain containers; safe loading "
            f"(weights_only=True) refuses them because unpickling can run arbitrary code"
        ) from err
    except Exception as err:  # torch.load raises many types for a damaged file; all mean the same here
        raise CheckpointError(
            f"{path} is not a readable PyTorch checkpoint: the file is truncated or corrupt "
            f"({type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''})"
        ) from err
    if not isinstance(checkpoint, dict) or any(key not in checkpoint for key in REQUIRED_KEYS):
        found = sorted(checkpoint) if isinstance(checkpoint, dict) else type(checkpoint).__name__
        raise CheckpointError(f"{path} is not a course checkpoint: expected keys {REQUIRED_KEYS}, found {found}")
    config, state = checkpoint["model_config"], checkpoint["model_state"]
    if not isinstance(config, dict):
        raise CheckpointError(f"{path} is damaged: model_config should be a dict of keyword arguments "
                              f"for the model, found {type(config).__name__}")
    if not isinstance(state, dict):
        raise CheckpointError(f"{path} is damaged: model_state should be a state dict (names to tensors), "
                              f"found {type(state).__name__}")
    not_tensors = [str(key) for key, value in state.items() if not isinstance(value, torch.Tensor)]
    if not_tensors:
        raise CheckpointError(f"{path} is damaged: model_state should map names to tensors, "
                              f"but {', '.join(not_tensors[:3])} {'is' if len(not_tensors) == 1 else 'are'} not")
    return checkpoint


def state_mismatches(model: nn.Module, state: dict[str, torch.Tensor]) -> list[str]:
    """Lines describing every key and shape that differs between `model` and `state` (empty if none)."""
    expected = model.state_dict()
    lines = [f"missing from checkpoint: {key} {tuple(expected[key].shape)}" for key in expected if key not in state]
    lines += [f"not in model: {key} {tuple(state[key].shape)}" for key in state if key not in expected]
    lines += [
        f"shape differs: {key} is {tuple(state[key].shape)} in the checkpoint, "
        f"{tuple(expected[key].shape)} in the model"
        for key in expected
        if key in state and state[key].shape != expected[key].shape
    ]
    return lines


def load_state_checked(model: nn.Module, state: dict[str, torch.Tensor], source: str = "checkpoint") -> nn.Module:
    """model.load_state_dict, but a mismatch lists the differing keys and shapes in plain words."""
    problems = state_mismatches(model, state)
    if problems:
        details = "\n  ".join(problems)
        raise CheckpointError(f"{source} was saved from a different architecture than this model:\n  {details}")
    model.load_state_dict(state)
    return model


def _target_device(map_location: MapLocation, state: dict[str, torch.Tensor]) -> torch.device:
    """The device the rebuilt model belongs on: `map_location` itself, or where a dict/function mapped the weights."""
    if isinstance(map_location, (str, torch.device)):
        return torch.device(map_location)
    return next(iter(state.values())).device if state else torch.device("cpu")


def _size_in_words(num_bytes: int) -> str:
    for unit, scale in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if num_bytes >= scale:
            return f"{num_bytes / scale:.1f} {unit}"
    return f"{num_bytes} bytes"


def _different_model(path: str | Path, build_model: Callable, config: dict, err: TypeError) -> CheckpointError:
    name = getattr(build_model, "__qualname__", repr(build_model))
    return CheckpointError(f"{path} was saved for a different model: {name} does not accept its model_config "
                           f"(keys {', '.join(sorted(config)) or 'none'}): {err}")


def check_config_fits(path: str | Path, build_model: Callable[..., nn.Module], config: dict,
                      state: dict[str, torch.Tensor]) -> None:
    """Raise CheckpointError (one line) unless `build_model(**config)` has the shapes of `state`; allocates nothing.

    The model is built on the meta device (shapes, no memory), so a model_config claiming a model
    of terabytes is caught here, not by the allocator. A builder that cannot build on the meta
    device is not checked here; `load_state_checked` still compares the real model after building it.
    """
    name = getattr(build_model, "__qualname__", repr(build_model))
    try:
        with torch.device("meta"):
            skeleton = build_model(**config)
    except TypeError as err:  # the config's keywords are not this model's: a checkpoint of another model
        raise _different_model(path, build_model, config, err) from err
    except Exception:  # noqa: BLE001 - e.g. a builder that needs real tensors: skip this check, the real build follows
        return
    if not isinstance(skeleton, nn.Module):
        return
    problems = state_mismatches(skeleton, state)
    if problems:
        first = next((line for line in problems if line.startswith("shape differs")), problems[0])
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        size = sum(t.numel() * t.element_size() for t in skeleton.state_dict().values())
        raise CheckpointError(
            f"{path} was saved from a different architecture than {name}(**model_config) builds "
            f"(model_config keys {', '.join(sorted(config)) or 'none'}, {_size_in_words(size)} of weights, "
            f"not allocated): {first}{more}; the config or the weights were changed, or it is another model's file"
        )


def restore(path: str | Path, build_model: Callable[..., nn.Module],
            map_location: MapLocation = "cpu") -> tuple[nn.Module, dict]:
    """Rebuild a model with `build_model(**model_config)` on `map_location` and load its weights.

    `map_location` is a device, a device string, or torch.load's dict form ({"cuda:0": "cpu"}).
    The config is first checked against the weights' shapes without allocating (`check_config_fits`).
    To resume training, build the optimizer (and scheduler) on the returned model, then
    `resume(checkpoint, optimizer, scheduler)`.
    """
    checkpoint = load_checkpoint(path, map_location)
    config = checkpoint["model_config"]
    check_config_fits(path, build_model, config, checkpoint["model_state"])
    try:
        model = build_model(**config)
    except TypeError as err:
        raise _different_model(path, build_model, config, err) from err
    model = model.to(_target_device(map_location, checkpoint["model_state"]))
    load_state_checked(model, checkpoint["model_state"], source=str(path))
    return model, checkpoint
