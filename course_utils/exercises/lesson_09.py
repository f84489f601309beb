"""Exercises of lesson 09: a convolution's output size, feature maps caught with a hook, a convolution from unfold."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

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
from course_utils.models import layers

LESSON = "09_cnn"
HINT_SIZE = "lesson 09, section 2 (The output size): W_out = floor((W_in + 2P - D(F - 1) - 1) / S) + 1"
HINT_HOOK = "lesson 09, section 5 (What the network learned): register_forward_hook, and remove the handle"
HINT_UNFOLD = ("lesson 09, sections 1-3 (what Conv2d computes: each output value is one filter times one "
               "C_in x kH x kW patch, plus the bias)")


# ---------------------------------------------------------------- 09.1 output size

def _size_cases(gen: torch.Generator) -> list[tuple[int, int, int, int, int]]:
    """(W_in, F, S, P, D) settings, random but always with room for at least one window."""
    cases = [(randint(gen, 9, 40), 3, 1, 0, 1), (randint(gen, 9, 40), 3, 1, 1, 1)]  # the two every CNN uses
    while len(cases) < 12:
        kernel, stride = randint(gen, 1, 7), randint(gen, 1, 4)
        padding, dilation = randint(gen, 0, 3), randint(gen, 1, 3)
        w_in = randint(gen, 5, 40)
        if w_in + 2 * padding >= dilation * (kernel - 1) + 1:
            cases.append((w_in, kernel, stride, padding, dilation))
    return cases


# Formulas learners often write instead, and what each gets wrong: named only when one fits every case.
_WRONG_SIZES = [
    (lambda w, f, s, p, d: math.ceil((w + 2 * p - d * (f - 1) - 1) / s) + 1,
     "rounded up; a window that does not fit is dropped, so round down (//)"),
    (lambda w, f, s, p, d: (w + 2 * p - f) // s + 1,
     "the formula without dilation; a dilated kernel spans D(F - 1) + 1 pixels"),
    (lambda w, f, s, p, d: (w + p - d * (f - 1) - 1) // s + 1,
     "the padding is added on both sides, 2P"),
]


def check_conv_output_size(conv_output_size) -> str:
    gen = generator("09.1")
    cases = _size_cases(gen)
    answers = []
    with forbid((layers, "conv_output_size"), what="layers.conv_output_size", hint=HINT_SIZE):
        for w_in, kernel, stride, padding, dilation in cases:
            conv = nn.Conv2d(1, 1, kernel, stride=stride, padding=padding, dilation=dilation)
            expected = conv(torch.zeros(1, 1, w_in, w_in)).shape[-1]
            got = conv_output_size(w_in, kernel, stride=stride, padding=padding, dilation=dilation)
            call_text = f"conv_output_size({w_in}, {kernel}, stride={stride}, padding={padding}, dilation={dilation})"
            if isinstance(got, float) and got == expected:
                raise Mistake(f"{call_text} returned the float {got}; sizes are whole numbers: use // (floor "
                              "division), not /", HINT_SIZE)
            if not isinstance(got, int) or isinstance(got, bool):
                raise Mistake(f"{call_text} should return an int, your code returned {type(got).__name__} {got!r}",
                              HINT_SIZE)
            answers.append((call_text, got, expected))
    wrong = [(text, got, expected) for text, got, expected in answers if got != expected]
    if wrong:
        text, got, expected = wrong[0]
        why = next((f": {reason}" for formula, reason in _WRONG_SIZES
                    if all(formula(*case) == got for case, (_, got, _) in zip(cases, answers))), "")
        raise Mistake(f"{text} returned {got}, but nn.Conv2d gives {expected}{why} ({len(wrong)} of "
                      f"{len(cases)} settings differ)", HINT_SIZE)
    return f"{len(cases)} random settings of size, kernel, stride, padding and dilation, each compared with nn.Conv2d"


SOLUTION_09_1 = '''
def conv_output_size(size, kernel_size, stride=1, padding=0, dilation=1):
    """Height (or width) of nn.Conv2d's output for an input of this height (or width)."""
    span = dilation * (kernel_size - 1) + 1  # pixels one (dilated) window covers
    return (size + 2 * padding - span) // stride + 1  # // rounds down: a window that does not fit is dropped
