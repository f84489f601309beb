"""Exercises for lesson 15 (PyTorch Lightning): a LightningModule's steps, a stopping callback, a data module."""

from __future__ import annotations

import math
import types

import torch
import torch.nn.functional as F

from course_utils.exercises.framework import (
    Exercise,
    Mistake,
    describe,
    distinct_sizes,
    expect_subclass,
    expect_tensor,
    generator,
    randint,
    spy,
    template_of,
    variant,
)

LESSON = "15_lightning"


def _lightning():
    """The lightning package, imported when a check runs (importing it takes a while; most lessons never need it)."""
    import lightning as L
    return L


_TRAINER_NEEDS = "the Trainer accepts nothing else"


# ---------------------------------------------------------------- 15.1 a LightningModule's steps

HINT_1 = ("section 3 (The model as a LightningModule) and section 6 (What Lightning did for you): the Trainer calls "
          "backward() and step(), the module only returns the loss")


def _logged(calls: list) -> list[tuple[str, object, dict]]:
    """spy's records of LightningModule.log (self, name, value, ...) as (name, value, other keyword arguments)."""
    logs = []
    for args, kwargs in calls:
        bound = dict(zip(("self", "name", "value"), args)) | kwargs
        logs.append((bound.get("name"), bound.get("value"), {k: v for k, v in kwargs.items() if k not in
                                                              ("name", "value")}))
    return logs


def check_lit_linear(LitLinear) -> str:
    gen = generator("15.1")
    expect_subclass(LitLinear, _lightning().LightningModule, "LitLinear", HINT_1, why=_TRAINER_NEEDS)
    input_size, num_classes = distinct_sizes(gen, 2, 3, 9)
    lr = round(float(torch.empty(()).uniform_(0.01, 0.5, generator=gen)), 3)
    module = LitLinear(input_size, num_classes, lr)
    hparams = dict(getattr(module, "hparams", {}))
    wanted = {"input_size": input_size, "num_classes": num_classes, "lr": lr}
    if any(hparams.get(key) != value for key, value in wanted.items()):
        raise Mistake(f"module.hparams is {hparams}, expected {wanted}: call self.save_hyperparameters() in "
                      "__init__, so that every checkpoint can rebuild the module", HINT_1)
    parameters = list(module.parameters())
    weights = [p for p in parameters if p.ndim == 2]
    if sum(p.numel() for p in parameters) != (input_size + 1) * num_classes or len(weights) != 1:
        raise Mistake(f"the module has {sum(p.numel() for p in parameters)} parameters, expected those of one "
                      f"nn.Linear({input_size}, {num_classes}): {(input_size + 1) * num_classes}", HINT_1)
    weight, bias = weights[0], next(p for p in parameters if p.ndim == 1)
    with torch.no_grad():
        for p in parameters:
            p.copy_(torch.randn(p.shape, generator=gen))
    tested = []
    for batch_size in (randint(gen, 5, 9), 1):
        inputs = torch.randn(batch_size, input_size, generator=gen)
        labels = torch.randint(0, num_classes, (batch_size,), generator=gen)
        module.zero_grad(set_to_none=True)
        # log_dict calls log too; without a Trainer, Lightning's log would only warn: record the calls, make none
        with spy(_lightning().LightningModule, "log", call_through=False) as calls:
            loss = module.training_step((inputs, labels), 0)
        logs = _logged(calls)
        expected = F.cross_entropy(F.linear(inputs, weight, bias), labels).detach()
        if isinstance(loss, (int, float)) or (isinstance(loss, torch.Tensor) and loss.grad_fn is None):
            raise Mistake("training_step returned a loss without a graph (a float, or a tensor made under no_grad "
                          "or with .item() / .detach()): return the loss tensor itself, the Trainer calls "
                          "backward() on it", HINT_1)
        from_probs = F.cross_entropy(F.softmax(F.linear(inputs, weight, bias), dim=1), labels)
        if loss.shape == expected.shape and torch.isclose(loss.detach(), from_probs, atol=1e-6) and not torch.isclose(
                from_probs, expected, atol=1e-6):
            raise Mistake("training_step's loss is F.cross_entropy of probabilities (after a softmax): "
                          "F.cross_entropy takes the logits and applies log_softmax itself", HINT_1)
        expect_tensor(loss, expected, f"training_step's loss for a batch of {batch_size}", hint=HINT_1)
        if any(p.grad is not None for p in parameters):
            raise Mistake("after training_step the parameters have gradients: do not call backward() (or an "
                          "optimiser) inside training_step, the Trainer does it with the loss you return", HINT_1)
        logged = [entry for entry in logs if entry[0] == "train_loss"]
        if not logged:
            raise Mistake(f"training_step logged {[name for name, _, _ in logs]}, expected 'train_loss': call "
                          "self.log(\"train_loss\", loss, batch_size=...)", HINT_1)
        _, value, kwargs = logged[-1]
        value = value.detach() if isinstance(value, torch.Tensor) else value  # float() of a graph's tensor warns
        if abs(float(value) - float(expected)) > 1e-5:
            raise Mistake(f"the logged train_loss is {float(value):.6g}, expected the step's loss "
                          f"{float(expected):.6g}", HINT_1)
        if kwargs.get("batch_size") != batch_size:
            raise Mistake(f"train_loss was logged with batch_size={kwargs.get('batch_size')} for a batch of "
                          f"{batch_size}: pass batch_size=len(labels), so that the epoch's value is the mean per "
                          "sample", HINT_1)
        logits = module(inputs)
        expected_logits = F.linear(inputs, weight, bias).detach()
        if (isinstance(logits, torch.Tensor) and logits.shape == expected_logits.shape
                and torch.allclose(logits.detach(), F.softmax(expected_logits, dim=1), atol=1e-5)):
            raise Mistake("forward returned probabilities (the softmax of the logits): return the logits themselves, "
                          "F.cross_entropy and the Trainer's metrics take logits", HINT_1)
        expect_tensor(logits.detach() if isinstance(logits, torch.Tensor) else logits, expected_logits,
                      f"module(inputs) for a batch of {batch_size}", hint=HINT_1)
        tested.append(batch_size)
    optimizer = module.configure_optimizers()
    if isinstance(optimizer, dict):
        optimizer = optimizer.get("optimizer")
    if not isinstance(optimizer, torch.optim.SGD):
        raise Mistake(f"configure_optimizers returned {describe(optimizer)}, expected a torch.optim.SGD", HINT_1)
    optimized = {id(p) for group in optimizer.param_groups for p in group["params"]}
    if optimized != {id(p) for p in parameters}:
        raise Mistake("the optimiser does not hold every parameter of the module: build it from self.parameters()",
                      HINT_1)
    rates = sorted({group["lr"] for group in optimizer.param_groups})
    if rates != [lr]:
        raise Mistake(f"the optimiser's learning rate is {rates[0] if len(rates) == 1 else rates}, expected the "
                      f"module's lr={lr} (self.hparams.lr)", HINT_1)
    return (f"hparams saved, the cross-entropy loss with its graph for batches of {tested[0]} and 1, train_loss "
            f"logged with its batch size, no backward in the step, SGD over all parameters with lr={lr}")


