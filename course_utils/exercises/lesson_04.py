"""Exercises for lesson 04 (Fashion-MNIST): accuracy of the confident predictions, a classifier that also returns
its features, accuracy per class."""

from __future__ import annotations

import torch
from torch import nn

from course_utils.exercises.challenges import image_wrong_answers, trained_image_classifier
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


def _labelled_logits(gen: torch.Generator, batch: int, classes: int, labels: torch.Tensor | None = None):
    """Random logits (batch, classes) and labels (batch,) where about half the predictions are right."""
    if labels is None:
        labels = torch.randint(0, classes, (batch,), generator=gen)
    logits = torch.randn(batch, classes, generator=gen)
    helped = torch.rand(batch, generator=gen) < 0.5
    logits[torch.arange(batch)[helped], labels[helped]] += 3.0  # make those rows' correct class win
    return logits, labels


# ---- 04.1 Accuracy of the confident predictions

HINT_1 = "section 4 (Inference): probabilities from softmax, and the predicted class as the most likely one"


def _share(hits: torch.Tensor) -> float:
    return hits.float().mean().item() if hits.numel() else float("nan")


def _confident(logits, labels, min_prob, softmax_dim=1, max_dim=1) -> float:
    """The accuracy over the samples whose top probability reaches min_prob (other dims: the usual mistakes)."""
    top, predictions = torch.softmax(logits, dim=softmax_dim).max(dim=max_dim)
    sure = top >= min_prob
    return _share(predictions[sure] == labels[sure])


def _broadcast_table(logits, labels, min_prob) -> float:
    """What predictions of shape (k, 1) compared with labels (k,) give: the share of a (k, k) table."""
    top, predictions = torch.softmax(logits, dim=1).max(dim=1)
    sure = top >= min_prob
    return _share(predictions[sure][:, None] == labels[sure])


def _square_case(gen: torch.Generator, classes: int):
    """As many samples as classes (argmax over the wrong dim runs silently), drawn so that every usual mistake
    gives another number than the right one and than each other."""
    for _ in range(1000):
        logits, labels = _labelled_logits(gen, classes, classes)
        right = _confident(logits, labels, 0.3)
        mistakes = [_confident(logits, labels, 0.3, s, m) for s, m in ((0, 0), (0, 1), (1, 0))]
        mistakes += [_broadcast_table(logits, labels, 0.3), _share(logits.argmax(dim=1) == labels)]
        values = [right, *(m for m in mistakes if m == m)]  # nan (no sure sample) matches nothing
        if right == right and all(abs(a - b) > 1e-6 for i, a in enumerate(values) for b in values[:i]):
            return logits, labels
    raise AssertionError("no square case separates the mistakes")  # cannot happen for random draws


def _tie_case(gen: torch.Generator, classes: int):
    """Fixed rows for min_prob 0.5: a sure right one, a sure wrong one, one whose top probability is exactly 0.5
    (right), and unsure rows that are wrong: '>=' gives 2/3, '>' gives 1/2, all samples give 2/(3 + unsure)."""
    unsure = randint(gen, 2, 4)
    logits = torch.randn(3 + unsure, classes, generator=gen) * 0.05  # unsure rows: probabilities near 1/classes
    labels = torch.randint(0, classes, (3 + unsure,), generator=gen)
    logits[0, labels[0]] += 6.0                                       # sure and right
    labels[1] = (logits[1].argmax() + 1) % classes
    logits[1, (labels[1] + 1) % classes] += 6.0                       # sure and wrong
    logits[2] = -1e4
    logits[2, :2] = 0.0  # two equal top classes: exactly 0.5 each, by softmax or exp(logits - logsumexp) alike
    labels[2] = 0                                                     # argmax takes the first of equal values
    rest = torch.arange(3, 3 + unsure)
    labels[rest] = logits[rest].argmin(dim=1)                         # unsure and wrong
    return logits, labels


