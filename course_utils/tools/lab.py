"""The learner's JupyterLab: a working copy of the lessons, served on 127.0.0.1 behind a fresh token.

Usage::

    python -m course_utils.tools.lab [--port 8888] [--no-browser]  # = make lab
    python -m course_utils.tools.lab refresh 04                     # = make refresh LESSON=04
    python -m course_utils.tools.lab serve --port 8888              # the remote side of remote_lab

The token is made here and reaches Jupyter as $JUPYTER_TOKEN (`serve` reads it from stdin), so it
is never on a command line. Standard library only, except nbformat for `refresh`.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import secrets
import select
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from course_utils.core.files import atomic_write  # never half a notebook

PROJECT_ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = PROJECT_ROOT / "notebooks"
WORKSPACE = PROJECT_ROOT / "workspace"  # the learner's copies: git-ignored, never run by the tests
# overrides.json: the course's JupyterLab defaults (no news prompt, no update check), not the home's.
SETTINGS_DIR = PROJECT_ROOT / "jupyter" / "settings"
START_PAGE = "START.md"
LOOPBACK = "127.0.0.1"
DEFAULT_PORT = 8888
READY_TIMEOUT_S = 90.0
STOP_TIMEOUT_S = 15.0
EXERCISE_TAG = "exercise"


class LabError(RuntimeError):
    """An error with a message meant for the learner."""


# ---------------------------------------------------------------- token, port, server (shared with remote_lab)


def new_token() -> str:
    """Return a fresh random Jupyter token."""
    return secrets.token_urlsafe(32)


def port_in_use(port: int, host: str = LOOPBACK) -> bool:
    """Return True when ``host:port`` cannot be bound here."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as Jupyter and ssh -L do
        try:
            sock.bind((host, port))
        except OSError:
            return True
    return False


def first_free_port(start: int, tries: int = 50) -> int:
    """Return the first port from ``start`` on that is free on 127.0.0.1."""
    for port in range(start, min(start + tries, 65536)):
        if not port_in_use(port):
            return port
    raise LabError(f"ports {start}-{start + tries - 1} are all in use; pass --port N")


def lab_url(port: int, token: str, path: str = "lab") -> str:
    """Return the browser URL of a lab on 127.0.0.1:port."""
    return f"http://{LOOPBACK}:{port}/{path}?token={token}"


def server_answers(port: int, token: str, timeout: float = 5.0) -> bool:
    """Return True when ``/api/status`` answers 200 to the token (never through a proxy)."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    request = urllib.request.Request(f"http://{LOOPBACK}:{port}/api/status",
                                     headers={"Authorization": f"token {token}"})
    try:
        with opener.open(request, timeout=timeout) as response:
            return response.status == 200
    except (OSError, http.client.HTTPException, urllib.error.URLError):
        return False


def wait_ready(proc: subprocess.Popen, port: int, token: str, timeout: float, what: str = "JupyterLab") -> None:
    """Poll the server until it answers; raise LabError when `proc` (`what`) exits or time runs out."""
    deadline = time.monotonic() + timeout
    while not server_answers(port, token, timeout=2.0):
        if proc.poll() is not None:
            raise LabError(f"{what} exited with status {proc.returncode} before the lab answered "
                           "(see the messages above)")
        if time.monotonic() > deadline:
            raise LabError(f"the lab did not answer within {timeout:.0f} s")
        time.sleep(0.3)


def jupyter_argv(root: Path, port: int, open_browser: bool = False) -> list[str]:
    """Return the argv of this environment's JupyterLab on 127.0.0.1:port (no secret in it)."""
    argv = [sys.executable, "-m", "jupyterlab", f"--ip={LOOPBACK}", f"--port={port}",
            "--ServerApp.port_retries=0",  # never move to another port behind the caller's back
            f"--ServerApp.root_dir={root}", f"--LabApp.app_settings_dir={SETTINGS_DIR}",
            f"--ServerApp.default_url=/lab/tree/{START_PAGE}"]
    if not open_browser:
        argv.append("--no-browser")
    if os.geteuid() == 0:
        argv.append("--allow-root")  # containers and cloud GPU images log in as root
    return argv


def _die_with_parent() -> None:
    """Linux: have the kernel SIGTERM this child when its launcher dies, even by SIGKILL."""
    try:
        import ctypes
        ctypes.CDLL(None).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def start_jupyter(root: Path, port: int, token: str, env: dict[str, str] | None = None,
                  open_browser: bool = False) -> subprocess.Popen:
    """Start JupyterLab in its own process group, the token in its environment only."""
    full_env = dict(os.environ, **(env or {}), JUPYTER_TOKEN=token)
    return subprocess.Popen(jupyter_argv(root, port, open_browser), cwd=root, env=full_env,
                            stdin=subprocess.DEVNULL, start_new_session=True,
                            preexec_fn=_die_with_parent)


