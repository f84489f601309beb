"""Every dataset fact in one place: files, where each comes from (in order), checksums, layouts. Stdlib only."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

DEBIAN_ROOT = Path("/usr/share/datasets")  # where Debian's dataset-* packages install their files


@dataclass(frozen=True)
class File:
    """One file a dataset needs: its path in the cache, its sources in order, and the digests it may have."""

    cache: str  # relative to the cache folder (data/ or $COURSE_DATA_DIR)
    digests: tuple[str, ...]  # accepted digests of the cached (decompressed) bytes; several for repacks
    algorithm: str = "sha256"
    mirror: tuple[str, ...] = ()  # alternatives relative to the mirror folder, tried in order
    debian: str = ""  # relative to DEBIAN_ROOT
    urls: tuple[str, ...] = ()  # downloads, in order of preference
    gunzip: bool = False  # mirror, Debian and download copies are .gz of the cached file
    members: str = ""  # an archive's layout: a regular expression its member names match


@dataclass(frozen=True)
class Folder:
    """A dataset used as a folder of `<split>/<class>/<files>` with a SHA256SUMS list, e.g. cats vs dogs."""

    path: str  # relative to the cache and to the mirror; the mirror's copy is used in place
    splits: tuple[str, ...]
    classes: tuple[str, ...]
    per_class: int  # files per class in each split
    sums_file: str = "SHA256SUMS"  # `sha256sum` format, one line per file


@dataclass(frozen=True)
class Dataset:
    """A dataset the lessons read: a label for people, its files, and (cats vs dogs) the folder they fill."""

    label: str
    files: tuple[File, ...]
    debian_package: str = ""
    folder: Folder | None = None  # when set, `files` holds the archive the folder is unpacked from


@dataclass(frozen=True)
class Location:
    """One place the course looks, in order: `items[i]` holds the alternatives for the dataset's i-th part."""

    kind: str  # "local cache", "mirror", "Debian", "download"
    where: str  # a folder or URL for people
    items: tuple[tuple[str, ...], ...]  # paths (or URLs for downloads); () where this place lacks that part

    @property
    def local(self) -> bool:
        return self.kind != "download"


def _idx(folder: str, md5: dict[str, str], mirror: str, urls: tuple[str, ...], debian: str = "") -> tuple[File, ...]:
    """The four IDX files of an MNIST-like dataset, cached where torchvision's class reads them."""
    return tuple(File(f"{folder}/raw/{name}", (digest,), "md5", mirror=(f"{mirror}/{name}.gz",),
                      debian=f"{debian}/{name}.gz" if debian else "", urls=tuple(f"{base}{name}.gz" for base in urls),
                      gunzip=True)
                 for name, digest in md5.items())


_ANNA_PATH = "recurrent-neural-networks/char-rnn/data/anna.txt"
_ANNA_REPO = "https://raw.githubusercontent.com/udacity/deep-learning-v2-pytorch"
_KAGGLE_ZIP = ("https://download.microsoft.com/download/3/E/1/3E1C3F21-ECDB-4869-8368-6DEBA77B919F/"
               "kagglecatsanddogs_5340.zip")
_PHOTOS = {  # sha256 from the mirror's README
    "samoyed.jpg": "f3f87bb8ab3c26c7ecfd3ac60421d7f32b0503d1d6c5baf8bac42ed93d86351a",
    "puppy.jpg": "29a54a909a48a08539b133c7f89f7696632afefd4c3e0fd16498c419003f921c",
    "cat.70.jpg": "687ff99b35390ac24dd4f1f12f38abcf30d8a598f4b364c993a72a996c792cce",
    "dog.128.jpg": "216bea803b0263c2ee5896e679e7bf18c21f02a1836206f70d7b4bc91741baf7",
}
_PHOTO_URLS = {"samoyed.jpg": ("https://github.com/pytorch/hub/raw/master/images/dog.jpg",)}