def check_confident_accuracy(confident_accuracy) -> str:
    gen = generator("04.1")
    classes = randint(gen, 3, 6)
    batch = randint(gen, 12, 20)
    side = randint(gen, 8, 12)
    square, ties = _square_case(gen, side), _tie_case(gen, classes)
    random_logits, random_labels = _labelled_logits(gen, batch, classes)
    random_logits[0, random_labels[0]] += 10.0  # at least one sure sample
    cases = [(f"a square batch ({side} samples, {side} classes), min_prob 0.3", *square, 0.3),
             ("a batch with a sample whose top probability is exactly min_prob 0.5", *ties, 0.5),
             (f"{batch} samples, min_prob 0.4", random_logits, random_labels, 0.4)]
    for what, logits, labels, min_prob in cases:
        expected = _confident(logits, labels, min_prob)
        got = call(confident_accuracy, logits, labels, min_prob, hint=HINT_1)
        if isinstance(got, torch.Tensor):
            raise Mistake(f"for {what} you returned {describe(got)}: return a Python float (.item())", HINT_1)
        if not isinstance(got, float):
            raise Mistake(f"for {what} you returned {describe(got)}, expected a Python float", HINT_1)
        if abs(got - expected) <= 1e-6:
            continue
        if logits is ties[0] and abs(got - 0.5) <= 1e-6:
            raise Mistake(f"for {what} your accuracy is {got:.4f}, expected {expected:.4f}: the sample whose top "
                          "probability equals min_prob was left out; 'at least min_prob' includes it (>=)", HINT_1)
        if any(abs(got - _confident(logits, labels, min_prob, s, m)) <= 1e-6 for s, m in ((0, 0), (0, 1), (1, 0))):
            raise Mistake(f"for {what} your accuracy is {got:.4f}, expected {expected:.4f}: a softmax or a max over "
                          "dim=0 works across the samples; a sample's classes run along dim=1", HINT_1)
        if abs(got - _broadcast_table(logits, labels, min_prob)) <= 1e-6:
            raise Mistake(f"for {what} your accuracy is {got:.4f}, expected {expected:.4f}: predictions of shape "
                          "(k, 1) (keepdim=True) compared with labels of shape (k,) broadcast to a (k, k) table "
                          "(lesson 01's trap); compare two (k,) tensors", HINT_1)
        if abs(got - _share(logits.argmax(dim=1) == labels)) <= 1e-6:
            raise Mistake(f"for {what} your accuracy is {got:.4f}, expected {expected:.4f}: you counted every "
                          "sample; only those whose top probability is at least min_prob count", HINT_1)
        raise Mistake(f"for {what} your accuracy is {got:.6g}, expected {expected:.6g}", HINT_1)
    return (f"a square batch of {side}, then {classes} classes: a top probability exactly at min_prob, and {batch} "
            "random samples")


SOLUTION_1 = '''
def confident_accuracy(logits, labels, min_prob):
    """logits: (batch, classes), labels: (batch,) -> accuracy over the samples whose top probability >= min_prob."""
    probs = torch.softmax(logits, dim=1)               # (batch, classes)
    top, predictions = probs.max(dim=1)                # (batch,) each: the largest probability and its class
    sure = top >= min_prob                             # the samples the model is sure enough about
    return (predictions[sure] == labels[sure]).float().mean().item()
'''

