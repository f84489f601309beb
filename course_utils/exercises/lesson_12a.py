"""Exercises of lesson 12a: detaching the hidden state, an RNN layer by hand, gradient clipping, one LSTM cell step."""
from __future__ import annotations

import torch
from torch import nn

from course_utils.exercises.framework import (
    Exercise,
    Mistake,
    call,
    expect_tensor,
    forbid,
    generator,
    randint,
    template_of,
    variant,
)
from course_utils.models import sequence

LESSON = "12a_rnn_basics"
HINT_DETACH = "lesson 12a, section 5 (Detaching: truncated back-propagation through time)"
HINT_RNN = "lesson 12a, section 1 (One recurrent layer, by hand)"
HINT_CLIP = "lesson 12a, section 6 (Exploding gradients and clipping)"
HINT_LSTM = "lesson 12a, section 3 (The LSTM and its two states)"


# ---------------------------------------------------------------- 12a.1 detach

def check_detach_hidden(detach_hidden) -> str:
    gen = generator("12a.1")
    batch, hidden = randint(gen, 1, 4), randint(gen, 2, 6)
    x = torch.randn(batch, randint(gen, 2, 5), 3, generator=gen)
    rnn = nn.RNN(3, hidden, batch_first=True)
    lstm = nn.LSTM(3, hidden, num_layers=2, batch_first=True)
    with forbid((sequence, "detach_hidden"), what="sequence.detach_hidden", hint=HINT_DETACH):
        if detach_hidden(None) is not None:
            raise Mistake("detach_hidden(None) should return None: the first batch has no state to pass on yet",
                          HINT_DETACH)
        _, h = rnn(x)                                   # (1, batch, hidden), with a history
        got = detach_hidden(h)
        expect_tensor(got, h.detach(), "detach_hidden(h) for an RNN's h", hint=HINT_DETACH)
        if got.grad_fn is not None or got.requires_grad:
            raise Mistake("the tensor your code returned still has a history (grad_fn); .detach() cuts it, "
                          ".clone() does not", HINT_DETACH)
        _, state = lstm(x)                              # (h, c), each (2, batch, hidden)
        got = detach_hidden(state)
        if not isinstance(got, tuple):
            raise Mistake(f"for an LSTM's (h, c) your code returned {type(got).__name__}; return a tuple "
                          "(h, c): nn.LSTM accepts its state only as a tuple", HINT_DETACH)
        if len(got) != 2:
            raise Mistake(f"for an LSTM's (h, c) your code returned {len(got)} items, expected 2", HINT_DETACH)
        for name, part, original in zip("hc", got, state):
            expect_tensor(part, original.detach(), f"{name} of the LSTM state", hint=HINT_DETACH)
            if part.grad_fn is not None:
                raise Mistake(f"{name} of the LSTM state still has a history (grad_fn): detach both h and c",
                              HINT_DETACH)
        out, _ = lstm(x, got)                           # the detached state must be usable
        out.sum().backward()
    return "None, an RNN's h and an LSTM's (h, c): same values, no history, and the LSTM accepts the result"


SOLUTION_12a_1 = '''
def detach_hidden(hidden):
    """The hidden state (None, a tensor or a tuple (h, c)) with the same values and no history."""
    if hidden is None:
        return None
    if isinstance(hidden, torch.Tensor):
        return hidden.detach()
    return tuple(h.detach() for h in hidden)  # nn.LSTM's (h, c)
'''

DETACH = Exercise(
    id="12a.1", lesson=LESSON, title="Detach a hidden state", name="detach_hidden", hint=HINT_DETACH,
    statement="""
Write `detach_hidden(hidden)` for truncated back-propagation through time: the same state with its
history cut off, so that the next `backward()` stops at the start of the next window.

- in: `None` (no state yet), a tensor (the `h` of `nn.RNN`) or a tuple `(h, c)` (of `nn.LSTM`)
- out: `None`, a tensor, or a tuple `(h, c)`: the same values, without `grad_fn`
- not allowed: `sequence.detach_hidden` (the course's version)

Correct means: equal values and no history for all three kinds of state, and the LSTM accepts the
result as its next state.

See lesson 12a, section 5 (Detaching: truncated back-propagation through time).
""",
    template=template_of(SOLUTION_12a_1),
    solution=SOLUTION_12a_1,
    alternatives=['''
def detach_hidden(hidden):
    if isinstance(hidden, tuple):
        h, c = hidden
        return h.detach(), c.detach()
    return None if hidden is None else hidden.detach()
'''],
    wrong_answers=[
        (variant(SOLUTION_12a_1, ('h.detach', 'h.clone')), "still has a history"),
        (variant(SOLUTION_12a_1,
            ('tuple(h.detach() for h in hidden)', '[h.detach() for h in hidden]'),
        ), "return a tuple"),
        ('''
def detach_hidden(hidden):
    return hidden.detach()
''', "'NoneType' object has no attribute 'detach'"),
    ],
    checker=check_detach_hidden,
)


