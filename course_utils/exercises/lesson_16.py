"""Exercises for lesson 16 (distributed data parallel): gradients averaged as all-reduce does, DistributedSampler's
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
    generator,
    randint,
    template_of,
    variant,
)

LESSON = "16_distributed"


# ---------------------------------------------------------------- 16.1 gradients averaged as all-reduce does

HINT_1 = ("section 1 (What DDP does), step 3: during backward() DDP all-reduces the gradients, so that every "
          "worker ends up with the average over all workers, and every worker then takes the same step")


def check_average_gradients(average_gradients) -> str:
    gen = generator("16.1")
    shapes = [tuple(distinct_sizes(gen, 2, 2, 6)), (randint(gen, 2, 6),), (randint(gen, 1, 3), 2, 3)]
    tested = []
    for world_size in (randint(gen, 3, 5), 2, 1):
        grads = [[torch.randn(shape, generator=gen) for shape in shapes] for _ in range(world_size)]
        before = {f"grads_per_rank[{r}][{i}]": g.clone() for r, rank in enumerate(grads) for i, g in enumerate(rank)}
        result = average_gradients(grads)
        expect_unchanged(before, {f"grads_per_rank[{r}][{i}]": g for r, rank in enumerate(grads)
                                  for i, g in enumerate(rank)}, HINT_1)
        means = [torch.stack(per_parameter).double().mean(dim=0).float() for per_parameter in zip(*grads)]
        if not isinstance(result, (list, tuple)) or len(result) != world_size or not all(
                isinstance(rank, (list, tuple)) for rank in result):
            length = f" of length {len(result)}" if isinstance(result, (list, tuple)) else ""
            raise Mistake(f"for {world_size} ranks average_gradients returned {describe(result)}{length}, expected a "
                          f"list of {world_size} lists (what each rank holds after the all-reduce)", HINT_1)
        for rank, got in enumerate(result):
            if len(got) != len(shapes):
                raise Mistake(f"rank {rank} got {len(got)} gradients, expected one per parameter ({len(shapes)})",
                              HINT_1)
            for i, (tensor, mean) in enumerate(zip(got, means)):
                what = f"rank {rank}'s gradient {i} ({world_size} ranks)"
                total = mean * world_size
                if (world_size > 1 and isinstance(tensor, torch.Tensor) and tensor.shape == mean.shape
                        and torch.allclose(tensor, total, atol=1e-5)):
                    raise Mistake(f"{what} is the sum over the ranks (what all_reduce with ReduceOp.SUM leaves): "
                                  f"divide it by the world size, {world_size}", HINT_1)
                expect_tensor(tensor, mean, what, atol=1e-6, hint=HINT_1)
        tested.append(world_size)
    return f"the mean over {tested[0]}, 2 and 1 ranks of {len(shapes)} gradients each, on every rank, inputs unchanged"


SOLUTION_16_1 = '''
def average_gradients(grads_per_rank):
    """One list per rank of the gradients' means over the ranks: what every rank holds after the all-reduce."""
    world_size = len(grads_per_rank)
    # zip(*...) groups the ranks' gradients of one parameter; stack -> (world_size, *shape)
    means = [torch.stack(per_parameter).mean(dim=0) for per_parameter in zip(*grads_per_rank)]
    return [[mean.clone() for mean in means] for _ in range(world_size)]  # every rank holds its own copy
'''

EX_1 = Exercise(
    id="16.1", lesson=LESSON, title="Average gradients as all-reduce does", name="average_gradients",
    statement="""
Simulate what DDP's all-reduce does to the gradients, in one process. Write
`average_gradients(grads_per_rank)`: `grads_per_rank[r]` is the list of gradient tensors worker `r`
computed on its own shard (one tensor per parameter, the same shapes on every worker). Return a list
with one entry per worker, each a list of new tensors: for every parameter, the element-wise mean of
that parameter's gradients over all workers, as every worker holds it after the all-reduce. The input
tensors must not change.

Correct means: for 1 to 5 workers and gradients of several shapes, every worker's every tensor is the
mean over the workers (within 1e-6), and no input changed. See section 1, *What DDP does*.
""",
    template=template_of(SOLUTION_16_1),
    solution=SOLUTION_16_1,
    alternatives=['''
def average_gradients(grads_per_rank):
    n = len(grads_per_rank)
    summed = [g.clone() for g in grads_per_rank[0]]
    for rank in grads_per_rank[1:]:
        for total, g in zip(summed, rank):
            total += g              # all_reduce with ReduceOp.SUM
    return [[total / n for total in summed] for _ in range(n)]
