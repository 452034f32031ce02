"""Running the report's training runs: an on-disk cache, parallel worker processes, progress.

A run is identified by its `TrainConfig`, the data's fingerprint and the engine's version (the
hash of ``helpers.py``, the NumPy version and OpenBLAS's kernel family); its weights and history are cached as one .npz.
`run_experiments` answers what it can from the cache and trains the rest in worker processes,
each with BLAS pinned to one thread so that every result is the same bits as a serial run's.
The scikit-learn cross-check is cached the same way.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import io
import json
import os
import queue
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import helpers
from report.timing import phase, timed
from helpers import (
    PROJECT_DIR,
    Dataset,
    History,
    Progress,
    SoftmaxModel,
    TrainConfig,
    accuracy,
    atomic_write,
    cross_entropy_loss,
    train,
)

# ================================================================================================
# Experiments: an on-disk cache keyed by config, data and code; independent runs in parallel
# ================================================================================================

@timed("environment read-back")
def environment() -> dict:
    """What fixes the report's last bits besides its code and data, as this process has it: the
    OpenBLAS kernel family read back from OpenBLAS (`helpers.blas_core`), the code NumPy's float64
    ``exp`` dispatches to (its AVX-512 and AVX2 code differ in the last bit), the NumPy and OpenBLAS
    versions. Recorded in results.json; the worker processes check that they compute the same."""
    from numpy.lib.introspect import opt_func_info
    blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
    dispatch = opt_func_info(func_name="^exp$", signature="float64")["exp"]["dd"]["current"]
    return dict(blas_core=helpers.BLAS_CORE, numpy_dispatch=dispatch, numpy=np.__version__,
                blas=f"{blas.get('name', '?')} {blas.get('version', '?')}")


def engine_version(engine: str | os.PathLike = helpers.__file__, env: dict | None = None) -> str:
    """SHA-256 (16 hex digits) of the engine file as a whole and the `environment` it runs in (the
    OpenBLAS kernel family, which also picks `helpers.matmul`'s strategy, NumPy's dispatch and the
    versions): any edit to ``helpers.py``, and a run with other kernels, has runs of its own; edits
    to the report's modules invalidate none."""
    env = environment() if env is None else env
    text = Path(engine).read_bytes()
    return hashlib.sha256(text + json.dumps(env, sort_keys=True).encode()).hexdigest()[:16]


CODE_VERSION = engine_version()  # part of every cache key


def default_cache_dir() -> Path:
    """``$A2_CACHE_DIR``, else ``<project>/cache`` (git-ignored)."""
    return Path(os.environ.get("A2_CACHE_DIR") or PROJECT_DIR / "cache")


def cache_folder(cache_dir: str | os.PathLike | None = None) -> Path:
    """``cache_dir`` if given, else `default_cache_dir`."""
    return Path(cache_dir or default_cache_dir())


def data_arrays(data: Dataset) -> dict[str, np.ndarray]:
    """The data's arrays by field name, the held-out ones only where the data has them."""
    return {f.name: getattr(data, f.name) for f in dataclasses.fields(data)
            if isinstance(getattr(data, f.name), np.ndarray)}


def data_fingerprint(data: Dataset) -> str:
    """SHA-256 (16 hex digits) of the preprocessed arrays, so that a cache entry is tied to data
    (held-out images included: a run's record holds its score on them)."""
    h = hashlib.sha256()
    for a in data_arrays(data).values():
        h.update(str((a.shape, a.dtype.str)).encode())
        h.update(np.ascontiguousarray(a).data)
    return h.hexdigest()[:16]


def cached_json(kind: str, key: Sequence, compute: Callable[[], dict],
                cache_dir: str | os.PathLike | None = None) -> dict:
    """``compute()``, kept in the cache as ``<kind>-<hash of key>.json``: a rerun with the same
    ``key`` (a JSON-serialisable list of everything the result depends on) reads the file instead
    of computing again. An unusable entry is recomputed, with a RuntimeWarning, never trusted."""
    digest = hashlib.sha256(json.dumps(list(key), sort_keys=True).encode()).hexdigest()[:20]
    path = cache_folder(cache_dir) / f"{kind}-{digest}.json"
    if path.exists():
        try:
            return json.loads(path.read_text())
        except ValueError:
            warnings.warn(f"cache entry {path.name} is unusable; recomputing", RuntimeWarning)
    result = compute()
    atomic_write(path, json.dumps(result).encode())
    return result


