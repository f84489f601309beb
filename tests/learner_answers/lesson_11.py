"""Lesson 11: answers written by an independent learner from the statements alone."""

RIGHT = {
    "11.1": [
        """
def predict(model, x):
    before = model.training
    model.eval()
    try:
        with torch.no_grad():
            return model(x)
    finally:
        model.train(before)
""",
        """
def predict(model, x):
    mode = model.training
    model.train(False)
    with torch.inference_mode():
        logits = model(x)
    if mode:
        model.train()
    return logits
""",
    ],
    "11.2": [
        """
def batch_norm2d_train(x, weight, bias, eps=1e-5):
    mean = x.mean(dim=(0, 2, 3), keepdim=True)
    var = ((x - mean) ** 2).mean(dim=(0, 2, 3), keepdim=True)
    x_hat = (x - mean) / torch.sqrt(var + eps)
    return x_hat * weight.view(1, -1, 1, 1) + bias.view(1, -1, 1, 1)
""",
        """
def batch_norm2d_train(x, weight, bias, eps=1e-5):
    c = x.shape[1]
    flat = x.transpose(0, 1).reshape(c, -1)             # (C, N*H*W)
    mean = flat.mean(dim=1)
    var = flat.var(dim=1, unbiased=False)
    scale = weight / (var + eps).sqrt()
    shift = bias - mean * scale
    return x * scale[None, :, None, None] + shift[None, :, None, None]
""",
    ],
    "11.3": [
        """
def batch_norm(x, running_mean, running_var, weight, bias, training, momentum=0.1, eps=1e-5):
    if training:
        m = x.shape[0]
        mean = x.mean(dim=0)
        var = x.var(dim=0, unbiased=False)
        with torch.no_grad():
            running_mean.mul_(1 - momentum).add_(momentum * mean)
            running_var.mul_(1 - momentum).add_(momentum * var * m / (m - 1))
    else:
        mean, var = running_mean, running_var
    return (x - mean) / torch.sqrt(var + eps) * weight + bias
""",
        """
def batch_norm(x, running_mean, running_var, weight, bias, training, momentum=0.1, eps=1e-5):
    if not training:
        return weight * (x - running_mean) / (running_var + eps).sqrt() + bias
    mean = x.mean(0)
    centred = x - mean
    biased = (centred * centred).mean(0)
    unbiased = x.var(0, correction=1)
    new_mean = (1 - momentum) * running_mean + momentum * mean.detach()
    new_var = (1 - momentum) * running_var + momentum * unbiased.detach()
    running_mean.copy_(new_mean)
    running_var.copy_(new_var)
    return weight * centred / (biased + eps).sqrt() + bias
""",
    ],
}

WRONG = {
    "11.1": [
        # forgets to put the model back in its mode
        """
def predict(model, x):
    model.eval()
    with torch.no_grad():
        return model(x)
""",
        # forgets eval(): a model in train mode uses batch statistics and moves its running averages
        """
def predict(model, x):
    with torch.no_grad():
        return model(x)
""",
        # forgets no_grad: the logits carry a graph
        """
def predict(model, x):
    mode = model.training
    model.eval()
    logits = model(x)
    model.train(mode)
    return logits
""",
    ],
    "11.2": [
        # statistics over the batch only, per position (the 1-d version applied to images)
        """
def batch_norm2d_train(x, weight, bias, eps=1e-5):
    mean = x.mean(dim=0, keepdim=True)
    var = x.var(dim=0, unbiased=False, keepdim=True)
    return (x - mean) / torch.sqrt(var + eps) * weight.view(1, -1, 1, 1) + bias.view(1, -1, 1, 1)
""",
        # unbiased variance
        """
def batch_norm2d_train(x, weight, bias, eps=1e-5):
    mean = x.mean(dim=(0, 2, 3), keepdim=True)
    var = x.var(dim=(0, 2, 3), keepdim=True)
    return (x - mean) / torch.sqrt(var + eps) * weight.view(1, -1, 1, 1) + bias.view(1, -1, 1, 1)
""",
        # eps added outside the square root
        """
def batch_norm2d_train(x, weight, bias, eps=1e-5):
    mean = x.mean(dim=(0, 2, 3), keepdim=True)
    var = x.var(dim=(0, 2, 3), unbiased=False, keepdim=True)
    return (x - mean) / (torch.sqrt(var) + eps) * weight.view(1, -1, 1, 1) + bias.view(1, -1, 1, 1)
""",
    ],
    "11.3": [
        # stores the biased variance in running_var
        """
def batch_norm(x, running_mean, running_var, weight, bias, training, momentum=0.1, eps=1e-5):
    if training:
        mean = x.mean(dim=0)
        var = x.var(dim=0, unbiased=False)
        running_mean.mul_(1 - momentum).add_(momentum * mean)
        running_var.mul_(1 - momentum).add_(momentum * var)
    else:
        mean, var = running_mean, running_var
    return (x - mean) / torch.sqrt(var + eps) * weight + bias
""",
        # rebinds the names instead of updating the running statistics in place
        """
def batch_norm(x, running_mean, running_var, weight, bias, training, momentum=0.1, eps=1e-5):
    if training:
        mean = x.mean(dim=0)
        var = x.var(dim=0, unbiased=False)
        running_mean = (1 - momentum) * running_mean + momentum * mean
        running_var = (1 - momentum) * running_var + momentum * x.var(dim=0)
    else:
        mean, var = running_mean, running_var
    return (x - mean) / torch.sqrt(var + eps) * weight + bias
""",
        # momentum the wrong way round
        """
def batch_norm(x, running_mean, running_var, weight, bias, training, momentum=0.1, eps=1e-5):
    if training:
        mean = x.mean(dim=0)
        var = x.var(dim=0, unbiased=False)
        running_mean.mul_(momentum).add_((1 - momentum) * mean)
        running_var.mul_(momentum).add_((1 - momentum) * x.var(dim=0))
    else:
        mean, var = running_mean, running_var
    return (x - mean) / torch.sqrt(var + eps) * weight + bias
""",
    ],
}

# Answers added after a first pass, other styles and other slips.

# predicts with a deep copy in eval mode, the model itself untouched
RIGHT["11.1"].append("""
import copy


def predict(model, x):
    twin = copy.deepcopy(model).eval()
    with torch.no_grad():
        return twin(x)
""")
