"""Tests for course_utils.tools.remote_lab: argv building, busy ports, and a real SSH tunnel.

The end-to-end tests start a throwaway sshd on 127.0.0.1 (keys, config and logs in
tmp_path), log in to this same machine with a fresh key, and drive
``python -m course_utils.tools.remote_lab`` against it. They are skipped only when
/usr/sbin/sshd is missing (Debian/Ubuntu: ``apt-get install openssh-server``).
"""

from __future__ import annotations

import getpass
import http.client
import os
import queue
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest

from course_utils.tools import remote_lab as rl

# Each wait below is for a condition, with a deadline far above its usual time (a few seconds on an idle machine).
# The stop alone may take 25 s by design: the remote gives Jupyter STOP_TIMEOUT_S (15 s) before SIGKILL, the local
# side gives ssh 5 s more, then 5 s after SIGTERM; a fresh clone's `make test` (two xdist workers, a busy 2-core
# machine) once needed more than the 15 s this test used to wait.
START_S = 120.0  # --timeout of the lab; the CLI's ready line is awaited a little longer
STOP_S = 90.0  # the CLI's exit after Ctrl-C, SIGTERM or SIGKILL
CLEANUP_S = 60.0  # the remote side's processes and ports gone, sshd up

try:  # hard per-test limit when pytest-timeout is installed; the waits below are bounded anyway
    import pytest_timeout  # noqa: F401
    E2E_LIMIT = pytest.mark.timeout(START_S + STOP_S + 2 * CLEANUP_S + 60)
except ImportError:  # pragma: no cover
    def E2E_LIMIT(func):
        """Leave func unchanged (pytest-timeout is not installed)."""
        return func

REPO = Path(__file__).resolve().parents[1]
SSHD = "/usr/sbin/sshd"
TOKEN = "tok-SECRET-0123456789abcdef"


# --------------------------------------------------------------------------- helpers


def free_port() -> int:
    """Return a currently free TCP port on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def proc_table() -> dict[int, tuple[int, bytes]]:
    """Return {pid: (ppid, cmdline)} for every process visible in /proc."""
    table = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        table[int(entry)] = (ppid, cmdline)
    return table


def descendants(pid: int) -> dict[int, bytes]:
    """Return {pid: cmdline} of all live descendants of pid."""
    table = proc_table()
    found: dict[int, bytes] = {}
    frontier = [pid]
    while frontier:
        parent = frontier.pop()
        for child, (ppid, cmdline) in table.items():
            if ppid == parent and child not in found:
                found[child] = cmdline
                frontier.append(child)
    return found


def matching_processes(*markers: str) -> dict[int, bytes]:
    """Return {pid: cmdline} of processes whose cmdline contains any marker."""
    needles = [m.encode() for m in markers]
    return {pid: cmd for pid, (_, cmd) in proc_table().items()
            if pid != os.getpid() and any(n in cmd for n in needles)}


def listening_addresses(port: int) -> list[str]:
    """Return the local addresses (hex, as in /proc/net/tcp*) listening on port."""
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            addr, hexport = fields[1].split(":")
            if fields[3] == "0A" and int(hexport, 16) == port:
                found.append(addr)
    return found


def http_get(port: int, path: str, headers: dict[str, str] | None = None) -> int:
    """Return the HTTP status of GET path on 127.0.0.1:port (no redirects, no proxies)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("GET", path, headers=headers or {})
        return conn.getresponse().status
    finally:
        conn.close()


def kill_tree(pid: int) -> None:
    """SIGKILL the descendants of pid (used only on cleanup paths)."""
    for child in descendants(pid):
        try:
            os.kill(child, signal.SIGKILL)
        except ProcessLookupError:
            pass


