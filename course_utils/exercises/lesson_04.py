"""Exercises for lesson 04 (Fashion-MNIST): accuracy of a batch, the classifier as an nn.Module, per-class accuracy."""

from __future__ import annotations

import torch
from torch import nn

from course_utils.exercises.framework import (
    Exercise,
    Mistake,
    call,
    describe,
    distinct_sizes,
    expect_subclass,
    expect_tensor,
    generator,
    randint,
    template_of,
    variant,
)

LESSON = "04_fashion_mnist"


def labelled_logits(gen: torch.Generator, batch: int, classes: int, labels: torch.Tensor | None = None):
    """Random logits (batch, classes) and labels (batch,) where about half the predictions are right."""
    if labels is None:
        labels = torch.randint(0, classes, (batch,), generator=gen)
    logits = torch.randn(batch, classes, generator=gen)
    helped = torch.rand(batch, generator=gen) < 0.5
    logits[torch.arange(batch)[helped], labels[helped]] += 3.0  # make those rows' correct class win
    return logits, labels


# ---------------------------------------------------------------- 04.1 accuracy

HINT_1 = ("section 4 (Inference) and lesson 03 section 5: the predicted class is logits.argmax(dim=1); "
          "accuracy is the share of predictions equal to the labels, a number between 0 and 1")


def check_accuracy(accuracy) -> str:
    gen = generator("04.1")
    batch, classes = distinct_sizes(gen, 2, 3, 20)
    tested = []
    for size in (batch, 1):
        logits, labels = labelled_logits(gen, size, classes)
        expected = (logits.argmax(dim=1) == labels).float().mean().item()
        got = call(accuracy, logits, labels, hint=HINT_1)
        if isinstance(got, torch.Tensor):
            raise Mistake(f"accuracy returned {describe(got)}: return a Python float (.item())", HINT_1)
        if not isinstance(got, (int, float)) or isinstance(got, bool):
            raise Mistake(f"accuracy returned {describe(got)}, expected a float between 0 and 1", HINT_1)
        if abs(got - expected) > 1e-6:
            raise Mistake(f"for {size} samples and {classes} classes your accuracy is {got}, expected {expected:.6g}"
                          + (" (a count, not a share?)" if got > 1 else ""), HINT_1)
        tested.append(size)
    return f"a batch of {tested[0]} samples and a batch of 1, {classes} classes"


SOLUTION_04_1 = '''
def accuracy(logits, labels):
    """logits: (batch, classes), labels: (batch,) -> share of correct predictions, a float in [0, 1]."""
    predictions = logits.argmax(dim=1)                 # (batch,)
    return (predictions == labels).float().mean().item()
'''

EX_1 = Exercise(
    id="04.1", lesson=LESSON, title="Accuracy of a batch", name="accuracy",
    statement="""
Write `accuracy(logits, labels)` for logits of shape `(batch, classes)` and labels of shape `(batch,)`
(int64) that returns, as a Python `float`, the share of samples whose highest logit is their label
(between 0 and 1). The inputs must not change.

Correct means: within 1e-6 of the exact share, for a batch of many and a batch of one. See section 4,
*Inference*.
""",
    template=template_of(SOLUTION_04_1),
    solution=SOLUTION_04_1,
    alternatives=['''
def accuracy(logits, labels):
    correct = (logits.max(1).indices == labels).sum().item()
    return correct / len(labels)
'''],
    wrong_answers=[
        ("def accuracy(logits, labels):\n    return (logits.argmax(dim=1) == labels).sum().item()\n",
         "a count, not a share"),
        ("def accuracy(logits, labels):\n    return (logits.argmax(dim=1) == labels).float().mean()\n",
         "return a Python float"),
        ("def accuracy(logits, labels):\n    return (logits.argmax() == labels).float().mean().item()\n",
         "your accuracy is"),
    ],
    checker=check_accuracy, hint=HINT_1,
)


# ---------------------------------------------------------------- 04.2 the classifier as an nn.Module

