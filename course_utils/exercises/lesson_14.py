"""Exercises for lesson 14 (TensorBoard and the profiler): a history as scalars, weight and gradient histograms,
operator calls per step."""

from __future__ import annotations

import contextlib
import os
import tempfile

import torch
from torch import nn

from course_utils.exercises.framework import (
    Exercise,
    Mistake,
    describe,
    distinct_sizes,
    generator,
    randint,
    template_of,
    variant,
)

LESSON = "14_tensorboard"


@contextlib.contextmanager
def _event_folder():
    """A SummaryWriter on a fresh temporary folder, and a function that closes it and reads the folder back."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator  # imported when checked
    from torch.utils.tensorboard import SummaryWriter

    with tempfile.TemporaryDirectory() as folder:
        writer = SummaryWriter(folder)

        def read():
            writer.close()  # flushes; closing twice is harmless, so the learner may close it too
            return EventAccumulator(folder, size_guidance={"scalars": 0, "histograms": 0}).Reload()

        try:
            yield writer, read
        finally:
            writer.close()


# ---------------------------------------------------------------- 14.1 a history as scalars

HINT_1 = "section 2 (Logging while training): one writer.add_scalar(tag, value, step) per point, the epoch as the step"
_KEYS = ("train_loss", "train_accuracy", "val_loss", "val_accuracy", "test_accuracy")
_TWO_UNDERSCORES = "val_top5_accuracy"  # in every history: "val/top5_accuracy", not "val/top5/accuracy"


def _random_history(gen: torch.Generator) -> dict[str, list[float]]:
    """A history dict as training.fit returns it: a few of _KEYS, one value per epoch, and always a key with two
    `_` (only the first one becomes '/')."""
    epochs = randint(gen, 3, 6)
    chosen = [_KEYS[i] for i in sorted(torch.randperm(len(_KEYS), generator=gen)[:randint(gen, 2, 4)].tolist())]
    chosen.insert(randint(gen, 0, len(chosen)), _TWO_UNDERSCORES)
    return {key: [round(float(v), 4) for v in torch.rand(epochs, generator=gen)] for key in chosen}


def check_log_history(log_history) -> str:
    gen = generator("14.1")
    history = _random_history(gen)
    with _event_folder() as (writer, read):
        try:
            log_history(writer, history)
        except NotImplementedError as err:  # what add_scalar raises for a list; the template's raise has no message
            if "numpy array or torch tensor are expected" not in str(err):
                raise
            said = str(err).strip()
            raise Mistake(f"your code passed a list to writer.add_scalar, which logs one number per call (the "
                          f"SummaryWriter said: {said}); log each value at its own step", HINT_1) from None
        run = read()
    tags = sorted(run.Tags()["scalars"])
    expected_tags = sorted(key.replace("_", "/", 1) for key in history)
    if tags == sorted(key.replace("_", "/") for key in history):
        raise Mistake(f"the event file holds the tag {_TWO_UNDERSCORES.replace('_', '/')!r}: only the key's first "
                      f"'_' becomes '/', so {_TWO_UNDERSCORES!r} is logged as "
                      f"{_TWO_UNDERSCORES.replace('_', '/', 1)!r}", HINT_1)
    if tags != expected_tags:
        kept = " (the key's first '_' becomes '/': 'val_loss' -> 'val/loss')" if set(tags) & set(history) else ""
        raise Mistake(f"the event file holds the scalar tags {tags}, expected {expected_tags}{kept}", HINT_1)
    for key, values in history.items():
        tag = key.replace("_", "/", 1)
        points = [(event.step, event.value) for event in run.Scalars(tag)]
        steps, wanted = [step for step, _ in points], list(range(1, len(values) + 1))
        if steps == list(range(len(values))):
            raise Mistake(f"{tag} was logged at the steps {steps}: epochs count from 1 (the first epoch is step 1)",
                          HINT_1)
        if steps != wanted:
            raise Mistake(f"{tag} was logged at the steps {steps}, expected one point per epoch at {wanted}", HINT_1)
        for (step, got), value in zip(points, values):
            if abs(got - value) > 1e-6 * max(1.0, abs(value)):  # event files store float32
                raise Mistake(f"{tag} at step {step} is {got:.6g}, expected {value:.6g} (history[{key!r}]"
                              f"[{step - 1}])", HINT_1)
    return f"{len(history)} tags ({', '.join(expected_tags)}), one point per epoch at steps 1 to " \
           f"{len(next(iter(history.values())))}, read back with EventAccumulator"


SOLUTION_1 = '''
def log_history(writer, history):
    """Every history[key][i] as the scalar tag key.replace("_", "/", 1) at step i + 1."""
    for key, values in history.items():
        tag = key.replace("_", "/", 1)             # "val_loss" -> "val/loss": grouped by split
        for epoch, value in enumerate(values, start=1):
            writer.add_scalar(tag, value, epoch)   # the epoch as the step lines runs up
'''

EX_1 = Exercise(
    id="14.1", lesson=LESSON, title="A history as TensorBoard scalars", name="log_history",
    statement="""
