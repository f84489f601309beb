"""Lesson 13: answers written by an independent learner from the statements alone."""

RIGHT = {
    "13.1": [
        """
def top_k_classes(logits, class_names, k):
    probs = torch.softmax(logits, dim=0)
    values, indices = probs.topk(k)
    return [(class_names[i], p) for i, p in zip(indices.tolist(), values.tolist())]
""",
        """
def top_k_classes(logits, class_names, k):
    probs = logits.softmax(-1)
    order = torch.argsort(probs, descending=True)[:k]
    result = []
    for index in order:
        result.append((class_names[int(index)], probs[index].item()))
    return result
""",
    ],
    "13.2": [
        """
def preprocess(images, size, mean, std):
    x = images.float() / 255.0
    top = (x.shape[2] - size) // 2
    left = (x.shape[3] - size) // 2
    x = x[:, :, top:top + size, left:left + size]
    mean = torch.tensor(mean).view(1, 3, 1, 1)
    std = torch.tensor(std).view(1, 3, 1, 1)
    return (x - mean) / std
""",
        """
def preprocess(images, size, mean, std):
    H, W = images.shape[-2:]
    top, left = (H - size) // 2, (W - size) // 2
    crop = images[..., top:top + size, left:left + size].to(torch.float32).div(255)
    channels = [(crop[:, c] - mean[c]) / std[c] for c in range(3)]
    return torch.stack(channels, dim=1)
""",
    ],
    "13.3": [
        """
def export_dynamic_batch(model, example):
    batch = torch.export.Dim("batch")
    return torch.export.export(model, (example,), dynamic_shapes={"images": {0: batch}})
""",
        """
def export_dynamic_batch(model, example):
    return torch.export.export(model, args=(example,),
                               dynamic_shapes=({0: torch.export.Dim("n", min=1)},))
""",
    ],
}

WRONG = {
    "13.1": [
        # probabilities as tensors, not floats
        """
def top_k_classes(logits, class_names, k):
    values, indices = torch.softmax(logits, dim=0).topk(k)
    return [(class_names[i], p) for i, p in zip(indices.tolist(), values)]
""",
        # the least probable first (ascending sort)
        """
def top_k_classes(logits, class_names, k):
    probs = torch.softmax(logits, dim=0)
    order = torch.argsort(probs)[-k:]
    return [(class_names[i], probs[i].item()) for i in order.tolist()]
""",
        # the logits instead of the probabilities
        """
def top_k_classes(logits, class_names, k):
    values, indices = logits.topk(k)
    return [(class_names[i], v) for i, v in zip(indices.tolist(), values.tolist())]
""",
    ],
    "13.2": [
        # forgets the division by 255
        """
def preprocess(images, size, mean, std):
    x = images.float()
    top = (x.shape[2] - size) // 2
    left = (x.shape[3] - size) // 2
    x = x[:, :, top:top + size, left:left + size]
    return (x - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)
""",
        # rounds the half margin (as torchvision does)
        """
def preprocess(images, size, mean, std):
    x = images.float() / 255
    top = int(round((x.shape[2] - size) / 2.0))
    left = int(round((x.shape[3] - size) / 2.0))
    x = x[:, :, top:top + size, left:left + size]
    return (x - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)
""",
        # mean and std lined up with the width
        """
def preprocess(images, size, mean, std):
    x = images.float() / 255
    top = (x.shape[2] - size) // 2
    left = (x.shape[3] - size) // 2
    x = x[:, :, top:top + size, left:left + size]
    return (x - torch.tensor(mean)) / torch.tensor(std)
""",
    ],
    "13.3": [
        # no dynamic shapes: the batch size is fixed by the example
        """
def export_dynamic_batch(model, example):
    return torch.export.export(model, (example,))
""",
        # returns the module, not the ExportedProgram
        """
def export_dynamic_batch(model, example):
    batch = torch.export.Dim("batch")
    return torch.export.export(model, (example,), dynamic_shapes={"images": {0: batch}}).module()
""",
    ],
}

# Answers added after a first pass, other styles and other slips.

# Dim.AUTO
RIGHT["13.3"].append("""
def export_dynamic_batch(model, example):
    return torch.export.export(model, (example,), dynamic_shapes={"images": {0: torch.export.Dim.AUTO}})
""")

# float64 mean and std make a float64 result
WRONG["13.2"].append("""
def preprocess(images, size, mean, std):
    x = images / 255
    t = (x.shape[2] - size) // 2
    left = (x.shape[3] - size) // 2
    x = x[:, :, t:t + size, left:left + size]
    m = torch.tensor(mean, dtype=torch.float64).view(1, 3, 1, 1)
    s = torch.tensor(std, dtype=torch.float64).view(1, 3, 1, 1)
    return (x - m) / s
""")

# an upper bound on the batch: a batch of 11 is refused
WRONG["13.3"].append("""
def export_dynamic_batch(model, example):
    batch = torch.export.Dim("batch", max=8)
    return torch.export.export(model, (example,), dynamic_shapes={"images": {0: batch}})
""")

# names the input "x", not the forward argument "images"
WRONG["13.3"].append("""
def export_dynamic_batch(model, example):
    batch = torch.export.Dim("batch")
    return torch.export.export(model, (example,), dynamic_shapes={"x": {0: batch}})
""")
