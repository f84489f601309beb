"""Exercises for lesson 16 (distributed data parallel): an epoch's metrics from every worker, DistributedSampler's
shards, gradient accumulation; all simulated in one process."""

from __future__ import annotations

import copy
import math

import torch
from torch import nn
from torch.utils.data import DistributedSampler

from course_utils.exercises.framework import (
    Exercise,
    Mistake,
    describe,
    distinct_sizes,
    expect_tensor,
    expect_unchanged,
    forbid,
    generator,
    randint,
    template_of,
    variant,
)

LESSON = "16_distributed"


# ---------------------------------------------------------------- 16.1 an epoch's metrics from every worker

HINT_1 = ("section 4 (What is all-reduced, and what it costs): the workers' sums are added, the means come from the "
          "totals, and the epoch time is reduced with MAX")
_KEYS = ("loss", "accuracy", "samples", "seconds")


def _worker_reports(gen: torch.Generator, samples: list[int]) -> list[dict]:
    """One report per worker: its mean loss and accuracy over its own `samples`, and its epoch's seconds."""
    reports = []
    for n in samples:
        correct = randint(gen, 0, n)
        reports.append({"loss": round(float(torch.empty(()).uniform_(0.2, 2.0, generator=gen)), 4),
                        "accuracy": correct / n, "samples": n,
                        "seconds": round(float(torch.empty(()).uniform_(1.0, 9.0, generator=gen)), 2)})
    return reports


def _epoch(reports: list[dict]) -> dict:
    """The reference: sums added up, means from the totals, the slowest worker's time."""
    samples = sum(r["samples"] for r in reports)
    return {"loss": sum(r["loss"] * r["samples"] for r in reports) / samples,
            "accuracy": sum(r["accuracy"] * r["samples"] for r in reports) / samples,
            "samples": samples, "seconds": max(r["seconds"] for r in reports)}


def _check_types(got: dict, expected: dict, setting: str) -> None:
    """Mistake unless 'samples' is a Python int and the other values are Python floats (or ints)."""
    total = expected["samples"]
    if isinstance(got["samples"], bool) or not isinstance(got["samples"], int):
        same = isinstance(got["samples"], (int, float)) and got["samples"] == total
        why = (" (a count added in floating point, or read back with .item() from a float tensor, comes back as a "
               "float: int(...) turns it back)") if same else ""
        raise Mistake(f"{setting} 'samples' is {describe(got['samples'])} {got['samples']!r}, expected the Python "
                      f"int {total}{why}", HINT_1)
    for key in ("loss", "accuracy", "seconds"):
        value = got[key]
        if isinstance(value, torch.Tensor):
            raise Mistake(f"{setting} {key!r} is {describe(value)}, expected a Python float (.item() gives it)",
                          HINT_1)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise Mistake(f"{setting} {key!r} is {describe(value)}, expected a float", HINT_1)