EX_1 = Exercise(
    id="04.1", lesson=LESSON, title="Accuracy of the confident predictions", name="confident_accuracy",
    hint=HINT_1,
    more_hints=["`probs.max(dim=1)` gives each sample's largest probability and its class; a boolean mask "
                "`top >= min_prob` then picks the samples that count",
                "index both the predictions and the labels with the same mask, so that both stay of shape (k,)"],
    statement="""
A classifier can abstain when it is unsure. Write `confident_accuracy(logits, labels, min_prob)` that returns
the accuracy over the samples whose most likely class has a probability of **at least** `min_prob`: the
share of those samples whose predicted class is their label. The others do not count.

- **In:** `logits`, a float32 tensor `(batch, classes)`; `labels`, an int64 tensor `(batch,)`; `min_prob`, a
  Python float in (0, 1). At least one sample reaches `min_prob`.
- **Out:** a Python `float` between 0 and 1; the inputs must not change.
- **Use:** `torch.softmax` over the classes, `max` along a dim and a boolean mask (lesson 01, section 2).
- **Correct means:** within 1e-6 of the exact share on a batch with as many samples as classes, on a batch with
  a sample whose top probability is exactly `min_prob` (it counts), and on a random batch.
- **Reread:** section 4, *Inference*.
""",
    template=template_of(SOLUTION_1),
    solution=SOLUTION_1,
    checker=check_confident_accuracy,
    alternatives=['''
def confident_accuracy(logits, labels, min_prob):
    probs = logits.softmax(1)
    sure = probs.amax(1) >= min_prob
    hits = probs.argmax(1) == labels
    return hits[sure].sum().item() / sure.sum().item()
'''],
    wrong_answers=[
        (variant(SOLUTION_1, ("top >= min_prob", "top > min_prob")), "equals min_prob was left out"),
        (variant(SOLUTION_1, ("probs.max(dim=1)", "probs.max(dim=0)")), "over dim=0"),
        (variant(SOLUTION_1, ("torch.softmax(logits, dim=1)", "torch.softmax(logits, dim=0)")), "over dim=0"),
        ("def confident_accuracy(logits, labels, min_prob):\n    probs = torch.softmax(logits, dim=1)\n"
         "    sure = probs.max(dim=1).values >= min_prob\n    predictions = probs.argmax(dim=1, keepdim=True)\n"
         "    return (predictions[sure] == labels[sure]).float().mean().item()\n", "broadcast to a (k, k) table"),
        (variant(SOLUTION_1, ("(predictions[sure] == labels[sure])", "(predictions == labels)")),
         "you counted every sample"),
        (variant(SOLUTION_1, (".mean().item()", ".mean()")), "return a Python float"),
    ],
)


# ---- 04.2 A classifier that also returns its features

HINT_2 = "section 2 (The network): a network as an nn.Module, its hidden layers and dropout"


def _widths_chain(linears: list[nn.Linear], input_size: int) -> list[nn.Linear]:
    """The linear layers in the order data flows through them (every width differs, so the order is unique)."""
    chain, width, left = [], input_size, list(linears)
    while left:
        step = next((m for m in left if m.in_features == width), None)
        if step is None:
            break
        chain.append(step)
        left.remove(step)
        width = step.out_features
    return chain


