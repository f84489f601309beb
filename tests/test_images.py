"""Tests for course_utils.datasets.images: sources of the cat/dog photos, folder checks."""

import dataclasses
import errno
import hashlib
import io
import os
import re
import urllib.error
import urllib.request
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from course_utils.datasets import catalog, images, sources
from course_utils.datasets.sources import ChecksumError, DataNotFoundError


def jpeg_bytes(seed: int, size=(48, 40)) -> bytes:
    """A small JPEG of smooth random colours (a test fixture for file handling, not a dataset)."""
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, (size[1] // 8, size[0] // 8, 3), dtype=np.uint8)
    image = Image.fromarray(pixels).resize(size, Image.Resampling.BILINEAR)
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def make_folder(root: Path, per_class: dict[str, int]) -> Path:
    for class_index, (name, count) in enumerate(per_class.items()):
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(count):
            (root / name / f"{name}.{i}.jpg").write_bytes(jpeg_bytes(100 * class_index + i))
    return root


# --- image folders ----------------------------------------------------------------------------------------

def test_missing_folder_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="no folder .*train.*ImageFolder layout"):
        images.check_image_folder(tmp_path / "train")


def test_missing_class_folder(tmp_path):
    make_folder(tmp_path, {"cat": 2})
    with pytest.raises(FileNotFoundError, match="no folder for class dog"):
        images.check_image_folder(tmp_path, class_names=("cat", "dog"))


def test_unexpected_class_folder(tmp_path):
    make_folder(tmp_path, {"cat": 1, "dog": 1, ".ipynb_checkpoints": 1})
    with pytest.raises(ValueError, match=r"\.ipynb_checkpoints.*not classes"):
        images.check_image_folder(tmp_path, class_names=("cat", "dog"))


def test_empty_class_folder(tmp_path):
    make_folder(tmp_path, {"cat": 2})
    (tmp_path / "dog").mkdir()
    with pytest.raises(ValueError, match=r"dog holds no readable image \(empty\)"):
        images.check_image_folder(tmp_path)


def test_class_folder_with_only_bad_files(tmp_path):
    make_folder(tmp_path, {"cat": 2})
    (tmp_path / "dog").mkdir()
    (tmp_path / "dog" / "notes.txt").write_text("not a photo")
    with pytest.raises(ValueError, match="dog holds no readable image .1 files rejected"):
        images.check_image_folder(tmp_path)


