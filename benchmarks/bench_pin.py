"""What the kernel pin costs: the engine's speed on the pinned kernels against the processor's own.

``helpers.py`` pins the kernel families before NumPy loads (``helpers.pin_kernels``): OpenBLAS's
AVX2 kernels (``OPENBLAS_CORETYPE=Haswell``) on every x86-64 with AVX2, and, on AVX-512
processors, NumPy's own AVX-512 code switched off (``NPY_DISABLE_CPU_FEATURES=X86_V4``), so that
every machine computes the report's bits. On an AVX-512 processor the native kernels are faster.
This benchmark measures by how much, in one run, for two settings:

* pinned -- ``OPENBLAS_CORETYPE=Haswell``, ``NPY_DISABLE_CPU_FEATURES=X86_V4`` (the report's).
* native -- ``OPENBLAS_CORETYPE=SkylakeX`` (OpenBLAS's AVX-512 kernels) and
            ``NPY_DISABLE_CPU_FEATURES`` set to the empty string: NumPy then disables nothing,
            and helpers, which only sets a variable that is not set, leaves it so (unset, helpers
            would set it to X86_V4).

The kernels are fixed when NumPy loads, so every measurement runs in a fresh subprocess with its
setting's environment; the subprocesses alternate (pinned, native, pinned, native, ...) and each
setting's best of ``--repeats`` is reported. Each subprocess, BLAS pinned to one thread
(``experiments.single_threaded_blas``), after a one-epoch warm-up whose model (b) uses:

(a) trains the Task 3 network for ``--epochs`` epochs without validation checks
    (``bench_train.run_ours``): steps per second;
(b) times one validation check as ``helpers.train``'s ``check`` computes it: ``predict`` over the
    20,000 training and 10,000 validation images, their losses and accuracies, and the gradient
    norms on the 512 probe images (best of 5 timings): seconds per check;
(c) trains the same network with the protocol's checks (5 per epoch, ``bench_train.run_ours``
    with ``checks_per_epoch=5``): steps per second, checks included.

Each subprocess reads back the kernels it ran (``helpers.BLAS_CORE``, from OpenBLAS itself, and
``report.experiments.environment()``, which adds NumPy's dispatch for float64 ``exp``); a result
whose read-back is not the setting asked for is refused, not reported. On a processor without
AVX-512 there is nothing to compare: the script says so and exits 0.

Before measuring it waits (up to ``--quiet-wait`` s) for the shared machine to be quiet, and it
prints how busy the machine was.

Usage (from the project folder):
    MNIST_DIR=/path/to/mnist .venv/bin/python benchmarks/bench_pin.py [--epochs 5] [--repeats 5]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
PROJECT_DIR = BENCH_DIR.parent

#: What each setting puts in the subprocess's environment ('' is set-but-empty, not unset).
SETTINGS = {
    "pinned": {"OPENBLAS_CORETYPE": "Haswell", "NPY_DISABLE_CPU_FEATURES": "X86_V4"},
    "native": {"OPENBLAS_CORETYPE": "SkylakeX", "NPY_DISABLE_CPU_FEATURES": ""},
}
#: What each setting's subprocess must read back: OpenBLAS's kernel family and whether NumPy's
#: float64 exp may dispatch to its AVX-512 (X86_V4) code.
EXPECTED = {
    "pinned": {"blas_core": "Haswell", "numpy_avx512": False},
    "native": {"blas_core": "SkylakeX", "numpy_avx512": True},
}
NUMPY_AVX512_DISPATCH = "X86_V4"

#: The table's rows: result key, label, True if larger is faster.
MEASURES = (
    ("steps_per_s", "(a) training, no checks: steps/s", True),
    ("check_s", "(b) one validation check: ms", False),
    ("steps_per_s_checks", "(c) training with the protocol's checks: steps/s", True),
)


# ------------------------------------------------------------------------------------------------
# The subprocess: one setting, one repeat
# ------------------------------------------------------------------------------------------------

def child(epochs: int, data_dir: str | None) -> dict:
    """Measure (a), (b), (c) in this process (whose kernels its environment fixed) and return
    them with the read-back of the kernels."""
    sys.path.insert(0, str(PROJECT_DIR))
    sys.path.insert(0, str(BENCH_DIR))
    import helpers  # first: NumPy loads here, with the kernels this process's environment names
    from report import experiments
    import bench_train

    data = helpers.prepare_data(*helpers.load_mnist(data_dir, download=False))
    X_train, Y_train, X_val, Y_val = data.X_train, data.Y_train, data.X_val, data.Y_val

    def check(model) -> tuple:
        """What helpers.train's check() computes, without the bookkeeping."""
        train_out, val_out = model.predict(X_train), model.predict(X_val)
        return (helpers.cross_entropy_loss(Y_train, train_out),
                helpers.cross_entropy_loss(Y_val, val_out),
                helpers.accuracy(Y_train, train_out), helpers.accuracy(Y_val, val_out),
                helpers.probe_gradient_norms(model, X_train[:512], Y_train[:512]))

    result = dict(blas_core=helpers.BLAS_CORE, environment=experiments.environment(),
                  env={k: os.environ.get(k) for k in SETTINGS["pinned"]},
                  matmul="blocked_matmul" if helpers.matmul is helpers.blocked_matmul
                  else "np.matmul")
    with experiments.single_threaded_blas():
        # Warm-up (allocations, caches, lazy imports), and a trained model for (b).
        config = helpers.TrainConfig(
            neurons_per_layer=(bench_train.HIDDEN, 10), use_improved_weight_init=True,
            use_improved_sigmoid=True, use_momentum=True, learning_rate=bench_train.LR,
            momentum_gamma=bench_train.GAMMA, batch_size=bench_train.BATCH, num_epochs=1,
            seed=bench_train.SEED, checks_per_epoch=0)
        model, history = helpers.train(config, data)
        if check(model)[1] != history.last["val_loss"]:
            raise RuntimeError("the timed check does not compute what helpers.train's check does")

        start = time.perf_counter()
        steps, val_acc, _ = bench_train.run_ours(helpers, data, epochs)
        result["steps_per_s"] = steps / (time.perf_counter() - start)
        result["val_acc"] = val_acc

        result["check_s"] = bench_train.best_time(lambda: check(model), min_seconds=0.5)

        start = time.perf_counter()
        steps, val_acc, _ = bench_train.run_ours(helpers, data, epochs, checks_per_epoch=5)
        result["steps_per_s_checks"] = steps / (time.perf_counter() - start)
        result["val_acc_checks"] = val_acc
    return result


