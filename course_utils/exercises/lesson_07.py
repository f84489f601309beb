"""Exercises for lesson 07 (image folders): per-channel normalisation, balanced weights, a Dataset with a transform."""

from __future__ import annotations

import sys
from types import CodeType, ModuleType

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

LESSON = "07_image_folders"


def _torchvision_names(function) -> list[str]:
    """The names the function's code (nested functions included) reads that hold something from torchvision."""
    code, namespace = getattr(function, "__code__", None), getattr(function, "__globals__", {})
    closure = {name: cell.cell_contents for name, cell in
               zip(getattr(code, "co_freevars", ()), getattr(function, "__closure__", None) or ())}
    found, codes = [], [code] if code is not None else []
    while codes:
        current = codes.pop()
        for name in (*current.co_names, *current.co_freevars):
            if name.split(".")[0] == "torchvision" and name not in found:   # an import inside the function
                found.append(name)
            value = closure.get(name, namespace.get(name))
            origin = value.__name__ if isinstance(value, ModuleType) else getattr(value, "__module__", None)
            if isinstance(origin, str) and origin.split(".")[0] == "torchvision" and name not in found:
                found.append(name)
        codes += [const for const in current.co_consts if isinstance(const, CodeType)]
    return found


def _torchvision_croppers() -> tuple:
    """torchvision's crop functions, if torchvision is loaded already (the lesson loads it)."""
    functional = sys.modules.get("torchvision.transforms.v2.functional")
    v2 = sys.modules.get("torchvision.transforms.v2")
    return (((functional, "center_crop"), (functional, "crop")) if functional is not None else ()) + \
        (((v2.CenterCrop, "forward"),) if v2 is not None else ())


def _refuse_torchvision(function, what: str, hint: str) -> None:
    """Raise Mistake when the answer's code uses torchvision (however it was imported)."""
    names = _torchvision_names(function)
    if names:
        raise Mistake(f"your code uses torchvision ({', '.join(names)}); this exercise asks you to write {what} "
                      "yourself with tensor operations", hint)


# ---------------------------------------------------------------- 07.1 Normalize by hand

HINT_1 = ("section 4 (What the normalisation numbers mean) and lesson 01 section 5: one mean and one std per "
          "channel, shaped (channels, 1, 1) so that they broadcast over height and width")


def _torchvision_normalizers() -> tuple:
    """torchvision's normalize functions, if torchvision is loaded already (the lesson loads it)."""
    targets = []
    functional = sys.modules.get("torchvision.transforms.v2.functional")
    if functional is not None:
        targets.append((functional, "normalize"))
    v2 = sys.modules.get("torchvision.transforms.v2")
    if v2 is not None:
        targets.append((v2.Normalize, "forward"))
    return tuple(targets)


def check_normalize(normalize) -> str:
    gen = generator("07.1")
    _refuse_torchvision(normalize, "the normalisation", HINT_1)
    tested = []
    for square in (True, False):
        channels = 3
        height, width = (randint(gen, 4, 6), 3) if square else distinct_sizes(gen, 2, 4, 7)  # width == channels first
        batch = randint(gen, 1, 4)
        images = torch.rand(batch, channels, height, width, generator=gen)  # (batch, 3, h, w) in [0, 1]
        mean = [round(float(v), 3) for v in torch.rand(channels, generator=gen) * 0.5 + 0.25]
        std = [round(float(v), 3) for v in torch.rand(channels, generator=gen) * 0.3 + 0.1]
        m, s = torch.tensor(mean).view(-1, 1, 1), torch.tensor(std).view(-1, 1, 1)
        expected = (images - m) / s
        with forbid(*_torchvision_normalizers(), what="torchvision's Normalize", hint=HINT_1):
            got = call(normalize, images, list(mean), list(std), hint=HINT_1)
        if square and isinstance(got, torch.Tensor) and got.shape == expected.shape and torch.allclose(
                got, (images - torch.tensor(mean)) / torch.tensor(std), atol=1e-5):
            raise Mistake("your mean and std lined up with the last dimension, the width (it happened to have 3 "
                          "columns): shape them (channels, 1, 1)", HINT_1)
        expect_tensor(got, expected, f"normalize on images of shape {tuple(images.shape)}", hint=HINT_1)
        tested.append(str(tuple(images.shape)))
    return f"per-channel (x - mean) / std on images of shapes {' and '.join(tested)}"


SOLUTION_1 = '''
def normalize(images, mean, std):
    """images: (batch, channels, h, w); mean, std: lists of channels numbers -> (images - mean) / std per channel."""
    mean = torch.tensor(mean, dtype=images.dtype).view(-1, 1, 1)  # (channels, 1, 1) broadcasts over h and w
    std = torch.tensor(std, dtype=images.dtype).view(-1, 1, 1)
    return (images - mean) / std
'''

