"""Where the report's seconds go: a profile of a cold ``make report`` and of a warm re-execution,
and how far the cold run is from the limit the work itself sets.

    MNIST_DIR=/path/to/mnist .venv/bin/python benchmarks/bench_report.py [--json PATH] [--native]
    .venv/bin/python benchmarks/bench_report.py --compare BEFORE.json AFTER.json

In one run, in this order (progress on stderr, Markdown tables on stdout):

1. **The yardstick**: 20 float32 products (30,000, 785) @ (785, 64), whole ``a @ b``, BLAS on one
   thread, best of 3, in seconds: a number another machine can compare with.
2. **The GEMM throughput of the report's cores**: ``os.cpu_count()`` processes at once, each with
   BLAS pinned to one thread (`report.experiments.single_threaded_blas`, as the report's workers
   run), each computing a check's products: (2048, 785) @ (785, 64) blocks over a 30,000-row
   float32 matrix, as ``helpers.SoftmaxModel.predict`` does (``helpers.matmul``). Their
   multiply-adds per second, summed (the best of 3 synchronised rounds of about a second).
3. **The cold report, as ``make report`` runs it**: a copy of the notebook in the project folder
   (``.rerun-bench-<pid>.ipynb``, git-ignored, so that the kernel's working directory is the
   project and ``import helpers`` works; deleted afterwards) executed by `report.execute` with
   ``--timeout 1800``, a clean cache and figure folder in a temporary directory, ``A2_QUICK`` as
   given (default 0) and ``A2_PROFILE`` naming a JSON-lines file that the kernel, its worker
   processes and report.execute append their phases to (`report.timing`). report.execute runs
   with nbclient's ``record_timing`` off; to read each cell's wall time it is started as
   ``python -c`` with `EXECUTE_WITH_TIMING`, which runs report.execute's own ``main`` with one
   change: its client records the timing (a few timestamps per cell in the saved copy). Then the
   two exports exactly as the Makefile's ``html`` and ``pdf`` targets make them (nbconvert with
   ``--config export/nbconvert_config.py``, then ``export/check_html.py`` and
   ``export/check_pdf.py`` with the Makefile's arguments; `export_commands`) on that executed
   copy, written to the temporary directory, and side by side, as ``make report`` runs the two
   targets (``$(MAKE) --jobs=2 html pdf``): each command timed on its own, and the two together
   (`run_exports`).
4. **The warm re-execution, as a person runs it**: the same copy executed again, cache warm, by
   ``jupyter nbconvert --to notebook --execute --inplace`` (which records cell timing itself),
   with its own ``A2_PROFILE`` file.
5. With ``--native`` (AVX-512 processors only): 3 and 4 again, without the exports, with the
   kernels the processor would pick itself (``OPENBLAS_CORETYPE=SkylakeX``,
   ``NPY_DISABLE_CPU_FEATURES=''``), checked against the kernels results.json records, printed
   against the pinned run as ``--compare`` prints two runs: what the kernel pin costs.

What the tables say:

* **Phases** (seconds of wall time, cold and warm): the phases `report.timing` records, summed over
  calls and over the kernel and report.execute (`run_profile`); kernel start-up (from the command's
  start to the first cell: report.execute's or nbconvert's imports included); kernel shutdown
  (report.execute records it, from the last cell's end until its client returns; nbconvert does
  not, so in the warm run it is everything after the last cell: the shutdown, the notebook's
  write, exit); after the kernel (report.execute's notebook write and exit); "other" (the cells'
  wall time in no phase, and the gaps between cells); then the exports. The rows add up to the
  notebook's wall time; the cold ``make report`` is that plus the exports' wall time (without
  ``rm -rf cache`` and make itself; the four export rows overlap, two at a time). Below, in
  core-seconds inside the runs phase: the worker processes' phases, their capacity (Σ over the
  calls of `report.experiments.run_experiments` that trained: processes × the call's wall time;
  processes = the call's distinct worker pids, which is min(cpu_count, runs it trained)) and the
  **idle core-seconds** during training: capacity − summed "worker busy (training)".
* **Cells**: each code cell's wall time by its cell id (the kernel's busy-to-idle timestamps),
  before the first cell, between cells, after the last cell.
* **The limit**: the multiply-adds the protocol did in the cold run, counted from the cache's run
  files (`cache_multiply_adds`; per run: steps × `report.analysis.step_multiply_adds`, checks ×
  the forward pass over the training and validation sets, checks × the 512-image probe forward and
  backward, and the held-out scoring where the run records it), divided by the GEMM throughput of
  2: the shortest the cold report's training could be. The cold notebook's, the runs phase's and
  the cold ``make report``'s wall times are printed as multiples of it. (Not counted: the
  scikit-learn cross-check, the gradient checks, figures; a step's small products run well below
  the throughput of a check's large ones, so the limit is optimistic.)
* Peak memory: the summed resident memory of the command's process tree (report.execute or
  nbconvert, the kernel and its workers), sampled every 0.2 s.

``--json PATH`` writes every number; ``--compare BEFORE.json AFTER.json`` prints the phase table of
two such files side by side, cold and warm, with the change. Before each timed step the script
waits up to ``--max-wait`` seconds for the CPUs to be idle (``bench_train.wait_for_idle``), and it
prints how busy the machine was. Nothing committed may change: the script compares ``git status``
before and after and exits 1 if it differs (another person's edits meanwhile would count too).

Caveats: report.timing's lines carry no start time, so nested phases cannot be told apart; one is
known: the kernel's "environment read-back" inside "runs" (a few milliseconds, counted twice, so
"other" is that much too small). report.execute's own read-back at import is taken out of the
kernel start-up row.

Targets (full report, 2 cores): cold notebook < 300 s, warm notebook < 20 s, peak memory < 2 GB.
"""

from __future__ import annotations

