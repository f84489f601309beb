"""The main job: execute every lesson notebook with papermill at a profile, and summarise the run."""

from __future__ import annotations

import argparse
import ast
import json
import os
import signal
import sys
import threading
import time
import uuid
import weakref
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import datetime
from multiprocessing import get_context
from multiprocessing.connection import Connection
from multiprocessing.connection import wait as wait_for_messages
from pathlib import Path

import nbformat
import papermill
import psutil  # installed with ipykernel (through IPython), which every run needs anyway
import yaml
from papermill.iorw import LocalHandler, papermill_io

from course_utils.core.arguments import THREADS_ENV, check_count
from course_utils.core.files import atomic_write
from course_utils.core.report import METRICS_ENV, RUN_FACTS
from course_utils.core.training import PROGRESS_ENV
from course_utils.exercises import fill_solutions
from course_utils.exercises.framework import STRICT_ENV
from course_utils.paths import NOTEBOOKS, RUNS, WORKSPACE
from course_utils.tools import live_display, profiles
from course_utils.tools.profiles import ProfileError, merge  # noqa: F401 - merge: runner.merge, as before
from course_utils.tools.report_html import format_metrics, write_report

NOTEBOOKS_DIR = NOTEBOOKS  # tests point these at folders of their own
WORKSPACE_DIR = WORKSPACE  # the learner's working copies
PROFILES_DIR = profiles.PROFILES_DIR
STRIP_TAG = "strip-output"
SOLUTION_SOURCES = "solution-sources"
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
# a notebook that cannot be read: nbformat and papermill raise any of these, depending on what is wrong with it
NOTEBOOK_ERRORS = (OSError, ValueError, KeyError, TypeError, AttributeError, nbformat.ValidationError)


class RunnerError(Exception):
    """A bad profile, notebook selection or command line, found before anything runs; main() prints it."""


class Interrupted(BaseException):
    """SIGINT or SIGTERM reached the runner; `rows` is the run's summary when notebooks were running."""

    def __init__(self, signum: int, rows: list[dict] | None = None, detail: str = "") -> None:
        super().__init__(signum)
        self.signum, self.rows, self.detail = signum, rows, detail

    def __str__(self) -> str:
        return f"interrupted by {signal.Signals(self.signum).name}{self.detail}"

    @property
    def exit_code(self) -> int:
        return 128 + self.signum  # the shell's convention: 130 for SIGINT, 143 for SIGTERM


@dataclass
class Job:
    """One notebook to run: where it is, where its executed copy goes, what is injected."""

    notebook: Path
    output: Path
    parameters: dict
    env: dict = field(default_factory=dict)
    solutions: bool = False  # run with every exercise's answer cell replaced by its reference solution


def load_profile(name: str) -> dict:
    """profiles.load_profile from this module's PROFILES_DIR (tests point it elsewhere)."""
    return profiles.load_profile(name, PROFILES_DIR)


def discover(selected: list[str] | None = None) -> list[Path]:
    """The lesson notebooks in order, optionally only those whose name starts with a selected prefix."""
    notebooks = sorted(p for p in NOTEBOOKS_DIR.glob("*.ipynb") if p.stem[0].isalnum())
    if selected:
        notebooks = [p for p in notebooks if any(p.stem.startswith(s) for s in selected)]
        if not notebooks:
            raise RunnerError(f"no notebook matches {selected}")
    return notebooks


def notebook_parameters(notebook: Path) -> dict[str, dict]:
    """The notebook's parameters cell as papermill reads it: name -> {default (source text), help (comment)}."""
    try:
        return papermill.inspect_notebook(str(notebook))
    except NOTEBOOK_ERRORS as err:
        problem = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise RunnerError(f"{notebook} cannot be read as a notebook ({problem}): restore it from git") from None


def declared_parameters(notebook: Path) -> set[str]:
    """Names assigned in the notebook's `parameters` cell."""
    return set(notebook_parameters(notebook))


def literal_default(info: dict) -> tuple[bool, object]:
    """(True, value) when a parameter's default is a Python literal, else (False, None)."""
    try:
        return True, ast.literal_eval(str(info.get("default")))
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return False, None


