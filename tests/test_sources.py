import dataclasses
import errno
import gzip
import hashlib
import io
import os
import shutil
import stat
import subprocess
import sys
import urllib.request

import pytest

from course_utils.datasets import catalog, sources
from course_utils.datasets.sources import Candidate, ChecksumError, DataNotFoundError


def _writer(payload: bytes):
    def fetch(dest):
        dest.write_bytes(payload)
    return fetch


def _failing(dest):
    raise OSError("network unreachable")


def _md5_check(expected):
    return lambda path: sources.verify(path, expected)


def test_first_working_source_wins_and_is_verified(tmp_path):
    good = b"real bytes"
    expected = __import__("hashlib").md5(good).hexdigest()
    target = tmp_path / "cache" / "file"
    sources.materialise(target, [Candidate("mirror", _failing), Candidate("download", _writer(good))],
                        _md5_check(expected))
    assert target.read_bytes() == good
    assert [p.name for p in target.parent.iterdir()] == ["file"]  # no temporary left behind


def test_nothing_works_lists_every_place_tried(tmp_path):
    target = tmp_path / "file"
    with pytest.raises(DataNotFoundError) as err:
        sources.materialise(target, [Candidate("mirror /m/file.gz", _failing),
                                     Candidate("download https://x/file.gz", _writer(b"wrong"))],
                            _md5_check("0" * 32))
    message = str(err.value)
    assert "local cache" in message and "mirror /m/file.gz" in message and "download https://x/file.gz" in message
    assert "network unreachable" in message and "md5 is" in message
    assert sources.MIRROR_ENV in message  # says how to fix it
    assert not target.exists()


def test_corrupt_cache_is_kept_aside_not_deleted(tmp_path):
    good = b"good"
    expected = __import__("hashlib").md5(good).hexdigest()
    target = tmp_path / "file"
    target.write_bytes(b"corrupted")
    with pytest.warns(UserWarning, match="failed its checksum"):
        sources.materialise(target, [Candidate("mirror", _writer(good))], _md5_check(expected))
    assert target.read_bytes() == good
    assert (tmp_path / "file.corrupt").read_bytes() == b"corrupted"


def test_truncated_gzip_is_reported(tmp_path):
    archive = tmp_path / "x.gz"
    with gzip.open(archive, "wb") as f:
        f.write(b"a" * 10_000)
    archive.write_bytes(archive.read_bytes()[:20])
    with pytest.raises(ChecksumError, match="cannot read x.gz"):
        sources.copy_from(archive, gunzip=True)(tmp_path / "out")


def test_copy_from_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError):
        sources.copy_from(tmp_path / "absent")(tmp_path / "out")


def test_data_dir_and_mirror_follow_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv(sources.DATA_DIR_ENV, str(tmp_path))
    monkeypatch.delenv(sources.MIRROR_ENV, raising=False)
    assert sources.data_dir() == tmp_path
    assert sources.mirror_dir() is None
    monkeypatch.setenv(sources.MIRROR_ENV, str(tmp_path / "m"))
    assert sources.mirror_dir() == tmp_path / "m"
    monkeypatch.delenv(sources.DATA_DIR_ENV)
    assert sources.data_dir() == sources.PROJECT_ROOT / "data"