# ---------------------------------------------------------------- 12a.2 an RNN layer by hand

def _no_recurrent_layers(hint: str):
    return forbid((nn.RNN, "forward"), (nn.RNNCell, "forward"), (torch, "rnn_tanh"), (torch, "rnn_tanh_cell"),
                  what="PyTorch's RNN (nn.RNN or nn.RNNCell)", hint=hint)


def check_rnn_forward(rnn_forward) -> str:
    gen = generator("12a.2")
    tested = []
    for seq, batch in ((randint(gen, 3, 7), randint(gen, 2, 4)), (randint(gen, 2, 4), 1), (1, randint(gen, 2, 3))):
        input_size, hidden = randint(gen, 2, 5), randint(gen, 6, 9)      # hidden != input: transposes show
        rnn = nn.RNN(input_size, hidden)
        x = torch.randn(seq, batch, input_size, generator=gen)
        h0 = torch.randn(batch, hidden, generator=gen)
        with torch.no_grad():
            expected, h_n = rnn(x, h0.unsqueeze(0))                       # (seq, batch, hidden), (1, batch, hidden)
        weights = [p.detach().clone() for p in (rnn.weight_ih_l0, rnn.weight_hh_l0, rnn.bias_ih_l0, rnn.bias_hh_l0)]
        with _no_recurrent_layers(HINT_RNN):
            got = call(rnn_forward, x, h0, *weights, hint=HINT_RNN)
        what = f"for x of shape {(seq, batch, input_size)}"
        if not (isinstance(got, tuple) and len(got) == 2):
            raise Mistake(f"{what} your code returned {type(got).__name__}; return a pair (output, h_last)", HINT_RNN)
        output, h_last = got
        if isinstance(output, torch.Tensor) and output.shape == expected.shape and seq > 1:
            w_ih, w_hh, b_ih, b_hh = weights
            from_h0 = torch.tanh(x @ w_ih.T + b_ih + h0 @ w_hh.T + b_hh)
            if torch.allclose(output, from_h0, atol=1e-5):
                raise Mistake(f"{what} every step used h0: carry the hidden state on, h = tanh(... + h @ W_hh.T "
                              "+ ...) with the h of the step before", HINT_RNN)
            if torch.allclose(torch.tanh(output[0]), expected[0], atol=1e-5) and \
                    not torch.allclose(output[0], expected[0], atol=1e-5):
                raise Mistake(f"{what} your outputs are the values before tanh: h_t = tanh(...)", HINT_RNN)
        expect_tensor(output, expected, f"output {what}", hint=HINT_RNN)
        expect_tensor(h_last, h_n[0], f"h_last {what}", hint=HINT_RNN)
        tested.append(f"{(seq, batch, input_size)}")
    return f"output and last hidden state equal nn.RNN's for x of shapes {', '.join(tested)}"


SOLUTION_12a_2 = '''
def rnn_forward(x, h0, weight_ih, weight_hh, bias_ih, bias_hh):
    """(seq, batch, input) and h0 (batch, hidden) -> (output (seq, batch, hidden), h_last (batch, hidden))."""
    h = h0
    steps = []
    for x_t in x:                                     # x_t: (batch, input)
        h = torch.tanh(x_t @ weight_ih.T + bias_ih + h @ weight_hh.T + bias_hh)  # (batch, hidden)
        steps.append(h)
    return torch.stack(steps), h
'''

