"""Exercises of lesson 12b: the loss per character, batches whose rows continue each other, temperature and top-k."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from course_utils.datasets import text
from course_utils.exercises.challenges import char_wrong_answers, trained_char_model
from course_utils.exercises.framework import (
    Exercise,
    Mistake,
    call,
    describe,
    expect_tensor,
    forbid,
    generator,
    randint,
    template_of,
    variant,
)

LESSON = "12b_char_lstm"


# ---------------------------------------------------------------- 12b.1 loss per character

HINT_1 = "section 5 (Training): F.cross_entropy wants (N, classes) logits and (N,) targets"

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
            got = call(char_loss, logits, targets, hint=HINT_1)
        except RuntimeError as err:
            if "view size is not compatible" in str(err):
                raise Mistake(f"{what} your code raised RuntimeError: {str(err).split('.')[0]}: .view() needs a "
                              "contiguous tensor, and logits coming out of a transpose are not; .reshape() (or "
                              ".flatten(0, 1)) copies when it must", HINT_1) from None
            if "Expected target size" in str(err):
                raise Mistake(f"{what} your code raised RuntimeError: {err}: F.cross_entropy reads dimension 1 as "
                              "the classes; flatten logits to (batch * seq, vocab) and targets to (batch * seq,)",
                              HINT_1) from None
            raise
        if isinstance(got, torch.Tensor) and got.numel() == 1:
            flat = logits.detach().reshape(-1, vocab)
            if torch.isclose(got.detach().reshape(()), expected * targets.numel(), rtol=1e-4):
                raise Mistake(f"{what} your loss is the sum over all characters; the lesson's loss is the mean "
                              "per character (nats per character)", HINT_1)
            if torch.isclose(got.detach().reshape(()), F.cross_entropy(flat.softmax(1), targets.reshape(-1)),
                             rtol=1e-4):
                raise Mistake(f"{what} your code applied softmax before F.cross_entropy, which applies "
                              "log_softmax itself: give it the logits", HINT_1)
        expect_tensor(got, expected, f"the loss {what}", hint=HINT_1)
        if got.grad_fn is None:
            raise Mistake(f"{what} your loss has no gradient history: compute it from the logits with torch "
                          "operations (no .item(), .detach() or .numpy()) so that backward() can train the "
                          "model", HINT_1)
        tested.append(f"{tuple(logits.shape)}")
    return f"equals F.cross_entropy over every character for non-contiguous logits {', '.join(tested)}, differentiable"


SOLUTION_1 = '''
def char_loss(logits, targets):
    """Mean cross-entropy per character: logits (batch, seq, vocab), targets (batch, seq) -> a 0-d tensor."""
    vocab = logits.shape[-1]
    # reshape, not view: logits may not be contiguous
    return F.cross_entropy(logits.reshape(-1, vocab), targets.reshape(-1))  # (batch * seq, vocab), (batch * seq,)
'''

EX_1 = Exercise(
    id="12b.1", lesson=LESSON, title="The loss of every next-character prediction", name="char_loss",
    hint=HINT_1,
    more_hints=["make the batch and time dimensions one: logits to (batch * seq, vocab) and targets to "
                "(batch * seq,); .reshape copies where .view refuses a tensor that came out of a transpose",
                "F.cross_entropy already applies log_softmax and takes the mean: hand it the raw logits"],
    statement="""
Write `char_loss(logits, targets)`: the cross-entropy of every next-character prediction, averaged
over all `batch × seq` characters, the loss `sequence.train_chars` trains with.

`F.cross_entropy` wants logits of shape `(N, classes)` and targets `(N,)`, so the batch and time
dimensions have to become one.

- **In:** `logits`, float32 (batch, seq, vocab), which may come out of a transpose (not contiguous
  in memory); `targets`, int64 (batch, seq) character ids.
- **Out:** a 0-dimensional tensor that `backward()` can go through (no `.item()`, no
  `.detach()`); no input may change.
- **Use:** `F.cross_entropy` and tensor reshaping.
- **Correct means:** equal to `F.cross_entropy` over all characters within 1e-5, with a gradient
  history, for non-contiguous logits of random sizes and a batch of 1.