HINT_2 = ("section 2 (The network): nn.Flatten, then per hidden size nn.Linear, nn.ReLU and nn.Dropout, then "
          "the output nn.Linear with nothing after it (logits); forward must use every layer")


def check_mlp(MLP) -> str:
    gen = generator("04.2")
    tested = []
    for depth in (2, 1):
        side = randint(gen, 2, 5)
        input_size, num_classes = side * side, randint(gen, 3, 7)
        hidden_sizes = distinct_sizes(gen, depth, 8, 20)
        what = f"MLP(input_size={input_size}, hidden_sizes={hidden_sizes}, num_classes={num_classes}, dropout=0.5)"
        expect_subclass(MLP, nn.Module, "MLP", HINT_2, base_name="nn.Module")
        model = MLP(input_size=input_size, hidden_sizes=list(hidden_sizes), num_classes=num_classes, dropout=0.5)
        linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
        sizes = [(m.in_features, m.out_features) for m in linears]
        widths = [input_size, *hidden_sizes, num_classes]
        wanted = list(zip(widths[:-1], widths[1:]))
        if sizes != wanted:
            raise Mistake(f"{what} has linear layers {sizes} (in, out), expected {wanted}", HINT_2)
        drops = [m.p for m in model.modules() if isinstance(m, nn.Dropout)]
        if drops != [0.5] * depth:
            raise Mistake(f"{what} has dropout layers with p = {drops}, expected one per hidden layer: "
                          f"{[0.5] * depth}", HINT_2)
        images = torch.randn(randint(gen, 2, 5), 1, side, side, generator=gen)  # (batch, 1, side, side)
        with torch.no_grad():
            x = images.flatten(start_dim=1)
            for layer in linears[:-1]:
                x = torch.relu(layer(x))
            expected = linears[-1](x)                                          # (batch, num_classes) logits
            model.eval()
            logits = model(images)
            if isinstance(logits, torch.Tensor) and logits.shape == expected.shape:
                if torch.allclose(logits, torch.relu(expected), atol=1e-6) and bool((expected < 0).any()):
                    raise Mistake("your network puts an activation after the output layer: return the raw logits",
                                  HINT_2)
                if torch.allclose(logits, expected.softmax(dim=1), atol=1e-6) or \
                        torch.allclose(logits, expected.log_softmax(dim=1), atol=1e-6):
                    raise Mistake("your network returns (log-)probabilities: return the raw logits; "
                                  "nn.CrossEntropyLoss applies log-softmax itself", HINT_2)
            expect_tensor(logits, expected, f"{what} in eval mode on images {tuple(images.shape)}", hint=HINT_2)
            one = model(images[:1])
            expect_tensor(one, expected[:1], f"{what} on a batch of one image", hint=HINT_2)
            model.train()
            if torch.equal(model(images), model(images)):
                raise Mistake(f"{what} gives the same output twice in training mode: forward does not apply its "
                              "dropout layers", HINT_2)
        tested.append(str(hidden_sizes))
    return f"layer sizes, dropout, logits in eval mode (also for one image) and random training outputs for " \
           f"hidden sizes {' and '.join(tested)}"


SOLUTION_04_2 = '''
class MLP(nn.Module):
    """Flatten, (Linear, ReLU, Dropout) per hidden size, Linear: (batch, 1, h, w) -> (batch, num_classes) logits."""

    def __init__(self, input_size, hidden_sizes, num_classes, dropout):
        super().__init__()
        layers, width = [nn.Flatten()], input_size      # (batch, 1, h, w) -> (batch, input_size)
        for hidden in hidden_sizes:
            layers += [nn.Linear(width, hidden), nn.ReLU(), nn.Dropout(dropout)]
            width = hidden
        layers.append(nn.Linear(width, num_classes))    # (batch, num_classes) logits
        self.net = nn.Sequential(*layers)

    def forward(self, x):
        return self.net(x)
'''