SOLUTION_1 = '''
import lightning as L


class LitLinear(L.LightningModule):
    """A linear classifier: cross-entropy training step, logged per sample; SGD with the learning rate lr."""

    def __init__(self, input_size, num_classes, lr):
        super().__init__()
        self.save_hyperparameters()        # input_size, num_classes, lr: into every checkpoint
        self.linear = nn.Linear(input_size, num_classes)

    def forward(self, x):
        return self.linear(x)              # (batch, input_size) -> (batch, num_classes)

    def training_step(self, batch, batch_idx):
        inputs, labels = batch
        loss = F.cross_entropy(self(inputs), labels)
        self.log("train_loss", loss, batch_size=len(labels))  # per-sample mean over the epoch
        return loss                        # the Trainer calls backward() and step()

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=self.hparams.lr)
'''

EX_1 = Exercise(
    id="15.1", lesson=LESSON, title="A LightningModule's steps, called without a Trainer", name="LitLinear",
    statement="""
Write a class `LitLinear`, derived from `L.LightningModule`, for a linear classifier that a `Trainer`
can train: its hyperparameters saved, its training step and its optimiser.

The methods:
`__init__(self, input_size, num_classes, lr)` calls `self.save_hyperparameters()` and makes one
`nn.Linear(input_size, num_classes)`, the module's only layer; `forward(self, x)` returns the logits;
`training_step(self, batch, batch_idx)` gets `batch = (inputs, labels)`, returns the batch's mean
cross-entropy loss and logs it as `"train_loss"` with `self.log`, giving the batch's size
(`batch_size=`), but neither calls `backward()` nor touches an optimiser (the Trainer does);
`configure_optimizers(self)` returns `torch.optim.SGD` over all parameters with the learning rate `lr`.

- **In:** `input_size`, `num_classes` (ints), `lr` (a float); batches of float inputs
  `(batch, input_size)` and int64 labels `(batch,)`.
- **Out:** `forward`: the logits `(batch, num_classes)`; `training_step`: the loss, a 0-d tensor that
  still has its graph; `configure_optimizers`: a `torch.optim.SGD`.
- **Use:** `lightning` (the template imports it as `L`), `nn.Linear`, `F.cross_entropy`, `torch.optim.SGD`.
- **Correct means:** `hparams` holds the three arguments; for a batch of several samples and one of 1,
  the loss equals `F.cross_entropy` of the logits (within 1e-5) and has its graph, no gradient is
  computed, `train_loss` is logged with that value and the batch size, `forward` gives the logits; the
  optimiser holds every parameter with the rate `lr`. The check calls the methods directly, without a
  `Trainer`.
- **Reread:** section 3, *The model as a `LightningModule`*.
""",
    template='''
import lightning as L


class LitLinear(L.LightningModule):
    """A linear classifier: cross-entropy training step, logged per sample; SGD with the learning rate lr."""

    def __init__(self, input_size, num_classes, lr):
        super().__init__()
        raise NotImplementedError  # your code here

    def forward(self, x):
        raise NotImplementedError  # your code here

    def training_step(self, batch, batch_idx):
        raise NotImplementedError  # your code here

    def configure_optimizers(self):
        raise NotImplementedError  # your code here
''',
    solution=SOLUTION_1,
    alternatives=['''
import lightning as L


class LitLinear(L.LightningModule):
    def __init__(self, input_size, num_classes, lr):
        super().__init__()
        self.save_hyperparameters("input_size", "num_classes", "lr")
        self.model = nn.Sequential(nn.Linear(input_size, num_classes))

    def forward(self, x):
        return self.model(x)

    def _common_step(self, batch, stage):
        x, y = batch
        loss = nn.functional.cross_entropy(self.forward(x), y)
        self.log_dict({f"{stage}_loss": loss}, batch_size=y.shape[0], on_epoch=True)
        return loss

    def training_step(self, batch, batch_idx):
        return self._common_step(batch, "train")

    def configure_optimizers(self):
        return {"optimizer": torch.optim.SGD(self.model.parameters(), lr=self.hparams["lr"])}
'''],
    wrong_answers=[
        (variant(SOLUTION_1, ('return loss ', 'return loss.item() ')), "return the loss tensor itself"),
        (variant(SOLUTION_1,
            ('self.save_hyperparameters()', 'self.lr = lr'),
        ), "call self.save_hyperparameters()"),
        (variant(SOLUTION_1,
                 ('        self.log("train_loss"', '        loss.backward()\n        self.log("train_loss"')),
         "do not call backward()"),
        (variant(SOLUTION_1, ('loss, batch_size=len(labels)', 'loss')), "pass batch_size=len(labels)"),
        (variant(SOLUTION_1, ('self.hparams.lr', '0.01')), "expected the module's lr="),
        (variant(SOLUTION_1,
            ('self.linear(x', 'F.softmax(self.linear(x), dim=1'),
        ), "cross_entropy of probabilities"),
        (variant(SOLUTION_1, ("return self.linear(x) ", "return F.softmax(self.linear(x), dim=1) "),
                 ("F.cross_entropy(self(inputs), labels)", "F.cross_entropy(self.linear(inputs), labels)")),
         "forward returned probabilities"),
    ],
    checker=check_lit_linear, hint=HINT_1,
    more_hints=["self.log takes the name, the value and batch_size= (the number of labels); return the loss "
                "tensor itself (no .item()); configure_optimizers reads the rate back from self.hparams.lr"],
)


