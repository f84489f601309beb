"""Lesson 08: answers written by an independent learner from the statements alone."""

RIGHT = {
    "08.1": [
        """
def unfreeze_last(model, n):
    blocks = list(model.blocks)
    for block in blocks[len(blocks) - n:]:
        for p in block.parameters():
            p.requires_grad = True
    return [p for p in model.parameters() if p.requires_grad]
""",
        """
def unfreeze_last(model, n):
    start = len(model.blocks) - n
    for index, block in enumerate(model.blocks):
        if index >= start:
            block.requires_grad_(True)
    trainable = []
    for p in model.parameters():
        if p.requires_grad:
            trainable.append(p)
    return trainable
""",
    ],
    "08.2": [
        """
def replace_head(model, head_name, num_classes):
    for p in model.parameters():
        p.requires_grad = False
    old = getattr(model, head_name)
    setattr(model, head_name, nn.Linear(old.in_features, num_classes))
    return model
""",
        """
def replace_head(model, head_name, num_classes):
    model.requires_grad_(False)
    n_in = getattr(model, head_name).weight.shape[1]
    head = nn.Linear(n_in, num_classes)
    head.requires_grad_(True)
    setattr(model, head_name, head)
    return model
""",
    ],
    "08.3": [
        """
def precision_recall(confusion):
    hits = confusion.diagonal().float()
    predicted = confusion.sum(dim=0).float()
    actual = confusion.sum(dim=1).float()
    precision = torch.where(predicted > 0, hits / predicted.clamp(min=1), torch.zeros_like(hits))
    recall = torch.where(actual > 0, hits / actual.clamp(min=1), torch.zeros_like(hits))
    return precision, recall
""",
        """
def precision_recall(confusion):
    c = confusion.to(torch.float32)
    diag = torch.diag(c)
    precision = torch.nan_to_num(diag / c.sum(0), nan=0.0)
    recall = torch.nan_to_num(diag / c.sum(1), nan=0.0)
    return precision, recall
""",
    ],
    "08.4": [
        """
def most_confident_mistakes(probs, labels, k):
    confidence, predicted = probs.max(dim=1)
    wrong = (predicted != labels).nonzero().flatten()
    order = confidence[wrong].argsort(descending=True)
    return wrong[order][:k]
""",
        """
def most_confident_mistakes(probs, labels, k):
    confidence, predicted = probs.max(dim=1)
    confidence = confidence.masked_fill(predicted == labels, -1.0)
    n_wrong = int((predicted != labels).sum())
    return confidence.topk(min(k, n_wrong)).indices
""",
    ],
}

WRONG = {
    "08.1": [
        # unfreezes the first n blocks
        """
def unfreeze_last(model, n):
    for block in list(model.blocks)[:n]:
        for p in block.parameters():
            p.requires_grad = True
    return [p for p in model.parameters() if p.requires_grad]
""",
        # blocks[-n:] with n = 0 unfreezes every block
        """
def unfreeze_last(model, n):
    for block in list(model.blocks)[-n:]:
        for p in block.parameters():
            p.requires_grad = True
    return [p for p in model.parameters() if p.requires_grad]
""",
        # forgets the head in the returned list
        """
def unfreeze_last(model, n):
    params = []
    for block in list(model.blocks)[len(model.blocks) - n:]:
        for p in block.parameters():
            p.requires_grad = True
            params.append(p)
    return params
""",
    ],
    "08.2": [
        # replaces the head before freezing: the new head is frozen too
        """
def replace_head(model, head_name, num_classes):
    old = getattr(model, head_name)
    setattr(model, head_name, nn.Linear(old.in_features, num_classes))
    for p in model.parameters():
        p.requires_grad = False
    return model
""",
        # takes out_features as the new head's inputs
        """
def replace_head(model, head_name, num_classes):
    for p in model.parameters():
        p.requires_grad = False
    old = getattr(model, head_name)
    setattr(model, head_name, nn.Linear(old.out_features, num_classes))
    return model
""",
        # always replaces model.fc, whatever head_name says
        """
def replace_head(model, head_name, num_classes):
    for p in model.parameters():
        p.requires_grad = False
    old = getattr(model, head_name)
    model.fc = nn.Linear(old.in_features, num_classes)
    return model
""",
    ],
    "08.3": [
        # precision and recall swapped (rows and columns mixed up)
        """
def precision_recall(confusion):
    hits = confusion.diagonal().float()
    precision = hits / confusion.sum(dim=1).clamp(min=1).float()
    recall = hits / confusion.sum(dim=0).clamp(min=1).float()
    return precision, recall
""",
        # nan where nothing was counted
        """
def precision_recall(confusion):
    hits = confusion.diagonal().float()
    return hits / confusion.sum(dim=0).float(), hits / confusion.sum(dim=1).float()
""",
    ],
    "08.4": [
        # sorts the least confident first
        """
def most_confident_mistakes(probs, labels, k):
    confidence, predicted = probs.max(dim=1)
    wrong = (predicted != labels).nonzero().flatten()
    order = confidence[wrong].argsort()
    return wrong[order][:k]
""",
        # returns positions within the mistakes, not indices into the batch
        """
def most_confident_mistakes(probs, labels, k):
    confidence, predicted = probs.max(dim=1)
    wrong = predicted != labels
    return confidence[wrong].argsort(descending=True)[:k]
""",
        # the probability of the true label, not of the wrong answer
        """
def most_confident_mistakes(probs, labels, k):
    predicted = probs.argmax(dim=1)
    wrong = (predicted != labels).nonzero().flatten()
    confidence = probs[wrong, labels[wrong]]
    return wrong[confidence.argsort(descending=True)][:k]
""",
    ],
}

# Answers added after a first pass, other styles and other slips.

# true division of int64 tensors, clamp
RIGHT["08.3"].append("""
def precision_recall(confusion):
    d = confusion.diagonal()
    return d / confusion.sum(0).clamp(min=1), d / confusion.sum(1).clamp(min=1)
""")

# model.eval() instead of freezing the parameters
WRONG["08.2"].append("""
def replace_head(model, head_name, num_classes):
    model.eval()
    old = getattr(model, head_name)
    setattr(model, head_name, nn.Linear(old.in_features, num_classes))
    return model
""")

# topk(k) even when there are fewer mistakes than k
WRONG["08.4"].append("""
def most_confident_mistakes(probs, labels, k):
    conf, pred = probs.max(1)
    conf = torch.where(pred != labels, conf, torch.full_like(conf, -1.0))
    return conf.topk(k).indices
""")
