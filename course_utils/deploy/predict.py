"""Top-k classes of photos from an exported artifact (.pt2 or .onnx).

    python -m course_utils.deploy.predict ARTIFACT IMAGE ...
"""

# Needs torch, Pillow and the course's preprocessing module (no torchvision); ONNX Runtime for .onnx.
from __future__ import annotations

import argparse
import json
import logging
import sys
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import torch
from PIL import Image, UnidentifiedImageError

from course_utils.datasets.transforms import open_rgb, pil_to_tensor, to_rgb  # noqa: F401  (to_rgb re-exported)

ARTIFACT_FORMAT = "course_utils.deploy.pipeline/2"  # written into every artifact's metadata
METADATA_FILE = "metadata.json"  # inside the .pt2 archive, next to the program
ONNX_METADATA_KEY = "course_utils.metadata"  # the ONNX model's metadata_props entry holding the same JSON
DEFAULT_TOP_K = 5
EXIT_OK, EXIT_SOME_FAILED, EXIT_UNUSABLE = 0, 1, 2


class PredictError(Exception):
    """A problem with the artifact, the image or the arguments, explained in one line."""


@dataclass
class Artifact:
    """A loaded artifact: `run` maps uint8 (N, 3, H, W) to probabilities (N, num_classes)."""

    path: Path
    run: Callable[[torch.Tensor], torch.Tensor]
    metadata: dict

    @property
    def class_names(self) -> list[str]:
        return self.metadata["class_names"]


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


def parse_metadata(text: str | None, source: str | Path = "artifact") -> dict:
    """The metadata dict, checked to be ours and to hold what prediction needs."""
    if not text:
        raise PredictError(f"{source} carries no metadata, so it is not an artifact of this course "
                           f"(write it with pipeline.save_artifact or pipeline.export_onnx)")
    try:
        metadata = json.loads(text)
    except json.JSONDecodeError as err:
        raise PredictError(f"the metadata of {source} is not valid JSON ({err})") from None
    if not isinstance(metadata, dict):
        raise PredictError(f"the metadata of {source} is not a JSON object")
    if metadata.get("format") != ARTIFACT_FORMAT:
        raise PredictError(f"{source} is not an artifact of this course: its metadata format is "
                           f"{metadata.get('format')!r}, expected {ARTIFACT_FORMAT!r}")
    names = metadata.get("class_names")
    if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
        raise PredictError(f"the metadata of {source} lacks class_names (a non-empty list of strings)")
    return metadata


