"""Exercises of lesson 11: batch normalisation by hand, in train and eval mode."""
from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

from course_utils.exercises.framework import (
    Exercise,
    Mistake,
    expect_tensor,
    forbid,
    generator,
    randint,
    template_of,
)

LESSON = "11_batch_norm"
SECTION_1 = "lesson 11, section 1 (What a batch-norm layer computes)"
SECTION_3 = "lesson 11, section 3 (train() and eval(): batch statistics and running statistics)"


def _no_batch_norm_layer(hint: str):
    """Traps PyTorch's own batch norm: nn.BatchNorm1d calls F.batch_norm, which calls torch.batch_norm."""
    return forbid((F, "batch_norm"), (torch, "batch_norm"),
                  what="PyTorch's batch norm (F.batch_norm or nn.BatchNorm1d)", hint=hint)


# ---------------------------------------------------------------- 11.1

def _check_predict(predict) -> str:
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
                                  "normalise a single sample, so the model must be in eval() mode", SECTION_3) from None
                raise
            with torch.no_grad():
                expected = copy.deepcopy(model).eval()(x)
            changed = [name for name, value in model.state_dict().items() if not torch.equal(value, before[name])]
            if changed:
                raise Mistake(f"your code changed the model's {', '.join(changed)}: a forward pass in train() "
                              "mode updates the running statistics, even under torch.no_grad()", SECTION_3)
            if model.training != was_training:
                raise Mistake(f"your code left the model in {'train' if model.training else 'eval'}() mode; it was in "
                              f"{'train' if was_training else 'eval'}() mode before the call and should be again",
                              SECTION_3)
            expect_tensor(logits, expected, f"the logits for a batch of {batch}", hint=SECTION_3)
            if logits.requires_grad:
                raise Mistake("the logits require grad: compute them under torch.no_grad() (or "
                              "torch.inference_mode()), no graph is needed to predict", SECTION_3)
    return ("logits equal those of eval() mode, for batches of several samples and of 1, from a model in train() "
            "and in eval() mode; the mode is restored, the running statistics untouched, no gradient graph")


PREDICT_SOLUTION = '''\
def predict(model, x):
    """Logits of `model` for the batch `x`, in eval() mode, without a graph; the model's mode is restored."""
    was_training = model.training
    model.eval()
    with torch.no_grad():
        logits = model(x)
    model.train(was_training)
    return logits
'''

PREDICT_ALTERNATIVE = '''\
@torch.inference_mode()
def predict(model, x):
    mode = model.training
    try:
        return model.eval()(x)
    finally:
        model.train(mode)
'''

PREDICT_FORGETS_EVAL = '''\
def predict(model, x):
    with torch.no_grad():
        return model(x)
'''

PREDICT_LEAVES_EVAL = '''\
def predict(model, x):
    model.eval()
    with torch.no_grad():
        return model(x)
'''

PREDICT_NO_GRAD_MISSING = '''\
def predict(model, x):
    was_training = model.training
    model.eval()
    logits = model(x)
    model.train(was_training)
    return logits
'''

PREDICT_ALWAYS_TRAIN = '''\
def predict(model, x):
    model.eval()
    with torch.no_grad():
        logits = model(x)
    model.train()
    return logits
'''

# ---------------------------------------------------------------- 11.2


