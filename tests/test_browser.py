"""JupyterLab in headless Chromium: the learner's page, started exactly as `make lab` starts it.

One server (the course's launcher, `python -m course_utils.tools.lab`, in a throwaway working copy)
and one browser serve every test here. Lesson 01 and a training lesson get the ci profile's
parameters, run through the *Run All* command, and are checked from the page; screenshots go to
build/browser/. The runner's HTML report is opened once, from file://. Chromium may reach 127.0.0.1
only. Skipped when Debian's chromium and chromium-driver are missing (`make test-packages` installs them).
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import nbformat
import pytest

from course_utils.paths import NOTEBOOKS, PROJECT_ROOT
from course_utils.tools import chromium, runner
from course_utils.tools.workspace import lesson_title, lessons, prepare_workspace

CHROMIUM, CHROMEDRIVER = chromium.CHROMIUM, chromium.CHROMEDRIVER
LESSONS = ("03_training",)  # the cheapest lesson that loads data, trains, plots and checks: every lesson's UI path
SHOTS = PROJECT_ROOT / "build" / "browser"
LOOPBACK_HEX = "0100007F"  # 127.0.0.1 as /proc/net/tcp writes it

pytestmark = [
    pytest.mark.skipif(not (os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER)),
                       reason="Debian's chromium and chromium-driver are not installed (make test-packages)"),
    pytest.mark.timeout(240),
]


# ---------------------------------------------------------------- processes and sockets


def children(pid: int) -> list[int]:
    """Return the pids of pid's live descendants."""
    found, frontier = [], [pid]
    while frontier:
        parent = frontier.pop()
        for task in Path(f"/proc/{parent}/task").glob("*"):
            try:
                kids = [int(k) for k in (task / "children").read_text().split()]
            except OSError:
                continue
            found += kids
            frontier += kids
    return found


def alive(pid: int) -> bool:
    """True while pid exists and is not a zombie."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def parent(pid: int) -> int:
    """Return a process's parent pid (0 once it is gone)."""
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return 0


def cmdline(pid: int) -> list[str]:
    """Return a process's argv ([] once it is gone)."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")[:-1]
    except OSError:
        return []


def listening(pid: int) -> list[tuple[str, int]]:
    """Return the (hex address, port) of every TCP socket pid listens on, from /proc."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and fields[9] in inodes:  # 0A: LISTEN
                address, port = fields[1].split(":")
                found.append((address, int(port, 16)))
    return found


def stop_group(proc: subprocess.Popen, grace: float) -> None:
    """SIGTERM a process group (Ctrl-C's equivalent for the launcher), then SIGKILL it."""
    for sig, timeout in ((signal.SIGTERM, grace), (signal.SIGKILL, 10)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout=timeout)
            return
        except subprocess.TimeoutExpired:
            pass


