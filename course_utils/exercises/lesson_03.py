"""Exercises for lesson 03 (training): cross-entropy by hand, an SGD step by hand, one training epoch."""

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

LESSON = "03_training"


# ---- 03.1 Cross-entropy by hand

HINT_1 = "section 3 (Which loss?): the cross-entropy as minus the log-probability of the correct class"
_LOSSES = ((F, "cross_entropy"), (F, "nll_loss"), (F, "log_softmax"), (torch, "log_softmax"),
          (torch.Tensor, "log_softmax"), (nn.CrossEntropyLoss, "forward"), (nn.NLLLoss, "forward"),
          (nn.LogSoftmax, "forward"))


def check_cross_entropy(cross_entropy) -> str:
    gen = generator("03.1")
    batch, classes = distinct_sizes(gen, 2, 2, 12)
    targets = torch.randint(0, classes, (batch,), generator=gen)
    confident = torch.randn(batch, classes, generator=gen)
    confident[torch.arange(batch), targets] = -200.0  # the correct class is very unlikely: its softmax rounds to 0
    cases = {"ordinary logits": (torch.randn(batch, classes, generator=gen) * 2, targets),
             "logits where the correct class scores -200": (confident, targets),
             "a batch of one": (torch.randn(1, classes, generator=gen), targets[:1])}
    for name, (logits, labels) in cases.items():
        expected = F.cross_entropy(logits.double(), labels).float()  # 0-d
        with forbid(*_LOSSES, what="PyTorch's cross-entropy, NLL loss or log-softmax", hint=HINT_1):
            loss = call(cross_entropy, logits, labels, hint=HINT_1)
        expect_tensor(loss, expected, f"the loss on {name}", atol=1e-5, hint=HINT_1)
    return f"matches F.cross_entropy on ({batch}, {classes}) logits, very unlikely correct classes and a batch of one"


SOLUTION_1 = '''
def cross_entropy(logits, targets):
    """logits: (batch, classes), targets: (batch,) class indices -> mean cross-entropy, a 0-d tensor."""
    log_probs = logits - torch.logsumexp(logits, dim=1, keepdim=True)  # (batch, classes), stable log-softmax
    correct = log_probs[torch.arange(len(targets)), targets]           # (batch,): each row's correct class
    return -correct.mean()
'''

EX_1 = Exercise(
    id="03.1", lesson=LESSON, title="Cross-entropy by hand", name="cross_entropy",
    hint=HINT_1,
    more_hints=["log-softmax is z - logsumexp(z) along the classes (dim=1, keepdim=True): it stays finite where "
                "log(softmax(z)) gives -inf",
                "pick each row's correct class with advanced indexing (a range of rows and the targets) or "
                "gather, then average and negate"],
    statement="""
Write `cross_entropy(logits, targets)` that returns the mean cross-entropy of a batch: minus the
log-probability of each sample's correct class, averaged over the batch. It must stay finite when the
correct class is very unlikely (its logit 200 below the others).

- **In:** `logits`, a float32 tensor `(batch, classes)`; `targets`, an int64 tensor `(batch,)` of class indices.
- **Out:** a 0-d float32 tensor; neither input may change.
- **Use:** tensor operations and `torch.logsumexp`; not `F.cross_entropy`, `F.nll_loss`, log-softmax
  (`F.log_softmax`, `.log_softmax`, `nn.LogSoftmax`) or the loss classes (the check refuses them).
- **Correct means:** within 1e-5 (plus 1e-4 relative) of `F.cross_entropy(logits, targets)` on ordinary
  logits, on logits where every correct class scores -200, and on a batch of one.
- **Reread:** section 3, *Which loss?*
""",
    template=template_of(SOLUTION_1),
    solution=SOLUTION_1,
    alternatives=['''
def cross_entropy(logits, targets):
    shifted = logits - logits.max(dim=1, keepdim=True).values
    log_probs = shifted - shifted.exp().sum(dim=1, keepdim=True).log()
    return -log_probs.gather(1, targets.unsqueeze(1)).squeeze(1).mean()
''', '''
def cross_entropy(logits, targets):
    # per sample: logsumexp(z) - z[target]
    picked = logits[torch.arange(logits.shape[0]), targets]
    return (torch.logsumexp(logits, 1) - picked).sum() / logits.shape[0]
'''],
    wrong_answers=[
        ("def cross_entropy(logits, targets):\n    probs = torch.exp(logits) / torch.exp(logits).sum(1, keepdim=True)\n"
         "    return -torch.log(probs[torch.arange(len(targets)), targets]).mean()\n", "contains inf"),
        ("def cross_entropy(logits, targets):\n    return F.cross_entropy(logits, targets)\n",
         "your code called PyTorch's cross-entropy"),
        ("def cross_entropy(logits, targets):\n    log_probs = logits - torch.logsumexp(logits, 1, keepdim=True)\n"
         "    return -log_probs[torch.arange(len(targets)), targets].sum()\n", "is wrong: you returned"),
        ("def cross_entropy(logits, targets):\n    log_probs = logits - torch.logsumexp(logits, 1, keepdim=True)\n"
         "    return -log_probs[:, targets].mean(0)\n", "has shape"),
    ],
    checker=check_cross_entropy,
)