RNN = Exercise(
    id="12a.2", lesson=LESSON, title="An RNN layer, step by step", name="rnn_forward", hint=HINT_RNN,
    statement="""
Write `rnn_forward(x, h0, weight_ih, weight_hh, bias_ih, bias_hh)`: one `nn.RNN` layer (tanh,
time first) run over a whole sequence, one step at a time:
`h_t = tanh(x_t @ weight_ih.T + bias_ih + h_(t-1) @ weight_hh.T + bias_hh)`, starting from `h0`.

- in: `x` (seq, batch, input_size); `h0` (batch, hidden); `weight_ih` (hidden, input_size);
  `weight_hh` (hidden, hidden); `bias_ih`, `bias_hh` (hidden,)
- out: a pair `(output, h_last)`: `output` (seq, batch, hidden) holds every step's `h_t`, `h_last`
  (batch, hidden) the last one; no input may change
- not allowed: `nn.RNN`, `nn.RNNCell`

Correct means: both equal (within 1e-5) to `nn.RNN(input_size, hidden)` with these weights, for
random sizes, a batch of 1 and a sequence of one step included.

See lesson 12a, section 1 (One recurrent layer, by hand).
""",
    template=template_of(SOLUTION_12a_2),
    solution=SOLUTION_12a_2,
    alternatives=['''
def rnn_forward(x, h0, weight_ih, weight_hh, bias_ih, bias_hh):
    inputs = F.linear(x, weight_ih, bias_ih)          # every step's input part at once: (seq, batch, hidden)
    output = torch.empty(x.shape[0], *h0.shape)
    h = h0
    for t in range(x.shape[0]):
        h = torch.tanh(inputs[t] + F.linear(h, weight_hh, bias_hh))
        output[t] = h
    return output, output[-1]
'''],
    wrong_answers=[
        ('''
def rnn_forward(x, h0, weight_ih, weight_hh, bias_ih, bias_hh):
    steps = [torch.tanh(x_t @ weight_ih.T + bias_ih + h0 @ weight_hh.T + bias_hh) for x_t in x]
    return torch.stack(steps), steps[-1]
''', "every step used h0"),
        (variant(SOLUTION_12a_2,
            ('torch.tanh(x_t @ weight_ih.T + bias_ih + h @ weight_hh.T + bias_hh)',
             'x_t @ weight_ih.T + bias_ih + h @ weight_hh.T + bias_hh'),
        ), "values before tanh"),
        (variant(SOLUTION_12a_2,
            ('weight_ih.T + bias_ih + h @ weight_hh.T', 'weight_ih + bias_ih + h @ weight_hh'),
        ), "RuntimeError"),
        ('''
def rnn_forward(x, h0, weight_ih, weight_hh, bias_ih, bias_hh):
    rnn = nn.RNN(x.shape[2], h0.shape[1])
    output, h_n = rnn(x, h0[None])
    return output, h_n[0]
''', "your code called PyTorch's RNN"),
    ],
    checker=check_rnn_forward,
)


# ---------------------------------------------------------------- 12a.3 gradient clipping

def _no_clipping(hint: str):
    targets = [(nn.utils, "clip_grad_norm_"), (nn.utils, "clip_grad_norm"),
               (torch.nn.utils.clip_grad, "clip_grad_norm_")]
    for name in ("get_total_norm", "clip_grads_with_norm_"):  # newer PyTorch splits clip_grad_norm_ into these
        if hasattr(nn.utils, name):
            targets.append((nn.utils, name))
    return forbid(*targets, what="nn.utils.clip_grad_norm_", hint=hint)