Write `log_history(writer, history)` that writes a history dict, as `training.fit` returns it, to a
`SummaryWriter`: one scalar tag per key, one point per epoch.

Each key becomes the tag whose **first** `_` is replaced by `/` (`"val_loss"` → `"val/loss"`,
`"val_top5_accuracy"` → `"val/top5_accuracy"`), so that TensorBoard groups the curves by split.

- **In:** `writer`, a `SummaryWriter`; `history`, a dict of key → list of floats, one per epoch (e.g.
  `{"train_loss": [0.61, 0.42, 0.38], "val_loss": [...]}`); the keys vary, every list has the same length.
- **Out:** nothing; every key logged, nothing else, each value at the epoch as the step, counting from 1.
  You need not close the writer.
- **Use:** `writer.add_scalar`; string methods for the tag.
- **Correct means:** the event file, read back with `EventAccumulator`, holds exactly the expected tags
  (the history always has a key with two `_`), each with one point per epoch at steps 1, 2, ... and the
  history's values (within float32 rounding).
- **Reread:** section 2, *Logging while training*.
""",
    template=template_of(SOLUTION_1),
    solution=SOLUTION_1,
    alternatives=['''
def log_history(writer, history):
    epochs = len(next(iter(history.values())))
    for i in range(epochs):
        for key in history:
            split, _, metric = key.partition("_")
            writer.add_scalar(f"{split}/{metric}", history[key][i], global_step=i + 1)
    writer.flush()
'''],
    wrong_answers=[
        ("def log_history(writer, history):\n    for key, values in history.items():\n"
         "        for epoch, value in enumerate(values):\n"
         "            writer.add_scalar(key.replace('_', '/', 1), value, epoch)\n", "epochs count from 1"),
        (variant(SOLUTION_1,
            ('writer.add_scalar(tag,', 'writer.add_scalar(key,'),
        ),
         "the key's first '_' becomes '/'"),
        ("def log_history(writer, history):\n    for key, values in history.items():\n"
         "        writer.add_scalar(key.replace('_', '/', 1), values, 1)\n", "logs one number per call"),
        (variant(SOLUTION_1, ('tag = key.replace("_", "/", 1)', 'tag = key.replace("_", "/")')),
         "only the key's first"),
        ("def log_history(writer, history):\n    for key, values in history.items():\n"
         "        writer.add_scalar(key.replace('_', '/', 1), values[-1], len(values))\n",
         "expected one point per epoch"),
        ("def log_history(writer, history):\n    for key, values in history.items():\n"
         "        for epoch, value in enumerate(sorted(values), start=1):\n"
         "            writer.add_scalar(key.replace('_', '/', 1), value, epoch)\n", "(history['"),
    ],
    checker=check_log_history, hint=HINT_1,
    more_hints=["str.replace takes a third argument, the number of replacements to make; enumerate(values, "
                "start=1) gives the epoch numbers from 1"],
)


# ---------------------------------------------------------------- 14.2 weight and gradient histograms

HINT_2 = "section 2 (Logging while training): writer.add_histogram(tag, values, step), once per tensor"


def _partly_frozen_model(gen: torch.Generator) -> nn.Module:
    """A small MLP whose first layer is frozen, after one backward pass: the others have gradients, it has none."""
    n_in, n_hidden, n_out = distinct_sizes(gen, 3, 3, 9)
    model = nn.Sequential(nn.Linear(n_in, n_hidden), nn.ReLU(), nn.Linear(n_hidden, n_hidden), nn.ReLU(),
                          nn.Linear(n_hidden, n_out))
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.copy_(torch.randn(parameter.shape, generator=gen))
    model[0].requires_grad_(False)  # a frozen layer, as in transfer learning
    model(torch.randn(randint(gen, 4, 8), n_in, generator=gen)).square().mean().backward()
    return model


def check_log_histograms(log_histograms) -> str:
    gen = generator("14.2")
    model = _partly_frozen_model(gen)
    step = randint(gen, 2, 9)
    expected = {f"weights/{name}": p for name, p in model.named_parameters()}
    expected |= {f"gradients/{name}": p.grad for name, p in model.named_parameters() if p.grad is not None}
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    with _event_folder() as (writer, read):
        add_histogram = writer.add_histogram

        def refuse_none(tag, values, *args, **kwargs):
            if values is None:
                raise Mistake(f"your code logged a histogram of None under {tag!r}: a frozen parameter "
                              "(requires_grad=False) has no gradient, its .grad is None; skip it", HINT_2)
            return add_histogram(tag, values, *args, **kwargs)

        writer.add_histogram = refuse_none
        log_histograms(writer, model, step)
        run = read()
    if any(not torch.equal(p, before[name]) for name, p in model.named_parameters()):
        raise Mistake("log_histograms changed the model's weights: logging must only read them", HINT_2)
    tags = set(run.Tags()["histograms"])
    missing, extra = sorted(set(expected) - tags), sorted(tags - set(expected))
    if missing or extra:
        frozen = [t for t in extra if t.startswith("gradients/")]
        why = " (a frozen parameter has no gradient to log)" if frozen and not missing else ""
        found = ([f"lacks the histogram tags {missing}"] if missing else []) + \
            ([f"has unexpected tags {extra}{why}"] if extra else [])
        raise Mistake(f"the event file {' and '.join(found)}", HINT_2)
    for tag, tensor in expected.items():
        events = run.Histograms(tag)
        if [event.step for event in events] != [step]:
            raise Mistake(f"{tag} was logged at the steps {[e.step for e in events]}, expected once at step {step}",
                          HINT_2)
        histogram = events[0].histogram_value
        total = tensor.double().sum().item()
        if histogram.num != tensor.numel() or abs(histogram.sum - total) > 1e-4 * max(1.0, abs(total)):
            source = "weights" if tag.startswith("gradients/") and abs(
                histogram.sum - expected["weights/" + tag.partition("/")[2]].double().sum().item()) < 1e-4 else ""
            why = ": that is the weights' histogram; log parameter.grad" if source else ""
            raise Mistake(f"the histogram {tag} has {histogram.num:g} values summing to {histogram.sum:.5g}, "
                          f"expected the {tensor.numel()} values of that tensor summing to {total:.5g}{why}", HINT_2)
    return (f"{len(expected)} histograms at step {step}: weights of every parameter, gradients of all but the "
            "frozen layer's, read back with EventAccumulator")


SOLUTION_2 = '''
def log_histograms(writer, model, step):
    """Histograms weights/<name> of every parameter and gradients/<name> of every gradient there is, at step."""
    for name, parameter in model.named_parameters():
        writer.add_histogram(f"weights/{name}", parameter, step)
        if parameter.grad is not None:             # frozen parameters have none
            writer.add_histogram(f"gradients/{name}", parameter.grad, step)
'''

EX_2 = Exercise(
    id="14.2", lesson=LESSON, title="Weight and gradient histograms", name="log_histograms",
    statement="""