- **Reread:** section 5, *Training* (and section 4, *The model*, for the logits).
""",
    template=template_of(SOLUTION_1),
    solution=SOLUTION_1,
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
        (variant(SOLUTION_1,
            ('vocab = logits.shape[-1]', 'probs = logits.softmax(dim=-1)'),
            ('logits.reshape(-1, vocab', 'probs.reshape(-1, probs.shape[-1]'),
        ), "applied softmax before F.cross_entropy"),
        (variant(SOLUTION_1, ('targets.reshape(-1))  #', 'targets.reshape(-1)).detach()  #')),
         "no gradient history"),
    ],
    checker=check_char_loss,
)


# ---------------------------------------------------------------- 12b.2 batches whose rows continue

HINT_2 = "section 3 (Batches of sequences): long rows first, then seq_length columns at a time"

def check_char_batches(char_batches) -> str:
    gen = generator("12b.2")
    tested = []
    # fixed cases on every seed: a length that is an exact multiple of batch_size * seq_length (one id short
    # of that many batches); exactly num_batches whole batches plus the one id for the last target; a tail
    # that fills no batch; and batch_size 1
    for batch_size, seq_length, tail in ((randint(gen, 2, 4), randint(gen, 2, 5), "multiple"),
                                         (randint(gen, 2, 4), randint(gen, 2, 5), "exact"),
                                         (randint(gen, 2, 4), randint(gen, 3, 6), "tail"),
                                         (1, randint(gen, 2, 5), "tail")):
        num_batches = randint(gen, 2, 4)
        per_batch = batch_size * seq_length
        length = num_batches * per_batch + {"tail": 1 + randint(gen, 1, per_batch - 1), "exact": 1,
                                            "multiple": 0}[tail]
        ids = torch.randperm(length, generator=gen) + 1000  # all different: a misplaced id shows
        expected = list(text.CharBatches(ids, batch_size, seq_length))
        what = f"for {length} ids, batch_size {batch_size}, seq_length {seq_length}"
        why = {"tail": "", "exact": f" ({num_batches} whole batches and the one id for the last target)",
               "multiple": f" (an exact multiple of batch_size * seq_length = {per_batch}: the last batch's "
                           "last target would be the id after the text)"}[tail]
        try:
            with forbid((text, "CharBatches"), what="text.CharBatches", hint=HINT_2):
                got = call(char_batches, ids, batch_size, seq_length, hint=HINT_2)
        except (RuntimeError, IndexError) as err:
            if tail != "multiple" or isinstance(err, NotImplementedError):
                raise
            raise Mistake(f"{what}{why} your code raised {type(err).__name__}: {str(err).splitlines()[0]}: "
                          f"there is no id after the text for the last target, so only {len(expected)} batches "
                          "fit; keep one id back when you count the batches", HINT_2) from None
        if not isinstance(got, list):
            raise Mistake(f"{what} your code returned {describe(got)}; return a list of (inputs, targets) pairs "
                          "(a list can be read twice and has a len(); a generator or zip cannot)", HINT_2)
        if len(got) != len(expected):
            raise Mistake(f"{what}{why} your code made {len(got)} batches, expected {len(expected)}: every batch "
                          "is complete, and the ids that cannot fill one (keeping one id for the last target) are "
                          "left out", HINT_2)
        for k, (pair, (inputs, targets)) in enumerate(zip(got, expected)):
            if not (isinstance(pair, tuple) and len(pair) == 2):
                raise Mistake(f"{what} batch {k} is {describe(pair)}, expected a pair (inputs, targets)", HINT_2)
            got_inputs, got_targets = pair
            block = ids[k * inputs.numel():(k + 1) * inputs.numel()].reshape(inputs.shape)  # consecutive ids
            if batch_size > 1 and isinstance(got_inputs, torch.Tensor) and got_inputs.shape == inputs.shape \
                    and torch.equal(got_inputs, block) and not torch.equal(block, inputs):
                raise Mistake(f"{what} your batches cut the text into consecutive blocks, so row i of a batch does "
                              "not continue row i of the batch before; cut the text into batch_size long rows first, "
                              "then read them seq_length columns at a time", HINT_2)
            expect_tensor(got_inputs, inputs, f"{what}: the inputs of batch {k}", hint=HINT_2)
            if isinstance(got_targets, torch.Tensor) and torch.equal(got_targets, inputs):
                raise Mistake(f"{what} your targets equal the inputs; they are the inputs shifted one id ahead "
                              "(the next character)", HINT_2)
            expect_tensor(got_targets, targets, f"{what}: the targets of batch {k}", hint=HINT_2)
        tested.append(f"{length} ids as {len(expected)} batches of {batch_size} x {seq_length}")
    return (f"equal to text.CharBatches' batches ({'; '.join(tested)}): a tail left out, an exact fit, a length "
            "that is a multiple of the batch, batch_size 1")


SOLUTION_2 = '''
def char_batches(ids, batch_size, seq_length):
    """[(inputs, targets), ...], each (batch_size, seq_length); row i of a batch continues row i of the one before."""
    num_batches = (len(ids) - 1) // (batch_size * seq_length)  # keep one id for the last target
    used = num_batches * batch_size * seq_length
    inputs = ids[:used].reshape(batch_size, -1)            # (batch_size, num_batches * seq_length): long rows
    targets = ids[1:used + 1].reshape(batch_size, -1)      # the same, one id later
    return [(inputs[:, start:start + seq_length], targets[:, start:start + seq_length])
            for start in range(0, inputs.shape[1], seq_length)]
'''

EX_2 = Exercise(
    id="12b.2", lesson=LESSON, title="Batches whose rows continue each other", name="char_batches",
    hint=HINT_2,
    more_hints=["how many whole batches fit: the inputs use num_batches * batch_size * seq_length ids, and the "
                "targets need one id more; count with // on one id less than the text",
                "reshape the ids the inputs use into batch_size rows (and the same ids one later for the "
                "targets), then slice columns start:start + seq_length for each batch"],
    statement="""