def check_classifier_with_features(ClassifierWithFeatures) -> str:
    gen = generator("04.2")
    tested = []
    for depth in (2, 1, 3):
        side = randint(gen, 2, 5)
        input_size, num_classes = side * side, randint(gen, 3, 7)
        hidden_sizes = distinct_sizes(gen, depth, 26, 40)  # no width equals another, the input's or the output's
        what = (f"ClassifierWithFeatures(input_size={input_size}, hidden_sizes={hidden_sizes}, "
                f"num_classes={num_classes}, dropout=0.5)")
        expect_subclass(ClassifierWithFeatures, nn.Module, "ClassifierWithFeatures", HINT_2,
                        base_name="nn.Module")
        model = ClassifierWithFeatures(input_size=input_size, hidden_sizes=list(hidden_sizes), num_classes=num_classes,
                           dropout=0.5)
        widths = [input_size, *hidden_sizes, num_classes]
        wanted = list(zip(widths[:-1], widths[1:]))
        chain = _widths_chain([m for m in model.modules() if isinstance(m, nn.Linear)], input_size)
        sizes = sorted((m.in_features, m.out_features) for m in model.modules() if isinstance(m, nn.Linear))
        if sizes != sorted(wanted) or len(chain) != len(wanted):
            raise Mistake(f"{what} has linear layers {sizes} (in, out), expected {wanted}", HINT_2)
        drops = [m.p for m in model.modules() if isinstance(m, nn.Dropout)]
        if drops != [0.5] * depth:
            raise Mistake(f"{what} has dropout layers with p = {drops}, expected one per hidden layer: "
                          f"{[0.5] * depth}", HINT_2)
        images = torch.randn(randint(gen, 2, 5), 1, side, side, generator=gen)  # (batch, 1, side, side)
        with torch.no_grad():
            x, activations = images.flatten(start_dim=1), []
            for layer in chain[:-1]:
                x = torch.relu(layer(x))
                activations.append(x)
            expected = chain[-1](x)                                            # (batch, num_classes) logits
            model.eval()
            out = model(images)
            if not isinstance(out, tuple) or len(out) != 2:
                raise Mistake(f"{what} returned {describe(out)}: forward should return a pair (logits, features)",
                              HINT_2)
            logits, features = out
            if isinstance(features, torch.Tensor) and features.shape != activations[-1].shape and \
                    any(features.shape == a.shape for a in activations[:-1]):
                raise Mistake(f"{what}: your features have shape {tuple(features.shape)}, an earlier hidden "
                              f"layer's; the features are the last hidden layer's, shape "
                              f"{tuple(activations[-1].shape)}", HINT_2)
            if isinstance(logits, torch.Tensor) and logits.shape == expected.shape and \
                    torch.allclose(logits, torch.relu(expected), atol=1e-6) and bool((expected < 0).any()):
                raise Mistake("your network puts an activation after the output layer: return the raw logits",
                              HINT_2)
            expect_tensor(logits, expected, f"the logits of {what} in eval mode on images {tuple(images.shape)}",
                          hint=HINT_2)
            expect_tensor(features, activations[-1], f"the features of {what} in eval mode", hint=HINT_2)
            one, _ = model(images[:1])
            expect_tensor(one, expected[:1], f"the logits of {what} for a batch of one image", hint=HINT_2)
            model.train()
            (first, first_features), (second, second_features) = model(images), model(images)
            if torch.equal(first, second):
                raise Mistake(f"{what} gives the same logits twice in training mode: forward does not apply its "
                              "dropout layers", HINT_2)
            if depth == 1 and not torch.equal(first_features, second_features):
                raise Mistake(f"{what} with one hidden layer gives other features in each call in training mode: "
                              "they went through dropout; take them after the ReLU, before the dropout", HINT_2)
        tested.append(str(hidden_sizes))
    return (f"layer sizes, dropout, logits and last-layer features in eval mode (also for one image), random "
            f"logits but steady features in training mode, for hidden sizes {', '.join(tested)}")


SOLUTION_2 = '''
class ClassifierWithFeatures(nn.Module):
    """(batch, 1, h, w) -> (logits (batch, num_classes), features (batch, hidden_sizes[-1]))."""

    def __init__(self, input_size, hidden_sizes, num_classes, dropout):
        super().__init__()
        widths = [input_size, *hidden_sizes]
        blocks = [nn.Flatten()]                                 # (batch, 1, h, w) -> (batch, input_size)
        for i in range(len(hidden_sizes)):
            if i > 0:
                blocks.append(nn.Dropout(dropout))              # after every hidden layer but the last one...
            blocks += [nn.Linear(widths[i], widths[i + 1]), nn.ReLU()]
        self.body = nn.Sequential(*blocks)
        self.last_dropout = nn.Dropout(dropout)                 # ... whose dropout comes after the features
        self.head = nn.Linear(widths[-1], num_classes)

    def forward(self, x):
        features = self.body(x)                                 # (batch, hidden_sizes[-1])
        return self.head(self.last_dropout(features)), features
'''

_ALTERNATIVE_2 = '''
class ClassifierWithFeatures(nn.Module):
    def __init__(self, input_size, hidden_sizes, num_classes, dropout):
        super().__init__()
        self.layers = nn.Sequential()
        width = input_size
        for hidden in hidden_sizes:
            self.layers.append(nn.Linear(width, hidden))
            self.layers.append(nn.Dropout(dropout))
            width = hidden
        self.out = nn.Linear(width, num_classes)

    def forward(self, x):
        x = x.reshape(len(x), -1)
        for i in range(0, len(self.layers), 2):
            features = torch.relu(self.layers[i](x))
            x = self.layers[i + 1](features)
        return self.out(x), features
'''