def check_epoch_metrics(epoch_metrics) -> str:
    gen = generator("16.1")
    world_size = randint(gen, 3, 4)
    cases = [("shards of different sizes", distinct_sizes(gen, world_size, 20, 90)),
             ("two equal shards", [randint(gen, 20, 90)] * 2),
             ("one worker", [randint(gen, 20, 90)])]
    for what, samples in cases:
        reports = _worker_reports(gen, samples)
        before = copy.deepcopy(reports)
        got = epoch_metrics(reports)
        setting = f"for {what} ({samples} samples)"
        for rank, (report, kept) in enumerate(zip(reports, before)):
            if report != kept:
                raise Mistake(f"{setting} your code changed per_worker[{rank}] (it is now {report}): build a new "
                              "dict for the totals instead of adding into a worker's", HINT_1)
        if not isinstance(got, dict):
            raise Mistake(f"{setting} epoch_metrics returned {describe(got)}, expected a dict with the keys "
                          f"{list(_KEYS)}", HINT_1)
        if sorted(got) != sorted(_KEYS):
            raise Mistake(f"{setting} your dict has the keys {sorted(got)}, expected exactly {sorted(_KEYS)}", HINT_1)
        expected = _epoch(reports)
        _check_types(got, expected, setting)
        if got["samples"] != expected["samples"]:
            raise Mistake(f"{setting} 'samples' is {got['samples']}, expected the total over the workers, "
                          f"{expected['samples']}", HINT_1)
        if abs(got["seconds"] - expected["seconds"]) > 1e-9:
            seconds = [r["seconds"] for r in reports]
            why = ""
            if len(reports) > 1 and abs(got["seconds"] - sum(seconds)) < 1e-9:
                why = ", the sum of the workers' times, but they run at the same time"
            elif len(reports) > 1 and abs(got["seconds"] - sum(seconds) / len(seconds)) < 1e-9:
                why = ", the mean of the workers' times, but the others wait for the slowest"
            raise Mistake(f"{setting} 'seconds' is {got['seconds']!r}{why}: an epoch lasts as long as its slowest "
                          f"worker, {expected['seconds']!r} s (a MAX, not a SUM)", HINT_1)
        for key in ("loss", "accuracy"):
            if abs(got[key] - expected[key]) > 1e-9 * max(1.0, abs(expected[key])):
                mean_of_means = sum(r[key] for r in reports) / len(reports)
                if abs(got[key] - mean_of_means) < 1e-9:
                    raise Mistake(f"{setting} {key!r} is {got[key]:.6g}, the mean of the workers' means; with shards "
                                  f"of different sizes that is not the mean over all samples, {expected[key]:.6g}: "
                                  "weight each worker's mean by its samples (that gives its sum) and divide the "
                                  "total by all the samples", HINT_1)
                if abs(got[key] - expected[key]) < 1e-6 * max(1.0, abs(expected[key])):
                    raise Mistake(f"{setting} {key!r} is {got[key]!r}, expected {expected[key]!r}: right to about 7 "
                                  "digits, which is float32's precision; compute in Python floats or float64 "
                                  "tensors (the check wants 1e-9)", HINT_1)
                raise Mistake(f"{setting} {key!r} is {got[key]!r}, expected {expected[key]!r}, the mean over "
                              "all the samples", HINT_1)
    return (f"the loss and accuracy over all samples for {world_size} shards of different sizes, 2 equal ones and "
            "1 worker; the total samples as an int; the slowest worker's seconds; the reports unchanged")


SOLUTION_1 = '''
def epoch_metrics(per_worker):
    """The epoch's loss and accuracy over all samples, the total samples, and the slowest worker's seconds."""
    samples = sum(worker["samples"] for worker in per_worker)
    loss_sum = sum(worker["loss"] * worker["samples"] for worker in per_worker)   # a mean times its count: a sum
    correct = sum(worker["accuracy"] * worker["samples"] for worker in per_worker)
    return {"loss": loss_sum / samples, "accuracy": correct / samples, "samples": samples,
            "seconds": max(worker["seconds"] for worker in per_worker)}         # the others wait for the slowest
'''

_TOTALS_IN_FLOAT64 = '''
def epoch_metrics(per_worker):
    rows = [[w["loss"] * w["samples"], w["accuracy"] * w["samples"], w["samples"]] for w in per_worker]
    totals = torch.tensor(rows, dtype=torch.float64).sum(dim=0)   # what all_reduce_sums adds up
    n = int(totals[2])
    return {"loss": totals[0].item() / n, "accuracy": totals[1].item() / n, "samples": n,
            "seconds": torch.tensor([w["seconds"] for w in per_worker], dtype=torch.float64).max().item()}
'''

