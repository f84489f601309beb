"""Lesson 05: answers written by an independent learner from the statements alone."""

RIGHT = {
    "05.1": [
        """
def dropout(x, p, training, generator):
    if not training:
        return x
    keep = torch.rand(x.shape, generator=generator) >= p
    return torch.where(keep, x / (1 - p), torch.zeros_like(x))
""",
        """
def dropout(x, p, training, generator):
    if training:
        u = torch.empty(x.shape).uniform_(0, 1, generator=generator)
        mask = (u > p).to(x.dtype)
        return x * mask / (1 - p)
    return x.clone()
""",
    ],
    "05.2": [
        """
def evaluate(model, loader, loss_fn):
    was_training = model.training
    model.eval()
    loss_sum, correct, count = 0.0, 0, 0
    try:
        with torch.no_grad():
            for inputs, targets in loader:
                logits = model(inputs)
                n = targets.shape[0]
                loss_sum += loss_fn(logits, targets).item() * n
                correct += (logits.argmax(dim=1) == targets).sum().item()
                count += n
    finally:
        model.train(was_training)
    return {"loss": loss_sum / count, "accuracy": correct / count}
""",
        """
def evaluate(model, loader, loss_fn):
    mode = model.training
    model.eval()
    losses, hits = [], []
    with torch.inference_mode():
        for inputs, targets in loader:
            logits = model(inputs)
            losses.append(loss_fn(logits, targets) * len(targets))
            hits.append(logits.argmax(1) == targets)
    model.train(mode)
    hits = torch.cat(hits)
    return {"loss": float(torch.stack(losses).sum() / len(hits)), "accuracy": float(hits.float().mean())}
""",
    ],
    "05.3": [
        """
class EarlyStopping:
    def __init__(self, patience, min_delta=0.0):
        self.patience = patience
        self.min_delta = min_delta
        self.best_loss = math.inf
        self.best_epoch = 0
        self.epoch = 0
        self.bad_epochs = 0

    def step(self, val_loss):
        self.epoch += 1
        if val_loss < self.best_loss - self.min_delta:
            self.best_loss = val_loss
            self.best_epoch = self.epoch
            self.bad_epochs = 0
        else:
            self.bad_epochs += 1
        return self.bad_epochs >= self.patience
""",
        """
class EarlyStopping:
    def __init__(self, patience, min_delta=0.0):
        self.patience, self.min_delta = patience, min_delta
        self.best_loss, self.best_epoch = None, None
        self.history = []

    def step(self, val_loss):
        self.history.append(val_loss)
        if self.best_loss is None or self.best_loss - val_loss > self.min_delta:
            self.best_loss, self.best_epoch = val_loss, len(self.history)
        return len(self.history) - self.best_epoch >= self.patience
""",
    ],
}