def expected_kind(default: object) -> tuple[str, Callable[[object], bool]] | None:
    """What a value standing in for `default` must be, and a test for it; None when anything goes."""
    number = (int, float)
    kinds = [(bool, "true or false", lambda v: isinstance(v, bool)),
             (int, "a whole number", lambda v: isinstance(v, int) and not isinstance(v, bool)),
             (float, "a number", lambda v: isinstance(v, number) and not isinstance(v, bool)),
             (str, "text", lambda v: isinstance(v, str)),
             (list | tuple, "a list", lambda v: isinstance(v, list) and fits_items(v, default)),
             (dict, "a mapping", lambda v: isinstance(v, dict))]
    return next(((name, test) for kind, name, test in kinds if isinstance(default, kind)), None)


def fits_items(value: list, default: list | tuple) -> bool:
    """Whether every item of `value` is of the kind of the default list's first item."""
    kind = expected_kind(default[0]) if default else None
    return kind is None or all(kind[1](item) for item in value)


def shown(value: object) -> str:
    """A parameter value as it would be typed on the command line."""
    return value if isinstance(value, str) else json.dumps(value)


def type_problem(value: object, info: dict) -> str | None:
    """Why `value` cannot stand in for the parameter's default (its type, from the parameters cell), or None."""
    is_literal, default = literal_default(info)
    kind = expected_kind(default) if is_literal and default is not None else None
    # a default of None or an expression says nothing about the type; null is the profiles' "all" or "none"
    if kind is None or value is None or kind[1](value):
        return None
    return f"takes {kind[0]}, not {described(value)}"


def described(value: object) -> str:
    """`text`, `a list`, `2.5`: a parameter value that has the wrong type, for an error message."""
    if isinstance(value, bool | int | float):
        return shown(value)
    return "text" if isinstance(value, str) else {list: "a list", dict: "a mapping"}.get(type(value), "that")


def check_types(notebook: Path, declared: dict, values: dict, source: str) -> None:
    """A RunnerError naming the first of `values` whose type does not fit the notebook's default."""
    for name, value in values.items():
        problem = type_problem(value, declared[name])
        if problem:
            default = declared[name].get("default")
            raise RunnerError(f"{source.format(name=name, value=shown(value))}: {notebook.stem}'s {name} {problem} "
                              f"(its default is {default})")


def declared_somewhere(notebooks: list[Path], known: dict[Path, dict]) -> tuple[set[str], bool]:
    """The parameter names any of `notebooks` declares, and whether every one of them could be read.

    The selected notebooks are in `known` already; the others are read only for this check, and a broken one
    is reported when it is itself run, not here.
    """
    names, complete = set(), True
    for notebook in notebooks:
        try:
            names |= set(known[notebook] if notebook in known else notebook_parameters(notebook))
        except RunnerError:
            complete = False
    return names, complete


def plan(profile: dict, notebooks: list[Path], out_dir: Path, overrides: dict) -> list[Job]:
    """Per notebook, the parameters it declares, from the profile's common, per-notebook and CLI values."""
    per_notebook = profile.get("notebooks") or {}
    lessons = discover()
    unknown = set(per_notebook) - {p.stem for p in lessons}
    if unknown:
        raise RunnerError(f"profile names notebooks that do not exist: {sorted(unknown)}")
    selected = {notebook: notebook_parameters(notebook) for notebook in notebooks}  # only these must be readable
    common_profile = profile.get("parameters") or {}
    declared_anywhere, complete = declared_somewhere(lessons, selected)
    typos = set(common_profile) - declared_anywhere
    if typos and complete:
        raise RunnerError(f"profile sets {sorted(typos)}, which no notebook declares")
    overrides = dict(overrides)
    threads = overrides.pop("threads", None)
    if threads is None:
        threads = profile.get("threads")
    env = {THREADS_ENV: str(threads)} if threads is not None else {}  # for the kernels, not this process
    env[PROGRESS_ENV] = "0"  # no progress bars in executed notebooks: their outputs are committed
    declared_here = set().union(*selected.values())
    unused = set(overrides) - declared_here
    if unused:
        raise RunnerError(f"no selected notebook declares {sorted(unused)}: check the spelling "
                          "(each notebook's parameters cell lists what it takes)")
    jobs = []
    for notebook, declared in selected.items():
        specific = per_notebook.get(notebook.stem) or {}
        typos = set(specific) - set(declared)
        if typos:
            raise RunnerError(f"profile sets {sorted(typos)} for {notebook.stem}, which does not declare them")
        common = {k: v for k, v in common_profile.items() if k in declared}
        forced = {k: v for k, v in overrides.items() if k in declared}  # the command line wins
        check_types(notebook, declared, forced, "--set {name}={value}")
        check_types(notebook, declared, common | specific, "profile sets {name}={value}")
        jobs.append(Job(notebook, out_dir / notebook.name, common | specific | forced, env))
    return jobs


