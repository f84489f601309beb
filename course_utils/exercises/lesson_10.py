"""Exercises of lesson 10: fan-in, He initialisation through Module.apply, Xavier's uniform scheme by hand."""
from __future__ import annotations

import math

import torch
from torch import nn

from course_utils.exercises.framework import Exercise, Mistake, forbid, generator, randint

LESSON = "10_weight_init"
HINT_APPLY = "lesson 10, section 2 (Initialisation functions and Module.apply)"
HINT_SCALE = "lesson 10, section 3 (The scale: why 1/√n)"
HINT_DEFAULT = "lesson 10, section 4 (What PyTorch does by default): Xavier uses both fans"


def _random_layers(gen: torch.Generator) -> list[nn.Module]:
    """A linear layer and two convolutions (one with a non-square kernel) of random sizes."""
    return [nn.Linear(randint(gen, 20, 90), randint(gen, 5, 30)),
            nn.Conv2d(randint(gen, 2, 9), randint(gen, 4, 16), randint(gen, 2, 5)),
            nn.Conv2d(randint(gen, 2, 9), randint(gen, 4, 16), (randint(gen, 1, 3), randint(gen, 4, 6)))]


# ---------------------------------------------------------------- 10.1 fan-in

def check_fan_in(fan_in) -> str:
    gen = generator("10.1")
    tested = []
    for layer in _random_layers(gen):
        got = fan_in(layer)
        expected = layer.weight[0].numel()
        if isinstance(got, torch.Tensor) and got.numel() == 1:
            got = got.item()
        if not isinstance(got, int) or isinstance(got, bool):
            raise Mistake(f"fan_in({layer}) should be a whole number (int), your code returned a "
                          f"{type(got).__name__}", HINT_APPLY)
        if got != expected:
            why = ""
            if got == layer.weight.shape[0]:
                why = ": that is the number of outputs (fan_out), the weight's first dimension"
            elif isinstance(layer, nn.Conv2d) and got == layer.in_channels:
                why = ": that counts the input channels only; each output also sums over the kH × kW kernel positions"
            raise Mistake(f"fan_in({layer}) returned {got}, expected {expected}{why}", HINT_APPLY)
        tested.append(str(layer))
    return f"{', '.join(tested)}"


FAN_IN = Exercise(
    id="10.1", lesson=LESSON, title="The fan-in of a layer", name="fan_in", hint=HINT_APPLY,
    statement="""
Write `fan_in(layer)`: the number of inputs that each output unit of `layer` sums, the `n` of the
`1/√n` rule. For `nn.Linear` that is `in_features`; for `nn.Conv2d` it is `in_channels × kH × kW`
(kernels may be non-square, e.g. `(2, 5)`). One expression can serve both kinds of layer.

- in: an `nn.Linear` or `nn.Conv2d`
- out: a Python `int`

Correct means: the exact count, for one linear layer and two convolutions of random sizes.

See lesson 10, section 2 (`fan_in` there) and section 3.
""",
    template='''
def fan_in(layer):
    """Inputs per output unit of an nn.Linear or nn.Conv2d."""
    raise NotImplementedError  # your code here
''',
    solution='''
def fan_in(layer):
    """Inputs per output unit of an nn.Linear or nn.Conv2d."""
    return layer.weight[0].numel()  # weight: (out, in) or (out, in_channels, kH, kW); one row per output unit
''',
    alternatives=['''
def fan_in(layer):
    if isinstance(layer, nn.Linear):
        return layer.in_features
    kh, kw = layer.kernel_size
    return layer.in_channels * kh * kw
''', '''
def fan_in(layer):
    return math.prod(layer.weight.shape[1:])
'''],
    wrong_answers=[
        ("def fan_in(layer):\n    return layer.weight.shape[0]\n", "fan_out"),
        ("def fan_in(layer):\n    return layer.weight.shape[1]\n", "counts the input channels only"),
        ("def fan_in(layer):\n    return layer.in_features\n", "AttributeError"),
        ("def fan_in(layer):\n    return float(layer.weight[0].numel())\n", "should be a whole number"),
    ],
    checker=check_fan_in,
)


# ---------------------------------------------------------------- 10.2 He initialisation