Write `log_histograms(writer, model, step)` that logs a histogram of every parameter of `model` and of
every gradient it has, at `step`.

The model's first layer is frozen (`requires_grad=False`): its parameters have no gradient
(`.grad is None`), so log their weights but no gradient for them.

- **In:** `writer`, a `SummaryWriter`; `model`, an `nn.Module` after one backward pass; `step`, an int.
- **Out:** nothing; the histogram `weights/<name>` of every parameter and `gradients/<name>` of every
  gradient there is, `<name>` as `model.named_parameters()` gives it (e.g. `2.weight`), each at `step`.
  The weights must not change.
- **Use:** `writer.add_histogram`, `model.named_parameters()`.
- **Correct means:** read back with `EventAccumulator`, exactly those tags, each logged once at `step`,
  each histogram over the right tensor (its number of values and their sum); the weights unchanged.
- **Reread:** section 2, *Logging while training*.
""",
    template=template_of(SOLUTION_2),
    solution=SOLUTION_2,
    alternatives=['''
def log_histograms(writer, model, step):
    params = dict(model.named_parameters())
    for name, p in params.items():
        writer.add_histogram("weights/" + name, p.detach().cpu().numpy(), global_step=step)
    for name, p in params.items():
        if p.requires_grad and p.grad is not None:
            writer.add_histogram("gradients/" + name, p.grad.detach().cpu(), global_step=step)
'''],
    wrong_answers=[
        ("def log_histograms(writer, model, step):\n    for name, p in model.named_parameters():\n"
         "        writer.add_histogram(f'weights/{name}', p, step)\n"
         "        writer.add_histogram(f'gradients/{name}', p.grad, step)\n", "its .grad is None; skip it"),
        ("def log_histograms(writer, model, step):\n    for name, p in model.named_parameters():\n"
         "        writer.add_histogram(f'weights/{name}', p, step)\n", "lacks the histogram tags ['gradients/"),
        ("def log_histograms(writer, model, step):\n    for name, p in model.named_parameters():\n"
         "        writer.add_histogram(f'weights/{name}', p, step)\n"
         "        if p.grad is not None:\n            writer.add_histogram(f'gradients/{name}', p, step)\n",
         "that is the weights' histogram"),
        ("def log_histograms(writer, model, step):\n    for name, p in model.named_parameters():\n"
         "        writer.add_histogram(f'weights/{name}', p, step)\n"
         "        grad = p.grad if p.grad is not None else torch.zeros_like(p)\n"
         "        writer.add_histogram(f'gradients/{name}', grad, step)\n",
         "a frozen parameter has no gradient to log"),
        ("def log_histograms(writer, model, step):\n    for name, p in model.named_parameters():\n"
         "        writer.add_histogram(f'weights/{name}', p, 0)\n"
         "        if p.grad is not None:\n            writer.add_histogram(f'gradients/{name}', p.grad, 0)\n",
         "expected once at step"),
        (variant(SOLUTION_2, ('        writer.add_histogram(f"weights/{name}", parameter, step)',
                              '        writer.add_histogram(f"weights/{name}", parameter.data.clamp_(-1, 1), step)')),
         "changed the model's weights"),
    ],
    checker=check_log_histograms, hint=HINT_2,
    more_hints=["loop over model.named_parameters(): log every parameter under f\"weights/{name}\", and its .grad "
                "under f\"gradients/{name}\" only when .grad is not None"],
)


# ---------------------------------------------------------------- 14.3 operator calls per step

HINT_3 = ("section 7 (Where does the time go? torch.profiler): a warm-up step outside the profiler, then the "
          "profiled steps inside `with profile(...) as prof:`")


class _TrainStep:
    """One hand-written training step of a small MLP: forward, backward, momentum update (state made on call 1)."""

    def __init__(self, gen: torch.Generator):
        sizes = distinct_sizes(gen, 4, 3, 9)
        self.layers = [nn.Linear(n_in, n_out) for n_in, n_out in zip(sizes, sizes[1:])]
        self.inputs = torch.randn(randint(gen, 4, 8), sizes[0], generator=gen)
        self.momentum: list[torch.Tensor] | None = None

    def __call__(self) -> None:
        from torch.profiler import record_function
        with record_function("forward"):      # a label of our own: not an operator
            x = self.inputs
            for layer in self.layers[:-1]:
                x = torch.relu(layer(x))
            loss = self.layers[-1](x).square().mean()
        parameters = [p for layer in self.layers for p in layer.parameters()]
        for p in parameters:
            p.grad = None
        loss.backward()
        with torch.no_grad():
            if self.momentum is None:         # the optimiser's state, made on the first step only
                self.momentum = [torch.zeros_like(p) for p in parameters]
            for p, velocity in zip(parameters, self.momentum):
                velocity.mul_(0.9).add_(p.grad)
                p.sub_(0.01 * velocity)


def _reference_calls(step, num_steps: int) -> dict[str, float]:
    from torch.profiler import ProfilerActivity, profile
    step()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(num_steps):
            step()
    return {e.key: e.count / num_steps for e in prof.key_averages() if e.key.startswith("aten::")}


def check_calls_per_step(calls_per_step) -> str:
    # Kineto, the profiler's engine, prints start/stop markers to the process's stderr (past any redirection)
    # unless told otherwise before its first use; lesson 14 sets the same. A value already set wins.
    os.environ.setdefault("KINETO_LOG_LEVEL", "6")
    gen = generator("14.3")
    num_steps = randint(gen, 3, 6)
    state = gen.get_state()
    step = _TrainStep(gen)
    calls: list[int] = []
    inner = step.__call__

    def counted() -> None:
        calls.append(1)
        inner()

    got = calls_per_step(counted, num_steps)
    gen.set_state(state)
    expected = _reference_calls(_TrainStep(gen), num_steps)
    if len(calls) != num_steps + 1:
        raise Mistake(f"your code called step() {len(calls)} times for num_steps={num_steps}: once to warm up, "
                      f"then {num_steps} times inside the profiler", HINT_3)
    if not isinstance(got, dict):
        raise Mistake(f"calls_per_step returned {describe(got)}, expected a dict of operator name -> calls per step",
                      HINT_3)
    not_ops = sorted(k for k in got if not str(k).startswith("aten::"))
    if not_ops:
        raise Mistake(f"your dict has entries that are not operators: {not_ops[:3]} (keep only the names that "
                      "start with 'aten::'; record_function labels and autograd's backward nodes are not)", HINT_3)
    missing, extra = sorted(set(expected) - set(got)), sorted(set(got) - set(expected))
    if "aten::zeros_like" in extra:
        raise Mistake("your counts include aten::zeros_like, which only the first step calls (it makes the "
                      "optimiser's state): warm up with one step() before the profiler starts", HINT_3)
    if missing or extra:
        raise Mistake(f"your dict lacks {missing[:4]} and has extra {extra[:4]}: count every aten:: entry of "
                      "prof.key_averages() for the profiled steps", HINT_3)
    for name, count in expected.items():
        value = got[name]
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise Mistake(f"{name}'s entry is {describe(value)}, expected a float", HINT_3)
        if abs(value - count * num_steps) < 1e-9 and num_steps > 1 and abs(value - count) > 1e-9:
            raise Mistake(f"{name} has {value:g}, the total over the {num_steps} profiled steps: divide by "
                          "num_steps for the calls per step", HINT_3)
        if abs(value - count) > 1e-9:
            raise Mistake(f"{name} has {value:g} calls per step, expected {count:g}", HINT_3)
        if not isinstance(value, float):
            raise Mistake(f"{name}'s entry is the int {value}, the right count but not the type asked for: the "
                          "calls per step are a float, .count / num_steps (true division, not //)", HINT_3)
    layers = len(step.layers)
    return (f"{len(expected)} operators over {num_steps} profiled steps after a warm-up, e.g. aten::addmm "
            f"{expected['aten::addmm']:g} and aten::mm {expected['aten::mm']:g} per step for {layers} Linear layers")


SOLUTION_3 = '''
from torch.profiler import ProfilerActivity, profile


def calls_per_step(step, num_steps):
    """{operator name: calls per step} for the aten:: operators of num_steps profiled calls after a warm-up."""
    step()                                          # warm-up: one-off work stays out of the counts
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(num_steps):
            step()
    return {event.key: event.count / num_steps for event in prof.key_averages() if event.key.startswith("aten::")}
'''

EX_3 = Exercise(
    id="14.3", lesson=LESSON, title="Operator calls per step, from the profiler", name="calls_per_step",
    statement="""
