"""Exercises of lesson 12c: padding and truncation, masked mean pooling, the last real word's output, packing."""
from __future__ import annotations

import torch
from torch import nn

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

LESSON = "12c_sentiment_lstm"
HINT_PAD = "lesson 12c, section 5 (Fixed-length tensors: padding and truncation)"
HINT_POOL = "lesson 12c, section 6 (The model: embedding → LSTM → one vector per review → linear)"


def _padded_ids(gen: torch.Generator, batch: int, seq: int, full_row: bool) -> torch.Tensor:
    """(batch, seq) ids >= 2 followed by padding (0) on the right; every row has at least one real id."""
    lengths = torch.randint(1, seq, (batch,), generator=gen)  # shorter than seq: every row ends in padding
    if full_row:
        lengths[-1] = seq
    ids = torch.randint(2, 50, (batch, seq), generator=gen)
    return ids.masked_fill(torch.arange(seq) >= lengths[:, None], text.PAD_ID)


# ---------------------------------------------------------------- 12c.1 padding and truncation

def check_pad_batch(pad_batch) -> str:
    gen = generator("12c.1")
    length = randint(gen, 4, 8)
    sequences = [torch.randint(2, 100, (n,), generator=gen).tolist()
                 for n in (length + randint(gen, 2, 5), randint(gen, 1, length - 1), length, 1)]
    tested = []
    padded = {keep: torch.tensor([text.pad_or_truncate(s, length, keep) for s in sequences])
              for keep in ("last", "first")}
    for keep, other in (("last", "first"), ("first", "last")):
        expected = padded[keep]
        with forbid((text, "pad_or_truncate"), (text, "encode_tokens"), what="text.pad_or_truncate",
                    hint=HINT_PAD):
            got = pad_batch([list(s) for s in sequences], length, keep)
        what = f'pad_batch(..., {length}, keep="{keep}")'
        if isinstance(got, torch.Tensor) and got.shape == expected.shape:
            kept = [s[-length:] if keep == "last" else s[:length] for s in sequences]
            left = torch.tensor([[0] * (length - len(k)) + k for k in kept])
            if torch.equal(got, left):
                raise Mistake(f"{what} padded on the left; the lesson pads on the right, after the real "
                              "words, so the LSTM reads the review first", HINT_PAD)
            if torch.equal(got, padded[other]):
                raise Mistake(f'{what} kept the {other} words of the long review; keep="{keep}" keeps its '
                              f"{keep} {length}", HINT_PAD)
        expect_tensor(got, expected, what, hint=HINT_PAD)
        tested.append(keep)
    return (f"reviews longer, shorter and exactly {length} ids long, and one of 1 id, with keep="
            f"\"{tested[0]}\" and \"{tested[1]}\"")


SOLUTION_12c_1 = '''
def pad_batch(sequences, length, keep="last"):
    """(len(sequences), length) int64 ids: cut to `length` (keep "last" or "first"), padded with 0 on the right."""
    rows = []
    for ids in sequences:
        ids = ids[-length:] if keep == "last" else ids[:length]  # at most `length` ids
        rows.append(ids + [0] * (length - len(ids)))             # padding after the real words
    return torch.tensor(rows, dtype=torch.int64)
'''

PAD = Exercise(
    id="12c.1", lesson=LESSON, title="Pad and truncate a batch of reviews", name="pad_batch", hint=HINT_PAD,
    statement=f"""
Write `pad_batch(sequences, length, keep="last")`: one int64 tensor of shape
(len(sequences), length) from reviews of different lengths. A review longer than `length` keeps
its last `length` ids (`keep="last"`) or its first (`keep="first"`); a shorter one is filled up
with the padding id `{text.PAD_ID}` **on the right**.

- in: `sequences`, a list of lists of ints (word ids, all ≥ 2); `length`, an int; `keep`,
  `"last"` or `"first"`
- out: an int64 tensor (len(sequences), length)
- not allowed: `text.pad_or_truncate`, `text.encode_tokens`

Correct means: equal to the course's padding for reviews longer, shorter and exactly `length`
long, with both values of `keep`.

See lesson 12c, section 5 (Fixed-length tensors: padding and truncation).
""",
    template=template_of(SOLUTION_12c_1),
    solution=SOLUTION_12c_1,
    alternatives=['''
def pad_batch(sequences, length, keep="last"):
    batch = torch.zeros(len(sequences), length, dtype=torch.long)
    for row, ids in enumerate(sequences):
        kept = torch.tensor(ids[len(ids) - length:] if keep == "last" and len(ids) > length else ids[:length])
        batch[row, :len(kept)] = kept
    return batch
'''],
    wrong_answers=[
        (variant(SOLUTION_12c_1,
            ('ids + [0] * (length - len(ids))', '[0] * (length - len(ids)) + ids'),
        ), "padded on the left"),
        ('''
def pad_batch(sequences, length, keep="last"):
    return torch.tensor([ids[:length] + [0] * (length - len(ids[:length])) for ids in sequences])
''', "keeps its last"),
        ('''
def pad_batch(sequences, length, keep="last"):
    rows = [(ids[-length:] if keep == "last" else ids[:length]) for ids in sequences]
    return torch.tensor([r + [0.0] * (length - len(r)) for r in rows])
''', "dtype"),
    ],
    checker=check_pad_batch,
)


