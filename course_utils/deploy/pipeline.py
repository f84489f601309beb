"""An inference pipeline: raw image tensors in, class probabilities out, exported as .pt2 and as ONNX."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
from torch import nn

from course_utils.core.files import atomic_write
from course_utils.datasets.transforms import CROP_FRACTION, ResizeCropNormalize, open_rgb, pil_to_tensor  # noqa: F401
from course_utils.deploy.predict import ARTIFACT_FORMAT, METADATA_FILE, ONNX_METADATA_KEY  # what predict checks

BLOCKED_IMPORTS = ("course_utils", "torchvision", "efficientnet_lite_pytorch")  # never in a parity process


class InferencePipeline(nn.Module):
    """Preprocessing, a trained classifier and softmax in one module, with the facts needed to use it.

    Input: one image (3, H, W) or a batch (N, 3, H, W) of any height and width, uint8 in [0, 255]
    or float in [0, 1]. Output: probabilities (num_classes,) or (N, num_classes).
    """

    def __init__(self, model: nn.Module, class_names: Sequence[str], input_size: int,
                 mean: Sequence[float], std: Sequence[float], resize_size: int | None = None):
        super().__init__()
        if not class_names or not all(isinstance(name, str) for name in class_names):
            raise ValueError("class_names must be a non-empty list of strings")
        self.preprocess = ResizeCropNormalize(input_size, mean, std, resize_size)  # the lessons' eval transform
        self.model = model
        self.class_names = list(class_names)

    @property
    def input_size(self) -> int:
        return self.preprocess.input_size

    @property
    def resize_size(self) -> int:
        return self.preprocess.resize_size

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        single = images.dim() == 3
        if single:
            images = images.unsqueeze(0)  # (3, H, W) -> (1, 3, H, W)
        if images.dim() != 4 or images.shape[1] != 3:
            raise ValueError(f"expected an RGB image (3, H, W) or a batch (N, 3, H, W), got {tuple(images.shape)}")
        logits = self.model(self.preprocess(images))  # (N, num_classes)
        probs = logits.softmax(dim=1)
        return probs[0] if single else probs

    def metadata(self, **facts) -> dict:
        """What a user of the artifact must know: classes, expected input, preprocessing; plus `facts`."""
        return {
            "format": ARTIFACT_FORMAT,
            "class_names": self.class_names,
            "input": "uint8 tensor (N, 3, H, W), RGB, 0-255, any N, H, W",
            "output": "probabilities (N, num_classes), softmax over class_names",
            "input_size": self.input_size,
            "resize_size": self.resize_size,
            "mean": self.preprocess.mean_values,
            "std": self.preprocess.std_values,
            "preprocessing": self.preprocess.settings(),
            "torch_version": torch.__version__,
            **facts,
        }


def accuracy_on_files(classify: Callable[[torch.Tensor], torch.Tensor], samples: Sequence[tuple[str, int]]) -> float:
    """Share of `samples` (path, label) that `classify` (uint8 (1, 3, H, W) -> probs (1, C)) gets right.

    Each photo is read as the predict command line reads it, one at a time (photos differ in size).
    """
    if not samples:
        raise ValueError("no samples to measure the accuracy on")
    correct = 0
    with torch.no_grad():
        for path, label in samples:
            image = pil_to_tensor(open_rgb(path)).unsqueeze(0)  # (1, 3, H, W) uint8
            correct += int(classify(image).argmax(dim=1).item() == label)
    return correct / len(samples)


def _example_and_dims(pipeline: InferencePipeline, example: torch.Tensor | None):
    if example is None:  # only its dtype and shape matter
        example = torch.randint(0, 256, (2, 3, pipeline.resize_size + 17, pipeline.resize_size + 45),
                                dtype=torch.uint8)
    # Export turns an example size of 1 into the constant 1, so a dynamic size needs an example >= 2.
    if example.dtype != torch.uint8 or example.dim() != 4 or min(example.shape[0], *example.shape[2:]) < 2:
        raise ValueError(f"the example must be a uint8 batch (N, 3, H, W) with N, H, W >= 2, "
                         f"got {example.dtype} {tuple(example.shape)}")
    batch, height, width = (torch.export.Dim(name, min=1) for name in ("batch", "height", "width"))
    return example, {"images": {0: batch, 2: height, 3: width}}


def export_pipeline(pipeline: InferencePipeline, example: torch.Tensor | None = None) -> torch.export.ExportedProgram:
    """torch.export the pipeline (in eval mode) for uint8 batches (N, 3, H, W), with N, H and W dynamic."""
    example, dynamic_shapes = _example_and_dims(pipeline, example)
    return torch.export.export(pipeline.eval(), (example,), dynamic_shapes=dynamic_shapes)


def save_artifact(program: torch.export.ExportedProgram, metadata: dict, path: str | Path) -> Path:
    """Write the program and its metadata into one .pt2 file, atomically (temp file, then rename)."""
    path = Path(path)
    if path.suffix != ".pt2":
        raise ValueError(f"an exported program is saved as a .pt2 file, got {path.name}")
    extra_files = {METADATA_FILE: json.dumps(metadata, indent=1)}
    return atomic_write(path, lambda f: torch.export.save(program, f, extra_files=extra_files))


def export_onnx(pipeline: InferencePipeline, metadata: dict, path: str | Path,
                example: torch.Tensor | None = None) -> Path:
    """Export the pipeline to one .onnx file (dynamic batch, height, width) with `metadata` inside, atomically."""
    import onnx  # noqa: F401  (torch.onnx needs onnx and onnxscript; fail here with their names)
    import onnxscript  # noqa: F401

    path = Path(path)
    if path.suffix != ".onnx":
        raise ValueError(f"an ONNX model is saved as a .onnx file, got {path.name}")
    example, dynamic_shapes = _example_and_dims(pipeline, example)
    # dynamo=True goes through torch.export, like the .pt2; the resize's symbolic sizes become ONNX shape ops
    program = torch.onnx.export(pipeline.eval(), (example,), dynamo=True, dynamic_shapes=dynamic_shapes,
                                verbose=False, optimize=True)
    model = program.model_proto
    entry = model.metadata_props.add()
    entry.key, entry.value = ONNX_METADATA_KEY, json.dumps(metadata, indent=1)
    return atomic_write(path, lambda f: f.write(model.SerializeToString()))


# --- parity in a fresh process ------------------------------------------------------------------------------

# The program a parity process runs: a real file, importing nothing of the course (it could not: it blocks it).
FRESH_PROCESS = Path(__file__).with_name("fresh_process.py")


def run_in_fresh_process(artifact: str | Path, inputs: list[torch.Tensor], workdir: str | Path,
                         timeout: float = 600) -> dict:
    """Run each uint8 batch of `inputs` through `artifact` (.pt2 or .onnx) in a new, isolated Python.

    That process cannot import course_utils, torchvision or efficientnet_lite_pytorch (nor torch,
    for ONNX). Returns {"probs": [float32 tensor per batch], "metadata", "sys_path", "modules"}.
    """
    import numpy as np

    artifact, workdir = Path(artifact).resolve(), Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    threads = str(torch.get_num_threads())
    if artifact.suffix == ".pt2":
        blocked, metadata = BLOCKED_IMPORTS, METADATA_FILE
        inputs_file, output_file = workdir / "inputs.pt", workdir / "outputs.pt"
        torch.save(list(inputs), inputs_file)
        site = Path(torch.__file__).resolve().parent.parent
    elif artifact.suffix == ".onnx":
        import onnxruntime

        blocked, metadata = (*BLOCKED_IMPORTS, "torch"), ONNX_METADATA_KEY
        inputs_file, output_file = workdir / "inputs.npz", workdir / "outputs.npz"
        np.savez(inputs_file, **{f"batch{i:03d}": images.numpy() for i, images in enumerate(inputs)})
        site = Path(onnxruntime.__file__).resolve().parent.parent
    else:
        raise ValueError(f"expected a .pt2 or .onnx artifact, got {artifact.name}")
    # -I -S: no PYTHONPATH, no script or current folder, no site-packages hooks (this course is installed
    # through such a hook); the process's import blocker makes sure nothing finds the course anyway.
    command = [sys.executable, "-I", "-S", str(FRESH_PROCESS), artifact.suffix[1:], str(site), str(artifact),
               str(inputs_file), str(output_file), threads, ",".join(blocked), metadata]
    env = os.environ | {"OMP_NUM_THREADS": threads}  # -I ignores PYTHON* variables only
    done = subprocess.run(command, cwd=workdir, env=env, capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        tail = "\n".join(done.stderr.strip().splitlines()[-5:])
        raise RuntimeError(f"the fresh process failed (exit {done.returncode}):\n{tail}")
    if artifact.suffix == ".pt2":
        return torch.load(output_file, weights_only=True)
    with np.load(output_file) as stored:
        probs = [torch.from_numpy(stored[key]) for key in sorted(stored.files)]
    return {"probs": probs, **json.loads(Path(str(output_file) + ".json").read_text())}
