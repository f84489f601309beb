"""Exercises for lesson 02 (neural networks): the top class's probability, an nn.Linear from weights, nn.Sequential."""

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


# ---- 02.1 The probability of the predicted class

HINT_1 = ("section 2 (A forward pass by hand), *Softmax*: subtracting each row's maximum changes no probability, "
          "and keeps exp from overflowing")
_SOFTMAXES = ((torch, "softmax"), (torch, "log_softmax"), (torch.Tensor, "softmax"), (torch.Tensor, "log_softmax"),
              (F, "softmax"), (F, "log_softmax"), (torch.special, "softmax"), (nn.Softmax, "forward"))


def check_top_probability(top_probability) -> str:
    gen = generator("02.1")
    rows, classes = distinct_sizes(gen, 2, 2, 12)
    square = randint(gen, 3, 6)
    cases = {f"a square batch ({square} samples, {square} classes)": torch.randn(square, square, generator=gen) * 3,
             "ordinary logits": torch.randn(rows, classes, generator=gen) * 3,
             "large logits (hundreds)": torch.randn(rows, classes, generator=gen) * 400,
             "a batch of one": torch.randn(1, classes, generator=gen)}
    for name, logits in cases.items():
        expected = torch.softmax(logits.double(), dim=1).max(dim=1).values.float()  # (batch,)
        with forbid(*_SOFTMAXES, what="PyTorch's softmax", hint=HINT_1):
            got = call(top_probability, logits, hint=HINT_1)
        what = f"top_probability on {name}, shape {tuple(logits.shape)},"
        if isinstance(got, torch.Tensor) and got.shape == expected.shape:
            if not got.is_floating_point():
                raise Mistake(f"{what} returned whole numbers ({got.dtype}): the predicted class itself; the "
                              "exercise asks for the probability softmax gives that class", HINT_1)
            if not bool(got.isfinite().all()):
                raise Mistake(f"{what} returned nan or inf: exp of a large logit overflows float32 (exp(89) "
                              "already does); subtract each row's maximum first", HINT_1)
            by_column = torch.softmax(logits.double(), dim=0).max(dim=0).values.float()  # (classes,)
            if by_column.shape == got.shape and torch.allclose(got, by_column, atol=1e-6) \
                    and not torch.allclose(got, expected, atol=1e-6):
                raise Mistake(f"{what} normalised over dim=0 (each class across the samples): a sample's "
                              "probabilities run along its row, dim=1", HINT_1)
        expect_tensor(got, expected, what, atol=1e-6, hint=HINT_1)
    return (f"matches softmax's largest probability per row on a square batch, ordinary and large ({rows}, "
            f"{classes}) logits and a batch of one")


SOLUTION_1 = '''
def top_probability(logits):
    """logits: (batch, classes) -> (batch,), the probability of each row's most likely class."""
    shifted = logits - logits.max(dim=1, keepdim=True).values  # each row's top logit becomes 0, its exp 1
    return 1 / torch.exp(shifted).sum(dim=1)                   # p_top = exp(0) / sum_j exp(z_j - z_max)
'''

