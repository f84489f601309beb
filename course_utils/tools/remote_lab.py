"""Remote lab: JupyterLab on a remote GPU box through an SSH tunnel, plus scp helpers.

Subcommands (docs/remote.md): ``lab HOST``, ``run HOST --profile gpu``, ``push HOST LOCAL [REMOTE]`` and
``pull HOST REMOTE [LOCAL]``, each with ssh's own options (-p, -i, -o, -F) filled in.

The remote runs the course's own launcher, ``python -m course_utils.tools.lab serve``: it binds
127.0.0.1, takes the token made here from ssh's stdin (never a command line) and stops Jupyter
when that stdin closes, so Ctrl-C here, a killed ssh or a dropped session all stop the server.
"""

import argparse
import contextlib
import os
import posixpath
import re
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from course_utils.tools.jupyter_server import (
    DEFAULT_PORT,
    READY_TIMEOUT_S,
    STOP_TIMEOUT_S,
    LabError,
    interrupted_by_signals,
    key_value,
    lab_url,
    new_token,
    port_in_use,
    port_number,
    seconds,
    wait_ready,
)

DEFAULT_REMOTE_DIR = "~/pytorch-course"
# Headless course run on the remote; formatted with shell-quoted values ({name} is checked by
# run_ssh_args). Without make: cd {dir} && .venv/bin/python -m course_utils.tools.runner ...
REMOTE_RUN_TEMPLATE = "cd {dir} && make course PROFILE={profile} ARGS='--out runs/'{name}"
# make expands $(...) in PROFILE=... after the shell has unquoted it ($(shell CMD) runs CMD), so no quoting helps:
# only a profile file's name (profiles/<name>.yaml) is let through, and none the runner would take for an option.
PROFILE_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_-]*")


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
    venv: str | None = None  # the remote venv (default <remote_dir>/.venv)
    local_port: int = DEFAULT_PORT
    remote_port: int = DEFAULT_PORT
    remote_env: list[str] = field(default_factory=list)
    workspace: str | None = None  # the remote working copy (default <remote_dir>/workspace)
    timeout: float = READY_TIMEOUT_S


def ssh_base_args(opts: SSHOptions, program: str = "ssh") -> list[str]:
    """Return the argv prefix for ``ssh`` or ``scp`` with config, port, identity and -o options."""
    args = [program] + (["-F", opts.config] if opts.config else [])
    args += [] if opts.port is None else ["-p" if program == "ssh" else "-P", str(opts.port)]  # scp: -P
    args += ["-i", opts.identity] if opts.identity else []
    return args + [arg for option in opts.options + ["BatchMode=yes"] * opts.batch for arg in ("-o", option)]


def check_host(host: str) -> str:
    """Reject empty host names and ones that ssh would parse as an option."""
    if not host or host.startswith("-") or any(c.isspace() for c in host):
        raise LabError(f"invalid host {host!r}; expected user@host or an ssh alias")
    return host


def shell_path(path: str) -> str:
    """Quote a remote path for a POSIX shell, keeping a leading ``~`` meaning $HOME."""
    if path == "~" or path.startswith("~/"):
        return '"$HOME"' + ("/" + shlex.quote(path[2:]) if path[2:] else "")
    return shlex.quote(path)


def scp_target(host: str, path: str, remote_dir: str = "") -> str:
    """Return ``host:path`` for scp, path in remote_dir unless absolute or ``~``-based (IPv6 bracketed)."""
    user, at, name = host.rpartition("@")
    name = f"[{name}]" if ":" in name and not name.startswith("[") else name
    path = path if path.startswith(("/", "~")) else posixpath.join(remote_dir, path)
    path = "." if path == "~" else path[2:] if path.startswith("~/") else path  # scp starts in $HOME
    return f"{user}{at}{name}:{path}"


def remote_lab_command(lab: LabOptions) -> str:
    """Return the remote shell command: the project's own launcher in serve mode (no secrets in it)."""
    python = shell_path(posixpath.join(lab.venv or posixpath.join(lab.remote_dir, ".venv"), "bin", "python"))
    # From the project folder, `-m` imports its course_utils first, whatever the venv points at.
    workspace = f"--workspace {shell_path(lab.workspace)} " if lab.workspace else ""
    env = "".join(f" --env {shlex.quote(kv)}" for kv in lab.remote_env)
    return (f"cd {shell_path(lab.remote_dir)} && exec {python} -m course_utils.tools.lab {workspace}serve{env}"
            f" --port {lab.remote_port}")


