"""The lint gate covers the code that lives in strings: every exercise's template, solution and alternatives."""
import ast
import json
import subprocess
import sys
from pathlib import Path

from course_utils.exercises import EXERCISES
from course_utils.exercises.framework import PRELUDE

ROOT = Path(__file__).resolve().parents[1]
# The answer cells run after PRELUDE's imports; they may use any of them.
HEADER = "".join(f"{line}  # noqa: F401\n" for line in PRELUDE.splitlines())


def _ruff(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ruff", "check", "--config", str(ROOT / "pyproject.toml"),
                           "--output-format", "concise", "--no-cache", *args],
                          capture_output=True, text=True, timeout=120)


def lesson_names(lesson: str) -> set[str]:
    """The names a lesson's own code cells define (assigned, imported, def, class): a challenge may use them."""
    names = set()
    for cell in json.loads((ROOT / "notebooks" / f"{lesson}.ipynb").read_text(encoding="utf-8"))["cells"]:
        if cell["cell_type"] != "code" or "exercises" in cell["metadata"].get("tags", []):
            continue
        for node in ast.walk(ast.parse("".join(cell["source"]))):
            if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                names.add(node.id)
            elif isinstance(node, (ast.FunctionDef, ast.ClassDef)):
                names.add(node.name)
            elif isinstance(node, (ast.Import, ast.ImportFrom)):
                names |= {(alias.asname or alias.name).split(".")[0] for alias in node.names}
    return names


def test_every_exercise_code_string_passes_the_lint_rules(tmp_path):
    for exercise in EXERCISES.values():
        stem = f"ex_{exercise.id.replace('.', '_')}"
        header = HEADER
        if exercise.challenge:  # its answer runs after the lesson's cells and uses what they define
            header += "".join(f"{name} = None  # noqa\n" for name in sorted(lesson_names(exercise.lesson)))
        codes = {"solution": exercise.solution} | {f"alternative{i}": code
                                                   for i, code in enumerate(exercise.alternatives, 1)}
        for part, code in codes.items():
            (tmp_path / f"{stem}_{part}.py").write_text(header + code.strip() + "\n")
        # a template may import what the learner will need (F401)
        template = header + "# ruff: noqa: F401\n" + exercise.template.strip() + "\n"
        (tmp_path / f"{stem}_template.py").write_text(template)
    # import order and the header's markers are the header's business, not the answer's
    result = _ruff("--extend-ignore", "I001,RUF100", str(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_gate_fails_on_a_lint_error(tmp_path):
    """The test above can fail: an unused name in an answer string is found."""
    (tmp_path / "bad.py").write_text(HEADER + "import os\n\ndef f(x):\n    return x\n")
    result = _ruff(str(tmp_path))
    assert result.returncode == 1 and "F401" in result.stdout
