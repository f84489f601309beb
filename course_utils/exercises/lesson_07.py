"""Exercises for lesson 07 (image folders): per-channel normalisation, balanced weights, a Dataset with a transform."""

from __future__ import annotations

import sys

import torch
from torch.utils.data import DataLoader, Dataset

from course_utils.exercises.framework import (
    Exercise,
    Mistake,
    call,
    describe,
    distinct_sizes,
    expect_subclass,
    expect_tensor,
    forbid,
    generator,
    randint,
    template_of,
    variant,
)

LESSON = "07_image_folders"


# ---------------------------------------------------------------- 07.1 Normalize by hand

HINT_1 = ("section 4 (What the normalisation numbers mean) and lesson 01 section 5: one mean and one std per "
          "channel, shaped (channels, 1, 1) so that they broadcast over height and width")


def torchvision_normalizers() -> tuple:
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
        with forbid(*torchvision_normalizers(), what="torchvision's Normalize", hint=HINT_1):
            got = call(normalize, images, list(mean), list(std), hint=HINT_1)
        if square and isinstance(got, torch.Tensor) and got.shape == expected.shape and torch.allclose(
                got, (images - torch.tensor(mean)) / torch.tensor(std), atol=1e-5):
            raise Mistake("your mean and std lined up with the last dimension, the width (it happened to have 3 "
                          "columns): shape them (channels, 1, 1)", HINT_1)
        expect_tensor(got, expected, f"normalize on images of shape {tuple(images.shape)}", hint=HINT_1)
        tested.append(str(tuple(images.shape)))
    return f"per-channel (x - mean) / std on images of shapes {' and '.join(tested)}"


SOLUTION_07_1 = '''
def normalize(images, mean, std):
    """images: (batch, channels, h, w); mean, std: lists of channels numbers -> (images - mean) / std per channel."""
    mean = torch.tensor(mean, dtype=images.dtype).view(-1, 1, 1)  # (channels, 1, 1) broadcasts over h and w
    std = torch.tensor(std, dtype=images.dtype).view(-1, 1, 1)
    return (images - mean) / std
'''

EX_1 = Exercise(
    id="07.1", lesson=LESSON, title="Normalize by hand", name="normalize",
    statement="""
Write `normalize(images, mean, std)` for a float tensor of images `(batch, channels, height, width)` and
two Python lists of `channels` numbers, that returns `(images - mean) / std` **per channel**, the
same shape as `images`, like torchvision's `Normalize` (which you may not call). Use broadcasting; the
input must not change.

Correct means: within 1e-5 of the per-channel result, including images whose width happens to equal the
number of channels. See section 4, *What the normalisation numbers mean*.
""",
    template=template_of(SOLUTION_07_1),
    solution=SOLUTION_07_1,
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
    ],
    checker=check_normalize, hint=HINT_1,
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
    got = call(balance_weights, targets, hint=HINT_2)
    if isinstance(got, torch.Tensor) and got.ndim == 1 and len(got) != len(targets) and len(got) <= num_classes:
        raise Mistake(f"balance_weights returned {len(got)} weights, one per class; a sampler needs one per "
                      f"sample ({len(targets)}): index the class weights with the targets", HINT_2)
    if isinstance(got, torch.Tensor) and got.shape == expected.shape and torch.allclose(
            got.double(), per_class[targets], atol=1e-6):
        raise Mistake("your weights are the class counts; a sample's weight is 1 / its class's count, so that "
                      "rare classes are drawn more often", HINT_2)
    expect_tensor(got, expected, f"balance_weights for class counts {counts}", atol=1e-6, hint=HINT_2)
    return f"{len(targets)} samples with class counts {counts}: one weight 1 / count per sample"


SOLUTION_07_2 = '''
def balance_weights(targets):
    """targets: (samples,) class indices -> (samples,) float32 weights, 1 / (samples of the same class)."""
    counts = torch.bincount(targets)           # (classes,): samples per class (0 for an absent class)
    return 1.0 / counts[targets].float()       # each sample looks up its own class's count
'''

EX_2 = Exercise(
    id="07.2", lesson=LESSON, title="Weights that balance the classes", name="balance_weights",
    statement="""
A `WeightedRandomSampler` draws each sample with probability proportional to its weight. Write
`balance_weights(targets)` for a 1-d int64 tensor of class indices (one per sample; some class indices may
not occur) that returns a float32 tensor of the same length: each sample's weight is `1 / (number of samples
of its class)`, so that every class that occurs has the same total weight. No Python loop over the samples;
`targets` must not change.

Correct means: within 1e-6 of the exact weights, one per sample, in the samples' order. See section 7,
*Aside: unbalanced classes*.
""",
    template=template_of(SOLUTION_07_2),
    solution=SOLUTION_07_2,
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
    ],
    checker=check_balance_weights, hint=HINT_2,
)


# ---------------------------------------------------------------- 07.3 a Dataset with a transform

HINT_3 = ("sections 4 and 6 (Transforms, Batches with a DataLoader): a Dataset needs __len__ and __getitem__; "
          "the stored image is (h, w, 3) uint8, a tensor image is (3, h, w) float in [0, 1]; then apply the "
          "transform, if any")


