"""Exercises of appendix A1: a batch on the model's device and dtype, training memory, one autocast context."""
from __future__ import annotations

import inspect
import re

import torch
from torch import nn

from course_utils.exercises.framework import (
    Exercise,
    Mistake,
    call,
    describe,
    expect_tensor,
    generator,
    randint,
    template_of,
    variant,
)

LESSON = "A1_devices_and_gpus"


# ---------------------------------------------------------------- A1.1 the model's device and dtype

HINT_1 = 'appendix A1, section 3 ("Expected all tensors to be on the same device"): ask one of the parameters'


_DEVICE_NAME = re.compile(r"""["'](cuda(?::\d+)?|cpu|mps)["']|\.(cuda|cpu)\(""")


def _named_devices(function) -> list[str]:
    """The devices an answer's source names ("cuda", .cpu(), ...): on a machine without that device it still passes."""
    try:
        source = inspect.getsource(function)
    except (OSError, TypeError):
        return []
    return sorted({quoted or f".{method}()" for quoted, method in _DEVICE_NAME.findall(source)})


def check_to_model(to_model) -> str:
    named = _named_devices(to_model)
    if named:
        raise Mistake(f"your code names a device ({', '.join(named)}): it then works only where that device is (or "
                      "is not); take the device from the model, next(model.parameters()).device", HINT_1)
    gen = generator("A1.1")
    features = randint(gen, 3, 8)
    batch = torch.randn(randint(gen, 1, 5), features, generator=gen)
    # The meta device stands in for a GPU: tensors there have a shape, a dtype and a device, but no values.
    cases = [("a float64 model on the CPU", nn.Linear(features, 2).double(), batch),
             ("a model on another device (meta), batch float64 on the CPU", nn.Linear(features, 2).to("meta"),
              batch.double())]
    for what, model, x in cases:
        parameter = next(model.parameters())
        device, dtype = parameter.device, parameter.dtype
        x_before = x.clone()
        got = to_model(model, x)
        if next(model.parameters()).device != device or next(model.parameters()).dtype != dtype:
            raise Mistake(f"for {what} your code moved or converted the model; move the batch to the model, "
                          "not the model to the batch (the optimiser holds the model's parameters)", HINT_1)
        if x.dtype != x_before.dtype or x.device != x_before.device or not torch.equal(x, x_before):
            raise Mistake(f"for {what} your code changed the batch it was given (now {describe(x)}, was "
                          f"{describe(x_before)}): return a new tensor and leave the caller's batch as it was", HINT_1)
        if not isinstance(got, torch.Tensor):
            raise Mistake(f"for {what} your code returned {type(got).__name__}, expected the batch as a tensor",
                          HINT_1)
        if got.device != device:
            raise Mistake(f"for {what} the batch you returned is on {got.device}, but the model is on {device}: "
                          "take the device from the model, next(model.parameters()).device, instead of naming "
                          "one", HINT_1)
        if got.dtype != dtype:
            raise Mistake(f"for {what} the batch you returned is {got.dtype}, but the model's weights are {dtype}: "
                          ".to() converts the dtype too", HINT_1)
        if device.type == "meta":
            if got.shape != x.shape:
                raise Mistake(f"for {what} the batch you returned has shape {tuple(got.shape)}, expected "
                              f"{tuple(x.shape)}", HINT_1)
            model(got)  # the very call that failed before: it must work now
        else:
            expect_tensor(got, x.to(dtype), f"the batch for {what}", hint=HINT_1)
            model(got)
    return "batches brought to the device and dtype of a float64 model and of a model on another device (meta)"


SOLUTION_1 = '''
def to_model(model, batch):
    """`batch` on the device and in the dtype of `model`'s parameters."""
    parameter = next(model.parameters())            # where the model lives, and in what precision
    return batch.to(device=parameter.device, dtype=parameter.dtype)
'''

