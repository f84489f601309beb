import io
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from course_utils import pipeline, predict
from course_utils.datasets.sources import PROJECT_ROOT

CLASS_NAMES = ["cat", "dog", "fox", "owl", "yak"]


def tiny_pipeline() -> pipeline.InferencePipeline:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                          nn.Linear(8, len(CLASS_NAMES)))
    return pipeline.InferencePipeline(model, CLASS_NAMES, 32, (0.5,) * 3, (0.5,) * 3).eval()


@pytest.fixture(scope="module")
def pipe():
    return tiny_pipeline()


@pytest.fixture(scope="module")
def exported(pipe):
    return pipeline.export_pipeline(pipe)


@pytest.fixture(scope="module")
def artifact(pipe, exported, tmp_path_factory):
    return pipeline.save_artifact(exported, pipe.metadata(), tmp_path_factory.mktemp("artifact") / "tiny.pt2")


def pixels(height=30, width=40, channels=3, seed=0) -> np.ndarray:
    """Generated pixel values (not a dataset): enough to test file formats."""
    return np.random.default_rng(seed).integers(0, 256, (height, width, channels), dtype=np.uint8)


def save(image: Image.Image, path: Path, **kwargs) -> Path:
    image.save(path, **kwargs)
    return path


def run_cli(capsys, *args):
    code = predict.main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


# ---------------------------------------------------------------- image loading

def test_rgb_file_loads_as_uint8_chw(tmp_path):
    array = pixels()
    image = predict.load_image(save(Image.fromarray(array), tmp_path / "rgb.png"))
    assert image.dtype == torch.uint8 and image.shape == (3, 30, 40)
    assert torch.equal(image, torch.from_numpy(array).permute(2, 0, 1))


def test_grayscale_is_repeated_over_three_channels(tmp_path):
    gray = pixels(channels=1)[..., 0]
    image = predict.load_image(save(Image.fromarray(gray, mode="L"), tmp_path / "gray.png"))
    assert image.shape == (3, 30, 40)
    for channel in image:
        assert torch.equal(channel, torch.from_numpy(gray))


def test_sixteen_bit_grayscale_is_scaled_not_clipped(tmp_path):
    values = np.array([[0, 257 * 100, 65535]], dtype=np.uint16)
    path = save(Image.fromarray(values), tmp_path / "gray16.png")
    with Image.open(path) as stored:
        assert stored.mode.startswith("I")
    assert predict.load_image(path)[0, 0].tolist() == [0, 100, 255]


def test_rgba_is_composited_on_white(tmp_path):
    array = pixels(channels=4)
    array[0, 0, 3], array[0, 1, 3] = 0, 255  # one transparent, one opaque pixel
    image = predict.load_image(save(Image.fromarray(array, mode="RGBA"), tmp_path / "rgba.png"))
    assert image.shape == (3, 30, 40)
    assert image[:, 0, 0].tolist() == [255, 255, 255]
    assert image[:, 0, 1].tolist() == array[0, 1, :3].tolist()


@pytest.mark.parametrize("transparent", [False, True])
def test_palette_image_is_looked_up(tmp_path, transparent):
    rgb = Image.fromarray(pixels())
    palette = rgb.quantize(colors=16)
    index = palette.getpixel((0, 0))
    kwargs = {"transparency": index} if transparent else {}
    path = save(palette, tmp_path / "palette.png", **kwargs)
    with Image.open(path) as stored:
        assert stored.mode == "P"
    image = predict.load_image(path)
    expected = [255, 255, 255] if transparent else list(palette.convert("RGB").getpixel((0, 0)))
    assert image.shape == (3, 30, 40) and image[:, 0, 0].tolist() == expected


def test_cmyk_jpeg_and_exif_rotation(tmp_path):
    rgb = Image.fromarray(pixels(height=20, width=50))
    assert predict.load_image(save(rgb.convert("CMYK"), tmp_path / "cmyk.jpg")).shape == (3, 20, 50)
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: the camera was turned, show rotated by 90 degrees
    assert predict.load_image(save(rgb, tmp_path / "turned.jpg", exif=exif)).shape == (3, 50, 20)


def test_not_an_image_truncated_and_missing(tmp_path):
    text = tmp_path / "notes.jpg"
    text.write_text("not a picture")
    with pytest.raises(predict.PredictError, match="not an image"):
        predict.load_image(text)
    buffer = io.BytesIO()
    Image.fromarray(pixels(200, 200)).save(buffer, format="JPEG")
    truncated = tmp_path / "cut.jpg"
    truncated.write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    with pytest.raises(predict.PredictError, match="truncated or corrupt"):
        predict.load_image(truncated)
    with pytest.raises(predict.PredictError, match="no image"):
        predict.load_image(tmp_path / "missing.png")


# ---------------------------------------------------------------- the command line

def test_cli_prints_the_eager_top_k(capsys, artifact, pipe, tmp_path):
    path = save(Image.fromarray(pixels(37, 53)), tmp_path / "photo.png")
    code, out, err = run_cli(capsys, artifact, path, "--top-k", 3)
    assert code == 0 and err == ""
    lines = out.strip().splitlines()
    assert lines[0] == "photo.png (53x37): top 3 of 5 classes"
    printed = [(line.split()[1], float(line.split()[0])) for line in lines[1:]]
    with torch.no_grad():
        eager = pipe(predict.load_image(path))
    values, indices = eager.topk(3)
    assert [name for name, _ in printed] == [CLASS_NAMES[i] for i in indices]
    assert [p for _, p in printed] == pytest.approx(values.tolist(), abs=1e-4)


