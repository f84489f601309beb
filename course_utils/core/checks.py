"""Argument checks shared by the library and its command lines. Stdlib only."""

from __future__ import annotations


def check_count(name: str, value: int) -> int:
    """Validate a count (epochs, steps, batch size, threads, ...) before any work starts: a whole number >= 1."""
    # bool is an int subclass: True would pass as 1 and hide a mistaken argument
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a whole number >= 1, got {value!r}")
    return value
