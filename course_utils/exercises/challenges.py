"""Challenges: the learner trains a model in the notebook, and the check measures it on data it never trained on.

A challenge's answer is a function that builds a model, trains it within the lesson's budget and returns it; its
check cell passes the target of the profile the notebook runs at
(`exercises.check("04.4", train_my_model, target=challenge_target)`). The checker evaluates the model the right
way (eval mode, no gradients, the held-out split, the lesson's normalisation) whatever state it comes in, and when
the target is missed it names the usual cause it can see: a model left untrained, inputs scaled another way than the
lesson's, a model that memorised its training images, or a target missed by a little.
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Callable

import torch
from torch import nn

from course_utils.exercises.framework import Mistake, describe

EVAL_BATCH = 1000  # images per forward pass of the check: fast on a CPU, small on a GPU
TRAIN_SAMPLE = 2000  # training images the check scores to see whether the model memorised them
MEMORISED_GAP = 0.05  # training accuracy this far above the test accuracy: the model learnt its training images
OTHER_SCALING_GAIN = 0.05  # images scaled to [0, 1] do this much better than the lesson's: trained without Normalize


@functools.cache
def _mnist_split(name: str, train: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """One split of MNIST or Fashion-MNIST as the lesson's loaders give it (normalised to [-1, 1]), read once."""
    from course_utils.datasets import mnist
    return mnist.load_tensors(name, train=train)


def device_of(model: nn.Module) -> torch.device:
    """Where the model's weights are (the CPU for a model without any)."""
    for tensor in (*model.parameters(), *model.buffers()):
        return tensor.device
    return torch.device("cpu")


def _expect_module(model, what: str) -> None:
    if not isinstance(model, nn.Module):
        raise Mistake(f"pass your trained model, an nn.Module; you passed {describe(model)}"
                      + (" (the cell that trains it has not run?)" if model is None else ""), what)


def evaluate_in_eval_mode(model: nn.Module, run: Callable[[], float]) -> float:
    """run() with the model in eval mode and gradients off; the model's own mode is put back afterwards."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            return run()
    finally:
        model.train(was_training)


def mode_note(was_training: bool) -> str:
    """What a check says about a model that came in training mode (it evaluates in eval mode regardless)."""
    return (" (it came in training mode: the check evaluated it in eval mode, as every evaluation must be)"
            if was_training else "")


def batched_accuracy(model: nn.Module, inputs: torch.Tensor, labels: torch.Tensor, classes: int, hint: str, *,
                     what: str = "a batch of images", wanted: str = "one score per class",
                     on_error: str | None = None) -> float:
    """The share of inputs whose highest score is the label, EVAL_BATCH at a time; Mistake for outputs of the wrong
    shape or with nan.

    `what` names the inputs and `wanted` the scores in the message; `on_error`, when given, is the advice for a
    RuntimeError the model raises on a batch (its first line is quoted), which otherwise passes through.
    """
    device, correct = device_of(model), 0
    for start in range(0, len(labels), EVAL_BATCH):
        batch = inputs[start:start + EVAL_BATCH].to(device)
        try:
            scores = model(batch)
        except RuntimeError as err:
            if on_error is None:
                raise
            first = (str(err).strip().splitlines() or [""])[0][:160]
            raise Mistake(f"your model fails on {what} of shape {tuple(batch.shape)} ({first}): {on_error}",
                          hint) from None
        if not isinstance(scores, torch.Tensor) or scores.shape != (len(batch), classes):
            raise Mistake(f"for {what} of shape {tuple(batch.shape)} your model returned {describe(scores)}, "
                          f"expected {wanted}: shape ({len(batch)}, {classes})", hint)
        if not bool(torch.isfinite(scores).all()):
            raise Mistake("your model's outputs contain nan or inf: the training diverged (a learning rate too "
                          "large?)", hint)
        correct += int((scores.argmax(dim=1).cpu() == labels[start:start + EVAL_BATCH].cpu()).sum())
    return correct / len(labels)


def _accuracy(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, classes: int, hint: str) -> float:
    """The share of images whose highest score is the label (batched_accuracy on images)."""
    return batched_accuracy(model, images, labels, classes, hint)


def image_classifier(model, dataset: str, target: float, *, hint: str, levers: str) -> str:
    """Check a classifier of 28x28 images on the dataset's 10,000 test images against `target` accuracy.

    `levers`: what this lesson offers to reach the target, named when the target is missed by a little.
    """
    _expect_module(model, hint)
    images, labels = _mnist_split(dataset, False)
    was_training = model.training
    accuracy = evaluate_in_eval_mode(model, lambda: _accuracy(model, images, labels, 10, hint))
    note = mode_note(was_training)
    if accuracy >= target:
        return (f"test accuracy {accuracy:.4f} on the {len(labels):,} test images it never trained on, target "
                f"{target:.2f}{note}")
    said = f"your model reaches {accuracy:.4f} on the {len(labels):,} test images, target {target:.2f}"
    if accuracy < 0.2:
        raise Mistake(f"{said}: barely better than guessing one of 10 classes; was it trained (an optimizer step "
                      "after backward, on this model's parameters)?", hint)
    raw = images * 0.5 + 0.5  # the same images scaled to [0, 1], as a transform without Normalize gives them
    raw_accuracy = evaluate_in_eval_mode(model, lambda: _accuracy(model, raw, labels, 10, hint))
    if raw_accuracy >= accuracy + OTHER_SCALING_GAIN:
        raise Mistake(f"{said}; on the same images scaled to [0, 1] it reaches {raw_accuracy:.4f}: it was trained "
                      "on images scaled another way than the lesson's loaders give them (normalised to [-1, 1]); "
                      "train on the lesson's loaders", hint)
    from course_utils.datasets.mnist import train_val_indices
    train_images, train_labels = _mnist_split(dataset, True)
    seen = train_val_indices(0.1, None, 0)[0][:TRAIN_SAMPLE]  # images the lessons' training split starts with
    train_accuracy = evaluate_in_eval_mode(
        model, lambda: _accuracy(model, train_images[seen], train_labels[seen], 10, hint))
    if train_accuracy >= accuracy + MEMORISED_GAP:
        raise Mistake(f"{said}, but {train_accuracy:.4f} on {TRAIN_SAMPLE:,} of its training images: it learnt "
                      "its training images more than the task; an accuracy measured on training data overstates "
                      "it (use the validation split), and dropout, weight decay or fewer epochs close the gap", hint)
    raise Mistake(f"{said}, missed by {target - accuracy:.4f}{note}; {levers}", hint)


def trained(train: Callable[[], nn.Module], hint: str) -> tuple[nn.Module, float]:
    """The model the learner's function trains and returns, and the seconds it took."""
    start = time.perf_counter()
    model = train()
    seconds = time.perf_counter() - start
    if not isinstance(model, nn.Module):
        raise Mistake(f"your function should return the trained model, an nn.Module, but it returned "
                      f"{describe(model)}" + (" (did you forget `return model`?)" if model is None else ""), hint)
    return model, seconds


