"""Distributed data parallel: the backend for the device, the process group's life, all-reduced sums, launching."""

from __future__ import annotations

import contextlib
import datetime
import ipaddress
import os
import re
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.distributed as dist

from course_utils.core.devices import check_device_name

LAUNCH_ENV = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")
# torchrun's own stores (its rendezvous and the one it shares with the workers) are TCPStores, and a TCPStore
# that opens its own socket listens on every interface. On one machine the launch avoids both: the rendezvous
# keeps its state in a file (mode 0600), the agent shares no store, and rank 0 serves the workers' store on
# MASTER_ADDR, which --local-addr sets to the loopback (see process_group).
LOOPBACK_ENV = {"TORCH_DISABLE_SHARE_RDZV_TCP_STORE": "1"}
LOOPBACK_OPTIONS = ("--rdzv-backend=c10d", "--rdzv-conf=store_type=file")
LOOPBACK_COMMAND = ("TORCH_DISABLE_SHARE_RDZV_TCP_STORE=1 torchrun --nproc_per_node=2 --rdzv-backend=c10d "
                    "--rdzv-conf=store_type=file --local-addr=127.0.0.1 -m course_utils.tools.ddp_train "
                    "--out runs/ddp/demo")


class DistributedLaunchError(RuntimeError):
    """torchrun could not start, or one of its workers failed."""


@dataclass(frozen=True)
class Context:
    """Who this process is in the group, and where it computes."""

    rank: int
    local_rank: int
    world_size: int
    device: torch.device
    backend: str

    @property
    def is_main(self) -> bool:
        """Rank 0 logs, evaluates and writes the checkpoint; the others only train."""
        return self.rank == 0


def backend_for(device: torch.device) -> str:
    """nccl between CUDA GPUs, gloo between CPU processes."""
    return "nccl" if device.type == "cuda" else "gloo"


def worker_device(device: str, local_rank: int) -> torch.device:
    """The device of one worker: its own GPU (cuda:LOCAL_RANK) on a CUDA machine, else the CPU."""
    kind = check_device_name(device)
    if kind == "mps":
        raise ValueError("DDP has no backend for Apple's MPS; use device 'cpu' (gloo) or 'cuda' (nccl)")
    use_cuda = kind == "cuda" or (kind == "auto" and torch.cuda.is_available())
    if not use_cuda:
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise RuntimeError("device 'cuda' was asked for, but PyTorch sees no CUDA GPU; use 'auto' or 'cpu'")
    if local_rank >= torch.cuda.device_count():
        raise RuntimeError(f"worker {local_rank} has no GPU: this machine has {torch.cuda.device_count()}; "
                           f"start at most that many processes per node (--nproc_per_node)")
    return torch.device("cuda", local_rank)


def launch_env() -> dict[str, str]:
    """The variables torchrun gives each worker; a plain-words error when the process was not started by it."""
    missing = [name for name in LAUNCH_ENV if name not in os.environ]
    if missing:
        raise DistributedLaunchError(
            f"{', '.join(missing)} not set: start this script with torchrun, e.g. `{LOOPBACK_COMMAND}`")
    return {name: os.environ[name] for name in LAUNCH_ENV}


def group_store(env: dict[str, str], timeout: datetime.timedelta) -> dist.Store:
    """The workers' store at MASTER_ADDR:MASTER_PORT: a client of it, or rank 0's server when torchrun serves none.

    torchrun serves that store itself unless TORCH_DISABLE_SHARE_RDZV_TCP_STORE=1 (TORCHELASTIC_USE_AGENT_STORE
    says which); otherwise rank 0 does, from a socket bound to MASTER_ADDR alone.
    """
    host, port, world_size = env["MASTER_ADDR"], int(env["MASTER_PORT"]), int(env["WORLD_SIZE"])
    serves = env["RANK"] == "0" and os.environ.get("TORCHELASTIC_USE_AGENT_STORE") != "True"
    if not serves:
        store = dist.TCPStore(host, port, world_size, is_master=False, timeout=timeout)
    else:
        # a TCPStore that opens its own socket listens on every interface; given one, it keeps to its address
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        listen_fd = socket.create_server((host, port), family=family).detach()  # the store owns it from here
        try:
            store = dist.TCPStore(host, port, world_size, is_master=True, timeout=timeout, master_listen_fd=listen_fd)
        except BaseException:
            with contextlib.suppress(OSError):  # closed already if the store had taken it
                os.close(listen_fd)
            raise
    return dist.PrefixStore("default_pg", store)  # the prefix init_process_group gives a store it builds


def keep_gloo_on_loopback(env: dict[str, str]) -> None:
    """Make gloo listen on the loopback interface when the group's address is a loopback one (unless told otherwise).

    gloo otherwise listens on the address this machine's hostname resolves to, which may face the network.
    """
    with contextlib.suppress(ValueError):  # a host name, not an address: leave gloo's choice alone
        if not ipaddress.ip_address(env["MASTER_ADDR"]).is_loopback or "GLOO_SOCKET_IFNAME" in os.environ:
            return
        name = loopback_interface()
        if name:
            os.environ["GLOO_SOCKET_IFNAME"] = name


def loopback_interface() -> str | None:
    """The loopback interface's name ("lo" on Linux, "lo0" on macOS), None if neither exists."""
    return next((name for _, name in socket.if_nameindex() if name in ("lo", "lo0")), None)