EX_2 = Exercise(
    id="04.2", lesson=LESSON, title="A classifier that also returns its features", name="ClassifierWithFeatures",
    hint=HINT_2,
    more_hints=["keep the last hidden layer's ReLU output in a variable before its dropout: forward returns "
                "the output layer applied to the dropped-out features, and the features themselves",
                "an nn.Sequential of everything up to the last ReLU, then a separate nn.Dropout and output "
                "nn.Linear, makes that variable easy to get"],
    statement="""
Write a class `ClassifierWithFeatures(nn.Module)`: the lesson's kind of classifier (flatten; per hidden size an
`nn.Linear`, ReLU and `nn.Dropout(dropout)`; an output `nn.Linear`), for any number of hidden layers, whose
`forward` returns a pair `(logits, features)`: the logits, and the activations of the **last** hidden layer
after its ReLU and before its dropout, what a later lesson would plot or reuse.

- **In:** `__init__(self, input_size, hidden_sizes, num_classes, dropout)`; `forward(self, x)` with `x` of
  shape `(batch, 1, h, w)`, `h * w == input_size`.
- **Out:** `forward` returns `(logits, features)`: the logits `(batch, num_classes)` with no activation at the
  end, and the features `(batch, hidden_sizes[-1])`.
- **Use:** `nn.Module`, `nn.Sequential`, `nn.Linear`, `nn.ReLU`, `nn.Dropout`, `nn.Flatten` as in section 2.
- **Correct means:** linear layers of the right sizes, one dropout layer with `p = dropout` per hidden layer;
  in eval mode, logits and features within 1e-5 of that computation (also for a batch of one), for one, two
  and three hidden layers; in training mode, logits that change from call to call, and, with one hidden layer,
  features that do not.
- **Reread:** section 2, *The network* (and its part *Dropout*).
""",
    template='''
class ClassifierWithFeatures(nn.Module):
    """(batch, 1, h, w) -> (logits (batch, num_classes), features (batch, hidden_sizes[-1]))."""

    def __init__(self, input_size, hidden_sizes, num_classes, dropout):
        super().__init__()
        raise NotImplementedError  # your code here

    def forward(self, x):
        raise NotImplementedError  # your code here
''',
    solution=SOLUTION_2,
    checker=check_classifier_with_features,
    alternatives=[_ALTERNATIVE_2],
    wrong_answers=[
        (variant(SOLUTION_2, ("features = self.body(x)", "features = self.last_dropout(self.body(x))"),
                 ("self.head(self.last_dropout(features))", "self.head(features)")), "before the dropout"),
        (variant(_ALTERNATIVE_2, ("        return self.out(x), features",
                                  "        first = torch.relu(self.layers[0](x0))\n"
                                  "        return self.out(x), first"),
                 ("x = x.reshape(len(x), -1)", "x = x0 = x.reshape(len(x), -1)")), "an earlier hidden layer's"),
        (variant(SOLUTION_2, ("return self.head(self.last_dropout(features)), features",
                              "return torch.relu(self.head(self.last_dropout(features))), features")),
         "an activation after the output layer"),
        (variant(SOLUTION_2, ("self.head(self.last_dropout(features))", "self.head(features)")),
         "does not apply its dropout layers"),
        (variant(SOLUTION_2, ("return self.head(self.last_dropout(features)), features",
                              "return self.head(self.last_dropout(features))")), "should return a pair"),
        (variant(SOLUTION_2, ("for i in range(len(hidden_sizes)):", "for i in range(1):")), "has linear layers"),
    ],
)


# ---- 04.3 Accuracy per class

HINT_3 = "section 4 (Inference), its part *Counting classes*: torch.bincount counts each class index"


