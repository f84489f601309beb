"""Exercises for lesson 01 (tensors): broadcasting with keepdim, pairwise distances, a batched matrix product."""

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


# ---------------------------------------------------------------- 01.1 rows that sum to one

HINT_1 = "section 5 (Broadcasting): `x.sum(dim=1)` has shape (rows,); keepdim=True keeps (rows, 1)"


def check_normalize_rows(normalize_rows) -> str:
    gen = generator("01.1")
    rows = randint(gen, 3, 6)
    shapes = [(rows, rows), (rows, randint(gen, 7, 10)), (1, randint(gen, 2, 5))]  # square first: the silent trap
    for shape in shapes:
        x = torch.rand(shape, generator=gen) + 0.1  # (rows, cols), positive so no row sums to 0
        got = call(normalize_rows, x, hint=HINT_1)
        expected = x / x.sum(dim=1, keepdim=True)
        if isinstance(got, torch.Tensor) and got.shape == expected.shape and shape[0] == shape[1] \
                and torch.allclose(got, x / x.sum(dim=1), atol=1e-6):
            raise Mistake("on a square input your code divided column j by the sum of row j: "
                          "`x.sum(dim=1)` lines up with the columns", HINT_1)
        expect_tensor(got, expected, f"normalize_rows(x) for x of shape {shape}", hint=HINT_1)
    return f"inputs of shapes {', '.join(map(str, shapes))}: every row sums to 1 and the input is unchanged"


SOLUTION_01_1 = '''
def normalize_rows(x):
    """x: (rows, cols) -> (rows, cols), each row divided by its sum."""
    return x / x.sum(dim=1, keepdim=True)  # (rows, cols) / (rows, 1)
'''

EX_1 = Exercise(
    id="01.1", lesson=LESSON, title="Rows that sum to one", name="normalize_rows",
    statement="""
Write `normalize_rows(x)` that divides every row of a 2-d tensor `x` of shape `(rows, cols)` (positive
values) by that row's sum, so that each row of the result sums to 1. The result has the same shape as
`x`; `x` itself must not change. Use tensor operations and broadcasting, no Python loop.

Correct means: equal to the exact answer within 1e-5 for inputs of random shapes, square ones included.
See section 5, *Broadcasting*.
""",
    template=template_of(SOLUTION_01_1),
    solution=SOLUTION_01_1,
    alternatives=[variant(SOLUTION_01_1, ('1, keepdim=True', '-1).unsqueeze(-1')), '''
def normalize_rows(x):
    total = torch.sum(x, 1)[:, None]
    return torch.div(x, total)
'''],
    wrong_answers=[
        (variant(SOLUTION_01_1, ('1, keepdim=True', '1')), "divided column j by the sum of row j"),
        ("def normalize_rows(x):\n    x /= x.sum(dim=1, keepdim=True)\n    return x\n", "changed its input"),
        (variant(SOLUTION_01_1, ('dim=1, keepdim=True', '')), "is wrong at index"),
        (variant(SOLUTION_01_1, ('return x', 'x')), "did you forget `return`?"),
    ],
    checker=check_normalize_rows, hint=HINT_1,
)


# ---------------------------------------------------------------- 01.2 pairwise distances

HINT_2 = "section 5 (Broadcasting): a (n, 1, d) and a (1, m, d) tensor broadcast to (n, m, d)"


def check_pairwise_distances(pairwise_distances) -> str:
    gen = generator("01.2")
    tested = []
    for _ in range(3):
        n, m, d = distinct_sizes(gen, 3, 2, 7)  # all different, so a mixed-up dimension shows in the shape
        a, b = torch.randn(n, d, generator=gen), torch.randn(m, d, generator=gen)
        expected = torch.cdist(a.double(), b.double()).float()  # (n, m)
        with forbid((torch, "cdist"), what="torch.cdist", hint=HINT_2):
            got = call(pairwise_distances, a, b, hint=HINT_2)
        if isinstance(got, torch.Tensor) and got.shape == expected.shape and \
                torch.allclose(got, expected ** 2, atol=1e-4, rtol=1e-4):
            raise Mistake("your values are the squared distances: take the square root at the end", HINT_2)
        expect_tensor(got, expected, f"pairwise_distances(a, b) for a {tuple(a.shape)}, b {tuple(b.shape)}",
                      atol=1e-4, hint=HINT_2)
        tested.append(f"({n}, {d}) vs ({m}, {d})")
    return f"compared with torch.cdist for {', '.join(tested)}"


SOLUTION_01_2 = '''
def pairwise_distances(a, b):
    """a: (n, d), b: (m, d) -> (n, m) Euclidean distances."""
    differences = a[:, None, :] - b[None, :, :]  # (n, 1, d) - (1, m, d) -> (n, m, d)
    return differences.pow(2).sum(dim=-1).sqrt()  # (n, m)
'''

