"""Lesson 14: answers written by an independent learner from the statements alone."""

RIGHT = {
    "14.1": [
        """
def log_history(writer, history):
    for key, values in history.items():
        tag = key.replace("_", "/", 1)
        for epoch, value in enumerate(values, start=1):
            writer.add_scalar(tag, value, epoch)
""",
        """
def log_history(writer, history):
    num_epochs = len(next(iter(history.values())))
    for i in range(num_epochs):
        for key in history:
            split, _, rest = key.partition("_")
            writer.add_scalar(split + "/" + rest, float(history[key][i]), global_step=i + 1)
""",
    ],
    "14.2": [
        """
def log_histograms(writer, model, step):
    for name, param in model.named_parameters():
        writer.add_histogram(f"weights/{name}", param.detach(), step)
        if param.grad is not None:
            writer.add_histogram(f"gradients/{name}", param.grad, step)
""",
        """
def log_histograms(writer, model, step):
    params = dict(model.named_parameters())
    for name in params:
        writer.add_histogram("weights/" + name, params[name].detach().cpu().numpy(), global_step=step)
    with_grad = {name: p.grad for name, p in params.items() if p.grad is not None}
    for name, grad in with_grad.items():
        writer.add_histogram("gradients/" + name, grad.cpu().numpy(), global_step=step)
""",
    ],
    "14.3": [
        """
from torch.profiler import ProfilerActivity, profile


def calls_per_step(step, num_steps):
    step()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(num_steps):
            step()
    return {e.key: e.count / num_steps for e in prof.key_averages() if e.key.startswith("aten::")}
""",
        """
from torch.profiler import ProfilerActivity, profile


def calls_per_step(step, num_steps):
    prof = profile(activities=[ProfilerActivity.CPU])
    step()
    prof.start()
    for _ in range(num_steps):
        step()
    prof.stop()
    result = {}
    for event in prof.key_averages():
        if event.key.startswith("aten::"):
            result[event.key] = float(event.count) / num_steps
    return result
""",
    ],
}

WRONG = {
    "14.1": [
        # steps counted from 0
        """
def log_history(writer, history):
    for key, values in history.items():
        tag = key.replace("_", "/", 1)
        for epoch, value in enumerate(values):
            writer.add_scalar(tag, value, epoch)
""",
        # every "_" replaced, not only the first
        """
def log_history(writer, history):
    for key, values in history.items():
        for epoch, value in enumerate(values, start=1):
            writer.add_scalar(key.replace("_", "/"), value, epoch)
""",
    ],
    "14.2": [
        # the frozen layer's weights skipped
        """
def log_histograms(writer, model, step):
    for name, param in model.named_parameters():
        if param.requires_grad:
            writer.add_histogram(f"weights/{name}", param.detach(), step)
            writer.add_histogram(f"gradients/{name}", param.grad, step)
""",
        # a gradient logged for every parameter, also the frozen ones that have none
        """
def log_histograms(writer, model, step):
    for name, param in model.named_parameters():
        writer.add_histogram(f"weights/{name}", param.detach(), step)
        writer.add_histogram(f"gradients/{name}", param.grad, step)
""",
        # zeros logged as the frozen layer's gradient
        """
def log_histograms(writer, model, step):
    for name, param in model.named_parameters():
        writer.add_histogram("weights/" + name, param, step)
        grad = param.grad if param.grad is not None else torch.zeros_like(param)
        writer.add_histogram("gradients/" + name, grad, step)
""",
        # the weights overwritten by the gradient step, in place
        """
def log_histograms(writer, model, step):
    for name, param in model.named_parameters():
        if param.grad is not None:
            writer.add_histogram(f"gradients/{name}", param.grad, step)
            param.data.sub_(0.1 * param.grad)
        writer.add_histogram(f"weights/{name}", param.detach(), step)
""",
    ],
    "14.3": [
        # no warm-up step
        """
from torch.profiler import ProfilerActivity, profile


def calls_per_step(step, num_steps):
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(num_steps):
            step()
    return {e.key: e.count / num_steps for e in prof.key_averages() if e.key.startswith("aten::")}
""",
        # the total count, not per step
        """
from torch.profiler import ProfilerActivity, profile


def calls_per_step(step, num_steps):
    step()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(num_steps):
            step()
    return {e.key: e.count for e in prof.key_averages() if e.key.startswith("aten::")}
""",
        # floor division: an int, not the float asked for
        """
from torch.profiler import ProfilerActivity, profile


def calls_per_step(step, num_steps):
    step()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(num_steps):
            step()
    return {e.key: e.count // num_steps for e in prof.key_averages() if e.key.startswith("aten::")}
""",
        # every event kept, also autograd's backward nodes
        """
from torch.profiler import ProfilerActivity, profile


def calls_per_step(step, num_steps):
    step()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(num_steps):
            step()
    return {e.key: e.count / num_steps for e in prof.key_averages()}
""",
        # the warm-up inside the profiler
        """
from torch.profiler import ProfilerActivity, profile


def calls_per_step(step, num_steps):
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        step()
        for _ in range(num_steps):
            step()
    return {e.key: e.count / num_steps for e in prof.key_averages() if e.key.startswith("aten::")}
""",
    ],
}
