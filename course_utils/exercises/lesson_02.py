"""Exercises for lesson 02 (neural networks): a stable softmax, nn.Linear from given weights, a named nn.Sequential."""

from __future__ import annotations

from collections import OrderedDict

import torch
import torch.nn.functional as F
from torch import nn

from course_utils.exercises.framework import (
    Exercise,
    Mistake,
    call,
    describe,
    distinct_sizes,
    expect_tensor,
    forbid,
    generator,
    randint,
    template_of,
    variant,
)

LESSON = "02_neural_networks"


# ---------------------------------------------------------------- 02.1 softmax

HINT_1 = ("section 2 (Softmax): exponentiate, divide by the row sums (dim=1, keepdim=True), and subtract "
          "each row's maximum first so that exp cannot overflow")
SOFTMAXES = ((torch, "softmax"), (torch, "log_softmax"), (torch.Tensor, "softmax"), (torch.Tensor, "log_softmax"),
             (F, "softmax"), (F, "log_softmax"), (torch.special, "softmax"), (nn.Softmax, "forward"))


def check_softmax(softmax) -> str:
    gen = generator("02.1")
    rows, classes = distinct_sizes(gen, 2, 2, 12)
    cases = {"ordinary logits": torch.randn(rows, classes, generator=gen) * 3,
             "large logits (hundreds)": torch.randn(rows, classes, generator=gen) * 400,
             "a batch of one": torch.randn(1, classes, generator=gen)}
    for name, logits in cases.items():
        expected = torch.softmax(logits.double(), dim=1).float()  # (rows, classes)
        with forbid(*SOFTMAXES, what="PyTorch's softmax", hint=HINT_1):
            probs = call(softmax, logits, hint=HINT_1)
        if isinstance(probs, torch.Tensor) and probs.shape == expected.shape and not bool(probs.isfinite().all()):
            raise Mistake(f"on {name} your softmax returned nan or inf: exp of a large logit overflows "
                          "float32 (exp(89) already does); subtract each row's maximum first", HINT_1)
        expect_tensor(probs, expected, f"softmax of {name}, shape {tuple(logits.shape)},", atol=1e-6, hint=HINT_1)
    return f"matches torch.softmax(dim=1) on ordinary and large logits ({rows}, {classes}) and on a batch of one"


SOLUTION_02_1 = '''
def softmax(logits):
    """logits: (batch, classes) -> probabilities (batch, classes), each row summing to 1."""
    shifted = logits - logits.max(dim=1, keepdim=True).values  # the largest entry of each row becomes 0
    exps = torch.exp(shifted)
    return exps / exps.sum(dim=1, keepdim=True)                # (batch, classes) / (batch, 1)
'''

EX_1 = Exercise(
    id="02.1", lesson=LESSON, title="A softmax that survives large logits", name="softmax",
    statement="""
Write `softmax(logits)` for a float32 tensor of shape `(batch, classes)` that returns the probabilities of
shape `(batch, classes)`: each row exponentiated and divided by its sum, so every row sums to 1. It must
work for logits in the hundreds or thousands, where `exp` alone overflows, and must not change `logits`.
Do not call PyTorch's softmax (`torch.softmax`, `F.softmax`, `.softmax`, `log_softmax`, `nn.Softmax`):
the check catches them.

Correct means: within 1e-6 (plus 1e-4 relative) of `torch.softmax(logits, dim=1)`, large logits and a batch of
one included. See section 2, *Softmax*.
""",
    template=template_of(SOLUTION_02_1),
    solution=SOLUTION_02_1,
    alternatives=['''
def softmax(logits):
    # exp(z - logsumexp(z)) is softmax(z), and logsumexp is computed stably
    return torch.exp(logits - torch.logsumexp(logits, dim=1, keepdim=True))
''', '''
def softmax(logits):
    exps = (logits - logits.amax(1)[:, None]).exp()
    return exps / exps.sum(1)[:, None]
'''],
    wrong_answers=[
        ("def softmax(logits):\n    exps = torch.exp(logits)\n    return exps / exps.sum(dim=1, keepdim=True)\n",
         "returned nan or inf"),
        ("def softmax(logits):\n    return torch.softmax(logits, dim=1)\n", "your code called PyTorch's softmax"),
        ("def softmax(logits):\n    e = torch.exp(logits - logits.max())\n    return e / e.sum(dim=0, keepdim=True)\n",
         "is wrong at index"),
        (variant(SOLUTION_02_1,
                 ('shifted = logits - logits.max(dim=1, keepdim=True).values',
                  'shifted = logits.sub_(logits.max(dim=1, keepdim=True).values)')),
         "changed its input `logits` in place"),
    ],
    checker=check_softmax, hint=HINT_1,
)