import argparse
import collections
import datetime
import json
import math
import os
import platform
import resource
import shlex
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
PROJECT_DIR = BENCH_DIR.parent
#: The environment this script was started with, before helpers pins the kernels in it: what
#: ``make report`` would start report.execute with (which pins them the same way).
START_ENV = dict(os.environ)
for _folder in (PROJECT_DIR, BENCH_DIR):
    if str(_folder) not in sys.path:
        sys.path.insert(0, str(_folder))

import helpers  # noqa: E402  (first: it pins the kernels NumPy loads, as the report's processes do)
import numpy as np  # noqa: E402
from bench_pin import children_cpu_seconds, cpu_jiffies  # noqa: E402
from bench_train import wait_for_idle  # noqa: E402
from report.analysis import step_multiply_adds  # noqa: E402
from report.experiments import single_threaded_blas  # noqa: E402

NOTEBOOK = PROJECT_DIR / "assignment2.ipynb"
TIMEOUT = 1800                         # seconds per cell, as the Makefile's EXECUTE
#: The Makefile's HEADINGS: each export must have a heading "Task <t>" for each of these.
TASKS = ("1a", "1b", "2a", "2b", "2c", "2d", "3a", "3b", "3c", "4a", "4b", "4c", "4d", "4e")
TARGETS = {"cold": 300.0, "warm": 20.0, "memory_gb": 2.0}
#: --native: an AVX-512 processor's own kernels instead of the ones helpers.pin_kernels pins
#: ('' is set-but-empty: helpers leaves it, and NumPy then disables nothing; as bench_pin.py).
NATIVE = {"OPENBLAS_CORETYPE": "SkylakeX", "NPY_DISABLE_CPU_FEATURES": ""}

# The protocol's shapes (helpers.train's check, helpers.SoftmaxModel.predict).
INPUTS, HIDDEN = 785, 64               # a check's first product: (rows, 785) @ (785, 64)
CHECK_ROWS = 30_000                    # a check's forward pass: 20,000 training + 10,000 validation
PREDICT_ROWS = helpers.PREDICT_ROWS    # predict's blocks: 2048 rows
PROBE_IMAGES = 512                     # a check's gradient-norm probe: the first training images
HELD_OUT_IMAGES = helpers.NUM_HELD_OUT  # held-out scoring of a run's kept weights: 40,000 images
YARDSTICK_PRODUCTS, YARDSTICK_REPEATS = 20, 3

# The phases report.timing records, in the order the report runs them, and this script's rows.
RUNS = "runs: trained, or read from the cache"
PHASE_ORDER = (RUNS, "figures", "tables", "gradient checks", "explorer PNGs",
               "scikit-learn cross-check", "environment read-back", "results.json")
#: Phases report.execute records after the last cell, in the order it records them (the others
#: it records, at import, come before the kernel starts).
KERNEL_SHUTDOWN = "kernel shutdown"
AFTER_KERNEL = (KERNEL_SHUTDOWN, "prose re-rendering")
WORKER_STARTUP, WORKER_BUSY = "worker start-up (data)", "worker busy (training)"
WORKER_PHASES = (WORKER_STARTUP, WORKER_BUSY)
START_UP = "kernel start-up (before the first cell)"
SHUTDOWN = "kernel shutdown (after the last cell)"
AFTER_SHUTDOWN = "after the kernel: notebook written, exit"
OTHER = "other (in cells, in no phase; between cells)"
NOTEBOOK_WALL = "**notebook (wall)**"
#: The Makefile's two export targets, each a chain of two commands; make report runs them side by
#: side ($(MAKE) --jobs=2 html pdf).
EXPORT_CHAINS = (("HTML export (nbconvert)", "HTML check (check_html.py)"),
                 ("PDF export (nbconvert, xelatex)", "PDF check (check_pdf.py)"))
EXPORTS_WALL = "exports (wall: HTML and PDF side by side)"
MAKE_REPORT_WALL = "**make report (wall: notebook + exports)**"
CAPACITY = "processes × wall of the runs phase"
IDLE = "**idle core-seconds during training**"

# The cold run: report.execute's own main, its client recording each cell's timing.
EXECUTE_WITH_TIMING = """\
import sys
from report import execute

class TimedReportClient(execute.ReportClient):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **{**kwargs, "record_timing": True})

execute.ReportClient = TimedReportClient
sys.exit(execute.main(sys.argv[1:]))
"""


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


# ================================================================================================
# 1-2. The yardstick and the cores' GEMM throughput
# ================================================================================================