# ---------------------------------------------------------------- 15.2 a callback that stops on a plateau

HINT_2 = ("section 4 (The Trainer and its callbacks): a callback's hooks receive the trainer, whose callback_metrics "
          "hold the logged values and whose should_stop ends the run")


class _ReferencePlateauStop:
    def __init__(self, monitor, patience, mode="min"):
        self.monitor, self.patience, self.mode = monitor, patience, mode
        self.best, self.wait = math.inf if mode == "min" else -math.inf, 0

    def on_validation_end(self, trainer, pl_module):
        if trainer.sanity_checking:
            return
        value = float(trainer.callback_metrics[self.monitor])
        if (value < self.best) if self.mode == "min" else (value > self.best):
            self.best, self.wait = value, 0
        else:
            self.wait += 1
            if self.wait >= self.patience:
                trainer.should_stop = True


def _metric_curves(gen: torch.Generator) -> list[tuple[str, str, int, list[float]]]:
    """(monitor, mode, patience, values): noisy losses that fall then rise, accuracies that rise then fall."""
    curves = []
    for monitor, mode, patience in (("val_loss", "min", 2), ("val_accuracy", "max", 2), ("val_loss", "min", 1),
                                    ("val_accuracy", "max", 3), ("val_loss", "min", 3)):
        t = torch.arange(20, dtype=torch.float64)
        turn = randint(gen, 4, 10)
        shape = 0.02 * (t - turn) ** 2 / turn + 0.05 * torch.randn(20, generator=gen, dtype=torch.float64)
        values = 1.0 + shape if mode == "min" else 0.9 - shape
        curves.append((monitor, mode, patience, [round(v, 3) for v in values.tolist()]))
    curves.append(("val_loss", "min", 2, [0.9, 0.8, 0.8, 0.7, 0.7, 0.7, 0.6]))  # equal to the best: no improvement
    return curves