EX_1 = Exercise(
    id="A1.1", lesson=LESSON, title='Fix "Expected all tensors to be on the same device"', name="to_model",
    hint=HINT_1,
    more_hints=["next(model.parameters()) is one of the model's tensors: its .device and .dtype are the model's, "
                "and a tensor's .to() takes both at once"],
    statement="""
Write `to_model(model, batch)` that returns the batch on the **same device and dtype as the model's
parameters**, so that `model(to_model(model, batch))` works. The check puts one model on section 3's
`meta` device, in place of a GPU.

- **In:** `model`, an `nn.Module` whose parameters share one device and dtype; `batch`, a float tensor.
- **Out:** the batch in the model's device and dtype, values unchanged; `model` and `batch` untouched.
- **Use:** tensor methods; ask the model, never name a device (`.cuda()`, `"cpu"`).
- **Correct means:** for a float64 model on the CPU and a float32 model on `meta`, the right device,
  dtype and values, and the model accepts the batch.
- **Reread:** appendix A1, section 3, *"Expected all tensors to be on the same device"*.
""",
    template=template_of(SOLUTION_1),
    solution=SOLUTION_1,
    alternatives=['''
def to_model(model, batch):
    weight = model.weight if hasattr(model, "weight") else next(model.parameters())
    return batch.to(weight)  # .to(tensor) takes its device and dtype
'''],
    wrong_answers=[
        ("""
def to_model(model, batch):
    weight = next(model.parameters())
    return batch.cuda() if weight.is_cuda else batch.to(weight.device, weight.dtype)
""", "your code names a device (.cuda())"),
        ('''
def to_model(model, batch):
    return batch.to(next(model.parameters()).device)
''', ".to() converts the dtype too"),
        ('''
def to_model(model, batch):
    model.to(batch.device, batch.dtype)
    return batch
''', "your code moved or converted the model"),
        (variant(SOLUTION_1, ("    return batch.to(device=parameter.device, dtype=parameter.dtype)",
                              "    batch.data = batch.data.to(parameter.dtype)\n"
                              "    return batch.to(device=parameter.device)")), "changed the batch it was given"),
        ('''
def to_model(model, batch):
    return batch.to("cpu", dtype=next(model.parameters()).dtype)
''', "take the device from the model"),
    ],
    checker=check_to_model,
)


# ---------------------------------------------------------------- A1.2 training memory

def _memory_model(gen: torch.Generator) -> nn.Module:
    """Parameters of three dtypes, one layer frozen, and a batch-norm layer whose buffers are not parameters."""
    model = nn.ModuleDict({
        "embedding": nn.Embedding(randint(gen, 20, 60), randint(gen, 4, 9)).to(torch.bfloat16),
        "frozen": nn.Linear(randint(gen, 5, 20), randint(gen, 5, 20)).double().requires_grad_(False),
        "head": nn.Linear(randint(gen, 5, 20), randint(gen, 2, 6)),
        "norm": nn.BatchNorm1d(randint(gen, 3, 8)),
    })
    return model


HINT_2 = "appendix A1, section 6 (Where GPU memory goes): bytes per element times elements"


def check_training_bytes(training_bytes) -> str:
    gen = generator("A1.2")
    tested = []
    for _ in range(2):
        model = _memory_model(gen)
        parameters = list(model.parameters())
        expected = sum(p.numel() * p.element_size() * (4 if p.requires_grad else 1) for p in parameters)
        got = training_bytes(model)
        if isinstance(got, torch.Tensor):
            raise Mistake(f"your code returned {describe(got)}, not a Python int: a sum of tensors (such as "
                          "torch.tensor(p.shape).prod()) stays a tensor; use p.numel(), or .item() on the total",
                          HINT_2)
        if not isinstance(got, int) or isinstance(got, bool):
            raise Mistake(f"your code returned {type(got).__name__} {got!r}; return a whole number of bytes (int)",
                          HINT_2)
        if got != expected:
            why = ""
            if got == sum(p.numel() * 4 * (4 if p.requires_grad else 1) for p in parameters):
                why = (": your code assumes 4 bytes per value, but these parameters are bfloat16 (2 bytes) and "
                       "float64 (8 bytes) too; p.element_size() gives each one's")
            elif got == sum(p.numel() * p.element_size() * 4 for p in parameters):
                why = (": a frozen parameter (requires_grad False) has no gradient and no Adam state, only its "
                       "values")
            elif got == sum(p.numel() * p.element_size() * 4 for p in parameters if p.requires_grad):
                why = ": frozen parameters still hold their values in memory; count those once"
            elif got == sum(p.numel() * p.element_size() for p in parameters):
                why = ": that is the weights alone; training also keeps a gradient and Adam's two running averages"
            elif got == expected + sum(b.numel() * b.element_size() for b in model.buffers()):
                why = ": buffers such as batch norm's running statistics are not parameters; count parameters only"
            raise Mistake(f"your code returned {got:,} bytes, expected {expected:,}{why}", HINT_2)
        tested.append(f"{expected:,}")
    return f"exact byte counts ({' and '.join(tested)}) for models mixing bfloat16, float32, float64 and a frozen layer"


SOLUTION_2 = '''
def training_bytes(model):
    """Bytes of the parameters' values, plus gradient and two Adam states for those that require grad."""
    total = 0
    for p in model.parameters():
        copies = 4 if p.requires_grad else 1       # values, gradient, Adam's exp_avg and exp_avg_sq
        total += copies * p.numel() * p.element_size()
    return total
'''