DATASETS: dict[str, Dataset] = {
    # md5 of the *decompressed* IDX files: mirrors and Debian recompress the .gz files, so the archives'
    # checksums differ between sources while the content must not. URLs: torchvision's mirrors.
    "mnist": Dataset("MNIST", _idx("MNIST", {
        "train-images-idx3-ubyte": "6bbc9ace898e44ae57da46a324031adb",
        "train-labels-idx1-ubyte": "a25bea736e30d166cdddb491f175f624",
        "t10k-images-idx3-ubyte": "2646ac647ad5339dbf082846283269ea",
        "t10k-labels-idx1-ubyte": "27ae3e4e09519cfbb04c329615203637",
    }, "mnist", ("https://ossci-datasets.s3.amazonaws.com/mnist/", "http://yann.lecun.com/exdb/mnist/"))),
    "fashion_mnist": Dataset("Fashion-MNIST", _idx("FashionMNIST", {
        "train-images-idx3-ubyte": "f4a8712d7a061bf5bd6d2ca38dc4d50a",
        "train-labels-idx1-ubyte": "9018921c3c673c538a1fc5bad174d6f9",
        "t10k-images-idx3-ubyte": "8181f5470baa50b63fa0f6fddb340f0a",
        "t10k-labels-idx1-ubyte": "15d484375f8d13e6eb1aabb0c3f46965",
    }, "fashion-mnist", ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",), debian="fashion-mnist"),
        debian_package="dataset-fashion-mnist"),
    # Microsoft's copy of the Asirra photos behind Kaggle's "Dogs vs. Cats": PetImages/{Cat,Dog}/<n>.jpg, 12,500
    # per class, a few empty or corrupt; sha256 of the whole 825 MB zip. The course keeps 1,000 per class and split.
    "cat_dog": Dataset("cats vs dogs", (
        File("kagglecatsanddogs_5340.zip", ("b7974bd00a84a99921f36ee4403f089853777b5ae8d151c76a86e64900334af9",),
             urls=(_KAGGLE_ZIP,), members=r"^PetImages/(Cat|Dog)/(\d+)\.jpg$"),),
        folder=Folder("cat_dog", ("train", "test"), ("cat", "dog"), per_class=1000)),
    # Anna Karenina as udacity/deep-learning-v2-pytorch ships it (Project Gutenberg #1399 with its licence, CRLF
    # line ends); pinned commit first. The sha256 is the offline mirror's, whose README names that file.
    "anna": Dataset("anna.txt", (
        File("text/anna.txt", ("568bb39fc78aca98e9db91c4329dcd1aa5ec4c3df3aca2064ce5d6f023ae16c9",),
             mirror=("text/anna.txt",),
             urls=(f"{_ANNA_REPO}/a6fdf852652a794dd84fb45be7282b01026f789f/{_ANNA_PATH}",
                   f"{_ANNA_REPO}/master/{_ANNA_PATH}")),)),
    # Large Movie Review Dataset (Maas et al., ACL 2011): the official archive (the sha256 several independent
    # loaders pin) or the mirror's repack of its labelled reviews (same layout), cached as aclImdb.tar.gz.
    "imdb": Dataset("IMDB reviews", (
        File("imdb/aclImdb.tar.gz", ("c40f74a18d3b61f90feba1e17730e0d38e8b97c05fde7008942e91923d1658fe",
                                     "514b1d8977d11ee5c853b593c1d0d3bd4e81ba52b00a135ddcd93a414015c3d8"),
             mirror=("imdb/aclImdb_labelled.tar.gz", "imdb/aclImdb_v1.tar.gz"),
             urls=("https://ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz",),
             members=r"^aclImdb/(train|test)/(neg|pos)/(\d+)_\d+\.txt$"),)),  # <split>/<label>/<id>_<rating>
    "images": Dataset("sample images", tuple(
        File(f"images/{name}", (digest,), mirror=(f"images/{name}",), urls=_PHOTO_URLS.get(name, ()))
        for name, digest in _PHOTOS.items())),
}


def dataset(name: str) -> Dataset:
    """The catalog entry of `name`; a clear error for an unknown name."""
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}")
    return DATASETS[name]


def file_entry(name: str, cache: str | None = None) -> File:
    """The file of dataset `name` cached at `cache` (relative to the cache, or its name; None: the only file)."""
    files = dataset(name).files
    if cache is None and len(files) == 1:
        return files[0]
    for entry in files:
        if cache in (entry.cache, entry.cache.rsplit("/", 1)[-1]):
            return entry
    raise ValueError(f"dataset {name!r} has no file {cache!r}; it has {', '.join(f.cache for f in files)}")


def _common(paths: list[str]) -> str:
    return os.path.commonpath(paths) if len(paths) > 1 else paths[0]


def folder_locations(name: str, cache_dir: Path, mirror_dir: Path | None) -> list[Location]:
    """Where a folder dataset is used as it is: the cache, then the mirror (items: the sums file, each class folder)."""
    folder = dataset(name).folder
    if folder is None:
        return []
    parts = (folder.sums_file, *(f"{split}/{cls}" for split in folder.splits for cls in folder.classes))
    roots = [("local cache", cache_dir)] + ([("mirror", mirror_dir)] if mirror_dir is not None else [])
    return [Location(kind, str(root / folder.path), tuple((str(root / folder.path / part),) for part in parts))
            for kind, root in roots]


def file_locations(name: str, cache_dir: Path, mirror_dir: Path | None) -> list[Location]:
    """Every place the course takes the dataset's files from, in the order it tries them (nothing is read)."""
    files = dataset(name).files
    found = [Location("local cache", str(cache_dir / _common([f.cache for f in files])),
                      tuple((str(cache_dir / f.cache),) for f in files))]
    if mirror_dir is not None and any(f.mirror for f in files):
        found.append(Location("mirror", str(mirror_dir / _common([m for f in files for m in f.mirror])),
                              tuple(tuple(str(mirror_dir / m) for m in f.mirror) for f in files)))
    if any(f.debian for f in files):
        paths = [str(DEBIAN_ROOT / f.debian) for f in files if f.debian]
        found.append(Location("Debian", f"{_common(paths)} (apt-get install {dataset(name).debian_package})",
                              tuple((str(DEBIAN_ROOT / f.debian),) if f.debian else () for f in files)))
    for rank in range(max(len(f.urls) for f in files)):  # first every file's preferred URL, then the next
        urls = [f.urls[rank] for f in files if len(f.urls) > rank]
        base = urls[0] if len(urls) == 1 else urls[0].rsplit("/", 1)[0] + "/"
        found.append(Location("download", base, tuple((f.urls[rank],) if len(f.urls) > rank else () for f in files)))
    return found
