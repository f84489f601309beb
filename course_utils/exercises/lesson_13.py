"""Exercises of lesson 13: top-k classes from logits, preprocessing as tensor code, export with a dynamic batch."""
from __future__ import annotations

import torch
from torch import nn

from course_utils.exercises.framework import (
    Exercise,
    Mistake,
    call,
    expect_tensor,
    generator,
    randint,
    template_of,
    variant,
)

LESSON = "13_inference_pipeline"
HINT_TOP_K = "section 4 (New photos): softmax, then the k most probable classes, as predict.top_k does"
HINT_PREPROCESS = "section 2 (One preprocessing): the dtype, the centre crop, then normalise"
HINT_EXPORT = "section 5 (torch.export: one .pt2 file): torch.export.export with dynamic_shapes"


# ---------------------------------------------------------------- 13.1 top-k classes

def check_top_k_classes(top_k_classes) -> str:
    gen = generator("13.1")
    tested = []
    for num_classes in (randint(gen, 8, 30), 3):
        class_names = [f"class_{i}" for i in torch.randperm(num_classes, generator=gen).tolist()]
        logits = torch.randn(num_classes, generator=gen) * 3
        k = randint(gen, 2, num_classes - 1)
        probs = logits.softmax(dim=0)
        values, indices = probs.topk(k)
        expected = [(class_names[i], p) for p, i in zip(values.tolist(), indices.tolist())]
        got = call(top_k_classes, logits, class_names, k, hint=HINT_TOP_K)
        what = f"for {num_classes} classes and k = {k}"
        if not isinstance(got, list):
            raise Mistake(f"{what} your code returned {type(got).__name__}; return a list of (name, probability) "
                          "pairs", HINT_TOP_K)
        if len(got) != k:
            raise Mistake(f"{what} your list has {len(got)} pairs, expected {k}", HINT_TOP_K)
        for rank, (pair, (name, p)) in enumerate(zip(got, expected)):
            if not (isinstance(pair, tuple) and len(pair) == 2):
                raise Mistake(f"{what} item {rank} is {pair!r}; each item is a pair (name, probability)", HINT_TOP_K)
            got_name, got_p = pair
            if isinstance(got_p, torch.Tensor):
                raise Mistake(f"{what} the probabilities are tensors; turn them into Python floats (.item() or "
                              ".tolist())", HINT_TOP_K)
            if not isinstance(got_p, float):
                raise Mistake(f"{what} probability {rank} is {type(got_p).__name__}; expected a float", HINT_TOP_K)
            if rank == 0 and got_name == expected[-1][0] and k > 1:
                raise Mistake(f"{what} your list starts with the least probable of the k; the most probable "
                              "comes first", HINT_TOP_K)
            if got_name != name:
                raise Mistake(f"{what} item {rank} is {got_name!r}, expected {name!r}", HINT_TOP_K)
            if abs(got_p - logits[class_names.index(name)].item()) < 1e-6 and abs(got_p - p) > 1e-6:
                raise Mistake(f"{what} your numbers are the logits; the probabilities are their softmax",
                              HINT_TOP_K)
            if abs(got_p - p) > 1e-6:
                raise Mistake(f"{what} the probability of {name!r} is {got_p:.6f}, expected {p:.6f}", HINT_TOP_K)
        tested.append(f"top {k} of {num_classes}")
    return f"names and softmax probabilities, most probable first: {', '.join(tested)}"


SOLUTION_13_1 = '''
def top_k_classes(logits, class_names, k):
    """[(name, probability), ...]: the k most probable classes of one logit vector, most probable first."""
    probs = logits.softmax(dim=0)                      # (num_classes,), sums to 1
    values, indices = probs.topk(k)                    # sorted, largest first
    return [(class_names[i], p) for p, i in zip(values.tolist(), indices.tolist())]
'''

