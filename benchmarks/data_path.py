"""Time one Fashion-MNIST epoch through the course's in-memory data path and through the syllabus's loop.

    python benchmarks/data_path.py [--threads 1] [--device cpu]

The same model (fc_model.Network 784-256-128-64-10, dropout 0.2, Adam, NLLLoss, batch 64), seeded
the same, is trained for one epoch three ways:

  (a) the library's default: data.make_loaders(fast=True) + training.train_one_epoch
      (every image already a normalised tensor on the device; batches drawn by index);
  (b) the syllabus's loop: DataLoader over the torchvision dataset with PIL ToTensor + Normalize,
      fc_model.train validating on the whole test set every 40 steps;
  (c) a breakdown of the difference: the same DataLoader and transforms as (b), but
      training.train_one_epoch with no validation inside the epoch.

"setup" is building the loaders (reading and checking the raw files); "epoch" is the pass itself.
With --repeats N the three paths run in turn N times and each keeps its fastest epoch.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import platform
import sys
import time

import torch
from torch import nn
from torch.utils.data import DataLoader

from course_utils import data, devices, fc_model, training

HIDDEN_SIZES = [256, 128, 64]
DROPOUT = 0.2
LR = 0.001


def synchronize(device: torch.device) -> None:
    """Wait for queued GPU work, so a timer measures the work and not its launch."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def build(seed: int, device: torch.device) -> tuple[nn.Module, torch.optim.Optimizer]:
    """The benchmarked model and its optimizer, with identical initial weights on every call."""
    devices.seed_everything(seed)
    model = fc_model.Network(784, 10, HIDDEN_SIZES, drop_p=DROPOUT).to(device)
    return model, torch.optim.Adam(model.parameters(), lr=LR)


def time_library(seed: int, batch_size: int, device: torch.device) -> dict:
    """(a) make_loaders(fast=True) + train_one_epoch."""
    start = time.perf_counter()
    loaders = data.make_loaders("fashion_mnist", batch_size, device, seed=seed, fast=True)
    synchronize(device)
    setup = time.perf_counter() - start
    model, optimizer = build(seed, device)
    start = time.perf_counter()
    metrics = training.train_one_epoch(model, loaders["train_loader"], nn.NLLLoss(), optimizer, device)
    synchronize(device)
    return {"setup": setup, "epoch": time.perf_counter() - start, "trained": loaders["train_loader"].num_samples(),
            "validated": 0, "train_loss": metrics["loss"]}


def time_syllabus(seed: int, batch_size: int, device: torch.device, print_every: int) -> dict:
    """(b) DataLoader + PIL transforms, fc_model.train validating on the whole test set every `print_every` steps."""
    start = time.perf_counter()
    transform = data.classic_transform()  # ToTensor() + Normalize((0.5,), (0.5,))
    trainset = data.torchvision_dataset("fashion_mnist", train=True, transform=transform)
    testset = data.torchvision_dataset("fashion_mnist", train=False, transform=transform)
    trainloader = DataLoader(trainset, batch_size=batch_size, shuffle=True,
                             generator=torch.Generator().manual_seed(seed))
    testloader = DataLoader(testset, batch_size=batch_size, shuffle=True,
                            generator=torch.Generator().manual_seed(seed))
    setup = time.perf_counter() - start
    model, optimizer = build(seed, device)
    log = io.StringIO()
    start = time.perf_counter()
    with contextlib.redirect_stdout(log):  # fc_model.train prints a line per validation
        fc_model.train(model, trainloader, testloader, nn.NLLLoss(), optimizer, epochs=1, print_every=print_every)
    synchronize(device)
    epoch = time.perf_counter() - start
    validations = len(trainloader) // print_every
    return {"setup": setup, "epoch": epoch, "trained": len(trainset), "validated": validations * len(testset),
            "train_loss": float("nan"), "log": log.getvalue()}


