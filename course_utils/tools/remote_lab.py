"""Remote lab: JupyterLab on a remote GPU box through an SSH tunnel, plus scp helpers.

Usage (see docs/remote.md)::

    python -m course_utils.tools.remote_lab lab  user@gpu-box [-p 22] [-i KEY] [-o Opt=val]
    python -m course_utils.tools.remote_lab run  user@gpu-box --profile gpu
    python -m course_utils.tools.remote_lab push user@gpu-box data/ [data/]
    python -m course_utils.tools.remote_lab pull user@gpu-box runs/x [runs/]

The Jupyter token is created here with ``secrets.token_urlsafe`` and travels only
through ssh's stdin: it never appears on a command line on either machine.
Standard library only; imports nothing else from ``course_utils``.
"""

from __future__ import annotations

import argparse
import http.client
import os
import posixpath
import secrets
import shlex
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Iterator, Sequence

DEFAULT_REMOTE_DIR = "~/pytorch-course"
DEFAULT_PORT = 8888
READY_TIMEOUT_S = 90.0
SHUTDOWN_TIMEOUT_S = 20.0

# Headless course run on the remote; formatted with shell-quoted values ({name} is
# checked to be [A-Za-z0-9._-]+). Equivalent without make:
# "cd {dir} && .venv/bin/python -m course_utils.tools.runner --profile {profile} --out runs/{name}"
REMOTE_RUN_TEMPLATE = "cd {dir} && make course PROFILE={profile} ARGS='--out runs/'{name}"
# Where that run leaves its results, relative to the remote project folder.
REMOTE_RUN_DIR_TEMPLATE = "runs/{name}"

# Runs on the remote with the venv's python (argv: project dir, venv, port, KEY=VALUE...).
# Reads the token from the first stdin line, starts `jupyter lab` in its own process
# group bound to 127.0.0.1, and stops that group when stdin reaches EOF (the local
# side closed it, or the ssh session died) or on SIGTERM/SIGHUP/SIGINT.
REMOTE_SUPERVISOR = r'''
import os, shutil, signal, subprocess, sys, tempfile, threading
root, venv, port = sys.argv[1:4]
token = sys.stdin.buffer.readline().decode().strip()
if not token:
    sys.exit("remote-lab: no token on stdin")
env = dict(os.environ)
env.update(kv.split("=", 1) for kv in sys.argv[4:])
env["JUPYTER_TOKEN"] = token
runtime = tempfile.mkdtemp(prefix="remote-lab-")
env.setdefault("JUPYTER_RUNTIME_DIR", runtime)
cmd = [os.path.join(venv, "bin", "jupyter"), "lab", "--no-browser",
       "--ip=127.0.0.1", "--port=" + port, "--ServerApp.port_retries=0",
       "--ServerApp.root_dir=" + root]
if os.geteuid() == 0:
    cmd.append("--allow-root")  # logged in as root (containers, some boards): allow it
def die_with_parent():
    try:  # Linux: SIGTERM the server if this supervisor dies, even by SIGKILL
        import ctypes
        ctypes.CDLL(None).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except Exception:
        pass
stop = threading.Event()
def watch_stdin():
    while os.read(0, 4096):  # raw fd: no buffer lock held at interpreter exit
        pass
    stop.set()
def on_signal(signum, frame):
    stop.set()
for s in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
    signal.signal(s, on_signal)
if not os.path.isdir(root):
    shutil.rmtree(runtime, ignore_errors=True)
    sys.exit("remote-lab: no folder %s on the remote; clone the course there "
             "or pass --remote-dir" % root)
try:
    proc = subprocess.Popen(cmd, cwd=root, env=env, stdin=subprocess.DEVNULL,
                            start_new_session=True, preexec_fn=die_with_parent)
except OSError as exc:
    shutil.rmtree(runtime, ignore_errors=True)
    sys.exit("remote-lab: cannot start %s: %s; run `make setup` in %s or pass --venv"
             % (cmd[0], exc, root))
print("remote-lab: server pid %d" % proc.pid, file=sys.stderr, flush=True)
threading.Thread(target=watch_stdin, daemon=True).start()
while proc.poll() is None and not stop.wait(0.2):
    pass
if proc.poll() is None:
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        pass
    except ProcessLookupError:
        pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()
    print("remote-lab: server stopped", file=sys.stderr, flush=True)
shutil.rmtree(runtime, ignore_errors=True)
sys.exit(proc.returncode if proc.returncode and proc.returncode > 0 else 0)
'''


