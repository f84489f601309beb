"""Exercises for lesson 01 (tensors): scaling rows with keepdim, pairwise distances, a batched matrix product."""

from __future__ import annotations

import torch

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

LESSON = "01_tensors"


# ---- 01.1 Each row scaled to [0, 1]

HINT_1 = "section 5 (Broadcasting): a row's max has shape (rows,) unless keepdim=True keeps it as (rows, 1)"


def _scaled(x: torch.Tensor, dim: int) -> torch.Tensor:
    """x with each slice along `dim` mapped to [0, 1] (dim=1: rows, dim=0: columns)."""
    low, high = x.min(dim=dim, keepdim=True).values, x.max(dim=dim, keepdim=True).values
    return (x - low) / (high - low)


def check_scale_rows(scale_rows) -> str:
    gen = generator("01.1")
    rows = randint(gen, 3, 6)
    # square first (the silent broadcasting trap), then a wide one, then a single row
    shapes = [(rows, rows), (rows, randint(gen, 7, 10)), (1, randint(gen, 2, 5))]
    for shape in shapes:
        x = torch.randn(shape, generator=gen) * 3  # rows of distinct values, negative ones included
        got = call(scale_rows, x, hint=HINT_1)
        what = f"scale_rows(x) for x of shape {shape}"
        if isinstance(got, torch.Tensor) and got.shape == x.shape and not torch.allclose(got, _scaled(x, 1)):
            if shape[0] == shape[1]:
                low, high = x.min(dim=1).values, x.max(dim=1).values  # (rows,): lines up with the columns
                if torch.allclose(got, (x - low) / (high - low), atol=1e-5):
                    raise Mistake(f"{what}: column j was scaled with the min and max of row j: `x.min(dim=1)` "
                                  "has shape (rows,), which broadcasts along the columns; keep the dim", HINT_1)
            if shape[0] > 1 and torch.allclose(got, _scaled(x, 0), atol=1e-5):
                raise Mistake(f"{what}: you scaled each column (min and max over dim=0); a row's min and max "
                              "run along dim=1", HINT_1)
        expect_tensor(got, _scaled(x, 1), what, hint=HINT_1)
    return f"inputs of shapes {', '.join(map(str, shapes))}: each row spans [0, 1] and the input is unchanged"


SOLUTION_1 = '''
def scale_rows(x):
    """x: (rows, cols) -> (rows, cols), each row mapped linearly onto [0, 1]."""
    low = x.min(dim=1, keepdim=True).values    # (rows, 1)
    high = x.max(dim=1, keepdim=True).values   # (rows, 1)
    return (x - low) / (high - low)            # (rows, cols) op (rows, 1)
'''

EX_1 = Exercise(
    id="01.1", lesson=LESSON, title="Each row scaled to [0, 1]", name="scale_rows",
    hint=HINT_1,
    more_hints=["subtract each row's smallest value, then divide by (largest - smallest) of the same row; "
                "both must have shape (rows, 1) so that they pair with the rows, not the columns",
                "`x.min(dim=1, keepdim=True)` returns values and indices: take `.values`"],
    statement="""
Write `scale_rows(x)` that maps every row of a 2-d tensor linearly onto [0, 1]: the smallest value of
each row becomes 0, the largest 1, and the others land in between,
$(x_{ij} - \\min_j x_{ij}) / (\\max_j x_{ij} - \\min_j x_{ij})$.

- **In:** `x`, a float32 tensor of shape `(rows, cols)`; every row holds at least two different values.
- **Out:** a tensor of the same shape, each row scaled on its own; `x` itself must not change.
- **Use:** tensor operations and broadcasting (`min`/`max` along a dim); no Python loop is needed.
- **Correct means:** within 1e-5 of the exact values for a square input, a wide one and a single row.
- **Reread:** section 5, *Broadcasting*.
""",
    template=template_of(SOLUTION_1),
    solution=SOLUTION_1,
    checker=check_scale_rows,
    alternatives=['''
def scale_rows(x):
    shifted = x - x.min(1).values[:, None]
    return shifted / shifted.max(1).values.unsqueeze(1)
'''],
    wrong_answers=[
        (variant(SOLUTION_1, ("low = x.min(dim=1, keepdim=True).values", "low = x.min(dim=1).values"),
                 ("high = x.max(dim=1, keepdim=True).values", "high = x.max(dim=1).values")),
         "column j was scaled with the min and max of row j"),
        (variant(SOLUTION_1, ("low = x.min(dim=1,", "low = x.min(dim=0,"),
                 ("high = x.max(dim=1,", "high = x.max(dim=0,")),
         "you scaled each column"),
        ("def scale_rows(x):\n    x -= x.min(dim=1, keepdim=True).values\n"
         "    x /= x.max(dim=1, keepdim=True).values\n    return x\n", "changed its input"),
        ("def scale_rows(x):\n    return (x - x.min()) / (x.max() - x.min())\n", "is wrong at index"),
        (variant(SOLUTION_1, ("return (x - low)", "(x - low)")), "did you forget `return`?"),
    ],
)


