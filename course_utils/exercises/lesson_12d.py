"""Exercises of lesson 12d: masked attention, splitting and merging heads, a padded causal mask, a KV-cache step."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from course_utils.exercises.challenges import char_wrong_answers, trained_char_model
from course_utils.exercises.framework import (
    Exercise,
    Mistake,
    call,
    distinct_sizes,
    expect_tensor,
    forbid,
    generator,
    randint,
    template_of,
    variant,
)
from course_utils.models import transformer

LESSON = "12d_attention"


def _reference_attention(q, k, v, mask, scale=True):
    """Attention in float64, -inf where mask is False; rows with no key readable become NaN."""
    scores = q.double() @ k.double().transpose(-2, -1)
    if scale:
        scores = scores / math.sqrt(q.shape[-1])
    weights = scores.masked_fill(~mask, -math.inf).softmax(dim=-1)
    return (weights @ v.double()).float()


# ---------------------------------------------------------------- 12d.1 attention with a mask

HINT_1 = "section 2 (Scaled dot-product attention by hand): scores, -inf where not allowed, softmax, weighted sum"

def check_masked_attention(masked_attention) -> str:
    gen = generator("12d.1")
    tested = []
    for batch, heads in ((randint(gen, 2, 3), randint(gen, 2, 4)), (1, 1)):
        seq_q, seq_k, d, d_v = distinct_sizes(gen, 4, 3, 9)
        q = torch.randn(batch, heads, seq_q, d, generator=gen) * 2
        k = torch.randn(batch, heads, seq_k, d, generator=gen) * 2
        v = torch.randn(batch, heads, seq_k, d_v, generator=gen)
        mask = torch.rand(batch, 1, seq_q, seq_k, generator=gen) < 0.6
        mask[..., randint(gen, 0, seq_k - 1)] = True  # every query can read at least one key
        expected = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        what = f"for q {tuple(q.shape)}, k {tuple(k.shape)}, v {tuple(v.shape)}, mask {tuple(mask.shape)}"
        with forbid((F, "scaled_dot_product_attention"), (transformer, "attention"),
                    what="F.scaled_dot_product_attention (or the course's attention)", hint=HINT_1):
            got = call(masked_attention, q, k, v, mask, hint=HINT_1)
        if isinstance(got, tuple):
            raise Mistake(f"{what} your code returned a tuple; return only the output tensor", HINT_1)
        if isinstance(got, torch.Tensor) and got.shape == expected.shape and \
                not torch.allclose(got, expected, atol=1e-5, rtol=1e-4):
            if torch.allclose(got, _reference_attention(q, k, v, mask, scale=False), atol=1e-5, rtol=1e-4):
                raise Mistake(f"{what} your scores are not divided by sqrt(d) = sqrt({d}): without it the softmax "
                              "saturates as d grows", HINT_1)
            inverted = _reference_attention(q, k, v, ~mask)
            if torch.allclose(got, inverted, atol=1e-5, rtol=1e-4, equal_nan=True):
                raise Mistake(f"{what} your queries read the keys where mask is False: mask is True where a query "
                              "MAY read, so set the scores to -inf where it is False (masked_fill(~mask, ...))",
                              HINT_1)
            if got.isnan().any():
                raise Mistake(f"{what} your output contains NaN where every query can read a key: -inf belongs "
                              "only where mask is False, and the softmax must run after it", HINT_1)
            unnormalised = (q @ k.transpose(-2, -1) / math.sqrt(d)).softmax(dim=-1) * mask
            if torch.allclose(got, unnormalised @ v, atol=1e-5, rtol=1e-4):
                raise Mistake(f"{what} you zeroed the weights after the softmax, so they no longer sum to 1: "
                              "mask the scores (-inf) before the softmax", HINT_1)
            scores = (q @ k.transpose(-2, -1) / math.sqrt(d)).masked_fill(~mask, -math.inf)
            if torch.allclose(got, scores.softmax(dim=-2).nan_to_num() @ v, atol=1e-5, rtol=1e-4):
                raise Mistake(f"{what} your softmax runs over the queries; run it over the keys (the last "
                              "dimension), so that each query's weights sum to 1", HINT_1)
        expect_tensor(got, expected, f"the output {what}", hint=HINT_1)
        tested.append(f"batch {batch}, heads {heads}, {seq_q} queries, {seq_k} keys")
    return f"equals F.scaled_dot_product_attention with random masks ({'; '.join(tested)})"


SOLUTION_1 = '''
def masked_attention(q, k, v, mask):
    """softmax(q k^T / sqrt(d)) v over the keys that mask allows: (batch, heads, seq_q, d_v)."""
    scores = torch.einsum("bhqd,bhkd->bhqk", q, k) / math.sqrt(q.shape[-1])  # (batch, heads, seq_q, seq_k)
    scores = torch.where(mask, scores, torch.full_like(scores, -math.inf))   # mask broadcasts over the heads
    return torch.einsum("bhqk,bhkd->bhqd", scores.softmax(dim=-1), v)
'''

EX_1 = Exercise(
    id="12d.1", lesson=LESSON, title="Attention with a mask, by hand", name="masked_attention",
    hint=HINT_1,
    more_hints=["scores q @ k.transpose(-2, -1) of shape (batch, heads, seq_q, seq_k), divided by sqrt(d); the "
                "(batch, 1, seq_q, seq_k) mask broadcasts over the heads",
                "put -inf where mask is False before the softmax, softmax over the keys (the last dimension), "
                "then multiply by v"],
    statement="""