# ---- 03.2 One SGD step by hand

HINT_2 = "section 4 (The network and the optimiser): what one step of SGD does to every weight"


class _OneShot:
    """The tensors to step, walked through only once like model.parameters(); counts the walks started."""

    def __init__(self, items):
        self.items, self.position, self.walks, self.walking = list(items), 0, 0, False

    def __iter__(self):
        if not self.walking or self.position:  # a first walk, or a new one after items were taken
            self.walks, self.walking = self.walks + 1, True
        return self

    def __next__(self):
        if self.position >= len(self.items):
            self.walking = False  # used up: iterating again starts a second walk, which sees nothing
            raise StopIteration
        self.position += 1
        return self.items[self.position - 1]


def check_sgd_step(sgd_step) -> str:
    gen = generator("03.2")
    n_in, n_hidden, n_out = distinct_sizes(gen, 3, 2, 8)
    lr = float(torch.empty(()).uniform_(0.01, 0.5, generator=gen))
    model = nn.Sequential(nn.Linear(n_in, n_hidden), nn.ReLU(), nn.Linear(n_hidden, n_out))
    unused = nn.Parameter(torch.randn(3, generator=gen))  # takes no part in the loss: its grad stays None
    x, y = torch.randn(5, n_in, generator=gen), torch.randn(5, n_out, generator=gen)
    F.mse_loss(model(x), y).backward()
    parameters = [*model.parameters(), unused]
    expected = [(p - lr * p.grad if p.grad is not None else p).detach().clone() for p in parameters]
    originals = [p.detach().clone() for p in parameters]
    walked = _OneShot(parameters)  # walked through only once, like model.parameters()
    with forbid((torch.optim.SGD, "step"), (torch.optim.SGD, "__init__"), what="torch.optim.SGD", hint=HINT_2):
        call(sgd_step, walked, lr, hint=HINT_2)
    for i, (p, before, wanted) in enumerate(zip(parameters, originals, expected)):
        if not p.requires_grad or p.grad_fn is not None:
            raise Mistake(f"parameter {i} is no longer a trainable leaf tensor: update it inside torch.no_grad()",
                          HINT_2)
        if p.grad is not None and torch.equal(p.detach(), before) and walked.walks > 1:
            raise Mistake(f"parameter {i} did not change: `parameters` can be walked through only once (like "
                          "model.parameters()), and your code walked through it a second time: that walk only saw "
                          "what the first had left; walk through it once, or make a list first "
                          "(`list(parameters)`)", HINT_2)
        if p.grad is not None and torch.equal(p.detach(), before):
            raise Mistake(f"parameter {i} did not change: `p = p - lr * p.grad` only makes a new tensor named p; "
                          "change the parameter itself in place (p -= ..., p.sub_(...))", HINT_2)
        expect_tensor(p.detach(), wanted, f"parameter {i} after the step", atol=1e-6, hint=HINT_2)
    return f"all {len(parameters)} parameters match w - lr * grad (lr {lr:.3f}), one without a gradient untouched"


SOLUTION_2 = '''
def sgd_step(parameters, lr):
    """Update every parameter with a gradient in place: p <- p - lr * p.grad."""
    with torch.no_grad():  # the update itself is not part of the model's computation
        for p in parameters:
            if p.grad is not None:
                p -= lr * p.grad
'''