# ---------------------------------------------------------------- the run folder


def written_by_runner(notebook: Path) -> bool:
    """Whether `notebook` is one the runner wrote where it is: papermill's metadata gives it as its output path."""
    try:
        with open(notebook, encoding="utf-8") as f:
            output = json.load(f)["metadata"]["papermill"]["output_path"]
        return Path(output).resolve() == notebook.resolve()
    except (OSError, ValueError, KeyError, TypeError):
        return False


def check_run_folder(out_dir: Path) -> None:
    """A RunnerError unless `out_dir` can take a run without touching the lessons or anyone's notebooks."""
    out = out_dir.resolve()
    protected = {WORKSPACE_DIR: "your working copies", NOTEBOOKS_DIR: "the lessons",
                 NOTEBOOKS: "the lessons"}
    for folder, what in protected.items():
        folder = folder.resolve()
        relation = (what if out == folder else f"inside {folder} ({what})" if folder in out.parents
                    else f"a folder above {folder} ({what})" if out in folder.parents else None)
        if relation:
            raise RunnerError(f"--out {out_dir} is {relation}, which a run must not write over: "
                              "choose a folder of its own (the default is under runs/)")
    if out.exists() and not out.is_dir():
        raise RunnerError(f"--out {out_dir} is a file, not a folder: choose a folder name")
    if out.is_dir():
        foreign = [p for p in (*out.glob("*.ipynb"), *out.glob(f"{SOLUTION_SOURCES}/*.ipynb"))
                   if not written_by_runner(p)]
        if foreign:
            names = ", ".join(p.name for p in foreign[:3]) + (", ..." if len(foreign) > 3 else "")
            raise RunnerError(f"--out {out_dir} already holds notebooks the runner did not write ({names}): "
                              "choose a new or empty folder")


def make_run_folder(out_dir: Path, jobs: list[Job]) -> None:
    """Create `out_dir` and prove it writable; remove what an earlier run left there for these jobs."""
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        atomic_write(out_dir / f".write-test-{uuid.uuid4().hex[:8]}", b"").unlink()
        for job in jobs:
            for stale in (job.output, job.output.with_suffix(".html"), job.output.with_suffix(".metrics.json")):
                stale.unlink(missing_ok=True)
    except OSError as err:
        raise RunnerError(f"cannot write to --out {out_dir} ({err.strerror or err}): choose a writable folder") \
            from None


# ---------------------------------------------------------------- executing notebooks


class AtomicHandler(LocalHandler):
    """papermill's handler for local files, but every save of a notebook is atomic: a full disk or a stopped run
    leaves the previous save, never half a notebook."""

    def write(self, buf: str, path: str) -> None:
        atomic_write(path, buf)


papermill_io.register("/", AtomicHandler())  # absolute POSIX paths, which the runner gives papermill

# MPLBACKEND=Agg (set for CI's own processes) would make the lessons' figures vanish from their outputs
KERNEL_UNSET = {"MPLBACKEND"}
STARTED_KERNELS: weakref.WeakSet = weakref.WeakSet()  # this process's kernel managers: their files go when it stops


