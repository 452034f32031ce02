"""Execute the report notebook in place, saying in the terminal what it is doing.

    python -m report.execute assignment2.ipynb [--timeout SECONDS]

``jupyter nbconvert --execute`` prints nothing until the whole notebook has run. This runs it with
nbclient the same way (no cell timings, no widget state, a cell timeout) and prints, to stderr,
which section and cell it is in, the training progress the notebook shows (runs done of total, the
current runs' epochs), a heartbeat whenever nothing else was printed for a few seconds, and one
summary line at the end. The saved notebook gets none of this: only the outputs the cells leave,
with the explorer saved as its static view (`static_widgets`), and its prose re-rendered from the
run's results.json (`report.prose`: the numbers and verdict words it quotes). On an error, a cell
whose prose was edited by hand, or Ctrl-C, the notebook on disk is left as it was.

The kernel computes with the kernels `helpers` pins (imported here first, so the kernel inherits
``OPENBLAS_CORETYPE`` and ``NPY_DISABLE_CPU_FEATURES``).

Ctrl-C interrupts the kernel (as Jupyter's stop button does: the training stops within a second
and keeps its finished runs in the cache), runs no further cell, shuts the kernel down and exits
with status 130; a second Ctrl-C kills the kernel at once.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import signal
import sys
import threading
import time
from pathlib import Path

import helpers  # noqa: F401  (first: it pins the kernels, and the kernel inherits the pins)
import nbformat
from jupyter_core.utils import ensure_async
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

from report import prose
from report import timing
from report.configurations import report_settings

PROGRESS_EVERY = 3.0    # seconds between two training-progress lines
HEARTBEAT_AFTER = 8.0   # seconds of silence before a "still running" line


# ================================================================================================
# What to say: the section a cell belongs to, the notebook's own progress displays
# ================================================================================================

def section_titles(nb) -> list[str]:
    """For every cell, the title of the nearest Markdown heading at or above it ('' before any)."""
    titles, current = [], ""
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            for line in cell.source.splitlines():
                if line.startswith("#"):
                    current = line.lstrip("#").strip()
        titles.append(current)
    return titles


WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


def static_widgets(nb) -> None:
    """Drop the live-widget view from every output that also carries a static view (HTML or an
    image): the saved report stores no widget state, so the view could only say "model not
    found", and its model id is new on every run. What is saved is the static view (the
    hidden-unit explorer's: its HTML with sliders that need no kernel, and a PNG); running the
    cell brings the live widget back."""
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if WIDGET_VIEW in data and ("image/png" in data or "text/html" in data):
                del data[WIDGET_VIEW]


def progress_text(msg: dict) -> str | None:
    """The text of a display that updates in place (the notebook's training progress), as one
    line; None for every other message."""
    content = msg["content"]
    transient = content.get("transient") or {}
    if msg["msg_type"] not in ("display_data", "update_display_data") or not transient.get("display_id"):
        return None
    text = content.get("data", {}).get("text/plain")
    if not text:
        return None
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    # a run's line without its step and validation loss: "<run>: epoch 7/50, val acc 95.37%"
    lines = [re.sub(r", (step \d+|val loss [^,]+)(?=,|$)", "", line) for line in lines]
    return " ".join(lines[:1] + ["; ".join(lines[1:])]).strip()


class Terminal:
    """Timestamped lines on a stream, and a heartbeat thread that speaks up after
    ``HEARTBEAT_AFTER`` seconds of silence."""

    def __init__(self, stream=sys.stderr):
        self.stream, self.start = stream, time.monotonic()
        self.last, self.doing = self.start, "(starting the kernel)"
        self._lock, self._stop = threading.Lock(), threading.Event()
        self._thread = threading.Thread(target=self._heartbeat, daemon=True)

    def say(self, text: str) -> None:
        with self._lock:
            now = time.monotonic()
            print(f"[{now - self.start:6.1f} s] {text}", file=self.stream, flush=True)
            self.last = now

    def _heartbeat(self) -> None:
        while not self._stop.wait(1.0):
            if self.doing and time.monotonic() - self.last >= HEARTBEAT_AFTER:
                self.say(f"  ... still running {self.doing}")

    def __enter__(self) -> "Terminal":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


# ================================================================================================
# The client: nbclient's, with a word to the terminal at each cell and each progress update
# ================================================================================================

class Interrupted(Exception):
    """Ctrl-C: stop before the next cell."""


class ReportClient(NotebookClient):
    """A NotebookClient that reports to a `Terminal` as it goes, and stops cleanly on Ctrl-C."""

    def __init__(self, nb, terminal: Terminal, **kwargs):
        super().__init__(nb, on_cell_start=self._cell_start, on_cell_executed=self._cell_done,
                         **kwargs)
        self.terminal, self.titles = terminal, section_titles(nb)
        self.code_cells = [i for i, c in enumerate(nb.cells) if c.cell_type == "code"]
        self.last_progress, self.summary, self.last_cell_done = 0.0, "", None
        self.interrupted = 0

    def _cell_start(self, cell, cell_index: int) -> None:
        if cell.cell_type != "code":
            return
        n = self.code_cells.index(cell_index) + 1
        where = self.titles[cell_index] or "the start"
        self.terminal.doing = f"cell {n}/{len(self.code_cells)} ({where})"
        self.terminal.say(f"cell {n}/{len(self.code_cells)}: {where}")

    def _cell_done(self, cell, cell_index: int, execute_reply) -> None:
        self.last_cell_done = time.perf_counter()

    def process_message(self, msg, cell, cell_index):
        text = progress_text(msg)
        if text is not None:
            now = time.monotonic()
            if " runs: " in text:                 # run_experiments' closing summary
                self.summary = text
                self.terminal.say(f"  {text}")
            elif now - self.last_progress >= PROGRESS_EVERY:
                self.last_progress = now
                self.terminal.say(f"  {text}")
        return super().process_message(msg, cell, cell_index)

    # Ctrl-C. nbclient's own SIGINT handler shuts the kernel down from under the running cell
    # (an AssertionError or CancelledError traceback follows); this one interrupts the kernel
    # instead, the cell ends with KeyboardInterrupt, no further cell runs, and nbclient then shuts
    # the kernel down as after any error.

    async def async_start_new_kernel(self, **kwargs) -> None:
        asyncio.get_running_loop().add_signal_handler(signal.SIGINT, self._on_sigint)
        await super().async_start_new_kernel(**kwargs)

    def _on_sigint(self) -> None:
        self.interrupted += 1
        self.shutdown_kernel = "immediate"         # nothing to save: no graceful shutdown (~2 s)
        if self.km is None or not self.km.has_kernel:
            return                                 # still starting: stop before the first cell
        if self.interrupted == 1:
            self.terminal.say("Ctrl-C: interrupting the kernel (Ctrl-C again kills it)")
            asyncio.ensure_future(ensure_async(self.km.interrupt_kernel()))
        else:
            self.terminal.say("Ctrl-C again: killing the kernel")
            asyncio.ensure_future(ensure_async(self.km.shutdown_kernel(now=True)))

    async def async_execute_cell(self, cell, cell_index, *args, **kwargs):
        if self.interrupted:
            raise Interrupted
        return await super().async_execute_cell(cell, cell_index, *args, **kwargs)


def execute(path: Path, timeout: int) -> str:
    """Run the notebook at ``path`` in place (its folder as the working directory); returns the
    one-line summary. Raises (leaving the file untouched) if a cell fails or on Ctrl-C."""
    nb = nbformat.read(path, as_version=4)
    settings = report_settings()
    results_path = settings.figure_dir / "results.json"
    before = json.loads(results_path.read_text()) if results_path.is_file() else None
    with Terminal() as terminal:
        terminal.say(f"executing {path.name} ({sum(c.cell_type == 'code' for c in nb.cells)} "
                     f"code cells); Ctrl-C stops it and leaves the file as it was")
        client = ReportClient(nb, terminal, timeout=timeout, kernel_name="python3",
                              record_timing=False, store_widget_state=False,
                              # nothing to save at the end: no graceful shutdown (~2.5 s)
                              shutdown_kernel="immediate",
                              # (no "running over TCP without encryption" warning in the terminal)
                              extra_arguments=["--IPKernelApp.log_level=ERROR"],
                              resources={"metadata": {"path": str(path.parent)}})
        try:
            client.execute()
            if client.last_cell_done is not None:
                timing.record("kernel shutdown", time.perf_counter() - client.last_cell_done)
        except Exception as err:
            if client.interrupted:
                raise KeyboardInterrupt from err
            raise
        if client.interrupted:       # after the last cell had started
            raise KeyboardInterrupt
        static_widgets(nb)
        if settings.quick:
            terminal.say("quick mode: the prose keeps the numbers it quotes (from the full report)")
        else:
            with timing.phase("prose re-rendering"):
                new = json.loads(results_path.read_text())
                changed = prose.rerender(nb, new, [before, prose.committed_results(results_path)])
            env = new.get("environment", {})
            terminal.say(f"prose: {changed} Markdown cells re-rendered from {results_path.name} "
                         f"(OpenBLAS {env.get('blas_core') or '?'} kernels)")
        nbformat.write(nb, path)
        seconds = time.monotonic() - terminal.start
        runs = f"; {client.summary}" if client.summary else ""
        summary = f"{path.name}: {len(client.code_cells)} cells run in {seconds:.0f} s{runs}"
        terminal.say(summary)
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("notebook", type=Path)
    parser.add_argument("--timeout", type=int, default=1800,
                        help="seconds one cell may take (default 1800)")
    args = parser.parse_args(argv)
    if not args.notebook.is_file():
        parser.error(f"{args.notebook} is not a file")
    try:
        execute(args.notebook.resolve(), args.timeout)
    except CellExecutionError as err:
        print(f"\nA cell failed; {args.notebook} was not changed.\n{err}", file=sys.stderr)
        return 1
    except prose.ProseEdited as err:
        print(f"\n{err}\n{args.notebook} was not changed.", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"\nInterrupted; {args.notebook} was not changed. Runs that finished are in the "
              "cache: running the notebook again resumes from them.", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