EX_2 = Exercise(
    id="A1.2", lesson=LESSON, title="How much memory does training with Adam need?", name="training_bytes",
    hint=HINT_2,
    more_hints=["p.element_size() is the bytes of one of p's values in its own dtype and p.numel() the number of "
                "values; p.requires_grad says whether the gradient and Adam's two averages exist"],
    statement="""
Write `training_bytes(model)` that returns the bytes that training `model` with Adam keeps for its
parameters.

Every parameter holds its values; one that requires grad also has a gradient and Adam's two running
averages, each of the same size and dtype: four copies in all. A frozen parameter (`requires_grad`
False) holds only its values. Activations and buffers (batch norm's running statistics) are not counted.

- **In:** `model`, an `nn.Module` whose parameters may have different dtypes (bfloat16, float32,
  float64) and may be partly frozen.
- **Out:** a Python `int`, the number of bytes (not a tensor, not a float).
- **Use:** the parameters' own methods and attributes; plain Python arithmetic.
- **Correct means:** the exact count, an `int`, for two models mixing dtypes, a frozen layer and a
  batch-norm layer.
- **Reread:** appendix A1, section 6, *Where GPU memory goes*.
""",
    template=template_of(SOLUTION_2),
    solution=SOLUTION_2,
    alternatives=['''
def training_bytes(model):
    values = sum(p.nbytes for p in model.parameters())
    extra = sum(3 * p.nbytes for p in model.parameters() if p.requires_grad)
    return values + extra
'''],
    wrong_answers=[
        ("def training_bytes(model):\n    return sum(16 * p.numel() if p.requires_grad else 4 * p.numel() "
         "for p in model.parameters())\n", "assumes 4 bytes per value"),
        ("def training_bytes(model):\n    return sum(4 * p.numel() * p.element_size() for p in model.parameters())\n",
         "has no gradient and no Adam state"),
        ("def training_bytes(model):\n    return sum(p.numel() * p.element_size() for p in model.parameters())\n",
         "the weights alone"),
        ("def training_bytes(model):\n    return sum(4 * p.nbytes for p in model.parameters() if p.requires_grad)\n",
         "frozen parameters still hold their values"),
        ("def training_bytes(model):\n    return sum(torch.tensor(p.shape).prod() * p.element_size()"
         " * (4 if p.requires_grad else 1)\n               for p in model.parameters())\n", "not a Python int"),
    ],
    checker=check_training_bytes,
)


# ---------------------------------------------------------------- A1.3 the spacing of bfloat16 numbers

HINT_3 = ("appendix A1, section 7 (Which power of two is below a value?): torch.frexp gives each value's exponent "
          "exactly; between two powers of two the gap between neighbouring bfloat16 numbers is fixed")


def _bfloat16_gap(x: torch.Tensor) -> torch.Tensor:
    """2**(k - 7) for 2**k <= x < 2**(k + 1), from the exact exponent frexp gives (x = m * 2**e, 0.5 <= m < 1)."""
    _, exponent = torch.frexp(x)
    return torch.ldexp(torch.ones_like(x), exponent - 8)


def _below(powers: list[float]) -> torch.Tensor:
    """The largest float32 values below these powers of two."""
    return torch.nextafter(torch.tensor(powers), torch.tensor(0.0))


def check_bfloat16_gap(bfloat16_gap) -> str:
    gen = generator("A1.3")
    powers = [2.0 ** k for k in (-7, -1, 0, 1, 3, 10)]          # exactly a power of two: the upper binade's gap
    below = _below([2.0 ** k for k in (-6, 2, 5, 10)])          # just below one: the lower binade's gap
    spread = 10.0 ** (torch.rand(randint(gen, 6, 12), generator=gen) * 6 - 3)  # six decades, 1e-3 to 1e3
    x = torch.cat([torch.tensor(powers), below, spread])
    x = x[torch.randperm(len(x), generator=gen)]
    expected = _bfloat16_gap(x)
    try:
        got = call(bfloat16_gap, x, hint=HINT_3)
    except (TypeError, ValueError) as err:
        if "only one element tensors" not in str(err) and "must be real number" not in str(err):
            raise
        raise Mistake(f"your code handed the whole tensor to a function of one number (such as math.log2), which "
                      f"raised {type(err).__name__}: {err}; torch.log2 and torch.floor work on every value of a "
                      "tensor at once", HINT_3) from None
    if not isinstance(got, torch.Tensor):
        raise Mistake(f"bfloat16_gap(x) returned {describe(got)}, expected a float32 tensor of shape "
                      f"{tuple(x.shape)}", HINT_3)
    if got.shape == x.shape and got.is_floating_point():
        ratio = got.double() / expected.double()
        if torch.allclose(ratio, torch.full_like(ratio, 0.5)):
            raise Mistake("your values are half the gap: 2**-8 of the power of two below is the largest rounding "
                          "error (half a gap); the gap between neighbours is 2**-7 of it", HINT_3)
        if torch.allclose(ratio, torch.full_like(ratio, 2.0)):
            raise Mistake("your values are twice the gap: torch.frexp's significand is between 0.5 and 1, so its "
                          "exponent is one more than k in 2**k <= x < 2**(k + 1)", HINT_3)
        wrong = ratio != 1
        if bool(wrong.any()) and bool((wrong <= torch.isin(x, below)).all()) and bool((ratio[wrong] == 2).all()):
            value = x[wrong][0].item()
            raise Mistake(f"for values just below a power of two, such as {value!r}, you gave the gap of the binade "
                          "above: in float32, log2 of such a value rounds up to the whole number; take the "
                          "exponent from torch.frexp, which is exact (or compute log2 in float64)", HINT_3)
    shown = ", ".join(f"{v:.9g}" for v in x.tolist())
    expect_tensor(got, expected, f"bfloat16_gap(x) for x = [{shown}]", atol=0, rtol=0, hint=HINT_3)
    return (f"the exact gaps for {len(x)} values: {len(powers)} powers of two, {len(below)} values just below one, "
            f"{len(spread)} spread over six decades")