def _fake_trainer(metrics: dict[str, float], sanity_checking: bool = False) -> types.SimpleNamespace:
    """What a callback's hook uses of the Trainer: the logged metrics (as tensors), the stop flag, the sanity check."""
    return types.SimpleNamespace(callback_metrics={k: torch.tensor(v) for k, v in metrics.items()}, should_stop=False,
                                 current_epoch=0, sanity_checking=sanity_checking)


def check_plateau_stop(PlateauStop) -> str:
    gen = generator("15.2")
    expect_subclass(PlateauStop, _lightning().Callback, "PlateauStop", HINT_2, why=_TRAINER_NEEDS)
    stops = []
    for monitor, mode, patience, values in _metric_curves(gen):
        mine, reference = PlateauStop(monitor, patience, mode=mode), _ReferencePlateauStop(monitor, patience, mode)
        other = "val_accuracy" if monitor == "val_loss" else "val_loss"
        # the sanity check's few batches first: its value beats every later one, so counting it stops too early
        trainer = _fake_trainer({monitor: 0.0 if mode == "min" else 1.0, other: 0.5}, sanity_checking=True)
        mine.on_validation_end(trainer, None)
        trainer.sanity_checking, reference_trainer = False, _fake_trainer({})
        for epoch, value in enumerate(values):
            metrics = {monitor: value, other: 0.5, "train_loss": 0.3}
            trainer.callback_metrics = _fake_trainer(metrics).callback_metrics
            reference_trainer.callback_metrics = trainer.callback_metrics
            trainer.current_epoch = reference_trainer.current_epoch = epoch
            returned = mine.on_validation_end(trainer, None)
            reference.on_validation_end(reference_trainer, None)
            setting = f"monitor={monitor!r}, mode={mode!r}, patience={patience}"
            if returned is True and not trainer.should_stop:
                raise Mistake("the hook returned True, but the Trainer ignores what hooks return: set "
                              "trainer.should_stop = True", HINT_2)
            if trainer.should_stop and not reference_trainer.should_stop and _counted_sanity_check(
                    PlateauStop, monitor, patience, mode, values[:epoch + 1]):
                raise Mistake(f"with {setting}, your callback stopped after the values {values[:epoch + 1]}: it "
                              "counted the sanity check's validation (before the first epoch) as the best so far. "
                              "EarlyStopping ignores it: return at once while trainer.sanity_checking is True", HINT_2)
            if bool(trainer.should_stop) != reference_trainer.should_stop:
                better = "lower" if mode == "min" else "higher"
                ties = sum(abs(v - reference.best) < 1e-6 for v in values[:epoch + 1])  # the best seen again
                tie = ("; a value equal to the best so far is no improvement, only a strictly better one is"
                       if reference_trainer.should_stop and ties > 1 else "")
                raise Mistake(f"with {setting}, after the values {values[:epoch + 1]} trainer.should_stop is "
                              f"{bool(trainer.should_stop)}, expected {reference_trainer.should_stop} "
                              f"({reference.wait} epoch(s) in a row without a {better} value than the best so "
                              f"far{tie})", HINT_2)
            if reference_trainer.should_stop:
                stops.append(epoch + 1)
                break
    typo = "val_acc"
    try:
        PlateauStop(typo, 2, mode="max").on_validation_end(_fake_trainer({"val_loss": 0.4, "val_accuracy": 0.8}), None)
    except ValueError as err:
        if typo not in str(err):
            raise Mistake(f"for a metric that was not logged your ValueError says {str(err)!r}: name the missing "
                          f"metric ({typo!r})", HINT_2) from None
    except Exception as err:  # noqa: BLE001 - the learner's exception is the finding here
        raise Mistake(f"for monitor={typo!r}, a metric that was not logged, your callback raised "
                      f"{type(err).__name__}: {err}; raise a ValueError that names the missing metric and the ones "
                      "there are", HINT_2) from None
    else:
        raise Mistake(f"for monitor={typo!r}, a metric that was not logged, your callback raised nothing: raise a "
                      "ValueError that names it (a typo in monitor= must not go unnoticed)", HINT_2)
    try:
        PlateauStop("val_loss", 2, mode="lowest")
    except ValueError:
        pass
    else:
        raise Mistake("PlateauStop('val_loss', 2, mode='lowest') raised nothing: raise a ValueError for a mode other "
                      "than 'min' or 'max'", HINT_2)
    return (f"stopping epochs {stops} on {len(stops)} curves (mode min and max, patience 1 to 3, ties), a "
            "ValueError for a metric that was not logged and for an unknown mode")