EX_2 = Exercise(
    id="03.2", lesson=LESSON, title="One SGD step by hand", name="sgd_step",
    hint=HINT_2,
    more_hints=["change each tensor in place (`p -= ...` or `p.sub_(...)`) inside `with torch.no_grad():`; "
                "`p = p - ...` only makes a new tensor named p",
                "skip the tensors whose `.grad` is None; one loop over `parameters` does it all"],
    statement="""
Write `sgd_step(parameters, lr)` that does what `torch.optim.SGD(parameters, lr).step()` does: every tensor
`p` whose `p.grad` is not `None` becomes `p - lr * p.grad`, **in place**.

- **In:** `parameters`, an iterable of tensors like `model.parameters()`, which can be walked through only
  once; `lr`, a Python float.
- **Out:** nothing is returned; each tensor with a gradient is changed in place and stays a trainable leaf
  tensor (`requires_grad=True`); a tensor whose `.grad` is `None` stays as it is.
- **Use:** `torch.no_grad()` and in-place operations; not `torch.optim` (the check refuses `torch.optim.SGD`).
- **Correct means:** every tensor within 1e-6 of `w - lr * grad` after the call, for a small network after one
  `backward()` plus one tensor without a gradient, passed as a one-pass iterable.
- **Reread:** section 4, *The network and the optimiser*.
""",
    template=template_of(SOLUTION_2),
    solution=SOLUTION_2,
    alternatives=['''
@torch.no_grad()
def sgd_step(parameters, lr):
    for p in parameters:
        if p.grad is None:
            continue
        p.add_(p.grad, alpha=-lr)
'''],
    wrong_answers=[
        (variant(SOLUTION_2, ('p -= lr * p.grad', 'p = p - lr * p.grad')), "did not change"),
        ("def sgd_step(parameters, lr):\n    for p in parameters:\n        if p.grad is not None:\n"
         "            p -= lr * p.grad\n", "a leaf Variable that requires grad"),
        (variant(SOLUTION_2,
            ('if p.grad is not None:\n'
             '                p',
             'p'),
        ), "your code raised TypeError"),
        (variant(SOLUTION_2, ('p -=', 'p +=')), "is wrong at index"),
        (variant(SOLUTION_2, ('    with torch.no_grad():',
                              '    if not any(p.grad is not None for p in parameters):\n'
                              '        return\n    with torch.no_grad():')), "can be walked through only once"),
    ],
    checker=check_sgd_step,
)


# ---- 03.3 One epoch of training

HINT_3 = "section 5 (The training loop, written out): the steps of one batch, and the loss per sample"


class _MomentumSGD:
    """SGD with momentum, as torch.optim.SGD(params, lr, momentum) computes it; the check's optimizer.

    torch.optim's first step() imports torch._dynamo (seconds); this keeps the check well under a second.
    """

    def __init__(self, params, lr: float, momentum: float):
        self.params, self.lr, self.momentum = list(params), lr, momentum
        self.velocities = [None] * len(self.params)

    def zero_grad(self, set_to_none: bool = True) -> None:
        for p in self.params:
            if set_to_none:
                p.grad = None
            elif p.grad is not None:
                p.grad.zero_()

    @torch.no_grad()
    def step(self) -> None:
        for i, p in enumerate(self.params):
            if p.grad is None:
                continue
            v = self.velocities[i]
            v = p.grad.clone() if v is None else v.mul_(self.momentum).add_(p.grad)
            self.velocities[i] = v
            p.sub_(self.lr * v)