EX_1 = Exercise(
    id="07.1", lesson=LESSON, title="Normalize by hand", name="normalize",
    statement="""
Write `normalize(images, mean, std)` that returns `(images - mean) / std` **per channel**, what torchvision's
`Normalize` does, written yourself.

- **In:** `images`, a float32 tensor `(batch, channels, height, width)`; `mean` and `std`, Python lists of
  `channels` numbers.
- **Out:** a float32 tensor of the shape of `images`: channel `c` of every image is
  `(images[:, c] - mean[c]) / std[c]`. `images` must not change.
- **Use:** tensor operations and broadcasting; no torchvision (no `Normalize`, no `normalize`, however
  imported).
- **Correct means:** within 1e-5 of the per-channel result on two batches, one of images whose width equals
  the number of channels (3), so that numbers lined up with the wrong dimension show; any use of torchvision
  is refused.
- **Reread:** section 4, *Transforms: from a photo to a tensor*.
""",
    template=template_of(SOLUTION_1),
    solution=SOLUTION_1,
    alternatives=['''
def normalize(images, mean, std):
    m = torch.as_tensor(mean)[None, :, None, None]
    s = torch.as_tensor(std)[None, :, None, None]
    return images.sub(m).div(s)
'''],
    wrong_answers=[
        ("def normalize(images, mean, std):\n    return (images - torch.tensor(mean)) / torch.tensor(std)\n",
         "lined up with the last dimension"),
        ("def normalize(images, mean, std):\n    m = torch.tensor(mean).view(-1, 1, 1)\n"
         "    images -= m\n    images /= torch.tensor(std).view(-1, 1, 1)\n    return images\n",
         "changed its input `images` in place"),
        ("def normalize(images, mean, std):\n"
         "    m, s = torch.tensor(mean).view(-1, 1, 1), torch.tensor(std).view(-1, 1, 1)\n"
         "    return (images - m) * s\n", "is wrong at index"),
        ("from torchvision.transforms.v2 import functional as TF\n\n\ndef normalize(images, mean, std):\n"
         "    return TF.normalize(images, mean, std)\n", "your code uses torchvision (TF)"),
    ],
    checker=check_normalize, hint=HINT_1,
    more_hints=["torch.tensor(mean) has shape (channels,), which lines up with the last dimension, the width; "
                "view it as (channels, 1, 1) so that it lines up with the channels",
                "with mean and std shaped (channels, 1, 1), (images - mean) / std broadcasts over the batch, the "
                "height and the width"],
)


# ---------------------------------------------------------------- 07.2 weights that balance the classes

HINT_2 = ("section 7 (Aside: unbalanced classes): each sample's weight is 1 / (the number of samples of its "
          "class); torch.bincount counts them, and indexing with the targets gives one weight per sample")


def check_balance_weights(balance_weights) -> str:
    gen = generator("07.2")
    num_classes = randint(gen, 3, 6)
    counts = [randint(gen, 1, 12) for _ in range(num_classes)]
    counts[randint(gen, 0, num_classes - 2)] = 0                        # one class absent (not the last)
    targets = torch.cat([torch.full((n,), c) for c, n in enumerate(counts)])
    targets = targets[torch.randperm(len(targets), generator=gen)]      # (samples,) in random order
    per_class = torch.tensor(counts, dtype=torch.float64)
    expected = (1 / per_class[targets]).float()                         # (samples,)
    try:
        got = call(balance_weights, targets, hint=HINT_2)
    except IndexError as err:
        if "out of bounds" not in str(err):
            raise
        absent = [c for c, n in enumerate(counts) if n == 0]
        raise Mistake(f"indexing your per-class counts with the targets went out of range ({err}): class "
                      f"{absent[0]} never occurs, so a count that leaves out absent classes (torch.unique's) is "
                      f"shorter than the largest class index + 1; torch.bincount keeps a 0 for class {absent[0]}",
                      HINT_2) from None
    if isinstance(got, torch.Tensor) and got.ndim == 1 and len(got) != len(targets) and len(got) <= num_classes:
        raise Mistake(f"balance_weights returned {len(got)} weights, one per class; a sampler needs one per "
                      f"sample ({len(targets)}): index the class weights with the targets", HINT_2)
    if isinstance(got, torch.Tensor) and got.shape == expected.shape and torch.allclose(
            got.double(), per_class[targets], atol=1e-6):
        raise Mistake("your weights are the class counts; a sample's weight is 1 / its class's count, so that "
                      "rare classes are drawn more often", HINT_2)
    expect_tensor(got, expected, f"balance_weights for class counts {counts}", atol=1e-6, hint=HINT_2)
    return f"{len(targets)} samples with class counts {counts}: one weight 1 / count per sample"