def kernel_manager(env: dict) -> type:
    """A Jupyter kernel manager class whose kernels get this process's environment plus `env`."""
    from jupyter_client.manager import AsyncKernelManager
    from jupyter_core.paths import jupyter_runtime_dir
    from traitlets import default

    class KernelManager(AsyncKernelManager):
        @default("transport")
        def _transport_default(self) -> str:
            # sockets as files in Jupyter's private runtime folder, not unencrypted TCP ports (ipykernel warns
            # about those); Windows has no ipc transport
            return "ipc" if os.name == "posix" else "tcp"

        @default("ip")
        def _ip_default(self) -> str:
            if self.transport != "ipc":
                return super()._ip_default()
            runtime = jupyter_runtime_dir()  # jupyter_client's own default would be "kernel-ipc" in the cwd
            os.makedirs(runtime, mode=0o700, exist_ok=True)
            return os.path.join(runtime, f"kernel-{uuid.uuid4().hex[:12]}-ipc")

        async def start_kernel(self, **kw):
            inherited = {k: v for k, v in kw.get("env", os.environ).items() if k not in KERNEL_UNSET}
            kw["env"] = {**inherited, **env}  # os.environ is read, never changed
            STARTED_KERNELS.add(self)
            return await super().start_kernel(**kw)

    return KernelManager


def source_of(job: Job) -> Path:
    """The notebook papermill reads: the lesson itself, or (--solutions) a copy with the solutions filled in."""
    if not job.solutions:
        return job.notebook
    filled = job.output.parent / SOLUTION_SOURCES / job.notebook.name
    filled.parent.mkdir(parents=True, exist_ok=True)
    notebook = fill_solutions(nbformat.read(job.notebook, as_version=4))
    notebook.metadata["papermill"] = {"output_path": str(filled)}  # the runner's own file: a rerun may replace it
    write_notebook(filled, notebook)
    return filled


def error_line(err: BaseException) -> str:
    """`Name: first line of the message`: for a failed cell, the notebook's own exception, not papermill's."""
    name = getattr(err, "ename", None) or type(err).__name__
    message = getattr(err, "evalue", None) if hasattr(err, "ename") else str(err)
    first = next((line.strip() for line in str(message or "").splitlines() if line.strip()), "")
    return f"{name}: {first}" if first else name


def read_metrics(job: Job) -> dict:
    """What the notebook recorded with course_utils.core.report.record, {} if nothing (readable)."""
    try:
        return json.loads(job.output.with_suffix(".metrics.json").read_text())
    except (OSError, ValueError):
        return {}


def execute(job: Job, events=None) -> dict:
    """Run one notebook with papermill in its own folder; return its row of the summary.

    `events` (anything with a put method, or None) receives a live_display.Event as the notebook and each code
    cell start.
    """
    metrics_file = job.output.with_suffix(".metrics.json")
    metrics_file.unlink(missing_ok=True)
    env = {**job.env, METRICS_ENV: str(metrics_file)}
    hooks = {}
    if events is not None:
        events.put(live_display.Event(job.notebook.stem))
        cells = live_display.CellEvents(job.notebook.stem, events)
        hooks = {"on_notebook_start": cells.on_notebook_start, "on_cell_start": cells.on_cell_start}
    start = time.perf_counter()
    error = None
    try:
        papermill.execute_notebook(str(source_of(job)), str(job.output), parameters=job.parameters,
                                   cwd=str(job.notebook.parent), progress_bar=False,
                                   kernel_manager_class=kernel_manager(env), **hooks)  # hooks reach nbclient
    except Exception as err:  # noqa: BLE001 - a failing lesson is reported in the summary, the others still run
        error = error_line(err)
    seconds = time.perf_counter() - start
    return {"notebook": job.notebook.stem, "status": "fail" if error else "pass", "seconds": round(seconds, 1),
            "parameters": job.parameters, "metrics": read_metrics(job), "error": error}


def result_line(row: dict) -> str:
    """`pass in 12 s  metrics` or `fail in 3 s  (error)`."""
    parts = [f"{row['status']} in {row['seconds']:.0f} s", format_metrics(row["metrics"]),
             f"({row['error']})" if row["error"] else ""]
    return "  ".join(part for part in parts if part)


