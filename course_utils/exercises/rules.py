"""The rules every exercise follows, in one place: `python -m course_utils.exercises verify` and the tests use them."""

from __future__ import annotations

import ast
import difflib
import functools
import io
import re
import tokenize
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

from course_utils.exercises.framework import Exercise
from course_utils.exercises.isolation import try_code

MIN_WRONG_ANSWERS = 2
MIN_PER_LESSON = 3
SECONDS = 300.0  # the course's own code: a limit only so that a checker that hangs fails instead
MIN_HINTS = 2
STATEMENT_LABELS = ("In", "Out", "Use", "Correct means", "Reread")  # the contract's lines, in this order
TRANSCRIPTION = 0.7  # a solution this similar to a stretch of a lesson's code cell retypes it instead of using it
PUBLIC_NAME = re.compile(r"^(LESSON|EXERCISES|EX_\d+|SOLUTION_\d+|HINT_\d+|check_\w+)$")


@dataclass
class Report:
    """How many checks passed, and one line per broken rule."""

    passed: int = 0
    failures: list[str] = field(default_factory=list)

    def judge(self, *rules: tuple[bool, str]) -> None:
        """(broken, message) pairs in order: the first broken one is recorded as the failure; none broken is a pass."""
        broken = [message for failed, message in rules if failed]
        if broken:
            self.failures.append(broken[0])
        else:
            self.passed += 1

    def add(self, other: Report) -> Report:
        """This report with the other's counts and failures added."""
        self.passed += other.passed
        self.failures += other.failures
        return self


def check_exercise(exercise: Exercise) -> Report:
    """Every rule for one exercise: solution, alternatives, wrong answers, template, statement, hint."""
    report = Report()
    for rule in (_correct_answers, _wrong_answers, _template, _statement, _hints):
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
    """The solution and every alternative are correct and say what was tested; an alternative is really different.

    A challenge's solution trains a model on the lesson's data, so it runs where that data is: in the lesson, at the
    ci profile in the tests (a strict check) and at the default profile in the course run; here, only that the
    settings its check cell passes are the ones the rules use.
    """
    report = Report()
    if exercise.challenge:
        report.judge((not exercise.settings or set(exercise.settings) != set(exercise.rule_settings),
                      f"{exercise.id}: a challenge passes its notebook's settings to the check (settings) and the "
                      f"rules need a value for each (rule_settings): {exercise.settings} vs {exercise.rule_settings}"))
        return report
    if not exercise.alternatives:
        report.failures.append(f"{exercise.id}: no alternative correct answer registered")
    for i, code in enumerate([exercise.solution, *exercise.alternatives]):
        label = f"{exercise.id} solution" if i == 0 else f"{exercise.id} alternative {i}"
        if i and code.strip() == exercise.solution.strip():
            report.failures.append(f"{label}: the same code as the solution")
        result = try_code(exercise, code, label, SECONDS)
        report.judge((result.status != "correct", f"{label}: {result.status}: {result.message}"),
                     (not result.message, f"{label}: correct, but the checker does not say what it tested"))
    return report


def _wrong_answers(exercise: Exercise) -> Report:
    """Enough wrong answers, each caught with its own message and a hint where to reread."""
    report = Report()
    if len(exercise.wrong_answers) < MIN_WRONG_ANSWERS:
        report.failures.append(f"{exercise.id}: fewer than {MIN_WRONG_ANSWERS} wrong answers registered")
    for i, (code, fragment) in enumerate(exercise.wrong_answers, 1):
        label = f"{exercise.id} wrong answer {i}"
        result = try_code(exercise, code, label, SECONDS)
        report.judge((result.status not in ("mistake", "error") or fragment not in result.message,
                      f"{label}: expected a message with {fragment!r}, got {result.status}: {result.message}"),
                     (not result.hint, f"{label}: caught, but with no hint where to reread"))
    return report


def _template(exercise: Exercise) -> Report:
    """The answer cell as first shown defines the name, raises NotImplementedError, and counts as not attempted."""
    report = Report()
    if "NotImplementedError" not in exercise.template or exercise.name not in exercise.template:
        report.failures.append(f"{exercise.id} template: it must define {exercise.name} and raise "
                               "NotImplementedError")
    result = try_code(exercise, exercise.template, f"{exercise.id} template", SECONDS)
    report.judge((result.status != "not attempted",
                  f"{exercise.id} template: expected 'not attempted', got {result.status}: {result.message}"))
    return report


def _statement(exercise: Exercise) -> Report:
    """One format: what to write (naming the answer), then the contract's lines In, Out, Use, Correct means, Reread."""
    report = Report()
    blocks = exercise.statement.strip().split("\n\n")
    if f"`{exercise.name}" not in blocks[0]:
        report.failures.append(f"{exercise.id} statement: its first paragraph must name `{exercise.name}`")
    bullets = [line for line in blocks[-1].splitlines() if line.startswith("- **")]
    labels = [line[4:].split(":**", 1)[0] for line in bullets]
    wanted = ", ".join(f"- **{label}:**" for label in STATEMENT_LABELS)
    report.judge((len(blocks) < 2 or tuple(labels) != STATEMENT_LABELS,
                  f"{exercise.id} statement: it must end with the lines {wanted} (found {labels})"),
                 (not bullets or "section" not in bullets[-1],
                  f"{exercise.id} statement: the Reread line must name the lesson section"))
    return report


