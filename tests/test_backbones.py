from urllib.error import URLError

import pytest
import torch
from torch import nn

from course_utils.models import backbones


@pytest.fixture(scope="module")
def imagenet_model():
    return backbones.efficientnet_lite0().eval()


def test_lite_activations_stay_relu6(imagenet_model):
    # set_swish() in the package would replace these and break the pretrained weights' meaning
    assert isinstance(imagenet_model._swish, nn.ReLU6)
    assert all(isinstance(block._swish, nn.ReLU6) for block in imagenet_model._blocks)


def test_new_head_for_other_class_counts():
    model = backbones.efficientnet_lite0(num_classes=2)
    assert model._fc.out_features == 2 and model._fc.in_features == backbones.LITE0_FEATURES


def test_imagenet_class_names():
    names = backbones.imagenet_class_names()
    assert len(names) == 1000 and "Samoyed" in names


def test_recognises_real_photos(imagenet_model, mirror):
    from PIL import Image
    from torchvision.transforms import v2

    transform = v2.Compose([v2.ToImage(), v2.Resize(256), v2.CenterCrop(backbones.LITE0_INPUT_SIZE),
                            v2.ToDtype(torch.float32, scale=True),
                            v2.Normalize(backbones.LITE0_MEAN, backbones.LITE0_STD)])
    names = backbones.imagenet_class_names()
    expected = {"samoyed.jpg": {"Samoyed"}, "cat.70.jpg": {"Egyptian cat", "tabby", "tiger cat"}}
    for filename, plausible in expected.items():
        image = transform(Image.open(mirror / "images" / filename).convert("RGB"))
        with torch.inference_mode():
            top3 = imagenet_model(image[None]).softmax(1).topk(3).indices[0].tolist()
        assert plausible & {names[i] for i in top3}, f"{filename}: top-3 {[names[i] for i in top3]}"


def test_torchvision_backbone_names_a_damaged_cached_file(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setattr(torch.hub, "_hub_dir", None)  # a set_dir() elsewhere would win over TORCH_HOME
    cached = backbones.torchvision_weights_file("resnet18")
    assert cached.is_relative_to(tmp_path)
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"PK\x03\x04 cut short")  # what an interrupted copy leaves
    monkeypatch.setattr(torch.hub, "download_url_to_file", lambda *a, **k: pytest.fail("downloads a cached file"))
    with pytest.raises(RuntimeError, match="damaged") as caught:
        backbones.torchvision_backbone("resnet18")
    assert str(cached) in str(caught.value) and "download" not in str(caught.value).split(";")[0]


def test_torchvision_backbone_reports_a_failed_download(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setattr(torch.hub, "_hub_dir", None)

    def offline(url, dst, hash_prefix=None, progress=True):
        raise URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    with pytest.raises(RuntimeError, match="could not download resnet18's weights .*URLError"):
        backbones.torchvision_backbone("resnet18")
    assert not backbones.torchvision_weights_file("resnet18").exists()
