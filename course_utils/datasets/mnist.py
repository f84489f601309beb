"""MNIST and Fashion-MNIST: verified raw files, torchvision datasets, splits, and fast in-memory batches."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Callable, Iterator

import torch
from torch.utils.data import DataLoader, Subset, TensorDataset
from torchvision import datasets, transforms
from torchvision.datasets.utils import download_url

from course_utils.datasets.sources import Candidate, copy_from, data_dir, materialise, mirror_dir, verify

# md5 of the *decompressed* IDX files: mirrors and Debian recompress the .gz files, so the
# archives' own checksums differ between sources while the content must not.
RAW_MD5 = {
    "mnist": {
        "train-images-idx3-ubyte": "6bbc9ace898e44ae57da46a324031adb",
        "train-labels-idx1-ubyte": "a25bea736e30d166cdddb491f175f624",
        "t10k-images-idx3-ubyte": "2646ac647ad5339dbf082846283269ea",
        "t10k-labels-idx1-ubyte": "27ae3e4e09519cfbb04c329615203637",
    },
    "fashion_mnist": {
        "train-images-idx3-ubyte": "f4a8712d7a061bf5bd6d2ca38dc4d50a",
        "train-labels-idx1-ubyte": "9018921c3c673c538a1fc5bad174d6f9",
        "t10k-images-idx3-ubyte": "8181f5470baa50b63fa0f6fddb340f0a",
        "t10k-labels-idx1-ubyte": "15d484375f8d13e6eb1aabb0c3f46965",
    },
}
TORCHVISION_CLASS = {"mnist": datasets.MNIST, "fashion_mnist": datasets.FashionMNIST}
MIRROR_FOLDER = {"mnist": "mnist", "fashion_mnist": "fashion-mnist"}
DEBIAN_FOLDER = {"fashion_mnist": Path("/usr/share/datasets/fashion-mnist")}
CLASS_NAMES = {
    "mnist": [str(digit) for digit in range(10)],
    "fashion_mnist": ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                      "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"],
}
MEAN, STD = 0.5, 0.5  # maps pixel values from [0, 1] to [-1, 1]


def _check_name(name: str) -> None:
    if name not in RAW_MD5:
        raise ValueError(f"unknown dataset {name!r}; choose one of {', '.join(RAW_MD5)}")


def _download_from(url: str, md5_gz: str) -> Callable[[Path], None]:
    """A fetch function that downloads one .gz (checked against torchvision's md5) and unpacks it."""

    def fetch(dest: Path) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            filename = url.rsplit("/", 1)[-1]
            download_url(url, tmp, filename, md5=md5_gz)
            copy_from(Path(tmp) / filename, gunzip=True)(dest)

    return fetch


def candidates(name: str, filename: str) -> list[Candidate]:
    """Every source of one raw file, in the order they are tried after the local cache."""
    found = []
    mirror = mirror_dir()
    if mirror is not None:
        gz = mirror / MIRROR_FOLDER[name] / f"{filename}.gz"
        found.append(Candidate(f"mirror {gz}", copy_from(gz, gunzip=True)))
    if name in DEBIAN_FOLDER:
        gz = DEBIAN_FOLDER[name] / f"{filename}.gz"
        found.append(Candidate(f"Debian package dataset-fashion-mnist ({gz})", copy_from(gz, gunzip=True)))
    cls = TORCHVISION_CLASS[name]
    md5_gz = dict(cls.resources)[f"{filename}.gz"]
    for base in cls.mirrors:
        found.append(Candidate(f"download {base}{filename}.gz", _download_from(f"{base}{filename}.gz", md5_gz)))
    return found


def prepare(name: str) -> Path:
    """Make the four verified raw files exist in the cache; return the torchvision root folder."""
    _check_name(name)
    root = data_dir()
    raw = root / TORCHVISION_CLASS[name].__name__ / "raw"
    for filename, md5 in RAW_MD5[name].items():
        materialise(raw / filename, candidates(name, filename), lambda path, md5=md5: verify(path, md5))
    return root


def torchvision_dataset(name: str, train: bool, transform=None) -> datasets.MNIST:
    """The classic torchvision dataset (PIL image per sample), read from the verified cache."""
    root = prepare(name)
    return TORCHVISION_CLASS[name](root, train=train, transform=transform, download=False)


def classic_transform() -> transforms.Compose:
    """PIL image -> normalised (1, 28, 28) float tensor, as the classic DataLoader path uses."""
    return transforms.Compose([transforms.ToTensor(), transforms.Normalize((MEAN,), (STD,))])


def load_tensors(name: str, train: bool, device: torch.device | str = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
    """A whole split as tensors on `device`: images (N, 1, 28, 28) in [-1, 1] and int64 labels (N,)."""
    ds = torchvision_dataset(name, train)
    images = ds.data.to(device).unsqueeze(1).float().div_(255).sub_(MEAN).div_(STD)
    return images, ds.targets.to(device)


def split_indices(n: int, val_fraction: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Shuffle range(n) with `seed` and cut it into (train, validation) index tensors."""
    if not 0 < val_fraction < 1:
        raise ValueError(f"val_fraction must be between 0 and 1, got {val_fraction}")
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    n_val = int(round(n * val_fraction))
    if n_val == 0 or n_val == n:
        raise ValueError(f"val_fraction={val_fraction} of {n} samples leaves an empty split")
    return order[n_val:], order[:n_val]


def subset_indices(n: int, size: int | None, seed: int) -> torch.Tensor:
    """`size` indices drawn without replacement from range(n) (all of them, shuffled, when None)."""
    if size is not None and not 0 < size <= n:
        raise ValueError(f"subset size must be between 1 and {n}, got {size}")
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    return order if size is None else order[:size]


class TensorBatches:
    """Mini-batches from tensors already in memory, by shuffled index: a fast stand-in for DataLoader.

    Like a DataLoader it has `.dataset` (a TensorDataset, so `len(loader.dataset)` counts samples),
    `.batch_size`, `.generator` (the shuffling) and `len(loader)` (the number of batches).
    """

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, batch_size: int,
                 shuffle: bool = False, seed: int = 0):
        if len(images) != len(labels):
            raise ValueError(f"{len(images)} images but {len(labels)} labels")
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a whole number >= 1, got {batch_size!r}")
        self.images, self.labels = images, labels
        self.dataset = TensorDataset(images, labels)  # the same tensors, not a copy
        self.batch_size, self.shuffle = batch_size, shuffle
        self.generator = torch.Generator().manual_seed(seed)

    def __len__(self) -> int:
        return -(-len(self.labels) // self.batch_size)  # number of batches, as DataLoader reports

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        n = len(self.labels)
        order = torch.randperm(n, generator=self.generator) if self.shuffle else torch.arange(n)
        order = order.to(self.labels.device)
        for start in range(0, n, self.batch_size):
            index = order[start:start + self.batch_size]
            # index_select, not images[index]: the same gather, ~5x faster on a CPU for a batch of rows
            yield self.images.index_select(0, index), self.labels.index_select(0, index)

    def num_samples(self) -> int:
        """How many samples one pass yields."""
        return len(self.labels)


def make_loaders(name: str, batch_size: int, device: torch.device | str = "cpu", *,
                 val_fraction: float = 0.1, train_subset: int | None = None, seed: int = 0,
                 fast: bool = True, num_workers: int = 0) -> dict:
    """Train / validation / test loaders plus class names.

    The training split is cut into train and validation with `seed`; `train_subset` keeps that
    many training samples (for quick runs). `fast=True` gives TensorBatches on `device`;
    `fast=False` gives the classic DataLoader over PIL images and transforms (batches on the CPU).
    """
    _check_name(name)
    train_idx, val_idx = split_indices(60_000, val_fraction, seed)
    if train_subset is not None:
        train_idx = train_idx[subset_indices(len(train_idx), train_subset, seed)]
    if fast:
        images, labels = load_tensors(name, train=True, device=device)
        test_images, test_labels = load_tensors(name, train=False, device=device)
        train_idx, val_idx = train_idx.to(images.device), val_idx.to(images.device)
        loaders = {
            "train_loader": TensorBatches(images[train_idx], labels[train_idx], batch_size, shuffle=True, seed=seed),
            "val_loader": TensorBatches(images[val_idx], labels[val_idx], batch_size),
            "test_loader": TensorBatches(test_images, test_labels, batch_size),
        }
    else:
        full = torchvision_dataset(name, train=True, transform=classic_transform())
        test = torchvision_dataset(name, train=False, transform=classic_transform())
        generator = torch.Generator().manual_seed(seed)
        loaders = {
            "train_loader": DataLoader(Subset(full, train_idx.tolist()), batch_size, shuffle=True,
                                       generator=generator, num_workers=num_workers),
            "val_loader": DataLoader(Subset(full, val_idx.tolist()), batch_size, num_workers=num_workers),
            "test_loader": DataLoader(test, batch_size, num_workers=num_workers),
        }
    return {**loaders, "class_names": CLASS_NAMES[name]}