def check_image_dataset(ImageDataset) -> str:
    gen = generator("07.3")
    count = randint(gen, 5, 9)
    height, width = distinct_sizes(gen, 2, 4, 9)
    photos = torch.randint(0, 256, (count, height, width, 3), dtype=torch.uint8, generator=gen)  # (N, h, w, RGB)
    labels = torch.randint(0, 3, (count,), generator=gen).tolist()
    originals = photos.clone()
    expected = photos.permute(0, 3, 1, 2).float() / 255                   # (N, 3, h, w) in [0, 1]
    expect_subclass(ImageDataset, Dataset, "ImageDataset", HINT_3, base_name="torch.utils.data.Dataset")
    plain = ImageDataset(photos, labels)
    try:
        size = len(plain)
    except TypeError:
        raise Mistake("len(dataset) fails: define __len__, the number of samples", HINT_3) from None
    if size != count:
        raise Mistake(f"len(dataset) is {size}, expected {count}", HINT_3)
    for index in (0, count - 1, -1):
        item = plain[index]
        if not isinstance(item, tuple) or len(item) != 2:
            raise Mistake(f"dataset[{index}] is {describe(item)}, expected a pair (image, label)", HINT_3)
        image, label = item
        expect_tensor(image, expected[index], f"the image of dataset[{index}] (no transform)", atol=1e-6, hint=HINT_3)
        if label != labels[index] or isinstance(label, bool):
            raise Mistake(f"the label of dataset[{index}] is {label!r}, expected {labels[index]}", HINT_3)

    seen = []

    def transform(image):  # records what it gets, and changes it in a way the check can see
        seen.append(image)
        return image * 2 - 1

    with_transform = ImageDataset(photos, labels, transform=transform)
    image, _ = with_transform[1]
    if not seen:
        raise Mistake("dataset[i] never called the transform it was given", HINT_3)
    expect_tensor(seen[0], expected[1], "the image handed to the transform (it must get the (3, h, w) float "
                  "tensor)", atol=1e-6, hint=HINT_3)
    expect_tensor(image, expected[1] * 2 - 1, "the image of dataset[1] with a transform", atol=1e-6, hint=HINT_3)
    batch_size = randint(gen, 2, count - 1)
    images, batch_labels = next(iter(DataLoader(with_transform, batch_size=batch_size)))
    expect_tensor(images, expected[:batch_size] * 2 - 1, f"a DataLoader batch of {batch_size}", atol=1e-6, hint=HINT_3)
    expect_tensor(batch_labels, torch.tensor(labels[:batch_size]), "the labels of a DataLoader batch", hint=HINT_3)
    if not torch.equal(photos, originals):
        raise Mistake("your dataset changed the stored photos in place", HINT_3)
    return f"{count} photos of {height}x{width}: length, (3, h, w) images in [0, 1], labels, the transform, and " \
           f"DataLoader batches of {batch_size}"


SOLUTION_07_3 = '''
from torch.utils.data import Dataset


class ImageDataset(Dataset):
    """(photo as a (3, h, w) float tensor in [0, 1], transformed if a transform is given, label) per sample."""

    def __init__(self, photos, labels, transform=None):
        self.photos = photos          # (N, h, w, 3) uint8
        self.labels = labels
        self.transform = transform

    def __len__(self):
        return len(self.photos)

    def __getitem__(self, index):
        image = self.photos[index].permute(2, 0, 1).float() / 255  # (h, w, 3) -> (3, h, w) in [0, 1]
        if self.transform is not None:
            image = self.transform(image)
        return image, self.labels[index]
'''

EX_3 = Exercise(
    id="07.3", lesson=LESSON, title="A Dataset with a transform", name="ImageDataset",
    statement="""
Write a class `ImageDataset(Dataset)` (`from torch.utils.data import Dataset`) with
`__init__(self, photos, labels, transform=None)`, where `photos` is a uint8 tensor `(N, height, width, 3)`
(RGB photos as stored on disk) and `labels` a list of `N` ints. `dataset[i]` returns `(image, label)`:
`image` is photo `i` as a float32 tensor `(3, height, width)` with values in [0, 1] (divide by 255), and
then, if a `transform` was given, `transform(image)`; `label` is `labels[i]`. `len(dataset)` is `N`. The
stored photos must not change.

Correct means: the length; images within 1e-6 of the converted photo (the transform receives that
`(3, height, width)` tensor and its result is returned); the labels; and a `DataLoader` over the dataset
that stacks batches of shape `(batch, 3, height, width)`. See section 4, *Transforms*, and section 6,
*Batches with a DataLoader*.
""",
    template=template_of(SOLUTION_07_3),
    solution=SOLUTION_07_3,
    alternatives=['''
from torch.utils.data import Dataset


class ImageDataset(Dataset):
    def __init__(self, photos, labels, transform=None):
        self.samples = list(zip(photos, labels))
        self.transform = transform or (lambda image: image)

    def __len__(self):
        return len(self.samples)

    def __getitem__(self, index):
        photo, label = self.samples[index]
        image = photo.movedim(-1, 0).to(torch.float32).div(255)
        return self.transform(image), label
'''],
    wrong_answers=[
        (variant(SOLUTION_07_3, ('.permute(2, 0, 1).float', '.float')), "has shape"),
        (variant(SOLUTION_07_3,
            ('\n'
             '        if self.transform is not None:\n'
             '            image = self.transform(image)',
             ''),
        ), "never called the transform"),
        (variant(SOLUTION_07_3,
            ('self.photos = photos          # (N, h, w, 3) uint8\n'
             '        self.labels = labels\n'
             '        self.transform = transform\n'
             '\n'
             '    def __len__(self):\n'
             '        return len(self.photos)',
             'self.photos, self.labels, self.transform = photos, labels, transform'),
        ), "define __len__"),
        (variant(SOLUTION_07_3, ('/ 255 ', '')), "is wrong at index"),
    ],
    checker=check_image_dataset, hint=HINT_3,
)

EXERCISES = [EX_1, EX_2, EX_3]
