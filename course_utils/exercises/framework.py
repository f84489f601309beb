"""The exercise machinery: the Exercise record, the Mistake a checker raises, the check runner, comparison helpers."""

from __future__ import annotations

import contextlib
import inspect
import linecache
import os
import re
import traceback
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from course_utils.exercises.state import standard_settings

PRELUDE = "import math\nimport torch\nfrom torch import nn\nimport torch.nn.functional as F\n"
STRICT_ENV = "COURSE_EXERCISES_STRICT"  # "1": check() raises AssertionError unless the answer is correct
SEED_ENV = "COURSE_EXERCISES_SEED"  # changes every checker's random inputs (default 0)


class Mistake(Exception):
    """A wrong answer: `message` says what is wrong in plain words, `hint` where the lesson explains it."""

    def __init__(self, message: str, hint: str = ""):
        super().__init__(message)
        self.message, self.hint = message, hint


@dataclass
class Exercise:
    """One exercise: its statement, the answer cell's template, the reference solution and its checker."""

    id: str                                  # "<lesson>.<n>", e.g. "04.2"
    lesson: str                              # the notebook's stem, e.g. "04_fashion_mnist"
    title: str
    statement: str                           # markdown: the contract (signature, shapes, what is forbidden, tolerance)
    name: str                                # what the answer cell defines
    template: str                            # the answer cell as the learner first sees it
    solution: str                            # reference answer: code that defines `name`
    checker: Callable[[Any], str]            # answer -> what was tested; raises Mistake
    wrong_answers: list[tuple[str, str]] = field(default_factory=list)  # (code, fragment of the message it gets)
    alternatives: list[str] = field(default_factory=list)               # other correct answers
    hint: str = ""                           # first hint: the lesson section to reread (used when a Mistake names none)
    more_hints: list[str] = field(default_factory=list)  # later hints, each more specific; never the solution
    # a challenge: the answer is a model trained in the notebook; the check cell passes the notebook's settings
    # (keyword -> parameter name, e.g. {"target": "challenge_target"}), and verify uses rule_settings instead
    challenge: bool = False
    settings: dict[str, str] = field(default_factory=dict)
    rule_settings: dict[str, Any] = field(default_factory=dict)

    def hints(self) -> list[str]:
        """The hint tiers in order: the section to reread first, then the more specific ones."""
        return [h for h in (self.hint, *self.more_hints) if h]


@dataclass
class Result:
    """What one check found: status is correct, not attempted, mistake, error (the learner's code raised) or crash."""

    status: str
    message: str
    hint: str = ""
    note: str = ""  # a global PyTorch setting the answer changed (and the check put back)

    def text(self, exercise_id: str) -> str:
        """The lines check() prints."""
        note = f"\nnote: {self.note}" if self.note else ""
        if self.status == "correct":
            return f"{exercise_id} correct: {self.message}{note}"
        if self.status == "not attempted":
            return f"{exercise_id} not attempted yet{note}"
        return (f"{exercise_id} not yet: {self.message}" + (f"\nhint: {self.hint}" if self.hint else "")
                + f"\nstuck? exercises.hint({exercise_id!r}) gives a nudge; call it again for a more specific one"
                + note)


# ---------------------------------------------------------------- running a check

def _learner_files(answer: Any) -> set[str]:
    """The file names (notebook cells, exec'd strings) that the answer's own code lives in."""
    functions = [answer]
    if isinstance(answer, type):
        functions = [v for klass in answer.__mro__ if klass.__module__ not in ("builtins",)
                     and not klass.__module__.startswith("torch") for v in vars(klass).values()]
    files = set()
    for function in functions:
        function = getattr(function, "__func__", function)  # staticmethod / classmethod
        code = getattr(function, "__code__", None)
        if code is not None:
            files.add(code.co_filename)
    return files


def _learner_line(err: BaseException, files: set[str]) -> str:
    """'line N: <code>' of the innermost traceback frame in the learner's code, or ''."""
    found = ""
    for frame in traceback.extract_tb(err.__traceback__):
        if frame.filename in files:
            code = (frame.line or linecache.getline(frame.filename, frame.lineno)).strip()
            found = f"line {frame.lineno}: {code}" if code else f"line {frame.lineno}"
    return found