# ---------------------------------------------------------------- 12c.2 masked mean pooling

def check_masked_mean(masked_mean) -> str:
    gen = generator("12c.2")
    tested = []
    for batch, full_row in ((randint(gen, 3, 6), True), (1, False)):
        seq, hidden = randint(gen, 5, 9), randint(gen, 3, 6)
        ids = _padded_ids(gen, batch, seq, full_row)
        outputs = torch.randn(batch, seq, hidden, generator=gen)
        real = (ids != text.PAD_ID).unsqueeze(-1)                         # (batch, seq, 1)
        expected = (outputs * real).sum(1) / real.sum(1)                  # (batch, hidden)
        got = call(masked_mean, outputs, ids, hint=HINT_POOL)
        what = f"for outputs {tuple(outputs.shape)}"
        if isinstance(got, torch.Tensor) and got.shape == expected.shape:
            if torch.allclose(got, outputs.mean(1), atol=1e-5):
                raise Mistake(f"{what} your mean includes the padded positions: average only where ids != 0",
                              HINT_POOL)
            if torch.allclose(got, (outputs * real).sum(1) / outputs.shape[1], atol=1e-5):
                raise Mistake(f"{what} your code summed the real positions but divided by the full length; "
                              "divide each row by its own number of real words", HINT_POOL)
            if batch > 1 and torch.allclose(got, (outputs * real).sum(1) / real.sum(), atol=1e-5):
                raise Mistake(f"{what} your code divided by the real words of the whole batch; divide each row "
                              "by its own count, real.sum(dim=1)", HINT_POOL)
        expect_tensor(got, expected, f"the pooled vectors {what}", hint=HINT_POOL)
        tested.append(str(tuple(outputs.shape)))
    return f"the mean over real words only, per review, for outputs {' and '.join(tested)}"


SOLUTION_12c_2 = '''
def masked_mean(outputs, ids):
    """(batch, seq, hidden) outputs, (batch, seq) ids -> (batch, hidden): the mean over positions where ids != 0."""
    real = (ids != 0).unsqueeze(-1).to(outputs.dtype)  # (batch, seq, 1): 1 for a word, 0 for padding
    return (outputs * real).sum(dim=1) / real.sum(dim=1)  # (batch, hidden) / (batch, 1)
'''

MEAN = Exercise(
    id="12c.2", lesson=LESSON, title="Masked mean pooling", name="masked_mean", hint=HINT_POOL,
    statement=f"""
Write `masked_mean(outputs, ids)`: one vector per review, the mean of the LSTM's outputs over the
review's **real** words only. The padded positions, where `ids == {text.PAD_ID}`, must not count.

- in: `outputs` (batch, seq, hidden), float; `ids` (batch, seq), int64, each row with at least one
  real word (padding on the right, some rows without any)
- out: (batch, hidden); no input may change
- no Python loop over the reviews

Correct means: within 1e-5 of the exact mean over each review's real words, for random lengths
and a batch of 1.

See lesson 12c, section 6 (The model: one vector per review).
""",
    template=template_of(SOLUTION_12c_2),
    solution=SOLUTION_12c_2,
    alternatives=['''
def masked_mean(outputs, ids):
    mask = ids.ne(0)
    zeroed = outputs.masked_fill(~mask[:, :, None], 0.0)
    return zeroed.sum(1) / mask.sum(1, keepdim=True)
''', '''
def masked_mean(outputs, ids):
    weights = (ids != 0).float()
    weights = weights / weights.sum(dim=1, keepdim=True)      # (batch, seq), each row sums to 1
    return torch.einsum("bs,bsh->bh", weights, outputs)
'''],
    wrong_answers=[
        ("def masked_mean(outputs, ids):\n    return outputs.mean(dim=1)\n", "includes the padded positions"),
        (variant(SOLUTION_12c_2,
            ('dim=1) / real.sum(dim=1)', '1) / outputs.shape[1]'),
        ), "divided by the full length"),
        (variant(SOLUTION_12c_2, ('dim=1) / real.sum(dim=1', '1) / real.sum(')), "real words of the whole batch"),
    ],
    checker=check_masked_mean,
)


