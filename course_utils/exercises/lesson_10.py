"""Exercises of lesson 10: both fans of a weight, a normal initialisation with a chosen gain, Xavier by hand."""
from __future__ import annotations

import math

import torch
from torch import nn

from course_utils.exercises.framework import (
    Exercise,
    Mistake,
    call,
    describe,
    distinct_sizes,
    forbid,
    generator,
    randint,
    template_of,
    variant,
)

LESSON = "10_weight_init"


# ---------------------------------------------------------------- 10.1 The two fans of a weight

HINT_1 = ("section 2 (Initialisation functions and Module.apply): fan_in counts the inputs each output unit sums; "
          "section 4 adds fan_out")


def _weights(gen: torch.Generator) -> list[torch.Tensor]:
    """Weights of a linear layer, a 1-d, a 2-d (non-square kernel) and a 3-d convolution, random sizes, all differ."""
    out, inp = distinct_sizes(gen, 2, 3, 40)
    shapes = [(out, inp),
              (randint(gen, 4, 9), randint(gen, 2, 3), randint(gen, 3, 7)),                        # Conv1d
              (randint(gen, 4, 9), randint(gen, 2, 3), randint(gen, 1, 2), randint(gen, 3, 5)),    # Conv2d
              (randint(gen, 2, 3), randint(gen, 4, 5), 3, 2, 2)]                                   # Conv3d
    return [torch.randn(shape, generator=gen) for shape in shapes]


def check_fans(fans) -> str:
    gen = generator("10.1")
    tested = []
    for weight in _weights(gen):
        receptive = math.prod(weight.shape[2:])
        expected = (weight.shape[1] * receptive, weight.shape[0] * receptive)
        what = f"fans(weight) for a weight of shape {tuple(weight.shape)}"
        try:
            with forbid((nn.init, "_calculate_fan_in_and_fan_out"), what="nn.init._calculate_fan_in_and_fan_out",
                        hint=HINT_1):
                got = call(fans, weight, hint=HINT_1)
        except IndexError as err:
            raise Mistake(f"{what} raised IndexError ({err}): your code reads a dimension this weight does not "
                          f"have; a weight has 2 dims (linear) or 2 plus one per kernel side (convolutions of 1, 2 or "
                          "3 dims): take the kernel as everything after the first two", HINT_1) from None
        if not (isinstance(got, tuple) and len(got) == 2):
            raise Mistake(f"{what} returned {describe(got)}; return a pair (fan_in, fan_out)", HINT_1)
        for name, value in zip(("fan_in", "fan_out"), got):
            if not isinstance(value, int) or isinstance(value, bool):
                raise Mistake(f"{what}: {name} is {describe(value)}, but a Python int is asked for (a tensor's "
                              ".numel() and math.prod of a shape are ints; a product of tensor elements is not)",
                              HINT_1)
        if got != expected:
            why = ""
            if got == expected[::-1]:
                why = ": fan_in and fan_out are swapped; the weight is (out, in, *kernel), fan_in comes from dim 1"
            elif got[0] == weight.shape[1] != expected[0]:
                why = (": fan_in counts the input channels only; each output unit also sums over every position "
                       "of the kernel")
            elif got[1] == weight.shape[0] != expected[1]:
                why = ": fan_out ignores the kernel; each input feeds every kernel position of every output channel"
            raise Mistake(f"{what} returned {got}, expected {expected}{why}", HINT_1)
        tested.append(str(tuple(weight.shape)))
    return f"ints (fan_in, fan_out) for weights of shapes {', '.join(tested)}: linear, Conv1d, Conv2d, Conv3d"


SOLUTION_1 = '''
def fans(weight):
    """(fan_in, fan_out) of a weight (out, in) or (out, in, *kernel), as Python ints."""
    per_output, per_input = weight[0].numel(), weight[:, 0].numel()  # one output unit's inputs, one input's outputs
    return per_output, per_input
'''

