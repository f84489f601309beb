"""The main job: execute every lesson notebook with papermill at a profile, and summarise the run."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import uuid
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import datetime
from multiprocessing import Manager
from pathlib import Path

import nbformat
import papermill
import yaml

from course_utils.core.checks import THREADS_ENV, check_count
from course_utils.core.files import atomic_write
from course_utils.core.report import METRICS_ENV
from course_utils.core.training import PROGRESS_ENV
from course_utils.datasets.sources import PROJECT_ROOT
from course_utils.exercises import fill_solutions
from course_utils.exercises.framework import STRICT_ENV
from course_utils.tools import live_display
from course_utils.tools.report_html import format_metrics, write_report

NOTEBOOKS_DIR = PROJECT_ROOT / "notebooks"
PROFILES_DIR = PROJECT_ROOT / "profiles"
STRIP_TAG = "strip-output"
PROFILE_KEYS = {"description", "extends", "parameters", "notebooks", "threads", "jobs"}


class RunnerError(Exception):
    """A bad profile, notebook selection or command line, found before anything runs; main() prints it."""


@dataclass
class Job:
    """One notebook to run: where it is, where its executed copy goes, what is injected."""

    notebook: Path
    output: Path
    parameters: dict
    env: dict = field(default_factory=dict)
    solutions: bool = False  # run with every exercise's answer cell replaced by its reference solution


def merge(base: dict, override: dict) -> dict:
    """`base` updated by `override`; nested dicts merged key by key (a notebook block keeps what it does not set)."""
    merged = dict(base)
    for key, value in override.items():
        both_dicts = isinstance(value, dict) and isinstance(merged.get(key), dict)
        merged[key] = merge(merged[key], value) if both_dicts else value
    return merged


def load_profile(name: str, _chain: tuple[str, ...] = ()) -> dict:
    """Read profiles/<name>.yaml: `parameters` for every notebook, `notebooks` per stem, `threads`, `jobs`.

    `extends: <parent>` starts from the parent profile (itself resolved the same way) and merges this one over it.
    """
    if name in _chain:
        raise RunnerError(f"profiles extend each other in a cycle: {' -> '.join((*_chain, name))}")
    path = PROFILES_DIR / f"{name}.yaml"
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in PROFILES_DIR.glob("*.yaml")))
        extended = f" ({_chain[-1]}.yaml extends it)" if _chain else ""
        raise RunnerError(f"no profile {name!r}{extended} (looked for {path}); known profiles: {known}")
    profile = yaml.safe_load(path.read_text()) or {}
    if not isinstance(profile, dict):
        raise RunnerError(f"{path}: expected a mapping of {', '.join(sorted(PROFILE_KEYS))}")
    unknown = set(profile) - PROFILE_KEYS
    if unknown:
        raise RunnerError(f"{path}: unknown keys {sorted(unknown)}")
    parent = profile.pop("extends", None)
    if parent is None:
        return profile
    return merge(load_profile(str(parent), (*_chain, name)), profile)


def discover(selected: list[str] | None = None) -> list[Path]:
    """The lesson notebooks in order, optionally only those whose name starts with a selected prefix."""
    notebooks = sorted(p for p in NOTEBOOKS_DIR.glob("*.ipynb") if p.stem[0].isalnum())
    if selected:
        notebooks = [p for p in notebooks if any(p.stem.startswith(s) for s in selected)]
        if not notebooks:
            raise RunnerError(f"no notebook matches {selected}")
    return notebooks


def declared_parameters(notebook: Path) -> set[str]:
    """Names assigned in the notebook's `parameters` cell."""
    return set(papermill.inspect_notebook(str(notebook)))