def _check_batch_norm_train(batch_norm_train) -> str:
    gen = generator("11.2")
    tested = []
    for batch in (randint(gen, 4, 32), 2):
        features = randint(gen, 2, 8)
        x = torch.randn(batch, features, generator=gen) * (torch.rand(features, generator=gen) * 4 + 0.1) \
            + torch.randn(features, generator=gen) * 3
        weight, bias = torch.rand(features, generator=gen) + 0.5, torch.randn(features, generator=gen)
        eps = float(torch.rand((), generator=gen)) * 0.5 + 0.05  # large enough that forgetting it shows
        reference = nn.BatchNorm1d(features, eps=eps)
        with torch.no_grad():
            reference.weight.copy_(weight)
            reference.bias.copy_(bias)
            expected = reference(x)
        x_in, w_in, b_in = x.clone(), weight.clone(), bias.clone()
        with _no_batch_norm_layer(SECTION_1):
            got = batch_norm_train(x_in, w_in, b_in, eps=eps)
        if not (torch.equal(x_in, x) and torch.equal(w_in, weight) and torch.equal(b_in, bias)):
            raise Mistake("your code changed its input x, weight or bias in place; return a new tensor instead "
                          "(x - mean creates one, x -= mean does not)", SECTION_1)
        if isinstance(got, torch.Tensor) and got.shape == expected.shape:
            mean, biased, unbiased = x.mean(0), x.var(0, unbiased=False), x.var(0)
            known = [((x - mean) / torch.sqrt(unbiased + eps) * weight + bias,
                      "your code normalised with the unbiased variance (divided by batch - 1); batch norm divides "
                      "by the batch size: x.var(dim=0, unbiased=False)"),
                     ((x - mean) / torch.sqrt(biased) * weight + bias,
                      "your code left out eps: divide by sqrt(var + eps), not by the standard deviation"),
                     ((x - x.mean(1, keepdim=True)) / torch.sqrt(x.var(1, unbiased=False, keepdim=True) + eps)
                      * weight + bias,
                      "your code took the statistics of each row (sample, dim=1); batch norm takes those of each "
                      "column (feature) over the batch, dim=0")]
            for wrong, why in known:
                if torch.allclose(got, wrong, atol=1e-5, rtol=1e-4):
                    raise Mistake(why, SECTION_1)
        expect_tensor(got, expected, "y", atol=1e-5, rtol=1e-4, hint=SECTION_1)
        tested.append(f"({batch}, {features})")
    return f"matches nn.BatchNorm1d in train() mode on x of shapes {', '.join(tested)} with random weight, bias, eps"


BN_TRAIN_SOLUTION = '''\
def batch_norm_train(x, weight, bias, eps=1e-5):
    """(batch, features) -> (batch, features): x standardised per feature over the batch, then scaled and shifted."""
    mean = x.mean(dim=0)                      # (features,)
    var = x.var(dim=0, unbiased=False)        # the batch's own variance: divided by batch, not batch - 1
    return (x - mean) / torch.sqrt(var + eps) * weight + bias
'''

BN_TRAIN_ALTERNATIVE = '''\
def batch_norm_train(x, weight, bias, eps=1e-5):
    centred = x - x.mean(0, keepdim=True)
    var = (centred ** 2).mean(0, keepdim=True)
    return weight * centred * torch.rsqrt(var + eps) + bias
'''

BN_TRAIN_UNBIASED = '''\
def batch_norm_train(x, weight, bias, eps=1e-5):
    return (x - x.mean(0)) / torch.sqrt(x.var(0) + eps) * weight + bias
'''

BN_TRAIN_WRONG_DIM = '''\
def batch_norm_train(x, weight, bias, eps=1e-5):
    mean = x.mean(dim=1, keepdim=True)
    var = x.var(dim=1, unbiased=False, keepdim=True)
    return (x - mean) / torch.sqrt(var + eps) * weight + bias
'''

BN_TRAIN_NO_EPS = '''\
def batch_norm_train(x, weight, bias, eps=1e-5):
    return (x - x.mean(0)) / x.std(0, unbiased=False) * weight + bias
'''

BN_TRAIN_IN_PLACE = '''\
def batch_norm_train(x, weight, bias, eps=1e-5):
    mean, var = x.mean(0), x.var(0, unbiased=False)
    x -= mean
    x /= torch.sqrt(var + eps)
    return x * weight + bias
'''

BN_TRAIN_CALLS_LAYER = '''\
def batch_norm_train(x, weight, bias, eps=1e-5):
    return F.batch_norm(x, None, None, weight, bias, training=True, eps=eps)
'''

# ---------------------------------------------------------------- 11.3