# ---------------------------------------------------------------- 02.2 nn.Linear from given weights

HINT_2 = ("section 4 (Weights and biases) and lesson 01 section 9: nn.Linear stores weight as (out_features, "
          "in_features) and computes x @ weight.T + bias; set it in place inside torch.no_grad()")


def check_linear_from_weights(linear_from_weights) -> str:
    gen = generator("02.2")
    n_in, n_out, batch = distinct_sizes(gen, 3, 2, 9)
    W, b = torch.randn(n_in, n_out, generator=gen), torch.randn(n_out, generator=gen)  # (in, out), (out,)
    layer = call(linear_from_weights, W, b, hint=HINT_2)
    if not isinstance(layer, nn.Linear):
        raise Mistake(f"linear_from_weights should return an nn.Linear, but returned {describe(layer)}", HINT_2)
    if (layer.in_features, layer.out_features) != (n_in, n_out):
        raise Mistake(f"your layer maps {layer.in_features} -> {layer.out_features} features, expected "
                      f"{n_in} -> {n_out} (W has shape (in, out))", HINT_2)
    if layer.bias is None:
        raise Mistake("your layer has no bias (nn.Linear(..., bias=False)); it needs b", HINT_2)
    for name in ("weight", "bias"):
        parameter = getattr(layer, name)
        if not isinstance(parameter, nn.Parameter) or not parameter.requires_grad:
            raise Mistake(f"layer.{name} must stay a trainable nn.Parameter (requires_grad=True)", HINT_2)
    if layer.weight.untyped_storage().data_ptr() == W.untyped_storage().data_ptr() or \
            layer.bias.untyped_storage().data_ptr() == b.untyped_storage().data_ptr():
        raise Mistake("your layer shares memory with W or b, so training the layer would change them too: "
                      "copy the values in (copy_) instead of wrapping the given tensors", HINT_2)
    x = torch.randn(batch, n_in, generator=gen)
    with torch.no_grad():
        out = layer(x)
    expect_tensor(out, x @ W + b, f"layer(x) for x of shape ({batch}, {n_in})", hint=HINT_2)
    return f"an nn.Linear({n_in}, {n_out}) with its own trainable copy of W.T and b, and layer(x) == x @ W + b"


SOLUTION_02_2 = '''
def linear_from_weights(W, b):
    """W: (in_features, out_features), b: (out_features,) -> nn.Linear with layer(x) == x @ W + b."""
    layer = nn.Linear(W.shape[0], W.shape[1])
    with torch.no_grad():          # setting weights is not part of any computation to differentiate
        layer.weight.copy_(W.T)    # nn.Linear keeps (out_features, in_features)
        layer.bias.copy_(b)
    return layer
'''