def lab_ssh_args(opts: SSHOptions, lab: LabOptions) -> list[str]:
    """Return the full ssh argv for ``lab``: a loopback-to-loopback forward plus the remote launcher."""
    forward = f"127.0.0.1:{lab.local_port}:127.0.0.1:{lab.remote_port}"
    return ssh_base_args(opts) + ["-o", "ExitOnForwardFailure=yes", "-o", "ServerAliveInterval=30",
                                  "-T", "-L", forward, "--", check_host(opts.host), remote_lab_command(lab)]


def check_profile(profile: str) -> str:
    """Return profile when it is a profile's name (letters, digits, '-', '_'); raise LabError otherwise."""
    if not PROFILE_NAME.fullmatch(profile):
        raise LabError(f"--profile {profile!r} is not a profile name; use letters, digits, '-' and '_', "
                       "not '-' first (the name of a file profiles/NAME.yaml)")
    return profile


def run_ssh_args(opts: SSHOptions, remote_dir: str, profile: str, name: str, tty: bool = False) -> list[str]:
    """Return the ssh argv that runs the course headless at a profile on the remote."""
    check_profile(profile)
    if not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9._-]*", name):
        raise LabError(f"invalid run name {name!r}; use letters, digits, '.', '_', '-'")
    command = REMOTE_RUN_TEMPLATE.format(dir=shell_path(remote_dir), profile=shlex.quote(profile),
                                         name=shlex.quote(name))
    return ssh_base_args(opts) + (["-t"] if tty else []) + ["--", check_host(opts.host), command]


def push_args(opts: SSHOptions, remote_dir: str, local: str, remote: str = ".") -> list[str]:
    """Return the scp argv copying LOCAL into the remote project folder."""
    return ssh_base_args(opts, "scp") + ["-r", "--", local, scp_target(check_host(opts.host), remote, remote_dir)]


def pull_args(opts: SSHOptions, remote_dir: str, remote: str, local: str = ".") -> list[str]:
    """Return the scp argv copying REMOTE (in the project folder) to LOCAL."""
    return ssh_base_args(opts, "scp") + ["-r", "--", scp_target(check_host(opts.host), remote, remote_dir), local]


def check_local_port(port: int) -> None:
    """Raise LabError with a hint when the local tunnel port is busy."""
    if port_in_use(port):
        raise LabError(f"local port {port} is already in use; pass --local-port N")


def _close_tunnel(proc: subprocess.Popen, grace: float) -> None:
    """Close ssh's stdin (the remote then stops Jupyter); after grace s end ssh (sshd closes it then)."""
    with contextlib.suppress(OSError):
        proc.stdin.close()
    for timeout, end in ((grace, "terminate"), (5, "kill"), (None, "")):
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=timeout)
            return
        getattr(proc, end)()