def _check_batch_norm(batch_norm) -> str:
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
        with torch.no_grad():
            expected = reference(x)
        x_in = x.clone()
        mean_before, var_before = running_mean.clone(), running_var.clone()
        with _no_batch_norm_layer(SECTION_3):
            got = batch_norm(x_in, running_mean, running_var, reference.weight.detach().clone(),
                             reference.bias.detach().clone(), training, momentum=momentum, eps=eps)
        mode = "train" if training else "eval"
        step = f"call {len(steps) + 1} ({mode} mode)"
        if not torch.equal(x_in, x):
            raise Mistake(f"{step}: your code changed its input x in place", SECTION_3)
        if not training and not (torch.equal(running_mean, mean_before) and torch.equal(running_var, var_before)):
            raise Mistake(f"{step}: your code changed the running statistics in eval mode; only training updates them",
                          SECTION_3)
        if training and torch.equal(running_mean, mean_before):
            raise Mistake(f"{step}: running_mean was not updated in place; write into the tensor that was passed "
                          "in (running_mean.mul_(...).add_(...) or running_mean.copy_(...)): assigning a new "
                          "tensor to the name changes nothing outside the function", SECTION_3)
        expect_tensor(got, expected, f"{step}: y", atol=1e-5, rtol=1e-4, hint=SECTION_3)
        expect_tensor(running_mean, reference.running_mean, f"{step}: running_mean", atol=1e-5, rtol=1e-4,
                      hint=SECTION_3)
        expect_tensor(running_var, reference.running_var, f"{step}: running_var", atol=1e-5, rtol=1e-4,
                      hint=SECTION_3 + ": the running variance is the unbiased one, divided by m - 1")
        steps.append(mode)
    return (f"{len(steps)} calls in train and eval mode ({', '.join(steps)}) with momentum {momentum:.3f}: "
            "every y and both running statistics match nn.BatchNorm1d")


BN_SOLUTION = '''\
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

BN_ALTERNATIVE = '''\
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

BN_BIASED_RUNNING = '''\
def batch_norm(x, running_mean, running_var, weight, bias, training, momentum=0.1, eps=1e-5):
    if training:
        mean, var = x.mean(0), x.var(0, unbiased=False)
        running_mean.mul_(1 - momentum).add_(momentum * mean)
        running_var.mul_(1 - momentum).add_(momentum * var)
    else:
        mean, var = running_mean, running_var
    return (x - mean) / torch.sqrt(var + eps) * weight + bias
'''

BN_BATCH_STATS_IN_EVAL = '''\
def batch_norm(x, running_mean, running_var, weight, bias, training, momentum=0.1, eps=1e-5):
    mean, var = x.mean(0), x.var(0, unbiased=False)
    if training:
        running_mean.mul_(1 - momentum).add_(momentum * mean)
        running_var.mul_(1 - momentum).add_(momentum * x.var(0))
    return (x - mean) / torch.sqrt(var + eps) * weight + bias
'''

BN_REBINDS = '''\
def batch_norm(x, running_mean, running_var, weight, bias, training, momentum=0.1, eps=1e-5):
    if training:
        mean, var = x.mean(0), x.var(0, unbiased=False)
        running_mean = (1 - momentum) * running_mean + momentum * mean
        running_var = (1 - momentum) * running_var + momentum * x.var(0)
    else:
        mean, var = running_mean, running_var
    return (x - mean) / torch.sqrt(var + eps) * weight + bias
'''

BN_MOMENTUM_REVERSED = '''\
def batch_norm(x, running_mean, running_var, weight, bias, training, momentum=0.1, eps=1e-5):
    if training:
        mean, var = x.mean(0), x.var(0, unbiased=False)
        running_mean.mul_(momentum).add_((1 - momentum) * mean)
        running_var.mul_(momentum).add_((1 - momentum) * x.var(0))
    else:
        mean, var = running_mean, running_var
    return (x - mean) / torch.sqrt(var + eps) * weight + bias
'''

