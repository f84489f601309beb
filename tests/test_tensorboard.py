"""`make tensorboard` serves the run folder on 127.0.0.1 only, and moves to a free port when 6006 is taken."""

import re
import shlex
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from course_utils.datasets.sources import PROJECT_ROOT

pytest.importorskip("tensorboard")


def make_command(**variables) -> list[str]:
    """The command `make tensorboard` would run, with this interpreter's environment as the venv."""
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    venv = Path(sys.executable).parent.parent
    args = ["make", "-n", "-s", "tensorboard", f"VENV={venv}", *(f"{k}={v}" for k, v in variables.items())]
    lines = subprocess.run(args, cwd=PROJECT_ROOT, capture_output=True, text=True, check=True).stdout.splitlines()
    return shlex.split(next(line for line in lines if "/bin/tensorboard " in line))


def test_the_target_binds_to_localhost_and_the_runs_folder():
    command = make_command()
    assert command[command.index("--host") + 1] == "127.0.0.1"
    assert command[command.index("--logdir") + 1] == "runs/tensorboard"
    assert "--port" not in command  # so that TensorBoard looks for a free port itself
    assert make_command(PORT=6010)[-2:] == ["--port", "6010"]


def test_a_busy_default_port_moves_tensorboard_to_the_next_one(tmp_path):
    command = make_command()
    command[command.index("--logdir") + 1] = str(tmp_path)
    with socket.socket() as busy:
        try:
            busy.bind(("127.0.0.1", 6006))
        except OSError:
            pass  # already taken by someone else: just as good for this test
        busy.listen()
        with subprocess.Popen(command, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True) as server:
            try:
                match = None
                for line in server.stderr:  # TensorBoard announces its address on stderr
                    match = re.search(r"at http://([\d.]+):(\d+)/", line)
                    if match:
                        break
            finally:
                server.terminate()
    assert match, "TensorBoard did not announce an address"
    assert match.group(1) == "127.0.0.1"
    assert int(match.group(2)) != 6006