Write `calls_per_step(step, num_steps)` that profiles a training step and returns how often each operator
runs per step.

Call `step()` once to warm up, outside the profiler (the first step of a run does one-off work, such as
creating the optimiser's state), then record `num_steps` calls of `step()` with `torch.profiler.profile`
(CPU activity).

- **In:** `step`, a function of no argument that runs one training step; `num_steps`, an int ≥ 1.
- **Out:** a dict that maps each operator's name in `prof.key_averages()` that starts with `"aten::"`
  (so not `record_function` labels) to its calls **per step**, a Python `float`: its `.count` divided by
  `num_steps`.
- **Use:** `torch.profiler` (the template imports `profile` and `ProfilerActivity`).
- **Correct means:** `step()` called `num_steps + 1` times; the same operators with the same calls per
  step as the profiler reports for this step (`aten::addmm` once per `Linear` layer, for instance), each
  a `float`.
- **Reread:** section 7, *Where does the time go? `torch.profiler`*.
""",
    template=template_of(SOLUTION_3),
    solution=SOLUTION_3,
    alternatives=[variant(SOLUTION_3,
            ('from torch.profiler import ProfilerActivity, profile',
             'import torch.profiler'),
            ('profile(activities=[ProfilerActivity.CPU]', 'torch.profiler.profile('),
        )],
    wrong_answers=[
        ('''
from torch.profiler import ProfilerActivity, profile


def calls_per_step(step, num_steps):
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        step()
        for _ in range(num_steps):
            step()
    return {e.key: e.count / num_steps for e in prof.key_averages() if e.key.startswith("aten::")}
''', "warm up with one step() before the profiler starts"),
        (variant(SOLUTION_3, ('event.count / num_steps', 'event.count')), "divide by num_steps"),
        (variant(SOLUTION_3, (' if event.key.startswith("aten::")', '')), "not operators"),
        (variant(SOLUTION_3, ('range(num_steps)', 'range(num_steps - 1)')), "called step()"),
        (variant(SOLUTION_3, ('event.count / num_steps', 'event.count // num_steps')), "are a float"),
    ],
    checker=check_calls_per_step, hint=HINT_3,
    more_hints=["each entry of prof.key_averages() has .key (the operator's name) and .count (its calls over "
                "all the profiled steps); keep the keys that start with \"aten::\""],
)

EXERCISES = [EX_1, EX_2, EX_3]
