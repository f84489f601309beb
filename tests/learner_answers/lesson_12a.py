"""Lesson 12a: answers written by an independent learner from the statements alone."""

RIGHT = {
    "12a.1": [
        """
def detach_hidden(hidden):
    if hidden is None:
        return None
    if isinstance(hidden, tuple):
        return tuple(part.detach() for part in hidden)
    return hidden.detach()
""",
        """
def detach_hidden(hidden):
    if isinstance(hidden, torch.Tensor):
        return hidden.detach()
    if hidden is not None:
        h, c = hidden
        return (h.detach(), c.detach())
    return hidden
""",
    ],
    "12a.2": [
        """
def stacked_rnn(x, h0, layers):
    sequence = x
    finals = []
    for layer, (w_ih, w_hh, b_ih, b_hh) in enumerate(layers):
        h = h0[layer]
        steps = []
        for t in range(sequence.shape[1]):
            h = torch.tanh(sequence[:, t] @ w_ih.T + b_ih + h @ w_hh.T + b_hh)
            steps.append(h)
        sequence = torch.stack(steps, dim=1)
        finals.append(h)
    return sequence, torch.stack(finals)
""",
        """
def stacked_rnn(x, h0, layers):
    batch, seq, _ = x.shape
    hidden = h0.shape[2]
    below = x
    h_n = torch.empty(len(layers), batch, hidden)
    for number, (w_ih, w_hh, b_ih, b_hh) in enumerate(layers):
        projected = below @ w_ih.t() + b_ih          # all steps' input part at once
        out = torch.empty(batch, seq, hidden)
        h = h0[number]
        for t in range(seq):
            h = torch.tanh(projected[:, t, :] + torch.matmul(h, w_hh.t()) + b_hh)
            out[:, t, :] = h
        h_n[number] = h
        below = out
    return below, h_n
""",
    ],
    "12a.3": [
        """
def clip_grad_norm(parameters, max_norm):
    grads = [p.grad for p in parameters if p.grad is not None]
    total = torch.sqrt(sum((g ** 2).sum() for g in grads))
    if total > max_norm:
        factor = max_norm / total
        for g in grads:
            g.mul_(factor)
    return total
""",
        """
def clip_grad_norm(parameters, max_norm):
    squares = 0.0
    for p in parameters:
        if p.grad is not None:
            squares += float(p.grad.pow(2).sum())
    total = math.sqrt(squares)
    if total > max_norm:
        for p in parameters:
            if p.grad is not None:
                p.grad *= max_norm / total
    return total
""",
    ],
    "12a.4": [
        """
def lstm_cell(x, h, c, weight_ih, weight_hh, bias_ih, bias_hh):
    gates = x @ weight_ih.T + bias_ih + h @ weight_hh.T + bias_hh
    i, f, g, o = gates.chunk(4, dim=1)
    c_new = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
    h_new = torch.sigmoid(o) * torch.tanh(c_new)
    return h_new, c_new
""",
        """
def lstm_cell(x, h, c, weight_ih, weight_hh, bias_ih, bias_hh):
    n = h.shape[1]
    gates = F.linear(x, weight_ih, bias_ih) + F.linear(h, weight_hh, bias_hh)
    i = gates[:, 0 * n:1 * n].sigmoid()
    f = gates[:, 1 * n:2 * n].sigmoid()
    g = gates[:, 2 * n:3 * n].tanh()
    o = gates[:, 3 * n:4 * n].sigmoid()
    c_new = f * c + i * g
    return o * c_new.tanh(), c_new
""",
    ],
}

