"""The Jupyter server behind the course's labs: tokens, ports, start, readiness and stop, on 127.0.0.1.

Shared by the local lab (course_utils.tools.lab) and the remote one (course_utils.tools.remote_lab).
The token reaches Jupyter as $JUPYTER_TOKEN, never on a command line. Standard library only.
"""

from __future__ import annotations

import argparse
import http.client
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from course_utils.paths import PROJECT_ROOT

# overrides.json: the course's JupyterLab defaults (no news prompt, no update check), not the home's.
SETTINGS_DIR = PROJECT_ROOT / "jupyter" / "settings"
LOOPBACK = "127.0.0.1"
DEFAULT_PORT = 8888
PORTS = range(1, 65536)  # 0 would be "any port": Jupyter would pick one the caller never hears of
READY_TIMEOUT_S = 90.0
STOP_TIMEOUT_S = 15.0


class LabError(RuntimeError):
    """An error with a message meant for the learner."""


def new_token() -> str:
    """Return a fresh random Jupyter token."""
    return secrets.token_urlsafe(32)


def check_port(port: int, option: str = "--port") -> int:
    """Return port when it is a TCP port number (1-65535); raise LabError naming the option otherwise."""
    if port not in PORTS:
        raise LabError(f"{option} {port} is not a port number; use one from {PORTS[0]}-{PORTS[-1]}")
    return port


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
    check_port(start)
    for port in range(start, min(start + tries, PORTS.stop)):
        if not port_in_use(port):
            return port
    raise LabError(f"ports {start}-{min(start + tries, PORTS.stop) - 1} are all in use; pass --port N")


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


def jupyter_argv(root: Path, port: int, open_browser: bool = False, start_page: str | None = None) -> list[str]:
    """Return the argv of this environment's JupyterLab on 127.0.0.1:port (no secret in it)."""
    argv = [sys.executable, "-m", "jupyterlab", f"--ip={LOOPBACK}", f"--port={port}",
            "--ServerApp.port_retries=0",  # never move to another port behind the caller's back
            f"--ServerApp.root_dir={root}", f"--LabApp.app_settings_dir={SETTINGS_DIR}"]
    if start_page:
        argv.append(f"--ServerApp.default_url=/lab/tree/{start_page}")
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
                  open_browser: bool = False, start_page: str | None = None) -> subprocess.Popen:
    """Start JupyterLab in its own process group, the token in its environment only."""
    full_env = dict(os.environ, **(env or {}), JUPYTER_TOKEN=token)
    return subprocess.Popen(jupyter_argv(root, port, open_browser, start_page), cwd=root, env=full_env,
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


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


@contextmanager
def interrupted_by_signals() -> Iterator[None]:
    """Within the block, Ctrl-C, SIGTERM and SIGHUP raise KeyboardInterrupt, whatever the parent left: a signal
    inherited as ignored or blocked (a background job, a test runner's worker) would leave the lab up for good."""
    previous = {sig: signal.signal(sig, _raise_interrupt) for sig in STOP_SIGNALS}
    mask = signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        for sig, handler in previous.items():
            signal.signal(sig, handler)


# ---------------------------------------------------------------- command-line values (lab and remote_lab)


def key_value(text: str) -> str:
    """argparse type for KEY=VALUE arguments."""
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    return text


def port_number(text: str) -> int:
    """argparse type for a port: an int from 1-65535 (argparse names the option in its message)."""
    port = int(text) if text.strip().lstrip("+-").isdigit() else 0
    if port not in PORTS:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number; use one from {PORTS[0]}-{PORTS[-1]}")
    return port


def seconds(text: str) -> float:
    """argparse type for a time-out: a positive, finite number of seconds."""
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds above 0")
    return value
