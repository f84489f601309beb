"""Exercises of lesson 12a: detaching the hidden state, a stacked RNN by hand, gradient clipping, one LSTM step."""
from __future__ import annotations

import torch
from torch import nn

from course_utils.exercises.framework import (
    Exercise,
    Mistake,
    call,
    describe,
    expect_tensor,
    forbid,
    generator,
    randint,
    template_of,
    variant,
)
from course_utils.models import sequence

LESSON = "12a_rnn_basics"


# ---------------------------------------------------------------- 12a.1 Detach a hidden state

HINT_1 = "section 5 (Detaching: truncated back-propagation through time): what .detach() cuts"

def check_detach_hidden(detach_hidden) -> str:
    gen = generator("12a.1")
    batch, hidden = randint(gen, 1, 4), randint(gen, 2, 6)
    x = torch.randn(batch, randint(gen, 2, 5), 3, generator=gen)
    rnn = nn.RNN(3, hidden, batch_first=True)
    lstm = nn.LSTM(3, hidden, num_layers=2, batch_first=True)
    with forbid((sequence, "detach_hidden"), what="sequence.detach_hidden", hint=HINT_1):
        try:
            first = detach_hidden(None)
        except AttributeError as err:
            raise Mistake(f"detach_hidden(None) raised AttributeError ({err}): before the first batch there is no "
                          "state yet, and None has no .detach(); return None for it", HINT_1) from None
        if first is not None:
            raise Mistake("detach_hidden(None) should return None: the first batch has no state to pass on yet",
                          HINT_1)
        _, h = rnn(x)                                   # (1, batch, hidden), with a history
        got = detach_hidden(h)
        expect_tensor(got, h.detach(), "detach_hidden(h) for an RNN's h", hint=HINT_1)
        if got.grad_fn is not None or got.requires_grad:
            raise Mistake("the tensor your code returned still has a history (grad_fn); .detach() cuts it, "
                          ".clone() does not", HINT_1)
        _, state = lstm(x)                              # (h, c), each (2, batch, hidden)
        got = detach_hidden(state)
        if not isinstance(got, tuple):
            raise Mistake(f"for an LSTM's (h, c) your code returned {type(got).__name__}; return a tuple "
                          "(h, c): nn.LSTM accepts its state only as a tuple", HINT_1)
        if len(got) != 2:
            raise Mistake(f"for an LSTM's (h, c) your code returned {len(got)} items, expected 2", HINT_1)
        for name, part, original in zip("hc", got, state):
            expect_tensor(part, original.detach(), f"{name} of the LSTM state", hint=HINT_1)
            if part.grad_fn is not None:
                raise Mistake(f"{name} of the LSTM state still has a history (grad_fn): detach both h and c",
                              HINT_1)
        out, _ = lstm(x, got)                           # the detached state must be usable
        out.sum().backward()
    return "None, an RNN's h and an LSTM's (h, c): same values, no history, and the LSTM accepts the result"


SOLUTION_1 = '''
def detach_hidden(hidden):
    """The hidden state (None, a tensor or a tuple (h, c)) with the same values and no history."""
    if hidden is None:
        return None
    if isinstance(hidden, torch.Tensor):
        return hidden.detach()
    return tuple(h.detach() for h in hidden)  # nn.LSTM's (h, c)
'''