def _load_pt2(path: Path, device: torch.device) -> Artifact:
    if not zipfile.is_zipfile(path):  # a .pt2 is a zip archive; truncation removes its directory
        raise PredictError(f"{path} is not a .pt2 artifact (not a zip archive: truncated, or another kind of file)")
    extra_files = {METADATA_FILE: ""}  # torch.export.load fills in the stored contents
    try:
        with _quiet_torch_export(), open(path, "rb") as f:  # a file object: any file name works
            program = torch.export.load(f, extra_files=extra_files)
    except Exception as err:  # noqa: BLE001 - torch.export.load raises many types for a bad archive; all mean the same
        raise PredictError(f"{path} is not a loadable exported program ({type(err).__name__}: "
                           f"{str(err).splitlines()[0] if str(err) else 'no details'})") from None
    metadata = parse_metadata(extra_files[METADATA_FILE], path)
    module = program.module().to(device)

    def run(images: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return module(images.to(device)).cpu()

    return Artifact(path, run, metadata)


def _load_onnx(path: Path, device: torch.device) -> Artifact:
    try:
        import onnxruntime as ort
    except ImportError:
        raise PredictError("an .onnx artifact needs the onnxruntime package (pip install onnxruntime)") from None
    provider = {"cpu": "CPUExecutionProvider", "cuda": "CUDAExecutionProvider"}.get(device.type)
    if provider not in ort.get_available_providers():
        offered = ", ".join(ort.get_available_providers())
        raise PredictError(f"ONNX Runtime here cannot run on {device} (it offers {offered})")
    options = ort.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()  # the same thread budget as torch
    options.log_severity_level = 4  # errors reach us as exceptions; no log lines on stderr
    try:
        session = ort.InferenceSession(str(path), options, providers=[provider])
    except Exception as err:  # noqa: BLE001 - InvalidProtobuf, Fail, ...: the file is not a usable ONNX model
        raise PredictError(f"{path} is not a loadable ONNX model ({type(err).__name__}: "
                           f"{str(err).splitlines()[0] if str(err) else 'no details'})") from None
    metadata = parse_metadata(session.get_modelmeta().custom_metadata_map.get(ONNX_METADATA_KEY), path)
    input_name = session.get_inputs()[0].name

    def run(images: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(session.run(None, {input_name: images.contiguous().numpy()})[0])

    return Artifact(path, run, metadata)


def load_artifact(path: str | Path, device: str | torch.device = "cpu") -> Artifact:
    """Load a .pt2 or .onnx artifact written by this course, checked, ready to run on `device`."""
    path = Path(path)
    if not path.is_file():
        raise PredictError(f"no artifact at {path}")
    device = resolve_device(device)
    if path.suffix == ".pt2":
        return _load_pt2(path, device)
    if path.suffix == ".onnx":
        return _load_onnx(path, device)
    raise PredictError(f"{path} is not an artifact of this course: expected a .pt2 or .onnx file")


def resolve_device(device: str | torch.device) -> torch.device:
    """'auto' (CUDA when present, else CPU), 'cpu' or 'cuda[:N]' as a device that exists here."""
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(device)
    except (RuntimeError, TypeError):
        raise PredictError(f"unknown device {device!r}; use auto, cpu or cuda") from None
    if device.type not in ("cpu", "cuda"):
        raise PredictError(f"device {device} is not supported here; use auto, cpu or cuda")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise PredictError(f"device {device} was asked for, but this machine has no CUDA GPU; use --device cpu")
    return device


def load_image(path: str | Path) -> torch.Tensor:
    """Read an image file as uint8 RGB (3, H, W), upright per its EXIF orientation."""
    path = Path(path)
    if not path.is_file():
        raise PredictError(f"no image at {path}")
    try:
        return pil_to_tensor(open_rgb(path))
    except UnidentifiedImageError:
        raise PredictError(f"{path} is not an image file Pillow can read") from None
    except Image.DecompressionBombError as err:
        raise PredictError(f"{path} is too large to open safely ({err})") from None
    except (OSError, SyntaxError, ValueError) as err:  # Pillow's ways of saying "broken data"
        raise PredictError(f"{path} is truncated or corrupt ({err})") from None


def expand_paths(paths: list[Path]) -> list[Path]:
    """The files named, with each folder replaced by the files directly in it (sorted, hidden ones skipped)."""
    files = []
    for path in paths:
        if path.is_dir():
            inside = sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith("."))
            if not inside:
                raise PredictError(f"the folder {path} holds no files to classify")
            files += inside
        else:
            files.append(path)  # a missing file is reported with the other per-image errors
    return files


def check_k(k: int, num_classes: int) -> None:
    """Raise unless 1 <= k <= num_classes."""
    if not 1 <= k <= num_classes:
        raise PredictError(f"top-k must be between 1 and {num_classes} (the number of classes), got {k}")


def top_k(probs: torch.Tensor, class_names: list[str], k: int = DEFAULT_TOP_K) -> list[tuple[str, float]]:
    """The k most probable (class name, probability) pairs of one probability vector."""
    if probs.dim() != 1 or len(probs) != len(class_names):
        raise PredictError(f"the model gives {tuple(probs.shape)} probabilities for {len(class_names)} class names")
    check_k(k, len(class_names))
    values, indices = probs.topk(k)
    return [(class_names[i], p) for p, i in zip(values.tolist(), indices.tolist())]


def predict(artifact: Artifact, image: torch.Tensor) -> torch.Tensor:
    """Probabilities (num_classes,) of one uint8 image (3, H, W)."""
    return artifact.run(image.unsqueeze(0))[0]  # (1, 3, H, W) -> (1, num_classes) -> (num_classes,)


def classify_files(artifact: Artifact, files: list[Path], k: int) -> list[dict]:
    """One result per file: {"file", "width", "height", "top_k": [{"class", "probability"}]} or {"file", "error"}."""
    results = []
    for path in files:
        try:
            image = load_image(path)
            ranked = top_k(predict(artifact, image), artifact.class_names, k)
        except PredictError as err:
            results.append({"file": str(path), "error": str(err)})
            continue
        results.append({"file": str(path), "width": image.shape[2], "height": image.shape[1],
                        "top_k": [{"class": name, "probability": prob} for name, prob in ranked]})
    return results


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m course_utils.deploy.predict", description=__doc__,
        epilog=f"exit status: {EXIT_OK} every image classified, {EXIT_SOME_FAILED} some image failed "
               f"(the others are still answered), {EXIT_UNUSABLE} the artifact or the arguments are unusable")
    parser.add_argument("artifact", type=Path, help="a .pt2 or .onnx file written by course_utils.deploy.pipeline")
    parser.add_argument("images", type=Path, nargs="+", metavar="IMAGE",
                        help="image files or folders of them (JPEG, PNG, ...; grayscale, RGBA, palette are converted)")
    parser.add_argument("--top-k", type=int, default=DEFAULT_TOP_K,
                        help="how many classes per image (default: %(default)s)")
    parser.add_argument("--json", action="store_true", help="one JSON object per image and line, errors included")
    parser.add_argument("--device", default="cpu", help="auto, cpu or cuda[:N] (default: %(default)s)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        if args.top_k < 1:
            raise PredictError(f"--top-k must be at least 1, got {args.top_k}")
        files = expand_paths(args.images)  # cheap checks first, the artifact load takes seconds
        artifact = load_artifact(args.artifact, args.device)
        check_k(args.top_k, len(artifact.class_names))
    except PredictError as err:
        print(f"predict: error: {err}", file=sys.stderr)
        return EXIT_UNUSABLE
    results = classify_files(artifact, files, args.top_k)
    for result in results:
        if args.json:
            print(json.dumps(result))
        elif "error" in result:
            print(f"predict: error: {result['error']}", file=sys.stderr)
        else:
            print(f"{Path(result['file']).name} ({result['width']}x{result['height']}): "
                  f"top {len(result['top_k'])} of {len(artifact.class_names)} classes")
            for entry in result["top_k"]:
                print(f"  {entry['probability']:.4f}  {entry['class']}")
    return EXIT_SOME_FAILED if any("error" in result for result in results) else EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