EX_1 = Exercise(
    id="10.1", lesson=LESSON, title="The two fans of a weight", name="fans", hint=HINT_1,
    more_hints=["the weight is (out, in, *kernel): fan_in is in times the number of kernel positions, fan_out is "
                "out times the same number; for a linear weight the kernel is empty and counts 1",
                "indexing the first dim away leaves the part one output unit uses; a slice of dim 1 leaves what "
                "one input channel feeds; .numel() counts either as an int"],
    statement="""
Write `fans(weight)`: the pair `(fan_in, fan_out)` of a layer's weight, for any kind of layer the
course has met and one it has not. `fan_in` is the number of inputs each output unit sums (the `n` of
the `1/√n` rule); `fan_out` is the number of output values each input feeds. A weight is
`(out, in)` for `nn.Linear` and `(out, in, *kernel)` for a convolution, with one kernel side for
`nn.Conv1d`, two for `nn.Conv2d` and three for `nn.Conv3d`; both fans then count every kernel position.

- **In:** `weight`, a tensor of 2 to 5 dims: `(out, in)` or `(out, in, *kernel)`; kernels may be non-square.
- **Out:** a tuple `(fan_in, fan_out)` of two Python `int`s (not tensors); `weight` unchanged.
- **Use:** the weight's shape or indexing and `.numel()` (`math.prod` is fine); not
  `nn.init._calculate_fan_in_and_fan_out`, which does it for you.
- **Correct means:** exactly `(in * k, out * k)`, k the number of kernel positions, as Python `int`s, for
  a linear weight and a Conv1d, Conv2d and Conv3d weight on every run.
- **Reread:** section 2, *Initialisation functions and `Module.apply`*.
""",
    template=template_of(SOLUTION_1),
    solution=SOLUTION_1,
    alternatives=['''
def fans(weight):
    kernel = math.prod(weight.shape[2:])
    return weight.shape[1] * kernel, weight.shape[0] * kernel
'''],
    wrong_answers=[
        (variant(SOLUTION_1, ("return per_output, per_input", "return per_input, per_output")), "are swapped"),
        (variant(SOLUTION_1, ("return per_output, per_input", "return weight.shape[1], per_input")),
         "counts the input channels only"),
        (variant(SOLUTION_1, ("return per_output, per_input", "return per_output, weight.shape[0]")),
         "fan_out ignores the kernel"),
        ('''
def fans(weight):
    kernel = torch.tensor(weight.shape[2:]).prod()
    return weight.shape[1] * kernel, weight.shape[0] * kernel
''', "a Python int is asked for"),
        ('''
def fans(weight):
    if weight.dim() == 2:
        return weight.shape[1], weight.shape[0]
    kernel = weight.shape[2] * weight.shape[3]
    return weight.shape[1] * kernel, weight.shape[0] * kernel
''', "reads a dimension this weight does not have"),
        ('''
def fans(weight):
    return nn.init._calculate_fan_in_and_fan_out(weight)
''', "your code called nn.init._calculate_fan_in_and_fan_out"),
    ],
    checker=check_fans,
)


# ---------------------------------------------------------------- 10.2 An initialisation with a gain of your choice

HINT_2 = "section 3 (The scale: why 1/√n): the standard deviation is a gain over √fan_in"


def _model(gen: torch.Generator) -> nn.Sequential:
    """Layers to initialise (large enough for stable statistics), nested ones too, and layers to leave alone."""
    return nn.Sequential(nn.Linear(randint(gen, 100, 300), 256), nn.Tanh(),
                         nn.Conv2d(randint(gen, 8, 16), 64, (3, 2)), nn.BatchNorm1d(32), nn.Embedding(10, 4),
                         nn.Sequential(nn.Linear(128, randint(gen, 200, 300), bias=False)))


