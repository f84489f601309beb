"""Exercises for lesson 05 (inference and validation): dropout by hand, a validation pass, early stopping."""

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
    describe,
    distinct_sizes,
    exec_answer,
    expect_tensor,
    forbid,
    generator,
    randint,
    template_of,
    variant,
)

LESSON = "05_inference_validation"


# ---------------------------------------------------------------- 05.1 dropout

HINT_1 = ("section 2 (Dropout): in training each value is zeroed with probability p and the survivors are "
          "multiplied by 1 / (1 - p); in evaluation dropout is the identity")
_DROPOUTS = ((F, "dropout"), (torch, "dropout"), (torch, "dropout_"), (torch, "native_dropout"),
            (nn.Dropout, "forward"))


def check_dropout(dropout) -> str:
    gen = generator("05.1")
    p = round(float(torch.empty(()).uniform_(0.2, 0.7, generator=gen)), 2)
    seed = int(torch.randint(0, 2 ** 31, (1,), generator=gen))
    x = torch.randn(3, 4, 5, generator=gen)

    def run(values, training, seed=seed):
        with forbid(*_DROPOUTS, what="PyTorch's dropout", hint=HINT_1):
            return call(dropout, values, p, training, torch.Generator().manual_seed(seed), hint=HINT_1)

    expect_tensor(run(x, False), x, "dropout(x, p, training=False), which must equal x,", hint=HINT_1)
    out = run(x, True)
    if not isinstance(out, torch.Tensor):
        raise Mistake(f"dropout(x, p, training=True) returned {describe(out)}, expected a tensor", HINT_1)
    if out.shape != x.shape:
        raise Mistake(f"dropout(x, p, training=True) has shape {tuple(out.shape)}, expected {tuple(x.shape)}", HINT_1)
    zeroed, kept = out == 0, torch.isclose(out, x / (1 - p), atol=1e-6)
    if bool((zeroed | kept).all()) is False:
        if bool((zeroed | torch.isclose(out, x, atol=1e-6)).all()):
            raise Mistake("the values that survive are unchanged; in training mode multiply them by 1 / (1 - p) "
                          "so that the layer's average output stays the same", HINT_1)
        index = tuple((~(zeroed | kept)).nonzero()[0].tolist())
        raise Mistake(f"in training mode every output must be 0 or x / (1 - p); at index {index} you returned "
                      f"{out[index].item():.6g} for x = {x[index].item():.6g} and p = {p}", HINT_1)
    many = run(torch.ones(200, 500), True)                                   # 100,000 values
    share = (many == 0).float().mean().item()
    if abs(share - p) > 0.01:  # the share of 100,000 coin flips lies within 0.01 of p with near certainty
        raise Mistake(f"you zeroed {share:.3f} of the values for p = {p}: each value must be zeroed with "
                      "probability p (and kept with probability 1 - p)", HINT_1)
    if not torch.equal(run(x, True), out):
        raise Mistake("two calls with generators seeded the same gave different masks: draw the random numbers "
                      "from the given `generator` (torch.rand(..., generator=generator))", HINT_1)
    if torch.equal(run(x, True, seed + 1), out):
        raise Mistake("generators with different seeds gave the same mask: the mask must be random", HINT_1)
    return f"identity in evaluation, zeros or x / (1 - p) in training, a share {share:.3f} zeroed for p = {p}, " \
           "and the mask drawn from the given generator"


SOLUTION_1 = '''
def dropout(x, p, training, generator):
    """Inverted dropout: in training zero each value with probability p and scale the rest by 1 / (1 - p)."""
    if not training:
        return x
    keep = torch.rand(x.shape, generator=generator) >= p   # True with probability 1 - p
    return x * keep / (1 - p)
'''

