"""Lesson 07: answers written by an independent learner from the statements alone."""

RIGHT = {
    "07.1": [
        """
def normalize(images, mean, std):
    mean = torch.tensor(mean, dtype=images.dtype).view(1, -1, 1, 1)
    std = torch.tensor(std, dtype=images.dtype).view(1, -1, 1, 1)
    return (images - mean) / std
""",
        """
def normalize(images, mean, std):
    out = torch.empty_like(images)
    for c in range(images.shape[1]):
        out[:, c] = (images[:, c] - mean[c]) / std[c]
    return out
""",
    ],
    "07.2": [
        """
def balance_weights(targets):
    counts = torch.bincount(targets)
    return (1.0 / counts.float())[targets]
""",
        """
def balance_weights(targets):
    same = targets[:, None] == targets[None, :]
    return 1.0 / same.sum(dim=1).to(torch.float32)
""",
    ],
    "07.3": [
        """
def center_crop(images, height, width):
    top = (images.shape[-2] - height) // 2
    left = (images.shape[-1] - width) // 2
    return images[..., top:top + height, left:left + width]
""",
        """
def center_crop(images, height, width):
    H, W = images.shape[-2:]
    top, left = (H - height) // 2, (W - width) // 2
    rows = images.narrow(-2, top, height)
    return rows.narrow(-1, left, width).clone()
""",
    ],
}

WRONG = {
    "07.1": [
        # mean and std lined up with the last dimension (the width)
        """
def normalize(images, mean, std):
    return (images - torch.tensor(mean)) / torch.tensor(std)
""",
        # torchvision is refused
        """
def normalize(images, mean, std):
    from torchvision import transforms
    return transforms.Normalize(mean, std)(images)
""",
        # changes the images in place
        """
def normalize(images, mean, std):
    for c in range(images.shape[1]):
        images[:, c] = (images[:, c] - mean[c]) / std[c]
    return images
""",
    ],
    "07.2": [
        # 1 / count per class, not per sample
        """
def balance_weights(targets):
    return 1.0 / torch.bincount(targets).float()
""",
        # count of the whole dataset divided by class count (not 1 / count)
        """
def balance_weights(targets):
    counts = torch.bincount(targets)
    return (len(targets) / counts.float())[targets]
""",
        # integer result
        """
def balance_weights(targets):
    counts = torch.bincount(targets)
    return (1 // counts)[targets]
""",
    ],
    "07.3": [
        # rounds the half margin up
        """
def center_crop(images, height, width):
    top = math.ceil((images.shape[-2] - height) / 2)
    left = math.ceil((images.shape[-1] - width) / 2)
    return images[..., top:top + height, left:left + width]
""",
        # only works for a batch: slices dims 2 and 3
        """
def center_crop(images, height, width):
    top = (images.shape[2] - height) // 2
    left = (images.shape[3] - width) // 2
    return images[:, :, top:top + height, left:left + width]
""",
        # round() rounds half to even
        """
def center_crop(images, height, width):
    top = round((images.shape[-2] - height) / 2)
    left = round((images.shape[-1] - width) / 2)
    return images[..., top:top + height, left:left + width]
""",
    ],
}

# Answers added after a first pass, other styles and other slips.

# float64 weights
WRONG["07.2"].append("""
def balance_weights(targets):
    return (1.0 / torch.bincount(targets).double())[targets]
""")

# height and width swapped in the slices
WRONG["07.3"].append("""
def center_crop(images, height, width):
    top = (images.shape[-2] - height) // 2
    left = (images.shape[-1] - width) // 2
    return images[..., top:top + width, left:left + height]
""")