EX_1 = Exercise(
    id="16.1", lesson=LESSON, title="An epoch's metrics from every worker", name="epoch_metrics",
    hint=HINT_1,
    more_hints=["a worker's mean times its samples is its sum; add the sums, then divide by all the samples; the "
                "time is the max over the workers, since they run at the same time"],
    statement="""
Write `epoch_metrics(per_worker)` that combines what each worker measured on its own shard into the
epoch's metrics over the whole training set, as the lesson's script does with its all-reduces.

Each worker reports its mean loss per sample and its accuracy over its own shard, its number of
samples, and how long its epoch took. The shards may differ in size.

- **In:** `per_worker`, a list with one dict per worker (at least one), each with the keys `"loss"`
  (float), `"accuracy"` (float, the fraction correct), `"samples"` (int ≥ 1) and `"seconds"` (float).
- **Out:** a new dict with the same four keys: `"loss"` and `"accuracy"` over all the samples together
  (floats), `"samples"` the total (a Python `int`), `"seconds"` how long the epoch lasted (a float).
  The workers' dicts must not change.
- **Use:** plain Python (`sum`, `max`) or tensor operations.
- **Correct means:** loss and accuracy within 1e-9 of those over all the samples, the total an `int`,
  the seconds those of the slowest worker; for shards of different sizes, for two equal shards and for
  a single worker; the workers' dicts unchanged.
- **Reread:** section 4, *What is all-reduced, and what it costs*.
""",
    template=template_of(SOLUTION_1),
    solution=SOLUTION_1,
    alternatives=[_TOTALS_IN_FLOAT64],
    wrong_answers=[
        ("""
def epoch_metrics(per_worker):
    sums = torch.tensor([[w["loss"] * w["samples"], w["accuracy"] * w["samples"], w["samples"]] for w in per_worker])
    loss, accuracy, total = sums.sum(dim=0)
    return {"loss": (loss / total).item(), "accuracy": (accuracy / total).item(), "samples": int(total),
            "seconds": max(w["seconds"] for w in per_worker)}
""", "which is float32's precision"),
        (variant(SOLUTION_1, ('worker["loss"] * worker["samples"] for', 'worker["loss"] / len(per_worker) for'),
                 ('"loss": loss_sum / samples', '"loss": loss_sum')), "the mean of the workers' means"),
        (variant(SOLUTION_1, ('max(worker["seconds"]', 'sum(worker["seconds"]')), "slowest worker"),
        (variant(_TOTALS_IN_FLOAT64, ("n = int(totals[2])", "n = totals[2].item()")), "expected the Python int"),
        (variant(_TOTALS_IN_FLOAT64, ('"loss": totals[0].item() / n', '"loss": totals[0] / n')),
         "expected a Python float"),
        ('''
def epoch_metrics(per_worker):
    total = per_worker[0]
    for worker in per_worker[1:]:
        n = total["samples"] + worker["samples"]
        total["loss"] = (total["loss"] * total["samples"] + worker["loss"] * worker["samples"]) / n
        total["accuracy"] = (total["accuracy"] * total["samples"] + worker["accuracy"] * worker["samples"]) / n
        total["samples"] = n
        total["seconds"] = max(total["seconds"], worker["seconds"])
    return total
''', "changed per_worker[0]"),
    ],
    checker=check_epoch_metrics,
)


# ---------------------------------------------------------------- 16.2 DistributedSampler's shards

HINT_2 = ("section 2 (A whole DDP script), the shards each worker reads, and section 7 (When something goes wrong), "
          "on a hang: one permutation per epoch, shards padded to equal length")


def _sampler_shard(num_samples: int, rank: int, world_size: int, seed: int, epoch: int) -> list[int]:
    """What torch's DistributedSampler (shuffle=True, drop_last=False) gives this rank in this epoch."""
    sampler = DistributedSampler(range(num_samples), num_replicas=world_size, rank=rank, shuffle=True, seed=seed)
    sampler.set_epoch(epoch)
    return list(sampler)


def _as_indices(got, setting: str) -> list[int]:
    """The answer, a list of Python ints; Mistake for anything else (a tensor, a tuple, a list of tensors)."""
    if isinstance(got, torch.Tensor):
        raise Mistake(f"for {setting} you returned {describe(got)}, not a list of ints: .tolist() turns a tensor "
                      "into one", HINT_2)
    if isinstance(got, list) and all(isinstance(i, int) and not isinstance(i, bool) for i in got):
        return got
    inside = f" of {describe(got[0])}" if isinstance(got, (list, tuple)) and got else ""
    raise Mistake(f"for {setting} you returned {describe(got)}{inside}, expected a list of Python ints", HINT_2)