def check_per_class_accuracy(per_class_accuracy) -> str:
    gen = generator("04.3")
    num_classes = randint(gen, 4, 8)
    batch = randint(gen, 30, 60)
    absent = randint(gen, 0, num_classes - 3)
    # every class but `absent` and the last occurs; those two have no sample, so their accuracy is undefined (nan)
    present = torch.tensor([c for c in range(num_classes - 1) if c != absent])
    labels = present[torch.randint(0, len(present), (batch,), generator=gen)]
    logits, labels = _labelled_logits(gen, batch, num_classes, labels)
    predictions = logits.argmax(dim=1)
    counts = torch.bincount(labels, minlength=num_classes).float()
    correct = torch.bincount(labels[predictions == labels], minlength=num_classes).float()
    expected = correct / counts                                  # (num_classes,), nan where counts == 0
    got = call(per_class_accuracy, logits, labels, num_classes, hint=HINT_3)
    if isinstance(got, torch.Tensor) and got.ndim == 1 and len(got) < num_classes:
        raise Mistake(f"per_class_accuracy returned {len(got)} entries for {num_classes} classes: torch.bincount "
                      "only counts up to the largest value it sees, and the last class has no sample here; "
                      "minlength=num_classes gives every class its entry", HINT_3)
    if isinstance(got, torch.Tensor) and got.shape == expected.shape:
        by_prediction = correct / torch.bincount(predictions, minlength=num_classes).float()
        if torch.allclose(got, by_prediction, equal_nan=True) and not torch.allclose(got, expected, equal_nan=True):
            raise Mistake("you divided by how often each class was *predicted* (that is precision); divide by how "
                          "often it is the *label*", HINT_3)
    expect_tensor(got, expected, f"per_class_accuracy for {batch} samples of {num_classes} classes (classes "
                  f"{absent} and {num_classes - 1} absent)", atol=1e-6, equal_nan=True, hint=HINT_3)
    return f"{batch} samples, {num_classes} classes, two of them absent (nan)"


SOLUTION_3 = '''
def per_class_accuracy(logits, labels, num_classes):
    """logits: (batch, num_classes), labels: (batch,) -> (num_classes,) share correct per true class (nan if absent)."""
    predictions = logits.argmax(dim=1)                                          # (batch,)
    samples = torch.bincount(labels, minlength=num_classes)                     # (num_classes,)
    correct = torch.bincount(labels[predictions == labels], minlength=num_classes)
    return correct.float() / samples.float()                                    # 0 / 0 gives nan
'''

EX_3 = Exercise(
    id="04.3", lesson=LESSON, title="Accuracy per class", name="per_class_accuracy",
    hint=HINT_3,
    more_hints=["a class's accuracy is (its correctly predicted samples) / (its samples): count the labels of the "
                "correct predictions, and all labels, with the same minlength",
                "a boolean mask `predictions == labels` picks the labels of the correct predictions; dividing two "
                "float counts gives nan where both are 0"],
    statement="""
Fashion-MNIST's overall accuracy hides that some classes (shirts) are much harder than others. Write
`per_class_accuracy(logits, labels, num_classes)` that returns, for every class `c`, the share of the samples
**labelled** `c` that were predicted as `c`; a class with no sample in the batch gets `nan` (0 / 0).

- **In:** `logits`, a float32 tensor `(batch, num_classes)`; `labels`, an int64 tensor `(batch,)`;
  `num_classes`, a whole number.
- **Out:** a float32 tensor `(num_classes,)`; the inputs must not change.
- **Use:** tensor operations: `argmax`, a boolean mask and `torch.bincount(values, minlength=n)`, which counts
  how often each whole number below `n` occurs in a 1-d tensor (section 4).
- **Correct means:** within 1e-6 of the exact shares, and `nan` exactly where a class has no sample, for a
  batch where two classes, the last one included, have none.
- **Reread:** section 4, *Inference* (its part *Counting classes*).
""",
    template=template_of(SOLUTION_3),
    solution=SOLUTION_3,
    alternatives=['''
def per_class_accuracy(logits, labels, num_classes):
    hits = (logits.argmax(1) == labels).float()                                  # (batch,)
    one_hot = F.one_hot(labels, num_classes).float()                             # (batch, num_classes)
    return (one_hot * hits[:, None]).sum(0) / one_hot.sum(0)
'''],
    wrong_answers=[
        ("def per_class_accuracy(logits, labels, num_classes):\n    predictions = logits.argmax(dim=1)\n"
         "    correct = torch.bincount(labels[predictions == labels])\n"
         "    return correct.float() / torch.bincount(labels).float()\n", "minlength=num_classes gives"),
        ("def per_class_accuracy(logits, labels, num_classes):\n    predictions = logits.argmax(dim=1)\n"
         "    correct = torch.bincount(labels[predictions == labels], minlength=num_classes).float()\n"
         "    return correct / torch.bincount(predictions, minlength=num_classes).float()\n", "precision"),
        ("def per_class_accuracy(logits, labels, num_classes):\n    predictions = logits.argmax(dim=1)\n"
         "    correct = torch.bincount(labels[predictions == labels], minlength=num_classes).float()\n"
         "    return correct / torch.bincount(labels, minlength=num_classes).clamp(min=1).float()\n",
         "expected nan"),
    ],
    checker=check_per_class_accuracy,
)


