"""Photos in class folders: the cats-vs-dogs photos (found, verified, unpacked) and checked ImageFolders.

The lessons' transforms live in `transforms`, class-balanced sampling in `sampling`; their names are
imported here too, because the lessons call them as `images.eval_transform`, `images.balanced_sampler`, ...
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import shutil
import string
import warnings
import zipfile
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from PIL import Image, UnidentifiedImageError
from torchvision import datasets

from course_utils.datasets import catalog
from course_utils.datasets.sampling import balanced_sampler, class_subset  # noqa: F401  (the lessons' names)
from course_utils.datasets.sources import (
    HOW_TO_FIX,
    MIRROR_ENV,
    CacheError,
    ChecksumError,
    DataNotFoundError,
    cache_error,
    data_dir,
    fetch,
    file_digest,
    is_cache_failure,
    mirror_dir,
    set_aside,
)
from course_utils.datasets.transforms import eval_transform, open_rgb, train_transform  # noqa: F401  (as above)

CAT_DOG = "cat_dog"
_FOLDER = catalog.dataset(CAT_DOG).folder  # the layout's facts live in the catalog; these names are for lessons
CAT_DOG_SPLITS, CAT_DOG_CLASSES, CAT_DOG_PER_CLASS = _FOLDER.splits, _FOLDER.classes, _FOLDER.per_class
SUMS_FILE = _FOLDER.sums_file  # `sha256sum` format: "<hex>  ./train/cat/cat.1.jpg", one line per photo

# What file browsers leave in folders they show (Windows' thumbnail caches and folder settings, macOS's
# folder settings); compared in lower case. macOS's AppleDouble files, "._<name>", are matched by prefix.
OS_FILES = frozenset({"thumbs.db", "ehthumbs.db", "desktop.ini", ".ds_store"})

_verified: set[tuple[str, str]] = set()  # (folder, digest of its SHA256SUMS) fully hashed in this process


def is_os_file(path: Path) -> bool:
    """True for a file an operating system leaves in folders (Thumbs.db, .DS_Store, desktop.ini, ._*): not data."""
    return path.name.lower() in OS_FILES or path.name.startswith("._")


# --- where the photos come from --------------------------------------------------------------------------

def read_sums(path: Path) -> dict[str, str]:
    """A SHA256SUMS file as {relative posix path: hex digest}; paths must stay inside its folder."""
    listed = {}
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        digest, _, name = line.partition(" ")
        name = name[1:].removeprefix("./") if name[:1] in (" ", "*") else ""  # "  " text mode, " *" binary mode
        if len(digest) != 64 or set(digest.lower()) - set(string.hexdigits.lower()) or not name \
                or name.startswith("/") or ".." in name.split("/"):
            raise ValueError(f"{path}, line {number}: expected '<sha256>  ./relative/path', got {line!r}")
        listed[name] = digest.lower()
    return listed


def check_sums_folder(root: Path, per_class: int | None = CAT_DOG_PER_CLASS) -> None:
    """Raise unless `root/SHA256SUMS` lists exactly the files under train/ and test/, with the right counts and hashes.

    Layout and counts are checked on every call (a directory listing: fast); the content of every
    file is hashed the first time a folder is seen in this process (about a second for 4,000 photos).
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError("not there")
    sums_path = root / SUMS_FILE
    if not sums_path.is_file():
        raise FileNotFoundError(f"no {SUMS_FILE} in it, so it cannot be verified")
    listed = read_sums(sums_path)
    present = {path.relative_to(root).as_posix()
               for split in CAT_DOG_SPLITS if (root / split).is_dir()
               for path in (root / split).rglob("*") if path.is_file() and not is_os_file(path)}
    missing, unlisted = sorted(set(listed) - present), sorted(present - set(listed))
    if unlisted:  # named first: one stray file explains a folder that is otherwise complete
        raise ValueError(f"unexpected file {root / unlisted[0]} (not in {SUMS_FILE}); move it out of {root}"
                         if len(unlisted) == 1 else
                         f"{len(unlisted)} unexpected files (not in {SUMS_FILE}), first {root / unlisted[0]}; "
                         f"move them out of {root}")
    if missing:
        raise ValueError(f"{len(missing)} files listed in {SUMS_FILE} are missing (first: {missing[0]})")
    if per_class is not None:
        counts = Counter(tuple(name.split("/")[:2]) for name in listed)
        for split in CAT_DOG_SPLITS:
            for class_name in CAT_DOG_CLASSES:
                if counts[split, class_name] != per_class:
                    raise ValueError(f"{split}/{class_name} holds {counts[split, class_name]} photos, "
                                     f"expected {per_class}")
    key = (str(root.resolve()), file_digest(sums_path, "sha256"))
    if key not in _verified:
        wrong = [name for name, digest in listed.items() if file_digest(root / name, "sha256") != digest]
        if wrong:
            raise ChecksumError(f"{len(wrong)} files differ from {SUMS_FILE} (first: {wrong[0]})")
        _verified.add(key)