EX_1 = Exercise(
    id="05.1", lesson=LESSON, title="Dropout by hand", name="dropout",
    statement="""
Write `dropout(x, p, training, generator)`, inverted dropout by hand: in training each value is set to 0 with
probability `p`, independently, and each surviving value is divided by `1 - p`; in evaluation it changes
nothing.

- **In:** `x`, a float tensor of any shape; `p`, a probability with `0 < p < 1`; `training`, a bool;
  `generator`, a `torch.Generator`.
- **Out:** a tensor of `x`'s shape: `x` itself (or an equal copy) when `training` is False; otherwise each
  value 0 or `x / (1 - p)`. `x` must not change.
- **Use:** tensor operations, drawing every random number from `generator` (e.g.
  `torch.rand(x.shape, generator=generator)`); not `F.dropout`, `torch.dropout` or `nn.Dropout`.
- **Correct means:** evaluation returns `x`; in training every value is 0 or `x / (1 - p)` (within 1e-6), the
  share of zeros over 100,000 values is within 0.01 of `p`, two generators seeded alike give the same mask
  and generators seeded differently do not.
- **Reread:** section 2, *Dropout*.
""",
    template=template_of(SOLUTION_1),
    solution=SOLUTION_1,
    alternatives=['''
def dropout(x, p, training, generator):
    if training:
        mask = torch.bernoulli(torch.full_like(x, 1 - p), generator=generator)
        return x * mask / (1 - p)
    return x.clone()
'''],
    wrong_answers=[
        ("def dropout(x, p, training, generator):\n    if not training:\n        return x\n"
         "    return x * (torch.rand(x.shape, generator=generator) >= p)\n", "multiply them by 1 / (1 - p)"),
        ("def dropout(x, p, training, generator):\n    if not training:\n        return x\n"
         "    return x * (torch.rand(x.shape, generator=generator) < p) / (1 - p)\n", "you zeroed"),
        ("def dropout(x, p, training, generator):\n    keep = torch.rand(x.shape, generator=generator) >= p\n"
         "    return x * keep / (1 - p)\n", "which must equal x, is wrong"),
        ("def dropout(x, p, training, generator):\n    if not training:\n        return x\n"
         "    return x * (torch.rand(x.shape) >= p) / (1 - p)\n", "from the given `generator`"),
        ("def dropout(x, p, training, generator):\n    return F.dropout(x, p, training)\n",
         "your code called PyTorch's dropout"),
    ],
    checker=check_dropout, hint=HINT_1,
    more_hints=["draw one uniform number per value from the generator; a value survives when its number is at "
                "least p, and a boolean mask multiplies like 0 and 1",
                "scale the survivors by 1 / (1 - p) so that the average output equals the average input; when "
                "training is False, return x straight away"],
)


# ---------------------------------------------------------------- 05.2 a validation pass

HINT_2 = ("section 3 (Two switches) and section 5: model.eval() for dropout, torch.no_grad() for gradients, "
          "the loss summed per sample and divided by the number of samples, and model.train() again if it "
          "was training before")