Write `char_batches(ids, batch_size, seq_length)`: the (inputs, targets) batches of lesson 12b.

Cut the text into `batch_size` equal rows and read them left to right, `seq_length` columns at a
time, so that row `i` of each batch continues row `i` of the batch before (the LSTM can carry its
state across). The targets are the inputs shifted one id ahead. Only whole batches: use the
largest `num_batches` with `num_batches · batch_size · seq_length + 1 ≤ len(ids)` (one more id for
the last target) and leave the rest out.

- **In:** `ids`, a 1-d int64 tensor; `batch_size` and `seq_length`, ints.
- **Out:** a Python `list` of `num_batches` tuples `(inputs, targets)`, each tensor int64 of
  shape (batch_size, seq_length); `ids` must not change.
- **Use:** tensor reshaping and slicing; not the course's `text.CharBatches`.
- **Correct means:** the same batches, in the same order, as `text.CharBatches`, for a text with a
  tail that fills no batch, a text of exactly `num_batches` batches plus one id, a text whose
  length is an exact multiple of `batch_size · seq_length` (one batch fewer fits), and
  `batch_size = 1`.
- **Reread:** section 3, *Batches of sequences*.
""",
    template=template_of(SOLUTION_2),
    solution=SOLUTION_2,
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
        (variant(SOLUTION_2, ('(len(ids) - 1) //', 'len(ids) //')), "an exact multiple of batch_size"),
        (variant(SOLUTION_2, ('(len(ids) - 1) //', '(len(ids) - 2) //')), "whole batches and the one id"),
        (variant(SOLUTION_2, ('return [(inputs', 'return ((inputs'), ('seq_length)]', 'seq_length))')),
         "a generator or zip cannot"),
        ("from course_utils.datasets import text\n\n\ndef char_batches(ids, batch_size, seq_length):\n"
         "    return list(text.CharBatches(ids, batch_size, seq_length))\n", "your code called text.CharBatches"),
    ],
    checker=check_char_batches,
)


# ---------------------------------------------------------------- 12b.3 temperature and top-k

HINT_3 = "section 6 (Writing: temperature and top-k): divide by T, keep the top k, softmax again"


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
        what = f"for logits {tuple(shape)}, temperature {temperature:.2f}, k {k}"
        try:
            got = call(top_k_probs, logits, temperature, k, hint=HINT_3)
        except (IndexError, RuntimeError) as err:
            message = str(err).splitlines()[0] if str(err) else ""
            if "out of range" not in message or isinstance(err, NotImplementedError):
                raise
            reason = "the vocabulary is the last dimension in both shapes (one row or a batch of rows): " \
                     "take the top k, scatter and softmax along dim=-1, never a fixed dim=1 or dim=0"
            if "selected index k out of range" in message:
                reason = f"topk ran along a dimension with fewer than k = {k} entries: " + reason
            raise Mistake(f"{what} your code raised {type(err).__name__} ({message}): {reason}", HINT_3) from None
        if isinstance(got, torch.Tensor) and got.shape == expected.shape:
            if torch.allclose(got, _top_k_reference(logits * temperature * temperature, temperature, k), atol=1e-6):
                raise Mistake(f"{what} your code multiplied the logits by the temperature; divide them: a "
                              "temperature below 1 must sharpen the distribution", HINT_3)
            full = (logits / temperature).softmax(dim=-1)
            if torch.allclose(got, torch.where(expected > 0, full, torch.zeros_like(full)), atol=1e-6) and \
                    not torch.allclose(got, expected, atol=1e-6):
                raise Mistake(f"{what} your probabilities sum to {got.sum(-1).min().item():.3f}, not 1: after "
                              "dropping all but the top k, share the probability among them again (softmax over "
                              "the k kept logits, or divide by the sum)", HINT_3)
            kept = (logits / temperature).topk(k, dim=-1)
            masked = torch.full_like(logits, float("-inf")).scatter(-1, kept.indices, kept.values)
            if len(shape) == 2 and shape[0] > 1 and torch.allclose(got, masked.softmax(dim=0), atol=1e-6,
                                                                   equal_nan=True):
                raise Mistake(f"{what} your softmax runs down the columns (dim=0), across the rows of the batch; "
                              "each row is one distribution: softmax along the vocabulary, dim=-1", HINT_3)
            if torch.allclose(got, full, atol=1e-6) and not torch.allclose(got, expected, atol=1e-6):
                raise Mistake(f"{what} every character keeps a probability above 0: only the k most likely may "
                              "be drawn", HINT_3)
        expect_tensor(got, expected, f"the probabilities {what}", atol=1e-6, hint=HINT_3)
        tested.append(str(tuple(shape)))
    return f"softmax(logits / T) over the top k, zeros elsewhere, for logits of shapes {', '.join(tested)}"


SOLUTION_3 = '''
def top_k_probs(logits, temperature, k):
    """softmax(logits / temperature) over the k largest per row, 0 for the others; same shape as logits."""
    scaled = logits / temperature                             # T < 1 sharpens, T > 1 flattens
    kept = scaled.topk(k, dim=-1)                             # values and indices, (..., k)
    masked = torch.full_like(scaled, float("-inf"))           # exp(-inf) = 0: never drawn
    masked.scatter_(-1, kept.indices, kept.values)
    return masked.softmax(dim=-1)
'''

EX_3 = Exercise(
    id="12b.3", lesson=LESSON, title="Temperature and top-k", name="top_k_probs", hint=HINT_3,
    more_hints=["tensor.topk(k, dim=-1) gives the k largest values and their indices; a tensor full of -inf with "
                "those values scattered back at those indices softmaxes to 0 everywhere else",
                "work along dim=-1 throughout: the vocabulary is the last dimension of a single row (vocab,) "
                "and of a batch (batch, vocab) alike"],
    statement="""
