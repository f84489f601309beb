"""Exercises of lesson 12c: padding and truncation, attention pooling, the last real word's output, packing, and a
challenge: a sequence model that beats the bag-of-words yardstick."""
from __future__ import annotations

import math

import torch
from torch import nn

from course_utils.datasets import text
from course_utils.exercises.challenges import batched_accuracy, evaluate_in_eval_mode, mode_note, trained
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


def _padded_ids(gen: torch.Generator, batch: int, seq: int, full_row: bool) -> torch.Tensor:
    """(batch, seq) ids >= 2 followed by padding (0) on the right; every row has at least one real id."""
    lengths = torch.randint(1, seq, (batch,), generator=gen)  # shorter than seq: every row ends in padding
    if full_row:
        lengths[-1] = seq
    ids = torch.randint(2, 50, (batch, seq), generator=gen)
    return ids.masked_fill(torch.arange(seq) >= lengths[:, None], text.PAD_ID)


# ---------------------------------------------------------------- 12c.1 padding and truncation

HINT_1 = "section 5 (Fixed-length tensors: padding and truncation): cut first, then pad on the right"

def check_pad_batch(pad_batch) -> str:
    gen = generator("12c.1")
    length = randint(gen, 4, 8)
    sequences = [torch.randint(2, 100, (n,), generator=gen).tolist()
                 for n in (length + randint(gen, 2, 5), randint(gen, 1, length - 1), length, 1)]
    tested = []
    padded = {keep: torch.tensor([text.pad_or_truncate(s, length, keep) for s in sequences])
              for keep in ("last", "first")}
    for keep, other in (("last", "first"), ("first", "last"), (None, "first")):
        expected = padded[keep or "last"]
        args = (length,) if keep is None else (length, keep)
        with forbid((text, "pad_or_truncate"), (text, "encode_tokens"), what="text.pad_or_truncate",
                    hint=HINT_1):
            given = [list(s) for s in sequences]
            got = pad_batch(given, *args)
        what = f'pad_batch(..., {length}, keep="{keep}")' if keep else f"pad_batch(..., {length}) without keep"
        if given != sequences:
            raise Mistake(f"{what} changed the lists it was given (a review of {len(sequences[1])} ids now has "
                          f"{len(given[1])}): extend or append on a review changes the caller's list; build "
                          "new lists with + or slices", HINT_1)
        if isinstance(got, torch.Tensor) and got.shape == expected.shape:
            kept = [s[-length:] if (keep or "last") == "last" else s[:length] for s in sequences]
            left = torch.tensor([[0] * (length - len(k)) + k for k in kept])
            if torch.equal(got, left):
                raise Mistake(f"{what} padded on the left; the lesson pads on the right, after the real "
                              "words, so the LSTM reads the review first", HINT_1)
            if torch.equal(got, padded[other]):
                raise Mistake(f'{what} kept the {other} words of the long review; keep="{keep or "last"}" keeps '
                              f"its {keep or 'last'} {length}" + (' (keep="last" is the default)' if keep is None
                                                                 else ""), HINT_1)
        expect_tensor(got, expected, what, hint=HINT_1)
        tested.append(keep)
    return (f"reviews longer, shorter and exactly {length} ids long, and one of 1 id, with keep="
            f"\"{tested[0]}\" and \"{tested[1]}\", and keep left out (\"last\")")


SOLUTION_1 = '''
def pad_batch(sequences, length, keep="last"):
    """(len(sequences), length) int64 ids: cut to `length` (keep "last" or "first"), padded with 0 on the right."""
    rows = []
    for ids in sequences:
        ids = ids[-length:] if keep == "last" else ids[:length]  # at most `length` ids
        rows.append(ids + [0] * (length - len(ids)))             # padding after the real words
    return torch.tensor(rows, dtype=torch.int64)
'''

