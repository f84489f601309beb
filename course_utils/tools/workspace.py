"""The learner's working copy of the lessons: made once, never overwritten, refreshed lesson by lesson.

`prepare_workspace` copies the lessons the working copy lacks and writes its start page; `refresh`
replaces one lesson's copy by the course's, carrying the learner's exercise answers over and keeping
the old copy under workspace/backups/. Standard library only, except nbformat (and the exercises'
answer reader) for `refresh`.
"""

from __future__ import annotations

import itertools
import json
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

from course_utils.core.files import atomic_write  # never half a notebook
from course_utils.paths import NOTEBOOKS, WORKSPACE
from course_utils.tools.jupyter_server import LabError

START_PAGE = "START.md"
BACKUPS = "backups"  # workspace/backups/: every copy refresh replaced, one file each, never overwritten


class UnreadableNotebook(LabError):
    """A file that nbformat cannot read as a notebook (cut short, not JSON, not a notebook)."""


class Refreshed(NamedTuple):
    """What refresh did: the new copy, the old one's backup, the answers carried over, why none could be."""
    copy: Path
    backup: Path | None  # None: there was no copy to replace
    carried: list[str]
    unreadable: str | None = None  # the old copy could not be read: its answers are only in the backup


def _restore_hint(notebook: Path) -> str:
    """Return how to get back a course notebook that cannot be read."""
    return f"restore the course's copy with: git checkout -- {notebook}"


def lessons(folder: Path = NOTEBOOKS) -> list[Path]:
    """The lesson notebooks in a folder, in course order (the runner's rule: alphanumeric first char)."""
    return sorted(p for p in folder.glob("*.ipynb") if p.stem[0].isalnum())


def lesson_title(notebook: Path) -> str:
    """The first heading of a notebook's first markdown cell, as plain text (no code marks)."""
    try:
        cells = json.loads(notebook.read_text(encoding="utf-8"))["cells"]
        markdown = ["".join(cell["source"]).strip() for cell in cells if cell["cell_type"] == "markdown"]
    except (ValueError, KeyError, TypeError) as exc:  # ValueError: not UTF-8 or not JSON
        raise UnreadableNotebook(f"{notebook} is not a readable notebook ({type(exc).__name__}); "
                                 f"{_restore_hint(notebook)}") from exc
    if not markdown or not markdown[0]:
        return notebook.stem
    return markdown[0].splitlines()[0].lstrip("#").strip().replace("`", "")


def start_page(notebooks: Sequence[Path]) -> str:
    """The markdown of the start page: one line per lesson, linked, in order."""
    lines = ["# The PyTorch course: your working copy", "",
             "These notebooks are your own copies: change them, break them, write your answers in",
             "them. The course's originals stay in `notebooks/`; `make refresh LESSON=04` brings",
             "one lesson up to date and keeps your exercise answers. Open a lesson:", ""]
    lines += [f"1. [{lesson_title(p)}]({p.name})" for p in notebooks]
    return "\n".join(lines) + "\n"


def folder(workspace: Path) -> Path:
    """Return the working copy's folder, made if missing; raise LabError when it is a file."""
    if workspace.exists() and not workspace.is_dir():
        raise LabError(f"the working copy {workspace} is a file, not a folder; pass a folder (made if missing)")
    workspace.mkdir(parents=True, exist_ok=True)
    return workspace


def prepare_workspace(workspace: Path = WORKSPACE, source: Path = NOTEBOOKS) -> list[Path]:
    """Copy the lessons the working copy lacks (never overwriting one) and write its start page."""
    if not source.is_dir():
        raise LabError(f"no lesson folder {source}")
    folder(workspace)
    copied = []
    for notebook in lessons(source):
        target = workspace / notebook.name
        if not target.exists():
            atomic_write(target, notebook.read_bytes())
            copied.append(target)
    atomic_write(workspace / START_PAGE, start_page(lessons(source)).encode())
    return copied


