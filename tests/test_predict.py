"""Tests for course_utils.deploy.predict: image loading, artifact checks and the command line, .pt2 and .onnx."""

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from conftest import TINY_CLASS_NAMES
from PIL import Image

from course_utils.datasets.sources import PROJECT_ROOT
from course_utils.deploy import predict

CLASS_NAMES = TINY_CLASS_NAMES
KINDS = ["pt2", "onnx"]


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


def truncated_jpeg(path: Path) -> Path:
    buffer = io.BytesIO()
    Image.fromarray(pixels(200, 200)).save(buffer, format="JPEG")
    path.write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    return path


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
    with pytest.raises(predict.PredictError, match="truncated or corrupt"):
        predict.load_image(truncated_jpeg(tmp_path / "cut.jpg"))
    with pytest.raises(predict.PredictError, match="no image"):
        predict.load_image(tmp_path / "missing.png")


# ---------------------------------------------------------------- artifacts

@pytest.mark.parametrize("kind", KINDS)
def test_artifact_loads_and_matches_eager(tiny_artifacts, kind):
    artifact = predict.load_artifact(tiny_artifacts[kind])
    assert artifact.class_names == CLASS_NAMES and artifact.metadata["format"] == predict.ARTIFACT_FORMAT
    image = torch.from_numpy(pixels(61, 45)).permute(2, 0, 1)
    with torch.no_grad():
        assert (predict.predict(artifact, image) - tiny_artifacts["pipe"](image)).abs().max().item() <= 1e-5


def onnx_with_metadata(source: Path, path: Path, value: str | None) -> Path:
    model = onnx.load(source)
    del model.metadata_props[:]
    if value is not None:
        entry = model.metadata_props.add()
        entry.key, entry.value = predict.ONNX_METADATA_KEY, value
    onnx.save(model, path)
    return path


