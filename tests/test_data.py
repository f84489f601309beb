import gzip
import os
import re
import shutil
import subprocess
import sys

import pytest
import torch

from course_utils.datasets import catalog, mnist, sources
from course_utils.datasets.sources import DataNotFoundError


def _offline(url, timeout=60, gunzip=False):
    def fetch(dest):
        raise OSError("offline (test)")
    return fetch


@pytest.fixture(scope="module")
def mnist_cache(tmp_path_factory, mirror):
    """MNIST prepared once from the mirror into a private cache."""
    cache = tmp_path_factory.mktemp("cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(sources.DATA_DIR_ENV, str(cache))
        mp.setenv(sources.MIRROR_ENV, str(mirror))
        mp.setattr(sources, "download", _offline)
        mnist.prepare("mnist")
        yield mp, cache


def test_prepare_fills_the_cache_with_verified_files(mnist_cache):
    _, cache = mnist_cache
    raw = cache / "MNIST" / "raw"
    for entry in catalog.DATASETS["mnist"].files:
        assert sources.file_digest(cache / entry.cache) == entry.digests[0]
        assert (cache / entry.cache).parent == raw


def test_load_tensors_shapes_range_and_labels(mnist_cache):
    images, labels = mnist.load_tensors("mnist", train=False)
    assert images.shape == (10_000, 1, 28, 28) and images.dtype == torch.float32
    assert images.min() == -1 and images.max() == 1
    assert labels.dtype == torch.int64 and set(labels.unique().tolist()) == set(range(10))


def test_load_tensors_reads_what_torchvision_reads_without_importing_it(mnist_cache):
    mp, cache = mnist_cache
    code = ("import sys\nfrom course_utils.datasets import mnist\nimages, labels = mnist.load_tensors('mnist', False)\n"
            "print(tuple(images.shape), 'torchvision' in sys.modules)")
    env = {**os.environ, sources.DATA_DIR_ENV: str(cache)}  # the module fixture's cache: nothing to fetch
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert done.stdout.split("\n")[0] == "(10000, 1, 28, 28) False", done.stderr[-2000:]
    for train in (True, False):
        images, labels = mnist.load_tensors("mnist", train)
        classic = mnist.torchvision_dataset("mnist", train)
        assert torch.equal(images, classic.data.unsqueeze(1).float() / 255 * 2 - 1)
        assert torch.equal(labels, classic.targets) and labels.dtype == classic.targets.dtype


@pytest.mark.parametrize("data, error", [(b"\x00\x00\x0d\x01\x00\x00\x00\x02ab", "not an IDX file of unsigned bytes"),
                                         (b"\x00\x00\x08\x02\x00\x00\x00\x02\x00\x00\x00\x02abc",
                                          "3 values after the header, its shape (2, 2) needs 4")])
def test_read_idx_names_the_file_that_is_not_what_it_should_be(tmp_path, data, error):
    path = tmp_path / "t10k-images-idx3-ubyte"
    path.write_bytes(data)
    with pytest.raises(ValueError, match=re.escape(f"{path}: {error}")):
        mnist.read_idx(path)
    path.write_bytes(b"\x00\x00\x08\x02\x00\x00\x00\x02\x00\x00\x00\x02abcd")
    assert mnist.read_idx(path).tolist() == [[97, 98], [99, 100]]


def test_fast_path_gives_the_same_tensors_as_the_classic_path(mnist_cache):
    fast = mnist.make_loaders("mnist", 256, val_fraction=0.1, train_subset=1000, seed=3, fast=True)
    classic = mnist.make_loaders("mnist", 256, val_fraction=0.1, train_subset=1000, seed=3, fast=False)
    (x_fast, y_fast), (x_classic, y_classic) = next(iter(fast["val_loader"])), next(iter(classic["val_loader"]))
    assert torch.equal(y_fast, y_classic)
    assert torch.allclose(x_fast, x_classic, atol=1e-6)
    assert sum(len(y) for _, y in fast["train_loader"]) == 1000
    assert sum(len(y) for _, y in classic["train_loader"]) == 1000
    assert fast["class_names"] == [str(d) for d in range(10)]


def test_corrupt_mirror_file_is_named_and_nothing_is_cached(tmp_path, monkeypatch, mirror):
    bad_mirror = tmp_path / "mirror" / "mnist"
    bad_mirror.mkdir(parents=True)
    for gz in (mirror / "mnist").glob("*.gz"):
        shutil.copy(gz, bad_mirror / gz.name)
    with gzip.open(bad_mirror / "t10k-labels-idx1-ubyte.gz", "wb") as f:
        f.write(b"\x00" * 10_008)  # right size, wrong content
    monkeypatch.setenv(sources.MIRROR_ENV, str(tmp_path / "mirror"))
    monkeypatch.setenv(sources.DATA_DIR_ENV, str(tmp_path / "cache"))
    monkeypatch.setattr(sources, "download", _offline)
    with pytest.raises(DataNotFoundError) as err:
        mnist.prepare("mnist")
    message = str(err.value)
    assert "t10k-labels-idx1-ubyte" in message and "md5 is" in message
    assert "offline (test)" in message and "download https://" in message
    assert not (tmp_path / "cache" / "MNIST" / "raw" / "t10k-labels-idx1-ubyte").exists()


def test_missing_everything_lists_every_source(empty_cache, monkeypatch, tmp_path):
    monkeypatch.setenv(sources.MIRROR_ENV, str(tmp_path / "nowhere"))
    monkeypatch.setattr(catalog, "DEBIAN_ROOT", tmp_path / "no-debian")
    monkeypatch.setattr(sources, "download", _offline)
    with pytest.raises(DataNotFoundError) as err:
        mnist.prepare("fashion_mnist")
    message = str(err.value)
    for place in ("local cache", "mirror", "Debian package dataset-fashion-mnist", "download"):
        assert place in message
    assert "COURSE_DATA_MIRROR" in message


@pytest.mark.skipif(not (catalog.DEBIAN_ROOT / "fashion-mnist").is_dir(), reason="dataset-fashion-mnist not installed")
def test_fashion_mnist_comes_from_debian_without_a_mirror(empty_cache, monkeypatch):
    monkeypatch.delenv(sources.MIRROR_ENV, raising=False)
    monkeypatch.setattr(sources, "download", _offline)
    images, labels = mnist.load_tensors("fashion_mnist", train=False)
    assert images.shape == (10_000, 1, 28, 28)
    assert torch.bincount(labels).tolist() == [1000] * 10  # the test split is balanced


def test_unknown_dataset_name():
    with pytest.raises(ValueError, match="unknown dataset"):
        mnist.prepare("cifar10")


def test_split_indices_are_disjoint_complete_and_seeded():
    train, val = mnist.split_indices(1000, 0.2, seed=1)
    assert len(val) == 200 and len(train) == 800
    assert sorted(torch.cat([train, val]).tolist()) == list(range(1000))
    again, _ = mnist.split_indices(1000, 0.2, seed=1)
    other, _ = mnist.split_indices(1000, 0.2, seed=2)
    assert torch.equal(train, again) and not torch.equal(train, other)


@pytest.mark.parametrize("fraction", [0, 1, -0.1, 0.0001])
def test_split_rejects_fractions_that_empty_a_split(fraction):
    with pytest.raises(ValueError):
        mnist.split_indices(100, fraction, seed=0)


def test_subset_indices_bounds():
    assert len(mnist.subset_indices(100, 10, seed=0)) == 10
    assert len(mnist.subset_indices(100, None, seed=0)) == 100
    with pytest.raises(ValueError):
        mnist.subset_indices(100, 101, seed=0)


def test_tensor_batches_cover_every_sample_and_reshuffle():
    images = torch.arange(10).float().reshape(10, 1)
    labels = torch.arange(10)
    loader = mnist.TensorBatches(images, labels, batch_size=4, shuffle=True, seed=0)
    assert len(loader) == 3
    first = torch.cat([y for _, y in loader])
    second = torch.cat([y for _, y in loader])
    assert sorted(first.tolist()) == list(range(10)) and sorted(second.tolist()) == list(range(10))
    assert not torch.equal(first, second)
    for x, y in loader:
        assert torch.equal(x.squeeze(1).long(), y)  # images stay paired with their labels


def test_tensor_batches_reject_mismatched_lengths():
    with pytest.raises(ValueError):
        mnist.TensorBatches(torch.zeros(3, 1), torch.zeros(4), batch_size=2)


def test_tensor_batches_answer_like_a_data_loader():
    images, labels = torch.randn(10, 1, 2, 2), torch.arange(10)
    fast = mnist.TensorBatches(images, labels, batch_size=4)
    classic = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(images, labels), batch_size=4)
    for loader in (fast, classic):  # what tutorials read from a loader
        assert len(loader.dataset) == 10 and loader.batch_size == 4 and len(loader) == 3
    x, y = fast.dataset[3]
    assert torch.equal(x, images[3]) and y == 3


@pytest.mark.parametrize("batch_size", [0, 2.5, True])
def test_tensor_batches_reject_bad_batch_sizes(batch_size):
    with pytest.raises(ValueError, match="batch_size must be a whole number >= 1"):
        mnist.TensorBatches(torch.zeros(3, 1), torch.zeros(3), batch_size=batch_size)
