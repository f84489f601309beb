"""A lesson notebook's Exercises section, generated from the lesson modules: inject, compare, fill in solutions."""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # importing nbformat takes seconds, and the processes that check answers never need it
    import nbformat

SECTION_TAG = "exercises"   # every cell of the generated section; inject removes and rewrites them
ANSWER_TAG = "exercise"     # the answer cells (metadata exercise_id says which)
COMPARED_METADATA = ("tags", "exercise_id")

INTRO = """## Exercises

Each exercise below asks you to write one function (or class) in its answer cell: replace
`raise NotImplementedError` with your code, run the cell, then run the check cell under it. Its
statement ends with the contract: what goes **In**, what comes **Out**, what you may **Use**, what
**Correct means**, and which section to **Reread**. The check calls your code on fresh inputs and prints
one of:

- `not attempted yet`: the answer cell still raises `NotImplementedError`;
- `correct: ...`: what was tested;
- `not yet: ...`: what is wrong (a shape, a value and where, an input changed in place, a forbidden
  call, ...) and a `hint:` with the section of this lesson to reread.

Stuck? `exercises.hint("{first}")` gives a nudge, and calling it again a more specific one;
`exercises.solution("{first}")` prints a reference solution, the last resort."""

CHALLENGE = """

**{id} is a challenge.** There you decide: the model, the optimiser, the learning rate, what fights
overfitting. Your function trains within the stated budget and returns the model; the check measures it on
data it never trained on, against a target above this lesson's own result, and when it falls short says what
usually causes that."""

IMPORTS = """# the checks, and what every answer cell may use
import math

import torch
import torch.nn.functional as F
from torch import nn

from course_utils import exercises"""


def _cell_id(exercise_id: str, part: str) -> str:
    return f"exercise-{exercise_id.replace('.', '-')}-{part}"


def _tags(*tags: str) -> dict:
    return {"tags": list(tags)}


def section_cells(exercises: list) -> list:
    """The generated cells for one lesson's exercises: intro, imports, then statement, answer and check per exercise."""
    from nbformat.v4 import new_code_cell, new_markdown_cell
    if not exercises:
        return []
    intro = INTRO.replace("{first}", exercises[0].id)
    intro += "".join(CHALLENGE.replace("{id}", e.id) for e in exercises if e.challenge)
    cells = [new_markdown_cell(intro, metadata=_tags(SECTION_TAG)),
             new_code_cell(IMPORTS, metadata=_tags(SECTION_TAG))]
    cells[0].id, cells[1].id = "exercises-intro", "exercises-imports"
    for exercise in exercises:
        statement = new_markdown_cell(f"### {exercise.id} {exercise.title}\n\n{exercise.statement.strip()}",
                                      metadata=_tags(SECTION_TAG))
        answer = new_code_cell(exercise.template.strip(),
                               metadata=_tags(SECTION_TAG, ANSWER_TAG) | {"exercise_id": exercise.id})
        check = new_code_cell(check_source(exercise), metadata=_tags(SECTION_TAG))
        for cell, part in ((statement, "statement"), (answer, "answer"), (check, "check")):
            cell.id = _cell_id(exercise.id, part)
        cells += [statement, answer, check]
    return cells


def lesson_exercises(stem: str) -> list:
    """The exercises of one lesson notebook, in id order."""
    from course_utils.exercises import EXERCISES
    return [e for e in EXERCISES.values() if e.lesson == stem]


def inject(notebook: nbformat.NotebookNode, stem: str) -> nbformat.NotebookNode:
    """A copy of the notebook whose Exercises section (cells tagged `exercises`) is freshly generated at its end."""
    notebook = copy.deepcopy(notebook)
    kept = [c for c in notebook.cells if SECTION_TAG not in c.metadata.get("tags", [])]
    before = {c.get("id"): c for c in notebook.cells if SECTION_TAG in c.metadata.get("tags", [])}
    section = section_cells(lesson_exercises(stem))
    for cell in section:  # a code cell that did not change keeps its outputs: only changed cells need a new run
        old = before.get(cell.get("id"))
        if cell.cell_type == "code" and old is not None and old.source == cell.source:
            cell.outputs, cell.execution_count = old.get("outputs", []), old.get("execution_count")
    notebook.cells = kept + section
    if (notebook.nbformat, notebook.nbformat_minor) < (4, 5):  # cell ids need nbformat 4.5
        notebook.nbformat_minor = 5
    return notebook


def _signature(cell) -> tuple:
    """What inject decides about a cell (outputs and run metadata are the runner's)."""
    metadata = {k: cell.metadata[k] for k in COMPARED_METADATA if k in cell.metadata}
    return cell.cell_type, cell.get("id"), cell.source, metadata


def up_to_date(notebook: nbformat.NotebookNode, stem: str) -> bool:
    """Whether the notebook's Exercises section is what inject would write."""
    return [_signature(c) for c in notebook.cells] == [_signature(c) for c in inject(notebook, stem).cells]


def answer_cells(notebook: nbformat.NotebookNode) -> dict[str, str]:
    """exercise_id -> source of each answer cell."""
    return {c.metadata["exercise_id"]: c.source for c in notebook.cells
            if c.cell_type == "code" and "exercise_id" in c.metadata}


def lesson_code_cells(paths) -> dict[str, str]:
    """'<stem> cell <id>' -> source of every code cell of the lessons outside their Exercises sections."""
    import nbformat
    cells = {}
    for path in paths:
        for cell in nbformat.read(path, as_version=4).cells:
            if cell.cell_type == "code" and SECTION_TAG not in cell.metadata.get("tags", []):
                cells[f"{path.stem} cell {cell.get('id')}"] = cell.source
    return cells


def check_source(exercise, strict: bool = False) -> str:
    """The check cell's code: `exercises.check("04.2", softmax)`, strict where it must raise unless correct."""
    settings = "".join(f", {keyword}={parameter}" for keyword, parameter in exercise.settings.items())
    return f'exercises.check("{exercise.id}", {exercise.name}{settings}{", strict=True" if strict else ""})'


def fill_solutions(notebook: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Each answer cell gets its reference solution and each check cell turns strict (in place; returns the notebook).

    Strict in the cell itself, not through the environment: the copies nbval runs need no setting, and
    nothing else the tests start (the runner, JupyterLab) inherits one.
    """
    from course_utils.exercises import get
    checks = {}  # the id of each answer's check cell (it follows the answer) -> its exercise
    for cell in notebook.cells:
        if cell.cell_type == "code" and "exercise_id" in cell.metadata:
            exercise = get(cell.metadata["exercise_id"])
            cell.source = exercise.solution.strip()
            checks[_cell_id(exercise.id, "check")] = exercise
        elif cell.cell_type == "code" and cell.get("id") in checks:
            cell.source = check_source(checks[cell.id], strict=True)
    return notebook