def check_shard_indices(shard_indices) -> str:
    gen = generator("16.2")
    world_size = randint(gen, 3, 4)
    cases = [(world_size * randint(gen, 4, 7) + randint(gen, 1, world_size - 1), world_size),  # needs padding
             (2 * randint(gen, 5, 9), 2),                                                     # divides evenly
             (2, 5)]                                                                          # fewer than workers
    seed = randint(gen, 0, 1000)
    for num_samples, world in cases:
        total = math.ceil(num_samples / world) * world
        for epoch in (0, randint(gen, 1, 5)):
            for rank in range(world):
                expected = _sampler_shard(num_samples, rank, world, seed, epoch)
                setting = (f"num_samples={num_samples}, rank={rank}, world_size={world}, seed={seed}, "
                           f"epoch={epoch}")
                with forbid((DistributedSampler, "__init__"), (DistributedSampler, "__iter__"),
                            what="DistributedSampler", hint=HINT_2):
                    got = shard_indices(num_samples, rank, world, seed, epoch)
                indices = _as_indices(got, setting)
                if indices == expected:
                    continue
                order = torch.randperm(num_samples, generator=torch.Generator().manual_seed(seed + epoch)).tolist()
                padded = (order * math.ceil(total / num_samples))[:total]
                if len(indices) != len(expected):
                    short = ""
                    if len(indices) < len(expected):
                        short = (" (with fewer samples than workers, repeat the whole permutation as often as needed)"
                                 if num_samples < world else " (pad the permutation by repeating it from its start)")
                    raise Mistake(f"for {setting} you returned {len(indices)} indices, expected "
                                  f"ceil({num_samples} / {world}) = {len(expected)}: every worker gets as many, so "
                                  f"that all make the same number of steps{short}", HINT_2)
                if epoch and indices == _sampler_shard(num_samples, rank, world, seed, 0):
                    raise Mistake(f"for {setting} you returned epoch 0's shard: seed the permutation with "
                                  "seed + epoch, so that every epoch has its own order", HINT_2)
                block = len(expected)
                if indices == padded[rank * block:(rank + 1) * block]:
                    raise Mistake(f"for {setting} you returned a contiguous block of the permutation; "
                                  "DistributedSampler gives worker r every world_size-th index, starting at r", HINT_2)
                raise Mistake(f"for {setting} you returned {indices}, expected {expected}", HINT_2)
    return (f"every rank's shard in 2 epochs for {cases[0][0]} samples on {cases[0][1]} workers (padded), "
            f"{cases[1][0]} on 2 and 2 on 5, equal to DistributedSampler's")


SOLUTION_2 = '''
def shard_indices(num_samples, rank, world_size, seed, epoch):
    """The indices DistributedSampler(shuffle=True, drop_last=False) gives `rank` of `world_size` in `epoch`."""
    generator = torch.Generator().manual_seed(seed + epoch)     # the same on every worker: one shared order
    order = torch.randperm(num_samples, generator=generator).tolist()
    total = math.ceil(num_samples / world_size) * world_size    # equal shards: every worker steps as often
    padded = (order * math.ceil(total / num_samples))[:total]   # repeat from the start
    return padded[rank:total:world_size]
'''

_WITH_SAMPLER = """
from torch.utils.data import DistributedSampler


def shard_indices(num_samples, rank, world_size, seed, epoch):
    sampler = DistributedSampler(range(num_samples), num_replicas=world_size, rank=rank, seed=seed)
    sampler.set_epoch(epoch)
    return list(sampler)
"""