'''

CONV_SIZE = Exercise(
    id="09.1", lesson=LESSON, title="The output size of a convolution", name="conv_output_size", hint=HINT_SIZE,
    statement="""
Write `conv_output_size(size, kernel_size, stride=1, padding=0, dilation=1)`: the height (or width)
of what `nn.Conv2d` returns for an input of height (or width) `size`, with a square kernel.

- in: five `int`s
- out: an `int`
- not allowed: `layers.conv_output_size` (the course's own version)

Correct means: equal to the size of a real `nn.Conv2d`'s output for a dozen random settings, with
strides that do not divide evenly and dilations above 1.

See lesson 09, section 2 (The output size).
""",
    template=template_of(SOLUTION_09_1),
    solution=SOLUTION_09_1,
    alternatives=['''
def conv_output_size(size, kernel_size, stride=1, padding=0, dilation=1):
    return int(math.floor((size + 2 * padding - dilation * (kernel_size - 1) - 1) / stride + 1))
'''],
    wrong_answers=[
        ('''
def conv_output_size(size, kernel_size, stride=1, padding=0, dilation=1):
    return (size + 2 * padding - kernel_size) // stride + 1
''', "the formula without dilation"),
        ('''
def conv_output_size(size, kernel_size, stride=1, padding=0, dilation=1):
    return math.ceil((size + 2 * padding - dilation * (kernel_size - 1) - 1) / stride) + 1
''', "rounded up"),
        ('''
def conv_output_size(size, kernel_size, stride=1, padding=0, dilation=1):
    return (size + 2 * padding - dilation * (kernel_size - 1) - 1) / stride + 1
''', "returned the float"),
        ('''
def conv_output_size(size, kernel_size, stride=1, padding=0, dilation=1):
    return (size + padding - dilation * (kernel_size - 1) - 1) // stride + 1
''', "2P"),
    ],
    checker=check_conv_output_size,
)


# ---------------------------------------------------------------- 09.2 a forward hook

class _SkipNet(nn.Module):
    """A small CNN whose forward is not a plain chain (a shortcut), so it cannot be sliced like nn.Sequential."""

    def __init__(self, in_channels: int, channels: int, num_classes: int):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, channels, 3, padding=1)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)
        self.pool = nn.AdaptiveAvgPool2d(2)
        self.head = nn.Linear(channels * 4, num_classes)

    def forward(self, x):
        h = torch.relu(self.conv1(x))                    # (batch, channels, H, W)
        h = torch.relu(h + self.conv2(h))                # the shortcut
        return self.head(self.pool(h).flatten(1))        # (batch, num_classes)


def check_feature_maps(feature_maps) -> str:
    gen = generator("09.2")
    tested = []
    for batch in (randint(gen, 2, 5), 1):
        in_channels, channels, size = randint(gen, 1, 3), randint(gen, 4, 8), randint(gen, 6, 12)
        model = _SkipNet(in_channels, channels, randint(gen, 3, 6))
        x = torch.randn(batch, in_channels, size, size, generator=gen)
        with torch.no_grad():
            h = torch.relu(model.conv1(x))
            expected = model.conv2(h)                    # (batch, channels, size, size)
            logits = model(x)
        got = call(feature_maps, model, model.conv2, x, hint=HINT_HOOK)
        if model.conv2._forward_hooks or model._forward_hooks:
            raise Mistake("after your function returned, a forward hook is still registered: keep the handle that "
                          "register_forward_hook returns and call handle.remove(), or it fires on every later "
                          "forward pass", HINT_HOOK)
        if isinstance(got, torch.Tensor) and got.shape == logits.shape:
            raise Mistake(f"your function returned the model's output {tuple(logits.shape)}, not the output of "
                          f"the layer {tuple(expected.shape)}", HINT_HOOK)
        expect_tensor(got, expected, f"the feature maps of model.conv2 for x of shape {tuple(x.shape)}",
                      hint=HINT_HOOK)
        if got.requires_grad:
            raise Mistake("the feature maps still require grad: detach them (output.detach()) or run the model "
                          "under torch.no_grad()", HINT_HOOK)
        tested.append(tuple(x.shape))
    return (f"the output of a layer inside a model with a shortcut, for inputs {tested[0]} and {tested[1]}; "
            "no hook left behind")


SOLUTION_09_2 = '''
def feature_maps(model, layer, x):
    """What `layer` (a submodule of `model`) outputs while `model(x)` runs."""
    caught = []

    def hook(module, inputs, output):
        caught.append(output.detach())

    handle = layer.register_forward_hook(hook)
    try:
        with torch.no_grad():
            model(x)
    finally:
        handle.remove()  # otherwise the hook fires on every later forward pass
    return caught[0]
