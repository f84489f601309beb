"""Recurrent models for text: a character LSTM that writes, a review LSTM that judges, and their loops."""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from course_utils.core.checkpoints import CheckpointError, restore, save_checkpoint
from course_utils.core.training import check_count, predict_probs
from course_utils.datasets.text import PAD_ID, CharVocab, WordVocab, encode_texts

Hidden = torch.Tensor | tuple[torch.Tensor, ...]


def detach_hidden(hidden: Hidden | None) -> Hidden | None:
    """The hidden state cut from the graph that made it: back-propagation stops here (truncated BPTT)."""
    if hidden is None:
        return None
    if isinstance(hidden, torch.Tensor):
        return hidden.detach()
    return tuple(h.detach() for h in hidden)


class CharLSTM(nn.Module):
    """Characters in, next-character logits out: embedding -> stacked LSTM -> dropout -> linear."""

    def __init__(self, vocab_size: int, embedding_dim: int = 32, hidden_size: int = 256,
                 num_layers: int = 2, dropout: float = 0.1):
        super().__init__()
        self.config = {"vocab_size": vocab_size, "embedding_dim": embedding_dim, "hidden_size": hidden_size,
                       "num_layers": num_layers, "dropout": dropout}
        self.embedding = nn.Embedding(vocab_size, embedding_dim)
        # dropout acts between stacked layers; PyTorch warns (and ignores it) with one layer
        self.lstm = nn.LSTM(embedding_dim, hidden_size, num_layers, batch_first=True,
                            dropout=dropout if num_layers > 1 else 0.0)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(hidden_size, vocab_size)

    def forward(self, ids: torch.Tensor, hidden: Hidden | None = None) -> tuple[torch.Tensor, Hidden]:
        """ids (batch, seq) -> logits (batch, seq, vocab_size) and the new (h, c)."""
        outputs, hidden = self.lstm(self.embedding(ids), hidden)  # (batch, seq, hidden_size)
        return self.head(self.dropout(outputs)), hidden


def _char_loss(model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor,
               hidden: Hidden | None) -> tuple[torch.Tensor, Hidden]:
    """Shared by train and eval: summed cross-entropy of every next-character prediction, new hidden."""
    logits, hidden = model(inputs, hidden)  # (batch, seq, vocab)
    loss = F.cross_entropy(logits.flatten(0, 1), targets.flatten(), reduction="sum")
    return loss, hidden


@torch.no_grad()
def evaluate_chars(model: nn.Module, batches: Iterable[tuple[torch.Tensor, torch.Tensor]],
                   device: torch.device) -> float:
    """Mean cross-entropy per character (nats) over `batches`, the hidden state carried along each row."""
    model.eval()
    total, count, hidden = 0.0, 0, None
    for inputs, targets in batches:
        loss, hidden = _char_loss(model, inputs.to(device), targets.to(device), hidden)
        total += loss.item()
        count += targets.numel()
    if count == 0:
        raise ValueError("the evaluation batches were empty")
    return total / count