EX_2 = Exercise(
    id="16.2", lesson=LESSON, title="Shards like DistributedSampler", name="shard_indices",
    statement="""
Write `shard_indices(num_samples, rank, world_size, seed, epoch)` that returns the indices worker `rank`
reads in epoch `epoch`, as `DistributedSampler` with `shuffle=True` and `drop_last=False` gives them.

The recipe: the permutation `torch.randperm(num_samples, generator=g)` with
`g = torch.Generator().manual_seed(seed + epoch)`; pad it to the next multiple of `world_size` by
appending its own first indices again (repeating the whole permutation as often as needed when there
are fewer samples than workers); worker `rank` takes the padded list's positions `rank`,
`rank + world_size`, `rank + 2 * world_size`, ...

- **In:** `num_samples`, `rank` (0 ... `world_size - 1`), `world_size`, `seed`, `epoch`: ints.
- **Out:** a `list` of Python ints, `ceil(num_samples / world_size)` of them.
- **Use:** `torch.randperm` with a seeded `torch.Generator`, list or tensor operations; not
  `DistributedSampler` itself.
- **Correct means:** for every rank and two epochs the same list as `DistributedSampler` (after
  `set_epoch`), for a size that needs padding, one that divides evenly and one with fewer samples than
  workers (all three on every check).
- **Reread:** section 2, *A whole DDP script* (the shards each worker reads).
""",
    template=template_of(SOLUTION_2),
    solution=SOLUTION_2,
    alternatives=['''
def shard_indices(num_samples, rank, world_size, seed, epoch):
    g = torch.Generator()
    g.manual_seed(seed + epoch)
    perm = torch.randperm(num_samples, generator=g)
    per_rank = -(-num_samples // world_size)
    padding = per_rank * world_size - num_samples
    perm = torch.cat([perm, perm.repeat(padding // num_samples + 1)[:padding]])
    return perm.view(per_rank, world_size)[:, rank].tolist()
'''],
    wrong_answers=[
        ('''
def shard_indices(num_samples, rank, world_size, seed, epoch):
    order = torch.randperm(num_samples, generator=torch.Generator().manual_seed(seed + epoch)).tolist()
    return order[rank::world_size]
''', "pad the permutation"),
        ('''
def shard_indices(num_samples, rank, world_size, seed, epoch):
    order = torch.randperm(num_samples, generator=torch.Generator().manual_seed(seed)).tolist()
    total = math.ceil(num_samples / world_size) * world_size
    padded = (order * math.ceil(total / num_samples))[:total]
    return padded[rank:total:world_size]
''', "seed + epoch"),
        ('''
def shard_indices(num_samples, rank, world_size, seed, epoch):
    order = torch.randperm(num_samples, generator=torch.Generator().manual_seed(seed + epoch)).tolist()
    per_rank = math.ceil(num_samples / world_size)
    padded = (order * world_size)[:per_rank * world_size]
    return padded[rank * per_rank:(rank + 1) * per_rank]
''', "contiguous block"),
        (variant(SOLUTION_2,
            ('(order * math.ceil(total / num_samples))[:total', 'order + order[:total - num_samples'),
        ), "fewer samples than workers"),
        (_WITH_SAMPLER, "your code called DistributedSampler"),
        (variant(SOLUTION_2, ('order = torch.randperm(num_samples, generator=generator).tolist()',
                              'order = torch.randperm(num_samples, generator=generator)'),
                 ('(order * math.ceil(total / num_samples))[:total]',
                  'order.repeat(math.ceil(total / num_samples))[:total]')), "not a list of ints"),
    ],
    checker=check_shard_indices, hint=HINT_2,
    more_hints=["the padded list has ceil(num_samples / world_size) * world_size entries; the slice "
                "padded[rank::world_size] takes every world_size-th one from position rank"],
)


# ---------------------------------------------------------------- 16.3 gradient accumulation

HINT_3 = ("section 6 (The equivalence): gradients add up in .grad until zero_grad; a micro-batch's loss is "
          "scaled before backward()")


def _small_model(gen: torch.Generator, n_in: int, n_out: int) -> nn.Module:
    model = nn.Sequential(nn.Linear(n_in, 8), nn.Tanh(), nn.Linear(8, n_out))
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=gen))
    return model


def _gradients(model: nn.Module, loss_fn, inputs, targets, micro_batches: int, weighting: str) -> list[torch.Tensor]:
    """The gradients after micro-batch backward passes: 'share' (correct), 'equal' (loss / micro_batches) or 'sum'."""
    model = copy.deepcopy(model)
    model.zero_grad(set_to_none=True)
    for x, y in zip(torch.tensor_split(inputs, micro_batches), torch.tensor_split(targets, micro_batches)):
        scale = {"share": len(x) / len(inputs), "equal": 1 / micro_batches, "sum": 1.0}[weighting]
        (loss_fn(model(x), y) * scale).backward()
    return [p.grad for p in model.parameters()]


def _close(got: list, expected: list[torch.Tensor]) -> bool:
    return all(isinstance(g, torch.Tensor) and g.shape == e.shape and torch.allclose(g, e, atol=1e-5, rtol=1e-4)
               for g, e in zip(got, expected))


