"""python -m course_utils.exercises: a closed pipe, files it cannot read, and verify as the one place of the rules."""

import copy
import os
import subprocess
import sys

import pytest
from torch import nn

from course_utils.datasets.sources import PROJECT_ROOT
from course_utils.exercises import EXERCISES, framework
from course_utils.exercises import __main__ as cli
from course_utils.exercises.framework import SEED_ENV, STRICT_ENV, Mistake


@pytest.fixture(autouse=True)
def plain_environment(monkeypatch):
    monkeypatch.delenv(STRICT_ENV, raising=False)
    monkeypatch.delenv(SEED_ENV, raising=False)


def test_a_reader_that_stops_early_ends_the_listing_quietly():
    # `list | head -1`, made certain: the reader has gone before the first line is written
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(PROJECT_ROOT), os.environ.get("PYTHONPATH", "")]))
    process = subprocess.Popen([sys.executable, "-m", "course_utils.exercises", "list"], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, env=env)
    process.stdout.close()
    stderr = process.communicate(timeout=300)[1].decode()
    assert "Error" not in stderr and "Traceback" not in stderr, stderr
    assert process.returncode == 141


def test_a_notebook_that_is_not_json_is_one_line_naming_it(tmp_path, capsys):
    (tmp_path / "04_fashion_mnist.ipynb").write_text('{"cells": [')
    assert cli.main(["progress", "--workspace", str(tmp_path)]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.count("\n") == 1
    assert str(tmp_path / "04_fashion_mnist.ipynb") in captured.err and "repair it or move it out" in captured.err


def test_a_file_that_cannot_be_read_is_one_line_naming_it(tmp_path, capsys):
    (tmp_path / "odd.ipynb").mkdir()  # a folder with a notebook's name
    assert cli.main(["progress", "--workspace", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "odd.ipynb" in err and "IsADirectoryError" not in err
    assert err.startswith("python -m course_utils.exercises progress: ")


# ---------------------------------------------------------------- verify: the one place of the rules

def lesson_01(**changes) -> dict:
    """Lesson 01's exercises, with 01.1's fields replaced by `changes`."""
    chosen = {i: e for i, e in EXERCISES.items() if i.startswith("01.")}
    chosen["01.1"] = copy.copy(chosen["01.1"])
    for name, value in changes.items():
        setattr(chosen["01.1"], name, value)
    return chosen


def test_verify_requires_a_hint_for_every_exercise_and_every_wrong_answer(monkeypatch, capsys):
    original = EXERCISES["01.1"].checker

    def checker_without_hints(answer):
        try:
            return original(answer)
        except Mistake as mistake:
            raise Mistake(mistake.message) from None

    monkeypatch.setattr(cli, "EXERCISES", lesson_01(hint="", checker=checker_without_hints))
    assert cli.main(["verify"]) == 1
    out = capsys.readouterr().out
    assert "FAIL 01.1: no hint" in out
    assert "FAIL 01.1 wrong answer 1: caught, but with no hint where to reread" in out
    monkeypatch.setattr(cli, "EXERCISES", lesson_01())
    assert cli.main(["verify"]) == 0


def test_verify_requires_three_exercises_per_lesson_and_a_contract(monkeypatch, capsys):
    lessons = lesson_01(statement="Write it.")
    del lessons["01.3"]
    monkeypatch.setattr(cli, "EXERCISES", lessons)
    assert cli.main(["verify"]) == 1
    out = capsys.readouterr().out
    assert "FAIL lesson 01_tensors: 2 exercises, at least 3 wanted" in out
    assert "FAIL 01.1 statement: its first paragraph must name" in out
    assert "FAIL 01.1 statement: it must end with the lines - **In:**" in out


def test_expect_subclass_names_the_base_and_what_it_got():
    framework.expect_subclass(nn.Linear, nn.Module, "MLP")
    with pytest.raises(Mistake, match=r"^MLP should be a class derived from nn.Module, but it is a class not derived "
                                      r"from it$") as caught:
        framework.expect_subclass(int, nn.Module, "MLP", "section 2", base_name="nn.Module")
    assert caught.value.hint == "section 2"
    with pytest.raises(Mistake, match=r"derived from nn.Module \(a reason\), but it is a function$"):
        framework.expect_subclass(lambda x: x, nn.Module, "MLP", base_name="nn.Module", why="a reason")