def trained_image_classifier(train: Callable[[], nn.Module], dataset: str, target: float, *, hint: str,
                             levers: str) -> str:
    """Train with the learner's function, then image_classifier on its model; say how long training took."""
    model, seconds = trained(train, hint)
    return f"{image_classifier(model, dataset, target, hint=hint, levers=levers)}; trained in {seconds:.0f} s"


# ---------------------------------------------------------------- wrong answers every image challenge must catch

_UNTRAINED = "def train_my_model():\n    return nn.Sequential(nn.Flatten(), nn.Linear(784, 10))\n"

# a nearest-class-mean classifier computed from training images scaled to [0, 1] (no Normalize): a real classifier,
# made without a training loop, whose inputs are scaled another way than the lesson's loaders give them
_UNNORMALISED = """
def train_my_model():
    from course_utils.datasets import mnist
    images, labels = mnist.load_tensors("{dataset}", train=True)
    images = (images * 0.5 + 0.5).flatten(1)[:20000]             # back to [0, 1]
    labels = labels[:20000]
    means = torch.stack([images[labels == c].mean(0) for c in range(10)])
    layer = nn.Linear(784, 10)
    with torch.no_grad():
        layer.weight.copy_(means)
        layer.bias.copy_(-0.5 * (means ** 2).sum(1))             # -|x - mean|^2 / 2, less the same |x|^2 / 2
    return nn.Sequential(nn.Flatten(), layer)
"""

# remembers the first 2,000 images of the lessons' training split and answers with the nearest one's label
_MEMORISED = """
class Nearest(nn.Module):
    def __init__(self, images, labels):
        super().__init__()
        self.register_buffer("images", images.flatten(1))
        self.register_buffer("labels", labels)

    def forward(self, x):
        nearest = torch.cdist(x.flatten(1), self.images).argmin(dim=1)
        return F.one_hot(self.labels[nearest], 10).float()

def train_my_model():
    from course_utils.datasets import mnist
    images, labels = mnist.load_tensors("{dataset}", train=True)
    seen = mnist.train_val_indices(0.1, None, 0)[0][:2000]
    return Nearest(images[seen], labels[seen])
"""


def image_wrong_answers(dataset: str, every_diagnosis: bool = False) -> list[tuple[str, str]]:
    """The wrong answers of an image challenge (code, part of its message): each usual mistake, made cheaply.

    Every image challenge shares image_classifier, so one of them (every_diagnosis=True) registers the slower
    ones too: a classifier of unnormalised images, and one that memorised its training images.
    """
    answers = [
        (_UNTRAINED, "barely better than guessing"),
        ("def train_my_model():\n    return nn.Sequential(nn.Flatten(), nn.Linear(784, 2))\n", "one score per class"),
        ("def train_my_model():\n    model = nn.Sequential(nn.Flatten(), nn.Linear(784, 10))\n",
         "forget `return model`"),
    ]
    if every_diagnosis:
        answers += [(_UNNORMALISED.replace("{dataset}", dataset), "scaled to [0, 1]"),
                    (_MEMORISED.replace("{dataset}", dataset), "of its training images")]
    return answers