# ---- 04.4 Challenge: a better Fashion-MNIST classifier

HINT_4 = "section 3 (Training with Adam): the loop, and what each epoch's validation accuracy tells you"


def check_train_my_model(train_my_model, target: float) -> str:
    return trained_image_classifier(
        train_my_model, "fashion_mnist", target, hint=HINT_4,
        levers="more epochs (up to the budget), a wider or deeper network with dropout, a learning rate that "
               "falls over the run (a scheduler), and the epoch that validation prefers")


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
    # the learning rate falls from 0.001 to 0 along a cosine over the run: big steps first, fine ones last
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=challenge_epochs)
    training.fit(model, train_loader, val_loader, nn.CrossEntropyLoss(), optimizer, device, challenge_epochs,
                 scheduler=scheduler, verbose=False)
    return model
'''

EX_4 = Exercise(
    id="04.4", lesson=LESSON, title="Challenge: beat this lesson's network", name="train_my_model",
    hint=HINT_4,
    more_hints=["watch the validation accuracy per epoch: still rising at the end means more epochs help; "
                "falling means overfitting (more dropout, or stop earlier)",
                "a wider first layer (512 units) with dropout, trained with a learning rate that falls to 0 over "
                "the run (torch.optim.lr_scheduler.CosineAnnealingLR, passed to training.fit as scheduler=), "
                "reaches the target in the budget"],
    statement="""
This lesson's network reached about 0.87 test accuracy. Write `train_my_model()`: it builds a network of your
design, trains it on `train_loader`, and returns it. Your choices: layers and widths, dropout, optimiser,
learning rate and its schedule (lesson 03, section 6).

- **In:** nothing; use the lesson's `train_loader` and `val_loader` (normalised images `(batch, 1, 28, 28)`),
  `device`, and `training.fit` or your own loop; at most `challenge_epochs` epochs (the check says how long
  training took).
- **Out:** the trained `nn.Module`: images `(batch, 1, 28, 28)` -> scores `(batch, 10)`.
- **Use:** anything in PyTorch; never the test images.
- **Correct means:** on the 10,000 test images, which it never trained on, evaluated in eval mode, accuracy at
  least `challenge_target` (0.89).
- **Reread:** section 3, *Training with Adam*.
""",
    template=template_of(SOLUTION_4),
    solution=SOLUTION_4,
    wrong_answers=image_wrong_answers("fashion_mnist", every_diagnosis=True),
    checker=check_train_my_model,
    challenge=True, settings={"target": "challenge_target"}, rule_settings={"target": 0.89},
)

EXERCISES = [EX_1, EX_2, EX_3, EX_4]