'''],
    wrong_answers=[
        ("def average_gradients(grads_per_rank):\n"
         "    sums = [torch.stack(g).sum(dim=0) for g in zip(*grads_per_rank)]\n"
         "    return [sums for _ in grads_per_rank]\n", "divide it by the world size"),
        ("def average_gradients(grads_per_rank):\n"
         "    return [torch.stack(g).mean(dim=0) for g in zip(*grads_per_rank)]\n", "expected a list of"),
        ("def average_gradients(grads_per_rank):\n"
         "    return [[g.mean() for g in rank] for rank in grads_per_rank]\n", "has shape ()"),
        ("def average_gradients(grads_per_rank):\n"
         "    first = grads_per_rank[0]\n"
         "    for rank in grads_per_rank[1:]:\n        for total, g in zip(first, rank):\n            total += g\n"
         "    means = [t / len(grads_per_rank) for t in first]\n"
         "    return [means for _ in grads_per_rank]\n", "changed its input `grads_per_rank[0][0]` in place"),
    ],
    checker=check_average_gradients, hint=HINT_1,
)


# ---------------------------------------------------------------- 16.2 DistributedSampler's shards

HINT_2 = ("section 1 (What DDP does), step 2, and section 7 (A hang instead of an error): one permutation per "
          "epoch from seed + epoch, padded to a multiple of the world size by repeating it from its start, and "
          "worker r takes every world_size-th index starting at r")


def sampler_shard(num_samples: int, rank: int, world_size: int, seed: int, epoch: int) -> list[int]:
    """What torch's DistributedSampler (shuffle=True, drop_last=False) gives this rank in this epoch."""
    sampler = DistributedSampler(range(num_samples), num_replicas=world_size, rank=rank, shuffle=True, seed=seed)
    sampler.set_epoch(epoch)
    return list(sampler)


def as_indices(got) -> list[int] | None:
    """The answer as a list of ints, or None when it is not a sequence of whole numbers."""
    if isinstance(got, torch.Tensor):
        return got.tolist() if got.ndim == 1 and not got.is_floating_point() else None
    if isinstance(got, (list, tuple)) and all(isinstance(i, int) and not isinstance(i, bool) for i in got):
        return list(got)
    return None


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
                expected = sampler_shard(num_samples, rank, world, seed, epoch)
                setting = (f"num_samples={num_samples}, rank={rank}, world_size={world}, seed={seed}, "
                           f"epoch={epoch}")
                got = shard_indices(num_samples, rank, world, seed, epoch)
                indices = as_indices(got)
                if indices is None:
                    raise Mistake(f"for {setting} you returned {describe(got)}, expected a list of ints", HINT_2)
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
                if epoch and indices == sampler_shard(num_samples, rank, world, seed, 0):
                    raise Mistake(f"for {setting} you returned epoch 0's shard: seed the permutation with "
                                  "seed + epoch, so that every epoch has its own order", HINT_2)
                block = len(expected)
                if indices == padded[rank * block:(rank + 1) * block]:
                    raise Mistake(f"for {setting} you returned a contiguous block of the permutation; "
                                  "DistributedSampler gives worker r every world_size-th index, starting at r", HINT_2)
                raise Mistake(f"for {setting} you returned {indices}, expected {expected}", HINT_2)
    return (f"every rank's shard in 2 epochs for {cases[0][0]} samples on {cases[0][1]} workers (padded), "
            f"{cases[1][0]} on 2 and 2 on 5, equal to DistributedSampler's")


SOLUTION_16_2 = '''
def shard_indices(num_samples, rank, world_size, seed, epoch):
    """The indices DistributedSampler(shuffle=True, drop_last=False) gives `rank` of `world_size` in `epoch`."""
    generator = torch.Generator().manual_seed(seed + epoch)     # the same on every worker: one shared order
    order = torch.randperm(num_samples, generator=generator).tolist()
    total = math.ceil(num_samples / world_size) * world_size    # equal shards: every worker steps as often
    padded = (order * math.ceil(total / num_samples))[:total]   # repeat from the start
    return padded[rank:total:world_size]
