"""The Lightning version of the course's MLP with strategy="ddp"; start it with torchrun.

    TORCH_DISABLE_SHARE_RDZV_TCP_STORE=1 torchrun --nproc_per_node=2 --rdzv-backend=c10d \\
        --rdzv-conf=store_type=file --local-addr=127.0.0.1 \\
        -m course_utils.tools.lightning_ddp --num-epochs 1 --out runs/ddp/lightning

Lightning reads torchrun's variables, wraps the model in DistributedDataParallel and gives each
worker a DistributedSampler itself; rank 0 evaluates on the test set and writes metrics.json.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import lightning as L
import torch
from torch import nn
from torch.utils.data import DataLoader

from course_utils.core import distributed, training
from course_utils.core.arguments import check_count
from course_utils.core.files import atomic_write
from course_utils.models.lightning import FashionMNISTDataModule, LitClassifier, quiet_lightning
from course_utils.tools.ddp_train import TrainError, check_device, check_out


class _ArgumentParser(argparse.ArgumentParser):
    def error(self, message: str):
        """A bad argument is one line, like every other error of this command (argparse prints usage first)."""
        raise TrainError(f"{message} (see --help)")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = _ArgumentParser(prog="python -m course_utils.tools.lightning_ddp", description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto", help="auto: one CUDA GPU per worker if there are GPUs, else CPU")
    parser.add_argument("--num-epochs", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=64, help="per worker")
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--train-subset", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, required=True)
    return check_args(parser.parse_args(argv))


def check_args(args: argparse.Namespace) -> argparse.Namespace:
    """`args` when every number is usable; TrainError naming the first bad parameter otherwise."""
    try:
        for name in ("--num-epochs", "--batch-size", *(["--train-subset"] if args.train_subset is not None else [])):
            check_count(name, getattr(args, name[2:].replace("-", "_")))
    except ValueError as err:
        raise TrainError(str(err)) from err
    if not args.lr > 0:  # also refuses nan
        raise TrainError(f"--lr must be a number above 0, got {args.lr}")
    return args


def main(argv: list[str] | None = None) -> int:
    try:
        args = parse_args(argv)  # every check before the process group, so a mistake costs no training
        check_device(args.device, int(os.environ.get("LOCAL_RANK", "0")))
        if os.environ.get("RANK", "0") == "0":  # rank 0 alone writes
            check_out(args.out)
        # joined here, before Lightning (which then keeps this group): its store listens on MASTER_ADDR alone
        ctx = distributed.join_group(args.device)
    except (TrainError, distributed.DistributedLaunchError) as err:
        print(f"lightning_ddp: error: {err}", file=sys.stderr)
        return 2
    try:
        quiet_lightning()
        L.seed_everything(args.seed, verbose=False)  # the same initial weights on every worker
        model = LitClassifier({"input_size": 784, "output_size": 10, "hidden_layers": [256, 128, 64], "drop_p": 0.2},
                              lr=args.lr, sync_dist=True)  # sync_dist: logged metrics are all-reduced means
        data = FashionMNISTDataModule(args.batch_size, args.train_subset, seed=args.seed)
        local_world_size = int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
        trainer = L.Trainer(accelerator="gpu" if ctx.device.type == "cuda" else "cpu", devices=local_world_size,
                            num_nodes=ctx.world_size // local_world_size, strategy="ddp", max_epochs=args.num_epochs,
                            logger=False, enable_checkpointing=False, enable_progress_bar=False,
                            enable_model_summary=False)
        run(trainer, model, data, ctx.device, args.out)
        trainer.strategy.barrier()  # every worker waits for rank 0's test pass, then the group goes together
    finally:
        # Lightning leaves the process group alive; a worker exiting with it alive can abort in gloo's threads
        if torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()
    return 0


def run(trainer: L.Trainer, model: LitClassifier, data: FashionMNISTDataModule, device: torch.device,
        out: Path) -> None:
    """Fit on every worker; rank 0 alone then tests and writes metrics.json."""
    trainer.fit(model, datamodule=data)
    if trainer.is_global_zero:  # rank 0 alone sees the whole test set, each sample exactly once
        test_loader = DataLoader(data.datasets["test"], batch_size=512)
        metrics = {f"test_{k}": v for k, v in training.evaluate(model.model, test_loader, nn.NLLLoss(), device).items()}
        result = {"world_size": trainer.world_size, "strategy": type(trainer.strategy).__name__,
                  "backend": trainer.strategy._process_group_backend, "global_step": trainer.global_step,
                  "train_samples": len(data.datasets["train"]), **{k: float(v) for k, v in metrics.items()}}
        atomic_write(out / "metrics.json", lambda f: f.write(json.dumps(result, indent=1).encode()))
        print(f"lightning ddp on {result['world_size']} workers: {result['global_step']} steps, "
              f"test accuracy {result['test_accuracy']:.4f}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