Write `masked_attention(q, k, v, mask)`: scaled dot-product attention in which `mask` says which
keys each query may read.

Unlike the lesson's example, the queries and keys here come from sequences of different lengths
(as when a decoder reads an encoder), the values have their own width, and the mask is any
pattern, not only causal.

- **In:** `q`, float32 (batch, heads, seq_q, d); `k`, float32 (batch, heads, seq_k, d); `v`,
  float32 (batch, heads, seq_k, d_v); `mask`, bool (batch, 1, seq_q, seq_k), `True` where the query
  may read the key, the same for every head; every query may read at least one key.
- **Out:** float32 (batch, heads, seq_q, d_v), the output tensor alone (not the weights); no
  input may change.
- **Use:** tensor operations (`@` or `einsum`, `masked_fill` or `where`, `softmax`); `math` is
  imported; not `F.scaled_dot_product_attention` nor the course's `transformer.attention`.
- **Correct means:** within 1e-5 of `F.scaled_dot_product_attention(q, k, v, attn_mask=mask)` for
  random sizes and masks, and for a batch of one sequence with one head.
- **Reread:** section 2, *Scaled dot-product attention by hand*.
""",
    template=template_of(SOLUTION_1),
    solution=SOLUTION_1,
    alternatives=['''
def masked_attention(q, k, v, mask):
    bias = torch.zeros(mask.shape, dtype=q.dtype).masked_fill(~mask, float("-inf"))  # an additive mask
    weights = torch.softmax(q @ k.mT * q.shape[-1] ** -0.5 + bias, dim=-1)
    return weights @ v
'''],
    wrong_answers=[
        (variant(SOLUTION_1, (' / math.sqrt(q.shape[-1])', '')), "not divided by sqrt(d)"),
        (variant(SOLUTION_1, ('torch.where(mask,', 'torch.where(~mask,')), "read the keys where mask is False"),
        ('''
def masked_attention(q, k, v, mask):
    weights = (q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])).softmax(dim=-1)
    return (weights * mask) @ v
''', "zeroed the weights after the softmax"),
        (variant(SOLUTION_1, ('scores.softmax(dim=-1)', 'scores.softmax(dim=-2).nan_to_num()')),
         "softmax runs over the queries"),
        ('''
def masked_attention(q, k, v, mask):
    return F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
''', "your code called F.scaled_dot_product_attention"),
        ("from course_utils.models import transformer\n\n\ndef masked_attention(q, k, v, mask):\n"
         "    return transformer.attention(q, k, v, mask)[0]\n", "or the course's attention"),
        (variant(SOLUTION_1, ('scores.softmax(dim=-1), v)', 'scores.softmax(dim=-1), v), scores')),
         "returned a tuple"),
    ],
    checker=check_masked_attention,
)


# ---------------------------------------------------------------- 12d.2 splitting and merging heads

HINT_2 = "section 3 (Multi-head attention): cut the last dimension into heads, then move the heads forward"

def _heads(x: torch.Tensor, num_heads: int) -> torch.Tensor:
    batch, seq, d_model = x.shape
    return x.reshape(batch, seq, num_heads, d_model // num_heads).transpose(1, 2)


def _recording_fn(seen: list, shape: tuple):
    """An fn that records what it receives, mixes the positions within each head and scales each head differently."""
    scale = torch.arange(1.0, shape[1] + 1).view(1, shape[1], 1, 1)

    def fn(heads):
        seen.append(heads.detach().clone() if isinstance(heads, torch.Tensor) else heads)
        if not isinstance(heads, torch.Tensor) or heads.shape != shape:
            return heads  # the shape is reported once the learner's function returns
        return heads.cumsum(dim=2) * scale
    return fn


def check_per_head(per_head) -> str:
    gen = generator("12d.2")
    tested = []
    for batch, seq, num_heads, head_dim in ((randint(gen, 2, 3), *distinct_sizes(gen, 3, 3, 6)), (1, 5, 2, 3)):
        d_model = num_heads * head_dim
        x = torch.randn(batch, seq, d_model, generator=gen)
        seen = []
        fn = _recording_fn(seen, (batch, num_heads, seq, head_dim))
        expected_heads = _heads(x, num_heads)
        scale = torch.arange(1.0, num_heads + 1).view(1, num_heads, 1, 1)
        expected = (expected_heads.cumsum(dim=2) * scale).transpose(1, 2).reshape(batch, seq, d_model)
        what = f"for x {tuple(x.shape)} and {num_heads} heads"
        with forbid((transformer, "split_heads"), (transformer, "merge_heads"),
                    what="the course's transformer.split_heads / merge_heads", hint=HINT_2):
            got = call(per_head, x, num_heads, fn, hint=HINT_2)
        if len(seen) != 1:
            raise Mistake(f"{what} your code called fn {len(seen)} times; call it once, on all heads together "
                          "(batch, num_heads, seq, head_dim)", HINT_2)
        received = seen[0]
        shape = (batch, num_heads, seq, head_dim)
        if not isinstance(received, torch.Tensor) or received.shape != shape:
            got_shape = tuple(received.shape) if isinstance(received, torch.Tensor) else type(received).__name__
            raise Mistake(f"{what} fn received shape {got_shape}, expected {shape} (batch, num_heads, seq, "
                          "head_dim): after cutting the last dimension, move the heads in front of the positions",
                          HINT_2)
        if not torch.equal(received, expected_heads):
            if torch.equal(received, x.reshape(shape)):
                raise Mistake(f"{what} fn received the right shape but not the heads: a view straight to (batch, "
                              "num_heads, seq, head_dim) puts numbers of several positions into one head; view as "
                              "(batch, seq, num_heads, head_dim), then transpose(1, 2)", HINT_2)
            raise Mistake(f"{what} fn did not receive the heads: head h of position t must be "
                          "x[:, t, h * head_dim:(h + 1) * head_dim], numbers that sit next to each other", HINT_2)
        if isinstance(got, torch.Tensor) and got.shape == expected.shape and not torch.allclose(got, expected):
            result = expected_heads.cumsum(dim=2) * scale
            if torch.allclose(got, result.reshape(batch, seq, d_model)):
                raise Mistake(f"{what} your merge reshapes (batch, num_heads, seq, head_dim) straight to (batch, seq, "
                              "d_model), which mixes positions; transpose(1, 2) back first", HINT_2)
        expect_tensor(got, expected, f"the merged result {what}", atol=1e-6, hint=HINT_2)
        tested.append(f"{num_heads} heads of {head_dim}")
    return f"fn got the heads and the merge put them back ({', '.join(tested)})"


SOLUTION_2 = '''
def per_head(x, num_heads, fn):
    """Cut x (batch, seq, d_model) into heads, apply fn to (batch, num_heads, seq, head_dim), glue back."""
    batch, seq, d_model = x.shape
    heads = x.unflatten(-1, (num_heads, d_model // num_heads)).permute(0, 2, 1, 3)  # (batch, heads, seq, head_dim)
    out = fn(heads)
    return out.permute(0, 2, 1, 3).flatten(start_dim=2)                           # (batch, seq, d_model)
'''

EX_2 = Exercise(
    id="12d.2", lesson=LESSON, title="Splitting and merging heads", name="per_head", hint=HINT_2,
    more_hints=["view x as (batch, seq, num_heads, head_dim) first, so that each head keeps numbers that sit next "
                "to each other, then swap dims 1 and 2",
                "to glue back, undo the swap first (heads behind the positions again), then flatten the last two "
                "dimensions into d_model"],
    statement="""