'''

EX_2 = Exercise(
    id="16.2", lesson=LESSON, title="Shards like DistributedSampler", name="shard_indices",
    statement="""
Write `shard_indices(num_samples, rank, world_size, seed, epoch)` that returns, as a list of ints, the
indices worker `rank` (0 ... `world_size - 1`) reads in epoch `epoch`, as `DistributedSampler` with
`shuffle=True` and `drop_last=False` gives them. The recipe: the permutation
`torch.randperm(num_samples, generator=g)` with `g = torch.Generator().manual_seed(seed + epoch)`; pad it
to the next multiple of `world_size` by appending its own first indices again (repeating the whole
permutation as often as needed when there are fewer samples than workers); worker `rank` takes the
padded list's positions `rank`, `rank + world_size`, `rank + 2 * world_size`, ... Do not use
`DistributedSampler`.

Correct means: for every rank and two epochs the same list as `DistributedSampler` (after `set_epoch`),
for a size that needs padding, one that divides evenly and one with fewer samples than workers. See
section 1, *What DDP does*.
""",
    template=template_of(SOLUTION_16_2),
    solution=SOLUTION_16_2,
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
        (variant(SOLUTION_16_2,
            ('(order * math.ceil(total / num_samples))[:total', 'order + order[:total - num_samples'),
        ), "fewer samples than workers"),
    ],
    checker=check_shard_indices, hint=HINT_2,
)


# ---------------------------------------------------------------- 16.3 gradient accumulation

HINT_3 = ("section 6 (The equivalence): gradients add up in .grad until zero_grad, so zero them first, then "
          "backward() each micro-batch's loss scaled by its share of the batch; the sum is the whole batch's "
          "gradient")


def small_model(gen: torch.Generator, n_in: int, n_out: int) -> nn.Module:
    model = nn.Sequential(nn.Linear(n_in, 8), nn.Tanh(), nn.Linear(8, n_out))
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=gen))
    return model


def gradients(model: nn.Module, loss_fn, inputs, targets, micro_batches: int, weighting: str) -> list[torch.Tensor]:
    """The gradients after micro-batch backward passes: 'share' (correct), 'equal' (loss / micro_batches) or 'sum'."""
    model = copy.deepcopy(model)
    model.zero_grad(set_to_none=True)
    for x, y in zip(torch.tensor_split(inputs, micro_batches), torch.tensor_split(targets, micro_batches)):
        scale = {"share": len(x) / len(inputs), "equal": 1 / micro_batches, "sum": 1.0}[weighting]
        (loss_fn(model(x), y) * scale).backward()
    return [p.grad for p in model.parameters()]


def close(got: list, expected: list[torch.Tensor]) -> bool:
    return all(isinstance(g, torch.Tensor) and g.shape == e.shape and torch.allclose(g, e, atol=1e-5, rtol=1e-4)
               for g, e in zip(got, expected))


def check_accumulate(accumulate_gradients) -> str:
    gen = generator("16.3")
    n_in, n_out = distinct_sizes(gen, 2, 3, 6)
    k = 3
    cases = [(k * randint(gen, 2, 4) + randint(gen, 1, k - 1), k),  # chunks of unequal size
             (9, 4),                                                 # torch.chunk would make only 3 pieces
             (randint(gen, 4, 8), 1)]                                # one micro-batch: the plain step
    for n, micro_batches in cases:
        model = small_model(gen, n_in, n_out)
        loss_fn = nn.CrossEntropyLoss()
        inputs, targets = torch.randn(n, n_in, generator=gen), torch.randint(0, n_out, (n,), generator=gen)
        expected = gradients(model, loss_fn, inputs, targets, 1, "share")  # the whole batch at once
        stale = [torch.randn(p.shape, generator=gen) for p in model.parameters()]
        for p, g in zip(model.parameters(), stale):
            p.grad = g.clone()  # left from an earlier step
        weights = {name: p.detach().clone() for name, p in model.named_parameters()}
        sizes: list[int] = []
        hook = model.register_forward_pre_hook(lambda module, args, sizes=sizes: sizes.append(len(args[0])))
        before = {"inputs": inputs.clone(), "targets": targets.clone()}
        try:
            accumulate_gradients(model, loss_fn, inputs, targets, micro_batches)
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
        share = gradients(model, loss_fn, inputs, targets, micro_batches, "share")
        if close(got, [g + s for g, s in zip(share, stale)]):
            raise Mistake(f"for {setting} the gradients left from before the call are still in .grad: zero them "
                          "first (model.zero_grad()), since backward() adds to .grad", HINT_3)
        if micro_batches > 1 and close(got, gradients(model, loss_fn, inputs, targets, micro_batches, "sum")):
            raise Mistake(f"for {setting} the gradient is the sum of the micro-batches' mean-loss gradients, about "
                          f"{micro_batches} times too large: scale each loss before backward()", HINT_3)
        if micro_batches > 1 and close(got, gradients(model, loss_fn, inputs, targets, micro_batches, "equal")):
            raise Mistake(f"for {setting} each loss was divided by micro_batches: exact only when the pieces are "
                          f"equal; the pieces here have {sizes} samples, so weight each mean loss by its share of "
                          f"the batch, len(piece) / {n}", HINT_3)
        for i, (g, e) in enumerate(zip(got, expected)):
            expect_tensor(g, e, f"for {setting}, the gradient of parameter {i}", hint=HINT_3)
    return (f"the whole batch's gradient from {cases[0][1]} unequal micro-batches of {cases[0][0]}, from 4 of 9 and "
            "from 1, stale gradients cleared, weights unchanged")


SOLUTION_16_3 = '''
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
parameter's `.grad` the gradient of `loss_fn(model(inputs), targets)` over the whole batch (`loss_fn`
returns a batch's **mean**, like `nn.CrossEntropyLoss()`), while running the model only on
`micro_batches` pieces: split `inputs` and `targets` into that many consecutive pieces
(`torch.tensor_split`), and run one forward and one `backward()` per piece. The batch size need not be a
multiple of `micro_batches`, so the pieces may differ in size. `.grad` may hold gradients from an earlier
step when the function is called. Change no weight (no optimiser step), nor the inputs.

Correct means: `micro_batches` forward passes that together hold the batch, and every gradient equal to
the whole batch's (within 1e-5 + 1e-4 relative), for unequal pieces, for 4 pieces of 9 samples and for a
single piece. See section 6, *The equivalence*.
""",
    template=template_of(SOLUTION_16_3),
    solution=SOLUTION_16_3,
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
    ],
    checker=check_accumulate, hint=HINT_3,
)

EXERCISES = [EX_1, EX_2, EX_3]
