"""Tests for course_utils.deploy.predict: image loading, artifact checks and the command line, .pt2 and .onnx."""

import io
import json
import os
import pickle
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from conftest import TINY_CLASS_NAMES
from PIL import Image, ImageFile
from torch import nn

from course_utils.datasets.sources import PROJECT_ROOT
from course_utils.deploy import pipeline, predict

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
    min_side = predict.KEEP_SIDE_FACTOR * tiny_artifacts["metadata"]["resize_size"]  # 144: decoded at 1/8
    reduced, size = predict.read_image(photo, min_side)
    assert size == (1546, 1213) and tuple(reduced.shape) == (3, 152, 194)
    with torch.no_grad():
        probs, full = tiny_artifacts["pipe"](reduced), tiny_artifacts["pipe"](predict.load_image(photo))
    assert code == 0 and out.splitlines()[0] == "samoyed.jpg (1546x1213): top 1 of 5 classes"
    assert out.splitlines()[1].split()[1] == CLASS_NAMES[probs.argmax()]
    assert (probs - full).abs().max() < 2e-3  # decoding reduced costs the model next to nothing


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


# ---------------------------------------------------------------- a .pt2 must not run code

class Payload:
    """Unpickling this creates the marker file: proof that a pickle inside the archive was executed."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return open, (self.marker, "w")


def pickled(obj) -> bytes:
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getvalue()


def rewrite_pt2(source: Path, path: Path, change=lambda name, data: data, add: dict | None = None) -> Path:
    """A copy of the .pt2 `source`, each member passed through `change(name below the root, bytes)`, plus `add`."""
    with zipfile.ZipFile(source) as original, zipfile.ZipFile(path, "w") as crafted:
        root = original.namelist()[0].split("/", 1)[0] + "/"
        for name in original.namelist():
            crafted.writestr(name, change(name[len(root):], original.read(name)))
        for name, data in (add or {}).items():
            crafted.writestr(root + name, data)
    return path


def crafted_pt2(source: Path, path: Path, way: str, marker: Path) -> Path:
    """`source` changed so that torch.export.load runs code that creates `marker`, in one of three ways."""
    weights_config = "data/weights/model_weights_config.json"
    with zipfile.ZipFile(source) as archive:
        root = archive.namelist()[0].split("/", 1)[0]
        first_weight = next(iter(json.loads(archive.read(f"{root}/{weights_config}"))["config"].values()))

    def change(name, data):
        if way == "sample inputs" and name == "data/sample_inputs/model.pt":  # torch retries with weights_only=False
            return pickled(Payload(marker))
        if way == "use_pickle weight" and name == weights_config:  # torch.load(weights_only=False) on the weight
            config = json.loads(data)
            next(iter(config["config"].values()))["use_pickle"] = True
            return json.dumps(config)
        if way == "use_pickle weight" and name == "data/weights/" + first_weight["path_name"]:
            return pickled(Payload(marker))
        if way == "shape expression" and name == "models/model.json":  # sympy.sympify: eval of the string
            text = data.decode()
            start = text.index('"expr_str": "') + len('"expr_str": "')
            return text[:start] + f"(open({str(marker)!r}, 'w') and 1) * " + text[start:]
        return data

    return rewrite_pt2(source, path, change)


@pytest.fixture
def marker(tmp_path):
    """A file that a crafted archive would create: it must never appear."""
    path = tmp_path / "marker"
    yield path
    assert not path.exists(), "the archive ran code"


@pytest.mark.parametrize("way, words", [
    ("sample inputs", "its sample inputs (data/sample_inputs/model.pt) are a pickle"),
    ("use_pickle weight", "is stored as a pickle (use_pickle"),
    ("shape expression", "shape expression that is not plain arithmetic"),
])
def test_a_pt2_that_would_run_code_is_refused_before_loading(capsys, tiny_artifacts, tmp_path, marker, way, words):
    crafted = crafted_pt2(tiny_artifacts["pt2"], tmp_path / "crafted.pt2", way, marker)
    image = save(Image.fromarray(pixels()), tmp_path / "photo.jpg")
    code, out, err = run_cli(capsys, crafted, image)
    assert code == predict.EXIT_UNUSABLE and out == ""
    assert err.count("\n") == 1 and err.startswith(f"predict: error: {crafted} was refused: ") and words in err, err
    assert not marker.exists()
    with pytest.raises(predict.PredictError, match="refused"):
        predict.load_artifact(crafted)


def test_the_crafted_archives_do_run_code_in_torch_export_load(tiny_artifacts, tmp_path, marker):
    """What the refusals above prevent (in a fresh process): plain torch.export.load runs the payload."""
    paths = [crafted_pt2(tiny_artifacts["pt2"], tmp_path / f"{i}.pt2", way, tmp_path / f"marker{i}")
             for i, way in enumerate(["sample inputs", "use_pickle weight", "shape expression"])]
    script = "import sys, torch\nfor path in sys.argv[1:]:\n    try:\n        torch.export.load(path)\n" \
             "    except Exception:\n        pass\n"
    subprocess.run([sys.executable, "-c", script, *map(str, paths)], capture_output=True, timeout=300, check=True)
    assert [(tmp_path / f"marker{i}").exists() for i in range(3)] == [True, True, True]


@pytest.mark.parametrize("add, words", [
    ({"data/aotinductor/model/model.so": b"\x7fELF"}, "compiled native code (data/aotinductor/model/model.so)"),
    ({"data/constants/opaque_obj_0": pickle.dumps(1)}, "a pickled object (data/constants/opaque_obj_0)"),
    ({"data/weights/model.pt": b""}, "a pickle (data/weights/model.pt)"),
    ({"models/second.json": b"{}"}, "models/second.json, which torch.export.save does not write for one program"),
])
def test_a_pt2_with_code_or_unknown_members_is_refused(capsys, tiny_artifacts, tmp_path, add, words):
    crafted = rewrite_pt2(tiny_artifacts["pt2"], tmp_path / "crafted.pt2", add=add)
    with pytest.raises(predict.PredictError, match="was refused") as err:
        predict.load_artifact(crafted)
    assert words in str(err.value) and "\n" not in str(err.value)


def test_a_pt2_with_a_member_twice_is_refused(tiny_artifacts, tmp_path, marker):
    """Two sample inputs, the second a pickle that runs code: which one would torch read? Neither is read."""
    with pytest.warns(UserWarning, match="Duplicate name"):
        crafted = rewrite_pt2(tiny_artifacts["pt2"], tmp_path / "twice.pt2",
                              add={"data/sample_inputs/model.pt": pickled(Payload(marker))})
    with pytest.raises(predict.PredictError, match="was refused: it holds two members named .*sample_inputs"):
        predict.load_artifact(crafted)


def test_guards_code_in_a_pt2_is_never_executed(tiny_artifacts, tmp_path, marker):
    """.module() exec's the program's guards_code strings; predict builds the module without them."""
    def change(name, data):
        if name != "models/model.json":
            return data
        program = json.loads(data)
        program["guards_code"].append(f"open({str(marker)!r}, 'w') is not None")
        return json.dumps(program)

    artifact = predict.load_artifact(rewrite_pt2(tiny_artifacts["pt2"], tmp_path / "guarded.pt2", change))
    image = torch.from_numpy(pixels(61, 45)).permute(2, 0, 1)
    with torch.no_grad():
        assert (predict.predict(artifact, image) - tiny_artifacts["pipe"](image)).abs().max().item() <= 1e-5


@pytest.mark.parametrize("text, plain", [
    ("Mul(Integer(36), Symbol('s54', positive=True, integer=True))", True),
    ("Add(FloorDiv(s14, Min(s14, s54)), Integer(-32))", True),
    ("Float('0.5', precision=53) * s0 + 2**s1 >= 3", True),
    ("__import__('os').system('true')", False),
    ("open('marker', 'w')", False),
    ("Symbol('s0').__class__", False),
    ("Symbol('s0; import os')", False),
    ("S('1 + 1')", False),
    ("Integer(1, **{'a': 1})", False),
    ("lambda: 1", False),
    ("s0\rprint(1)", False),
])
def test_which_shape_expressions_are_plain(text, plain):
    assert predict.is_plain_sympy_expression(text) is plain


# ---------------------------------------------------------------- --top-k, for a model with fewer than 5 classes

@pytest.fixture(scope="module")
def two_class_artifacts(tmp_path_factory):
    """A small 2-class pipeline (cat, dog) exported as .pt2 and .onnx."""
    torch.manual_seed(1)
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2))
    pipe = pipeline.InferencePipeline(model, ["cat", "dog"], 32, (0.5, 0.5, 0.5), (0.25, 0.25, 0.25), 36).eval()
    folder = tmp_path_factory.mktemp("two_classes")
    return {"pt2": pipeline.save_artifact(pipeline.export_pipeline(pipe), pipe.metadata(), folder / "cat_dog.pt2"),
            "onnx": pipeline.export_onnx(pipe, pipe.metadata(), folder / "cat_dog.onnx")}


@pytest.mark.parametrize("kind", KINDS)
def test_default_top_k_is_every_class_of_a_small_model(capsys, two_class_artifacts, tmp_path, kind):
    photos = [save(Image.fromarray(pixels(seed=i)), tmp_path / f"{i}.jpg") for i in range(2)]
    code, out, err = run_cli(capsys, two_class_artifacts[kind], *photos, "--json")
    assert code == predict.EXIT_OK and err == "", err
    results = [json.loads(line) for line in out.splitlines()]
    assert [sorted(entry["class"] for entry in result["top_k"]) for result in results] == [["cat", "dog"]] * 2
    code, out, _ = run_cli(capsys, two_class_artifacts[kind], photos[0])
    assert code == predict.EXIT_OK and out.splitlines()[0] == "0.jpg (40x30): top 2 of 2 classes"


def test_top_k_above_the_class_count_is_one_line_with_the_fix(capsys, two_class_artifacts, tmp_path):
    photo = save(Image.fromarray(pixels()), tmp_path / "photo.jpg")
    code, out, err = run_cli(capsys, two_class_artifacts["onnx"], photo, "--top-k", 3)
    assert code == predict.EXIT_UNUSABLE and out == "" and err.count("\n") == 1
    assert "--top-k must be between 1 and 2, the number of classes of cat_dog.onnx, got 3" in err
    assert "use --top-k 2 or leave it out" in err
    assert predict.top_k(torch.tensor([0.3, 0.7]), ["cat", "dog"]) == [("dog", pytest.approx(0.7)),
                                                                       ("cat", pytest.approx(0.3))]


# ---------------------------------------------------------------- how much of an image predict decodes

@pytest.fixture
def decoded(monkeypatch):
    """The (width, height) of every image Pillow decodes; a decode above 30 megapixels fails the test at once."""
    sizes = []
    original = ImageFile.ImageFile.load

    def load(self):
        if self.tile:  # not decoded yet
            sizes.append(self.size)
            if self.size[0] * self.size[1] > 30_000_000:
                pytest.fail(f"Pillow was asked to decode {self.size[0]}x{self.size[1]} pixels")
        return original(self)

    monkeypatch.setattr(ImageFile.ImageFile, "load", load)
    return sizes


@pytest.fixture(scope="module")
def huge_png(tmp_path_factory) -> Path:
    """10000x10000 pixels in about 100 KB: decoded as RGB and turned into floats, gigabytes."""
    path = tmp_path_factory.mktemp("huge") / "huge.png"
    Image.new("L", (10_000, 10_000), 128).save(path, optimize=False)
    assert path.stat().st_size < 1_000_000
    return path


def test_a_huge_png_is_refused_before_decoding(capsys, tiny_artifacts, tmp_path, huge_png, decoded):
    ok = save(Image.fromarray(pixels()), tmp_path / "ok.png")
    code, out, err = run_cli(capsys, tiny_artifacts["onnx"], huge_png, ok)
    assert code == predict.EXIT_SOME_FAILED and decoded == [(40, 30)]  # only the small one was decoded
    assert err.count("\n") == 1 and f"{huge_png} is 10000x10000 pixels (100 megapixels), more than the 50" in err
    assert "downscale it first" in err and out.splitlines()[0] == "ok.png (40x30): top 5 of 5 classes"


def test_a_large_jpeg_is_decoded_at_a_fraction_of_its_size(capsys, tiny_artifacts, tmp_path, decoded):
    photo = save(Image.linear_gradient("L").resize((4000, 3000)).convert("RGB"), tmp_path / "big.jpg", quality=90)
    code, out, err = run_cli(capsys, tiny_artifacts["pt2"], photo, "--top-k", 1)
    assert code == predict.EXIT_OK and err == "" and out.splitlines()[0] == "big.jpg (4000x3000): top 1 of 5 classes"
    assert decoded == [(500, 375)]  # 1/8 scale: the shorter side stays >= 4 x 36 = 144, the model's resize x 4
    with torch.no_grad():
        reduced = tiny_artifacts["pipe"](predict.load_image(photo, 144))
        full = tiny_artifacts["pipe"](predict.load_image(photo))
    assert (reduced - full).abs().max() < 2e-3


def test_a_large_png_is_reduced_right_after_decoding_and_kept_upright(tmp_path, decoded):
    exif = Image.Exif()
    exif[0x0112] = 6  # shown turned by 90 degrees
    path = save(Image.linear_gradient("L").resize((3000, 2000)).convert("RGBA"), tmp_path / "big.png", exif=exif)
    image, size = predict.read_image(path, min_side=144)
    assert decoded == [(3000, 2000)] and size == (2000, 3000)  # a PNG cannot be decoded reduced; its size upright
    assert tuple(image.shape) == (3, 231, 154)  # reduced 13x (2000 // 144), then turned
    assert tuple(predict.load_image(path).shape) == (3, 3000, 2000)  # without min_side: every pixel


def test_a_tiny_image_is_answered_with_a_warning(capsys, tiny_artifacts, tmp_path):
    dot = save(Image.new("RGB", (1, 1), (200, 30, 30)), tmp_path / "dot.png")
    code, out, err = run_cli(capsys, tiny_artifacts["onnx"], dot)
    assert code == predict.EXIT_OK and out.splitlines()[0] == "dot.png (1x1): top 5 of 5 classes"
    assert err.count("\n") == 1 and err.startswith(f"predict: warning: {dot} is only 1x1 pixels, much smaller than ")
    code, out, _ = run_cli(capsys, tiny_artifacts["onnx"], dot, "--json")
    result = json.loads(out)
    assert len(result["top_k"]) == 5 and "much smaller than the model's 32x32 input" in result["warning"]
    code, _, err = run_cli(capsys, tiny_artifacts["onnx"], save(Image.fromarray(pixels(16, 60)), tmp_path / "s.png"))
    assert code == predict.EXIT_OK and err == ""  # half the input size is still fine


def test_an_image_of_extreme_proportions_is_refused(capsys, tiny_artifacts, tmp_path):
    line = save(Image.new("RGB", (500, 2)), tmp_path / "line.png")  # resized to 36 rows: 9000 columns
    code, out, err = run_cli(capsys, tiny_artifacts["onnx"], line)
    assert code == predict.EXIT_SOME_FAILED and out == "" and err.count("\n") == 1
    assert "line.png is 500x2 pixels, its sides differ more than 100-fold" in err and "crop it first" in err


# ---------------------------------------------------------------- expected failures: one line, exit status 2

@pytest.mark.parametrize("args, words", [
    (("--top-k", "three"), "argument --top-k: invalid int value: 'three'"),
    (("--colour",), "unrecognized arguments: --colour"),
])
def test_argument_errors_are_one_line(capsys, tiny_artifacts, tmp_path, args, words):
    image = save(Image.fromarray(pixels()), tmp_path / "ok.png")
    code, out, err = run_cli(capsys, tiny_artifacts["onnx"], image, *args)
    assert code == predict.EXIT_UNUSABLE and out == "" and err.count("\n") == 1, err
    assert err.startswith("predict: error: ") and words in err and "--help" in err


def test_an_unreadable_artifact_or_image_is_one_line(capsys, tiny_artifacts, tmp_path):
    image = save(Image.fromarray(pixels()), tmp_path / "ok.png")
    too_long = tmp_path / ("a" * 300 + ".pt2")  # longer than a file name may be: open raises OSError
    code, out, err = run_cli(capsys, too_long, image)
    assert code == predict.EXIT_UNUSABLE and out == "" and err.count("\n") == 1
    assert f"cannot read {too_long} (File name too long): check the path" in err
    code, out, err = run_cli(capsys, tiny_artifacts["onnx"], image, tmp_path / ("b" * 300 + ".jpg"))
    assert code == predict.EXIT_SOME_FAILED and len(out.splitlines()) == 6  # the other image is answered
    assert err.count("\n") == 1 and "(File name too long)" in err
    (tmp_path / "folder.onnx").mkdir()
    code, out, err = run_cli(capsys, tmp_path / "folder.onnx", image)
    assert code == predict.EXIT_UNUSABLE and err.count("\n") == 1 and "is a folder, not a file" in err


def test_an_artifact_without_read_permission_is_one_line(capsys, tiny_artifacts, tmp_path, monkeypatch):
    image = save(Image.fromarray(pixels()), tmp_path / "ok.png")
    read_bytes = Path.read_bytes

    def refuse(path):  # what chmod 000 does, also for root, who may read anything
        if path.suffix in (".pt2", ".onnx"):
            raise PermissionError(13, "Permission denied", str(path))
        return read_bytes(path)

    monkeypatch.setattr(Path, "read_bytes", refuse)
    for kind in KINDS:
        code, out, err = run_cli(capsys, tiny_artifacts[kind], image)
        assert code == predict.EXIT_UNUSABLE and out == "" and err.count("\n") == 1
        assert f"cannot read {tiny_artifacts[kind]}: permission denied (check the file's permissions)" in err


def test_a_missing_gpu_ordinal_is_explained(capsys, tiny_artifacts, tmp_path, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    image = save(Image.fromarray(pixels()), tmp_path / "ok.png")
    code, out, err = run_cli(capsys, tiny_artifacts["pt2"], image, "--device", "cuda:3")
    assert code == predict.EXIT_UNUSABLE and out == "" and err.count("\n") == 1
    assert "this machine has 1 CUDA GPU(s); use --device cuda:0 up to cuda:0" in err


def test_a_reader_that_stops_early_gets_no_traceback(tiny_artifacts, tmp_path):
    """`predict model.onnx *.jpg | head -1`: the reader goes; predict stops quietly with a closed pipe's status."""
    images = [save(Image.fromarray(pixels(seed=i)), tmp_path / f"{i}.png") for i in range(3)]
    reader_gone = subprocess.Popen(["true"], stdin=subprocess.PIPE)  # reads nothing and exits: a closed pipe
    reader_gone.wait(timeout=30)
    run = subprocess.run([sys.executable, "-m", "course_utils.deploy.predict", str(tiny_artifacts["onnx"]),
                          *map(str, images)], cwd=PROJECT_ROOT, stdout=reader_gone.stdin, stderr=subprocess.PIPE,
                         text=True, timeout=300)
    reader_gone.stdin.close()
    assert run.returncode == 141 and run.stderr == ""