def yardstick(products: int = YARDSTICK_PRODUCTS, repeats: int = YARDSTICK_REPEATS) -> float:
    """Seconds for ``products`` float32 products (30,000, 785) @ (785, 64), whole ``a @ b``, BLAS
    on one thread: the best of ``repeats``."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((CHECK_ROWS, INPUTS), dtype=np.float32)
    b = rng.standard_normal((INPUTS, HIDDEN), dtype=np.float32)
    best = math.inf
    with single_threaded_blas():
        a @ b                                                    # warm-up
        for _ in range(repeats):
            start = time.perf_counter()
            for _ in range(products):
                a @ b
            best = min(best, time.perf_counter() - start)
    return best


def check_pass(X: np.ndarray, W: np.ndarray) -> None:
    """A check's first product as predict computes it: X (N, 785) @ W (785, 64) in blocks of
    PREDICT_ROWS rows (N × 785 × 64 multiply-adds)."""
    for start in range(0, X.shape[0], PREDICT_ROWS):
        helpers.matmul(X[start:start + PREDICT_ROWS], W)


def gemm_worker(barrier, rounds: int, seconds: float, results) -> None:
    """One process of `gemm_throughput`: for each of ``rounds`` rounds, wait at ``barrier`` for
    the others, then run `check_pass` over a 30,000-row float32 matrix for about ``seconds`` s;
    puts the list of its multiply-adds per second, one per round, on ``results``."""
    rng = np.random.default_rng(os.getpid())
    X = rng.standard_normal((CHECK_ROWS, INPUTS), dtype=np.float32)
    W = (rng.standard_normal((INPUTS, HIDDEN), dtype=np.float32) / 28).astype(np.float32)
    rates = []
    with single_threaded_blas():
        check_pass(X, W)                                         # warm-up
        for _ in range(rounds):
            barrier.wait(timeout=300)
            start, passes = time.perf_counter(), 0
            while (elapsed := time.perf_counter() - start) < seconds:
                check_pass(X, W)
                passes += 1
            rates.append(passes * CHECK_ROWS * INPUTS * HIDDEN / elapsed)
    results.put(rates)


def gemm_throughput(processes: int, rounds: int = 3, seconds: float = 1.0) -> dict:
    """The aggregate float32 GEMM throughput of ``processes`` processes at once (each BLAS on one
    thread, `gemm_worker`): dict(rate = the best round's summed multiply-adds per second,
    rounds = every round's sum, per_process = the best round's per-process rates)."""
    import multiprocessing as mp
    ctx = mp.get_context("spawn")          # fresh processes: their kernels are pinned as ours
    barrier, results = ctx.Barrier(processes), ctx.Queue()
    procs = [ctx.Process(target=gemm_worker, args=(barrier, rounds, seconds, results))
             for _ in range(processes)]
    for proc in procs:
        proc.start()
    try:
        per_process = [results.get(timeout=600) for _ in procs]
    finally:
        for proc in procs:
            proc.join(timeout=10)
            if proc.is_alive():
                proc.kill()
    sums = [sum(rates[r] for rates in per_process) for r in range(rounds)]
    best = max(range(rounds), key=sums.__getitem__)
    return dict(rate=sums[best], rounds=sums, per_process=[rates[best] for rates in per_process],
                processes=processes, shape=f"({PREDICT_ROWS}, {INPUTS}) @ ({INPUTS}, {HIDDEN}) "
                                            f"blocks over {CHECK_ROWS:,} rows, float32")


# ================================================================================================
# 3-5. Running the report: the notebook's copy, the commands, their wall time and memory
# ================================================================================================

def tree_rss(pid: int) -> int:
    """Summed resident memory (bytes) of ``pid`` and all its descendants, from /proc."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            fields = stat[stat.rindex(")") + 2:].split()
            children.setdefault(int(fields[1]), []).append(int(entry.name))
            rss[int(entry.name)] = int(fields[21]) * os.sysconf("SC_PAGE_SIZE")
        except (OSError, ValueError, IndexError):
            continue
    total, stack = 0, [pid]
    while stack:
        p = stack.pop()
        total += rss.get(p, 0)
        stack.extend(children.get(p, []))
    return total


def run_command(command: list[str], env: dict, label: str, max_wait: float) -> dict:
    """Run ``command`` in the project folder, its output passed on to stderr as it comes; return
    dict(start, end: time.time() around it, seconds, peak_rss: bytes, the summed RSS of its process
    tree at its largest, pid). Raises RuntimeError, with the output's tail, if it fails."""
    if max_wait > 0:
        wait_for_idle(max_wait)
    shown = ["<EXECUTE_WITH_TIMING>" if "\n" in arg else arg for arg in command]
    say(f"[{label}] {shlex.join(shown[:12])}{' ...' if len(shown) > 12 else ''}")
    tail: collections.deque[str] = collections.deque(maxlen=60)
    start = time.time()
    process = subprocess.Popen(command, cwd=PROJECT_DIR, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    peak, done = 0, threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, tree_rss(process.pid))
            done.wait(0.2)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    for line in process.stdout:
        tail.append(line)
        say(f"    {label}: {line.rstrip()}")
    process.wait()
    end = time.time()
    done.set()
    sampler.join()
    if process.returncode:
        raise RuntimeError(f"{label} failed (exit status {process.returncode}):\n"
                           + "".join(tail))
    say(f"[{label}] {end - start:.1f} s")
    return dict(start=start, end=end, seconds=end - start, peak_rss=peak, pid=process.pid)


def report_env(base: dict, folder: Path, profile: Path, kernels: dict | None = None) -> dict:
    """``base`` with the report's variables: the cache and figures in ``folder``, A2_PROFILE,
    A2_QUICK as given (default 0), and ``kernels`` (None: helpers pins them, as in make report)."""
    return {**base, **(kernels or {}), "A2_QUICK": base.get("A2_QUICK", "0"),
            "A2_CACHE_DIR": str(folder / "cache"), "A2_FIGURE_DIR": str(folder / "figures"),
            "A2_PROFILE": str(profile)}


def jupyter() -> list[str]:
    """The ``jupyter`` command of this Python's environment (the Makefile's ``$(BIN)/jupyter``)."""
    script = Path(sys.executable).with_name("jupyter")
    return [str(script)] if script.exists() else [sys.executable, "-m", "jupyter"]


def export_commands(notebook: Path, out_dir: Path | None) -> dict[str, list[str]]:
    """The Makefile's ``html`` and ``pdf`` recipes for ``notebook``, by row name, each output
    (assignment2.html, assignment2.pdf) written to ``out_dir`` (None: beside the notebook, as
    make writes them for assignment2.ipynb)."""
    export = jupyter() + ["nbconvert", "--config", "export/nbconvert_config.py"]
    headings = [arg for task in TASKS for arg in ("--require-heading", f"Task {task}")]
    where = [] if out_dir is None else ["--output-dir", str(out_dir), "--output", "assignment2"]
    html, pdf = (Path(out_dir or "") / f"assignment2.{ext}" for ext in ("html", "pdf"))
    (html_export, html_check), (pdf_export, pdf_check) = EXPORT_CHAINS
    return {html_export: export + ["--to", "html", str(notebook)] + where,
            html_check: [sys.executable, "export/check_html.py", str(html), "--require-explorer",
                         *headings],
            pdf_export: export + ["--to", "pdf", str(notebook)] + where,
            pdf_check: [sys.executable, "export/check_pdf.py", str(pdf), "--notebook",
                        str(notebook), *headings, "--heading-by-page", "Appendix A=9"]}