@contextmanager
def signal_handler(handler: Callable) -> Iterator[None]:
    """SIGINT and SIGTERM go to `handler` inside the block (only the main thread can set handlers)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {signum: signal.signal(signum, handler) for signum in STOP_SIGNALS}
    mask = signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)  # a parent may pass them on blocked
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        for signum, old in previous.items():
            signal.signal(signum, old)


def raise_interrupted(signum: int, frame) -> None:
    raise Interrupted(signum)


class StopRequest:
    """A signal handler that only records the first signal: the loop that runs notebooks stops them itself."""

    def __init__(self) -> None:
        self.signum: int | None = None

    def __call__(self, signum: int, frame) -> None:
        self.signum = self.signum or signum


class Sender:
    """The worker's end of its pipe to the runner, with a queue's put (what live_display.CellEvents calls)."""

    def __init__(self, connection: Connection) -> None:
        self.put = connection.send


def stop_worker(signum: int, frame) -> None:
    """SIGTERM in a worker: kill its kernel and whatever the kernel started, remove the kernel's files, exit."""
    children = psutil.Process().children(recursive=True)
    for child in children:
        with suppress(psutil.Error):
            child.kill()
    psutil.wait_procs(children, timeout=10)
    for manager in list(STARTED_KERNELS):
        with suppress(OSError):
            manager.cleanup_connection_file()
            manager.cleanup_ipc_files()
    os._exit(128 + signum)


def work(job: Job, connection: Connection) -> None:
    """A worker process: run `job`, sending its events and then its row to the runner."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a terminal's Ctrl-C reaches every process of the group:
    signal.signal(signal.SIGTERM, stop_worker)  # the runner decides, and stops its workers with SIGTERM
    if hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)  # blocked by the runner around the start
    connection.send(execute(job, Sender(connection)))
    connection.close()


@dataclass
class Worker:
    """A worker process running one job, and the runner's end of its pipe."""

    index: int
    process: object
    connection: Connection
    started: float = field(default_factory=time.monotonic)


def start_worker(context, index: int, job: Job) -> Worker:
    """A new process running `job`; signals wait until it has its own handlers (it starts with the runner's)."""
    reader, writer = context.Pipe(duplex=False)
    process = context.Process(target=work, args=(job, writer), name=f"runner-{job.notebook.stem}")
    blocked = hasattr(signal, "pthread_sigmask")
    old = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS) if blocked else None
    try:
        process.start()
    finally:
        if blocked:
            signal.pthread_sigmask(signal.SIG_SETMASK, old)
    writer.close()
    return Worker(index, process, reader)


def alive(process: psutil.Process) -> bool:
    """Whether a process still runs (a zombie has ended, it is only waiting to be reaped)."""
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def stop_workers(workers: list[Worker], grace: float = 20.0) -> None:
    """Stop the workers and every process they started: SIGTERM (each kills its kernel), then SIGKILL."""
    tree = []
    for worker in workers:
        with suppress(psutil.Error):
            tree += psutil.Process(worker.process.pid).children(recursive=True)
        worker.process.terminate()
    deadline = time.monotonic() + grace
    for worker in workers:
        worker.process.join(max(0.0, deadline - time.monotonic()))
        if worker.process.is_alive():
            worker.process.kill()
            worker.process.join(5)
        worker.connection.close()
    left = [process for process in tree if alive(process)]
    for process in left:
        with suppress(psutil.Error):
            process.kill()
    psutil.wait_procs(left, timeout=5)


def unfinished_row(job: Job, signum: int, seconds: float | None) -> dict:
    """The summary's row of a notebook the signal stopped (`seconds` after it started) or kept from starting."""
    error = f"stopped by {signal.Signals(signum).name} after {seconds:.0f} s" if seconds is not None else "not started"
    return {"notebook": job.notebook.stem, "status": "interrupted", "seconds": round(seconds or 0.0, 1),
            "parameters": job.parameters, "metrics": read_metrics(job) if seconds is not None else {}, "error": error}