Write `per_head(x, num_heads, fn)`: cut the last dimension of `x` into `num_heads` heads of
`head_dim = d_model // num_heads` numbers, hand all heads at once to `fn`, and glue what `fn` returns
back together.

Head `h` of position `t` is `x[:, t, h * head_dim:(h + 1) * head_dim]`. `fn` stands for any work
done per head: it may mix the positions within a head (as attention does), so the heads must
really be (batch, num_heads, seq, head_dim), not just have that shape.

- **In:** `x`, float32 (batch, seq, d_model), `d_model` divisible by `num_heads`; `num_heads`, an
  int; `fn`, a function from a tensor (batch, num_heads, seq, head_dim) to one of the same shape.
- **Out:** float32 (batch, seq, d_model): position `t`, head `h` of `fn`'s result in
  `out[:, t, h * head_dim:(h + 1) * head_dim]`; `x` must not change.
- **Use:** tensor reshaping (`view`/`reshape`/`unflatten`, `transpose`/`permute`, `flatten`);
  call `fn` exactly once; not the course's `transformer.split_heads` and `merge_heads`.
- **Correct means:** `fn` is called once and receives exactly the heads, and the result equals the
  reference within 1e-6, for an `fn` that takes a running sum over the positions and scales each
  head differently, for random sizes and a batch of one.