def wait_until(predicate, timeout: float, step: float = 0.2) -> bool:
    """Poll predicate until it is true or timeout seconds pass; return its last value."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return bool(predicate())


# --------------------------------------------------------------------------- unit tests


def opts(**kw) -> rl.SSHOptions:
    """Return SSHOptions for a fake host with keyword overrides."""
    return rl.SSHOptions(host=kw.pop("host", "me@gpu-box"), **kw)


def test_ssh_base_args_carries_port_identity_config_options() -> None:
    argv = rl.ssh_base_args(opts(port=2222, identity="/k/id", config="/dev/null",
                                 options=["StrictHostKeyChecking=no", "ConnectTimeout=5"],
                                 batch=True))
    assert argv[0] == "ssh"
    assert argv[argv.index("-p") + 1] == "2222"
    assert argv[argv.index("-i") + 1] == "/k/id"
    assert argv[argv.index("-F") + 1] == "/dev/null"
    pairs = list(zip(argv, argv[1:]))
    for option in ("StrictHostKeyChecking=no", "ConnectTimeout=5", "BatchMode=yes"):
        assert ("-o", option) in pairs


def test_scp_args_use_capital_p_and_project_folder() -> None:
    push = rl.push_args(opts(port=2222), "~/pytorch-course", "data/x.csv", "data")
    assert push[0] == "scp" and push[push.index("-P") + 1] == "2222" and "-p" not in push
    assert push[-2:] == ["data/x.csv", "me@gpu-box:pytorch-course/data"]
    pull = rl.pull_args(opts(), "/srv/course", "runs/r1")
    assert pull[-2:] == ["me@gpu-box:/srv/course/runs/r1", "."]
    assert "-r" in pull and "--" in pull


def test_scp_target_brackets_ipv6() -> None:
    assert rl.scp_target("me@::1", "/x") == "me@[::1]:/x"


def test_lab_ssh_args_forward_loopback_and_ports() -> None:
    lab = rl.LabOptions(remote_dir="~/pytorch-course", local_port=9001, remote_port=9002)
    argv = rl.lab_ssh_args(opts(port=22, identity="key"), lab)
    assert ("-L", "127.0.0.1:9001:127.0.0.1:9002") in list(zip(argv, argv[1:]))
    assert ("-o", "ExitOnForwardFailure=yes") in list(zip(argv, argv[1:]))
    remote = argv[-1]
    assert argv[-2] == "me@gpu-box"
    # The project's own launcher (tests/test_lab.py checks its 127.0.0.1 bind) from the project folder.
    assert remote.startswith('cd "$HOME"/pytorch-course && exec "$HOME"/pytorch-course/.venv/bin/python ')
    assert "-m course_utils.tools.lab serve" in remote and "0.0.0.0" not in remote
    assert remote.endswith(" --port 9002")


def test_remote_env_and_workspace_are_quoted_arguments() -> None:
    lab = rl.LabOptions(remote_dir="/srv/course", remote_env=["A=1 2"], workspace="~/my ws")
    remote = rl.lab_ssh_args(opts(), lab)[-1]
    assert "--workspace \"$HOME\"/'my ws' serve --env 'A=1 2' --port 8888" in remote


def test_lab_never_puts_token_in_argv(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict[str, object] = {}

    class FakeSSH:
        def __init__(self, argv, **kw):
            seen["argv"] = argv
            self.stdin = self
            self.written = b""
            self.returncode = None
            self.polls = 0

        def write(self, data: bytes) -> None:
            self.written += data
            seen["stdin"] = self.written

        def flush(self) -> None:
            pass

        def close(self) -> None:
            self.returncode = 0

        def poll(self):
            self.polls += 1
            return None if self.polls < 3 else 0

        def wait(self, timeout=None):
            return 0

    monkeypatch.setattr(rl, "new_token", lambda: TOKEN)
    monkeypatch.setattr(rl.subprocess, "Popen", FakeSSH)
    monkeypatch.setattr(rl, "wait_ready", lambda *a, **k: None)
    monkeypatch.setattr(rl, "port_in_use", lambda port, host="127.0.0.1": False)
    handlers = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    rl.cmd_lab(opts(), rl.LabOptions(local_port=9011, remote_port=9012))
    assert all(TOKEN not in arg for arg in seen["argv"])
    assert seen["stdin"] == TOKEN.encode() + b"\n"
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == handlers


def test_run_args_use_template(monkeypatch: pytest.MonkeyPatch) -> None:
    argv = rl.run_ssh_args(opts(), "~/pytorch-course", "smoke", "r1")
    assert argv[-1] == ('cd "$HOME"/pytorch-course && '
                        "make course PROFILE=smoke ARGS='--out runs/'r1")
    with pytest.raises(rl.LabError):
        rl.run_ssh_args(opts(), "/x", "smoke", "a b; rm -rf ~")
    monkeypatch.setattr(rl, "REMOTE_RUN_TEMPLATE", "echo {profile} {name}")
    assert rl.run_ssh_args(opts(), "/x", "gpu_fast-2", "r2")[-1] == "echo gpu_fast-2 r2"


@pytest.mark.parametrize("profile", ["full run", "$(touch pwned)", "$(shell id)", "gpu;id", "`id`", "../etc/x", "a'b",
                                     "", "-x"])
def test_a_hostile_profile_name_is_refused_before_ssh(profile: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture) -> None:
    """make expands $(...) in PROFILE=... even after the shell's quoting: only a profile file's name may pass."""
    called = []
    monkeypatch.setattr(rl.subprocess, "call", lambda argv: called.append(argv) or 0)
    with pytest.raises(rl.LabError, match="--profile"):
        rl.run_ssh_args(opts(), "/x", profile, "r1")
    assert rl.main(["run", "me@gpu-box", f"--profile={profile}", "--name", "r1", "--dest", str(tmp_path)]) == 2
    assert called == []
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and "--profile" in err and "letters, digits" in err
    assert rl.main(["run", "me@gpu-box", "--profile", "gpu_fast-2", "--name", "r1", "--dest", str(tmp_path)]) == 0
    assert "make course PROFILE=gpu_fast-2 " in called[0][-1]


def test_shell_path_quoting() -> None:
    assert rl.shell_path("~") == '"$HOME"'
    assert rl.shell_path("~/a b") == "\"$HOME\"/'a b'"
    assert rl.shell_path("/srv/$x") == "'/srv/$x'"


def test_remote_env_needs_key_value(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as stop:
        rl.main(["lab", "me@gpu-box", "--remote-env", "CUDA_VISIBLE_DEVICES"])
    assert stop.value.code == 2
    assert "expected KEY=VALUE, got 'CUDA_VISIBLE_DEVICES'" in capsys.readouterr().err


@pytest.mark.parametrize("option", ["--local-port", "--remote-port", "--ssh-port"])
def test_an_invalid_port_is_refused_at_parse_time(option: str, capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as stop:
        rl.main(["lab", "me@gpu-box", option, "70000"])
    last = capsys.readouterr().err.splitlines()[-1]
    assert stop.value.code == 2 and option in last and "'70000' is not a port number; use one from 1-65535" in last


def test_bad_host_rejected() -> None:
    with pytest.raises(rl.LabError):
        rl.lab_ssh_args(opts(host="-oProxyCommand=x"), rl.LabOptions())


def test_busy_port_detected() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        assert rl.port_in_use(port)
        with pytest.raises(rl.LabError, match=f"local port {port} is already in use; "
                                                    "pass --local-port N"):
            rl.check_local_port(port)
    assert not rl.port_in_use(port)


def test_cli_busy_port_message_before_anything_starts() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(
            [str(REPO), os.environ.get("PYTHONPATH", "")]))
        out = subprocess.run(
            [sys.executable, "-m", "course_utils.tools.remote_lab", "lab", "nobody@127.0.0.1",
             "--local-port", str(port), "-o", "ConnectTimeout=1"],
            capture_output=True, text=True, env=env, timeout=30, stdin=subprocess.DEVNULL)
    assert out.returncode == 2
    assert f"local port {port} is already in use; pass --local-port N" in out.stderr
    assert "starting" not in out.stdout


# --------------------------------------------------------------------------- real sshd


@pytest.fixture(scope="module")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimpleNamespace]:
    """Run a throwaway sshd on 127.0.0.1 that accepts a fresh key for the current user."""
    if not os.path.exists(SSHD):
        pytest.skip(f"{SSHD} not found (apt-get install openssh-server) - no real SSH test")
    for tool in ("ssh", "scp", "ssh-keygen"):
        assert shutil.which(tool), f"{tool} is needed next to {SSHD} (openssh-client)"
    d = tmp_path_factory.mktemp("sshd")
    for name in ("host_key", "user_key"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "remote-lab-test",
                        "-f", str(d / name)], check=True, timeout=30)
    auth = d / "authorized_keys"
    shutil.copy(d / "user_key.pub", auth)
    auth.chmod(0o600)
    port = free_port()
    cfg = d / "sshd_config"
    cfg.write_text("\n".join([
        "ListenAddress 127.0.0.1", f"Port {port}", f"HostKey {d / 'host_key'}",
        f"AuthorizedKeysFile {auth}", f"PidFile {d / 'sshd.pid'}", "StrictModes no",
        "PermitRootLogin prohibit-password", "UsePAM no", "PasswordAuthentication no",
        "KbdInteractiveAuthentication no", "AllowTcpForwarding local",
        "Subsystem sftp internal-sftp", "LogLevel VERBOSE", ""]))
    if os.geteuid() == 0:
        os.makedirs("/run/sshd", mode=0o755, exist_ok=True)  # privilege separation dir
    log = d / "sshd.log"
    with open(log, "wb") as log_file:
        proc = subprocess.Popen([SSHD, "-D", "-e", "-f", str(cfg)], stdout=log_file,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)

    def accepting() -> bool:
        with socket.socket() as sock:
            sock.settimeout(1)
            return sock.connect_ex(("127.0.0.1", port)) == 0

    try:
        if not wait_until(lambda: proc.poll() is not None or accepting(), CLEANUP_S):
            pytest.fail(f"sshd did not start:\n{log.read_text()}")
        assert proc.poll() is None, f"sshd exited:\n{log.read_text()}"
        options = ["StrictHostKeyChecking=no", f"UserKnownHostsFile={d / 'known_hosts'}",
                   "LogLevel=ERROR", "ConnectTimeout=10"]
        server = SimpleNamespace(
            port=port, dir=d, proc=proc, log=log, key=str(d / "user_key"),
            host=f"{getpass.getuser()}@127.0.0.1",
            ssh_args=["--ssh-port", str(port), "-i", str(d / "user_key"), "-F", "/dev/null",
                      *(arg for option in options for arg in ("-o", option))])
        login = rl.ssh_base_args(rl.SSHOptions(
            host=server.host, port=port, identity=server.key, config="/dev/null", batch=True,
            options=options)) + ["--", server.host, "true"]
        probe = subprocess.run(login, capture_output=True, text=True, timeout=30,
                               stdin=subprocess.DEVNULL)
        assert probe.returncode == 0, (
            f"cannot log in to the test sshd as {server.host} (a locked account needs a "
            f"password hash other than '!' with UsePAM no):\n{probe.stderr}\n{log.read_text()}")
        yield server
    finally:
        kill_tree(proc.pid)
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def cli_env() -> dict[str, str]:
    """Return an environment where ``python -m course_utils.tools.remote_lab`` imports this repo."""
    path = os.pathsep.join(p for p in [str(REPO), os.environ.get("PYTHONPATH", "")] if p)
    return dict(os.environ, PYTHONPATH=path)


def start_reader(stream) -> queue.Queue[str]:
    """Copy lines from stream into a queue from a daemon thread."""
    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        with stream:  # closed here, at EOF: closing it elsewhere could block on its lock
            for line in iter(stream.readline, ""):
                lines.put(line)
        lines.put("")

    threading.Thread(target=pump, daemon=True).start()
    return lines


def wait_for_ready(lines: queue.Queue[str], timeout: float,
                   stderr: Path) -> tuple[str, list[str]]:
    """Return (url, lines seen) once the CLI prints its ready line; fail on EOF or timeout."""
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=0.5)
        except queue.Empty:
            continue
        if line == "":
            break
        seen.append(line)
        if "ready: " in line:
            return line.split("ready: ", 1)[1].strip(), seen
    pytest.fail("remote lab never became ready; stdout:\n" + "".join(seen)
                + "\nstderr:\n" + stderr.read_text()[-5000:])


@E2E_LIMIT
@pytest.mark.parametrize("stop", ["ctrl-c", "sigterm", "crash"])
def test_lab_end_to_end_through_real_ssh(sshd: SimpleNamespace, tmp_path: Path,
                                         stop: str) -> None:
    """Start the lab over a real tunnel, check auth, loopback binding, no token leak, clean stop."""
    venv = Path(sys.prefix)
    assert (venv / "bin" / "jupyter").exists(), f"jupyterlab is not installed in {venv}"
    local_port, remote_port = free_port(), free_port()
    while remote_port == local_port:
        remote_port = free_port()
    cmd = [sys.executable, "-m", "course_utils.tools.remote_lab", "lab", sshd.host, *sshd.ssh_args,
           "--remote-dir", str(REPO), "--venv", str(venv),
           "--local-port", str(local_port), "--remote-port", str(remote_port),
           "--remote-env", f"JUPYTER_CONFIG_DIR={tmp_path / 'jupyter-config'}",
           "--remote-env", f"JUPYTER_DATA_DIR={tmp_path / 'jupyter-data'}",
           "--remote-env", f"IPYTHONDIR={tmp_path / 'ipython'}",
           "--remote-workspace", str(tmp_path / "workspace"),
           "--timeout", str(START_S)]
    stderr_path = tmp_path / "lab.stderr"
    markers = (f"--port={remote_port}", f"127.0.0.1:{local_port}:127.0.0.1:{remote_port}")
    with open(stderr_path, "w") as stderr:
        # Own session: os.killpg(SIGINT) below is exactly what Ctrl-C in a terminal does.
        lab = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=stderr, text=True,
                               stdin=subprocess.DEVNULL, env=cli_env(), start_new_session=True)
    try:
        lines = start_reader(lab.stdout)
        url, _ = wait_for_ready(lines, START_S + 15, stderr_path)
        parsed = urllib.parse.urlsplit(url)
        token = urllib.parse.parse_qs(parsed.query)["token"][0]
        assert parsed.hostname == "127.0.0.1" and parsed.port == local_port
        assert parsed.path == "/lab" and len(token) >= 32

        # Authenticated requests work through the tunnel; anonymous ones are refused.
        assert http_get(local_port, f"/api/status?token={token}") == 200
        assert http_get(local_port, "/api/status",
                        {"Authorization": f"token {token}"}) == 200
        assert http_get(local_port, "/api/status") in (401, 403)
        assert http_get(local_port, "/api/status?token=wrong") in (401, 403)
        assert http_get(local_port, "/lab") in (302, 401, 403)

        # The server and the tunnel listen on loopback only (0100007F = 127.0.0.1).
        assert listening_addresses(remote_port) == ["0100007F"], \
            listening_addresses(remote_port)
        assert listening_addresses(local_port) == ["0100007F"]

        # The token is on no command line of any process (remote and local are this box).
        leaks = {pid: cmd for pid, (_, cmd) in proc_table().items()
                 if token.encode() in cmd}
        assert not leaks, leaks
        assert matching_processes(*markers), "expected the ssh tunnel and jupyter to run"

        if stop == "ctrl-c":
            os.killpg(lab.pid, signal.SIGINT)
        elif stop == "sigterm":
            lab.send_signal(signal.SIGTERM)
        else:
            lab.send_signal(signal.SIGKILL)  # the remote side must still clean up
        returncode = lab.wait(timeout=STOP_S)
        assert returncode == (-signal.SIGKILL if stop == "crash" else 0)

        # No jupyter/ssh of this test is left: by port markers and by sshd ancestry.
        assert wait_until(lambda: not matching_processes(*markers)
                          and not descendants(sshd.proc.pid), CLEANUP_S), (
            matching_processes(*markers), descendants(sshd.proc.pid))
        assert not listening_addresses(remote_port)
        assert not listening_addresses(local_port)
        assert token not in stderr_path.read_text(), "the token leaked into the logs"
    finally:
        if lab.poll() is None:
            os.killpg(lab.pid, signal.SIGKILL)
            lab.wait()
        for pid in matching_processes(*markers):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        kill_tree(sshd.proc.pid)


@E2E_LIMIT
def test_push_pull_and_run_through_real_ssh(sshd: SimpleNamespace, tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """push/pull copy through scp into the remote folder; run fetches the run folder."""
    remote_dir = tmp_path / "remote"
    remote_dir.mkdir()
    base = [sshd.host, *sshd.ssh_args, "--remote-dir", str(remote_dir)]
    src = tmp_path / "data"
    src.mkdir()
    (src / "x.txt").write_text("hello remote\n")

    assert rl.main(["push", *base, str(src)]) == 0
    assert (remote_dir / "data" / "x.txt").read_text() == "hello remote\n"

    back = tmp_path / "back"
    back.mkdir()
    assert rl.main(["pull", *base, "data/x.txt", str(back)]) == 0
    assert (back / "x.txt").read_text() == "hello remote\n"

    monkeypatch.setattr(rl, "REMOTE_RUN_TEMPLATE",
                        "mkdir -p {dir}/runs/{name} && echo {profile} > {dir}/runs/{name}/p.txt")
    dest = tmp_path / "runs"
    assert rl.main(["run", *base, "--profile", "smoke", "--name", "r1",
                    "--dest", str(dest)]) == 0
    assert (dest / "r1" / "p.txt").read_text() == "smoke\n"
    assert wait_until(lambda: not descendants(sshd.proc.pid), CLEANUP_S)


@E2E_LIMIT
def test_missing_remote_venv_is_named(sshd: SimpleNamespace, tmp_path: Path) -> None:
    """No python in the remote venv: exit 2, the shell's "No such file" and ssh's status 127 (docs/remote.md)."""
    out = subprocess.run(
        [sys.executable, "-m", "course_utils.tools.remote_lab", "lab", sshd.host, *sshd.ssh_args,
         "--remote-dir", str(REPO), "--venv", str(tmp_path / "no-venv"), "--local-port", str(free_port()),
         "--timeout", "20"],
        capture_output=True, text=True, env=cli_env(), timeout=START_S, stdin=subprocess.DEVNULL)
    assert out.returncode == 2, out.stderr
    assert "No such file" in out.stderr and "ssh exited with status 127" in out.stderr
    assert wait_until(lambda: not descendants(sshd.proc.pid), CLEANUP_S)