WRONG = {
    "05.1": [
        # forgets to scale the survivors by 1 / (1 - p)
        """
def dropout(x, p, training, generator):
    if not training:
        return x
    return x * (torch.rand(x.shape, generator=generator) >= p)
""",
        # ignores the generator
        """
def dropout(x, p, training, generator):
    if not training:
        return x
    return x * (torch.rand(x.shape) >= p) / (1 - p)
""",
        # drops with probability 1 - p
        """
def dropout(x, p, training, generator):
    if not training:
        return x
    return x * (torch.rand(x.shape, generator=generator) < p) / (1 - p)
""",
    ],
    "05.2": [
        # never puts the model back in the mode it found it in
        """
def evaluate(model, loader, loss_fn):
    model.eval()
    loss_sum, correct, count = 0.0, 0, 0
    with torch.no_grad():
        for inputs, targets in loader:
            logits = model(inputs)
            loss_sum += loss_fn(logits, targets).item() * len(targets)
            correct += (logits.argmax(dim=1) == targets).sum().item()
            count += len(targets)
    return {"loss": loss_sum / count, "accuracy": correct / count}
""",
        # always ends in training mode, even for a model that arrived in eval mode
        """
def evaluate(model, loader, loss_fn):
    model.eval()
    loss_sum, correct, count = 0.0, 0, 0
    with torch.no_grad():
        for inputs, targets in loader:
            logits = model(inputs)
            loss_sum += loss_fn(logits, targets).item() * len(targets)
            correct += (logits.argmax(dim=1) == targets).sum().item()
            count += len(targets)
    model.train()
    return {"loss": loss_sum / count, "accuracy": correct / count}
""",
        # forgets no_grad, and averages the batch means
        """
def evaluate(model, loader, loss_fn):
    mode = model.training
    model.eval()
    losses, correct, count = [], 0, 0
    for inputs, targets in loader:
        logits = model(inputs)
        losses.append(loss_fn(logits, targets).item())
        correct += (logits.argmax(dim=1) == targets).sum().item()
        count += len(targets)
    model.train(mode)
    return {"loss": sum(losses) / len(losses), "accuracy": correct / count}
""",
    ],
    "05.3": [
        # a gain of exactly min_delta counts as an improvement (>= instead of >)
        """
class EarlyStopping:
    def __init__(self, patience, min_delta=0.0):
        self.patience, self.min_delta = patience, min_delta
        self.best_loss, self.best_epoch = math.inf, 0
        self.epoch = self.waited = 0

    def step(self, val_loss):
        self.epoch += 1
        if val_loss <= self.best_loss - self.min_delta:
            self.best_loss, self.best_epoch, self.waited = val_loss, self.epoch, 0
        else:
            self.waited += 1
        return self.waited >= self.patience
""",
        # stops one epoch too late (> patience)
        """
class EarlyStopping:
    def __init__(self, patience, min_delta=0.0):
        self.patience, self.min_delta = patience, min_delta
        self.best_loss, self.best_epoch = math.inf, 0
        self.epoch = self.waited = 0

    def step(self, val_loss):
        self.epoch += 1
        if val_loss < self.best_loss - self.min_delta:
            self.best_loss, self.best_epoch, self.waited = val_loss, self.epoch, 0
        else:
            self.waited += 1
        return self.waited > self.patience
""",
        # counts epochs from 0
        """
class EarlyStopping:
    def __init__(self, patience, min_delta=0.0):
        self.patience, self.min_delta = patience, min_delta
        self.best_loss, self.best_epoch = math.inf, 0
        self.epoch = -1
        self.waited = 0

    def step(self, val_loss):
        self.epoch += 1
        if val_loss < self.best_loss - self.min_delta:
            self.best_loss, self.best_epoch, self.waited = val_loss, self.epoch, 0
        else:
            self.waited += 1
        return self.waited >= self.patience
""",
    ],
}

# Answers added after a first pass, other styles and other slips.

# torch.bernoulli with the generator
RIGHT["05.1"].append("""
def dropout(x, p, training, generator):
    if not training:
        return x
    keep = torch.bernoulli(torch.full(x.shape, 1 - p), generator=generator)
    return x * keep / (1 - p)
""")

# accuracy as the mean of the batch accuracies
WRONG["05.2"].append("""
def evaluate(model, loader, loss_fn):
    mode = model.training
    model.eval()
    loss_sum, accs, count = 0.0, [], 0
    with torch.no_grad():
        for inputs, targets in loader:
            logits = model(inputs)
            loss_sum += loss_fn(logits, targets).item() * len(targets)
            accs.append((logits.argmax(1) == targets).float().mean().item())
            count += len(targets)
    model.train(mode)
    return {"loss": loss_sum / count, "accuracy": sum(accs) / len(accs)}
""")

# never resets the count of epochs without improvement
WRONG["05.3"].append("""
class EarlyStopping:
    def __init__(self, patience, min_delta=0.0):
        self.patience, self.min_delta = patience, min_delta
        self.best_loss, self.best_epoch = math.inf, 0
        self.epoch = self.waited = 0

    def step(self, val_loss):
        self.epoch += 1
        if val_loss < self.best_loss - self.min_delta:
            self.best_loss, self.best_epoch = val_loss, self.epoch
        else:
            self.waited += 1
        return self.waited >= self.patience
""")