def check_evaluate(evaluate) -> str:
    gen = generator("05.2")
    n_in, n_classes = distinct_sizes(gen, 2, 3, 8)
    sizes = [randint(gen, 6, 9), randint(gen, 6, 9), randint(gen, 1, 3)]
    loader = [(torch.randn(n, n_in, generator=gen), torch.randint(0, n_classes, (n,), generator=gen)) for n in sizes]
    model = nn.Sequential(nn.Linear(n_in, 32), nn.ReLU(), nn.Dropout(0.5), nn.Linear(32, n_classes))
    with torch.no_grad():  # labels that make each batch's accuracy differ: one wrong, all wrong, all right
        for (inputs, targets), wrong in zip(loader, ([0], range(sizes[1]), [])):
            targets.copy_(model.eval()(inputs).argmax(dim=1))
            targets[list(wrong)] = (targets[list(wrong)] + 1) % n_classes
    before = {k: v.clone() for k, v in model.state_dict().items()}
    reference_evaluate = exec_answer(SOLUTION_2, "evaluate", "05.2 reference")  # the solution is the reference
    expected = reference_evaluate(model, loader, nn.CrossEntropyLoss())
    calls = []
    model.register_forward_pre_hook(lambda module, args: calls.append((module.training, torch.is_grad_enabled())))
    for start_in_training in (True, False):
        model.train(start_in_training)
        calls.clear()
        result = call(evaluate, model, loader, nn.CrossEntropyLoss(), hint=HINT_2)
        if any(training for training, _ in calls):
            raise Mistake("the model was in training mode during evaluation (dropout on, random results): "
                          "call model.eval() first", HINT_2)
        if any(grad for _, grad in calls):
            raise Mistake("gradients were being recorded during evaluation: run the batches inside "
                          "torch.no_grad() (or torch.inference_mode())", HINT_2)
        if model.training != start_in_training:
            raise Mistake(f"the model was in {'training' if start_in_training else 'evaluation'} mode before your "
                          f"evaluate and is left in {'training' if model.training else 'evaluation'} mode: put it "
                          "back the way it was (model.train(was_training))", HINT_2)
        if any(not torch.equal(before[k], v) for k, v in model.state_dict().items()):
            raise Mistake("evaluate changed the model's weights: evaluation must not train", HINT_2)
        if not isinstance(result, dict) or set(result) < {"loss", "accuracy"}:
            raise Mistake(f"evaluate returned {describe(result)}"
                          + (f" with keys {sorted(result)}" if isinstance(result, dict) else "")
                          + ", expected a dict with 'loss' and 'accuracy'", HINT_2)
        for key in ("loss", "accuracy"):
            value = result[key]
            if not isinstance(value, float):
                raise Mistake(f"result[{key!r}] is {describe(value)}: make it a Python float (.item())", HINT_2)
            if abs(value - expected[key]) > 1e-5:
                extra = " (a mean of batch means counts the small last batch's samples more)" if key == "loss" else ""
                raise Mistake(f"result[{key!r}] is {value:.6f}, expected {expected[key]:.6f}, per sample{extra}",
                              HINT_2)
    return (f"loss {expected['loss']:.4f} and accuracy {expected['accuracy']:.4f} per sample over batches of {sizes}, "
            "in eval mode without gradients, the mode restored from training and from eval")


SOLUTION_2 = '''
def evaluate(model, loader, loss_fn):
    """{"loss": mean loss per sample, "accuracy": share correct} in eval mode without gradients; mode restored."""
    was_training = model.training
    model.eval()                                   # dropout off
    total, correct, seen = 0.0, 0, 0
    with torch.no_grad():                          # nothing to backpropagate
        for inputs, targets in loader:
            logits = model(inputs)                 # (batch, classes)
            total += loss_fn(logits, targets).item() * len(targets)
            correct += (logits.argmax(dim=1) == targets).sum().item()
            seen += len(targets)
    model.train(was_training)                      # back to the mode we found
    return {"loss": total / seen, "accuracy": correct / seen}
'''