def _counted_sanity_check(PlateauStop, monitor: str, patience: int, mode: str, values: list[float]) -> bool:
    """Whether the learner's callback, shown `values` without a sanity check first, would not have stopped."""
    callback, trainer = PlateauStop(monitor, patience, mode=mode), _fake_trainer({})
    for value in values:
        trainer.callback_metrics = _fake_trainer({monitor: value}).callback_metrics
        callback.on_validation_end(trainer, None)
    return not trainer.should_stop


SOLUTION_2 = '''
import lightning as L


class PlateauStop(L.Callback):
    """Sets trainer.should_stop once `patience` validations in a row have not improved the monitored metric."""

    def __init__(self, monitor, patience, mode="min"):
        if mode not in ("min", "max"):
            raise ValueError(f"mode must be 'min' or 'max', not {mode!r}")
        self.monitor, self.patience, self.mode = monitor, patience, mode
        self.best = math.inf if mode == "min" else -math.inf   # the first value always improves
        self.wait = 0

    def on_validation_end(self, trainer, pl_module):
        if trainer.sanity_checking:   # the few batches before the first epoch: EarlyStopping ignores them too
            return
        if self.monitor not in trainer.callback_metrics:
            raise ValueError(f"PlateauStop watches {self.monitor!r}, which was not logged; "
                             f"logged: {sorted(trainer.callback_metrics)}")
        value = float(trainer.callback_metrics[self.monitor])
        improved = value < self.best if self.mode == "min" else value > self.best
        if improved:
            self.best, self.wait = value, 0
        else:
            self.wait += 1
            if self.wait >= self.patience:
                trainer.should_stop = True
'''