def plan(profile: dict, notebooks: list[Path], out_dir: Path, overrides: dict) -> list[Job]:
    """Per notebook, the parameters it declares, from the profile's common, per-notebook and CLI values."""
    per_notebook = profile.get("notebooks") or {}
    unknown = set(per_notebook) - {p.stem for p in discover()}
    if unknown:
        raise RunnerError(f"profile names notebooks that do not exist: {sorted(unknown)}")
    common_profile = profile.get("parameters") or {}
    declared_anywhere = set().union(*(declared_parameters(p) for p in discover()))
    typos = set(common_profile) - declared_anywhere
    if typos:
        raise RunnerError(f"profile sets {sorted(typos)}, which no notebook declares")
    overrides = dict(overrides)
    threads = overrides.pop("threads", None)
    if threads is None:
        threads = profile.get("threads")
    env = {THREADS_ENV: str(threads)} if threads is not None else {}  # for the kernels, not this process
    env[PROGRESS_ENV] = "0"  # no progress bars in executed notebooks: their outputs are committed
    declared_here = set().union(*(declared_parameters(p) for p in notebooks))
    unused = set(overrides) - declared_here
    if unused:
        raise RunnerError(f"no selected notebook declares {sorted(unused)}: check the spelling "
                          "(each notebook's parameters cell lists what it takes)")
    jobs = []
    for notebook in notebooks:
        declared = declared_parameters(notebook)
        specific = per_notebook.get(notebook.stem) or {}
        typos = set(specific) - declared
        if typos:
            raise RunnerError(f"profile sets {sorted(typos)} for {notebook.stem}, which does not declare them")
        common = {k: v for k, v in common_profile.items() if k in declared}
        forced = {k: v for k, v in overrides.items() if k in declared}  # the command line wins
        parameters = common | specific | forced
        jobs.append(Job(notebook, out_dir / notebook.name, parameters, env))
    return jobs


# MPLBACKEND=Agg (set for CI's own processes) would make the lessons' figures vanish from their outputs
KERNEL_UNSET = {"MPLBACKEND"}


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
            return await super().start_kernel(**kw)

    return KernelManager


def source_of(job: Job) -> Path:
    """The notebook papermill reads: the lesson itself, or (--solutions) a copy with the solutions filled in."""
    if not job.solutions:
        return job.notebook
    filled = job.output.parent / "solution-sources" / job.notebook.name
    filled.parent.mkdir(parents=True, exist_ok=True)
    write_notebook(filled, fill_solutions(nbformat.read(job.notebook, as_version=4)))
    return filled