EX_2 = Exercise(
    id="05.2", lesson=LESSON, title="A validation pass that leaves the model as it found it", name="evaluate",
    statement="""
Write `evaluate(model, loader, loss_fn)` that measures `model` on `loader` and returns the loss and the
accuracy **per sample**, in evaluation mode and without recording gradients, and leaves the model in the
mode it found it in.

- **In:** `model`, an `nn.Module` with dropout; `loader`, an iterable of `(inputs, targets)` batches (the
  last may be smaller); `loss_fn`, a loss that returns a batch's mean, like `nn.CrossEntropyLoss()`.
- **Out:** a dict `{"loss": ..., "accuracy": ...}`, both Python `float`s: the mean loss per sample and the
  share of samples whose highest logit is their target. The weights must not change, and the model must be
  back in the mode it was in when `evaluate` was called.
- **Use:** `model.eval()`, `torch.no_grad()` (or `torch.inference_mode()`) and tensor operations.
  `model.training` is `True` while the model is in training mode and `False` after `model.eval()`, and
  `model.train(flag)` puts it in training mode when `flag` is `True`, in evaluation mode when it is `False`.
- **Correct means:** loss and accuracy are `float`s within 1e-5 of the per-sample values (the small last
  batch weighs by its samples); every forward pass runs in eval mode with gradients off; the weights are
  unchanged; the mode is restored, for a model arriving in training mode and one arriving in eval mode.
- **Reread:** section 3, *Two switches*.
""",
    template=template_of(SOLUTION_2),
    solution=SOLUTION_2,
    alternatives=['''
def evaluate(model, loader, loss_fn):
    mode = model.training
    model.eval()
    losses, hits, count = [], 0, 0
    try:
        with torch.inference_mode():
            for x, y in loader:
                out = model(x)
                losses.append(loss_fn(out, y) * y.numel())
                hits += int((out.argmax(1) == y).sum())
                count += y.numel()
    finally:
        if mode:
            model.train()
    return {"loss": float(sum(losses)) / count, "accuracy": hits / count}
'''],
    wrong_answers=[
        (variant(SOLUTION_2, ('    model.eval()                                   # dropout off\n', '')),
         "call model.eval() first"),
        (variant(SOLUTION_2,
            ('\n'
             '    model.train(was_training)                      # back to the mode we found',
             ''),
        ), "put it back the way it was"),
        ('''
def evaluate(model, loader, loss_fn):
    was_training = model.training
    model.eval()
    total, correct, seen = 0.0, 0, 0
    for inputs, targets in loader:
        logits = model(inputs)
        total += loss_fn(logits, targets).item() * len(targets)
        correct += (logits.argmax(dim=1) == targets).sum().item()
        seen += len(targets)
    model.train(was_training)
    return {"loss": total / seen, "accuracy": correct / seen}
''', "torch.no_grad()"),
        (variant(SOLUTION_2,
            ('total, correct, seen = 0.0', 'losses, correct, seen = []'),
            ('total += loss_fn(logits, targets).item() * len(targets',
             'losses.append(loss_fn(logits, targets).item()'),
            ('total / seen', 'sum(losses) / len(losses)'),
        ), "a mean of batch means"),
        (variant(SOLUTION_2, ('"loss": total / seen', '"loss": torch.tensor(total / seen)')),
         "make it a Python float"),
        (variant(SOLUTION_2, ('correct += (logits.argmax(dim=1) == targets).sum().item()',
                              'correct += (logits.argmax(dim=1) == targets).sum()'),
                 ('"accuracy": correct / seen', '"accuracy": correct / seen * 1')), "make it a Python float"),
        (variant(SOLUTION_2, ('model.train(was_training) ', 'model.train() ')), "put it back the way it was"),
    ],
    checker=check_evaluate, hint=HINT_2,
    more_hints=["remember model.training in a variable before model.eval(), and hand it to model.train(...) "
                "at the end",
                "a batch's mean loss times its number of samples is its summed loss: add those up, count the "
                "samples, and divide once at the end; .item() turns a one-number tensor into a float"],
)


# ---------------------------------------------------------------- 05.3 early stopping

HINT_3 = ("section 4 (Overfitting, on a plot) and section 5: keep the lowest validation loss so far; count the "
          "epochs since it last improved by more than min_delta, reset the count on an improvement, stop when the "
          "count reaches patience")


class _ReferenceEarlyStopping:
    def __init__(self, patience, min_delta=0.0):
        self.patience, self.min_delta = patience, min_delta
        self.best_loss, self.best_epoch, self.epoch, self.waited = math.inf, 0, 0, 0

    def step(self, val_loss):
        self.epoch += 1
        if val_loss < self.best_loss - self.min_delta:
            self.best_loss, self.best_epoch, self.waited = val_loss, self.epoch, 0
        else:
            self.waited += 1
        return self.waited >= self.patience