# ---- 01.2 Pairwise distances by broadcasting

HINT_2 = "section 5 (Broadcasting): a (n, 1, d) and a (1, m, d) tensor broadcast to (n, m, d)"


def check_pairwise_distances(pairwise_distances) -> str:
    gen = generator("01.2")
    tested = []
    for _ in range(3):
        n, m, d = distinct_sizes(gen, 3, 2, 7)  # all different, so a mixed-up dimension shows in the shape
        a, b = torch.randn(n, d, generator=gen), torch.randn(m, d, generator=gen)
        expected = torch.cdist(a.double(), b.double()).float()  # (n, m)
        with forbid((torch, "cdist"), what="torch.cdist", hint=HINT_2):
            try:
                got = call(pairwise_distances, a, b, hint=HINT_2)
            except RuntimeError as err:
                if "must match the size" not in str(err):
                    raise
                raise Mistake(f"for a {tuple(a.shape)} and b {tuple(b.shape)} your code raised RuntimeError: "
                              f"{str(err).strip()}: a (n, d) and an (m, d) tensor do not broadcast; give a a new "
                              "dimension of size 1 in the middle and b one in front", HINT_2) from None
        if isinstance(got, torch.Tensor) and got.shape == expected.shape and \
                torch.allclose(got, expected ** 2, atol=1e-4, rtol=1e-4):
            raise Mistake("your values are the squared distances: take the square root at the end", HINT_2)
        expect_tensor(got, expected, f"pairwise_distances(a, b) for a {tuple(a.shape)}, b {tuple(b.shape)}",
                      atol=1e-4, hint=HINT_2)
        tested.append(f"({n}, {d}) vs ({m}, {d})")
    return f"compared with torch.cdist for {', '.join(tested)}"


SOLUTION_2 = '''
def pairwise_distances(a, b):
    """a: (n, d), b: (m, d) -> (n, m) Euclidean distances."""
    differences = a[:, None, :] - b[None, :, :]  # (n, 1, d) - (1, m, d) -> (n, m, d)
    return differences.pow(2).sum(dim=-1).sqrt()  # (n, m)
'''

EX_2 = Exercise(
    id="01.2", lesson=LESSON, title="Pairwise distances by broadcasting", name="pairwise_distances",
    hint=HINT_2,
    more_hints=["index with None to add the dimensions of size 1: the differences then have shape (n, m, d); "
                "square them, sum over the last dim, take the square root"],
    statement="""
Write `pairwise_distances(a, b)` that returns the Euclidean distance between every row of `a` and every
row of `b`: entry `[i, j]` is $\\sqrt{\\sum_k (a_{ik} - b_{jk})^2}$.

- **In:** `a`, a float32 tensor `(n, d)`; `b`, a float32 tensor `(m, d)`.
- **Out:** a float32 tensor `(n, m)`; neither input may change.
- **Use:** broadcasting and element-wise operations; not `torch.cdist` (the check refuses it).
- **Correct means:** within 1e-4 of `torch.cdist(a, b)` for three random sizes where `n`, `m` and `d` all differ.
- **Reread:** section 5, *Broadcasting* (and section 4 for adding dimensions of size 1).
""",
    template=template_of(SOLUTION_2),
    solution=SOLUTION_2,
    checker=check_pairwise_distances,
    alternatives=['''
def pairwise_distances(a, b):
    # |a - b|^2 = |a|^2 + |b|^2 - 2 a.b, clamped because rounding can make it slightly negative
    squared = (a ** 2).sum(1, keepdim=True) + (b ** 2).sum(1) - 2 * a @ b.T
    return squared.clamp(min=0).sqrt()
''', '''
def pairwise_distances(a, b):
    return torch.linalg.vector_norm(a.unsqueeze(1) - b.unsqueeze(0), dim=2)
'''],
    wrong_answers=[
        ("def pairwise_distances(a, b):\n    return ((a[:, None] - b[None]) ** 2).sum(-1)\n", "squared distances"),
        ("def pairwise_distances(a, b):\n    return torch.cdist(a, b)\n", "called torch.cdist"),
        ("def pairwise_distances(a, b):\n    return ((a[:, None] - b[None]) ** 2).sum(1).sqrt()\n", "has shape"),
        ("def pairwise_distances(a, b):\n    return (a - b).pow(2).sum(-1).sqrt()\n", "do not broadcast"),
    ],
)