- **Reread:** section 3, *Multi-head attention*.
""",
    template=template_of(SOLUTION_2),
    solution=SOLUTION_2,
    alternatives=['''
def per_head(x, num_heads, fn):
    head_dim = x.shape[-1] // num_heads
    heads = torch.stack(x.split(head_dim, dim=-1), dim=1)  # (batch, heads, seq, head_dim)
    return torch.cat(fn(heads).unbind(dim=1), dim=-1)
'''],
    wrong_answers=[
        (variant(SOLUTION_2, ('x.unflatten(-1, (num_heads, d_model // num_heads)).permute(0, 2, 1, 3)',
                                  'x.reshape(batch, num_heads, seq, d_model // num_heads)')),
         "a view straight to"),
        (variant(SOLUTION_2, ('out.permute(0, 2, 1, 3).flatten(start_dim=2)', 'out.reshape(batch, seq, d_model)')),
         "your merge reshapes"),
        (variant(SOLUTION_2, ('x.unflatten(-1, (num_heads, d_model // num_heads)).permute(0, 2, 1, 3)',
                                  'x.unflatten(-1, (d_model // num_heads, num_heads)).permute(0, 3, 1, 2)'),
                 ('out.permute(0, 2, 1, 3).flatten(start_dim=2)', 'out.permute(0, 2, 3, 1).flatten(start_dim=2)')),
         "numbers that sit next to each other"),
        (variant(SOLUTION_2, ('.permute(0, 2, 1, 3)  #', '  #')), "fn received shape"),
        (variant(SOLUTION_2, ('    out = fn(heads)\n', '    out = fn(fn(heads))\n')), "called fn 2 times"),
        ("from course_utils.models import transformer\n\n\ndef per_head(x, num_heads, fn):\n"
         "    return transformer.merge_heads(fn(transformer.split_heads(x, num_heads)))\n",
         "your code called the course's transformer.split_heads"),
    ],
    checker=check_per_head,
)


# ---------------------------------------------------------------- 12d.3 causal mask for padded sequences

HINT_3 = "section 2 (Scaled dot-product attention by hand), the causal mask: True where a query may read a key"

def _padded_causal_reference(lengths: torch.Tensor, seq_len: int) -> torch.Tensor:
    causal = torch.ones(seq_len, seq_len, dtype=torch.bool).tril()           # (seq, seq)
    real_keys = torch.arange(seq_len)[None, :] < lengths[:, None]            # (batch, seq)
    return (causal[None] & real_keys[:, None, :])[:, None]                   # (batch, 1, seq, seq)


def check_padded_causal_mask(padded_causal_mask) -> str:
    gen = generator("12d.3")
    tested = []
    for batch, seq_len in ((randint(gen, 3, 5), randint(gen, 5, 9)), (1, randint(gen, 3, 6))):
        lengths = torch.randint(1, seq_len + 1, (batch,), generator=gen)
        lengths[0] = seq_len if batch > 1 else randint(gen, 2, seq_len - 1)  # a row without padding
        if batch > 2:
            lengths[1] = 1
        expected = _padded_causal_reference(lengths, seq_len)
        what = f"for lengths {lengths.tolist()} and seq_len {seq_len}"
        got = call(padded_causal_mask, lengths, seq_len, hint=HINT_3)
        if not isinstance(got, torch.Tensor):
            expect_tensor(got, expected, f"the mask {what}", hint=HINT_3)
        if got.shape != expected.shape:
            raise Mistake(f"{what} your mask has shape {tuple(got.shape)}, expected {tuple(expected.shape)} "
                          "(batch, 1, seq_len, seq_len): the 1 lets it broadcast over the heads", HINT_3)
        if got.dtype != torch.bool:
            raise Mistake(f"{what} your mask has dtype {got.dtype}; a bool mask (True = may read) is what "
                          "F.scaled_dot_product_attention reads as 'allowed'", HINT_3)
        if torch.equal(got, ~expected):
            raise Mistake(f"{what} your mask is inverted: True means the query MAY read the key", HINT_3)
        causal = torch.ones(seq_len, seq_len, dtype=torch.bool).tril().expand_as(expected)
        if not torch.equal(got, expected):
            if torch.equal(got, causal):
                raise Mistake(f"{what} your mask lets queries read padding: key j of row b is padding when "
                              "j >= lengths[b]", HINT_3)
            if (got & ~causal).any():
                b, _, i, j = (got & ~causal).nonzero()[0].tolist()
                raise Mistake(f"{what} in row {b} query {i} may read key {j}, a later position: the mask must be "
                              "causal too (j <= i)", HINT_3)
            if not got.any(dim=-1).all():
                b, _, i = (~got.any(dim=-1)).nonzero()[0].tolist()
                raise Mistake(f"{what} in row {b} query {i} may read no key at all: its softmax is 0/0 and NaN "
                              "spreads through the model; mask the padded keys, not the padded queries",
                              HINT_3)
            b, _, i, j = (got != expected).nonzero()[0].tolist()
            raise Mistake(f"{what} in row {b} (length {int(lengths[b])}) query {i} key {j} should be "
                          f"{bool(expected[b, 0, i, j])}: key lengths[b] is already the first padding position",
                          HINT_3)
        q = torch.randn(batch, 2, seq_len, 4, generator=gen)
        if F.scaled_dot_product_attention(q, q, q, attn_mask=got).isnan().any():
            raise Mistake(f"{what} SDPA with your mask returns NaN", HINT_3)
        tested.append(f"batch {batch}, seq_len {seq_len}")
    return f"causal and blind to padding ({', '.join(tested)}), no NaN from SDPA"


SOLUTION_3 = '''
def padded_causal_mask(lengths, seq_len):
    """(batch, 1, seq_len, seq_len) bool: query i may read key j when j <= i and key j is not padding."""
    positions = torch.arange(seq_len)
    earlier = positions[None, :] <= positions[:, None]      # (seq_len, seq_len): j <= i
    real = positions[None, :] < lengths[:, None]             # (batch, seq_len): key j is a real character
    return (earlier & real[:, None, :]).unsqueeze(1)         # (batch, 1, seq_len, seq_len)
'''

EX_3 = Exercise(
    id="12d.3", lesson=LESSON, title="A causal mask for a batch of padded sequences", name="padded_causal_mask",
    hint=HINT_3,
    more_hints=["two conditions, two comparisons of torch.arange(seq_len): j <= i gives (seq_len, seq_len), "
                "j < lengths[b] gives (batch, seq_len); & them with broadcasting",
                "only the keys are masked for padding: the (batch, seq_len) condition goes on the last "
                "dimension, [:, None, :]; then add the heads' dimension of 1"],
    statement="""
