"""Exercises of lesson 09: a convolution's output size, feature maps caught with a hook, a convolution from unfold."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from course_utils.exercises.challenges import image_wrong_answers, trained_image_classifier
from course_utils.exercises.framework import (
    Exercise,
    Mistake,
    call,
    expect_tensor,
    forbid,
    generator,
    randint,
    spy,
    template_of,
    variant,
)
from course_utils.models import layers

LESSON = "09_cnn"


# ---------------------------------------------------------------- 09.1 The output size of a convolution

HINT_1 = "section 2 (The output size): the formula for W_out, with padding on both sides and a dilated kernel"

def _size_cases(gen: torch.Generator) -> list[tuple[int, int, int, int, int]]:
    """(W_in, F, S, P, D) settings, random but always with room for at least one window."""
    cases = [(randint(gen, 9, 40), 3, 1, 0, 1), (randint(gen, 9, 40), 3, 1, 1, 1),  # the two every CNN uses
             (2 * randint(gen, 5, 20), 3, 2, 0, 1),    # even size, kernel 3, stride 2: the stride does not divide
             (randint(gen, 12, 30), 3, 1, 0, 2),        # a dilated kernel spans 5 pixels, not 3
             (randint(gen, 9, 30), 5, 1, 2, 1)]         # padding 2 on both sides keeps the size
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
    with forbid((layers, "conv_output_size"), what="layers.conv_output_size", hint=HINT_1):
        for w_in, kernel, stride, padding, dilation in cases:
            conv = nn.Conv2d(1, 1, kernel, stride=stride, padding=padding, dilation=dilation)
            expected = conv(torch.zeros(1, 1, w_in, w_in)).shape[-1]
            got = conv_output_size(w_in, kernel, stride=stride, padding=padding, dilation=dilation)
            call_text = f"conv_output_size({w_in}, {kernel}, stride={stride}, padding={padding}, dilation={dilation})"
            if isinstance(got, float) and got == expected:
                raise Mistake(f"{call_text} returned the float {got}; sizes are whole numbers: use // (floor "
                              "division), not /", HINT_1)
            if not isinstance(got, int) or isinstance(got, bool):
                raise Mistake(f"{call_text} should return an int, your code returned {type(got).__name__} {got!r}",
                              HINT_1)
            answers.append((call_text, got, expected))
    wrong = [(text, got, expected) for text, got, expected in answers if got != expected]
    if wrong:
        text, got, expected = wrong[0]
        why = next((f": {reason}" for formula, reason in _WRONG_SIZES
                    if all(formula(*case) == got for case, (_, got, _) in zip(cases, answers))), "")
        raise Mistake(f"{text} returned {got}, but nn.Conv2d gives {expected}{why} ({len(wrong)} of "
                      f"{len(cases)} settings differ)", HINT_1)
    return (f"{len(cases)} settings of size, kernel, stride, padding and dilation (a stride that does not divide, a "
            "dilation of 2 and a padding of 2 every time), each compared with nn.Conv2d")


SOLUTION_1 = '''
def conv_output_size(size, kernel_size, stride=1, padding=0, dilation=1):
    """Height (or width) of nn.Conv2d's output for an input of this height (or width)."""
    span = dilation * (kernel_size - 1) + 1  # pixels one (dilated) window covers
    return (size + 2 * padding - span) // stride + 1  # // rounds down: a window that does not fit is dropped