SOLUTION_3 = '''
def bfloat16_gap(x):
    """For positive float32 x: the gap 2**(k - 7) between neighbouring bfloat16 numbers, 2**k <= x < 2**(k + 1)."""
    _, exponent = torch.frexp(x)              # x = significand * 2**exponent, 0.5 <= significand < 1, exactly
    k = exponent - 1                          # 2**k <= x < 2**(k + 1)
    return 2.0 ** (k - 7)                     # a float32 tensor: a float to the power of an integer tensor
'''

_LOG2_SOLUTION_3 = '''
def bfloat16_gap(x):
    k = torch.floor(torch.log2(x.double()))   # float64: log2 of a value just below 2**k stays below k
    return (2.0 ** (k - 7)).float()
'''

EX_3 = Exercise(
    id="A1.3", lesson=LESSON, title="The spacing of bfloat16 numbers", name="bfloat16_gap", hint=HINT_3,
    more_hints=["torch.frexp(x) returns (significand, exponent) with x = significand * 2**exponent and "
                "0.5 <= significand < 1, "
                "so the power of two below x is 2**k with k = exponent - 1; bfloat16 has 8 significant bits, so "
                "2**k and 2**(k+1) are 2**7 steps apart",
                "float32's log2 of 1023.99994 is exactly 10.0, one too many: that is why frexp (or log2 of x.double()) "
                "is needed"],
    statement="""
Write `bfloat16_gap(x)` that returns, for every value of `x`, the gap between the two neighbouring
bfloat16 numbers around it.

bfloat16 has 8 significand bits: where `2**k <= x < 2**(k + 1)`, its numbers are `2**(k - 7)` apart.

- **In:** `x`, a float32 tensor of positive values between about 1e-3 and 1e3.
- **Out:** a float32 tensor of the same shape, `2**(k - 7)` for each value; `x` unchanged.
- **Use:** tensor operations; `torch.frexp` gives the exponent exactly (float32's `torch.log2` can be
  one too large just below a power of two).
- **Correct means:** exactly equal, for values spread over six decades, for exact powers of two and for
  the largest float32 values just below them.
- **Reread:** appendix A1, section 7, *Which power of two is below a value?*
""",
    template=template_of(SOLUTION_3),
    solution=SOLUTION_3,
    alternatives=[_LOG2_SOLUTION_3, '''
def bfloat16_gap(x):
    significand, exponent = torch.frexp(x)        # x = significand * 2**exponent, 0.5 <= significand < 1
    return torch.ldexp(torch.ones_like(x), exponent - 8)
'''],
    wrong_answers=[
        (variant(SOLUTION_3, ("2.0 ** (k - 7)", "2.0 ** (k - 8)")), "half the gap"),
        (variant(_LOG2_SOLUTION_3, ("torch.log2(x.double())", "torch.log2(x)")), "values just below a power of two"),
        (variant(_LOG2_SOLUTION_3, ("torch.floor(", "torch.ceil(")), "is wrong at index"),
        (variant(_LOG2_SOLUTION_3, ("torch.floor(torch.log2(x.double()))", "math.floor(math.log2(x))")),
         "a function of one number"),
        (variant(_LOG2_SOLUTION_3, ("(2.0 ** (k - 7)).float()", "2.0 ** (k - 7)")), "returned a float64 tensor"),
        (variant(SOLUTION_3, ("k = exponent - 1", "k = exponent")), "twice the gap"),
    ],
    checker=check_bfloat16_gap,
)

EXERCISES = [EX_1, EX_2, EX_3]