TOP_K = Exercise(
    id="13.1", lesson=LESSON, title="The k most probable classes, from logits", name="top_k_classes",
    hint=HINT_TOP_K,
    statement="""
Write `top_k_classes(logits, class_names, k)`: what a classifier tells its user, the `k` most
probable classes with their probabilities, most probable first.

- in: `logits`, a 1-d tensor (num_classes,) straight from the model; `class_names`, a list of
  num_classes strings; `k`, an int between 1 and num_classes
- out: a list of `k` pairs `(class name, probability)`, the probability a Python `float`;
  `logits` must not change

Correct means: the right names in the right order, and probabilities (the softmax of the logits)
within 1e-6, for random logits and class orders.

See section 4, *New photos*.
""",
    template=template_of(SOLUTION_13_1),
    solution=SOLUTION_13_1,
    alternatives=[variant(SOLUTION_13_1,
            ('values, indices = probs.topk(k)', 'order = probs.argsort(descending=True)[:k]'),
            ('i], p) for p, i in zip(values.tolist(), indices.tolist())',
             'int(i)], float(probs[i])) for i in order'),
        )],
    wrong_answers=[
        ('''
def top_k_classes(logits, class_names, k):
    values, indices = logits.topk(k)
    return [(class_names[i], v) for v, i in zip(values.tolist(), indices.tolist())]
''', "your numbers are the logits"),
        ('''
def top_k_classes(logits, class_names, k):
    values, indices = logits.softmax(0).topk(k)
    return [(class_names[i], v) for v, i in zip(values, indices.tolist())]
''', "turn them into Python floats"),
        (variant(SOLUTION_13_1,
            ('values, indices = probs.topk(k)', 'order = probs.argsort()[-k:]'),
            ('p) for p, i in zip(values.tolist(), indices.tolist()', 'probs[i].item()) for i in order.tolist('),
        ), "least probable"),
    ],
    checker=check_top_k_classes,
)


# ---------------------------------------------------------------- 13.2 preprocessing

def _reference_preprocess(images: torch.Tensor, size: int, mean, std, top=None, left=None,
                          scale: float = 255) -> torch.Tensor:
    """The exact answer, or with another crop offset or scale (to recognise a mistake)."""
    x = images.to(torch.float32) / scale
    h, w = x.shape[-2:]
    top = (h - size) // 2 if top is None else top
    left = (w - size) // 2 if left is None else left
    x = x[..., top:top + size, left:left + size]
    return (x - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)


def check_preprocess(preprocess) -> str:
    gen = generator("13.2")
    tested = []
    for batch in (randint(gen, 2, 4), 1):
        size = randint(gen, 5, 12)
        height, width = size + randint(gen, 1, 9), size + randint(gen, 2, 9)   # odd margins appear
        if (height - size) % 2 == 0:
            height += 1                                                     # at least one odd margin
        images = torch.randint(0, 256, (batch, 3, height, width), dtype=torch.uint8, generator=gen)
        mean = [round(float(v), 3) for v in torch.rand(3, generator=gen) * 0.4 + 0.3]
        std = [round(float(v), 3) for v in torch.rand(3, generator=gen) * 0.2 + 0.2]
        expected = _reference_preprocess(images, size, mean, std)
        got = call(preprocess, images, size, mean, std, hint=HINT_PREPROCESS)
        what = f"for {batch} image(s) of {height}x{width}, size {size}"
        if isinstance(got, torch.Tensor) and got.shape == expected.shape and got.is_floating_point():
            got32 = got.detach().float()
            if torch.allclose(got32, _reference_preprocess(images, size, mean, std, scale=1), rtol=1e-5, atol=1e-3):
                raise Mistake(f"{what} your values are 255 times too large: uint8 0-255 must first become "
                              "float 0-1 (divide by 255)", HINT_PREPROCESS)
            for d_top in (-1, 0, 1):
                for d_left in (-1, 0, 1):
                    top, left = (height - size) // 2 + d_top, (width - size) // 2 + d_left
                    if (d_top or d_left) and 0 <= top <= height - size and 0 <= left <= width - size and \
                            torch.allclose(got32, _reference_preprocess(images, size, mean, std, top, left),
                                           atol=1e-5):
                        raise Mistake(f"{what} your crop starts at row {top}, column {left}; the centre crop "
                                      f"starts at row (H - size) // 2 = {(height - size) // 2}, column "
                                      f"(W - size) // 2 = {(width - size) // 2}", HINT_PREPROCESS)
            unnormalised = _reference_preprocess(images, size, [0, 0, 0], [1, 1, 1])
            if torch.allclose(got32, unnormalised, atol=1e-5):
                raise Mistake(f"{what} your values are in 0-1: normalise with (x - mean) / std per channel",
                              HINT_PREPROCESS)
        expect_tensor(got, expected, f"the preprocessed batch {what}", atol=1e-5, hint=HINT_PREPROCESS)
        tested.append(f"{batch}x3x{height}x{width} -> {size}")
    return f"dtype, centre crop and normalisation equal the reference for {', '.join(tested)}"