def extract_cat_dog(zip_path: Path, target: Path, per_class: int = CAT_DOG_PER_CLASS) -> Path:
    """Split Microsoft's zip into `target/{train,test}/{cat,dog}/` and write `target/SHA256SUMS`.

    Deterministic: per class, the photos in order of their number, skipping unreadable ones
    (listed in a warning); the first `per_class` go to train, the next `per_class` to test.
    A cache that cannot take the photos (disk full, read-only) raises CacheError, the partial folder removed.
    """
    partial = target.with_name(target.name + ".part")
    shutil.rmtree(partial, ignore_errors=True)  # an interrupted earlier extraction: ours to remove
    try:
        skipped = _split_zip(zip_path, partial, per_class)
        if target.exists():
            set_aside(target)
        os.replace(partial, target)
    except OSError as err:
        shutil.rmtree(partial, ignore_errors=True)  # on a full disk, give the space back
        if is_cache_failure(err, target.parent):
            raise cache_error(target.parent, err) from None
        raise
    if skipped:
        warnings.warn(f"skipped {len(skipped)} unreadable photos in {zip_path.name}: " + "; ".join(skipped),
                      stacklevel=2)
    return target


def _split_zip(zip_path: Path, partial: Path, per_class: int) -> list[str]:
    """Write the split photos and their SHA256SUMS into `partial`; the photos skipped, each with why."""
    sums, skipped = [], []
    layout = re.compile(catalog.dataset(CAT_DOG).files[0].members)  # PetImages/{Cat,Dog}/<n>.jpg
    with zipfile.ZipFile(zip_path) as archive:
        members: dict[str, list[tuple[int, str]]] = {name: [] for name in CAT_DOG_CLASSES}
        for name in archive.namelist():
            match = layout.match(name)
            if match:
                members[match[1].lower()].append((int(match[2]), name))
        for class_name, numbered in members.items():
            kept = 0
            for number, name in sorted(numbered):
                if kept == 2 * per_class:
                    break
                content = archive.read(name)  # zipfile checks each member's CRC-32 as it reads
                problem = image_problem(io.BytesIO(content))
                if problem:
                    skipped.append(f"{name}: {problem}")
                    continue
                relative = f"{CAT_DOG_SPLITS[kept // per_class]}/{class_name}/{class_name}.{number}.jpg"
                (partial / relative).parent.mkdir(parents=True, exist_ok=True)
                (partial / relative).write_bytes(content)
                sums.append(f"{hashlib.sha256(content).hexdigest()}  ./{relative}")
                kept += 1
            if kept < 2 * per_class:
                raise ValueError(f"{zip_path.name} holds only {kept} readable {class_name} photos, "
                                 f"{2 * per_class} are needed")
    (partial / SUMS_FILE).write_text("\n".join(sums) + "\n")
    return skipped


def cat_dog_root() -> Path:
    """The folder holding cats vs dogs as `{train,test}/{cat,dog}/*.jpg`, 1,000 photos per class and split.

    Sources, in order (the catalog's): the local cache `data/cat_dog/` (or `$COURSE_DATA_DIR/cat_dog/`); the
    offline mirror `$COURSE_DATA_MIRROR/cat_dog/`, used in place (nothing copied); Microsoft's
    `kagglecatsanddogs_5340.zip` (cached as `data/kagglecatsanddogs_5340.zip`, else downloaded),
    split by `extract_cat_dog` into the cache.

    What is verified: the zip's sha256 against the catalog (and each member's CRC-32 on extraction);
    for the cache and the mirror, that their SHA256SUMS lists exactly the files present, with 1,000
    per class and split, and that every file matches its hash (see `check_sums_folder`).
    What is not: the mirror's SHA256SUMS itself. The mirror is a resized subset made for this course
    and has no published checksum, so its hashes prove the photos are intact, not where they came
    from; and the cache's SHA256SUMS was written from bytes that came out of the verified zip.
    """
    entry = catalog.dataset(CAT_DOG)
    tried = []
    for place in catalog.folder_locations(CAT_DOG, data_dir(), mirror_dir()):
        try:
            check_sums_folder(Path(place.where), entry.folder.per_class)
            return Path(place.where)
        except (OSError, ValueError) as err:  # ChecksumError is a ValueError
            tried.append(f"{place.kind} {place.where}: {err}")
    if mirror_dir() is None:
        tried.append(f"mirror: ${MIRROR_ENV} is not set")
    archive = entry.files[0]
    zip_path = data_dir() / archive.cache
    try:
        fetch(CAT_DOG, archive.cache)
        return extract_cat_dog(zip_path, data_dir() / entry.folder.path, entry.folder.per_class)
    except DataNotFoundError as err:
        nested = str(err).replace(HOW_TO_FIX, "").strip().replace("\n", "\n    ")
        tried.append(f"Microsoft's zip: {nested}")
    except CacheError:
        raise  # a full or read-only cache: its own one-line error, not a reason to download
    except (OSError, ValueError, zipfile.BadZipFile) as err:
        tried.append(f"extracting {zip_path}: {err}")
    lines = "\n".join(f"  - {line}" for line in tried)
    raise DataNotFoundError(f"could not find the cats-vs-dogs photos. Tried, in order:\n{lines}\n{HOW_TO_FIX}\n"
                            f"  or put {archive.cache} (from {archive.urls[0]}) into {data_dir()}")


