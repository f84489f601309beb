import json
import os
import re

import nbformat
import pytest
import torch
import yaml
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from course_utils.paths import PROJECT_ROOT
from course_utils.tools import live_display, runner
from course_utils.tools.profiles import ProfileError


def _notebook(path, parameters_src, body_src, tags=()):
    cells = [new_markdown_cell("# t"), new_code_cell(parameters_src, metadata={"tags": ["parameters"]}),
             new_code_cell(body_src, metadata={"tags": list(tags)})]
    nb = new_notebook(cells=cells, metadata={"kernelspec": {"name": "python3", "display_name": "Python 3",
                                                             "language": "python"}})
    nbformat.write(nb, path)


@pytest.fixture
def course(tmp_path, monkeypatch):
    notebooks, profiles = tmp_path / "notebooks", tmp_path / "profiles"
    notebooks.mkdir()
    profiles.mkdir()
    _notebook(notebooks / "01_a.ipynb", "device = 'auto'\nnum_epochs = 5\nlr = 0.001  # Adam's step size\n",
              "from course_utils.core.report import record\nrecord(epochs=num_epochs, device=device)")
    _notebook(notebooks / "02_b.ipynb", "device = 'auto'\n", "assert device == 'auto', 'boom'")
    (profiles / "ci.yaml").write_text("threads: 1\nparameters: {device: cpu, num_epochs: 1}\n"
                                      "notebooks:\n  01_a: {num_epochs: 2}\n")
    monkeypatch.setattr(runner, "NOTEBOOKS_DIR", notebooks)
    monkeypatch.setattr(runner, "PROFILES_DIR", profiles)
    return tmp_path


def test_plan_injects_only_declared_parameters_and_the_cli_wins(course):
    profile = runner.load_profile("ci")
    jobs = runner.plan(profile, runner.discover(), course / "out", {"num_epochs": 7})
    assert [j.parameters for j in jobs] == [{"device": "cpu", "num_epochs": 7}, {"device": "cpu"}]
    assert jobs[0].env == {"COURSE_THREADS": "1", "COURSE_PROGRESS": "0"}


def test_profile_typos_fail_before_running(course):
    (course / "profiles" / "bad.yaml").write_text("notebooks:\n  02_b: {num_epoch: 1}\n")
    with pytest.raises(runner.RunnerError, match="does not declare"):
        runner.plan(runner.load_profile("bad"), runner.discover(), course / "out", {})
    (course / "profiles" / "ghost.yaml").write_text("notebooks:\n  99_x: {}\n")
    with pytest.raises(runner.RunnerError, match="do not exist"):
        runner.plan(runner.load_profile("ghost"), runner.discover(), course / "out", {})
    (course / "profiles" / "common.yaml").write_text("parameters: {num_epoch: 1}\n")
    with pytest.raises(runner.RunnerError, match=r"profile sets \['num_epoch'\], which no notebook declares"):
        runner.plan(runner.load_profile("common"), runner.discover(), course / "out", {})
    with pytest.raises(ProfileError, match="known profiles: bad, ci, common, ghost"):
        runner.load_profile("nope")


@pytest.mark.parametrize("argv, message", [(["--device", "tpu"], "unknown device"),
                                           (["--epochs", "0"], "num_epochs must be a whole number >= 1"),
                                           (["--set", "oops"], "NAME=VALUE"),
                                           (["--threads", "0"], "threads must be a whole number"),
                                           (["--set", "threads=0"], "threads must be a whole number"),
                                           (["--set", "threads=abc"], "threads must be a whole number"),
                                           (["--set", "num_epochs=2.5"], "num_epochs must be a whole number"),
                                           (["--set", "device=tpu"], "unknown device"),
                                           (["--set", "device=cuda:x"], "unknown device"),
                                           (["--set", "lrr=0.01"], r"no selected notebook declares \['lrr'\]"),
                                           (["--set", "lr=abc"],
                                            r"--set lr=abc: 01_a's lr takes a number, not text "
                                            r"\(its default is 0.001\)$"),
                                           (["--set", "lr=[1,2]"], "--set lr=\\[1, 2\\]: 01_a's lr takes a number, "
                                                                   "not a list"),
                                           (["--set", "lr=true"], "01_a's lr takes a number, not true"),
                                           (["--set", "device=5"], "device must be a string"),
                                           (["--set", "lr=[1,"], r"--set lr=\[1,: '\[1,' is not a YAML value"),
                                           (["--jobs", "0"], "--jobs must be a whole number >= 1, got 0"),
                                           (["--only", "02", "--epochs", "3"], "no selected notebook declares")])