def cache_key(config: TrainConfig, fingerprint: str) -> str:
    blob = json.dumps([config.to_dict(), fingerprint, CODE_VERSION], sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:20]


def cache_path(config: TrainConfig, fingerprint: str, cache_dir: Path) -> Path:
    slug = "-".join(map(str, config.neurons_per_layer))
    return Path(cache_dir) / f"run-{slug}-{cache_key(config, fingerprint)}.npz"


def save_run(path: Path, ws: Sequence[np.ndarray], history: History, fingerprint: str,
             held_out: dict | None = None) -> None:
    """Write a run (weights, history, `held_out_score`) as one .npz with a JSON header; atomic
    (temp + rename)."""
    meta = dict(key=cache_key(history.config, fingerprint), config=history.config.to_dict(),
                best=history.best, last=history.last, stopped_early=history.stopped_early,
                diverged=history.diverged, seconds=history.seconds, num_layers=len(ws),
                held_out=held_out)
    arrays = {name: getattr(history, name) for name in History.ARRAYS}
    arrays.update({f"w{l}": w for l, w in enumerate(ws)})
    blob = io.BytesIO()
    np.savez(blob, meta=np.array(json.dumps(meta)), **arrays)
    atomic_write(path, blob.getvalue())


def load_run(path: Path, config: TrainConfig,
             fingerprint: str) -> tuple[list[np.ndarray], History, dict | None]:
    """Read a run written by `save_run`: (weights, history, held-out score); raises (any
    exception) if it is corrupt or stale."""
    with np.load(path, allow_pickle=False) as f:
        meta = json.loads(str(f["meta"]))
        if meta["key"] != cache_key(config, fingerprint) or meta["config"] != config.to_dict():
            raise ValueError("the entry belongs to another config, data set or code version")
        ws = [f[f"w{l}"] for l in range(meta["num_layers"])]
        arrays = {name: f[name] for name in History.ARRAYS}
    shapes = [(a, b) for a, b in zip((785, *config.neurons_per_layer), config.neurons_per_layer)]
    if [w.shape for w in ws] != shapes:
        raise ValueError(f"weight shapes {[w.shape for w in ws]} differ from {shapes}")
    history = History(config=config, best=meta["best"], last=meta["last"],
                      stopped_early=meta["stopped_early"], diverged=meta["diverged"],
                      seconds=meta["seconds"], **arrays)
    return ws, history, meta["held_out"]


@dataclass
class Run:
    """A finished run: its history, the best check's weights, their `held_out_score` (None for
    data without held-out images), and whether it came from the cache (not part of the run's
    value: it takes part in no comparison, ``compare=False``)."""
    history: History
    ws: list[np.ndarray]
    held_out: dict | None = None
    cached: bool = dataclasses.field(default=False, compare=False)

    @property
    def config(self) -> TrainConfig:
        return self.history.config

    def model(self, dtype: type = np.float32) -> SoftmaxModel:
        """A SoftmaxModel holding this run's (best) weights."""
        c = self.config
        model = SoftmaxModel(c.neurons_per_layer, c.use_improved_sigmoid,
                             c.use_improved_weight_init, rng=np.random.default_rng(c.seed),
                             dtype=dtype)
        model.ws = [w.astype(dtype) for w in self.ws]
        return model


def cached_run(config: TrainConfig, fingerprint: str, cache_dir: str | os.PathLike | None = None,
               warn: bool = True) -> Run | None:
    """The cached Run of ``config`` on the data with ``fingerprint``, or None if there is none.

    A corrupt or stale entry gives None (with a RuntimeWarning when ``warn``): it is recomputed
    and overwritten, never trusted."""
    path = cache_path(config, fingerprint, cache_folder(cache_dir))
    if not path.exists():
        return None
    try:
        ws, history, held_out = load_run(path, config, fingerprint)
    except Exception as err:
        if warn:
            warnings.warn(f"cache entry {path.name} is unusable ({type(err).__name__}: {err}); "
                          f"recomputing {config.label()}", RuntimeWarning, stacklevel=3)
        return None
    return Run(history, ws, held_out, cached=True)


def held_out_score(model: SoftmaxModel, data: Dataset) -> dict | None:
    """The accuracy and loss of ``model`` (a run's kept weights) on the data's held-out images
    (`helpers.NUM_HELD_OUT`), which chose nothing: dict(accuracy, loss), or None without them."""
    if data.X_held_out is None:
        return None
    outputs = model.predict(data.X_held_out)
    return dict(accuracy=accuracy(data.Y_held_out, outputs),
                loss=cross_entropy_loss(data.Y_held_out, outputs))