def cmd_lab(opts: SSHOptions, lab: LabOptions) -> int:
    """Start the remote lab behind an SSH tunnel and keep it up until Ctrl-C, SIGTERM or SIGHUP."""
    argv = lab_ssh_args(opts, lab)  # checks the host first
    check_local_port(lab.local_port)
    token = new_token()
    print(f"remote-lab: starting JupyterLab on {opts.host} "
          f"(remote 127.0.0.1:{lab.remote_port} -> local 127.0.0.1:{lab.local_port})", flush=True)
    # ssh keeps an ignored SIGINT: Ctrl-C reaches only us, and we stop both ends in order.
    proc = subprocess.Popen(argv, stdin=subprocess.PIPE,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    ready = False
    with interrupted_by_signals():
        try:
            proc.stdin.write(token.encode() + b"\n")
            proc.stdin.flush()
            wait_ready(proc, lab.local_port, token, lab.timeout, what="ssh")  # 127: no venv there (docs)
            ready = True
            print(f"remote-lab: ready: {lab_url(lab.local_port, token)}\n"
                  "remote-lab: press Ctrl-C to stop the lab and the tunnel", flush=True)
            status = proc.wait()
            print(f"remote-lab: ssh exited with status {status}", file=sys.stderr)
            return status or 1
        except KeyboardInterrupt:  # a requested stop
            return 0 if ready else 130
        except BrokenPipeError:
            raise LabError("ssh exited before it could read the token") from None
        finally:
            print("remote-lab: stopping the lab and the tunnel...", flush=True)
            _close_tunnel(proc, STOP_TIMEOUT_S + 5 if ready else 3.0)  # the remote's own stop, then some
            print("remote-lab: stopped", flush=True)


def _run(argv: Sequence[str]) -> int:
    """Run a command in the foreground (shown first) and return its exit status."""
    print("remote-lab: $ " + shlex.join(argv), flush=True)
    return subprocess.call(list(argv))


def cmd_run(opts: SSHOptions, remote_dir: str, profile: str, name: str, dest: str) -> int:
    """Run the course headless on the remote at PROFILE, then copy the run folder to DEST."""
    tty = sys.stdin.isatty() and sys.stdout.isatty()  # ssh -t: Ctrl-C then stops the remote run
    status = _run(run_ssh_args(opts, remote_dir, profile, name, tty=tty))
    if status != 0:
        print(f"remote-lab: remote run failed with status {status}", file=sys.stderr)
    os.makedirs(dest, exist_ok=True)
    copied = _run(pull_args(opts, remote_dir, f"runs/{name}", dest))  # where REMOTE_RUN_TEMPLATE writes
    if copied == 0:
        print(f"remote-lab: run folder copied to {os.path.join(dest, name)}")
    return status or copied


def build_parser() -> argparse.ArgumentParser:
    """Return the CLI parser."""
    parser = argparse.ArgumentParser(prog="python -m course_utils.tools.remote_lab",
                                     description=__doc__.splitlines()[0])
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("host", help="user@host or an alias from ~/.ssh/config")
    common.add_argument("-p", "--ssh-port", type=port_number, help="ssh port on the remote")
    common.add_argument("-i", "--identity", help="ssh private key file")
    common.add_argument("-o", dest="ssh_options", action="append", default=[], metavar="OPTION",
                        help="extra ssh -o option (repeatable)")
    common.add_argument("-F", "--ssh-config", help="ssh config file to use instead of ~/.ssh/config")
    common.add_argument("--remote-dir", default=DEFAULT_REMOTE_DIR,
                        help="project folder on the remote (default %(default)s)")
    sub = parser.add_subparsers(dest="command", required=True)
    lab = sub.add_parser("lab", parents=[common], help="JupyterLab through an SSH tunnel")
    lab.add_argument("--venv", help="remote venv folder (default <remote-dir>/.venv)")
    lab.add_argument("--local-port", type=port_number, default=DEFAULT_PORT)
    lab.add_argument("--remote-port", type=port_number, default=DEFAULT_PORT)
    lab.add_argument("--remote-env", action="append", default=[], type=key_value, metavar="KEY=VALUE",
                     help="environment variable for the remote Jupyter (repeatable; not secret)")
    lab.add_argument("--remote-workspace", help="remote working copy (default <remote-dir>/workspace)")
    lab.add_argument("--timeout", type=seconds, default=READY_TIMEOUT_S, help="seconds to wait for the lab")
    run = sub.add_parser("run", parents=[common], help="run the course headless, fetch the run")
    run.add_argument("--profile", required=True)
    run.add_argument("--name", default=time.strftime("remote-%Y%m%d-%H%M%S"),
                     help="run name (default remote-DATE-TIME)")
    run.add_argument("--dest", default="runs", help="local folder for the run (default runs)")
    for name, src, dest, default in (("push", "local", "remote", "."), ("pull", "remote", "local", ".")):
        copy = sub.add_parser(name, parents=[common], help=f"copy {src.upper()} to the {dest} side (scp -r)")
        copy.add_argument(src)
        copy.add_argument(dest, nargs="?", default=default)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point."""
    ns = build_parser().parse_args(argv)
    opts = SSHOptions(host=ns.host, port=ns.ssh_port, identity=ns.identity, options=list(ns.ssh_options),
                      config=ns.ssh_config, batch=not sys.stdin.isatty())  # no terminal: fail, never prompt
    try:
        if ns.command == "lab":
            return cmd_lab(opts, LabOptions(ns.remote_dir, ns.venv, ns.local_port, ns.remote_port,
                                            list(ns.remote_env), ns.remote_workspace, ns.timeout))
        if ns.command == "run":
            return cmd_run(opts, ns.remote_dir, ns.profile, ns.name, ns.dest)
        if ns.command == "push":
            return _run(push_args(opts, ns.remote_dir, ns.local, ns.remote))
        return _run(pull_args(opts, ns.remote_dir, ns.remote, ns.local))
    except LabError as exc:
        print(f"remote-lab: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("remote-lab: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
