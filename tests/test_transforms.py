"""Tests for course_utils.datasets.transforms: the one preprocessing shared by training and deployment."""

import io
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn
from torchvision.transforms import v2

from course_utils.datasets import images, transforms
from course_utils.deploy import pipeline, predict
from course_utils.models import backbones

SIZE, MEAN, STD = backbones.LITE0_INPUT_SIZE, backbones.LITE0_MEAN, backbones.LITE0_STD


def variants(photo: Image.Image) -> dict[str, Image.Image]:
    """Shapes and modes a learner's photos come in, cut from one real photo (written to tmp_path only)."""
    w, h = photo.size
    alpha = Image.linear_gradient("L").resize(photo.size)  # transparent at the top, opaque at the bottom
    rgba = photo.convert("RGBA")
    rgba.putalpha(alpha)
    return {
        "portrait": photo.crop((0, 0, h // 2, h)),
        "landscape": photo.crop((0, 0, w, h // 2)),
        "square": photo.crop((0, 0, h, h)),
        "smaller_than_crop": photo.resize((150, 113), Image.Resampling.BILINEAR),
        "thin": photo.resize((700, 230), Image.Resampling.BILINEAR),
        "grayscale": photo.convert("L"),
        "rgba": rgba,
        "palette": photo.quantize(colors=64),
        "palette_transparent": photo.quantize(colors=64),
    }


@pytest.fixture(scope="module")
def photo_folder(mirror, tmp_path_factory):
    """A class folder of real photos: mirror JPEGs as they are plus PNG variants of the Samoyed photo."""
    root = tmp_path_factory.mktemp("photos")
    folder = root / "any"
    folder.mkdir()
    for source in [mirror / "images" / "samoyed.jpg", mirror / "images" / "puppy.jpg",
                   *sorted((mirror / "cat_dog" / "test" / "cat").glob("*.jpg"))[:3]]:
        (folder / source.name).write_bytes(source.read_bytes())
    with Image.open(mirror / "images" / "samoyed.jpg") as samoyed:
        samoyed.load()
        for name, image in variants(samoyed).items():
            kwargs = {"transparency": 0} if name == "palette_transparent" else {}
            image.save(folder / f"{name}.png", **kwargs)
    return root


def test_eval_transform_and_pipeline_agree_on_real_photos(photo_folder):
    """The training path (ImageFolder + eval_transform) and the serving path (load_image + pipeline)."""
    dataset = images.image_folder(photo_folder, images.eval_transform(SIZE, MEAN, STD))
    pipe = pipeline.InferencePipeline(nn.Identity(), ["any"], SIZE, MEAN, STD)
    modes = set()
    for index, (path, _) in enumerate(dataset.samples):
        with Image.open(path) as stored:
            modes.add(stored.mode)
        trained = dataset[index][0]  # (3, 224, 224)
        served = predict.load_image(path)  # uint8 (3, H, W)
        for as_input in (served, served.float() / 255, served.double() / 255):
            assert (pipe.preprocess(as_input) - trained).abs().max().item() <= 1e-5, (path.name, as_input.dtype)
    assert {"RGB", "L", "RGBA", "P"} <= modes and len(dataset) == 14


def test_rgba_is_laid_on_white_in_both_paths(photo_folder):
    path = photo_folder / "any" / "rgba.png"
    from_loader = transforms.pil_to_tensor(images.image_folder(photo_folder).loader(path))
    assert torch.equal(from_loader, predict.load_image(path))
    assert from_loader[:, 0, :].min() >= 250  # the top row is (almost) transparent: white, not the photo


@pytest.mark.parametrize("shape", [(2, 3, 50, 70), (1, 3, 80, 40), (1, 3, 36, 36), (1, 3, 20, 26)])
def test_matches_torchvision_resize_crop_normalize(shape):
    # An independent reference. Sizes chosen so the crop margin is even: torchvision rounds half a
    # pixel to even, we floor, so an odd margin would shift the crop by one pixel.
    images_in = torch.rand(shape, generator=torch.Generator().manual_seed(0))
    reference = v2.Compose([v2.Resize(36, antialias=True), v2.CenterCrop(32), v2.Normalize(MEAN, STD)])
    ours = transforms.ResizeCropNormalize(32, MEAN, STD, resize_size=36)
    torch.testing.assert_close(ours(images_in), reference(images_in), atol=1e-5, rtol=0)


def test_single_image_and_batch_agree():
    batch = torch.randint(0, 256, (3, 3, 64, 48), dtype=torch.uint8, generator=torch.Generator().manual_seed(1))
    preprocess = transforms.ResizeCropNormalize(32, MEAN, STD)
    assert preprocess(batch).shape == (3, 3, 32, 32)
    torch.testing.assert_close(preprocess(batch[1]), preprocess(batch)[1], atol=0, rtol=0)


def test_default_resize_keeps_the_crop_fraction():
    assert transforms.ResizeCropNormalize(224, MEAN, STD).resize_size == 256
    assert transforms.ResizeCropNormalize(64, MEAN, STD).resize_size == 73  # 64 / 0.875 = 73.1


def test_settings_describe_the_preprocessing():
    settings = transforms.ResizeCropNormalize(32, MEAN, STD, resize_size=40).settings()
    assert settings["resize_shorter_side_to"] == 40 and settings["centre_crop"] == 32
    assert settings["mean"] == list(MEAN) and settings["std"] == list(STD)


@pytest.mark.parametrize("kwargs, words", [
    (dict(input_size=40, resize_size=36), "input_size <= resize_size"),
    (dict(input_size=0), "whole number"),
    (dict(input_size=True), "whole number"),
    (dict(mean=(0.5,)), "three values"),
    (dict(std=(0.5, 0.0, 0.5)), "std > 0"),
])
def test_rejects_inconsistent_settings(kwargs, words):
    settings = dict(input_size=32, mean=MEAN, std=STD, resize_size=36) | kwargs
    with pytest.raises(ValueError, match=words):
        transforms.ResizeCropNormalize(**settings)


@pytest.mark.parametrize("images_in, error, words", [
    (torch.zeros(2, 1, 40, 40, dtype=torch.uint8), ValueError, "expected an RGB image"),  # convert to RGB first
    (torch.zeros(40, 40, dtype=torch.uint8), ValueError, "expected an RGB image"),
    (torch.zeros(1, 3, 40, 40, dtype=torch.int64), TypeError, "uint8"),
])
def test_bad_inputs_are_explained(images_in, error, words):
    with pytest.raises(error, match=words):
        transforms.ResizeCropNormalize(32, MEAN, STD)(images_in)


def test_pil_to_tensor_wants_rgb():
    array = np.random.default_rng(0).integers(0, 256, (5, 7, 3), dtype=np.uint8)
    assert torch.equal(transforms.pil_to_tensor(Image.fromarray(array)), torch.from_numpy(array).permute(2, 0, 1))
    with pytest.raises(ValueError, match="RGB"):
        transforms.pil_to_tensor(Image.fromarray(array).convert("L"))


def _jpeg(seed: int, size=(48, 40)) -> bytes:
    """A small JPEG of smooth random colours (a test fixture for the transforms, not a dataset)."""
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, (size[1] // 8, size[0] // 8, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).resize(size, Image.Resampling.BILINEAR).save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


# --- the lessons' train and eval transforms --------------------------------------------------------------

@pytest.mark.parametrize("size", [32, 224])
@pytest.mark.parametrize("which", ["train", "eval"])
def test_transform_shape_and_range(size, which):
    photo = Image.open(io.BytesIO(_jpeg(1, size=(300, 200))))
    make = transforms.train_transform if which == "train" else transforms.eval_transform
    half = make(size, (0.5, 0.5, 0.5), (0.5, 0.5, 0.5))(photo)
    plain = make(size, (0.0, 0.0, 0.0), (1.0, 1.0, 1.0))(photo)
    assert half.shape == plain.shape == (3, size, size)
    assert half.dtype == torch.float32
    assert -1 <= half.min() and half.max() <= 1
    assert 0 <= plain.min() and plain.max() <= 1


def test_eval_transform_is_deterministic_and_train_is_not():
    photo = Image.open(io.BytesIO(_jpeg(2, size=(300, 200))))
    mean = std = (0.5, 0.5, 0.5)
    evaluate = transforms.eval_transform(64, mean, std)
    assert torch.equal(evaluate(photo), evaluate(photo))
    torch.manual_seed(0)
    augment = transforms.train_transform(64, mean, std)
    assert not torch.equal(augment(photo), augment(photo))


def test_eval_transform_resizes_then_crops_the_centre():
    photo = Image.open(io.BytesIO(_jpeg(3, size=(512, 256))))
    out = transforms.eval_transform(224, (0, 0, 0), (1, 1, 1))(photo)
    pixels = v2.functional.to_dtype(v2.functional.to_image(photo), torch.float32, scale=True)
    resized = v2.functional.resize(pixels, [256], antialias=True)  # the shorter side to 224 / 0.875
    assert tuple(resized.shape[-2:]) == (256, 512)
    torch.testing.assert_close(out, v2.functional.center_crop(resized, [224]), atol=1e-5, rtol=0)


@pytest.mark.parametrize("crop_fraction, shorter_side", [(1.0, 224), (0.5, 448)])
def test_eval_transform_crop_fraction_sets_the_resize(crop_fraction, shorter_side):
    photo = Image.open(io.BytesIO(_jpeg(3, size=(512, 256))))
    transform = transforms.eval_transform(224, (0, 0, 0), (1, 1, 1), crop_fraction=crop_fraction)
    pixels = v2.functional.to_dtype(v2.functional.to_image(photo), torch.float32, scale=True)
    resized = v2.functional.resize(pixels, [shorter_side], antialias=True)  # (shorter_side, 2 * shorter_side)
    torch.testing.assert_close(transform(photo), v2.functional.center_crop(resized, [224]), atol=1e-5, rtol=0)


@pytest.mark.parametrize("size", [0, -3, 2.5, True])
def test_transform_rejects_bad_sizes(size):
    with pytest.raises(ValueError, match="size must be"):
        transforms.eval_transform(size, (0.5,) * 3, (0.5,) * 3)


def test_predict_and_transforms_import_without_torchvision():
    """The predict command line needs torch and Pillow only: the lessons' transforms import torchvision lazily."""
    block = ("import importlib.abc, sys\n"
             "class Block(importlib.abc.MetaPathFinder):\n"
             "    def find_spec(self, name, path=None, target=None):\n"
             "        if name.split('.')[0] == 'torchvision':\n"
             "            raise ImportError('blocked by the test: ' + name)\n"
             "sys.meta_path.insert(0, Block())\n")
    code = block + "import course_utils.datasets.transforms, course_utils.deploy.predict\nprint('ok')"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr
    blocked = subprocess.run([sys.executable, "-c", block + "import torchvision"], capture_output=True, text=True,
                             timeout=120)
    assert "blocked by the test" in blocked.stderr  # the hook does block: the check above can fail