class RemoteLabError(RuntimeError):
    """An error with a message meant for the user."""


@dataclass
class SSHOptions:
    """How to reach the remote host with ssh/scp."""

    host: str
    port: int | None = None
    identity: str | None = None
    options: list[str] = field(default_factory=list)
    config: str | None = None
    batch: bool = False


@dataclass
class LabOptions:
    """Where the remote project lives and which ports the tunnel uses."""

    remote_dir: str = DEFAULT_REMOTE_DIR
    venv: str | None = None
    local_port: int = DEFAULT_PORT
    remote_port: int = DEFAULT_PORT
    remote_env: list[str] = field(default_factory=list)
    timeout: float = READY_TIMEOUT_S

    def venv_path(self) -> str:
        """Return the remote venv folder (``<remote_dir>/.venv`` unless set)."""
        return self.venv or posixpath.join(self.remote_dir, ".venv")


def ssh_base_args(opts: SSHOptions, program: str = "ssh") -> list[str]:
    """Return the argv prefix for ``ssh`` or ``scp`` with port, identity, config and -o options."""
    args = [program]
    if opts.config:
        args += ["-F", opts.config]
    if opts.port is not None:
        args += ["-p" if program == "ssh" else "-P", str(opts.port)]
    if opts.identity:
        args += ["-i", opts.identity]
    for option in opts.options:
        args += ["-o", option]
    if opts.batch:
        args += ["-o", "BatchMode=yes"]
    return args


def check_host(host: str) -> str:
    """Reject empty host names and ones that ssh would parse as an option."""
    if not host or host.startswith("-") or any(c.isspace() for c in host):
        raise RemoteLabError(f"invalid host {host!r}; expected user@host or an ssh alias")
    return host


def shell_path(path: str) -> str:
    """Quote a remote path for a POSIX shell, keeping a leading ``~`` meaning $HOME."""
    if path == "~":
        return '"$HOME"'
    if path.startswith("~/"):
        return '"$HOME"/' + shlex.quote(path[2:])
    return shlex.quote(path)


def scp_path(path: str) -> str:
    """Return a remote path for scp: ``~/x`` becomes ``x`` (relative to the login folder)."""
    if path == "~":
        return "."
    return path[2:] if path.startswith("~/") else path


def scp_target(host: str, path: str) -> str:
    """Return ``host:path`` for scp, bracketing a bare IPv6 address."""
    user, at, name = host.rpartition("@")
    if ":" in name and not name.startswith("["):
        name = f"[{name}]"
    return f"{user}{at}{name}:{scp_path(path)}"


def remote_join(remote_dir: str, path: str) -> str:
    """Join a path to the remote project folder unless it is absolute or ``~``-based."""
    if path.startswith(("/", "~")):
        return path
    return posixpath.join(remote_dir, path)


def remote_lab_command(lab: LabOptions) -> str:
    """Return the remote shell command that supervises ``jupyter lab`` (no secrets in it)."""
    venv = lab.venv_path()
    args = [shell_path(lab.remote_dir), shell_path(venv), str(lab.remote_port)]
    args += [shlex.quote(kv) for kv in lab.remote_env]
    python = shell_path(posixpath.join(venv, "bin", "python"))
    return f"exec {python} -c {shlex.quote(REMOTE_SUPERVISOR)} " + " ".join(args)