ALTERNATIVE_04_2 = '''
class MLP(nn.Module):
    def __init__(self, input_size, hidden_sizes, num_classes, dropout):
        super().__init__()
        widths = [input_size, *hidden_sizes]
        self.hidden = nn.ModuleList(nn.Linear(a, b) for a, b in zip(widths[:-1], widths[1:]))
        self.output = nn.Linear(widths[-1], num_classes)
        self.drops = nn.ModuleList(nn.Dropout(dropout) for _ in hidden_sizes)

    def forward(self, x):
        x = x.view(x.shape[0], -1)
        for layer, drop in zip(self.hidden, self.drops):
            x = drop(F.relu(layer(x)))
        return self.output(x)
'''

EX_2 = Exercise(
    id="04.2", lesson=LESSON, title="The classifier as an nn.Module", name="MLP",
    statement="""
Write a class `MLP(nn.Module)` with `__init__(self, input_size, hidden_sizes, num_classes, dropout)` and
`forward(self, x)`, for any number of hidden layers: `x` of shape `(batch, 1, h, w)` (with
`h * w == input_size`) is flattened, goes through one `nn.Linear` + ReLU + `nn.Dropout(dropout)` per entry
of `hidden_sizes`, then an output `nn.Linear` to `num_classes`, and `forward` returns the **logits**
`(batch, num_classes)` (no softmax, no activation at the end).

Correct means: linear layers of the right sizes in order, one dropout layer with `p = dropout` per hidden
layer, outputs in eval mode within 1e-5 of that computation (also for a batch of one), and random outputs
in training mode. See section 2, *The network*.
""",
    template='''
class MLP(nn.Module):
    """Flatten, (Linear, ReLU, Dropout) per hidden size, Linear: (batch, 1, h, w) -> (batch, num_classes) logits."""

    def __init__(self, input_size, hidden_sizes, num_classes, dropout):
        super().__init__()
        raise NotImplementedError  # your code here

    def forward(self, x):
        raise NotImplementedError  # your code here
''',
    solution=SOLUTION_04_2,
    alternatives=[ALTERNATIVE_04_2],
    wrong_answers=[
        (variant(SOLUTION_04_2,
            ('layers.append(nn.Linear(width, num_classes))', 'layers += [nn.Linear(width, num_classes), nn.ReLU()]'),
        ), "an activation after the output layer"),
        (variant(ALTERNATIVE_04_2,
                 ('for layer, drop in zip(self.hidden, self.drops):\n            x = drop(F.relu(layer(x)))',
                  'for layer in self.hidden:\n            x = F.relu(layer(x))')),
         "does not apply its dropout layers"),
        (variant(SOLUTION_04_2,
            ('layers.append(nn.Linear(width, num_classes))',
             'layers += [nn.Linear(width, num_classes), nn.Softmax(dim=1)]'),
        ), "returns (log-)probabilities"),
        ('''
class MLP(nn.Module):
    def __init__(self, input_size, hidden_sizes, num_classes, dropout):
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(input_size, hidden_sizes[0]), nn.ReLU(),
                                 nn.Dropout(dropout), nn.Linear(hidden_sizes[0], num_classes))

    def forward(self, x):
        return self.net(x)
''', "has linear layers"),
    ],
    checker=check_mlp, hint=HINT_2,
)


# ---------------------------------------------------------------- 04.3 accuracy per class

HINT_3 = ("section 4 (Inference), and torch.bincount(values, minlength=num_classes), which counts how often "
          "each class index occurs; a class's accuracy is (its correct predictions) / (its samples)")