Write `top_k_probs(logits, temperature, k)`: the probabilities the model draws its next character
from. Divide the logits by the temperature; keep only the `k` largest of each row; turn those into
probabilities that sum to 1, and give every other character probability 0.

- **In:** `logits`, float32 of shape (vocab,) for one row or (batch, vocab); `temperature`, a
  float > 0; `k`, an int below vocab.
- **Out:** a tensor of the logits' shape and dtype, each row summing to 1 with exactly `k` values
  above 0; `logits` must not change.
- **Use:** tensor operations (`topk`, `softmax`, masking); no Python loop over the rows needed.
- **Correct means:** within 1e-6 of the exact answer for one 1-d row, several rows and a batch of
  one, at random temperatures.
- **Reread:** section 6, *Writing: temperature and top-k*.
""",
    template=template_of(SOLUTION_3),
    solution=SOLUTION_3,
    alternatives=['''
def top_k_probs(logits, temperature, k):
    probs = (logits / temperature).softmax(dim=-1)
    threshold = probs.topk(k, dim=-1).values[..., -1:]      # the k-th largest per row
    probs = torch.where(probs >= threshold, probs, torch.zeros_like(probs))
    return probs / probs.sum(dim=-1, keepdim=True)
'''],
    wrong_answers=[
        (variant(SOLUTION_3,
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
        (variant(SOLUTION_3, ('scaled.topk(k, dim=-1)', 'scaled.topk(k, dim=1)')), "never a fixed dim=1"),
        (variant(SOLUTION_3, ('masked.softmax(dim=-1)', 'masked.softmax(dim=0)')), "runs down the columns"),
    ],
    checker=check_top_k_probs,
)

# ---- 12b.4 Challenge: a lower validation loss in 600 steps

HINT_4 = "section 5 (Training): the loop, the learning rate and gradient clipping"


def check_train_my_model(train_my_model, target: float, context: int, val_chars: int | None) -> str:
    return trained_char_model(
        train_my_model, target, context=context, val_chars=val_chars, hint=HINT_4,
        levers="every step of the budget, a larger learning rate than the lesson's that falls to 0 over the run "
               "(a cosine), and gradient clipping")


SOLUTION_4 = '''
def train_my_model():
    """Build a character model, train it for at most challenge_steps steps on train_batches, and return it."""
    model = CharModel(**model_config).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.006)
    # a larger first step than the lesson's, falling along a cosine to 0 by the last step
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=challenge_steps)
    model.train()
    steps_done = 0
    while steps_done < challenge_steps:
        state = None                                                  # each pass over the text starts afresh
        for inputs, targets in train_batches:
            state = None if state is None else tuple(s.detach() for s in state)
            logits, state = model(inputs.to(device), state)
            loss = F.cross_entropy(logits.flatten(0, 1), targets.to(device).flatten())
            optimizer.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), clip_norm)
            optimizer.step()
            scheduler.step()
            steps_done += 1
            if steps_done == challenge_steps:
                break
    return model
'''

EX_4 = Exercise(
    id="12b.4", lesson=LESSON, title="Challenge: a lower loss in 600 steps", name="train_my_model",
    hint=HINT_4,
    more_hints=["the lesson's loss was still falling at its last step: use every step of the budget, and a rate "
                "that is large early and falls to 0 by the end, so the loss settles",
                "Adam at lr 0.006 with torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, "
                "T_max=challenge_steps), stepped after every optimizer step, and the lesson's CharModel, reaches "
                "the target"],
    statement="""
