"""DDP helpers and the torchrun script: 2 gloo workers with batch B each equal 1 process with batch 2B."""

import contextlib
import ipaddress
import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, DistributedSampler

from course_utils.core import distributed
from course_utils.core.checkpoints import load_checkpoint
from course_utils.datasets import mnist
from course_utils.datasets.sources import PROJECT_ROOT
from course_utils.tools import ddp_train

MODULE = "course_utils.tools.ddp_train"
LESSON = PROJECT_ROOT / "notebooks" / "16_distributed.ipynb"


def test_backend_follows_the_device():
    assert distributed.backend_for(torch.device("cpu")) == "gloo"
    assert distributed.backend_for(torch.device("cuda", 1)) == "nccl"


def test_worker_device_on_a_cpu_machine():
    assert distributed.worker_device("cpu", local_rank=3) == torch.device("cpu")
    with pytest.raises(ValueError, match="no backend for Apple's MPS"):
        distributed.worker_device("mps", 0)
    if not torch.cuda.is_available():
        assert distributed.worker_device("auto", 0) == torch.device("cpu")
        with pytest.raises(RuntimeError, match="sees no CUDA GPU"):
            distributed.worker_device("cuda", 0)


def test_script_started_without_torchrun_says_how_to_start_it(monkeypatch, tmp_path, capsys):
    for name in distributed.LAUNCH_ENV:
        monkeypatch.delenv(name, raising=False)
    assert ddp_train.main(["--out", str(tmp_path)]) == 2
    assert "start this script with torchrun" in capsys.readouterr().err


def test_process_group_is_destroyed_also_after_an_error(monkeypatch):
    env = {"RANK": "0", "WORLD_SIZE": "1", "LOCAL_RANK": "0", "MASTER_ADDR": "127.0.0.1",
           "MASTER_PORT": str(distributed.free_port())}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ZeroDivisionError):
        with distributed.process_group("cpu") as ctx:
            assert (ctx.rank, ctx.world_size, ctx.backend, ctx.is_main) == (0, 1, "gloo", True)
            assert torch.distributed.is_initialized()
            # float64: a count beyond float32's 2**24 stays exact
            assert distributed.all_reduce_sums([2**24 + 1, 0.5], ctx.device) == [2**24 + 1, 0.5]
            raise ZeroDivisionError  # an error inside the block
    assert not torch.distributed.is_initialized()


@pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="reads the listening sockets from Linux's /proc")
def test_rank_0_serves_the_store_and_gloo_on_master_addr_only(monkeypatch):
    """Without torchrun's store (TORCH_DISABLE_SHARE_RDZV_TCP_STORE=1), rank 0 serves it: on 127.0.0.1, not on *."""
    port = distributed.free_port()
    env = {"RANK": "0", "WORLD_SIZE": "1", "LOCAL_RANK": "0", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("TORCHELASTIC_USE_AGENT_STORE", raising=False)
    monkeypatch.setenv("GLOO_SOCKET_IFNAME", "")  # recorded, so that the value process_group sets is undone
    monkeypatch.delenv("GLOO_SOCKET_IFNAME")
    with distributed.process_group("cpu"):
        mine = listening_sockets([os.getpid()])[os.getpid()]
        assert ("127.0.0.1", port) in mine
        assert all(ipaddress.ip_address(address).is_loopback for address, _ in mine), mine
        assert os.environ["GLOO_SOCKET_IFNAME"] in ("lo", "lo0")


def test_busy_port_is_refused_before_launching():
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(distributed.DistributedLaunchError, match=f"port {port} on 127.0.0.1 is busy"):
            distributed.run_torchrun(MODULE, ["--out", "unused"], port=port)
    assert distributed.check_port_free(port) == port  # free again once the socket closed


def test_describe_failure_names_the_first_failing_rank():
    output = ("[rank0]: RuntimeError: Connection closed by peer\n"
              "Root Cause (first observed failure):\n[0]:\n  rank      : 1 (local_rank: 1)\n"
              "  traceback : Traceback (most recent call last):\n  RuntimeError: boom\n  \n" + "=" * 60)
    assert distributed.describe_failure(output, 1) == (
        "worker rank 1 failed first (RuntimeError: boom); torchrun then stopped the other workers")
    assert "port is busy" in distributed.describe_failure("... EADDRINUSE ...", 1)


def test_describe_failure_quotes_the_line_of_a_worker_that_exited_with_a_status():
    """A worker that said its error in one line and exited 2 has no traceback in torchrun's report: quote its line."""
    report = ("Root Cause (first observed failure):\n[0]:\n  rank      : 0 (local_rank: 0)\n  exitcode  : 2\n"
              "  error_file: <N/A>\n  traceback : To enable traceback see: https://pytorch.org/docs\n" + "=" * 60)
    said = "ddp_train: error: --num-epochs must be a whole number >= 1, got 0"
    message = distributed.describe_failure(f"W1207 master_addr is only used ...\n{said}\n{said}\n{report}", 1)
    assert message == f"worker rank 0 failed first ({said}); torchrun then stopped the other workers"


def reference_run(args, world_batch: int) -> tuple[nn.Module, list[float]]:
    """One process, batch 2B, the same permutation DistributedSampler draws: weights and epoch losses."""
    train_set = mnist.tensor_datasets("fashion_mnist", train_subset=args.train_subset, seed=args.seed)["train"]
    config = {"input_size": 784, "output_size": 10, "hidden_layers": args.hidden_sizes, "drop_p": args.drop_p}
    model = ddp_train.build_model(config, args.seed)
    optimizer = torch.optim.SGD(model.parameters(), lr=args.lr)
    sampler = DistributedSampler(train_set, num_replicas=1, rank=0, shuffle=True, seed=args.seed)
    loader = DataLoader(train_set, batch_size=world_batch, sampler=sampler)
    losses = []
    for epoch in range(1, args.num_epochs + 1):
        sampler.set_epoch(epoch)
        total = 0.0
        for images, labels in loader:
            loss = nn.functional.nll_loss(model(images), labels)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += loss.item() * len(labels)
        losses.append(total / len(train_set))
    return model, losses


# A dying worker is named ("worker rank 1 failed first") and leaves no checkpoint: lesson 16's crash cell and its
# check (nbval, `make test`) assert it.


# ---------------------------------------------------------------- the launch listens on the loopback alone


def lesson_command() -> str:
    """Lesson 16's terminal command for one machine (its first `torchrun --nproc_per_node=2` line, continued)."""
    cells = json.loads(LESSON.read_text())["cells"]
    text = "\n".join("".join(cell["source"]) for cell in cells if cell["cell_type"] == "markdown")
    lines = text.replace("\\\n", " ").splitlines()  # join the shell's continued lines
    return next(line.strip() for line in lines if "torchrun --nproc_per_node=2" in line and MODULE in line)


def process_tree(root: int) -> list[int]:
    """`root` and its live descendants (torchrun and its workers, which it starts in sessions of their own)."""
    parents = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()  # after the command name, which may hold spaces
        except OSError:  # the process is gone
            continue
        parents.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo += parents.get(pid, [])
    return tree


def kill_tree(root: int) -> None:
    """SIGKILL the process groups of `root` and its descendants: torchrun's and its workers', children included."""
    for pid in reversed(process_tree(root)):  # the workers first, while torchrun still holds them
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)  # each leads its own group (start_new_session)


def listening_sockets(pids: list[int]) -> dict[int, list[tuple[str, int]]]:
    """The TCP (address, port) pairs each of `pids` listens on, read from /proc (what `ss -ltnp` shows)."""
    owner = {}
    for pid in pids:
        try:
            for fd in Path(f"/proc/{pid}/fd").iterdir():
                target = os.readlink(fd)
                if target.startswith("socket:["):
                    owner[target[8:-1]] = pid
        except OSError:  # gone, or a descriptor closed while we looked
            continue
    found = {pid: [] for pid in pids}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for row in Path(table).read_text().splitlines()[1:]:
            fields = row.split()
            if fields[3] == "0A" and fields[9] in owner:  # state 0A: LISTEN
                hex_address, hex_port = fields[1].split(":")
                raw = bytes.fromhex(hex_address)  # 32-bit words in host (little-endian) order
                address = ipaddress.ip_address(b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4)))
                found[owner[fields[9]]].append((str(address), int(hex_port, 16)))
    return found