@contextlib.contextmanager
def single_threaded_blas():
    """Pin BLAS to one thread: OpenBLAS results depend on the thread count, so every run (alone
    or in parallel) uses one thread and gives the same bits."""
    from threadpoolctl import threadpool_limits
    with threadpool_limits(limits=1, user_api="blas"):
        yield


def run_experiment(config: TrainConfig, data: Dataset, *, cache_dir: str | os.PathLike | None = None,
                   use_cache: bool = True, progress: Callable[[Progress], None] | None = None,
                   fingerprint: str | None = None) -> Run:
    """Train ``config`` on ``data``, or return the cached result of the same config, data and code.

    A corrupt or stale cache entry is reported with a warning and recomputed, never trusted.
    ``use_cache=False`` neither reads nor writes the cache.
    """
    fingerprint = fingerprint or data_fingerprint(data)
    if use_cache and (run := cached_run(config, fingerprint, cache_dir)) is not None:
        return run
    with single_threaded_blas():
        model, history = train(config, data, progress)
        held_out = held_out_score(model, data)
    if use_cache:
        save_run(cache_path(config, fingerprint, cache_folder(cache_dir)),
                 model.ws, history, fingerprint, held_out)
    return Run(history, model.ws, held_out)


# ================================================================================================
# Worker processes: each reads the kernel's data once, trains the runs it is given, reports progress
# ================================================================================================
# A small pool of our own rather than ProcessPoolExecutor, whose shutdown waits for every queued
# run: on Ctrl-C or the kernel's stop button the parent terminates its workers at once.

def _die_with_parent(parent: int) -> None:
    """On Linux, have the system send this worker SIGTERM when its parent dies (a Jupyter kernel
    that is shut down or killed while training), so that no worker is ever orphaned; and leave
    at once if the parent is already gone."""
    import ctypes
    import signal
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):                               # not Linux: best effort
        pass
    if os.getppid() != parent:
        os._exit(1)


