"""Lesson 04: answers written by an independent learner from the statements alone."""

RIGHT = {
    "04.1": [
        """
def confident_accuracy(logits, labels, min_prob):
    probs = torch.softmax(logits, dim=1)
    top, predicted = probs.max(dim=1)
    keep = top >= min_prob
    return (predicted[keep] == labels[keep]).float().mean().item()
""",
        """
def confident_accuracy(logits, labels, min_prob):
    probs = torch.softmax(logits, dim=1)
    top = probs.amax(dim=1)
    predicted = probs.argmax(dim=1)
    keep = top >= min_prob
    hits = ((predicted == labels) & keep).sum().item()
    return hits / keep.sum().item()
""",
    ],
    "04.2": [
        """
class ClassifierWithFeatures(nn.Module):
    def __init__(self, input_size, hidden_sizes, num_classes, dropout):
        super().__init__()
        self.flatten = nn.Flatten()
        self.hidden = nn.ModuleList()
        previous = input_size
        for size in hidden_sizes:
            self.hidden.append(nn.Sequential(nn.Linear(previous, size), nn.ReLU()))
            previous = size
        self.drops = nn.ModuleList([nn.Dropout(dropout) for _ in hidden_sizes])
        self.output = nn.Linear(previous, num_classes)

    def forward(self, x):
        x = self.flatten(x)
        features = None
        for layer, drop in zip(self.hidden, self.drops):
            features = layer(x)
            x = drop(features)
        return self.output(x), features
""",
        """
class ClassifierWithFeatures(nn.Module):
    def __init__(self, input_size, hidden_sizes, num_classes, dropout):
        super().__init__()
        layers = [nn.Flatten()]
        sizes = [input_size, *hidden_sizes]
        for i in range(len(hidden_sizes)):
            layers.append(nn.Linear(sizes[i], sizes[i + 1]))
            layers.append(nn.ReLU())
            if i < len(hidden_sizes) - 1:
                layers.append(nn.Dropout(dropout))
        self.body = nn.Sequential(*layers)
        self.last_dropout = nn.Dropout(dropout)
        self.head = nn.Linear(sizes[-1], num_classes)

    def forward(self, x):
        features = self.body(x)
        logits = self.head(self.last_dropout(features))
        return logits, features
""",
    ],
    "04.3": [
        """
def per_class_accuracy(logits, labels, num_classes):
    predicted = logits.argmax(dim=1)
    hits = torch.bincount(labels[predicted == labels], minlength=num_classes)
    totals = torch.bincount(labels, minlength=num_classes)
    return hits.float() / totals.float()
""",
        """
def per_class_accuracy(logits, labels, num_classes):
    predicted = logits.argmax(1)
    out = torch.empty(num_classes)
    for c in range(num_classes):
        mine = labels == c
        out[c] = (predicted[mine] == c).sum().float() / mine.sum().float()
    return out
""",
    ],
}

WRONG = {
    "04.1": [
        # a strict > drops the sample that is exactly at min_prob
        """
def confident_accuracy(logits, labels, min_prob):
    probs = torch.softmax(logits, dim=1)
    top, predicted = probs.max(dim=1)
    keep = top > min_prob
    return (predicted[keep] == labels[keep]).float().mean().item()
""",
        # divides by the whole batch instead of the confident samples
        """
def confident_accuracy(logits, labels, min_prob):
    probs = torch.softmax(logits, dim=1)
    top, predicted = probs.max(dim=1)
    keep = top >= min_prob
    return ((predicted == labels) & keep).float().mean().item()
""",
        # softmax over the batch dimension
        """
def confident_accuracy(logits, labels, min_prob):
    probs = torch.softmax(logits, dim=0)
    top, predicted = probs.max(dim=1)
    keep = top >= min_prob
    return (predicted[keep] == labels[keep]).float().mean().item()
""",
    ],
    "04.2": [
        # features taken after the dropout
        """
class ClassifierWithFeatures(nn.Module):
    def __init__(self, input_size, hidden_sizes, num_classes, dropout):
        super().__init__()
        layers = [nn.Flatten()]
        previous = input_size
        for size in hidden_sizes:
            layers += [nn.Linear(previous, size), nn.ReLU(), nn.Dropout(dropout)]
            previous = size
        self.body = nn.Sequential(*layers)
        self.output = nn.Linear(previous, num_classes)

    def forward(self, x):
        features = self.body(x)
        return self.output(features), features
""",
        # features taken before the ReLU
        """
class ClassifierWithFeatures(nn.Module):
    def __init__(self, input_size, hidden_sizes, num_classes, dropout):
        super().__init__()
        self.flatten = nn.Flatten()
        self.linears = nn.ModuleList()
        self.drops = nn.ModuleList()
        previous = input_size
        for size in hidden_sizes:
            self.linears.append(nn.Linear(previous, size))
            self.drops.append(nn.Dropout(dropout))
            previous = size
        self.output = nn.Linear(previous, num_classes)

    def forward(self, x):
        x = self.flatten(x)
        for linear, drop in zip(self.linears, self.drops):
            features = linear(x)
            x = drop(torch.relu(features))
        return self.output(x), features
""",
    ],
    "04.3": [
        # divides by the number of samples predicted as c (that is precision)
        """
def per_class_accuracy(logits, labels, num_classes):
    predicted = logits.argmax(dim=1)
    hits = torch.bincount(labels[predicted == labels], minlength=num_classes)
    totals = torch.bincount(predicted, minlength=num_classes)
    return hits.float() / totals.float()
""",
        # forgets minlength: absent last classes are missing
        """
def per_class_accuracy(logits, labels, num_classes):
    predicted = logits.argmax(dim=1)
    hits = torch.bincount(labels[predicted == labels], minlength=num_classes)
    totals = torch.bincount(labels)
    return hits[: len(totals)].float() / totals.float()
""",
        # integer division, and 0 instead of nan for an absent class
        """
def per_class_accuracy(logits, labels, num_classes):
    predicted = logits.argmax(dim=1)
    hits = torch.bincount(labels[predicted == labels], minlength=num_classes)
    totals = torch.bincount(labels, minlength=num_classes)
    return (hits.float() / totals.clamp(min=1).float())
""",
    ],
}

# Answers added after a first pass, other styles and other slips.

# float() of a masked mean
RIGHT["04.1"].append("""
def confident_accuracy(logits, labels, min_prob):
    probs = logits.softmax(dim=1)
    top, pred = probs.max(1)
    keep = top >= min_prob
    return float((pred == labels)[keep].float().mean())
""")

# true division of two int64 counts
RIGHT["04.3"].append("""
def per_class_accuracy(logits, labels, num_classes):
    pred = logits.argmax(1)
    hits = torch.bincount(labels[pred == labels], minlength=num_classes)
    tot = torch.bincount(labels, minlength=num_classes)
    return hits / tot
""")