# ------------------------------------------------------------------------------------------------
# Read-back, table, load
# ------------------------------------------------------------------------------------------------

def refusal(setting: str, result: dict) -> str | None:
    """Why ``result`` (a subprocess's output) must not be reported as ``setting``; None if its
    read-back kernels are the ones the setting asks for."""
    expected = EXPECTED[setting]
    core, env_core = result.get("blas_core"), result.get("environment", {}).get("blas_core")
    if core != expected["blas_core"] or env_core != expected["blas_core"]:
        return (f"{setting}: asked for OpenBLAS {expected['blas_core']}, read back "
                f"helpers.BLAS_CORE={core!r}, environment()['blas_core']={env_core!r}")
    dispatch = result.get("environment", {}).get("numpy_dispatch")
    if (dispatch == NUMPY_AVX512_DISPATCH) != expected["numpy_avx512"]:
        wanted = "its AVX-512 code" if expected["numpy_avx512"] else "not its AVX-512 code"
        return (f"{setting}: asked for NumPy's float64 exp on {wanted} ({NUMPY_AVX512_DISPATCH}), "
                f"read back numpy_dispatch={dispatch!r}")
    return None


def best(results: list[dict], key: str, larger_is_faster: bool) -> float:
    values = [r[key] for r in results]
    return max(values) if larger_is_faster else min(values)