EX_1 = Exercise(
    id="12c.1", lesson=LESSON, title="Pad and truncate a batch of reviews", name="pad_batch", hint=HINT_1,
    more_hints=["a Python list slice does the cutting: the last `length` items are ids[-length:], the first "
                "ids[:length]; a list shorter than that is left whole",
                "append `length - len(ids)` zeros to each cut list, then make one tensor of all the rows with "
                "dtype torch.int64"],
    statement=f"""
Write `pad_batch(sequences, length, keep="last")`: one int64 tensor of shape
(len(sequences), length) from reviews of different lengths.

A review longer than `length` keeps its last `length` ids (`keep="last"`, the default) or its
first (`keep="first"`); a shorter one is filled up with the padding id `{text.PAD_ID}` **on the
right**.

- **In:** `sequences`, a list of lists of ints (word ids, all ≥ 2); `length`, an int; `keep`,
  `"last"` (the default) or `"first"`.
- **Out:** an int64 tensor (len(sequences), length); `sequences` must not change.
- **Use:** Python lists and `torch.tensor`; not the course's `text.pad_or_truncate` or
  `text.encode_tokens`.
- **Correct means:** equal to the course's padding for reviews longer, shorter and exactly
  `length` long and one of a single id, with `keep="last"`, `keep="first"` and `keep` left out.
- **Reread:** section 5, *Fixed-length tensors: padding and truncation*.
""",
    template=template_of(SOLUTION_1),
    solution=SOLUTION_1,
    alternatives=['''
def pad_batch(sequences, length, keep="last"):
    batch = torch.zeros(len(sequences), length, dtype=torch.long)
    for row, ids in enumerate(sequences):
        kept = torch.tensor(ids[len(ids) - length:] if keep == "last" and len(ids) > length else ids[:length])
        batch[row, :len(kept)] = kept
    return batch
'''],
    wrong_answers=[
        (variant(SOLUTION_1,
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
        (variant(SOLUTION_1, ('keep="last"):', 'keep="first"):')), "without keep"),
        ("from course_utils.datasets import text\n\n\ndef pad_batch(sequences, length, keep=\"last\"):\n"
         "    return torch.tensor([text.pad_or_truncate(s, length, keep) for s in sequences])\n",
         "your code called text.pad_or_truncate"),
        ('''
def pad_batch(sequences, length, keep="last"):
    rows = []
    for ids in sequences:
        ids.extend([0] * (length - len(ids)))
        rows.append(ids[-length:] if keep == "last" else ids[:length])
    return torch.tensor(rows)
''', "changed the lists it was given"),
    ],
    checker=check_pad_batch,
)


# ---------------------------------------------------------------- 12c.2 attention pooling

HINT_2 = ("section 6 (The model: embedding → LSTM → one vector per review → linear): the padded positions "
          "masked out with -inf before the pooling")


def _attention_pool_reference(outputs, real, w, dim=1, fill=-math.inf):
    """The softmax-weighted sum over `dim`, padded scores set to `fill` (other values recognise mistakes)."""
    scores = (outputs.double() @ w.double()).masked_fill(~real, fill)     # (batch, seq)
    return (scores.softmax(dim=dim).unsqueeze(-1) * outputs.double()).sum(dim=1).float()


def check_attention_pool(attention_pool) -> str:
    gen = generator("12c.2")
    tested = []
    for batch, full_row in ((randint(gen, 3, 6), True), (1, False)):
        seq, hidden = randint(gen, 5, 9), randint(gen, 2, 4)  # seq != hidden: (batch, seq) weights cannot broadcast
        ids = _padded_ids(gen, batch, seq, full_row)
        real = ids != text.PAD_ID                                            # (batch, seq)
        w = torch.randn(hidden, generator=gen)
        outputs = torch.randn(batch, seq, hidden, generator=gen)
        # padded positions score high: a pooling that lets them in gives them most of the weight
        outputs = torch.where(real.unsqueeze(-1), outputs, outputs + 3 * w / w.norm())
        expected = _attention_pool_reference(outputs, real, w)
        what = f"for outputs {tuple(outputs.shape)} and ids with {real.sum(1).tolist()} real words per row"
        try:
            got = call(attention_pool, outputs, ids, w, hint=HINT_2)
        except RuntimeError as err:
            if isinstance(err, NotImplementedError) or "size" not in str(err):
                raise
            raise Mistake(f"{what} your code raised RuntimeError ({str(err).splitlines()[0]}): the scores are "
                          "(batch, seq), one per position; to weight the (batch, seq, hidden) outputs give them a "
                          "last dimension of 1 (unsqueeze(-1))", HINT_2) from None
        if isinstance(got, torch.Tensor) and got.shape == expected.shape and got.is_floating_point() and \
                not torch.allclose(got, expected, atol=1e-5):
            everything = torch.ones_like(real)
            if torch.allclose(got, _attention_pool_reference(outputs, everything, w), atol=1e-5):
                raise Mistake(f"{what} your weights include the padded positions: set their scores to -inf before "
                              "the softmax, so that they get weight 0", HINT_2)
            if torch.allclose(got, _attention_pool_reference(outputs, real, w, fill=0.0), atol=1e-5):
                raise Mistake(f"{what} your padded scores are 0, and exp(0) = 1 still gives padding a weight; "
                              "fill them with -inf (math.inf), whose exp is 0", HINT_2)
            weights = (outputs @ w).softmax(dim=1) * real
            if torch.allclose(got, (weights.unsqueeze(-1) * outputs).sum(1), atol=1e-5):
                raise Mistake(f"{what} you zeroed the padded weights after the softmax, so each review's weights "
                              "no longer sum to 1: mask the scores (-inf) before the softmax", HINT_2)
            if batch > 1 and torch.allclose(got, _attention_pool_reference(outputs, real, w, dim=0).nan_to_num(),
                                            atol=1e-5, equal_nan=True):
                raise Mistake(f"{what} your softmax runs over the reviews of the batch (dim=0); each review's "
                              "weights are over its own words: softmax along the positions, dim=1", HINT_2)
            if torch.allclose(got, (outputs * real.unsqueeze(-1)).sum(1) / real.sum(1, keepdim=True), atol=1e-5):
                raise Mistake(f"{what} your result is the plain mean over the real words: w was not used; the "
                              "weights are the softmax of the scores outputs @ w", HINT_2)
        expect_tensor(got, expected, f"the pooled vectors {what}", hint=HINT_2)
        tested.append(str(tuple(outputs.shape)))
    return (f"softmax(outputs @ w) over the real words only, per review, for outputs {' and '.join(tested)} "
            "(a row without padding, a batch of 1)")


SOLUTION_2 = '''
def attention_pool(outputs, ids, w):
    """(batch, seq, hidden), (batch, seq), (hidden,) -> (batch, hidden): outputs weighted by softmax over real words."""
    scores = outputs @ w                                     # (batch, seq): how much each position counts
    scores = scores.masked_fill(ids == 0, -math.inf)         # padding: weight exp(-inf) = 0
    weights = scores.softmax(dim=1)                          # over each review's positions, summing to 1
    return (weights.unsqueeze(-1) * outputs).sum(dim=1)      # (batch, seq, 1) * (batch, seq, hidden) -> sum
'''

EX_2 = Exercise(
    id="12c.2", lesson=LESSON, title="Attention pooling: a learned weight per word", name="attention_pool",
    hint=HINT_2,
    more_hints=["a matrix product of the outputs with w gives one score per position, (batch, seq); "
                "masked_fill with -math.inf where ids == 0 keeps padding out",
                "softmax the masked scores over the positions (dim=1), give the weights a last dimension of 1, "
                "multiply with the outputs and sum over the positions"],
    statement=f"""
Write `attention_pool(outputs, ids, w)`: one vector per review that lets the model choose which
words count. Position `t` of a review gets the score `outputs[:, t] @ w`; the softmax of a
review's scores over its **real** words gives their weights (summing to 1), and the result is the
weighted sum of the outputs.

This is a third pooling beside the lesson's mean and max: the padded positions (`ids ==
{text.PAD_ID}`) must get weight exactly 0, as they are kept out of the max.

- **In:** `outputs`, float32 (batch, seq, hidden); `ids`, int64 (batch, seq), padding on the right,
  each row with at least one real word (some rows without padding); `w`, float32 (hidden,).
- **Out:** float32 (batch, hidden); no input may change.
- **Use:** tensor operations (`@`, `masked_fill`, `softmax`, `sum`); `math` is imported; no
  Python loop over the reviews is needed.
- **Correct means:** within 1e-5 of the exact weighted sum, for padded positions whose outputs
  would score high, a row without padding, and a batch of 1.
- **Reread:** section 6, *The model: embedding → LSTM → one vector per review → linear*.
""",
    template=template_of(SOLUTION_2),
    solution=SOLUTION_2,
    checker=check_attention_pool,
    alternatives=['''
def attention_pool(outputs, ids, w):
    scores = torch.einsum("bsh,h->bs", outputs, w)
    scores = torch.where(ids != 0, scores, torch.full_like(scores, float("-inf")))
    return torch.einsum("bs,bsh->bh", torch.softmax(scores, dim=-1), outputs)
''', '''
def attention_pool(outputs, ids, w):
    real = (ids != 0).float()
    e = torch.exp(outputs @ w - (outputs @ w).max()) * real      # exp, 0 on padding
    weights = e / e.sum(dim=1, keepdim=True)
    return weights[:, None, :].bmm(outputs).squeeze(1)
'''],
    wrong_answers=[
        (variant(SOLUTION_2, ('    scores = scores.masked_fill(ids == 0, -math.inf)', '')),
         "your weights include the padded positions"),
        (variant(SOLUTION_2, ('-math.inf)', '0.0)')), "exp(0) = 1"),
        (variant(SOLUTION_2, ('scores = scores.masked_fill(ids == 0, -math.inf)', 'real = ids != 0'),
                 ('scores.softmax(dim=1)', 'scores.softmax(dim=1) * real')), "zeroed the padded weights"),
        (variant(SOLUTION_2, ('scores.softmax(dim=1)', 'scores.softmax(dim=0).nan_to_num()')),
         "runs over the reviews of the batch"),
        (variant(SOLUTION_2, ('weights.unsqueeze(-1) * outputs', 'weights * outputs')), "unsqueeze(-1)"),
        ("def attention_pool(outputs, ids, w):\n    real = (ids != 0).unsqueeze(-1)\n"
         "    return (outputs * real).sum(1) / real.sum(1)\n", "w was not used"),
    ],
)


# ---------------------------------------------------------------- 12c.3 the last real word's output

HINT_3 = ("section 6 (The model: embedding → LSTM → one vector per review → linear): pool = \"last\" "
          "takes the output after the last real word")

def check_last_real_output(last_real_output) -> str:
    gen = generator("12c.3")
    tested = []
    for batch, full_row in ((randint(gen, 3, 6), False), (randint(gen, 2, 4), True), (1, False)):
        seq, hidden = randint(gen, 5, 9), randint(gen, 3, 6)
        ids = _padded_ids(gen, batch, seq, full_row)
        outputs = torch.randn(batch, seq, hidden, generator=gen)
        lengths = (ids != text.PAD_ID).sum(1)
        expected = outputs[torch.arange(batch), lengths - 1]            # (batch, hidden)
        got = call(last_real_output, outputs, ids, hint=HINT_3)
        what = f"for outputs {tuple(outputs.shape)}"
        if isinstance(got, torch.Tensor) and got.shape == expected.shape:
            if torch.allclose(got, outputs[:, -1]) and not torch.allclose(expected, outputs[:, -1]):
                raise Mistake(f"{what} your code took the last position, outputs[:, -1]; in a padded row that is "
                              "an output after reading padding: take each row's last real word", HINT_3)
            if not full_row and torch.allclose(got, outputs[torch.arange(batch), lengths]):
                raise Mistake(f"{what} your code took the position after the last real word: a row with n real "
                              "words has its last one at position n - 1", HINT_3)
        expect_tensor(got, expected, f"the last real outputs {what}", hint=HINT_3)
        tested.append(str(tuple(outputs.shape)))
    return f"each row's output at its last real word, for outputs {', '.join(tested)} (a row without padding included)"


SOLUTION_3 = '''
def last_real_output(outputs, ids):
    """(batch, seq, hidden), (batch, seq) -> (batch, hidden): each row's output at its last position where ids != 0."""
    lengths = (ids != 0).sum(dim=1)                        # (batch,) real words per row
    rows = torch.arange(outputs.shape[0])
    return outputs[rows, lengths - 1]                      # one (row, position) pair per review
'''

EX_3 = Exercise(
    id="12c.3", lesson=LESSON, title="The output after each review's last real word", name="last_real_output",
    hint=HINT_3,
    more_hints=["count each row's real words with (ids != 0).sum(dim=1); the last one sits at that count minus 1",
                "index with two tensors at once, one of row numbers and one of positions: "
                "outputs[rows, positions] picks one (hidden,) vector per row"],
    statement=f"""
Write `last_real_output(outputs, ids)`, what `pool = "last"` uses: for every review, the LSTM's
output at its **last real word**, the one that has read the whole review and no padding.

Padding (`{text.PAD_ID}`) is on the right, so a review with `n` real words ends at position `n - 1`.

- **In:** `outputs`, float32 (batch, seq, hidden); `ids`, int64 (batch, seq), every row with at
  least one real word; some rows have no padding at all.
- **Out:** float32 (batch, hidden); no input may change.
- **Use:** tensor indexing (a tensor of positions, or `gather`); no Python loop over the reviews
  is needed.
- **Correct means:** exactly the outputs at each row's last real position, for random lengths,
  rows without padding and a batch of 1.
- **Reread:** section 6, *The model: embedding → LSTM → one vector per review → linear*.
""",
    template=template_of(SOLUTION_3),
    solution=SOLUTION_3,
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

HINT_4 = ("section 6 (The model: embedding → LSTM → one vector per review → linear): packing with "
          "pack_padded_sequence")

def check_packed_last_state(packed_last_state) -> str:
    gen = generator("12c.4")
    tested = []
    for batch, layers in ((randint(gen, 3, 6), 2), (1, 1)):   # two layers on every seed: "the top layer" shows
        seq, features, hidden = randint(gen, 5, 9), randint(gen, 2, 4), randint(gen, 3, 6)
        lstm = nn.LSTM(features, hidden, num_layers=layers, batch_first=True)
        lengths = torch.randint(1, seq + 1, (batch,), generator=gen)
        if batch > 1:
            lengths[0], lengths[1] = 2, seq                 # not sorted: the order of real batches
        embedded = torch.randn(batch, seq, features, generator=gen)
        embedded = embedded.masked_fill((torch.arange(seq) >= lengths[:, None]).unsqueeze(-1), 0.0)
        with torch.no_grad():
            alone = [lstm(embedded[i:i + 1, :n])[1][0] for i, n in enumerate(lengths.tolist())]  # (layers, 1, h)
            expected = torch.cat([h_n[-1] for h_n in alone])                # the top layer
            bottom = torch.cat([h_n[0] for h_n in alone])                   # the first layer
            unpacked = lstm(embedded)[1][0][-1]
        what = f"for a {layers}-layer LSTM and a batch of {batch} with lengths {lengths.tolist()}"
        try:
            with torch.no_grad():
                got = call(packed_last_state, lstm, embedded, lengths.clone(), hint=HINT_4)
        except RuntimeError as err:
            if "must be sorted in decreasing order" in str(err):
                raise Mistake(f"{what} your code raised RuntimeError: {str(err).splitlines()[0]}: reviews come "
                              "in any order, so pass enforce_sorted=False", HINT_4) from None
            raise
        if isinstance(got, torch.Tensor) and got.shape == expected.shape and \
                torch.allclose(got, unpacked, atol=1e-5) and not torch.allclose(unpacked, expected, atol=1e-5):
            raise Mistake(f"{what} your state is the one after reading the padding too: pack the batch with "
                          "nn.utils.rnn.pack_padded_sequence so that each review stops at its own length",
                          HINT_4)
        if layers > 1 and isinstance(got, torch.Tensor) and got.shape == expected.shape and \
                torch.allclose(got, bottom, atol=1e-5):
            raise Mistake(f"{what} your states are the first layer's, h_n[0]; h_n holds one state per layer, "
                          "(num_layers, batch, hidden), and the top layer is the last one, h_n[-1]", HINT_4)
        expect_tensor(got, expected, f"the last states {what}", hint=HINT_4)
        tested.append(lengths.tolist())
    return (f"h_n's top layer equals each review's own final state: 2 layers, lengths {tested[0]} (unsorted); "
            f"1 layer, lengths {tested[1]}")


SOLUTION_4 = '''
def packed_last_state(lstm, embedded, lengths):
    """(batch, seq, features) padded, (batch,) lengths -> (batch, hidden): each review's final top-layer h."""
    packed = nn.utils.rnn.pack_padded_sequence(embedded, lengths.cpu(), batch_first=True,
                                               enforce_sorted=False)  # reviews come in any order
    _, (h_n, _) = lstm(packed)       # h_n: (num_layers, batch, hidden), back in the batch's order
    return h_n[-1]
'''

EX_4 = Exercise(
    id="12c.4", lesson=LESSON, title="Let the LSTM stop at each review's end: packing", name="packed_last_state",
    hint=HINT_4,
    more_hints=["the lengths arrive unsorted: pack_padded_sequence sorts them itself when told "
                "enforce_sorted=False, and puts h_n back in the batch's order",
                "h_n has shape (num_layers, batch, hidden): the top layer is the last entry along dim 0"],
    statement="""
Write `packed_last_state(lstm, embedded, lengths)`: run `lstm` over a padded batch so that it
stops at each review's own length, and return the top layer's final hidden state per review.

`nn.utils.rnn.pack_padded_sequence(embedded, lengths, batch_first=True, enforce_sorted=...)`
packs the batch; given a packed batch, the LSTM returns `h_n` at each review's last real step.

- **In:** `lstm`, an `nn.LSTM(..., batch_first=True)` with one or more layers; `embedded`, float32
  (batch, seq, features), padded on the right; `lengths`, int64 (batch,), the real length of each
  review, **in any order**.
- **Out:** float32 (batch, hidden): the top (last) layer's `h_n`, rows in the order of the batch.
- **Use:** `nn.utils.rnn.pack_padded_sequence` and the LSTM.
- **Correct means:** within 1e-5 of running the LSTM on each review alone, without its padding,
  for a two-layer LSTM with lengths in no particular order and a one-layer LSTM with a batch of 1.
- **Reread:** section 6, *The model: embedding → LSTM → one vector per review → linear* (packing).
""",
    template=template_of(SOLUTION_4),
    solution=SOLUTION_4,
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
        (variant(SOLUTION_4, ('return h_n[-1]', 'return h_n[0]')), "first layer's, h_n[0]"),
    ],
    checker=check_packed_last_state,
)



# ---------------------------------------------------------------- 12c.5 Challenge: beat the bag of words

HINT_5 = "section 7 (Training): the model of section 6, the loop, and the epoch that validation prefers"
_TRAIN_SAMPLE = 2000    # training reviews the check scores to see whether the model learnt them by heart
_GUESSING = 0.6         # below this test accuracy a model of two balanced classes is barely better than a coin
_LEFT_PADDED_GAIN = 0.05  # this much better on reviews padded on the left: it was trained on them
_MEMORISED_GAP = 0.15   # training accuracy this far above the test accuracy: it learnt its training reviews


def _review_accuracy(model: nn.Module, ids: torch.Tensor, labels: torch.Tensor) -> float:
    """The share of reviews whose higher logit is the label; Mistake for outputs of the wrong shape or nan."""
    return batched_accuracy(model, ids, labels, 2, HINT_5, what="word ids",
                            wanted="logits, one score per class, negative and positive")


def _padded_on_the_left(ids: torch.Tensor) -> torch.Tensor:
    """The same reviews with their padding moved to the left, as Keras's pad_sequences gives them by default."""
    length = ids.shape[1]
    real = (ids != text.PAD_ID).sum(dim=1, keepdim=True)                    # (reviews, 1)
    return ids.gather(1, (torch.arange(length) - (length - real)) % length)


def check_train_my_model(train_my_model, target: float, x_test: torch.Tensor, y_test: torch.Tensor,
                         x_train: torch.Tensor, y_train: torch.Tensor) -> str:
    model, seconds = trained(train_my_model, HINT_5)
    was_training = model.training
    accuracy = evaluate_in_eval_mode(model, lambda: _review_accuracy(model, x_test, y_test))
    note = mode_note(was_training)
    said = f"test accuracy {accuracy:.4f} on the {len(y_test):,} test reviews it never trained on"
    if accuracy >= target:
        return f"{said}, target {target:.3f}{note}; trained in {seconds:.0f} s"
    said = f"your model's {said}, target {target:.3f}"
    left = evaluate_in_eval_mode(model, lambda: _review_accuracy(model, _padded_on_the_left(x_test), y_test))
    if left >= accuracy + _LEFT_PADDED_GAIN:
        raise Mistake(f"{said}; on the same reviews with their padding moved to the left it reaches {left:.4f}: it "
                      "was trained on reviews padded on the left. The lesson pads on the right (section 5), and so "
                      "are the test reviews: train on the lesson's x_train", HINT_5)
    seen = slice(0, min(_TRAIN_SAMPLE, len(y_train)))
    train_accuracy = evaluate_in_eval_mode(model, lambda: _review_accuracy(model, x_train[seen], y_train[seen]))
    if train_accuracy >= accuracy + _MEMORISED_GAP:
        raise Mistake(f"{said}, but {train_accuracy:.4f} on {len(y_train[seen]):,} of its training reviews: it "
                      "learnt its training reviews more than the task. More dropout, fewer epochs, or the epoch "
                      "with the lowest validation loss (training.fit's checkpoint) close the gap", HINT_5)
    if accuracy < _GUESSING:
        raise Mistake(f"{said}: barely better than a coin; was it trained (an optimizer step after backward, on "
                      "this model's parameters), on the lesson's x_train encoded with its vocabulary?", HINT_5)
    raise Mistake(f"{said}, missed by {target - accuracy:.4f}{note}; the levers: a bidirectional LSTM, max and "
                  "mean pooling together, dropout on the word vectors, a learning rate that falls over the run, "
                  "and the epoch that validation prefers", HINT_5)


def _toy_reviews(count: int = 2000, seed: int = 12) -> tuple[torch.Tensor, ...]:
    """(x_train, y_train, x_test, y_test): made-up reviews of 4 to 20 word ids padded to 24 on the right, for the
    wrong answers of 12c.5. Ids 2-10 lean positive, 11-19 negative, 20-59 neither; 15 % of the labels are flipped,
    so no model passes 0.868."""
    gen = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, 2, (2 * count,), generator=gen)
    lengths = torch.randint(4, 21, (2 * count,), generator=gen)
    neutral = torch.randint(20, 60, (2 * count, 24), generator=gen)
    own = torch.where(labels[:, None] == 1, 2, 11) + torch.randint(0, 9, (2 * count, 24), generator=gen)
    other = torch.where(labels[:, None] == 1, 11, 2) + torch.randint(0, 9, (2 * count, 24), generator=gen)
    signal = torch.where(torch.rand(2 * count, 24, generator=gen) < 0.75, own, other)
    ids = torch.where(torch.rand(2 * count, 24, generator=gen) < 0.3, signal, neutral)
    ids = ids.masked_fill(torch.arange(24) >= lengths[:, None], text.PAD_ID)
    labels = torch.where(torch.rand(2 * count, generator=gen) < 0.15, 1 - labels, labels)
    return ids[:count], labels[:count], ids[count:], labels[count:]


_TOY_SETTINGS = dict(zip(("x_train", "y_train", "x_test", "y_test"), _toy_reviews()))

SOLUTION_5 = '''
def train_my_model():
    """Build a sequence model, train it on x_train for at most challenge_epochs epochs, and return it."""

    class BothWays(nn.Module):
        """Word ids -> logits: one LSTM reads each review forwards, one backwards; max and mean over the words."""

        def __init__(self, vocab_size, embedding_dim=64, hidden_size=64, dropout=0.4):
            super().__init__()
            self.embedding = nn.Embedding(vocab_size, embedding_dim, padding_idx=0)
            self.forwards = nn.LSTM(embedding_dim, hidden_size, batch_first=True)
            self.backwards = nn.LSTM(embedding_dim, hidden_size, batch_first=True)
            self.dropout = nn.Dropout(dropout)                            # on the word vectors and the pooled one
            self.head = nn.Linear(4 * hidden_size, 2)

        def forward(self, ids):                                           # (batch, max_length), padded on the right
            lengths = (ids != 0).sum(dim=1, keepdim=True).clamp(min=1)   # (batch, 1)
            positions = torch.arange(ids.shape[1], device=ids.device)
            real = positions < lengths                                    # (batch, max_length)
            # each review's real words in reverse order, its padding left in place: no packing needed
            flip = torch.where(real, lengths - 1 - positions, positions)
            ahead, _ = self.forwards(self.dropout(self.embedding(ids)))
            back, _ = self.backwards(self.dropout(self.embedding(ids.gather(1, flip))))
            back = back.gather(1, flip.unsqueeze(2).expand_as(back))      # back to reading order
            outputs = torch.cat([ahead, back], dim=2)                     # (batch, max_length, 2 * hidden_size)
            mask = real.unsqueeze(2)
            pooled = torch.cat([outputs.masked_fill(~mask, -math.inf).amax(dim=1),
                                (outputs * mask).sum(dim=1) / lengths], dim=1)  # (batch, 4 * hidden_size)
            return self.head(self.dropout(pooled))

    torch.manual_seed(seed)
    model = BothWays(len(vocab)).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.002)
    # the learning rate falls to 0 along a cosine over the run, so the last epoch does not overshoot
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=challenge_epochs)
    training.fit(model, train_loader, val_loader, nn.CrossEntropyLoss(), optimizer, device, challenge_epochs,
                 scheduler=scheduler, verbose=False)
    return model
'''

# the lesson's names, for the wrong answers: made-up reviews stand in for x_train, y_train
_LESSON = """
from course_utils.exercises.lesson_12c import _toy_reviews
x_train, y_train, _, _ = _toy_reviews()


def word_scores(ids, labels):
    counts = torch.stack([torch.bincount(ids[labels == c].flatten(), minlength=10000) for c in (0, 1)])
    scores = ((counts + 1) / (counts + 1).sum(dim=1, keepdim=True)).log().T   # (10000, 2): log P(word | class)
    scores[0] = 0                                                             # <pad> counts for neither
    return scores


class WordScores(nn.Module):
    def __init__(self, scores, last=None):
        super().__init__()
        self.register_buffer("scores", scores)
        self.last = last

    def forward(self, ids):
        scores = self.scores[ids]                                             # (batch, seq, 2)
        return (scores if self.last is None else scores[:, -self.last:]).sum(dim=1)
"""

# a bag of words counted without a training loop (naive Bayes): a real model, but no better than the yardstick
_NAIVE_BAYES = _LESSON + """
def train_my_model():
    return WordScores(word_scores(x_train, y_train))
"""

# the same, counted on reviews padded on the left, reading only the last 6 positions, as a last-state model does
_LEFT_PADDED = _LESSON + """
def train_my_model():
    length = x_train.shape[1]
    real = (x_train != 0).sum(dim=1, keepdim=True)
    left = x_train.gather(1, (torch.arange(length) - (length - real)) % length)   # padding moved to the left
    return WordScores(word_scores(left, y_train), last=6)
"""

# answers the label of a training review it has seen, and "negative" for every other review
_MEMORISED = _LESSON + """
class Lookup(nn.Module):
    def __init__(self, ids, labels):
        super().__init__()
        self.seen = {tuple(row): label for row, label in zip(ids.tolist(), labels.tolist())}

    def forward(self, ids):
        labels = torch.tensor([self.seen.get(tuple(row), 0) for row in ids.tolist()])
        return F.one_hot(labels, 2).float()


def train_my_model():
    return Lookup(x_train, y_train)
"""

_CONSTANT = """
class Constant(nn.Module):
    def __init__(self):
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(2))

    def forward(self, ids):
        return self.bias.expand(len(ids), 2)
"""

EX_5 = Exercise(
    id="12c.5", lesson=LESSON, title="Challenge: beat the bag of words", name="train_my_model",
    hint=HINT_5,
    more_hints=["a bidirectional LSTM reads every review both ways (the lesson's SentimentLSTM packs it for you); "
                "pooling the max and the mean of its outputs together, and dropout on the word vectors, help more "
                "than a bigger state",
                "watch the validation accuracy per epoch: an LSTM on 20,000 reviews overfits after a few epochs, so "
                "let the learning rate fall to 0 over the run (CosineAnnealingLR), or keep the epoch validation "
                "prefers"],
    statement="""
This lesson's LSTM reached about 0.86 test accuracy, a little behind the bag-of-words yardstick (about
0.865). Write `train_my_model()`: it builds a model that reads the words in order, trains it on the lesson's
encoded training reviews, and returns it. Your choices: the recurrent layer and its size, one or two
directions, how to pool, dropout, the optimiser and its schedule (lesson 03, section 6). The target is
reachable: a model of this lesson's kind, changed in a few of these ways, reached 0.871 in 6 epochs.

- **In:** nothing; use the lesson's `x_train`, `y_train` (or `train_loader`), `x_val`, `y_val`, `len(vocab)`,
  `device` and `training.fit` or your own loop; at most `challenge_epochs` epochs (the check says how long
  training took).
- **Out:** the trained `nn.Module`: word ids `(batch, max_length)`, padded with 0 on the right -> logits
  `(batch, 2)`.
- **Use:** anything in PyTorch with a recurrent layer (`nn.LSTM` or `nn.GRU`); never the test reviews.
- **Correct means:** on the lesson's `x_test`, reviews it never trained on, evaluated in eval mode, accuracy at
  least `challenge_target` (0.868).
- **Reread:** section 7, *Training*, and section 6 for the model.
""",
    template=template_of(SOLUTION_5),
    solution=SOLUTION_5,
    wrong_answers=[
        (_CONSTANT + "\n\ndef train_my_model():\n    return Constant()\n", "barely better than a coin"),
        ("def train_my_model():\n    return nn.EmbeddingBag(10000, 1)\n", "one score per class"),
        (_CONSTANT + "\n\ndef train_my_model():\n    model = Constant()\n", "forget `return model`"),
        ("def train_my_model():\n    model = nn.EmbeddingBag(10000, 2)\n    nn.init.constant_(model.weight, "
         "math.nan)\n    return model\n", "nan or inf"),
        (_LEFT_PADDED, "padded on the left"),
        (_MEMORISED, "of its training reviews"),
        (_NAIVE_BAYES, "missed by"),
    ],
    checker=check_train_my_model,
    challenge=True,
    settings={"target": "challenge_target", "x_test": "x_test", "y_test": "y_test", "x_train": "x_train",
              "y_train": "y_train"},
    rule_settings={"target": 0.868, **_TOY_SETTINGS},
)

EXERCISES = [EX_1, EX_2, EX_3, EX_4, EX_5]