EQUIVALENCE_ARGV = ["--device", "cpu", "--num-epochs", "2", "--batch-size", "16", "--lr", "0.1", "--optimizer", "sgd",
                    "--hidden-sizes", "32", "--drop-p", "0", "--train-subset", "256", "--seed", "3"]


@pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="reads the listening sockets from Linux's /proc")
def test_lessons_command_listens_on_the_loopback_only_and_2_workers_x_b_equal_1_process_x_2b(mirror, tmp_path):
    """Lesson 16's command, run for real with 2 gloo workers (one launch serves both promises):

    - no socket of the run listens on 0.0.0.0 or [::];
    - 2 workers with batch B end with the weights of 1 process with batch 2B, and log its per-sample losses.
    """
    words = shlex.split(lesson_command())
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    while "=" in words[0]:  # NAME=value before the command
        name, _, value = words.pop(0).partition("=")
        env[name] = value
    assert words[0] == "torchrun"
    argv = [*EQUIVALENCE_ARGV, "--out", str(tmp_path)]
    command = [sys.executable, "-m", "torch.distributed.run", *words[1:], *argv]  # later options win
    seen, output = listened_while_running(command, env, tmp_path)
    assert sum(len(pairs) for pairs in seen.values()) >= 3  # gloo on both workers, and the workers' store
    assert output.count("train loss") == 2, output  # only rank 0 logs

    args = ddp_train.parse_args(argv)
    reference, reference_losses = reference_run(args, world_batch=2 * args.batch_size)
    state = load_checkpoint(tmp_path / "checkpoint.pt")["model_state"]
    diff = max((state[name] - value).abs().max().item() for name, value in reference.state_dict().items())
    assert diff <= 1e-5
    # and the update really moved the weights, so equality is not two untouched copies
    untouched = ddp_train.build_model({"input_size": 784, "output_size": 10, "hidden_layers": [32], "drop_p": 0.0}, 3)
    assert (untouched.output.weight - state["output.weight"]).abs().max() > 1e-3

    log = json.loads((tmp_path / "metrics.json").read_text())
    assert (log["world_size"], log["backend"], log["global_batch_size"]) == (2, "gloo", 32)
    assert [entry["samples"] for entry in log["epochs"]] == [256, 256]
    assert [entry["steps"] for entry in log["epochs"]] == [8, 8]  # 128 samples per worker / 16
    # the all-reduced loss is the per-sample mean over both workers' shards
    assert [entry["train_loss"] for entry in log["epochs"]] == pytest.approx(reference_losses, abs=1e-5)
    assert 0.0 <= log["test"]["accuracy"] <= 1.0


@pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="reads the listening sockets from Linux's /proc")
def test_lessons_launch_of_its_script_listens_on_the_loopback_only(tmp_path):
    """Lesson 16's launch of ddp_minimal.py (run_torchrun, the workers meeting through a file): loopback only."""
    script_dir = PROJECT_ROOT / "notebooks" / "scripts"
    command = distributed.torchrun_command("ddp_minimal.py", ["--num-epochs", "2", "--out", str(tmp_path / "w.pt")], 2,
                                           rendezvous_file=tmp_path / "rendezvous")
    env = distributed.torchrun_env(1, extra={"DDP_INIT_METHOD": f"file://{tmp_path / 'store'}"})
    seen, output = listened_while_running(command, env, script_dir)
    assert output.count("epoch ") == 2 and (tmp_path / "w.pt").exists(), output  # rank 0 alone printed