EX_2 = Exercise(
    id="15.2", lesson=LESSON, title="A callback that stops on a plateau", name="PlateauStop",
    statement="""
Write a callback `PlateauStop`, derived from `L.Callback`, that stops training as `EarlyStopping` does:
once `patience` validations in a row have not improved the monitored metric.

`on_validation_end(self, trainer, pl_module)` runs after every validation, including the sanity check
of a few batches before the first epoch (while `trainer.sanity_checking` is `True`): ignore that one, as
`EarlyStopping` does. A value improves when it is **strictly** better than the best so far (the first
one always does); once `patience` validations in a row have not improved, set
`trainer.should_stop = True` (what the hook returns is ignored).

- **In:** `__init__(self, monitor, patience, mode="min")`: the name of a logged metric, how many
  validations in a row may fail to improve it, and whether lower (`"min"`) or higher (`"max"`) is
  better; the hook reads `trainer.callback_metrics`, a dict of name → 0-d tensor.
- **Out:** nothing; `trainer.should_stop` set to `True` at the right validation. Any other mode raises a
  `ValueError`; a `monitor` missing from `callback_metrics` (a typo) raises a `ValueError` whose message
  names it.
- **Use:** `lightning` (the template imports it as `L`); `math` (`math.inf`) is imported already.
- **Correct means:** `should_stop` becomes `True` after the same validation as in a correct callback,
  on loss curves (`"min"`) and accuracy curves (`"max"`) with patiences 1 to 3, on a curve whose values
  tie the best (no improvement), with the sanity check ignored; and the two `ValueError`s. The check
  calls the hook with a stand-in for the Trainer.
- **Reread:** section 4, *The `Trainer` and its callbacks*.
""",
    template=template_of(SOLUTION_2),
    solution=SOLUTION_2,
    alternatives=['''
import lightning as L


class PlateauStop(L.Callback):
    def __init__(self, monitor, patience, mode="min"):
        signs = {"min": 1.0, "max": -1.0}
        if mode not in signs:
            raise ValueError("unknown mode " + repr(mode))
        self.monitor, self.patience, self.sign = monitor, patience, signs[mode]
        self.history = []

    def on_validation_end(self, trainer, pl_module):
        if trainer.sanity_checking:
            return
        metrics = trainer.callback_metrics
        if self.monitor not in metrics:
            raise ValueError(f"no metric {self.monitor} among {list(metrics)}")
        self.history.append(self.sign * metrics[self.monitor].item())   # lower is better now
        best_epoch = min(range(len(self.history)), key=lambda i: (self.history[i], i))
        if len(self.history) - 1 - best_epoch >= self.patience:
            trainer.should_stop = True
'''],
    wrong_answers=[
        (variant(SOLUTION_2,
            ('improved = value < self.best if self.mode == "min" else value > self.best\n'
             '        if improved',
             'if value < self.best'),
        ), "mode='max'"),
        (variant(SOLUTION_2,
            ('        if trainer.sanity_checking:   # the few batches before the first epoch: EarlyStopping ignores '
             'them too\n'
             '            return\n',
             ''),
        ), "counted the sanity check's validation"),
        (variant(SOLUTION_2,
            ('\n'
             '        if self.monitor not in trainer.callback_metrics:\n'
             '            raise ValueError(f"PlateauStop watches {self.monitor!r}, which was not logged; "\n'
             '                             f"logged: {sorted(trainer.callback_metrics)}")',
             ''),
        ), "your callback raised KeyError"),
        (variant(SOLUTION_2,
            ('    if self.wait >= self.patience:\n'
             '                trainer.should_stop = True',
             'return self.wait >= self.patience'),
        ), "set trainer.should_stop = True"),
        (variant(SOLUTION_2,
            ('improved = value < self.best if self.mode == "min" else value > self.best\n'
             '        if improved',
             'if (value <= self.best) if self.mode == "min" else (value >= self.best)'),
        ), "a value equal to the best so far is no improvement"),
        ('''
class PlateauStop:
    def __init__(self, monitor, patience, mode="min"):
        self.monitor, self.patience, self.mode = monitor, patience, mode

    def on_validation_end(self, trainer, pl_module):
        pass
''', "derived from lightning.Callback"),
        (variant(SOLUTION_2, ('        if mode not in ("min", "max"):\n'
                              '            raise ValueError(f"mode must be \'min\' or \'max\', not {mode!r}")\n', '')),
         "raise a ValueError for a mode"),
        (variant(SOLUTION_2, ('raise ValueError(f"PlateauStop watches {self.monitor!r}, which was not logged; "\n'
                              '                             f"logged: {sorted(trainer.callback_metrics)}")',
                              'raise ValueError("the monitored metric was not logged")')),
         "name the missing metric"),
    ],
    checker=check_plateau_stop, hint=HINT_2,
    more_hints=["keep the best value and a count of validations without improvement in the callback; "
                "float(trainer.callback_metrics[self.monitor]) is the value; compare with < for \"min\" and > "
                "for \"max\", so that a tie counts as no improvement"],
)


# ---------------------------------------------------------------- 15.3 a data module

HINT_3 = ("section 1 (The data as a LightningDataModule): setup() builds the splits, train_dataloader() and "
          "val_dataloader() wrap them")


def _loader_ids(loader, inputs: torch.Tensor, what: str, batch_size: int) -> list[int]:
    """The sample ids (the targets) of one pass over a loader; Mistake if a batch is not (inputs, ids) as made."""
    ids = []
    for i, batch in enumerate(loader):
        if not isinstance(batch, (list, tuple)) or len(batch) != 2:
            raise Mistake(f"{what} gave a batch that is {describe(batch)}, expected (inputs, targets)", HINT_3)
        batch_inputs, batch_ids = batch
        if i == 0 and len(batch_ids) != min(batch_size, len(loader.dataset)):
            raise Mistake(f"{what}'s first batch has {len(batch_ids)} samples, expected batch_size={batch_size}",
                          HINT_3)
        if not torch.equal(batch_inputs, inputs[batch_ids]):
            raise Mistake(f"{what} gave inputs that do not belong to their targets: split one TensorDataset of "
                          "(inputs, targets), not the two tensors separately", HINT_3)
        ids += batch_ids.tolist()
    return ids