@pytest.fixture
def folder_with_bad_files(tmp_path):
    make_folder(tmp_path, {"cat": 3, "dog": 3})
    good = jpeg_bytes(7, size=(160, 120))
    (tmp_path / "cat" / "truncated.jpg").write_bytes(good[: len(good) // 2])
    (tmp_path / "cat" / "empty.jpg").write_bytes(b"")
    (tmp_path / "dog" / "notes.txt").write_text("a text file among the photos")
    (tmp_path / "dog" / "html.jpg").write_text("<html>an error page saved as .jpg</html>")
    return tmp_path


def test_bad_files_are_reported(folder_with_bad_files):
    report = images.check_image_folder(folder_with_bad_files, class_names=("cat", "dog"))
    assert report.counts == {"cat": 3, "dog": 3}
    assert report.class_names == ["cat", "dog"]
    reasons = {path.name: why for path, why in report.rejected}
    assert set(reasons) == {"truncated.jpg", "empty.jpg", "notes.txt", "html.jpg"}
    assert reasons["notes.txt"] == reasons["html.jpg"] == "not an image"
    assert reasons["truncated.jpg"].startswith("unreadable")
    assert "truncated.jpg" in str(report) and "4 files rejected" in str(report)


def test_header_only_check_misses_truncation(folder_with_bad_files):
    report = images.check_image_folder(folder_with_bad_files, decode=False)
    assert "truncated.jpg" not in {path.name for path, _ in report.rejected}
    assert "notes.txt" in {path.name for path, _ in report.rejected}


def test_image_folder_skips_and_warns(folder_with_bad_files):
    with pytest.warns(UserWarning, match="skipping 4 files that are not readable images"):
        dataset = images.image_folder(folder_with_bad_files, class_names=("cat", "dog"))
    assert dataset.classes == ["cat", "dog"]
    assert len(dataset) == 6
    assert sorted(Path(path).name for path, _ in dataset.samples) == [f"{c}.{i}.jpg" for c in ("cat", "dog")
                                                                       for i in range(3)]
    image, label = dataset[0]
    assert image.mode == "RGB" and label == 0


def test_image_folder_reuses_a_report(tmp_path):
    make_folder(tmp_path, {"a": 1, "b": 2})
    report = images.check_image_folder(tmp_path)
    assert len(images.image_folder(tmp_path, report=report)) == 3
    with pytest.raises(ValueError, match="report is for"):
        images.image_folder(tmp_path / "elsewhere", report=report)


# --- names the lessons call on images, now at home in transforms and sampling ----------------------------

def test_lessons_still_find_the_moved_names_on_images():
    """Lessons 07, 08 and 13 call images.eval_transform, images.balanced_sampler, ...: the same functions."""
    from course_utils.datasets import sampling, transforms

    for name in ("train_transform", "eval_transform"):
        assert getattr(images, name) is getattr(transforms, name)
    for name in ("balanced_sampler", "class_subset"):
        assert getattr(images, name) is getattr(sampling, name)


# --- SHA256SUMS folders and the source chain ---------------------------------------------------------------

def make_sums_folder(root: Path, per_class: int) -> Path:
    lines = []
    for split_index, split in enumerate(images.CAT_DOG_SPLITS):
        for class_index, name in enumerate(images.CAT_DOG_CLASSES):
            for i in range(per_class):
                relative = f"{split}/{name}/{name}.{split_index}{class_index}{i}.jpg"
                content = jpeg_bytes(1000 * split_index + 100 * class_index + i)
                (root / relative).parent.mkdir(parents=True, exist_ok=True)
                (root / relative).write_bytes(content)
                lines.append(f"{hashlib.sha256(content).hexdigest()}  ./{relative}")
    (root / images.SUMS_FILE).write_text("\n".join(lines) + "\n")
    return root


def test_sums_folder_passes_and_catches_changes(tmp_path):
    root = make_sums_folder(tmp_path / "ok", per_class=2)
    images.check_sums_folder(root, per_class=2)
    with pytest.raises(ValueError, match="train/cat holds 2 photos, expected 3"):
        images.check_sums_folder(root, per_class=3)
    (root / "train" / "dog" / "extra.jpg").write_bytes(jpeg_bytes(5))
    with pytest.raises(ValueError, match=r"unexpected file .*/train/dog/extra\.jpg \(not in SHA256SUMS\)"):
        images.check_sums_folder(root, per_class=2)
    (root / "test" / "cat" / "extra.jpg").write_bytes(jpeg_bytes(6))
    with pytest.raises(ValueError, match=r"2 unexpected files \(not in SHA256SUMS\), first .*/test/cat/extra\.jpg"):
        images.check_sums_folder(root, per_class=2)


def test_sums_folder_missing_and_corrupt_files(tmp_path):
    root = make_sums_folder(tmp_path / "missing", per_class=1)
    next((root / "test" / "cat").iterdir()).unlink()
    with pytest.raises(ValueError, match="1 files listed in SHA256SUMS are missing .first: test/cat/"):
        images.check_sums_folder(root, per_class=1)
    root = make_sums_folder(tmp_path / "corrupt", per_class=1)
    photo = next((root / "train" / "dog").iterdir())
    photo.write_bytes(photo.read_bytes()[:-10])
    with pytest.raises(ChecksumError, match="1 files differ from SHA256SUMS"):
        images.check_sums_folder(root, per_class=1)


def test_read_sums_text_and_binary_mode(tmp_path):
    (tmp_path / "SUMS").write_text(f"{'A' * 64}  ./train/cat/a.jpg\n\n{'b' * 64} *test/dog/b.jpg\n")
    assert images.read_sums(tmp_path / "SUMS") == {"train/cat/a.jpg": "a" * 64, "test/dog/b.jpg": "b" * 64}


@pytest.mark.parametrize("line", ["abc  ./train/cat/x.jpg", f"{'0' * 64}  ../escape.jpg", f"{'0' * 64} no-two-spaces",
                                  f"{'g' * 64}  ./train/cat/x.jpg", f"{'0' * 64}  /etc/passwd"])
def test_read_sums_rejects_bad_lines(tmp_path, line):
    (tmp_path / "SUMS").write_text(line + "\n")
    with pytest.raises(ValueError, match="line 1"):
        images.read_sums(tmp_path / "SUMS")


KAGGLE_ZIP_URL = catalog.DATASETS["cat_dog"].files[0].urls[0]


def _per_class(monkeypatch, count):
    """Cats vs dogs with `count` photos per class and split, for one test."""
    entry = catalog.DATASETS["cat_dog"]
    monkeypatch.setitem(catalog.DATASETS, "cat_dog",
                        dataclasses.replace(entry, folder=dataclasses.replace(entry.folder, per_class=count)))


def _zip_digest(monkeypatch, digest):
    """Accept a zip made by the test as Microsoft's, for one test."""
    entry = catalog.DATASETS["cat_dog"]
    monkeypatch.setitem(catalog.DATASETS, "cat_dog",
                        dataclasses.replace(entry, files=(dataclasses.replace(entry.files[0], digests=(digest,)),)))


@pytest.fixture
def no_sources(tmp_path, monkeypatch):
    """An empty cache, no mirror, and a download that fails the way it does offline."""
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("COURSE_DATA_MIRROR", raising=False)

    def offline(request, timeout):
        raise urllib.error.URLError("[Errno -2] Name or service not known")

    monkeypatch.setattr(urllib.request, "urlopen", offline)  # the bottom of the real download path
    return tmp_path


def test_nothing_found_lists_every_source(no_sources):
    with pytest.raises(DataNotFoundError) as error:
        images.cat_dog_root()
    message = str(error.value)
    order = ["local cache", "mirror: $COURSE_DATA_MIRROR is not set", "kagglecatsanddogs_5340.zip: not there",
             f"download {KAGGLE_ZIP_URL}: <urlopen error", "How to fix", "export COURSE_DATA_MIRROR"]
    positions = [message.find(part) for part in order]
    assert -1 not in positions, message
    assert positions == sorted(positions), message


def test_cache_first_then_mirror_in_place(no_sources, monkeypatch):
    _per_class(monkeypatch, 1)
    mirror = make_sums_folder(no_sources / "mirror" / "cat_dog", per_class=1)
    monkeypatch.setenv("COURSE_DATA_MIRROR", str(mirror.parent))
    assert images.cat_dog_root() == mirror
    assert not (no_sources / "data" / "cat_dog").exists()  # used in place, not copied
    cache = make_sums_folder(no_sources / "data" / "cat_dog", per_class=1)
    assert images.cat_dog_root() == cache


def test_broken_mirror_is_reported(no_sources, monkeypatch):
    mirror = make_sums_folder(no_sources / "mirror" / "cat_dog", per_class=1)
    monkeypatch.setenv("COURSE_DATA_MIRROR", str(mirror.parent))
    with pytest.raises(DataNotFoundError, match=r"mirror .*cat_dog: train/cat holds 1 photos, expected 1000"):
        images.cat_dog_root()


def test_kaggle_zip_is_verified_split_and_cached(no_sources, monkeypatch):
    """A zip with Microsoft's layout (small, made here) goes through the real verify-and-extract path."""
    _per_class(monkeypatch, 2)
    zip_path = no_sources / "data" / "kagglecatsanddogs_5340.zip"
    zip_path.parent.mkdir()
    with zipfile.ZipFile(zip_path, "w") as archive:
        broken = {"PetImages/Cat/2.jpg": b"", "PetImages/Dog/1.jpg": b"GIF89a broken"}  # Microsoft's has such
        for folder in ("Cat", "Dog"):
            for number in range(7):
                name = f"PetImages/{folder}/{number}.jpg"
                archive.writestr(name, broken.get(name, jpeg_bytes(number + (folder == "Dog") * 50)))
            archive.writestr(f"PetImages/{folder}/Thumbs.db", b"\x00windows thumbnail cache")
    with pytest.warns(UserWarning, match="failed its checksum"), \
            pytest.raises(DataNotFoundError, match="sha256 is .*expected"):  # not the real zip: refused, kept aside
        images.cat_dog_root()
    assert (zip_path.parent / "kagglecatsanddogs_5340.zip.corrupt").exists()
    os.replace(zip_path.parent / "kagglecatsanddogs_5340.zip.corrupt", zip_path)
    _zip_digest(monkeypatch, hashlib.sha256(zip_path.read_bytes()).hexdigest())
    with pytest.warns(UserWarning, match="skipped 2 unreadable photos"):
        root = images.cat_dog_root()
    assert root == no_sources / "data" / "cat_dog"
    names = {path.relative_to(root).as_posix() for path in root.rglob("*.jpg")}
    assert names == {"train/cat/cat.0.jpg", "train/cat/cat.1.jpg", "test/cat/cat.3.jpg", "test/cat/cat.4.jpg",
                     "train/dog/dog.0.jpg", "train/dog/dog.2.jpg", "test/dog/dog.3.jpg", "test/dog/dog.4.jpg"}
    images.check_sums_folder(root, per_class=2)
    zip_path.unlink()
    assert images.cat_dog_root() == root  # the cache now comes first


def test_kaggle_zip_is_downloaded_when_missing(no_sources, monkeypatch):
    """The real download path runs (only the network is faked): a fresh path, the bytes verified, then split."""
    _per_class(monkeypatch, 1)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for folder in ("Cat", "Dog"):
            for number in range(2):
                archive.writestr(f"PetImages/{folder}/{number}.jpg", jpeg_bytes(number + (folder == "Dog") * 50))
    payload = buffer.getvalue()
    requested = []

    def fake_urlopen(request, timeout):
        requested.append(request.full_url)
        return io.BytesIO(payload)

    monkeypatch.setattr(urllib.request, "urlopen", fake_urlopen)
    with pytest.raises(DataNotFoundError, match="kagglecatsanddogs_5340.zip: sha256 is .*expected"):
        images.cat_dog_root()  # downloaded, but not Microsoft's bytes: refused, nothing cached
    assert requested == [KAGGLE_ZIP_URL]
    assert not (no_sources / "data" / "kagglecatsanddogs_5340.zip").exists()
    _zip_digest(monkeypatch, hashlib.sha256(payload).hexdigest())
    root = images.cat_dog_root()
    assert requested == [KAGGLE_ZIP_URL] * 2
    assert (no_sources / "data" / "kagglecatsanddogs_5340.zip").read_bytes() == payload
    assert root == no_sources / "data" / "cat_dog"
    images.check_sums_folder(root, per_class=1)



def one_clear_error(excinfo) -> str:
    """The message of an error that stands alone: one line, no chained exception printed above it."""
    err = excinfo.value
    assert err.__cause__ is None and (err.__context__ is None or err.__suppress_context__), "a chained traceback"
    assert "\n" not in str(err), str(err)
    return str(err)


def test_full_disk_while_extracting_blames_the_cache(no_sources, monkeypatch):
    """The 825 MB zip is verified; the disk fills up while it is split into the cache: no download advice."""
    _per_class(monkeypatch, 1)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for folder in ("Cat", "Dog"):
            for number in range(2):
                archive.writestr(f"PetImages/{folder}/{number}.jpg", jpeg_bytes(number + (folder == "Dog") * 50))
    zip_path = no_sources / "data" / "kagglecatsanddogs_5340.zip"
    zip_path.parent.mkdir()
    zip_path.write_bytes(buffer.getvalue())
    _zip_digest(monkeypatch, hashlib.sha256(buffer.getvalue()).hexdigest())
    written = []
    real_write_bytes = Path.write_bytes

    def fills_up(self, data):
        if len(written) == 2:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        written.append(self)
        return real_write_bytes(self, data)

    monkeypatch.setattr(Path, "write_bytes", fills_up)
    with pytest.raises(OSError) as excinfo:
        images.cat_dog_root()
    message = one_clear_error(excinfo)
    assert isinstance(excinfo.value, sources.CacheError) and excinfo.value.errno == errno.ENOSPC
    assert f"dataset cache {no_sources / 'data'}" in message and "no space left on device" in message
    assert "$COURSE_DATA_DIR" in message and "internet" not in message and "COURSE_DATA_MIRROR" not in message
    assert sorted(p.name for p in zip_path.parent.iterdir()) == [zip_path.name]  # the half-split folder is gone


OS_FILES = ("Thumbs.db", ".DS_Store", "desktop.ini", "._cat.0.jpg", "THUMBS.DB")  # Windows, macOS, AppleDouble


def test_operating_system_files_do_not_reject_the_mirror(no_sources, monkeypatch):
    _per_class(monkeypatch, 1)
    mirror = make_sums_folder(no_sources / "mirror" / "cat_dog", per_class=1)
    for split in images.CAT_DOG_SPLITS:
        for name in images.CAT_DOG_CLASSES:
            for junk in OS_FILES:
                (mirror / split / name / junk).write_bytes(b"\x00 written by a file browser")
    (mirror / "train" / ".DS_Store").write_bytes(b"\x00")
    monkeypatch.setenv("COURSE_DATA_MIRROR", str(mirror.parent))
    assert images.cat_dog_root() == mirror  # used, not rejected for a download


def test_an_unexpected_file_is_named_with_the_fix(no_sources, monkeypatch):
    _per_class(monkeypatch, 1)
    mirror = make_sums_folder(no_sources / "mirror" / "cat_dog", per_class=1)
    stray = mirror / "train" / "dog" / "notes.txt"
    stray.write_text("not a photo")
    with pytest.raises(ValueError, match=re.escape(f"unexpected file {stray} (not in SHA256SUMS); move it out")):
        images.check_sums_folder(mirror, per_class=1)
    monkeypatch.setenv("COURSE_DATA_MIRROR", str(mirror.parent))
    with pytest.raises(DataNotFoundError, match=re.escape(f"mirror {mirror}: unexpected file {stray}")):
        images.cat_dog_root()


def test_image_folder_ignores_operating_system_files(tmp_path):
    make_folder(tmp_path, {"cat": 2, "dog": 2})
    for junk in OS_FILES:
        (tmp_path / "cat" / junk).write_bytes(b"\x00 written by a file browser")
    report = images.check_image_folder(tmp_path, class_names=("cat", "dog"))
    assert report.rejected == [] and report.counts == {"cat": 2, "dog": 2}
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing to warn about
        dataset = images.image_folder(tmp_path, report=report)
    assert len(dataset) == 4 and not any(Path(path).name in OS_FILES for path, _ in dataset.samples)


mirror = os.environ.get("COURSE_DATA_MIRROR")


@pytest.mark.skipif(not mirror, reason="COURSE_DATA_MIRROR is not set")
def test_real_mirror_layout_and_photos(tmp_path, monkeypatch):
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path))
    root = images.cat_dog_root()
    assert root == Path(mirror).expanduser() / "cat_dog"
    for split in images.CAT_DOG_SPLITS:
        for name in images.CAT_DOG_CLASSES:
            photos = sorted((root / split / name).iterdir())
            assert len(photos) == images.CAT_DOG_PER_CLASS
            assert images.image_problem(photos[0]) is None