def check_train_epoch(train_epoch) -> str:
    gen = generator("03.3")
    n_in, n_classes = distinct_sizes(gen, 2, 3, 8)
    sizes = [randint(gen, 6, 9), randint(gen, 6, 9), randint(gen, 1, 3)]  # a small last batch, as in real loaders
    loader = [(torch.randn(n, n_in, generator=gen), torch.randint(0, n_classes, (n,), generator=gen)) for n in sizes]
    model = nn.Sequential(nn.Linear(n_in, 16), nn.ReLU(), nn.Dropout(0.25), nn.Linear(16, n_classes))
    reference = copy.deepcopy(model)
    model.eval()  # the learner's function must switch it to training mode itself
    seed = int(torch.randint(0, 2 ** 31, (1,), generator=gen))

    modes = []
    model.register_forward_pre_hook(lambda module, args: modes.append(module.training))
    reference_epoch = exec_answer(SOLUTION_3, "train_epoch", "03.3 reference")  # the solution is the reference
    torch.manual_seed(seed)  # the same dropout masks for both runs
    expected_loss = reference_epoch(reference, loader, nn.CrossEntropyLoss(),
                                    _MomentumSGD(reference.parameters(), lr=0.5, momentum=0.9))
    torch.manual_seed(seed)
    loss = call(train_epoch, model, loader, nn.CrossEntropyLoss(), _MomentumSGD(model.parameters(), lr=0.5,
                                                                               momentum=0.9), hint=HINT_3)
    if len(modes) != len(loader):
        raise Mistake(f"the model was called {len(modes)} times for {len(loader)} batches", HINT_3)
    if not all(modes):
        raise Mistake("the model was in evaluation mode while training (dropout off): call model.train() first", HINT_3)
    for (name, got), wanted in zip(model.state_dict().items(), reference.state_dict().values()):
        if not torch.allclose(got, wanted, atol=1e-5):
            raise Mistake(f"after the epoch, {name} differs from a correct loop's (by up to "
                          f"{(got - wanted).abs().max().item():.3g}): clear the gradients with optimizer.zero_grad() "
                          "before every backward, and step once per batch", HINT_3)
    if isinstance(loss, torch.Tensor):
        raise Mistake(f"train_epoch returned {describe(loss)}: return a Python float (loss.item())", HINT_3)
    if not isinstance(loss, float):
        raise Mistake(f"train_epoch returned {describe(loss)}, expected a float (the mean loss per sample)", HINT_3)
    if abs(loss - expected_loss) > 1e-5:
        raise Mistake(f"train_epoch returned the loss {loss:.6f}, expected {expected_loss:.6f} (the mean per sample): "
                      "a mean of batch means counts the samples of the small last batch more", HINT_3)
    return (f"weights after one epoch (batches of {sizes}) match a correct loop, training mode, and the loss per "
            f"sample {expected_loss:.4f}")


SOLUTION_3 = '''
def train_epoch(model, loader, loss_fn, optimizer):
    """Train for one pass over loader; return the mean loss per sample (a float)."""
    model.train()                              # dropout on
    total, seen = 0.0, 0
    for inputs, targets in loader:
        loss = loss_fn(model(inputs), targets) # mean over the batch
        optimizer.zero_grad()                  # gradients accumulate unless cleared
        loss.backward()
        optimizer.step()
        total += loss.item() * len(targets)    # back to a sum, so every sample counts the same
        seen += len(targets)
    return total / seen
'''

EX_3 = Exercise(
    id="03.3", lesson=LESSON, title="One epoch of training", name="train_epoch",
    hint=HINT_3,
    more_hints=["call model.train() first (the model has dropout and may arrive in evaluation mode); per batch: "
                "loss, optimizer.zero_grad(), loss.backward(), optimizer.step()",
                "loss_fn gives a batch's mean: multiply its .item() by the batch size, add up, and divide by the "
                "number of samples at the end"],
    statement="""
Write `train_epoch(model, loader, loss_fn, optimizer)` that trains `model` for one pass over `loader` and
returns the epoch's mean loss **per sample**. Per batch: compute the loss, clear old gradients,
backpropagate, step.

- **In:** `model`, an `nn.Module` with dropout, possibly in evaluation mode; `loader`, an iterable of
  `(inputs, targets)` batches on the right device, the last one possibly smaller; `loss_fn(logits, targets)`,
  the mean over a batch like `nn.CrossEntropyLoss()`; `optimizer`, with `zero_grad()` and `step()`.
- **Out:** a Python `float`, the mean loss per sample over the epoch; the model's weights are trained.
- **Use:** the loop of section 5; the model must be in training mode while it trains.
- **Correct means:** the model called once per batch, in training mode; its weights within 1e-5 of those of a
  correct loop with the same dropout masks; the returned `float` within 1e-5 of the per-sample mean, with a
  last batch smaller than the others.
- **Reread:** section 5, *The training loop, written out*.
""",
    template=template_of(SOLUTION_3),
    solution=SOLUTION_3,
    alternatives=['''
def train_epoch(model, loader, loss_fn, optimizer):
    model.train(True)
    losses, counts = [], []
    for batch in loader:
        inputs, targets = batch
        optimizer.zero_grad(set_to_none=True)
        logits = model(inputs)
        loss = loss_fn(logits, targets)
        loss.backward()
        optimizer.step()
        losses.append(loss.detach() * targets.shape[0])
        counts.append(targets.shape[0])
    return float(torch.stack(losses).sum() / sum(counts))
'''],
    wrong_answers=[
        ('''
def train_epoch(model, loader, loss_fn, optimizer):
    model.train()
    means = []
    for inputs, targets in loader:
        loss = loss_fn(model(inputs), targets)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        means.append(loss.item())
    return sum(means) / len(means)
''', "a mean of batch means"),
        (variant(SOLUTION_3,
            ('batch\n'
             '        optimizer.zero_grad()                  # gradients accumulate unless cleared',
             'batch'),
        ), "optimizer.zero_grad()"),
        (variant(SOLUTION_3, ('    model.train()                              # dropout on\n', '')),
         "call model.train() first"),
        (variant(SOLUTION_3, ('loss.item()', 'loss')), "return a Python float"),
    ],
    checker=check_train_epoch,
)