def check_tensor_data_module(TensorDataModule) -> str:
    gen = generator("15.3")
    expect_subclass(TensorDataModule, _lightning().LightningDataModule, "TensorDataModule", HINT_3, why=_TRAINER_NEEDS)
    n, features, batch_size = randint(gen, 40, 70), randint(gen, 2, 5), randint(gen, 4, 9)
    val_fraction = round(float(torch.empty(()).uniform_(0.15, 0.35, generator=gen)), 2)
    seed = randint(gen, 0, 10_000)
    n_val = int(val_fraction * n)
    inputs, targets = torch.randn(n, features, generator=gen), torch.arange(n)  # the targets name the samples

    def splits(seed):
        module = TensorDataModule(inputs, targets, batch_size, val_fraction, seed)
        module.setup("fit")
        return module, _loader_ids(module.train_dataloader(), inputs, "train_dataloader()", batch_size), \
            _loader_ids(module.val_dataloader(), inputs, "val_dataloader()", batch_size)

    module, train, val = splits(seed)
    if len(val) != n_val or len(train) != n - n_val:
        raise Mistake(f"with {n} samples and val_fraction={val_fraction} the splits have {len(train)} training and "
                      f"{len(val)} validation samples, expected {n - n_val} and int({val_fraction} * {n}) = {n_val}",
                      HINT_3)
    if set(train) & set(val) or set(train) | set(val) != set(range(n)):
        raise Mistake("the training and validation splits overlap or miss samples: every sample belongs to "
                      "exactly one", HINT_3)
    module.setup("validate")  # the Trainer may call setup again, for another stage
    if set(_loader_ids(module.val_dataloader(), inputs, "val_dataloader()", batch_size)) != set(val):
        raise Mistake("calling setup() again changed the split: draw it from torch.Generator().manual_seed(seed), "
                      "passed to random_split as generator=, so that it depends on the seed alone", HINT_3)
    _, _, val_again = splits(seed)
    if set(val_again) != set(val):
        raise Mistake(f"two data modules with the same seed={seed} split differently: draw the split from "
                      "torch.Generator().manual_seed(seed), passed to random_split as generator=", HINT_3)
    _, _, val_other = splits(seed + 1)
    if set(val_other) == set(val):
        raise Mistake(f"the seeds {seed} and {seed + 1} gave the same split: the split must depend on the seed",
                      HINT_3)
    # the Trainer asks for each loader once and iterates it every epoch: two passes over one loader
    val_loader, train_loader = module.val_dataloader(), module.train_dataloader()
    val_passes = [_loader_ids(val_loader, inputs, "val_dataloader()", batch_size) for _ in range(2)]
    dataset = val_loader.dataset
    if val_passes[0] != val_passes[1] or val_passes[0] != [int(dataset[i][1]) for i in range(len(dataset))]:
        raise Mistake("val_dataloader() shuffles: keep validation in its order (shuffle=False), so that two "
                      "evaluations see the same batches", HINT_3)
    train_passes = [_loader_ids(train_loader, inputs, "train_dataloader()", batch_size) for _ in range(2)]
    if train_passes[0] == train_passes[1]:
        raise Mistake("two passes over the training loader gave the same order: shuffle the training data "
                      "(shuffle=True), so that every epoch sees new batches", HINT_3)
    return (f"{n} samples split {n - n_val}/{n_val} (val_fraction={val_fraction}) without overlap, the same split "
            f"for the same seed and another for another seed, batches of {batch_size}, training shuffled, "
            "validation in order")


SOLUTION_3 = '''
import lightning as L
from torch.utils.data import DataLoader, TensorDataset, random_split


class TensorDataModule(L.LightningDataModule):
    """Training and validation loaders over a seeded random split of (inputs, targets)."""

    def __init__(self, inputs, targets, batch_size, val_fraction, seed):
        super().__init__()
        self.dataset = TensorDataset(inputs, targets)
        self.batch_size, self.val_fraction, self.seed = batch_size, val_fraction, seed

    def setup(self, stage=None):
        n_val = int(self.val_fraction * len(self.dataset))
        generator = torch.Generator().manual_seed(self.seed)   # the same split on every call
        self.train_set, self.val_set = random_split(self.dataset, [len(self.dataset) - n_val, n_val],
                                                    generator=generator)

    def train_dataloader(self):
        return DataLoader(self.train_set, batch_size=self.batch_size, shuffle=True)

    def val_dataloader(self):
        return DataLoader(self.val_set, batch_size=self.batch_size)   # in order
'''