def test_bad_command_line_fails_before_anything_runs(course, argv, message, capsys):
    assert runner.main(["--profile", "ci", "--out", str(course / "out"), *argv]) == 2  # main turns it into a code
    err = capsys.readouterr().err
    assert re.search(message, err, re.MULTILINE) and len(err.splitlines()) == 1
    assert not (course / "out").exists()
    with pytest.raises(runner.RunnerError, match=message):  # the library raises, it does not exit
        args = runner.parse_args(["--profile", "ci", "--out", str(course / "out"), *argv])
        runner.plan(runner.load_profile("ci"), runner.discover(args.only), course / "out", runner.cli_overrides(args))


def test_run_writes_executed_notebooks_and_a_summary(course):
    code = runner.main(["--profile", "ci", "--out", str(course / "out")])
    assert code == 1  # 02_b fails on purpose
    rows = json.loads((course / "out" / "summary.json").read_text())
    assert [(r["notebook"], r["status"]) for r in rows] == [("01_a", "pass"), ("02_b", "fail")]
    assert rows[0]["metrics"] == {"epochs": 2, "device": "cpu"}
    assert "boom" in rows[1]["error"]
    summary = (course / "out" / "summary.md").read_text()
    assert "| 01_a | pass |" in summary and "1/2 passed" in summary
    assert (course / "out" / "01_a.ipynb").exists()


