"""The modules live in subpackages; release 1.0's flat names still work, with a DeprecationWarning."""
import importlib
import subprocess
import sys

import pytest

import course_utils


def test_every_old_name_is_the_same_module_as_its_new_home_and_warns():
    for old, home in course_utils.MOVED.items():
        new = importlib.import_module(f"course_utils.{home}")
        message = rf"course_utils\.{old} is deprecated: use `from course_utils\..* import {home.rpartition('.')[2]}`"
        _forget(old)
        with pytest.warns(DeprecationWarning, match=message):
            assert getattr(course_utils, old) is new, old
        _forget(old)
        with pytest.warns(DeprecationWarning, match=message):
            assert importlib.import_module(f"course_utils.{old}") is new, old
        assert new.__spec__.name == new.__name__, old  # the alias left the real module's spec alone
        _forget(old)


def _forget(old: str) -> None:
    """Undo an earlier import of the old name (importing a submodule also sets it as the package's attribute)."""
    sys.modules.pop(f"course_utils.{old}", None)
    if "." not in old:
        vars(course_utils).pop(old, None)


def test_unknown_name_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'trainin'"):
        _ = course_utils.trainin


@pytest.mark.parametrize("old", ["predict", "doctor"])
def test_python_dash_m_runs_a_moved_module_under_its_old_name(old):
    """`python -m course_utils.doctor` once crashed: the alias gave the module no __file__."""
    result = subprocess.run([sys.executable, "-W", "default", "-m", f"course_utils.{old}", "--help"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "usage:" in result.stdout
    assert f"course_utils.{old} is deprecated" in result.stderr


def test_no_course_file_imports_an_old_name():
    """Notebooks, tests, docs and the package name the real modules, so every name leads to its file."""
    import re
    from pathlib import Path

    root = Path(course_utils.__file__).parents[1]
    flat = "|".join(name for name in course_utils.MOVED if "." not in name)
    dotted = [name.rpartition(".") for name in course_utils.MOVED if "." in name]
    patterns = [rf"from course_utils import [\w, ]*\b({flat})\b", rf"course_utils\.({flat})\b(?!\.py)"]
    for package, _, module in dotted:
        patterns += [rf"from course_utils\.{package} import [\w, ]*\b{module}\b",
                     rf"course_utils\.{package}\.{module}\b"]
    pattern = re.compile("|".join(patterns))
    folders = ("course_utils", "tests", "notebooks", "docs", "benchmarks")
    files = [p for folder in folders for p in (root / folder).rglob("*")
             if p.suffix in {".py", ".ipynb", ".md"} and p.name not in {"__init__.py", "test_layout.py"}]
    files += [root / "README.md", root / "Makefile"]
    offenders = [f"{p.relative_to(root)}: {m.group(0)}" for p in files for m in pattern.finditer(p.read_text())]
    assert not offenders, offenders


def test_readme_layout_names_every_module_and_folder():
    """README's Layout block is the architecture at a glance: it must not fall behind the tree."""
    from pathlib import Path

    root = Path(course_utils.__file__).parents[1]
    readme = (root / "README.md").read_text()
    layout = readme.split("## Layout", 1)[1].split("```", 2)[1]
    modules = [p for p in (root / "course_utils").rglob("*.py")
               if p.name not in {"__init__.py", "__main__.py"} and not p.name.startswith("lesson_")]
    missing = [str(p.relative_to(root)) for p in modules if p.name not in layout]
    folders = [p.name + "/" for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")
               and p.name not in {"build", "runs", "workspace", "checkpoints", "course_utils.egg-info"}
               and not p.name.endswith(".egg-info")]
    missing += [f for f in folders if f not in layout]
    assert not missing, f"README's Layout does not name: {missing}"