EX_1 = Exercise(
    id="02.1", lesson=LESSON, title="The probability of the predicted class", name="top_probability",
    hint=HINT_1,
    more_hints=["after subtracting the row's maximum (keepdim=True), the top class's exp is exactly 1; its "
                "probability is 1 divided by the row's sum of exps",
                "a sample's classes run along dim=1: both the maximum and the sum are over dim=1"],
    statement="""
Write `top_probability(logits)` that returns, for each sample, the probability softmax gives its most likely
class: how sure the network is of its prediction. It must work for logits in the hundreds, where `exp`
alone overflows.

- **In:** `logits`, a float32 tensor `(batch, classes)`.
- **Out:** a float32 tensor `(batch,)` of probabilities; `logits` must not change.
- **Use:** tensor operations (`exp`, `max`, `sum`); not PyTorch's softmax (`torch.softmax`, `F.softmax`,
  `.softmax`, the log-softmaxes, `nn.Softmax`): the check refuses them.
- **Correct means:** within 1e-6 (plus 1e-4 relative) of the largest entry of `torch.softmax(logits, dim=1)`
  per row, on a square batch, ordinary logits, logits in the hundreds and a batch of one.
- **Reread:** section 2, *A forward pass by hand* (its part *Softmax*).
""",
    template=template_of(SOLUTION_1),
    solution=SOLUTION_1,
    checker=check_top_probability,
    alternatives=['''
def top_probability(logits):
    exps = (logits - logits.amax(1)[:, None]).exp()
    probs = exps / exps.sum(1)[:, None]
    return probs.max(1).values
'''],
    wrong_answers=[
        ("def top_probability(logits):\n    exps = torch.exp(logits)\n"
         "    return exps.max(dim=1).values / exps.sum(dim=1)\n", "returned nan or inf"),
        ("def top_probability(logits):\n    return torch.softmax(logits, dim=1).max(dim=1).values\n",
         "your code called PyTorch's softmax"),
        (variant(SOLUTION_1, ("logits.max(dim=1,", "logits.max(dim=0,"), ("sum(dim=1)", "sum(dim=0)")),
         "normalised over dim=0"),
        ("def top_probability(logits):\n    return logits.argmax(dim=1)\n", "the predicted class itself"),
        (variant(SOLUTION_1, ("sum(dim=1)", "sum(dim=1, keepdim=True)")), "has shape"),
        (variant(SOLUTION_1, ("shifted = logits - logits", "shifted = logits.sub_(logits"),
                 (".values  #", ".values)  #")), "changed its input `logits` in place"),
    ],
)


# ---- 02.2 An nn.Linear that computes x @ W + b

HINT_2 = "section 4 (Weights and biases): how nn.Linear stores its weight, and how to set it yourself"


def check_linear_from_weights(linear_from_weights) -> str:
    gen = generator("02.2")
    n_in, n_out, batch = distinct_sizes(gen, 3, 2, 9)
    W, b = torch.randn(n_in, n_out, generator=gen), torch.randn(n_out, generator=gen)  # (in, out), (out,)
    try:
        layer = call(linear_from_weights, W, b, hint=HINT_2)
    except RuntimeError as err:
        if "leaf Variable" in str(err):
            raise Mistake("PyTorch refused to change a parameter in place while it tracks gradients: set the "
                          "weights inside `with torch.no_grad():`", HINT_2) from None
        if "must match the size" in str(err) or "expand" in str(err):
            raise Mistake(f"setting the weights failed with a shape mismatch ({str(err).strip()}): nn.Linear "
                          "keeps its weight as (out_features, in_features), the transpose of W's "
                          "(in_features, out_features)", HINT_2) from None
        raise
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


SOLUTION_2 = '''
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
    hint=HINT_2,
    more_hints=["nn.Linear computes x @ weight.T + bias, so its weight must hold W transposed; copy the values "
                "in with `copy_` inside torch.no_grad(), which keeps the layer's own parameters"],
    statement="""
Write `linear_from_weights(W, b)` that returns an `nn.Linear` layer computing `x @ W + b`, for a weight
matrix and bias held the way section 2's forward pass by hand holds them.

- **In:** `W`, a float32 tensor `(in_features, out_features)`; `b`, a float32 tensor `(out_features,)`.
- **Out:** an `nn.Linear` with `layer(x) == x @ W + b` for `x` of shape `(batch, in_features)`; its `weight`
  and `bias` stay trainable `nn.Parameter`s with their own memory (changing `W` or `b` later does not change
  the layer); `W` and `b` must not change.
- **Use:** `nn.Linear`, `torch.no_grad()` and in-place copies, as in section 4.
- **Correct means:** the right `in_features` / `out_features`, a bias, trainable parameters that share no
  memory with `W` or `b`, and outputs within 1e-5 of `x @ W + b` for random sizes that all differ.
- **Reread:** section 4, *Weights and biases*.
""",
    template=template_of(SOLUTION_2),
    solution=SOLUTION_2,
    alternatives=['''
def linear_from_weights(W, b):
    n_in, n_out = W.shape
    layer = nn.Linear(n_in, n_out)
    layer.weight = nn.Parameter(W.T.clone())
    layer.bias = nn.Parameter(b.clone())
    return layer