EX_1 = Exercise(
    id="12a.1", lesson=LESSON, title="Detach a hidden state", name="detach_hidden", hint=HINT_1,
    more_hints=["three cases: None stays None, a tensor gets .detach(), and a tuple (h, c) gets each part detached",
                "nn.LSTM accepts its state only as a tuple: build a tuple again, not a list"],
    statement="""
Write `detach_hidden(hidden)` for truncated back-propagation through time: the same state with its
history cut off, so that the next `backward()` stops at the start of the next window.

- **In:** `hidden`: `None` (no state yet), a tensor (the `h` of `nn.RNN`) or a tuple `(h, c)` (of `nn.LSTM`).
- **Out:** `None`, a tensor, or a tuple `(h, c)`: the same values, without `grad_fn`.
- **Use:** `.detach()`, `isinstance`; not `sequence.detach_hidden` (the course's version).
- **Correct means:** `None` for `None`; equal values and no history for an RNN's `h` and for both parts of
  a 2-layer LSTM's `(h, c)`, returned as a tuple the LSTM accepts as its next state.
- **Reread:** section 5, *Detaching: truncated back-propagation through time*.
""",
    template=template_of(SOLUTION_1),
    solution=SOLUTION_1,
    alternatives=['''
def detach_hidden(hidden):
    if isinstance(hidden, tuple):
        h, c = hidden
        return h.detach(), c.detach()
    return None if hidden is None else hidden.detach()
'''],
    wrong_answers=[
        (variant(SOLUTION_1, ('h.detach', 'h.clone')), "still has a history"),
        (variant(SOLUTION_1,
            ('tuple(h.detach() for h in hidden)', '[h.detach() for h in hidden]'),
        ), "return a tuple"),
        ('''
def detach_hidden(hidden):
    return hidden.detach()
''', "return None for it"),
        (variant(SOLUTION_1, ("tuple(h.detach() for h in hidden)", "(hidden[0].detach(), hidden[1])")),
         "detach both h and c"),
        ('''
from course_utils.models import sequence


def detach_hidden(hidden):
    return sequence.detach_hidden(hidden)
''', "your code called sequence.detach_hidden"),
    ],
    checker=check_detach_hidden,
)


# ---------------------------------------------------------------- 12a.2 A stacked RNN, batch first, by hand

HINT_2 = ("section 2 (Shapes: batch_first and stacked layers): output is the top layer at every step, h_n every "
          "layer at the last step")


def _no_recurrent_layers(hint: str):
    return forbid((nn.RNN, "forward"), (nn.RNNCell, "forward"), (torch, "rnn_tanh"), (torch, "rnn_tanh_cell"),
                  what="PyTorch's RNN (nn.RNN or nn.RNNCell)", hint=hint)


def _run_layers(x: torch.Tensor, h0: torch.Tensor, layers: list, same_start: bool = False) -> list[torch.Tensor]:
    """Each layer's outputs (batch, seq, hidden), bottom first; same_start: every layer starts from h0[0]."""
    outputs, inputs = [], x
    for k, (w_ih, w_hh, b_ih, b_hh) in enumerate(layers):
        h, steps = h0[0 if same_start else k], []
        for t in range(x.shape[1]):
            h = torch.tanh(inputs[:, t] @ w_ih.T + b_ih + h @ w_hh.T + b_hh)
            steps.append(h)
        inputs = torch.stack(steps, dim=1)
        outputs.append(inputs)
    return outputs


def _rnn_mistake(err: RuntimeError, batch_first: bool = False) -> str:
    """The usual cause of a RuntimeError in a recurrent step written by hand, in plain words, or ''."""
    text = str(err).strip()
    if "cannot be multiplied" in text:
        return (f"your code raised RuntimeError ({text}): a shape mismatch in a matrix product; a weight has one "
                "row per output unit and one column per input, so a batch (batch, inputs) is multiplied by the "
                "transposed weight, weight_ih.T (and weight_hh.T)")
    if batch_first and "must match the size of tensor" in text:
        return (f"your code raised RuntimeError ({text}): the two halves of a step have different shapes; with "
                "batch_first=True the steps run along dim 1, so step t is x[:, t] (batch, inputs), not x[t]")
    return ""