def _model(gen: torch.Generator) -> nn.Sequential:
    """Layers to initialise (large enough for stable statistics) and layers to leave alone."""
    return nn.Sequential(nn.Linear(randint(gen, 100, 300), 256), nn.ReLU(),
                         nn.Conv2d(randint(gen, 8, 16), 64, 3), nn.BatchNorm1d(32), nn.Embedding(10, 4),
                         nn.Sequential(nn.Linear(128, randint(gen, 200, 300))))


def check_init_he(init_he) -> str:
    gen = generator("10.2")
    model = _model(gen)
    with torch.no_grad():  # values a scheme for Linear/Conv2d must not touch
        model[3].weight.fill_(0.5)
        model[3].bias.fill_(0.25)
    others = {name: p.detach().clone() for name, p in model.named_parameters() if name.startswith(("3.", "4."))}
    default_std = {name: m.weight.detach().double().std().item() for name, m in model.named_modules()
                   if isinstance(m, (nn.Linear, nn.Conv2d))}
    result = model.apply(init_he)
    if result is not model:
        raise Mistake("model.apply(init_he) did not return the model: do not change what apply returns "
                      "(init_he itself should return nothing)", HINT_APPLY)
    for name, value in others.items():
        if not torch.equal(dict(model.named_parameters())[name], value):
            kind = type(model.get_submodule(name.split(".")[0])).__name__
            raise Mistake(f"your code changed {kind}'s {name.split('.')[-1]}: initialise only nn.Linear and "
                          "nn.Conv2d layers (test with isinstance), other layers with a weight keep theirs",
                          HINT_APPLY)
    checked = []
    for name, layer in model.named_modules():
        if not isinstance(layer, (nn.Linear, nn.Conv2d)):
            continue
        kind = type(layer).__name__
        weight = layer.weight.detach().double().flatten()
        target = math.sqrt(2 / layer.weight[0].numel())
        std = weight.std().item()
        if math.isclose(std, default_std[name], rel_tol=1e-9):
            raise Mistake(f"the {kind} layer {layer} still has PyTorch's default weights: your function must "
                          f"handle both nn.Linear and nn.Conv2d, e.g. isinstance(m, (nn.Linear, nn.Conv2d))",
                          HINT_APPLY)
        if layer.bias is not None and layer.bias.detach().abs().max() != 0:
            raise Mistake(f"the biases of {layer} are not zero: set them with nn.init.zeros_", HINT_APPLY)
        if abs(std / target - 1) > 0.05:
            why = ""
            if abs(std * math.sqrt(layer.weight[0].numel()) - 1) < 0.05:
                why = " (that is 1/√fan_in; He's scheme for ReLU doubles the variance: √(2/fan_in))"
            raise Mistake(f"the weights of {layer} have standard deviation {std:.4f}, expected √(2/fan_in) = "
                          f"{target:.4f}{why}", HINT_SCALE)
        if abs(weight.mean().item()) > 5 * target / math.sqrt(weight.numel()):
            raise Mistake(f"the weights of {layer} have mean {weight.mean().item():.4f}, expected 0", HINT_SCALE)
        beyond = (weight.abs() > 2 * target).double().mean().item()  # normal: 4.6 %; uniform of this std: 0
        if beyond < 0.02:
            raise Mistake(f"the weights of {layer} look uniform, not normal: only {beyond:.1%} lie beyond two "
                          "standard deviations (a normal distribution puts 4.6 % there); use "
                          "nn.init.kaiming_normal_ or normal_", HINT_SCALE)
        checked.append(kind)
    return (f"model.apply on {len(checked)} layers ({', '.join(checked)}): normal weights of std √(2/fan_in) "
            "within 5 %, zero biases; BatchNorm1d and Embedding untouched")


