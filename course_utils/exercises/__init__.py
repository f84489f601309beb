"""Exercises at the end of every lesson: check(id, answer) gives specific feedback, solution(id) the reference answer.

Each lesson_<stem>.py module defines EXERCISES = [Exercise(...), ...]; the notebook cells are generated
from them (`python -m course_utils.exercises inject`), so statement, template and checker never drift.
"""
from __future__ import annotations

import importlib
import pkgutil
from typing import Any

from course_utils.exercises.framework import PRELUDE, Exercise, Mistake, Result, run_check
from course_utils.exercises.framework import strict as strict_from_env


def _modules() -> list:
    """The lesson modules (lesson_<prefix>.py), in lesson order."""
    names = sorted(m.name for m in pkgutil.iter_modules(__path__) if m.name.startswith("lesson_"))
    return [importlib.import_module(f"{__name__}.{name}") for name in names]


MODULES = _modules()


def _collect() -> dict[str, Exercise]:
    """Every lesson module's exercises by id, in lesson order; ids must be unique and match their lesson."""
    found: dict[str, Exercise] = {}
    for module in MODULES:
        module_name = module.__name__.rsplit(".", 1)[-1]
        for exercise in module.EXERCISES:
            if exercise.id in found:
                raise ValueError(f"exercise id {exercise.id} is used twice ({module_name})")
            prefix, _, number = exercise.id.partition(".")
            if exercise.lesson.split("_")[0] != prefix or not number.isdigit():
                raise ValueError(f"exercise id {exercise.id!r} does not match its lesson {exercise.lesson!r}: "
                                 "ids are <lesson prefix>.<n>, e.g. 04.2")
            found[exercise.id] = exercise
    return found


EXERCISES: dict[str, Exercise] = _collect()


def get(exercise_id: str) -> Exercise:
    """The exercise with this id; a plain error naming the known ids otherwise."""
    try:
        return EXERCISES[exercise_id]
    except KeyError:
        raise ValueError(f"no exercise {exercise_id!r}; known: {', '.join(EXERCISES)}") from None


def check(exercise_id: str, answer: Any, strict: bool | None = None, **settings: Any) -> None:
    """Check the learner's answer on fresh inputs and print one verdict (strict: raise unless correct).

    strict=None follows $COURSE_EXERCISES_STRICT (the runner's --solutions run sets it). A challenge's check cell
    passes the notebook's settings, e.g. target=challenge_target.
    """
    exercise = get(exercise_id)
    if set(settings) != set(exercise.settings):
        raise TypeError(f"exercises.check({exercise_id!r}, ...) takes the settings {sorted(exercise.settings)}, "
                        f"got {sorted(settings)}: run `make refresh LESSON={exercise_id.split('.')[0]}`")
    result = run_check(exercise, answer, settings)
    text = result.text(exercise_id)
    if (strict_from_env() if strict is None else strict) and result.status != "correct":
        raise AssertionError(f"a strict check (the solutions run) and the answer is not correct:\n{text}")
    print(text)


_hints_given: dict[str, int] = {}  # per exercise, how many hints this kernel has printed


def hint(exercise_id: str) -> None:
    """Print the next hint of one exercise: first the section to reread, at each later call a more specific one."""
    tiers = get(exercise_id).hints()
    given = _hints_given.get(exercise_id, 0)
    shown = min(given, len(tiers) - 1)
    _hints_given[exercise_id] = given + 1
    print(f"{exercise_id} hint {shown + 1} of {len(tiers)}: {tiers[shown]}")
    if shown == len(tiers) - 1:
        print(f"that is the last hint; exercises.solution({exercise_id!r}) prints a reference solution")


def solution(exercise_id: str) -> None:
    """Print the reference solution of one exercise."""
    exercise = get(exercise_id)
    print(f"# {exercise_id} {exercise.title}: a reference solution (other correct answers exist)\n")
    print(exercise.solution.strip())


from course_utils.exercises.notebooks import fill_solutions  # noqa: E402 - needs EXERCISES

__all__ = ["EXERCISES", "MODULES", "PRELUDE", "Exercise", "Mistake", "Result", "check", "fill_solutions", "get", "hint",
           "solution"]