# --- checked image folders ---------------------------------------------------------------------------------

def image_problem(file: str | Path | IO[bytes], decode: bool = True) -> str | None:
    """Why `file` is not a usable image ("not an image", "unreadable: ..."), or None when it is fine.

    `decode=True` decodes the pixels (JPEGs at 1/8 scale, which is cheap but still reads every
    byte), so truncated files are caught; `decode=False` only reads the header.
    """
    try:
        with Image.open(file) as image:
            if decode:
                image.draft("RGB", (1, 1))  # JPEG only: decode at the smallest scale the format allows
                image.load()
            else:
                image.verify()
    except UnidentifiedImageError:
        return "not an image"
    except Exception as err:  # noqa: BLE001 - Pillow raises OSError, SyntaxError, ValueError, ... for damaged files
        return f"unreadable ({type(err).__name__}: {err})"
    return None


@dataclass
class FolderReport:
    """What `check_image_folder` found: the readable images per class and every file it rejected, with why."""

    root: Path
    images: dict[str, list[Path]]
    rejected: list[tuple[Path, str]]

    @property
    def class_names(self) -> list[str]:
        return list(self.images)

    @property
    def counts(self) -> dict[str, int]:
        return {name: len(files) for name, files in self.images.items()}

    def __str__(self) -> str:
        counts = ", ".join(f"{name} {count}" for name, count in self.counts.items())
        lines = [f"{self.root}: {counts} readable images; {len(self.rejected)} files rejected"]
        lines += [f"  {path.relative_to(self.root)}: {why}" for path, why in self.rejected[:20]]
        if len(self.rejected) > 20:
            lines.append(f"  ... and {len(self.rejected) - 20} more")
        return "\n".join(lines)


def check_image_folder(root: str | Path, class_names: Sequence[str] | None = None,
                       decode: bool = True) -> FolderReport:
    """Check `root/<class>/<image>` (the ImageFolder layout) and report every file that is not a readable image.

    Raises FileNotFoundError for a missing folder or a missing class folder (when `class_names` is
    given), ValueError for an unexpected class folder or a class with no readable image.
    """
    root = Path(root).expanduser()
    layout = f"expected the ImageFolder layout {root}/<class name>/<image files>"
    if not root.is_dir():
        raise FileNotFoundError(f"no folder {root}; {layout}")
    found = sorted(entry.name for entry in os.scandir(root) if entry.is_dir())  # as ImageFolder finds classes
    if class_names is not None:
        missing = [name for name in class_names if name not in found]
        if missing:
            raise FileNotFoundError(f"{root} has no folder for class {', '.join(missing)}; {layout} "
                                    f"with classes {', '.join(class_names)}")
        extra = [name for name in found if name not in class_names]
        if extra:
            raise ValueError(f"{root} has folders {', '.join(extra)} that are not classes "
                             f"({', '.join(class_names)}); move them out, or ImageFolder treats them as classes")
    if not found:
        raise FileNotFoundError(f"{root} has no class folders; {layout}")
    images, rejected = {}, []
    for name in found:
        files = sorted(path for path in (root / name).rglob("*") if path.is_file() and not is_os_file(path))
        problems = [(path, image_problem(path, decode)) for path in files]
        rejected += [(path, why) for path, why in problems if why]
        images[name] = [path for path, why in problems if not why]
        if not images[name]:
            raise ValueError(f"class folder {root / name} holds no readable image"
                             + (f" ({len(files)} files rejected: first {files[0].name})" if files else " (empty)"))
    return FolderReport(root, images, rejected)


def image_folder(root: str | Path, transform=None, class_names: Sequence[str] | None = None,
                 report: FolderReport | None = None) -> datasets.ImageFolder:
    """A torchvision ImageFolder over the files `check_image_folder` accepts; rejected files are named in a warning.

    Pass the `report` of an earlier check to skip checking again.
    """
    if report is None:
        report = check_image_folder(root, class_names)
    elif Path(root).expanduser() != report.root:
        raise ValueError(f"the report is for {report.root}, not {root}")
    if report.rejected:
        warnings.warn(f"skipping {len(report.rejected)} files that are not readable images:\n{report}", stacklevel=2)
    accepted = {path for files in report.images.values() for path in files}
    return datasets.ImageFolder(str(report.root), transform=transform, loader=open_rgb,  # as predict reads photos
                                is_valid_file=lambda path: Path(path) in accepted)