def join_group(device: str = "auto", timeout_s: float = 120.0) -> Context:
    """Initialise the process group torchrun set up, its store and gloo kept on MASTER_ADDR; who this process is."""
    env = launch_env()
    ctx_device = worker_device(device, int(env["LOCAL_RANK"]))
    backend = backend_for(ctx_device)
    if ctx_device.type == "cuda":
        torch.cuda.set_device(ctx_device)
    if backend == "gloo":
        keep_gloo_on_loopback(env)
    # a finite timeout: a worker whose peer died fails after timeout_s instead of waiting 30 minutes
    timeout = datetime.timedelta(seconds=timeout_s)
    dist.init_process_group(backend, store=group_store(env, timeout), rank=int(env["RANK"]),
                            world_size=int(env["WORLD_SIZE"]), timeout=timeout,
                            device_id=ctx_device if ctx_device.type == "cuda" else None)
    return Context(dist.get_rank(), int(env["LOCAL_RANK"]), dist.get_world_size(), ctx_device, backend)


@contextmanager
def process_group(device: str = "auto", timeout_s: float = 120.0) -> Iterator[Context]:
    """Join the group torchrun set up (join_group); destroy it on the way out, also after an error."""
    ctx = join_group(device, timeout_s)
    try:
        yield ctx
    finally:
        dist.destroy_process_group()


def all_reduce_sums(values: Sequence[float], device: torch.device) -> list[float]:
    """Add `values` over every process (float64, so counts and sums stay exact); every rank gets the totals."""
    totals = torch.tensor(list(values), dtype=torch.float64, device=device)
    dist.all_reduce(totals, op=dist.ReduceOp.SUM)
    return totals.tolist()


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def check_port_free(port: int, host: str = "127.0.0.1") -> int:
    """`port` if it can be bound on `host`; a plain-words error when another program holds it."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host, port))
        except OSError as err:
            raise DistributedLaunchError(
                f"port {port} on {host} is busy ({err.strerror}): another torchrun (or another program) "
                f"listens there. Wait for it to finish, or pass another --master_port "
                f"(free_port() picks one)") from err
    return port


def torchrun_command(module: str, args: Sequence[str], nproc_per_node: int, port: int | None = None,
                     host: str = "127.0.0.1", rendezvous_file: str | Path | None = None) -> list[str]:
    """`python -m torch.distributed.run ...` (what `torchrun` runs) for one node of `nproc_per_node` workers.

    `module`: a module's name (started as with `python -m`), or a script's file name ending in .py.

    Without a port: the loopback launch, run with LOOPBACK_ENV; nothing of the run listens beyond `host`. Its
    rendezvous file must not exist yet (torchrun makes a temporary one if none is named). With a port: torchrun's
    static rendezvous on host:port, whose store listens on every interface (torchrun cannot bind it).
    """
    if port is not None:
        where = [f"--master_addr={host}", f"--master_port={port}"]
    else:
        where = [*LOOPBACK_OPTIONS, f"--local-addr={host}"]
        where += [f"--rdzv-endpoint={rendezvous_file}"] if rendezvous_file else []
    return [sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={nproc_per_node}", "--nnodes=1",
            *where, *([module] if module.endswith(".py") else ["-m", module]), *map(str, args)]


def torchrun_env(threads: int = 1, loopback: bool = True, extra: dict[str, str] | None = None) -> dict[str, str]:
    """This process's environment for a torchrun child: the workers' threads, the loopback launch's variables, `extra`.

    The loopback launch also sets GLOO_SOCKET_IFNAME to the loopback interface (unless already set), so that gloo
    listens there whatever way a script joins its group.
    """
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}  # set: torchrun otherwise sets 1 and warns about it
    if loopback:
        env.update(LOOPBACK_ENV)
        name = loopback_interface()
        if name and "GLOO_SOCKET_IFNAME" not in env:
            env["GLOO_SOCKET_IFNAME"] = name
    return {**env, **(extra or {})}


def run_torchrun(module: str, args: Sequence[str], nproc_per_node: int = 2, *, port: int | None = None,
                 threads: int = 1, cwd: str | Path | None = None, timeout_s: float = 600.0,
                 env: dict[str, str] | None = None) -> str:
    """Run `module` (a module's name, or a script ending in .py) under torchrun here; its output, or a clear error.

    Without a port it listens on the loopback alone (torchrun_command); a port is checked first, then used.
    `env`: more variables for the workers.
    """
    if port is not None:
        check_port_free(port)
    # a fresh rendezvous file per run, removed afterwards: a finished run's file would refuse the next one
    with tempfile.TemporaryDirectory(prefix="torchrun-") as folder:
        command = torchrun_command(module, args, nproc_per_node, port, rendezvous_file=Path(folder) / "rendezvous")
        result = subprocess.run(command, cwd=cwd, text=True, env=torchrun_env(threads, port is None, env),
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=timeout_s)
    if result.returncode != 0:
        raise DistributedLaunchError(describe_failure(result.stdout, result.returncode))
    return result.stdout


def describe_failure(output: str, returncode: int) -> str:
    """A few lines saying which worker failed first and why, from torchrun's output."""
    if "EADDRINUSE" in output or "address already in use" in output.lower():
        return "torchrun could not listen on its port: the port is busy; pass another --master_port"
    _, marker, root = output.partition("Root Cause (first observed failure)")
    rank = re.search(r"rank\s*:\s*(\d+)", root)
    lines = [line.strip() for line in root.split("=" * 20)[0].splitlines() if line.strip()]
    # a worker that exited with a status (a script's one-line error) left no traceback: its own line says why
    said = re.findall(r"^\S+: error: .*$", output.partition("Root Cause")[0], flags=re.MULTILINE)
    why = said[-1] if said and (not lines or "To enable traceback" in lines[-1]) else lines[-1] if lines else ""
    if marker and rank:
        return (f"worker rank {rank.group(1)} failed first ({why or 'no message'}); "
                f"torchrun then stopped the other workers")
    tail = "\n  ".join(output.strip().splitlines()[-5:])
    return f"torchrun exited with code {returncode}; its last lines:\n  {tail}"