def run_exports(commands: dict[str, list[str]], env: dict, max_wait: float) -> dict[str, float]:
    """The export ``commands`` (`export_commands`) as make report runs them: the HTML chain and the
    PDF chain (`EXPORT_CHAINS`) side by side, each command after the one before it in its chain.
    Returns row -> seconds: each command's wall time, and the two chains' together
    (`EXPORTS_WALL`). Raises RuntimeError if a command fails."""
    if max_wait > 0:
        wait_for_idle(max_wait)
    seconds: dict[str, float] = {}
    errors: list[Exception] = []

    def chain(labels: tuple[str, ...]) -> None:
        try:
            for label in labels:
                seconds[label] = run_command(commands[label], env, label, 0.0)["seconds"]
        except Exception as err:            # reported after both chains have ended
            errors.append(err)

    start = time.time()
    threads = [threading.Thread(target=chain, args=(labels,)) for labels in EXPORT_CHAINS]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return {label: seconds[label] for labels in EXPORT_CHAINS for label in labels} | {
        EXPORTS_WALL: time.time() - start}


def execute_cold(copy: Path, env: dict, max_wait: float) -> dict:
    """`report.execute` on ``copy`` (`EXECUTE_WITH_TIMING`), as ``make report``'s EXECUTE."""
    command = [sys.executable, "-c", EXECUTE_WITH_TIMING, "--timeout", str(TIMEOUT), str(copy)]
    return run_command(command, env, "cold: report.execute", max_wait)


def execute_warm(copy: Path, env: dict, max_wait: float) -> dict:
    """``jupyter nbconvert --to notebook --execute --inplace`` on ``copy``, cell timing on."""
    command = jupyter() + ["nbconvert", "--to", "notebook", "--execute", "--inplace",
                           "--ExecutePreprocessor.record_timing=True", str(copy)]
    return run_command(command, env, "warm: nbconvert --execute --inplace", max_wait)


def profile_notebook(run: dict, copy: Path, profile: Path) -> dict:
    """`run_profile` of a finished notebook run: its A2_PROFILE lines and its cells' timing."""
    cells = cell_times(json.loads(copy.read_text()))
    result = run_profile(read_records(profile), cells, run["start"], run["end"], run["pid"])
    result["peak_rss"] = run["peak_rss"]
    return result


def results_core(folder: Path) -> str | None:
    """The OpenBLAS kernel family the run's results.json records."""
    path = folder / "figures" / "results.json"
    if not path.exists():
        return None
    return json.loads(path.read_text()).get("environment", {}).get("blas_core")


def cold_and_warm(base_env: dict, kernels: dict | None, exports: bool, max_wait: float,
                  name: str) -> dict:
    """The cold report (`execute_cold`, then the exports if ``exports``) and the warm rerun
    (`execute_warm`) on a fresh copy of the notebook with a clean cache in a temporary folder:
    dict(cold, warm: `profile_notebook` results (the cold one with the exports' rows), work:
    `cache_multiply_adds` of the cold cache, blas_core: from results.json). The copy is deleted
    whatever happens."""
    copy = PROJECT_DIR / f".rerun-bench-{os.getpid()}-{name}.ipynb"
    with tempfile.TemporaryDirectory(prefix="bench-report-") as tmp:
        folder = Path(tmp)
        try:
            shutil.copy(NOTEBOOK, copy)
            cold_env = report_env(base_env, folder, folder / "cold.jsonl", kernels)
            cold = profile_notebook(execute_cold(copy, cold_env, max_wait), copy,
                                    folder / "cold.jsonl")
            work = cache_multiply_adds(folder / "cache")
            if exports:
                out = folder / "exports"
                out.mkdir()
                cold["phases"].update(run_exports(export_commands(copy, out), cold_env, max_wait))
                cold["phases"][MAKE_REPORT_WALL] = (cold["phases"][NOTEBOOK_WALL]
                                                    + cold["phases"][EXPORTS_WALL])
            warm_env = report_env(base_env, folder, folder / "warm.jsonl", kernels)
            warm = profile_notebook(execute_warm(copy, warm_env, max_wait), copy,
                                    folder / "warm.jsonl")
            core = results_core(folder)
        finally:
            copy.unlink(missing_ok=True)
    return dict(cold=cold, warm=warm, work=work, blas_core=core)


# ================================================================================================
# Reading what a run left: its A2_PROFILE lines, its cells' timing, its cache's multiply-adds
# ================================================================================================

def read_records(path: str | os.PathLike) -> list[dict]:
    """The lines `report.timing.phase` appended to ``path``, in order: dicts with phase, seconds,
    pid. A missing file (nothing recorded) gives []."""
    path = Path(path)
    if not path.exists():
        return []
    records = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if line.strip():
            try:
                record = json.loads(line)
                records.append(dict(phase=str(record["phase"]), seconds=float(record["seconds"]),
                                    pid=int(record["pid"])))
            except (ValueError, KeyError, TypeError) as err:
                raise ValueError(f"{path}, line {number}: not a report.timing record "
                                 f"({err}): {line[:200]!r}") from None
    return records


def cell_times(nb: dict) -> list[tuple[str, float, float]]:
    """(cell id, start, end) of every code cell that ran, in order: the kernel's busy and idle
    timestamps that nbclient's record_timing stored (seconds since the epoch). A cell without an
    id is named ``cell <index>``. Raises ValueError if no cell has its timing."""
    def seconds(stamp: str) -> float:
        return datetime.datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()

    cells = []
    for index, cell in enumerate(nb["cells"]):
        timing = cell.get("metadata", {}).get("execution", {})
        if cell["cell_type"] == "code" and {"iopub.status.busy",
                                            "iopub.status.idle"} <= set(timing):
            cells.append((cell.get("id") or f"cell {index}", seconds(timing["iopub.status.busy"]),
                          seconds(timing["iopub.status.idle"])))
    if not cells:
        raise ValueError("no cell has its execution timing (nbclient's record_timing was off?)")
    return cells