def find_lesson(lesson: str, source: Path = NOTEBOOKS) -> Path:
    """The one lesson notebook in source named `lesson` or numbered so (04, 12a); LabError otherwise."""
    matches = [p for p in lessons(source) if p.stem == lesson or p.stem.split("_")[0] == lesson]
    if len(matches) != 1:
        known = ", ".join(p.stem.split("_")[0] for p in lessons(source))
        raise LabError(f"no single lesson {lesson!r} in {source}; lessons: {known}")
    return matches[0]


def parse_notebook(data: bytes, path: Path):
    """The notebook (nbformat 4) in data, read from path; UnreadableNotebook naming path when it is none."""
    import nbformat

    try:
        return nbformat.reads(data.decode("utf-8"), as_version=4)
    # ValueError: not UTF-8, not JSON (NotJSONError), no nbformat; AttributeError/TypeError: JSON of another shape
    except (ValueError, KeyError, AttributeError, TypeError, nbformat.ValidationError) as exc:
        raise UnreadableNotebook(f"{path} is not a readable notebook ({type(exc).__name__})") from exc


def keep_backup(content: bytes, backups: Path, stem: str) -> Path:
    """Write content to a new file backups/<stem>.bak-<time>[-N].ipynb and return it; never over an existing file.

    Two refreshes within one second stamp the same time: the file is created exclusively (O_EXCL), and a
    name already taken moves on to -2, -3, ...
    """
    backups.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for n in itertools.count(1):
        path = backups / f"{stem}.bak-{stamp}{f'-{n}' if n > 1 else ''}.ipynb"
        try:
            out = open(path, "xb")  # "x": the name is claimed, or FileExistsError; never truncates a backup
        except FileExistsError:
            continue
        with out:
            try:
                out.write(content)
                out.flush()
                os.fsync(out.fileno())
            except BaseException:  # KeyboardInterrupt too: no half backup left behind
                path.unlink()
                raise
        return path


def carry_answers(old, fresh) -> list[str]:
    """Put old's answers into fresh's answer cells with the same exercise id (in place); return the ids carried."""
    # The exercises' own reader (it imports torch: only refresh needs it, the lab starts without it).
    from course_utils.exercises.notebooks import answer_cells

    answers, carried = answer_cells(old), []
    for cell in fresh.cells:
        answer = answers.get(cell.metadata.get("exercise_id")) if cell.cell_type == "code" else None
        if answer is not None and answer != cell.source:
            cell.source, cell.outputs, cell.execution_count = answer, [], None
            carried.append(cell.metadata["exercise_id"])
    return carried


def refresh(lesson: str, workspace: Path = WORKSPACE, source: Path = NOTEBOOKS) -> Refreshed:
    """Replace one lesson's working copy by the course's, the learner's answers carried over by exercise id.

    The old copy is kept under workspace/backups/, also when it cannot be read (then no answer is carried).
    Returns what was done: the copy, its backup, the ids carried over, and why none could be.
    """
    import nbformat

    fresh_path = find_lesson(lesson, source)
    target = folder(workspace) / fresh_path.name
    course = fresh_path.read_bytes()
    try:
        fresh = parse_notebook(course, fresh_path)
    except UnreadableNotebook as exc:
        raise UnreadableNotebook(f"{exc}; {_restore_hint(fresh_path)}") from exc
    if not target.exists():
        atomic_write(target, course)
        return Refreshed(target, None, [])
    mine = target.read_bytes()  # the backup holds exactly these bytes, whatever happens below
    try:
        carried, unreadable = carry_answers(parse_notebook(mine, target), fresh), None
        new = (nbformat.writes(fresh) + "\n").encode()
    except UnreadableNotebook as exc:
        carried, unreadable, new = [], str(exc), course
    backup = keep_backup(mine, workspace / BACKUPS, target.stem)
    atomic_write(target, new)
    return Refreshed(target, backup, carried, unreadable)
