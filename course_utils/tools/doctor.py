"""The environment doctor: can this machine run the course? Packages, device and threads, datasets, the kernel.

`python -m course_utils.tools.doctor` exits 1 when something would stop the lessons. It checks what is the course's
own; the device (CUDA build and runtime, GPUs, driver), versions and CPU are in PyTorch's `collect_env` report.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import metadata
from importlib.util import find_spec
from pathlib import Path
from urllib.parse import urlparse

from packaging.requirements import InvalidRequirement, Requirement

# checks, catalog and sources are stdlib only: the doctor runs where torch does not import
from course_utils.core.arguments import THREADS_ENV, env_threads
from course_utils.datasets import catalog
from course_utils.datasets.catalog import Location
from course_utils.datasets.sources import MIRROR_ENV, MIRROR_FIX, data_dir, mirror_dir
from course_utils.paths import NOTEBOOKS, PROJECT_ROOT

OK, INFO, WARN, FAIL = "OK", "INFO", "WARN", "FAIL"
IMPORTS = ("torch", "torchvision")  # a torchvision built for another torch installs, then fails to import
REQUIREMENTS = PROJECT_ROOT / "requirements.txt"
FIX_INSTALL = "install the pinned packages: python -m pip install -r requirements.txt && python -m pip install -e ."
FIX_KERNEL = "start Jupyter from this environment (`make lab`), or register it: python -m ipykernel install --user"


class DoctorError(Exception):
    """A file the doctor reads that it cannot use: main says it in one line, exit status 2."""


@dataclass(frozen=True)
class Finding:
    """One finding: a short name, OK/INFO/WARN/FAIL, what was seen, sub-lines (e.g. one per source), a fix."""

    name: str
    status: str
    detail: str = ""
    lines: tuple[str, ...] = ()
    fix: str = ""


def diagnose_packages(requirements: Path | None = None) -> list[Finding]:
    """Which Python runs; whether torch and torchvision import; the packages requirements.txt pins.

    A missing pin (the EfficientNet weights are one) stops a lesson: FAIL. Another version (a Jetson's torch build,
    say) is a WARN: the course is tested with the pins. On too old a Python, pip installs none of them: FAIL.
    """
    venv = "in a" if sys.prefix != sys.base_prefix else "no"
    results = [Finding("Python", INFO, f"{platform.python_version()}, {venv} virtual environment",
                      (f"executable {sys.executable}",))]
    for name in IMPORTS:
        try:
            results.append(Finding(name, OK, __import__(name).__version__))
        except Exception as err:  # noqa: BLE001 - ImportError, or an OSError from a broken CUDA library
            results.append(Finding(name, FAIL, f"does not import: {type(err).__name__}: {err}", fix=FIX_INSTALL))
    installed = {pin: _installed(pin.name) for pin in pins(requirements or REQUIREMENTS)}
    missing = [f"{pin.name}: not installed" for pin, version in installed.items() if not version]
    differ = [f"{pin.name} {version}; the course is tested with {pin.specifier}" for pin, version in installed.items()
              if version and not pin.specifier.contains(version, prereleases=True)]  # a local label (+cu130) is ignored
    detail = f"{len(installed) - len(missing) - len(differ)} of {len(installed)} as pinned" if installed else "no pins"
    status = FAIL if missing else WARN if differ or not installed else OK
    return results + [Finding("requirements.txt", status, detail, tuple(missing + differ), FIX_INSTALL)]


def pins(requirements: Path) -> list[Requirement]:
    """What a requirements.txt pins (comments, blank lines and pip's options left out); none when there is no file.

    DoctorError, naming the file and the line, for a line that is no requirement.
    """
    lines = requirements.read_text().splitlines() if requirements.is_file() else []
    found = []
    for number, raw in enumerate(lines, start=1):
        line = raw.split("#")[0].strip()
        if not line or line.startswith("-"):  # -r, -e, --extra-index-url: pip's options, not pins
            continue
        try:
            found.append(Requirement(line))
        except InvalidRequirement as err:
            raise DoctorError(f"{requirements}, line {number}: {line!r} is not a requirement "
                              f"({str(err).splitlines()[0]}); write it as name==version, e.g. torch==2.14.1") from err
    return found


def _installed(distribution: str) -> str:
    """The installed version of a pip package, "" when it is not installed."""
    with contextlib.suppress(metadata.PackageNotFoundError):
        return metadata.version(distribution)
    return ""


def _torch():
    """The torch module, or None when it does not import (diagnose_packages says why): the doctor still runs."""
    with contextlib.suppress(Exception):  # ImportError, or an OSError from a broken CUDA library
        import torch

        return torch
    return None


def diagnose_device() -> Finding:
    """What the lessons' device="auto" picks. PyTorch's report has CUDA's details, but says nothing of Apple's MPS."""
    if _torch() is None:
        return Finding("device", INFO, "unknown: torch does not import (see Packages)")
    from course_utils.core import devices  # imports torch

    return Finding("device", INFO, f'device="auto" picks {devices.describe(devices.get_device("auto"))}')


def diagnose_threads() -> Finding:
    """The CPU thread setting: torch's count, $COURSE_THREADS and the cores this process may use."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    try:
        wanted = env_threads()  # the lessons' own reading of it
    except ValueError as err:
        return Finding("threads", FAIL, str(err), fix=f"unset {THREADS_ENV} or set it to 1")
    shown = f"${THREADS_ENV}={wanted}" if wanted else f"${THREADS_ENV} unset"
    threads = torch.get_num_threads() if (torch := _torch()) else None
    detail = f"torch.get_num_threads() = {threads}, {shown}, {cores} of os.cpu_count() = {os.cpu_count()} usable"
    status = WARN if wanted and wanted > cores else INFO  # the fix is printed for a WARN only
    return Finding("threads", status, detail, fix="more threads than usable cores slows every lesson")


def dataset_sources(name: str) -> tuple[str, list[list[Location]]]:
    """The dataset's label and, per way of providing it (cats vs dogs: its folder, or its zip), the places tried."""
    groups = [catalog.folder_locations(name, data_dir(), mirror_dir()),  # raises ValueError for an unknown name
              catalog.file_locations(name, data_dir(), mirror_dir())]
    return catalog.dataset(name).label, [group for group in groups if group]


def _exists(path: Path) -> bool:
    """A non-empty file, or a folder with something in it."""
    return path.stat().st_size > 0 if path.is_file() else path.is_dir() and any(path.iterdir())


def probe(url: str, timeout: float = 2.0) -> bool | None:
    """Can a TCP connection reach the URL's host? None when a proxy is set (not probed). Downloads nothing."""
    if any(os.environ.get(var) for var in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy")):
        return None
    parsed, reached = urlparse(url), threading.Event()
    address = (parsed.hostname, parsed.port or (443 if parsed.scheme == "https" else 80))

    def connect() -> None:  # in a daemon thread, because a DNS lookup ignores socket timeouts
        with contextlib.suppress(OSError), socket.create_connection(address, timeout=timeout):
            reached.set()

    threading.Thread(target=connect, daemon=True).start()
    return reached.wait(timeout)


def diagnose_dataset(name: str, online: bool | None = None) -> Finding:
    """OK when local places cover every part, WARN when downloads could, else FAIL.

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
        ready, downloadable = ready or all(local), downloadable or all(a or b for a, b in zip(local, offered))
    if mirror_dir() is None:
        lines.insert(1, f"{'mirror':<12} ${MIRROR_ENV} is not set")  # where the mirror would be listed
    lines = tuple(lines)
    if ready:
        return Finding(label, OK, lines=lines)
    if not downloadable:
        return Finding(label, FAIL, "no source has all of it", lines, MIRROR_FIX)
    reachable = online if online is not None else probe(urls[0])
    if reachable is False:
        why = "offline (--offline)" if online is False else f"{urlparse(urls[0]).hostname} is unreachable"
        return Finding(label, FAIL, f"not on this machine and {why}", lines,
                       f"{MIRROR_FIX}, or connect to the internet")
    state = "reachable" if reachable else "not probed (a proxy is set)"
    return Finding(label, WARN, f"not on this machine: downloads on first use ({state})", lines)


KERNEL_PROBE = Path(__file__).with_name("kernel_probe.py")  # what a kernel's Python is asked; stdlib only


def diagnose_kernel(name: str = "python3") -> Finding:
    """The notebook kernel: whether it runs this Python, or at least one that imports course_utils and torch."""
    if find_spec("jupyter_client") is None:
        return Finding(name, FAIL, "jupyter_client is not installed", fix=FIX_INSTALL)
    from jupyter_client.kernelspec import NoSuchKernel
    from jupyter_client.manager import KernelManager

    try:  # the command as Jupyter builds it: a bare `python` becomes the Python that runs Jupyter
        manager = KernelManager(kernel_name=name)
        spec, command = manager.kernel_spec, manager.format_kernel_cmd()
    except NoSuchKernel:
        return Finding(name, FAIL, "no such kernel spec", fix=FIX_KERNEL)
    python, jupyter = shutil.which(command[0]) or command[0], shutil.which("jupyter")
    lines = (f"spec  {spec.resource_dir}", f"argv[0] {spec.argv[0]!r} runs {python}")
    if command[0] != spec.argv[0] and jupyter and Path(jupyter).parent != Path(sys.executable).parent:
        return Finding(name, WARN, f"could not tell which Python it runs: the one running Jupyter, and `jupyter` on "
                      f"PATH is another environment's ({jupyter})", lines, FIX_KERNEL)
    seen, notebooks = None, NOTEBOOKS  # asked from notebooks/, where a kernel starts
    with contextlib.suppress(OSError, subprocess.TimeoutExpired, json.JSONDecodeError):
        done = subprocess.run([python, "-c", KERNEL_PROBE.read_text()], capture_output=True, text=True, timeout=20,
                              cwd=notebooks if notebooks.is_dir() else None)
        seen = json.loads(done.stdout) if done.returncode == 0 else None
    if seen is None:
        return Finding(name, FAIL, f"its Python {python} does not run", lines, FIX_KERNEL)
    if os.path.realpath(seen["prefix"]) == os.path.realpath(sys.prefix):
        return Finding(name, OK, "runs this Python", lines)
    missing = " and ".join(module for module in ("course_utils", "torch") if not seen[module])
    whose = f"which cannot import {missing}" if missing else f"whose course_utils is {seen['course_utils']}"
    return Finding(name, FAIL if missing else WARN, f"runs another Python (prefix {seen['prefix']}), {whose}", lines,
                  FIX_KERNEL)  # even with our course_utils, its packages may not be the pinned ones


def diagnose_all(online: bool | None = None) -> dict[str, list[Finding]]:
    """Every diagnosis, by section, in the order they are printed."""
    return {"Packages": diagnose_packages(), "Compute": [diagnose_device(), diagnose_threads()],
            "Datasets": [diagnose_dataset(name, online) for name in catalog.DATASETS],
            "Jupyter kernel": [diagnose_kernel()]}


def exit_code(results: Iterable[Finding]) -> int:
    """1 when any check failed (the course cannot run), else 0."""
    return int(any(result.status == FAIL for result in results))


def format_report(sections: dict[str, list[Finding]], env_report: str = "") -> str:
    """The report as text: sections, one line per result (plus sub-lines), PyTorch's report, then a summary."""
    out = ["PyTorch course environment doctor"]
    for section, results in sections.items():
        out.append(f"\n{section}")
        for r in results:
            out.append(f"  {r.status:<5} {r.name}" + (f": {r.detail}" if r.detail else ""))
            out += [f"          {line}" for line in r.lines]
            out += [f"          fix: {r.fix}"] if r.fix and r.status in (WARN, FAIL) else []
    if env_report:
        out += ["\nPyTorch's environment report (python -m torch.utils.collect_env)", env_report.rstrip()]
    failed = [(section, r) for section, results in sections.items() for r in results if r.status == FAIL]
    warnings = sum(r.status == WARN for results in sections.values() for r in results)
    if failed:
        out.append(f"\nNOT READY: {len(failed)} problem(s) stop the course:")
        out += [f"  - {section} / {r.name}: {r.detail}\n    fix: {r.fix}" for section, r in failed]
    else:
        out.append(f"\nready ({warnings} warning(s))" if warnings else "\nready")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m course_utils.tools.doctor", description=__doc__.splitlines()[0])
    parser.add_argument("--offline", action="store_true", help="count only local dataset sources (no network probe)")
    parser.add_argument("--brief", action="store_true", help="leave out PyTorch's environment report")
    args = parser.parse_args(argv)
    try:
        sections = diagnose_all(online=False if args.offline else None)
    except DoctorError as err:
        print(f"doctor: error: {err}", file=sys.stderr)
        return 2
    except OSError as err:  # a file or folder it must read: a permission, a broken disk
        print(f"doctor: error: cannot read {err.filename or 'a file'} ({err.strerror}): "
              f"make it readable for you, or move it away", file=sys.stderr)
        return 2
    env_report = ""
    if not args.brief and _torch():  # versions, CUDA build and runtime, GPUs, driver, cuDNN, CPU, packages
        from torch.utils.collect_env import get_pretty_env_info

        env_report = get_pretty_env_info()
    print(format_report(sections, env_report))
    return exit_code(result for results in sections.values() for result in results)


if __name__ == "__main__":
    sys.exit(main())