SOLUTION_2 = '''
def balance_weights(targets):
    """targets: (samples,) class indices -> (samples,) float32 weights, 1 / (samples of the same class)."""
    counts = torch.bincount(targets)           # (classes,): samples per class (0 for an absent class)
    return 1.0 / counts[targets].float()       # each sample looks up its own class's count
'''

EX_2 = Exercise(
    id="07.2", lesson=LESSON, title="Weights that balance the classes", name="balance_weights",
    statement="""
Write `balance_weights(targets)` that gives every sample the weight `1 / (number of samples of its class)`,
the weights a `WeightedRandomSampler` needs so that every class that occurs has the same total weight.

- **In:** `targets`, a 1-d int64 tensor of class indices, one per sample; some class indices below the
  largest may not occur at all.
- **Out:** a float32 tensor of the same length as `targets`, in the samples' order. `targets` must not change.
- **Use:** tensor operations (`torch.bincount` counts, indexing looks up); a Python loop over the samples
  works, but is slow on a real dataset.
- **Correct means:** within 1e-6 of the exact weights, one per sample, on targets where one class below the
  largest never occurs.
- **Reread:** section 7, *Aside: unbalanced classes*.
""",
    template=template_of(SOLUTION_2),
    solution=SOLUTION_2,
    alternatives=['''
def balance_weights(targets):
    classes, inverse, counts = torch.unique(targets, return_inverse=True, return_counts=True)
    return counts.float().reciprocal()[inverse]
'''],
    wrong_answers=[
        ("def balance_weights(targets):\n    return 1.0 / torch.bincount(targets).float()\n", "one per class"),
        ("def balance_weights(targets):\n    return torch.bincount(targets)[targets].float()\n",
         "are the class counts"),
        ("def balance_weights(targets):\n    return torch.full(targets.shape, 1.0 / len(targets))\n",
         "is wrong at index"),
        ("def balance_weights(targets):\n    _, counts = torch.unique(targets, return_counts=True)\n"
         "    return 1.0 / counts[targets].float()\n", "never occurs, so a count that leaves out absent classes"),
        ("def balance_weights(targets):\n    return 1.0 / torch.bincount(targets)[targets].double()\n", "dtype"),
    ],
    checker=check_balance_weights, hint=HINT_2,
    more_hints=["torch.bincount(targets) has one count per class, 0 for a class that never occurs",
                "indexing the counts with the targets themselves gives each sample its own class's count; "
                "then take 1 / that as float32"],
)


# ---------------------------------------------------------------- 07.3 a center crop of any size

HINT_3 = ("section 4 (Transforms: from a photo to a tensor): CenterCrop cuts the central part; the course's "
          "module starts the crop at half the margin rounded down")


def _crop_cases(gen: torch.Generator) -> list[tuple[tuple[int, ...], int, int]]:
    """(images shape, height, width): fixed odd margins of 3 and 7 (where rounding up, or to the even neighbour,
    starts elsewhere), a single image (3, h, w), a crop of the whole image, then a random batch."""
    batch = randint(gen, 2, 4)
    height, width = distinct_sizes(gen, 2, 3, 8)
    return [((2, 3, 4 + 3, 5 + 7), 4, 5),                                   # margins 3 and 7: odd
            ((3, 9 + 1, 6 + 3), 9, 6),                                      # one image: margins 1 and 3
            ((1, 3, 5, 7), 5, 7),                                           # no margin at all
            ((batch, 3, height + randint(gen, 0, 6), width + randint(gen, 0, 6)), height, width)]


def check_center_crop(center_crop) -> str:
    gen = generator("07.3")
    _refuse_torchvision(center_crop, "the crop", HINT_3)
    tested = []
    for shape, height, width in _crop_cases(gen):
        images = torch.rand(shape, generator=gen)
        big_h, big_w = shape[-2], shape[-1]
        top, left = (big_h - height) // 2, (big_w - width) // 2             # half the margin, rounded down
        expected = images[..., top:top + height, left:left + width]
        what = f"center_crop(images, {height}, {width}) for images of shape {shape}"
        single = ("a single image (channels, height, width) must work too: take the height and width from the last "
                  "two dimensions (images.shape[-2], images.shape[-1]) and slice them with images[..., rows, columns]")
        try:
            with forbid(*_torchvision_croppers(), what="torchvision's crop", hint=HINT_3):
                got = call(center_crop, images, height, width, hint=HINT_3)
        except IndexError as err:
            if len(shape) != 3:
                raise
            raise Mistake(f"{what} raised IndexError ({err}): {single}", HINT_3) from None
        if isinstance(got, torch.Tensor) and got.shape == expected.shape and not torch.equal(got, expected):
            for dy, dx in ((1, 0), (-1, 0), (0, 1), (0, -1), (1, 1), (-1, -1), (1, -1), (-1, 1)):
                y, x = top + dy, left + dx
                if 0 <= y <= big_h - height and 0 <= x <= big_w - width and torch.equal(
                        got, images[..., y:y + height, x:x + width]):
                    moves = [f"one row {'lower' if dy > 0 else 'higher'} (vertical margin {big_h - height}: start "
                             f"row {top}, not {y})"] if dy else []
                    moves += [f"one column {'further right' if dx > 0 else 'further left'} (horizontal margin "
                              f"{big_w - width}: start column {left}, not {x})"] if dx else []
                    raise Mistake(f"{what}: your crop starts {' and '.join(moves)}; start at half the margin "
                                  "rounded down, margin // 2", HINT_3)
        if isinstance(got, torch.Tensor) and len(shape) == 3 and got.shape != expected.shape:
            raise Mistake(f"{what} has shape {tuple(got.shape)}, expected {tuple(expected.shape)}: {single}", HINT_3)
        expect_tensor(got, expected, what, hint=HINT_3)
        tested.append(str(shape))
    return (f"central crops of {len(tested)} inputs ({', '.join(tested)}): odd margins started at half the margin "
            "rounded down, a single image, a crop of the whole image; no torchvision")


