"""Shared fixtures: the offline mirror, an isolated data cache, a headless matplotlib."""

import os
from pathlib import Path

import matplotlib
import pytest

matplotlib.use("Agg")

from course_utils.core.devices import set_threads
from course_utils.datasets.sources import DATA_DIR_ENV, MIRROR_ENV, PROJECT_ROOT

set_threads(int(os.environ.get("COURSE_THREADS", "1")))  # tests use small models: one thread is fastest


@pytest.fixture(scope="session")
def mirror() -> Path:
    """The offline dataset mirror ($COURSE_DATA_MIRROR, else ../shared/datasets beside the project)."""
    path = Path(os.environ.get(MIRROR_ENV) or PROJECT_ROOT.parent / "shared" / "datasets")
    if not (path / "mnist").is_dir():
        pytest.skip(f"no dataset mirror at {path}; set {MIRROR_ENV}")
    return path


@pytest.fixture
def empty_cache(tmp_path, monkeypatch) -> Path:
    """A fresh, empty dataset cache folder used instead of data/."""
    cache = tmp_path / "cache"
    monkeypatch.setenv(DATA_DIR_ENV, str(cache))
    return cache


# --- exported artifacts, built once per session (an export takes seconds; Lite0's about ten) ---

TINY_CLASS_NAMES = ["cat", "dog", "fox", "owl", "yak"]


def tiny_pipeline():
    """A small conv net in an InferencePipeline (input 32, resize 36): the artifact most tests use."""
    import torch
    from torch import nn

    from course_utils.deploy import pipeline

    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                          nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, len(TINY_CLASS_NAMES)))
    with torch.no_grad():  # BatchNorm with non-trivial statistics, so eval mode matters
        model[1].running_mean.uniform_(-0.5, 0.5)
        model[1].running_var.uniform_(0.5, 2.0)
    return pipeline.InferencePipeline(model, TINY_CLASS_NAMES, 32, (0.5, 0.4, 0.3), (0.2, 0.25, 0.3), 36).eval()


@pytest.fixture(scope="session")
def tiny_artifacts(tmp_path_factory):
    """{"pipe", "program", "pt2", "onnx"}: the tiny pipeline, its ExportedProgram and both artifact files."""
    from course_utils.deploy import pipeline

    pipe = tiny_pipeline()
    folder = tmp_path_factory.mktemp("tiny_artifacts")
    program = pipeline.export_pipeline(pipe)
    metadata = pipe.metadata(validated_accuracy=0.5)
    return {"pipe": pipe, "program": program, "metadata": metadata,
            "pt2": pipeline.save_artifact(program, metadata, folder / "tiny.pt2"),
            "onnx": pipeline.export_onnx(pipe, metadata, folder / "tiny.onnx")}


# The costliest files of `make test` first (seconds of its two workers, measured in two fresh clones on 2026-12-07:
# 50, 47, 45, 37, 34, 28, 26, 25, 21, 20, 19, 18, 17). With `--dist loadfile --no-loadscope-reorder` a worker takes
# the next file whenever it is free, so a long file started last would leave the other worker idle at the end.
# Only the order changes: a stale name here costs time, never a test.
SLOW_FIRST = ("13_inference_pipeline.ipynb", "test_runner.py", "16_distributed.ipynb", "test_site.py",
              "test_exercise_isolation.py", "12c_sentiment_lstm.ipynb", "11_batch_norm.ipynb", "test_browser.py",
              "test_predict.py", "09_cnn.ipynb", "test_exercises.py", "test_distributed.py", "test_pipeline.py")


def pytest_collection_modifyitems(items):
    """Run SLOW_FIRST's files first, in that order; the sort is stable, so each file keeps its own order."""
    rank = {name: place for place, name in enumerate(SLOW_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(SLOW_FIRST)))
