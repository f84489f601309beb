"""Tests for course_utils.deploy.pipeline: the module, its .pt2 and ONNX exports, parity in fresh processes."""

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import onnx
import pytest
import torch
from conftest import TINY_CLASS_NAMES
from PIL import Image
from torch import nn

from course_utils.core import checkpoints
from course_utils.datasets.sources import PROJECT_ROOT
from course_utils.deploy import pipeline, predict

CLASS_NAMES = TINY_CLASS_NAMES
INPUT_SIZE, RESIZE_SIZE = 32, 36
MEAN, STD = (0.5, 0.4, 0.3), (0.2, 0.25, 0.3)


@pytest.fixture(scope="module")
def pipe(tiny_artifacts):
    return tiny_artifacts["pipe"]


def random_images(shape, dtype=torch.uint8, seed=0):
    generator = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, shape, dtype=torch.uint8, generator=generator)
    return images if dtype == torch.uint8 else images.to(dtype) / 255


@pytest.mark.parametrize("dtype", [torch.uint8, torch.float32, torch.float64])
@pytest.mark.parametrize("shape", [(3, 40, 50), (2, 3, 40, 50), (4, 3, 300, 31), (1, 3, 1, 1)])
def test_any_dtype_rank_and_size_gives_probabilities(pipe, shape, dtype):
    with torch.no_grad():
        probs = pipe(random_images(shape, dtype))
    expected_shape = (len(CLASS_NAMES),) if len(shape) == 3 else (shape[0], len(CLASS_NAMES))
    assert probs.shape == expected_shape and probs.dtype == torch.float32
    assert (probs >= 0).all()
    torch.testing.assert_close(probs.sum(dim=-1), torch.ones(probs.shape[:-1]), atol=1e-6, rtol=0)


def test_uint8_and_float_inputs_agree(pipe):
    images = random_images((3, 3, 64, 48))
    with torch.no_grad():
        torch.testing.assert_close(pipe(images), pipe(images.float() / 255), atol=1e-6, rtol=0)
        torch.testing.assert_close(pipe(images[0]), pipe(images[:1])[0], atol=0, rtol=0)


def test_bad_inputs_are_explained(pipe):
    with pytest.raises(ValueError, match="expected an RGB image"):
        pipe(torch.zeros(2, 1, 40, 40, dtype=torch.uint8))  # one channel: convert to RGB first


def test_class_names_are_required():
    with pytest.raises(ValueError, match="class_names"):
        pipeline.InferencePipeline(nn.Identity(), [], INPUT_SIZE, MEAN, STD)


def test_metadata_holds_the_preprocessing_and_the_given_facts(tiny_artifacts):
    metadata = tiny_artifacts["metadata"]
    assert metadata["format"] == predict.ARTIFACT_FORMAT and metadata["class_names"] == CLASS_NAMES
    assert metadata["input_size"] == INPUT_SIZE and metadata["resize_size"] == RESIZE_SIZE
    assert metadata["preprocessing"]["mean"] == list(MEAN) and metadata["preprocessing"]["std"] == list(STD)
    assert metadata["validated_accuracy"] == 0.5


def test_accuracy_on_files_reads_each_photo_like_predict(pipe, tmp_path):
    generator = torch.Generator().manual_seed(3)
    samples = []
    for index in range(6):
        pixels = torch.randint(0, 256, (40 + 7 * index, 50, 3), dtype=torch.uint8, generator=generator)
        path = tmp_path / f"{index}.png"
        Image.fromarray(pixels.numpy()).save(path)
        samples.append((str(path), index % len(CLASS_NAMES)))
    with torch.no_grad():
        right = sum(pipe(predict.load_image(path)).argmax().item() == label for path, label in samples)
    assert pipeline.accuracy_on_files(pipe, samples) == right / len(samples)
    with pytest.raises(ValueError, match="no samples"):
        pipeline.accuracy_on_files(pipe, [])


# --- .pt2 -------------------------------------------------------------------------------------------------

def test_artifact_is_one_file_with_its_metadata(tiny_artifacts):
    artifact = tiny_artifacts["pt2"]
    assert sorted(p.name for p in artifact.parent.iterdir()) == ["tiny.onnx", "tiny.pt2"]  # no temporary files
    with zipfile.ZipFile(artifact) as archive:
        stored = [name for name in archive.namelist() if name.endswith("/" + pipeline.METADATA_FILE)]
        metadata = json.loads(archive.read(stored[0]))
    assert metadata == json.loads(json.dumps(tiny_artifacts["metadata"]))


def test_artifacts_have_the_ordinary_permissions_of_a_checkpoint(tiny_artifacts, tmp_path):
    umask = os.umask(0o022)
    try:
        pt2 = pipeline.save_artifact(tiny_artifacts["program"], {}, tmp_path / "tiny.pt2")
        checkpoint = checkpoints.atomic_save({"a": 1}, tmp_path / "ckpt.pt")
    finally:
        os.umask(umask)
    assert pt2.stat().st_mode & 0o777 == checkpoint.stat().st_mode & 0o777 == 0o644  # not mkstemp's 0600


def test_artifacts_want_their_suffix(pipe, tmp_path):
    with pytest.raises(ValueError, match=".pt2"):
        pipeline.save_artifact(None, {}, tmp_path / "model.pt")
    with pytest.raises(ValueError, match=".onnx"):
        pipeline.export_onnx(pipe, {}, tmp_path / "model.pt2")