INIT_HE = Exercise(
    id="10.2", lesson=LESSON, title="He initialisation with Module.apply", name="init_he", hint=HINT_APPLY,
    statement="""
Write `init_he(m)`, a function for `model.apply(init_he)`: for every `nn.Linear` and `nn.Conv2d`
layer it draws the weights from a normal distribution with mean 0 and standard deviation
`√(2 / fan_in)` (He et al., for ReLU networks) and sets the biases to zero. Every other module,
including ones that have a `weight` (`nn.BatchNorm1d`, `nn.Embedding`), keeps its parameters.

- in: one module (`apply` calls it on every submodule); returns nothing

Correct means: after `model.apply(init_he)` on a model with linear and convolutional layers, nested ones
included, each such layer's weights have standard deviation within 5 % of `√(2/fan_in)`, mean
≈ 0 and a normal (not uniform) shape; biases exactly 0; other layers unchanged.

See lesson 10, sections 2 and 3 (`init_kaiming`).
""",
    template='''
def init_he(m):
    """For model.apply: He-normal weights and zero biases for nn.Linear and nn.Conv2d; other modules untouched."""
    raise NotImplementedError  # your code here
''',
    solution='''
def init_he(m):
    """For model.apply: He-normal weights and zero biases for nn.Linear and nn.Conv2d; other modules untouched."""
    if isinstance(m, (nn.Linear, nn.Conv2d)):
        nn.init.kaiming_normal_(m.weight, nonlinearity="relu")  # std sqrt(2 / fan_in)
        if m.bias is not None:
            nn.init.zeros_(m.bias)
''',
    alternatives=['''
def init_he(m):
    if type(m) in (nn.Linear, nn.Conv2d):
        with torch.no_grad():
            n = m.weight[0].numel()
            m.weight.normal_(0.0, math.sqrt(2.0 / n))
            m.bias.zero_()
'''],
    wrong_answers=[
        ('''
def init_he(m):
    if isinstance(m, nn.Linear):
        nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
        nn.init.zeros_(m.bias)
''', "still has PyTorch's default weights"),
        ('''
def init_he(m):
    if isinstance(m, (nn.Linear, nn.Conv2d)):
        nn.init.normal_(m.weight, std=1 / math.sqrt(m.weight[0].numel()))
        nn.init.zeros_(m.bias)
''', "that is 1/√fan_in"),
        ('''
def init_he(m):
    if isinstance(m, (nn.Linear, nn.Conv2d)):
        nn.init.kaiming_uniform_(m.weight, nonlinearity="relu")
        nn.init.zeros_(m.bias)
''', "look uniform, not normal"),
        ('''
def init_he(m):
    if isinstance(m, (nn.Linear, nn.Conv2d)):
        nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
''', "biases of"),
        ('''
def init_he(m):
    if hasattr(m, "weight"):
        nn.init.normal_(m.weight, std=math.sqrt(2 / m.weight[0].numel()))
        if getattr(m, "bias", None) is not None:
            nn.init.zeros_(m.bias)
''', "your code changed BatchNorm1d's weight"),
    ],
    checker=check_init_he,
)


# ---------------------------------------------------------------- 10.3 Xavier uniform by hand

def check_xavier_uniform(xavier_uniform_) -> str:
    gen = generator("10.3")
    shapes = [(randint(gen, 150, 300), randint(gen, 100, 200)),                        # a linear layer's weight
              (randint(gen, 64, 96), randint(gen, 16, 24), randint(gen, 3, 5), randint(gen, 3, 5))]  # a convolution's
    tested = []
    for shape in shapes:
        weight = nn.Parameter(torch.full(shape, 7.0))
        pointer = weight.data_ptr()
        receptive = math.prod(shape[2:])
        fan_in, fan_out = shape[1] * receptive, shape[0] * receptive
        bound = math.sqrt(6 / (fan_in + fan_out))
        with forbid((nn.init, "xavier_uniform_"), what="nn.init.xavier_uniform_", hint=HINT_DEFAULT):
            result = xavier_uniform_(weight)
        if result is not weight:
            raise Mistake("xavier_uniform_ must fill the tensor it is given, in place, and return that same "
                          "tensor (as nn.init functions do), not a new one", HINT_DEFAULT)
        if weight.data_ptr() != pointer or bool((weight == 7.0).any()):
            raise Mistake("the weight was not filled in place: every value must be overwritten (weight.uniform_(...) "
                          "inside torch.no_grad())", HINT_DEFAULT)
        if not (weight.requires_grad and weight.is_leaf):
            raise Mistake("after your code the weight no longer requires grad as a leaf: fill it under "
                          "torch.no_grad() and keep requires_grad", HINT_DEFAULT)
        values = weight.detach().double()
        largest = values.abs().max().item()
        what = f"for a weight of shape {shape} (fan_in {fan_in}, fan_out {fan_out})"
        if largest > bound * (1 + 1e-6) or largest < 0.97 * bound:
            why = ""
            if len(shape) == 4 and math.isclose(largest, math.sqrt(6 / (shape[0] + shape[1])), rel_tol=0.03):
                why = "; your bound ignores the kernel: for a convolution both fans include kH × kW"
            raise Mistake(f"{what} the largest |w| is {largest:.4f}, but the bound √(6 / (fan_in + fan_out)) is "
                          f"{bound:.4f}: U(-bound, bound) comes within a hair of it and never passes it{why}",
                          HINT_DEFAULT)
        ratio = values.var().item() / (bound ** 2 / 3)
        if abs(ratio - 1) > 0.05:
            raise Mistake(f"{what} the variance is {ratio:.2f} × bound²/3: the values are not uniform on "
                          "(-bound, bound)", HINT_DEFAULT)
        tested.append(str(shape))
    return f"weights of shapes {', '.join(tested)} filled in place with U(-b, b), b = √(6 / (fan_in + fan_out))"