def execute_all(jobs: list[Job], workers: int, display: live_display.Progress, poll: float = 0.25) -> list[dict]:
    """Run the jobs `workers` at a time in child processes, showing their events on `display`; rows in job order.

    On SIGINT or SIGTERM every worker and kernel is stopped, and Interrupted carries the rows, the unfinished
    notebooks marked "interrupted".
    """
    context = get_context()
    rows: list[dict | None] = [None] * len(jobs)
    waiting, running = deque(range(len(jobs))), {}
    stop = StopRequest()
    with signal_handler(stop):
        try:
            while (waiting or running) and stop.signum is None:
                while waiting and len(running) < workers:
                    index = waiting.popleft()
                    running[index] = start_worker(context, index, jobs[index])
                ready = wait_for_messages([worker.connection for worker in running.values()], timeout=poll)
                for worker in [w for w in running.values() if w.connection in ready]:
                    if receive(worker, jobs, rows, display):
                        del running[worker.index]
                display.tick()
        finally:
            if running:  # a signal, or an error of the runner itself: nothing may run on unseen
                stop_workers(list(running.values()))
            display.close()
    if stop.signum is not None:
        for index, job in enumerate(jobs):
            if rows[index] is None or rows[index]["status"] == "interrupted":
                started = running[index].started if index in running else None
                rows[index] = unfinished_row(job, stop.signum, None if started is None
                                             else time.monotonic() - started)
        raise Interrupted(stop.signum, rows)
    return rows


def receive(worker: Worker, jobs: list[Job], rows: list, display: live_display.Progress) -> bool:
    """Handle one message from a worker; True when the worker has ended (its pipe closed)."""
    try:
        message = worker.connection.recv()
    except EOFError:  # the worker has sent its row and exited, or died
        worker.process.join(10)
        worker.connection.close()
        if rows[worker.index] is None:
            code = worker.process.exitcode
            row = {"notebook": jobs[worker.index].notebook.stem, "status": "fail",
                   "seconds": round(time.monotonic() - worker.started, 1),
                   "parameters": jobs[worker.index].parameters, "metrics": {},
                   "error": f"the worker process ended without a result (exit code {code})"}
            if code in (128 + signal.SIGINT, 128 + signal.SIGTERM):  # stopped from outside the runner
                row |= {"status": "interrupted", "error": f"stopped by a signal (exit code {code})"}
            rows[worker.index] = row
            display.finish(row, result_line(row))
        return True
    if isinstance(message, live_display.Event):
        display.handle(message)
    else:
        rows[worker.index] = message
        display.finish(message, result_line(message))
    return False


# ---------------------------------------------------------------- writing results


