"""Exercises of lesson 13: top-k classes from logits, preprocessing as tensor code, export with a dynamic batch."""
from __future__ import annotations

import torch
from torch import nn

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

LESSON = "13_inference_pipeline"


# ---------------------------------------------------------------- 13.1 top-k classes

HINT_1 = "section 3 (The pipeline, validated before export): softmax, then topk for the k most probable classes"

def check_top_k_classes(top_k_classes) -> str:
    gen = generator("13.1")
    tested = []
    n = randint(gen, 8, 30)
    for num_classes, k in ((n, randint(gen, 2, n - 1)), (3, 3), (randint(gen, 4, 12), 1)):  # k = all, k = 1 fixed
        class_names = [f"class_{i}" for i in torch.randperm(num_classes, generator=gen).tolist()]
        logits = torch.randn(num_classes, generator=gen) * 3
        probs = logits.softmax(dim=0)
        values, indices = probs.topk(k)
        expected = [(class_names[i], p) for p, i in zip(values.tolist(), indices.tolist())]
        what = f"for {num_classes} classes and k = {k}"
        try:
            got = call(top_k_classes, logits, class_names, k, hint=HINT_1)
        except (IndexError, RuntimeError) as err:
            message = str(err).splitlines()[0] if str(err) else ""
            if "out of range" not in message or isinstance(err, NotImplementedError):
                raise
            raise Mistake(f"{what} your code raised {type(err).__name__} ({message}): logits is 1-d, "
                          "(num_classes,), so its only dimension is dim=0 (or -1); softmax and topk there, not "
                          "along dim=1 as for a batch", HINT_1) from None
        if not isinstance(got, list):
            raise Mistake(f"{what} your code returned {type(got).__name__}; return a list of (name, probability) "
                          "pairs", HINT_1)
        if len(got) != k:
            raise Mistake(f"{what} your list has {len(got)} pairs, expected {k}", HINT_1)
        for rank, (pair, (name, p)) in enumerate(zip(got, expected)):
            if not (isinstance(pair, tuple) and len(pair) == 2):
                raise Mistake(f"{what} item {rank} is {describe(pair)}; each item is a tuple (name, probability)",
                              HINT_1)
            got_name, got_p = pair
            if isinstance(got_p, torch.Tensor):
                raise Mistake(f"{what} the probabilities are tensors; turn them into Python floats (.item() or "
                              ".tolist())", HINT_1)
            if not isinstance(got_p, float):
                raise Mistake(f"{what} probability {rank} is {type(got_p).__name__}; expected a float", HINT_1)
            if rank == 0 and got_name == expected[-1][0] and k > 1:
                raise Mistake(f"{what} your list starts with the least probable of the k; the most probable "
                              "comes first", HINT_1)
            if got_name != name:
                raise Mistake(f"{what} item {rank} is {got_name!r}, expected {name!r}", HINT_1)
            if abs(got_p - logits[class_names.index(name)].item()) < 1e-6 and abs(got_p - p) > 1e-6:
                raise Mistake(f"{what} your numbers are the logits; the probabilities are their softmax",
                              HINT_1)
            if abs(got_p - p) > 1e-6:
                raise Mistake(f"{what} the probability of {name!r} is {got_p:.6f}, expected {p:.6f}", HINT_1)
        tested.append(f"top {k} of {num_classes}")
    return f"names and softmax probabilities, most probable first: {', '.join(tested)}"


SOLUTION_1 = '''
def top_k_classes(logits, class_names, k):
    """[(name, probability), ...]: the k most probable classes of one logit vector, most probable first."""
    probs = logits.softmax(dim=0)                      # (num_classes,), sums to 1
    values, indices = probs.topk(k)                    # sorted, largest first
    return [(class_names[i], p) for p, i in zip(values.tolist(), indices.tolist())]
'''

