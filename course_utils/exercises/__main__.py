"""Command line: list the exercises, verify solutions and wrong answers, show progress, inject the notebook cells."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import nbformat

from course_utils.core.files import atomic_write, drop_stdout
from course_utils.exercises import EXERCISES, MODULES
from course_utils.exercises.framework import STRICT_ENV, Result, seed
from course_utils.exercises.isolation import CHECK_SECONDS, Job, check_in_children
from course_utils.exercises.notebooks import answer_cells, inject, lesson_code_cells, up_to_date
from course_utils.exercises.rules import check_all, check_module, check_originality
from course_utils.paths import NOTEBOOKS, WORKSPACE
from course_utils.tools.workspace import BACKUPS  # refresh's copies of replaced lessons, not lessons

NOTEBOOKS_DIR = NOTEBOOKS
PROG = "python -m course_utils.exercises"


class UsageError(Exception):
    """A bad input the user can fix: main() prints it as one line and exits with status 2."""


def default_workspace() -> Path:
    """Where the learner's working copies live: workspace/."""
    return WORKSPACE


def read_notebook(path: Path):
    """The notebook at path; UsageError naming the file if it is not one that nbformat can read."""
    try:
        return nbformat.read(path, as_version=4)
    except (ValueError, KeyError, AttributeError, TypeError, nbformat.ValidationError) as err:
        # ValueError covers nbformat's NotJSONError and undecodable bytes; the others, JSON that is no notebook
        raise UsageError(f"{path} is not a notebook that can be read ({type(err).__name__}: "
                         f"{str(err).strip()[:80]}): repair it or move it out of the folder "
                         "(`make lab` copies a missing lesson back)") from None


def checked_seed() -> int:
    """$COURSE_EXERCISES_SEED; a bad one would make every check fail alike, so it is refused before any runs."""
    try:
        return seed()
    except ValueError as err:
        raise UsageError(str(err)) from None


def cmd_list(args) -> int:
    """One line per exercise: id, lesson, title."""
    width = max((len(e.lesson) for e in EXERCISES.values()), default=0)
    for exercise in EXERCISES.values():
        print(f"{exercise.id:<6} {exercise.lesson:<{width}}  {exercise.title}")
    return 0


def cmd_verify(args) -> int:
    """Every rule for every exercise (course_utils.exercises.rules): print each failure, then the counts."""
    checked_seed()
    lessons = sorted(NOTEBOOKS_DIR.glob("*.ipynb"))
    report = check_all(EXERCISES.values(), (p.stem for p in lessons))
    for module in MODULES:
        report.add(check_module(module))
    report.add(check_originality(EXERCISES.values(), lesson_code_cells(lessons)))
    for failure in report.failures:
        print("FAIL", failure)
    print(f"{report.passed} passed, {len(report.failures)} failed")
    return 1 if report.failures else 0


def unsolved_line(exercise_id: str, result: Result) -> str:
    """'    01.2 timed out: took longer than ...': why one attempted answer is not (yet) solved."""
    first = (result.message.strip().splitlines() or [""])[0]
    return f"    {exercise_id} {result.status}: {first[:150]}{'...' if len(first) > 150 else ''}"


def check_answers(jobs: list[Job], seconds: float) -> list[Result]:
    """One Result per job: an untouched template is not attempted (verify proves it), the rest checked in a child."""
    untouched = [job.code.strip() == EXERCISES[job.exercise_id].template.strip() for job in jobs]
    # one child process per notebook, as a kernel runs one notebook; none where nothing was attempted
    checked = iter(check_in_children([job for job, skip in zip(jobs, untouched) if not skip], seconds))
    return [Result("not attempted", "") if skip else next(checked) for skip in untouched]


def cmd_progress(args) -> int:
    """Per lesson notebook in the workspace: how many of its exercises the learner's answers solve, and why not."""
    checked_seed()
    workspace = Path(args.workspace) if args.workspace else default_workspace()
    paths = sorted(p for p in workspace.glob("**/*.ipynb")
                   if ".ipynb_checkpoints" not in p.parts and p.relative_to(workspace).parts[0] != BACKUPS)
    if not paths:
        print(f"no notebooks in {workspace} yet: `make lab` creates your working copies there")
        return 0
    answers = {path: answer_cells(read_notebook(path)) for path in paths}  # every file readable before any check
    os.environ.pop(STRICT_ENV, None)  # progress counts, it never raises
    solved_total = count_total = 0
    for path, cells in answers.items():
        jobs = [Job(i, code, f"{path.stem} {i}") for i, code in cells.items()
                if i in EXERCISES and not EXERCISES[i].challenge]
        challenges = [i for i in cells if i in EXERCISES and EXERCISES[i].challenge]
        if challenges:  # they train on the lesson's data, which only the notebook has
            print(f"{path.stem:<28} challenge {', '.join(challenges)}: its check cell in the notebook measures "
                  "your model", flush=True)
        if not jobs:
            continue
        results = check_answers(jobs, args.timeout)
        solved = sum(result.status == "correct" for result in results)
        print(f"{path.stem:<28} {solved}/{len(jobs)} solved", flush=True)
        for job, result in zip(jobs, results):
            if result.status not in ("correct", "not attempted"):
                print(unsolved_line(job.exercise_id, result), flush=True)
        solved_total, count_total = solved_total + solved, count_total + len(jobs)
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
        notebook = read_notebook(path)
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


def seconds(text: str) -> float:
    """A positive number of seconds (argparse type)."""
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive number of seconds, e.g. --timeout 30")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The command line: list, verify, progress, inject."""
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("list", help="one line per exercise: id, lesson, title").set_defaults(run=cmd_list)
    commands.add_parser("verify", help="every solution correct, every wrong answer its message").set_defaults(
        run=cmd_verify)
    progress = commands.add_parser("progress", help="exercises solved per lesson in your working copies")
    progress.add_argument("--workspace", help="folder of your notebooks (default: the lab's workspace)")
    progress.add_argument("--timeout", type=seconds, default=CHECK_SECONDS,
                          help=f"seconds one answer may take before it counts as unsolved (default {CHECK_SECONDS:g})")
    progress.set_defaults(run=cmd_progress)
    injecting = commands.add_parser("inject", help="regenerate the Exercises section of every lesson notebook")
    injecting.add_argument("--check", action="store_true", help="only report notebooks that are out of date")
    injecting.set_defaults(run=cmd_inject)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one command; an expected failure is one line on stderr and exit status 2."""
    args = build_parser().parse_args(argv)
    try:
        status = args.run(args)
        sys.stdout.flush()  # here, so that a reader that has gone (`| head -1`) is seen below, not at exit
        return status
    except BrokenPipeError:  # `... | head -1`: output nobody reads is dropped
        return drop_stdout()
    except UsageError as err:
        print(f"{PROG} {args.command}: {err}", file=sys.stderr)
        return 2
    except OSError as err:  # a file or folder that cannot be read or written; the message names it
        print(f"{PROG} {args.command}: {err}: check that it exists and that you may read and write it",
              file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