def _loss_curves(gen: torch.Generator) -> list[tuple[int, float, list[float]]]:
    """(patience, min_delta, losses): noisy falling-then-rising curves, then fixed ones: small gains that must not
    count, and a gain of exactly min_delta (in binary fractions, so that the tie is exact)."""
    curves = []
    for patience, min_delta in ((2, 0.0), (3, 0.05), (1, 0.0), (4, 0.0)):
        epochs = 25
        t = torch.arange(epochs, dtype=torch.float64)
        turn = randint(gen, 4, 12)
        losses = 1.0 + 0.02 * (t - turn) ** 2 / turn + 0.08 * torch.randn(epochs, generator=gen, dtype=torch.float64)
        curves.append((patience, min_delta, [round(v, 4) for v in losses.tolist()]))
    curves.append((2, 0.1, [1.0, 0.95, 0.92, 0.91, 0.7, 0.65, 0.64, 0.5]))  # gains of at most 0.1 do not count
    curves.append((2, 0.25, [1.0, 0.75, 0.5, 0.25, 0.125]))                  # 0.75 is exactly 0.25 below 1.0
    return curves


def _diagnose(setting: str, seen: list[float], mine, reference: _ReferenceEarlyStopping, best_before: float,
              got: bool, wanted: bool) -> Mistake:
    """The message for the first call where the answer and the reference part: what differs, and why."""
    loss, min_delta = seen[-1], reference.min_delta
    took_it = mine.best_loss == loss and reference.best_loss != loss
    if took_it and best_before != math.inf:
        drop = best_before - loss
        if min_delta and drop == min_delta:
            return Mistake(f"with {setting}, after the losses {seen} the loss fell from {best_before} to {loss}, "
                           f"by exactly min_delta, and your class counted it as an improvement (best_loss became "
                           f"{loss}, expected to stay {best_before}): an epoch improves only when the loss is "
                           "lower by more than min_delta, strictly", HINT_3)
        if min_delta and 0 < drop < min_delta:
            return Mistake(f"with {setting}, after the losses {seen} the loss fell from {best_before} to {loss}, "
                           f"by {drop:.4g}, less than min_delta, and your class counted it as an improvement "
                           f"(best_loss became {loss}, expected to stay {best_before}): min_delta is ignored",
                           HINT_3)
    if got != wanted:
        return Mistake(f"with {setting}, after the losses {seen} step returned {got}, expected {wanted} "
                       f"({reference.waited} epoch(s) in a row without an improvement of more than {min_delta})",
                       HINT_3)
    return Mistake(f"with {setting}, after the losses {seen} best_loss, best_epoch are {mine.best_loss}, "
                   f"{mine.best_epoch}; expected {reference.best_loss}, {reference.best_epoch} (epochs count from 1)",
                   HINT_3)


def check_early_stopping(EarlyStopping) -> str:
    gen = generator("05.3")
    if not isinstance(EarlyStopping, type):
        raise Mistake(f"EarlyStopping should be a class, but it is {describe(EarlyStopping)}", HINT_3)
    stops = []
    for patience, min_delta, losses in _loss_curves(gen):
        mine, reference = EarlyStopping(patience, min_delta=min_delta), _ReferenceEarlyStopping(patience, min_delta)
        seen = []
        for loss in losses:
            seen.append(loss)
            best_before = reference.best_loss
            got, wanted = mine.step(loss), reference.step(loss)
            if not isinstance(got, bool):
                raise Mistake(f"step returned {got!r}, of type {type(got).__name__}, expected True or False "
                              "(a bool)", HINT_3)
            if (got, mine.best_loss, mine.best_epoch) != (wanted, reference.best_loss, reference.best_epoch):
                raise _diagnose(f"patience={patience}, min_delta={min_delta}", seen, mine, reference, best_before,
                                got, wanted)
            if wanted:
                stops.append(len(seen))
                break
    return (f"stopping epochs {stops} and best epochs on {len(stops)} loss curves with patience 1 to 4, small gains "
            "below min_delta and a gain of exactly min_delta")


