"""One answer cannot fool or stop the others: progress checks in child processes, check() restores global state."""

import contextlib
import io
import os
import subprocess
import sys

import pytest
import torch
from nbformat import write
from nbformat.v4 import new_code_cell, new_notebook

from course_utils import exercises
from course_utils.datasets.sources import PROJECT_ROOT
from course_utils.exercises import EXERCISES, framework, isolation
from course_utils.exercises import __main__ as cli
from course_utils.exercises.framework import SEED_ENV, STRICT_ENV, exec_answer

SOLUTION = {i: e.solution for i, e in EXERCISES.items()}
TIMEOUT = "5"  # seconds per answer in these tests: an endless loop costs this, a correct answer needs far less


@pytest.fixture(autouse=True)
def plain_environment(monkeypatch):
    monkeypatch.delenv(STRICT_ENV, raising=False)
    monkeypatch.delenv(SEED_ENV, raising=False)


@pytest.fixture(autouse=True)
def torch_defaults_afterwards():
    """Whatever a failing test leaves behind must not fail the tests after it."""
    yield
    torch.set_default_dtype(torch.float32)
    torch.set_grad_enabled(True)
    torch.use_deterministic_algorithms(False)


def workspace(folder, lessons: dict[str, dict[str, str]]):
    """Tiny working copies: per lesson stem, its answer cells (exercise id -> code), nothing else."""
    folder.mkdir(exist_ok=True)
    for stem, answers in lessons.items():
        cells = [new_code_cell(code, metadata={"tags": ["exercises", "exercise"], "exercise_id": exercise_id})
                 for exercise_id, code in answers.items()]
        write(new_notebook(cells=cells), folder / f"{stem}.ipynb")
    return folder


def progress_in_process(folder, capsys, *options) -> list[list[str]]:
    """main(progress) here; its output lines, split into words."""
    assert cli.main(["progress", "--workspace", str(folder), *options]) == 0
    return [line.split() for line in capsys.readouterr().out.splitlines()]


def progress_in_subprocess(folder) -> subprocess.CompletedProcess:
    """`python -m course_utils.exercises progress` on the folder, as `make progress` runs it."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(PROJECT_ROOT), os.environ.get("PYTHONPATH", "")]))
    return subprocess.run([sys.executable, "-m", "course_utils.exercises", "progress", "--workspace", str(folder),
                           "--timeout", TIMEOUT], capture_output=True, text=True, timeout=600, env=env)


def totals(lines: list[list[str]]) -> list[str]:
    """The 'k/n' of the total line."""
    return [words[1] for words in lines if words[0] == "total"]


def printed(exercise_id, answer) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exercises.check(exercise_id, answer)
    return out.getvalue()


# ---------------------------------------------------------------- progress

def test_an_answer_that_changes_a_global_setting_does_not_change_the_others_verdicts(tmp_path, capsys):
    # each learner's line comes before correct answers of the same lesson (01.2: dtype; 03.2, 03.3: grad mode)
    lessons = {"01_tensors": {"01.2": SOLUTION["01.2"]},
               "03_training": {"03.2": SOLUTION["03.2"], "03.3": SOLUTION["03.3"]}}
    before = progress_in_process(workspace(tmp_path / "before", lessons), capsys)
    for stem, slot, line in (("01_tensors", "01.1", "torch.set_default_dtype(torch.float64)"),
                             ("03_training", "03.1", "torch.set_grad_enabled(False)")):
        lessons[stem] = {slot: f"import torch\n\n{line}\n\n{EXERCISES[slot].template}", **lessons[stem]}
    after = progress_in_process(workspace(tmp_path / "after", lessons), capsys)
    assert totals(before) == ["3/3"]
    assert totals(after) == ["3/5"]  # the extra answers are not attempted, the others are still correct


def test_an_endless_loop_or_an_exit_is_stopped_and_reported_and_the_rest_counted(tmp_path):
    """One `make progress`: an answer that ends the process, then one that swallows the time limit's alarm."""
    exits = "import os\n\n\ndef scale_rows(x):\n    os._exit(0)\n"
    swallow = ("def pairwise_distances(a, b):\n    while True:\n        try:\n            while True:\n"
               "                pass\n        except BaseException:\n            pass\n")
    folder = workspace(tmp_path, {"01_tensors": {"01.1": exits, "01.2": swallow, "01.3": SOLUTION["01.3"]},
                                  "02_neural_networks": {"02.1": SOLUTION["02.1"]}})
    done = progress_in_subprocess(folder)
    assert done.returncode == 0, done.stderr
    lines = [line.split() for line in done.stdout.splitlines()]
    assert lines[0] == ["01_tensors", "1/3", "solved"]
    assert lines[1][:2] == ["01.1", "exited:"] and "ended the process checking it (exit status 0" in done.stdout
    assert lines[2][:3] == ["01.2", "timed", "out:"] and "took longer than 5 s" in done.stdout
    assert lines[3:] == [["02_neural_networks", "1/1", "solved"], ["total", "2/4", "solved"]]


