"""Top-k classes of one image from an exported .pt2 artifact: `python -m course_utils.deploy.predict ARTIFACT IMAGE`."""

# Deployable on its own: imports only torch, Pillow and the standard library (no course_utils).
from __future__ import annotations

import argparse
import json
import logging
import sys
import zipfile
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

import torch
from PIL import Image, ImageOps, UnidentifiedImageError

METADATA_FILE = "metadata.json"
DEFAULT_TOP_K = 5


class PredictError(Exception):
    """A problem with the artifact, the image or the arguments, explained in one line."""


@contextmanager
def _quiet_torch_export() -> Iterator[None]:
    """Silence torch.export's logger, which prints a traceback before re-raising a load error."""
    logger = logging.getLogger("torch.export")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(level)


def parse_metadata(text: str, source: str | Path = "artifact") -> dict:
    """The metadata dict, checked for what prediction needs (class_names, input_size, mean, std)."""
    if not text:
        raise PredictError(f"{source} has no {METADATA_FILE} (save it with pipeline.save_artifact)")
    try:
        metadata = json.loads(text)
    except json.JSONDecodeError as err:
        raise PredictError(f"the {METADATA_FILE} of {source} is not valid JSON ({err})") from None
    if not isinstance(metadata, dict):
        raise PredictError(f"the {METADATA_FILE} of {source} is not a JSON object")
    names = metadata.get("class_names")
    if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
        raise PredictError(f"the {METADATA_FILE} of {source} lacks class_names (a non-empty list of strings)")
    missing = [key for key in ("input_size", "mean", "std") if key not in metadata]
    if missing:
        raise PredictError(f"the {METADATA_FILE} of {source} lacks {', '.join(missing)}")
    return metadata


def load_artifact(path: str | Path) -> tuple[Callable[[torch.Tensor], torch.Tensor], dict]:
    """(callable: uint8 (N, 3, H, W) -> probs (N, num_classes), metadata) from a .pt2 file."""
    path = Path(path)
    if not path.is_file():
        raise PredictError(f"no artifact at {path}")
    if not zipfile.is_zipfile(path):  # a .pt2 is a zip archive; truncation removes its directory
        raise PredictError(f"{path} is not a .pt2 artifact (not a zip archive: truncated, or another kind of file)")
    extra_files = {METADATA_FILE: ""}  # torch.export.load fills in the stored contents
    try:
        with _quiet_torch_export(), open(path, "rb") as f:  # a file object: any file name works
            program = torch.export.load(f, extra_files=extra_files)
    except Exception as err:  # torch.export.load raises many types for a bad archive; all mean the same
        raise PredictError(f"{path} is not a loadable exported program ({type(err).__name__}: "
                           f"{str(err).splitlines()[0] if str(err) else 'no details'})") from None
    return program.module(), parse_metadata(extra_files[METADATA_FILE], path)


def to_rgb(image: Image.Image) -> Image.Image:
    """Any Pillow mode as 8-bit RGB: grayscale is repeated, palettes looked up, transparency on white."""
    if image.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N"):  # 16-bit grayscale: scale, don't clip
        image = image.convert("I").point(lambda v: v * (1 / 257) + 0.5).convert("L")
    if image.has_transparency_data:  # RGBA, LA, PA, or a palette with a transparent colour
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return image.convert("RGB")


def image_to_tensor(image: Image.Image) -> torch.Tensor:
    """An RGB Pillow image as a uint8 tensor (3, H, W), no NumPy needed."""
    pixels = torch.frombuffer(bytearray(image.tobytes()), dtype=torch.uint8)
    return pixels.view(image.height, image.width, 3).permute(2, 0, 1)  # (H, W, 3) -> (3, H, W)


def load_image(path: str | Path) -> torch.Tensor:
    """Read an image file as uint8 RGB (3, H, W), upright per its EXIF orientation."""
    path = Path(path)
    if not path.is_file():
        raise PredictError(f"no image at {path}")
    try:
        with Image.open(path) as image:
            image.load()  # decode now, so a truncated file fails here
            rgb = to_rgb(ImageOps.exif_transpose(image))
    except UnidentifiedImageError:
        raise PredictError(f"{path} is not an image file Pillow can read") from None
    except Image.DecompressionBombError as err:
        raise PredictError(f"{path} is too large to open safely ({err})") from None
    except (OSError, SyntaxError, ValueError) as err:  # Pillow's ways of saying "broken data"
        raise PredictError(f"{path} is truncated or corrupt ({err})") from None
    return image_to_tensor(rgb)


def top_k(probs: torch.Tensor, class_names: list[str], k: int = DEFAULT_TOP_K) -> list[tuple[str, float]]:
    """The k most probable (class name, probability) pairs of one probability vector."""
    if probs.dim() != 1 or len(probs) != len(class_names):
        raise PredictError(f"the model gives {tuple(probs.shape)} probabilities for {len(class_names)} class names")
    if not 1 <= k <= len(class_names):
        raise PredictError(f"top-k must be between 1 and {len(class_names)} (the number of classes), got {k}")
    values, indices = probs.topk(k)
    return [(class_names[i], p) for p, i in zip(values.tolist(), indices.tolist())]


def predict(program: Callable[[torch.Tensor], torch.Tensor], image: torch.Tensor) -> torch.Tensor:
    """Probabilities (num_classes,) of one uint8 image (3, H, W)."""
    with torch.no_grad():
        return program(image.unsqueeze(0))[0]  # (1, 3, H, W) -> (1, num_classes) -> (num_classes,)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m course_utils.deploy.predict", description=__doc__)
    parser.add_argument("artifact", type=Path, help="a .pt2 file written by pipeline.save_artifact")
    parser.add_argument("image", type=Path, help="an image file (JPEG, PNG, ...; grayscale and RGBA are fine)")
    parser.add_argument("--top-k", type=int, default=DEFAULT_TOP_K, help="how many classes to print (default: %(default)s)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        if args.top_k < 1:
            raise PredictError(f"--top-k must be at least 1, got {args.top_k}")
        if not args.artifact.is_file():
            raise PredictError(f"no artifact at {args.artifact}")
        image = load_image(args.image)  # cheap checks first, the artifact load takes seconds
        program, metadata = load_artifact(args.artifact)
        ranked = top_k(predict(program, image), metadata["class_names"], args.top_k)
    except PredictError as err:
        print(f"predict: error: {err}", file=sys.stderr)
        return 1
    print(f"{args.image.name} ({image.shape[2]}x{image.shape[1]}): top {len(ranked)} of {len(metadata['class_names'])} classes")
    for name, prob in ranked:
        print(f"  {prob:.4f}  {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
