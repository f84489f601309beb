"""The learner's working copy of the lessons: made once, never overwritten, refreshed lesson by lesson.

`prepare_workspace` copies the lessons the working copy lacks and writes its start page; `refresh`
replaces one lesson's copy by the course's, carrying the learner's exercise answers over and keeping
the old copy under workspace/backups/. Standard library only, except nbformat (and the exercises'
answer reader) for `refresh`.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Sequence
from pathlib import Path

from course_utils.core.files import atomic_write  # never half a notebook
from course_utils.tools.jupyter_server import LabError

PROJECT_ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = PROJECT_ROOT / "notebooks"
WORKSPACE = PROJECT_ROOT / "workspace"  # the learner's copies: git-ignored, never run by the tests
START_PAGE = "START.md"


def lessons(folder: Path = NOTEBOOKS) -> list[Path]:
    """The lesson notebooks in a folder, in course order (the runner's rule: alphanumeric first char)."""
    return sorted(p for p in folder.glob("*.ipynb") if p.stem[0].isalnum())


def lesson_title(notebook: Path) -> str:
    """The first heading of a notebook's first markdown cell, as plain text (no code marks)."""
    for cell in json.loads(notebook.read_text(encoding="utf-8"))["cells"]:
        if cell["cell_type"] == "markdown":
            text = "".join(cell["source"]).strip()
            return text.splitlines()[0].lstrip("#").strip().replace("`", "") if text else notebook.stem
    return notebook.stem


def start_page(notebooks: Sequence[Path]) -> str:
    """The markdown of the start page: one line per lesson, linked, in order."""
    lines = ["# The PyTorch course: your working copy", "",
             "These notebooks are your own copies: change them, break them, write your answers in",
             "them. The course's originals stay in `notebooks/`; `make refresh LESSON=04` brings",
             "one lesson up to date and keeps your exercise answers. Open a lesson:", ""]
    lines += [f"1. [{lesson_title(p)}]({p.name})" for p in notebooks]
    return "\n".join(lines) + "\n"


def prepare_workspace(workspace: Path = WORKSPACE, source: Path = NOTEBOOKS) -> list[Path]:
    """Copy the lessons the working copy lacks (never overwriting one) and write its start page."""
    if not source.is_dir():
        raise LabError(f"no lesson folder {source}")
    workspace.mkdir(parents=True, exist_ok=True)
    copied = []
    for notebook in lessons(source):
        target = workspace / notebook.name
        if not target.exists():
            atomic_write(target, notebook.read_bytes())
            copied.append(target)
    atomic_write(workspace / START_PAGE, start_page(lessons(source)).encode())
    return copied


def refresh(lesson: str, workspace: Path = WORKSPACE, source: Path = NOTEBOOKS) -> tuple[Path, list[str]]:
    """Replace one lesson's working copy by the course's, carrying the learner's answers over by exercise id.

    The old copy is kept under workspace/backups/. Returns (backup or the new copy, ids carried over).
    """
    import nbformat

    # The exercises' own reader (it imports torch: only refresh needs it, the lab starts without it).
    from course_utils.exercises.notebooks import answer_cells

    matches = [p for p in lessons(source) if p.stem == lesson or p.stem.split("_")[0] == lesson]
    if len(matches) != 1:
        known = ", ".join(p.stem.split("_")[0] for p in lessons(source))
        raise LabError(f"no single lesson {lesson!r} in {source}; lessons: {known}")
    fresh_path, target = matches[0], workspace / matches[0].name
    fresh = nbformat.read(fresh_path, as_version=4)
    if not target.exists():
        workspace.mkdir(parents=True, exist_ok=True)
        atomic_write(target, fresh_path.read_bytes())
        return target, []
    old = answer_cells(nbformat.read(target, as_version=4))
    carried = []
    for cell in fresh.cells:
        answer = old.get(cell.metadata.get("exercise_id")) if cell.cell_type == "code" else None
        if answer is not None and answer != cell.source:
            cell.source, cell.outputs, cell.execution_count = answer, [], None
            carried.append(cell.metadata["exercise_id"])
    backup = workspace / "backups" / f"{target.stem}.bak-{time.strftime('%Y%m%d-%H%M%S')}.ipynb"
    backup.parent.mkdir(exist_ok=True)
    shutil.copy2(target, backup)
    atomic_write(target, (nbformat.writes(fresh) + "\n").encode())
    return backup, carried
