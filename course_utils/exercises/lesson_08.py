"""Exercises for lesson 08: unfreezing the last blocks, replacing a head, precision and recall, the worst mistakes, and
a challenge: a head trained on the features of ten photos."""
from __future__ import annotations

import torch
from torch import nn

from course_utils.exercises.challenges import batched_accuracy, evaluate_in_eval_mode, mode_note, trained
from course_utils.exercises.framework import (
    Exercise,
    Mistake,
    call,
    describe,
    expect_tensor,
    forbid,
    generator,
    randint,
    seed,
    template_of,
    variant,
)
from course_utils.models import transfer

LESSON = "08_transfer_learning"


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


# ---------------------------------------------------------------- 08.1 unfreeze the last blocks

HINT_1 = ("section 5 (Fine-tuning): unfreeze the last blocks, train them with the head; section 2 (Freeze the "
          "backbone, replace the head): requires_grad decides what the optimiser may change")


class _Stack(nn.Module):
    """A frozen stand-in for a pretrained network: a stem, blocks of several layers each, and a trainable head."""

    def __init__(self, gen: torch.Generator, num_blocks: int):
        super().__init__()
        width = randint(gen, 3, 6)
        self.stem = nn.Conv2d(1, width, 3, padding=1)
        self.blocks = nn.Sequential(*[nn.Sequential(nn.Conv2d(width, width, 3, padding=1), nn.BatchNorm2d(width),
                                                    nn.ReLU()) for _ in range(num_blocks)])
        self.fc = nn.Linear(width, 2)
        self.requires_grad_(False)
        self.fc.requires_grad_(True)                      # after the head's training: only the head trains

    def forward(self, x):
        return self.fc(self.blocks(self.stem(x)).mean(dim=(2, 3)))


def check_unfreeze_last(unfreeze_last) -> str:
    gen = generator("08.1")
    num_blocks = randint(gen, 3, 5)
    tested = []
    with forbid((transfer, "unfreeze_last_blocks"), what="transfer.unfreeze_last_blocks", hint=HINT_1):
        for n in (0, 1, num_blocks, randint(gen, 2, num_blocks - 1)):      # none, one, all, some
            model = _Stack(gen, num_blocks)
            before = {name: p.detach().clone() for name, p in model.named_parameters()}
            first = num_blocks - n                                          # blocks[first:] are the last n
            wanted = {name for name, _ in model.named_parameters()
                      if name.startswith("fc.") or (name.startswith("blocks.") and int(name.split(".")[1]) >= first)}
            result = call(unfreeze_last, model, n, hint=HINT_1)
            what = f"unfreeze_last(model, {n}) for a model with {num_blocks} blocks"
            trainable = {name for name, p in model.named_parameters() if p.requires_grad}
            if n == 0 and trainable != wanted and {f"blocks.{i}" for i in range(num_blocks)} <= \
                    {".".join(name.split(".")[:2]) for name in trainable}:
                raise Mistake(f"{what}: you unfroze every block, but n = 0 asks for none; a slice [-n:] with n = 0 "
                              "is [0:], the whole list: start the slice at len(blocks) - n", HINT_1)
            first_n = {name for name in before if name.startswith("blocks.") and int(name.split(".")[1]) < n}
            if n not in (0, num_blocks) and trainable - {t for t in trainable if t.startswith("fc.")} == first_n:
                raise Mistake(f"{what}: you unfroze the first {n} block(s); fine-tuning unfreezes the last ones, "
                              "nearest the head", HINT_1)
            for name in sorted(wanted - trainable):
                if name.startswith("fc."):
                    raise Mistake(f"{what}: the head's {name} is frozen; the head must stay trainable "
                                  "(unfreeze blocks, do not freeze the model again)", HINT_1)
                raise Mistake(f"{what}: {name} is still frozen, though it belongs to block "
                              f"{name.split('.')[1]}, one of the last {n}: every layer of those blocks must train "
                              "(block.parameters() reaches them all)", HINT_1)
            for name in sorted(trainable - wanted):
                raise Mistake(f"{what}: {name} now requires grad, but only the last {n} blocks and the head may "
                              "train; the stem and the earlier blocks stay frozen", HINT_1)
            changed = [name for name, p in model.named_parameters() if not torch.equal(p, before[name])]
            if changed:
                raise Mistake(f"{what}: your code changed the pretrained weights {changed[0]}", HINT_1)
            expected = [p for p in model.parameters() if p.requires_grad]
            if not isinstance(result, list):
                raise Mistake(f"{what} returned {describe(result)}, expected a list of parameters", HINT_1)
            if len(result) == len(expected) and all(any(r is p for p in expected) for r in result) and \
                    any(r is not p for r, p in zip(result, expected)):
                raise Mistake(f"{what}: the right parameters, but not in the order of model.parameters()", HINT_1)
            if len(result) != len(expected) or any(r is not p for r, p in zip(result, expected)):
                head = [p for p in model.fc.parameters()]
                lacks_head = not any(r is p for r in result for p in head)
                raise Mistake(f"{what} returned {len(result)} tensors, expected the {len(expected)} parameters that "
                              "require grad" + (": the head's are missing, and the optimiser must get them too"
                                                if lacks_head else ""), HINT_1)
            tested.append(str(n))
    return (f"n = {', '.join(tested)} of {num_blocks} blocks of three layers: exactly the last n blocks and the head "
            "trainable, the rest frozen and unchanged, the trainable parameters returned in order")


