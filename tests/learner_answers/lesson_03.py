"""Lesson 03: answers written by an independent learner from the statements alone."""

RIGHT = {
    "03.1": [
        """
def cross_entropy(logits, targets):
    correct = logits.gather(1, targets.unsqueeze(1)).squeeze(1)
    return (torch.logsumexp(logits, dim=1) - correct).mean()
""",
        """
def cross_entropy(logits, targets):
    rows = torch.arange(logits.shape[0])
    log_probs = logits - torch.logsumexp(logits, dim=1, keepdim=True)
    return -log_probs[rows, targets].sum() / logits.shape[0]
""",
    ],
    "03.2": [
        """
def sgd_step(parameters, lr):
    with torch.no_grad():
        for p in parameters:
            if p.grad is not None:
                p.sub_(lr * p.grad)
""",
        """
def sgd_step(parameters, lr):
    with torch.no_grad():
        for p in parameters:
            if p.grad is None:
                continue
            p.add_(p.grad, alpha=-lr)
""",
    ],
    "03.3": [
        """
def train_epoch(model, loader, loss_fn, optimizer):
    model.train()
    total, count = 0.0, 0
    for inputs, targets in loader:
        loss = loss_fn(model(inputs), targets)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        total += loss.item() * len(targets)
        count += len(targets)
    return total / count
""",
        """
def train_epoch(model, loader, loss_fn, optimizer):
    model.train(True)
    losses, sizes = [], []
    for inputs, targets in loader:
        optimizer.zero_grad()
        logits = model(inputs)
        loss = loss_fn(logits, targets)
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()) * inputs.shape[0])
        sizes.append(inputs.shape[0])
    return float(sum(losses) / sum(sizes))
""",
    ],
}

WRONG = {
    "03.1": [
        # log(softmax) by hand: exp underflows to 0 and the loss becomes inf
        """
def cross_entropy(logits, targets):
    probs = logits.exp() / logits.exp().sum(dim=1, keepdim=True)
    return -probs[torch.arange(len(targets)), targets].log().mean()
""",
        # sums over the batch instead of averaging
        """
def cross_entropy(logits, targets):
    correct = logits.gather(1, targets.unsqueeze(1)).squeeze(1)
    return (torch.logsumexp(logits, dim=1) - correct).sum()
""",
        # F.cross_entropy is refused
        """
def cross_entropy(logits, targets):
    return F.cross_entropy(logits, targets)
""",
    ],
    "03.2": [
        # rebinds the name instead of changing the tensor in place
        """
def sgd_step(parameters, lr):
    with torch.no_grad():
        for p in parameters:
            if p.grad is not None:
                p = p - lr * p.grad
""",
        # walks the one-pass iterable twice: the second loop sees nothing
        """
def sgd_step(parameters, lr):
    with_grad = [p for p in parameters if p.grad is not None]
    if not with_grad:
        return
    with torch.no_grad():
        for p in parameters:
            p -= lr * p.grad
""",
        # adds the gradient (ascent)
        """
def sgd_step(parameters, lr):
    with torch.no_grad():
        for p in parameters:
            if p.grad is not None:
                p += lr * p.grad
""",
    ],
    "03.3": [
        # the mean of the batch means: the small last batch weighs too much
        """
def train_epoch(model, loader, loss_fn, optimizer):
    model.train()
    losses = []
    for inputs, targets in loader:
        loss = loss_fn(model(inputs), targets)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return sum(losses) / len(losses)
""",
        # forgets model.train(): a model arriving in eval mode trains without dropout
        """
def train_epoch(model, loader, loss_fn, optimizer):
    total, count = 0.0, 0
    for inputs, targets in loader:
        loss = loss_fn(model(inputs), targets)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        total += loss.item() * len(targets)
        count += len(targets)
    return total / count
""",
        # never clears the gradients
        """
def train_epoch(model, loader, loss_fn, optimizer):
    model.train()
    total, count = 0.0, 0
    for inputs, targets in loader:
        loss = loss_fn(model(inputs), targets)
        loss.backward()
        optimizer.step()
        total += loss.item() * len(targets)
        count += len(targets)
    return total / count
""",
    ],
}

# Answers added after a first pass, other styles and other slips.

# p.data instead of torch.no_grad()
RIGHT["03.2"].append("""
def sgd_step(parameters, lr):
    for p in parameters:
        if p.grad is not None:
            p.data -= lr * p.grad
""")

# returns a 0-d tensor, not a Python float
WRONG["03.3"].append("""
def train_epoch(model, loader, loss_fn, optimizer):
    model.train()
    total, count = 0.0, 0
    for inputs, targets in loader:
        loss = loss_fn(model(inputs), targets)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        total = total + loss.detach() * len(targets)
        count += len(targets)
    return total / count
""")