SOLUTION_3 = '''
def center_crop(images, height, width):
    """(..., H, W) -> (..., height, width): the central part, starting at half of each margin rounded down."""
    margin_y = images.shape[-2] - height
    margin_x = images.shape[-1] - width
    y0, x0 = margin_y // 2, margin_x // 2       # an odd margin leaves its extra pixel at the bottom / right
    return images[..., y0:y0 + height, x0:x0 + width]
'''

EX_3 = Exercise(
    id="07.3", lesson=LESSON, title="A center crop of any size", name="center_crop",
    statement="""
Write `center_crop(images, height, width)` that cuts the central `height` x `width` part out of every image,
for a single image or a batch, like the course's evaluation transform does in section 4: the crop starts at
half the margin **rounded down** (`margin // 2`), so an odd margin leaves its extra pixel at the bottom or on
the right.

- **In:** `images`, a float tensor `(..., H, W)`: one image `(channels, H, W)` or a batch
  `(batch, channels, H, W)`; `height <= H` and `width <= W`, ints (the crop need not be square).
- **Out:** a tensor `(..., height, width)`, the same leading dimensions; rows `margin_y // 2` up to
  `margin_y // 2 + height` (excluded) and the same for columns, where `margin_y = H - height`. `images` must
  not change.
- **Use:** indexing and slicing (lesson 01); `images[..., a:b, c:d]` slices the last two dimensions whatever
  comes before them. No torchvision (no `CenterCrop`, no `center_crop`, however imported).
- **Correct means:** exactly the central crop on a batch with odd margins of 3 and 7 pixels (where rounding up
  or to the even neighbour starts elsewhere), on a single image, on a crop as large as the image, and on a
  random batch; any use of torchvision is refused.
- **Reread:** section 4, *Transforms: from a photo to a tensor*.
""",
    template=template_of(SOLUTION_3),
    solution=SOLUTION_3,
    alternatives=['''
def center_crop(images, height, width):
    top = (images.size(-2) - height) // 2
    left = (images.size(-1) - width) // 2
    rows = images.narrow(-2, top, height)
    return rows.narrow(-1, left, width)
'''],
    wrong_answers=[
        (variant(SOLUTION_3, ("margin_y // 2, margin_x // 2", "(margin_y + 1) // 2, (margin_x + 1) // 2")),
         "start at half the margin rounded down"),
        (variant(SOLUTION_3, ("margin_y // 2, margin_x // 2", "round(margin_y / 2), round(margin_x / 2)")),
         "one column further right (horizontal margin 7"),
        (variant(SOLUTION_3, ("images.shape[-2]", "images.shape[2]"), ("images.shape[-1]", "images.shape[3]"),
                 ("images[..., y0", "images[:, :, y0")), "a single image"),
        (variant(SOLUTION_3, ("y0:y0 + height, x0:x0 + width", "y0:y0 + width, x0:x0 + height")), "has shape"),
        ("from torchvision.transforms.v2.functional import center_crop as crop\n\n\n"
         "def center_crop(images, height, width):\n    return crop(images, [height, width])\n",
         "your code uses torchvision (crop)"),
        ("def center_crop(images, height, width):\n    import torchvision.transforms.v2.functional as TF\n\n"
         "    return TF.center_crop(images, [height, width])\n", "your code uses torchvision"),
    ],
    checker=check_center_crop, hint=HINT_3,
    more_hints=["the margin is what is cut away along a side, H - height; the crop starts at margin // 2, and "
                "// rounds down",
                "images.shape[-2] and images.shape[-1] are the height and width for one image and for a batch; "
                "slice both with images[..., rows, columns]"],
)

EXERCISES = [EX_1, EX_2, EX_3]