EX_2 = Exercise(
    id="01.2", lesson=LESSON, title="Pairwise distances by broadcasting", name="pairwise_distances",
    statement="""
Write `pairwise_distances(a, b)` for `a` of shape `(n, d)` and `b` of shape `(m, d)` (float32) that returns
the `(n, m)` tensor whose entry `[i, j]` is the Euclidean distance between row `i` of `a` and row `j`
of `b`: $\\sqrt{\\sum_k (a_{ik} - b_{jk})^2}$. Do it by broadcasting, without a Python loop and without
`torch.cdist` (the checker compares with it). Neither input may change.

Correct means: within 1e-4 of `torch.cdist` for random `n`, `m` and `d`. See section 5, *Broadcasting*, and
section 4 for adding dimensions of size 1.
""",
    template=template_of(SOLUTION_01_2),
    solution=SOLUTION_01_2,
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
        ("def pairwise_distances(a, b):\n    return (a - b).pow(2).sum(-1).sqrt()\n", "your code raised RuntimeError"),
    ],
    checker=check_pairwise_distances, hint=HINT_2,
)


# ---------------------------------------------------------------- 01.3 a batched matrix product without matmul

HINT_3 = ("section 6 (Matrix multiplication) and section 5: entry [i, j] of a product is the sum over k "
          "of a[i, k] * b[k, j]; put i, k, j on separate dimensions and sum over k")
MATMULS = ((torch, "bmm"), (torch, "matmul"), (torch, "mm"), (torch, "einsum"), (torch, "tensordot"),
           (torch.Tensor, "__matmul__"), (torch.Tensor, "__rmatmul__"), (torch.Tensor, "bmm"),
           (torch.Tensor, "matmul"), (torch.Tensor, "mm"))


def check_batched_matmul(batched_matmul) -> str:
    gen = generator("01.3")
    tested = []
    for batch in (randint(gen, 2, 5), 1):
        n, k, m = distinct_sizes(gen, 3, 2, 6)
        a, b = torch.randn(batch, n, k, generator=gen), torch.randn(batch, k, m, generator=gen)
        expected = torch.bmm(a, b)  # (batch, n, m)
        with forbid(*MATMULS, what="a matrix product (@, matmul, bmm, mm or einsum)", hint=HINT_3):
            got = call(batched_matmul, a, b, hint=HINT_3)
        expect_tensor(got, expected, f"batched_matmul for a {tuple(a.shape)}, b {tuple(b.shape)}", atol=1e-4,
                      hint=HINT_3)
        tested.append(f"{tuple(a.shape)} @ {tuple(b.shape)}")
    return f"matches torch.bmm for {' and '.join(tested)}, with no matrix product called"


SOLUTION_01_3 = '''
def batched_matmul(a, b):
    """a: (batch, n, k), b: (batch, k, m) -> (batch, n, m), with no matrix product."""
    products = a[:, :, :, None] * b[:, None, :, :]  # (batch, n, k, 1) * (batch, 1, k, m) -> (batch, n, k, m)
    return products.sum(dim=2)                      # sum over k
'''

EX_3 = Exercise(
    id="01.3", lesson=LESSON, title="A batched matrix product from broadcasting", name="batched_matmul",
    statement="""
Write `batched_matmul(a, b)` for `a` of shape `(batch, n, k)` and `b` of shape `(batch, k, m)` that returns
the `(batch, n, m)` tensor of the products `a[i] @ b[i]`, **without** any matrix product: no `@`,
`torch.matmul`, `torch.bmm`, `torch.mm`, `torch.einsum` (the check catches each of them). Use broadcasting,
element-wise `*` and a sum over one dimension; no Python loop. The inputs must not change.

Correct means: within 1e-4 of `torch.bmm(a, b)` for random sizes, a batch of one included. See
section 6, *Matrix multiplication*.
""",
    template=template_of(SOLUTION_01_3),
    solution=SOLUTION_01_3,
    alternatives=['''
def batched_matmul(a, b):
    # (batch, n, 1, k) * (batch, 1, m, k): b transposed so that k is last in both
    return (a.unsqueeze(2) * b.transpose(1, 2).unsqueeze(1)).sum(-1)
'''],
    wrong_answers=[
        ("def batched_matmul(a, b):\n    return torch.bmm(a, b)\n", "your code called a matrix product"),
        ("def batched_matmul(a, b):\n    return a @ b\n", "your code called a matrix product"),
        ("def batched_matmul(a, b):\n    return (a[:, :, :, None] * b[:, None, :, :]).sum(dim=3)\n", "has shape"),
        ("def batched_matmul(a, b):\n    return (a * b).sum(dim=2)\n", "your code raised RuntimeError"),
    ],
    checker=check_batched_matmul, hint=HINT_3,
)

EXERCISES = [EX_1, EX_2, EX_3]
