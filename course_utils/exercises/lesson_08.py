"""Exercises of lesson 08: trainable parameters, freezing and replacing a head, a confusion matrix, worst mistakes."""
from __future__ import annotations

import torch
from torch import nn

from course_utils.exercises.framework import (
    Exercise,
    Mistake,
    call,
    expect_tensor,
    forbid,
    generator,
    randint,
    template_of,
    variant,
)
from course_utils.models import transfer

LESSON = "08_transfer_learning"
HINT_FREEZE = "lesson 08, section 2 (Freeze the backbone, replace the head)"
HINT_CONFUSION = "lesson 08, section 6 (Evaluate on the test split): torch.bincount of true * C + predicted"
HINT_WRONG = "lesson 08, section 6 (The most confidently wrong photos)"


class _Backbone(nn.Module):
    """A stand-in for a pretrained network: some layers, then a linear head under a given attribute name."""

    def __init__(self, head_name: str, in_channels: int, features: int, num_classes: int):
        super().__init__()
        self.head_name = head_name
        self.stem = nn.Sequential(nn.Conv2d(in_channels, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU())
        self.blocks = nn.Sequential(nn.Conv2d(8, features, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                                    nn.Flatten())
        setattr(self, head_name, nn.Linear(features, num_classes))

    def forward(self, x):
        return getattr(self, self.head_name)(self.blocks(self.stem(x)))  # (batch, num_classes)


def _backbone(gen: torch.Generator, head_name: str) -> _Backbone:
    return _Backbone(head_name, randint(gen, 1, 3), randint(gen, 10, 40), randint(gen, 20, 50))


# ---------------------------------------------------------------- 08.1 trainable parameters

def check_count_trainable(count_trainable) -> str:
    gen = generator("08.1")
    model = _backbone(gen, "fc")
    for p in model.stem.parameters():
        p.requires_grad_(False)
    cases = [("a model with a frozen stem", model, sum(p.numel() for p in model.parameters() if p.requires_grad)),
             ("a fully frozen model", transfer.freeze(_backbone(gen, "fc")), 0),
             ("an unfrozen model", _backbone(gen, "fc"), None)]
    with forbid((transfer, "count_parameters"), what="transfer.count_parameters", hint=HINT_FREEZE):
        for what, network, expected in cases:
            if expected is None:
                expected = sum(p.numel() for p in network.parameters())
            got = count_trainable(network)
            if isinstance(got, torch.Tensor) and got.numel() == 1:
                got = got.item()
            if not isinstance(got, int) or isinstance(got, bool):
                raise Mistake(f"for {what} your code returned {type(got).__name__} {got!r}; return an int",
                              HINT_FREEZE)
            if got != expected:
                why = ""
                if got == sum(p.numel() for p in network.parameters()):
                    why = ": that counts every parameter; count only those with requires_grad"
                elif got == sum(1 for p in network.parameters() if p.requires_grad):
                    why = ": that counts parameter tensors; count their numbers, p.numel()"
                raise Mistake(f"for {what} your code returned {got}, expected {expected}{why}", HINT_FREEZE)
    return "the trainable parameters of a partly frozen, a frozen and an unfrozen model"


SOLUTION_08_1 = '''
def count_trainable(model):
    """Number of elements in the parameters of `model` that require grad."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
'''

COUNT = Exercise(
    id="08.1", lesson=LESSON, title="Count the trainable parameters", name="count_trainable", hint=HINT_FREEZE,
    statement="""
Write `count_trainable(model)`: how many numbers the optimiser can change, i.e. the total number
of elements of the parameters that have `requires_grad` set.

- in: an `nn.Module`, possibly partly frozen
- out: an `int` (0 for a fully frozen model)
- not allowed: `transfer.count_parameters` (the course's version)

Correct means: exact for a partly frozen, a frozen and an unfrozen model.

See lesson 08, section 2 (Freeze the backbone, replace the head).
""",
    template=template_of(SOLUTION_08_1),
    solution=SOLUTION_08_1,
    alternatives=['''
def count_trainable(model):
    total = 0
    for _, parameter in model.named_parameters():
        if parameter.requires_grad:
            total += math.prod(parameter.shape)
    return total
'''],
    wrong_answers=[
        (variant(SOLUTION_08_1, (' if p.requires_grad', '')),
         "count only those with requires_grad"),
        ("def count_trainable(model):\n    return len([p for p in model.parameters() if p.requires_grad])\n",
         "counts parameter tensors"),
        ("def count_trainable(model):\n"
         "    return float(sum(p.numel() for p in model.parameters() if p.requires_grad))\n",
         "return an int"),
    ],
    checker=check_count_trainable,
)


# ---------------------------------------------------------------- 08.2 freeze and replace the head

def check_replace_head(replace_head) -> str:
    gen = generator("08.2")
    tested = []
    for head_name in ("fc", "classifier", "_fc"):
        model = _backbone(gen, head_name)
        old_head = getattr(model, head_name)
        backbone_before = {name: p.detach().clone() for name, p in model.named_parameters()
                           if not name.startswith(head_name + ".")}
        num_classes = randint(gen, 2, 9)
        result = replace_head(model, head_name, num_classes)
        if result is not model:
            raise Mistake("replace_head should change the model it is given and return it (the same object), "
                          "not build another one", HINT_FREEZE)
        head = getattr(model, head_name)
        if head is old_head:
            raise Mistake(f"model.{head_name} is still the old head: assign a new nn.Linear to it "
                          f"(setattr(model, head_name, ...) when the name is in a variable)", HINT_FREEZE)
        if not isinstance(head, nn.Linear):
            raise Mistake(f"model.{head_name} is a {type(head).__name__}, expected an nn.Linear", HINT_FREEZE)
        if head.in_features != old_head.in_features or head.out_features != num_classes:
            raise Mistake(f"the new head is Linear({head.in_features}, {head.out_features}), expected "
                          f"Linear({old_head.in_features}, {num_classes}): take in_features from the old head, "
                          "whose input size the backbone fixes", HINT_FREEZE)
        for name, p in model.named_parameters():
            if name.startswith(head_name + "."):
                if not p.requires_grad:
                    raise Mistake(f"the new head's {name} is frozen: freeze the backbone first, then put the "
                                  "new head in (new modules are trainable), or the model cannot learn at all",
                                  HINT_FREEZE)
            elif p.requires_grad:
                raise Mistake(f"the backbone's {name} still requires grad: freeze every parameter of the old "
                              "model (requires_grad = False)", HINT_FREEZE)
            elif not torch.equal(p, backbone_before[name]):
                raise Mistake(f"your code changed the pretrained weights {name}: freezing must keep them as they "
                              "are", HINT_FREEZE)
        batch = randint(gen, 1, 3)
        x = torch.randn(batch, model.stem[0].in_channels, 8, 8, generator=gen)
        logits = model.eval()(x)
        if logits.shape != (batch, num_classes):
            raise Mistake(f"the model now returns {tuple(logits.shape)}, expected {(batch, num_classes)}", HINT_FREEZE)
        tested.append(f"model.{head_name} -> {num_classes} classes")
    return f"heads under three names ({', '.join(tested)}): backbone frozen and unchanged, new head trainable"


SOLUTION_08_2 = '''
def replace_head(model, head_name, num_classes):
    """Freeze `model` and put a new trainable nn.Linear(in_features, num_classes) under `head_name`; return it."""
    for parameter in model.parameters():
        parameter.requires_grad = False           # the pretrained backbone stays as it is
    in_features = getattr(model, head_name).in_features
    setattr(model, head_name, nn.Linear(in_features, num_classes))  # new modules are trainable
    return model
'''

HEAD = Exercise(
    id="08.2", lesson=LESSON, title="Freeze the backbone and replace the head", name="replace_head", hint=HINT_FREEZE,
    statement="""
Write `replace_head(model, head_name, num_classes)` for transfer learning: freeze every parameter of
`model`, then replace its last layer, the `nn.Linear` stored under the attribute `head_name`
(`"fc"` for ResNet, `"classifier"` for DenseNet, `"_fc"` for EfficientNet-Lite0), by a fresh
`nn.Linear` with the same number of inputs and `num_classes` outputs. Return the model.

- in: `model`, an `nn.Module`; `head_name`, a string; `num_classes`, an int
- out: the same model object, changed in place (`getattr` and `setattr` work with a name held in a
  variable)

Correct means: for heads of random sizes under three names, the new head has the old head's
`in_features` and `num_classes` outputs and is trainable; every other parameter is frozen and
unchanged; the model returns (batch, num_classes).

See lesson 08, section 2 (Freeze the backbone, replace the head).
""",
    template=template_of(SOLUTION_08_2),
    solution=SOLUTION_08_2,
    alternatives=['''
def replace_head(model, head_name, num_classes):
    old = model.get_submodule(head_name)
    model.requires_grad_(False)
    model.register_module(head_name, nn.Linear(old.weight.shape[1], num_classes))
    return model
'''],
    wrong_answers=[
        ('''
def replace_head(model, head_name, num_classes):
    setattr(model, head_name, nn.Linear(getattr(model, head_name).in_features, num_classes))
    for parameter in model.parameters():
        parameter.requires_grad = False
    return model
''', "the new head's"),
        ('''
def replace_head(model, head_name, num_classes):
    setattr(model, head_name, nn.Linear(getattr(model, head_name).in_features, num_classes))
    return model
''', "still requires grad"),
        ('''
def replace_head(model, head_name, num_classes):
    model.requires_grad_(False)
    setattr(model, head_name, nn.Linear(1280, num_classes))
    return model
''', "take in_features from the old head"),
        ('''
def replace_head(model, head_name, num_classes):
    model.requires_grad_(False)
    model.head = nn.Linear(getattr(model, head_name).in_features, num_classes)
    return model
''', "is still the old head"),
    ],
    checker=check_replace_head,
)


# ---------------------------------------------------------------- 08.3 confusion matrix

def check_confusion_matrix(confusion_matrix) -> str:
    gen = generator("08.3")
    tested = []
    for num_classes, size in ((randint(gen, 3, 6), randint(gen, 30, 80)), (2, randint(gen, 5, 10))):
        labels = torch.randint(0, num_classes - 1, (size,), generator=gen)   # the last class never occurs...
        predictions = torch.randint(0, num_classes - 1, (size,), generator=gen)  # ...nor is it predicted
        predictions[0] = (labels[0] + 1) % (num_classes - 1) if num_classes > 2 else 1 - labels[0]
        expected = torch.zeros(num_classes, num_classes, dtype=torch.int64)
        for t, p in zip(labels.tolist(), predictions.tolist()):
            expected[t, p] += 1
        try:
            got = call(confusion_matrix, labels, predictions, num_classes, hint=HINT_CONFUSION)
        except RuntimeError as err:
            if "is invalid for input of size" not in str(err):
                raise
            raise Mistake(f"your code raised RuntimeError: {err}: when a class never occurs, bincount returns "
                          "fewer than num_classes² counts unless you pass minlength", HINT_CONFUSION) from None
        what = f"confusion_matrix for {size} samples of {num_classes} classes"
        if isinstance(got, torch.Tensor) and got.shape == expected.shape and not torch.equal(expected, expected.T) \
                and torch.equal(got.to(torch.int64), expected.T):
            raise Mistake(f"{what}: your matrix is transposed: rows must be the true classes, columns the "
                          "predicted ones (confusion[true, predicted])", HINT_CONFUSION)
        if isinstance(got, torch.Tensor) and got.numel() < expected.numel():
            raise Mistake(f"{what} has shape {tuple(got.shape)}, expected {tuple(expected.shape)}: when the last "
                          "class never occurs, bincount returns fewer counts unless you pass minlength",
                          HINT_CONFUSION)
        expect_tensor(got, expected, what, hint=HINT_CONFUSION)
        tested.append(f"{num_classes} classes")
    return f"counts equal to a loop's for {' and '.join(tested)}, with a class that never occurs"


SOLUTION_08_3 = '''
def confusion_matrix(labels, predictions, num_classes):
    """(N,) true and (N,) predicted classes -> (num_classes, num_classes) int64 counts, [true, predicted]."""
    pairs = labels * num_classes + predictions                # one number per (true, predicted) pair
    counts = torch.bincount(pairs, minlength=num_classes ** 2)  # minlength: classes that never occur count 0
    return counts.reshape(num_classes, num_classes)
'''

CONFUSION = Exercise(
    id="08.3", lesson=LESSON, title="A confusion matrix without a loop", name="confusion_matrix", hint=HINT_CONFUSION,
    statement="""
Write `confusion_matrix(labels, predictions, num_classes)`: the matrix whose entry `[t, p]` counts
the samples of true class `t` that were predicted as class `p`. Rows are true classes, columns
predicted ones, so correct answers lie on the diagonal.

- in: `labels` and `predictions`, int64 tensors of shape (N,) with values in `0 … num_classes - 1`
- out: an int64 tensor (num_classes, num_classes), even when some classes never occur; the inputs
  must not change
- no Python loop over the samples: one `torch.bincount` does it

Correct means: equal to counting in a loop, for random labels where the last class never occurs.

See lesson 08, section 6 (Evaluate on the test split).
""",
    template=template_of(SOLUTION_08_3),
    solution=SOLUTION_08_3,
    alternatives=['''
def confusion_matrix(labels, predictions, num_classes):
    matrix = torch.zeros(num_classes, num_classes, dtype=torch.int64)
    matrix.index_put_((labels, predictions), torch.ones_like(labels), accumulate=True)
    return matrix
''', '''
def confusion_matrix(labels, predictions, num_classes):
    one_hot_true = F.one_hot(labels, num_classes)        # (N, C)
    one_hot_predicted = F.one_hot(predictions, num_classes)
    return one_hot_true.T @ one_hot_predicted
'''],
    wrong_answers=[
        ('''
def confusion_matrix(labels, predictions, num_classes):
    counts = torch.bincount(predictions * num_classes + labels, minlength=num_classes ** 2)
    return counts.reshape(num_classes, num_classes)
''', "transposed"),
        ('''
def confusion_matrix(labels, predictions, num_classes):
    return torch.bincount(labels * num_classes + predictions).reshape(num_classes, num_classes)
''', "minlength"),
        ('''
def confusion_matrix(labels, predictions, num_classes):
    counts = torch.bincount(labels * num_classes + predictions, minlength=num_classes ** 2)
    return counts.reshape(num_classes, num_classes).float()
''', "dtype"),
    ],
    checker=check_confusion_matrix,
)


# ---------------------------------------------------------------- 08.4 the most confident mistakes

def check_most_confident_mistakes(most_confident_mistakes) -> str:
    gen = generator("08.4")
    tested = []
    for size, num_classes, k in ((randint(gen, 40, 80), randint(gen, 2, 5), randint(gen, 3, 6)),
                                 (randint(gen, 6, 10), 3, 50)):
        probs = torch.softmax(torch.randn(size, num_classes, generator=gen) * 2, dim=1)
        labels = torch.randint(0, num_classes, (size,), generator=gen)
        predicted = probs.argmax(dim=1)
        labels[0] = (predicted[0] + 1) % num_classes  # at least one mistake...
        labels[1] = predicted[1]                      # ...and at least one correct answer
        wrong = (predicted != labels).nonzero().flatten()
        confidence = probs.max(dim=1).values
        expected = wrong[confidence[wrong].argsort(descending=True)][:k]
        got = call(most_confident_mistakes, probs, labels, k, hint=HINT_WRONG)
        what = f"for {size} samples and k = {k}"
        if isinstance(got, torch.Tensor) and got.dtype == torch.int64 and got.dim() == 1:
            positions = confidence[wrong].argsort(descending=True)[:k]
            if got.shape == expected.shape and torch.equal(got, positions) and not torch.equal(positions, expected):
                raise Mistake(f"{what} your indices are positions among the mistakes, not in the whole batch: "
                              "index the tensor of mistake indices with the sorted order "
                              "(wrong[order])", HINT_WRONG)
            if bool((got < size).all()) and bool((got >= 0).all()) and bool((predicted[got] == labels[got]).any()):
                raise Mistake(f"{what} your indices include samples the model got right; keep only the mistakes, "
                              "predicted != labels", HINT_WRONG)
            if got.shape == expected.shape and torch.equal(got, expected.flip(0)) and len(expected) > 1:
                raise Mistake(f"{what} your order is reversed: the most confident mistake comes first "
                              "(descending=True)", HINT_WRONG)
        expect_tensor(got, expected, f"the indices {what}", hint=HINT_WRONG)
        tested.append(f"{len(expected)} of {len(wrong)} mistakes")
    return f"indices in the batch, most confident first: {', '.join(tested)} (fewer mistakes than k included)"


SOLUTION_08_4 = '''
def most_confident_mistakes(probs, labels, k):
    """Indices (into the batch) of at most k misclassified samples, highest predicted probability first."""
    confidence, predicted = probs.max(dim=1)                  # (N,), (N,)
    wrong = (predicted != labels).nonzero().flatten()         # indices of the mistakes
    order = confidence[wrong].argsort(descending=True)        # positions among the mistakes
    return wrong[order][:k]
'''

MISTAKES = Exercise(
    id="08.4", lesson=LESSON, title="The most confidently wrong predictions", name="most_confident_mistakes",
    hint=HINT_WRONG,
    statement="""
Write `most_confident_mistakes(probs, labels, k)`: the indices of the samples the model got
**wrong**, ordered by the probability it gave its (wrong) answer, most confident first; at most
`k` of them (all of them when there are fewer than `k` mistakes).

- in: `probs` (N, C) class probabilities; `labels` (N,) int64 true classes; `k` an int
- out: an int64 tensor of shape (min(k, number of mistakes),) of indices into the batch (0 … N-1)

Correct means: equal to the exact answer on random batches, one with fewer mistakes than `k`.

See lesson 08, section 6 (The most confidently wrong photos).
""",
    template=template_of(SOLUTION_08_4),
    solution=SOLUTION_08_4,
    alternatives=['''
def most_confident_mistakes(probs, labels, k):
    confidence = probs.max(1).values.clone()
    confidence[probs.argmax(1) == labels] = -1.0              # correct answers sort last
    number_wrong = int((probs.argmax(1) != labels).sum())
    return confidence.topk(min(k, number_wrong)).indices
'''],
    wrong_answers=[
        ('''
def most_confident_mistakes(probs, labels, k):
    confidence = probs.max(dim=1).values
    return confidence.argsort(descending=True)[:k]
''', "include samples the model got right"),
        ('''
def most_confident_mistakes(probs, labels, k):
    confidence, predicted = probs.max(dim=1)
    wrong = (predicted != labels).nonzero().flatten()
    return confidence[wrong].argsort(descending=True)[:k]
''', "positions among the mistakes"),
        ('''
def most_confident_mistakes(probs, labels, k):
    confidence, predicted = probs.max(dim=1)
    wrong = (predicted != labels).nonzero().flatten()
    return wrong[confidence[wrong].argsort()][-k:]
''', "order is reversed"),
    ],
    checker=check_most_confident_mistakes,
)

EXERCISES = [COUNT, HEAD, CONFUSION, MISTAKES]
