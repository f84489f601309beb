"""Committed notebooks: their outputs and metadata name no file on the machine that executed them."""

import json
import re
from pathlib import Path

import nbformat
import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))

# An absolute path begins where a word does: "/tmp/..." after a space, quote, "=" or "(", but not the
# "/home/" inside "https://host/home/", which follows a letter. Windows: a drive letter, ":\" and a name.
MACHINE_PATH = re.compile(r"(?<![\w.:/~$-])/(?:tmp|work|root|home|Users|usr|var|opt|mnt|private|srv)/"
                          r"|file:///"
                          r"|(?<![\w\\])[A-Za-z]:\\(?=[\w$.~])")
TEXT_PREFIXES = ("text/", "application/json")  # images are base64, whose "/" and letters can look like a path


def machine_paths(text: str) -> list[str]:
    """Each absolute machine path in `text`, with a little context."""
    return [text[max(0, m.start() - 20):m.end() + 30].replace("\n", " ") for m in MACHINE_PATH.finditer(text)]


def output_texts(cell) -> list[str]:
    """What a code cell's outputs show as text: streams, text representations, error messages."""
    texts = []
    for output in cell.get("outputs", []):
        if output.output_type == "stream":
            texts.append(output.text)
        elif output.output_type in ("execute_result", "display_data"):
            texts += [value if isinstance(value, str) else json.dumps(value)
                      for kind, value in output.data.items() if kind.startswith(TEXT_PREFIXES)]
        elif output.output_type == "error":
            texts += [output.evalue, *output.traceback]
    return texts


@pytest.mark.parametrize("text", [
    "photos from: /work/shared/datasets/cat_dog",
    "UnidentifiedImageError: cannot identify image file <_io.BufferedReader name='/tmp/tmp4_yttwbx/dog.jpg'>",
    "/tmp/ipykernel_22941/2530890102.py:3: UserWarning: skipping 3 files",
    'Downloading: "https://x.org/m.pth" to /root/.cache/torch/hub/checkpoints/m.pth',
    "File (/home/ann/course/x.py:3)",
    "PosixPath('/usr/lib/python3/x')",
    "saved to C:\\Users\\ann\\data",
    "see file:///srv/x.html",
])
def test_machine_paths_are_found(text):
    assert machine_paths(text)


@pytest.mark.parametrize("text", [
    "https://download.pytorch.org/models/densenet121-a639ec97.pth",
    "https://example.com/home/index.html and http://host/tmp/x",
    "photos from: $COURSE_DATA_MIRROR/cat_dog, data/cat_dog/train, <scratch>/dog/dog.404.jpg",
    "~/.cache/torch/hub, ../data/tmp/x, ratio 3/4, 1/tmp",
    "a: \\alpha, a ratio 3:4, 12:30",
])
def test_ordinary_text_is_not_a_machine_path(text):
    assert not machine_paths(text)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[path.stem for path in NOTEBOOKS])
def test_committed_notebook_shows_no_machine_path(path):
    notebook = nbformat.read(path, as_version=4)
    found = [f"notebook metadata: {hit}" for hit in machine_paths(json.dumps(notebook.metadata))]
    for index, cell in enumerate(notebook.cells):
        found += [f"cell {index}: {hit}" for text in output_texts(cell) for hit in machine_paths(text)]
    assert not found, "absolute paths of the executing machine in committed outputs:\n" + "\n".join(found)


def test_every_notebook_is_checked():
    assert len(NOTEBOOKS) >= 16  # a moved folder must not turn this test into one that checks nothing


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[path.stem for path in NOTEBOOKS])
def test_every_lesson_has_an_output_checked_cell(path):
    """nbval (--nbval-lax) compares outputs only of marked cells: a lesson with none is executed, never compared."""
    notebook = nbformat.read(path, as_version=4)
    checked = [index for index, cell in enumerate(notebook.cells) if cell.cell_type == "code"
               and "nbval-check-output" in cell.metadata.get("tags", [])
               and cell.get("outputs")]
    assert checked, f"{path.name}: no cell tagged nbval-check-output with a committed output"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[path.stem for path in NOTEBOOKS])
def test_the_test_harness_stays_out_of_the_learners_code(path):
    """nbval's markers are cell tags: a learner reads no `# NBVAL_...` comment (nbval honours both)."""
    marked = [cell.get("id") for cell in nbformat.read(path, as_version=4).cells
              if cell.cell_type == "code" and "NBVAL_" in cell.source]
    assert not marked, f"{path.name}: cells {marked} carry an nbval comment; tag them (nbval-check-output) instead"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[path.stem for path in NOTEBOOKS])
def test_every_picture_a_lesson_shows_is_committed(path):
    """Markdown images (e.g. lesson 14's TensorBoard screenshots) are files beside the notebooks, not links out."""
    import re

    notebook = nbformat.read(path, as_version=4)
    targets = [target for cell in notebook.cells if cell.cell_type == "markdown"
               for target in re.findall(r"!\[[^\]]*\]\(([^)\s]+)\)", cell.source)]
    missing = [t for t in targets if "://" in t or not (path.parent / t).is_file()]
    assert not missing, f"{path.name} shows pictures that are not committed files: {missing}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[path.stem for path in NOTEBOOKS])
def test_every_cell_has_a_tags_list(path):
    """papermill looks for the parameters cell through every cell's metadata.tags, and fails on a cell without."""
    notebook = nbformat.read(path, as_version=4)
    untagged = [cell.get("id") for cell in notebook.cells if not isinstance(cell.metadata.get("tags"), list)]
    assert not untagged, f"{path.name}: cells without metadata.tags: {untagged}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[path.stem for path in NOTEBOOKS])
def test_committed_outputs_carry_no_machine_noise(path):
    """A learner reads the outputs: no font-cache complaint of the machine that ran them (a stale matplotlib cache
    says `findfont: ... not found` under every plot with a log axis)."""
    notebook = nbformat.read(path, as_version=4)
    noisy = [index for index, cell in enumerate(notebook.cells) if any("findfont:" in text
                                                                     for text in output_texts(cell))]
    assert not noisy, f"{path.name}: cells {noisy} show matplotlib font warnings; rerun with a fresh font cache"