def check_scaled_normal_init(scaled_normal_init) -> str:
    gen = generator("10.2")
    gains = [1.0, 5 / 3, float(torch.rand((), generator=gen)) * 2 + 0.3]  # 5/3: the gain nn.init uses for tanh
    for gain in gains:
        model = _model(gen)
        with torch.no_grad():  # values a scheme for Linear/Conv2d must not touch
            model[3].weight.fill_(0.5)
            model[3].bias.fill_(0.25)
        others = {name: p.detach().clone() for name, p in model.named_parameters() if name.startswith(("3.", "4."))}
        default_std = {name: m.weight.detach().double().std().item() for name, m in model.named_modules()
                       if isinstance(m, (nn.Linear, nn.Conv2d))}
        init = call(scaled_normal_init, gain, hint=HINT_2)
        if not callable(init):
            raise Mistake(f"scaled_normal_init({gain:.3f}) returned {describe(init)}; it should return a function "
                          "that model.apply can call on every module (define one inside and return it)", HINT_2)
        result = model.apply(init)
        if result is not model:
            raise Mistake("model.apply(init) did not return the model: the function you return should change the "
                          "module it is given and return nothing", HINT_2)
        for name, value in others.items():
            if not torch.equal(dict(model.named_parameters())[name], value):
                kind = type(model.get_submodule(name.split(".")[0])).__name__
                raise Mistake(f"your code changed {kind}'s {name.split('.')[-1]}: initialise only nn.Linear and "
                              "nn.Conv2d layers (test with isinstance), other layers with a weight keep theirs",
                              HINT_2)
        for name, layer in model.named_modules():
            if not isinstance(layer, (nn.Linear, nn.Conv2d)):
                continue
            weight = layer.weight.detach().double().flatten()
            n = layer.weight[0].numel()
            target, std = gain / math.sqrt(n), weight.std().item()
            if math.isclose(std, default_std[name], rel_tol=1e-9):
                raise Mistake(f"the layer {layer} still has PyTorch's default weights: the function must handle "
                              "nn.Linear and nn.Conv2d, nested ones too (model.apply reaches them)", HINT_2)
            if layer.bias is not None and layer.bias.detach().abs().max() != 0:
                raise Mistake(f"the biases of {layer} are not zero: set them with nn.init.zeros_; a layer built "
                              "with bias=False has none to set (test `m.bias is not None`)", HINT_2)
            if abs(std / target - 1) > 0.05:
                why = ""
                if abs(std * math.sqrt(n) - 1) < 0.05:
                    why = " (that is 1/√fan_in: the gain was left out)"
                elif abs(std / (target * math.sqrt(2)) - 1) < 0.05:
                    why = " (√2 too much: the gain replaces He's √2, it does not multiply it)"
                elif isinstance(layer, nn.Conv2d) and abs(std * math.sqrt(layer.in_channels) / gain - 1) < 0.05:
                    why = " (your fan_in counts the input channels only; it is in_channels × kH × kW)"
                raise Mistake(f"with gain {gain:.3f}, the weights of {layer} have standard deviation {std:.4f}, "
                              f"expected gain / √fan_in = {target:.4f}{why}", HINT_2)
            if abs(weight.mean().item()) > 5 * target / math.sqrt(weight.numel()):
                raise Mistake(f"the weights of {layer} have mean {weight.mean().item():.4f}, expected 0", HINT_2)
            beyond = (weight.abs() > 2 * target).double().mean().item()  # normal: 4.6 %; uniform of this std: 0
            if beyond < 0.02:
                raise Mistake(f"the weights of {layer} look uniform, not normal: only {beyond:.1%} lie beyond two "
                              "standard deviations (a normal distribution puts 4.6 % there); draw them with "
                              "nn.init.normal_", HINT_2)
    return (f"gains {', '.join(f'{g:.3f}' for g in gains)} on a model with Linear and Conv2d layers, a nested one "
            "without bias: normal weights of std gain/√fan_in within 5 %, zero biases; BatchNorm1d and Embedding "
            "untouched")


SOLUTION_2 = '''
def scaled_normal_init(gain):
    """A function for model.apply: N(0, (gain / sqrt(fan_in))^2) weights, zero biases, Linear and Conv2d only."""
    def init(module):
        if not isinstance(module, (nn.Linear, nn.Conv2d)):
            return
        inputs_per_unit = module.weight[0].numel()
        with torch.no_grad():
            module.weight.normal_(0.0, gain / math.sqrt(inputs_per_unit))
            if module.bias is not None:
                module.bias.zero_()
    return init
'''

