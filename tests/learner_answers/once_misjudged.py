"""Answers an independent learner wrote that the checkers once misjudged, kept as regression tests.

FLOAT64: a float64 result where the statement asks for float32 crashed 18 checkers ("the checker itself
failed (RuntimeError: Double did not match Float); please report this"); now `call` names the dtype.
"""

FLOAT64 = {
    "07.1": """
def normalize(images, mean, std):
    mean = torch.tensor(mean, dtype=torch.float64).view(1, -1, 1, 1)
    std = torch.tensor(std, dtype=torch.float64).view(1, -1, 1, 1)
    return (images - mean) / std
""",
    "04.3": """
def per_class_accuracy(logits, labels, num_classes):
    predicted = logits.argmax(dim=1)
    hits = torch.bincount(labels[predicted == labels], minlength=num_classes)
    totals = torch.bincount(labels, minlength=num_classes)
    return hits.double() / totals.double()
""",
    "11.2": """
def batch_norm2d_train(x, weight, bias, eps=1e-5):
    x64 = x.double()
    mean = x64.mean(dim=(0, 2, 3), keepdim=True)
    var = x64.var(dim=(0, 2, 3), unbiased=False, keepdim=True)
    return (x64 - mean) / torch.sqrt(var + eps) * weight.view(1, -1, 1, 1) + bias.view(1, -1, 1, 1)
""",
    "01.2": """
def pairwise_distances(a, b):
    diff = a.double()[:, None, :] - b.double()[None, :, :]
    return diff.pow(2).sum(-1).sqrt()
""",
    "12b.1": """
def char_loss(logits, targets):
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]).double(), targets.reshape(-1))
""",
}

# Answers whose verdict depended on COURSE_EXERCISES_SEED: (exercise, seed, code, what the statement makes it).
SEED_DEPENDENT = [
    # 05.2: accuracy as the mean of the batch accuracies, which the statement rules out ("the small last batch
    # weighs by its samples"); refused at seed 0, but accepted at seeds 11, 24, 34, 48, 50 and 51 (of 0-59),
    # where the random model's accuracy is the same in every batch (0.0000 at seed 11).
    ("05.2", 11, """
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
""", "wrong"),
    # 04.1: softmax as exp(logits - logsumexp), exact mathematically; at seed 2 the sample whose top probability
    # is "exactly" min_prob falls one rounding step below it, and the message blames a strict > that the code
    # does not have. (The Use line names torch.softmax, with which every seed of 0-59 passes.)
    ("04.1", 2, """
def confident_accuracy(logits, labels, min_prob):
    probs = (logits - logits.logsumexp(1, keepdim=True)).exp()
    top, pred = probs.max(1)
    keep = top >= min_prob
    return (pred[keep] == labels[keep]).float().mean().item()
""", "right"),
]
