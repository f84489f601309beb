import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import torch
from torch import nn
from torchvision.transforms import v2

from course_utils import checkpoints, pipeline
from course_utils.datasets.sources import PROJECT_ROOT

CLASS_NAMES = ["cat", "dog", "fox", "owl", "yak"]
INPUT_SIZE, RESIZE_SIZE = 32, 36
MEAN, STD = (0.5, 0.4, 0.3), (0.2, 0.25, 0.3)


def tiny_pipeline() -> pipeline.InferencePipeline:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                          nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, len(CLASS_NAMES)))
    return pipeline.InferencePipeline(model, CLASS_NAMES, INPUT_SIZE, MEAN, STD, RESIZE_SIZE).eval()


@pytest.fixture(scope="module")
def pipe():
    return tiny_pipeline()


@pytest.fixture(scope="module")
def artifact(pipe, tmp_path_factory):
    path = tmp_path_factory.mktemp("artifact") / "tiny.pt2"
    return pipeline.save_artifact(pipeline.export_pipeline(pipe), pipe.metadata(), path)


def random_images(shape, dtype=torch.uint8, seed=0):
    generator = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, shape, dtype=torch.uint8, generator=generator)
    return images if dtype == torch.uint8 else images.to(dtype) / 255


@pytest.mark.parametrize("dtype", [torch.uint8, torch.float32, torch.float64])
@pytest.mark.parametrize("shape", [(3, 40, 50), (2, 3, 40, 50), (1, 3, 17, 90), (4, 3, 300, 31), (1, 3, 1, 1)])
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


@pytest.mark.parametrize("shape", [(2, 3, 50, 70), (1, 3, 80, 40), (1, 3, 36, 36), (1, 3, 20, 26)])
def test_preprocess_matches_torchvision_resize_crop_normalize(pipe, shape):
    # Sizes chosen so the crop margin is even: torchvision rounds half a pixel to even, we floor.
    images = random_images(shape, torch.float32)
    reference = v2.Compose([v2.Resize(RESIZE_SIZE, antialias=True), v2.CenterCrop(INPUT_SIZE),
                            v2.Normalize(MEAN, STD)])
    torch.testing.assert_close(pipe.preprocess(images), reference(images), atol=1e-5, rtol=0)


@pytest.mark.parametrize("images, error", [
    (torch.zeros(2, 1, 40, 40, dtype=torch.uint8), ValueError),  # one channel: convert to RGB first
    (torch.zeros(40, 40, dtype=torch.uint8), ValueError),
    (torch.zeros(1, 3, 40, 40, dtype=torch.int64), TypeError),
])
def test_bad_inputs_are_explained(pipe, images, error):
    with pytest.raises(error, match="expected an RGB image|uint8"):
        pipe(images)


@pytest.mark.parametrize("kwargs", [dict(input_size=40, resize_size=36), dict(mean=(0.5,)), dict(std=(0.5, 0.0, 0.5)),
                                    dict(class_names=[])])
def test_constructor_rejects_inconsistent_settings(kwargs):
    settings = dict(class_names=CLASS_NAMES, input_size=INPUT_SIZE, mean=MEAN, std=STD, resize_size=RESIZE_SIZE)
    with pytest.raises(ValueError):
        pipeline.InferencePipeline(nn.Identity(), **(settings | kwargs))


def test_default_resize_follows_the_imagenet_crop_fraction():
    assert pipeline.InferencePipeline(nn.Identity(), CLASS_NAMES, 224, MEAN, STD).resize_size == 256


def test_artifact_is_one_file_with_its_metadata(artifact, pipe):
    assert [p.name for p in artifact.parent.iterdir()] == ["tiny.pt2"]  # no temporary file left behind
    with zipfile.ZipFile(artifact) as archive:
        stored = [name for name in archive.namelist() if name.endswith("/" + pipeline.METADATA_FILE)]
        metadata = json.loads(archive.read(stored[0]))
    assert metadata == json.loads(json.dumps(pipe.metadata()))
    assert metadata["class_names"] == CLASS_NAMES and metadata["input_size"] == INPUT_SIZE
    assert metadata["mean"] == list(MEAN) and metadata["std"] == list(STD)


def test_artifact_has_the_ordinary_permissions_of_a_checkpoint(pipe, tmp_path):
    umask = os.umask(0o022)
    try:
        path = pipeline.save_artifact(pipeline.export_pipeline(pipe), pipe.metadata(), tmp_path / "tiny.pt2")
        checkpoint = checkpoints.atomic_save({"a": 1}, tmp_path / "ckpt.pt")
    finally:
        os.umask(umask)
    assert path.stat().st_mode & 0o777 == checkpoint.stat().st_mode & 0o777 == 0o644  # not mkstemp's 0600


def test_metadata_file_name_is_the_one_predict_reads():
    from course_utils import predict
    assert pipeline.METADATA_FILE == predict.METADATA_FILE
    assert f"METADATA_FILE = {predict.METADATA_FILE!r}" in pipeline.FRESH_PROCESS_SCRIPT


def test_save_artifact_wants_a_pt2_name(tmp_path):
    with pytest.raises(ValueError, match=".pt2"):
        pipeline.save_artifact(None, {}, tmp_path / "model.pt")


def test_exported_program_is_dynamic_in_batch_height_and_width(artifact, pipe):
    program = torch.export.load(artifact).module()
    for shape in [(1, 3, 45, 61), (5, 3, 128, 96), (2, 3, 7, 300)]:
        images = random_images(shape)
        with torch.no_grad():
            torch.testing.assert_close(program(images), pipe(images), atol=1e-5, rtol=0)
    with pytest.raises(RuntimeError, match="dtype"):  # export fixed the input dtype to the example's
        program(random_images((1, 3, 40, 40), torch.float32))


def test_fresh_process_round_trip_matches_eager(artifact, pipe, tmp_path):
    inputs = [random_images((1, 3, 45, 61), seed=1), random_images((3, 3, 128, 96), seed=2)]
    result = pipeline.run_in_fresh_process(artifact, inputs, tmp_path)
    assert result["class_names"] == CLASS_NAMES
    assert not any(Path(p).resolve() in (PROJECT_ROOT, tmp_path.resolve()) for p in result["sys_path"] if p)
    for images, fresh in zip(inputs, result["probs"]):
        with torch.no_grad():
            eager = pipe(images)
        assert fresh.shape == eager.shape
        assert (fresh - eager).abs().max().item() <= 1e-5


def test_fresh_process_cannot_import_course_utils(tmp_path):
    torch_site = str(Path(torch.__file__).resolve().parent.parent)
    done = subprocess.run([sys.executable, "-I", "-S", "-c", f"import sys; sys.path.append({torch_site!r}); "
                           "import course_utils"], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert done.returncode != 0 and "No module named 'course_utils'" in done.stderr


@pytest.mark.parametrize("example", [torch.zeros(1, 3, 40, 40, dtype=torch.uint8), torch.zeros(2, 3, 40, 40),
                                     torch.zeros(3, 40, 40, dtype=torch.uint8)])
def test_export_explains_an_unusable_example(pipe, example):
    with pytest.raises(ValueError, match="uint8 batch"):
        pipeline.export_pipeline(pipe, example)
