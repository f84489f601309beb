"""Exercises of appendix A1: a batch on the model's device and dtype, training memory, one autocast context."""
from __future__ import annotations

import warnings

import torch
from torch import nn

from course_utils.exercises.framework import Exercise, Mistake, expect_tensor, generator, randint, template_of, variant

LESSON = "A1_devices_and_gpus"
HINT_DEVICE = 'appendix A1, section 3 ("Expected all tensors to be on the same device"): ask one of the parameters'
HINT_MEMORY = "appendix A1, section 6 (Where GPU memory goes)"
HINT_AUTOCAST = "appendix A1, section 7 (Mixed precision with torch.autocast): one string, one context"


# ---------------------------------------------------------------- A1.1 the model's device and dtype

def check_to_model(to_model) -> str:
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
                          "not the model to the batch (the optimiser holds the model's parameters)", HINT_DEVICE)
        if not torch.equal(x, x_before):
            raise Mistake(f"for {what} your code changed the batch it was given", HINT_DEVICE)
        if not isinstance(got, torch.Tensor):
            raise Mistake(f"for {what} your code returned {type(got).__name__}, expected the batch as a tensor",
                          HINT_DEVICE)
        if got.device != device:
            raise Mistake(f"for {what} the batch you returned is on {got.device}, but the model is on {device}: "
                          "take the device from the model, next(model.parameters()).device, instead of naming "
                          "one", HINT_DEVICE)
        if got.dtype != dtype:
            raise Mistake(f"for {what} the batch you returned is {got.dtype}, but the model's weights are {dtype}: "
                          ".to() converts the dtype too", HINT_DEVICE)
        if device.type == "meta":
            if got.shape != x.shape:
                raise Mistake(f"for {what} the batch you returned has shape {tuple(got.shape)}, expected "
                              f"{tuple(x.shape)}", HINT_DEVICE)
            model(got)  # the very call that failed before: it must work now
        else:
            expect_tensor(got, x.to(dtype), f"the batch for {what}", hint=HINT_DEVICE)
            model(got)
    return "batches brought to the device and dtype of a float64 model and of a model on another device (meta)"


SOLUTION_A1_1 = '''
def to_model(model, batch):
    """`batch` on the device and in the dtype of `model`'s parameters."""
    parameter = next(model.parameters())            # where the model lives, and in what precision
    return batch.to(device=parameter.device, dtype=parameter.dtype)
'''

