"""Lesson 01: answers written by an independent learner from the statements alone."""

RIGHT = {
    "01.1": [
        """
def scale_rows(x):
    lo = x.min(dim=1, keepdim=True).values
    hi = x.amax(dim=1, keepdim=True)
    return (x - lo) / (hi - lo)
""",
        """
def scale_rows(x):
    lo = torch.amin(x, 1)[:, None]
    span = torch.amax(x, 1)[:, None] - lo
    return x.sub(lo).div(span)
""",
    ],
    "01.2": [
        """
def pairwise_distances(a, b):
    diff = a.unsqueeze(1) - b.unsqueeze(0)
    return (diff ** 2).sum(dim=-1).sqrt()
""",
        """
def pairwise_distances(a, b):
    diff = a[:, None, :] - b[None, :, :]
    return torch.sqrt(torch.sum(diff * diff, dim=2))
""",
    ],
    "01.3": [
        """
def batched_matmul(a, b):
    # (batch, n, k, 1) * (batch, 1, k, m) -> sum over k
    return (a.unsqueeze(-1) * b.unsqueeze(1)).sum(dim=2)
""",
        """
def batched_matmul(a, b):
    # (batch, n, 1, k) * (batch, 1, m, k) -> sum over k
    return (a[:, :, None, :] * b.transpose(1, 2)[:, None, :, :]).sum(-1)
""",
    ],
}

WRONG = {
    "01.1": [
        # the min/max of the whole tensor, not of each row
        """
def scale_rows(x):
    return (x - x.min()) / (x.max() - x.min())
""",
        # along the wrong dim: the min/max of each column
        """
def scale_rows(x):
    lo = x.min(dim=0, keepdim=True).values
    hi = x.max(dim=0, keepdim=True).values
    return (x - lo) / (hi - lo)
""",
        # changes x in place
        """
def scale_rows(x):
    lo = x.min(dim=1, keepdim=True).values
    hi = x.max(dim=1, keepdim=True).values
    x -= lo
    x /= hi - lo
    return x
""",
    ],
    "01.2": [
        # forgets the square root
        """
def pairwise_distances(a, b):
    return ((a[:, None] - b[None]) ** 2).sum(-1)
""",
        # torch.cdist is refused
        """
def pairwise_distances(a, b):
    return torch.cdist(a, b)
""",
        # sums over the wrong dim after broadcasting
        """
def pairwise_distances(a, b):
    return ((a[:, None] - b[None]) ** 2).sum(1).sqrt()
""",
    ],
    "01.3": [
        # uses the forbidden @
        """
def batched_matmul(a, b):
    return a @ b
""",
        # sums over the wrong dimension
        """
def batched_matmul(a, b):
    return (a.unsqueeze(-1) * b.unsqueeze(1)).sum(dim=1)
""",
    ],
}

# Answers added after a first pass, other styles and other slips.

# the expansion |a|^2 + |b|^2 - 2 a.b
RIGHT["01.2"].append("""
def pairwise_distances(a, b):
    sq = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2 * (a @ b.T)
    return sq.clamp(min=0).sqrt()
""")