def run_check(exercise: Exercise, answer: Any, settings: dict[str, Any] | None = None) -> Result:
    """Run the exercise's checker on the answer and classify the outcome; never raises for the learner's errors.

    The checker runs under PyTorch's standard global settings (float32, grad mode on, ...) whatever the notebook
    set, and every setting the answer changes, the random state included, is put back afterwards.
    """
    files = _learner_files(answer)
    checker_seed = seed()
    with standard_settings() as changed:  # the learner's notebook keeps its own settings and random state
        torch.manual_seed(checker_seed)
        result = _classify(exercise, answer, files, settings or {})
    if changed:
        result.note = (f"your code changed PyTorch's global settings: {'; '.join(changed)}; check() put them back, "
                       "but wherever else your code runs it changes them for all the code after it")
    return result


def _classify(exercise: Exercise, answer: Any, files: set[str], settings: dict[str, Any]) -> Result:
    """The checker's verdict on the answer as a Result."""
    try:
        tested = exercise.checker(answer, **settings)
    except NotImplementedError:
        return Result("not attempted", "")
    except Mistake as mistake:
        return Result("mistake", mistake.message, mistake.hint or exercise.hint)
    except Exception as err:  # noqa: BLE001 - the learner's own exception, reported in plain words
        line = _learner_line(err, files)
        if not line:
            return Result("crash", f"the checker itself failed ({type(err).__name__}: {err}); "
                                   "please report this", exercise.hint)
        message = f"your code raised {type(err).__name__}: {str(err).strip() or '(no message)'}  ({line})"
        return Result("error", message, exercise.hint)
    return Result("correct", tested)


def seed() -> int:
    """$COURSE_EXERCISES_SEED as a whole number, 0 when unset; ValueError naming the variable otherwise."""
    text = os.environ.get(SEED_ENV, "").strip()
    try:
        return int(text or "0")
    except ValueError:
        raise ValueError(f"{SEED_ENV}={text!r} is not a whole number: unset it, or set a number such as "
                         f"{SEED_ENV}=1") from None


def strict() -> bool:
    """Whether check() must raise unless the answer is correct (the runner's --solutions run)."""
    return os.environ.get(STRICT_ENV, "") == "1"


def generator(exercise_id: str, offset: int = 0) -> torch.Generator:
    """A CPU generator seeded from the exercise id and $COURSE_EXERCISES_SEED: fresh inputs, but repeatable."""
    return torch.Generator().manual_seed(zlib.crc32(exercise_id.encode()) + 1000 * seed() + offset)


def randint(gen: torch.Generator, low: int, high: int) -> int:
    """A random whole number in [low, high], both included."""
    return int(torch.randint(low, high + 1, (1,), generator=gen))


def distinct_sizes(gen: torch.Generator, count: int, low: int, high: int) -> list[int]:
    """`count` different whole numbers in [low, high] in random order (a mixed-up dimension then shows in the shape)."""
    return (low + torch.randperm(high - low + 1, generator=gen)[:count]).tolist()


def exec_answer(code: str, name: str, label: str = "answer") -> Any:
    """Run answer code in a fresh namespace that has PRELUDE's imports; return what it defines as `name`."""
    filename = f"<{label}>"
    # registered so that tracebacks (and the error line check() reports) can show the learner's source
    linecache.cache[filename] = (len(code), None, code.splitlines(keepends=True), filename)
    namespace: dict = {"__name__": "__exercise__"}
    exec(PRELUDE, namespace)  # separately, so that line numbers are those of the answer cell
    exec(compile(code, filename, "exec"), namespace)  # running the learner's own cell is the point
    if name not in namespace:
        raise NameError(f"the code does not define {name!r}")
    return namespace[name]


