"""Attention and a small GPT: scaled dot-product attention, heads, the pre-LayerNorm block, a KV cache."""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from course_utils.datasets.text import CharVocab
from course_utils.models.sequence import check_sampling

Cache = list[tuple[torch.Tensor, torch.Tensor]]  # per block: keys and values (batch, heads, seen, head_dim)


def causal_mask(seq_len: int, device: torch.device | str | None = None) -> torch.Tensor:
    """(seq_len, seq_len) bool, True where query i may read key j, i.e. j <= i."""
    return torch.ones(seq_len, seq_len, dtype=torch.bool, device=device).tril()


def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
              mask: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """softmax(q k^T / sqrt(d)) v and the weights; q (..., seq_q, d), k and v (..., seq_k, d), mask True = read."""
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])  # (..., seq_q, seq_k)
    if mask is not None:
        scores = scores.masked_fill(~mask, -math.inf)         # exp(-inf) = 0: never read
    weights = scores.softmax(dim=-1)
    return weights @ v, weights                               # (..., seq_q, d)


def split_heads(x: torch.Tensor, num_heads: int) -> torch.Tensor:
    """(batch, seq, d_model) -> (batch, num_heads, seq, d_model // num_heads)."""
    batch, seq, d_model = x.shape
    if d_model % num_heads:
        raise ValueError(f"d_model {d_model} does not split into {num_heads} heads of equal size")
    return x.view(batch, seq, num_heads, d_model // num_heads).transpose(1, 2)


def merge_heads(x: torch.Tensor) -> torch.Tensor:
    """(batch, num_heads, seq, head_dim) -> (batch, seq, num_heads * head_dim), the inverse of split_heads."""
    batch, num_heads, seq, head_dim = x.shape
    return x.transpose(1, 2).reshape(batch, seq, num_heads * head_dim)


def sinusoidal_positions(seq_len: int, d_model: int) -> torch.Tensor:
    """(seq_len, d_model): sin and cos of position / 10000^(2i / d_model), the original transformer's encoding."""
    position = torch.arange(seq_len, dtype=torch.float32)[:, None]                  # (seq, 1)
    frequency = torch.exp(torch.arange(0, d_model, 2) * (-math.log(10000.0) / d_model))  # (d_model / 2,)
    encoding = torch.zeros(seq_len, d_model)
    encoding[:, 0::2] = torch.sin(position * frequency)
    encoding[:, 1::2] = torch.cos(position * frequency[:d_model // 2])
    return encoding


class MultiHeadAttention(nn.Module):
    """Self-attention with `num_heads` heads: one linear layer makes q, k and v, another mixes the heads."""

    def __init__(self, d_model: int, num_heads: int, dropout: float = 0.0):
        super().__init__()
        if d_model % num_heads:
            raise ValueError(f"d_model {d_model} does not split into {num_heads} heads of equal size")
        self.num_heads, self.dropout = num_heads, dropout
        self.qkv = nn.Linear(d_model, 3 * d_model)  # the layout of nn.MultiheadAttention's in_proj_weight
        self.proj = nn.Linear(d_model, d_model)     # its out_proj

    def forward(self, x: torch.Tensor, cache: tuple[torch.Tensor, torch.Tensor] | None = None,
                causal: bool = True) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """x (batch, seq, d_model) -> (batch, seq, d_model) and the keys and values seen so far (the cache)."""
        q, k, v = (split_heads(part, self.num_heads) for part in self.qkv(x).chunk(3, dim=-1))
        if cache is not None:  # keys and values of the earlier positions, computed once
            k, v = torch.cat([cache[0], k], dim=2), torch.cat([cache[1], v], dim=2)
        seq, seen = q.shape[2], k.shape[2]
        mask = None
        if causal and seq > 1:  # the new queries sit at positions seen - seq ... seen - 1
            mask = causal_mask(seen, x.device)[seen - seq:]
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask,
                                             dropout_p=self.dropout if self.training else 0.0)
        return self.proj(merge_heads(out)), (k, v)


class Block(nn.Module):
    """Pre-LayerNorm transformer block: x + attention(norm(x)), then x + mlp(norm(x))."""

    def __init__(self, d_model: int, num_heads: int, dropout: float = 0.0):
        super().__init__()
        self.norm1 = nn.LayerNorm(d_model)
        self.attention = MultiHeadAttention(d_model, num_heads, dropout)
        self.norm2 = nn.LayerNorm(d_model)
        self.mlp = nn.Sequential(nn.Linear(d_model, 4 * d_model), nn.GELU(), nn.Linear(4 * d_model, d_model),
                                 nn.Dropout(dropout))

    def forward(self, x: torch.Tensor, cache: tuple[torch.Tensor, torch.Tensor] | None = None
                ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """x (batch, seq, d_model) -> the same shape, and this block's cache."""
        attended, cache = self.attention(self.norm1(x), cache)
        x = x + attended                 # residual: the block adds to x, it does not replace it
        return x + self.mlp(self.norm2(x)), cache


class GPT(nn.Module):
    """Characters in, next-character logits out: token + position embeddings -> blocks -> LayerNorm -> linear."""

    def __init__(self, vocab_size: int, context_length: int = 128, d_model: int = 128, num_heads: int = 4,
                 num_layers: int = 4, dropout: float = 0.0):
        super().__init__()
        self.config = {"vocab_size": vocab_size, "context_length": context_length, "d_model": d_model,
                       "num_heads": num_heads, "num_layers": num_layers, "dropout": dropout}
        self.context_length = context_length
        self.token_embedding = nn.Embedding(vocab_size, d_model)
        self.position_embedding = nn.Embedding(context_length, d_model)  # learned: one vector per position
        self.dropout = nn.Dropout(dropout)
        self.blocks = nn.ModuleList(Block(d_model, num_heads, dropout) for _ in range(num_layers))
        self.norm = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, vocab_size)

    def forward(self, ids: torch.Tensor, cache: Cache | None = None) -> tuple[torch.Tensor, Cache]:
        """ids (batch, seq) -> logits (batch, seq, vocab_size) and the cache of every block."""
        seen = 0 if cache is None else cache[0][0].shape[2]
        if seen + ids.shape[1] > self.context_length:
            raise ValueError(f"{seen + ids.shape[1]} positions, but the model knows {self.context_length}")
        positions = torch.arange(seen, seen + ids.shape[1], device=ids.device)
        x = self.dropout(self.token_embedding(ids) + self.position_embedding(positions))  # (batch, seq, d_model)
        new_cache = []
        for i, block in enumerate(self.blocks):
            x, block_cache = block(x, None if cache is None else cache[i])
            new_cache.append(block_cache)
        return self.head(self.norm(x)), new_cache


def random_windows(ids: torch.Tensor, batch_size: int, context_length: int,
                   generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(inputs, targets), each (batch_size, context_length), from random places of `ids`; targets one id later."""
    starts = torch.randint(len(ids) - context_length, (batch_size,), generator=generator)
    offsets = torch.arange(context_length + 1)
    windows = ids[starts[:, None] + offsets]  # (batch_size, context_length + 1)
    return windows[:, :-1], windows[:, 1:]


def logits_of(output) -> torch.Tensor:
    """A model's logits, whether it returns them alone or first in a tuple."""
    return output[0] if isinstance(output, (tuple, list)) else output


@torch.no_grad()
def evaluate_gpt(model: nn.Module, ids: torch.Tensor, device: torch.device | str, batch_size: int = 32,
                 length: int | None = None) -> float:
    """Mean cross-entropy (nats) of every next id of `ids`, each predicted from at least half a context.

    Windows of `length` (default: the model's `context_length`) overlap by half; each window scores its
    second half only (the first window all of it), so no prediction is made from a short context. The
    model returns logits, or a tuple that starts with them (the GPT's cache, an LSTM's state).
    """
    model.eval()
    length = model.context_length if length is None else length
    half = length // 2
    if len(ids) <= length:
        raise ValueError(f"{len(ids)} ids cannot fill one window of {length} (plus one target)")
    starts = torch.arange(0, len(ids) - length, length - half)  # each window: ids[start:start + length + 1]
    total, count = 0.0, 0
    for chunk in starts.split(batch_size):
        windows = ids[chunk[:, None] + torch.arange(length + 1)].to(device)  # (batch, length + 1)
        logits = logits_of(model(windows[:, :-1]))
        losses = F.cross_entropy(logits.transpose(1, 2), windows[:, 1:], reduction="none")  # (batch, length)
        scored = torch.ones_like(losses, dtype=torch.bool)
        scored[chunk.to(device) != 0, :half] = False  # every window but the first scores its second half only
        total += losses[scored].sum().item()
        count += int(scored.sum())
    last = int(starts[-1]) + length  # the last target scored so far; the rest from a window that ends the text
    if last < len(ids) - 1:
        window = ids[-length - 1:].to(device)[None]
        logits = logits_of(model(window[:, :-1]))
        losses = F.cross_entropy(logits.transpose(1, 2), window[:, 1:], reduction="none")[0]
        total += losses[last + 1 - len(ids):].sum().item()
        count += len(ids) - 1 - last
    return total / count


@torch.no_grad()
def generate(model: GPT, vocab: CharVocab, prompt: str, length: int, device: torch.device | str, *,
             temperature: float = 1.0, top_k: int | None = None, generator: torch.Generator | None = None,
             use_cache: bool = True) -> str:
    """`prompt` and `length` characters drawn one at a time, with or without a KV cache; the same text either way.

    The model reads at most `context_length` characters. When the text fills them, it drops the oldest
    half and reads the rest again (and the cache starts again from them).
    """
    check_sampling(prompt, length, temperature, top_k, len(vocab))
    model.eval()
    ids = vocab.encode(prompt)
    window = model.context_length
    start = max(0, len(ids) - window)  # the model reads ids[start:]
    cache, fed = None, start           # fed: ids[start:fed] are in the cache
    for _ in range(length):
        if len(ids) - start > window:  # full: drop the oldest half
            start = len(ids) - window // 2
            cache, fed = None, start
        if use_cache:
            logits, cache = model(torch.tensor([ids[fed:]], device=device), cache)
            fed = len(ids)
        else:
            logits, _ = model(torch.tensor([ids[start:]], device=device))
        scaled = logits[0, -1].float().cpu() / temperature  # (vocab,)
        if top_k is not None:
            scaled = scaled.masked_fill(scaled < scaled.topk(top_k).values[-1], -math.inf)
        ids.append(int(torch.multinomial(scaled.softmax(dim=0), 1, generator=generator)))
    return prompt + vocab.decode(ids[len(vocab.encode(prompt)):])