def check_stacked_rnn(stacked_rnn) -> str:
    gen = generator("12a.2")
    tested = []
    for num_layers, batch in ((2, randint(gen, 2, 4)), (3, 1)):        # always several layers: the top one shows
        seq = randint(gen, 3, 6) + (batch if batch > 2 else 0)         # seq != batch: a step over dim 0 shows
        input_size, hidden = randint(gen, 2, 5), randint(gen, 6, 9)    # input != hidden: a missing .T shows
        rnn = nn.RNN(input_size, hidden, num_layers=num_layers, batch_first=True)
        with torch.no_grad():
            for p in rnn.parameters():
                p.copy_(torch.randn(p.shape, generator=gen) * 0.6)    # larger than the default: layers differ more
        x = torch.randn(batch, seq, input_size, generator=gen)
        h0 = torch.randn(num_layers, batch, hidden, generator=gen)
        with torch.no_grad():
            expected, h_n = rnn(x, h0)                                 # (batch, seq, hidden), (layers, batch, hidden)
        layers = [tuple(getattr(rnn, f"{name}_l{k}").detach().clone()
                        for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")) for k in range(num_layers)]
        what = f"for {num_layers} layers and x of shape {(batch, seq, input_size)}"
        with _no_recurrent_layers(HINT_2):
            try:
                got = call(stacked_rnn, x, h0, layers, hint=HINT_2)
            except RuntimeError as err:
                cause = _rnn_mistake(err, batch_first=True)
                if not cause:
                    raise
                raise Mistake(f"{what}: {cause}", HINT_2) from None
        if not (isinstance(got, tuple) and len(got) == 2):
            raise Mistake(f"{what} your code returned {describe(got)}; return a pair (output, h_n)", HINT_2)
        output, last = got
        if isinstance(output, torch.Tensor) and output.shape == expected.shape:
            bottom = _run_layers(x, h0, layers)[0]
            if torch.allclose(output, bottom, atol=1e-5):
                raise Mistake(f"{what} your output holds the bottom layer's hidden states; output is the top "
                              "layer's, at every step: each layer reads the outputs of the layer below it", HINT_2)
            if torch.allclose(output, _run_layers(x, h0, layers, same_start=True)[-1], atol=1e-5):
                raise Mistake(f"{what} every layer started from h0[0]; layer k starts from its own initial state "
                              "h0[k]", HINT_2)
        expect_tensor(output, expected, f"output {what}", hint=HINT_2)
        if isinstance(last, torch.Tensor) and last.shape == h_n.shape[1:]:
            raise Mistake(f"{what} your h_n has shape {tuple(last.shape)}, one layer's; h_n holds every layer's "
                          f"last hidden state, stacked: {tuple(h_n.shape)} (num_layers, batch, hidden)", HINT_2)
        expect_tensor(last, h_n, f"h_n {what}", hint=HINT_2)
        tested.append(f"{num_layers} layers, x {(batch, seq, input_size)}")
    return f"output and h_n equal those of nn.RNN(num_layers=..., batch_first=True) for {'; '.join(tested)}"


SOLUTION_2 = '''
def stacked_rnn(x, h0, layers):
    """x (batch, seq, in), h0 (layers, batch, hidden) -> (top layer's outputs (batch, seq, hidden), h_n)."""
    inputs = x.unbind(dim=1)                        # the steps, each (batch, in): time runs along dim 1
    last_states = []
    for (w_ih, w_hh, b_ih, b_hh), h in zip(layers, h0):
        outputs = []
        for x_t in inputs:
            h = torch.tanh(x_t @ w_ih.T + b_ih + h @ w_hh.T + b_hh)
            outputs.append(h)
        inputs = outputs                            # the next layer reads this layer's outputs
        last_states.append(h)
    return torch.stack(inputs, dim=1), torch.stack(last_states)
'''

EX_2 = Exercise(
    id="12a.2", lesson=LESSON, title="A stacked RNN, batch first, by hand", name="stacked_rnn", hint=HINT_2,
    more_hints=["loop over the layers, and inside over the steps x[:, t]; each layer starts from its own h0[k] and "
                "its outputs, one per step, are the next layer's inputs",
                "after the last layer, stack its outputs along dim 1 to get (batch, seq, hidden); stack every layer's "
                "final h along a new dim 0 to get h_n"],
    statement="""
Write `stacked_rnn(x, h0, layers)`: what `nn.RNN(..., num_layers=len(layers), batch_first=True)`
computes, written with section 1's step `h_t = tanh(x_t @ weight_ih.T + bias_ih + h_(t-1) @ weight_hh.T + bias_hh)`.
Section 1 ran one layer, time first; here the input is batch first, and the layers are stacked: the
first layer reads `x`, every higher layer reads the outputs of the layer below, and each layer starts
from its own initial state.

- **In:** `x` (batch, seq, input_size); `h0` (num_layers, batch, hidden); `layers`, a list of `num_layers`
  tuples `(weight_ih, weight_hh, bias_ih, bias_hh)`, bottom layer first: `weight_ih` is (hidden, input_size)
  for the first layer and (hidden, hidden) above it, `weight_hh` (hidden, hidden), the biases (hidden,).
- **Out:** a pair `(output, h_n)`: `output` (batch, seq, hidden), the **top** layer's hidden state at every
  step; `h_n` (num_layers, batch, hidden), **every** layer's hidden state at the last step; no input changed.
- **Use:** tensor operations and Python loops over layers and steps; not `nn.RNN` or `nn.RNNCell`.
- **Correct means:** both equal (within 1e-5) to `nn.RNN`'s with these weights, for 2 layers and a batch of
  several sequences, and for 3 layers and a batch of 1, with the sequence length different from the batch size.
- **Reread:** section 2, *Shapes: `batch_first` and stacked layers*.
""",
    template=template_of(SOLUTION_2),
    solution=SOLUTION_2,
    alternatives=['''
def stacked_rnn(x, h0, layers):
    out, h_n = x, []
    for k, (w_ih, w_hh, b_ih, b_hh) in enumerate(layers):
        h, states = h0[k], []
        for t in range(x.shape[1]):
            h = torch.tanh(F.linear(out[:, t], w_ih, b_ih) + F.linear(h, w_hh, b_hh))
            states.append(h)
        out = torch.stack(states, dim=1)
        h_n.append(h)
    return out, torch.stack(h_n)
'''],
    wrong_answers=[
        (variant(SOLUTION_2, ("        last_states.append(h)\n", "        last_states.append(h)\n        break\n")),
         "bottom layer's hidden states"),
        (variant(SOLUTION_2, ("zip(layers, h0)", "zip(layers, [h0[0]] * len(layers))")), "started from h0[0]"),
        (variant(SOLUTION_2, ("torch.stack(last_states)", "last_states[-1]")), "every layer's last hidden state"),
        (variant(SOLUTION_2, ("x.unbind(dim=1)", "x.unbind(dim=0)")), "the steps run along dim 1"),
        (variant(SOLUTION_2, ("x_t @ w_ih.T", "x_t @ w_ih")), "multiplied by the transposed weight"),
        ('''
def stacked_rnn(x, h0, layers):
    rnn = nn.RNN(x.shape[2], h0.shape[2], num_layers=len(layers), batch_first=True)
    return rnn(x, h0)
''', "your code called PyTorch's RNN"),
    ],
    checker=check_stacked_rnn,
)


# ---------------------------------------------------------------- 12a.3 Gradient clipping by the total norm

HINT_3 = "section 6 (Exploding gradients and clipping): one factor for all gradients together"

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
        with _no_clipping(HINT_3):
            try:
                returned = clip_grad_norm(parameters + [frozen], max_norm)
            except (AttributeError, TypeError) as err:
                if "NoneType" not in str(err):
                    raise
                raise Mistake(f"your code raised {type(err).__name__} ({err}): one of the parameters has no gradient "
                              "(its .grad is None, a frozen or unused parameter); skip those, as "
                              "clip_grad_norm_ does", HINT_3) from None
        what = f"with a total gradient norm of {total.item():.3f} and max_norm {max_norm:.3f}"
        if isinstance(returned, torch.Tensor) and returned.numel() == 1:
            returned = returned.item()
        if not isinstance(returned, float):
            raise Mistake(f"{what} your code returned {type(returned).__name__}; return the total norm before "
                          "clipping, a float or a 0-dimensional tensor", HINT_3)
        if factor < 1 and abs(returned - max_norm) < 1e-3 * max_norm:
            raise Mistake(f"{what} your code returned {returned:.4f}, the norm after clipping; return the norm "
                          "before clipping (worth logging: it shows how often clipping acts)", HINT_3)
        if abs(returned - total.item()) > 1e-4 * total.item():
            raise Mistake(f"{what} your code returned {returned:.4f}, expected the total norm {total.item():.4f}: "
                          "the norm of all gradients together, as one long vector", HINT_3)
        if frozen.grad is not None:
            raise Mistake("your code gave a gradient to a parameter that had none: skip parameters whose .grad is "
                          "None", HINT_3)
        got_norm = torch.cat([p.grad.flatten() for p in parameters]).norm().item()
        if factor < 1:
            each = [min(1.0, max_norm / g.norm().item()) for g in grads]
            if all(torch.allclose(p.grad, g * e, atol=1e-5) for p, g, e in zip(parameters, grads, each)):
                raise Mistake(f"{what} your code clipped each parameter's gradient on its own; clip_grad_norm_ "
                              "scales all of them by one factor, so that their joint norm is max_norm and the "
                              "direction stays the same", HINT_3)
        elif abs(got_norm - total.item()) > 1e-5 * total.item() and abs(got_norm - max_norm) < 1e-4:
            raise Mistake(f"{what} your code scaled the gradients up to max_norm; gradients shorter than max_norm "
                          "must stay as they are", HINT_3)
        for i, (p, g) in enumerate(zip(parameters, grads)):
            expect_tensor(p.grad, g * factor, f"{what}: the gradient of parameter {i}", atol=1e-6, rtol=1e-4,
                          hint=HINT_3)
        tested.append("clipped" if factor < 1 else "left alone")
    return ("gradients scaled together to max_norm when longer, left alone when shorter, parameters without "
            "a gradient skipped; returns the norm before clipping")


SOLUTION_3 = '''
def clip_grad_norm(parameters, max_norm):
    """Scale all gradients together, in place, so that their total norm is at most max_norm; return the norm before."""
    grads = [p.grad for p in parameters if p.grad is not None]
    total_norm = torch.cat([g.flatten() for g in grads]).norm()  # the norm of one long vector
    if total_norm > max_norm:
        for g in grads:
            g.mul_(max_norm / total_norm)          # one factor for all: the direction stays the same
    return total_norm
'''

EX_3 = Exercise(
    id="12a.3", lesson=LESSON, title="Gradient clipping by the total norm", name="clip_grad_norm", hint=HINT_3,
    more_hints=["the total norm is the square root of the sum of every gradient's squared values: concatenate the "
                "flattened gradients, or add up the squares, then take one square root",
                "compute the factor max_norm / total once and multiply every gradient by it in place (mul_), only "
                "when the total is above max_norm"],
    statement="""
Write `clip_grad_norm(parameters, max_norm)`, what `nn.utils.clip_grad_norm_` does: treat the
gradients of all parameters as one long vector; if its length (the total norm) is above
`max_norm`, scale every gradient by the same factor `max_norm / total_norm`, in place, so that the
total norm becomes `max_norm`; otherwise leave them alone. Return the total norm **before** clipping.

- **In:** `parameters`, a list of `nn.Parameter`s, some without a gradient (`.grad is None`: skip them);
  `max_norm`, a float.
- **Out:** the total norm before clipping, a Python float or a 0-dim tensor; the gradients changed in place.
- **Use:** tensor operations (`math` is imported); not `nn.utils.clip_grad_norm_` or its helpers.
- **Correct means:** on one set of gradients far above `max_norm` and one below it, a parameter without a
  gradient among them each time: the returned norm within a relative 1e-4 of the true total, every gradient
  equal to `nn.utils.clip_grad_norm_`'s result within a relative 1e-4, and the gradientless parameter left
  without one.
- **Reread:** section 6, *Exploding gradients and clipping*.
""",
    template=template_of(SOLUTION_3),
    solution=SOLUTION_3,
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
        (variant(SOLUTION_3, ("[p.grad for p in parameters if p.grad is not None]", "[p.grad for p in parameters]")),
         "one of the parameters has no gradient"),
    ],
    checker=check_clip_grad_norm,
)


# ---------------------------------------------------------------- 12a.4 One LSTM cell step

HINT_4 = "section 3 (The LSTM and its two states): the gates, in the order input, forget, candidate, output"

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
                    what="PyTorch's LSTM (nn.LSTMCell or nn.LSTM)", hint=HINT_4):
            try:
                got = call(lstm_cell, x, h, c, *weights, hint=HINT_4)
            except RuntimeError as err:
                cause = _rnn_mistake(err)
                if not cause:
                    raise
                raise Mistake(f"for a batch of {batch}: {cause}", HINT_4) from None
        what = f"for a batch of {batch}, input_size {input_size}, hidden {hidden}"
        if not (isinstance(got, tuple) and len(got) == 2):
            raise Mistake(f"{what} your code returned {type(got).__name__}; return a pair (h_new, c_new)", HINT_4)
        h_new, c_new = got
        if isinstance(c_new, torch.Tensor) and c_new.shape == c_expected.shape:
            i, f, g, o = (x @ weights[0].T + weights[2] + h @ weights[1].T + weights[3]).chunk(4, dim=1)
            swapped = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(o)   # g and o exchanged
            if torch.allclose(c_new, swapped, atol=1e-5):
                raise Mistake(f"{what} your gates are in the wrong order: PyTorch stacks them input, forget, "
                              "cell candidate (g), output: i, f, g, o = gates.chunk(4, dim=1)", HINT_4)
            if torch.allclose(c_new, torch.sigmoid(f) * c + torch.sigmoid(i) * torch.sigmoid(g), atol=1e-5):
                raise Mistake(f"{what} your candidate g went through a sigmoid; the three gates use sigmoid, the "
                              "candidate values use tanh", HINT_4)
        expect_tensor(c_new, c_expected, f"c_new {what}", hint=HINT_4)
        if isinstance(h_new, torch.Tensor) and h_new.shape == h_expected.shape:
            o_gate = torch.sigmoid(torch.chunk(x @ weights[0].T + weights[2] + h @ weights[1].T + weights[3], 4, 1)[3])
            if torch.allclose(h_new, o_gate * c_expected, atol=1e-5):
                raise Mistake(f"{what} h_new is o * c_new; the output gate multiplies tanh(c_new)", HINT_4)
        expect_tensor(h_new, h_expected, f"h_new {what}", hint=HINT_4)
        tested.append(batch)
    return f"h and c equal nn.LSTMCell's for batches of {tested[0]} and {tested[1]} with random weights"