SOLUTION_1 = '''
def unfreeze_last(model, n):
    """Make the last n blocks of model.blocks trainable; return every trainable parameter, in order."""
    blocks = list(model.blocks)
    for block in blocks[len(blocks) - n:]:         # not blocks[-n:]: with n = 0 that is every block
        for parameter in block.parameters():       # every layer of the block
            parameter.requires_grad = True
    return [p for p in model.parameters() if p.requires_grad]
'''

EX_1 = Exercise(
    id="08.1", lesson=LESSON, title="Unfreeze the last blocks", name="unfreeze_last",
    statement="""
Write `unfreeze_last(model, n)` that prepares fine-tuning: it makes the parameters of the last `n` blocks of
`model.blocks` trainable, leaves the rest of the backbone frozen, and returns the parameters the optimiser
must get.

- **In:** `model`, an `nn.Module` with a `stem`, a `blocks` attribute (an `nn.Sequential` of blocks, each
  holding several layers) and a head `fc`; everything is frozen except the head. `n`, an int from 0 to
  `len(model.blocks)`.
- **Out:** a `list` of every parameter of `model` that requires grad afterwards, in the order of
  `model.parameters()` (the head's included). Every parameter of the last `n` blocks requires grad; the stem
  and the earlier blocks stay frozen; the head stays trainable; no weight changes.
- **Use:** `requires_grad`, `.parameters()`, slicing a list; not `transfer.unfreeze_last_blocks`.
- **Correct means:** for `n` = 0, 1, all the blocks, and one in between, on blocks of three layers: exactly
  the parameters of the last `n` blocks and of the head require grad, the weights are unchanged, and the
  list holds exactly those parameters (the same objects), in order.
- **Reread:** section 5, *Train the new head, then fine-tune*.
""",
    template=template_of(SOLUTION_1),
    solution=SOLUTION_1,
    alternatives=['''
def unfreeze_last(model, n):
    count = len(model.blocks)
    for index, block in enumerate(model.blocks):
        if index >= count - n:
            block.requires_grad_(True)
    return list(filter(lambda p: p.requires_grad, model.parameters()))
'''],
    wrong_answers=[
        (variant(SOLUTION_1, ("blocks[len(blocks) - n:]", "blocks[-n:]")), "n = 0 asks for none"),
        (variant(SOLUTION_1, ("blocks[len(blocks) - n:]", "blocks[:n]")), "you unfroze the first"),
        (variant(SOLUTION_1, ("in block.parameters()", "in block[0].parameters()")),
         "every layer of those blocks must train"),
        (variant(SOLUTION_1, ("    blocks = list(model.blocks)\n",
                              "    blocks = list(model.blocks)\n    model.requires_grad_(False)\n")),
         "the head must stay trainable"),
        (variant(SOLUTION_1, ("for p in model.parameters() if p.requires_grad]",
                              "for block in blocks[len(blocks) - n:] for p in block.parameters()]")),
         "the head's are missing"),
        (variant(SOLUTION_1, ("    return [p for p in model.parameters() if p.requires_grad]",
                              "    return (p for p in model.parameters() if p.requires_grad)")),
         "expected a list of parameters"),
        ("from course_utils.models import transfer\n\n\ndef unfreeze_last(model, n):\n"
         "    return transfer.unfreeze_last_blocks(model, n)\n", "your code called transfer.unfreeze_last_blocks"),
    ],
    checker=check_unfreeze_last, hint=HINT_1,
    more_hints=["the last n of a list of length L start at index L - n; a slice [-n:] goes wrong for n = 0",
                "a block holds several layers: block.parameters() (or block.requires_grad_(True)) reaches them "
                "all; then collect every parameter of the model that requires grad"],
)