def test_prepare_only_keeps_outputs_and_injects(course):
    runner.main(["--profile", "ci", "--prepare-only", "--out", str(course / "prep")])
    nb = nbformat.read(course / "prep" / "01_a.ipynb", as_version=4)
    injected = [c for c in nb.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert "num_epochs = 2" in injected[0].source
    # nothing executes here to receive $COURSE_THREADS, so the profile's thread count is injected
    assert "threads = 1" in injected[0].source


def test_commit_strips_tagged_outputs_and_skips_parameterised_runs(course):
    nb_path = course / "notebooks" / "03_c.ipynb"
    _notebook(nb_path, "seed = 0\n", "print('a photo')", tags=["strip-output"])
    (course / "profiles" / "default.yaml").write_text("parameters: {}\n")
    assert runner.main(["--profile", "default", "--only", "03", "--commit", "--out", str(course / "o")]) == 0
    committed = nbformat.read(nb_path, as_version=4)
    assert committed.cells[2].outputs == [] and "papermill" not in committed.metadata
    facts = committed.metadata[runner.RUN_FACTS]  # what the website shows of the run behind the outputs
    assert facts["profile"] == "default" and facts["torch"] == torch.__version__.split("+")[0]
    assert facts["minutes"] >= 0 and len(facts["date"]) == 10 and set(facts) == {"profile", "date", "minutes", "torch"}
    before = (course / "notebooks" / "01_a.ipynb").read_text()
    runner.main(["--profile", "ci", "--only", "01", "--commit", "--out", str(course / "o2")])
    assert (course / "notebooks" / "01_a.ipynb").read_text() == before  # parameters were injected


def test_relative_run_folder_still_collects_metrics(course, monkeypatch):
    monkeypatch.chdir(course)  # notebooks run in their own folder, so the path must not stay relative
    assert runner.main(["--profile", "ci", "--only", "01", "--out", "relative-run"]) == 0
    rows = json.loads((course / "relative-run" / "summary.json").read_text())
    assert rows[0]["metrics"] == {"epochs": 2, "device": "cpu"}


def test_profile_extends_another_merged_per_notebook(course):
    profiles = course / "profiles"
    (profiles / "base.yaml").write_text("threads: 2\nparameters: {device: cpu, num_epochs: 3}\n"
                                        "notebooks:\n  01_a: {num_epochs: 4, lr: 0.1}\n  02_b: {x: 1}\n")
    (profiles / "child.yaml").write_text("extends: base\nparameters: {device: cuda}\n"
                                         "notebooks:\n  01_a: {lr: 0.5, subset: null}\n")
    profile = runner.load_profile("child")
    assert profile == {"threads": 2, "parameters": {"device": "cuda", "num_epochs": 3},
                       "notebooks": {"01_a": {"num_epochs": 4, "lr": 0.5, "subset": None}, "02_b": {"x": 1}}}
    assert "extends" not in profile


def test_profile_cycle_and_unknown_parent_are_clear_errors(course):
    profiles = course / "profiles"
    (profiles / "a.yaml").write_text("extends: b\n")
    (profiles / "b.yaml").write_text("extends: a\n")
    with pytest.raises(ProfileError, match="cycle: a -> b -> a"):
        runner.load_profile("a")
    (profiles / "orphan.yaml").write_text("extends: nowhere\n")
    with pytest.raises(ProfileError, match=r"no profile 'nowhere' \(orphan.yaml extends it\)"):
        runner.load_profile("orphan")


def test_the_real_profiles_load_and_gpu_extends_full():
    gpu, full = runner.load_profile("gpu"), runner.load_profile("full")
    assert gpu["parameters"]["device"] == "cuda"
    for stem, block in full["notebooks"].items():  # every full-profile setting reaches gpu unless gpu changes it
        assert set(block) <= set(gpu["notebooks"][stem])


def test_the_kernel_gets_the_threads_and_this_process_keeps_its_environment(course, monkeypatch):
    _notebook(course / "notebooks" / "03_env.ipynb", "seed = 0\n",
              "import os\nfrom course_utils.core.report import record\n"
              "record(threads=os.environ['COURSE_THREADS'], backend=os.environ.get('MPLBACKEND', 'inline'),\n"
              "       progress=os.environ.get('COURSE_PROGRESS', 'bars'))")
    monkeypatch.setenv("COURSE_THREADS", "7")  # this process's value must not reach the kernel, nor change
    monkeypatch.setenv("MPLBACKEND", "Agg")  # CI's own setting: the kernels must still draw their figures inline
    monkeypatch.delenv(runner.METRICS_ENV, raising=False)
    before = dict(os.environ)
    [job] = runner.plan(runner.load_profile("ci"), runner.discover(["03"]), course / "out", {})
    (course / "out").mkdir()
    row = runner.execute(job)  # in this process: the old runner updated os.environ here
    assert row["status"] == "pass", row["error"]
    # the profile's thread count; the kernel's own inline backend, not the Agg of this process
    # and no progress bars: executed notebooks are committed
    assert row["metrics"] == {"threads": "1", "backend": "module://matplotlib_inline.backend_inline", "progress": "0"}
    assert dict(os.environ) == before


def test_run_folder_files_are_written_whole_with_ordinary_permissions(course):
    old = os.umask(0o022)
    try:
        runner.main(["--profile", "ci", "--only", "01", "--out", str(course / "out")])
    finally:
        os.umask(old)
    out = course / "out"
    assert sorted(p.name for p in out.iterdir() if p.name.startswith(".")) == []  # no temporary files
    for name in ("summary.json", "summary.md", "profile.yaml"):
        assert oct((out / name).stat().st_mode & 0o777) == oct(0o644)
    assert yaml.safe_load((out / "profile.yaml").read_text())["notebooks"]["01_a"] == {"num_epochs": 2}


def test_gpu_check_fails_clearly_without_cuda(tmp_path):
    import subprocess
    import sys

    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA device: `make gpu-check` runs the real check")
    done = subprocess.run(["bash", str(PROJECT_ROOT / "scripts" / "gpu-check.sh")], capture_output=True,
                          text=True, timeout=120, env={**os.environ, "PY": sys.executable, "OUT": str(tmp_path / "o")})
    assert done.returncode == 2 and "gpu-check: no CUDA device" in done.stderr
    assert not (tmp_path / "o").exists()  # nothing ran


def test_gpu_check_profile_is_the_gpu_profile_run_two_at_a_time():
    check, gpu = runner.load_profile("gpu-check"), runner.load_profile("gpu")
    assert check["jobs"] == 2
    assert {k: v for k, v in check.items() if k not in ("description", "jobs", "threads")} == \
        {k: v for k, v in gpu.items() if k != "description"}


@pytest.mark.skipif(os.name != "posix", reason="ipc sockets are POSIX only")
def test_kernels_talk_over_private_sockets_not_the_working_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    manager = runner.kernel_manager({})(kernel_name="python3")
    assert manager.transport == "ipc" and os.path.isabs(manager.ip)  # jupyter_client's default is "kernel-ipc" here



# ---------------------------------------------------------------- progress while notebooks run


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _row(notebook, status="pass", seconds=95.0, metrics=None, error=None):
    return {"notebook": notebook, "status": status, "seconds": seconds, "metrics": metrics or {}, "error": error}


def test_plain_lines_name_start_finish_and_at_most_one_line_per_notebook_every_30_s():
    import io

    out, clock = io.StringIO(), FakeClock()
    shown = live_display.PlainProgress(["01_a", "02_b", "03_c"], out, clock)
    shown.handle(live_display.Event("02_b"))
    shown.handle(live_display.Event("02_b", 1, 4, "import torch"))
    for step in range(240):  # a minute of the parent's loop, four ticks a second
        clock.now += 0.25
        if step == 20:
            shown.handle(live_display.Event("02_b", 3, 4, "train(model)"))
        shown.tick()
    row = _row("02_b", metrics={"accuracy": 0.5})
    shown.finish(row, runner.result_line(row))
    shown.handle(live_display.Event("02_b", 4, 4, "late"))  # an event drained after its row changes nothing
    shown.tick()
    assert out.getvalue().splitlines() == ["[2/3] 02_b: started",
                                           "[2/3] 02_b  0:30  cell 3/4: train(model)",
                                           "[2/3] 02_b  1:00  cell 3/4: train(model)",
                                           "[2/3] 02_b: pass in 95 s  accuracy 0.5000"]
    assert "\x1b" not in out.getvalue()  # no cursor movement in a log


def test_live_lines_are_redrawn_at_most_once_a_second_and_show_every_running_notebook():
    import io

    out, clock = io.StringIO(), FakeClock()
    shown = live_display.LiveProgress(["01_a", "02_b"], out, clock, width=lambda: 40)
    shown.handle(live_display.Event("01_a", 2, 9, "x = torch.randn(64, 784)  # a batch of flattened images"))
    shown.handle(live_display.Event("02_b"))
    draws = []
    for _ in range(40):  # ten seconds, ticked four times a second
        before = out.getvalue()
        shown.tick()
        if out.getvalue() != before:
            draws.append(clock.now)
        clock.now += 0.25
    assert draws == [100.0 + s for s in range(10)]
    last = out.getvalue().rsplit("\x1b[2F\x1b[J", 1)[1]  # the last redraw: up two lines, clear, two lines
    assert last.splitlines() == ["[1/2] 01_a  0:09  cell 2/9: x = torch.r", "[2/2] 02_b  0:09  starting"]
    assert all(len(line) <= 39 for line in last.splitlines())  # no wrapped line to throw the redraw off
    shown.finish(_row("01_a"), "pass in 95 s")
    assert out.getvalue().endswith("\x1b[2F\x1b[J[1/2] 01_a: pass in 95 s\n")  # the status lines make room


def test_plain_lines_without_a_terminal_or_in_ci():
    import io

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    assert isinstance(live_display.choose(["a"], io.StringIO(), {}), live_display.PlainProgress)
    assert isinstance(live_display.choose(["a"], Terminal(), {"CI": "true"}), live_display.PlainProgress)
    assert isinstance(live_display.choose(["a"], Terminal(), {}), live_display.LiveProgress)


def test_each_code_cell_start_reaches_the_queue_from_nbclient(course):
    import queue

    [job] = runner.plan(runner.load_profile("ci"), runner.discover(["01"]), course / "out", {})
    (course / "out").mkdir()
    events = queue.Queue()
    assert runner.execute(job, events)["status"] == "pass"
    seen = [events.get_nowait() for _ in range(events.qsize())]
    # the markdown cell is skipped; papermill's injected parameters are the second of three code cells
    assert seen == [live_display.Event("01_a"), live_display.Event("01_a", 1, 3, "device = 'auto'"),
                    live_display.Event("01_a", 2, 3, "device = \"cpu\""),
                    live_display.Event("01_a", 3, 3, "from course_utils.core.report import record")]


def test_two_jobs_at_once_report_through_the_parent(course, capsys):
    assert runner.main(["--profile", "ci", "--jobs", "2", "--out", str(course / "out")]) == 1
    lines = capsys.readouterr().out.splitlines()  # not a terminal here: plain lines
    assert {"[1/2] 01_a: started", "[2/2] 02_b: started"} <= set(lines)
    assert "[1/2] 01_a: pass in" in "\n".join(lines) and "AssertionError: boom" in "\n".join(lines)


# ---------------------------------------------------------------- the HTML report


def _links(index):
    return re.findall(r'<a href="([^"]+)"', index.read_text())


def test_the_html_report_links_every_executed_notebook_relatively_and_fetches_nothing(course):
    import shutil

    runner.main(["--profile", "ci", "--out", str(course / "out")])
    index = course / "out" / "index.html"
    assert _links(index) == ["01_a.html", "02_b.html"]  # the failed notebook's page shows its traceback
    assert "boom" in (course / "out" / "02_b.html").read_text()
    moved = shutil.move(course / "out", course / "elsewhere")  # links are relative: the folder can move
    for link in _links(moved / "index.html"):
        page = (moved / link).read_text()
        assert page.startswith("<!DOCTYPE html>") and "jp-Notebook" in page
        assert not re.search(r"""<(script|link|img|iframe)\b[^>]*\b(src|href)=["']?(https?:)?//""", page)
    table = (moved / "index.html").read_text()
    assert re.search(r'01_a</a></td><td class="pass">pass</td><td class="minutes">\d+\.\d</td>'
                     r"<td>epochs 2, device cpu</td>", table)
    assert str(course) not in table  # no machine path in the report


def test_the_html_report_is_written_atomically(course, monkeypatch):
    from course_utils.tools import report_html

    runner.main(["--profile", "ci", "--only", "01", "--out", str(course / "out")])
    before = (course / "out" / "index.html").read_text()

    def broken(*args, **kwargs):
        raise RuntimeError("renderer broke")

    monkeypatch.setattr(report_html, "index_page", broken)
    with pytest.raises(RuntimeError):
        report_html.write_report([_row("01_a")], course / "out", "t")
    assert (course / "out" / "index.html").read_text() == before
    assert not [p for p in (course / "out").iterdir() if p.name.startswith(".")]


# ---------------------------------------------------------------- a real lesson's run


@pytest.fixture(scope="module")
def lesson_01_run(tmp_path_factory):
    """The runner's command line at the ci profile on lesson 01, with no terminal, as CI runs it."""
    import subprocess
    import sys

    out = tmp_path_factory.mktemp("lesson-01") / "run"
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    done = subprocess.run([sys.executable, "-m", "course_utils.tools.runner", "--profile", "ci", "--only", "01",
                           "--out", str(out)], capture_output=True, text=True, timeout=300, env=env)
    return done, out


def test_a_real_run_shows_no_unencrypted_kernel_warning(lesson_01_run):
    done, _ = lesson_01_run
    assert done.returncode == 0, done.stderr[-2000:]
    assert "without encryption" not in done.stderr  # the kernel's stderr is the runner's: it inherits the fd


def test_a_real_run_prints_plain_progress_and_a_report_whose_links_resolve(lesson_01_run):
    done, out = lesson_01_run
    # on a busy machine the lesson may take over 30 s: a status line then comes between these two
    lines = [line for line in done.stdout.splitlines() if not re.match(r"\[1/1\] 01_tensors  \d+:\d\d  cell ", line)]
    assert lines[1] == "[1/1] 01_tensors: started" and lines[2].startswith("[1/1] 01_tensors: pass in ")
    links = _links(out / "index.html")
    assert links == ["01_tensors.html"] and all((out / link).is_file() for link in links)


def test_a_cells_warning_still_shows(course, capfd):
    _notebook(course / "notebooks" / "03_warn.ipynb", "seed = 0\n",
              "import warnings\nwarnings.warn('a deliberate warning')")
    assert runner.main(["--profile", "ci", "--only", "03", "--out", str(course / "out")]) == 0
    assert "without encryption" not in capfd.readouterr().err
    cell = nbformat.read(course / "out" / "03_warn.ipynb", as_version=4).cells[-1]
    assert [o.name for o in cell.outputs] == ["stderr"] and "UserWarning: a deliberate warning" in cell.outputs[0].text


def test_summary_metrics_print_small_numbers_readably():
    from course_utils.tools.report_html import format_metrics

    assert format_metrics({"max_abs_error": 1.8e-07, "accuracy": 0.8712, "steps": 3}) == \
        "max_abs_error 1.80e-07, accuracy 0.8712, steps 3"


# ---------------------------------------------------------------- what the runner refuses, in one line, exit 2


def _one_error_line(capsys):
    """The runner's stderr, checked to be a single `runner: error:` line."""
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and err.startswith("runner: error: "), err
    return err


def _answers(folder):
    """Every file under `folder` with its text: what a refused run must leave exactly as it was."""
    return {p: p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("out, message", [("workspace", "workspace is your working copies, which a run must not"),
                                          ("workspace/run", "is inside .*workspace \\(your working copies\\)"),
                                          ("notebooks", "notebooks is the lessons, which a run must not write over"),
                                          (".", "is a folder above .*(workspace|notebooks)"),
                                          ("mine", r"already holds notebooks the runner did not write \(notes.ipynb\)"),
                                          ("theirs", r"already holds notebooks the runner did not write \(x.ipynb\)")])
def test_a_run_never_writes_over_the_lessons_the_working_copies_or_other_notebooks(course, monkeypatch, capsys,
                                                                                  out, message):
    monkeypatch.chdir(course)  # the project's root, as `make course` runs it
    monkeypatch.setattr(runner, "WORKSPACE_DIR", course / "workspace", raising=False)
    (course / "workspace").mkdir()
    _notebook(course / "workspace" / "01_a.ipynb", "device = 'auto'\n", "answer = 42  # the learner's own work")
    (course / "mine").mkdir()
    _notebook(course / "mine" / "notes.ipynb", "seed = 0\n", "my notes")
    (course / "theirs" / "solution-sources").mkdir(parents=True)  # where --solutions puts its filled copies
    _notebook(course / "theirs" / "solution-sources" / "x.ipynb", "seed = 0\n", "someone else's")
    before = _answers(course)
    assert runner.main(["--profile", "ci", "--out", out]) == 2
    assert re.search(message, _one_error_line(capsys))
    assert _answers(course) == before  # nothing written, nothing replaced


def test_a_rerun_into_its_own_run_folder_is_allowed(course):
    out = str(course / "out")
    for argv in (["--only", "01", "--out", out], ["--only", "01", "--out", out], ["--prepare-only", "--out", out],
                 ["--only", "01", "--solutions", "--out", out], ["--only", "01", "--solutions", "--out", out]):
        assert runner.main(["--profile", "ci", *argv]) == 0, argv


def test_an_out_folder_that_is_a_file_or_not_writable_is_refused_before_running(course, capsys):
    (course / "a-file").write_text("not a folder")
    assert runner.main(["--profile", "ci", "--out", str(course / "a-file")]) == 2
    assert "is a file, not a folder" in _one_error_line(capsys)
    assert runner.main(["--profile", "ci", "--out", str(course / "a-file" / "run")]) == 2
    assert "cannot write to --out" in _one_error_line(capsys)
    assert (course / "a-file").read_text() == "not a folder"
    if os.name == "posix" and os.geteuid() != 0:  # root writes into read-only folders
        (course / "read-only").mkdir(mode=0o555)
        assert runner.main(["--profile", "ci", "--out", str(course / "read-only" / "run")]) == 2
        assert "Permission denied" in _one_error_line(capsys)
    assert "running" not in capsys.readouterr().out  # no notebook ran


@pytest.mark.parametrize("text, message", [
    (b"parameters: {device: cpu\n", r"bad\.yaml: not valid YAML: .* at line 2, column 1$"),
    (b"description: caf\xe9\n", r"bad\.yaml: line 1 is not UTF-8 text \(byte 0xe9\): save the file as UTF-8$"),
    (b"parameters: 5\n", r"bad\.yaml: parameters must be a mapping of parameter: value, got the number 5$"),
    (b"notebooks:\n  01_a: 5\n", r"bad\.yaml: notebooks: 01_a must be a mapping of parameter: value, got the number 5"),
    (b"notebooks: [01_a]\n", r"bad\.yaml: notebooks must map notebook names to blocks of parameters, got a list"),
    (b"jobs: two\n", r"bad\.yaml: jobs must be a whole number >= 1, got 'two'"),
    (b"extends: [ci]\n", r"bad\.yaml: extends must be text, got a list"),
    (b"- 1\n", r"bad\.yaml: expected a mapping of .*, got a list")])
def test_a_broken_profile_is_one_line_naming_the_file(course, capsys, text, message):
    (course / "profiles" / "bad.yaml").write_bytes(text)
    assert runner.main(["--profile", "bad", "--out", str(course / "out")]) == 2
    assert re.search(message, _one_error_line(capsys))
    assert not (course / "out").exists()
    with pytest.raises(ProfileError, match=message):  # the library raises
        runner.load_profile("bad")


def test_only_the_selected_notebooks_are_read(course, capsys):
    (course / "notebooks" / "03_broken.ipynb").write_text('{"cells": [')  # another lesson, half written
    assert runner.main(["--profile", "ci", "--only", "01", "--out", str(course / "out")]) == 0
    capsys.readouterr()
    assert runner.main(["--profile", "ci", "--only", "03", "--out", str(course / "out3")]) == 2
    assert re.search(r"03_broken\.ipynb cannot be read as a notebook \(Notebook does not appear to be JSON",
                     _one_error_line(capsys))


def test_the_summary_gives_the_first_line_of_the_notebooks_own_error(course):
    _notebook(course / "notebooks" / "03_two_lines.ipynb", "seed = 0\n",
              "raise ValueError('seed must be a whole number\\n(the second line of the message)')")
    [job] = runner.plan(runner.load_profile("ci"), runner.discover(["03"]), course / "out", {})
    (course / "out").mkdir()
    row = runner.execute(job)
    assert (row["status"], row["error"]) == ("fail", "ValueError: seed must be a whole number")


# ---------------------------------------------------------------- a full disk


@pytest.fixture
def full_disk(monkeypatch):
    """A list of names: writing a file whose name contains one fails half-way with ENOSPC, as on a full disk.

    Both open() (papermill's own writes) and os.fdopen() (atomic_write) see it; so do the runner's worker
    processes, which are forked from this one.
    """
    import builtins
    import errno
    import io

    if not os.path.isdir("/proc/self/fd"):
        pytest.skip("needs /proc to name a file opened by its descriptor")
    names, real_open = [], io.open

    class HalfWriter:
        def __init__(self, file):
            self.file = file

        def write(self, data):
            self.file.write(data[:len(data) // 2])
            self.file.flush()
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

        def __getattr__(self, name):
            return getattr(self.file, name)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return self.file.__exit__(*exc)

    def open_on_a_full_disk(file, mode="r", *args, **kwargs):
        opened = real_open(file, mode, *args, **kwargs)
        path = os.readlink(f"/proc/self/fd/{file}") if isinstance(file, int) else os.fspath(file)
        writing = any(flag in mode for flag in "wax+")
        return HalfWriter(opened) if writing and any(n in os.path.basename(path) for n in names) else opened

    monkeypatch.setattr(builtins, "open", open_on_a_full_disk)
    monkeypatch.setattr(io, "open", open_on_a_full_disk)
    return names


def test_a_full_disk_never_leaves_half_a_notebook(course, full_disk):
    [job] = runner.plan(runner.load_profile("ci"), runner.discover(["01"]), course / "out", {})
    (course / "out").mkdir()
    assert runner.execute(job)["status"] == "pass"
    before = job.output.read_text()
    full_disk.append("01_a.ipynb")
    row = runner.execute(job)
    full_disk.clear()
    assert job.output.read_text() == before  # the last whole save, a valid notebook
    assert (row["status"], row["error"]) == ("fail", "OSError: [Errno 28] No space left on device")
    assert not [p for p in (course / "out").iterdir() if p.name.startswith(".")]  # no temporary file left


def test_a_full_disk_still_writes_and_prints_what_it_can(course, full_disk, capsys):
    full_disk.extend(["summary.md", "index.html"])
    out = course / "out"
    assert runner.main(["--profile", "ci", "--only", "01", "--out", str(out)]) == 2
    captured = capsys.readouterr()
    full_disk.clear()
    assert "| 01_a | pass |" in captured.out  # the table is still shown
    assert json.loads((out / "summary.json").read_text())[0]["status"] == "pass"  # and what fits is written
    assert not (out / "summary.md").exists() and not (out / "index.html").exists()
    assert (out / "01_a.html").is_file() and (out / "profile.yaml").is_file()
    err = captured.err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("runner: error: could not write summary.md "
                                                         "(No space left on device), index.html (No space left on")
    assert not [p for p in out.iterdir() if p.name.startswith(".")]


# ---------------------------------------------------------------- stopping a run: Ctrl-C, CI's SIGTERM


def _processes_with(token):
    """The processes whose environment carries `token`: everything a run started (kernels inherit it too)."""
    import psutil

    found = []
    for process in psutil.process_iter():
        try:
            if process.environ().get("RUNNER_TEST_TOKEN") == token and process.status() != psutil.STATUS_ZOMBIE:
                found.append(process)
        except psutil.Error:
            pass
    return found


@pytest.mark.skipif(os.name != "posix", reason="signals and process groups are POSIX")
@pytest.mark.parametrize("signame, to_group", [("SIGINT", True), ("SIGTERM", False)])
def test_a_signal_stops_every_process_of_the_run_and_still_writes_the_summary(tmp_path, signame, to_group):
    """Ctrl-C on a terminal signals the runner's whole process group; a CI time-out sends SIGTERM to the runner."""
    import signal
    import subprocess
    import sys
    import time
    import uuid
    from pathlib import Path

    import psutil

    signum = getattr(signal, signame)
    notebooks, profiles, pid_file = tmp_path / "notebooks", tmp_path / "profiles", tmp_path / "kernel.pid"
    notebooks.mkdir()
    profiles.mkdir()
    (profiles / "default.yaml").write_text("parameters: {}\n")
    _notebook(notebooks / "01_sleep.ipynb", "seed = 0\n",
              f"import os, time\nopen({str(pid_file)!r} + '.tmp', 'w').write(str(os.getpid()))\n"
              f"os.replace({str(pid_file)!r} + '.tmp', {str(pid_file)!r})\ntime.sleep(600)")
    _notebook(notebooks / "02_next.ipynb", "seed = 0\n", "print('never reached')")
    script = ("import sys; from pathlib import Path; from course_utils.tools import runner; "
              f"runner.NOTEBOOKS_DIR, runner.PROFILES_DIR = Path({str(notebooks)!r}), Path({str(profiles)!r}); "
              "sys.exit(runner.main(sys.argv[1:]))")
    token = uuid.uuid4().hex
    env = {**{k: v for k, v in os.environ.items() if k != "CI"}, "RUNNER_TEST_TOKEN": token}
    run = subprocess.Popen([sys.executable, "-c", script, "--out", str(tmp_path / "run")], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True, env=env, start_new_session=True)
    try:
        deadline = time.monotonic() + 300
        while not pid_file.exists():  # the kernel is in the sleeping cell once it has written its pid
            assert run.poll() is None, run.communicate()
            assert time.monotonic() < deadline, "the notebook never started"
            time.sleep(0.1)
        kernel = psutil.Process(int(pid_file.read_text()))
        connection_file = next(a for a in kernel.cmdline() if a.endswith(".json"))
        connection = json.loads(Path(connection_file).read_text())
        kernel_files = [connection_file, *(f"{connection['ip']}-{connection[port]}" for port in connection
                                           if port.endswith("_port") and connection["transport"] == "ipc")]
        assert all(os.path.exists(f) for f in kernel_files)
        assert kernel in psutil.Process(run.pid).children(recursive=True)
        if to_group:
            os.killpg(run.pid, signum)
        else:
            run.send_signal(signum)
        out, err = run.communicate(timeout=120)
        left = _processes_with(token)
    finally:
        for process in [*_processes_with(token), *([psutil.Process(run.pid)] if run.poll() is None else [])]:
            process.kill()
    assert run.returncode == 128 + signum, err
    assert "Traceback" not in err
    assert err.splitlines()[-1].startswith(f"runner: interrupted by {signame}: stopped 1 running notebook(s), "
                                           "1 not started; summary in")
    assert left == []  # no worker, kernel or manager runs on
    assert not [f for f in kernel_files if os.path.exists(f)]  # the kernel's files went with it
    summary = (tmp_path / "run" / "summary.md").read_text()
    assert re.search(rf"\| 01_sleep \| interrupted \| [\d.]+ \| \*\*stopped by {signame} after \d+ s\*\* \|", summary)
    assert "| 02_next | interrupted | 0.0 | **not started** |" in summary
    assert "0/2 passed, 2 interrupted" in summary
    assert "interrupted" in (tmp_path / "run" / "index.html").read_text()


def test_the_report_links_what_it_can_render_and_says_what_it_could_not(tmp_path):
    from course_utils.tools import report_html

    _notebook(tmp_path / "01_a.ipynb", "seed = 0\n", "print('fine')")
    (tmp_path / "02_b.ipynb").write_text('{"cells": [')  # cut short, as by a full disk before atomic writes
    problems = []
    index = report_html.write_report([_row("01_a"), _row("02_b", "interrupted", error="stopped by SIGTERM")],
                                     tmp_path, "t", problems)
    assert _links(index) == ["01_a.html"] and (tmp_path / "01_a.html").is_file()
    assert problems == ["02_b.html (Notebook does not appear to be JSON: '{\"cells\": [')"]
    assert '<td class="interrupted">interrupted</td>' in index.read_text() and "stopped by SIGTERM" in index.read_text()
    with pytest.raises(ValueError, match="does not appear to be JSON"):  # without a list, the library raises
        report_html.write_report([_row("02_b")], tmp_path, "t")