Write `padded_causal_mask(lengths, seq_len)`: the mask that SDPA takes for a batch of sequences of
different lengths, padded on the right.

Row `b` holds `lengths[b]` real characters, then padding up to `seq_len`. Query `i` of row `b`
may read key `j` when `j <= i` (causal) **and** key `j` is a real character (`j < lengths[b]`).
Queries in the padding still read the real keys before them; their outputs are simply never used.

- **In:** `lengths`, int64 (batch,), each between 1 and `seq_len`; `seq_len`, an int.
- **Out:** a `torch.bool` tensor (batch, 1, seq_len, seq_len), `True` where reading is allowed;
  the 1 broadcasts over the heads; `lengths` must not change.
- **Use:** tensor comparisons and broadcasting (a Python loop over the rows also works).
- **Correct means:** equal to the exact mask, dtype bool, for random lengths with a row without
  padding, a row of length 1 and a batch of one, and `F.scaled_dot_product_attention` with it
  gives no NaN.
- **Reread:** section 2, *Scaled dot-product attention by hand* (*The causal mask*).
""",
    template=template_of(SOLUTION_3),
    solution=SOLUTION_3,
    alternatives=['''
def padded_causal_mask(lengths, seq_len):
    mask = torch.ones(len(lengths), 1, seq_len, seq_len, dtype=torch.bool).tril()
    for b, length in enumerate(lengths.tolist()):
        mask[b, :, :, length:] = False   # padding keys
    return mask
'''],
    wrong_answers=[
        ('''
def padded_causal_mask(lengths, seq_len):
    return torch.ones(len(lengths), 1, seq_len, seq_len, dtype=torch.bool).tril()
''', "lets queries read padding"),
        (variant(SOLUTION_3, ('(earlier & real[:, None, :])', '(real[:, None, :].expand(-1, seq_len, -1))')),
         "the mask must be causal too"),
        (variant(SOLUTION_3, ('.unsqueeze(1)', '')), "your mask has shape"),
        (variant(SOLUTION_3, ('(earlier & real[:, None, :])', '(earlier & real[:, None, :] & real[:, :, None])')),
         "mask the padded keys, not the padded queries"),
        (variant(SOLUTION_3, ('positions[None, :] < lengths', 'positions[None, :] <= lengths')),
         "key lengths[b] is already the first padding position"),
        (variant(SOLUTION_3, ('.unsqueeze(1)         #', '.unsqueeze(1).float() #')), "your mask has dtype"),
    ],
    checker=check_padded_causal_mask,
)


# ---------------------------------------------------------------- 12d.4 one decoding step with a KV cache

HINT_4 = "section 7 (Generation with a KV cache): append the new key and value, then attend"

def check_decode_step(decode_step) -> str:
    gen = generator("12d.4")
    tested = []
    for batch, seq in ((randint(gen, 2, 3), randint(gen, 5, 7)), (1, 3)):
        d_model, d = distinct_sizes(gen, 2, 4, 9)
        x = torch.randn(batch, seq, d_model, generator=gen)
        w_q, w_k, w_v = (torch.randn(d_model, d, generator=gen) / math.sqrt(d_model) for _ in range(3))
        keys, values = x @ w_k, x @ w_v                                   # (batch, seq, d)
        expected = _reference_attention(x @ w_q, keys, values, torch.ones(seq, seq, dtype=torch.bool).tril())
        what = f"for batch {batch}, d_model {d_model}, d {d}"
        cache = None
        for t in range(seq):
            got = call(decode_step, x[:, t:t + 1], w_q, w_k, w_v, cache, hint=HINT_4)
            if not (isinstance(got, tuple) and len(got) == 2 and isinstance(got[1], tuple) and len(got[1]) == 2):
                raise Mistake(f"{what} your code returned {type(got).__name__}; return (out, (keys, values))",
                              HINT_4)
            out, cache = got
            want = (batch, t + 1, d)
            if not all(isinstance(c, torch.Tensor) for c in cache) or tuple(cache[0].shape) != want \
                    or tuple(cache[1].shape) != want:
                shapes = [tuple(c.shape) if isinstance(c, torch.Tensor) else type(c).__name__ for c in cache]
                raise Mistake(f"{what} after position {t} the cache should hold keys and values of shape {want}, "
                              f"yours are {shapes}: append the new position's key and value to the cache",
                              HINT_4)
            if not torch.allclose(cache[0], keys[:, :t + 1], atol=1e-5) and \
                    torch.allclose(cache[0].flip(1), keys[:, :t + 1], atol=1e-5):
                raise Mistake(f"{what} your cache holds the keys newest first; append the new one at the end "
                              "(dim 1), so that position j stays at index j", HINT_4)
            expect_tensor(cache[0], keys[:, :t + 1], f"{what}: the cached keys after position {t}", hint=HINT_4)
            expect_tensor(cache[1], values[:, :t + 1], f"{what}: the cached values after position {t}",
                          hint=HINT_4)
            if isinstance(out, torch.Tensor) and out.shape == (batch, 1, d) and t > 0 and \
                    not torch.allclose(out, expected[:, t:t + 1], atol=1e-5, rtol=1e-4):
                q = x[:, t:t + 1] @ w_q
                if torch.allclose(out, _reference_attention(q, keys[:, :t], values[:, :t],
                                                            torch.ones(1, t, dtype=torch.bool)), atol=1e-5):
                    raise Mistake(f"{what} at position {t} your query read only the earlier positions: the new "
                                  "position reads its own key and value too, so append first, then attend",
                                  HINT_4)
                if torch.allclose(out, _reference_attention(q, keys[:, :t + 1], values[:, :t + 1],
                                                            torch.ones(1, t + 1, dtype=torch.bool), scale=False),
                                  atol=1e-5):
                    raise Mistake(f"{what} at position {t} your scores are not divided by sqrt(d)", HINT_4)
            expect_tensor(out, expected[:, t:t + 1], f"{what}: the output at position {t}", hint=HINT_4)
        tested.append(f"{seq} steps, batch {batch}")
    return f"step by step equal to causal attention over the whole sequence ({', '.join(tested)}), the cache growing"


SOLUTION_4 = '''
def decode_step(x, w_q, w_k, w_v, cache):
    """One new position x (batch, 1, d_model) with cache (keys, values) or None -> (out (batch, 1, d), new cache)."""
    q, k, v = x @ w_q, x @ w_k, x @ w_v                        # (batch, 1, d) each
    if cache is not None:
        k, v = torch.cat([cache[0], k], dim=1), torch.cat([cache[1], v], dim=1)  # (batch, seen + 1, d)
    weights = (q @ k.transpose(1, 2) / math.sqrt(q.shape[-1])).softmax(dim=-1)  # (batch, 1, seen + 1): no mask
    return weights @ v, (k, v)
'''

EX_4 = Exercise(
    id="12d.4", lesson=LESSON, title="One decoding step with a KV cache (stretch)", name="decode_step",
    hint=HINT_4,
    more_hints=["at the first step there is no cache: the keys and values are the new position's own; after "
                "that, torch.cat the cached ones and the new one along dim 1",
                "the one new query reads every key so far, its own included: no mask; divide the scores by "
                "sqrt(d) before the softmax"],
    statement="""