def write_data(data: Dataset, folder: Path) -> None:
    """The data's arrays as .npy files, and its pixel statistics as JSON, in ``folder``: what the
    worker processes read (`read_data`) instead of loading and preprocessing MNIST again."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, array in data_arrays(data).items():
        np.save(folder / f"{name}.npy", array)
    (folder / "statistics.json").write_text(json.dumps(dict(mean=data.mean, std=data.std)))


def read_data(folder: Path) -> Dataset:
    """The Dataset `write_data` wrote into ``folder``, the same bits."""
    arrays = {path.stem: np.load(path) for path in sorted(folder.glob("*.npy"))}
    return Dataset(**arrays, **json.loads((folder / "statistics.json").read_text()))


def _worker_main(parent: int, data_folder: str, fingerprint: str, cache_dir: str,
                 use_cache: bool, tasks, events, expected_environment: dict) -> None:
    """A worker process: train each (index, config) from ``tasks`` until None, putting
    ("progress", Progress), ("done", index, Run) or ("error", index, text) on ``events``.
    ``data_folder`` holds the parent's data (`write_data`).

    SIGINT is ignored here: the parent alone decides to stop, and ends its workers itself. The
    worker was started with SIGINT blocked (see `_Workers.start`), so a Ctrl-C that reached it
    while it was still starting is discarded here, not raised in the middle of an import."""
    import signal
    import traceback
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    _die_with_parent(parent)
    try:
        if environment() != expected_environment:
            raise RuntimeError(f"this worker computes with {environment()}, the process that "
                               f"started it with {expected_environment}: their runs would differ. "
                               "Start Python with the same OPENBLAS_CORETYPE and "
                               "NPY_DISABLE_CPU_FEATURES for both")
        with phase("worker start-up (data)"):
            data = read_data(Path(data_folder))
        if data_fingerprint(data) != fingerprint:
            raise RuntimeError(f"the worker read data (fingerprint {data_fingerprint(data)}) other "
                               f"than its parent's ({fingerprint}) from {data_folder}: was the "
                               "folder changed while the runs started?")
    except Exception:
        events.put(("error", None, traceback.format_exc()))
        return
    while (task := tasks.get()) is not None:
        index, config = task
        try:
            with phase("worker busy (training)"):
                run = run_experiment(config, data, cache_dir=cache_dir, use_cache=use_cache,
                                     progress=lambda p: events.put(("progress", p)),
                                     fingerprint=fingerprint)
            events.put(("done", index, run))
        except Exception:
            events.put(("error", index, traceback.format_exc()))


def expected_cost(config: TrainConfig) -> float:
    """A rough number of multiply-adds ``config`` will take, to start the longest runs first so
    that parallel workers finish together. Early stopping makes the real length unknown; the
    report's runs with the scaled tanh stopped after about a third of the epochs that the plain
    sigmoid ones used (17 against 45 of 50), which is the one thing this estimate knows."""
    weights = config.num_parameters   # multiply-adds per example of one forward pass
    steps = config.steps_per_epoch * config.num_epochs * (0.35 if config.use_improved_sigmoid else 0.9)
    checks = steps / config.steps_per_check if config.steps_per_check else 1
    return steps * 3 * config.batch_size * weights + checks * (config.train_size + config.val_size) * weights


class _Workers:
    """``processes`` worker processes (spawned) fed from a task queue; `stop` ends them all."""

    def __init__(self, processes: int, data_folder: str, fingerprint: str, cache_dir: str,
                 use_cache: bool):
        import multiprocessing as mp
        ctx = mp.get_context("spawn")
        self.tasks, self.events = ctx.Queue(), ctx.Queue()
        self.procs = [ctx.Process(target=_worker_main, daemon=True,
                                  args=(os.getpid(), data_folder, fingerprint, cache_dir,
                                        use_cache, self.tasks, self.events, environment()))
                      for _ in range(processes)]
        self.started: list = []

    def start(self) -> None:
        """Start the workers with SIGINT blocked in this thread: the mask is inherited, so a
        terminal's Ctrl-C (sent to the whole process group) cannot interrupt a worker that is
        still importing; each worker ignores SIGINT as its first act. Blocking, unlike ignoring,
        loses nothing in this process: a Ctrl-C that arrives meanwhile is raised right after."""
        import signal
        previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
        try:
            for proc in self.procs:
                proc.start()
                self.started.append(proc)
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, previous)

    def submit(self, items) -> None:
        for item in items:
            self.tasks.put(item)
        for _ in self.procs:
            self.tasks.put(None)

    def alive(self) -> bool:
        return any(proc.is_alive() for proc in self.started)

    def stop(self, timeout: float = 1.0) -> None:
        """Terminate every worker (SIGTERM, then SIGKILL for any still alive after ``timeout``)."""
        try:
            for proc in self.started:
                if proc.is_alive():
                    proc.terminate()
            deadline = time.monotonic() + timeout
            for proc in self.started:
                proc.join(max(0.0, deadline - time.monotonic()))
        finally:                 # also on a second Ctrl-C meanwhile: kill the rest at once
            self._kill()
            for q in (self.tasks, self.events):
                q.cancel_join_thread()
                q.close()
            # Let the queues' semaphores go now, not when a traceback that holds this object
            # (an interrupted cell's, kept by IPython) is freed: the resource tracker would
            # report them as leaked when the kernel exits.
            self.tasks = self.events = None

    def _kill(self) -> None:
        for proc in self.started:
            if proc.is_alive():
                proc.kill()
                proc.join()


def remove_partial_writes(configs: Iterable[TrainConfig], fingerprint: str, cache_dir: Path,
                          older_than: float = 0.0) -> None:
    """Delete the temp files that a worker killed in the middle of `helpers.atomic_write` left
    beside these configs' cache entries (last modified at least ``older_than`` seconds ago).
    They are never read as entries: an entry is only ever renamed into place whole, and the
    temp files' names (``.run-....npz.XXXX.partial``) are not entry names."""
    now = time.time()
    for config in configs:
        name = cache_path(config, fingerprint, cache_dir).name
        for leftover in Path(cache_dir).glob(f".{name}.*.partial"):
            try:
                if now - leftover.stat().st_mtime >= older_than:
                    leftover.unlink()
            except FileNotFoundError:
                pass


# ================================================================================================
# Progress: one line in place in Jupyter, a line every few seconds in a terminal
# ================================================================================================

