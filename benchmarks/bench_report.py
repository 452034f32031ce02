"""How long the full report takes, from a clean cache and again from the warm cache, and the peak
memory of the whole run (the notebook's kernel plus its worker processes, summed).

    MNIST_DIR=/path/to/mnist .venv/bin/python benchmarks/bench_report.py [--native]

With ``--native`` (on an AVX-512 processor) it then runs the same two reports with the kernels the
processor would pick itself (OPENBLAS_CORETYPE=SkylakeX, NumPy's AVX-512 code allowed) and prints
what the pinned kernels cost (helpers.pin_kernels), as native time over pinned time.

Targets: cold < 300 s, warm < 20 s, peak memory < 2 GB on a 2-core machine (five seeds per
configuration: 49 distinct training runs).
The notebook runs on a copy of its cache and figure folders in a temporary directory, so the
committed figures are not touched.
"""

import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGETS = {"cold": 300.0, "warm": 20.0, "memory_gb": 2.0}


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


def run_report(env: dict) -> tuple[float, int]:
    """Execute the notebook once; return (seconds, peak summed RSS in bytes)."""
    command = [sys.executable, "-m", "jupyter", "nbconvert", "--to", "notebook", "--execute",
               "--output", str(Path(env["A2_FIGURE_DIR"]) / "executed.ipynb"),
               "--ExecutePreprocessor.timeout=1800", str(ROOT / "assignment2.ipynb")]
    start = time.perf_counter()
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True)
    peak = 0
    done = threading.Event()

    def sample():
        nonlocal peak
        while not done.is_set():
            peak = max(peak, tree_rss(process.pid))
            time.sleep(0.2)

    sampler = threading.Thread(target=sample)
    sampler.start()
    _, stderr = process.communicate()
    done.set()
    sampler.join()
    seconds = time.perf_counter() - start
    if process.returncode:
        sys.exit(f"the notebook failed:\n{stderr[-3000:]}")
    return seconds, peak


#: The kernels the report runs with (helpers.pin_kernels), and an AVX-512 processor's own.
KERNELS = {"pinned": {"OPENBLAS_CORETYPE": "Haswell", "NPY_DISABLE_CPU_FEATURES": "X86_V4"},
           "native": {"OPENBLAS_CORETYPE": "SkylakeX", "NPY_DISABLE_CPU_FEATURES": ""}}


def cold_and_warm(kernels: dict) -> tuple[float, float, int]:
    """The full report from a clean cache, then again warm, with ``kernels`` set for the kernel and
    its workers: (cold seconds, warm seconds, peak bytes)."""
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ, A2_QUICK="0", A2_CACHE_DIR=f"{tmp}/cache", A2_FIGURE_DIR=f"{tmp}/fig",
                   **kernels)
        cold, cold_peak = run_report(env)
        warm, warm_peak = run_report(env)
        core = json.loads(Path(f"{tmp}/fig/results.json").read_text())["environment"]["blas_core"]
    if core != kernels["OPENBLAS_CORETYPE"]:
        sys.exit(f"asked for {kernels['OPENBLAS_CORETYPE']}, OpenBLAS ran {core}")
    return cold, warm, max(cold_peak, warm_peak)


def main() -> None:
    if not os.environ.get("MNIST_DIR"):
        sys.exit("set MNIST_DIR to the folder with the four MNIST files")
    cold, warm, peak = cold_and_warm(KERNELS["pinned"])
    cold_peak = warm_peak = peak
    peak_gb = max(cold_peak, warm_peak) / 1e9
    rows = [("full report, clean cache", f"{cold:.0f} s", f"< {TARGETS['cold']:.0f} s",
             cold < TARGETS["cold"]),
            ("full report, warm cache", f"{warm:.1f} s", f"< {TARGETS['warm']:.0f} s",
             warm < TARGETS["warm"]),
            ("peak memory (kernel + workers)", f"{peak_gb:.2f} GB",
             f"< {TARGETS['memory_gb']:.0f} GB", peak_gb < TARGETS["memory_gb"])]
    print(f"machine: {os.cpu_count()} cores")
    print(f"{'measure':34s} {'value':>10s} {'target':>10s}  met")
    for name, value, target, ok in rows:
        print(f"{name:34s} {value:>10s} {target:>10s}  {'yes' if ok else 'NO'}")
    if "--native" in sys.argv[1:]:
        native_cold, native_warm, _ = cold_and_warm(KERNELS["native"])
        print("\nthe kernel pin's cost: the same report with the processor's own kernels (SkylakeX)")
        print(f"{'measure':34s} {'pinned':>8s} {'native':>8s} {'pinned/native':>14s}")
        for name, a, b in (("full report, clean cache", cold, native_cold),
                           ("full report, warm cache", warm, native_warm)):
            print(f"{name:34s} {a:7.1f}s {b:7.1f}s {a / b:13.2f}x")


if __name__ == "__main__":
    main()