def test_exported_program_is_dynamic_in_batch_height_and_width(tiny_artifacts, pipe):
    program = torch.export.load(tiny_artifacts["pt2"]).module()
    for shape in [(1, 3, 45, 61), (5, 3, 128, 96), (2, 3, 7, 300)]:
        images = random_images(shape)
        with torch.no_grad():
            torch.testing.assert_close(program(images), pipe(images), atol=1e-5, rtol=0)
    with pytest.raises(RuntimeError, match="dtype"):  # export fixed the input dtype to the example's
        program(random_images((1, 3, 40, 40), torch.float32))


@pytest.mark.parametrize("example", [torch.zeros(1, 3, 40, 40, dtype=torch.uint8), torch.zeros(2, 3, 40, 40),
                                     torch.zeros(3, 40, 40, dtype=torch.uint8)])
def test_export_explains_an_unusable_example(pipe, example):
    with pytest.raises(ValueError, match="uint8 batch"):
        pipeline.export_pipeline(pipe, example)


# --- ONNX -------------------------------------------------------------------------------------------------

def test_onnx_model_is_dynamic_in_batch_height_and_width(tiny_artifacts):
    model = onnx.load(tiny_artifacts["onnx"])
    onnx.checker.check_model(model)
    (images_input,) = model.graph.input
    dims = images_input.type.tensor_type.shape.dim
    assert [d.dim_param or d.dim_value for d in dims] == ["batch", 3, "height", "width"]
    assert images_input.type.tensor_type.elem_type == onnx.TensorProto.UINT8
    stored = {entry.key: entry.value for entry in model.metadata_props}
    assert json.loads(stored[predict.ONNX_METADATA_KEY]) == json.loads(json.dumps(tiny_artifacts["metadata"]))


def test_onnx_runtime_matches_eager_at_any_size(tiny_artifacts, pipe):
    artifact = predict.load_artifact(tiny_artifacts["onnx"])
    for shape in [(1, 3, 45, 61), (5, 3, 128, 96), (2, 3, 7, 300), (1, 3, 500, 333)]:
        images = random_images(shape, seed=sum(shape))
        with torch.no_grad():
            assert (artifact.run(images) - pipe(images)).abs().max().item() <= 1e-5, shape


# --- fresh processes --------------------------------------------------------------------------------------

@pytest.mark.parametrize("kind, tolerance", [("pt2", 1e-5), ("onnx", 1e-4)])
def test_fresh_process_round_trip_matches_eager(tiny_artifacts, pipe, tmp_path, kind, tolerance):
    inputs = [random_images((1, 3, 45, 61), seed=1), random_images((3, 3, 128, 96), seed=2)]
    result = pipeline.run_in_fresh_process(tiny_artifacts[kind], inputs, tmp_path)
    assert result["metadata"]["class_names"] == CLASS_NAMES
    unsafe = (PROJECT_ROOT, tmp_path.resolve(), pipeline.FRESH_PROCESS.parent)  # not even the script's own folder
    assert not any(Path(p).resolve() in unsafe for p in result["sys_path"] if p)
    roots = {name.partition(".")[0] for name in result["modules"]}
    assert not roots & {"course_utils", "torchvision", "efficientnet_lite_pytorch"}
    assert ("torch" in roots) == (kind == "pt2")  # the ONNX process never loads torch
    for images, fresh in zip(inputs, result["probs"], strict=True):
        with torch.no_grad():
            eager = pipe(images)
        assert fresh.shape == eager.shape
        assert (fresh - eager).abs().max().item() <= tolerance


def _import_in_a_blocked_process(blocked: tuple[str, ...], module: str, tmp_path) -> subprocess.CompletedProcess:
    """`import module` in an isolated Python after the parity process's own blocker (from its file) is installed."""
    # The project root is put on sys.path here, so without the blocker each import would work.
    script = (f"import runpy, sys\nrunpy.run_path({str(pipeline.FRESH_PROCESS)!r})['block']({list(blocked)!r})\n"
              f"sys.path += [{str(PROJECT_ROOT)!r}, {str(Path(torch.__file__).resolve().parent.parent)!r}]\n"
              f"import {module}\n")
    return subprocess.run([sys.executable, "-I", "-S", "-c", script], cwd=tmp_path, capture_output=True, text=True,
                          timeout=60)


@pytest.mark.parametrize("blocked", ["course_utils", "course_utils.deploy.predict", "torchvision",
                                     "efficientnet_lite_pytorch"])
def test_parity_process_refuses_to_import_what_an_artifact_must_not_need(blocked, tmp_path):
    done = _import_in_a_blocked_process(pipeline.BLOCKED_IMPORTS, blocked, tmp_path)
    assert done.returncode != 0 and "may not be imported in this process" in done.stderr
    allowed = _import_in_a_blocked_process(("something_else",), blocked.partition(".")[0], tmp_path)
    assert allowed.returncode == 0, allowed.stderr  # the same import works when it is not blocked


def test_onnx_parity_process_refuses_torch(tmp_path):
    done = _import_in_a_blocked_process((*pipeline.BLOCKED_IMPORTS, "torch"), "torch", tmp_path)
    assert done.returncode != 0 and "torch may not be imported" in done.stderr


def test_fresh_process_failure_is_reported(tiny_artifacts, tmp_path):
    with pytest.raises(RuntimeError, match="fresh process failed"):  # float input: the model wants uint8
        pipeline.run_in_fresh_process(tiny_artifacts["onnx"], [torch.zeros(1, 3, 40, 40)], tmp_path)
    with pytest.raises(ValueError, match=".pt2 or .onnx"):
        pipeline.run_in_fresh_process(tmp_path / "model.pt", [], tmp_path)


# The lite0 pipeline's .pt2 and ONNX files, run in fresh processes on real photos, match eager, and the .pt2
# passes predict's code check and answers like eager through predict: lesson 13's parity cell and its check
# (nbval, `make test`) assert both at max_pt2_diff / max_onnx_diff.