def check_accumulate_gradients(accumulate_gradients) -> str:
    gen = generator("16.3")
    n_in, n_out = distinct_sizes(gen, 2, 3, 6)
    k = 3
    cases = [(k * randint(gen, 2, 4) + randint(gen, 1, k - 1), k),  # chunks of unequal size
             (9, 4),                                                 # torch.chunk would make only 3 pieces
             (randint(gen, 4, 8), 1)]                                # one micro-batch: the plain step
    for n, micro_batches in cases:
        model = _small_model(gen, n_in, n_out)
        loss_fn = nn.CrossEntropyLoss()
        inputs, targets = torch.randn(n, n_in, generator=gen), torch.randint(0, n_out, (n,), generator=gen)
        expected = _gradients(model, loss_fn, inputs, targets, 1, "share")  # the whole batch at once
        stale = [torch.randn(p.shape, generator=gen) for p in model.parameters()]
        for p, g in zip(model.parameters(), stale):
            p.grad = g.clone()  # left from an earlier step
        weights = {name: p.detach().clone() for name, p in model.named_parameters()}
        sizes: list[int] = []
        hook = model.register_forward_pre_hook(lambda module, args, sizes=sizes: sizes.append(len(args[0])))
        before = {"inputs": inputs.clone(), "targets": targets.clone()}
        try:
            accumulate_gradients(model, loss_fn, inputs, targets, micro_batches)
        except ValueError as err:  # cross-entropy's own words for pieces of inputs and targets that differ
            if "to match target batch_size" not in str(err):
                raise
            raise Mistake(f"for a batch of {n} in micro_batches={micro_batches} a piece of the inputs and its piece "
                          f"of the targets have different sizes (the loss said: {err}): split both the same way, "
                          "with torch.tensor_split and the same number of pieces", HINT_3) from None
        finally:
            hook.remove()  # the reference gradients below run copies of the model
        expect_unchanged(before, {"inputs": inputs, "targets": targets}, HINT_3)
        setting = f"a batch of {n} in micro_batches={micro_batches}"
        if any(not torch.equal(p, weights[name]) for name, p in model.named_parameters()):
            raise Mistake(f"for {setting} the weights changed: compute the gradients only, the optimiser steps "
                          "afterwards", HINT_3)
        if len(sizes) != micro_batches or sum(sizes) != n or (micro_batches > 1 and max(sizes) == n):
            chunk = " (torch.chunk can return fewer pieces than asked; torch.tensor_split returns exactly that many)" \
                if 1 < len(sizes) < micro_batches else ""
            raise Mistake(f"for {setting} your code ran forward passes on batches of {sizes}, expected "
                          f"{micro_batches} micro-batches that together hold the {n} samples{chunk}", HINT_3)
        got = [p.grad for p in model.parameters()]
        if any(g is None for g in got):
            raise Mistake(f"for {setting} some parameters have no gradient (.grad is None): call backward() on "
                          "each micro-batch's loss", HINT_3)
        share = _gradients(model, loss_fn, inputs, targets, micro_batches, "share")
        if _close(got, [g + s for g, s in zip(share, stale)]):
            raise Mistake(f"for {setting} the gradients left from before the call are still in .grad: zero them "
                          "first (model.zero_grad()), since backward() adds to .grad", HINT_3)
        if micro_batches > 1 and _close(got, _gradients(model, loss_fn, inputs, targets, micro_batches, "sum")):
            raise Mistake(f"for {setting} the gradient is the sum of the micro-batches' mean-loss gradients, about "
                          f"{micro_batches} times too large: scale each loss before backward()", HINT_3)
        if micro_batches > 1 and _close(got, _gradients(model, loss_fn, inputs, targets, micro_batches, "equal")):
            raise Mistake(f"for {setting} each loss was divided by micro_batches: exact only when the pieces are "
                          f"equal; the pieces here have {sizes} samples, so weight each mean loss by its share of "
                          f"the batch, len(piece) / {n}", HINT_3)
        for i, (g, e) in enumerate(zip(got, expected)):
            expect_tensor(g, e, f"for {setting}, the gradient of parameter {i}", hint=HINT_3)
    return (f"the whole batch's gradient from {cases[0][1]} unequal micro-batches of {cases[0][0]}, from 4 of 9 and "
            "from 1, stale gradients cleared, weights unchanged")


SOLUTION_3 = '''
def accumulate_gradients(model, loss_fn, inputs, targets, micro_batches):
    """Leave in .grad the whole batch's mean-loss gradient, from one forward/backward per micro-batch."""
    model.zero_grad()                                   # backward() adds to .grad
    for x, y in zip(torch.tensor_split(inputs, micro_batches), torch.tensor_split(targets, micro_batches)):
        loss = loss_fn(model(x), y)                     # the piece's mean
        (loss * len(x) / len(inputs)).backward()        # weighted by the piece's share: the sum is the batch mean
'''