@pytest.fixture(scope="module")
def broken_artifacts(tiny_artifacts, tmp_path_factory):
    """Each kind of bad artifact, with the words its error message must contain."""
    folder = tmp_path_factory.mktemp("broken")
    pt2, onnx_file, program = tiny_artifacts["pt2"], tiny_artifacts["onnx"], tiny_artifacts["program"]

    def write_pt2(name, extra_files=None):
        torch.export.save(program, folder / name, extra_files=extra_files)
        return folder / name

    (folder / "readme.pt2").write_text("hello")
    (folder / "cut.pt2").write_bytes(pt2.read_bytes()[: pt2.stat().st_size // 2])
    torch.save({"model_state": {}}, folder / "checkpoint.pt2")  # a zip archive, but not an exported program
    (folder / "readme.onnx").write_text("hello")
    (folder / "cut.onnx").write_bytes(onnx_file.read_bytes()[: onnx_file.stat().st_size // 2])
    torch.save({"model_state": {}}, folder / "model.pt")
    foreign = json.dumps({"format": "someone-else/1", "class_names": CLASS_NAMES})
    return [
        (folder / "missing.pt2", "no artifact"),
        (folder / "model.pt", "expected a .pt2 or .onnx file"),
        (folder / "readme.pt2", "not a .pt2 artifact"),
        (folder / "cut.pt2", "not a .pt2 artifact"),
        (folder / "checkpoint.pt2", "not a loadable exported program"),
        (write_pt2("bare.pt2"), "carries no metadata"),
        (write_pt2("garbled.pt2", {"metadata.json": "{class_names"}), "not valid JSON"),
        (write_pt2("foreign.pt2", {"metadata.json": foreign}), "not an artifact of this course"),
        (write_pt2("partial.pt2", {"metadata.json": json.dumps({"format": predict.ARTIFACT_FORMAT})}),
         "lacks class_names"),
        (folder / "readme.onnx", "not a loadable ONNX model"),
        (folder / "cut.onnx", "not a loadable ONNX model"),
        (onnx_with_metadata(onnx_file, folder / "bare.onnx", None), "carries no metadata"),
        (onnx_with_metadata(onnx_file, folder / "foreign.onnx", foreign), "not an artifact of this course"),
    ]


def test_cli_explains_each_bad_artifact_in_one_line(capsys, broken_artifacts, tmp_path):
    image = save(Image.fromarray(pixels()), tmp_path / "ok.png")
    for path, words in broken_artifacts:
        code, out, err = run_cli(capsys, path, image)
        assert code == predict.EXIT_UNUSABLE and out == "", path.name
        assert err.count("\n") == 1 and err.startswith("predict: error: ") and words in err, (path.name, err)


# ---------------------------------------------------------------- the command line

@pytest.mark.parametrize("kind", KINDS)
def test_cli_prints_the_eager_top_k(capsys, tiny_artifacts, tmp_path, kind):
    path = save(Image.fromarray(pixels(37, 53)), tmp_path / "photo.png")
    code, out, err = run_cli(capsys, tiny_artifacts[kind], path, "--top-k", 3)
    assert code == 0 and err == ""
    lines = out.strip().splitlines()
    assert lines[0] == "photo.png (53x37): top 3 of 5 classes"
    printed = [(line.split()[1], float(line.split()[0])) for line in lines[1:]]
    with torch.no_grad():
        eager = tiny_artifacts["pipe"](predict.load_image(path))
    values, indices = eager.topk(3)
    assert [name for name, _ in printed] == [CLASS_NAMES[i] for i in indices]
    assert [p for _, p in printed] == pytest.approx(values.tolist(), abs=1e-4)


@pytest.mark.parametrize("kind", KINDS)
def test_cli_json_answers_the_good_images_and_reports_the_bad_one(capsys, tiny_artifacts, tmp_path, kind):
    folder = tmp_path / "photos"
    folder.mkdir()
    good = [save(Image.fromarray(pixels(30 + i, 40, seed=i)).convert(mode), folder / f"{i}_{mode}.png")
            for i, mode in enumerate(["RGB", "L", "RGBA", "P"])]
    bad = truncated_jpeg(folder / "9_cut.jpg")
    extra = save(Image.fromarray(pixels(50, 20, seed=7)), tmp_path / "extra.png")
    code, out, err = run_cli(capsys, tiny_artifacts[kind], folder, extra, "--json", "--top-k", 2)
    assert code == predict.EXIT_SOME_FAILED and err == ""
    results = [json.loads(line) for line in out.splitlines()]
    assert [Path(r["file"]).name for r in results] == [p.name for p in good + [bad, extra]]
    assert "truncated or corrupt" in results[4]["error"] and "top_k" not in results[4]
    for result, path in zip(results[:4] + results[5:], good + [extra]):
        with torch.no_grad():
            eager = tiny_artifacts["pipe"](predict.load_image(path))
        assert [entry["class"] for entry in result["top_k"]] == [CLASS_NAMES[i] for i in eager.topk(2).indices]
        assert [entry["probability"] for entry in result["top_k"]] == pytest.approx(eager.topk(2).values.tolist(),
                                                                                     abs=1e-5)


def test_cli_reports_each_bad_image_and_answers_the_rest(capsys, tiny_artifacts, tmp_path):
    image = save(Image.fromarray(pixels()), tmp_path / "ok.png")
    text = tmp_path / "notes.txt"
    text.write_text("not a picture")
    cut = truncated_jpeg(tmp_path / "cut.jpg")
    code, out, err = run_cli(capsys, tiny_artifacts["pt2"], text, image, cut, tmp_path / "none.jpg")
    assert code == predict.EXIT_SOME_FAILED
    assert out.splitlines()[0] == "ok.png (40x30): top 5 of 5 classes" and len(out.splitlines()) == 6
    errors = err.splitlines()
    assert len(errors) == 3 and all(line.startswith("predict: error: ") for line in errors)
    for line, words in zip(errors, ["not an image", "truncated or corrupt", "no image"]):
        assert words in line


@pytest.mark.parametrize("args, words", [
    (("--top-k", 0), "at least 1"),
    (("--top-k", 6), "between 1 and 5"),
    (("--device", "toaster"), "unknown device"),
    (("--device", "mps"), "not supported"),
])
def test_cli_explains_bad_arguments(capsys, tiny_artifacts, tmp_path, args, words):
    image = save(Image.fromarray(pixels()), tmp_path / "ok.png")
    code, out, err = run_cli(capsys, tiny_artifacts["pt2"], image, *args)
    assert code == predict.EXIT_UNUSABLE and out == "" and err.count("\n") == 1 and words in err, err


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_cli_explains_a_missing_gpu(capsys, tiny_artifacts, tmp_path):
    image = save(Image.fromarray(pixels()), tmp_path / "ok.png")
    for kind in KINDS:
        code, _, err = run_cli(capsys, tiny_artifacts[kind], image, "--device", "cuda")
        assert code == predict.EXIT_UNUSABLE and "no CUDA GPU" in err


def test_cli_explains_an_empty_folder(capsys, tiny_artifacts, tmp_path):
    (tmp_path / "empty").mkdir()
    code, out, err = run_cli(capsys, tiny_artifacts["onnx"], tmp_path / "empty")
    assert code == predict.EXIT_UNUSABLE and out == "" and "holds no files" in err


def test_cli_on_a_real_photo(capsys, tiny_artifacts, mirror):
    photo = mirror / "images" / "samoyed.jpg"
    code, out, _ = run_cli(capsys, tiny_artifacts["onnx"], photo, "--top-k", 1)
    with torch.no_grad():
        expected = CLASS_NAMES[tiny_artifacts["pipe"](predict.load_image(photo)).argmax()]
    assert code == 0 and out.splitlines()[0] == "samoyed.jpg (1546x1213): top 1 of 5 classes"
    assert out.splitlines()[1].split()[1] == expected


def test_cli_as_a_module_has_no_traceback(tiny_artifacts, tmp_path):
    """The real entry point under its old name, in a new process (torch's logging included)."""
    image = save(Image.fromarray(pixels()).convert("P"), tmp_path / "palette.png")
    checkpoint = tmp_path / "checkpoint.pt2"
    torch.save({"model_state": {}}, checkpoint)  # makes torch.export.load log a traceback, unless silenced
    env = os.environ | {"PYTHONWARNINGS": "default"}
    command = [sys.executable, "-m", "course_utils.deploy.predict"]
    runs = [subprocess.run([*command, str(model), str(image), "--top-k", "2"],
                           cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=300)
            for model in (tiny_artifacts["onnx"], checkpoint)]
    assert runs[0].returncode == 0 and runs[0].stderr == "" and len(runs[0].stdout.splitlines()) == 3
    assert runs[1].returncode == predict.EXIT_UNUSABLE and runs[1].stdout == ""
    assert len(runs[1].stderr.splitlines()) == 1 and "not a loadable exported program" in runs[1].stderr


def test_top_k_checks_its_inputs():
    probs = torch.tensor([0.1, 0.6, 0.3])
    assert predict.top_k(probs, ["a", "b", "c"], 2) == [("b", pytest.approx(0.6)), ("c", pytest.approx(0.3))]
    with pytest.raises(predict.PredictError, match="class names"):
        predict.top_k(probs, ["a", "b"], 1)