EX_2 = Exercise(
    id="10.2", lesson=LESSON, title="An initialisation with a gain of your choice", name="scaled_normal_init",
    hint=HINT_2,
    more_hints=["define a small function of one module inside scaled_normal_init and return it: it can read `gain`, "
                "and model.apply calls it on every submodule",
                "inside it: isinstance(module, (nn.Linear, nn.Conv2d)), then nn.init.normal_ with std gain divided by "
                "the square root of fan_in (module.weight[0].numel()), and nn.init.zeros_ for a bias that exists"],
    statement="""
Write `scaled_normal_init(gain)`, which **returns a function** for `model.apply`. The lesson's
schemes each hard-wire one scale; this one takes it as a parameter: the returned function draws the
weights of every `nn.Linear` and `nn.Conv2d` from a normal distribution with mean 0 and standard
deviation `gain / √fan_in`, and sets their biases to zero. `gain = √2` gives He's scheme for ReLU,
`gain = 1` the `1/√n` scheme, `5/3` the one `nn.init` suggests for tanh. Every other module, including
ones that have a `weight` (`nn.BatchNorm1d`, `nn.Embedding`), keeps its parameters.

- **In:** `gain`, a positive float.
- **Out:** a function of one module that changes `nn.Linear` and `nn.Conv2d` layers in place and returns nothing.
- **Use:** `nn.init` (or in-place fills under `torch.no_grad()`), `isinstance`, `math`; a layer may have no bias.
- **Correct means:** after `model.apply(scaled_normal_init(gain))` for gains 1, 5/3 and a random one, on a
  model with linear and convolutional layers (a nested one without bias), each such layer's weights have
  standard deviation within 5 % of `gain/√fan_in`, mean ≈ 0 and a normal (not uniform) shape; biases
  exactly 0; `BatchNorm1d` and `Embedding` unchanged.
- **Reread:** section 3, *The scale: why 1/√n*.
""",
    template=template_of(SOLUTION_2),
    solution=SOLUTION_2,
    alternatives=['''
def scaled_normal_init(gain):
    def init(m):
        if type(m) in (nn.Linear, nn.Conv2d):
            nn.init.normal_(m.weight, std=gain * m.weight[0].numel() ** -0.5)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
    return init
'''],
    wrong_answers=[
        (variant(SOLUTION_2, ("(nn.Linear, nn.Conv2d)", "nn.Linear")), "still has PyTorch's default weights"),
        (variant(SOLUTION_2, ("gain / math.sqrt", "1 / math.sqrt")), "the gain was left out"),
        (variant(SOLUTION_2, ("gain / math.sqrt(inputs_per_unit)", "gain * math.sqrt(2 / inputs_per_unit)")),
         "√2 too much"),
        (variant(SOLUTION_2, ("module.weight[0].numel()", "module.weight.shape[1]")), "input channels only"),
        (variant(SOLUTION_2, ("module.weight.normal_(0.0, gain / math.sqrt(inputs_per_unit))",
                              "bound = gain / math.sqrt(inputs_per_unit) * math.sqrt(3)\n"
                              "            module.weight.uniform_(-bound, bound)")), "look uniform, not normal"),
        (variant(SOLUTION_2, ("            if module.bias is not None:\n                module.bias.zero_()\n", "")),
         "biases of"),
        (variant(SOLUTION_2, ("if not isinstance(module, (nn.Linear, nn.Conv2d)):",
                              "if not hasattr(module, \"weight\"):"),
                 ("            if module.bias is not None:",
                  "            if getattr(module, \"bias\", None) is not None:")),
         "your code changed BatchNorm1d's weight"),
        ('''
def scaled_normal_init(gain):
    return nn.init.calculate_gain("relu") * gain
''', "it should return a function"),
    ],
    checker=check_scaled_normal_init,
)


# ------------------------------------------------------------ 10.3 Xavier's uniform initialisation, written yourself

HINT_3 = "section 4 (What PyTorch does by default): Xavier's bound uses both fans"

