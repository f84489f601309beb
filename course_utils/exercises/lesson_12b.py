"""Exercises of lesson 12b: the loss per character, batches whose rows continue each other, temperature and top-k."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from course_utils.datasets import text
from course_utils.exercises.framework import (
    Exercise,
    Mistake,
    call,
    expect_tensor,
    forbid,
    generator,
    randint,
    template_of,
    variant,
)

LESSON = "12b_char_lstm"
HINT_LOSS = ("lesson 12b, sections 4-5 (The model; Training): F.cross_entropy wants (N, classes) logits "
             "and (N,) targets")
HINT_BATCHES = "lesson 12b, section 3 (Batches of sequences)"
HINT_SAMPLING = "lesson 12b, section 6 (Writing: temperature and top-k)"


# ---------------------------------------------------------------- 12b.1 loss per character

def check_char_loss(char_loss) -> str:
    gen = generator("12b.1")
    tested = []
    for batch, seq in ((randint(gen, 2, 5), randint(gen, 3, 9)), (1, randint(gen, 2, 4))):
        vocab = randint(gen, 10, 30)
        # (batch, seq, vocab) made by a transpose, as after a time-first layer: not contiguous in memory
        logits = (torch.randn(seq, batch, vocab, generator=gen) * 3).transpose(0, 1).requires_grad_()
        targets = torch.randint(0, vocab, (batch, seq), generator=gen)
        expected = F.cross_entropy(logits.detach().reshape(-1, vocab), targets.reshape(-1))
        what = f"for logits {tuple(logits.shape)} and targets {tuple(targets.shape)}"
        try:
            got = call(char_loss, logits, targets, hint=HINT_LOSS)
        except RuntimeError as err:
            if "view size is not compatible" in str(err):
                raise Mistake(f"{what} your code raised RuntimeError: {str(err).split('.')[0]}: .view() needs a "
                              "contiguous tensor, and logits coming out of a transpose are not; .reshape() (or "
                              ".flatten(0, 1)) copies when it must", HINT_LOSS) from None
            if "Expected target size" in str(err):
                raise Mistake(f"{what} your code raised RuntimeError: {err}: F.cross_entropy reads dimension 1 as "
                              "the classes; flatten logits to (batch * seq, vocab) and targets to (batch * seq,)",
                              HINT_LOSS) from None
            raise
        if isinstance(got, torch.Tensor) and got.numel() == 1:
            flat = logits.detach().reshape(-1, vocab)
            if torch.isclose(got.detach().reshape(()), expected * targets.numel(), rtol=1e-4):
                raise Mistake(f"{what} your loss is the sum over all characters; the lesson's loss is the mean "
                              "per character (nats per character)", HINT_LOSS)
            if torch.isclose(got.detach().reshape(()), F.cross_entropy(flat.softmax(1), targets.reshape(-1)),
                             rtol=1e-4):
                raise Mistake(f"{what} your code applied softmax before F.cross_entropy, which applies "
                              "log_softmax itself: give it the logits", HINT_LOSS)
        expect_tensor(got, expected, f"the loss {what}", hint=HINT_LOSS)
        if got.grad_fn is None:
            raise Mistake(f"{what} your loss has no gradient history: compute it from the logits with torch "
                          "operations (no .item(), .detach() or .numpy()) so that backward() can train the "
                          "model", HINT_LOSS)
        tested.append(f"{tuple(logits.shape)}")
    return f"equals F.cross_entropy over every character for non-contiguous logits {', '.join(tested)}, differentiable"


SOLUTION_12b_1 = '''
def char_loss(logits, targets):
    """Mean cross-entropy per character: logits (batch, seq, vocab), targets (batch, seq) -> a 0-d tensor."""
    vocab = logits.shape[-1]
    # reshape, not view: logits may not be contiguous
    return F.cross_entropy(logits.reshape(-1, vocab), targets.reshape(-1))  # (batch * seq, vocab), (batch * seq,)
'''

LOSS = Exercise(
    id="12b.1", lesson=LESSON, title="The loss of every next-character prediction", name="char_loss", hint=HINT_LOSS,
    statement="""
Write `char_loss(logits, targets)`: the cross-entropy of every next-character prediction, averaged
over all `batch × seq` characters, the loss `sequence.train_chars` trains with.
`F.cross_entropy` wants logits of shape `(N, classes)` and targets `(N,)`, so the batch and time
dimensions have to become one.

- in: `logits` (batch, seq, vocab), which may come out of a transpose (not contiguous in memory);
  `targets` (batch, seq) int64 character ids
- out: a 0-dimensional tensor that `backward()` can go through; no input may change