def variant(code: str, *replacements: tuple[str, str]) -> str:
    """`code` with each (old, new) applied in turn; `old` must occur exactly once, so a wrong answer shows its edit."""
    for old, new in replacements:
        count = code.count(old) if old else 0
        if count != 1:
            raise ValueError(f"variant: {old!r} occurs {count} times in the code, it must occur exactly once")
        code = code.replace(old, new)
    return code


def template_of(solution: str) -> str:
    """The answer cell for a solution: every def keeps its signature and docstring, its body becomes a raise."""
    lines, kept, i = solution.split("\n"), [], 0
    while i < len(lines):
        kept.append(lines[i])
        header = re.match(r"(\s*)def .*:\s*$", lines[i])
        i += 1
        if not header:
            continue
        body = header.group(1) + "    "
        if i < len(lines) and lines[i].strip().startswith('"""'):
            kept.append(lines[i])  # a one-line docstring: the contract stays in the cell
            i += 1
        kept.append(body + "raise NotImplementedError  # your code here")
        end = i
        while i < len(lines) and (not lines[i].strip() or lines[i].startswith(body)):
            i += 1
            end = i if lines[i - 1].strip() else end
        kept.extend([""] * (i - end))  # the blank lines between this def and what follows
    return "\n".join(kept)


# ---------------------------------------------------------------- helpers for checkers

def describe(value: Any) -> str:
    """A few words for what a value is: 'a float32 tensor of shape (2, 3)', 'None', 'a list'."""
    if isinstance(value, torch.Tensor):
        return f"a {str(value.dtype).removeprefix('torch.')} tensor of shape {tuple(value.shape)}"
    if value is None:
        return "None"
    return f"a {type(value).__name__}"


def expect_subclass(answer: Any, base: type, name: str, hint: str = "", *, base_name: str = "",
                    why: str = "") -> None:
    """Raise Mistake unless `answer` is a class derived from `base` (named `base_name`, default 'package.Class')."""
    if isinstance(answer, type) and issubclass(answer, base):
        return
    base_name = base_name or f"{base.__module__.split('.')[0]}.{base.__qualname__}"
    found = "a class not derived from it" if isinstance(answer, type) else describe(answer)
    raise Mistake(f"{name} should be a class derived from {base_name}" + (f" ({why})" if why else "")
                  + f", but it is {found}", hint)


def expect_tensor(got: Any, expected: torch.Tensor, what: str = "the result", *, atol: float = 1e-5,
                  rtol: float = 1e-4, hint: str = "", check_dtype: bool = True, equal_nan: bool = False) -> None:
    """Raise Mistake unless `got` is a tensor of the expected shape, dtype and values (atol + rtol * |expected|)."""
    if not isinstance(got, torch.Tensor):
        raise Mistake(f"{what} should be a tensor of shape {tuple(expected.shape)}, but your code returned "
                      f"{describe(got)}" + (" (did you forget `return`?)" if got is None else ""), hint)
    if got.shape != expected.shape:
        raise Mistake(f"{what} has shape {tuple(got.shape)}, expected {tuple(expected.shape)}", hint)
    if check_dtype and got.dtype != expected.dtype:
        raise Mistake(f"{what} has dtype {got.dtype}, expected {expected.dtype}", hint)
    if got.device != expected.device:
        raise Mistake(f"{what} is on device {got.device}, expected {expected.device}", hint)
    got64, expected64 = got.detach().to(torch.float64), expected.detach().to(torch.float64)
    if expected.is_floating_point() or got.is_floating_point():
        close = torch.isclose(got64, expected64, rtol=rtol, atol=atol, equal_nan=equal_nan)
    else:
        close = got64 == expected64
    if not bool(torch.isfinite(got64[torch.isfinite(expected64)]).all()):
        index = (~torch.isfinite(got64) & torch.isfinite(expected64)).nonzero()[0].tolist()
        where = f" at index {tuple(index) if len(index) != 1 else index[0]}" if expected.ndim else ""
        raise Mistake(f"{what} contains {got64[tuple(index)].item()}{where} where "
                      f"{expected64[tuple(index)].item():.6g} was expected (an overflow, a log of 0 or a division "
                      "by 0?)", hint)
    if not bool(close.all()):
        wrong = (~close).nonzero()[0].tolist()
        index = tuple(wrong) if len(wrong) != 1 else wrong[0]
        where = f" at index {index}" if expected.ndim else ""
        count = int((~close).sum())
        share = f" ({count} of {expected.numel()} values differ)" if expected.numel() > 1 else ""
        raise Mistake(f"{what} is wrong{where}: you returned {got64[tuple(wrong)].item():.6g}, expected "
                      f"{expected64[tuple(wrong)].item():.6g}{share}", hint)