def listened_while_running(command: list[str], env: dict[str, str], cwd: Path) -> tuple[dict, str]:
    """Run a torchrun `command` to its end; what each of its processes listened on, and its output.

    Fails unless it succeeded, both workers listened, and nothing listened beyond the loopback.
    """
    run = subprocess.Popen(command, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           text=True, start_new_session=True)  # its own process group: kill_tree leaves ours alone
    try:
        # every socket any process of the run listens on, sampled until it ends (a single snapshot could come
        # before one worker's gloo listens, on a busy machine)
        deadline, seen = time.monotonic() + 240, {}
        while time.monotonic() < deadline and run.poll() is None:
            for pid, pairs in listening_sockets(process_tree(run.pid)).items():
                seen.setdefault(pid, set()).update(pairs)
            time.sleep(0.05)
        output = run.communicate(timeout=240)[0]
    finally:
        kill_tree(run.pid)  # nothing left behind, also after a failure
        run.wait()
    assert run.returncode == 0, output
    workers = [pid for pid, pairs in seen.items() if pid != run.pid and pairs]
    assert len(workers) == 2, f"never saw both workers listening ({seen}):\n{output}"
    everywhere = {pid: pairs for pid, pairs in seen.items()
                  if any(not ipaddress.ip_address(address).is_loopback for address, _ in pairs)}
    assert not everywhere, f"listening beyond the loopback (pid: address, port; torchrun is {run.pid}): {everywhere}"
    return seen, output


# ---------------------------------------------------------------- mistakes found before any training


@pytest.fixture
def as_worker(monkeypatch):
    """This process looks like torchrun's rank 0, and starting a process group fails the test."""
    for name, value in {"RANK": "0", "WORLD_SIZE": "2", "LOCAL_RANK": "0", "MASTER_ADDR": "127.0.0.1",
                        "MASTER_PORT": str(distributed.free_port())}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(torch.distributed, "init_process_group",
                        lambda *args, **kwargs: pytest.fail("a process group started despite the mistake"))


def one_error_line(capsys) -> str:
    """The one line main wrote to stderr (it wrote nothing to stdout)."""
    out, err = capsys.readouterr()
    assert out == "" and len(err.splitlines()) == 1, err
    return err


@pytest.mark.parametrize("bad, named", [
    (["--num-epochs", "0"], "--num-epochs"), (["--num-epochs", "two"], "--num-epochs"),
    (["--batch-size", "-3"], "--batch-size"), (["--train-subset", "0"], "--train-subset"),
    (["--train-subset", "60000"], "--train-subset"), (["--hidden-sizes", "16", "0"], "--hidden-sizes"),
    (["--drop-p", "1"], "--drop-p"), (["--lr", "0"], "--lr"), (["--optimizer", "rmsprop"], "--optimizer"),
])
def test_a_bad_parameter_is_one_line_before_any_process_group(as_worker, tmp_path, capsys, bad, named):
    assert ddp_train.main(["--device", "cpu", "--out", str(tmp_path / "out"), *bad]) == 2
    line = one_error_line(capsys)
    assert line.startswith("ddp_train: error: ") and named in line
    assert not (tmp_path / "out").exists()  # and nothing was created


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_on_a_machine_without_it_is_one_line(as_worker, tmp_path, capsys):
    assert ddp_train.main(["--device", "cuda", "--out", str(tmp_path)]) == 2
    line = one_error_line(capsys)
    assert "--device cuda" in line and "no CUDA GPU" in line and "available here: auto (the CPU), cpu" in line


@pytest.mark.parametrize("where", ["a file", "under a file", "read-only"])
def test_an_unwritable_out_is_refused_before_training(as_worker, tmp_path, capsys, where):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    out = {"a file": blocker, "under a file": blocker / "run", "read-only": tmp_path / "read-only"}[where]
    if where == "read-only":
        if os.geteuid() == 0:
            pytest.skip("root writes into read-only folders")
        out.mkdir(mode=0o500)
    assert ddp_train.main(["--device", "cpu", "--out", str(out)]) == 2
    line = one_error_line(capsys)
    assert f"--out {out} " in line and "pass a folder you can write to" in line