SOLUTION_3 = '''
class EarlyStopping:
    """step(val_loss) -> True once `patience` epochs in a row have not improved the best loss by more than min_delta."""

    def __init__(self, patience, min_delta=0.0):
        self.patience = patience
        self.min_delta = min_delta
        self.best_loss = math.inf   # so that the first epoch improves
        self.best_epoch = 0
        self.epoch = 0
        self.epochs_without_improvement = 0

    def step(self, val_loss):
        self.epoch += 1
        if val_loss < self.best_loss - self.min_delta:
            self.best_loss, self.best_epoch = val_loss, self.epoch
            self.epochs_without_improvement = 0
        else:
            self.epochs_without_improvement += 1
        return self.epochs_without_improvement >= self.patience
'''

EX_3 = Exercise(
    id="05.3", lesson=LESSON, title="Early stopping", name="EarlyStopping",
    statement="""
Write a class `EarlyStopping` whose `step(val_loss)`, called once per epoch with that epoch's validation
loss, says when to stop training: once `patience` epochs in a row have not improved the best loss. An epoch
**improves** when its loss is lower than the best so far by **more than** `min_delta` (the first epoch
always improves).

- **In:** `EarlyStopping(patience, min_delta=0.0)`: `patience` a positive int, `min_delta` a float >= 0;
  then `step(val_loss)` with a Python float, once per epoch.
- **Out:** `step` returns a `bool`: `True` once `patience` epochs in a row have not improved, else `False`.
  Two attributes stay up to date: `best_loss` (the loss of the last improving epoch) and `best_epoch` (its
  number, counting from 1).
- **Use:** plain Python (`math.inf` is a handy first best loss).
- **Correct means:** after every call, the same answer, `best_loss` and `best_epoch` as a correct
  implementation, on noisy loss curves with patience 1 to 4, on a curve whose small gains (at most
  `min_delta`) must not count, and on a curve with a gain of exactly `min_delta` (which does not count).
- **Reread:** section 5, *Validation after every epoch*.
""",
    template=template_of(SOLUTION_3),
    solution=SOLUTION_3,
    alternatives=['''
class EarlyStopping:
    def __init__(self, patience, min_delta=0.0):
        self.patience, self.min_delta = patience, min_delta
        self.history = []
        self.best_loss, self.best_epoch = None, None

    def step(self, val_loss):
        self.history.append(val_loss)
        if self.best_loss is None or self.best_loss - val_loss > self.min_delta:
            self.best_loss, self.best_epoch = val_loss, len(self.history)
        return len(self.history) - self.best_epoch >= self.patience
'''],
    wrong_answers=[
        # forgets to reset the count when an epoch improves
        (variant(SOLUTION_3, ('            self.epochs_without_improvement = 0\n', '')),
         "step returned True, expected False"),
        (variant(SOLUTION_3, ('val_loss < self.best_loss - self.min_delta', 'val_loss < self.best_loss')),
         "min_delta is ignored"),
        # counts the epoch after comparing: best_epoch from 0
        (variant(SOLUTION_3, ('        self.epoch += 1\n        if', '        if'),
                 ('        return', '        self.epoch += 1\n        return')), "epochs count from 1"),
        (variant(SOLUTION_3, ('>= self.patience', '> self.patience')), "step returned False, expected True"),
        (variant(SOLUTION_3, ('val_loss < self.best_loss - self.min_delta',
                              'val_loss <= self.best_loss - self.min_delta')),
         "lower by more than min_delta, strictly"),
        (variant(SOLUTION_3, ('return self.epochs_without_improvement >= self.patience',
                              'return int(self.epochs_without_improvement >= self.patience)')), "(a bool)"),
    ],
    checker=check_early_stopping, hint=HINT_3,
    more_hints=["keep four numbers on self: the best loss (math.inf at first), its epoch, the epoch count and "
                "the epochs waited since the last improvement",
                "an epoch improves when val_loss < best_loss - min_delta (strictly: a gain of exactly min_delta "
                "does not count); reset the wait to 0 then, else add 1, and stop when the wait reaches patience"],
)