def check_xavier_uniform_(xavier_uniform_) -> str:
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
        with forbid((nn.init, "xavier_uniform_"), what="nn.init.xavier_uniform_", hint=HINT_3):
            try:
                result = xavier_uniform_(weight)
            except RuntimeError as err:
                if "leaf Variable" not in str(err):
                    raise
                raise Mistake(f"your code raised RuntimeError ({str(err).strip()}): PyTorch refuses an in-place change "
                              "of a parameter that requires grad while it records gradients; fill it inside "
                              "`with torch.no_grad():`, as the nn.init functions do", HINT_3) from None
        if result is not weight:
            raise Mistake("xavier_uniform_ must fill the tensor it is given, in place, and return that same "
                          "tensor (as nn.init functions do), not a new one", HINT_3)
        if weight.data_ptr() != pointer or bool((weight == 7.0).any()):
            raise Mistake("the weight was not filled in place: every value must be overwritten (weight.uniform_(...) "
                          "inside torch.no_grad())", HINT_3)
        if not (weight.requires_grad and weight.is_leaf):
            raise Mistake("after your code the weight no longer requires grad as a leaf: fill it under "
                          "torch.no_grad() and keep requires_grad", HINT_3)
        values = weight.detach().double()
        largest = values.abs().max().item()
        what = f"for a weight of shape {shape} (fan_in {fan_in}, fan_out {fan_out})"
        if largest > bound * (1 + 1e-6) or largest < 0.97 * bound:
            why = ""
            if len(shape) == 4 and math.isclose(largest, math.sqrt(6 / (shape[0] + shape[1])), rel_tol=0.03):
                why = "; your bound ignores the kernel: for a convolution both fans include kH × kW"
            raise Mistake(f"{what} the largest |w| is {largest:.4f}, but the bound √(6 / (fan_in + fan_out)) is "
                          f"{bound:.4f}: U(-bound, bound) comes within a hair of it and never passes it{why}",
                          HINT_3)
        ratio = values.var().item() / (bound ** 2 / 3)
        if abs(ratio - 1) > 0.05:
            raise Mistake(f"{what} the variance is {ratio:.2f} × bound²/3: the values are not uniform on "
                          "(-bound, bound)", HINT_3)
        tested.append(str(shape))
    return f"weights of shapes {', '.join(tested)} filled in place with U(-b, b), b = √(6 / (fan_in + fan_out))"


SOLUTION_3 = '''
def xavier_uniform_(weight):
    """Fill `weight` in place with U(-b, b), b = sqrt(6 / (fan_in + fan_out)); return it."""
    receptive_field = weight[0, 0].numel()        # kH * kW for a convolution, 1 for a linear layer
    fan_in = weight.shape[1] * receptive_field
    fan_out = weight.shape[0] * receptive_field
    bound = math.sqrt(6 / (fan_in + fan_out))
    with torch.no_grad():                          # an in-place change of a parameter must not be recorded
        weight.uniform_(-bound, bound)
    return weight
'''

EX_3 = Exercise(
    id="10.3", lesson=LESSON, title="Xavier's uniform initialisation, written yourself", name="xavier_uniform_",
    hint=HINT_3,
    more_hints=["fan_in is weight[0].numel() and fan_out the number of values in one slice weight[:, 0]; "
                "the bound is the square root of 6 over their sum",
                "fill in place with the tensor method uniform_(-bound, bound) inside torch.no_grad(), then return "
                "the same tensor"],
    statement="""
Write `xavier_uniform_(weight)`, Glorot and Bengio's scheme: fill `weight` **in place** with values
drawn uniformly from `(-b, b)`, `b = √(6 / (fan_in + fan_out))`, and return it. For a linear
weight `(out, in)`, `fan_in = in` and `fan_out = out`; for a convolution weight
`(out, in, kH, kW)` both are multiplied by `kH × kW`.

- **In:** `weight`, an `nn.Parameter` (requires grad) of 2 or 4 dims.
- **Out:** the same tensor object, every value overwritten; still a leaf that requires grad.
- **Use:** `math`, tensor methods, other `nn.init` functions (e.g. `nn.init.uniform_`); not
  `nn.init.xavier_uniform_`. An in-place change of a parameter needs `torch.no_grad()`.
- **Correct means:** for a linear and a convolution weight of random sizes: the same object returned, no
  value left as it was, no value beyond `b`, the largest within 3 % of it, and the variance within
  5 % of `b²/3`, that of a uniform distribution.
- **Reread:** section 4, *What PyTorch does by default*.
""",
    template=template_of(SOLUTION_3),
    solution=SOLUTION_3,
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
''', "fill it inside `with torch.no_grad():`"),
    ],
    checker=check_xavier_uniform_,
)

EXERCISES = [EX_1, EX_2, EX_3]