def lab_ssh_args(opts: SSHOptions, lab: LabOptions) -> list[str]:
    """Return the full ssh argv for ``lab``: local forward plus the remote supervisor."""
    forward = f"127.0.0.1:{lab.local_port}:127.0.0.1:{lab.remote_port}"
    return ssh_base_args(opts) + [
        "-o", "ExitOnForwardFailure=yes",
        "-o", "ServerAliveInterval=30",
        "-T", "-L", forward, "--", check_host(opts.host), remote_lab_command(lab),
    ]


def check_run_name(name: str) -> str:
    """Reject run names that are not a plain folder name."""
    if not name or name.startswith((".", "-")) or not all(
            c.isalnum() or c in "._-" for c in name):
        raise RemoteLabError(f"invalid run name {name!r}; use letters, digits, '.', '_', '-'")
    return name


def run_ssh_args(opts: SSHOptions, remote_dir: str, profile: str, name: str,
                 tty: bool = False) -> list[str]:
    """Return the ssh argv that runs the course headless at a profile on the remote."""
    check_run_name(name)
    command = REMOTE_RUN_TEMPLATE.format(
        dir=shell_path(remote_dir), profile=shlex.quote(profile), name=shlex.quote(name))
    return ssh_base_args(opts) + (["-t"] if tty else []) + [
        "--", check_host(opts.host), command]


def push_args(opts: SSHOptions, remote_dir: str, local: str, remote: str = ".") -> list[str]:
    """Return the scp argv copying LOCAL into the remote project folder."""
    dest = scp_target(check_host(opts.host), remote_join(remote_dir, remote))
    return ssh_base_args(opts, "scp") + ["-r", "--", local, dest]


def pull_args(opts: SSHOptions, remote_dir: str, remote: str, local: str = ".") -> list[str]:
    """Return the scp argv copying REMOTE (in the project folder) to LOCAL."""
    src = scp_target(check_host(opts.host), remote_join(remote_dir, remote))
    return ssh_base_args(opts, "scp") + ["-r", "--", src, local]


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    """Return True when ``host:port`` cannot be bound locally."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as ssh -L does
        try:
            sock.bind((host, port))
        except OSError:
            return True
    return False


def check_local_port(port: int) -> None:
    """Raise RemoteLabError with a hint when the local tunnel port is busy."""
    if port_in_use(port):
        raise RemoteLabError(
            f"local port {port} is already in use; pass --local-port N")


def lab_url(port: int, token: str) -> str:
    """Return the browser URL for the tunnelled lab."""
    return f"http://127.0.0.1:{port}/lab?token={token}"


def server_answers(port: int, token: str, timeout: float = 5.0) -> bool:
    """Return True when ``/api/status`` answers 200 with the token through the tunnel."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/api/status", headers={"Authorization": f"token {token}"})
    try:
        with opener.open(request, timeout=timeout) as response:
            return response.status == 200
    except (OSError, http.client.HTTPException, urllib.error.URLError):
        return False


class _Stop:
    """Records SIGINT/SIGTERM so the main loop can shut down in order."""

    def __init__(self) -> None:
        self.signum: int | None = None

    def __call__(self, signum: int, frame: object) -> None:
        self.signum = signum


@contextmanager
def _sigint_ignored() -> Iterator[None]:
    """Ignore SIGINT while spawning, so children (ssh) inherit SIG_IGN and skip Ctrl-C."""
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


@contextmanager
def _stop_handlers() -> Iterator[_Stop]:
    """Route SIGINT and SIGTERM to a _Stop flag; restore the old handlers afterwards."""
    stop = _Stop()
    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield stop
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _close_tunnel(proc: subprocess.Popen[bytes], grace: float) -> int:
    """Close ssh's stdin (the remote stops Jupyter), wait up to grace s, then terminate ssh."""
    try:
        if proc.stdin:
            proc.stdin.close()
    except OSError:
        pass
    try:
        return proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        proc.terminate()  # sshd then closes the remote's stdin: it still stops Jupyter
    try:
        return proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.wait()


