"""Lesson 12b: answers written by an independent learner from the statements alone."""

RIGHT = {
    "12b.1": [
        """
def char_loss(logits, targets):
    vocab = logits.shape[-1]
    return F.cross_entropy(logits.reshape(-1, vocab), targets.reshape(-1))
""",
        """
def char_loss(logits, targets):
    # cross_entropy also takes (batch, classes, seq)
    return F.cross_entropy(logits.transpose(1, 2), targets)
""",
    ],
    "12b.2": [
        """
def char_batches(ids, batch_size, seq_length):
    per_batch = batch_size * seq_length
    num_batches = (len(ids) - 1) // per_batch
    used = num_batches * per_batch
    inputs = ids[:used].view(batch_size, -1)
    targets = ids[1:used + 1].view(batch_size, -1)
    return [(inputs[:, j:j + seq_length], targets[:, j:j + seq_length])
            for j in range(0, num_batches * seq_length, seq_length)]
""",
        """
def char_batches(ids, batch_size, seq_length):
    num_batches = 0
    while (num_batches + 1) * batch_size * seq_length + 1 <= len(ids):
        num_batches += 1
    row_length = num_batches * seq_length
    batches = []
    for b in range(num_batches):
        xs, ys = [], []
        for row in range(batch_size):
            start = row * row_length + b * seq_length
            xs.append(ids[start:start + seq_length])
            ys.append(ids[start + 1:start + seq_length + 1])
        batches.append((torch.stack(xs), torch.stack(ys)))
    return batches
""",
    ],
    "12b.3": [
        """
def top_k_probs(logits, temperature, k):
    scaled = logits / temperature
    kth = scaled.topk(k, dim=-1).values[..., -1:]
    masked = scaled.masked_fill(scaled < kth, float("-inf"))
    return torch.softmax(masked, dim=-1)
""",
        """
def top_k_probs(logits, temperature, k):
    scaled = logits / temperature
    values, indices = torch.topk(scaled, k, dim=-1)
    out = torch.zeros_like(scaled)
    return out.scatter(-1, indices, torch.softmax(values, dim=-1))
""",
    ],
}

WRONG = {
    "12b.1": [
        # .view on non-contiguous logits
        """
def char_loss(logits, targets):
    return F.cross_entropy(logits.view(-1, logits.shape[-1]), targets.view(-1))
""",
        # a float, not a tensor backward() can go through
        """
def char_loss(logits, targets):
    vocab = logits.shape[-1]
    return F.cross_entropy(logits.reshape(-1, vocab), targets.reshape(-1)).item()
""",
        # the sum over the characters, not the mean
        """
def char_loss(logits, targets):
    vocab = logits.shape[-1]
    return F.cross_entropy(logits.reshape(-1, vocab), targets.reshape(-1), reduction="sum")
""",
    ],
    "12b.2": [
        # forgets the extra id for the last target: one batch too many on an exact multiple
        """
def char_batches(ids, batch_size, seq_length):
    per_batch = batch_size * seq_length
    num_batches = len(ids) // per_batch
    used = num_batches * per_batch
    inputs = ids[:used].view(batch_size, -1)
    targets = torch.cat([ids[1:used], ids[:1]])[:used].view(batch_size, -1)
    return [(inputs[:, j:j + seq_length], targets[:, j:j + seq_length])
            for j in range(0, num_batches * seq_length, seq_length)]
""",
        # consecutive chunks side by side: row i does not continue row i of the batch before
        """
def char_batches(ids, batch_size, seq_length):
    per_batch = batch_size * seq_length
    num_batches = (len(ids) - 1) // per_batch
    batches = []
    for b in range(num_batches):
        start = b * per_batch
        inputs = ids[start:start + per_batch].view(batch_size, seq_length)
        targets = ids[start + 1:start + per_batch + 1].view(batch_size, seq_length)
        batches.append((inputs, targets))
    return batches
""",
        # targets shifted by one row's worth (column) instead of one id
        """
def char_batches(ids, batch_size, seq_length):
    per_batch = batch_size * seq_length
    num_batches = (len(ids) - 1) // per_batch
    used = num_batches * per_batch
    inputs = ids[:used].view(batch_size, -1)
    return [(inputs[:, j:j + seq_length], inputs[:, j + 1:j + seq_length + 1])
            for j in range(0, num_batches * seq_length, seq_length)]
""",
    ],
    "12b.3": [
        # temperature applied after the softmax
        """
def top_k_probs(logits, temperature, k):
    values, indices = torch.topk(logits, k, dim=-1)
    probs = torch.softmax(values, dim=-1) / temperature
    return torch.zeros_like(logits).scatter(-1, indices, probs)
""",
        # zeroes the others after a softmax over all: rows no longer sum to 1
        """
def top_k_probs(logits, temperature, k):
    probs = torch.softmax(logits / temperature, dim=-1)
    values, indices = probs.topk(k, dim=-1)
    return torch.zeros_like(probs).scatter(-1, indices, values)
""",
        # topk along dim 0: wrong for a batch of several rows
        """
def top_k_probs(logits, temperature, k):
    scaled = logits / temperature
    kth = scaled.topk(k, dim=0).values[-1:]
    return torch.softmax(scaled.masked_fill(scaled < kth, float("-inf")), dim=-1)
""",
    ],
}

# Answers added after a first pass, other styles and other slips.

# split along the columns
RIGHT["12b.2"].append("""
def char_batches(ids, batch_size, seq_length):
    n = (ids.numel() - 1) // (batch_size * seq_length)
    span = n * seq_length
    x = ids[:batch_size * span].reshape(batch_size, span)
    y = ids[1:batch_size * span + 1].reshape(batch_size, span)
    return list(zip(x.split(seq_length, dim=1), y.split(seq_length, dim=1)))
""")