def execute(job: Job, events=None) -> dict:
    """Run one notebook with papermill in its own folder; return its row of the summary.

    `events` (a multiprocessing Manager queue, or None) receives a live_display.Event as the notebook and each code
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
        error = str(err).strip().splitlines()[-1] if str(err).strip() else type(err).__name__
    seconds = time.perf_counter() - start
    metrics = json.loads(metrics_file.read_text()) if metrics_file.exists() else {}
    return {"notebook": job.notebook.stem, "status": "fail" if error else "pass", "seconds": round(seconds, 1),
            "parameters": job.parameters, "metrics": metrics, "error": error}


def result_line(row: dict) -> str:
    """`pass in 12 s  metrics` or `fail in 3 s  (error)`."""
    parts = [f"{row['status']} in {row['seconds']:.0f} s", format_metrics(row["metrics"]),
             f"({row['error']})" if row["error"] else ""]
    return "  ".join(part for part in parts if part)


def execute_all(jobs: list[Job], workers: int, display: live_display.Progress, poll: float = 0.25) -> list[dict]:
    """Run the jobs `workers` at a time in child processes, showing their events on `display`; rows in job order."""
    with Manager() as manager, ProcessPoolExecutor(max_workers=workers) as pool:
        events = manager.Queue()  # a plain multiprocessing.Queue cannot be passed to pool workers
        futures = [pool.submit(execute, job, events) for job in jobs]
        pending = set(futures)
        try:
            while pending:
                done, pending = wait(pending, timeout=poll, return_when=FIRST_COMPLETED)
                while not events.empty():  # a notebook's events all arrive before its row is handled
                    display.handle(events.get())
                for future in sorted(done, key=futures.index):
                    row = future.result()
                    display.finish(row, result_line(row))
                display.tick()
        finally:
            display.close()
    return [future.result() for future in futures]


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


def commit_outputs(rows: list[dict], jobs: list[Job]) -> list[str]:
    """Copy executed notebooks that passed with no injected parameters back over notebooks/."""
    updated = []
    for row, job in zip(rows, jobs):
        if row["status"] != "pass" or job.parameters:
            continue
        notebook = strip_outputs(nbformat.read(job.output, as_version=4))
        write_notebook(job.notebook, notebook)
        updated.append(job.notebook.name)
    return updated


def write_summary(rows: list[dict], out_dir: Path, header: str) -> str:
    """summary.json plus a Markdown table; return the table."""
    atomic_write(out_dir / "summary.json", json.dumps(rows, indent=1))
    lines = [header, "", "| notebook | status | minutes | headline metrics |", "|---|---|---|---|"]
    for row in rows:
        detail = format_metrics(row["metrics"]) if row["status"] == "pass" else f"**{row['error']}**"
        lines.append(f"| {row['notebook']} | {row['status']} | {row['seconds'] / 60:.1f} | {detail} |")
    total = sum(row["seconds"] for row in rows) / 60
    lines += ["", f"{sum(r['status'] == 'pass' for r in rows)}/{len(rows)} passed, {total:.1f} notebook-minutes"]
    table = "\n".join(lines)
    atomic_write(out_dir / "summary.md", table + "\n")
    return table


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m course_utils.tools.runner", description=__doc__)
    parser.add_argument("--profile", default="default", help="a file in profiles/ (default: %(default)s)")
    parser.add_argument("--device", help="override the device of every notebook (auto, cpu, cuda, mps)")
    parser.add_argument("--epochs", type=int, help="override num_epochs of every notebook that trains")
    parser.add_argument("--threads", type=int, help="CPU threads per notebook (sets $COURSE_THREADS)")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                        help="override any parameter (YAML value), repeatable")
    parser.add_argument("--only", nargs="+", metavar="PREFIX", help="run only notebooks starting with these")
    parser.add_argument("--out", type=Path, help="run folder (default: runs/<profile>-<time>)")
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
        overrides[name] = yaml.safe_load(value)
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
    return overrides


def main(argv: list[str] | None = None) -> int:
    """The command line: run (or prepare) the notebooks; 0 when all pass, 1 when one fails, 2 for bad input."""
    args = parse_args(argv)
    try:
        return run(args)
    except RunnerError as err:
        print(f"runner: error: {err}", file=sys.stderr)
        return 2


def run(args: argparse.Namespace) -> int:
    """Plan every job from the profile and the command line, then execute them and write the summary."""
    profile = load_profile(args.profile)
    overrides = cli_overrides(args)
    out_dir = (args.out or PROJECT_ROOT / "runs" / f"{args.profile}-{datetime.now():%Y%m%d-%H%M%S}").resolve()
    if args.solutions and args.commit:
        raise RunnerError("--solutions runs are never committed: the lessons keep their exercises unattempted")
    jobs = plan(profile, discover(args.only), out_dir, overrides)
    if args.solutions:
        for job in jobs:
            job.solutions, job.env = True, job.env | {STRICT_ENV: "1"}
    out_dir.mkdir(parents=True, exist_ok=True)
    if args.prepare_only:
        for job in jobs:
            # no process runs here to pass $COURSE_THREADS on, so the copy carries the thread count itself
            threads = {"threads": int(job.env[THREADS_ENV])} if THREADS_ENV in job.env else {}
            prepared = papermill.execute_notebook(str(job.notebook), None, parameters=job.parameters | threads,
                                                  prepare_only=True, progress_bar=False)
            write_notebook(job.output, fill_solutions(prepared) if job.solutions else prepared)
        print(f"prepared {len(jobs)} notebooks in {out_dir}")
        return 0
    workers = args.jobs or profile.get("jobs") or 1
    print(f"running {len(jobs)} notebooks at profile {args.profile!r}, {workers} at a time, into {out_dir}", flush=True)
    rows = execute_all(jobs, workers, live_display.choose([job.notebook.stem for job in jobs]))
    title = f"Run `{args.profile}` ({datetime.now():%Y-%m-%d %H:%M})"
    print(write_summary(rows, out_dir, f"# {title}"))
    index = write_report(rows, out_dir, title.replace("`", ""))
    print(f"HTML report: {index} (open it in a browser)")
    if args.commit:
        updated = commit_outputs(rows, jobs)
        print(f"committed outputs of {len(updated)} notebooks: {', '.join(updated) or 'none'}")
    atomic_write(out_dir / "profile.yaml", yaml.safe_dump(profile, sort_keys=False))  # resolved: extends applied
    return 0 if all(row["status"] == "pass" for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