EXERCISES = [
    Exercise(
        id="11.1",
        lesson=LESSON,
        title="Predict in eval() mode, and put the model back as it was",
        statement="""\
Write `predict(model, x)`: the model's logits for the batch `x`, computed the way a model must be
used after training: in `eval()` mode (batch norm uses its running statistics, dropout is off) and
without building a gradient graph. Afterwards the model must be in the mode it was in before the
call (`train()` or `eval()`), and its running statistics must not have moved.

- in: `model`, an `nn.Module` with `BatchNorm1d` and `Dropout` layers, in either mode; `x`, (batch, features)
- out: the logits, (batch, classes), with `requires_grad` False

Correct means: equal (within 1e-5) to the logits of an `eval()`-mode copy, for batches of several
samples and of 1; `model.training` and the model's `state_dict()` as before the call.

See lesson 11, section 3 (`train()` and `eval()`).""",
        name="predict",
        template=template_of(PREDICT_SOLUTION),
        solution=PREDICT_SOLUTION,
        checker=_check_predict,
        wrong_answers=[
            (PREDICT_FORGETS_EVAL, "your code changed the model's"),
            (PREDICT_LEAVES_EVAL, "your code left the model in eval() mode"),
            (PREDICT_NO_GRAD_MISSING, "the logits require grad"),
            (PREDICT_ALWAYS_TRAIN, "your code left the model in train() mode"),
        ],
        alternatives=[PREDICT_ALTERNATIVE],
        hint=SECTION_3,
    ),
    Exercise(
        id="11.2",
        lesson=LESSON,
        title="Batch norm's forward pass in training mode, by hand",
        statement="""\
Write `batch_norm_train(x, weight, bias, eps=1e-5)`, what `nn.BatchNorm1d` computes in `train()`
mode: standardise every feature (column) of `x` with the mean and variance **of this batch**, then
scale by `weight` (γ) and shift by `bias` (β).

- in: `x`, (batch, features); `weight` and `bias`, (features,); `eps`, a float added to the variance
- out: a new tensor, (batch, features); `x` must not be changed
- not allowed: `nn.BatchNorm1d`, `F.batch_norm`

Correct means: equal to `nn.BatchNorm1d(features, eps=eps)` in `train()` mode with the same weight and
bias, within 1e-5 (plus a relative 1e-4), on random shapes, including a batch of 2.

See lesson 11, section 1 (What a batch-norm layer computes).""",
        name="batch_norm_train",
        template=template_of(BN_TRAIN_SOLUTION),
        solution=BN_TRAIN_SOLUTION,
        checker=_check_batch_norm_train,
        wrong_answers=[
            (BN_TRAIN_UNBIASED, "unbiased variance"),
            (BN_TRAIN_WRONG_DIM, "statistics of each row"),
            (BN_TRAIN_NO_EPS, "left out eps"),
            (BN_TRAIN_IN_PLACE, "your code changed its input"),
            (BN_TRAIN_CALLS_LAYER, "your code called PyTorch's batch norm"),
        ],
        alternatives=[BN_TRAIN_ALTERNATIVE],
        hint=SECTION_1,
    ),
    Exercise(
        id="11.3",
        lesson=LESSON,
        title="Batch norm with running statistics, in train and eval mode",
        statement="""\
Write `batch_norm(x, running_mean, running_var, weight, bias, training, momentum=0.1, eps=1e-5)`,
the whole of `nn.BatchNorm1d`'s forward pass:

- `training=True`: normalise with the batch's mean and (biased) variance, as in 11.2, **and**
  update the running statistics **in place**:
  `running = (1 - momentum) * running + momentum * batch statistic`, where the variance stored is
  the **unbiased** one (divided by `m - 1`);
- `training=False`: normalise with `running_mean` and `running_var` and leave them unchanged.

- in: `x`, (batch, features); `running_mean`, `running_var`, `weight`, `bias`, (features,)
- out: (batch, features); `x` must not be changed
- not allowed: `nn.BatchNorm1d`, `F.batch_norm`

Correct means: over a series of calls in both modes, every output and both running statistics equal
those of one `nn.BatchNorm1d(features, eps=eps, momentum=momentum)` switched between `train()`
and `eval()` the same way, within 1e-5 (plus a relative 1e-4).

See lesson 11, section 3 (batch statistics and running statistics).""",
        name="batch_norm",
        template=template_of(BN_SOLUTION),
        solution=BN_SOLUTION,
        checker=_check_batch_norm,
        wrong_answers=[
            (BN_BIASED_RUNNING, "running_var"),
            (BN_BATCH_STATS_IN_EVAL, "(eval mode): y"),
            (BN_REBINDS, "running_mean was not updated in place"),
            (BN_MOMENTUM_REVERSED, "running_mean"),
        ],
        alternatives=[BN_ALTERNATIVE],
        hint=SECTION_3,
    ),
]