XAVIER = Exercise(
    id="10.3", lesson=LESSON, title="Xavier's uniform initialisation, written yourself", name="xavier_uniform_",
    hint=HINT_DEFAULT,
    statement="""
Write `xavier_uniform_(weight)`, Glorot and Bengio's scheme: fill `weight` **in place** with values
drawn uniformly from `(-b, b)`, `b = √(6 / (fan_in + fan_out))`, and return it. For a linear
weight `(out, in)`, `fan_in = in` and `fan_out = out`; for a convolution weight
`(out, in, kH, kW)` both are multiplied by `kH × kW`.

- in: an `nn.Parameter` (requires grad) of 2 or 4 dimensions
- out: the same tensor object, filled; it must still be a leaf that requires grad
- not allowed: `nn.init.xavier_uniform_` (other functions of `nn.init` are fine)
- an in-place change of a parameter needs `torch.no_grad()`, as the `nn.init` functions use

Correct means: for a linear and a convolution weight of random sizes, no value beyond `b`, the largest
within 3 % of it, and the variance within 5 % of `b²/3`, that of a uniform distribution.

See lesson 10, section 4 (What PyTorch does by default).
""",
    template='''
def xavier_uniform_(weight):
    """Fill `weight` in place with U(-b, b), b = sqrt(6 / (fan_in + fan_out)); return it."""
    raise NotImplementedError  # your code here
''',
    solution='''
def xavier_uniform_(weight):
    """Fill `weight` in place with U(-b, b), b = sqrt(6 / (fan_in + fan_out)); return it."""
    receptive_field = weight[0, 0].numel()        # kH * kW for a convolution, 1 for a linear layer
    fan_in = weight.shape[1] * receptive_field
    fan_out = weight.shape[0] * receptive_field
    bound = math.sqrt(6 / (fan_in + fan_out))
    with torch.no_grad():                          # an in-place change of a parameter must not be recorded
        weight.uniform_(-bound, bound)
    return weight
''',
    alternatives=['''
def xavier_uniform_(weight):
    fan_in = weight[0].numel()
    fan_out = weight[:, 0].numel()
    bound = (6 / (fan_in + fan_out)) ** 0.5
    return nn.init.uniform_(weight, -bound, bound)
''', '''
def xavier_uniform_(weight):
    fan_in, fan_out = weight[0].numel(), weight.numel() // weight.shape[1]
    b = math.sqrt(6.0 / (fan_in + fan_out))
    weight.data.copy_((torch.rand(weight.shape) * 2 - 1) * b)
    return weight
'''],
    wrong_answers=[
        ('''
def xavier_uniform_(weight):
    bound = math.sqrt(6 / (weight.shape[0] + weight.shape[1]))
    with torch.no_grad():
        weight.uniform_(-bound, bound)
    return weight
''', "your bound ignores the kernel"),
        ('''
def xavier_uniform_(weight):
    return nn.init.xavier_uniform_(weight)
''', "your code called nn.init.xavier_uniform_"),
        ('''
def xavier_uniform_(weight):
    bound = math.sqrt(6 / (weight[0].numel() + weight[:, 0].numel()))
    return torch.empty_like(weight).uniform_(-bound, bound)
''', "in place, and return that same tensor"),
        ('''
def xavier_uniform_(weight):
    std = math.sqrt(2 / (weight[0].numel() + weight[:, 0].numel()))
    with torch.no_grad():
        weight.normal_(0, std)
    return weight
''', "the largest |w|"),
        ('''
def xavier_uniform_(weight):
    bound = math.sqrt(6 / (weight[0].numel() + weight[:, 0].numel()))
    weight.uniform_(-bound, bound)
    return weight
''', "a leaf Variable that requires grad"),
    ],
    checker=check_xavier_uniform,
)

EXERCISES = [FAN_IN, INIT_HE, XAVIER]
