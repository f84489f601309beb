"""Photo preprocessing: file -> RGB, the one evaluation preprocessing, and the lessons' train and eval transforms.

The evaluation preprocessing (resize the shorter side, centre crop, normalise) is `ResizeCropNormalize`,
run by the lessons' `eval_transform` and inside the exported inference pipeline, so what is served is
what was trained and validated. Needs torch and Pillow; torchvision only for `train_transform` and
`eval_transform`, imported there, so the predict command line runs without it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from PIL import Image, ImageOps
from torch import nn

from course_utils.core.arguments import check_count

if TYPE_CHECKING:
    from torchvision.transforms import v2

CROP_FRACTION = 0.875  # ImageNet convention: resize the shorter side to 256, centre-crop 224


def to_rgb(image: Image.Image) -> Image.Image:
    """Any Pillow mode as 8-bit RGB: grayscale is repeated, palettes looked up, transparency on white."""
    if image.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N"):  # 16-bit grayscale: scale, don't clip
        image = image.convert("I").point(lambda v: v * (1 / 257) + 0.5).convert("L")
    if image.has_transparency_data:  # RGBA, LA, PA, or a palette with a transparent colour
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return image.convert("RGB")


def open_rgb(path: str | Path) -> Image.Image:
    """An image file, decoded now, upright per its EXIF orientation, as RGB (the ImageFolder loader too)."""
    with Image.open(path) as image:
        image.load()  # decode now, so a truncated file fails here and the file is closed after
        return to_rgb(ImageOps.exif_transpose(image))


def pil_to_tensor(image: Image.Image) -> torch.Tensor:
    """An RGB Pillow image as a uint8 tensor (3, H, W), no NumPy needed."""
    if image.mode != "RGB":
        raise ValueError(f"expected an RGB image, got mode {image.mode}; convert it with to_rgb first")
    pixels = torch.frombuffer(bytearray(image.tobytes()), dtype=torch.uint8)
    return pixels.view(image.height, image.width, 3).permute(2, 0, 1)  # (H, W, 3) -> (3, H, W)


class ResizeCropNormalize(nn.Module):
    """uint8 0-255 or float 0-1 images (3, H, W) or (N, 3, H, W) -> normalised float32 (.., 3, size, size).

    Shorter side to `resize_size` (aspect ratio kept, antialiased bilinear), centre crop
    `input_size`, then (x - mean) / std per channel. Plain tensor code, so torch.export and the
    ONNX exporter capture it with the batch size, height and width left dynamic.
    """

    def __init__(self, input_size: int, mean: Sequence[float], std: Sequence[float],
                 resize_size: int | None = None):
        super().__init__()
        check_count("input_size", input_size)  # in pixels
        if resize_size is None:
            resize_size = round(input_size / CROP_FRACTION)
        else:
            resize_size = check_count("resize_size", resize_size)
        if input_size > resize_size:
            raise ValueError(f"need input_size <= resize_size, got {input_size} and {resize_size}")
        if len(mean) != 3 or len(std) != 3 or min(std) <= 0:
            raise ValueError(f"mean and std need three values (RGB), std > 0; got mean={mean}, std={std}")
        self.input_size, self.resize_size = input_size, resize_size
        self.mean_values, self.std_values = [float(m) for m in mean], [float(s) for s in std]
        self.register_buffer("mean", torch.tensor(self.mean_values).view(3, 1, 1))
        self.register_buffer("std", torch.tensor(self.std_values).view(3, 1, 1))

    def settings(self) -> dict:
        """The parameters that define this preprocessing, as plain JSON values."""
        return {"resize_shorter_side_to": self.resize_size, "centre_crop": self.input_size,
                "interpolation": "bilinear, antialiased", "mean": self.mean_values, "std": self.std_values,
                "uint8_scale": "x / 255"}

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if images.dim() not in (3, 4) or images.shape[-3] != 3:
            raise ValueError(f"expected an RGB image (3, H, W) or a batch (N, 3, H, W), got {tuple(images.shape)}")
        if images.dtype == torch.uint8:
            images = images.to(self.mean.dtype) / 255
        elif images.is_floating_point():
            images = images.to(self.mean.dtype)  # expected in [0, 1], like ToTensor's output
        else:
            raise TypeError(f"images must be uint8 (0-255) or float (0-1), got {images.dtype}")
        single = images.dim() == 3
        if single:
            images = images.unsqueeze(0)  # interpolate wants a batch: (3, H, W) -> (1, 3, H, W)
        # Shorter side -> resize_size, aspect ratio kept. sym_min keeps H and W symbolic under
        # torch.export, where an `if h < w:` would be decided once, for the example image.
        h, w = images.shape[-2:]
        short = torch.sym_min(h, w)
        new_h, new_w = self.resize_size * h // short, self.resize_size * w // short
        images = F.interpolate(images, size=(new_h, new_w), mode="bilinear", antialias=True, align_corners=False)
        # Centre crop: narrow() has a fixed length, so the shape after it is a constant for export.
        images = images.narrow(2, (new_h - self.input_size) // 2, self.input_size)
        images = images.narrow(3, (new_w - self.input_size) // 2, self.input_size)
        images = (images - self.mean) / self.std
        return images[0] if single else images


def train_transform(size: int, mean: Sequence[float], std: Sequence[float], *, degrees: float = 30,
                    scale: tuple[float, float] = (0.5, 1.0)) -> v2.Compose:
    """Random rotation, crop-and-resize to `size`, horizontal flip; then a normalised (3, size, size) float tensor."""
    from torchvision.transforms import v2  # here, not at the top: predict imports this module without torchvision

    check_count("size", size)  # in pixels
    return v2.Compose([
        v2.ToImage(),  # PIL image -> uint8 tensor (3, H, W); the geometric steps below work on it
        v2.RandomRotation(degrees, interpolation=v2.InterpolationMode.BILINEAR),
        v2.RandomResizedCrop(size, scale=scale, antialias=True),  # torchvision's default (0.08, 1) can keep only a paw
        v2.RandomHorizontalFlip(),
        v2.ToDtype(torch.float32, scale=True),  # [0, 255] -> [0, 1]
        v2.Normalize(mean, std),  # (x - mean) / std per channel
    ])


def eval_transform(size: int, mean: Sequence[float], std: Sequence[float], *,
                   crop_fraction: float = CROP_FRACTION) -> v2.Compose:
    """Shorter side to size / crop_fraction (256 for 224), centre crop to `size`, normalise: nothing random."""
    from torchvision.transforms import v2  # here, not at the top: predict imports this module without torchvision

    check_count("size", size)  # in pixels
    if not 0 < crop_fraction <= 1:
        raise ValueError(f"crop_fraction must be in (0, 1], got {crop_fraction}")
    return v2.Compose([
        v2.ToImage(),  # PIL image -> uint8 tensor (3, H, W)
        v2.ToPureTensor(),
        # The same module the exported pipeline runs: served photos are preprocessed as validated ones.
        ResizeCropNormalize(size, mean, std, resize_size=round(size / crop_fraction)),
    ])
