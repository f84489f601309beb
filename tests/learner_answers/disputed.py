"""Disagreements: answers the statement makes clearly wrong (a float64 result where it asks for float32)
that the checker does not refuse with a message but crashes on ("the checker itself failed (RuntimeError:
Double did not match Float); please report this"). Kept out of RIGHT and WRONG; tested as expected failures.
"""

DISPUTED = {
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