TO_MODEL = Exercise(
    id="A1.1", lesson=LESSON, title='Fix "Expected all tensors to be on the same device"', name="to_model",
    hint=HINT_DEVICE,
    statement="""
The classic error: the model was moved to the GPU and the batch was not (or the model is float64
and the batch float32). Write `to_model(model, batch)`: the batch on the **same device and dtype
as the model's parameters**, whatever they are, so that `model(to_model(model, batch))` works.
Do not name a device (`.cuda()`, `"cuda"`): ask the model. The model itself must not change.

There is no GPU here, so the checker puts one model on PyTorch's `meta` device, which has shapes
and dtypes but no values: a batch left on the CPU fails with it just as with a GPU.

- in: `model`, an `nn.Module` whose parameters share one device and dtype; `batch`, a float tensor
- out: the batch on the model's device, in the model's dtype, values unchanged; `model` untouched

Correct means: for a float64 model on the CPU and a float32 model on the meta device, the batch
comes back on the right device, in the right dtype, with the same values, and the model accepts it.

See appendix A1, section 3 ("Expected all tensors to be on the same device").
""",
    template=template_of(SOLUTION_A1_1),
    solution=SOLUTION_A1_1,
    alternatives=['''
def to_model(model, batch):
    weight = model.weight if hasattr(model, "weight") else next(model.parameters())
    return batch.to(weight)  # .to(tensor) takes its device and dtype
'''],
    wrong_answers=[
        ('''
def to_model(model, batch):
    return batch.to(next(model.parameters()).device)
''', ".to() converts the dtype too"),
        ('''
def to_model(model, batch):
    model.to(batch.device, batch.dtype)
    return batch
''', "your code moved or converted the model"),
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


def check_training_bytes(training_bytes) -> str:
    gen = generator("A1.2")
    tested = []
    for _ in range(2):
        model = _memory_model(gen)
        parameters = list(model.parameters())
        expected = sum(p.numel() * p.element_size() * (4 if p.requires_grad else 1) for p in parameters)
        got = training_bytes(model)
        if isinstance(got, torch.Tensor) and got.numel() == 1:
            got = got.item()
        if not isinstance(got, int) or isinstance(got, bool):
            raise Mistake(f"your code returned {type(got).__name__} {got!r}; return a whole number of bytes (int)",
                          HINT_MEMORY)
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
            raise Mistake(f"your code returned {got:,} bytes, expected {expected:,}{why}", HINT_MEMORY)
        tested.append(f"{expected:,}")
    return f"exact byte counts ({' and '.join(tested)}) for models mixing bfloat16, float32, float64 and a frozen layer"


SOLUTION_A1_2 = '''
def training_bytes(model):
    """Bytes of the parameters' values, plus gradient and two Adam states for those that require grad."""
    total = 0
    for p in model.parameters():
        copies = 4 if p.requires_grad else 1       # values, gradient, Adam's exp_avg and exp_avg_sq
        total += copies * p.numel() * p.element_size()
    return total
'''

MEMORY = Exercise(
    id="A1.2", lesson=LESSON, title="How much memory does training with Adam need?", name="training_bytes",
    hint=HINT_MEMORY,
    statement="""
Write `training_bytes(model)`: the bytes that training `model` with Adam keeps for its parameters.
Every parameter holds its values; one that requires grad also has a gradient and Adam's two running
averages, each of the same size and dtype: four copies in all. A frozen parameter
(`requires_grad` False) holds only its values. Activations and buffers (batch norm's running
statistics) are not counted.

- in: an `nn.Module` whose parameters may have different dtypes (bfloat16, float32, float64) and
  may be partly frozen
- out: an `int`, the number of bytes

Correct means: the exact count for two models mixing dtypes, a frozen layer and a batch-norm layer.

See appendix A1, section 6 (Where GPU memory goes).
""",
    template=template_of(SOLUTION_A1_2),
    solution=SOLUTION_A1_2,
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
    ],
    checker=check_training_bytes,
)


# ---------------------------------------------------------------- A1.3 one autocast context

def check_autocast_context(autocast_context) -> str:
    gen = generator("A1.3")
    layer = nn.Linear(randint(gen, 3, 8), randint(gen, 2, 5))
    x = torch.randn(randint(gen, 1, 4), layer.in_features, generator=gen)
    for name, expected in (("bfloat16", torch.bfloat16), ("float32", torch.float32)):
        with warnings.catch_warnings(record=True) as caught:  # quoted in the message if the answer is wrong
            warnings.simplefilter("always")
            ctx = autocast_context("cpu", name)
        if isinstance(ctx, torch.dtype):
            raise Mistake(f'autocast_context("cpu", "{name}") returned the dtype {ctx}; return a context for '
                          "`with`: torch.autocast(device_type=..., dtype=...)", HINT_AUTOCAST)
        if not (hasattr(ctx, "__enter__") and hasattr(ctx, "__exit__")):
            raise Mistake(f'autocast_context("cpu", "{name}") returned {type(ctx).__name__}, which cannot be '
                          "used in a `with` statement; return torch.autocast(...) or contextlib.nullcontext()",
                          HINT_AUTOCAST)
        with warnings.catch_warnings(record=True) as caught_inside:
            warnings.simplefilter("always")
            with ctx:
                out = layer(x)
        caught += caught_inside
        if out.dtype != expected:
            why = (": the context must be made for the device_type it is given (here cpu)" if expected != torch.float32
                   else ": float32 means no autocast at all, contextlib.nullcontext()")
            warned = f" (PyTorch warned: {caught[0].message})" if caught else ""
            raise Mistake(f'inside autocast_context("cpu", "{name}") a linear layer computed {out.dtype}, expected '
                          f"{expected}{why}{warned}", HINT_AUTOCAST)
        for warning in caught:  # a correct answer's warnings still reach the learner
            warnings.warn_explicit(warning.message, warning.category, warning.filename, warning.lineno)
        if layer.weight.dtype != torch.float32:
            raise Mistake("your context changed the layer's weights; autocast casts the computation, the weights "
                          "stay float32", HINT_AUTOCAST)
    try:
        autocast_context("cpu", "float8")
    except ValueError as err:
        if not all(name in str(err) for name in ("float32", "bfloat16", "float16")):
            raise Mistake(f'autocast_context("cpu", "float8") raised ValueError({str(err)!r}); say which names '
                          "are allowed: float32, bfloat16, float16", HINT_AUTOCAST) from None
    except Exception as err:  # noqa: BLE001 - the wrong kind of error is the mistake reported
        raise Mistake(f'autocast_context("cpu", "float8") raised {type(err).__name__}; a bad argument calls for '
                      "ValueError with a message naming the allowed names", HINT_AUTOCAST) from None
    else:
        raise Mistake('autocast_context("cpu", "float8") did not raise; an unknown name must raise ValueError '
                      "naming the allowed ones", HINT_AUTOCAST)
    return ('bfloat16 computes in bfloat16 and float32 leaves float32 on the CPU, weights untouched; "float8" '
            "raises ValueError naming the choices")


SOLUTION_A1_3 = '''
import contextlib

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def autocast_context(device_type, dtype_name):
    """A `with` context: nothing for "float32", torch.autocast for "bfloat16" / "float16"; ValueError otherwise."""
    if dtype_name not in DTYPES:
        raise ValueError(f"dtype_name must be one of {', '.join(DTYPES)}, got {dtype_name!r}")
    if DTYPES[dtype_name] == torch.float32:
        return contextlib.nullcontext()            # full precision: no autocast at all
    return torch.autocast(device_type=device_type, dtype=DTYPES[dtype_name])
'''

AUTOCAST = Exercise(
    id="A1.3", lesson=LESSON, title="One autocast context from a string", name="autocast_context", hint=HINT_AUTOCAST,
    statement="""
Write `autocast_context(device_type, dtype_name)`, the pattern of appendix A1: the precision is
chosen once, as a string, and turned into one context that every forward pass runs in.

- in: `device_type`, `"cpu"`, `"cuda"` or `"mps"`; `dtype_name`, `"float32"`, `"bfloat16"` or
  `"float16"`
- out: for `"float32"` a context that changes nothing (`contextlib.nullcontext()`); otherwise
  `torch.autocast` for that device type and dtype
- an unknown `dtype_name` raises `ValueError` whose message names the three allowed ones

`contextlib` is not in the prelude: import it in your cell.

Correct means: on the CPU, a linear layer computes in bfloat16 inside the `"bfloat16"` context and
in float32 inside the `"float32"` one, its weights stay float32, and `"float8"` raises
`ValueError` naming the choices.

See appendix A1, section 7 (Mixed precision with torch.autocast).
""",
    template='''
import contextlib


def autocast_context(device_type, dtype_name):
    """A `with` context: nothing for "float32", torch.autocast for "bfloat16" / "float16"; ValueError otherwise."""
    raise NotImplementedError  # your code here
''',
    solution=SOLUTION_A1_3,
    alternatives=['''
from contextlib import nullcontext


def autocast_context(device_type, dtype_name):
    if dtype_name == "float32":
        return nullcontext()
    if dtype_name in ("bfloat16", "float16"):
        return torch.autocast(device_type, dtype=getattr(torch, dtype_name))
    raise ValueError(f"unknown dtype {dtype_name!r}: use float32, bfloat16 or float16")
'''],
    wrong_answers=[
        ('''
import contextlib

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def autocast_context(device_type, dtype_name):
    if DTYPES[dtype_name] == torch.float32:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device_type, dtype=DTYPES[dtype_name])
''', "raised KeyError"),
        (variant(SOLUTION_A1_3,
            ('device_type, dtype=DTYPES[dtype_name]', '"cuda", dtype=getattr(torch, dtype_name)'),
        ), "made for the device_type it is given"),
        ('''
def autocast_context(device_type, dtype_name):
    return getattr(torch, dtype_name)
''', "returned the dtype"),
    ],
    checker=check_autocast_context,
)

EXERCISES = [TO_MODEL, MEMORY, AUTOCAST]