def process_roles(records: list[dict], driver_pid: int) -> dict[int, str]:
    """Each pid's role: "driver" (the command itself: report.execute or nbconvert), "worker" (it
    recorded a worker phase) or "kernel" (every other: the notebook's kernel)."""
    workers = {r["pid"] for r in records if r["phase"] in WORKER_PHASES}
    return {r["pid"]: "driver" if r["pid"] == driver_pid else
            "worker" if r["pid"] in workers else "kernel" for r in records}


def training_calls(records: list[dict], roles: dict[int, str]) -> list[dict]:
    """One dict per "runs" phase the kernel recorded (a call of run_experiments): wall (s),
    processes (its workers' distinct pids: the worker lines written since the previous call's
    line, as every worker line of a call is written before the call ends), busy and start-up
    (their summed worker seconds), capacity = processes × wall, idle = capacity − busy."""
    calls, pending = [], []
    for record in records:
        if roles[record["pid"]] == "worker":
            pending.append(record)
        elif record["phase"] == RUNS and roles[record["pid"]] == "kernel":
            processes = len({r["pid"] for r in pending})
            busy = sum(r["seconds"] for r in pending if r["phase"] == WORKER_BUSY)
            calls.append(dict(wall=record["seconds"], processes=processes, busy=busy,
                              startup=sum(r["seconds"] for r in pending
                                          if r["phase"] == WORKER_STARTUP),
                              capacity=processes * record["seconds"],
                              idle=processes * record["seconds"] - busy))
            pending = []
    if pending:
        raise ValueError(f"{len(pending)} worker lines after the kernel's last {RUNS!r} line: "
                         "the profile is incomplete (did the run stop early?)")
    return calls


def ordered(names) -> list[str]:
    """Phase names in PHASE_ORDER first, then any others in the order given."""
    names = list(dict.fromkeys(names))
    return [n for n in PHASE_ORDER if n in names] + [n for n in names if n not in PHASE_ORDER]


def run_profile(records: list[dict], cells: list[tuple[str, float, float]], start: float,
                end: float, driver_pid: int) -> dict:
    """Where one notebook run's wall time went.

    Args:
        records: its A2_PROFILE lines (`read_records`).
        cells: (id, start, end) of its code cells (`cell_times`), seconds since the epoch.
        start, end: the command's start and end, seconds since the epoch.
        driver_pid: the command's pid (report.execute or nbconvert).
    Returns: dict(
        phases: row -> wall seconds, adding up to the wall time: kernel start-up (before the
            first cell, minus the driver's phases there), every phase of the kernel and the driver
            summed, other (the span from the first cell's start to the last cell's end minus the
            kernel's phases), kernel shutdown (the driver's "kernel shutdown" phase if it
            recorded one, else the time after the last cell minus the driver's phases there), the
            driver's other phases after the last cell (`AFTER_KERNEL`), after the kernel (the
            rest of the time after the last cell, when the shutdown was recorded), then the
            notebook's wall time;
        workers: row -> core-seconds inside the runs phase: every worker phase, the capacity
            (processes × wall, over the calls that trained) and the idle core-seconds;
        cells: row -> wall seconds: before the first cell, each cell by id, between cells,
            after the last cell, the notebook's wall time;
        calls: `training_calls`; wall: end − start)."""
    roles = process_roles(records, driver_pid)
    main_phases: dict[str, float] = {}
    kernel_seconds = driver_before = driver_after = 0.0
    workers: dict[str, float] = {}
    for r in records:
        role = roles[r["pid"]]
        if role == "worker":
            workers[r["phase"]] = workers.get(r["phase"], 0.0) + r["seconds"]
            continue
        main_phases[r["phase"]] = main_phases.get(r["phase"], 0.0) + r["seconds"]
        if role == "kernel":
            kernel_seconds += r["seconds"]
        elif r["phase"] in AFTER_KERNEL:
            driver_after += r["seconds"]
        else:
            driver_before += r["seconds"]
    first, last = cells[0][1], cells[-1][2]
    in_cells = sum(e - s for _, s, e in cells)
    phases = {START_UP: first - start - driver_before}
    for name in ordered(n for n in main_phases if n not in AFTER_KERNEL):
        phases[name] = main_phases[name]
    phases[OTHER] = (last - first) - kernel_seconds
    rest = end - last - driver_after                    # after the last cell, in no phase
    if KERNEL_SHUTDOWN in main_phases:
        phases[SHUTDOWN] = main_phases[KERNEL_SHUTDOWN]
    else:
        phases[SHUTDOWN], rest = rest, None
    for name in AFTER_KERNEL:
        if name in main_phases and name != KERNEL_SHUTDOWN:
            phases[name] = main_phases[name]
    if rest is not None:
        phases[AFTER_SHUTDOWN] = rest
    phases[NOTEBOOK_WALL] = end - start

    calls = training_calls(records, roles)
    worker_rows = {name: workers[name] for name in ordered([*WORKER_PHASES, *workers])
                   if name in workers}
    worker_rows[CAPACITY] = sum(c["capacity"] for c in calls)
    worker_rows[IDLE] = worker_rows[CAPACITY] - workers.get(WORKER_BUSY, 0.0)

    cell_rows = {"before the first cell": first - start}
    for cell_id, s, e in cells:
        cell_rows[cell_id] = e - s
    cell_rows["between cells"] = (last - first) - in_cells
    cell_rows["after the last cell"] = end - last
    cell_rows[NOTEBOOK_WALL] = end - start
    return dict(phases=phases, workers=worker_rows, cells=cell_rows, calls=calls,
                wall=end - start)


def run_multiply_adds(config: helpers.TrainConfig, steps: int, checks: int,
                      held_out: bool) -> dict[str, int]:
    """The multiply-adds of one run of ``config`` that took ``steps`` steps and ``checks``
    validation checks, by part: steps (× `step_multiply_adds`), checks (a forward pass over the
    train_size + val_size images: Σ fan_in·fan_out each), probes (each check's 512 images, at most
    train_size, forward and backward: `step_multiply_adds` with that batch), held_out (40,000
    images forward, when the run was scored on them)."""
    forward = helpers.count_parameters(config.neurons_per_layer)      # Σ fan_in·fan_out
    probe = config.replace(batch_size=min(PROBE_IMAGES, config.train_size), checks_per_epoch=0)
    return dict(steps=steps * step_multiply_adds(config),
                checks=checks * (config.train_size + config.val_size) * forward,
                probes=checks * step_multiply_adds(probe),
                held_out=HELD_OUT_IMAGES * forward if held_out else 0)