EX_1 = Exercise(
    id="13.1", lesson=LESSON, title="The k most probable classes, from logits", name="top_k_classes",
    hint=HINT_1,
    more_hints=["softmax over the one dimension (dim=0) turns the logits into probabilities; .topk(k) gives the "
                "k largest and their indices, largest first",
                "turn values and indices into Python numbers with .tolist(), then pair class_names[i] with each "
                "probability in a list of tuples"],
    statement="""
Write `top_k_classes(logits, class_names, k)`: what a classifier tells its user, the `k` most
probable classes with their probabilities, most probable first.

- **In:** `logits`, a 1-d float32 tensor (num_classes,) straight from the model; `class_names`, a
  list of num_classes strings; `k`, an int between 1 and num_classes.
- **Out:** a Python `list` of `k` tuples `(class name, probability)`, the probability a Python
  `float` (not a tensor); `logits` must not change.
- **Use:** tensor operations (`softmax`, `topk` or sorting) and `.tolist()`/`.item()`.
- **Correct means:** the right names in the right order, and probabilities (the softmax of the
  logits) within 1e-6, for random logits and class orders, with `k` between, `k = num_classes`
  and `k = 1`.
- **Reread:** section 3, *The pipeline, validated before export*.
""",
    template=template_of(SOLUTION_1),
    solution=SOLUTION_1,
    alternatives=[variant(SOLUTION_1,
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
        (variant(SOLUTION_1,
            ('values, indices = probs.topk(k)', 'order = probs.argsort()[-k:]'),
            ('p) for p, i in zip(values.tolist(), indices.tolist()', 'probs[i].item()) for i in order.tolist('),
        ), "least probable"),
        (variant(SOLUTION_1, ('logits.softmax(dim=0)', 'logits.softmax(dim=1)')), "its only dimension is dim=0"),
        (variant(SOLUTION_1, ('[(class_names[i], p) for', '[[class_names[i], p] for')), "each item is a tuple"),
    ],
    checker=check_top_k_classes,
)


# ---------------------------------------------------------------- 13.2 preprocessing

HINT_2 = "section 2 (One preprocessing): the dtype, the centre crop, then normalise"

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
    from torchvision import transforms as tv_transforms  # only to refuse them: imported when checking
    from torchvision.transforms import functional as tv_functional
    from torchvision.transforms import v2 as tv2
    from torchvision.transforms.v2 import functional as tv2_functional

    refused = [(module, name) for module in (tv_functional, tv2_functional)
               for name in ("center_crop", "crop", "normalize", "convert_image_dtype", "to_dtype")
               if hasattr(module, name)]
    refused += [(tv2.Transform, "forward")] + [(getattr(tv_transforms, name), "forward") for name in
                                               ("CenterCrop", "Normalize", "ConvertImageDtype")]
    # fixed margins 3 and 7 on every seed: half of an odd margin is 1.5 or 3.5, where rounding half to even
    # (torchvision's centre crop) and the floor // 2 differ; the second case draws its margins, one odd
    for batch, margins in ((randint(gen, 2, 4), (3, 7)), (1, None)):
        size = randint(gen, 5, 12)
        if margins is None:
            margins = (2 * randint(gen, 0, 4) + 1, randint(gen, 2, 9))
        height, width = size + margins[0], size + margins[1]
        images = torch.randint(0, 256, (batch, 3, height, width), dtype=torch.uint8, generator=gen)
        mean = [round(float(v), 3) for v in torch.rand(3, generator=gen) * 0.4 + 0.3]
        std = [round(float(v), 3) for v in torch.rand(3, generator=gen) * 0.2 + 0.2]
        expected = _reference_preprocess(images, size, mean, std)
        try:
            with forbid(*refused, what="a torchvision transform", hint=HINT_2):
                got = call(preprocess, images, size, mean, std, hint=HINT_2)
        except RuntimeError as err:
            if isinstance(err, NotImplementedError) or "must match the size" not in str(err):
                raise
            raise Mistake(f"for {batch} image(s) of {height}x{width}, size {size} your code raised RuntimeError "
                          f"({str(err).splitlines()[0]}): mean and std as tensors of shape (3,) line up with the "
                          "last dimension, the width, not with the channels; view them as (1, 3, 1, 1)",
                          HINT_2) from None
        what = f"for {batch} image(s) of {height}x{width}, size {size}"
        if isinstance(got, torch.Tensor) and got.shape == expected.shape and got.is_floating_point():
            got32 = got.detach().float()
            if torch.allclose(got32, _reference_preprocess(images, size, mean, std, scale=1), rtol=1e-5, atol=1e-3):
                raise Mistake(f"{what} your values are 255 times too large: uint8 0-255 must first become "
                              "float 0-1 (divide by 255)", HINT_2)
            for d_top in (-1, 0, 1):
                for d_left in (-1, 0, 1):
                    top, left = (height - size) // 2 + d_top, (width - size) // 2 + d_left
                    if (d_top or d_left) and 0 <= top <= height - size and 0 <= left <= width - size and \
                            torch.allclose(got32, _reference_preprocess(images, size, mean, std, top, left),
                                           atol=1e-5):
                        raise Mistake(f"{what} your crop starts at row {top}, column {left}; the centre crop "
                                      f"starts at row (H - size) // 2 = {(height - size) // 2}, column "
                                      f"(W - size) // 2 = {(width - size) // 2}", HINT_2)
            unnormalised = _reference_preprocess(images, size, [0, 0, 0], [1, 1, 1])
            if torch.allclose(got32, unnormalised, atol=1e-5):
                raise Mistake(f"{what} your values are in 0-1: normalise with (x - mean) / std per channel",
                              HINT_2)
        expect_tensor(got, expected, f"the preprocessed batch {what}", atol=1e-5, hint=HINT_2)
        tested.append(f"{batch}x3x{height}x{width} -> {size}")
    return f"dtype, centre crop and normalisation equal the reference for {', '.join(tested)}"


SOLUTION_2 = '''
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

EX_2 = Exercise(
    id="13.2", lesson=LESSON, title="Preprocessing as tensor code", name="preprocess", hint=HINT_2,
    more_hints=["the crop is a slice of the last two dimensions: rows from (H - size) // 2, columns from "
                "(W - size) // 2, size of each",
                "mean and std become tensors of shape (1, 3, 1, 1), so that they broadcast over the batch and the "
                "pixels, one value per channel"],
    statement="""
Write `preprocess(images, size, mean, std)`, the steps that must travel with a deployed model, as
plain tensor code: turn `uint8` values 0-255 into `float32` values 0-1; cut the centre `size × size`
square out of each image, starting at row `(H - size) // 2` and column `(W - size) // 2`; then
normalise every channel `c` as `(x - mean[c]) / std[c]`.

- **In:** `images`, uint8 (N, 3, H, W) with H and W at least `size`; `size`, an int; `mean` and
  `std`, lists of 3 floats.
- **Out:** float32 (N, 3, size, size); `images` must not change.
- **Use:** tensor operations only; no torchvision transform or function (their centre crop rounds
  an odd margin's half differently, and an exported model must not depend on them).
- **Correct means:** within 1e-5 of the reference for non-square images with odd margins 3 and 7
  (where rounding and `// 2` differ) and random ones, a batch of 1 included.
- **Reread:** section 2, *One preprocessing*.
""",
    template=template_of(SOLUTION_2),
    solution=SOLUTION_2,
    alternatives=['''
def preprocess(images, size, mean, std):
    h, w = images.shape[2], images.shape[3]
    crop = images.narrow(2, (h - size) // 2, size).narrow(3, (w - size) // 2, size).float().div(255)
    channels = [(crop[:, c] - mean[c]) / std[c] for c in range(3)]
    return torch.stack(channels, dim=1)
'''],
    wrong_answers=[
        (variant(SOLUTION_2, ('images.to(torch.float32) / 255', 'images.float()')), "255 times too large"),
        (variant(SOLUTION_2,
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
''', "view them as (1, 3, 1, 1)"),
        ("from torchvision.transforms.v2 import functional as TF\n\n\ndef preprocess(images, size, mean, std):\n"
         "    x = TF.center_crop(images, [size, size]).float() / 255\n"
         "    return (x - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)\n",
         "your code called a torchvision transform"),
    ],
    checker=check_preprocess,
)