def train_chars(model: nn.Module, train_batches, val_batches, optimizer: torch.optim.Optimizer,
                device: torch.device, num_steps: int, *, clip_norm: float = 5.0, eval_every: int = 50,
                scheduler: torch.optim.lr_scheduler.LRScheduler | None = None,
                verbose: bool = True) -> dict[str, list[float]]:
    """`num_steps` updates with truncated back-propagation through time and gradient clipping.

    The hidden state is carried from batch to batch (rows continue each other) but detached, so
    each backward pass runs through one batch's `seq_length` steps only; it is reset at each new
    pass over the text. Every `eval_every` steps (and at the end) the validation loss is measured.
    Returns `{"step", "train_loss", "val_loss", "seconds"}`, train loss averaged since the last evaluation.
    """
    check_count("num_steps", num_steps)
    check_count("eval_every", eval_every)
    history: dict[str, list[float]] = {"step": [], "train_loss": [], "val_loss": [], "seconds": []}
    start, step, running, seen = time.perf_counter(), 0, 0.0, 0
    while step < num_steps:
        hidden = None  # a new pass over the text: the previous state belongs to its end, not its start
        model.train()
        for inputs, targets in train_batches:
            inputs, targets = inputs.to(device), targets.to(device)
            hidden = detach_hidden(hidden)
            loss, hidden = _char_loss(model, inputs, targets, hidden)
            optimizer.zero_grad(set_to_none=True)
            (loss / targets.numel()).backward()  # mean per character
            nn.utils.clip_grad_norm_(model.parameters(), clip_norm)
            optimizer.step()
            if scheduler is not None:
                scheduler.step()
            running += loss.item()
            seen += targets.numel()
            step += 1
            if step % eval_every == 0 or step == num_steps:
                val_loss = evaluate_chars(model, val_batches, device)
                model.train()
                history["step"].append(step)
                history["train_loss"].append(running / seen)
                history["val_loss"].append(val_loss)
                history["seconds"].append(time.perf_counter() - start)
                running, seen = 0.0, 0
                if verbose:
                    print(f"step {step:>5}/{num_steps}  train loss {history['train_loss'][-1]:.3f}  "
                          f"val loss {val_loss:.3f}  ({history['seconds'][-1]:.0f} s)", flush=True)
            if step == num_steps:
                break
        if step == 0:
            raise ValueError("the training batches were empty")
    return history


@torch.no_grad()
def check_sampling(prompt: str, length: int, temperature: float, top_k: int | None, vocab_size: int) -> None:
    """Raise ValueError naming the argument when a sampler's arguments cannot give text."""
    if not prompt:
        raise ValueError("the prompt must have at least one character: the model continues a text")
    if not temperature > 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    if top_k is not None and not 1 <= top_k <= vocab_size:
        raise ValueError(f"top_k must be between 1 and {vocab_size}, got {top_k}")
    if length < 0:
        raise ValueError(f"length must be at least 0, got {length}")


def sample(model: CharLSTM, vocab: CharVocab, prompt: str, length: int, device: torch.device, *,
           temperature: float = 1.0, top_k: int | None = None, generator: torch.Generator | None = None) -> str:
    """`prompt` followed by `length` characters drawn one at a time from the model.

    The prompt primes the hidden state. Each next character is drawn from softmax(logits / temperature),
    restricted to the `top_k` most likely characters when given. A prompt character outside the
    vocabulary raises UnknownCharactersError naming it.
    """
    check_sampling(prompt, length, temperature, top_k, len(vocab))
    ids = torch.tensor([vocab.encode(prompt)], device=device)  # (1, len(prompt))
    model.eval()
    logits, hidden = model(ids)
    generated = []
    for _ in range(length):
        scaled = logits[0, -1].float().cpu() / temperature  # (vocab,)
        if top_k is not None:
            kth_best = scaled.topk(top_k).values[-1]
            scaled = scaled.masked_fill(scaled < kth_best, -math.inf)
        probs = scaled.softmax(dim=0)
        next_id = int(torch.multinomial(probs, 1, generator=generator))
        generated.append(next_id)
        logits, hidden = model(torch.tensor([[next_id]], device=device), hidden)
    return prompt + vocab.decode(generated)


def save_char_model(path: str | Path, model: CharLSTM, vocab: CharVocab, **extra) -> Path:
    """A checkpoint that can write again on its own: config, weights and the vocabulary as a plain string."""
    if len(vocab) != model.config["vocab_size"]:
        raise ValueError(f"the vocabulary has {len(vocab)} characters, the model {model.config['vocab_size']}")
    return save_checkpoint(path, model, model.config, vocabulary=vocab.chars, **extra)


def load_char_model(path: str | Path, device: torch.device | str = "cpu") -> tuple[CharLSTM, CharVocab]:
    """The model and vocabulary saved by `save_char_model`, loaded safely (weights_only)."""
    model, checkpoint = restore(path, CharLSTM, map_location=device)
    chars = checkpoint.get("vocabulary")
    if not isinstance(chars, str) or len(chars) != model.config["vocab_size"]:
        raise CheckpointError(f"{path} has no character vocabulary matching the model: it cannot encode prompts")
    return model, CharVocab(chars)