EX_2 = Exercise(
    id="02.2", lesson=LESSON, title="An nn.Linear that computes x @ W + b", name="linear_from_weights",
    statement="""
Write `linear_from_weights(W, b)` for a weight matrix `W` of shape `(in_features, out_features)` and a bias
`b` of shape `(out_features,)` that returns an `nn.Linear` layer with `layer(x) == x @ W + b` for every
`x` of shape `(batch, in_features)`. The layer's `weight` and `bias` must stay trainable `nn.Parameter`s
with their own memory (changing `W` or `b` later must not change the layer), and `W`, `b` must not change.

Correct means: the right `in_features` / `out_features`, parameters that do not share memory with the
inputs, and outputs within 1e-5 of `x @ W + b`. See section 4, *Weights and biases* (and lesson 01,
section 9).
""",
    template=template_of(SOLUTION_02_2),
    solution=SOLUTION_02_2,
    alternatives=['''
def linear_from_weights(W, b):
    n_in, n_out = W.shape
    layer = nn.Linear(n_in, n_out)
    layer.weight = nn.Parameter(W.T.clone())
    layer.bias = nn.Parameter(b.clone())
    return layer
'''],
    wrong_answers=[
        (variant(SOLUTION_02_2, ('W.T', 'W')),
         "your code raised RuntimeError"),
        ("def linear_from_weights(W, b):\n    layer = nn.Linear(W.shape[0], W.shape[1])\n"
         "    layer.weight = nn.Parameter(W.T)\n    layer.bias = nn.Parameter(b)\n    return layer\n",
         "shares memory"),
        ("def linear_from_weights(W, b):\n    layer = nn.Linear(W.shape[0], W.shape[1])\n"
         "    layer.weight.copy_(W.T)\n    layer.bias.copy_(b)\n    return layer\n",
         "a leaf Variable that requires grad is being used in an in-place operation"),
        ("def linear_from_weights(W, b):\n    layer = nn.Linear(W.shape[1], W.shape[0])\n    return layer\n",
         "your layer maps"),
    ],
    checker=check_linear_from_weights, hint=HINT_2,
)


# ---------------------------------------------------------------- 02.3 a named nn.Sequential of any depth

HINT_3 = ("sections 6 and 7 (nn.Sequential with an OrderedDict, counting parameters): one Linear and one ReLU "
          "per hidden size, named fc1, relu1, fc2, ..., then the output layer")


def expected_network(input_size: int, hidden_sizes: list[int], output_size: int) -> nn.Sequential:
    """The reference architecture (used for names, shapes and the parameter count only)."""
    layers, width = [("flatten", nn.Flatten())], input_size
    for i, hidden in enumerate(hidden_sizes, 1):
        layers += [(f"fc{i}", nn.Linear(width, hidden)), (f"relu{i}", nn.ReLU())]
        width = hidden
    return nn.Sequential(OrderedDict(layers + [("output", nn.Linear(width, output_size))]))


def check_build_network(build_network) -> str:
    gen = generator("02.3")
    tested = []
    for depth in (1, 3, 2):
        side = randint(gen, 2, 5)
        input_size, output_size = side * side, randint(gen, 2, 6)
        hidden_sizes = [randint(gen, 3, 12) for _ in range(depth)]
        model = call(build_network, input_size, list(hidden_sizes), output_size, hint=HINT_3)
        reference = expected_network(input_size, hidden_sizes, output_size)
        what = f"build_network({input_size}, {hidden_sizes}, {output_size})"
        if not isinstance(model, nn.Sequential):
            raise Mistake(f"{what} should return an nn.Sequential, but returned {describe(model)}", HINT_3)
        names = [name for name, _ in model.named_children()]
        wanted = [name for name, _ in reference.named_children()]
        if names != wanted:
            raise Mistake(f"{what} has layers named {names}, expected {wanted}", HINT_3)
        for name, layer in reference.named_children():
            got = getattr(model, name)
            if type(got) is not type(layer):
                raise Mistake(f"in {what}, layer {name!r} is {type(got).__name__}, expected {type(layer).__name__}",
                              HINT_3)
            if isinstance(layer, nn.Linear) and (got.in_features, got.out_features) != \
                    (layer.in_features, layer.out_features):
                raise Mistake(f"in {what}, layer {name!r} maps {got.in_features} -> {got.out_features}, expected "
                              f"{layer.in_features} -> {layer.out_features}", HINT_3)
        count, wanted_count = sum(p.numel() for p in model.parameters()), sum(p.numel() for p in reference.parameters())
        if count != wanted_count:
            raise Mistake(f"{what} has {count} parameters, expected {wanted_count}", HINT_3)
        images = torch.randn(randint(gen, 1, 4), 1, side, side, generator=gen)  # (batch, 1, side, side)
        with torch.no_grad():
            logits = model(images)
        if not isinstance(logits, torch.Tensor) or logits.shape != (len(images), output_size):
            raise Mistake(f"{what} applied to images of shape {tuple(images.shape)} returned {describe(logits)}, "
                          f"expected logits of shape {(len(images), output_size)}", HINT_3)
        tested.append(str(hidden_sizes))
    return f"names, layer sizes, parameter counts and output shapes for hidden sizes {', '.join(tested)}"