def cache_multiply_adds(cache_dir: str | os.PathLike) -> dict:
    """The multiply-adds of every run in a cache (its ``run-*.npz`` files, as
    `report.experiments.save_run` writes them: ``train_loss`` has one entry per step taken,
    ``check_steps`` one per check, ``meta`` the config and, if it was scored on held-out images,
    a ``held_out`` that is not null): dict(runs, steps, checks, held_out_runs, parts: part ->
    multiply-adds (`run_multiply_adds`), total)."""
    paths = sorted(Path(cache_dir).glob("run-*.npz"))
    if not paths:
        raise ValueError(f"no run-*.npz in {cache_dir}: the cold run trained nothing?")
    parts = dict(steps=0, checks=0, probes=0, held_out=0)
    steps = checks = held_out_runs = 0
    for path in paths:
        with np.load(path, allow_pickle=False) as f:
            meta = json.loads(str(f["meta"]))
            run_steps, run_checks = int(f["train_loss"].size), int(f["check_steps"].size)
        held_out = meta.get("held_out") is not None
        for part, value in run_multiply_adds(helpers.TrainConfig(**meta["config"]), run_steps,
                                             run_checks, held_out).items():
            parts[part] += value
        steps, checks = steps + run_steps, checks + run_checks
        held_out_runs += held_out
    return dict(runs=len(paths), steps=steps, checks=checks, held_out_runs=held_out_runs,
                parts=parts, total=sum(parts.values()))


def limit(work: dict, gemm: dict, cold: dict) -> dict:
    """The limit: ``work``'s multiply-adds (`cache_multiply_adds`) at ``gemm``'s aggregate rate
    (`gemm_throughput`), in seconds; and the cold run's wall times as multiples of it."""
    seconds = work["total"] / gemm["rate"]
    phases = cold["phases"]
    multiples = {"notebook": phases[NOTEBOOK_WALL] / seconds,
                 "runs phase": phases.get(RUNS, 0.0) / seconds}
    if MAKE_REPORT_WALL in phases:
        multiples["make report"] = phases[MAKE_REPORT_WALL] / seconds
    return dict(seconds=seconds, multiples=multiples)


# ================================================================================================
# Tables
# ================================================================================================

def fmt(seconds: float | None) -> str:
    """Seconds as the tables show them: '–' for none, 2 decimals below 10 s, else 1."""
    if seconds is None:
        return "–"
    return f"{seconds:.2f}" if abs(seconds) < 10 else f"{seconds:.1f}"


def share(seconds: float | None, total: float | None) -> str:
    return "" if seconds is None or not total else f"{seconds / total:.0%}"


def change(before: float | None, after: float | None) -> str:
    """after − before in seconds, and after / before."""
    if before is None or after is None:
        return "–"
    ratio = f" ({after / before:.2f}×)" if before > 0 else ""
    difference = after - before
    return (f"{difference:+.2f}" if abs(difference) < 10 else f"{difference:+.1f}") + ratio


def union(*rows: dict) -> list[str]:
    """The row names of several tables, in the order they first appear."""
    return list(dict.fromkeys(name for table in rows for name in table))


def phase_table(cold: dict, warm: dict) -> str:
    """The phases, cold and warm side by side (`run_profile` results, the cold one with the
    exports' rows): seconds and share of the run's total (cold: make report; warm: the notebook),
    then the workers' core-seconds."""
    total_cold = cold["phases"].get(MAKE_REPORT_WALL, cold["phases"][NOTEBOOK_WALL])
    total_warm = warm["phases"][NOTEBOOK_WALL]
    lines = ["| phase | cold (s) | share | warm (s) | share |", "|---|---:|---:|---:|---:|"]
    for name in union(cold["phases"], warm["phases"]):
        c, w = cold["phases"].get(name), warm["phases"].get(name)
        lines.append(f"| {name} | {fmt(c)} | {share(c, total_cold)} | {fmt(w)} | "
                     f"{share(w, total_warm)} |")
    lines.append("| *worker processes, inside the runs phase (core-seconds)* | | | | |")
    for name in union(cold["workers"], warm["workers"]):
        c, w = cold["workers"].get(name), warm["workers"].get(name)
        lines.append(f"| {name} | {fmt(c)} | | {fmt(w)} | |")
    return "\n".join(lines)


def cell_table(cold: dict, warm: dict) -> str:
    """Each cell's wall time by id, cold and warm side by side."""
    lines = ["| cell | cold (s) | warm (s) |", "|---|---:|---:|"]
    for name in union(cold["cells"], warm["cells"]):
        c, w = cold["cells"].get(name), warm["cells"].get(name)
        lines.append(f"| {name} | {fmt(c)} | {fmt(w)} |")
    return "\n".join(lines)


def training_line(profile: dict) -> str:
    calls = [c for c in profile["calls"] if c["processes"]]
    if not calls:
        return "nothing trained in worker processes"
    return "; ".join(f"a call of run_experiments: {c['processes']} worker processes for "
                     f"{fmt(c['wall'])} s, busy {fmt(c['busy'])} core-s, idle {fmt(c['idle'])} "
                     f"core-s ({c['idle'] / c['capacity']:.0%})" for c in calls)