# ---------------------------------------------------------------- 08.2 freeze and replace the head

HINT_2 = ("section 2 (Freeze the backbone, replace the head): requires_grad = False on every parameter, then a "
          "fresh nn.Linear in the head's place; new modules are trainable")


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
                          "not build another one", HINT_2)
        head = getattr(model, head_name)
        if head is old_head:
            raise Mistake(f"model.{head_name} is still the old head: assign a new nn.Linear to it "
                          f"(setattr(model, head_name, ...) when the name is in a variable)", HINT_2)
        if not isinstance(head, nn.Linear):
            raise Mistake(f"model.{head_name} is a {type(head).__name__}, expected an nn.Linear", HINT_2)
        if head.in_features != old_head.in_features or head.out_features != num_classes:
            raise Mistake(f"the new head is Linear({head.in_features}, {head.out_features}), expected "
                          f"Linear({old_head.in_features}, {num_classes}): take in_features from the old head, "
                          "whose input size the backbone fixes", HINT_2)
        for name, p in model.named_parameters():
            if name.startswith(head_name + "."):
                if not p.requires_grad:
                    raise Mistake(f"the new head's {name} is frozen: freeze the backbone first, then put the "
                                  "new head in (new modules are trainable), or the model cannot learn at all",
                                  HINT_2)
            elif p.requires_grad:
                raise Mistake(f"the backbone's {name} still requires grad: freeze every parameter of the old "
                              "model (requires_grad = False)", HINT_2)
            elif not torch.equal(p, backbone_before[name]):
                raise Mistake(f"your code changed the pretrained weights {name}: freezing must keep them as they "
                              "are", HINT_2)
        batch = randint(gen, 1, 3)
        x = torch.randn(batch, model.stem[0].in_channels, 8, 8, generator=gen)
        logits = model.eval()(x)
        if logits.shape != (batch, num_classes):
            raise Mistake(f"the model now returns {tuple(logits.shape)}, expected {(batch, num_classes)}", HINT_2)
        tested.append(f"model.{head_name} -> {num_classes} classes")
    return f"heads under three names ({', '.join(tested)}): backbone frozen and unchanged, new head trainable"


SOLUTION_2 = '''
def replace_head(model, head_name, num_classes):
    """Freeze `model` and put a new trainable nn.Linear(in_features, num_classes) under `head_name`; return it."""
    for parameter in model.parameters():
        parameter.requires_grad = False           # the pretrained backbone stays as it is
    in_features = getattr(model, head_name).in_features
    setattr(model, head_name, nn.Linear(in_features, num_classes))  # new modules are trainable
    return model
'''