@pytest.mark.parametrize("mode", ["L", "RGBA", "P"])
def test_cli_accepts_converted_formats(capsys, artifact, tmp_path, mode):
    image = Image.fromarray(pixels()).convert(mode)
    code, out, _ = run_cli(capsys, artifact, save(image, tmp_path / f"{mode}.png"), "--top-k", 5)
    assert code == 0 and len(out.strip().splitlines()) == 6


def test_cli_on_a_real_photo(capsys, artifact, pipe, mirror):
    photo = mirror / "images" / "samoyed.jpg"
    code, out, _ = run_cli(capsys, artifact, photo, "--top-k", 1)
    with torch.no_grad():
        expected = CLASS_NAMES[pipe(predict.load_image(photo)).argmax()]
    assert code == 0 and out.splitlines()[0] == "samoyed.jpg (1546x1213): top 1 of 5 classes"
    assert out.splitlines()[1].split()[1] == expected


def write_pt2(exported, path, extra_files=None):
    torch.export.save(exported, path, extra_files=extra_files)
    return path


@pytest.fixture(scope="module")
def broken_artifacts(artifact, exported, tmp_path_factory):
    """Each kind of bad artifact, with the words its error message must contain."""
    folder = tmp_path_factory.mktemp("broken")
    text = folder / "readme.pt2"
    text.write_text("hello")
    cut = folder / "cut.pt2"
    cut.write_bytes(artifact.read_bytes()[: artifact.stat().st_size // 2])
    checkpoint = folder / "checkpoint.pt2"
    torch.save({"model_state": {}}, checkpoint)  # a zip archive, but not an exported program
    bad_meta = {"class_names": "cat"}
    return [
        (folder / "missing.pt2", "no artifact"),
        (text, "not a .pt2 artifact"),
        (cut, "not a .pt2 artifact"),
        (checkpoint, "not a loadable exported program"),
        (write_pt2(exported, folder / "bare.pt2"), "has no metadata.json"),
        (write_pt2(exported, folder / "garbled.pt2", {"metadata.json": "{class_names"}), "not valid JSON"),
        (write_pt2(exported, folder / "partial.pt2", {"metadata.json": json.dumps(bad_meta)}), "lacks class_names"),
    ]


def test_cli_explains_each_bad_artifact_in_one_line(capsys, broken_artifacts, tmp_path):
    image = save(Image.fromarray(pixels()), tmp_path / "ok.png")
    for path, words in broken_artifacts:
        code, out, err = run_cli(capsys, path, image)
        assert code == 1 and out == "", path.name
        assert err.count("\n") == 1 and err.startswith("predict: error: ") and words in err, (path.name, err)


def test_cli_explains_bad_images_and_top_k(capsys, artifact, tmp_path):
    image = save(Image.fromarray(pixels()), tmp_path / "ok.png")
    text = tmp_path / "notes.txt"
    text.write_text("not a picture")
    buffer = io.BytesIO()
    Image.fromarray(pixels(200, 200)).save(buffer, format="PNG")
    cut = tmp_path / "cut.png"
    cut.write_bytes(buffer.getvalue()[:-300])
    cases = [
        ((artifact, text), "not an image"),
        ((artifact, cut), "truncated or corrupt"),
        ((artifact, tmp_path / "none.jpg"), "no image"),
        ((artifact, image, "--top-k", 0), "at least 1"),
        ((artifact, image, "--top-k", 6), "between 1 and 5"),
    ]
    for args, words in cases:
        code, out, err = run_cli(capsys, *args)
        assert code == 1 and out == "" and err.count("\n") == 1 and words in err, (args, err)


def test_cli_as_a_module_has_no_traceback(artifact, tmp_path):
    """The real entry point, in a new process (torch's own logging included): one success, one failure."""
    image = save(Image.fromarray(pixels()).convert("P"), tmp_path / "palette.png")
    checkpoint = tmp_path / "checkpoint.pt2"
    torch.save({"model_state": {}}, checkpoint)  # makes torch.export.load log a traceback, unless silenced
    env = os.environ | {"PYTHONWARNINGS": "default"}
    runs = [subprocess.run([sys.executable, "-m", "course_utils.deploy.predict", str(model), str(image), "--top-k", "2"],
                           cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=300)
            for model in (artifact, checkpoint)]
    assert runs[0].returncode == 0 and runs[0].stderr == "" and len(runs[0].stdout.splitlines()) == 3
    assert runs[1].returncode == 1 and runs[1].stdout == ""
    assert len(runs[1].stderr.splitlines()) == 1 and "not a loadable exported program" in runs[1].stderr


def test_top_k_checks_its_inputs():
    probs = torch.tensor([0.1, 0.6, 0.3])
    assert predict.top_k(probs, ["a", "b", "c"], 2) == [("b", pytest.approx(0.6)), ("c", pytest.approx(0.3))]
    with pytest.raises(predict.PredictError, match="class names"):
        predict.top_k(probs, ["a", "b"], 1)


def test_artifact_loads_in_process(artifact, pipe):
    program, metadata = predict.load_artifact(artifact)
    assert metadata["class_names"] == CLASS_NAMES and metadata["format"] == pipeline.ARTIFACT_FORMAT
    image = torch.from_numpy(pixels(61, 45)).permute(2, 0, 1)
    with torch.no_grad():
        assert (predict.predict(program, image) - pipe(image)).abs().max().item() <= 1e-5
    with zipfile.ZipFile(artifact) as archive:  # the artifact is a plain zip: inspectable anywhere
        assert any(name.endswith("metadata.json") for name in archive.namelist())