def test_progress_says_why_each_attempted_answer_is_unsolved(tmp_path, capsys):
    raises = "def scale_rows(x):\n    return x.nope()\n"
    folder = workspace(tmp_path, {"01_tensors": {"01.1": raises, "01.2": EXERCISES["01.2"].wrong_answers[0][0],
                                                 "01.3": EXERCISES["01.3"].template}})
    assert cli.main(["progress", "--workspace", str(folder), "--timeout", TIMEOUT]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["01_tensors", "0/3", "solved"]
    assert lines[1].startswith("    01.1 error: your code raised AttributeError: ")
    assert lines[2].startswith("    01.2 mistake: ") and EXERCISES["01.2"].wrong_answers[0][1] in lines[2]
    assert lines[3].split() == ["total", "0/3", "solved"]  # a template is not attempted: no line of its own


def test_untouched_answer_cells_count_as_not_attempted_without_a_child_process(tmp_path, monkeypatch, capsys):
    def refuse(*args, **kwargs):
        raise AssertionError("a child process was started")

    monkeypatch.setattr(isolation.subprocess, "Popen", refuse)
    folder = workspace(tmp_path, {"01_tensors": {i: EXERCISES[i].template for i in ("01.1", "01.2", "01.3")}})
    assert progress_in_process(folder, capsys) == [["01_tensors", "0/3", "solved"], ["total", "0/3", "solved"]]


@pytest.mark.parametrize("value", ["abc", "1.5"])
def test_progress_refuses_a_seed_that_is_not_a_whole_number(tmp_path, monkeypatch, capsys, value):
    folder = workspace(tmp_path, {"01_tensors": {"01.1": SOLUTION["01.1"]}})
    monkeypatch.setenv(SEED_ENV, value)
    assert cli.main(["progress", "--workspace", str(folder)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1 and f"{SEED_ENV}={value!r} is not a whole number" in captured.err
    assert cli.main(["verify"]) == 2 and SEED_ENV in capsys.readouterr().err
    with pytest.raises(ValueError, match=f"{SEED_ENV}={value!r} is not a whole number"):
        exercises.check("01.1", exec_answer(SOLUTION["01.1"], "scale_rows"))  # the library raises


@pytest.mark.parametrize("value", ["-1", "3"])
def test_other_seeds_give_other_inputs_and_progress_counts_them(tmp_path, monkeypatch, capsys, value):
    monkeypatch.setenv(SEED_ENV, value)
    assert framework.seed() == int(value)
    folder = workspace(tmp_path, {"01_tensors": {"01.1": SOLUTION["01.1"]}})
    assert totals(progress_in_process(folder, capsys)) == ["1/1"]


@pytest.mark.parametrize("value", ["0", "-5", "abc"])
def test_progress_refuses_a_timeout_that_is_not_a_positive_number(tmp_path, capsys, value):
    with pytest.raises(SystemExit) as stop:
        cli.main(["progress", "--workspace", str(tmp_path), "--timeout", value])
    assert stop.value.code == 2 and "is not a positive number of seconds" in capsys.readouterr().err


# ---------------------------------------------------------------- check() in the notebook

def test_a_check_puts_back_the_global_settings_the_answer_changed():
    threads = torch.get_num_threads()

    def scale_rows(x):  # correct values, but it changes four settings for the whole notebook
        torch.set_default_dtype(torch.float64)
        torch.set_grad_enabled(False)
        torch.use_deterministic_algorithms(True)
        torch.set_num_threads(threads + 1)
        low, high = x.min(dim=1, keepdim=True).values, x.max(dim=1, keepdim=True).values
        return (x - low) / (high - low)

    text = printed("01.1", scale_rows)
    assert "note: your code changed PyTorch's global settings" in text
    assert "torch.set_default_dtype (torch.float32 -> torch.float64)" in text and "torch.set_grad_enabled" in text
    assert "torch.use_deterministic_algorithms (False -> True)" in text and "torch.set_num_threads" in text
    assert torch.get_default_dtype() == torch.float32 and torch.is_grad_enabled()
    assert not torch.are_deterministic_algorithms_enabled() and torch.get_num_threads() == threads
    for exercise_id in ("01.2", "03.2"):  # correct answers that failed under float64 and without grad mode
        exercise = EXERCISES[exercise_id]
        verdict = printed(exercise_id, exec_answer(exercise.solution, exercise.name))
        assert verdict.startswith(f"{exercise_id} correct: ") and "note:" not in verdict


def test_a_check_runs_under_the_standard_settings_and_leaves_the_notebooks_own():
    # a notebook cell ran torch.set_default_dtype(torch.float64) and torch.set_grad_enabled(False) itself
    torch.set_default_dtype(torch.float64)
    torch.set_grad_enabled(False)
    torch.manual_seed(5)
    expected = torch.rand(3)
    torch.manual_seed(5)
    for exercise_id in ("01.2", "03.2"):
        exercise = EXERCISES[exercise_id]
        assert printed(exercise_id, exec_answer(exercise.solution, exercise.name)).startswith(
            f"{exercise_id} correct: ")
    assert torch.get_default_dtype() == torch.float64 and not torch.is_grad_enabled()
    assert torch.equal(torch.rand(3), expected)  # the notebook's random state, untouched
