"""Time one Fashion-MNIST epoch through the course's in-memory data path and through the syllabus's loop.

    python benchmarks/data_path.py [--threads 1] [--device cpu] [--repeats 3]

The same model (fc_model.Network 784-256-128-64-10, dropout 0.2, Adam, NLLLoss, batch 64), seeded
the same, is trained for one epoch three ways:

  (a) the library's default: mnist.make_loaders(fast=True) + training.train_one_epoch, with
      Adam(fused=True) (every image already a normalised tensor on the device; batches drawn by index);
  (b) the syllabus's loop: DataLoader over the torchvision dataset with PIL ToTensor + Normalize,
      fc_model.train validating on the whole test set every 40 steps;
  (c) a breakdown of the difference: the same DataLoader and transforms as (b), but the rest as in (a):
      training.train_one_epoch, Adam(fused=True), no validation inside the epoch, so that (c) over (a)
      is the data path alone;
  (d) the batches of (a) trained by a bare loop, the four lines of a step and nothing else: (a) over
      (d) is what the library's loop adds (device-side loss and accuracy sums, the checks, the bar).

"setup" is building the loaders (reading and checking the raw files); "epoch" is the pass itself.
The same run measures the compute bound: the time the epoch's matrix multiplications take at the
rate torch.mm reaches on this machine at the model's own shapes. With --repeats N the bound and the
paths run in turn N times, the bound right after (a); the table keeps each path's fastest epoch, and
the floors are checked in every repeat.
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

from course_utils import fc_model
from course_utils.core import devices, training
from course_utils.datasets import mnist

HIDDEN_SIZES = [256, 128, 64]
LAYER_SIZES = [784, *HIDDEN_SIZES, 10]  # inputs, hidden layers, classes
DROPOUT = 0.2
LR = 0.001
CLASSIC = "(c) DataLoader + PIL transforms + train_one_epoch, no validation"
BARE = "(d) the batches of (a), a bare loop: forward, loss, zero_grad, backward, step"


def synchronize(device: torch.device) -> None:
    """Wait for queued GPU work, so a timer measures the work and not its launch."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def build(seed: int, device: torch.device, fused: bool = False) -> tuple[nn.Module, torch.optim.Optimizer]:
    """The benchmarked model and its optimizer, with identical initial weights on every call."""
    devices.seed_everything(seed)
    model = fc_model.Network(784, 10, HIDDEN_SIZES, drop_p=DROPOUT).to(device)
    # fused: one kernel updates every parameter, instead of ~10 small ops per parameter tensor
    fused = fused and device.type in ("cpu", "cuda")
    return model, torch.optim.Adam(model.parameters(), lr=LR, fused=fused or None)


def layer_matmuls(batch_size: int) -> list[tuple[tuple[int, int], tuple[int, int]]]:
    """The (m, k) @ (k, n) shapes of every matmul one training step of the MLP runs (forward and backward)."""
    shapes = []
    for layer, (n_in, n_out) in enumerate(zip(LAYER_SIZES[:-1], LAYER_SIZES[1:])):
        shapes.append(((batch_size, n_in), (n_in, n_out)))  # forward: x @ W.T
        shapes.append(((n_out, batch_size), (batch_size, n_in)))  # weight gradient: grad.T @ x
        if layer > 0:  # the images need no gradient, so autograd skips the first layer's input gradient
            shapes.append(((batch_size, n_out), (n_out, n_in)))  # input gradient: grad @ W
    return shapes