def format_table(rows: dict[str, list[dict]]) -> str:
    """The table of measures: each setting's best, and native/pinned as a speed-up (above 1: the
    native kernels are faster, which is what the pin gives up)."""
    lines = ["| measure | pinned | native | native/pinned (speed-up) |",
             "|---|---:|---:|---:|"]
    for key, label, larger_is_faster in MEASURES:
        pinned = best(rows["pinned"], key, larger_is_faster)
        native = best(rows["native"], key, larger_is_faster)
        speedup = native / pinned if larger_is_faster else pinned / native
        scale, fmt = (1e3, "{:.1f}") if key == "check_s" else (1, "{:.0f}")
        lines.append(f"| {label} | {fmt.format(scale * pinned)} | {fmt.format(scale * native)} "
                     f"| {speedup:.2f}x |")
    return "\n".join(lines)


def cpu_jiffies() -> tuple[int, int] | None:
    """(busy, total) clock ticks of all CPUs since boot (Linux /proc/stat; None elsewhere)."""
    try:
        with open("/proc/stat") as stat:
            values = [int(v) for v in stat.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    return sum(values) - values[3] - values[4], sum(values)


def children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def wait_for_quiet(max_wait: float, threshold: float, window: float = 5.0) -> tuple[float, float]:
    """Wait (at most ``max_wait`` s) until the CPUs were less than ``threshold`` busy over a whole
    ``window`` s; returns (seconds waited, busy fraction of the last window)."""
    from bench_train import cpu_busy
    start = time.monotonic()
    while True:
        busy = cpu_busy(window)
        waited = time.monotonic() - start
        if busy is None or busy < threshold or waited >= max_wait:
            return waited, (math.nan if busy is None else busy)
        print(f"  waiting for a quiet machine: {busy:.0%} of the CPUs busy over {window:g} s, "
              f"load average {os.getloadavg()[0]:.2f} ({waited:.0f} s waited)",
              file=sys.stderr, flush=True)


# ------------------------------------------------------------------------------------------------
# Main
# ------------------------------------------------------------------------------------------------

def run_child(setting: str, epochs: int, data_dir: str | None) -> dict:
    env = {**os.environ, **SETTINGS[setting]}
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", "--epochs", str(epochs)]
    if data_dir:
        cmd += ["--data-dir", data_dir]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"the {setting} subprocess failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=5,
                        help="epochs of training in (a) and (c) (default 5)")
    parser.add_argument("--repeats", type=int, default=5,
                        help="subprocesses per setting, alternating; the best is reported "
                             "(default 5: about 1 minute on a quiet machine)")
    parser.add_argument("--quiet-wait", type=float, default=600.0,
                        help="before measuring, wait up to this many seconds for the CPUs to "
                             "be quiet (default 600)")
    parser.add_argument("--max-wait", type=float, default=5.0,
                        help="before each subprocess wait up to this many seconds for the CPUs "
                             "to be idle (bench_train.wait_for_idle; default 5, 0: do not wait)")
    parser.add_argument("--threshold", type=float, default=0.15,
                        help="busy fraction of all CPUs below which the machine counts as quiet "
                             "(default 0.15)")
    parser.add_argument("--data-dir", default=None,
                        help="MNIST folder (default: $MNIST_DIR, else <project>/data/mnist)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.epochs < 1 or args.repeats < 1:
        parser.error("--epochs and --repeats must be >= 1")
    if args.child:
        print(json.dumps(child(args.epochs, args.data_dir)))
        return 0

    sys.path.insert(0, str(PROJECT_DIR))
    sys.path.insert(0, str(BENCH_DIR))
    import helpers  # before NumPy (bench_train imports it); this process only reads the flags
    from bench_train import wait_for_idle

    flags = helpers.cpu_flags()
    if "NPY_DISABLE_CPU_FEATURES" not in helpers.pinned_kernels(platform.machine(), flags or set()):
        what = ("Its processor flags are unknown" if flags is None
                else f"This processor ({platform.machine()}) has no AVX-512")
        print(f"{what}: the pin gives up no AVX-512 kernels here, so there is nothing to compare; "
              "nothing measured.")
        return 0

    print(f"Waiting up to {args.quiet_wait:g} s for a quiet machine (load average now "
          f"{os.getloadavg()[0]:.2f}, {os.cpu_count()} CPUs)...", file=sys.stderr, flush=True)
    waited, busy_before = wait_for_quiet(args.quiet_wait, args.threshold)
    load_before = os.getloadavg()

    start_wall, start_jiffies, start_cpu = time.monotonic(), cpu_jiffies(), children_cpu_seconds()
    rows: dict[str, list[dict]] = {name: [] for name in SETTINGS}
    refused: list[str] = []
    readback: dict[str, set] = {name: set() for name in SETTINGS}
    for r in range(args.repeats):
        for setting in SETTINGS:
            if args.max_wait > 0:
                wait_for_idle(args.max_wait, args.threshold)
            result = run_child(setting, args.epochs, args.data_dir)
            readback[setting].add((result["blas_core"], json.dumps(result["environment"],
                                                                   sort_keys=True),
                                   result["matmul"]))
            why = refusal(setting, result)
            if why:
                refused.append(f"repeat {r + 1}: {why}")
                print(f"  [{setting} repeat {r + 1}] REFUSED: {why}", file=sys.stderr, flush=True)
                continue
            rows[setting].append(result)
            print(f"  [{setting} repeat {r + 1}/{args.repeats}] {result['blas_core']}: "
                  f"(a) {result['steps_per_s']:.0f} steps/s, (b) {1e3 * result['check_s']:.1f} ms, "
                  f"(c) {result['steps_per_s_checks']:.0f} steps/s", file=sys.stderr, flush=True)
    wall = time.monotonic() - start_wall
    ours = children_cpu_seconds() - start_cpu
    end_jiffies, load_after = cpu_jiffies(), os.getloadavg()

    import numpy as np
    print(f"Task 3 network [64, 10], batch 32, {args.epochs} epochs on 20000 images; BLAS pinned "
          f"to 1 thread; each setting in {args.repeats} fresh subprocesses, alternating; best of "
          f"{args.repeats}.")
    print(f"numpy {np.__version__}, Python {platform.python_version()}, {os.cpu_count()} CPUs, "
          f"{platform.machine()} with AVX-512")
    print("Kernels read back in the subprocesses (helpers.BLAS_CORE; "
          "report.experiments.environment(); helpers.matmul):")
    for setting, values in readback.items():
        env = " ".join(f"{k}={v!r}" for k, v in SETTINGS[setting].items())
        for core, environment, matmul in sorted(values):
            print(f"  {setting} ({env}): {core}; {environment}; {matmul}")
    busy_str = "unknown" if math.isnan(busy_before) else f"{busy_before:.0%}"
    print(f"Load: waited {waited:.0f} s for a quiet machine; then {busy_str} of the CPUs busy "
          f"over 5 s, load average {load_before[0]:.2f} (1 min) before the measurement, "
          f"{load_after[0]:.2f} after it.")
    if start_jiffies and end_jiffies:
        ticks = os.sysconf("SC_CLK_TCK")
        busy_s = (end_jiffies[0] - start_jiffies[0]) / ticks
        total_s = (end_jiffies[1] - start_jiffies[1]) / ticks
        others = max(busy_s - ours, 0.0)
        print(f"During the measurement ({wall:.0f} s): the benchmark's subprocesses used "
              f"{ours / total_s:.0%} of the CPUs' time, other processes {others / total_s:.0%}.")
    print()
    if refused:
        print("Refused (read-back kernels not the ones asked for):")
        for why in refused:
            print(f"  {why}")
    if not rows["pinned"] or not rows["native"]:
        print("No table: a setting has no result whose kernels were the ones asked for.")
        return 1
    print(format_table(rows))
    parts = []
    for setting, results in rows.items():
        accs = sorted({(r["val_acc"], r["val_acc_checks"]) for r in results})
        text = " or ".join(f"{a:.2%} in (a), {c:.2%} in (c)" for a, c in accs)
        same = " (the same in every repeat)" if len(accs) == 1 else " (differs by repeat)"
        parts.append(f"{setting} {text}{same}")
    print(f"\nValidation accuracy at the last evaluation: {'; '.join(parts)}.")
    return 1 if refused else 0


if __name__ == "__main__":
    sys.exit(main())