def limit_lines(work: dict, gemm: dict, lim: dict) -> list[str]:
    """The limit, in words and one small table."""
    total = work["total"]
    lines = [f"The limit: the cold run trained {work['runs']} runs ({work['steps']:,} steps, "
             f"{work['checks']:,} checks, {work['held_out_runs']} scored on held-out images): "
             f"{total:.4g} multiply-adds", "",
             "| part | multiply-adds | share |", "|---|---:|---:|"]
    for part, value in work["parts"].items():
        lines.append(f"| {part} | {value:.4g} | {value / total:.1%} |")
    rates = " + ".join(f"{r / 1e9:.1f}" for r in gemm["per_process"])
    lines += ["", f"GEMM throughput: {gemm['processes']} processes at once, BLAS on 1 thread each, "
              f"{gemm['shape']}: {rates} = {gemm['rate'] / 1e9:.1f} G multiply-adds/s "
              f"(best of {len(gemm['rounds'])} rounds)",
              f"Limit = {total:.4g} / {gemm['rate']:.4g} per s = {lim['seconds']:.2f} s; "
              + ", ".join(f"the cold {name} took {m:.1f}× the limit"
                          for name, m in lim["multiples"].items())]
    return lines


def yardstick_line(seconds: float) -> str:
    return (f"Yardstick: {YARDSTICK_PRODUCTS} products ({CHECK_ROWS}, {INPUTS}) @ ({INPUTS}, "
            f"{HIDDEN}), float32, 1 thread, best of {YARDSTICK_REPEATS}: {seconds:.3f} s")


def targets_table(cold: dict, warm: dict, quick: bool) -> str:
    peak_gb = max(cold["peak_rss"], warm["peak_rss"]) / 1e9
    rows = [("notebook, clean cache", f"{cold['phases'][NOTEBOOK_WALL]:.1f} s",
             f"< {TARGETS['cold']:.0f} s", cold["phases"][NOTEBOOK_WALL] < TARGETS["cold"]),
            ("notebook, warm cache", f"{warm['phases'][NOTEBOOK_WALL]:.1f} s",
             f"< {TARGETS['warm']:.0f} s", warm["phases"][NOTEBOOK_WALL] < TARGETS["warm"]),
            ("peak memory (summed RSS: driver, kernel, workers)", f"{peak_gb:.2f} GB",
             f"< {TARGETS['memory_gb']:.0f} GB", peak_gb < TARGETS["memory_gb"])]
    lines = ["| measure | value | target (full report) | met |", "|---|---:|---:|---|"]
    for name, value, target, ok in rows:
        met = "(quick mode)" if quick else "yes" if ok else "NO"
        lines.append(f"| {name} | {value} | {target} | {met} |")
    return "\n".join(lines)