# ---- 05.4 Challenge: the epoch validation prefers

HINT_4 = "sections 5 and 6 (Validation after every epoch, and Back to the best epoch)"


def check_train_my_model(train_my_model, target: float) -> str:
    return trained_image_classifier(
        train_my_model, "fashion_mnist", target, hint=HINT_4,
        levers="a wider network with dropout, a learning rate that falls over the run (a scheduler), and the weights "
               "of the epoch with the lowest validation loss, not the last")


SOLUTION_4 = '''
def train_my_model():
    """Train a network for at most challenge_epochs epochs; return it with the weights validation prefers."""
    import copy
    model = nn.Sequential(
        nn.Flatten(),
        nn.Linear(784, 512), nn.ReLU(), nn.Dropout(0.2),
        nn.Linear(512, 256), nn.ReLU(), nn.Dropout(0.2),
        nn.Linear(256, 10),
    ).to(device)
    loss_fn = nn.CrossEntropyLoss()
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.001)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=challenge_epochs)
    best_loss, best_weights = float("inf"), None
    for _ in range(challenge_epochs):
        training.train_one_epoch(model, train_loader, loss_fn, optimizer, device)
        val_loss = training.evaluate(model, val_loader, loss_fn, device)["loss"]
        if val_loss < best_loss:                      # the best epoch so far: keep a copy of its weights
            best_loss, best_weights = val_loss, copy.deepcopy(model.state_dict())
        scheduler.step()
    model.load_state_dict(best_weights)
    return model
'''

EX_4 = Exercise(
    id="05.4", lesson=LESSON, title="Challenge: fewer epochs, the best one kept", name="train_my_model",
    hint=HINT_4,
    more_hints=["after every epoch measure the validation loss; keep a copy of the weights (copy.deepcopy of the "
                "state_dict) whenever it is the lowest so far, and load that copy at the end",
                "training.train_one_epoch and training.evaluate run one epoch and one validation pass; a 512-unit "
                "network with dropout 0.2, AdamW at lr 0.001 falling along a cosine, reaches the target"],
    statement="""
This lesson's network reached about 0.87 test accuracy in 4 epochs. Write `train_my_model()`: it builds a network of
your design, trains it on `train_loader` for at most `challenge_epochs` epochs, and returns it with the weights
of the epoch that validation prefers.

- **In:** nothing; use the lesson's `train_loader` and `val_loader` (normalised images `(batch, 1, 28, 28)`),
  `device`, and `training.train_one_epoch` / `training.evaluate` or your own loop; at most
  `challenge_epochs` epochs.
- **Out:** the trained `nn.Module`: images `(batch, 1, 28, 28)` -> scores `(batch, 10)`.
- **Use:** anything in PyTorch; the validation split to choose, never the test images.
- **Correct means:** on the 10,000 test images, which it never trained on, evaluated in eval mode, accuracy at
  least `challenge_target` (0.88).
- **Reread:** sections 5 and 6, *Validation after every epoch* and *Back to the best epoch*.
""",
    template=template_of(SOLUTION_4),
    solution=SOLUTION_4,
    wrong_answers=image_wrong_answers("fashion_mnist"),
    checker=check_train_my_model,
    challenge=True, settings={"target": "challenge_target"}, rule_settings={"target": 0.88},
)

EXERCISES = [EX_1, EX_2, EX_3, EX_4]