def _wait_ready(proc: subprocess.Popen[bytes], lab: LabOptions, token: str,
                stop: _Stop) -> None:
    """Poll the tunnelled ``/api/status`` until it answers, ssh dies, or time runs out."""
    deadline = time.monotonic() + lab.timeout
    while not server_answers(lab.local_port, token, timeout=2.0):
        if stop.signum is not None:
            raise KeyboardInterrupt
        if proc.poll() is not None:
            hint = (f": no {lab.venv_path()}/bin/python on the remote; run `make setup` "
                    "there or pass --venv" if proc.returncode == 127 else
                    " (see the messages above)")
            raise RemoteLabError(
                f"ssh exited with status {proc.returncode} before the lab answered{hint}")
        if time.monotonic() > deadline:
            raise RemoteLabError(f"the lab did not answer within {lab.timeout:.0f} s")
        time.sleep(0.3)


def cmd_lab(opts: SSHOptions, lab: LabOptions) -> int:
    """Start the remote lab behind an SSH tunnel and keep it up until Ctrl-C or SIGTERM."""
    check_host(opts.host)
    check_local_port(lab.local_port)
    token = secrets.token_urlsafe(32)
    argv = lab_ssh_args(opts, lab)
    print(f"remote-lab: starting JupyterLab on {opts.host} "
          f"(remote 127.0.0.1:{lab.remote_port} -> local 127.0.0.1:{lab.local_port})",
          flush=True)
    with _stop_handlers() as stop:
        with _sigint_ignored():
            proc = subprocess.Popen(argv, stdin=subprocess.PIPE)
        return _serve(proc, lab, token, stop)


def _serve(proc: subprocess.Popen[bytes], lab: LabOptions, token: str, stop: _Stop) -> int:
    """Send the token to ssh's stdin, wait for the lab, then hold the tunnel until stopped."""
    ready = False
    try:
        assert proc.stdin is not None
        proc.stdin.write(token.encode() + b"\n")
        proc.stdin.flush()
        _wait_ready(proc, lab, token, stop)
        ready = True
        print(f"remote-lab: ready: {lab_url(lab.local_port, token)}", flush=True)
        print("remote-lab: press Ctrl-C to stop the lab and the tunnel", flush=True)
        while proc.poll() is None and stop.signum is None:
            time.sleep(0.2)
        if stop.signum is None:
            print(f"remote-lab: ssh exited with status {proc.returncode}", file=sys.stderr)
            return proc.returncode or 1
        return 0
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        raise RemoteLabError("ssh exited before it could read the token") from None
    finally:
        print("remote-lab: stopping the lab and the tunnel...", flush=True)
        _close_tunnel(proc, SHUTDOWN_TIMEOUT_S if ready else 3.0)
        print("remote-lab: stopped", flush=True)


def _run(argv: Sequence[str]) -> int:
    """Run a command in the foreground and return its exit status."""
    print("remote-lab: $ " + shlex.join(argv), flush=True)
    return subprocess.call(list(argv))


def cmd_run(opts: SSHOptions, remote_dir: str, profile: str, name: str, dest: str) -> int:
    """Run the course headless on the remote at PROFILE, then copy the run folder to DEST."""
    tty = sys.stdin.isatty() and sys.stdout.isatty()
    status = _run(run_ssh_args(opts, remote_dir, profile, name, tty=tty))
    if status != 0:
        print(f"remote-lab: remote run failed with status {status}", file=sys.stderr)
    os.makedirs(dest, exist_ok=True)
    run_dir = REMOTE_RUN_DIR_TEMPLATE.format(name=name)
    copied = _run(pull_args(opts, remote_dir, run_dir, dest))
    if copied == 0:
        print(f"remote-lab: run folder copied to {os.path.join(dest, posixpath.basename(run_dir))}")
    return status or copied


