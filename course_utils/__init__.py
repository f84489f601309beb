"""The library behind the PyTorch course notebooks.

    core/      the training loop's parts: devices, training, checkpoints, plotting, report, distributed; files, checks
    models/    layers and formulas, pretrained backbones, transfer learning, sequence models
    datasets/  every dataset's facts (catalog), where data comes from (sources), the loaders built on them
    deploy/    the exported inference pipeline and the predict command line
    tools/     the course's own programs: runner, doctor, lab, remote lab
    exercises/ the lessons' exercises and their checkers
    paths      the project's folders (root, notebooks, workspace, runs), defined once
    fc_model, helper   the older notes' API, kept under its own names

Import modules from their homes: `from course_utils.core import training`,
`from course_utils.datasets import mnist`. The flat names of release 1.0 (`course_utils.training`,
`course_utils.data`, `python -m course_utils.doctor`, `course_utils.deploy.cat_dog`) still work for this release, with a
DeprecationWarning naming the new import.
"""
from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys
import warnings

# Release 1.0's flat names -> their homes. Deprecated; to be removed in the next release.
MOVED = {
    "devices": "core.devices", "training": "core.training", "checkpoints": "core.checkpoints",
    "plotting": "core.plotting", "report": "core.report",
    "layers": "models.layers", "backbones": "models.backbones", "transfer": "models.transfer",
    "sequence": "models.sequence",
    "sources": "datasets.sources", "data": "datasets.mnist", "images": "datasets.images",
    "text": "datasets.text",
    "pipeline": "deploy.pipeline", "predict": "deploy.predict",
    "runner": "tools.runner", "doctor": "tools.doctor", "remote_lab": "tools.remote_lab",
    "deploy.cat_dog": "models.cat_dog",  # release 1.1: lesson 08's model is a model, not a deployment tool
    "core.checks": "core.arguments",  # release 1.1: "check" alone names too many things; these check arguments
}


def _new_import(old: str) -> str:
    package, _, module = MOVED[old].rpartition(".")
    return f"from {__name__}.{package} import {module}"


def _warn(old: str, stacklevel: int) -> None:
    warnings.warn(f"course_utils.{old} is deprecated: use `{_new_import(old)}`",
                  DeprecationWarning, stacklevel=stacklevel)


class _OldName(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Resolves `course_utils.<old>` to the one module at its new home (never a second copy)."""

    def find_spec(self, fullname, path=None, target=None):
        package, _, old = fullname.partition(".")
        if package != __name__ or old not in MOVED:
            return None  # not an old name (or a new one: the ordinary finders come first)
        real = importlib.util.find_spec(self._real_name(fullname))
        # origin: `python -m course_utils.<old>` runs the real file with its own __file__
        return importlib.util.spec_from_loader(fullname, self, origin=real.origin if real else None)

    def create_module(self, spec):
        _warn(spec.name.partition(".")[2], stacklevel=2)
        module = importlib.import_module(self._real_name(spec.name))
        spec.loader_state = module.__spec__
        return module

    def exec_module(self, module):
        module.__spec__ = module.__spec__.loader_state  # importlib gave the module the alias's spec

    def get_code(self, fullname):  # `python -m course_utils.<old>` runs the real module's code
        _warn(fullname.partition(".")[2], stacklevel=2)
        real = importlib.util.find_spec(self._real_name(fullname))
        return real.loader.get_code(real.name)

    @staticmethod
    def _real_name(fullname):
        return f"{__name__}.{MOVED[fullname.partition('.')[2]]}"


if not any(isinstance(finder, _OldName) for finder in sys.meta_path):
    sys.meta_path.append(_OldName())


def __getattr__(name):  # `course_utils.training` as an attribute, before anything imported it
    if name in MOVED:
        _warn(name, stacklevel=2)
        return importlib.import_module(f"{__name__}.{MOVED[name]}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