def check_per_class_accuracy(per_class_accuracy) -> str:
    gen = generator("04.3")
    num_classes = randint(gen, 4, 8)
    batch = randint(gen, 30, 60)
    absent = randint(gen, 0, num_classes - 3)
    # every class but `absent` and the last occurs; those two have no sample, so their accuracy is undefined (nan)
    present = torch.tensor([c for c in range(num_classes - 1) if c != absent])
    labels = present[torch.randint(0, len(present), (batch,), generator=gen)]
    logits, labels = labelled_logits(gen, batch, num_classes, labels)
    predictions = logits.argmax(dim=1)
    counts = torch.bincount(labels, minlength=num_classes).float()
    correct = torch.bincount(labels[predictions == labels], minlength=num_classes).float()
    expected = correct / counts                                  # (num_classes,), nan where counts == 0
    got = call(per_class_accuracy, logits, labels, num_classes, hint=HINT_3)
    if isinstance(got, torch.Tensor) and got.shape == expected.shape:
        by_prediction = correct / torch.bincount(predictions, minlength=num_classes).float()
        if torch.allclose(got, by_prediction, equal_nan=True) and not torch.allclose(got, expected, equal_nan=True):
            raise Mistake("you divided by how often each class was *predicted* (that is precision); divide by how "
                          "often it is the *label*", HINT_3)
    expect_tensor(got, expected, f"per_class_accuracy for {batch} samples of {num_classes} classes (classes "
                  f"{absent} and {num_classes - 1} absent)", atol=1e-6, equal_nan=True, hint=HINT_3)
    return f"{batch} samples, {num_classes} classes, two of them absent (nan)"


SOLUTION_04_3 = '''
def per_class_accuracy(logits, labels, num_classes):
    """logits: (batch, num_classes), labels: (batch,) -> (num_classes,) share correct per true class (nan if absent)."""
    predictions = logits.argmax(dim=1)                                          # (batch,)
    samples = torch.bincount(labels, minlength=num_classes)                     # (num_classes,)
    correct = torch.bincount(labels[predictions == labels], minlength=num_classes)
    return correct.float() / samples.float()                                    # 0 / 0 gives nan
'''

EX_3 = Exercise(
    id="04.3", lesson=LESSON, title="Accuracy per class", name="per_class_accuracy",
    statement="""
Fashion-MNIST's overall accuracy hides that some classes (shirts) are much harder than others. Write
`per_class_accuracy(logits, labels, num_classes)` for logits `(batch, num_classes)` and labels `(batch,)`
(int64) that returns a float32 tensor of shape `(num_classes,)`: entry `c` is the share of the samples
**labelled** `c` that were predicted as `c`. A class with no sample in the batch gets `nan` (0 / 0). No
Python loop over the samples (`torch.bincount` helps); the inputs must not change.

Correct means: within 1e-6 of the exact shares, `nan` exactly where a class has no sample, including the
last class. See section 4, *Inference*.
""",
    template=template_of(SOLUTION_04_3),
    solution=SOLUTION_04_3,
    alternatives=['''
def per_class_accuracy(logits, labels, num_classes):
    hits = (logits.argmax(1) == labels).float()                                  # (batch,)
    one_hot = F.one_hot(labels, num_classes).float()                             # (batch, num_classes)
    return (one_hot * hits[:, None]).sum(0) / one_hot.sum(0)
'''],
    wrong_answers=[
        ("def per_class_accuracy(logits, labels, num_classes):\n    predictions = logits.argmax(dim=1)\n"
         "    correct = torch.bincount(labels[predictions == labels])\n"
         "    return correct.float() / torch.bincount(labels).float()\n", "has shape"),
        ("def per_class_accuracy(logits, labels, num_classes):\n    predictions = logits.argmax(dim=1)\n"
         "    correct = torch.bincount(labels[predictions == labels], minlength=num_classes).float()\n"
         "    return correct / torch.bincount(predictions, minlength=num_classes).float()\n", "precision"),
        ("def per_class_accuracy(logits, labels, num_classes):\n    predictions = logits.argmax(dim=1)\n"
         "    correct = torch.bincount(labels[predictions == labels], minlength=num_classes).float()\n"
         "    return correct / torch.bincount(labels, minlength=num_classes).clamp(min=1).float()\n",
         "expected nan"),
    ],
    checker=check_per_class_accuracy, hint=HINT_3,
)

EXERCISES = [EX_1, EX_2, EX_3]
