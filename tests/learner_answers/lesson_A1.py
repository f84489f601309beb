"""Appendix A1: answers written by an independent learner from the statements alone."""

BFLOAT16_GAP = """
def bfloat16_gap(x):
    k = torch.floor(torch.log2(x))
    k = torch.where(2.0 ** k > x, k - 1, k)
    k = torch.where(2.0 ** (k + 1) <= x, k + 1, k)
    return 2.0 ** (k - 7)
"""

RIGHT = {
    "A1.1": [
        """
def to_model(model, batch):
    param = next(model.parameters())
    return batch.to(device=param.device, dtype=param.dtype)
""",
        """
def to_model(model, batch):
    for param in model.parameters():
        return batch.to(param)
""",
    ],
    "A1.2": [
        """
def training_bytes(model):
    total = 0
    for p in model.parameters():
        size = p.numel() * p.element_size()
        total += 4 * size if p.requires_grad else size
    return total
""",
        """
def training_bytes(model):
    values = sum(p.nelement() * p.dtype.itemsize for p in model.parameters())
    extra = sum(3 * p.nelement() * p.dtype.itemsize for p in model.parameters() if p.requires_grad)
    return int(values + extra)
""",
    ],
    "A1.3": [
        BFLOAT16_GAP,
        """
def bfloat16_gap(x):
    bits = x.view(torch.int32) & 0x7F800000
    power = bits.view(torch.float32)
    return power / 128
""",
        """
def bfloat16_gap(x):
    mantissa, exponent = torch.frexp(x)
    return torch.ldexp(torch.ones_like(x), exponent - 8)
""",
        """
def bfloat16_gap(x):
    k = torch.floor(torch.log2(x.double()))
    return (2.0 ** (k - 7)).float()
""",
    ],
}

WRONG = {
    "A1.1": [
        # the device only: a float64 model gets a float32 batch
        """
def to_model(model, batch):
    return batch.to(next(model.parameters()).device)
""",
        # the dtype only: the batch stays on the CPU
        """
def to_model(model, batch):
    return batch.to(next(model.parameters()).dtype)
""",
        # the model moved to the batch instead
        """
def to_model(model, batch):
    model.to(device=batch.device, dtype=batch.dtype)
    return batch
""",
    ],
    "A1.2": [
        # four copies also of the frozen parameters
        """
def training_bytes(model):
    return sum(4 * p.numel() * p.element_size() for p in model.parameters())
""",
        # 4 bytes per number whatever the dtype
        """
def training_bytes(model):
    total = 0
    for p in model.parameters():
        total += p.numel() * 4 * (4 if p.requires_grad else 1)
    return total
""",
        # the gradient forgotten: three copies
        """
def training_bytes(model):
    return sum((3 if p.requires_grad else 1) * p.numel() * p.element_size() for p in model.parameters())
""",
        # a float
        """
def training_bytes(model):
    total = 0.0
    for p in model.parameters():
        total += (4 if p.requires_grad else 1) * p.numel() * p.element_size()
    return total
""",
        # the state dict, with batch norm's buffers
        """
def training_bytes(model):
    total = 0
    for name, t in model.state_dict().items():
        params = dict(model.named_parameters())
        copies = 4 if name in params and params[name].requires_grad else 1
        total += copies * t.numel() * t.element_size()
    return total
""",
    ],
    "A1.3": [
        # floor(log2(x)) trusted next to a power of two
        """
def bfloat16_gap(x):
    return 2.0 ** (torch.floor(torch.log2(x)) - 7)
""",
        # half the gap (the rounding error, not the spacing)
        BFLOAT16_GAP.replace("(k - 7)", "(k - 8)"),
        # rounded to the nearest bfloat16, which may be the power of two above
        """
def bfloat16_gap(x):
    b = x.to(torch.bfloat16)
    up = torch.nextafter(b, torch.full_like(b, float("inf")))
    return (up - b).float()
""",
        # computed in float64 and returned so
        """
def bfloat16_gap(x):
    k = torch.floor(torch.log2(x.double()))
    return 2.0 ** (k - 7)
""",
        # x changed in place
        """
def bfloat16_gap(x):
    k = torch.floor(x.log2_())
    return 2.0 ** (k - 7)
""",
    ],
}
