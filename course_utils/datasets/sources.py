"""Where datasets come from: the local cache, an offline mirror, system packages, or a download. Stdlib only."""

from __future__ import annotations

import errno
import gzip
import hashlib
import os
import shutil
import tempfile
import urllib.request
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from course_utils.datasets import catalog
from course_utils.paths import PROJECT_ROOT  # also imported from here by lessons and modules: keep the name

MIRROR_ENV = "COURSE_DATA_MIRROR"
DATA_DIR_ENV = "COURSE_DATA_DIR"

MIRROR_FIX = f"point ${MIRROR_ENV} at an offline mirror folder (see data/README.md)"  # also the doctor's advice
HOW_TO_FIX = (
    "How to fix: connect to the internet and run again (the file is downloaded and verified), or\n"
    f"  {MIRROR_FIX}, e.g.\n"
    f"  export {MIRROR_ENV}=/path/to/datasets"
)


class DataNotFoundError(FileNotFoundError):
    """No source could provide a dataset file; the message lists every place tried."""


class ChecksumError(ValueError):
    """A file's content is not the content the dataset publishes."""


class CacheError(OSError):
    """The local cache cannot take or give a file (disk full, read-only, a folder in the way): one line with the fix."""

    def __init__(self, message: str, code: int | None = None, filename: str | Path | None = None):
        super().__init__(message)
        self.errno, self.filename = code, None if filename is None else str(filename)

    def __str__(self) -> str:
        return self.args[0]  # OSError's own would print "[Errno 28] None: path" around the message


WRITE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EFBIG})  # only writes raise these
_FIXES = {
    errno.ENOSPC: "free some space on that disk, or point ${env} at a folder on a disk with room",
    errno.EDQUOT: "free some of your disk quota, or point ${env} at a folder on a disk with room",
    errno.EFBIG: "point ${env} at a folder on a disk that takes large files",
    errno.EROFS: "point ${env} at a writable folder",
    errno.EACCES: "make it writable for you, or point ${env} at a folder you can write",
}
_FIXES[errno.EPERM] = _FIXES[errno.EACCES]


@dataclass(frozen=True)
class Candidate:
    """One place a file may come from: a description for error messages and a fetch function."""

    where: str
    fetch: Callable[[Path], None]  # writes the file to the given path or raises


def data_dir() -> Path:
    """The local dataset cache: $COURSE_DATA_DIR, else the project's data/ folder."""
    return Path(os.environ.get(DATA_DIR_ENV) or PROJECT_ROOT / "data").expanduser()


def mirror_dir() -> Path | None:
    """The offline mirror folder named by $COURSE_DATA_MIRROR, or None when unset."""
    value = os.environ.get(MIRROR_ENV)
    return Path(value).expanduser() if value else None


def is_cache_failure(err: BaseException, folder: Path) -> bool:
    """Whether `err` is the cache folder `folder` failing to take a file, not a source failing to give one."""
    if not isinstance(err, OSError) or err.errno is None:
        return False
    if err.errno in WRITE_ERRNOS:  # the course writes nowhere but the cache
        return True
    return err.errno in (errno.EACCES, errno.EPERM) and err.filename is not None \
        and Path(os.fsdecode(err.filename)).is_relative_to(folder)


def _cause(err: OSError) -> str:
    """The operating system's words for an error ("no space left on device"), without errno and path."""
    return os.strerror(err.errno).lower() if err.errno else str(err)


def cache_error(folder: Path, err: OSError) -> CacheError:
    """A CacheError naming the cache folder that could not be written, the real cause and the fix."""
    fix = _FIXES.get(err.errno, "fix that folder, or point ${env} at another one").format(env=DATA_DIR_ENV)
    return CacheError(f"cannot write into the dataset cache {folder}: {_cause(err)}; {fix} "
                      f"(export {DATA_DIR_ENV}=/path/to/folder)", err.errno, err.filename)


def file_digest(path: Path, algorithm: str = "md5") -> str:
    """Hex digest of a file's bytes."""
    digest = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verify(path: Path, expected: str | Iterable[str], algorithm: str = "md5") -> None:
    """Raise ChecksumError unless the file's digest equals `expected`, or one of them when several are given.

    Several digests are for a dataset published as more than one file (e.g. an archive and a repack).
    """
    accepted = [expected] if isinstance(expected, str) else list(expected)
    if not accepted:
        raise ValueError(f"no expected {algorithm} digest given for {path}; pass at least one")
    actual = file_digest(path, algorithm)
    if actual not in {digest.lower() for digest in accepted}:
        raise ChecksumError(f"{algorithm} is {actual}, expected {' or '.join(accepted)} "
                            "(file corrupt or not this dataset)")


def set_aside(path: Path) -> Path:
    """Rename a file or folder that failed its checks to `<name>.corrupt` (or .corrupt2, ...): never delete data."""
    for number in range(1, 100):
        target = path.with_name(f"{path.name}.corrupt{number if number > 1 else ''}")
        if not target.exists():  # os.replace would overwrite an earlier .corrupt file
            os.replace(path, target)
            return target
    raise FileExistsError(f"too many {path.name}.corrupt* copies in {path.parent}; remove the ones you do not need")