def compare_table(before: dict, after: dict) -> str:
    """The phases of two runs (dicts with cold and warm `run_profile` results, as --json writes
    them), cold and warm, before, after and the change (after − before, s, and after / before)."""
    lines = ["| phase | cold before | cold after | change | warm before | warm after | change |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for section in ("phases", "workers"):
        if section == "workers":
            lines.append("| *worker processes, inside the runs phase (core-seconds)* "
                         "| | | | | | |")
        tables = [run[which][section] for run in (before, after) for which in ("cold", "warm")]
        for name in union(*tables):
            cb, wb, ca, wa = (t.get(name) for t in tables)
            lines.append(f"| {name} | {fmt(cb)} | {fmt(ca)} | {change(cb, ca)} | {fmt(wb)} | "
                         f"{fmt(wa)} | {change(wb, wa)} |")
    return "\n".join(lines)


def compare(before_path: Path, after_path: Path) -> str:
    """What ``--compare`` prints: each run's description, the phase table before and after, and
    the limit and yardstick of both."""
    before, after = (json.loads(Path(p).read_text()) for p in (before_path, after_path))
    lines = [f"{name}: {path} ({describe(run)}; yardstick {run['yardstick']:.3f} s)"
             for name, run, path in (("before", before, before_path), ("after", after, after_path))]
    if before["quick"] != after["quick"]:
        lines.append("WARNING: one is a quick report, the other a full one")
    lines += ["", compare_table(before, after), ""]
    for name, run in (("before", before), ("after", after)):
        lim = run["limit"]
        multiples = ", ".join(f"{k} {v:.1f}×" for k, v in lim["multiples"].items())
        lines.append(f"limit {name}: {run['work']['total']:.4g} multiply-adds at "
                     f"{run['gemm']['rate'] / 1e9:.1f} G/s = {lim['seconds']:.2f} s; {multiples}")
    return "\n".join(lines)


def describe(result: dict) -> str:
    """One line: when, which commit, which report, which machine and kernels."""
    m = result["machine"]
    return (f"{m['date']}, commit {m['commit']}{' + edits' if m['dirty'] else ''}, "
            f"{'quick' if result['quick'] else 'full'} report, {m['cpus']} CPUs, "
            f"OpenBLAS {m['blas_core']}")


def report_text(result: dict) -> str:
    """Everything the benchmark prints on stdout, from its result (as --json writes it)."""
    m, pinned, native = result["machine"], result, result.get("native")
    out = [f"# Where the report's time goes ({describe(result)})", "",
           f"{m['machine']}, Python {m['python']}, numpy {m['numpy']}; results.json: OpenBLAS "
           f"{result['blas_core']} kernels"]
    if "cpu_share" in result:
        c = result["cpu_share"]
        out.append(f"Load: {m['load_before']:.2f} before (1 min average), {c['load_after']:.2f} "
                   f"after; during the benchmark ({result['benchmark_seconds']:.0f} s) its "
                   f"processes used {c['benchmark']:.0%} of the CPUs' time, other processes "
                   f"{c['others']:.0%}.")
    out += ["", "## Phases: cold (`make report`: report.execute, then the exports side by side) "
            "and warm (`jupyter nbconvert --execute --inplace`)", "",
            phase_table(pinned["cold"], pinned["warm"]), "",
            f"Training, cold: {training_line(pinned['cold'])}.", "",
            "## Cells (wall time by cell id)", "", cell_table(pinned["cold"], pinned["warm"]), "",
            "## The limit", "", *limit_lines(result["work"], result["gemm"], result["limit"]), "",
            yardstick_line(result["yardstick"]), "",
            "## Targets", "", targets_table(pinned["cold"], pinned["warm"], result["quick"])]
    if native:
        out += ["", "## The kernel pin's cost: pinned (before) against the processor's own "
                f"kernels ({native['blas_core']}, after)", "", compare_table(pinned, native), ""]
        for which in ("cold", "warm"):
            p, n = (run[which]["phases"][NOTEBOOK_WALL] for run in (pinned, native))
            out.append(f"notebook, {which}: pinned {p:.1f} s, native {n:.1f} s, "
                       f"pinned/native {p / n:.2f}×")
    return "\n".join(out)


# ================================================================================================
# Main
# ================================================================================================

def git(*args: str) -> str | None:
    """``git args`` in the project folder: its output, or None without git or a repository."""
    try:
        done = subprocess.run(["git", *args], cwd=PROJECT_DIR, capture_output=True, text=True)
    except OSError:
        return None
    return done.stdout if done.returncode == 0 else None


def git_status() -> str | None:
    return git("status", "--porcelain=v1", "--untracked-files=all")


def machine(status: str | None) -> dict:
    return dict(date=datetime.datetime.now().isoformat(timespec="seconds"),
                commit=(git("rev-parse", "--short", "HEAD") or "?").strip(),
                dirty=bool(status), cpus=os.cpu_count(), machine=platform.machine(),
                python=platform.python_version(), numpy=np.__version__,
                blas_core=helpers.BLAS_CORE, load_before=os.getloadavg()[0])


def cpu_seconds() -> float:
    """CPU seconds of this process and of its children that have ended."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    return own.ru_utime + own.ru_stime + children_cpu_seconds()


def measure(quick: bool, native: bool, max_wait: float, status: str | None) -> dict:
    """Run everything (1-5 of the module's docstring); returns every number."""
    info = machine(status)
    jiffies, cpu, started = cpu_jiffies(), cpu_seconds(), time.monotonic()
    say(f"{'quick' if quick else 'full'} report, {os.cpu_count()} CPUs, OpenBLAS "
        f"{helpers.BLAS_CORE}, load average {info['load_before']:.2f}")
    if max_wait > 0:
        wait_for_idle(max_wait)
    say(f"[yardstick] {YARDSTICK_PRODUCTS} products ({CHECK_ROWS}, {INPUTS}) @ ({INPUTS}, "
        f"{HIDDEN}), 1 thread, best of {YARDSTICK_REPEATS}")
    ruler = yardstick()
    say(f"[yardstick] {ruler:.3f} s")
    if max_wait > 0:
        wait_for_idle(max_wait)
    say(f"[GEMM] {os.cpu_count()} processes at once, 1 BLAS thread each")
    gemm = gemm_throughput(os.cpu_count() or 1)
    say(f"[GEMM] {gemm['rate'] / 1e9:.1f} G multiply-adds/s")

    pinned = cold_and_warm(START_ENV, None, exports=True, max_wait=max_wait, name="pinned")
    result = dict(machine=info, quick=quick, yardstick=ruler, gemm=gemm, work=pinned["work"],
                  limit=limit(pinned["work"], gemm, pinned["cold"]), cold=pinned["cold"],
                  warm=pinned["warm"], blas_core=pinned["blas_core"])
    if native:
        flags = helpers.cpu_flags()
        if "NPY_DISABLE_CPU_FEATURES" not in helpers.pinned_kernels(platform.machine(),
                                                                    flags or set()):
            say("--native: this processor has no AVX-512 kernels for the pin to give up; skipped")
        else:
            run = cold_and_warm(START_ENV, NATIVE, exports=False, max_wait=max_wait, name="native")
            if run["blas_core"] != NATIVE["OPENBLAS_CORETYPE"]:
                raise RuntimeError(f"--native: asked for OpenBLAS {NATIVE['OPENBLAS_CORETYPE']}, "
                                   f"results.json says it ran {run['blas_core']}")
            result["native"] = run

    result["benchmark_seconds"] = time.monotonic() - started
    ours, end_jiffies = cpu_seconds() - cpu, cpu_jiffies()
    if jiffies and end_jiffies:
        ticks = os.sysconf("SC_CLK_TCK")
        busy = (end_jiffies[0] - jiffies[0]) / ticks
        total = (end_jiffies[1] - jiffies[1]) / ticks
        result["cpu_share"] = dict(benchmark=ours / total, others=max(busy - ours, 0.0) / total,
                                   load_after=os.getloadavg()[0])
    return result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", type=Path, metavar="PATH", help="write every number to PATH")
    parser.add_argument("--compare", nargs=2, type=Path, metavar=("BEFORE", "AFTER"),
                        help="print the phase tables of two --json files and the change; "
                             "runs nothing")
    parser.add_argument("--native", action="store_true",
                        help="also run the report with the processor's own kernels (AVX-512 "
                             "only) and print what the kernel pin costs")
    parser.add_argument("--max-wait", type=float, default=5.0,
                        help="before each timed step wait up to this many seconds for the CPUs "
                             "to be idle (default 5; 0: do not wait)")
    args = parser.parse_args(argv)
    if args.compare:
        print(compare(*args.compare))
        return 0
    if not os.environ.get("MNIST_DIR"):
        parser.error("set MNIST_DIR to the folder with the four MNIST files")

    status = git_status()
    try:
        result = measure(START_ENV.get("A2_QUICK", "0") == "1", args.native, args.max_wait,
                         status)
    except (RuntimeError, ValueError) as err:       # a command failed, or what it left is unusable
        say(f"bench_report: {err}")
        return 1
    if args.json:                              # first: the numbers are kept whatever follows
        args.json.write_text(json.dumps(result, indent=1) + "\n")
        say(f"wrote {args.json}")
    print(report_text(result))
    if git_status() != status:
        changed = set((status or "").splitlines()) ^ set((git_status() or "").splitlines())
        say("bench_report: git status changed during the benchmark; if you edited these files "
            "meanwhile, that was you, else the benchmark wrote into the project:\n  "
            + "\n  ".join(sorted(changed)))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
