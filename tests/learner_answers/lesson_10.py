"""Lesson 10: answers written by an independent learner from the statements alone."""

RIGHT = {
    "10.1": [
        """
def fans(weight):
    out_units, in_units = weight.shape[0], weight.shape[1]
    k = math.prod(weight.shape[2:])
    return in_units * k, out_units * k
""",
        """
def fans(weight):
    per_output = weight[0].numel()           # in * kernel positions
    k = per_output // weight.shape[1]
    return int(per_output), int(weight.shape[0] * k)
""",
    ],
    "10.2": [
        """
def scaled_normal_init(gain):
    def init(module):
        if isinstance(module, (nn.Linear, nn.Conv2d)):
            fan_in = module.weight[0].numel()
            nn.init.normal_(module.weight, mean=0.0, std=gain / math.sqrt(fan_in))
            if module.bias is not None:
                nn.init.zeros_(module.bias)
    return init
""",
        """
def scaled_normal_init(gain):
    def init(module):
        if type(module) in (nn.Linear, nn.Conv2d):
            fan_in = math.prod(module.weight.shape[1:])
            with torch.no_grad():
                module.weight.copy_(torch.randn_like(module.weight) * (gain / fan_in ** 0.5))
                if module.bias is not None:
                    module.bias.fill_(0.0)
    return init
""",
    ],
    "10.3": [
        """
def xavier_uniform_(weight):
    k = weight[0, 0].numel()
    fan_in, fan_out = weight.shape[1] * k, weight.shape[0] * k
    bound = math.sqrt(6 / (fan_in + fan_out))
    return nn.init.uniform_(weight, -bound, bound)
""",
        """
def xavier_uniform_(weight):
    receptive = 1
    for side in weight.shape[2:]:
        receptive *= side
    bound = (6.0 / ((weight.shape[0] + weight.shape[1]) * receptive)) ** 0.5
    with torch.no_grad():
        weight.copy_(torch.rand(weight.shape) * 2 * bound - bound)
    return weight
""",
    ],
}

WRONG = {
    "10.1": [
        # forgets the kernel positions
        """
def fans(weight):
    return weight.shape[1], weight.shape[0]
""",
        # swaps the two fans
        """
def fans(weight):
    k = math.prod(weight.shape[2:])
    return weight.shape[0] * k, weight.shape[1] * k
""",
        # tensors, not Python ints
        """
def fans(weight):
    k = torch.tensor(weight.shape[2:]).prod()
    return weight.shape[1] * k, weight.shape[0] * k
""",
    ],
    "10.2": [
        # uses fan_out
        """
def scaled_normal_init(gain):
    def init(module):
        if isinstance(module, (nn.Linear, nn.Conv2d)):
            fan_out = module.weight.shape[0] * module.weight[0, 0].numel()
            nn.init.normal_(module.weight, std=gain / math.sqrt(fan_out))
            if module.bias is not None:
                nn.init.zeros_(module.bias)
    return init
""",
        # changes every module with a weight, BatchNorm and Embedding included
        """
def scaled_normal_init(gain):
    def init(module):
        if hasattr(module, "weight") and module.weight is not None:
            fan_in = module.weight[0].numel()
            nn.init.normal_(module.weight, std=gain / math.sqrt(fan_in))
        if getattr(module, "bias", None) is not None:
            nn.init.zeros_(module.bias)
    return init
""",
        # uniform instead of normal, with the same std
        """
def scaled_normal_init(gain):
    def init(module):
        if isinstance(module, (nn.Linear, nn.Conv2d)):
            std = gain / math.sqrt(module.weight[0].numel())
            bound = std * math.sqrt(3)
            nn.init.uniform_(module.weight, -bound, bound)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
    return init
""",
    ],
    "10.3": [
        # ignores the kernel size for a convolution
        """
def xavier_uniform_(weight):
    bound = math.sqrt(6 / (weight.shape[0] + weight.shape[1]))
    return nn.init.uniform_(weight, -bound, bound)
""",
        # returns a new tensor instead of filling the given one
        """
def xavier_uniform_(weight):
    k = weight[0, 0].numel()
    bound = math.sqrt(6 / ((weight.shape[0] + weight.shape[1]) * k))
    return nn.Parameter(torch.empty(weight.shape).uniform_(-bound, bound))
""",
        # the square root forgotten
        """
def xavier_uniform_(weight):
    k = weight[0, 0].numel()
    bound = 6 / ((weight.shape[0] + weight.shape[1]) * k)
    return nn.init.uniform_(weight, -bound, bound)
""",
    ],
}

# Answers added after a first pass, other styles and other slips.

# nn.init's private fan helper (only 10.1 forbids it)
RIGHT["10.3"].append("""
def xavier_uniform_(weight):
    fan_in, fan_out = nn.init._calculate_fan_in_and_fan_out(weight)
    b = math.sqrt(6.0 / (fan_in + fan_out))
    with torch.no_grad():
        weight.uniform_(-b, b)
    return weight
""")

# kaiming_normal_ (linear) scaled by the gain
RIGHT["10.2"].append("""
def scaled_normal_init(gain):
    def init(module):
        if isinstance(module, (nn.Linear, nn.Conv2d)):
            nn.init.kaiming_normal_(module.weight, nonlinearity="linear")
            with torch.no_grad():
                module.weight.mul_(gain)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
    return init
""")