POOLINGS = ("last", "max", "mean")


class SentimentLSTM(nn.Module):
    """Word ids in, class logits out (many-to-one): embedding -> LSTM -> one vector per review -> linear.

    `pool` turns the LSTM's outputs into that vector: "last" takes the state after the review's last
    real word; "max" and "mean" take the element-wise maximum or mean of the outputs over every real
    word, so each word's output gets its own gradient. Padding never enters any of them.
    `bidirectional=True` adds an LSTM that reads each review backwards and always packs the batch, so
    that direction starts at the review's last real word, not in the padding.
    """

    def __init__(self, vocab_size: int, embedding_dim: int = 64, hidden_size: int = 64, num_layers: int = 1,
                 dropout: float = 0.3, num_classes: int = 2, packed: bool = False, bidirectional: bool = False,
                 pool: str = "last"):
        super().__init__()
        if pool not in POOLINGS:
            raise ValueError(f"pool must be one of {', '.join(POOLINGS)}, got {pool!r}")
        self.config = {"vocab_size": vocab_size, "embedding_dim": embedding_dim, "hidden_size": hidden_size,
                       "num_layers": num_layers, "dropout": dropout, "num_classes": num_classes, "packed": packed,
                       "bidirectional": bidirectional, "pool": pool}
        self.packed, self.bidirectional, self.pool = packed, bidirectional, pool
        self.embedding = nn.Embedding(vocab_size, embedding_dim, padding_idx=PAD_ID)
        self.lstm = nn.LSTM(embedding_dim, hidden_size, num_layers, batch_first=True,
                            dropout=dropout if num_layers > 1 else 0.0, bidirectional=bidirectional)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(hidden_size * (2 if bidirectional else 1), num_classes)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        """ids (batch, max_length), right-padded with <pad> -> logits (batch, num_classes)."""
        lengths = (ids != PAD_ID).sum(dim=1).clamp(min=1)  # (batch,) real tokens per row
        ids = ids[:, :int(lengths.max())]                  # drop columns that are padding in every row
        embedded = self.embedding(ids)                     # (batch, seq, embedding_dim)
        if self.packed or self.bidirectional:
            packed = pack_padded_sequence(embedded, lengths.cpu(), batch_first=True, enforce_sorted=False)
            packed_outputs, (h, _) = self.lstm(packed)  # h: (num_layers * directions, batch, hidden)
            outputs, _ = pad_packed_sequence(packed_outputs, batch_first=True, total_length=ids.shape[1])
            # the top layer: forward state after the last word, and backward state after the first
            last = torch.cat([h[-2], h[-1]], dim=1) if self.bidirectional else h[-1]
        else:
            outputs, _ = self.lstm(embedded)               # (batch, seq, hidden)
            # a left-to-right LSTM's output at the last real token has not seen the padding after it
            last = outputs[torch.arange(len(ids), device=ids.device), lengths - 1]  # (batch, hidden)
        return self.head(self.dropout(self._pool(outputs, last, lengths)))

    def _pool(self, outputs: torch.Tensor, last: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """One vector per review from outputs (batch, seq, features): the last step, or max/mean over real steps."""
        if self.pool == "last":
            return last
        real = (torch.arange(outputs.shape[1], device=outputs.device) < lengths[:, None]).unsqueeze(2)
        if self.pool == "max":
            return outputs.masked_fill(~real, -math.inf).amax(dim=1)
        return (outputs * real).sum(dim=1) / lengths[:, None]


def predict_sentiment(model: SentimentLSTM, vocab: WordVocab, texts: Sequence[str], max_length: int,
                      device: torch.device, keep: str = "last") -> torch.Tensor:
    """Class probabilities (len(texts), num_classes) for new texts; EmptyTextError if one has no known word."""
    if isinstance(texts, str):
        raise TypeError("pass a list of texts, e.g. [review]")
    ids = encode_texts(texts, vocab, max_length, keep, require_known=True)
    return predict_probs(model, ids, device)