'''

FEATURE_MAPS = Exercise(
    id="09.2", lesson=LESSON, title="Catch a layer's feature maps with a forward hook", name="feature_maps",
    hint=HINT_HOOK,
    statement="""
Write `feature_maps(model, layer, x)`: run `model(x)` and return what `layer`, one of the model's
submodules, output during that forward pass. The model's `forward` is not a simple chain of layers
(the checker's has a shortcut), so use a **forward hook** rather than calling the layers yourself.

- in: `model`, an `nn.Module`; `layer`, a submodule of it; `x`, a batch for the model
- out: the layer's output, detached (no gradient graph)

Correct means: equal to the layer's real output, for a batch of several images and of 1; after the
call no hook may be left on the layer.

See lesson 09, section 5 (forward hooks).
""",
    template=template_of(SOLUTION_09_2),
    solution=SOLUTION_09_2,
    alternatives=['''
def feature_maps(model, layer, x):
    store = {}
    handle = layer.register_forward_hook(lambda m, i, o: store.update(out=o))
    model(x)
    handle.remove()
    return store["out"].detach()
'''],
    wrong_answers=[
        ('''
def feature_maps(model, layer, x):
    caught = []
    layer.register_forward_hook(lambda m, i, o: caught.append(o.detach()))
    model(x)
    return caught[0]
''', "a forward hook is still registered"),
        ('''
def feature_maps(model, layer, x):
    with torch.no_grad():
        return model(x)
''', "returned the model's output"),
        ('''
def feature_maps(model, layer, x):
    caught = []
    handle = layer.register_forward_hook(lambda m, i, o: caught.append(o))
    model(x)
    handle.remove()
    return caught[0]
''', "still require grad"),
        ('''
def feature_maps(model, layer, x):
    with torch.no_grad():
        return layer(x)
''', "RuntimeError"),
    ],
    checker=check_feature_maps,
)


# ---------------------------------------------------------------- 09.3 a convolution from unfold

def check_conv2d(conv2d) -> str:
    gen = generator("09.3")
    tested = []
    cases = [(randint(gen, 2, 4), 1, 0), (1, randint(gen, 2, 3), randint(gen, 1, 2)), (randint(gen, 2, 3), 2, 1)]
    for batch, stride, padding in cases:
        c_in, c_out = randint(gen, 1, 4), randint(gen, 2, 6)
        kernel = (randint(gen, 1, 2), randint(gen, 3, 4))          # non-square: rows and columns must not mix
        height, width = randint(gen, 6, 10), randint(gen, 11, 15)   # non-square image too
        x = torch.randn(batch, c_in, height, width, generator=gen)
        weight = torch.randn(c_out, c_in, *kernel, generator=gen)
        bias = torch.randn(c_out, generator=gen)
        expected = F.conv2d(x, weight, bias, stride=stride, padding=padding)  # (batch, c_out, H_out, W_out)
        with forbid((F, "conv2d"), (torch, "conv2d"), what="F.conv2d (nn.Conv2d calls it)", hint=HINT_UNFOLD):
            got = call(conv2d, x, weight, bias, stride=stride, padding=padding, hint=HINT_UNFOLD)
        what = (f"conv2d for x {tuple(x.shape)}, weight {tuple(weight.shape)}, stride {stride}, padding {padding}")
        if isinstance(got, torch.Tensor) and got.shape == expected.shape:
            n, o, h_out, w_out = expected.shape
            no_bias = expected - bias.view(1, -1, 1, 1)
            scrambled = no_bias.flatten(2).transpose(1, 2).reshape(n, o, h_out, w_out) + bias.view(1, -1, 1, 1)
            if not torch.allclose(expected, scrambled) and torch.allclose(got, scrambled, atol=1e-4):
                raise Mistake(f"{what}: the right numbers in the wrong places: your code reshaped a (batch, L, "
                              "C_out) result straight to (batch, C_out, H_out, W_out); put the channels before the "
                              "positions first (transpose(1, 2))", HINT_UNFOLD)
            if torch.allclose(got, expected - bias.view(1, -1, 1, 1), atol=1e-4):
                raise Mistake(f"{what}: every value is off by its channel's bias: add bias.view(1, -1, 1, 1)",
                              HINT_UNFOLD)
        expect_tensor(got, expected, what, atol=1e-4, hint=HINT_UNFOLD)
        tested.append(f"{tuple(x.shape)} * {tuple(weight.shape)} (stride {stride}, padding {padding})")
    return "matches F.conv2d for " + "; ".join(tested)


SOLUTION_09_3 = '''
def conv2d(x, weight, bias, stride=1, padding=0):
    """(N, C_in, H, W) conv (C_out, C_in, kH, kW) + bias (C_out,) -> (N, C_out, H_out, W_out), via F.unfold."""
    n, _, height, width = x.shape
    c_out, _, kh, kw = weight.shape
    h_out = (height + 2 * padding - kh) // stride + 1
    w_out = (width + 2 * padding - kw) // stride + 1
    columns = F.unfold(x, (kh, kw), padding=padding, stride=stride)  # (N, C_in*kh*kw, L)
    out = weight.reshape(c_out, -1) @ columns                         # (C_out, C_in*kh*kw) @ (N, ., L) -> (N, C_out, L)
    return out.reshape(n, c_out, h_out, w_out) + bias.view(1, c_out, 1, 1)
