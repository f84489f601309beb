"""What the main job shows while notebooks run: live status lines on a terminal, plain lines in CI or a log."""

from __future__ import annotations

import os
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple, TextIO

REDRAW_SECONDS = 1.0  # a terminal's status lines are redrawn at most once a second
PLAIN_SECONDS = 30.0  # without a terminal, one line per running notebook at most every 30 s


class Event(NamedTuple):
    """What a worker tells the parent: a notebook started (`cell` 0) or began its `cell`-th of `cells` code cells."""

    notebook: str
    cell: int = 0
    cells: int = 0
    source: str = ""  # the cell's first line of code


class CellEvents:
    """nbclient hooks (on_notebook_start, on_cell_start) that put an Event per code cell on a queue."""

    def __init__(self, notebook: str, queue) -> None:
        self.notebook, self.queue, self.code_cells = notebook, queue, []

    def on_notebook_start(self, notebook, **_) -> None:
        self.code_cells = [i for i, cell in enumerate(notebook.cells) if cell.cell_type == "code"]

    def on_cell_start(self, cell, cell_index: int, **_) -> None:
        if cell.cell_type != "code" or cell_index not in self.code_cells:
            return  # nbclient calls the hook for markdown cells too
        self.queue.put(Event(self.notebook, self.code_cells.index(cell_index) + 1, len(self.code_cells),
                             first_code_line(cell.source)))


def first_code_line(source: str, width: int = 50) -> str:
    """The cell's first line that is not blank or a comment, cut to `width` characters."""
    for line in source.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            return line if len(line) <= width else line[:width - 3].rstrip() + "..."
    return ""


def minutes(seconds: float) -> str:
    """Elapsed time as m:ss."""
    return f"{int(seconds) // 60}:{int(seconds) % 60:02d}"


@dataclass
class Running:
    """A notebook the parent has heard start and not yet finish."""

    position: int  # k of n, from the run's order
    started: float  # the parent's clock
    event: Event
    reported: float  # when a plain line last named it


class Progress:
    """Follows the run from worker events and finished rows; subclasses decide how it is drawn."""

    def __init__(self, notebooks: list[str], stream: TextIO | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.positions = {name: k for k, name in enumerate(notebooks, 1)}
        self.stream, self.clock = stream or sys.stdout, clock  # sys.stdout as it is now (pytest swaps it)
        self.running: dict[str, Running] = {}
        self.finished: set[str] = set()

    def label(self, notebook: str) -> str:
        return f"[{self.positions[notebook]}/{len(self.positions)}] {notebook}"

    def status(self, notebook: str, now: float) -> str:
        """`[k/n] name  m:ss  cell i/m: first line` for a running notebook."""
        run = self.running[notebook]
        cell = f"  cell {run.event.cell}/{run.event.cells}: {run.event.source}" if run.event.cell else "  starting"
        return f"{self.label(notebook)}  {minutes(now - run.started)}{cell}"

    def handle(self, event: Event) -> None:
        """Record a worker's event (events that arrive after the notebook's row are ignored)."""
        if event.notebook in self.finished:
            return
        now = self.clock()
        run = self.running.get(event.notebook)
        if run is None:
            self.running[event.notebook] = Running(self.positions[event.notebook], now, event, now)
            self.started(event.notebook)
        else:
            run.event = event

    def started(self, notebook: str) -> None:
        pass

    def finish(self, row: dict, line: str) -> None:
        """A notebook's row came back: print its result line."""
        self.running.pop(row["notebook"], None)
        self.finished.add(row["notebook"])
        self.write(f"{self.label(row['notebook'])}: {line}\n")

    def tick(self) -> None:
        """Called often by the parent's loop; draws when it is time to."""

    def close(self) -> None:
        pass

    def write(self, text: str) -> None:
        self.stream.write(text)
        self.stream.flush()


class PlainProgress(Progress):
    """Plain lines for logs and CI: a line when a notebook starts and finishes, and one every PLAIN_SECONDS between."""

    def started(self, notebook: str) -> None:
        self.write(f"{self.label(notebook)}: started\n")

    def tick(self) -> None:
        now = self.clock()
        for notebook, run in sorted(self.running.items(), key=lambda item: item[1].position):
            if now - run.reported >= PLAIN_SECONDS:
                run.reported = now
                self.write(self.status(notebook, now) + "\n")


class LiveProgress(Progress):
    """On a terminal: one status line per running notebook under the result lines, redrawn in place."""

    def __init__(self, *args, width: Callable[[], int] | None = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.width = width or (lambda: shutil.get_terminal_size().columns)
        self.drawn = 0  # status lines now on screen, below the cursor's line
        self.last_draw = float("-inf")

    def erase(self) -> None:
        if self.drawn:
            self.write(f"\x1b[{self.drawn}F\x1b[J")  # to the first status line's start, clear to the screen's end
            self.drawn = 0

    def finish(self, row: dict, line: str) -> None:
        self.erase()  # the result line takes the status lines' place; they come back at the next redraw
        super().finish(row, line)

    def tick(self) -> None:
        now = self.clock()
        if now - self.last_draw < REDRAW_SECONDS:
            return
        self.last_draw = now
        width = max(self.width() - 1, 20)  # a line that wraps would break the cursor-up count
        lines = [self.status(name, now)[:width] for name, _ in
                 sorted(self.running.items(), key=lambda item: item[1].position)]
        self.erase()
        self.write("".join(line + "\n" for line in lines))
        self.drawn = len(lines)

    def close(self) -> None:
        self.erase()


def choose(notebooks: list[str], stream: TextIO | None = None, environ: dict | None = None) -> Progress:
    """LiveProgress on an interactive terminal, PlainProgress when `stream` is no terminal or $CI is set."""
    stream, environ = stream or sys.stdout, os.environ if environ is None else environ
    in_ci = environ.get("CI", "").lower() in ("true", "1", "yes")
    interactive = getattr(stream, "isatty", lambda: False)() and environ.get("TERM") != "dumb"
    return LiveProgress(notebooks, stream) if interactive and not in_ci else PlainProgress(notebooks, stream)