def test_parallel_preparations_do_not_trip_over_each_other(tmp_path):
    import hashlib
    import threading
    import time

    payload = b"x" * 100_000
    expected = hashlib.md5(payload).hexdigest()

    def slow_writer(dest):
        with open(dest, "wb") as f:
            for i in range(0, len(payload), 10_000):
                f.write(payload[i:i + 10_000])
                f.flush()
                time.sleep(0.01)

    target = tmp_path / "cache" / "file"
    errors = []

    def prepare():
        try:
            sources.materialise(target, [Candidate("mirror", slow_writer)], _md5_check(expected))
        except Exception as err:  # noqa: BLE001 - every thread's error is asserted on below
            errors.append(err)

    threads = [threading.Thread(target=prepare) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and target.read_bytes() == payload
    assert [p.name for p in target.parent.iterdir()] == ["file"]


def test_fetch_gets_a_path_that_does_not_exist_yet(tmp_path):
    """Downloaders that skip a file already there (torchvision's download_url) must still download."""
    seen = []

    def fetch(dest):
        assert not dest.exists()
        seen.append(dest)
        dest.write_bytes(b"fresh")

    target = tmp_path / "file"
    sources.materialise(target, [Candidate("download", fetch)], _md5_check(hashlib.md5(b"fresh").hexdigest()))
    assert target.read_bytes() == b"fresh" and seen[0].name == "file" and seen[0].parent != tmp_path
    assert [p.name for p in tmp_path.iterdir()] == ["file"]  # its private folder is gone


def test_fetch_that_writes_nothing_is_reported(tmp_path):
    with pytest.raises(DataNotFoundError, match="silent: the fetch function wrote no file"):
        sources.materialise(tmp_path / "file", [Candidate("silent", lambda dest: None)], _md5_check("0" * 32))
    assert list(tmp_path.iterdir()) == []


def test_materialised_file_has_ordinary_permissions(tmp_path):
    good = b"shared"
    target = tmp_path / "file"
    old = os.umask(0o022)
    try:
        sources.materialise(target, [Candidate("mirror", _writer(good))],
                            _md5_check(hashlib.md5(good).hexdigest()))
    finally:
        os.umask(old)
    assert stat.S_IMODE(target.stat().st_mode) & 0o044 == 0o044  # readable by group and others, as the umask allows


def test_two_corruptions_keep_both_files(tmp_path):
    good = b"good"
    expected = hashlib.md5(good).hexdigest()
    target = tmp_path / "file"
    for damaged in (b"first damage", b"second damage"):
        target.write_bytes(damaged)
        with pytest.warns(UserWarning, match="failed its checksum"):
            sources.materialise(target, [Candidate("mirror", _writer(good))], _md5_check(expected))
    assert target.read_bytes() == good
    assert (tmp_path / "file.corrupt").read_bytes() == b"first damage"
    assert (tmp_path / "file.corrupt2").read_bytes() == b"second damage"


def test_set_aside_files_and_folders(tmp_path):
    (tmp_path / "folder").mkdir()
    (tmp_path / "folder" / "x").write_text("1")
    (tmp_path / "folder.corrupt").mkdir()
    assert sources.set_aside(tmp_path / "folder") == tmp_path / "folder.corrupt2"
    assert (tmp_path / "folder.corrupt2" / "x").read_text() == "1" and not (tmp_path / "folder").exists()


def test_verify_accepts_one_digest_or_several(tmp_path):
    path = tmp_path / "file"
    path.write_bytes(b"content")
    right = hashlib.sha256(b"content").hexdigest()
    sources.verify(path, right, "sha256")
    sources.verify(path, ["0" * 64, right], "sha256")  # either published file is accepted
    sources.verify(path, iter([right.upper()]), "sha256")  # any iterable, any case
    with pytest.raises(ChecksumError, match=f"sha256 is {right}, expected {'0' * 64} or {'1' * 64}"):
        sources.verify(path, ["0" * 64, "1" * 64], "sha256")
    with pytest.raises(ValueError, match="no expected sha256 digest"):
        sources.verify(path, [], "sha256")


def test_download_writes_the_response(tmp_path, monkeypatch):
    requests = []

    def fake_urlopen(request, timeout):
        requests.append((request.full_url, timeout))
        return io.BytesIO(b"downloaded")

    monkeypatch.setattr(urllib.request, "urlopen", fake_urlopen)
    sources.download("https://example.org/file", timeout=5)(tmp_path / "out")
    assert (tmp_path / "out").read_bytes() == b"downloaded"
    assert requests == [("https://example.org/file", 5)]


BLOCK_TORCH = """
import importlib.abc, sys
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in ('torch', 'torchvision', 'numpy', 'PIL'):
            raise ImportError('blocked by the test: ' + name)
sys.meta_path.insert(0, Block())
"""


def test_catalog_sources_and_doctor_import_without_torch():
    """The doctor must run where torch is broken: the catalog and sources are stdlib only."""
    code = BLOCK_TORCH + ("import course_utils.datasets.catalog, course_utils.datasets.sources, course_utils.paths, "
                          "course_utils.tools.doctor\nprint(len(course_utils.datasets.catalog.DATASETS))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                          cwd=sources.PROJECT_ROOT)
    assert done.returncode == 0, done.stderr
    assert int(done.stdout) == len(catalog.DATASETS)
    blocked = subprocess.run([sys.executable, "-c", BLOCK_TORCH + "import torch"], capture_output=True, text=True)
    assert "blocked by the test" in blocked.stderr  # the hook does block: the check above can fail


def test_project_folders_are_defined_once():
    """sources.PROJECT_ROOT (which lessons import) is course_utils.paths', the checkout holding the lessons."""
    from course_utils import paths

    assert sources.PROJECT_ROOT is paths.PROJECT_ROOT
    assert (paths.PROJECT_ROOT / "course_utils" / "paths.py").is_file()
    assert paths.NOTEBOOKS == paths.PROJECT_ROOT / "notebooks" and any(paths.NOTEBOOKS.glob("[0-9]*.ipynb"))
    assert paths.WORKSPACE.parent == paths.RUNS.parent == paths.PROJECT_ROOT
    assert paths.WORKSPACE.name == "workspace" and paths.RUNS.name == "runs"


def test_unknown_dataset_or_file_is_named():
    with pytest.raises(ValueError, match="unknown dataset 'cifar10'; choose one of mnist"):
        catalog.dataset("cifar10")
    with pytest.raises(ValueError, match="has no file 'x.txt'"):
        catalog.file_entry("anna", "x.txt")


def test_idx_files_are_cached_where_torchvision_reads_them():
    from torchvision import datasets

    from course_utils.datasets import mnist

    for name, class_name in mnist.TORCHVISION_CLASS.items():
        assert getattr(datasets, class_name).__name__ == class_name
        assert all(entry.cache.startswith(f"{class_name}/raw/") for entry in catalog.DATASETS[name].files)


def test_download_gunzips_when_asked(tmp_path, monkeypatch):
    payload = gzip.compress(b"idx bytes")
    monkeypatch.setattr(urllib.request, "urlopen", lambda request, timeout: io.BytesIO(payload))
    sources.download("https://example.org/file.gz", gunzip=True)(tmp_path / "file")
    assert (tmp_path / "file").read_bytes() == b"idx bytes"
    assert [p.name for p in tmp_path.iterdir()] == ["file"]  # the .gz is gone


def test_fetch_takes_the_first_working_source_of_the_catalog(tmp_path, monkeypatch):
    """One path for every dataset file: mirror, Debian, then downloads, in the catalog's order."""
    monkeypatch.setenv(sources.DATA_DIR_ENV, str(tmp_path / "cache"))
    monkeypatch.setenv(sources.MIRROR_ENV, str(tmp_path / "mirror"))
    monkeypatch.setattr(catalog, "DEBIAN_ROOT", tmp_path / "debian")
    entry = catalog.DATASETS["fashion_mnist"].files[0]
    monkeypatch.setitem(catalog.DATASETS, "fashion_mnist", dataclasses.replace(
        catalog.DATASETS["fashion_mnist"], files=(dataclasses.replace(
            entry, digests=(hashlib.md5(b"debian").hexdigest(),)),)))
    where = [c.where for c in sources.candidates("fashion_mnist", entry.cache)]
    assert [w.split()[0] for w in where] == ["mirror", "Debian", "download"]
    debian = tmp_path / "debian" / entry.debian
    debian.parent.mkdir(parents=True)
    debian.write_bytes(gzip.compress(b"debian"))
    path = sources.fetch("fashion_mnist", entry.cache)
    assert path == tmp_path / "cache" / entry.cache and path.read_bytes() == b"debian"


def test_sample_photos_come_verified_from_the_mirror(mirror, empty_cache, monkeypatch):
    monkeypatch.setenv(sources.MIRROR_ENV, str(mirror))
    for entry in catalog.DATASETS["images"].files:
        path = sources.fetch("images", entry.cache.rsplit("/", 1)[-1])
        assert path == empty_cache / entry.cache
        assert sources.file_digest(path, "sha256") == entry.digests[0]


# --- the cache itself failing: a full disk, a read-only folder, a folder in the way (issue 25) ---------------

def one_clear_error(excinfo) -> str:
    """The message of an error that stands alone: one line, no chained exception printed above it."""
    err = excinfo.value
    assert err.__cause__ is None and (err.__context__ is None or err.__suppress_context__), "a chained traceback"
    message = str(err)
    assert "\n" not in message, message
    return message


def _no_space(*args, **kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def test_full_disk_while_caching_blames_the_cache(mirror, empty_cache, monkeypatch):
    """The mirror is healthy and a download would fill the same disk: the error names the cache and the fix."""
    monkeypatch.setenv(sources.MIRROR_ENV, str(mirror))
    downloads = []
    monkeypatch.setattr(urllib.request, "urlopen", lambda request, timeout: downloads.append(request.full_url))
    monkeypatch.setattr(shutil, "copyfileobj", _no_space)  # the disk fills up while the file is copied
    with pytest.raises(OSError) as excinfo:
        sources.fetch("images", "samoyed.jpg")
    message = one_clear_error(excinfo)
    assert f"dataset cache {empty_cache / 'images'}" in message and "no space left on device" in message
    assert "free some space" in message and f"${sources.DATA_DIR_ENV}" in message
    rest = message.replace(str(empty_cache), "")
    assert "mirror" not in rest and "download" not in rest and "internet" not in rest
    assert isinstance(excinfo.value, sources.CacheError) and excinfo.value.errno == errno.ENOSPC
    assert downloads == []  # not tried: it would fill the same disk
    assert list((empty_cache / "images").iterdir()) == []  # no half-written file or temporary folder left


def test_read_only_cache_is_named_with_the_fix(mirror, empty_cache, monkeypatch):
    """Simulated (tests run as root, who writes anyway): every folder creation fails as on a read-only disk."""
    monkeypatch.setenv(sources.MIRROR_ENV, str(mirror))

    def read_only(path, *args, **kwargs):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(path))

    monkeypatch.setattr(os, "mkdir", read_only)
    with pytest.raises(OSError) as excinfo:
        sources.fetch("images", "samoyed.jpg")
    message = one_clear_error(excinfo)
    assert f"dataset cache {empty_cache / 'images'}" in message and "read-only file system" in message
    assert f"${sources.DATA_DIR_ENV}" in message and "writable" in message
    assert isinstance(excinfo.value, sources.CacheError) and excinfo.value.errno == errno.EROFS


def test_unwritable_cache_folder_is_named_with_the_fix(mirror, empty_cache, monkeypatch):
    monkeypatch.setenv(sources.MIRROR_ENV, str(mirror))
    folder = empty_cache / "images"
    folder.mkdir(parents=True)
    folder.chmod(0o500)
    try:
        if os.access(folder, os.W_OK):  # root (with CAP_DAC_OVERRIDE, as in CI) writes into a 0o500 folder anyway
            pytest.skip("chmod does not stop this user's writes; test_read_only_cache_is_named_with_the_fix "
                        "simulates a read-only cache instead")
        with pytest.raises(OSError) as excinfo:
            sources.fetch("images", "samoyed.jpg")
    finally:
        folder.chmod(0o700)
    message = one_clear_error(excinfo)
    assert f"dataset cache {folder}" in message and "permission denied" in message
    assert f"${sources.DATA_DIR_ENV}" in message
    assert isinstance(excinfo.value, sources.CacheError) and excinfo.value.errno == errno.EACCES


def test_a_folder_where_the_cached_file_belongs_is_named(tmp_path):
    target = tmp_path / "cache" / "file"
    (target / "inside").mkdir(parents=True)
    with pytest.raises(OSError) as excinfo:
        sources.materialise(target, [Candidate("mirror", _writer(b"x"))], _md5_check(hashlib.md5(b"x").hexdigest()))
    message = one_clear_error(excinfo)
    assert f"{target} is a folder" in message and f"remove it (rm -r {target})" in message
    assert isinstance(excinfo.value, sources.CacheError)
    assert (target / "inside").is_dir()  # the learner's folder is not deleted for them


def test_an_unreadable_cached_file_is_named_with_the_fix(tmp_path):
    """Simulated (root reads a 0o000 file): reading the cached file fails as without permission."""
    target = tmp_path / "file"
    target.write_bytes(b"cached")

    def unreadable(path):
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(path))

    with pytest.raises(OSError) as excinfo:
        sources.materialise(target, [Candidate("mirror", _writer(b"x"))], unreadable)
    message = one_clear_error(excinfo)
    assert f"cannot read {target} in the dataset cache: permission denied; fix its permissions" in message
    assert isinstance(excinfo.value, sources.CacheError) and target.read_bytes() == b"cached"


def test_a_corrupt_file_in_a_read_only_cache_is_one_error(tmp_path, monkeypatch):
    """Setting the corrupt file aside fails too: one error about the cache, not two chained tracebacks."""
    target = tmp_path / "file"
    target.write_bytes(b"corrupted")

    def read_only(source, destination):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(source))

    monkeypatch.setattr(os, "replace", read_only)
    with pytest.raises(OSError) as excinfo:
        sources.materialise(target, [Candidate("mirror", _writer(b"good"))],
                            _md5_check(hashlib.md5(b"good").hexdigest()))
    message = one_clear_error(excinfo)
    assert f"dataset cache {tmp_path}: read-only file system" in message and target.read_bytes() == b"corrupted"


def test_an_unreadable_gzip_is_one_error(tmp_path):
    archive = tmp_path / "x.gz"
    archive.write_bytes(b"not gzip at all")
    with pytest.raises(ChecksumError) as excinfo:
        sources.copy_from(archive, gunzip=True)(tmp_path / "out")
    assert "cannot read x.gz" in one_clear_error(excinfo)