EX_3 = Exercise(
    id="16.3", lesson=LESSON, title="Gradient accumulation equals one big batch", name="accumulate_gradients",
    statement="""
Write `accumulate_gradients(model, loss_fn, inputs, targets, micro_batches)` that leaves in every
parameter's `.grad` the whole batch's gradient while running the model only on `micro_batches` pieces.

The gradient wanted is that of `loss_fn(model(inputs), targets)` (`loss_fn` returns a batch's **mean**,
like `nn.CrossEntropyLoss()`). Split `inputs` and `targets` into `micro_batches` consecutive pieces and
run one forward and one `backward()` per piece. The batch size need not be a multiple of
`micro_batches`, so the pieces may differ in size. `.grad` may hold gradients from an earlier step.

- **In:** `model`, an `nn.Module`; `loss_fn`, a mean loss; `inputs` `(batch, features)` and `targets`
  `(batch,)` tensors; `micro_batches`, an int between 1 and the batch size.
- **Out:** nothing; every parameter's `.grad` holds the whole batch's gradient. No weight changes (no
  optimiser step), nor the inputs.
- **Use:** `torch.tensor_split` (`torch.chunk` may return fewer pieces than asked), `backward()`.
- **Correct means:** `micro_batches` forward passes that together hold the batch, and every gradient
  equal to the whole batch's (within 1e-5 + 1e-4 relative), with stale gradients in `.grad` beforehand,
  for unequal pieces, for 4 pieces of 9 samples and for a single piece; weights and inputs unchanged.
- **Reread:** section 6, *The equivalence*.
""",
    template=template_of(SOLUTION_3),
    solution=SOLUTION_3,
    alternatives=['''
def accumulate_gradients(model, loss_fn, inputs, targets, micro_batches):
    for p in model.parameters():
        p.grad = None
    bounds = [round(i * len(inputs) / micro_batches) for i in range(micro_batches + 1)]
    for start, stop in zip(bounds, bounds[1:]):
        piece_sum = loss_fn(model(inputs[start:stop]), targets[start:stop]) * (stop - start)
        (piece_sum / len(inputs)).backward()
'''],
    wrong_answers=[
        ('''
def accumulate_gradients(model, loss_fn, inputs, targets, micro_batches):
    model.zero_grad()
    for x, y in zip(torch.tensor_split(inputs, micro_batches), torch.tensor_split(targets, micro_batches)):
        (loss_fn(model(x), y) / micro_batches).backward()
''', "each loss was divided by micro_batches"),
        ('''
def accumulate_gradients(model, loss_fn, inputs, targets, micro_batches):
    for x, y in zip(torch.tensor_split(inputs, micro_batches), torch.tensor_split(targets, micro_batches)):
        (loss_fn(model(x), y) * len(x) / len(inputs)).backward()
''', "zero them first"),
        ('''
def accumulate_gradients(model, loss_fn, inputs, targets, micro_batches):
    model.zero_grad()
    for x, y in zip(torch.tensor_split(inputs, micro_batches), torch.tensor_split(targets, micro_batches)):
        loss_fn(model(x), y).backward()
''', "times too large"),
        ('''
def accumulate_gradients(model, loss_fn, inputs, targets, micro_batches):
    model.zero_grad()
    for x, y in zip(inputs.chunk(micro_batches), targets.chunk(micro_batches)):
        (loss_fn(model(x), y) * len(x) / len(inputs)).backward()
''', "torch.chunk can return fewer pieces"),
        ('''
def accumulate_gradients(model, loss_fn, inputs, targets, micro_batches):
    model.zero_grad()
    loss_fn(model(inputs), targets).backward()
''', "expected 3 micro-batches"),
        (variant(SOLUTION_3, ("        (loss * len(x) / len(inputs)).backward()",
                              "        (loss * len(x) / len(inputs)).backward()\n"
                              "        torch.optim.SGD(model.parameters(), lr=0.1).step()")), "the weights changed"),
        (variant(SOLUTION_3, ("    model.zero_grad()", "    inputs -= inputs.mean(dim=0)\n    model.zero_grad()")),
         "changed its input `inputs` in place"),
        (variant(SOLUTION_3, ("torch.tensor_split(targets, micro_batches)", "targets.chunk(micro_batches)")),
         "have different sizes"),
    ],
    checker=check_accumulate_gradients, hint=HINT_3,
    more_hints=["zero the gradients first; then weight each piece's mean loss by its share of the batch, "
                "len(piece) / len(inputs), so that the weighted means add up to the batch's mean"],
)

EXERCISES = [EX_1, EX_2, EX_3]