Write `decode_step(x, w_q, w_k, w_v, cache)`: one step of single-head causal self-attention at
generation time.

`x` is the newest position only; `cache` holds the keys and values of all earlier positions (or
is `None` at the first step). Compute the new position's query, key and value (`q = x @ w_q`, and
so on, no bias), let the query read every position so far, itself included, and return the
output with the cache grown by one position. No mask is needed: there is no later position to
hide.

- **In:** `x`, float32 (batch, 1, d_model); `w_q`, `w_k`, `w_v`, float32 (d_model, d); `cache`,
  `None` or a tuple `(keys, values)`, each (batch, seen, d).
- **Out:** a tuple `(out, (keys, values))`: `out` (batch, 1, d); keys and values (batch, seen + 1,
  d), position `j` at index `j`; no input may change.
- **Use:** tensor operations, `torch.cat` to grow the cache (not in-place writes); `math` is
  imported; `F.scaled_dot_product_attention` is allowed.
- **Correct means:** fed a random sequence one position at a time from `cache=None`, every output
  equals that position's row of causal attention over the whole sequence within 1e-5, and the
  cache equals the keys and values of the positions so far, for a batch of several and of one.
- **Reread:** section 7, *Generation with a KV cache*.
""",
    template=template_of(SOLUTION_4),
    solution=SOLUTION_4,
    alternatives=['''
def decode_step(x, w_q, w_k, w_v, cache):
    keys, values = (x @ w_k, x @ w_v) if cache is None else (
        torch.cat([cache[0], x @ w_k], dim=1), torch.cat([cache[1], x @ w_v], dim=1))
    out = F.scaled_dot_product_attention(x @ w_q, keys, values)  # one query, every key: nothing to mask
    return out, (keys, values)
'''],
    wrong_answers=[
        ('''
def decode_step(x, w_q, w_k, w_v, cache):
    q, k, v = x @ w_q, x @ w_k, x @ w_v
    if cache is None:
        keys, values = k, v
    else:
        keys, values = cache
    weights = (q @ keys.transpose(1, 2) / math.sqrt(q.shape[-1])).softmax(dim=-1)
    new = (k, v) if cache is None else (torch.cat([cache[0], k], 1), torch.cat([cache[1], v], 1))
    return weights @ values, new
''', "read only the earlier positions"),
        ('''
def decode_step(x, w_q, w_k, w_v, cache):
    q, k, v = x @ w_q, x @ w_k, x @ w_v
    keys = k if cache is None else torch.cat([cache[0], k], dim=1)
    values = v if cache is None else torch.cat([cache[1], v], dim=1)
    weights = (q @ keys.transpose(1, 2) / math.sqrt(q.shape[-1])).softmax(dim=-1)
    return weights @ values, (k, v)
''', "append the new position's key and value"),
        (variant(SOLUTION_4, ('torch.cat([cache[0], k], dim=1), torch.cat([cache[1], v], dim=1)',
                                  'torch.cat([k, cache[0]], dim=1), torch.cat([v, cache[1]], dim=1)')),
         "newest first"),
        (variant(SOLUTION_4, (' / math.sqrt(q.shape[-1])', '')), "not divided by sqrt(d)"),
    ],
    checker=check_decode_step,
)

# ---------------------------------------------------------------- 12d.5 challenge: a better GPT in 2,000 steps

HINT_5 = "section 6 (A small GPT on *Anna Karenina*): the model, its training step and the learning rate"


def check_train_my_model(train_my_model, target: float, context: int, val_chars: int | None) -> str:
    return trained_char_model(
        train_my_model, target, context=context, val_chars=val_chars, hint=HINT_5,
        levers="a learning rate that warms up and then falls to 0 over the run (OneCycleLR or a cosine), every "
               "step of the budget, and gradient clipping; a wider model learns more per step but costs more time")


SOLUTION_5 = '''
def train_my_model():
    """Build a GPT, train it for at most challenge_steps steps on train_ids, and return it."""
    model = GPT(len(vocab), context_length, d_model, num_heads, num_layers, dropout).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    # the rate rises to lr over the first 10 % of the steps, then falls along a cosine to almost 0
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=challenge_steps,
                                                    pct_start=0.1)
    windows = torch.Generator().manual_seed(seed)
    for _ in range(challenge_steps):
        inputs, targets = transformer.random_windows(train_ids, batch_size, context_length, windows)
        logits, _ = model(inputs.to(device))                          # (batch, context_length, vocabulary)
        loss = F.cross_entropy(logits.flatten(0, 1), targets.to(device).flatten())
        optimizer.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), clip_norm)
        optimizer.step()
        scheduler.step()
    return model
'''

EX_5 = Exercise(
    id="12d.5", lesson=LESSON, title="Challenge: a better GPT in 2,000 steps", name="train_my_model",
    hint=HINT_5,
    more_hints=["a constant learning rate wastes the last steps: large steps at the end keep the loss from "
                "settling; let the rate fall to 0 by the last step",
                "torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=challenge_steps, "
                "pct_start=0.1), stepped after every optimizer step, with the lesson's GPT and its settings, "
                "reaches the target"],
    statement="""
