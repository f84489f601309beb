"""Top-k classes of photos from an exported artifact (.pt2 or .onnx).

    python -m course_utils.deploy.predict ARTIFACT IMAGE ...

A .pt2 is inspected before torch.export.load reads it (`check_pt2`): an archive holding a pickled
member, native code, or a shape expression that is not plain arithmetic is refused, because
loading it could run code. ONNX files hold no code and no pickles: accept those from strangers.
"""

# Needs torch, Pillow and the course's preprocessing module (no torchvision); ONNX Runtime for .onnx.
from __future__ import annotations

import argparse
import ast
import io
import json
import logging
import os
import re
import sys
import warnings
import zipfile
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import torch
from PIL import ExifTags, Image, ImageOps, UnidentifiedImageError

from course_utils.core.files import drop_stdout
from course_utils.datasets.transforms import open_rgb, pil_to_tensor, to_rgb  # noqa: F401  (open_rgb re-exported)

ARTIFACT_FORMAT = "course_utils.deploy.pipeline/2"  # written into every artifact's metadata
METADATA_FILE = "metadata.json"  # inside the .pt2 archive, next to the program
ONNX_METADATA_KEY = "course_utils.metadata"  # the ONNX model's metadata_props entry holding the same JSON
DEFAULT_TOP_K = 5  # at most: a model with fewer classes gets all of them
EXIT_OK, EXIT_SOME_FAILED, EXIT_UNUSABLE = 0, 1, 2

# Images. A model whose input is a few hundred pixels needs no 100-megapixel decode (a 97 KB PNG can hold one).
MAX_DECODED_PIXELS = 50_000_000  # what predict decodes at most (a 48 MP phone photo passes; a JPEG is decoded reduced)
KEEP_SIDE_FACTOR = 4  # a large photo is reduced while its shorter side stays >= 4x the model's resize size
MAX_ASPECT_RATIO = 100  # longer side / shorter side: beyond, the resized image alone would take gigabytes
SMALL_IMAGE_FRACTION = 2  # warn when the shorter side is under input_size / 2: the model sees mostly interpolation
_REDUCIBLE_MODES = ("L", "LA", "RGB", "RGBA", "CMYK", "I")  # Image.reduce averages these correctly (not P, 1, I;16)
_TRANSPOSE = {2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180, 4: Image.Transpose.FLIP_TOP_BOTTOM,
              5: Image.Transpose.TRANSPOSE, 6: Image.Transpose.ROTATE_270, 7: Image.Transpose.TRANSVERSE,
              8: Image.Transpose.ROTATE_90}  # EXIF orientation -> the transposition that makes the image upright

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

    @property
    def input_size(self) -> int:
        return self.metadata["input_size"]

    @property
    def min_decoded_side(self) -> int:
        """The shorter side a large photo is reduced to, no further: KEEP_SIDE_FACTOR x the model's resize size."""
        return KEEP_SIDE_FACTOR * self.metadata["resize_size"]


def _read_error(path: Path, what: str, err: OSError) -> PredictError:
    """An OSError from opening `path` as one line that says what to fix."""
    if isinstance(err, FileNotFoundError):
        return PredictError(f"no {what} at {path} (check the path)")
    if isinstance(err, IsADirectoryError):
        return PredictError(f"{path} is a folder, not a file (name the {what} file)")
    if isinstance(err, PermissionError):
        return PredictError(f"cannot read {path}: permission denied (check the file's permissions)")
    return PredictError(f"cannot read {path} ({err.strerror or type(err).__name__}): check the path and the file")