SOLUTION_4 = '''
def lstm_cell(x, h, c, weight_ih, weight_hh, bias_ih, bias_hh):
    """One LSTM step: x (batch, input), h and c (batch, hidden) -> (h_new, c_new), gates in the order i, f, g, o."""
    gates = x @ weight_ih.T + bias_ih + h @ weight_hh.T + bias_hh   # (batch, 4 * hidden)
    i, f, g, o = gates.chunk(4, dim=1)                               # each (batch, hidden)
    c_new = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)  # forget some, write some
    h_new = torch.sigmoid(o) * torch.tanh(c_new)                     # show some
    return h_new, c_new
'''

EX_4 = Exercise(
    id="12a.4", lesson=LESSON, title="One LSTM cell step", name="lstm_cell", hint=HINT_4,
    more_hints=["add the two matrix products and both biases to get all four gates at once, (batch, 4 * hidden), "
                "then cut it into four blocks along dim 1",
                "sigmoid for the three gates i, f, o; tanh for the candidate g and again for c_new before the output "
                "gate multiplies it"],
    statement="""
Write `lstm_cell(x, h, c, weight_ih, weight_hh, bias_ih, bias_hh)`: one time step of an LSTM, what
`nn.LSTMCell` computes. The weights stack four blocks of `hidden` rows, in PyTorch's order:
input gate `i`, forget gate `f`, cell candidate `g`, output gate `o`. With
`gates = x @ weight_ih.T + bias_ih + h @ weight_hh.T + bias_hh`, cut into four:
`c_new = σ(f) * c + σ(i) * tanh(g)` and `h_new = σ(o) * tanh(c_new)` (σ: the sigmoid).

- **In:** `x` (batch, input_size); `h`, `c` (batch, hidden); `weight_ih` (4·hidden, input_size);
  `weight_hh` (4·hidden, hidden); `bias_ih`, `bias_hh` (4·hidden,).
- **Out:** a pair `(h_new, c_new)`, each (batch, hidden); no input changed.
- **Use:** tensor operations (`torch.sigmoid`, `torch.tanh`, `chunk` or slicing); not `nn.LSTMCell` or `nn.LSTM`.
- **Correct means:** both equal to `nn.LSTMCell`'s within 1e-5 for random weights and sizes, for a batch of
  several and a batch of 1.
- **Reread:** section 3, *The LSTM and its two states*.
""",
    template=template_of(SOLUTION_4),
    solution=SOLUTION_4,
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
        (variant(SOLUTION_4, (' g, o ', ' o, g ')), "gates are in the wrong order"),
        (variant(SOLUTION_4,
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
        (variant(SOLUTION_4, ("x @ weight_ih.T", "x @ weight_ih")), "multiplied by the transposed weight"),
    ],
    checker=check_lstm_cell,
)

EXERCISES = [EX_1, EX_2, EX_3, EX_4]