# ---------------------------------------------------------------- character models of Anna Karenina

VAL_FRACTION = 0.1  # the lessons' validation text: the last 10 % of the book
LM_BATCH = 64       # windows per forward pass of the check


@functools.cache
def _book_ids() -> tuple[torch.Tensor, torch.Tensor, int]:
    """(training ids, validation ids, vocabulary size) of the book, encoded as the lessons encode it."""
    from course_utils.datasets import text
    novel = text.load_anna()
    vocab = text.CharVocab.from_text(novel)
    train_ids, val_ids = text.split_tail(torch.tensor(vocab.encode(novel)), VAL_FRACTION)
    return train_ids, val_ids, len(vocab)


def _windowed_loss(model: nn.Module, ids: torch.Tensor, length: int, vocab_size: int, hint: str) -> float:
    """transformer.evaluate_gpt's mean cross-entropy (nats) of the next characters of `ids`, read in windows of
    `length` that overlap by half, once a first batch of windows shows the outputs are logits of the right shape."""
    from course_utils.models import transformer
    inputs = ids[:length * min(LM_BATCH, len(ids) // length)].view(-1, length).to(device_of(model))
    logits = transformer.logits_of(model(inputs))
    wanted = (*inputs.shape, vocab_size)
    if not isinstance(logits, torch.Tensor) or logits.shape != wanted:
        raise Mistake(f"for character ids of shape {tuple(inputs.shape)} your model returned {describe(logits)}, "
                      f"expected logits of shape {wanted}: one score per character of the vocabulary, at every "
                      "position", hint)
    loss = transformer.evaluate_gpt(model, ids, device_of(model), LM_BATCH, length=length)
    if not math.isfinite(loss):
        raise Mistake("your model's outputs contain nan or inf: the training diverged (a learning rate too "
                      "large, or no gradient clipping?)", hint)
    return loss


def trained_char_model(train: Callable[[], nn.Module], target: float, *, context: int, val_chars: int | None,
                       hint: str, levers: str) -> str:
    """Train with the learner's function; its validation loss on the book's last 10 % must be at most `target`."""
    model, seconds = trained(train, hint)
    train_ids, val_ids, vocab_size = _book_ids()
    val_ids = val_ids if val_chars is None else val_ids[:val_chars]
    was_training = model.training
    loss = evaluate_in_eval_mode(model, lambda: _windowed_loss(model, val_ids, context, vocab_size, hint))
    said = f"validation loss {loss:.3f} nats per character on {len(val_ids):,} characters it never trained on"
    note = mode_note(was_training)
    if loss <= target:
        return f"{said}, target {target:.2f} or lower{note}; trained in {seconds:.0f} s"
    if loss > math.log(vocab_size) - 0.1:
        raise Mistake(f"your model's {said}: no better than a uniform guess among {vocab_size} characters "
                      f"({math.log(vocab_size):.2f}); was it trained (an optimizer step after backward, on this "
                      "model's parameters)?", hint)
    seen = evaluate_in_eval_mode(
        model, lambda: _windowed_loss(model, train_ids[:len(val_ids)], context, vocab_size, hint))
    if loss - seen >= 0.15:
        raise Mistake(f"your model's {said}, target {target:.2f}, but {seen:.3f} on as many characters of its "
                      "training text: it learnt its training text more than the language; dropout, or a smaller "
                      "model, closes the gap", hint)
    raise Mistake(f"your model's {said}, target {target:.2f}, missed by {loss - target:.3f}{note}; {levers}",
                  hint)


_VOCAB = """
from course_utils.datasets import text
vocab_size = len(text.CharVocab.from_text(text.load_anna()))
"""

# counts of which character follows which in the training text, as logits: a real model, but a weak one
_BIGRAMS = _VOCAB + """
class Bigrams(nn.Module):
    def __init__(self, log_probs):
        super().__init__()
        self.register_buffer("log_probs", log_probs)

    def forward(self, ids):
        return self.log_probs[ids]                                    # (batch, seq, vocab)

def train_my_model():
    novel = text.load_anna()
    ids = torch.tensor(text.CharVocab.from_text(novel).encode(novel))[:1_000_000]
    counts = torch.bincount(ids[:-1] * vocab_size + ids[1:], minlength=vocab_size ** 2).float()
    return Bigrams((counts.view(vocab_size, vocab_size) + 1).log().log_softmax(dim=1))  # log P(next | this)
"""


def char_wrong_answers() -> list[tuple[str, str]]:
    """The wrong answers of a character-model challenge (code, part of its message), each made cheaply."""
    return [
        (_VOCAB + "\ndef train_my_model():\n    return nn.Sequential(nn.Embedding(vocab_size, 8), "
                  "nn.Linear(8, vocab_size))\n", "no better than a uniform guess"),
        (_VOCAB + "\ndef train_my_model():\n    return nn.Embedding(vocab_size, 8)\n", "expected logits of shape"),
        (_VOCAB + "\ndef train_my_model():\n    model = nn.Embedding(vocab_size, vocab_size)\n",
         "forget `return model`"),
        (_BIGRAMS, "missed by"),
    ]
