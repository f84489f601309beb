"""Exercises of lesson 11: predicting in eval mode, batch norm for images by hand, running statistics."""
from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

from course_utils.exercises.challenges import image_wrong_answers, trained_image_classifier
from course_utils.exercises.framework import (
    Exercise,
    Mistake,
    call,
    distinct_sizes,
    expect_tensor,
    forbid,
    generator,
    randint,
    template_of,
    variant,
)

LESSON = "11_batch_norm"


def _no_batch_norm_layer(hint: str):
    """Traps PyTorch's own batch norm: nn.BatchNorm1d calls F.batch_norm, which calls torch.batch_norm."""
    return forbid((F, "batch_norm"), (torch, "batch_norm"),
                  what="PyTorch's batch norm (F.batch_norm or nn.BatchNorm1d)", hint=hint)


# ---------------------------------------------------------------- 11.1 Predict in eval() mode, and put the model back

HINT_1 = "section 3 (train() and eval(): batch statistics and running statistics): what eval() switches"


def check_predict(predict) -> str:
    gen = generator("11.1")
    for batch in (randint(gen, 2, 8), 1):
        features = randint(gen, 3, 6)
        model = nn.Sequential(nn.Linear(features, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Dropout(0.5), nn.Linear(8, 3))
        with torch.no_grad():
            for p in model.parameters():
                p.copy_(torch.randn(p.shape, generator=gen))
            model[1].running_mean.copy_(torch.randn(8, generator=gen))
            model[1].running_var.copy_(torch.rand(8, generator=gen) + 0.5)
        for was_training in (True, False):
            model.train(was_training)
            before = copy.deepcopy(model.state_dict())
            x = torch.randn(batch, features, generator=gen)
            try:
                logits = predict(model, x)
            except ValueError as err:
                if batch == 1 and "Expected more than 1 value per channel" in str(err):
                    raise Mistake("your code fails on a batch of 1 image: in train() mode batch norm cannot "
                                  "normalise a single sample, so the model must be in eval() mode", HINT_1) from None
                raise
            with torch.no_grad():
                expected = copy.deepcopy(model).eval()(x)
            changed = [name for name, value in model.state_dict().items() if not torch.equal(value, before[name])]
            if changed:
                raise Mistake(f"your code changed the model's {', '.join(changed)}: a forward pass in train() "
                              "mode updates the running statistics, even under torch.no_grad()", HINT_1)
            if model.training != was_training:
                raise Mistake(f"your code left the model in {'train' if model.training else 'eval'}() mode; it was in "
                              f"{'train' if was_training else 'eval'}() mode before the call and should be again",
                              HINT_1)
            if was_training and isinstance(logits, torch.Tensor) and logits.shape == expected.shape and \
                    logits.dtype == expected.dtype and not torch.allclose(logits, expected, atol=1e-5):
                raise Mistake(f"for a model in train() mode and a batch of {batch}, your logits are not those of "
                              "eval() mode: batch norm normalised with this batch's own statistics and dropout "
                              "dropped units; switch the model to eval() before the forward pass", HINT_1)
            expect_tensor(logits, expected, f"the logits for a batch of {batch}", hint=HINT_1)
            if logits.requires_grad:
                raise Mistake("the logits require grad: compute them under torch.no_grad() (or "
                              "torch.inference_mode()), no graph is needed to predict", HINT_1)
    return ("logits equal those of eval() mode, for batches of several samples and of 1, from a model in train() "
            "and in eval() mode; the mode is restored, the running statistics untouched, no gradient graph")


SOLUTION_1 = '''\
def predict(model, x):
    """Logits of `model` for the batch `x`, in eval() mode, without a graph; the model's mode is restored."""
    was_training = model.training
    model.eval()
    with torch.no_grad():
        logits = model(x)
    model.train(was_training)
    return logits
'''

_PREDICT_ALTERNATIVE = '''\
@torch.inference_mode()
def predict(model, x):
    mode = model.training
    try:
        return model.eval()(x)
    finally:
        model.train(mode)
'''

_PREDICT_FORGETS_EVAL = '''\
def predict(model, x):
    with torch.no_grad():
        return model(x)
'''

_PREDICT_LEAVES_EVAL = '''\
def predict(model, x):
    model.eval()
    with torch.no_grad():
        return model(x)
'''

_PREDICT_NO_GRAD_MISSING = '''\
def predict(model, x):
    was_training = model.training
    model.eval()
    logits = model(x)
    model.train(was_training)
    return logits
'''

_PREDICT_ALWAYS_TRAIN = '''\
def predict(model, x):
    model.eval()
    with torch.no_grad():
        logits = model(x)
    model.train()
    return logits
'''

_PREDICT_COPIES = '''\
import copy


def predict(model, x):
    with torch.no_grad():
        return copy.deepcopy(model)(x)
'''

EX_1 = Exercise(
    id="11.1",
    lesson=LESSON,
    title="Predict in eval() mode, and put the model back as it was",
    statement="""\
Write `predict(model, x)`: the model's logits for the batch `x`, computed the way a model must be
used after training: in `eval()` mode (batch norm uses its running statistics, dropout is off) and
without building a gradient graph. Afterwards the model must be in the mode it was in before the
call (`train()` or `eval()`), and its running statistics must not have moved.

- **In:** `model`, an `nn.Module` with `BatchNorm1d` and `Dropout` layers, in either mode; `x`, (batch, features).
- **Out:** the logits, (batch, classes), with `requires_grad` False; `model.training` and `model.state_dict()`
  as before the call.
- **Use:** `model.eval()`, `model.train(mode)`, `model.training`, `torch.no_grad()` (or `torch.inference_mode()`).
- **Correct means:** equal (within 1e-5) to the logits of an `eval()`-mode copy, for a batch of several
  samples and a batch of 1, each from a model in `train()` mode and from one in `eval()` mode; the mode
  restored, the `state_dict()` unchanged, no gradient graph.
- **Reread:** section 3, *`train()` and `eval()`: batch statistics and running statistics*.""",
    name="predict",
    template=template_of(SOLUTION_1),
    solution=SOLUTION_1,
    checker=check_predict,
    wrong_answers=[
        (_PREDICT_FORGETS_EVAL, "your code changed the model's"),
        (_PREDICT_LEAVES_EVAL, "your code left the model in eval() mode"),
        (_PREDICT_NO_GRAD_MISSING, "the logits require grad"),
        (_PREDICT_ALWAYS_TRAIN, "your code left the model in train() mode"),
        (_PREDICT_COPIES, "your logits are not those of eval() mode"),
    ],
    alternatives=[_PREDICT_ALTERNATIVE],
    hint=HINT_1,
    more_hints=["remember model.training before you switch, call model.eval(), run the model under torch.no_grad(), "
                "then model.train(the mode you remembered)",
                "in train() mode even a forward pass under torch.no_grad() moves the running statistics, and a "
                "batch of 1 cannot be normalised at all: eval() comes before the forward pass"],
)


# ---------------------------------------------------------------- 11.2 Batch norm for images, in training mode

HINT_2 = "section 4 (BatchNorm2d and its running statistics): one mean and one variance per channel"


def _known_2d_mistakes(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, eps: float) -> list:
    """(what a usual mistake returns, why it is wrong) for a batch-norm-2d input."""
    scale, shift = weight.view(1, -1, 1, 1), bias.view(1, -1, 1, 1)

    def normalised(dims, unbiased=False, with_eps=True):
        mean = x.mean(dim=dims, keepdim=True)
        var = x.var(dim=dims, unbiased=unbiased, keepdim=True)
        return (x - mean) / torch.sqrt(var + (eps if with_eps else 0.0)) * scale + shift

    return [(normalised((0,)) if x.shape[0] > 1 else None,
             "your code took the statistics of each position (pixel) separately, over dim 0 only; BatchNorm2d "
             "takes one mean and one variance per channel, over the batch and all positions: dims (0, 2, 3)"),
            (normalised((0, 1, 2, 3)),
             "your code took one mean and one variance over the whole tensor; each channel has its own: "
             "dims (0, 2, 3), not dim 1"),
            (normalised((0, 2, 3), unbiased=True),
             "your code normalised with the unbiased variance (divided by m - 1); in training mode batch norm "
             "divides by m, the number of values per channel: unbiased=False"),
            (normalised((0, 2, 3), with_eps=False),
             "your code left out eps: divide by sqrt(var + eps), not by the standard deviation")]


def check_batch_norm2d_train(batch_norm2d_train) -> str:
    gen = generator("11.2")
    tested = []
    for batch in (randint(gen, 2, 4), 1):                    # a batch of 1 still has H * W values per channel
        channels, height, width = distinct_sizes(gen, 3, 2, 7)  # all differ: a weight on the wrong dim shows
        spread = torch.rand(1, channels, 1, 1, generator=gen) * 4 + 0.1
        shift = torch.randn(1, channels, 1, 1, generator=gen) * 3
        x = torch.randn(batch, channels, height, width, generator=gen) * spread + shift
        weight, bias = torch.rand(channels, generator=gen) + 0.5, torch.randn(channels, generator=gen)
        eps = float(torch.rand((), generator=gen)) * 0.5 + 0.05  # large enough that forgetting it shows
        reference = nn.BatchNorm2d(channels, eps=eps)
        with torch.no_grad():
            reference.weight.copy_(weight)
            reference.bias.copy_(bias)
            expected = reference(x)
        what = f"for x of shape {tuple(x.shape)}"
        with _no_batch_norm_layer(HINT_2):
            try:
                got = call(batch_norm2d_train, x, weight, bias, eps=eps, hint=HINT_2)
            except RuntimeError as err:
                if "must match the size of tensor" not in str(err):
                    raise
                raise Mistake(f"{what} your code raised RuntimeError ({str(err).strip()}): weight and bias have "
                              "shape (C,), and broadcasting lines them up with the last dim of x (the width), not "
                              "with the channels; view them as (1, C, 1, 1)", HINT_2) from None
        if isinstance(got, torch.Tensor) and got.shape == expected.shape:
            for wrong, why in _known_2d_mistakes(x, weight, bias, eps):
                if wrong is not None and not torch.allclose(wrong, expected, atol=1e-4) and \
                        torch.allclose(got, wrong, atol=1e-5, rtol=1e-4):
                    raise Mistake(f"{what} {why}", HINT_2)
        expect_tensor(got, expected, f"y {what}", atol=1e-5, rtol=1e-4, hint=HINT_2)
        tested.append(str(tuple(x.shape)))
    return (f"matches nn.BatchNorm2d in train() mode on x of shapes {', '.join(tested)} (channels, height and width "
            "all different) with random weight, bias and eps")


SOLUTION_2 = '''\
def batch_norm2d_train(x, weight, bias, eps=1e-5):
    """(N, C, H, W) -> (N, C, H, W): each channel standardised over the batch and all positions, scaled, shifted."""
    dims = (0, 2, 3)                                        # everything but the channel
    mean = x.mean(dim=dims, keepdim=True)                   # (1, C, 1, 1)
    var = x.var(dim=dims, unbiased=False, keepdim=True)     # divided by N * H * W
    x_hat = (x - mean) / torch.sqrt(var + eps)
    return x_hat * weight.view(1, -1, 1, 1) + bias.view(1, -1, 1, 1)
'''

_BN2D_ALTERNATIVE = '''\
def batch_norm2d_train(x, weight, bias, eps=1e-5):
    n, c, h, w = x.shape
    rows = x.transpose(0, 1).reshape(c, -1)                 # (C, N * H * W): one row per channel
    centred = rows - rows.mean(1, keepdim=True)
    y = centred / ((centred ** 2).mean(1, keepdim=True) + eps).sqrt() * weight[:, None] + bias[:, None]
    return y.reshape(c, n, h, w).transpose(0, 1)
'''

EX_2 = Exercise(
    id="11.2",
    lesson=LESSON,
    title="Batch norm for images, in training mode, by hand",
    statement="""\
Write `batch_norm2d_train(x, weight, bias, eps=1e-5)`, what `nn.BatchNorm2d` computes in `train()`
mode. Section 1 wrote batch norm out for a (batch, features) input; a batch of images is
(N, C, H, W), and each **channel** is one feature: its mean and (biased) variance are taken over the
batch **and** all positions, `m = N·H·W` values, then `weight` (γ) and `bias` (β), one per channel,
scale and shift it.

- **In:** `x`, (N, C, H, W) float32; `weight` and `bias`, (C,); `eps`, a float added to the variance.
- **Out:** a new tensor, (N, C, H, W); `x`, `weight` and `bias` must not be changed.
- **Use:** tensor operations (reductions over several dims, `view`/`reshape`); not `nn.BatchNorm2d` or `F.batch_norm`.
- **Correct means:** equal to `nn.BatchNorm2d(C, eps=eps)` in `train()` mode with the same weight and bias,
  within 1e-5 (plus a relative 1e-4), for a batch of several images and a batch of 1, with C, H and W all
  different.
- **Reread:** section 4, *`BatchNorm2d` and its running statistics*.""",
    name="batch_norm2d_train",
    template=template_of(SOLUTION_2),
    solution=SOLUTION_2,
    checker=check_batch_norm2d_train,
    wrong_answers=[
        (variant(SOLUTION_2, ("dims = (0, 2, 3)", "dims = (0,)")), "each position (pixel) separately"),
        (variant(SOLUTION_2, ("dims = (0, 2, 3)", "dims = (0, 1, 2, 3)")), "over the whole tensor"),
        (variant(SOLUTION_2, ("unbiased=False", "unbiased=True")), "unbiased variance"),
        (variant(SOLUTION_2, ("torch.sqrt(var + eps)", "torch.sqrt(var)")), "left out eps"),
        (variant(SOLUTION_2, ("weight.view(1, -1, 1, 1) + bias.view(1, -1, 1, 1)", "weight + bias")),
         "view them as (1, C, 1, 1)"),
        (variant(SOLUTION_2, ("x_hat = (x - mean) / torch.sqrt(var + eps)",
                              "x -= mean\n    x_hat = x / torch.sqrt(var + eps)")), "changed its input `x` in place"),
        ('''\
def batch_norm2d_train(x, weight, bias, eps=1e-5):
    return F.batch_norm(x, None, None, weight, bias, training=True, eps=eps)
''', "your code called PyTorch's batch norm"),
    ],
    alternatives=[_BN2D_ALTERNATIVE],
    hint=HINT_2,
    more_hints=["reduce over dims (0, 2, 3) with keepdim=True: the mean and variance come out (1, C, 1, 1) and "
                "broadcast against x",
                "weight and bias are (C,): view them as (1, C, 1, 1) so they meet the channel dim, not the width"],
)


# ---------------------------------------------------------------- 11.3 Batch norm with running statistics

HINT_3 = "section 3 (train() and eval(): batch statistics and running statistics): the running update"


def check_batch_norm(batch_norm) -> str:
    gen = generator("11.3")
    features = randint(gen, 2, 6)
    momentum = float(torch.rand((), generator=gen)) * 0.3 + 0.05
    eps = 1e-5
    reference = nn.BatchNorm1d(features, eps=eps, momentum=momentum)
    with torch.no_grad():
        reference.weight.copy_(torch.rand(features, generator=gen) + 0.5)
        reference.bias.copy_(torch.randn(features, generator=gen))
    running_mean = torch.zeros(features)
    running_var = torch.ones(features)
    steps = []
    for training in (True, True, True, False, True, False):
        batch = randint(gen, 3, 16)
        x = torch.randn(batch, features, generator=gen) * 2 + torch.randn(features, generator=gen) * 3
        reference.train(training)
        mean_before, var_before = running_mean.clone(), running_var.clone()
        with torch.no_grad():
            expected = reference(x)
        x_in = x.clone()
        with _no_batch_norm_layer(HINT_3):
            got = batch_norm(x_in, running_mean, running_var, reference.weight.detach().clone(),
                             reference.bias.detach().clone(), training, momentum=momentum, eps=eps)
        mode = "train" if training else "eval"
        step = f"call {len(steps) + 1} ({mode} mode)"
        if not torch.equal(x_in, x):
            raise Mistake(f"{step}: your code changed its input x in place; return a new tensor", HINT_3)
        if not training and not (torch.equal(running_mean, mean_before) and torch.equal(running_var, var_before)):
            raise Mistake(f"{step}: your code changed the running statistics in eval mode; only training updates them",
                          HINT_3)
        if training and torch.equal(running_mean, mean_before):
            raise Mistake(f"{step}: running_mean was not updated in place; write into the tensor that was passed "
                          "in (running_mean.mul_(...).add_(...) or running_mean.copy_(...)): assigning a new "
                          "tensor to the name changes nothing outside the function", HINT_3)
        expect_tensor(got, expected, f"{step}: y", atol=1e-5, rtol=1e-4, hint=HINT_3)
        if training:
            reversed_mean = momentum * mean_before + (1 - momentum) * x.mean(0)
            if torch.allclose(running_mean, reversed_mean, atol=1e-5) and \
                    not torch.allclose(reversed_mean, reference.running_mean, atol=1e-5):
                raise Mistake(f"{step}: your running_mean weighs the old value by momentum and the batch by "
                              "1 - momentum; it is the other way round: (1 - momentum) * running + momentum * batch",
                              HINT_3)
            biased = (1 - momentum) * var_before + momentum * x.var(0, unbiased=False)
            if torch.allclose(running_var, biased, atol=1e-5) and \
                    not torch.allclose(biased, reference.running_var, atol=1e-5):
                raise Mistake(f"{step}: your running_var was updated with the biased batch variance (divided by m); "
                              "the variance stored is the unbiased one, divided by m - 1", HINT_3)
        expect_tensor(running_mean, reference.running_mean, f"{step}: running_mean", atol=1e-5, rtol=1e-4,
                      hint=HINT_3)
        expect_tensor(running_var, reference.running_var, f"{step}: running_var", atol=1e-5, rtol=1e-4,
                      hint=HINT_3)
        steps.append(mode)
    return (f"{len(steps)} calls in train and eval mode ({', '.join(steps)}) with momentum {momentum:.3f}: "
            "every y and both running statistics match nn.BatchNorm1d")


SOLUTION_3 = '''\
def batch_norm(x, running_mean, running_var, weight, bias, training, momentum=0.1, eps=1e-5):
    """(batch, features) -> (batch, features); in training also updates running_mean and running_var in place."""
    if training:
        mean = x.mean(dim=0)                                        # (features,)
        var = x.var(dim=0, unbiased=False)                          # normalise with the biased variance...
        with torch.no_grad():
            running_mean.mul_(1 - momentum).add_(momentum * mean)
            running_var.mul_(1 - momentum).add_(momentum * x.var(dim=0))  # ...but store the unbiased one
    else:
        mean, var = running_mean, running_var
    return (x - mean) / torch.sqrt(var + eps) * weight + bias
'''

_BN_ALTERNATIVE = '''\
def batch_norm(x, running_mean, running_var, weight, bias, training, momentum=0.1, eps=1e-5):
    if not training:
        return weight * (x - running_mean) / (running_var + eps).sqrt() + bias
    m = x.shape[0]
    mean = x.sum(0) / m
    sq = ((x - mean) ** 2).sum(0)
    running_mean.copy_((1 - momentum) * running_mean + momentum * mean)
    running_var.copy_((1 - momentum) * running_var + momentum * sq / (m - 1))
    return weight * (x - mean) / (sq / m + eps).sqrt() + bias
'''

_BN_BIASED_RUNNING = '''\
def batch_norm(x, running_mean, running_var, weight, bias, training, momentum=0.1, eps=1e-5):
    if training:
        mean, var = x.mean(0), x.var(0, unbiased=False)
        running_mean.mul_(1 - momentum).add_(momentum * mean)
        running_var.mul_(1 - momentum).add_(momentum * var)
    else:
        mean, var = running_mean, running_var
    return (x - mean) / torch.sqrt(var + eps) * weight + bias
'''

_BN_BATCH_STATS_IN_EVAL = '''\
def batch_norm(x, running_mean, running_var, weight, bias, training, momentum=0.1, eps=1e-5):
    mean, var = x.mean(0), x.var(0, unbiased=False)
    if training:
        running_mean.mul_(1 - momentum).add_(momentum * mean)
        running_var.mul_(1 - momentum).add_(momentum * x.var(0))
    return (x - mean) / torch.sqrt(var + eps) * weight + bias
'''

_BN_REBINDS = '''\
def batch_norm(x, running_mean, running_var, weight, bias, training, momentum=0.1, eps=1e-5):
    if training:
        mean, var = x.mean(0), x.var(0, unbiased=False)
        running_mean = (1 - momentum) * running_mean + momentum * mean
        running_var = (1 - momentum) * running_var + momentum * x.var(0)
    else:
        mean, var = running_mean, running_var
    return (x - mean) / torch.sqrt(var + eps) * weight + bias
'''

_BN_MOMENTUM_REVERSED = '''\
def batch_norm(x, running_mean, running_var, weight, bias, training, momentum=0.1, eps=1e-5):
    if training:
        mean, var = x.mean(0), x.var(0, unbiased=False)
        running_mean.mul_(momentum).add_((1 - momentum) * mean)
        running_var.mul_(momentum).add_((1 - momentum) * x.var(0))
    else:
        mean, var = running_mean, running_var
    return (x - mean) / torch.sqrt(var + eps) * weight + bias
'''

EX_3 = Exercise(
    id="11.3",
    lesson=LESSON,
    title="Batch norm with running statistics, in train and eval mode",
    statement="""\
Write `batch_norm(x, running_mean, running_var, weight, bias, training, momentum=0.1, eps=1e-5)`,
the whole of `nn.BatchNorm1d`'s forward pass. With `training=True` it normalises with the batch's
mean and (biased) variance, as in section 1, **and** updates the running statistics **in place**:
`running = (1 - momentum) * running + momentum * batch statistic`, where the variance stored is the
**unbiased** one (divided by `m - 1`). With `training=False` it normalises with `running_mean` and
`running_var` and leaves them unchanged.

- **In:** `x`, (batch, features); `running_mean`, `running_var`, `weight`, `bias`, (features,); `training`, a bool.
- **Out:** a new tensor (batch, features); in training `running_mean` and `running_var` changed in place,
  in eval left alone; `x` unchanged.
- **Use:** tensor operations and in-place updates (`mul_`, `add_`, `copy_`); not `nn.BatchNorm1d` or `F.batch_norm`.
- **Correct means:** over six calls (train, train, train, eval, train, eval), every output and both running
  statistics equal those of one `nn.BatchNorm1d(features, eps=eps, momentum=momentum)` switched the same
  way, within 1e-5 (plus a relative 1e-4).
- **Reread:** section 3, *`train()` and `eval()`: batch statistics and running statistics*.""",
    name="batch_norm",
    template=template_of(SOLUTION_3),
    solution=SOLUTION_3,
    checker=check_batch_norm,
    wrong_answers=[
        (_BN_BIASED_RUNNING, "updated with the biased batch variance"),
        (_BN_BATCH_STATS_IN_EVAL, "(eval mode): y"),
        (_BN_REBINDS, "running_mean was not updated in place"),
        (_BN_MOMENTUM_REVERSED, "it is the other way round"),
        (variant(SOLUTION_3, ("    return (x - mean)", "    x -= mean\n    return x")), "changed its input x in place"),
        (variant(SOLUTION_3, ("    else:\n        mean, var = running_mean, running_var\n", "")
                 , ("    if training:\n", "    if True:\n")), "changed the running statistics in eval mode"),
        ('''\
def batch_norm(x, running_mean, running_var, weight, bias, training, momentum=0.1, eps=1e-5):
    return F.batch_norm(x, running_mean, running_var, weight, bias, training, momentum, eps)
''', "your code called PyTorch's batch norm"),
    ],
    alternatives=[_BN_ALTERNATIVE],
    hint=HINT_3,
    more_hints=["in training, compute the batch's mean and both variances (unbiased=False to normalise, the default "
                "unbiased one to store), and update the running tensors with mul_ and add_ under torch.no_grad()",
                "in eval, use running_mean and running_var in place of the batch statistics and do not touch them"],
)


# ---- 11.4 Challenge: 98.5 % of the digits in two epochs

HINT_4 = "section 4 (`BatchNorm2d` and its running statistics): a convolutional network with batch norm"


def check_train_my_model(train_my_model, target: float) -> str:
    return trained_image_classifier(
        train_my_model, "mnist", target, hint=HINT_4,
        levers="convolutions (a digit is an image: lesson 09), BatchNorm2d after each, a larger learning rate that "
               "batch norm tolerates, and a rate that falls to 0 over the run")


SOLUTION_4 = '''
def train_my_model():
    """Build a network, train it on train_loader for at most challenge_epochs epochs, and return it."""
    def block(c_in, c_out):                            # convolution, batch norm, ReLU, half the size
        return nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out),
                             nn.ReLU(), nn.MaxPool2d(2))
    model = nn.Sequential(block(1, 32), block(32, 64), nn.Flatten(), nn.Dropout(0.2),
                          nn.Linear(64 * 7 * 7, 10)).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.003)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=challenge_epochs)
    training.fit(model, train_loader, val_loader, nn.CrossEntropyLoss(), optimizer, device, challenge_epochs,
                 scheduler=scheduler, verbose=False)
    return model
'''

EX_4 = Exercise(
    id="11.4", lesson=LESSON, title="Challenge: 98.5 % of the digits in two epochs", name="train_my_model",
    hint=HINT_4,
    more_hints=["a digit is an image: two convolution blocks (Conv2d, BatchNorm2d, ReLU, MaxPool2d) and a small "
                "linear head, as in section 4, only wider",
                "32 and 64 channels, AdamW at lr 0.003 with the rate falling along a cosine (CosineAnnealingLR "
                "passed to training.fit as scheduler=) reach the target in the budget"],
    statement="""
This lesson's batch-norm network reached about 0.98 test accuracy. Write `train_my_model()`: it builds a network
of your design, trains it on `train_loader` for at most `challenge_epochs` epochs, and returns it. Your
choices: convolutions or not, where batch norm goes, the learning rate.

- **In:** nothing; use the lesson's `train_loader` and `val_loader` (normalised digits `(batch, 1, 28, 28)`),
  `device`, and `training.fit` or your own loop; at most `challenge_epochs` epochs.
- **Out:** the trained `nn.Module`: images `(batch, 1, 28, 28)` -> scores `(batch, 10)`.
- **Use:** anything in PyTorch; never the test images.
- **Correct means:** on the 10,000 test digits, which it never trained on, evaluated in eval mode, accuracy at
  least `challenge_target` (0.985).
- **Reread:** section 4, *`BatchNorm2d` and its running statistics*.
""",
    template=template_of(SOLUTION_4),
    solution=SOLUTION_4,
    wrong_answers=image_wrong_answers("mnist"),
    checker=check_train_my_model,
    challenge=True, settings={"target": "challenge_target"}, rule_settings={"target": 0.985},
)

EXERCISES = [EX_1, EX_2, EX_3, EX_4]