def copy_from(source: Path, gunzip: bool = False) -> Callable[[Path], None]:
    """A fetch function that copies (and optionally decompresses) a local file."""

    def fetch(dest: Path) -> None:
        if not source.is_file():
            raise FileNotFoundError("no such file")
        opener = gzip.open if gunzip else open
        with open(dest, "wb") as out:  # outside the try: the cache's errors are not the source's
            try:
                with opener(source, "rb") as src:
                    shutil.copyfileobj(src, out)
            except (OSError, EOFError) as err:  # gzip raises these for truncated archives
                if isinstance(err, OSError) and err.errno in WRITE_ERRNOS:
                    raise  # a full disk while writing: materialise reports it as the cache's
                raise ChecksumError(f"cannot read {source.name}: {err}") from None  # err's words are in it

    return fetch


def download(url: str, timeout: float = 60, gunzip: bool = False) -> Callable[[Path], None]:
    """A fetch function that downloads `url` to the given path (a .gz unpacked when `gunzip`); the caller checks it."""

    def fetch(dest: Path) -> None:
        raw = dest.with_name(dest.name + ".gz") if gunzip else dest
        request = urllib.request.Request(url, headers={"User-Agent": "course-utils"})
        with urllib.request.urlopen(request, timeout=timeout) as response, open(raw, "wb") as out:
            shutil.copyfileobj(response, out)
        if gunzip:
            try:
                copy_from(raw, gunzip=True)(dest)
            finally:
                raw.unlink(missing_ok=True)

    return fetch


def candidates(name: str, cache: str | None = None) -> list[Candidate]:
    """Every source of one file of dataset `name` (see the catalog), in the order tried after the local cache."""
    entry = catalog.file_entry(name, cache)
    index = catalog.dataset(name).files.index(entry)
    found = []
    for place in catalog.file_locations(name, data_dir(), mirror_dir()):
        for path in place.items[index] if place.kind != "local cache" else ():
            if place.kind == "download":
                found.append(Candidate(f"download {path}", download(path, gunzip=entry.gunzip)))
            else:
                label = "mirror" if place.kind == "mirror" else f"Debian package {catalog.dataset(name).debian_package}"
                found.append(Candidate(f"{label} {path}", copy_from(Path(path), gunzip=entry.gunzip)))
    return found


def fetch(name: str, cache: str | None = None) -> Path:
    """The verified file `cache` of dataset `name` in the local cache, taken from its first source that works."""
    entry = catalog.file_entry(name, cache)
    return materialise(data_dir() / entry.cache, candidates(name, cache),
                       lambda path: verify(path, entry.digests, entry.algorithm))


def materialise(target: Path, candidates: list[Candidate], check: Callable[[Path], None]) -> Path:
    """Make `target` exist and pass `check`, trying the cache then each candidate in order.

    A cached file that fails its check is kept beside the target as `*.corrupt`
    (or .corrupt2, ...), never deleted.
    Every new file is written to a temporary name and renamed into place only once verified. Each fetch
    function gets a path that does not exist yet, in a folder of its own.
    """
    tried: list[str] = []
    if target.is_dir():  # hashing it would fail with a bare IsADirectoryError from deep inside
        raise CacheError(f"{target} is a folder, but the dataset file {target.name} belongs there; "
                         f"remove it (rm -r {target}) and run again", errno.EISDIR, target)
    if target.exists():
        try:
            check(target)
            return target
        except ChecksumError as err:
            try:
                corrupt = set_aside(target)
            except OSError as move_err:  # e.g. a read-only cache: one error, not two chained tracebacks
                raise cache_error(target.parent, move_err) from None
            warnings.warn(f"{target} failed its checksum ({err}); kept as {corrupt.name}", stacklevel=2)
            tried.append(f"local cache {target}: {err} (moved to {corrupt.name})")
        except OSError as err:  # e.g. not readable: the cache's problem, which no other source solves
            raise CacheError(f"cannot read {target} in the dataset cache: {_cause(err)}; "
                             "fix its permissions or remove it", err.errno, target) from None
    else:
        tried.append(f"local cache {target}: not there")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise cache_error(target.parent, err) from None
    for candidate in candidates:
        if target.exists():  # another process (e.g. a parallel test worker) finished it meanwhile
            return target
        # a private folder of this call's own, so parallel preparations never share a half-written file, and
        # a path that does not exist yet: downloaders that skip existing files (torchvision's) still download,
        # and the file gets ordinary permissions (mkstemp would make it 0600)
        try:
            tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
        except OSError as err:
            raise cache_error(target.parent, err) from None
        partial = tmp / target.name
        try:
            try:
                candidate.fetch(partial)
                if not partial.is_file():
                    raise FileNotFoundError("the fetch function wrote no file")
                check(partial)
            except Exception as err:  # noqa: BLE001 - every failure is reported below, none is fatal on its own
                if is_cache_failure(err, target.parent):  # a full or read-only disk: every other source fails too
                    raise cache_error(target.parent, err) from None
                tried.append(f"{candidate.where}: {err}")
                continue
            try:
                os.replace(partial, target)
            except OSError as err:
                raise cache_error(target.parent, err) from None
            return target
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    lines = "\n".join(f"  - {line}" for line in tried)
    raise DataNotFoundError(f"could not get {target.name}. Tried, in order:\n{lines}\n{HOW_TO_FIX}")