# ---------------------------------------------------------------- 13.3 export with a dynamic batch

HINT_3 = "section 5 (torch.export: one .pt2 file): torch.export.export with dynamic_shapes"

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
    with forbid((torch.jit, "trace"), (torch.jit, "script"), what="TorchScript (torch.jit)", hint=HINT_3,
                why="which is deprecated: use torch.export.export"):
        exported = call(export_dynamic_batch, model, example, hint=HINT_3)
    if not isinstance(exported, torch.export.ExportedProgram):
        raise Mistake(f"your function returned {type(exported).__name__}, expected the ExportedProgram that "
                      "torch.export.export returns", HINT_3)
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
                          "torch.export.Dim('batch')}}", HINT_3) from None
        with torch.no_grad():
            expected = model(x)
        expect_tensor(got, expected, f"the exported program's output for a batch of {batch}", hint=HINT_3)
    return f"an ExportedProgram that matches the eager model for batches of {', '.join(map(str, sizes))}"


SOLUTION_3 = '''
def export_dynamic_batch(model, example):
    """torch.export.export(model, ...) from the example batch, with the batch dimension (0) dynamic."""
    batch = torch.export.Dim("batch")                     # any size, decided at run time
    return torch.export.export(model, (example,), dynamic_shapes={"images": {0: batch}})
'''

EX_3 = Exercise(
    id="13.3", lesson=LESSON, title="Export with a dynamic batch dimension", name="export_dynamic_batch",
    hint=HINT_3,
    more_hints=["torch.export.Dim(\"batch\") names a size decided at run time; dynamic_shapes maps the forward "
                "argument's name, images, to {dimension: Dim}",
                "pass the example as a tuple of arguments, (example,), and return what torch.export.export "
                "returns, not its .module()"],
    statement="""
Write `export_dynamic_batch(model, example)`: export `model` with `torch.export.export`, from the
example batch `example`, so that the exported program accepts **any** batch size, not only the
example's.

Whatever is not declared dynamic is fixed by the example; declare dimension 0 of the model's
input (its `forward` argument is called `images`) dynamic with `torch.export.Dim`.

- **In:** `model`, an `nn.Module` in eval mode whose `forward(images)` takes (batch, C, H, W);
  `example`, a float32 batch of that shape.
- **Out:** the `torch.export.ExportedProgram` itself (not its `.module()`).
- **Use:** `torch.export.export` and `torch.export.Dim` (both in `torch`); not TorchScript
  (`torch.jit`), which is deprecated.
- **Correct means:** the result is an `ExportedProgram` whose `.module()` runs on batches of 1 and
  of sizes other than the example's and gives the eager model's logits within 1e-5.
- **Reread:** section 5, *`torch.export`: one `.pt2` file*.
""",
    template=template_of(SOLUTION_3),
    solution=SOLUTION_3,
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
        ("def export_dynamic_batch(model, example):\n    return torch.jit.trace(model, example)\n",
         "TorchScript (torch.jit), which is deprecated"),
    ],
    checker=check_export_dynamic_batch,
)

EXERCISES = [EX_1, EX_2, EX_3]