EX_2 = Exercise(
    id="08.2", lesson=LESSON, title="Freeze the backbone and replace the head", name="replace_head", hint=HINT_2,
    more_hints=["getattr(model, head_name) is the old head, and its in_features is the size of the new head's "
                "input; setattr(model, head_name, new_layer) puts a layer under a name held in a variable",
                "freeze first, then assign the new head: a module made after the freeze is trainable"],
    statement="""
Write `replace_head(model, head_name, num_classes)` for transfer learning: freeze every parameter of `model`,
then replace its last layer, the `nn.Linear` stored under the attribute `head_name` (`"fc"` for ResNet,
`"classifier"` for DenseNet, `"_fc"` for EfficientNet-Lite0), by a fresh `nn.Linear` with the same number of
inputs and `num_classes` outputs.

- **In:** `model`, an `nn.Module` with several layers before the head; `head_name`, a string; `num_classes`,
  an int.
- **Out:** the same model object, changed in place: the new head trainable, every other parameter frozen
  and unchanged.
- **Use:** `requires_grad`, `nn.Linear`, and `getattr` / `setattr`, which read and set an attribute whose
  name is held in a variable.
- **Correct means:** for heads of random sizes under the three names: the same object returned; the new head
  is an `nn.Linear` with the old head's `in_features` and `num_classes` outputs, and trainable; every other
  parameter is frozen and unchanged; the model returns `(batch, num_classes)`.
- **Reread:** section 2, *A pretrained backbone and its head*.
""",
    template=template_of(SOLUTION_2),
    solution=SOLUTION_2,
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


# ---------------------------------------------------------------- 08.3 precision and recall from a confusion matrix

HINT_3 = ("section 6 (Evaluate on the test split): the confusion matrix's rows are the true classes, its columns "
          "the predicted ones, and the correct answers lie on the diagonal")


def _confusions(gen: torch.Generator) -> list[torch.Tensor]:
    """A random matrix, then a fixed one where class 1 never occurs and class 2 is never predicted."""
    size = randint(gen, 3, 6)
    random = torch.randint(0, 10, (size, size), generator=gen)
    random[0, 1] += 20                                              # not symmetric: swapped sums show
    fixed = torch.tensor([[5, 3, 0, 1], [0, 0, 0, 0], [2, 1, 0, 0], [1, 4, 0, 6]])
    return [random, fixed]


def check_precision_recall(precision_recall) -> str:
    gen = generator("08.3")
    for confusion in _confusions(gen):
        correct = confusion.diagonal().double()
        expected = [torch.where(total > 0, correct / total.clamp(min=1), 0.0).float()
                    for total in (confusion.sum(dim=0).double(), confusion.sum(dim=1).double())]
        what = f"precision_recall for the confusion matrix {confusion.tolist()}"
        got = call(precision_recall, confusion, hint=HINT_3)
        if not isinstance(got, tuple) or len(got) != 2:
            raise Mistake(f"{what} returned {describe(got)}, expected a tuple (precision, recall)", HINT_3)
        precision, recall = got
        tensors = all(isinstance(t, torch.Tensor) and t.shape == expected[0].shape for t in got)
        if tensors and torch.allclose(precision.double().nan_to_num(), expected[1].double(), atol=1e-6) and \
                torch.allclose(recall.double().nan_to_num(), expected[0].double(), atol=1e-6):
            raise Mistake(f"{what}: your precision and recall are swapped; recall divides the diagonal by the row "
                          "sums (the samples of each true class), precision by the column sums (the predictions "
                          "of each class)", HINT_3)
        for name, mine, wanted in (("precision", precision, expected[0]), ("recall", recall, expected[1])):
            if isinstance(mine, torch.Tensor) and mine.shape == wanted.shape and bool(mine.isnan().any()):
                c = int(mine.isnan().nonzero()[0])
                never = "is never predicted" if name == "precision" else "never occurs"
                raise Mistake(f"{what}: your {name} of class {c} is nan: class {c} {never}, so it divides 0 by 0; "
                              f"its {name} must be 0", HINT_3)
            expect_tensor(mine, wanted, f"the {name} of {what}", atol=1e-6, hint=HINT_3)
    return "precision and recall of a random matrix and of one with a class never true and one never predicted (0)"


SOLUTION_3 = '''
def precision_recall(confusion):
    """(C, C) counts [true, predicted] -> (precision, recall), each (C,) float32; 0 where nothing was counted."""
    correct = confusion.diagonal().float()                 # the right answers of each class
    predicted = confusion.sum(dim=0).float()               # column sums: how often each class was predicted
    actual = confusion.sum(dim=1).float()                  # row sums: how many samples of each class
    return correct / predicted.clamp(min=1), correct / actual.clamp(min=1)  # a 0 total has 0 correct
'''

EX_3 = Exercise(
    id="08.3", lesson=LESSON, title="Precision and recall from a confusion matrix", name="precision_recall",
    statement="""
Write `precision_recall(confusion)` that reads two numbers per class off a confusion matrix: the
**precision** of class `c`, the share of the samples predicted as `c` that really are `c`, and its
**recall**, the share of the samples of class `c` that were predicted as `c`.

- **In:** `confusion`, an int64 tensor `(C, C)` whose entry `[t, p]` counts the samples of true class `t`
  predicted as `p` (rows true, columns predicted, as in the lesson).
- **Out:** a tuple `(precision, recall)` of two float32 tensors of shape `(C,)`: the diagonal divided by the
  column sums, and by the row sums. A class that is never predicted has precision 0; a class that never occurs
  has recall 0 (not nan). `confusion` must not change.
- **Use:** tensor operations: `confusion.diagonal()`, sums over a dim, `torch.where` or `clamp`.
- **Correct means:** within 1e-6 of the exact values on a random matrix that is not symmetric, and on a fixed
  one with a class that never occurs and a class that is never predicted.
- **Reread:** section 6, *Evaluate on the test split*.
""",
    template=template_of(SOLUTION_3),
    solution=SOLUTION_3,
    alternatives=['''
def precision_recall(confusion):
    hits = torch.diag(confusion).to(torch.float32)
    by_prediction = confusion.sum(0)
    by_truth = confusion.sum(1)
    precision = torch.where(by_prediction > 0, hits / by_prediction, torch.zeros_like(hits))
    recall = torch.where(by_truth > 0, hits / by_truth, torch.zeros_like(hits))
    return precision, recall
'''],
    wrong_answers=[
        (variant(SOLUTION_3, ("sum(dim=0)", "sum(dim=2)"), ("sum(dim=1)", "sum(dim=0)"), ("sum(dim=2)", "sum(dim=1)")),
         "precision and recall are swapped"),
        (variant(SOLUTION_3, ("correct / predicted.clamp(min=1), correct / actual.clamp(min=1)",
                              "correct / predicted, correct / actual")), "divides 0 by 0"),
        (variant(SOLUTION_3, ("correct = confusion.diagonal().float()", "correct = confusion.diagonal().double()")),
         "dtype"),
        (variant(SOLUTION_3, ("    return correct / predicted.clamp(min=1), correct / actual.clamp(min=1)",
                              "    return [correct / predicted.clamp(min=1), correct / actual.clamp(min=1)]")),
         "expected a tuple (precision, recall)"),
        (variant(SOLUTION_3, ("predicted.clamp(min=1), correct", "predicted.clamp(min=1) * 100, correct")),
         "the precision of"),
    ],
    checker=check_precision_recall, hint=HINT_3,
    more_hints=["confusion.diagonal() holds the correct answers of each class; sum(dim=0) adds up each column (the "
                "predictions of a class), sum(dim=1) each row (its true samples)",
                "a total of 0 comes with 0 correct answers: dividing by the total clamped to at least 1 gives 0 "
                "there instead of nan"],
)


# ---------------------------------------------------------------- 08.4 the most confident mistakes

HINT_4 = ("section 6 (The most confidently wrong photos): the mistakes are where the predicted class differs "
          "from the label; sort them by the probability of the predicted class")


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
        try:
            got = call(most_confident_mistakes, probs, labels, k, hint=HINT_4)
        except RuntimeError as err:
            if "selected index k out of range" in str(err) or "out of range" in str(err) and "k" in str(err):
                raise Mistake(f"for {size} samples and k = {k}, topk asked for more values than there are "
                              f"({err}): when there are fewer than k mistakes, ask for min(k, number of mistakes)",
                              HINT_4) from None
            if "must match the size of tensor" in str(err):
                raise Mistake(f"for {size} samples of {num_classes} classes your code compared tensors of different "
                              f"sizes ({err}): the max (or argmax) ran over dim 0, across the samples, giving one "
                              "value per class; a sample's class probabilities lie along dim=1", HINT_4) from None
            raise
        what = f"for {size} samples and k = {k}"
        if isinstance(got, torch.Tensor) and got.dtype == torch.int64 and got.dim() == 1:
            positions = confidence[wrong].argsort(descending=True)[:k]
            if got.shape == expected.shape and torch.equal(got, positions) and not torch.equal(positions, expected):
                raise Mistake(f"{what} your indices are positions among the mistakes, not in the whole batch: "
                              "index the tensor of mistake indices with the sorted order "
                              "(wrong[order])", HINT_4)
            if bool((got < size).all()) and bool((got >= 0).all()) and bool((predicted[got] == labels[got]).any()):
                raise Mistake(f"{what} your indices include samples the model got right; keep only the mistakes, "
                              "predicted != labels", HINT_4)
            if got.shape == expected.shape and torch.equal(got, expected.flip(0)) and len(expected) > 1:
                raise Mistake(f"{what} your order is reversed: the most confident mistake comes first "
                              "(descending=True)", HINT_4)
        expect_tensor(got, expected, f"the indices {what}", hint=HINT_4)
        tested.append(f"{len(expected)} of {len(wrong)} mistakes")
    return f"indices in the batch, most confident first: {', '.join(tested)} (fewer mistakes than k included)"


SOLUTION_4 = '''
def most_confident_mistakes(probs, labels, k):
    """Indices (into the batch) of at most k misclassified samples, highest predicted probability first."""
    confidence, predicted = probs.max(dim=1)                  # (N,), (N,)
    wrong = (predicted != labels).nonzero().flatten()         # indices of the mistakes
    order = confidence[wrong].argsort(descending=True)        # positions among the mistakes
    return wrong[order][:k]
'''

EX_4 = Exercise(
    id="08.4", lesson=LESSON, title="The most confidently wrong predictions", name="most_confident_mistakes",
    hint=HINT_4,
    more_hints=["probs.max(dim=1) gives each sample's confidence and predicted class; (predicted != labels)"
                ".nonzero() the indices of the mistakes",
                "sort the confidences of the mistakes with argsort(descending=True), use that order to index the "
                "tensor of mistake indices, and keep the first k"],
    statement="""
Write `most_confident_mistakes(probs, labels, k)` that returns the indices of the samples the model got
**wrong**, ordered by the probability it gave its (wrong) answer, most confident first: at most `k` of them,
all of them when there are fewer than `k` mistakes.

- **In:** `probs`, a float tensor `(N, C)` of class probabilities; `labels`, an int64 tensor `(N,)` of true
  classes; `k`, an int (it may exceed `N`).
- **Out:** an int64 tensor of shape `(min(k, number of mistakes),)` of indices into the batch (0 to N-1).
  The inputs must not change.
- **Use:** tensor operations: `max` / `argmax` over the classes, `nonzero`, `argsort` or `topk`.
- **Correct means:** equal to the exact answer on a large random batch and on a small one with fewer mistakes
  than `k` (and `k` larger than the batch).
- **Reread:** section 6, *Evaluate on the test split*.
""",
    template=template_of(SOLUTION_4),
    solution=SOLUTION_4,
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
        ('''
def most_confident_mistakes(probs, labels, k):
    confidence = probs.max(1).values.clone()
    confidence[probs.argmax(1) == labels] = -1.0
    return confidence.topk(k).indices
''', "ask for min(k, number of mistakes)"),
        (variant(SOLUTION_4, ("probs.max(dim=1)", "probs.max(dim=0)")),
         "a sample's class probabilities lie along dim=1"),
    ],
    checker=check_most_confident_mistakes,
)