'''

CONV2D = Exercise(
    id="09.3", lesson=LESSON, title="A convolution from unfold and a matrix product", name="conv2d", hint=HINT_UNFOLD,
    statement="""
Write `conv2d(x, weight, bias, stride=1, padding=0)`, what `nn.Conv2d` computes, with
`F.unfold` and a matrix product. `F.unfold(x, kernel_size, padding=padding, stride=stride)` cuts
every `C_in × kH × kW` patch out of `x` and lays it out as a column: `(N, C_in·kH·kW, L)`, one
column per output position, `L = H_out · W_out`. Each filter, flattened to `C_in·kH·kW` numbers,
times a column, plus the filter's bias, is one output value.

- in: `x` (N, C_in, H, W); `weight` (C_out, C_in, kH, kW), kernels may be non-square; `bias` (C_out,);
  `stride` and `padding` ints
- out: (N, C_out, H_out, W_out), the sizes of 09.1 per dimension; no input may change
- not allowed: `F.conv2d`, `nn.Conv2d`, and Python loops over positions

Correct means: equal to `F.conv2d` within 1e-4 on random non-square inputs and kernels, with strides
and paddings, including a batch of 1.

See lesson 09, sections 1-3 (what `Conv2d` computes) and section 2 for the output size.
""",
    template=template_of(SOLUTION_09_3),
    solution=SOLUTION_09_3,
    alternatives=['''
def conv2d(x, weight, bias, stride=1, padding=0):
    kh, kw = weight.shape[2:]
    h_out = (x.shape[2] + 2 * padding - kh) // stride + 1
    cols = F.unfold(x, kernel_size=(kh, kw), stride=stride, padding=padding)  # (N, K, L)
    out = torch.einsum("nkl,ok->nol", cols, weight.flatten(1)) + bias[:, None]
    return out.unflatten(2, (h_out, -1))
'''],
    wrong_answers=[
        (variant(SOLUTION_09_3,
            ('  columns =', '  cols ='),
            ('weight.reshape(c_out, -1) @ columns', 'cols.transpose(1, 2) @ weight.reshape(c_out, -1).T'),
        ), "the right numbers in the wrong places"),
        ('''
def conv2d(x, weight, bias, stride=1, padding=0):
    n, _, height, width = x.shape
    c_out, _, kh, kw = weight.shape
    h_out = (height + 2 * padding - kh) // stride + 1
    w_out = (width + 2 * padding - kw) // stride + 1
    cols = F.unfold(x, (kh, kw), padding=padding, stride=stride)
    return (weight.reshape(c_out, -1) @ cols).reshape(n, c_out, h_out, w_out)
''', "off by its channel's bias"),
        ('''
def conv2d(x, weight, bias, stride=1, padding=0):
    return F.conv2d(x, weight, bias, stride=stride, padding=padding)
''', "your code called F.conv2d"),
        ('''
def conv2d(x, weight, bias, stride=1, padding=0):
    n, _, height, width = x.shape
    c_out, _, kh, kw = weight.shape
    cols = F.unfold(x, (kh, kw))
    out = weight.reshape(c_out, -1) @ cols
    return out.reshape(n, c_out, height - kh + 1, width - kw + 1) + bias.view(1, c_out, 1, 1)
''', "has shape"),
    ],
    checker=check_conv2d,
)

EXERCISES = [CONV_SIZE, FEATURE_MAPS, CONV2D]