'''

EX_1 = Exercise(
    id="09.1", lesson=LESSON, title="The output size of a convolution", name="conv_output_size", hint=HINT_1,
    more_hints=["a dilated kernel covers dilation * (kernel_size - 1) + 1 pixels; count how many windows of that "
                "span fit in the padded size when each starts `stride` pixels after the last",
                "a window that does not fit completely is dropped: round down with //, which also keeps an int"],
    statement="""
Write `conv_output_size(size, kernel_size, stride=1, padding=0, dilation=1)`: the height (or width)
of what `nn.Conv2d` returns for an input of height (or width) `size`, with a square kernel.

- **In:** five Python `int`s: `size`, `kernel_size`, `stride`, `padding`, `dilation`.
- **Out:** a Python `int` (not a float, not a tensor), the output's height (or width).
- **Use:** plain arithmetic on ints (`math` is imported); not `layers.conv_output_size` (the course's own version).
- **Correct means:** equal to the size of a real `nn.Conv2d`'s output for a dozen settings, always
  including a stride that does not divide evenly, a dilation of 2 and a padding of 2; the result must be an `int`.
- **Reread:** section 2, *The output size*.
""",
    template=template_of(SOLUTION_1),
    solution=SOLUTION_1,
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


# ---------------------------------------------------------------- 09.2 Catch a layer's feature maps with a forward hook

HINT_2 = "section 5 (What the network learned): a forward hook catches what a layer outputs; remove its handle after"

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
        try:
            got = call(feature_maps, model, model.conv2, x, hint=HINT_2)
        except RuntimeError as err:
            if "channels" not in str(err):
                raise
            raise Mistake(f"your code raised RuntimeError ({str(err).strip()}): the layer was called on the model's "
                          "input x, but inside the model it gets what the layers before it output; let model(x) "
                          "run and catch the layer's output with a forward hook", HINT_2) from None
        if model.conv2._forward_hooks or model._forward_hooks:
            raise Mistake("after your function returned, a forward hook is still registered: keep the handle that "
                          "register_forward_hook returns and call handle.remove(), or it fires on every later "
                          "forward pass", HINT_2)
        if isinstance(got, torch.Tensor) and got.shape == logits.shape:
            raise Mistake(f"your function returned the model's output {tuple(logits.shape)}, not the output of "
                          f"the layer {tuple(expected.shape)}", HINT_2)
        expect_tensor(got, expected, f"the feature maps of model.conv2 for x of shape {tuple(x.shape)}",
                      hint=HINT_2)
        if got.requires_grad:
            raise Mistake("the feature maps still require grad: detach them (output.detach()) or run the model "
                          "under torch.no_grad()", HINT_2)
        tested.append(tuple(x.shape))
    return (f"the output of a layer inside a model with a shortcut, for inputs {tested[0]} and {tested[1]}; "
            "no hook left behind")


SOLUTION_2 = '''
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