# ---------------------------------------------------------------- 12c.3 the last real word's output

def check_last_real_output(last_real_output) -> str:
    gen = generator("12c.3")
    tested = []
    for batch, full_row in ((randint(gen, 3, 6), False), (randint(gen, 2, 4), True), (1, False)):
        seq, hidden = randint(gen, 5, 9), randint(gen, 3, 6)
        ids = _padded_ids(gen, batch, seq, full_row)
        outputs = torch.randn(batch, seq, hidden, generator=gen)
        lengths = (ids != text.PAD_ID).sum(1)
        expected = outputs[torch.arange(batch), lengths - 1]            # (batch, hidden)
        got = call(last_real_output, outputs, ids, hint=HINT_POOL)
        what = f"for outputs {tuple(outputs.shape)}"
        if isinstance(got, torch.Tensor) and got.shape == expected.shape:
            if torch.allclose(got, outputs[:, -1]) and not torch.allclose(expected, outputs[:, -1]):
                raise Mistake(f"{what} your code took the last position, outputs[:, -1]; in a padded row that is "
                              "an output after reading padding: take each row's last real word", HINT_POOL)
            if not full_row and torch.allclose(got, outputs[torch.arange(batch), lengths]):
                raise Mistake(f"{what} your code took the position after the last real word: a row with n real "
                              "words has its last one at position n - 1", HINT_POOL)
        expect_tensor(got, expected, f"the last real outputs {what}", hint=HINT_POOL)
        tested.append(str(tuple(outputs.shape)))
    return f"each row's output at its last real word, for outputs {', '.join(tested)} (a row without padding included)"


SOLUTION_12c_3 = '''
def last_real_output(outputs, ids):
    """(batch, seq, hidden), (batch, seq) -> (batch, hidden): each row's output at its last position where ids != 0."""
    lengths = (ids != 0).sum(dim=1)                        # (batch,) real words per row
    rows = torch.arange(outputs.shape[0])
    return outputs[rows, lengths - 1]                      # one (row, position) pair per review
'''

LAST = Exercise(
    id="12c.3", lesson=LESSON, title="The output after each review's last real word", name="last_real_output",
    hint=HINT_POOL,
    statement=f"""
Write `last_real_output(outputs, ids)`, what `pool = "last"` uses: for every review, the LSTM's
output at its **last real word**, the one that has read the whole review and no padding. Padding
(`{text.PAD_ID}`) is on the right, so a review with `n` real words ends at position `n - 1`.

- in: `outputs` (batch, seq, hidden); `ids` (batch, seq), int64, every row with at least one real
  word; some rows have no padding at all
- out: (batch, hidden); no input may change
- no Python loop over the reviews (index with a tensor of positions, or `gather`)

Correct means: exactly the outputs at each row's last real position, for random lengths, rows
without padding and a batch of 1.

See lesson 12c, section 6 (The model: one vector per review).
""",
    template=template_of(SOLUTION_12c_3),
    solution=SOLUTION_12c_3,
    alternatives=['''
def last_real_output(outputs, ids):
    last = (ids != 0).sum(1) - 1                                          # (batch,)
    index = last.view(-1, 1, 1).expand(-1, 1, outputs.shape[2])           # (batch, 1, hidden)
    return outputs.gather(1, index).squeeze(1)
'''],
    wrong_answers=[
        ("def last_real_output(outputs, ids):\n    return outputs[:, -1]\n", "outputs[:, -1]"),
        ('''
def last_real_output(outputs, ids):
    lengths = (ids != 0).sum(dim=1)
    return outputs[torch.arange(len(ids)), lengths]
''', "position after the last real word"),
        ('''
def last_real_output(outputs, ids):
    lengths = (ids != 0).sum(dim=1)
    return outputs[:, lengths - 1]
''', "has shape"),
    ],
    checker=check_last_real_output,
)


# ---------------------------------------------------------------- 12c.4 packing