def check_clip_grad_norm(clip_grad_norm) -> str:
    gen = generator("12a.3")
    tested = []
    for scale in (10.0, 0.05):                           # far above, then below max_norm
        shapes = [(randint(gen, 2, 6), randint(gen, 2, 6)), (randint(gen, 2, 8),), (randint(gen, 1, 3), 3, 2, 2)]
        parameters = [nn.Parameter(torch.randn(shape, generator=gen)) for shape in shapes]
        for p in parameters:
            p.grad = torch.randn(p.shape, generator=gen) * scale
        frozen = nn.Parameter(torch.randn(3, generator=gen))   # no gradient: must be skipped
        grads = [p.grad.clone() for p in parameters]
        total = torch.cat([g.flatten() for g in grads]).norm()
        max_norm = float(torch.rand((), generator=gen)) + 0.5
        factor = min(1.0, max_norm / (total.item() + 1e-6))
        with _no_clipping(HINT_CLIP):
            returned = clip_grad_norm(parameters + [frozen], max_norm)
        what = f"with a total gradient norm of {total.item():.3f} and max_norm {max_norm:.3f}"
        if isinstance(returned, torch.Tensor) and returned.numel() == 1:
            returned = returned.item()
        if not isinstance(returned, float):
            raise Mistake(f"{what} your code returned {type(returned).__name__}; return the total norm before "
                          "clipping, a float or a 0-dimensional tensor", HINT_CLIP)
        if factor < 1 and abs(returned - max_norm) < 1e-3 * max_norm:
            raise Mistake(f"{what} your code returned {returned:.4f}, the norm after clipping; return the norm "
                          "before clipping (worth logging: it shows how often clipping acts)", HINT_CLIP)
        if abs(returned - total.item()) > 1e-4 * total.item():
            raise Mistake(f"{what} your code returned {returned:.4f}, expected the total norm {total.item():.4f}: "
                          "the norm of all gradients together, as one long vector", HINT_CLIP)
        if frozen.grad is not None:
            raise Mistake("your code gave a gradient to a parameter that had none: skip parameters whose .grad is "
                          "None", HINT_CLIP)
        got_norm = torch.cat([p.grad.flatten() for p in parameters]).norm().item()
        if factor < 1:
            each = [min(1.0, max_norm / g.norm().item()) for g in grads]
            if all(torch.allclose(p.grad, g * e, atol=1e-5) for p, g, e in zip(parameters, grads, each)):
                raise Mistake(f"{what} your code clipped each parameter's gradient on its own; clip_grad_norm_ "
                              "scales all of them by one factor, so that their joint norm is max_norm and the "
                              "direction stays the same", HINT_CLIP)
        elif abs(got_norm - total.item()) > 1e-5 * total.item() and abs(got_norm - max_norm) < 1e-4:
            raise Mistake(f"{what} your code scaled the gradients up to max_norm; gradients shorter than max_norm "
                          "must stay as they are", HINT_CLIP)
        for i, (p, g) in enumerate(zip(parameters, grads)):
            expect_tensor(p.grad, g * factor, f"{what}: the gradient of parameter {i}", atol=1e-6, rtol=1e-4,
                          hint=HINT_CLIP)
        tested.append("clipped" if factor < 1 else "left alone")
    return ("gradients scaled together to max_norm when longer, left alone when shorter, parameters without "
            "a gradient skipped; returns the norm before clipping")


SOLUTION_12a_3 = '''
def clip_grad_norm(parameters, max_norm):
    """Scale all gradients together, in place, so that their total norm is at most max_norm; return the norm before."""
    grads = [p.grad for p in parameters if p.grad is not None]
    total_norm = torch.cat([g.flatten() for g in grads]).norm()  # the norm of one long vector
    if total_norm > max_norm:
        for g in grads:
            g.mul_(max_norm / total_norm)          # one factor for all: the direction stays the same
    return total_norm
'''