def strip_outputs(notebook: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Clear outputs of cells tagged strip-output and drop papermill's per-run metadata."""
    notebook.metadata.pop("papermill", None)
    for cell in notebook.cells:
        cell.metadata.pop("papermill", None)
        cell.metadata.pop("execution", None)
        if cell.cell_type == "code" and STRIP_TAG in cell.metadata.get("tags", []):
            cell.outputs = []
            cell.execution_count = None
    return notebook


def write_notebook(path: Path, notebook: nbformat.NotebookNode) -> None:
    """Write a notebook atomically, byte for byte as nbformat.write would."""
    text = nbformat.writes(notebook)
    atomic_write(path, text if text.endswith("\n") else text + "\n")


def run_record(profile: str, seconds: float, when: datetime) -> dict:
    """What a committed notebook records of the run behind its outputs: profile, date, minutes, torch."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        torch_version = version("torch")  # the kernel's torch: the runner starts kernels from its own environment
    except PackageNotFoundError:
        torch_version = None
    return {"profile": profile, "date": f"{when:%Y-%m-%d}", "minutes": round(seconds / 60, 1), "torch": torch_version}


def commit_outputs(rows: list[dict], jobs: list[Job], profile: str = "default") -> list[str]:
    """Copy executed notebooks that passed with no injected parameters back over notebooks/, with the run's facts."""
    updated = []
    for row, job in zip(rows, jobs):
        if row["status"] != "pass" or job.parameters:
            continue
        notebook = strip_outputs(nbformat.read(job.output, as_version=4))
        notebook.metadata[RUN_FACTS] = run_record(profile, row["seconds"], datetime.now())
        write_notebook(job.notebook, notebook)
        updated.append(job.notebook.name)
    return updated


def summary_table(rows: list[dict], header: str) -> str:
    """The run as a Markdown table under `header`, with a line of totals."""
    lines = [header, "", "| notebook | status | minutes | headline metrics |", "|---|---|---|---|"]
    for row in rows:
        detail = format_metrics(row["metrics"]) if row["status"] == "pass" else f"**{row['error']}**"
        lines.append(f"| {row['notebook']} | {row['status']} | {row['seconds'] / 60:.1f} | {detail} |")
    total = sum(row["seconds"] for row in rows) / 60
    interrupted = sum(r["status"] == "interrupted" for r in rows)
    lines += ["", f"{sum(r['status'] == 'pass' for r in rows)}/{len(rows)} passed"
                  f"{f', {interrupted} interrupted' if interrupted else ''}, {total:.1f} notebook-minutes"]
    return "\n".join(lines)


def write_summary(rows: list[dict], out_dir: Path, header: str, problems: list[str] | None = None) -> str:
    """summary.json plus a Markdown table; return the table.

    With a `problems` list, a file that cannot be written (a full disk) is noted there and the other is still
    written; without one, the OSError is raised.
    """
    table = summary_table(rows, header)
    for name, text in (("summary.json", json.dumps(rows, indent=1)), ("summary.md", table + "\n")):
        try:
            atomic_write(out_dir / name, text)
        except OSError as err:
            if problems is None:
                raise
            problems.append(f"{name} ({err.strerror or err})")
    return table


# ---------------------------------------------------------------- the command line


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m course_utils.tools.runner", description=__doc__)
    parser.add_argument("--profile", default="default", help="a file in profiles/ (default: %(default)s)")
    parser.add_argument("--device", help="override the device of every notebook (auto, cpu, cuda, mps)")
    parser.add_argument("--epochs", type=int, help="override num_epochs of every notebook that trains")
    parser.add_argument("--threads", type=int, help="CPU threads per notebook (sets $COURSE_THREADS)")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                        help="override any parameter (YAML value, of the type of the notebook's default), "
                             "repeatable")
    parser.add_argument("--only", nargs="+", metavar="PREFIX", help="run only notebooks starting with these")
    parser.add_argument("--out", type=Path, help="run folder (default: runs/<profile>-<time>); never the lessons, "
                                                 "workspace/, or a folder of notebooks the runner did not write")
    parser.add_argument("--jobs", type=int, help="notebooks run at once (default: the profile's, else 1)")
    parser.add_argument("--prepare-only", action="store_true",
                        help="write parameterised copies without executing them (for nbval)")
    parser.add_argument("--commit", action="store_true",
                        help="copy executed notebooks back into notebooks/ "
                             "(only those run with no injected parameters)")
    parser.add_argument("--solutions", action="store_true",
                        help="fill every exercise with its reference solution; a check that is not correct fails "
                             "the notebook (each check cell is written with strict=True, also by --prepare-only)")
    return parser.parse_args(argv)


def cli_overrides(args: argparse.Namespace) -> dict:
    """Parameters forced from the command line, validated before anything runs."""
    overrides = {}
    for item in args.set:
        name, sep, value = item.partition("=")
        if not sep or not name.isidentifier():
            raise RunnerError(f"--set takes NAME=VALUE, got {item!r}")
        try:
            overrides[name] = yaml.safe_load(value)
        except yaml.YAMLError as err:
            raise RunnerError(f"--set {item}: {value!r} is not a YAML value ({profiles.yaml_problem(err)}); "
                              "quote text, e.g. --set name='a: b'") from None
    flags = {"device": args.device, "threads": args.threads, "num_epochs": args.epochs}
    overrides |= {name: value for name, value in flags.items() if value is not None}
    if "device" in overrides:
        from course_utils.core.devices import check_device_name
        try:
            check_device_name(overrides["device"])
        except (TypeError, ValueError) as err:
            raise RunnerError(str(err)) from None
    for name in ("threads", "num_epochs"):
        if overrides.get(name) is not None:
            try:
                check_count(name, overrides[name])
            except ValueError as err:
                raise RunnerError(str(err)) from None
    if args.jobs is not None and args.jobs < 1:
        raise RunnerError(f"--jobs must be a whole number >= 1, got {args.jobs}")
    return overrides


# what main() turns into one line and exit status 2: bad input, found by the runner or by what it reads
EXPECTED_ERRORS = (RunnerError, OSError, yaml.YAMLError, ValueError, nbformat.ValidationError)