# ---------------------------------------------------------------- 08.5 challenge: a head from ten photos

HINT_5 = ("section 4 (What the backbone already knows): the ImageNet head you removed tells cats from dogs without "
          "any training; section 5 (Train the new head): the head and its training")

_CLASSES = 2              # cat, dog
_GUESSING = 0.7           # below this test accuracy a cat-or-dog classifier is close to guessing (0.5)
_MEMORISED_GAP = 0.05     # training photos scored this much above the test photos: the head learnt those photos
_MEMORISED_FLOOR = 0.9    # ... and nearly all of them right (ten photos scored at random can be 0.6 by luck)
_RECIPE_EPOCHS, _RECIPE_LR, _RECIPE_BATCH = 30, 0.001, 32  # the lesson's head training, at its default parameters


def _chosen(train_labels: torch.Tensor, photos: int) -> torch.Tensor:
    """Positions in train_features of the challenge's photos: the first photos // 2 cats, then as many dogs."""
    return torch.cat([(train_labels == c).nonzero().flatten()[:photos // 2] for c in range(_CLASSES)])


def _accuracy(model: nn.Module, features: torch.Tensor, labels: torch.Tensor) -> float:
    """The share of feature vectors whose highest score is the label; Mistake for a model that cannot take them."""
    return batched_accuracy(model, features, labels, _CLASSES, HINT_5, what="a batch of stored feature vectors",
                            wanted="one score per class, cat and dog",
                            on_error="return the head, which takes the backbone's features, not a network that "
                                     "takes photos")


def _lesson_recipe(features: torch.Tensor, labels: torch.Tensor) -> nn.Module:
    """The lesson's head trained the lesson's way on these features: dropout and a fresh nn.Linear, Adam, 30 epochs."""
    from course_utils.core import training
    from course_utils.datasets import mnist
    with torch.random.fork_rng(devices=[]):  # the same baseline whatever the answer drew from the random state
        torch.manual_seed(seed())
        head = nn.Sequential(nn.Dropout(0.2), nn.Linear(features.shape[1], _CLASSES))
        optimizer = torch.optim.Adam(head.parameters(), lr=_RECIPE_LR)
        batches = mnist.TensorBatches(features, labels, _RECIPE_BATCH, shuffle=True, seed=seed())
        for _ in range(_RECIPE_EPOCHS):
            training.train_one_epoch(head, batches, nn.CrossEntropyLoss(), optimizer, torch.device("cpu"),
                                     progress=False)
    return head.eval()


def check_train_my_model(train_my_model, target: float, photos: int, train_features: torch.Tensor,
                         train_labels: torch.Tensor, test_features: torch.Tensor, test_labels: torch.Tensor) -> str:
    model, seconds = trained(train_my_model, HINT_5)
    few = _chosen(train_labels.cpu(), photos)
    few_features, few_labels = train_features[few].cpu(), train_labels[few].cpu()
    was_training = model.training
    accuracy = evaluate_in_eval_mode(model, lambda: _accuracy(model, test_features, test_labels))
    recipe_head = _lesson_recipe(few_features, few_labels)
    baseline = evaluate_in_eval_mode(recipe_head, lambda: _accuracy(recipe_head, test_features, test_labels))
    said = (f"test accuracy {accuracy:.4f} on the {len(test_labels):,} test photos it never trained on, target "
            f"{target:g}, from {len(few)} training photos")
    recipe = f"the lesson's recipe, a head from random weights, reaches {baseline:.4f} from the same photos"
    note = mode_note(was_training)
    if accuracy >= target:
        return f"{said} ({recipe}){note}; trained in {seconds:.0f} s"
    said = "your model's " + said
    seen = evaluate_in_eval_mode(model, lambda: _accuracy(model, few_features, few_labels))
    if seen >= max(accuracy + _MEMORISED_GAP, _MEMORISED_FLOOR):
        raise Mistake(f"{said}, but {seen:.4f} on those {len(few)} photos: it learnt those photos rather than cats "
                      f"and dogs ({recipe}); start from weights that already tell cats from dogs, or keep the head "
                      "closer to where it starts (fewer epochs, weight decay)", HINT_5)
    if accuracy < _GUESSING:
        raise Mistake(f"{said}: close to the 0.5 of guessing between two classes; was it trained (an optimizer "
                      "step after backward, on this head's parameters)?", HINT_5)
    raise Mistake(f"{said}, missed by {target - accuracy:.4f}{note}; {recipe}. The levers: where the head's "
                  "weights start (the removed ImageNet head knows cats and dogs, section 4), the epochs and "
                  "learning rate, weight decay, and features of flipped photos", HINT_5)


def _made_up_features(dims: int = 1280, train: int = 40, test: int = 1000, noise: float = 0.75):
    """Stand-ins for the lesson's stored features, for the rules, which run without the photos: 1,280 values near 1
    per vector, the first 64 a little higher for dogs and lower for cats. A fresh head guesses (all vectors share
    their large mean), the class means of ten vectors score about 0.98, their nearest neighbour about 0.83."""
    generator = torch.Generator().manual_seed(8)

    def draw(count: int) -> tuple[torch.Tensor, torch.Tensor]:
        labels = (torch.arange(count) % _CLASSES)[torch.randperm(count, generator=generator)]
        features = 1.0 + noise * torch.randn(count, dims, generator=generator)
        features[:, :64] += (2 * labels[:, None] - 1) * 0.5
        return features.clamp(0, 6), labels

    (train_features, train_labels), (test_features, test_labels) = draw(train), draw(test)
    return {"train_features": train_features, "train_labels": train_labels, "test_features": test_features,
            "test_labels": test_labels}


SOLUTION_5 = """
def train_my_model():
    \"\"\"Train a head (features (batch, 1280) -> logits (batch, 2)) on the challenge's photos only; return it.\"\"\"
    few = torch.cat([(train_labels == c).nonzero().flatten()[:challenge_photos // 2] for c in (0, 1)])
    head = nn.Sequential(nn.Dropout(0.2), nn.Linear(backbones.LITE0_FEATURES, 2)).to(device)
    with torch.no_grad():  # start from what ImageNet's head knows: its cat rows averaged, and its dog rows
        for row, classes in enumerate((cat_classes, dog_classes)):  # row 0 cat, row 1 dog, as class_names
            head[1].weight[row] = imagenet_head.weight[classes].mean(dim=0)
            head[1].bias[row] = imagenet_head.bias[classes].mean()
    optimizer = torch.optim.Adam(head.parameters(), lr=lr)
    batches = mnist.TensorBatches(train_features[few].to(device), train_labels[few].to(device), batch_size,
                                  shuffle=True, seed=seed)
    for _ in range(num_epochs):  # then the lesson's training, on ten photos
        training.train_one_epoch(head, batches, nn.CrossEntropyLoss(), optimizer, device)
    return head
"""

_RULES_DATA = "from course_utils.exercises.lesson_08 import EX_5  # the rules' made-up features\n" \
    "train_features, train_labels = EX_5.rule_settings['train_features'], EX_5.rule_settings['train_labels']\n" \
    "few = torch.cat([(train_labels == c).nonzero().flatten()[:5] for c in (0, 1)])\n"

# remembers its ten training vectors and answers with the nearest one's label
_MEMORISED = _RULES_DATA + """
class Nearest(nn.Module):
    def __init__(self, features, labels):
        super().__init__()
        self.register_buffer("features", features)
        self.register_buffer("labels", labels)

    def forward(self, x):
        return F.one_hot(self.labels[torch.cdist(x, self.features).argmin(dim=1)], 2).float()

def train_my_model():
    return Nearest(train_features[few], train_labels[few])
"""

# scores each class by closeness to its mean vector: a real classifier, but short of the rules' target
_CLASS_MEANS = _RULES_DATA + """
def train_my_model():
    means = torch.stack([train_features[few][train_labels[few] == c].mean(0) for c in (0, 1)])
    head = nn.Linear(1280, 2)
    with torch.no_grad():
        head.weight.copy_(means)
        head.bias.copy_(-0.5 * (means ** 2).sum(1))   # -|x - mean|^2 / 2, less the same |x|^2 / 2
    return head
"""

EX_5 = Exercise(
    id="08.5", lesson=LESSON, title="Challenge: a head from ten photos", name="train_my_model",
    hint=HINT_5,
    more_hints=["ten photos cannot set a fresh head's 2,562 weights well: from random weights the lesson's training "
                "learns those photos more than cats and dogs. Start from weights that already separate cats from "
                "dogs, and let the lesson's training adjust them",
                "imagenet_head.weight holds one row of 1,280 weights per ImageNet class: the mean of its rows for "
                "cat_classes makes a cat row, for dog_classes a dog row (the biases likewise); copy them into the "
                "new nn.Linear(1280, 2) under torch.no_grad() before training it as in section 5"],
    statement="""
This lesson's head reached 0.991 test accuracy from 320 training photos. Labelled photos are often scarce:
write `train_my_model()`, which trains a cat-vs-dog head on the stored features of only `challenge_photos`
(10) training photos, 5 cats and 5 dogs, and returns it. Trained the lesson's way, from random weights, a head
reaches about 0.96 from these photos (the check measures it). Your choices: where the head's weights start,
the epochs, the learning rate, regularisation.

- **In:** nothing; train only on `train_features[few]` and `train_labels[few]`, where
  `few = torch.cat([(train_labels == c).nonzero().flatten()[:challenge_photos // 2] for c in (0, 1)])`;
  the lesson's `imagenet_head`, `cat_classes`, `dog_classes`, `device`, `mnist.TensorBatches` and `training`
  are yours to use.
- **Out:** the trained head, an `nn.Module`: features `(batch, 1280)` -> scores `(batch, 2)` (cat, dog).
- **Use:** anything in PyTorch; never the test photos, nor other training photos.
- **Correct means:** on the stored features of the 2,000 test photos, which it never trained on, evaluated in
  eval mode, accuracy at least `challenge_target` (0.975).
- **Reread:** section 4, *What the backbone already knows*, and section 5, *Train the new head, then fine-tune*.
""",
    template=template_of(SOLUTION_5),
    solution=SOLUTION_5,
    wrong_answers=[
        ("def train_my_model():\n    return nn.Linear(1280, 2)\n", "close to the 0.5 of guessing"),
        ("def train_my_model():\n    return nn.Linear(1280, 1)\n", "one score per class"),
        ("def train_my_model():\n    model = nn.Linear(1280, 2)\n", "forget `return model`"),
        ("def train_my_model():  # a network that takes photos, not the head\n"
         "    return nn.Sequential(nn.Conv2d(3, 8, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 2))\n",
         "not a network that takes photos"),
        ("def train_my_model():\n    head = nn.Linear(1280, 2)\n    nn.init.constant_(head.bias, float('nan'))\n"
         "    return head\n", "nan or inf"),
        (_MEMORISED, "it learnt those photos rather than cats and dogs"),
        (_CLASS_MEANS, "missed by"),
    ],
    checker=check_train_my_model,
    challenge=True,
    settings={"target": "challenge_target", "photos": "challenge_photos", "train_features": "train_features",
              "train_labels": "train_labels", "test_features": "test_features", "test_labels": "test_labels"},
    rule_settings={"target": 0.99, "photos": 10, **_made_up_features()},
)

EXERCISES = [EX_1, EX_2, EX_3, EX_4, EX_5]
