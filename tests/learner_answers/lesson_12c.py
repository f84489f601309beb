"""Lesson 12c: answers written by an independent learner from the statements alone."""

RIGHT = {
    "12c.1": [
        """
def pad_batch(sequences, length, keep="last"):
    rows = []
    for ids in sequences:
        if len(ids) > length:
            ids = ids[len(ids) - length:] if keep == "last" else ids[:length]
        rows.append(list(ids) + [0] * (length - len(ids)))
    return torch.tensor(rows, dtype=torch.int64)
""",
        """
def pad_batch(sequences, length, keep="last"):
    out = torch.zeros(len(sequences), length, dtype=torch.long)
    for row, ids in enumerate(sequences):
        kept = ids[-length:] if keep == "last" else ids[:length]
        out[row, :len(kept)] = torch.tensor(kept, dtype=torch.long)
    return out
""",
    ],
    "12c.2": [
        """
def attention_pool(outputs, ids, w):
    scores = outputs @ w                                   # (batch, seq)
    scores = scores.masked_fill(ids == 0, float("-inf"))
    weights = torch.softmax(scores, dim=1)
    return (weights.unsqueeze(-1) * outputs).sum(dim=1)
""",
        """
def attention_pool(outputs, ids, w):
    scores = torch.einsum("bsh,h->bs", outputs, w)
    real = ids != 0
    scores = torch.where(real, scores, torch.full_like(scores, -math.inf))
    weights = scores.softmax(dim=-1)
    return torch.bmm(weights.unsqueeze(1), outputs).squeeze(1)
""",
    ],
    "12c.3": [
        """
def last_real_output(outputs, ids):
    last = (ids != 0).sum(dim=1) - 1
    return outputs[torch.arange(outputs.shape[0]), last]
""",
        """
def last_real_output(outputs, ids):
    positions = (ids != 0).long().sum(1) - 1                       # (batch,)
    index = positions.view(-1, 1, 1).expand(-1, 1, outputs.shape[2])
    return outputs.gather(1, index).squeeze(1)
""",
    ],
    "12c.4": [
        """
def packed_last_state(lstm, embedded, lengths):
    packed = nn.utils.rnn.pack_padded_sequence(embedded, lengths.cpu(), batch_first=True, enforce_sorted=False)
    _, (h_n, _) = lstm(packed)
    return h_n[-1]
""",
        """
def packed_last_state(lstm, embedded, lengths):
    order = torch.argsort(lengths, descending=True)
    packed = nn.utils.rnn.pack_padded_sequence(embedded[order], lengths[order], batch_first=True,
                                               enforce_sorted=True)
    h_n, _ = lstm(packed)[1]
    top = h_n[lstm.num_layers - 1]
    back = torch.empty_like(order)
    back[order] = torch.arange(len(order))
    return top[back]
""",
    ],
}

WRONG = {
    "12c.1": [
        # pads on the left
        """
def pad_batch(sequences, length, keep="last"):
    rows = []
    for ids in sequences:
        kept = ids[-length:] if keep == "last" else ids[:length]
        rows.append([0] * (length - len(kept)) + list(kept))
    return torch.tensor(rows)
""",
        # keep="last" and "first" swapped
        """
def pad_batch(sequences, length, keep="last"):
    rows = []
    for ids in sequences:
        kept = ids[:length] if keep == "last" else ids[-length:]
        rows.append(list(kept) + [0] * (length - len(kept)))
    return torch.tensor(rows)
""",
        # pads the input lists themselves
        """
def pad_batch(sequences, length, keep="last"):
    for i, ids in enumerate(sequences):
        if len(ids) > length:
            sequences[i] = ids[-length:] if keep == "last" else ids[:length]
        else:
            ids.extend([0] * (length - len(ids)))
    return torch.tensor(sequences)
""",
    ],
    "12c.2": [
        # softmax over every position, padding included
        """
def attention_pool(outputs, ids, w):
    weights = torch.softmax(outputs @ w, dim=1)
    return (weights.unsqueeze(-1) * outputs).sum(dim=1)
""",
        # zeroes the padded scores instead of their weights: exp(0) still gives them weight
        """
def attention_pool(outputs, ids, w):
    scores = (outputs @ w).masked_fill(ids == 0, 0.0)
    weights = torch.softmax(scores, dim=1)
    return (weights.unsqueeze(-1) * outputs).sum(dim=1)
""",
        # softmax along the batch dimension
        """
def attention_pool(outputs, ids, w):
    scores = (outputs @ w).masked_fill(ids == 0, float("-inf"))
    weights = torch.softmax(scores, dim=0)
    return (weights.unsqueeze(-1) * outputs).sum(dim=1)
""",
    ],
    "12c.3": [
        # off by one: the first padding position
        """
def last_real_output(outputs, ids):
    last = (ids != 0).sum(dim=1)
    return outputs[torch.arange(outputs.shape[0]), last.clamp(max=outputs.shape[1] - 1)]
""",
        # the very last position, padding or not
        """
def last_real_output(outputs, ids):
    return outputs[:, -1]
""",
    ],
    "12c.4": [
        # enforce_sorted=True with lengths in any order
        """
def packed_last_state(lstm, embedded, lengths):
    packed = nn.utils.rnn.pack_padded_sequence(embedded, lengths, batch_first=True, enforce_sorted=True)
    _, (h_n, _) = lstm(packed)
    return h_n[-1]
""",
        # the bottom layer's state
        """
def packed_last_state(lstm, embedded, lengths):
    packed = nn.utils.rnn.pack_padded_sequence(embedded, lengths, batch_first=True, enforce_sorted=False)
    _, (h_n, _) = lstm(packed)
    return h_n[0]
""",
        # no packing: the state after the padding
        """
def packed_last_state(lstm, embedded, lengths):
    _, (h_n, _) = lstm(embedded)
    return h_n[-1]
""",
    ],
}

# Answers added after a first pass, other styles and other slips.

# -1e9 instead of -inf, einsum
RIGHT["12c.2"].append("""
def attention_pool(outputs, ids, w):
    scores = (outputs @ w).masked_fill(ids == 0, -1e9)
    return torch.einsum("bs,bsh->bh", scores.softmax(1), outputs)
""")

# the first padding position minus 1 (-1 for a row without padding is the last position)
RIGHT["12c.3"].append("""
def last_real_output(outputs, ids):
    last = (ids == 0).int().argmax(dim=1) - 1
    return outputs[torch.arange(len(ids)), last]
""")

# float32 ids
WRONG["12c.1"].append("""
def pad_batch(sequences, length, keep="last"):
    rows = []
    for ids in sequences:
        kept = ids[-length:] if keep == "last" else ids[:length]
        rows.append(kept + [0] * (length - len(kept)))
    return torch.tensor(rows, dtype=torch.float32)
""")