def check_packed_last_state(packed_last_state) -> str:
    gen = generator("12c.4")
    tested = []
    for batch in (randint(gen, 3, 6), 1):
        seq, features, hidden = randint(gen, 5, 9), randint(gen, 2, 4), randint(gen, 3, 6)
        lstm = nn.LSTM(features, hidden, batch_first=True)
        lengths = torch.randint(1, seq + 1, (batch,), generator=gen)
        if batch > 1:
            lengths[0], lengths[1] = 2, seq                 # not sorted: the order of real batches
        embedded = torch.randn(batch, seq, features, generator=gen)
        embedded = embedded.masked_fill((torch.arange(seq) >= lengths[:, None]).unsqueeze(-1), 0.0)
        with torch.no_grad():
            expected = torch.cat([lstm(embedded[i:i + 1, :n])[1][0][-1] for i, n in enumerate(lengths.tolist())])
            unpacked = lstm(embedded)[1][0][-1]
        what = f"for a batch of {batch} with lengths {lengths.tolist()}"
        try:
            with torch.no_grad():
                got = call(packed_last_state, lstm, embedded, lengths.clone(), hint=HINT_POOL)
        except RuntimeError as err:
            if "must be sorted in decreasing order" in str(err):
                raise Mistake(f"{what} your code raised RuntimeError: {str(err).splitlines()[0]}: reviews come "
                              "in any order, so pass enforce_sorted=False", HINT_POOL) from None
            raise
        if isinstance(got, torch.Tensor) and got.shape == expected.shape and \
                torch.allclose(got, unpacked, atol=1e-5) and not torch.allclose(unpacked, expected, atol=1e-5):
            raise Mistake(f"{what} your state is the one after reading the padding too: pack the batch with "
                          "nn.utils.rnn.pack_padded_sequence so that each review stops at its own length",
                          HINT_POOL)
        expect_tensor(got, expected, f"the last states {what}", hint=HINT_POOL)
        tested.append(lengths.tolist())
    return f"h_n equals each review's own final state, reviews of lengths {tested[0]} (unsorted) and {tested[1]}"


SOLUTION_12c_4 = '''
def packed_last_state(lstm, embedded, lengths):
    """(batch, seq, features) padded, (batch,) lengths -> (batch, hidden): each review's final top-layer h."""
    packed = nn.utils.rnn.pack_padded_sequence(embedded, lengths.cpu(), batch_first=True,
                                               enforce_sorted=False)  # reviews come in any order
    _, (h_n, _) = lstm(packed)       # h_n: (num_layers, batch, hidden), back in the batch's order
    return h_n[-1]
'''

PACKED = Exercise(
    id="12c.4", lesson=LESSON, title="Let the LSTM stop at each review's end: packing", name="packed_last_state",
    hint=HINT_POOL,
    statement="""
Write `packed_last_state(lstm, embedded, lengths)`: run `lstm` over a padded batch so that it
stops at each review's own length, and return the top layer's final hidden state per review.
`nn.utils.rnn.pack_padded_sequence(embedded, lengths, batch_first=True, enforce_sorted=...)`
packs the batch; given a packed batch, the LSTM returns `h_n` at each review's last real step.

- in: `lstm`, an `nn.LSTM(..., batch_first=True)`; `embedded` (batch, seq, features), padded on the
  right; `lengths` (batch,) int64, the real length of each review, **in any order**
- out: (batch, hidden), the top layer's `h_n`, rows in the order of the batch

Correct means: within 1e-5 of running the LSTM on each review alone, without its padding, for
lengths in no particular order and a batch of 1.

See lesson 12c, section 6 (packing, `pack_padded_sequence`).
""",
    template=template_of(SOLUTION_12c_4),
    solution=SOLUTION_12c_4,
    alternatives=['''
def packed_last_state(lstm, embedded, lengths):
    order = lengths.argsort(descending=True)
    packed = nn.utils.rnn.pack_padded_sequence(embedded[order], lengths[order], batch_first=True)
    _, (h_n, _) = lstm(packed)
    return h_n[-1][order.argsort()]  # undo the sorting
'''],
    wrong_answers=[
        ('''
def packed_last_state(lstm, embedded, lengths):
    packed = nn.utils.rnn.pack_padded_sequence(embedded, lengths, batch_first=True)
    _, (h_n, _) = lstm(packed)
    return h_n[-1]
''', "enforce_sorted=False"),
        ('''
def packed_last_state(lstm, embedded, lengths):
    _, (h_n, _) = lstm(embedded)
    return h_n[-1]
''', "after reading the padding"),
        ('''
def packed_last_state(lstm, embedded, lengths):
    order = lengths.argsort(descending=True)
    packed = nn.utils.rnn.pack_padded_sequence(embedded[order], lengths[order], batch_first=True)
    _, (h_n, _) = lstm(packed)
    return h_n[-1]
''', "the last states for"),
    ],
    checker=check_packed_last_state,
)

EXERCISES = [PAD, MEAN, LAST, PACKED]