def time_classic_loader(seed: int, batch_size: int, device: torch.device) -> dict:
    """(c) make_loaders(fast=False): the same DataLoader and transforms as (b), no validation in the epoch."""
    start = time.perf_counter()
    loaders = data.make_loaders("fashion_mnist", batch_size, device, seed=seed, fast=False)
    setup = time.perf_counter() - start
    model, optimizer = build(seed, device)
    start = time.perf_counter()
    metrics = training.train_one_epoch(model, loaders["train_loader"], nn.NLLLoss(), optimizer, device)
    synchronize(device)
    return {"setup": setup, "epoch": time.perf_counter() - start, "trained": len(loaders["train_loader"].dataset),
            "validated": 0, "train_loss": metrics["loss"]}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=1, help="CPU threads for PyTorch (default: %(default)s)")
    parser.add_argument("--device", default="cpu", help="auto, cpu, cuda, cuda:N or mps (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="seeds the split, the weights and the shuffling")
    parser.add_argument("--batch-size", type=int, default=64, help="the syllabus's batch size (default: %(default)s)")
    parser.add_argument("--print-every", type=int, default=40,
                        help="steps between fc_model.train's test-set validations (default: %(default)s)")
    parser.add_argument("--repeats", type=int, default=1,
                        help="run the paths in turn this many times and keep each path's fastest (default: %(default)s)")
    parser.add_argument("--skip-breakdown", action="store_true", help="skip path (c)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.batch_size < 1 or args.print_every < 1 or args.repeats < 1:
        raise SystemExit("--batch-size, --print-every and --repeats must be at least 1")
    try:
        device = devices.get_device(args.device)
    except (TypeError, ValueError, RuntimeError) as err:
        raise SystemExit(str(err)) from None
    threads = devices.set_threads(args.threads)
    print(f"Fashion-MNIST, one epoch, batch {args.batch_size}, MLP 784-{'-'.join(map(str, HIDDEN_SIZES))}-10 "
          f"(dropout {DROPOUT}), Adam lr {LR}")
    print(f"device {devices.describe(device)}; torch {torch.__version__}; Python {platform.python_version()}; "
          f"{platform.machine()} {platform.processor() or ''}".rstrip())
    data.prepare("fashion_mnist")  # fetch/verify the raw files once, outside every timer

    paths = {
        "(a) library: make_loaders(fast=True) + train_one_epoch":
            lambda: time_library(args.seed, args.batch_size, device),
        f"(b) syllabus: DataLoader + PIL transforms, fc_model.train, test set every {args.print_every} steps":
            lambda: time_syllabus(args.seed, args.batch_size, device, args.print_every),
    }
    if not args.skip_breakdown:
        paths["(c) DataLoader + PIL transforms + train_one_epoch, no validation"] = \
            lambda: time_classic_loader(args.seed, args.batch_size, device)
    rows: dict[str, dict] = {}
    for _ in range(args.repeats):  # interleaved, so a change in machine load hits every path alike
        for name, run in paths.items():
            row = run()
            if name not in rows or row["epoch"] < rows[name]["epoch"]:
                rows[name] = row

    print(f"\n{'path' + (f' (fastest of {args.repeats})' if args.repeats > 1 else ''):<92} {'setup s':>8} {'epoch s':>8} {'trained':>8} {'validated':>10}")
    for name, row in rows.items():
        print(f"{name:<92} {row['setup']:>8.2f} {row['epoch']:>8.2f} {row['trained']:>8} {row['validated']:>10}")
    library, syllabus = list(rows.values())[:2]
    epoch_ratio = syllabus["epoch"] / library["epoch"]
    total_ratio = (syllabus["setup"] + syllabus["epoch"]) / (library["setup"] + library["epoch"])
    print(f"\nspeed-up of (a) over (b): {epoch_ratio:.1f}x per epoch, {total_ratio:.1f}x including setup "
          f"({threads} thread{'s' if threads != 1 else ''})")
    if "(c) DataLoader + PIL transforms + train_one_epoch, no validation" in rows:
        classic = rows["(c) DataLoader + PIL transforms + train_one_epoch, no validation"]
        print(f"of which: PIL DataLoader vs in-memory tensors {classic['epoch'] / library['epoch']:.1f}x, "
              f"validating on the test set every {args.print_every} steps {syllabus['epoch'] / classic['epoch']:.1f}x")
    print(f"requirement (a) >= 10x faster per epoch: {'met' if epoch_ratio >= 10 else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