def compute_bound(batch_size: int, samples: int, device: torch.device) -> dict:
    """The epoch's matmul FLOPs, and the seconds torch.mm takes to run just those matmuls, one step after another."""
    operands = [(torch.randn(m, k, device=device), torch.randn(k, n, device=device))
                for (m, k), (_, n) in layer_matmuls(batch_size)]
    step_flops = sum(2 * a.shape[0] * a.shape[1] * b.shape[1] for a, b in operands)  # a multiply and an add per term
    forward_flops = sum(2 * batch_size * n_in * n_out for n_in, n_out in zip(LAYER_SIZES[:-1], LAYER_SIZES[1:]))
    steps = -(-samples // batch_size)
    for _ in range(20):  # warm-up: first calls pay for allocation and kernel selection
        for a, b in operands:
            torch.mm(a, b)
    synchronize(device)
    # A whole epoch's worth of calls, timed as one stretch like the epoch itself (not the best of
    # short bursts), so that a busy machine slows the bound as it slows the epoch's matmuls.
    start = time.perf_counter()
    for _ in range(steps):
        for a, b in operands:
            torch.mm(a, b)
    synchronize(device)
    seconds = (time.perf_counter() - start) * samples / (steps * batch_size)  # the last, smaller batch pro rata
    flops = step_flops * samples / batch_size
    return {"flops": flops, "seconds": seconds, "rate": flops / seconds, "vs_forward": step_flops / forward_flops}


def bare_epoch(model: nn.Module, loader, loss_fn, optimizer: torch.optim.Optimizer, device: torch.device) -> dict:
    """(d)'s loop: the four lines of a step and nothing else (the batches are already on `device`)."""
    model.train()
    for images, labels in loader:
        loss = loss_fn(model(images), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return {"loss": loss.item()}  # the last batch's: a bare loop keeps no sums


def time_in_memory(seed: int, batch_size: int, device: torch.device, train_epoch=training.train_one_epoch) -> dict:
    """(a) make_loaders(fast=True) + train_one_epoch; (d) the same batches trained by `train_epoch=bare_epoch`."""
    start = time.perf_counter()
    loaders = mnist.make_loaders("fashion_mnist", batch_size, device, seed=seed, fast=True)
    synchronize(device)
    setup = time.perf_counter() - start
    model, optimizer = build(seed, device, fused=True)
    start = time.perf_counter()
    metrics = train_epoch(model, loaders["train_loader"], nn.NLLLoss(), optimizer, device)
    synchronize(device)
    return {"setup": setup, "epoch": time.perf_counter() - start, "trained": len(loaders["train_loader"].dataset),
            "validated": 0, "train_loss": metrics["loss"]}


PROFILE_GROUPS = {  # the profiler's operator names, grouped by what a step spends its time on
    "matmuls (mm, addmm)": ("aten::mm", "aten::addmm"),
    "Adam (step, fused kernel, step counts)": ("Optimizer.step#Adam.step", "aten::_fused_adam_",
                                               "aten::_foreach_add_"),
    "dropout's masks (bernoulli_)": ("aten::bernoulli_",),
    "batch gathering (index_select)": ("aten::index_select",),
    "zero_grad": ("Optimizer.zero_grad#Adam.zero_grad",),
}


def profile_library(seed: int, batch_size: int, device: torch.device, epochs: int = 2) -> None:
    """Print where (a)'s step time goes: the profiler's CPU self time per step, by group, per epoch.

    The first epoch profiled in a process can run its largest matmul several times slower than
    unprofiled: that is the profiler's own cost, so read the later epochs.
    """
    from torch.profiler import ProfilerActivity, profile

    loaders = mnist.make_loaders("fashion_mnist", batch_size, device, seed=seed, fast=True)
    steps = len(loaders["train_loader"])
    for epoch in range(1, epochs + 1):
        model, optimizer = build(seed, device, fused=True)
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            training.train_one_epoch(model, loaders["train_loader"], nn.NLLLoss(), optimizer, device)
            synchronize(device)
        events = prof.key_averages()
        total = sum(event.self_cpu_time_total for event in events)  # microseconds
        groups = {group: sum(event.self_cpu_time_total for event in events if event.key in names)
                  for group, names in PROFILE_GROUPS.items()}
        groups["everything else (activations, loss, autograd, Python)"] = total - sum(groups.values())
        bound = compute_bound(batch_size, len(loaders["train_loader"].dataset), device)
        print(f"profiled epoch {epoch}/{epochs}: {total / steps:.0f} us per step under the profiler; "
              f"the bound right after it {bound['seconds'] * 1e6 / steps:.0f} us per step")
        for group, micros in groups.items():
            print(f"  {group:<56} {micros / steps:>6.0f} us  {micros / total:>4.0%}")


def time_syllabus(seed: int, batch_size: int, device: torch.device, print_every: int) -> dict:
    """(b) DataLoader + PIL transforms, fc_model.train validating on the whole test set every `print_every` steps."""
    start = time.perf_counter()
    transform = mnist.classic_transform()  # v2 ToImage + ToDtype(scale) + Normalize((0.5,), (0.5,))
    trainset = mnist.torchvision_dataset("fashion_mnist", train=True, transform=transform)
    testset = mnist.torchvision_dataset("fashion_mnist", train=False, transform=transform)
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
    """(c) make_loaders(fast=False): the DataLoader and transforms of (b), the loop and fused Adam of (a)."""
    start = time.perf_counter()
    loaders = mnist.make_loaders("fashion_mnist", batch_size, device, seed=seed, fast=False)
    setup = time.perf_counter() - start
    model, optimizer = build(seed, device, fused=True)  # as in (a): (c) over (a) is the data path alone
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
                        help="run the paths in turn this many times and keep each path's fastest "
                             "(default: %(default)s)")
    parser.add_argument("--skip-breakdown", action="store_true", help="skip paths (c) and (d)")
    parser.add_argument("--profile", action="store_true",
                        help="then profile two epochs of (a): where a step's time goes, by group")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.batch_size < 1 or args.print_every < 1 or args.repeats < 1 or args.threads < 1:
        raise SystemExit("--batch-size, --print-every, --repeats and --threads must be at least 1")
    try:
        device = devices.get_device(args.device)
    except (TypeError, ValueError, RuntimeError) as err:
        raise SystemExit(str(err)) from None
    threads = devices.set_threads(args.threads)
    print(f"Fashion-MNIST, one epoch, batch {args.batch_size}, MLP 784-{'-'.join(map(str, HIDDEN_SIZES))}-10 "
          f"(dropout {DROPOUT}), Adam lr {LR}")
    print(f"device {devices.describe(device)} ({torch.get_num_threads()} threads); torch {torch.__version__}; "
          f"Python {platform.python_version()}; "
          f"{platform.machine()} {platform.processor() or ''}".rstrip())
    mnist.prepare("fashion_mnist")  # fetch/verify the raw files once, outside every timer

    paths = {
        "(a) library: make_loaders(fast=True) + train_one_epoch":
            lambda: time_in_memory(args.seed, args.batch_size, device),
        f"(b) syllabus: DataLoader + PIL transforms, fc_model.train, test set every {args.print_every} steps":
            lambda: time_syllabus(args.seed, args.batch_size, device, args.print_every),
    }
    if not args.skip_breakdown:
        paths[CLASSIC] = lambda: time_classic_loader(args.seed, args.batch_size, device)
        paths[BARE] = lambda: time_in_memory(args.seed, args.batch_size, device, bare_epoch)
    library_name, syllabus_name = list(paths)[:2]
    rows: dict[str, dict] = {}
    repeats = []
    for repeat in range(1, args.repeats + 1):  # interleaved, so a change in machine load hits every path alike
        times = {}
        for name, run in paths.items():
            row = run()
            times[name] = row["epoch"]
            if name not in rows or row["epoch"] < rows[name]["epoch"]:
                rows[name] = row
            if name == library_name:  # right after (a), on what it trained on: the machine's load drifts
                bound = compute_bound(args.batch_size, row["trained"], device)
        repeats.append({"bound": bound["seconds"], "library": times[library_name],
                        "syllabus": times[syllabus_name]})
        print(f"repeat {repeat}/{args.repeats}: compute bound {bound['seconds']:.2f} s "
              f"({bound['flops'] / 1e9:.1f} GFLOP of matmuls, {bound['vs_forward']:.2f}x the forward's, "
              f"at {bound['rate'] / 1e9:.1f} GFLOP/s), "
              f"library epoch {times[library_name]:.2f} s = {times[library_name] / bound['seconds']:.2f}x the bound, "
              f"syllabus epoch {times[syllabus_name]:.2f} s = "
              f"{times[syllabus_name] / times[library_name]:.1f}x the library's"
              + (f", bare loop {times[BARE]:.2f} s = {times[BARE] / bound['seconds']:.2f}x the bound" if BARE in times
                 else ""))

    heading = "path" + (f" (fastest of {args.repeats})" if args.repeats > 1 else "")
    print(f"\n{heading:<92} {'setup s':>8} {'epoch s':>8} {'trained':>8} {'validated':>10}")
    for name, row in rows.items():
        print(f"{name:<92} {row['setup']:>8.2f} {row['epoch']:>8.2f} {row['trained']:>8} {row['validated']:>10}")
    library, syllabus = rows[library_name], rows[syllabus_name]
    epoch_ratio = syllabus["epoch"] / library["epoch"]
    total_ratio = (syllabus["setup"] + syllabus["epoch"]) / (library["setup"] + library["epoch"])
    print(f"\nspeed-up of (a) over (b): {epoch_ratio:.1f}x per epoch, {total_ratio:.1f}x including setup "
          f"({threads} thread{'s' if threads != 1 else ''})")
    if CLASSIC in rows:
        classic = rows[CLASSIC]
        print(f"of which: the PIL DataLoader vs in-memory tensors {classic['epoch'] / library['epoch']:.1f}x "
              f"((c) over (a)), fc_model.train with its test-set validations and unfused Adam "
              f"{syllabus['epoch'] / classic['epoch']:.1f}x ((b) over (c))")
    if BARE in rows:
        print(f"the library's loop over a bare loop on the same batches: {library['epoch'] / rows[BARE]['epoch']:.2f}x")
    fastest_bound = min(r["bound"] for r in repeats)
    print(f"library epoch: {library['epoch'] / fastest_bound:.2f}x the compute bound")
    within_bound = all(r["library"] <= 2 * r["bound"] for r in repeats)
    ten_times = all(r["syllabus"] >= 10 * r["library"] for r in repeats)
    every = " in every repeat" if args.repeats > 1 else ""
    print(f"requirement (a) <= 2x the compute bound{every}: {'met' if within_bound else 'NOT met'}")
    print(f"requirement (a) >= 10x faster per epoch than (b){every}: {'met' if ten_times else 'NOT met'}")
    if args.profile:
        print()
        profile_library(args.seed, args.batch_size, device)
    return 0


if __name__ == "__main__":
    sys.exit(main())