# ---- 01.3 A batched matrix product from broadcasting

HINT_3 = ("section 6 (Matrix multiplication) and section 5: entry [i, j] of a product is the sum over k "
          "of a[i, k] * b[k, j]")
_MATMULS = ((torch, "bmm"), (torch, "matmul"), (torch, "mm"), (torch, "einsum"), (torch, "tensordot"),
            (torch.Tensor, "__matmul__"), (torch.Tensor, "__rmatmul__"), (torch.Tensor, "bmm"),
            (torch.Tensor, "matmul"), (torch.Tensor, "mm"))


def check_batched_matmul(batched_matmul) -> str:
    gen = generator("01.3")
    tested = []
    for batch in (randint(gen, 2, 5), 1):
        n, k, m = distinct_sizes(gen, 3, 2, 6)
        a, b = torch.randn(batch, n, k, generator=gen), torch.randn(batch, k, m, generator=gen)
        expected = torch.bmm(a, b)  # (batch, n, m)
        with forbid(*_MATMULS, what="a matrix product (@, matmul, bmm, mm, einsum or tensordot)", hint=HINT_3):
            try:
                got = call(batched_matmul, a, b, hint=HINT_3)
            except RuntimeError as err:
                if "must match the size" not in str(err):
                    raise
                raise Mistake(f"for a {tuple(a.shape)} and b {tuple(b.shape)} your code raised RuntimeError: "
                              f"{str(err).strip()}: the shapes do not broadcast; put n, k and m on separate "
                              "dimensions (size 1 where a tensor has none of them) before multiplying", HINT_3) \
                    from None
        expect_tensor(got, expected, f"batched_matmul for a {tuple(a.shape)}, b {tuple(b.shape)}", atol=1e-4,
                      hint=HINT_3)
        tested.append(f"{tuple(a.shape)} @ {tuple(b.shape)}")
    return f"matches torch.bmm for {' and '.join(tested)}, with no matrix product called"


SOLUTION_3 = '''
def batched_matmul(a, b):
    """a: (batch, n, k), b: (batch, k, m) -> (batch, n, m), with no matrix product."""
    products = a[:, :, :, None] * b[:, None, :, :]  # (batch, n, k, 1) * (batch, 1, k, m) -> (batch, n, k, m)
    return products.sum(dim=2)                      # sum over k
'''

EX_3 = Exercise(
    id="01.3", lesson=LESSON, title="A batched matrix product from broadcasting", name="batched_matmul",
    hint=HINT_3,
    more_hints=["make a (batch, n, k, 1) and a (batch, 1, k, m) tensor, multiply them element-wise "
                "into (batch, n, k, m), then sum over the k dimension"],
    statement="""
Write `batched_matmul(a, b)` that returns the matrix products `a[i] @ b[i]` of a batch, **without** any
matrix product function: broadcasting, element-wise `*` and a sum over one dimension do it.

- **In:** `a`, a float32 tensor `(batch, n, k)`; `b`, a float32 tensor `(batch, k, m)`.
- **Out:** a float32 tensor `(batch, n, m)`; neither input may change.
- **Use:** broadcasting, `*` and `sum`; not `@`, `torch.matmul`, `torch.bmm`, `torch.mm`, `torch.einsum`
  or `torch.tensordot` (the check refuses each of them).
- **Correct means:** within 1e-4 of `torch.bmm(a, b)` for random sizes where `n`, `k` and `m` differ,
  and for a batch of one.
- **Reread:** section 6, *Matrix multiplication*.
""",
    template=template_of(SOLUTION_3),
    solution=SOLUTION_3,
    checker=check_batched_matmul,
    alternatives=['''
def batched_matmul(a, b):
    # (batch, n, 1, k) * (batch, 1, m, k): b transposed so that k is last in both
    return (a.unsqueeze(2) * b.transpose(1, 2).unsqueeze(1)).sum(-1)
'''],
    wrong_answers=[
        ("def batched_matmul(a, b):\n    return torch.bmm(a, b)\n", "your code called a matrix product"),
        ("def batched_matmul(a, b):\n    return a @ b\n", "your code called a matrix product"),
        ("def batched_matmul(a, b):\n    return torch.einsum('bnk,bkm->bnm', a, b)\n",
         "your code called a matrix product"),
        ("def batched_matmul(a, b):\n    return (a[:, :, :, None] * b[:, None, :, :]).sum(dim=3)\n", "has shape"),
        ("def batched_matmul(a, b):\n    return (a * b).sum(dim=2)\n", "the shapes do not broadcast"),
    ],
)

EXERCISES = [EX_1, EX_2, EX_3]
