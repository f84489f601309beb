"""Lesson 12d: answers written by an independent learner from the statements alone."""

RIGHT = {
    "12d.1": [
        """
def masked_attention(q, k, v, mask):
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    scores = scores.masked_fill(~mask, float("-inf"))
    return torch.softmax(scores, dim=-1) @ v
""",
        """
def masked_attention(q, k, v, mask):
    scores = torch.einsum("bhqd,bhkd->bhqk", q, k) * q.size(-1) ** -0.5
    scores = torch.where(mask, scores, torch.tensor(-1e9))
    weights = scores.softmax(-1)
    return torch.einsum("bhqk,bhkv->bhqv", weights, v)
""",
    ],
    "12d.2": [
        """
def per_head(x, num_heads, fn):
    batch, seq, d_model = x.shape
    head_dim = d_model // num_heads
    heads = x.view(batch, seq, num_heads, head_dim).transpose(1, 2)
    out = fn(heads)
    return out.transpose(1, 2).reshape(batch, seq, d_model)
""",
        """
def per_head(x, num_heads, fn):
    heads = x.unflatten(-1, (num_heads, -1)).permute(0, 2, 1, 3)
    return fn(heads).permute(0, 2, 1, 3).flatten(2)
""",
    ],
    "12d.3": [
        """
def padded_causal_mask(lengths, seq_len):
    i = torch.arange(seq_len).view(1, 1, seq_len, 1)
    j = torch.arange(seq_len).view(1, 1, 1, seq_len)
    real = j < lengths.view(-1, 1, 1, 1)
    return (j <= i) & real
""",
        """
def padded_causal_mask(lengths, seq_len):
    causal = torch.tril(torch.ones(seq_len, seq_len, dtype=torch.bool))
    masks = []
    for n in lengths.tolist():
        m = causal.clone()
        m[:, n:] = False
        masks.append(m)
    return torch.stack(masks).unsqueeze(1)
""",
    ],
    "12d.4": [
        """
def decode_step(x, w_q, w_k, w_v, cache):
    q, k, v = x @ w_q, x @ w_k, x @ w_v
    if cache is not None:
        k = torch.cat([cache[0], k], dim=1)
        v = torch.cat([cache[1], v], dim=1)
    weights = torch.softmax(q @ k.transpose(1, 2) / math.sqrt(q.shape[-1]), dim=-1)
    return weights @ v, (k, v)
""",
        """
def decode_step(x, w_q, w_k, w_v, cache):
    k_new, v_new = x @ w_k, x @ w_v
    if cache is None:
        keys, values = k_new, v_new
    else:
        keys, values = torch.cat((cache[0], k_new), 1), torch.cat((cache[1], v_new), 1)
    out = F.scaled_dot_product_attention(x @ w_q, keys, values)
    return out, (keys, values)
""",
    ],
}

WRONG = {
    "12d.1": [
        # masks where the mask is True
        """
def masked_attention(q, k, v, mask):
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    scores = scores.masked_fill(mask, float("-inf"))
    return torch.softmax(scores, dim=-1) @ v
""",
        # no scaling by sqrt(d)
        """
def masked_attention(q, k, v, mask):
    scores = (q @ k.transpose(-2, -1)).masked_fill(~mask, float("-inf"))
    return torch.softmax(scores, dim=-1) @ v
""",
        # softmax over the queries
        """
def masked_attention(q, k, v, mask):
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    scores = scores.masked_fill(~mask, float("-inf"))
    return torch.nan_to_num(torch.softmax(scores, dim=-2)) @ v
""",
    ],
    "12d.2": [
        # a plain view to the heads' shape, without the transpose
        """
def per_head(x, num_heads, fn):
    batch, seq, d_model = x.shape
    heads = x.reshape(batch, num_heads, seq, d_model // num_heads)
    return fn(heads).reshape(batch, seq, d_model)
""",
        # splits into (head_dim, num_heads) instead of (num_heads, head_dim)
        """
def per_head(x, num_heads, fn):
    batch, seq, d_model = x.shape
    heads = x.view(batch, seq, d_model // num_heads, num_heads).permute(0, 3, 1, 2)
    return fn(heads).permute(0, 2, 3, 1).reshape(batch, seq, d_model)
""",
        # calls fn once per head
        """
def per_head(x, num_heads, fn):
    batch, seq, d_model = x.shape
    heads = x.view(batch, seq, num_heads, -1).transpose(1, 2)
    parts = [fn(heads[:, h:h + 1]) for h in range(num_heads)]
    return torch.cat(parts, dim=1).transpose(1, 2).reshape(batch, seq, d_model)
""",
    ],
    "12d.3": [
        # off by one: key j == length (the first padding position) allowed
        """
def padded_causal_mask(lengths, seq_len):
    i = torch.arange(seq_len).view(1, 1, seq_len, 1)
    j = torch.arange(seq_len).view(1, 1, 1, seq_len)
    return (j <= i) & (j <= lengths.view(-1, 1, 1, 1))
""",
        # masks the padded queries instead of the padded keys
        """
def padded_causal_mask(lengths, seq_len):
    i = torch.arange(seq_len).view(1, 1, seq_len, 1)
    j = torch.arange(seq_len).view(1, 1, 1, seq_len)
    return (j <= i) & (i < lengths.view(-1, 1, 1, 1))
""",
        # a float mask of 0 / 1
        """
def padded_causal_mask(lengths, seq_len):
    i = torch.arange(seq_len).view(1, 1, seq_len, 1)
    j = torch.arange(seq_len).view(1, 1, 1, seq_len)
    return ((j <= i) & (j < lengths.view(-1, 1, 1, 1))).float()
""",
    ],
    "12d.4": [
        # the new position is put first in the cache
        """
def decode_step(x, w_q, w_k, w_v, cache):
    q, k, v = x @ w_q, x @ w_k, x @ w_v
    if cache is not None:
        k = torch.cat([k, cache[0]], dim=1)
        v = torch.cat([v, cache[1]], dim=1)
    weights = torch.softmax(q @ k.transpose(1, 2) / math.sqrt(q.shape[-1]), dim=-1)
    return weights @ v, (k, v)
""",
        # the query reads only the earlier positions, not itself
        """
def decode_step(x, w_q, w_k, w_v, cache):
    q, k, v = x @ w_q, x @ w_k, x @ w_v
    if cache is None:
        return v, (k, v)
    weights = torch.softmax(q @ cache[0].transpose(1, 2) / math.sqrt(q.shape[-1]), dim=-1)
    return weights @ cache[1], (torch.cat([cache[0], k], 1), torch.cat([cache[1], v], 1))
""",
        # scales by sqrt(d_model) instead of sqrt(d)
        """
def decode_step(x, w_q, w_k, w_v, cache):
    q, k, v = x @ w_q, x @ w_k, x @ w_v
    if cache is not None:
        k = torch.cat([cache[0], k], dim=1)
        v = torch.cat([cache[1], v], dim=1)
    weights = torch.softmax(q @ k.transpose(1, 2) / math.sqrt(x.shape[-1]), dim=-1)
    return weights @ v, (k, v)
""",
    ],
}

# Answers added after a first pass, other styles and other slips.

# .view after a transpose
WRONG["12d.2"].append("""
def per_head(x, num_heads, fn):
    b, s, d = x.shape
    heads = x.view(b, s, num_heads, d // num_heads).transpose(1, 2)
    return fn(heads).transpose(1, 2).view(b, s, d)
""")