def one_line(err: BaseException) -> str:
    """An expected error as one line, naming the file where there is one."""
    if isinstance(err, OSError) and err.filename:
        return f"{err.filename}: {err.strerror or err}"
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def main(argv: list[str] | None = None) -> int:
    """The command line: run (or prepare) the notebooks; 0 when all pass, 1 when one fails, 2 for bad input,
    128 + the signal (130, 143) when SIGINT or SIGTERM stopped the run."""
    args = parse_args(argv)
    with signal_handler(raise_interrupted):
        try:
            return run(args)
        except Interrupted as stop:
            print(f"runner: {stop}", file=sys.stderr)
            return stop.exit_code
        except EXPECTED_ERRORS as err:
            print(f"runner: error: {one_line(err)}", file=sys.stderr)
            return 2


def run(args: argparse.Namespace) -> int:
    """Plan every job from the profile and the command line, then execute them and write the summary."""
    profile = load_profile(args.profile)
    overrides = cli_overrides(args)
    out_dir = (args.out or RUNS / f"{args.profile}-{datetime.now():%Y%m%d-%H%M%S}").resolve()
    if args.solutions and args.commit:
        raise RunnerError("--solutions runs are never committed: the lessons keep their exercises unattempted")
    check_run_folder(out_dir)
    jobs = plan(profile, discover(args.only), out_dir, overrides)
    if args.solutions:
        for job in jobs:
            job.solutions, job.env = True, job.env | {STRICT_ENV: "1"}
    make_run_folder(out_dir, jobs)
    if args.prepare_only:
        for job in jobs:
            # no process runs here to pass $COURSE_THREADS on, so the copy carries the thread count itself
            threads = {"threads": int(job.env[THREADS_ENV])} if THREADS_ENV in job.env else {}
            prepared = papermill.execute_notebook(str(job.notebook), None, parameters=job.parameters | threads,
                                                  prepare_only=True, progress_bar=False)
            prepared.metadata.papermill["output_path"] = str(job.output)  # a rerun knows the file as its own
            write_notebook(job.output, fill_solutions(prepared) if job.solutions else prepared)
        print(f"prepared {len(jobs)} notebooks in {out_dir}")
        return 0
    workers = args.jobs or profile.get("jobs") or 1
    print(f"running {len(jobs)} notebooks at profile {args.profile!r}, {workers} at a time, into {out_dir}", flush=True)
    interrupted = None
    try:
        rows = execute_all(jobs, workers, live_display.choose([job.notebook.stem for job in jobs]))
    except Interrupted as stop:
        interrupted, rows = stop, stop.rows
    problems = write_results(args, profile, jobs, rows, out_dir)
    if interrupted:
        stopped = sum(row["error"] != "not started" for row in rows if row["status"] == "interrupted")
        not_started = sum(row["error"] == "not started" for row in rows)
        interrupted.detail = (f": stopped {stopped} running notebook(s), {not_started} not started; "
                              f"summary in {out_dir / 'summary.md'}")
        raise interrupted
    if problems:
        print(f"runner: error: could not write {', '.join(problems)} in {out_dir}: free some space or choose "
              "another --out, then rerun", file=sys.stderr)
        return 2
    return 0 if all(row["status"] == "pass" for row in rows) else 1


def write_results(args: argparse.Namespace, profile: dict, jobs: list[Job], rows: list[dict], out_dir: Path) \
        -> list[str]:
    """The summary, the HTML report, the resolved profile (and --commit's notebooks); what could not be written."""
    problems: list[str] = []
    title = f"Run `{args.profile}` ({datetime.now():%Y-%m-%d %H:%M})"
    print(write_summary(rows, out_dir, f"# {title}", problems))
    try:
        index = write_report(rows, out_dir, title.replace("`", ""), problems)
        print(f"HTML report: {index} (open it in a browser)")
    except OSError as err:
        problems.append(f"index.html ({err.strerror or err})")
    if args.commit:
        updated = commit_outputs(rows, jobs, args.profile)
        print(f"committed outputs of {len(updated)} notebooks: {', '.join(updated) or 'none'}")
    try:  # resolved: extends applied
        atomic_write(out_dir / "profile.yaml", yaml.safe_dump(profile, sort_keys=False))
    except OSError as err:
        problems.append(f"profile.yaml ({err.strerror or err})")
    return problems


if __name__ == "__main__":
    sys.exit(main())