def free_port() -> int:
    """Return a port that is free on 127.0.0.1 now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# ---------------------------------------------------------------- fixtures


def working_copy(folder: Path) -> Path:
    """A throwaway working copy with the ci parameters injected and the committed outputs cleared."""
    workspace = folder / "workspace"
    prepare_workspace(workspace)
    from papermill.parameterize import parameterize_notebook

    jobs = runner.plan(runner.load_profile("ci"), [NOTEBOOKS / f"{s}.ipynb" for s in LESSONS],
                       folder / "unused", {})
    for job in jobs:
        nb = nbformat.read(job.notebook, as_version=4)
        nb.metadata["papermill"] = {}  # papermill records the parameters there
        nb = parameterize_notebook(nb, job.parameters)
        for cell in nb.cells:
            if cell.cell_type == "code":  # whatever the page shows must come from this run
                cell.outputs, cell.execution_count = [], None
        nbformat.write(nb, workspace / job.notebook.name)
    return workspace


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimpleNamespace]:
    """The course's launcher on a free port, in a tmp working copy; afterwards no process of it is left."""
    folder = tmp_path_factory.mktemp("browser")
    workspace = working_copy(folder)
    config = folder / "jupyter-config"
    config.mkdir()
    # Test-only: window.jupyterapp lets the test run JupyterLab's own commands (Run All).
    (config / "jupyter_lab_config.json").write_text(json.dumps({"LabApp": {"expose_app_in_browser": True}}))
    env = dict(os.environ, JUPYTER_CONFIG_DIR=str(config), JUPYTER_DATA_DIR=str(folder / "jupyter-data"),
               JUPYTERLAB_SETTINGS_DIR=str(folder / "user-settings"), IPYTHONDIR=str(folder / "ipython"),
               JUPYTERLAB_WORKSPACES_DIR=str(folder / "lab-workspaces"),
               PYTHONPATH=os.pathsep.join(filter(None, [str(PROJECT_ROOT), os.environ.get("PYTHONPATH")])),
               **runner.plan(runner.load_profile("ci"), [NOTEBOOKS / "01_tensors.ipynb"], folder, {})[0].env)
    env.pop("MPLBACKEND", None)  # a kernel told to draw with Agg would show no plot in the page
    log = folder / "lab.log"
    port = free_port()
    with open(log, "w") as stderr:
        proc = subprocess.Popen([sys.executable, "-m", "course_utils.tools.lab", "--workspace", str(workspace),
                                 "--no-browser", "--port", str(port), "--timeout", "120"], stdout=subprocess.PIPE,
                                stderr=stderr,
                                text=True, env=env, start_new_session=True)
    seen: set[int] = set()
    try:
        url = ""
        deadline = time.monotonic() + 150  # a busy 2-core machine can take a minute
        while not url and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                pytest.fail(f"the launcher exited with {proc.wait()}:\n{log.read_text()[-3000:]}")
            url = line.split("lab: ready: ", 1)[1].strip() if "lab: ready: " in line else ""
        assert url, f"the launcher never said ready:\n{log.read_text()[-3000:]}"
        # the server is the launcher's child; a process it has just forked carries the same argv for a moment
        jupyter = [pid for pid in children(proc.pid) if "jupyterlab" in cmdline(pid) and parent(pid) == proc.pid]
        assert len(jupyter) == 1, [(pid, parent(pid), cmdline(pid)) for pid in children(proc.pid)]
        yield SimpleNamespace(url=url, port=port, token=url.split("token=", 1)[1], pid=jupyter[0],
                              launcher=proc, workspace=workspace, log=log, seen=seen)
    finally:
        seen.update(children(proc.pid), [proc.pid])
        stop_group(proc, grace=30)
        proc.stdout.close()
    left = [(pid, cmdline(pid)) for pid in seen if alive(pid)]
    for pid, _ in left:
        os.kill(pid, signal.SIGKILL)
    assert not left, f"processes left behind: {left}"


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """Headless Chromium through Debian's chromedriver; it may resolve and reach 127.0.0.1 only."""
    from selenium import webdriver

    options = chromium.options(tmp_path_factory.mktemp("chromium-profile"), "1400,1000")
    service = chromium.service()
    driver = webdriver.Chrome(service=service, options=options)
    driver.set_script_timeout(60)
    seen: set[int] = set()
    try:
        yield driver
    finally:
        seen.update(children(service.process.pid), [service.process.pid])
        try:
            driver.quit()
        finally:
            try:
                os.killpg(service.process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        assert wait_for(lambda: not [p for p in seen if alive(p)], 10), \
            [cmdline(p) for p in seen if alive(p)]


def wait_for(predicate, timeout: float, step: float = 0.25):
    """Poll predicate until it returns something true or timeout passes; return its last value."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(step)


# ---------------------------------------------------------------- the page

APP_READY = "return !!(window.jupyterapp && document.querySelector('#jp-main-dock-panel'));"
RUN_ALL = """
const app = window.jupyterapp;
await app.restored;
const panel = await app.commands.execute('docmanager:open', {path: arguments[0]});
await panel.context.ready;
await panel.sessionContext.ready;
app.shell.activateById(panel.id);
await app.commands.execute('notebook:run-all-cells');  // Run All, on the active notebook
(window.coursePanels = window.coursePanels || {})[panel.id] = panel;
return panel.id;
"""
PAGE_STATE = """
const node = document.getElementById(arguments[0]);  // textContent: innerText skips off-screen cells
const panel = window.coursePanels[arguments[0]];
const prompts = [...node.querySelectorAll('.jp-CodeCell .jp-InputArea-prompt')].map(p => p.textContent.trim());
const outputs = [...node.querySelectorAll('.jp-OutputArea-output')].map(o => o.textContent);
const models = panel.content.widgets.map(c => c.model.toJSON());
return {
  kernel_status: panel.sessionContext.session ? panel.sessionContext.session.kernel.status : null,
  kernel_shown: node.querySelector('.jp-Toolbar-kernelName').textContent.trim(),
  kernel_name: panel.sessionContext.session.kernel.name,
  prompts: prompts,
  errors: models.flatMap(c => (c.outputs || []).filter(o => o.output_type === 'error').map(o => o.ename)),
  tracebacks: outputs.filter(t => t.includes('Traceback')).length,
  checks: outputs.flatMap(t => t.split('\\n')).filter(l => l.startsWith('check passed: ')),
  images: [...node.querySelectorAll('.jp-OutputArea-output img')]
          .filter(i => i.src.startsWith('data:image/png') && i.naturalWidth > 0).length,
};
"""


def page_state(driver, panel_id: str) -> dict:
    """What the notebook's page shows: prompts, outputs, kernel."""
    return driver.execute_script(PAGE_STATE, panel_id)


def test_without_the_token_the_same_url_gets_the_login_page(server: SimpleNamespace, browser) -> None:
    browser.delete_all_cookies()
    browser.get(server.url.split("?", 1)[0])  # the start page's URL, no token
    assert "/login" in browser.current_url
    assert wait_for(lambda: browser.find_elements("css selector", "input[type=password]"), 10)
    assert not browser.execute_script("return !!window.jupyterapp")


def test_start_page_lists_the_lessons_without_prompts(server: SimpleNamespace, browser) -> None:
    browser.get(server.url)  # exactly what the launcher printed
    assert wait_for(lambda: browser.execute_script(APP_READY), 60)
    links = wait_for(lambda: browser.find_elements("css selector", ".jp-RenderedMarkdown li a"), 30)
    titles = [lesson_title(p) for p in lessons()]
    assert [a.text for a in links] == titles
    time.sleep(2)  # the news question, when enabled, is asked as the app starts
    assert "news" not in browser.find_element("tag name", "body").text.lower()
    SHOTS.mkdir(parents=True, exist_ok=True)
    browser.save_screenshot(str(SHOTS / "START.png"))


@pytest.mark.parametrize("lesson", LESSONS)
def test_run_all_through_the_ui(server: SimpleNamespace, browser, lesson: str) -> None:
    if not browser.execute_script(APP_READY):
        browser.get(server.url)
        assert wait_for(lambda: browser.execute_script(APP_READY), 60)
    panel_id = browser.execute_script(RUN_ALL, f"{lesson}.ipynb")

    def finished() -> dict | None:
        state = page_state(browser, panel_id)
        done = state["kernel_status"] == "idle" and not any("*" in p for p in state["prompts"])
        return state if done and (all(re.search(r"\d", p) for p in state["prompts"]) or state["errors"]) else None

    state = wait_for(finished, 120, step=0.5) or page_state(browser, panel_id)
    shot = SHOTS / f"{lesson}.png"
    SHOTS.mkdir(parents=True, exist_ok=True)
    browser.execute_script(  # show the check cell's output in the screenshot
        "const o = [...document.getElementById(arguments[0]).querySelectorAll('.jp-OutputArea-output')]"
        ".filter(n => n.textContent.includes('check passed'));"
        "if (o.length) o[o.length - 1].closest('.jp-Cell').scrollIntoView({block: 'center'});",
        panel_id)
    time.sleep(0.5)
    browser.save_screenshot(str(shot))
    kernels = [pid for pid in children(server.pid) if "ipykernel_launcher" in " ".join(cmdline(pid))]
    server.seen.update(kernels)

    assert not state["errors"] and not state["tracebacks"], (state["errors"], shot)
    assert state["prompts"] == [f"[{n}]:" for n in range(1, len(state["prompts"]) + 1)], state["prompts"]
    assert state["kernel_name"] == "python3" and state["kernel_shown"] == kernel_display_name()
    assert kernels and all(cmdline(pid)[0] == sys.executable for pid in kernels), [cmdline(p) for p in kernels]
    assert state["checks"], f"no 'check passed' line on the page ({shot})"
    assert state["images"] >= 1, f"no plot rendered ({shot})"


def test_server_and_kernels_listen_on_loopback_only(server: SimpleNamespace) -> None:
    assert listening(server.pid) == [(LOOPBACK_HEX, server.port)]
    kernels = children(server.pid)  # the lessons' kernels, still running
    assert kernels
    for pid in kernels:
        assert {address for address, _ in listening(pid)} <= {LOOPBACK_HEX}


def kernel_display_name() -> str:
    """The display name of the course's kernel spec, as the notebooks name it (python3)."""
    from jupyter_client.kernelspec import KernelSpecManager

    return KernelSpecManager().get_kernel_spec("python3").display_name


def test_the_html_report_opens_and_its_links_resolve(browser, tmp_path: Path) -> None:
    from course_utils.tools import report_html

    run = tmp_path / "run"  # a run folder holding lesson 01 as executed (its committed outputs) and one failure
    run.mkdir()
    (run / "01_tensors.ipynb").write_bytes((NOTEBOOKS / "01_tensors.ipynb").read_bytes())
    rows = [{"notebook": "01_tensors", "status": "pass", "seconds": 12.0, "metrics": {"max_abs_error": 0.0},
             "error": None},
            {"notebook": "02_missing", "status": "fail", "seconds": 1.0, "metrics": {}, "error": "no notebook"}]
    index = report_html.write_report(rows, run, "Run ci")
    browser.get(index.as_uri())
    assert browser.title == "Run ci"
    links = browser.execute_script("return [...document.querySelectorAll('table a')].map(a => a.href);")
    assert links == [(run / "01_tensors.html").as_uri()]  # only what was rendered is linked
    for link in links:
        browser.get(link)
        assert wait_for(lambda: browser.find_elements("css selector", ".jp-Notebook .jp-Cell"), 10), link
        assert browser.execute_script(
            "return [...document.querySelectorAll('.jp-OutputArea-output img')].some(i => i.naturalWidth > 0);")
        fetched = browser.execute_script("return performance.getEntriesByType('resource').map(e => e.name);")
        assert all(url.startswith(("file:", "data:")) for url in fetched), fetched  # the page fetches nothing
