"""The rules every exercise follows, in one place: `python -m course_utils.exercises verify` and the tests use them."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from course_utils.exercises.framework import Exercise
from course_utils.exercises.isolation import try_code

MIN_WRONG_ANSWERS = 2
MIN_PER_LESSON = 3
SECONDS = 300.0  # the course's own code: a limit only so that a checker that hangs fails instead


@dataclass
class Report:
    """How many checks passed, and one line per broken rule."""

    passed: int = 0
    failures: list[str] = field(default_factory=list)

    def add(self, other: Report) -> Report:
        """This report with the other's counts and failures added."""
        self.passed += other.passed
        self.failures += other.failures
        return self


def check_exercise(exercise: Exercise) -> Report:
    """Every rule for one exercise: solution, alternatives, wrong answers, template, statement, hint."""
    report = Report()
    for rule in (_correct_answers, _wrong_answers, _template, _statement_and_hint):
        report.add(rule(exercise))
    return report


def check_course(exercises: Iterable[Exercise], notebook_stems: Iterable[str]) -> Report:
    """The rules across exercises: each names a lesson notebook that exists, each lesson has enough of them."""
    exercises, stems = list(exercises), set(notebook_stems)
    report = Report()
    report.failures += [f"{e.id}: its lesson {e.lesson!r} has no notebook" for e in exercises if e.lesson not in stems]
    per_lesson = Counter(e.lesson for e in exercises)
    report.failures += [f"lesson {lesson}: {count} exercises, at least {MIN_PER_LESSON} wanted"
                        for lesson, count in per_lesson.items() if count < MIN_PER_LESSON]
    return report


def check_all(exercises: Iterable[Exercise], notebook_stems: Iterable[str]) -> Report:
    """Every rule for every exercise and across them (what `verify` prints)."""
    exercises = list(exercises)
    report = check_course(exercises, notebook_stems)
    for exercise in exercises:
        report.add(check_exercise(exercise))
    return report


def _correct_answers(exercise: Exercise) -> Report:
    """The solution and every alternative are correct and say what was tested; an alternative is really different."""
    report = Report()
    if not exercise.alternatives:
        report.failures.append(f"{exercise.id}: no alternative correct answer registered")
    for i, code in enumerate([exercise.solution, *exercise.alternatives]):
        label = f"{exercise.id} solution" if i == 0 else f"{exercise.id} alternative {i}"
        if i and code.strip() == exercise.solution.strip():
            report.failures.append(f"{label}: the same code as the solution")
        result = try_code(exercise, code, label, SECONDS)
        if result.status != "correct":
            report.failures.append(f"{label}: {result.status}: {result.message}")
        elif not result.message:
            report.failures.append(f"{label}: correct, but the checker does not say what it tested")
        else:
            report.passed += 1
    return report


def _wrong_answers(exercise: Exercise) -> Report:
    """Enough wrong answers, each caught with its own message and a hint where to reread."""
    report = Report()
    if len(exercise.wrong_answers) < MIN_WRONG_ANSWERS:
        report.failures.append(f"{exercise.id}: fewer than {MIN_WRONG_ANSWERS} wrong answers registered")
    for i, (code, fragment) in enumerate(exercise.wrong_answers, 1):
        label = f"{exercise.id} wrong answer {i}"
        result = try_code(exercise, code, label, SECONDS)
        if result.status not in ("mistake", "error") or fragment not in result.message:
            report.failures.append(f"{label}: expected a message with {fragment!r}, got {result.status}: "
                                   f"{result.message}")
        elif not result.hint:
            report.failures.append(f"{label}: caught, but with no hint where to reread")
        else:
            report.passed += 1
    return report


def _template(exercise: Exercise) -> Report:
    """The answer cell as first shown defines the name, raises NotImplementedError, and counts as not attempted."""
    report = Report()
    if "NotImplementedError" not in exercise.template or exercise.name not in exercise.template:
        report.failures.append(f"{exercise.id} template: it must define {exercise.name} and raise "
                               "NotImplementedError")
    result = try_code(exercise, exercise.template, f"{exercise.id} template", SECONDS)
    if result.status == "not attempted":
        report.passed += 1
    else:
        report.failures.append(f"{exercise.id} template: expected 'not attempted', got {result.status}: "
                               f"{result.message}")
    return report


def _statement_and_hint(exercise: Exercise) -> Report:
    """The statement is a contract ('Correct means ...') ending with the section to read; the exercise has a hint."""
    report = Report()
    last_paragraph = exercise.statement.strip().split("\n\n")[-1]
    if "Correct means" not in exercise.statement:
        report.failures.append(f"{exercise.id} statement: no 'Correct means ...' (what the check tests)")
    if "section" not in last_paragraph:
        report.failures.append(f"{exercise.id} statement: its last paragraph must name the lesson section to read")
    if not exercise.hint:
        report.failures.append(f"{exercise.id}: no hint (the section an answer that raises is sent to)")
    return report
