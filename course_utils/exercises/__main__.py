"""Command line: list the exercises, verify solutions and wrong answers, show progress, inject the notebook cells."""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import signal
import sys
import threading
from pathlib import Path

import nbformat

from course_utils.core.files import atomic_write
from course_utils.datasets.sources import PROJECT_ROOT
from course_utils.exercises import EXERCISES
from course_utils.exercises.framework import STRICT_ENV, exec_answer, run_check
from course_utils.exercises.notebooks import answer_cells, inject, up_to_date

NOTEBOOKS_DIR = PROJECT_ROOT / "notebooks"
CHECK_SECONDS = 10  # a learner's answer that loops forever counts as unsolved, it does not hang progress


def default_workspace() -> Path:
    """Where the learner's working copies live (course_utils.tools.lab.WORKSPACE, else workspace/)."""
    try:
        from course_utils.tools.lab import WORKSPACE
    except ImportError:
        return PROJECT_ROOT / "workspace"
    return Path(WORKSPACE)


@contextlib.contextmanager
def time_limit(seconds: int):
    """Raise TimeoutError in the block after `seconds` (where SIGALRM exists; elsewhere no limit)."""
    if not hasattr(signal, "SIGALRM") or threading.current_thread() is not threading.main_thread():
        yield  # signals reach only the main thread
        return

    def expire(signum, frame):
        raise TimeoutError(f"took longer than {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def try_code(exercise, code: str, label: str):
    """Run answer code through its exercise's check quietly; return the Result (status 'error' if the code fails)."""
    from course_utils.exercises.framework import Result
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        try:
            with time_limit(CHECK_SECONDS):
                answer = exec_answer(code, exercise.name, label)
                return run_check(exercise, answer)
        except NotImplementedError:
            return Result("not attempted", "")
        except (Exception, SystemExit) as err:  # noqa: BLE001 - an answer that does not even run is unsolved
            return Result("error", f"{type(err).__name__}: {err}")


def cmd_list(args) -> int:
    width = max((len(e.lesson) for e in EXERCISES.values()), default=0)
    for exercise in EXERCISES.values():
        print(f"{exercise.id:<6} {exercise.lesson:<{width}}  {exercise.title}")
    return 0


def cmd_verify(args) -> int:
    """Every solution and alternative is correct; every wrong answer gets its own message."""
    passed, failures = 0, []
    for exercise in EXERCISES.values():
        for i, code in enumerate([exercise.solution, *exercise.alternatives]):
            label = f"{exercise.id} solution" if i == 0 else f"{exercise.id} alternative {i}"
            result = try_code(exercise, code, label)
            if result.status == "correct":
                passed += 1
            else:
                failures.append(f"{label}: {result.status}: {result.message}")
        if not exercise.alternatives:
            failures.append(f"{exercise.id}: no alternative correct answer registered")
        if len(exercise.wrong_answers) < 2:
            failures.append(f"{exercise.id}: fewer than 2 wrong answers registered")
        for i, (code, fragment) in enumerate(exercise.wrong_answers, 1):
            label = f"{exercise.id} wrong answer {i}"
            result = try_code(exercise, code, label)
            if result.status in ("mistake", "error") and fragment in result.message:
                passed += 1
            else:
                failures.append(f"{label}: expected a message with {fragment!r}, got {result.status}: {result.message}")
        template = try_code(exercise, exercise.template, f"{exercise.id} template")
        if template.status == "not attempted":
            passed += 1
        else:
            failures.append(f"{exercise.id} template: expected 'not attempted', got {template.status}: "
                            f"{template.message}")
    for failure in failures:
        print("FAIL", failure)
    print(f"{passed} passed, {len(failures)} failed")
    return 1 if failures else 0


def cmd_progress(args) -> int:
    """Per lesson notebook in the workspace: how many of its exercises the learner's answers solve."""
    workspace = Path(args.workspace) if args.workspace else default_workspace()
    notebooks = sorted(p for p in workspace.glob("**/*.ipynb") if ".ipynb_checkpoints" not in p.parts)
    if not notebooks:
        print(f"no notebooks in {workspace} yet: `make lab` creates your working copies there")
        return 0
    os.environ.pop(STRICT_ENV, None)  # progress counts, it never raises
    solved_total = count_total = 0
    for path in notebooks:
        answers = answer_cells(nbformat.read(path, as_version=4))
        known = {i: code for i, code in answers.items() if i in EXERCISES}
        if not known:
            continue
        solved = sum(try_code(EXERCISES[i], code, f"{path.stem} {i}").status == "correct" for i, code in known.items())
        print(f"{path.stem:<28} {solved}/{len(known)} solved")
        solved_total, count_total = solved_total + solved, count_total + len(known)
    print(f"{'total':<28} {solved_total}/{count_total} solved")
    return 0


def cmd_inject(args) -> int:
    """Rewrite (or with --check, only compare) the Exercises section of every lesson notebook."""
    lessons = {e.lesson for e in EXERCISES.values()}
    paths = sorted(p for p in NOTEBOOKS_DIR.glob("*.ipynb") if p.stem[0].isalnum())
    missing = lessons - {p.stem for p in paths}
    if missing:
        print(f"exercises name lessons with no notebook: {sorted(missing)}", file=sys.stderr)
        return 1
    stale = []
    for path in paths:
        notebook = nbformat.read(path, as_version=4)
        if up_to_date(notebook, path.stem):
            continue
        stale.append(path.name)
        if not args.check:
            atomic_write(path, nbformat.writes(inject(notebook, path.stem)) + "\n")  # never half a notebook
    if args.check:
        if stale:
            print(f"Exercises section out of date in {', '.join(stale)}: run "
                  "`python -m course_utils.exercises inject`", file=sys.stderr)
            return 1
        print(f"all {len(paths)} notebooks up to date")
        return 0
    print(f"updated {len(stale)} notebooks: {', '.join(stale) or 'none'}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m course_utils.exercises", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("list", help="one line per exercise: id, lesson, title").set_defaults(run=cmd_list)
    commands.add_parser("verify", help="every solution correct, every wrong answer its message").set_defaults(
        run=cmd_verify)
    progress = commands.add_parser("progress", help="exercises solved per lesson in your working copies")
    progress.add_argument("--workspace", help="folder of your notebooks (default: the lab's workspace)")
    progress.set_defaults(run=cmd_progress)
    injecting = commands.add_parser("inject", help="regenerate the Exercises section of every lesson notebook")
    injecting.add_argument("--check", action="store_true", help="only report notebooks that are out of date")
    injecting.set_defaults(run=cmd_inject)
    args = parser.parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