'''],
    wrong_answers=[
        (variant(SOLUTION_2, ('W.T', 'W')),
         "the transpose of W"),
        ("def linear_from_weights(W, b):\n    layer = nn.Linear(W.shape[0], W.shape[1])\n"
         "    layer.weight = nn.Parameter(W.T)\n    layer.bias = nn.Parameter(b)\n    return layer\n",
         "shares memory"),
        ("def linear_from_weights(W, b):\n    layer = nn.Linear(W.shape[0], W.shape[1])\n"
         "    layer.weight.copy_(W.T)\n    layer.bias.copy_(b)\n    return layer\n",
         "inside `with torch.no_grad():`"),
        (variant(SOLUTION_2, ("nn.Linear(W.shape[0], W.shape[1])", "nn.Linear(W.shape[0], W.shape[1], bias=False)"),
                 ("        layer.bias.copy_(b)\n", "")), "has no bias"),
        ("def linear_from_weights(W, b):\n    layer = nn.Linear(W.shape[0], W.shape[1])\n"
         "    layer.weight = nn.Parameter(W.T.clone(), requires_grad=False)\n"
         "    layer.bias = nn.Parameter(b.clone())\n    return layer\n", "trainable nn.Parameter"),
        (variant(SOLUTION_2, ("return layer", "return layer.weight")), "should return an nn.Linear"),
        ("def linear_from_weights(W, b):\n    layer = nn.Linear(W.shape[1], W.shape[0])\n    return layer\n",
         "your layer maps"),
    ],
    checker=check_linear_from_weights,
)


# ---- 02.3 A named nn.Sequential of any depth

HINT_3 = "section 6 (nn.Sequential): layers with names, from an OrderedDict of (name, layer) pairs"


def _expected_network(input_size: int, hidden_sizes: list[int], output_size: int) -> nn.Sequential:
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
        what = f"build_network({input_size}, {hidden_sizes}, {output_size})"
        try:
            model = call(build_network, input_size, list(hidden_sizes), output_size, hint=HINT_3)
        except IndexError as err:
            raise Mistake(f"{what} raised IndexError ({str(err).strip()}): your code reads a hidden size that "
                          f"this list of {depth} does not have; build one (Linear, ReLU) pair per entry of "
                          "hidden_sizes with a loop, whatever its length", HINT_3) from None
        reference = _expected_network(input_size, hidden_sizes, output_size)
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


SOLUTION_3 = '''
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
    hint=HINT_3,
    more_hints=["loop over the consecutive pairs of widths [input_size, *hidden_sizes]: each pair gives one "
                "fc<i> and one relu<i>, numbered from 1; the output layer goes after the loop",
                "a name is a string: an f-string such as f\"fc{i}\" builds it from the loop's counter"],
    statement="""
Write `build_network(input_size, hidden_sizes, output_size)` that returns an `nn.Sequential` with named
layers for a list `hidden_sizes` of **any** length: `flatten` (`nn.Flatten()`), then for each hidden size
`fc1`, `relu1`, `fc2`, `relu2`, ... (`nn.Linear`, `nn.ReLU()`), and last `output`, an `nn.Linear` to
`output_size` with no activation after it (the network returns logits).

- **In:** `input_size` and `output_size`, whole numbers; `hidden_sizes`, a list of whole numbers (one entry or
  several).
- **Out:** an `nn.Sequential` with exactly these names and layers in this order; a batch of images
  `(batch, 1, h, w)` with `h * w == input_size` gives logits `(batch, output_size)`.
- **Use:** `nn.Flatten`, `nn.Linear`, `nn.ReLU`, `nn.Sequential` and `OrderedDict` (the answer cell imports
  it from `collections`).
- **Correct means:** the names and layer types in order, each `nn.Linear` of the right size, the parameter
  count that follows, and the output shape, for one, three and two hidden layers.
- **Reread:** section 6, *nn.Sequential* (and section 7, *Counting parameters*).
""",
    template=template_of(SOLUTION_3),
    solution=SOLUTION_3,
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
''', "reads a hidden size that"),
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
    checker=check_build_network,
)

EXERCISES = [EX_1, EX_2, EX_3]