def _read_bytes(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as err:
        raise _read_error(path, what, err) from None


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


@contextmanager
def _torch_load_weights_only() -> Iterator[None]:
    """Every torch.load in this block is weights_only=True, even one that asks for False (torch's own switch)."""
    names = ("TORCH_FORCE_WEIGHTS_ONLY_LOAD", "TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD")
    saved = {name: os.environ.get(name) for name in names}
    os.environ[names[0]] = "1"
    os.environ.pop(names[1], None)  # both set is an error in torch.load
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def parse_metadata(text: str | None, source: str | Path = "artifact") -> dict:
    """The metadata dict, checked to be ours and to hold what prediction needs."""
    if not text:
        raise PredictError(f"{source} carries no metadata, so it is not an artifact of this course "
                           f"(write it with pipeline.save_artifact or pipeline.export_onnx)")
    try:
        metadata = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as err:
        raise PredictError(f"the metadata of {source} is not valid JSON ({err})") from None
    if not isinstance(metadata, dict):
        raise PredictError(f"the metadata of {source} is not a JSON object")
    if metadata.get("format") != ARTIFACT_FORMAT:
        raise PredictError(f"{source} is not an artifact of this course: its metadata format is "
                           f"{metadata.get('format')!r}, expected {ARTIFACT_FORMAT!r}")
    names = metadata.get("class_names")
    if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
        raise PredictError(f"the metadata of {source} lacks class_names (a non-empty list of strings)")
    sizes = [metadata.get(key) for key in ("input_size", "resize_size")]
    if not all(type(size) is int and size >= 1 for size in sizes) or sizes[0] > sizes[1]:
        raise PredictError(f"the metadata of {source} lacks input_size and resize_size (whole numbers of pixels, "
                           f"input_size <= resize_size), found {sizes[0]!r} and {sizes[1]!r}")
    return metadata


# --- .pt2: refuse what could run code, before torch.export.load sees the file ------------------------------
#
# A .pt2 (torch.export.save) is a zip archive under one root folder. What torch.export.load does with its members:
#   archive_format, archive_version, byteorder, .data/*   read as text
#   models/model.json                  the program as JSON; its "expr_str" strings go through sympy.sympify,
#                                      which is Python's eval, and its "guards_code" strings through exec
#                                      when .module() builds the input checks
#   data/weights/weight_N, data/constants/tensor_N   raw tensor bytes, unless the payload config marks the
#                                      entry use_pickle: then torch.load(weights_only=False), any code
#   data/weights/model_weights_config.json, data/constants/model_constants_config.json   those configs (JSON)
#   data/constants/custom_obj_N, opaque_obj_N   TorchScript / plain pickle.loads: any code
#   data/sample_inputs/model.pt        torch.load(weights_only=True), on failure again with weights_only=False
#   data/aotinductor/...               compiled native libraries, loaded (so run) at load time
#   extra/NAME                         extra_files, read as text (our metadata.json)
# Older layouts (weights/model.pt, serialized_*.pt at the top) are whole pickles.

_PT2_PLAIN_MEMBERS = frozenset({"archive_format", "archive_version", "byteorder", ".data/version",
                                ".data/serialization_id"})
_PT2_PROGRAM = "models/model.json"
_PT2_CONFIGS = {"data/weights/model_weights_config.json": ("data/weights/", "weight_"),
                "data/constants/model_constants_config.json": ("data/constants/", "tensor_")}
_PT2_SAMPLE_INPUTS = "data/sample_inputs/model.pt"
_PT2_REQUIRED = (_PT2_PROGRAM, *_PT2_CONFIGS, _PT2_SAMPLE_INPUTS)
_PT2_TENSOR_MEMBER = re.compile(r"data/weights/weight_\d+|data/constants/tensor_\d+")
_PT2_EXTRA_DIR = "extra/"

# What a shape expression in models/model.json may call: sympy's constructors as sympy.srepr writes them,
# and the functions torch's deserializer puts into sympify's namespace (torch.utils._sympy.functions).
_SYMPY_CALLS = frozenset({
    "Symbol", "Integer", "Float", "Rational", "Add", "Mul", "Pow", "Mod", "Max", "Min", "Abs", "floor", "ceiling",
    "Eq", "Ne", "Lt", "Le", "Gt", "Ge", "Equality", "Unequality", "StrictLessThan", "StrictGreaterThan",
    "LessThan", "GreaterThan", "And", "Or", "Not", "Piecewise", "ExprCondPair", "sqrt",
    "FloorDiv", "ModularIndexing", "Where", "PythonMod", "CleanDiv", "CeilToInt", "FloorToInt", "CeilDiv",
    "IntTrueDiv", "FloatTrueDiv", "LShift", "RShift", "IsNonOverlappingAndDenseIndicator", "TruncToFloat",
    "TruncToInt", "RoundToInt", "RoundDecimal", "ToFloat", "FloatPow", "PowByNatural", "Identity"})
_SYMPY_STRING_ARGUMENT = {"Symbol": re.compile(r"[A-Za-z][A-Za-z0-9_]*"),  # Symbol('s14', ...)
                          "Float": re.compile(r"-?(\d+\.?\d*|\.\d+)(e[-+]?\d+)?")}  # Float('0.5', precision=53)
_SYMPY_NODES = (ast.Expression, ast.Call, ast.Name, ast.Constant, ast.keyword, ast.BinOp, ast.UnaryOp,
                ast.BoolOp, ast.Compare, ast.Load, ast.operator, ast.unaryop, ast.boolop, ast.cmpop)


def is_plain_sympy_expression(text: str) -> bool:
    """Whether `text` is arithmetic on symbols and numbers that sympify can evaluate without running other code.

    Allowed: numbers, names, + - * / // % ** and comparisons, and calls of the sympy and torch shape
    functions above, with a string only as Symbol's name or Float's digits. No attribute, subscript,
    lambda or other call: sympify evaluates its string with eval, where open() or __import__ would run.
    """
    if not isinstance(text, str) or not text.isascii() or not text.isprintable() or len(text) > 100_000:
        return False
    try:
        tree = ast.parse(text, mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return False
    allowed_strings = set()
    for node in ast.walk(tree):  # breadth first: a call is seen before its arguments
        if not isinstance(node, _SYMPY_NODES):
            return False
        if isinstance(node, ast.Call):
            if not isinstance(node.func, ast.Name) or node.func.id not in _SYMPY_CALLS:
                return False
            pattern = _SYMPY_STRING_ARGUMENT.get(node.func.id)
            first = node.args[0] if node.args else None
            if pattern and isinstance(first, ast.Constant) and isinstance(first.value, str) \
                    and pattern.fullmatch(first.value):
                allowed_strings.add(id(first))
            if any(keyword.arg is None or keyword.arg.startswith("_") or not isinstance(keyword.value, ast.Constant)
                   or isinstance(keyword.value.value, str) for keyword in node.keywords):
                return False
        elif isinstance(node, ast.Name) and node.id.startswith("_"):
            return False
        elif isinstance(node, ast.Constant) and isinstance(node.value, (str, bytes)) \
                and id(node) not in allowed_strings:
            return False
    return True


def _expression_strings(program: object) -> Iterator[object]:
    """Every value stored under the key "expr_str" anywhere in the program's JSON (iteratively: no recursion limit)."""
    stack = [program]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            if "expr_str" in item:
                yield item["expr_str"]
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


def check_pt2(data: bytes, source: str | Path = "artifact") -> dict:
    """Refuse a .pt2 that torch.export.load could not read without running code; return its metadata.

    Reads the zip archive only: nothing is unpickled except the sample inputs, and those with
    torch.load(weights_only=True), which builds tensors and plain containers and nothing else.
    """
    def refuse(why: str) -> PredictError:
        return PredictError(f"{source} was refused: {why}; such a .pt2 can run code when loaded, so predict does "
                            f"not load it (use the .onnx, or torch.export.load it yourself only if you trust "
                            f"its source)")

    def not_a_program(why: str) -> PredictError:
        return PredictError(f"{source} is not a loadable exported program ({why}; write it with "
                            f"pipeline.save_artifact)")

    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        infos = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as err:
        raise PredictError(f"{source} is not a .pt2 artifact (not a readable zip archive: {err})") from None
    names = [info.filename for info in infos]
    if not names or "/" not in names[0]:
        raise not_a_program("its members are not in one folder, as torch.export.save writes them")
    root = names[0].split("/", 1)[0] + "/"  # torch's reader takes the first member's folder as the archive's
    duplicates = sorted(name for name, count in Counter(names).items() if count > 1)
    if duplicates:
        raise refuse(f"it holds two members named {duplicates[0]} (a reader could take either)")
    outside = [name for name in names if not name.startswith(root)]
    if outside:
        raise refuse(f"its member {outside[0]} lies outside the archive's folder {root}")
    relative = {name[len(root):] for name in names}

    def read(member: str) -> bytes:
        try:
            return archive.read(root + member)
        except (zipfile.BadZipFile, OSError, ValueError, EOFError, RuntimeError) as err:  # bad CRC, bad compression
            raise PredictError(f"{source} is not a .pt2 artifact (its member {member} is unreadable: {err})") from None

    if "archive_format" not in relative or read("archive_format") != b"pt2":
        raise not_a_program("no archive_format 'pt2' record: a torch.save checkpoint or another zip file")
    for member in sorted(relative):
        if member in _PT2_PLAIN_MEMBERS or member in _PT2_REQUIRED or _PT2_TENSOR_MEMBER.fullmatch(member) \
                or (member.startswith(_PT2_EXTRA_DIR) and len(member) > len(_PT2_EXTRA_DIR)):
            continue
        if member.startswith("data/aotinductor/"):
            raise refuse(f"it holds compiled native code ({member}), which loading would run")
        if re.fullmatch(r"data/constants/(custom|opaque)_obj_\d+", member):
            raise refuse(f"it holds a pickled object ({member}), which loading would unpickle")
        if member.endswith((".pt", ".pkl", ".pickle")):
            raise refuse(f"it holds a pickle ({member}), which loading would unpickle")
        raise refuse(f"it holds {member}, which torch.export.save does not write for one program")
    missing = [member for member in _PT2_REQUIRED if member not in relative]
    if missing:
        raise not_a_program(f"no {missing[0]}")
    for config_file, (folder, prefix) in _PT2_CONFIGS.items():
        try:
            config = json.loads(read(config_file))["config"]
            entries = list(config.items())
        except (ValueError, KeyError, TypeError, AttributeError, RecursionError):
            raise not_a_program(f"{config_file} is not a payload config") from None
        for name, entry in entries:
            if not isinstance(entry, dict) or entry.get("use_pickle") is not False:
                raise refuse(f"its tensor {name!r} is stored as a pickle (use_pickle in {config_file}), "
                             f"which torch.export.load unpickles with weights_only=False")
            path_name = entry.get("path_name")
            if not isinstance(path_name, str) or not re.fullmatch(re.escape(prefix) + r"\d+", path_name) \
                    or folder + path_name not in relative:
                raise not_a_program(f"{config_file} names {path_name!r} for {name!r}, not one of its tensor files")
    samples = read(_PT2_SAMPLE_INPUTS)
    if samples:
        try:
            loaded = torch.load(io.BytesIO(samples), weights_only=True)
        except Exception:  # noqa: BLE001 - UnpicklingError for a forbidden global, anything for damaged bytes
            raise refuse(f"its sample inputs ({_PT2_SAMPLE_INPUTS}) are a pickle that safe loading "
                         f"(weights_only=True) rejects, and torch.export.load would then load it unsafely") from None
        if not isinstance(loaded, tuple):
            raise not_a_program(f"its sample inputs are a {type(loaded).__name__}, not a tuple")
    try:
        program = json.loads(read(_PT2_PROGRAM))
    except (ValueError, RecursionError):
        raise not_a_program(f"{_PT2_PROGRAM} is not JSON") from None
    for expression in _expression_strings(program):
        if not is_plain_sympy_expression(expression):
            shown = repr(expression)
            raise refuse(f"its program holds a shape expression that is not plain arithmetic "
                         f"({shown[:60] + '...' if len(shown) > 60 else shown}), and torch.export.load "
                         f"evaluates those with Python's eval")
    metadata_member = _PT2_EXTRA_DIR + METADATA_FILE
    try:
        text = read(metadata_member).decode() if metadata_member in relative else None
    except UnicodeDecodeError:
        raise PredictError(f"the metadata of {source} is not UTF-8 text") from None
    return parse_metadata(text, source)


def _load_pt2(path: Path, device: torch.device) -> Artifact:
    data = _read_bytes(path, "artifact")  # read once: what is checked is what is loaded
    if not zipfile.is_zipfile(io.BytesIO(data)):  # a .pt2 is a zip archive; truncation removes its directory
        raise PredictError(f"{path} is not a .pt2 artifact (not a zip archive: truncated, or another kind of file)")
    metadata = check_pt2(data, path)
    try:
        # Two more walls behind check_pt2: every torch.load inside is weights_only, and .module() gets
        # check_guards=False, so the program's guards_code strings are never exec'd (the pipeline's own
        # shape checks are part of its graph).
        with _quiet_torch_export(), _torch_load_weights_only():
            program = torch.export.load(io.BytesIO(data))
            module = program.module(check_guards=False).to(device)
    except Exception as err:  # noqa: BLE001 - torch.export.load raises many types for a bad archive; all mean the same
        raise PredictError(f"{path} is not a loadable exported program ({type(err).__name__}: "
                           f"{str(err).splitlines()[0] if str(err) else 'no details'})") from None

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
        raise PredictError(f"ONNX Runtime here cannot run on {device} (it offers {offered}); use --device cpu")
    data = _read_bytes(path, "artifact")
    options = ort.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()  # the same thread budget as torch
    options.log_severity_level = 4  # errors reach us as exceptions; no log lines on stderr
    try:
        session = ort.InferenceSession(data, options, providers=[provider])
    except Exception as err:  # noqa: BLE001 - InvalidProtobuf, Fail, ...: the file is not a usable ONNX model
        raise PredictError(f"{path} is not a loadable ONNX model ({type(err).__name__}: "
                           f"{str(err).splitlines()[0] if str(err) else 'no details'})") from None
    metadata = parse_metadata(session.get_modelmeta().custom_metadata_map.get(ONNX_METADATA_KEY), path)
    input_name = session.get_inputs()[0].name

    def run(images: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(session.run(None, {input_name: images.contiguous().numpy()})[0])

    return Artifact(path, run, metadata)


def load_artifact(path: str | Path, device: str | torch.device = "cpu") -> Artifact:
    """Load a .pt2 or .onnx artifact written by this course, checked, ready to run on `device`.

    A .pt2 is checked by `check_pt2` before it is loaded: one that could run code is refused.
    """
    path = Path(path)
    if path.suffix not in (".pt2", ".onnx"):
        raise PredictError(f"{path} is not an artifact of this course: expected a .pt2 or .onnx file")
    device = resolve_device(device)
    if path.suffix == ".pt2":
        return _load_pt2(path, device)
    return _load_onnx(path, device)


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
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise PredictError(f"device {device} was asked for, but this machine has {torch.cuda.device_count()} "
                           f"CUDA GPU(s); use --device cuda:0 up to cuda:{torch.cuda.device_count() - 1}")
    return device


# --- images -------------------------------------------------------------------------------------------------

def _decode(image: Image.Image, path: Path, min_side: int | None) -> tuple[torch.Tensor, tuple[int, int]]:
    """An opened (not yet decoded) image as uint8 RGB (3, H, W), reduced as `read_image` says, and its upright size."""
    width, height = image.size  # from the header: nothing decoded yet
    if min_side:
        image.draft(None, (min_side, min_side))  # a JPEG decodes at 1/2, 1/4 or 1/8 scale, sides kept >= min_side
    if image.width * image.height > MAX_DECODED_PIXELS:
        raise PredictError(f"{path} is {width}x{height} pixels ({width * height / 1e6:.0f} megapixels), more than "
                           f"the {MAX_DECODED_PIXELS / 1e6:.0f} megapixels predict decodes; downscale it first "
                           f"(e.g. to 4000 pixels on its longer side)")
    image.load()  # decode now, so a truncated file fails here
    method = _TRANSPOSE.get(image.getexif().get(ExifTags.Base.Orientation, 1))
    if method in (Image.Transpose.TRANSPOSE, Image.Transpose.ROTATE_270, Image.Transpose.TRANSVERSE,
                  Image.Transpose.ROTATE_90):
        width, height = height, width  # the size as the photo is shown
    factor = min(image.size) // min_side if min_side else 1
    if factor < 2:
        rgb = to_rgb(ImageOps.exif_transpose(image))  # exactly transforms.open_rgb: what the lessons train on
    else:  # box-average `factor` x `factor` blocks first: the RGB copies below are then small
        reduced = image.reduce(factor) if image.mode in _REDUCIBLE_MODES else to_rgb(image).reduce(factor)
        rgb = to_rgb(reduced)
        if method is not None:
            rgb = rgb.transpose(method)
    return pil_to_tensor(rgb), (width, height)


def read_image(path: str | Path, min_side: int | None = None) -> tuple[torch.Tensor, tuple[int, int]]:
    """Read an image file as uint8 RGB (3, H, W), upright per its EXIF orientation; also its (width, height).

    With `min_side`, a large image is decoded reduced (a JPEG by its decoder, any other by Image.reduce
    right after decoding) while its shorter side stays >= min_side; the size returned is the file's.
    More than MAX_DECODED_PIXELS to decode is an error, raised before decoding.
    """
    path = Path(path)
    try:
        file = open(path, "rb")  # closed by the with below; an error opening it is reported apart
    except OSError as err:
        raise _read_error(path, "image", err) from None
    with file:
        try:
            with warnings.catch_warnings():  # Pillow warns above 89 megapixels; predict's own limit is lower
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                image = Image.open(file)
            with image:
                return _decode(image, path, min_side)
        except UnidentifiedImageError:
            raise PredictError(f"{path} is not an image file Pillow can read") from None
        except Image.DecompressionBombError as err:
            raise PredictError(f"{path} is too large to open safely ({err})") from None
        except (OSError, SyntaxError, ValueError, EOFError) as err:  # Pillow's ways of saying "broken data"
            raise PredictError(f"{path} is truncated or corrupt ({err})") from None


def load_image(path: str | Path, min_side: int | None = None) -> torch.Tensor:
    """Read an image file as uint8 RGB (3, H, W), upright per its EXIF orientation (see `read_image`)."""
    return read_image(path, min_side)[0]


def expand_paths(paths: list[Path]) -> list[Path]:
    """The files named, with each folder replaced by the files directly in it (sorted, hidden ones skipped)."""
    files = []
    for path in paths:
        try:
            is_dir = path.is_dir()
        except OSError:  # e.g. a name too long: reported with the other per-image errors
            is_dir = False
        if not is_dir:
            files.append(path)  # a missing file is reported with the other per-image errors
            continue
        try:
            inside = sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith("."))
        except OSError as err:
            raise _read_error(path, "folder", err) from None
        if not inside:
            raise PredictError(f"the folder {path} holds no files to classify (name image files or a folder of them)")
        files += inside
    return files


def default_k(num_classes: int) -> int:
    """How many classes predict lists when not told: DEFAULT_TOP_K, or all of them when the model has fewer."""
    return min(DEFAULT_TOP_K, num_classes)


def check_k(k: int, num_classes: int) -> None:
    """Raise unless 1 <= k <= num_classes."""
    if not 1 <= k <= num_classes:
        raise PredictError(f"top-k must be between 1 and {num_classes} (the number of classes), got {k}")


def top_k(probs: torch.Tensor, class_names: list[str], k: int | None = None) -> list[tuple[str, float]]:
    """The k most probable (class name, probability) pairs of one probability vector (k: `default_k`)."""
    if probs.dim() != 1 or len(probs) != len(class_names):
        raise PredictError(f"the model gives {tuple(probs.shape)} probabilities for {len(class_names)} class names")
    k = default_k(len(class_names)) if k is None else k
    check_k(k, len(class_names))
    values, indices = probs.topk(k)
    return [(class_names[i], p) for p, i in zip(values.tolist(), indices.tolist())]


def predict(artifact: Artifact, image: torch.Tensor) -> torch.Tensor:
    """Probabilities (num_classes,) of one uint8 image (3, H, W)."""
    return artifact.run(image.unsqueeze(0))[0]  # (1, 3, H, W) -> (1, num_classes) -> (num_classes,)


def size_warning(artifact: Artifact, width: int, height: int) -> str | None:
    """Why an answer for an image of this size means little, or None."""
    if min(width, height) * SMALL_IMAGE_FRACTION >= artifact.input_size:
        return None
    return (f"only {width}x{height} pixels, much smaller than the model's {artifact.input_size}x"
            f"{artifact.input_size} input: it is enlarged {artifact.metadata['resize_size'] / min(width, height):.0f}x "
            f"and the answer means little")


def classify_files(artifact: Artifact, files: list[Path], k: int | None = None) -> list[dict]:
    """One result per file: {"file", "width", "height", "top_k": [{"class", "probability"}]} or {"file", "error"}.

    A result also has "warning" when the image is much smaller than the model's input. Large images
    are decoded reduced (`read_image` with the artifact's `min_decoded_side`).
    """
    results = []
    for path in files:
        try:
            image, (width, height) = read_image(path, artifact.min_decoded_side)
            if max(width, height) > MAX_ASPECT_RATIO * min(width, height):
                raise PredictError(f"{path} is {width}x{height} pixels, its sides differ more than "
                                   f"{MAX_ASPECT_RATIO}-fold: the model would enlarge it to "
                                   f"{artifact.metadata['resize_size']} pixels across, making it huge; crop it first")
            ranked = top_k(predict(artifact, image), artifact.class_names, k)
        except PredictError as err:
            results.append({"file": str(path), "error": str(err)})
            continue
        result = {"file": str(path), "width": width, "height": height,
                  "top_k": [{"class": name, "probability": prob} for name, prob in ranked]}
        if warning := size_warning(artifact, width, height):
            result["warning"] = f"{path} is {warning}"
        results.append(result)
    return results


class _ArgumentParser(argparse.ArgumentParser):
    def error(self, message: str):
        """A bad argument is one line, like every other error of predict (argparse prints usage first)."""
        raise PredictError(f"{message} (see {self.prog} --help)")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = _ArgumentParser(
        prog="python -m course_utils.deploy.predict", description=__doc__,
        epilog=f"exit status: {EXIT_OK} every image classified, {EXIT_SOME_FAILED} some image failed "
               f"(the others are still answered), {EXIT_UNUSABLE} the artifact or the arguments are unusable")
    parser.add_argument("artifact", type=Path, help="a .pt2 or .onnx file written by course_utils.deploy.pipeline")
    parser.add_argument("images", type=Path, nargs="+", metavar="IMAGE",
                        help="image files or folders of them (JPEG, PNG, ...; grayscale, RGBA, palette are converted)")
    parser.add_argument("--top-k", type=int, default=None,
                        help=f"how many classes per image (default: {DEFAULT_TOP_K}, or all when the model has fewer)")
    parser.add_argument("--json", action="store_true", help="one JSON object per image and line, errors included")
    parser.add_argument("--device", default="cpu", help="auto, cpu or cuda[:N] (default: %(default)s)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    try:
        args = parse_args(argv)
        if args.top_k is not None and args.top_k < 1:
            raise PredictError(f"--top-k must be at least 1, got {args.top_k}")
        files = expand_paths(args.images)  # cheap checks first, the artifact load takes seconds
        artifact = load_artifact(args.artifact, args.device)
        classes = len(artifact.class_names)
        if args.top_k is not None and args.top_k > classes:
            raise PredictError(f"--top-k must be between 1 and {classes}, the number of classes of "
                               f"{args.artifact.name}, got {args.top_k}; use --top-k {classes} or leave it out")
    except PredictError as err:
        print(f"predict: error: {err}", file=sys.stderr)
        return EXIT_UNUSABLE
    results = classify_files(artifact, files, args.top_k)
    try:
        print_results(results, args.json, len(artifact.class_names))
        sys.stdout.flush()  # here, so that a reader that has gone (`| head -1`) is seen below, not at exit
    except BrokenPipeError:
        return drop_stdout()
    return EXIT_SOME_FAILED if any("error" in result for result in results) else EXIT_OK


def print_results(results: list[dict], as_json: bool, num_classes: int) -> None:
    """One block (or one JSON line) per image on stdout; warnings and errors on stderr."""
    for result in results:
        if "warning" in result:
            print(f"predict: warning: {result['warning']}", file=sys.stderr)
        if as_json:
            print(json.dumps(result))
        elif "error" in result:
            print(f"predict: error: {result['error']}", file=sys.stderr)
        else:
            print(f"{Path(result['file']).name} ({result['width']}x{result['height']}): "
                  f"top {len(result['top_k'])} of {num_classes} classes")
            for entry in result["top_k"]:
                print(f"  {entry['probability']:.4f}  {entry['class']}")


if __name__ == "__main__":
    sys.exit(main())
