"""Headline metrics of a lesson: recorded for the main job's summary, checked against floors."""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path

from course_utils.core.files import atomic_write

METRICS_ENV = "COURSE_METRICS_FILE"
# Notebook metadata key: the run a committed notebook's outputs come from (the runner writes it, the website shows it).
RUN_FACTS = "course_run"


def readable(value: float) -> str:
    """Four decimals, or two significant digits in e-notation for a number .4f would show as 0.0000."""
    return f"{value:.2e}" if value != 0 and abs(value) < 5e-4 else f"{value:.4f}"


def record(**metrics: float | int | str) -> dict:
    """Print the metrics and merge them into $COURSE_METRICS_FILE when the runner set it."""
    for name, value in metrics.items():
        print(f"{name}: {readable(value)}" if isinstance(value, float) else f"{name}: {value}")
    target = os.environ.get(METRICS_ENV)
    if target:
        path = Path(target)
        merged = json.loads(path.read_text()) if path.exists() else {}
        merged.update(metrics)
        atomic_write(path, json.dumps(merged, indent=1))
    return metrics


def require_at_least(name: str, value: float, floor: float) -> None:
    """A lesson's floor: fail loudly when the measured `value` is below `floor`."""
    if not value >= floor:  # also catches NaN
        raise AssertionError(f"{name} = {readable(value)} is below the floor of {floor}: this lesson did not work")
    print(f"check passed: {name} = {readable(value)} >= {floor}")


def require_at_most(name: str, value: float, ceiling: float) -> None:
    """A lesson's ceiling: fail loudly when the measured `value` is above `ceiling`."""
    if not value <= ceiling:
        raise AssertionError(f"{name} = {readable(value)} is above the ceiling of {ceiling}: this lesson did not work")
    print(f"check passed: {name} = {readable(value)} <= {ceiling}")


def check_at_least(name: str, value: float, floor: float) -> None:
    """Deprecated name of require_at_least (release 1.1), kept for notebooks that still use it."""
    warnings.warn("report.check_at_least is deprecated: use report.require_at_least", DeprecationWarning, stacklevel=2)
    require_at_least(name, value, floor)


def check_at_most(name: str, value: float, ceiling: float) -> None:
    """Deprecated name of require_at_most (release 1.1), kept for notebooks that still use it."""
    warnings.warn("report.check_at_most is deprecated: use report.require_at_most", DeprecationWarning, stacklevel=2)
    require_at_most(name, value, ceiling)