# ---- 03.4 Challenge: a better digit classifier

HINT_4 = "section 6 (Training with `training.fit`): the loop, the learning rate and its schedule"


def check_train_my_model(train_my_model, target: float) -> str:
    return trained_image_classifier(
        train_my_model, "mnist", target, hint=HINT_4,
        levers="a wider network (512 units), Adam or AdamW instead of plain SGD, a learning rate that falls to 0 "
               "over the run (a scheduler), and all the epochs of the budget")


SOLUTION_4 = '''
def train_my_model():
    """Build a network, train it on train_loader for at most challenge_epochs epochs, and return it."""
    model = nn.Sequential(
        nn.Flatten(),
        nn.Linear(784, 512), nn.ReLU(), nn.Dropout(0.2),
        nn.Linear(512, 256), nn.ReLU(), nn.Dropout(0.2),
        nn.Linear(256, 10),
    ).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.001)
    # the rate falls from 0.001 to 0 along a cosine over the run: big steps first, fine ones last
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=challenge_epochs)
    training.fit(model, train_loader, val_loader, nn.CrossEntropyLoss(), optimizer, device, challenge_epochs,
                 scheduler=scheduler, verbose=False)
    return model
'''

EX_4 = Exercise(
    id="03.4", lesson=LESSON, title="Challenge: beat this lesson's network", name="train_my_model",
    hint=HINT_4,
    more_hints=["watch the validation accuracy per epoch: still rising at the end means the run stopped too early; a "
                "loss "
                "that jumps around means the learning rate is too large",
                "two hidden layers (512 and 256 units) trained with AdamW at lr 0.001, the rate falling along a cosine "
                "(torch.optim.lr_scheduler.CosineAnnealingLR, passed to training.fit as scheduler=), reach the target"],
    statement="""
This lesson's network reached about 0.975 test accuracy. Write `train_my_model()`: it builds a network of your
design, trains it on `train_loader`, and returns it. Your choices: layers and widths, optimiser, learning rate
and its schedule, dropout.

- **In:** nothing; use the lesson's `train_loader` and `val_loader` (normalised digits `(batch, 1, 28, 28)`),
  `device`, and `training.fit` or your own loop; at most `challenge_epochs` epochs (the check says how long
  training took).
- **Out:** the trained `nn.Module`: images `(batch, 1, 28, 28)` -> scores `(batch, 10)`.
- **Use:** anything in PyTorch; never the test images.
- **Correct means:** on the 10,000 test digits, which it never trained on, evaluated in eval mode, accuracy at
  least `challenge_target` (0.978).
- **Reread:** section 6, *Training with `training.fit`*.
""",
    template=template_of(SOLUTION_4),
    solution=SOLUTION_4,
    wrong_answers=image_wrong_answers("mnist"),
    checker=check_train_my_model,
    challenge=True, settings={"target": "challenge_target"}, rule_settings={"target": 0.978},
)

EXERCISES = [EX_1, EX_2, EX_3, EX_4]
