"""Argument checks shared by the library and its command lines: check_<what> refuses a bad value. Stdlib only."""

from __future__ import annotations

import os

THREADS_ENV = "COURSE_THREADS"  # PyTorch's CPU thread count for the lessons, the tests and the runner's kernels


def check_count(name: str, value: int) -> int:
    """Validate a count (epochs, steps, batch size, threads, ...) before any work starts: a whole number >= 1."""
    # bool is an int subclass: True would pass as 1 and hide a mistaken argument
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a whole number >= 1, got {value!r}")
    return value


def env_threads() -> int | None:
    """$COURSE_THREADS as a thread count; None when it is unset or empty.

    Anything but a whole number >= 1 is refused.
    """
    value = os.environ.get(THREADS_ENV, "")
    if not value:
        return None
    if not value.isdecimal() or int(value) < 1:  # "2.0", " 2" and "-1" are refused; int() takes what isdecimal passes
        raise ValueError(f"${THREADS_ENV}={value!r} is not a whole number >= 1")
    return int(value)
