"""The library behind the PyTorch course notebooks.

    core/      the training loop's parts: devices, training, checkpoints, plotting, report, distributed; files, checks
    models/    layers and formulas, pretrained backbones, transfer learning, sequence models
    datasets/  every dataset's facts (catalog), where data comes from (sources), the loaders built on them
    deploy/    the exported inference pipeline and the predict command line
    tools/     the course's own programs: runner, doctor, remote lab
    fc_model, helper   the syllabus's API, kept under its own names

The modules used to sit flat in this folder; `from course_utils import training` and
`import course_utils.training` still work (and `python -m course_utils.predict`), so code
written against the old names keeps running.
"""
from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys

MOVED = {
    "devices": "core.devices", "training": "core.training", "checkpoints": "core.checkpoints",
    "plotting": "core.plotting", "report": "core.report",
    "layers": "models.layers", "backbones": "models.backbones", "transfer": "models.transfer",
    "sequence": "models.sequence",
    "sources": "datasets.sources", "data": "datasets.mnist", "images": "datasets.images",
    "text": "datasets.text",
    "pipeline": "deploy.pipeline", "predict": "deploy.predict",
    "runner": "tools.runner", "doctor": "tools.doctor", "remote_lab": "tools.remote_lab",
}


class _OldName(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Resolves `course_utils.<old>` to the one module at its new home (never a second copy)."""

    def find_spec(self, fullname, path=None, target=None):
        package, _, old = fullname.partition(".")
        if package != __name__ or old not in MOVED:
            return None
        return importlib.util.spec_from_loader(fullname, self)

    def create_module(self, spec):
        module = importlib.import_module(self._real_name(spec.name))
        spec.loader_state = module.__spec__
        return module

    def exec_module(self, module):
        module.__spec__ = module.__spec__.loader_state  # importlib gave the module the alias's spec

    def get_code(self, fullname):  # `python -m course_utils.<old>` runs the real module's code
        real = importlib.util.find_spec(self._real_name(fullname))
        return real.loader.get_code(real.name)

    @staticmethod
    def _real_name(fullname):
        return f"{__name__}.{MOVED[fullname.partition('.')[2]]}"


if not any(isinstance(finder, _OldName) for finder in sys.meta_path):
    sys.meta_path.append(_OldName())


def __getattr__(name):  # `course_utils.training` as an attribute, before anything imported it
    if name in MOVED:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