Correct means: equal to `F.cross_entropy` over all characters within 1e-5, for random sizes and a
batch of 1.

See lesson 12b, sections 4-5 (The model; Training).
""",
    template=template_of(SOLUTION_12b_1),
    solution=SOLUTION_12b_1,
    alternatives=['''
def char_loss(logits, targets):
    # cross_entropy also takes (batch, classes, seq) with (batch, seq) targets
    return F.cross_entropy(logits.transpose(1, 2), targets)
''', '''
def char_loss(logits, targets):
    log_probs = logits.log_softmax(dim=-1)                           # (batch, seq, vocab)
    picked = log_probs.gather(-1, targets.unsqueeze(-1)).squeeze(-1)  # (batch, seq)
    return -picked.mean()
'''],
    wrong_answers=[
        ('''
def char_loss(logits, targets):
    return F.cross_entropy(logits.view(-1, logits.shape[-1]), targets.view(-1))
''', ".view() needs a contiguous tensor"),
        ('''
def char_loss(logits, targets):
    return F.cross_entropy(logits, targets)
''', "F.cross_entropy reads dimension 1 as the classes"),
        ('''
def char_loss(logits, targets):
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), reduction="sum")
''', "sum over all characters"),
        (variant(SOLUTION_12b_1,
            ('vocab = logits.shape[-1]', 'probs = logits.softmax(dim=-1)'),
            ('logits.reshape(-1, vocab', 'probs.reshape(-1, probs.shape[-1]'),
        ), "applied softmax before F.cross_entropy"),
    ],
    checker=check_char_loss,
)


# ---------------------------------------------------------------- 12b.2 batches whose rows continue

def check_char_batches(char_batches) -> str:
    gen = generator("12b.2")
    tested = []
    for batch_size, seq_length in ((randint(gen, 2, 4), randint(gen, 3, 6)), (1, randint(gen, 2, 5))):
        num_batches = randint(gen, 2, 4)
        extra = randint(gen, 1, batch_size * seq_length - 1)
        length = num_batches * batch_size * seq_length + 1 + extra  # +1 target, then a tail that fills no batch
        ids = torch.randperm(length, generator=gen) + 1000  # all different: a misplaced id shows
        reference = text.CharBatches(ids, batch_size, seq_length)
        with forbid((text, "CharBatches"), what="text.CharBatches", hint=HINT_BATCHES):
            got = call(char_batches, ids, batch_size, seq_length, hint=HINT_BATCHES)
        what = f"for {length} ids, batch_size {batch_size}, seq_length {seq_length}"
        try:
            got = list(got)
        except TypeError:
            raise Mistake(f"{what} your code returned {type(got).__name__}; return a list of (inputs, targets) "
                          "pairs", HINT_BATCHES) from None
        expected = list(reference)
        if len(got) != len(expected):
            raise Mistake(f"{what} your code made {len(got)} batches, expected {len(expected)}: every batch is "
                          "complete, and the ids that cannot fill one (keeping one id for the last target) are "
                          "left out", HINT_BATCHES)
        for k, (pair, (inputs, targets)) in enumerate(zip(got, expected)):
            if not (isinstance(pair, tuple) and len(pair) == 2):
                raise Mistake(f"{what} batch {k} is {type(pair).__name__}, expected a pair (inputs, targets)",
                              HINT_BATCHES)
            got_inputs, got_targets = pair
            block = ids[k * inputs.numel():(k + 1) * inputs.numel()].reshape(inputs.shape)  # consecutive ids
            if batch_size > 1 and isinstance(got_inputs, torch.Tensor) and got_inputs.shape == inputs.shape \
                    and torch.equal(got_inputs, block) and not torch.equal(block, inputs):
                raise Mistake(f"{what} your batches cut the text into consecutive blocks, so row i of a batch does "
                              "not continue row i of the batch before; cut the text into batch_size long rows first, "
                              "then read them seq_length columns at a time", HINT_BATCHES)
            expect_tensor(got_inputs, inputs, f"{what}: the inputs of batch {k}", hint=HINT_BATCHES)
            if isinstance(got_targets, torch.Tensor) and torch.equal(got_targets, inputs):
                raise Mistake(f"{what} your targets equal the inputs; they are the inputs shifted one id ahead "
                              "(the next character)", HINT_BATCHES)
            expect_tensor(got_targets, targets, f"{what}: the targets of batch {k}", hint=HINT_BATCHES)
        tested.append(f"{len(expected)} batches of {batch_size} x {seq_length}")
    return f"equal to text.CharBatches' batches ({', '.join(tested)}), an incomplete tail left out"


SOLUTION_12b_2 = '''
def char_batches(ids, batch_size, seq_length):
    """[(inputs, targets), ...], each (batch_size, seq_length); row i of a batch continues row i of the one before."""
    num_batches = (len(ids) - 1) // (batch_size * seq_length)  # keep one id for the last target
    used = num_batches * batch_size * seq_length
    inputs = ids[:used].reshape(batch_size, -1)            # (batch_size, num_batches * seq_length): long rows
    targets = ids[1:used + 1].reshape(batch_size, -1)      # the same, one id later
    return [(inputs[:, start:start + seq_length], targets[:, start:start + seq_length])
            for start in range(0, inputs.shape[1], seq_length)]
'''

BATCHES = Exercise(
    id="12b.2", lesson=LESSON, title="Batches whose rows continue each other", name="char_batches", hint=HINT_BATCHES,
    statement="""