def default_run_name() -> str:
    """Return a timestamped run name such as ``remote-20240131-120000``."""
    return time.strftime("remote-%Y%m%d-%H%M%S")


def build_parser() -> argparse.ArgumentParser:
    """Return the CLI parser."""
    parser = argparse.ArgumentParser(
        prog="python -m course_utils.tools.remote_lab",
        description="JupyterLab and course runs on a remote GPU box over SSH.")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("host", help="user@host or an alias from ~/.ssh/config")
    common.add_argument("-p", "--ssh-port", type=int, help="ssh port on the remote")
    common.add_argument("-i", "--identity", help="ssh private key file")
    common.add_argument("-o", dest="ssh_options", action="append", default=[],
                        metavar="OPTION", help="extra ssh -o option (repeatable)")
    common.add_argument("-F", "--ssh-config", help="ssh config file to use instead of ~/.ssh/config")
    common.add_argument("--remote-dir", default=DEFAULT_REMOTE_DIR,
                        help=f"project folder on the remote (default {DEFAULT_REMOTE_DIR})")
    sub = parser.add_subparsers(dest="command", required=True)

    lab = sub.add_parser("lab", parents=[common], help="JupyterLab through an SSH tunnel")
    lab.add_argument("--venv", help="remote venv folder (default <remote-dir>/.venv)")
    lab.add_argument("--local-port", type=int, default=DEFAULT_PORT)
    lab.add_argument("--remote-port", type=int, default=DEFAULT_PORT)
    lab.add_argument("--remote-env", action="append", default=[], metavar="KEY=VALUE",
                     help="environment variable for the remote Jupyter (repeatable; not secret)")
    lab.add_argument("--timeout", type=float, default=READY_TIMEOUT_S,
                     help="seconds to wait for the lab to answer")

    run = sub.add_parser("run", parents=[common], help="run the course headless, fetch the run")
    run.add_argument("--profile", required=True)
    run.add_argument("--name", default=None, help="run name (default remote-DATE-TIME)")
    run.add_argument("--dest", default="runs", help="local folder for the run (default runs)")

    push = sub.add_parser("push", parents=[common], help="copy LOCAL to the remote folder (scp)")
    push.add_argument("local")
    push.add_argument("remote", nargs="?", default=".")

    pull = sub.add_parser("pull", parents=[common], help="copy REMOTE from the remote folder (scp)")
    pull.add_argument("remote")
    pull.add_argument("local", nargs="?", default=".")
    return parser


def ssh_options_from(ns: argparse.Namespace) -> SSHOptions:
    """Build SSHOptions from parsed arguments (BatchMode when stdin is not a terminal)."""
    return SSHOptions(host=ns.host, port=ns.ssh_port, identity=ns.identity,
                      options=list(ns.ssh_options), config=ns.ssh_config,
                      batch=not sys.stdin.isatty())


def lab_options_from(ns: argparse.Namespace) -> LabOptions:
    """Build LabOptions from parsed ``lab`` arguments."""
    for kv in ns.remote_env:
        if "=" not in kv:
            raise RemoteLabError(f"--remote-env expects KEY=VALUE, got {kv!r}")
    return LabOptions(remote_dir=ns.remote_dir, venv=ns.venv, local_port=ns.local_port,
                      remote_port=ns.remote_port, remote_env=list(ns.remote_env),
                      timeout=ns.timeout)


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point."""
    ns = build_parser().parse_args(argv)
    try:
        opts = ssh_options_from(ns)
        if ns.command == "lab":
            return cmd_lab(opts, lab_options_from(ns))
        if ns.command == "run":
            return cmd_run(opts, ns.remote_dir, ns.profile, ns.name or default_run_name(),
                           ns.dest)
        if ns.command == "push":
            return _run(push_args(opts, ns.remote_dir, ns.local, ns.remote))
        return _run(pull_args(opts, ns.remote_dir, ns.remote, ns.local))
    except RemoteLabError as exc:
        print(f"remote-lab: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("remote-lab: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