SOLUTION_13_2 = '''
def preprocess(images, size, mean, std):
    """uint8 (N, 3, H, W) -> float32 (N, 3, size, size): 0-1, centre crop, normalised per channel."""
    x = images.to(torch.float32) / 255                     # 0-255 -> 0-1
    h, w = x.shape[-2:]
    top, left = (h - size) // 2, (w - size) // 2
    x = x[:, :, top:top + size, left:left + size]          # (N, 3, size, size)
    mean = torch.tensor(mean).view(1, 3, 1, 1)             # one value per channel, broadcast over pixels
    std = torch.tensor(std).view(1, 3, 1, 1)
    return (x - mean) / std
'''

PREPROCESS = Exercise(
    id="13.2", lesson=LESSON, title="Preprocessing as tensor code", name="preprocess", hint=HINT_PREPROCESS,
    statement="""
Write `preprocess(images, size, mean, std)`, the steps that must travel with a deployed model, as
plain tensor code: turn `uint8` values 0-255 into `float32` values 0-1; cut the centre `size × size`
square out of each image, starting at row `(H - size) // 2` and column `(W - size) // 2`; then
normalise every channel `c` as `(x - mean[c]) / std[c]`.

- in: `images`, uint8 (N, 3, H, W) with H and W at least `size`; `size`, an int; `mean` and `std`,
  lists of 3 floats
- out: float32 (N, 3, size, size); `images` must not change
- allowed: tensor operations only (no torchvision transforms: their crop rounds the offset
  differently, and an exported model must not depend on them)

Correct means: within 1e-5 of the reference for random non-square images with odd margins, a
batch of 1 included.

See section 2, *One preprocessing*.
""",
    template=template_of(SOLUTION_13_2),
    solution=SOLUTION_13_2,
    alternatives=['''
def preprocess(images, size, mean, std):
    h, w = images.shape[2], images.shape[3]
    crop = images.narrow(2, (h - size) // 2, size).narrow(3, (w - size) // 2, size).float().div(255)
    channels = [(crop[:, c] - mean[c]) / std[c] for c in range(3)]
    return torch.stack(channels, dim=1)
'''],
    wrong_answers=[
        (variant(SOLUTION_13_2, ('images.to(torch.float32) / 255', 'images.float()')), "255 times too large"),
        (variant(SOLUTION_13_2,
            ('(h - size) // 2, (w - size) // 2', 'round((h - size) / 2 + 0.01), round((w - size) / 2 + 0.01)'),
        ), "your crop starts at row"),
        ('''
def preprocess(images, size, mean, std):
    x = images.float() / 255
    h, w = x.shape[-2:]
    return x[:, :, (h - size) // 2:(h - size) // 2 + size, (w - size) // 2:(w - size) // 2 + size]
''', "normalise with"),
        ('''
def preprocess(images, size, mean, std):
    x = images.float() / 255
    h, w = x.shape[-2:]
    x = x[:, :, (h - size) // 2:(h - size) // 2 + size, (w - size) // 2:(w - size) // 2 + size]
    return (x - torch.tensor(mean)) / torch.tensor(std)
''', "RuntimeError"),
    ],
    checker=check_preprocess,
)


# ---------------------------------------------------------------- 13.3 export with a dynamic batch

class _Classifier(nn.Module):
    """A small model to export: flatten, two linear layers."""

    def __init__(self, features: int, hidden: int, num_classes: int):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(features, hidden), nn.ReLU(), nn.Linear(hidden, num_classes))

    def forward(self, images):
        return self.net(images.flatten(1))   # (batch, C, H, W) -> (batch, num_classes)