class ProgressReporter:
    """Shows which runs are training (epoch, step, validation loss) while they run, then leaves a
    one-line summary. In Jupyter it updates a single text display in place (so a saved notebook
    keeps only the summary); elsewhere it prints a line every few seconds to stderr."""

    def __init__(self, total: int, interval: float = 2.0):
        self.total, self.done, self.interval = total, 0, interval
        self.active: dict[str, Progress] = {}
        self.handle, self._last = None, 0.0
        try:
            from IPython import get_ipython
            from IPython.display import display
            if getattr(get_ipython(), "kernel", None) is not None:  # a Jupyter kernel
                self.handle = display({"text/plain": f"0/{total} runs ..."}, raw=True,
                                      display_id=True)
                self.interval = 0.5
        except ImportError:
            pass

    def _show(self, text: str, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last < self.interval:
            return
        self._last = now
        if self.handle is not None:
            self.handle.update({"text/plain": text}, raw=True)
        else:
            print(text, file=sys.stderr, flush=True)

    def update(self, event: Progress) -> None:
        self.active[event.label] = event
        lines = [f"{self.done}/{self.total} runs done; training:"] + [
            f"  {p.label}: epoch {p.epoch + 1}/{p.num_epochs}, step {p.step}, "
            f"val loss {p.val_loss:.4f}, val acc {p.val_accuracy:.2%}"
            for p in self.active.values()]
        self._show("\n".join(lines))

    def finished(self, label: str) -> None:
        self.done += 1
        self.active.pop(label, None)

    def close(self, summary: str, seconds: float | None = None) -> None:
        """Leave ``summary`` as the last word; ``seconds``, the wall time, is added in a terminal
        only (never to a notebook's output, which must not change from run to run)."""
        if self.handle is None and seconds is not None:
            summary += f" in {seconds:.0f} s"
        self._show(summary, force=True)


# ================================================================================================
# Running many configurations: from the cache where possible, the rest in parallel
# ================================================================================================

@timed("runs: trained, or read from the cache")
def run_experiments(configs: Sequence[TrainConfig], data: Dataset, *,
                    processes: int | None = None, cache_dir: str | os.PathLike | None = None,
                    use_cache: bool = True, quiet: bool = False) -> list[Run]:
    """Run independent configs, in parallel processes, answering from the cache where it can.

    Args:
        configs: the runs (duplicates are run once).
        data: the preprocessed data; the worker processes read it from files this process
            writes once (`write_data`), and check its fingerprint.
        processes: worker processes (default: all cores); 1 runs in this process.
        quiet: no progress display and no summary line.
    Returns:
        One Run per config, in order. Each worker pins BLAS to one thread, so the results equal
        a serial run's bit for bit. The longest runs (by `expected_cost`) start first, so that
        the workers finish at about the same time.

    Ctrl-C (or the kernel's stop button) stops at once: queued runs are dropped, the workers
    terminated, and KeyboardInterrupt raised; runs that finished are in the cache (when
    ``use_cache``), so calling again resumes with the rest. The summary line left behind says
    how many runs came from the cache and how many trained, never how long they took (a saved
    notebook stays the same from one run to the next); the wall time goes to stderr, outside
    Jupyter only.
    """
    started = time.monotonic()
    cache = cache_folder(cache_dir)
    fingerprint = data_fingerprint(data)
    results: dict[TrainConfig, Run] = {}
    todo = []
    for config in dict.fromkeys(configs):
        run = cached_run(config, fingerprint, cache) if use_cache else None
        if run is not None:
            results[config] = run
        else:
            todo.append(config)
    todo.sort(key=expected_cost, reverse=True)
    if use_cache:   # left by a worker killed while writing, in an earlier session
        remove_partial_writes(todo, fingerprint, cache, older_than=60.0)
    processes = max(1, min(processes or os.cpu_count() or 1, len(todo)))
    reporter = None if quiet else ProgressReporter(len(todo))

    def on_progress(event: Progress) -> None:
        if reporter:
            reporter.update(event)

    def finished(config: TrainConfig, run: Run) -> None:
        if run.config != config:
            raise RuntimeError("a worker returned another config's result")
        results[config] = run
        if reporter:
            reporter.finished(config.label())

    try:
        if processes == 1:
            for config in todo:
                finished(config, run_experiment(config, data, cache_dir=cache,
                                                use_cache=use_cache, progress=on_progress,
                                                fingerprint=fingerprint))
        elif todo:
            _run_in_workers(todo, data, processes, fingerprint, cache, use_cache, on_progress,
                            finished)
    except KeyboardInterrupt:
        if reporter:
            trained = len(results) - (len(dict.fromkeys(configs)) - len(todo))
            reporter.close(f"interrupted: {trained} of {len(todo)} runs trained"
                           + (f"; they are in the cache, so running this again trains the "
                              f"other {len(todo) - trained}" if use_cache else ""))
        raise
    if reporter:
        steps = sum(r.history.train_loss.size for c, r in results.items() if c in todo)
        reporter.close(f"{len(results)} runs: {len(results) - len(todo)} from the cache, "
                       f"{len(todo)} trained" + (f" ({steps:,} gradient steps)" if todo else ""),
                       seconds=time.monotonic() - started)
    return [results[c] for c in configs]


def _run_in_workers(todo: Sequence[TrainConfig], data: Dataset, processes: int,
                    fingerprint: str, cache: Path, use_cache: bool,
                    on_progress: Callable[[Progress], None],
                    finished: Callable[[TrainConfig, Run], None]) -> None:
    """Train ``todo`` (in that order) on ``processes`` workers; whatever happens (an error, a
    Ctrl-C), the workers are ended, and neither the cache nor the temporary folder that handed
    them the data holds a file of theirs when this returns."""
    shared = tempfile.TemporaryDirectory(prefix="a2-data-")
    write_data(data, Path(shared.name))
    workers = _Workers(processes, shared.name, fingerprint, str(cache), use_cache)
    done, interrupted = 0, False
    try:
        workers.start()
        workers.submit(enumerate(todo))
        while done < len(todo):
            try:
                event = workers.events.get(timeout=0.25)
            except queue.Empty:
                if not workers.alive():
                    raise RuntimeError("the worker processes ended before every run "
                                       "finished (out of memory?)") from None
                continue
            if event[0] == "progress":
                on_progress(event[1])
            elif event[0] == "done":
                finished(todo[event[1]], event[2])
                done += 1
            else:
                which = "reading the data" if event[1] is None else todo[event[1]].label()
                raise RuntimeError(f"a worker failed while {which}:\n{event[2]}")
    except KeyboardInterrupt:
        interrupted = True
    finally:
        workers.stop()
        shared.cleanup()
        if use_cache:
            remove_partial_writes(todo, fingerprint, cache)
    if interrupted:
        # Raised afresh: the original's traceback runs into the queue's internals and would keep
        # the queue (and its semaphores) alive as long as IPython keeps the traceback.
        raise KeyboardInterrupt


# ================================================================================================
# An independent cross-check: scikit-learn's MLPClassifier on the same data
# ================================================================================================

@timed("scikit-learn cross-check")
def sklearn_crosscheck(data: Dataset, config: TrainConfig, epochs: int, *,
                       cache_dir: str | os.PathLike | None = None) -> dict:
    """Train scikit-learn's MLPClassifier as close to ``config`` as it allows, as an independent
    check of the accuracy; the result is cached as JSON.

    One hidden layer (the width of ``config``), tanh (the closest to the improved sigmoid),
    SGD with batch 32, momentum ``gamma`` without Nesterov and the same learning rate, no L2,
    ``epochs`` epochs, on the same normalised images (without the bias column: scikit-learn adds
    its own biases). Returns dict(val_accuracy, val_loss, train_accuracy, epochs); its speed is
    the benchmarks' business, so no wall time is recorded.
    """
    import sklearn
    return cached_json("sklearn", [config.to_dict(), epochs, data_fingerprint(data),
                                   sklearn.__version__, "no wall time"],
                       lambda: _sklearn_crosscheck(data, config, epochs), cache_dir)


def _sklearn_crosscheck(data: Dataset, config: TrainConfig, epochs: int) -> dict:
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier
    X_train, X_val = data.X_train[:config.train_size, :784], data.X_val[:config.val_size, :784]
    y_train = data.Y_train[:config.train_size].argmax(1)
    clf = MLPClassifier(hidden_layer_sizes=config.hidden_layers, activation="tanh", solver="sgd",
                        alpha=0.0, batch_size=config.batch_size,
                        learning_rate_init=config.learning_rate,
                        momentum=config.momentum_gamma if config.use_momentum else 0.0,
                        nesterovs_momentum=False, max_iter=epochs, shuffle=True,
                        random_state=config.seed, tol=0.0, n_iter_no_change=epochs + 1)
    with warnings.catch_warnings(), single_threaded_blas():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(X_train, y_train)
    probabilities = clf.predict_proba(X_val)
    Y_val = data.Y_val[:config.val_size]
    result = dict(val_accuracy=accuracy(Y_val, probabilities),
                  val_loss=cross_entropy_loss(Y_val.astype(np.float64), probabilities),
                  train_accuracy=float(clf.score(X_train, y_train)), epochs=epochs)
    return result
