"""The project's folders, defined once: its root, the lessons, the learner's working copies, the runs. Stdlib only."""

from __future__ import annotations

from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]  # course_utils/paths.py -> the checkout
NOTEBOOKS = PROJECT_ROOT / "notebooks"  # the lessons as committed, with the runner's outputs
WORKSPACE = PROJECT_ROOT / "workspace"  # the learner's copies: git-ignored, never run by the tests
RUNS = PROJECT_ROOT / "runs"  # the main job's run folders (git-ignored)