EX_2 = Exercise(
    id="09.2", lesson=LESSON, title="Catch a layer's feature maps with a forward hook", name="feature_maps",
    hint=HINT_2,
    more_hints=["register_forward_hook(fn) calls fn(module, inputs, output) during the forward pass: let fn store "
                "output (detached) in a list or dict that your function can read afterwards",
                "register_forward_hook returns a handle; call its remove() once model(x) has run, even if it raised "
                "(try/finally)"],
    statement="""
Write `feature_maps(model, layer, x)`: run `model(x)` and return what `layer`, one of the model's
submodules, output during that forward pass. The model's `forward` is not a simple chain of layers
(the checker's has a shortcut), so use a **forward hook** rather than calling the layers yourself.

- **In:** `model`, an `nn.Module`; `layer`, one of its submodules; `x`, a batch for the model.
- **Out:** the layer's output tensor, detached (`requires_grad` False); afterwards no hook is left
  on the layer or the model.
- **Use:** `register_forward_hook` and its handle; calling `layer(x)` yourself does not work (the layer
  gets what the layers before it output, not `x`).
- **Correct means:** equal to the layer's real output within 1e-5, for a batch of several images and
  a batch of 1; no forward hook left on the layer or the model; the output does not require grad.
- **Reread:** section 5, *What the network learned*.
""",
    template=template_of(SOLUTION_2),
    solution=SOLUTION_2,
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
''', "the layer was called on the model's input x"),
    ],
    checker=check_feature_maps,
)


# ---------------------------------------------------------------- 09.3 A convolution from unfold and a matrix product

HINT_3 = ("section 1 (Conv2d and MaxPool2d: parameters and defaults): each output value is one filter times one "
          "C_in x kH x kW patch, plus the filter's bias")


def _unfold_mistake(err: RuntimeError) -> str:
    """The usual cause of a RuntimeError in a convolution written with unfold, in plain words, or ''."""
    text = str(err).strip()
    if "cannot be multiplied" in text or "Expected size for first two dimensions" in text:
        return (f"your code raised RuntimeError ({text}): a shape mismatch in the matrix product; the filters "
                "flattened are (C_out, C_in*kH*kW) and the columns (N, C_in*kH*kW, L): the shared C_in*kH*kW must "
                "be the last dim of the left factor and the middle dim of the right one")
    if "is invalid for input of size" in text:
        return (f"your code raised RuntimeError ({text}): the sizes of your reshape do not multiply to the number "
                "of values: there are L = H_out * W_out positions, each side rounded down as in 09.1 (//)")
    return ""


def check_conv2d(conv2d) -> str:
    gen = generator("09.3")
    tested = []
    cases = [(randint(gen, 2, 4), 1, 0), (1, randint(gen, 2, 3), randint(gen, 1, 2)), (randint(gen, 2, 3), 2, 1)]
    for i, (batch, stride, padding) in enumerate(cases):
        c_in, c_out = randint(gen, 1, 4), randint(gen, 2, 6)
        kernel = (randint(gen, 1, 2), randint(gen, 3, 4))          # non-square: rows and columns must not mix
        height, width = randint(gen, 6, 10), randint(gen, 11, 15)   # non-square image too
        if i == 2:  # the stride does not divide: the last row and column of windows do not fit and are dropped
            height += (height + 2 * padding - kernel[0]) % stride == 0
            width += (width + 2 * padding - kernel[1]) % stride == 0
        x = torch.randn(batch, c_in, height, width, generator=gen)
        weight = torch.randn(c_out, c_in, *kernel, generator=gen)
        bias = torch.randn(c_out, generator=gen)
        expected = F.conv2d(x, weight, bias, stride=stride, padding=padding)  # (batch, c_out, H_out, W_out)
        what = (f"conv2d for x {tuple(x.shape)}, weight {tuple(weight.shape)}, stride {stride}, padding {padding}")
        with forbid((F, "conv2d"), (torch, "conv2d"), what="F.conv2d (nn.Conv2d calls it)", hint=HINT_3), \
                spy(F, "unfold") as unfolds:
            try:
                got = call(conv2d, x, weight, bias, stride=stride, padding=padding, hint=HINT_3)
            except RuntimeError as err:
                cause = _unfold_mistake(err)
                if not cause:
                    raise
                raise Mistake(f"{what}: {cause}", HINT_3) from None
        if not unfolds:
            raise Mistake(f"{what}: your code did not call F.unfold; this exercise asks for the convolution as "
                          "F.unfold's columns times the flattened filters", HINT_3)
        plain = (batch, c_out, height - kernel[0] + 1, width - kernel[1] + 1)  # stride 1, no padding
        if isinstance(got, torch.Tensor) and got.shape == plain != expected.shape:
            raise Mistake(f"{what}: your result has shape {plain}, that of stride 1 without padding, but "
                          f"F.conv2d gives {tuple(expected.shape)}: pass stride and padding to F.unfold and use them "
                          "in H_out and W_out", HINT_3)
        if isinstance(got, torch.Tensor) and got.shape == expected.shape:
            n, o, h_out, w_out = expected.shape
            no_bias = expected - bias.view(1, -1, 1, 1)
            scrambled = no_bias.flatten(2).transpose(1, 2).reshape(n, o, h_out, w_out) + bias.view(1, -1, 1, 1)
            if not torch.allclose(expected, scrambled) and torch.allclose(got, scrambled, atol=1e-4):
                raise Mistake(f"{what}: the right numbers in the wrong places: your code reshaped a (batch, L, "
                              "C_out) result straight to (batch, C_out, H_out, W_out); put the channels before the "
                              "positions first (transpose(1, 2))", HINT_3)
            if torch.allclose(got, expected - bias.view(1, -1, 1, 1), atol=1e-4):
                raise Mistake(f"{what}: every value is off by its channel's bias: add bias.view(1, -1, 1, 1)",
                              HINT_3)
        expect_tensor(got, expected, what, atol=1e-4, hint=HINT_3)
        tested.append(f"{tuple(x.shape)} * {tuple(weight.shape)} (stride {stride}, padding {padding})")
    return "matches F.conv2d for " + "; ".join(tested) + " (the last with a stride that does not divide)"


SOLUTION_3 = '''
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

EX_3 = Exercise(
    id="09.3", lesson=LESSON, title="A convolution from unfold and a matrix product", name="conv2d", hint=HINT_3,
    more_hints=["flatten the weight to (C_out, C_in*kH*kW): one row per filter; a row times a column of F.unfold is "
                "one output value, so the matrix product of the two gives (N, C_out, L)",
                "L lists the positions row by row: (N, C_out, L) reshapes to (N, C_out, H_out, W_out), with H_out "
                "and W_out from 09.1's formula per side; the bias, viewed as (1, C_out, 1, 1), is added last"],
    statement="""
Write `conv2d(x, weight, bias, stride=1, padding=0)`, what `nn.Conv2d` computes, with
`F.unfold` and a matrix product. `F.unfold(x, kernel_size, padding=padding, stride=stride)` cuts
every `C_in × kH × kW` patch out of `x` and lays it out as a column: `(N, C_in·kH·kW, L)`, one
column per output position, `L = H_out · W_out`. Each filter, flattened to `C_in·kH·kW` numbers,
times a column, plus the filter's bias, is one output value.

- **In:** `x` (N, C_in, H, W); `weight` (C_out, C_in, kH, kW), kernels may be non-square; `bias` (C_out,);
  `stride` and `padding`, Python `int`s.
- **Out:** a tensor (N, C_out, H_out, W_out), the sizes of 09.1 per side; no input may change.
- **Use:** `F.unfold` (the check makes sure it is called) and a matrix product; not `F.conv2d` or `nn.Conv2d`.
- **Correct means:** equal to `F.conv2d` within 1e-4 on three non-square inputs with non-square kernels:
  stride 1 without padding, a batch of 1 with padding, and a stride of 2 that does not divide the padded size.
- **Reread:** section 1, *`Conv2d` and `MaxPool2d`: parameters and defaults*.
""",
    template=template_of(SOLUTION_3),
    solution=SOLUTION_3,
    alternatives=['''
def conv2d(x, weight, bias, stride=1, padding=0):
    kh, kw = weight.shape[2:]
    h_out = (x.shape[2] + 2 * padding - kh) // stride + 1
    cols = F.unfold(x, kernel_size=(kh, kw), stride=stride, padding=padding)  # (N, K, L)
    out = torch.einsum("nkl,ok->nol", cols, weight.flatten(1)) + bias[:, None]
    return out.unflatten(2, (h_out, -1))
'''],
    wrong_answers=[
        (variant(SOLUTION_3,
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
''', "pass stride and padding to F.unfold"),
        (variant(SOLUTION_3, ('weight.reshape(c_out, -1) @ columns', 'columns @ weight.reshape(c_out, -1)')),
         "a shape mismatch in the matrix product"),
        (variant(SOLUTION_3, ('h_out = (height + 2 * padding - kh) // stride + 1',
                              'h_out = -(-(height + 2 * padding - kh) // stride) + 1')),
         "rounded down as in 09.1"),
        ('''
def conv2d(x, weight, bias, stride=1, padding=0):
    kh, kw = weight.shape[2:]
    x = F.pad(x, (padding, padding, padding, padding))
    h_out = (x.shape[2] - kh) // stride + 1
    w_out = (x.shape[3] - kw) // stride + 1
    out = torch.empty(x.shape[0], weight.shape[0], h_out, w_out)
    for i in range(h_out):
        for j in range(w_out):
            patch = x[:, :, i * stride:i * stride + kh, j * stride:j * stride + kw]
            out[:, :, i, j] = patch.flatten(1) @ weight.flatten(1).T + bias
    return out
''', "did not call F.unfold"),
    ],
    checker=check_conv2d,
)


# ---- 09.4 Challenge: a better Fashion-MNIST CNN

HINT_4 = "section 4 (A CNN for Fashion-MNIST): the blocks, the channels, the training run"


def check_train_my_model(train_my_model, target: float) -> str:
    return trained_image_classifier(
        train_my_model, "fashion_mnist", target, hint=HINT_4,
        levers="more channels (32 and 64), dropout before the linear layers, a learning rate that falls to 0 over "
               "the run, and all the epochs of the budget")


SOLUTION_4 = '''
def train_my_model():
    """Build a CNN, train it on train_loader for at most challenge_epochs epochs, and return it."""
    def block(c_in, c_out):                            # convolution, ReLU, half the size
        return nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2))
    model = nn.Sequential(
        block(1, 32), block(32, 64),                   # (batch, 64, 7, 7)
        nn.Flatten(), nn.Dropout(0.25),
        nn.Linear(64 * 7 * 7, 128), nn.ReLU(), nn.Dropout(0.25),
        nn.Linear(128, 10),
    ).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.003)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=challenge_epochs)
    training.fit(model, train_loader, val_loader, nn.CrossEntropyLoss(), optimizer, device, challenge_epochs,
                 scheduler=scheduler, verbose=False)
    return model
'''

EX_4 = Exercise(
    id="09.4", lesson=LESSON, title="Challenge: beat this lesson's CNN", name="train_my_model",
    hint=HINT_4,
    more_hints=["a network with more feature maps sees more patterns; dropout keeps it from memorising; watch that "
                "the validation accuracy still rises at the end",
                "two blocks of 32 and 64 channels (Conv2d, ReLU, MaxPool2d), dropout 0.25 before each linear layer, "
                "Adam at lr 0.003 falling along a cosine, reach the target in the budget"],
    statement="""
This lesson's CNN reached about 0.91 test accuracy. Write `train_my_model()`: it builds a CNN of your design,
trains it on `train_loader` for at most `challenge_epochs` epochs, and returns it. Your choices: blocks and
channels, dropout, the learning rate and its schedule.

- **In:** nothing; use the lesson's `train_loader` and `val_loader` (normalised images `(batch, 1, 28, 28)`),
  `device`, and `training.fit` or your own loop; at most `challenge_epochs` epochs (the check says how long
  training took).
- **Out:** the trained `nn.Module`: images `(batch, 1, 28, 28)` -> scores `(batch, 10)`.
- **Use:** anything in PyTorch; never the test images.
- **Correct means:** on the 10,000 test images, which it never trained on, evaluated in eval mode, accuracy at
  least `challenge_target` (0.92).
- **Reread:** section 4, *A CNN for Fashion-MNIST*.
""",
    template=template_of(SOLUTION_4),
    solution=SOLUTION_4,
    wrong_answers=image_wrong_answers("fashion_mnist"),
    checker=check_train_my_model,
    challenge=True, settings={"target": "challenge_target"}, rule_settings={"target": 0.92},
)

EXERCISES = [EX_1, EX_2, EX_3, EX_4]
