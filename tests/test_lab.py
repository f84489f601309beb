"""Tests for course_utils.tools.lab: the launcher's command, ports, working copy, refresh, settings.

Starting the real server in a real browser is tests/test_browser.py.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest

from course_utils.paths import PROJECT_ROOT
from course_utils.tools import jupyter_server as server
from course_utils.tools import lab
from course_utils.tools import workspace as ws

REPO = Path(__file__).resolve().parents[1]


def write_lesson(folder: Path, name: str, title: str, answers: dict[str, str] | None = None) -> Path:
    """Write a small lesson notebook: a title cell, a code cell, and answer cells by exercise id."""
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell(f"# {title}\n\nYou will learn to ..."),
                nbformat.v4.new_code_cell("x = 1")]
    for exercise_id, source in (answers or {}).items():
        cell = nbformat.v4.new_code_cell(source)
        cell.metadata.update(tags=["exercises", "exercise"], exercise_id=exercise_id)
        nb.cells.append(cell)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    nbformat.write(nb, path)
    return path


@pytest.mark.parametrize("euid", [0, 1000])
def test_jupyter_argv_loopback_fixed_port_settings_and_root_only_when_root(
        monkeypatch: pytest.MonkeyPatch, euid: int) -> None:
    monkeypatch.setattr(server.os, "geteuid", lambda: euid)
    argv = server.jupyter_argv(Path("/w"), 8890)
    assert argv[:3] == [sys.executable, "-m", "jupyterlab"]
    assert "--ip=127.0.0.1" in argv and "--port=8890" in argv and "--ServerApp.port_retries=0" in argv
    assert f"--LabApp.app_settings_dir={server.SETTINGS_DIR}" in argv and "--ServerApp.root_dir=/w" in argv
    assert not any("token" in arg.lower() for arg in argv)
    assert ("--allow-root" in argv) == (euid == 0)
    assert not any("default_url" in arg for arg in argv)
    start = server.jupyter_argv(Path("/w"), 8890, start_page=ws.START_PAGE)
    assert start == [*argv[:argv.index("--no-browser")], "--ServerApp.default_url=/lab/tree/START.md",
                     *argv[argv.index("--no-browser"):]]


def test_token_only_in_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    seen = {}
    monkeypatch.setattr(server.subprocess, "Popen", lambda argv, **kw: seen.update(argv=argv, **kw))
    server.start_jupyter(tmp_path, 8890, "tok-123", {"A": "1"})
    assert seen["env"]["JUPYTER_TOKEN"] == "tok-123" and seen["env"]["A"] == "1"
    assert not any("tok-123" in arg for arg in seen["argv"])
    assert seen["start_new_session"] and seen["cwd"] == tmp_path
    assert server.new_token() != server.new_token() and len(server.new_token()) >= 32


def test_busy_port_moves_to_the_next_free_one_and_says_so(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    class FakeServer:
        def wait(self, timeout=None):
            raise KeyboardInterrupt  # the learner pressed Ctrl-C

    started = {}
    monkeypatch.setattr(lab, "start_jupyter", lambda root, port, token, **kw: started.update(port=port) or FakeServer())
    monkeypatch.setattr(lab, "wait_ready", lambda *a: None)
    monkeypatch.setattr(lab, "stop_jupyter", lambda proc: started.update(stopped=True))
    write_lesson(tmp_path / "notebooks", "01_a.ipynb", "01 · A")
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert server.first_free_port(port) > port
        assert lab.cmd_start(tmp_path / "ws", port, open_browser=False, timeout=5, source=tmp_path / "notebooks") == 0
    out = capsys.readouterr().out
    assert started["port"] > port and started["stopped"]
    assert f"lab: port {port} is busy; using {started['port']}" in out
    assert f"ready: http://127.0.0.1:{started['port']}/lab/tree/START.md?token=" in out


def test_no_free_port_is_a_plain_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(server, "port_in_use", lambda port, host="127.0.0.1": True)
    with pytest.raises(server.LabError, match="ports 9000-9002 are all in use; pass --port N"):
        server.first_free_port(9000, tries=3)
    with pytest.raises(server.LabError, match="ports 65534-65535 are all in use"):
        server.first_free_port(65534, tries=3)
    with pytest.raises(server.LabError, match="--port 0 is not a port number; use one from 1-65535"):
        server.first_free_port(0)  # the library raises; the command line refuses it before (below)


def test_working_copy_is_made_once_and_never_overwrites(tmp_path: Path) -> None:
    source, workspace = tmp_path / "notebooks", tmp_path / "workspace"
    write_lesson(source, "02_b.ipynb", "02 · Second")
    write_lesson(source, "01_a.ipynb", "01 · First")
    write_lesson(source, "_draft.ipynb", "not a lesson")
    assert [p.name for p in ws.prepare_workspace(workspace, source)] == ["01_a.ipynb", "02_b.ipynb"]
    mine = workspace / "01_a.ipynb"
    mine.write_text(mine.read_text().replace("x = 1", "x = 'my answer'"))
    write_lesson(source, "03_c.ipynb", "03 · Third")  # a course update adds a lesson
    assert [p.name for p in ws.prepare_workspace(workspace, source)] == ["03_c.ipynb"]
    assert "my answer" in mine.read_text()
    page = (workspace / ws.START_PAGE).read_text().splitlines()
    assert [line for line in page if line.startswith("1. ")] == [
        "1. [01 · First](01_a.ipynb)", "1. [02 · Second](02_b.ipynb)", "1. [03 · Third](03_c.ipynb)"]
    assert not (workspace / "_draft.ipynb").exists()


def test_refresh_carries_answers_by_exercise_id_and_keeps_a_backup(tmp_path: Path) -> None:
    source, workspace = tmp_path / "notebooks", tmp_path / "workspace"
    write_lesson(source, "04_x.ipynb", "04 · Old", {"04.1": "# template", "04.2": "# template"})
    ws.prepare_workspace(workspace, source)
    learner = nbformat.read(workspace / "04_x.ipynb", as_version=4)
    learner.cells[2].source = "def f():\n    return 'mine'"
    learner.cells[1].source = "x = 'scribbled on the lesson'"
    nbformat.write(learner, workspace / "04_x.ipynb")
    # The course update renames the title, reorders the answers and adds 04.3.
    write_lesson(source, "04_x.ipynb", "04 · New", {"04.2": "# template", "04.1": "# new template",
                                                     "04.3": "# template"})
    done = ws.refresh("04", workspace, source)
    assert done.carried == ["04.1"] and done.copy == workspace / "04_x.ipynb" and done.unreadable is None
    fresh = nbformat.read(workspace / "04_x.ipynb", as_version=4)
    by_id = {c.metadata.get("exercise_id"): c.source for c in fresh.cells}
    assert by_id["04.1"] == "def f():\n    return 'mine'" and by_id["04.3"] == "# template"
    assert fresh.cells[0].source.startswith("# 04 · New") and fresh.cells[1].source == "x = 1"
    assert done.backup.parent == workspace / "backups" and "scribbled" in done.backup.read_text()


def test_refresh_copies_a_missing_lesson_and_rejects_unknown_ones(tmp_path: Path) -> None:
    source, workspace = tmp_path / "notebooks", tmp_path / "workspace"
    write_lesson(source, "12a_rnn.ipynb", "12a · RNN")
    write_lesson(source, "12b_lstm.ipynb", "12b · LSTM")
    assert ws.refresh("12b", workspace, source) == (workspace / "12b_lstm.ipynb", None, [], None)
    with pytest.raises(server.LabError, match="no single lesson '12' .* lessons: 12a, 12b"):
        ws.refresh("12", workspace, source)


def test_workspace_sits_beside_notebooks_and_lessons_use_no_relative_paths() -> None:
    """A copy in workspace/ finds data and checkpoints exactly as the original: via PROJECT_ROOT."""
    assert ws.WORKSPACE.parent == ws.NOTEBOOKS.parent == PROJECT_ROOT
    for notebook in ws.lessons():
        for cell in nbformat.read(notebook, as_version=4).cells:
            if cell.cell_type == "code":
                assert "../" not in cell.source, f"{notebook.name} uses a relative path: {cell.source[:80]}"


def test_the_exercises_answer_reader_finds_exactly_the_answer_cells_refresh_carries() -> None:
    """refresh reads answers with exercises.notebooks.answer_cells (code cells with an exercise_id); the lessons
    give an exercise_id to their answer cells only, the code cells tagged `exercise`."""
    from course_utils.exercises.notebooks import ANSWER_TAG, answer_cells

    found = 0
    for notebook in ws.lessons():
        nb = nbformat.read(notebook, as_version=4)
        tagged = {c.metadata["exercise_id"]: c.source for c in nb.cells
                  if c.cell_type == "code" and ANSWER_TAG in c.metadata.get("tags", [])}
        with_id = [c for c in nb.cells if "exercise_id" in c.metadata]
        assert answer_cells(nb) == tagged and len(with_id) == len(tagged), notebook.name
        found += len(tagged)
    assert found >= 10  # the course has exercises, so the comparison compared something


def test_settings_overrides_match_this_jupyterlabs_schemas() -> None:
    overrides = json.loads((server.SETTINGS_DIR / "overrides.json").read_text())
    schemas = Path(sys.prefix) / "share" / "jupyter" / "lab" / "schemas"
    assert overrides["@jupyterlab/apputils-extension:notification"]["fetchNews"] == "false"
    for plugin, values in overrides.items():
        package, _, name = plugin.partition(":")
        schema = json.loads((schemas / package / f"{name}.json").read_text())
        for key, value in values.items():
            spec = schema["properties"][key]  # a misspelt setting is silently ignored by JupyterLab
            allowed = [choice["const"] for choice in spec.get("oneOf", [])]
            assert not allowed or value in allowed, (plugin, key, value)


def test_serve_without_a_token_on_stdin_stops_before_starting() -> None:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    done = subprocess.run([sys.executable, "-m", "course_utils.tools.lab", "serve", "--port", "1"],
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 2 and "lab: error: no token on stdin" in done.stderr


def test_refresh_cli_says_what_it_kept(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert lab.main(["--workspace", str(tmp_path), "refresh", "04"]) == 0
    assert (tmp_path / "04_fashion_mnist.ipynb").read_bytes() == (ws.NOTEBOOKS / "04_fashion_mnist.ipynb").read_bytes()
    assert lab.main(["--workspace", str(tmp_path), "refresh", "04"]) == 0
    out = capsys.readouterr().out
    assert "lab: refreshed 04; your answers carried over: none" in out
    assert f"lab: your previous copy: {tmp_path / 'backups'}/04_fashion_mnist.bak-" in out
    assert lab.main(["--workspace", str(tmp_path), "refresh", "99"]) == 2
    assert "lab: error: no single lesson '99'" in capsys.readouterr().err


def test_a_server_that_dies_at_start_is_named_in_the_error() -> None:
    dead = subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"])
    dead.wait()
    with pytest.raises(server.LabError, match="JupyterLab exited with status 3 before the lab answered"):
        server.wait_ready(dead, 1, "tok", timeout=5)


def test_lesson_titles_are_plain_text_so_the_rendered_start_page_shows_them(tmp_path: Path) -> None:
    lesson = write_lesson(tmp_path, "16_d.ipynb", "16 · Distributed training with `torchrun`")
    assert ws.lesson_title(lesson) == "16 · Distributed training with torchrun"


# ---------------------------------------------------------------- issue 25: backups, broken copies, bad input


def run_cli(argv: list[str], capsys: pytest.CaptureFixture) -> tuple[int, str, str]:
    """Return (exit status, stdout, stderr) of lab's command line, argparse's exits included."""
    try:
        status = lab.main(argv)
    except SystemExit as stop:
        status = stop.code
    out, err = capsys.readouterr()
    return status, out, err


def scribble(copy: Path, text: str) -> None:
    """Write the learner's note into the working copy's second cell."""
    nb = nbformat.read(copy, as_version=4)
    nb.cells[1].source = f"x = {text!r}"
    nbformat.write(nb, copy)


def test_two_refreshes_in_one_second_keep_two_backups(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    source, workspace = tmp_path / "notebooks", tmp_path / "workspace"
    write_lesson(source, "04_x.ipynb", "04 · X", {"04.1": "# template"})
    ws.prepare_workspace(workspace, source)
    one_second = time.localtime()  # no sleep, and the clock held still: both refreshes stamp the same second
    monkeypatch.setattr(time, "strftime", lambda fmt, t=one_second, strftime=time.strftime: strftime(fmt, t))
    for note in ("first notes", "second notes"):
        scribble(workspace / "04_x.ipynb", note)
        ws.refresh("04", workspace, source)
    backups = sorted((workspace / "backups").iterdir())
    assert len(backups) == 2 and all(p.name.startswith("04_x.bak-") for p in backups)
    assert sorted("first notes" in p.read_text() for p in backups) == [False, True]
    assert sorted("second notes" in p.read_text() for p in backups) == [False, True]


def test_refresh_of_a_truncated_copy_keeps_it_and_puts_a_fresh_one(
        tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    lesson = ws.NOTEBOOKS / "04_fashion_mnist.ipynb"
    copy = tmp_path / lesson.name
    copy.write_bytes(lesson.read_bytes()[:5000])  # an editor crash cut it short
    broken = copy.read_bytes()
    status, out, err = run_cli(["--workspace", str(tmp_path), "refresh", "04"], capsys)
    assert status == 0, err
    assert copy.read_bytes() == lesson.read_bytes()
    [backup] = (tmp_path / "backups").iterdir()
    assert backup.read_bytes() == broken
    said = [line for line in (out + err).splitlines() if "could not be carried over" in line]
    assert len(said) == 1 and str(backup) in said[0] and "Traceback" not in err


def test_a_damaged_course_notebook_is_named_with_its_fix(tmp_path: Path) -> None:
    source, workspace = tmp_path / "notebooks", tmp_path / "workspace"
    lesson = write_lesson(source, "04_x.ipynb", "04 · X")
    ws.prepare_workspace(workspace, source)
    lesson.write_bytes(lesson.read_bytes()[:40])  # a half-written course update
    mine = (workspace / "04_x.ipynb").read_bytes()
    for call in (lambda: ws.refresh("04", workspace, source), lambda: ws.prepare_workspace(workspace, source)):
        with pytest.raises(server.LabError, match=f"^{lesson} is not a readable notebook .*git checkout -- {lesson}$"):
            call()
    assert (workspace / "04_x.ipynb").read_bytes() == mine and not (workspace / "backups").exists()


@pytest.mark.parametrize("port", ["70000", "-1", "0", "eighty"])
def test_an_invalid_port_is_refused_at_parse_time(
        port: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    monkeypatch.setattr(lab, "cmd_start", lambda *a, **k: pytest.fail("the lab started"))
    status, out, err = run_cli(["--workspace", str(tmp_path), "--port", port], capsys)
    assert status == 2 and out == ""
    assert len(err.splitlines()) == 1 and "--port" in err and "1-65535" in err and "in use" not in err


@pytest.mark.parametrize("command", [[], ["refresh", "04"]])
def test_a_workspace_that_is_a_file_is_one_line(
        command: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    monkeypatch.setattr(lab, "cmd_start", lambda *a, **k: pytest.fail("the lab started"))
    afile = tmp_path / "notes.txt"
    afile.write_text("mine")
    status, _, err = run_cli(["--workspace", str(afile), *command], capsys)
    assert status == 2 and len(err.splitlines()) == 1
    assert "--workspace" in err and str(afile) in err and "folder" in err
    assert afile.read_text() == "mine"


@pytest.mark.parametrize("error, names", [
    (PermissionError(13, "Permission denied", "/w/04_x.ipynb"), "/w/04_x.ipynb"),
    (nbformat.reader.NotJSONError("Notebook does not appear to be JSON: '{\\n \"cells\": [\\n'"), "JSON"),
    (nbformat.ValidationError("The notebook is invalid and is missing an expected key: cells\n\nmore"), "cells"),
])
def test_expected_failures_are_one_line_and_status_2(
        error: Exception, names: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture) -> None:
    def failing(*args, **kwargs):
        raise error

    monkeypatch.setattr(lab, "refresh", failing)
    status, _, err = run_cli(["--workspace", str(tmp_path), "refresh", "04"], capsys)
    assert status == 2 and len(err.splitlines()) == 1 and err.startswith("lab: error: ") and names in err


def test_a_workspace_below_a_file_is_one_line_from_the_cli_and_an_exception_from_the_library(
        tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    (tmp_path / "afile").write_text("")
    below = tmp_path / "afile" / "ws"
    with pytest.raises((OSError, server.LabError)):
        ws.refresh("04", below)
    status, _, err = run_cli(["--workspace", str(below), "refresh", "04"], capsys)
    assert status == 2 and len(err.splitlines()) == 1 and str(tmp_path / "afile") in err


def test_ctrl_c_stops_the_lab_even_when_the_parent_left_it_ignored_and_blocked() -> None:
    """A test runner's worker or a background job can pass SIGINT on ignored or blocked; the lab must still stop."""
    import signal

    code = ("import time\nfrom course_utils.tools.jupyter_server import interrupted_by_signals\n"
            "try:\n    with interrupted_by_signals():\n        print('ready', flush=True)\n        time.sleep(60)\n"
            "except KeyboardInterrupt:\n    print('interrupted', flush=True)\n")

    def ignore_and_block() -> None:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})

    child = subprocess.Popen([sys.executable, "-c", code], cwd=PROJECT_ROOT, stdout=subprocess.PIPE, text=True,
                             preexec_fn=ignore_and_block)
    try:
        assert child.stdout.readline().strip() == "ready"
        child.send_signal(signal.SIGINT)
        assert child.stdout.readline().strip() == "interrupted"
        assert child.wait(timeout=30) == 0
    finally:
        child.kill()
        child.wait()
        child.stdout.close()