EX_3 = Exercise(
    id="15.3", lesson=LESSON, title="A LightningDataModule from tensors", name="TensorDataModule",
    statement="""
Write a class `TensorDataModule`, derived from `L.LightningDataModule`, that splits `(inputs, targets)`
at random into training and validation sets and serves both as loaders.

`setup(self, stage=None)` splits a `TensorDataset(inputs, targets)` into `int(val_fraction * n)`
validation samples and the rest for training; the split depends only on `seed` (the same seed gives
the same split every time, also when `setup` is called again, as the Trainer does for each stage).
`train_dataloader(self)` reshuffles on every pass; `val_dataloader(self)` keeps its order.

- **In:** `__init__(self, inputs, targets, batch_size, val_fraction, seed)`: tensors whose first
  dimension is the sample (`n` of them), an int, a float between 0 and 1, an int.
- **Out:** loaders of `(inputs, targets)` batches of `batch_size`, inputs still paired with their targets.
- **Use:** `lightning` (the template imports it as `L`) and `torch.utils.data` (`DataLoader`,
  `TensorDataset`, `random_split`, imported by the template).
- **Correct means:** the split sizes, no sample in both splits or in neither, inputs paired with their
  targets, the same split for the same seed (and after `setup` again) and a different one for another
  seed, batches of `batch_size`, two passes of the training loader in different orders and of the
  validation loader in the same order as its dataset.
- **Reread:** section 1, *The data as a `LightningDataModule`*.
""",
    template='''
import lightning as L
from torch.utils.data import DataLoader, TensorDataset, random_split


class TensorDataModule(L.LightningDataModule):
    """Training and validation loaders over a seeded random split of (inputs, targets)."""

    def __init__(self, inputs, targets, batch_size, val_fraction, seed):
        super().__init__()
        raise NotImplementedError  # your code here

    def setup(self, stage=None):
        raise NotImplementedError  # your code here

    def train_dataloader(self):
        raise NotImplementedError  # your code here

    def val_dataloader(self):
        raise NotImplementedError  # your code here
''',
    solution=SOLUTION_3,
    alternatives=['''
import lightning as L
from torch.utils.data import DataLoader, Subset, TensorDataset


class TensorDataModule(L.LightningDataModule):
    def __init__(self, inputs, targets, batch_size, val_fraction, seed):
        super().__init__()
        self.inputs, self.targets = inputs, targets
        self.batch_size, self.val_fraction, self.seed = batch_size, val_fraction, seed
        self.splits = None

    def setup(self, stage=None):
        if self.splits is None:
            n = len(self.inputs)
            order = torch.randperm(n, generator=torch.Generator().manual_seed(self.seed)).tolist()
            n_val = int(self.val_fraction * n)
            data = TensorDataset(self.inputs, self.targets)
            self.splits = {"val": Subset(data, order[:n_val]), "train": Subset(data, order[n_val:])}

    def train_dataloader(self):
        # a fresh seeded generator per call, as the course's FashionMNISTDataModule: each pass still reshuffles
        return DataLoader(self.splits["train"], self.batch_size, shuffle=True,
                          generator=torch.Generator().manual_seed(self.seed))

    def val_dataloader(self):
        return DataLoader(self.splits["val"], self.batch_size, shuffle=False)
'''],
    wrong_answers=[
        (variant(SOLUTION_3,
                 ('generator = torch.Generator().manual_seed(self.seed)   # the same split on every call',
                  'generator = None   # the global random state')),
         "calling setup() again changed the split"),
        (variant(SOLUTION_3,
            ('batch_size=self.batch_size)', 'batch_size=self.batch_size, shuffle=True)'),
        ), "val_dataloader() shuffles"),
        (variant(SOLUTION_3, ('self.batch_size, shuffle=True', 'self.batch_size')), "shuffle the training data"),
        (variant(SOLUTION_3,
                 ('self.train_set, self.val_set = random_split', 'self.val_set, self.train_set = random_split')),
         "validation samples, expected"),
        (variant(SOLUTION_3, ("torch.Generator().manual_seed(self.seed)", "torch.Generator().manual_seed(0)")),
         "gave the same split"),
        (variant(SOLUTION_3, ("DataLoader(self.val_set, batch_size=self.batch_size)", "DataLoader(self.val_set)")),
         "expected batch_size="),
        (variant(SOLUTION_3, ("TensorDataset(inputs, targets)", "TensorDataset(inputs, targets.flip(0))")),
         "do not belong to their targets"),
    ],
    checker=check_tensor_data_module, hint=HINT_3,
    more_hints=["random_split(dataset, [n_train, n_val], generator=torch.Generator().manual_seed(seed)) gives the "
                "same split on every call; DataLoader(..., shuffle=True) for training only"],
)

EXERCISES = [EX_1, EX_2, EX_3]