def stop_jupyter(proc: subprocess.Popen) -> None:
    """SIGTERM the server's process group (it shuts its kernels down), then SIGKILL what is left."""
    for sig, grace in ((signal.SIGTERM, STOP_TIMEOUT_S), (signal.SIGKILL, None)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:  # the whole group is gone already
            pass
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            pass


def _raise_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


@contextmanager
def interrupted_by_signals() -> Iterator[None]:
    """Within the block, SIGTERM and SIGHUP raise KeyboardInterrupt, as Ctrl-C does."""
    previous = {sig: signal.signal(sig, _raise_interrupt) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def key_value(text: str) -> str:
    """argparse type for KEY=VALUE arguments."""
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    return text


# ---------------------------------------------------------------- the working copy


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


def _answers(notebook) -> dict[str, str]:
    """{exercise_id: source} of a notebook's answer cells."""
    return {cell.metadata["exercise_id"]: cell.source for cell in notebook.cells
            if EXERCISE_TAG in cell.metadata.get("tags", []) and "exercise_id" in cell.metadata}


def refresh(lesson: str, workspace: Path = WORKSPACE, source: Path = NOTEBOOKS) -> tuple[Path, list[str]]:
    """Replace one lesson's working copy by the course's, carrying the learner's answers over by exercise id.

    The old copy is kept under workspace/backups/. Returns (backup or the new copy, ids carried over).
    """
    import nbformat

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
    old = _answers(nbformat.read(target, as_version=4))
    carried = []
    for cell in fresh.cells:
        answer = old.get(cell.metadata.get("exercise_id")) if EXERCISE_TAG in cell.metadata.get("tags", []) else None
        if answer is not None and answer != cell.source:
            cell.source, cell.outputs, cell.execution_count = answer, [], None
            carried.append(cell.metadata["exercise_id"])
    backup = workspace / "backups" / f"{target.stem}.bak-{time.strftime('%Y%m%d-%H%M%S')}.ipynb"
    backup.parent.mkdir(exist_ok=True)
    shutil.copy2(target, backup)
    atomic_write(target, (nbformat.writes(fresh) + "\n").encode())
    return backup, carried


# ---------------------------------------------------------------- commands


def cmd_start(workspace: Path, port: int, open_browser: bool, timeout: float) -> int:
    """Prepare the working copy and serve it until Ctrl-C or SIGTERM."""
    copied = prepare_workspace(workspace)
    if copied:
        print(f"lab: copied {len(copied)} lessons into {workspace}", flush=True)
    chosen = first_free_port(port)
    if chosen != port:
        print(f"lab: port {port} is busy; using {chosen}", flush=True)
    token = new_token()
    with interrupted_by_signals():
        proc = start_jupyter(workspace, chosen, token, open_browser=open_browser)
        try:
            wait_ready(proc, chosen, token, timeout)
            print(f"lab: ready: {lab_url(chosen, token, f'lab/tree/{START_PAGE}')}", flush=True)
            print("lab: press Ctrl-C to stop", flush=True)
            return proc.wait()
        except KeyboardInterrupt:
            return 0
        finally:
            stop_jupyter(proc)
            print("lab: stopped", flush=True)


def _read_line(fd: int = 0) -> str:
    """Read one line from a file descriptor without buffering past it."""
    data = b""
    while not data.endswith(b"\n"):
        chunk = os.read(fd, 1)
        if not chunk:
            break
        data += chunk
    return data.decode().strip()


def cmd_serve(workspace: Path, port: int, env: dict[str, str]) -> int:
    """Remote side of remote_lab: token from stdin's first line; stop when stdin closes."""
    token = _read_line()
    if not token:
        raise LabError("no token on stdin")
    prepare_workspace(workspace)
    with interrupted_by_signals():
        proc = start_jupyter(workspace, port, token, env)
        try:
            while proc.poll() is None:  # stdin at EOF: the local side stopped or the ssh session died
                readable, _, _ = select.select([0], [], [], 0.5)
                if readable and not os.read(0, 4096):
                    break
            return max(proc.returncode or 0, 0)
        except KeyboardInterrupt:
            return 0
        finally:
            stop_jupyter(proc)


def build_parser() -> argparse.ArgumentParser:
    """Return the CLI parser."""
    parser = argparse.ArgumentParser(prog="python -m course_utils.tools.lab", description=__doc__.splitlines()[0])
    parser.add_argument("--workspace", type=Path, default=WORKSPACE, help="the working copy (default workspace/)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="first port to try (default 8888)")
    parser.add_argument("--no-browser", action="store_true", help="only print the URL")
    parser.add_argument("--timeout", type=float, default=READY_TIMEOUT_S, help="seconds to wait for the server")
    sub = parser.add_subparsers(dest="command")
    serve = sub.add_parser("serve", help="remote side of remote_lab: token on stdin, stops at EOF")
    serve.add_argument("--port", type=int, default=DEFAULT_PORT, help="the port, exactly (no retries)")
    serve.add_argument("--env", action="append", default=[], type=key_value, metavar="KEY=VALUE",
                       help="environment variable for Jupyter (repeatable; not secret)")
    refresh_ = sub.add_parser("refresh", help="replace one lesson's copy by the course's, keeping your answers")
    refresh_.add_argument("lesson", help="a lesson's number or name, e.g. 04")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point."""
    ns = build_parser().parse_args(argv)
    workspace = ns.workspace.resolve()
    try:
        if ns.command == "refresh":
            kept, carried = refresh(ns.lesson, workspace)
            print(f"lab: refreshed {ns.lesson}; your answers carried over: {', '.join(carried) or 'none'}")
            if kept.parent.name == "backups":
                print(f"lab: your previous copy: {kept}")
            return 0
        if ns.command == "serve":
            return cmd_serve(workspace, ns.port, dict(kv.split("=", 1) for kv in ns.env))
        return cmd_start(workspace, ns.port, not ns.no_browser, ns.timeout)
    except LabError as exc:
        print(f"lab: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