WRONG = {
    "12a.1": [
        # returns a list, which an LSTM does not accept as (h, c)
        """
def detach_hidden(hidden):
    if hidden is None:
        return None
    if isinstance(hidden, tuple):
        return [part.detach() for part in hidden]
    return hidden.detach()
""",
        # detaches only h of an LSTM's (h, c)
        """
def detach_hidden(hidden):
    if hidden is None:
        return None
    if isinstance(hidden, tuple):
        return (hidden[0].detach(), hidden[1])
    return hidden.detach()
""",
        # forgets None
        """
def detach_hidden(hidden):
    if isinstance(hidden, tuple):
        return tuple(part.detach() for part in hidden)
    return hidden.detach()
""",
    ],
    "12a.2": [
        # h_n holds the top layer's last state only
        """
def stacked_rnn(x, h0, layers):
    sequence = x
    for layer, (w_ih, w_hh, b_ih, b_hh) in enumerate(layers):
        h = h0[layer]
        steps = []
        for t in range(sequence.shape[1]):
            h = torch.tanh(sequence[:, t] @ w_ih.T + b_ih + h @ w_hh.T + b_hh)
            steps.append(h)
        sequence = torch.stack(steps, dim=1)
    return sequence, h.unsqueeze(0)
""",
        # every layer starts from h0[0]
        """
def stacked_rnn(x, h0, layers):
    sequence = x
    finals = []
    for w_ih, w_hh, b_ih, b_hh in layers:
        h = h0[0]
        steps = []
        for t in range(sequence.shape[1]):
            h = torch.tanh(sequence[:, t] @ w_ih.T + b_ih + h @ w_hh.T + b_hh)
            steps.append(h)
        sequence = torch.stack(steps, dim=1)
        finals.append(h)
    return sequence, torch.stack(finals)
""",
        # loops over dim 0 as if the input were time first
        """
def stacked_rnn(x, h0, layers):
    sequence = x
    finals = []
    for layer, (w_ih, w_hh, b_ih, b_hh) in enumerate(layers):
        h = h0[layer]
        steps = []
        for t in range(sequence.shape[0]):
            h = torch.tanh(sequence[t] @ w_ih.T + b_ih + h @ w_hh.T + b_hh)
            steps.append(h)
        sequence = torch.stack(steps, dim=0)
        finals.append(h)
    return sequence, torch.stack(finals)
""",
    ],
    "12a.3": [
        # clips every gradient on its own norm
        """
def clip_grad_norm(parameters, max_norm):
    total = 0.0
    for p in parameters:
        if p.grad is not None:
            norm = p.grad.norm()
            total += float(norm) ** 2
            if norm > max_norm:
                p.grad.mul_(max_norm / norm)
    return math.sqrt(total)
""",
        # returns the norm after clipping
        """
def clip_grad_norm(parameters, max_norm):
    grads = [p.grad for p in parameters if p.grad is not None]
    total = torch.sqrt(sum((g ** 2).sum() for g in grads))
    if total > max_norm:
        for g in grads:
            g.mul_(max_norm / total)
        total = torch.sqrt(sum((g ** 2).sum() for g in grads))
    return total
""",
        # sums the norms instead of the squares
        """
def clip_grad_norm(parameters, max_norm):
    grads = [p.grad for p in parameters if p.grad is not None]
    total = sum(g.norm() for g in grads)
    if total > max_norm:
        for g in grads:
            g.mul_(max_norm / total)
    return total
""",
    ],
    "12a.4": [
        # the gates in the order i, f, o, g
        """
def lstm_cell(x, h, c, weight_ih, weight_hh, bias_ih, bias_hh):
    gates = x @ weight_ih.T + bias_ih + h @ weight_hh.T + bias_hh
    i, f, o, g = gates.chunk(4, dim=1)
    c_new = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
    return torch.sigmoid(o) * torch.tanh(c_new), c_new
""",
        # h_new from the old cell state
        """
def lstm_cell(x, h, c, weight_ih, weight_hh, bias_ih, bias_hh):
    gates = x @ weight_ih.T + bias_ih + h @ weight_hh.T + bias_hh
    i, f, g, o = gates.chunk(4, dim=1)
    c_new = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
    return torch.sigmoid(o) * torch.tanh(c), c_new
""",
        # chunks along the batch dimension
        """
def lstm_cell(x, h, c, weight_ih, weight_hh, bias_ih, bias_hh):
    gates = (x @ weight_ih.T + bias_ih + h @ weight_hh.T + bias_hh).T
    i, f, g, o = gates.chunk(4, dim=1)
    c_new = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
    return torch.sigmoid(o) * torch.tanh(c_new), c_new
""",
    ],
}

# Answers added after a first pass, other styles and other slips.

# map over the tuple
RIGHT["12a.1"].append("""
def detach_hidden(hidden):
    if hidden is None:
        return None
    if isinstance(hidden, (tuple, list)):
        return tuple(map(torch.Tensor.detach, hidden))
    return hidden.detach()
""")

# does not skip parameters without a gradient
WRONG["12a.3"].append("""
def clip_grad_norm(parameters, max_norm):
    total = torch.sqrt(sum((p.grad ** 2).sum() for p in parameters))
    if total > max_norm:
        for p in parameters:
            p.grad.mul_(max_norm / total)
    return total
""")