CLIP = Exercise(
    id="12a.3", lesson=LESSON, title="Gradient clipping by the total norm", name="clip_grad_norm", hint=HINT_CLIP,
    statement="""
Write `clip_grad_norm(parameters, max_norm)`, what `nn.utils.clip_grad_norm_` does: treat the
gradients of all parameters as one long vector; if its length (the total norm) is above
`max_norm`, scale every gradient by the same factor `max_norm / total_norm`, in place, so that the
total norm becomes `max_norm`; otherwise leave them alone. Return the total norm **before** clipping.

- in: `parameters`, a list of `nn.Parameter`s, some of which may have no gradient (`.grad is None`:
  skip them); `max_norm`, a float
- out: the total norm before clipping, a float or a 0-dimensional tensor
- not allowed: `nn.utils.clip_grad_norm_` and its helpers

Correct means: the norm and every gradient equal `nn.utils.clip_grad_norm_`'s within a relative
1e-4, for gradients above and below `max_norm`.

See lesson 12a, section 6 (Exploding gradients and clipping).
""",
    template=template_of(SOLUTION_12a_3),
    solution=SOLUTION_12a_3,
    alternatives=['''
def clip_grad_norm(parameters, max_norm):
    with_grad = [p for p in parameters if p.grad is not None]
    total = math.sqrt(sum(float((p.grad ** 2).sum()) for p in with_grad))
    factor = min(1.0, max_norm / (total + 1e-6))
    for p in with_grad:
        p.grad = p.grad * factor
    return total
'''],
    wrong_answers=[
        ('''
def clip_grad_norm(parameters, max_norm):
    total = 0.0
    for p in parameters:
        if p.grad is not None:
            norm = p.grad.norm()
            total += norm.item() ** 2
            if norm > max_norm:
                p.grad.mul_(max_norm / norm)
    return total ** 0.5
''', "clipped each parameter's gradient on its own"),
        ('''
def clip_grad_norm(parameters, max_norm):
    grads = [p.grad for p in parameters if p.grad is not None]
    total = torch.cat([g.flatten() for g in grads]).norm()
    for g in grads:
        g.mul_(max_norm / total)
    return total
''', "scaled the gradients up to max_norm"),
        ('''
def clip_grad_norm(parameters, max_norm):
    grads = [p.grad for p in parameters if p.grad is not None]
    total = torch.cat([g.flatten() for g in grads]).norm()
    if total > max_norm:
        for g in grads:
            g.mul_(max_norm / total)
    return torch.cat([g.flatten() for g in grads]).norm()
''', "the norm after clipping"),
        ('''
def clip_grad_norm(parameters, max_norm):
    return nn.utils.clip_grad_norm_(parameters, max_norm)
''', "your code called nn.utils.clip_grad_norm_"),
    ],
    checker=check_clip_grad_norm,
)


# ---------------------------------------------------------------- 12a.4 one LSTM cell step

def check_lstm_cell(lstm_cell) -> str:
    gen = generator("12a.4")
    tested = []
    for batch in (randint(gen, 2, 5), 1):
        input_size, hidden = randint(gen, 2, 5), randint(gen, 3, 7)
        cell = nn.LSTMCell(input_size, hidden)
        with torch.no_grad():
            for p in cell.parameters():
                p.copy_(torch.randn(p.shape, generator=gen))     # larger weights: every gate matters
        x = torch.randn(batch, input_size, generator=gen)
        h, c = torch.randn(batch, hidden, generator=gen), torch.randn(batch, hidden, generator=gen)
        with torch.no_grad():
            h_expected, c_expected = cell(x, (h, c))
        weights = [p.detach().clone() for p in (cell.weight_ih, cell.weight_hh, cell.bias_ih, cell.bias_hh)]
        with forbid((nn.LSTMCell, "forward"), (nn.LSTM, "forward"), (torch, "lstm_cell"),
                    what="PyTorch's LSTM (nn.LSTMCell or nn.LSTM)", hint=HINT_LSTM):
            got = call(lstm_cell, x, h, c, *weights, hint=HINT_LSTM)
        what = f"for a batch of {batch}, input_size {input_size}, hidden {hidden}"
        if not (isinstance(got, tuple) and len(got) == 2):
            raise Mistake(f"{what} your code returned {type(got).__name__}; return a pair (h_new, c_new)", HINT_LSTM)
        h_new, c_new = got
        if isinstance(c_new, torch.Tensor) and c_new.shape == c_expected.shape:
            i, f, g, o = (x @ weights[0].T + weights[2] + h @ weights[1].T + weights[3]).chunk(4, dim=1)
            swapped = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(o)   # g and o exchanged
            if torch.allclose(c_new, swapped, atol=1e-5):
                raise Mistake(f"{what} your gates are in the wrong order: PyTorch stacks them input, forget, "
                              "cell candidate (g), output: i, f, g, o = gates.chunk(4, dim=1)", HINT_LSTM)
            if torch.allclose(c_new, torch.sigmoid(f) * c + torch.sigmoid(i) * torch.sigmoid(g), atol=1e-5):
                raise Mistake(f"{what} your candidate g went through a sigmoid; the three gates use sigmoid, the "
                              "candidate values use tanh", HINT_LSTM)
        expect_tensor(c_new, c_expected, f"c_new {what}", hint=HINT_LSTM)
        if isinstance(h_new, torch.Tensor) and h_new.shape == h_expected.shape:
            o_gate = torch.sigmoid(torch.chunk(x @ weights[0].T + weights[2] + h @ weights[1].T + weights[3], 4, 1)[3])
            if torch.allclose(h_new, o_gate * c_expected, atol=1e-5):
                raise Mistake(f"{what} h_new is o * c_new; the output gate multiplies tanh(c_new)", HINT_LSTM)
        expect_tensor(h_new, h_expected, f"h_new {what}", hint=HINT_LSTM)
        tested.append(batch)
    return f"h and c equal nn.LSTMCell's for batches of {tested[0]} and {tested[1]} with random weights"


