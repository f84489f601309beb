"""Headline metrics of a lesson: recorded for the main job's summary, checked against floors."""

from __future__ import annotations

import json
import os
from pathlib import Path

from course_utils.core.files import atomic_write

METRICS_ENV = "COURSE_METRICS_FILE"


def record(**metrics: float | int | str) -> dict:
    """Print the metrics and merge them into $COURSE_METRICS_FILE when the runner set it."""
    for name, value in metrics.items():
        print(f"{name}: {value:.4f}" if isinstance(value, float) else f"{name}: {value}")
    target = os.environ.get(METRICS_ENV)
    if target:
        path = Path(target)
        merged = json.loads(path.read_text()) if path.exists() else {}
        merged.update(metrics)
        atomic_write(path, json.dumps(merged, indent=1))
    return metrics


def check_at_least(name: str, value: float, floor: float) -> None:
    """Fail loudly when `value` is below `floor`."""
    if not value >= floor:  # also catches NaN
        raise AssertionError(f"{name} = {value:.4f} is below the floor of {floor}: this lesson did not work")
    print(f"check passed: {name} = {value:.4f} >= {floor}")


def check_at_most(name: str, value: float, ceiling: float) -> None:
    """Fail loudly when `value` is above `ceiling`."""
    if not value <= ceiling:
        raise AssertionError(f"{name} = {value:.4f} is above the ceiling of {ceiling}: this lesson did not work")
    print(f"check passed: {name} = {value:.4f} <= {ceiling}")