SOLUTION_02_3 = '''
from collections import OrderedDict


def build_network(input_size, hidden_sizes, output_size):
    """An nn.Sequential named flatten, fc1, relu1, ..., output: (batch, 1, h, w) -> (batch, output_size)."""
    layers = [("flatten", nn.Flatten())]                 # (batch, 1, h, w) -> (batch, input_size)
    sizes = [input_size, *hidden_sizes]
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:]), start=1):
        layers.append((f"fc{i}", nn.Linear(n_in, n_out)))
        layers.append((f"relu{i}", nn.ReLU()))
    layers.append(("output", nn.Linear(sizes[-1], output_size)))  # logits
    return nn.Sequential(OrderedDict(layers))
'''

EX_3 = Exercise(
    id="02.3", lesson=LESSON, title="A named nn.Sequential of any depth", name="build_network",
    statement="""
Write `build_network(input_size, hidden_sizes, output_size)` that returns an `nn.Sequential` built from an
`OrderedDict` with these layers and names, for a list `hidden_sizes` of **any** length:

`flatten` (`nn.Flatten()`), then for each hidden size `fc1`, `relu1`, `fc2`, `relu2`, ... (`nn.Linear`,
`nn.ReLU()`), and last `output`, an `nn.Linear` to `output_size` with no activation after it (the network
returns logits). A batch of images `(batch, 1, h, w)` with `h * w == input_size` gives logits
`(batch, output_size)`.

Correct means: exactly these names and layer types in this order, each `nn.Linear` of the right size, the
parameter count that follows from them, and the output shape, for several depths. See sections 6 and 7,
*nn.Sequential* and *Counting parameters*.
""",
    template=template_of(SOLUTION_02_3),
    solution=SOLUTION_02_3,
    alternatives=['''
def build_network(input_size, hidden_sizes, output_size):
    model = nn.Sequential()
    model.add_module("flatten", nn.Flatten())
    width = input_size
    for i, hidden in enumerate(hidden_sizes):
        model.add_module(f"fc{i + 1}", nn.Linear(width, hidden))
        model.add_module(f"relu{i + 1}", nn.ReLU())
        width = hidden
    model.add_module("output", nn.Linear(width, output_size))
    return model
'''],
    wrong_answers=[
        ('''
from collections import OrderedDict

def build_network(input_size, hidden_sizes, output_size):
    return nn.Sequential(OrderedDict([
        ("flatten", nn.Flatten()),
        ("fc1", nn.Linear(input_size, hidden_sizes[0])), ("relu1", nn.ReLU()),
        ("fc2", nn.Linear(hidden_sizes[0], hidden_sizes[1])), ("relu2", nn.ReLU()),
        ("output", nn.Linear(hidden_sizes[1], output_size)),
    ]))
''', "your code raised IndexError"),
        ('''
def build_network(input_size, hidden_sizes, output_size):
    layers, width = [nn.Flatten()], input_size
    for hidden in hidden_sizes:
        layers += [nn.Linear(width, hidden), nn.ReLU()]
        width = hidden
    return nn.Sequential(*layers, nn.Linear(width, output_size))
''', "has layers named ['0', '1'"),
        ('''
from collections import OrderedDict

def build_network(input_size, hidden_sizes, output_size):
    layers, sizes = [("flatten", nn.Flatten())], [input_size, *hidden_sizes, output_size]
    for i in range(1, len(sizes)):
        layers += [(f"fc{i}", nn.Linear(sizes[i - 1], sizes[i])), (f"relu{i}", nn.ReLU())]
    return nn.Sequential(OrderedDict(layers))
''', "has layers named"),
    ],
    checker=check_build_network, hint=HINT_3,
)

EXERCISES = [EX_1, EX_2, EX_3]