Write `char_batches(ids, batch_size, seq_length)`: the (inputs, targets) batches of lesson 12b.
Cut the text into `batch_size` equal rows and read them left to right, `seq_length` columns at a
time, so that row `i` of each batch continues row `i` of the batch before (the LSTM can carry its
state across). The targets are the inputs shifted one id ahead. Only whole batches: use the
largest `num_batches` with `num_batches · batch_size · seq_length + 1 ≤ len(ids)` (one more id for
the last target) and leave the rest out.

- in: `ids`, a 1-d int64 tensor; `batch_size`, `seq_length`, ints
- out: a list of `num_batches` pairs `(inputs, targets)`, each of shape (batch_size, seq_length)
- not allowed: `text.CharBatches` (the course's version)

Correct means: the same batches, in the same order, as `text.CharBatches`, for random lengths with
a tail that fills no batch, and `batch_size = 1`.

See lesson 12b, section 3 (Batches of sequences).
""",
    template=template_of(SOLUTION_12b_2),
    solution=SOLUTION_12b_2,
    alternatives=['''
def char_batches(ids, batch_size, seq_length):
    row_length = (len(ids) - 1) // (batch_size * seq_length) * seq_length
    rows = torch.stack([ids[i * row_length:(i + 1) * row_length + 1] for i in range(batch_size)])  # with one more
    batches = []
    for start in range(0, row_length, seq_length):
        window = rows[:, start:start + seq_length + 1]
        batches.append((window[:, :-1], window[:, 1:]))
    return batches
'''],
    wrong_answers=[
        ('''
def char_batches(ids, batch_size, seq_length):
    per_batch = batch_size * seq_length
    batches = []
    for start in range(0, len(ids) - per_batch, per_batch):
        chunk = ids[start:start + per_batch + 1]
        batches.append((chunk[:-1].reshape(batch_size, seq_length), chunk[1:].reshape(batch_size, seq_length)))
    return batches
''', "consecutive blocks"),
        ('''
def char_batches(ids, batch_size, seq_length):
    num_batches = (len(ids) - 1) // (batch_size * seq_length)
    rows = ids[:num_batches * batch_size * seq_length].reshape(batch_size, -1)
    return [(rows[:, s:s + seq_length], rows[:, s:s + seq_length]) for s in range(0, rows.shape[1], seq_length)]
''', "your targets equal the inputs"),
        ('''
def char_batches(ids, batch_size, seq_length):
    num_batches = -(-(len(ids) - 1) // (batch_size * seq_length))
    used = num_batches * batch_size * seq_length
    ids = torch.cat([ids, ids.new_zeros(used + 1 - len(ids))])
    inputs, targets = ids[:used].reshape(batch_size, -1), ids[1:used + 1].reshape(batch_size, -1)
    return [(inputs[:, s:s + seq_length], targets[:, s:s + seq_length]) for s in range(0, inputs.shape[1], seq_length)]
''', "batches, expected"),
    ],
    checker=check_char_batches,
)


# ---------------------------------------------------------------- 12b.3 temperature and top-k

def _top_k_reference(logits: torch.Tensor, temperature: float, k: int) -> torch.Tensor:
    scaled = logits.double() / temperature
    kept = scaled.topk(k, dim=-1)
    masked = torch.full_like(scaled, float("-inf")).scatter(-1, kept.indices, kept.values)
    return masked.softmax(dim=-1).to(logits.dtype)


def check_top_k_probs(top_k_probs) -> str:
    gen = generator("12b.3")
    tested = []
    for shape in ((randint(gen, 20, 60),), (randint(gen, 2, 4), randint(gen, 8, 20)), (1, randint(gen, 5, 9))):
        vocab = shape[-1]
        logits = torch.randn(shape, generator=gen) * 2
        temperature = float(torch.rand((), generator=gen)) * 1.5 + 0.5
        k = randint(gen, 2, vocab // 2)  # enough probability left outside the top k to tell mistakes apart
        expected = _top_k_reference(logits, temperature, k)
        got = call(top_k_probs, logits, temperature, k, hint=HINT_SAMPLING)
        what = f"for logits {tuple(shape)}, temperature {temperature:.2f}, k {k}"
        if isinstance(got, torch.Tensor) and got.shape == expected.shape:
            if torch.allclose(got, _top_k_reference(logits * temperature * temperature, temperature, k), atol=1e-6):
                raise Mistake(f"{what} your code multiplied the logits by the temperature; divide them: a "
                              "temperature below 1 must sharpen the distribution", HINT_SAMPLING)
            full = (logits / temperature).softmax(dim=-1)
            if torch.allclose(got, torch.where(expected > 0, full, torch.zeros_like(full)), atol=1e-6) and \
                    not torch.allclose(got, expected, atol=1e-6):
                raise Mistake(f"{what} your probabilities sum to {got.sum(-1).min().item():.3f}, not 1: after "
                              "dropping all but the top k, share the probability among them again (softmax over "
                              "the k kept logits, or divide by the sum)", HINT_SAMPLING)
            if torch.allclose(got, full, atol=1e-6) and not torch.allclose(got, expected, atol=1e-6):
                raise Mistake(f"{what} every character keeps a probability above 0: only the k most likely may "
                              "be drawn", HINT_SAMPLING)
        expect_tensor(got, expected, f"the probabilities {what}", atol=1e-6, hint=HINT_SAMPLING)
        tested.append(str(tuple(shape)))
    return f"softmax(logits / T) over the top k, zeros elsewhere, for logits of shapes {', '.join(tested)}"


SOLUTION_12b_3 = '''
def top_k_probs(logits, temperature, k):
    """softmax(logits / temperature) over the k largest per row, 0 for the others; same shape as logits."""
    scaled = logits / temperature                             # T < 1 sharpens, T > 1 flattens
    kept = scaled.topk(k, dim=-1)                             # values and indices, (..., k)
    masked = torch.full_like(scaled, float("-inf"))           # exp(-inf) = 0: never drawn
    masked.scatter_(-1, kept.indices, kept.values)
    return masked.softmax(dim=-1)
'''

TOP_K = Exercise(
    id="12b.3", lesson=LESSON, title="Temperature and top-k", name="top_k_probs", hint=HINT_SAMPLING,
    statement="""
Write `top_k_probs(logits, temperature, k)`: the probabilities the model draws its next character
from. Divide the logits by the temperature; keep only the `k` largest of each row; turn those into
probabilities that sum to 1, and give every other character probability 0.

- in: `logits` of shape (vocab,) or (batch, vocab); `temperature` > 0, a float; `k`, an int
  below vocab
- out: a tensor of the logits' shape and dtype, each row summing to 1 with exactly `k` values
  above 0; `logits` must not change

Correct means: within 1e-6 of the exact answer for one row, several rows and a batch of one, at
random temperatures.

See lesson 12b, section 6 (Writing: temperature and top-k).
""",
    template=template_of(SOLUTION_12b_3),
    solution=SOLUTION_12b_3,
    alternatives=['''
def top_k_probs(logits, temperature, k):
    probs = (logits / temperature).softmax(dim=-1)
    threshold = probs.topk(k, dim=-1).values[..., -1:]      # the k-th largest per row
    probs = torch.where(probs >= threshold, probs, torch.zeros_like(probs))
    return probs / probs.sum(dim=-1, keepdim=True)
'''],
    wrong_answers=[
        (variant(SOLUTION_12b_3,
            (' logits / temperature', ' logits * temperature'),
        ), "multiplied the logits by the temperature"),
        ('''
def top_k_probs(logits, temperature, k):
    probs = (logits / temperature).softmax(dim=-1)
    threshold = probs.topk(k, dim=-1).values[..., -1:]
    return torch.where(probs >= threshold, probs, torch.zeros_like(probs))
''', "not 1"),
        ('''
def top_k_probs(logits, temperature, k):
    return (logits / temperature).softmax(dim=-1)
''', "only the k most likely"),
        ('''
def top_k_probs(logits, temperature, k):
    return (logits / temperature).topk(k).values.softmax(dim=-1)
''', "has shape"),
    ],
    checker=check_top_k_probs,
)

EXERCISES = [LOSS, BATCHES, TOP_K]
