"""Lesson 02: answers written by an independent learner from the statements alone."""

RIGHT = {
    "02.1": [
        """
def top_probability(logits):
    shifted = logits - logits.max(dim=1, keepdim=True).values
    e = shifted.exp()
    return e.max(dim=1).values / e.sum(dim=1)
""",
        """
def top_probability(logits):
    # the top class's shifted logit is 0, so its exp is 1
    top = logits.amax(dim=1, keepdim=True)
    return 1.0 / torch.exp(logits - top).sum(dim=1)
""",
    ],
    "02.2": [
        """
def linear_from_weights(W, b):
    layer = nn.Linear(W.shape[0], W.shape[1])
    with torch.no_grad():
        layer.weight.copy_(W.T)
        layer.bias.copy_(b)
    return layer
""",
        """
def linear_from_weights(W, b):
    n_in, n_out = W.shape
    layer = nn.Linear(n_in, n_out, bias=True)
    layer.weight = nn.Parameter(W.t().clone())
    layer.bias = nn.Parameter(b.clone())
    return layer
""",
    ],
    "02.3": [
        """
from collections import OrderedDict


def build_network(input_size, hidden_sizes, output_size):
    layers = [("flatten", nn.Flatten())]
    previous = input_size
    for number, size in enumerate(hidden_sizes, start=1):
        layers.append((f"fc{number}", nn.Linear(previous, size)))
        layers.append((f"relu{number}", nn.ReLU()))
        previous = size
    layers.append(("output", nn.Linear(previous, output_size)))
    return nn.Sequential(OrderedDict(layers))
""",
        """
from collections import OrderedDict


def build_network(input_size, hidden_sizes, output_size):
    sizes = [input_size] + list(hidden_sizes)
    parts = OrderedDict()
    parts["flatten"] = nn.Flatten()
    for i in range(len(hidden_sizes)):
        parts["fc" + str(i + 1)] = nn.Linear(sizes[i], sizes[i + 1])
        parts["relu" + str(i + 1)] = nn.ReLU()
    parts["output"] = nn.Linear(sizes[-1], output_size)
    return nn.Sequential(parts)
""",
    ],
}

WRONG = {
    "02.1": [
        # exp alone overflows for logits in the hundreds
        """
def top_probability(logits):
    e = logits.exp()
    return e.max(dim=1).values / e.sum(dim=1)
""",
        # softmax is refused
        """
def top_probability(logits):
    return torch.softmax(logits, dim=1).max(dim=1).values
""",
        # normalises over the wrong dim (the batch)
        """
def top_probability(logits):
    e = (logits - logits.max()).exp()
    return (e / e.sum(dim=0, keepdim=True)).max(dim=1).values
""",
    ],
    "02.2": [
        # copies W without transposing it (fails when in != out)
        """
def linear_from_weights(W, b):
    layer = nn.Linear(W.shape[0], W.shape[1])
    with torch.no_grad():
        layer.weight.copy_(W.reshape(W.shape[1], W.shape[0]))
        layer.bias.copy_(b)
    return layer
""",
        # shares memory with W and b
        """
def linear_from_weights(W, b):
    layer = nn.Linear(W.shape[0], W.shape[1])
    layer.weight = nn.Parameter(W.T)
    layer.bias = nn.Parameter(b)
    return layer
""",
    ],
    "02.3": [
        # numbers the layers from 0
        """
from collections import OrderedDict


def build_network(input_size, hidden_sizes, output_size):
    layers = [("flatten", nn.Flatten())]
    previous = input_size
    for number, size in enumerate(hidden_sizes):
        layers.append((f"fc{number}", nn.Linear(previous, size)))
        layers.append((f"relu{number}", nn.ReLU()))
        previous = size
    layers.append(("output", nn.Linear(previous, output_size)))
    return nn.Sequential(OrderedDict(layers))
""",
        # a ReLU after the output layer
        """
from collections import OrderedDict


def build_network(input_size, hidden_sizes, output_size):
    layers = [("flatten", nn.Flatten())]
    previous = input_size
    for number, size in enumerate(hidden_sizes, start=1):
        layers.append((f"fc{number}", nn.Linear(previous, size)))
        layers.append((f"relu{number}", nn.ReLU()))
        previous = size
    layers.append(("output", nn.Linear(previous, output_size)))
    layers.append(("relu_out", nn.ReLU()))
    return nn.Sequential(OrderedDict(layers))
""",
    ],
}

# Answers added after a first pass, other styles and other slips.

# weight.data set to a transposed view of W: shares memory with W
WRONG["02.2"].append("""
def linear_from_weights(W, b):
    layer = nn.Linear(W.shape[0], W.shape[1])
    layer.weight.data = W.t()
    layer.bias.data = b.clone()
    return layer
""")