Section 6 trained the GPT for a fixed time, `train_seconds` (how many steps that is depends on the machine).
Write `train_my_model()`: it builds a GPT, trains it on `train_ids` for at most `challenge_steps` steps, and
returns it. Your choices: the learning rate and how it changes over the run, the model's size, clipping.

- **In:** nothing; use the lesson's `GPT` class, `train_ids`, `vocab`, `device`, its settings
  (`context_length`, `batch_size`, ...) and `transformer.random_windows`; at most `challenge_steps` steps
  (the check says how long training took).
- **Out:** the trained model: character ids `(batch, context_length)` -> logits `(batch, context_length,
  vocabulary)` (or a tuple that starts with them, as the lesson's GPT returns).
- **Use:** anything in PyTorch; never the validation text.
- **Correct means:** on the book's last 10 %, which it never trained on (the first `val_chars` characters
  when that is set), read in windows of `context_length` that overlap by half, a mean loss of at most
  `challenge_target` nats per character (1.55).
- **Reread:** section 6, *A small GPT on* Anna Karenina.
""",
    template=template_of(SOLUTION_5),
    solution=SOLUTION_5,
    wrong_answers=char_wrong_answers(),
    checker=check_train_my_model,
    challenge=True,
    settings={"target": "challenge_target", "context": "context_length", "val_chars": "val_chars"},
    rule_settings={"target": 1.55, "context": 64, "val_chars": 20000},
)

EXERCISES = [EX_1, EX_2, EX_3, EX_4, EX_5]