Write `train_my_model()`: it builds a character model, trains it on `train_batches` for at most
`challenge_steps` steps (twice the lesson's run, about one pass over the book), and returns it. Your
choices: the learning rate and how it changes over the run, clipping, the model's settings.

- **In:** nothing; use the lesson's `CharModel` and `model_config` (or your own model), `train_batches`,
  `device` and `clip_norm`; at most `challenge_steps` steps (the check says how long training took).
- **Out:** the trained model: character ids `(batch, seq)` -> logits `(batch, seq, vocabulary)`, or a tuple
  that starts with them, as `CharModel` returns.
- **Use:** anything in PyTorch; never the validation text.
- **Correct means:** on the first `curve_val_chars` characters of the validation text, which it never
  trained on, read in windows of `seq_length` that overlap by half (each starting from a zero state), a mean
  loss of at most `challenge_target` nats per character (1.40).
- **Reread:** section 5, *Training*.
""",
    template=template_of(SOLUTION_4),
    solution=SOLUTION_4,
    wrong_answers=char_wrong_answers(),
    checker=check_train_my_model,
    challenge=True,
    settings={"target": "challenge_target", "context": "seq_length", "val_chars": "curve_val_chars"},
    rule_settings={"target": 1.40, "context": 100, "val_chars": 20000},
)

EXERCISES = [EX_1, EX_2, EX_3, EX_4]
