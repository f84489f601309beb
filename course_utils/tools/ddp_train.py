"""Train the course's Fashion-MNIST MLP with DistributedDataParallel; start it with torchrun.

    TORCH_DISABLE_SHARE_RDZV_TCP_STORE=1 torchrun --nproc_per_node=2 --rdzv-backend=c10d \\
        --rdzv-conf=store_type=file --local-addr=127.0.0.1 \\
        -m course_utils.tools.ddp_train --num-epochs 2 --out runs/ddp/demo

(The options keep every socket of the run on 127.0.0.1; plain `torchrun --nproc_per_node=2 -m ...` works too,
but torchrun's own store then listens on every interface.)

Every worker trains on its own shard of each epoch; gradients are all-reduced in backward();
rank 0 alone logs, evaluates on the test set and writes the checkpoint and metrics.json.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.distributed as dist
from torch import nn
from torch.distributed.elastic.multiprocessing.errors import record
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, DistributedSampler

from course_utils.core import distributed, training
from course_utils.core.arguments import check_count
from course_utils.core.checkpoints import save_checkpoint
from course_utils.core.files import atomic_write
from course_utils.datasets import mnist
from course_utils.fc_model import Network


class TrainError(Exception):
    """A bad parameter, or a device or output folder the run cannot use: one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):
        """Raise TrainError instead of printing the usage block: main says it in one line."""
        raise TrainError(f"{message} (see --help)")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line, checked (check_args); TrainError for a bad one."""
    parser = _Parser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto", help="auto: one CUDA GPU per worker if there are GPUs, else CPU")
    parser.add_argument("--num-epochs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=64, help="per worker: the step sees world_size times this")
    parser.add_argument("--lr", type=float, default=0.05)
    parser.add_argument("--optimizer", choices=("sgd", "adam"), default="sgd")
    parser.add_argument("--hidden-sizes", type=int, nargs="+", default=[256, 128, 64])
    parser.add_argument("--drop-p", type=float, default=0.2)
    parser.add_argument("--train-subset", type=int, default=None, help="training images (default: all 54,000)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, required=True, help="folder for metrics.json and checkpoint.pt")
    parser.add_argument("--crash-rank", type=int, default=None,
                        help="this rank raises at its first step (to see a failure)")
    return check_args(parser.parse_args(argv))


def check_args(args: argparse.Namespace) -> argparse.Namespace:
    """`args` when every number is usable; TrainError naming the first bad parameter otherwise."""
    try:
        for name in ("--num-epochs", "--batch-size", *(["--train-subset"] if args.train_subset is not None else [])):
            check_count(name, getattr(args, name[2:].replace("-", "_")))
        for size in args.hidden_sizes:
            check_count("--hidden-sizes", size)
    except ValueError as err:
        raise TrainError(str(err)) from err
    available = len(mnist.train_val_indices(0.1, None, args.seed)[0])  # the images train() draws its subset from
    if args.train_subset is not None and args.train_subset > available:
        raise TrainError(f"--train-subset must be at most {available:,} (the training images), got {args.train_subset}")
    if not 0.0 <= args.drop_p < 1.0:
        raise TrainError(f"--drop-p must be at least 0 and below 1, got {args.drop_p}")
    if not args.lr > 0:  # also refuses nan
        raise TrainError(f"--lr must be a number above 0, got {args.lr}")
    return args


def check_device(name: str, local_rank: int) -> torch.device:
    """The device this worker will use; TrainError naming --device and what this machine offers when it cannot."""
    try:
        return distributed.worker_device(name, local_rank)
    except (ValueError, RuntimeError) as err:
        gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
        available = f"auto, cpu, cuda ({gpus} GPU(s): at most {gpus} workers)" if gpus else "auto (the CPU), cpu"
        raise TrainError(f"--device {name}: {err}; available here: {available}") from err


def check_out(out: Path) -> Path:
    """`out`, created if needed, once a file can be written in it; TrainError naming --out and the fix otherwise."""
    try:
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=out):  # a real write: permissions, a read-only disk, a full quota
            pass
    except OSError as err:
        why = "is not a folder" if out.exists() and not out.is_dir() else f"cannot be written ({err.strerror})"
        raise TrainError(f"--out {out} {why}: pass a folder you can write to") from err
    return out


def build_model(model_config: dict, seed: int) -> Network:
    """The MLP with its initial weights fixed by `seed` (the same on every rank and in the test's reference)."""
    torch.manual_seed(seed)
    return Network(**model_config)


def make_optimizer(name: str, params, lr: float) -> torch.optim.Optimizer:
    """Plain SGD (no momentum) or Adam."""
    return torch.optim.SGD(params, lr=lr) if name == "sgd" else torch.optim.Adam(params, lr=lr)


class _CrashAtFirstStep(nn.Module):
    """Wraps the model so that its forward raises: how a worker dying looks from torchrun."""

    def __init__(self, model: nn.Module, rank: int):
        super().__init__()
        self.model, self.rank = model, rank

    def forward(self, x):
        raise RuntimeError(f"rank {self.rank} was told to crash (--crash-rank)")


def time_all_reduce(numel: int, device: torch.device, repeats: int = 10) -> float:
    """Milliseconds one all-reduce of `numel` float32 values takes (the gradients of one step), median of repeats."""
    values = torch.zeros(numel, device=device)
    times = []
    for _ in range(repeats + 2):  # the first two set up the connections' buffers
        dist.barrier()
        start = time.perf_counter()
        dist.all_reduce(values)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        times.append(time.perf_counter() - start)
    return sorted(times[2:])[repeats // 2] * 1e3


def train(args: argparse.Namespace, ctx: distributed.Context) -> dict:
    """The training job of one worker; rank 0 returns the metrics it wrote."""
    if ctx.is_main:
        mnist.prepare("fashion_mnist")  # one process fills the data cache; the others wait at the barrier
    dist.barrier()
    datasets = mnist.tensor_datasets("fashion_mnist", train_subset=args.train_subset, seed=args.seed)
    # each rank draws the same permutation (seed + epoch) and keeps every world_size-th index from its rank
    sampler = DistributedSampler(datasets["train"], num_replicas=ctx.world_size, rank=ctx.rank,
                                 shuffle=True, seed=args.seed)
    train_loader = DataLoader(datasets["train"], batch_size=args.batch_size, sampler=sampler)
    model_config = {"input_size": 784, "output_size": 10, "hidden_layers": args.hidden_sizes, "drop_p": args.drop_p}
    model = build_model(model_config, args.seed).to(ctx.device)
    if args.crash_rank == ctx.rank:
        model = _CrashAtFirstStep(model, ctx.rank)
    # DDP broadcasts rank 0's weights at construction and all-reduces (averages) gradients in backward()
    ddp_model = DistributedDataParallel(model, device_ids=[ctx.device.index] if ctx.device.type == "cuda" else None)
    optimizer = make_optimizer(args.optimizer, ddp_model.parameters(), args.lr)
    loss_fn = nn.NLLLoss()  # Network returns log-probabilities
    log = {"world_size": ctx.world_size, "backend": ctx.backend, "device": ctx.device.type,
           "batch_size_per_worker": args.batch_size, "global_batch_size": args.batch_size * ctx.world_size,
           "optimizer": args.optimizer, "lr": args.lr, "seed": args.seed, "epochs": []}
    log["allreduce_ms"] = time_all_reduce(sum(p.numel() for p in model.parameters()), ctx.device)
    for epoch in range(1, args.num_epochs + 1):
        sampler.set_epoch(epoch)  # without it every epoch would repeat the same order
        start = time.perf_counter()
        local = training.train_one_epoch(ddp_model, train_loader, loss_fn, optimizer, ctx.device)
        seconds = time.perf_counter() - start
        n = len(sampler)  # this rank's samples this epoch
        loss_sum, correct, total = distributed.all_reduce_sums(
            [local["loss"] * n, local["accuracy"] * n, n], ctx.device)
        slowest = torch.tensor(seconds, device=ctx.device)
        dist.all_reduce(slowest, op=dist.ReduceOp.MAX)  # an epoch lasts as long as its slowest worker
        if ctx.is_main:
            entry = {"epoch": epoch, "train_loss": loss_sum / total, "train_accuracy": correct / total,
                     "samples": int(round(total)), "steps": len(train_loader), "seconds": slowest.item()}
            log["epochs"].append(entry)
            print(f"epoch {epoch}/{args.num_epochs}  train loss {entry['train_loss']:.3f}  "
                  f"acc {entry['train_accuracy']:.3f}  {entry['samples']} samples on {ctx.world_size} workers  "
                  f"{entry['seconds']:.1f} s", flush=True)
    if ctx.is_main:
        test_loader = DataLoader(datasets["test"], batch_size=512)
        log["test"] = training.evaluate(model, test_loader, loss_fn, ctx.device)
        print(f"test loss {log['test']['loss']:.3f}  accuracy {log['test']['accuracy']:.4f}", flush=True)
        args.out.mkdir(parents=True, exist_ok=True)
        save_checkpoint(args.out / "checkpoint.pt", model, model_config, optimizer=optimizer,
                        epoch=args.num_epochs, world_size=ctx.world_size, test_accuracy=log["test"]["accuracy"])
        atomic_write(args.out / "metrics.json", lambda f: f.write(json.dumps(log, indent=1).encode()))
    dist.barrier()  # the others wait until rank 0 has written, then every rank leaves together
    return log


def main(argv: list[str] | None = None) -> int:
    try:
        args = parse_args(argv)  # every check before the process group, so a mistake costs no training
        check_device(args.device, int(os.environ.get("LOCAL_RANK", "0")))
        if os.environ.get("RANK", "0") == "0":  # rank 0 alone writes
            check_out(args.out)
        with distributed.process_group(args.device) as ctx:
            try:
                train(args, ctx)
            except Exception as err:
                peer_gone = isinstance(err, dist.DistError) or "closed by peer" in str(err)
                hint = " (another worker stopped first: see its message)" if peer_gone else ""
                print(f"[rank {ctx.rank}] failed: {type(err).__name__}: {err}{hint}", file=sys.stderr, flush=True)
                raise
    except (TrainError, distributed.DistributedLaunchError) as err:
        print(f"ddp_train: error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(record(main)())  # record: torchrun's error summary then shows the failing worker's traceback
