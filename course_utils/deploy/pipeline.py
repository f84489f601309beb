"""An inference pipeline: raw image tensors in, class probabilities out, exported as one .pt2 artifact."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from course_utils.core.checkpoints import atomic_write
from course_utils.deploy.predict import METADATA_FILE  # stored inside the .pt2 archive, next to the program

ARTIFACT_FORMAT = "course_utils.deploy.pipeline/1"
CROP_FRACTION = 0.875  # ImageNet convention: resize the shorter side to 256, centre-crop 224


class InferencePipeline(nn.Module):
    """Preprocessing, a trained classifier and softmax in one module, with the facts needed to use it.

    Input: one image (3, H, W) or a batch (N, 3, H, W) of any height and width, uint8 in [0, 255]
    or float in [0, 1]. Output: probabilities (num_classes,) or (N, num_classes).
    """

    def __init__(self, model: nn.Module, class_names: Sequence[str], input_size: int,
                 mean: Sequence[float], std: Sequence[float], resize_size: int | None = None):
        super().__init__()
        if resize_size is None:
            resize_size = round(input_size / CROP_FRACTION)
        if not class_names or not all(isinstance(name, str) for name in class_names):
            raise ValueError("class_names must be a non-empty list of strings")
        if len(mean) != 3 or len(std) != 3 or min(std) <= 0:
            raise ValueError(f"mean and std need three values (RGB), std > 0; got mean={mean}, std={std}")
        if not 0 < input_size <= resize_size:
            raise ValueError(f"need 0 < input_size <= resize_size, got {input_size} and {resize_size}")
        self.model = model
        self.class_names = list(class_names)
        self.input_size = int(input_size)
        self.resize_size = int(resize_size)
        self.mean_values, self.std_values = [float(m) for m in mean], [float(s) for s in std]
        self.register_buffer("mean", torch.tensor(self.mean_values).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(self.std_values).view(1, 3, 1, 1))

    def preprocess(self, images: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) uint8 or float -> (N, 3, input_size, input_size) normalised float32."""
        if images.dtype == torch.uint8:
            images = images.to(self.mean.dtype) / 255
        elif images.is_floating_point():
            images = images.to(self.mean.dtype)  # expected in [0, 1], like ToTensor's output
        else:
            raise TypeError(f"images must be uint8 (0-255) or float (0-1), got {images.dtype}")
        # Shorter side -> resize_size, aspect ratio kept. sym_min keeps H and W symbolic under
        # torch.export, where an `if h < w:` would be decided once, for the example image.
        h, w = images.shape[-2:]
        short = torch.sym_min(h, w)
        new_h, new_w = self.resize_size * h // short, self.resize_size * w // short
        images = F.interpolate(images, size=(new_h, new_w), mode="bilinear", antialias=True, align_corners=False)
        # Centre crop: narrow() has a fixed length, so the shape after it is a constant for export.
        images = images.narrow(2, (new_h - self.input_size) // 2, self.input_size)
        images = images.narrow(3, (new_w - self.input_size) // 2, self.input_size)
        return (images - self.mean) / self.std

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        single = images.dim() == 3
        if single:
            images = images.unsqueeze(0)  # (3, H, W) -> (1, 3, H, W)
        if images.dim() != 4 or images.shape[1] != 3:
            raise ValueError(f"expected an RGB image (3, H, W) or a batch (N, 3, H, W), got {tuple(images.shape)}")
        logits = self.model(self.preprocess(images))  # (N, num_classes)
        probs = logits.softmax(dim=1)
        return probs[0] if single else probs

    def metadata(self) -> dict:
        """What a user of the artifact must know: classes, expected input, preprocessing."""
        return {
            "format": ARTIFACT_FORMAT,
            "class_names": self.class_names,
            "input": "uint8 tensor (N, 3, H, W), RGB, 0-255, any N, H, W",
            "output": "probabilities (N, num_classes), softmax over class_names",
            "input_size": self.input_size,
            "resize_size": self.resize_size,
            "mean": self.mean_values,
            "std": self.std_values,
            "torch_version": torch.__version__,
        }


def export_pipeline(pipeline: InferencePipeline, example: torch.Tensor | None = None) -> torch.export.ExportedProgram:
    """torch.export the pipeline (in eval mode) for uint8 batches (N, 3, H, W), with N, H and W dynamic."""
    if example is None:  # only its dtype and shape matter
        example = torch.randint(0, 256, (2, 3, pipeline.resize_size + 17, pipeline.resize_size + 45),
                                dtype=torch.uint8)
    # Export turns an example size of 1 into the constant 1, so a dynamic size needs an example >= 2.
    if example.dtype != torch.uint8 or example.dim() != 4 or min(example.shape[0], *example.shape[2:]) < 2:
        raise ValueError(f"the example must be a uint8 batch (N, 3, H, W) with N, H, W >= 2, "
                         f"got {example.dtype} {tuple(example.shape)}")
    batch, height, width = (torch.export.Dim(name, min=1) for name in ("batch", "height", "width"))
    return torch.export.export(pipeline.eval(), (example,), dynamic_shapes={"images": {0: batch, 2: height, 3: width}})


def save_artifact(program: torch.export.ExportedProgram, metadata: dict, path: str | Path) -> Path:
    """Write the program and its metadata into one .pt2 file, atomically (temp file, then rename)."""
    path = Path(path)
    if path.suffix != ".pt2":
        raise ValueError(f"an exported program is saved as a .pt2 file, got {path.name}")
    extra_files = {METADATA_FILE: json.dumps(metadata, indent=1)}
    return atomic_write(path, lambda f: torch.export.save(program, f, extra_files=extra_files))


# What a server with PyTorch but without this course needs: torch.export.load and the metadata.
# `python -I -S` plus torch's own folder on sys.path: no PYTHONPATH, no current folder, no
# site-packages hooks (this course is installed in editable mode, through such a hook).
FRESH_PROCESS_SCRIPT = f"METADATA_FILE = {METADATA_FILE!r}\n" + """\
import importlib.util, json, sys
sys.path.append(sys.argv[1])  # the folder torch is installed in, nothing else
import torch
if importlib.util.find_spec("course_utils") is not None:
    sys.exit("course_utils is importable here: this would not prove the artifact stands alone")
artifact, inputs_file, output_file = sys.argv[2:5]
extra_files = {METADATA_FILE: ""}
program = torch.export.load(artifact, extra_files=extra_files)
metadata = json.loads(extra_files[METADATA_FILE])
inputs = torch.load(inputs_file, weights_only=True)
with torch.no_grad():
    probs = [program.module()(images) for images in inputs]
torch.save({"probs": probs, "class_names": metadata["class_names"], "sys_path": sys.path}, output_file)
"""


def run_in_fresh_process(artifact: str | Path, inputs: list[torch.Tensor], workdir: str | Path,
                         timeout: float = 600) -> dict:
    """Load `artifact` in a new Python that cannot import course_utils; run each batch of `inputs`.

    Returns {"probs": [tensor per batch], "class_names": [...], "sys_path": [...]} from that process.
    """
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    inputs_file, output_file = workdir / "inputs.pt", workdir / "outputs.pt"
    torch.save(list(inputs), inputs_file)
    torch_site = str(Path(torch.__file__).resolve().parent.parent)
    command = [sys.executable, "-I", "-S", "-c", FRESH_PROCESS_SCRIPT,
               torch_site, str(Path(artifact).resolve()), str(inputs_file), str(output_file)]
    env = os.environ | {"OMP_NUM_THREADS": str(torch.get_num_threads())}  # -I ignores PYTHON* variables only
    done = subprocess.run(command, cwd=workdir, env=env, capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        tail = "\n".join(done.stderr.strip().splitlines()[-5:])
        raise RuntimeError(f"the fresh process failed (exit {done.returncode}):\n{tail}")
    return torch.load(output_file, weights_only=True)
