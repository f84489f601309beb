"""The learner's JupyterLab: a working copy of the lessons, served on 127.0.0.1 behind a fresh token.

Usage::

    python -m course_utils.tools.lab [--port 8888] [--no-browser]  # = make lab
    python -m course_utils.tools.lab refresh 04                     # = make refresh LESSON=04
    python -m course_utils.tools.lab serve --port 8888              # the remote side of remote_lab

The command line only: the server is course_utils.tools.jupyter_server, the working copy
course_utils.tools.workspace. The token is made here and reaches Jupyter as $JUPYTER_TOKEN (`serve`
reads it from stdin), so it is never on a command line.
"""

from __future__ import annotations

import argparse
import os
import select
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

# tests/test_files.py checks that the modules which write files use the one atomic writer; lab's writing is
# workspace's now, and the name stays here for that check.
from course_utils.tools.jupyter_server import (
    DEFAULT_PORT,
    READY_TIMEOUT_S,
    LabError,
    first_free_port,
    interrupted_by_signals,
    key_value,
    lab_url,
    new_token,
    port_number,
    seconds,
    start_jupyter,
    stop_jupyter,
    wait_ready,
)
from course_utils.tools.workspace import NOTEBOOKS, START_PAGE, WORKSPACE, prepare_workspace, refresh

# ---------------------------------------------------------------- commands


def cmd_start(workspace: Path, port: int, open_browser: bool, timeout: float, source: Path = NOTEBOOKS) -> int:
    """Prepare the working copy of `source`'s lessons and serve it until Ctrl-C or SIGTERM."""
    copied = prepare_workspace(workspace, source)
    if copied:
        print(f"lab: copied {len(copied)} lessons into {workspace}", flush=True)
    chosen = first_free_port(port)
    if chosen != port:
        print(f"lab: port {port} is busy; using {chosen}", flush=True)
    token = new_token()
    with interrupted_by_signals():
        proc = start_jupyter(workspace, chosen, token, open_browser=open_browser, start_page=START_PAGE)
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
        proc = start_jupyter(workspace, port, token, env, start_page=START_PAGE)
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


class OneLineParser(argparse.ArgumentParser):
    """argparse with each error on one line, usage left to --help."""

    def error(self, message: str) -> NoReturn:
        """Print `lab: error: MESSAGE` and exit with status 2."""
        self.exit(2, f"lab: error: {message} (see {self.prog} --help)\n")


def folder_path(text: str) -> Path:
    """argparse type for --workspace: a folder, or a path where one can be made."""
    path = Path(text)
    if path.exists() and not path.is_dir():
        raise argparse.ArgumentTypeError(f"{path} is a file, not a folder; pass a folder (made if missing)")
    return path


def build_parser() -> argparse.ArgumentParser:
    """Return the CLI parser."""
    parser = OneLineParser(prog="python -m course_utils.tools.lab", description=__doc__.splitlines()[0])
    parser.add_argument("--workspace", type=folder_path, default=WORKSPACE,
                        help="the working copy, a folder (default workspace/)")
    parser.add_argument("--port", type=port_number, default=DEFAULT_PORT,
                        help="first port to try, 1-65535 (default 8888)")
    parser.add_argument("--no-browser", action="store_true", help="only print the URL")
    parser.add_argument("--timeout", type=seconds, default=READY_TIMEOUT_S, help="seconds to wait for the server")
    sub = parser.add_subparsers(dest="command")
    serve = sub.add_parser("serve", help="remote side of remote_lab: token on stdin, stops at EOF")
    serve.add_argument("--port", type=port_number, default=DEFAULT_PORT, help="the port, exactly (no retries)")
    serve.add_argument("--env", action="append", default=[], type=key_value, metavar="KEY=VALUE",
                       help="environment variable for Jupyter (repeatable; not secret)")
    refresh_ = sub.add_parser("refresh", help="replace one lesson's copy by the course's, keeping your answers")
    refresh_.add_argument("lesson", help="a lesson's number or name, e.g. 04")
    return parser


def expected_errors() -> tuple[type[BaseException], ...]:
    """Return the failures main reports in one line: the learner's input, files, notebooks (nbformat's too)."""
    from nbformat import ValidationError  # jsonschema's: no subclass of ValueError

    return LabError, OSError, ValueError, ValidationError


def one_line(exc: BaseException) -> str:
    """Return an expected failure as one line naming the file or value, with a way out."""
    if isinstance(exc, LabError):
        return str(exc).replace("\n", " ")
    if isinstance(exc, OSError) and exc.filename:
        return (f"{exc.filename}: {exc.strerror or exc}; check that the path exists and can be written, "
                "or pass --workspace DIR")
    first = (str(exc).strip().splitlines() or [""])[0][:200]
    return f"{type(exc).__name__}: {first} (a notebook or a value is not valid; see --help)"


def cmd_refresh(lesson: str, workspace: Path) -> int:
    """Refresh one lesson's copy and say what was carried over and kept; return 0."""
    done = refresh(lesson, workspace, NOTEBOOKS)
    if done.unreadable:
        print(f"lab: refreshed {lesson} with a fresh copy, but your answers could not be carried over: "
              f"{done.unreadable}; your old copy is kept as {done.backup}", file=sys.stderr)
        return 0
    print(f"lab: refreshed {lesson}; your answers carried over: {', '.join(done.carried) or 'none'}")
    if done.backup:
        print(f"lab: your previous copy: {done.backup}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point: 0 when done, 2 for bad input, a missing or broken file, a server that never answered."""
    ns = build_parser().parse_args(argv)
    try:
        workspace = ns.workspace.resolve()
        if ns.command == "refresh":
            return cmd_refresh(ns.lesson, workspace)
        if ns.command == "serve":
            return cmd_serve(workspace, ns.port, dict(kv.split("=", 1) for kv in ns.env))
        return cmd_start(workspace, ns.port, not ns.no_browser, ns.timeout)
    except expected_errors() as exc:  # library functions raise; the learner gets one line (exit status 2)
        print(f"lab: error: {one_line(exc)}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
