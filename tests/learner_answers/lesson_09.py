"""Lesson 09: answers written by an independent learner from the statements alone."""

RIGHT = {
    "09.1": [
        """
def conv_output_size(size, kernel_size, stride=1, padding=0, dilation=1):
    span = dilation * (kernel_size - 1) + 1
    return (size + 2 * padding - span) // stride + 1
""",
        """
def conv_output_size(size, kernel_size, stride=1, padding=0, dilation=1):
    padded = size + padding + padding
    last_start = padded - (kernel_size - 1) * dilation - 1
    return int(math.floor(last_start / stride)) + 1
""",
    ],
    "09.2": [
        """
def feature_maps(model, layer, x):
    caught = {}

    def hook(module, inputs, output):
        caught["out"] = output.detach()

    handle = layer.register_forward_hook(hook)
    try:
        model(x)
    finally:
        handle.remove()
    return caught["out"]
""",
        """
def feature_maps(model, layer, x):
    outputs = []
    handle = layer.register_forward_hook(lambda m, i, o: outputs.append(o))
    with torch.no_grad():
        model(x)
    handle.remove()
    return outputs[0]
""",
    ],
    "09.3": [
        """
def conv2d(x, weight, bias, stride=1, padding=0):
    n, _, h, w = x.shape
    c_out, _, kh, kw = weight.shape
    cols = F.unfold(x, (kh, kw), padding=padding, stride=stride)      # (N, C_in*kh*kw, L)
    out = weight.reshape(c_out, -1) @ cols + bias.view(1, -1, 1)      # (N, C_out, L)
    h_out = (h + 2 * padding - kh) // stride + 1
    w_out = (w + 2 * padding - kw) // stride + 1
    return out.view(n, c_out, h_out, w_out)
""",
        """
def conv2d(x, weight, bias, stride=1, padding=0):
    kh, kw = weight.shape[2], weight.shape[3]
    cols = F.unfold(x, kernel_size=(kh, kw), padding=padding, stride=stride)
    out = torch.matmul(cols.transpose(1, 2), weight.flatten(1).t()) + bias  # (N, L, C_out)
    h_out = (x.shape[2] + 2 * padding - kh) // stride + 1
    return out.transpose(1, 2).unflatten(2, (h_out, -1))
""",
    ],
}

WRONG = {
    "09.1": [
        # forgets the dilation
        """
def conv_output_size(size, kernel_size, stride=1, padding=0, dilation=1):
    return (size + 2 * padding - kernel_size) // stride + 1
""",
        # a float, not an int
        """
def conv_output_size(size, kernel_size, stride=1, padding=0, dilation=1):
    return math.floor((size + 2 * padding - dilation * (kernel_size - 1) - 1) / stride + 1) * 1.0
""",
        # pads only one side
        """
def conv_output_size(size, kernel_size, stride=1, padding=0, dilation=1):
    return (size + padding - dilation * (kernel_size - 1) - 1) // stride + 1
""",
    ],
    "09.2": [
        # calls the layer on x itself
        """
def feature_maps(model, layer, x):
    return layer(x).detach()
""",
        # never removes the hook
        """
def feature_maps(model, layer, x):
    outputs = []
    layer.register_forward_hook(lambda m, i, o: outputs.append(o.detach()))
    model(x)
    return outputs[-1]
""",
        # forgets to detach
        """
def feature_maps(model, layer, x):
    outputs = []
    handle = layer.register_forward_hook(lambda m, i, o: outputs.append(o))
    model(x)
    handle.remove()
    return outputs[0]
""",
    ],
    "09.3": [
        # forgets the bias
        """
def conv2d(x, weight, bias, stride=1, padding=0):
    n, _, h, w = x.shape
    c_out, _, kh, kw = weight.shape
    cols = F.unfold(x, (kh, kw), padding=padding, stride=stride)
    out = weight.reshape(c_out, -1) @ cols
    h_out = (h + 2 * padding - kh) // stride + 1
    w_out = (w + 2 * padding - kw) // stride + 1
    return out.view(n, c_out, h_out, w_out)
""",
        # output size without the stride
        """
def conv2d(x, weight, bias, stride=1, padding=0):
    n, _, h, w = x.shape
    c_out, _, kh, kw = weight.shape
    cols = F.unfold(x, (kh, kw), padding=padding, stride=stride)
    out = weight.reshape(c_out, -1) @ cols + bias.view(1, -1, 1)
    h_out = h + 2 * padding - kh + 1
    return out.reshape(n, c_out, h_out, -1)
""",
        # F.conv2d is refused
        """
def conv2d(x, weight, bias, stride=1, padding=0):
    F.unfold(x, weight.shape[2:], padding=padding, stride=stride)
    return F.conv2d(x, weight, bias, stride=stride, padding=padding)
""",
    ],
}

# Answers added after a first pass, other styles and other slips.

# einsum for the matrix product
RIGHT["09.3"].append("""
def conv2d(x, weight, bias, stride=1, padding=0):
    n, _, h, w = x.shape
    c_out, _, kh, kw = weight.shape
    cols = F.unfold(x, (kh, kw), padding=padding, stride=stride)
    out = torch.einsum("ok,nkl->nol", weight.reshape(c_out, -1), cols) + bias[:, None]
    return out.reshape(n, c_out, (h + 2 * padding - kh) // stride + 1, (w + 2 * padding - kw) // stride + 1)
""")

# the hook on the model instead of the layer
WRONG["09.2"].append("""
def feature_maps(model, layer, x):
    out = []
    h = model.register_forward_hook(lambda m, i, o: out.append(o.detach()))
    model(x)
    h.remove()
    return out[0]
""")