SOLUTION_12a_4 = '''
def lstm_cell(x, h, c, weight_ih, weight_hh, bias_ih, bias_hh):
    """One LSTM step: x (batch, input), h and c (batch, hidden) -> (h_new, c_new), gates in the order i, f, g, o."""
    gates = x @ weight_ih.T + bias_ih + h @ weight_hh.T + bias_hh   # (batch, 4 * hidden)
    i, f, g, o = gates.chunk(4, dim=1)                               # each (batch, hidden)
    c_new = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)  # forget some, write some
    h_new = torch.sigmoid(o) * torch.tanh(c_new)                     # show some
    return h_new, c_new
'''

LSTM = Exercise(
    id="12a.4", lesson=LESSON, title="One LSTM cell step", name="lstm_cell", hint=HINT_LSTM,
    statement="""
Write `lstm_cell(x, h, c, weight_ih, weight_hh, bias_ih, bias_hh)`: one time step of an LSTM, what
`nn.LSTMCell` computes. The weights stack four blocks of `hidden` rows, in PyTorch's order:
input gate `i`, forget gate `f`, cell candidate `g`, output gate `o`. With
`gates = x @ weight_ih.T + bias_ih + h @ weight_hh.T + bias_hh`, cut into four:

`c_new = σ(f) * c + σ(i) * tanh(g)` and `h_new = σ(o) * tanh(c_new)` (σ: the sigmoid).

- in: `x` (batch, input_size); `h`, `c` (batch, hidden); `weight_ih` (4·hidden, input_size);
  `weight_hh` (4·hidden, hidden); `bias_ih`, `bias_hh` (4·hidden,)
- out: a pair `(h_new, c_new)`, each (batch, hidden); no input may change
- not allowed: `nn.LSTMCell`, `nn.LSTM`

Correct means: both equal to `nn.LSTMCell`'s within 1e-5 for random weights and sizes, a batch
of 1 included.

See lesson 12a, section 3 (The LSTM and its two states).
""",
    template=template_of(SOLUTION_12a_4),
    solution=SOLUTION_12a_4,
    alternatives=['''
def lstm_cell(x, h, c, weight_ih, weight_hh, bias_ih, bias_hh):
    hidden = h.shape[1]
    gates = F.linear(x, weight_ih, bias_ih) + F.linear(h, weight_hh, bias_hh)
    input_gate = gates[:, :hidden].sigmoid()
    forget_gate = gates[:, hidden:2 * hidden].sigmoid()
    candidate = gates[:, 2 * hidden:3 * hidden].tanh()
    output_gate = gates[:, 3 * hidden:].sigmoid()
    c_new = forget_gate * c + input_gate * candidate
    return output_gate * c_new.tanh(), c_new
'''],
    wrong_answers=[
        (variant(SOLUTION_12a_4, (' g, o ', ' o, g ')), "gates are in the wrong order"),
        (variant(SOLUTION_12a_4,
            ('h_new = torch.sigmoid(o) * torch.tanh(c_new)                     # show some\n'
             '    return h_new',
             'return torch.sigmoid(o) * c_new'),
        ), "the output gate multiplies tanh(c_new)"),
        ('''
def lstm_cell(x, h, c, weight_ih, weight_hh, bias_ih, bias_hh):
    gates = torch.sigmoid(x @ weight_ih.T + bias_ih + h @ weight_hh.T + bias_hh)
    i, f, g, o = gates.chunk(4, dim=1)
    c_new = f * c + i * g
    return o * torch.tanh(c_new), c_new
''', "candidate g went through a sigmoid"),
        ('''
def lstm_cell(x, h, c, weight_ih, weight_hh, bias_ih, bias_hh):
    cell = nn.LSTMCell(x.shape[1], h.shape[1])
    return cell(x, (h, c))
''', "your code called PyTorch's LSTM"),
    ],
    checker=check_lstm_cell,
)

EXERCISES = [DETACH, RNN, CLIP, LSTM]