def _hints(exercise: Exercise) -> Report:
    """At least two hint tiers, all different, none that hands over a line of the solution."""
    report = Report()
    tiers = exercise.hints()
    solution_lines = {line.split("#")[0].strip() for line in exercise.solution.splitlines()}
    given_away = [line for line in solution_lines if len(line) >= 25 and any(line in tier for tier in tiers)]
    report.judge((not exercise.hint, f"{exercise.id}: no hint (the first: the section to reread)"),
                 (len(tiers) < MIN_HINTS or len(set(tiers)) < len(tiers),
                  f"{exercise.id}: {len(set(tiers))} different hints, at least {MIN_HINTS} wanted "
                  "(hint=the section to reread, more_hints=[more specific ones])"),
                 (bool(given_away), f"{exercise.id}: a hint gives away the solution's line {given_away[:1]}"))
    return report


def check_module(module: ModuleType) -> Report:
    """One layout for every lesson module: EX_<n>, SOLUTION_<n>, HINT_<n>, check_<answer name>; the rest private."""
    report = Report()
    name = module.__name__.rsplit(".", 1)[-1]
    for exercise in module.EXERCISES:
        n = exercise.id.split(".")[1]
        if getattr(module, f"EX_{n}", None) is not exercise:
            report.failures.append(f"{name}: exercise {exercise.id} is not named EX_{n}")
        if getattr(module, f"SOLUTION_{n}", None) != exercise.solution:
            report.failures.append(f"{name}: exercise {exercise.id}'s solution is not SOLUTION_{n}")
        checker = getattr(exercise.checker, "__name__", "")
        wanted = "check_" + re.sub(r"(?<!^)(?=[A-Z][a-z])", "_", exercise.name).lower()
        if checker != wanted or getattr(exercise.checker, "__module__", "") != module.__name__:
            report.failures.append(f"{name}: exercise {exercise.id}'s checker is {checker!r}, wanted {wanted!r} "
                                   "defined in the module")
    tree = ast.parse(Path(module.__file__).read_text(encoding="utf-8"))
    for node in tree.body:
        targets = [node.name] if isinstance(node, (ast.FunctionDef, ast.ClassDef)) else \
            [t.id for t in getattr(node, "targets", [getattr(node, "target", None)]) if isinstance(t, ast.Name)]
        for target in targets:
            if not target.startswith("_") and not PUBLIC_NAME.match(target):
                report.failures.append(f"{name}: module-level name {target!r} is neither part of the layout "
                                       "(LESSON, EXERCISES, EX_n, SOLUTION_n, HINT_n, check_...) nor private (_name)")
    if not report.failures:
        report.passed += 1
    return report


@functools.cache  # every solution is compared with the same cells: each is tokenized once
def code_tokens(source: str) -> tuple[str, ...]:
    """The tokens of Python source without comments, docstrings and layout; () for source that does not tokenize."""
    skip = {tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT, tokenize.ENDMARKER}
    try:
        return tuple(t.string for t in tokenize.generate_tokens(io.StringIO(source).readline)
                     if t.type not in skip and not (t.type == tokenize.STRING and t.string.startswith(('"""', "'''"))))
    except (tokenize.TokenError, IndentationError, SyntaxError):
        return ()


@functools.cache
def _token_counts(source: str) -> Counter:
    return Counter(code_tokens(source))


def transcription(solution: str, cells: dict[str, str], floor: float = 0.0) -> tuple[float, str]:
    """How closely the solution retypes some stretch of a code cell: the best difflib ratio of its tokens against
    every same-length stretch of every cell's tokens, and that cell's name (stretches that cannot reach floor are
    skipped: the tokens two sequences share bound their ratio)."""
    wanted = code_tokens(solution)
    size, need = len(wanted), Counter(wanted)
    best, where = floor, ""
    matcher = difflib.SequenceMatcher(None, wanted, autojunk=False)
    for cell_name, source in cells.items():
        tokens = code_tokens(source)
        if not size or sum((need & _token_counts(source)).values()) / size <= best:
            continue  # no stretch of this cell can beat the best so far
        window: Counter = Counter()
        shared = 0  # tokens the window shares with the solution, kept up to date as the window slides
        for end, token in enumerate(tokens):
            window[token] += 1
            shared += window[token] <= need[token]
            if end >= size:
                old = tokens[end - size]
                shared -= window[old] <= need[old]
                window[old] -= 1
            if end + 1 >= min(size, len(tokens)) and shared / size > best:
                matcher.set_seq2(tokens[max(0, end + 1 - size):end + 1])
                if matcher.ratio() > best:
                    best, where = matcher.ratio(), cell_name
    return (best, where) if where else (0.0, "")


def check_originality(exercises: Iterable[Exercise], cells: dict[str, str]) -> Report:
    """No reference solution is a near-copy of a lesson's code cell: an exercise asks to use an idea, not retype it."""
    report = Report()
    for exercise in exercises:
        score, where = transcription(exercise.solution, cells, floor=TRANSCRIPTION - 0.05)
        report.judge((score >= TRANSCRIPTION, f"{exercise.id}: its solution retypes {where} (token similarity "
                                              f"{score:.2f}, below {TRANSCRIPTION} wanted): ask for the idea on a "
                                              "new case"))
    return report
