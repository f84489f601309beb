"""Shared fixtures: the offline mirror, an isolated data cache, a headless matplotlib."""

import os
from pathlib import Path

import matplotlib
import pytest

matplotlib.use("Agg")

from course_utils.core.devices import set_threads  # noqa: E402
from course_utils.datasets.sources import DATA_DIR_ENV, MIRROR_ENV, PROJECT_ROOT  # noqa: E402

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