def expect_unchanged(before: dict[str, torch.Tensor], after: dict[str, torch.Tensor], hint: str = "") -> None:
    """Raise Mistake if any input tensor (name -> copy made before the call) was changed in place."""
    for name, copy in before.items():
        if not torch.equal(copy, after[name]):
            raise Mistake(f"your code changed its input `{name}` in place; work on a new tensor (no `_` methods "
                          "such as `sub_`, no `x[...] = ...` on the input)", hint)


def _argument_names(function: Callable, args: tuple) -> list[str]:
    """The parameter names the positional arguments bind to ('argument 2' where that is unknown)."""
    try:
        names = list(inspect.signature(function).parameters)
    except (TypeError, ValueError):
        names = []
    return [names[i] if i < len(names) else f"argument {i + 1}" for i in range(len(args))]


def call(function: Callable, *args: Any, hint: str = "", **kwargs: Any) -> Any:
    """Call the learner's function; raise Mistake if it changed a tensor argument in place."""
    tensors = {name: a for name, a in zip(_argument_names(function, args), args) if isinstance(a, torch.Tensor)}
    tensors |= {k: v for k, v in kwargs.items() if isinstance(v, torch.Tensor)}
    before = {name: t.detach().clone() for name, t in tensors.items()}
    result = function(*args, **kwargs)
    expect_unchanged(before, tensors, hint)
    _expect_no_float64(result, [*args, *kwargs.values()], hint)
    return result


def _expect_no_float64(result: Any, inputs: list, hint: str) -> None:
    """Mistake when float32 inputs came back as float64 (a `.double()` or a float64 constant crept in)."""
    inputs_64 = any(isinstance(a, torch.Tensor) and a.dtype == torch.float64 for a in inputs)
    outputs = result if isinstance(result, (tuple, list)) else [result]
    if not inputs_64 and any(isinstance(t, torch.Tensor) and t.dtype == torch.float64 for t in outputs):
        raise Mistake("your code returned a float64 tensor although the inputs are float32: something in it (a "
                      "`.double()`, a `dtype=torch.float64` constant, a NumPy array) switched to float64; keep "
                      "float32", hint)


@contextlib.contextmanager
def forbid(*targets: tuple[Any, str], what: str, hint: str = "",
           why: str = "which this exercise asks you to write yourself"):
    """While active, calling any (owner, attribute) in targets raises Mistake: 'your code called <what>, <why>'."""
    saved = [(owner, attr, getattr(owner, attr)) for owner, attr in targets]

    def refuse(*args, **kwargs):
        raise Mistake(f"your code called {what}, {why}", hint)

    try:
        for owner, attr, _ in saved:
            setattr(owner, attr, refuse)
        yield
    finally:
        for owner, attr, original in saved:
            setattr(owner, attr, original)


@contextlib.contextmanager
def spy(owner: Any, attr: str, *, call_through: bool = True):
    """While active, record every call of owner.attr as (args, kwargs) in the yielded list, and still make it.

    With call_through=False the call is only recorded (and returns None): for a method that cannot run where the
    check calls it, such as a LightningModule's log without a Trainer. A method patched on a class records `self`
    as args[0].
    """
    original, calls = getattr(owner, attr), []

    def recorded(*args, **kwargs):
        calls.append((args, kwargs))
        return original(*args, **kwargs) if call_through else None

    setattr(owner, attr, recorded)
    try:
        yield calls
    finally:
        setattr(owner, attr, original)