def check_export_dynamic_batch(export_dynamic_batch) -> str:
    gen = generator("13.3")
    channels, side = randint(gen, 1, 3), randint(gen, 3, 6)
    model = _Classifier(channels * side * side, randint(gen, 4, 12), randint(gen, 2, 5)).eval()
    example = torch.randn(randint(gen, 2, 4), channels, side, side, generator=gen)
    exported = call(export_dynamic_batch, model, example, hint=HINT_EXPORT)
    if not isinstance(exported, torch.export.ExportedProgram):
        old = " (TorchScript is deprecated; use torch.export.export)" if isinstance(exported, torch.jit.ScriptModule) \
            else ""
        raise Mistake(f"your function returned {type(exported).__name__}, expected the ExportedProgram that "
                      f"torch.export.export returns{old}", HINT_EXPORT)
    program = exported.module()
    sizes = sorted({1, example.shape[0] + randint(gen, 1, 5), 2 * example.shape[0] + 3})
    for batch in sizes:
        x = torch.randn(batch, channels, side, side, generator=gen)
        try:
            with torch.no_grad():
                got = program(x)
        except Exception as err:  # noqa: BLE001 - torch raises several kinds for a violated guard
            raise Mistake(f"the exported program refuses a batch of {batch} ({type(err).__name__}: "
                          f"{str(err).splitlines()[0][:120]}): the example's batch size {example.shape[0]} was "
                          "fixed; declare dimension 0 dynamic, dynamic_shapes={'images': {0: "
                          "torch.export.Dim('batch')}}", HINT_EXPORT) from None
        with torch.no_grad():
            expected = model(x)
        expect_tensor(got, expected, f"the exported program's output for a batch of {batch}", hint=HINT_EXPORT)
    return f"an ExportedProgram that matches the eager model for batches of {', '.join(map(str, sizes))}"


SOLUTION_13_3 = '''
def export_dynamic_batch(model, example):
    """torch.export.export(model, ...) from the example batch, with the batch dimension (0) dynamic."""
    batch = torch.export.Dim("batch")                     # any size, decided at run time
    return torch.export.export(model, (example,), dynamic_shapes={"images": {0: batch}})
'''

EXPORT = Exercise(
    id="13.3", lesson=LESSON, title="Export with a dynamic batch dimension", name="export_dynamic_batch",
    hint=HINT_EXPORT,
    statement="""
Write `export_dynamic_batch(model, example)`: export `model` with `torch.export.export`, from the
example batch `example`, so that the exported program accepts **any** batch size, not only the
example's. Whatever is not declared dynamic is fixed by the example; declare dimension 0 of the
model's input (its `forward` argument is called `images`) dynamic with `torch.export.Dim`.

- in: `model`, an `nn.Module` in eval mode whose `forward(images)` takes (batch, C, H, W); `example`,
  a batch of that shape
- out: the `torch.export.ExportedProgram`
- not allowed: TorchScript (`torch.jit`), deprecated

Correct means: `exported.module()` runs on batches of 1 and of sizes other than the example's and
gives the eager model's logits within 1e-5.

See section 5, *`torch.export`: one `.pt2` file*.
""",
    template=template_of(SOLUTION_13_3),
    solution=SOLUTION_13_3,
    alternatives=['''
def export_dynamic_batch(model, example):
    # dynamic_shapes may also follow the positional arguments: a tuple with one entry per argument
    return torch.export.export(model, (example,), dynamic_shapes=({0: torch.export.Dim.AUTO},))
'''],
    wrong_answers=[
        ('''
def export_dynamic_batch(model, example):
    return torch.export.export(model, (example,))
''', "declare dimension 0 dynamic"),
        ('''
def export_dynamic_batch(model, example):
    return torch.export.export(model, (example,)).module()
''', "expected the ExportedProgram"),
    ],
    checker=check_export_dynamic_batch,
)

EXERCISES = [TOP_K, PREPROCESS, EXPORT]
