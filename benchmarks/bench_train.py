"""Training-speed benchmark: our NumPy engine against scikit-learn and a float64 textbook MLP.

All three train the Task 3 network on the real MNIST split (20000 training, 10000 validation
images) for the same fixed number of epochs and then evaluate once:

* ours      -- ``helpers.train`` with the Task 3 config ([64, 10], improved init, improved
               sigmoid, momentum 0.9, lr 0.02, batch 32, float32), validation checks switched off
               (``checks_per_epoch=0``), so it does the SGD steps and one final evaluation.
* sklearn   -- ``MLPClassifier`` set up as closely as it allows: one hidden layer of 64,
               solver="sgd", batch 32, constant learning rate 0.02, momentum 0.9 without
               Nesterov, no L2 (alpha=0), shuffled every epoch, no early stopping, tol=0 and
               n_iter_no_change > epochs so it runs exactly ``--epochs`` epochs. Differences it
               does not let us remove: activation "tanh" (the closest to 1.7159 tanh(2z/3)),
               Glorot-uniform initialisation, a separate bias vector in *both* layers (ours has
               only the input bias, via the bias column, which is therefore dropped from its
               inputs), and it keeps the last partial batch (ceil(N/32) steps per epoch; with
               N = 20000 that is also 625). It gets the same float32 normalised images, so it
               computes in float32 too.
* textbook  -- the float64 mini-batch implementation below, written as a student would from the
               textbook: vectorised over the batch, forward keeping z and activations, backward
               with deltas, momentum; same seed scheme as ours (same initial weights before
               rounding, same batch order). It computes in the dtype of the data it is given:
               float64 here.
* per-example -- for reference, not a target: the float64 textbook as Nielsen's network.py
               writes it (Neural Networks and Deep Learning, ch. 1-2): backpropagation one
               example at a time, the mini-batch gradient summed over its examples. Same
               network, weights, batch order and momentum as the textbook row.
* ceiling   -- not a network: only the work every float32 step of this network must do: the batch
               gather, the two big products (X @ W1 and X.T @ delta, computed the fastest way we
               know: ``helpers.matmul``, blocked for OpenBLAS's small-matrix kernel) and one pass
               writing W1. No float32 NumPy implementation can be faster, which bounds what any
               speed target can ask for.

Timed: training plus the one final evaluation (forward pass over the training and validation
sets, as helpers.train's final check does), not data loading or preprocessing. Each measurement
is repeated ``--repeats`` times, interleaved (ours, sklearn, textbook, ours, ...), and the *best* (shortest) time is reported
(the median is shown next to it). The main table pins BLAS to one thread
(``experiments.single_threaded_blas``), as the project's experiments run; ``--default-threads`` adds
a table with the BLAS library's default thread count.

Usage (from the project folder):
    MNIST_DIR=/path/to/mnist .venv/bin/python benchmarks/bench_train.py [--epochs 10]
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import math
import os
import platform
import statistics
import sys
import time
import warnings
from pathlib import Path

import numpy as np

PROJECT_DIR = Path(__file__).resolve().parent.parent

TARGET_VS_SKLEARN = 2.0
TARGET_VS_TEXTBOOK = 4.0
TARGET_ACCURACY_GAP = 0.01  # one percentage point

# The Task 3 network and its training settings.
HIDDEN, BATCH, LR, GAMMA, SEED = 64, 32, 0.02, 0.9, 0


def load_engine(path: Path):
    """Import the engine (helpers.py, or an experimental copy) from a file path."""
    spec = importlib.util.spec_from_file_location("helpers", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["helpers"] = module
    spec.loader.exec_module(module)
    return module


# ------------------------------------------------------------------------------------------------
# The implementations. Each returns (steps, val_accuracy, train_accuracy); the textbooks, given
# return_weights=True, also their final weights (tests/test_benchmark.py compares them with ours).
# ------------------------------------------------------------------------------------------------

def run_ours(h, data, epochs: int, checks_per_epoch: int = 0):
    """``helpers.train`` on the Task 3 network; ``checks_per_epoch=5`` is the protocol's
    validation check every 125 steps (loss and accuracy over all 30,000 images each time)."""
    config = h.TrainConfig(neurons_per_layer=(HIDDEN, 10), use_improved_weight_init=True,
                           use_improved_sigmoid=True, use_momentum=True, learning_rate=LR,
                           momentum_gamma=GAMMA, batch_size=BATCH, num_epochs=epochs,
                           seed=SEED, checks_per_epoch=checks_per_epoch,
                           early_stopping_patience=10 ** 6)
    _, history = h.train(config, data)
    if history.diverged:
        raise RuntimeError("our run diverged")
    return history.last["step"], history.last["val_accuracy"], history.last["train_accuracy"]


@contextlib.contextmanager
def plain_products(h):
    """The engine with ``helpers.matmul`` replaced by plain ``np.matmul`` (``a @ b``), for the
    variant rows: what the engine would be without its own product strategy."""
    blocked = h.matmul

    def plain(a, b, out=None):
        return np.matmul(a, b, out=out)

    h.matmul = plain
    try:
        yield
    finally:
        h.matmul = blocked


def run_ours_plain(h, data, epochs: int, checks_per_epoch: int = 0):
    with plain_products(h):
        return run_ours(h, data, epochs, checks_per_epoch)


def run_sklearn(X_train, y_train, X_val, y_val, epochs: int):
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier
    clf = MLPClassifier(hidden_layer_sizes=(HIDDEN,), activation="tanh", solver="sgd",
                        alpha=0.0, batch_size=BATCH, learning_rate="constant",
                        learning_rate_init=LR, momentum=GAMMA, nesterovs_momentum=False,
                        max_iter=epochs, shuffle=True, random_state=SEED, tol=0.0,
                        n_iter_no_change=epochs + 1, early_stopping=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # "max_iter reached": intended
        clf.fit(X_train, y_train)
    if clf.n_iter_ != epochs:
        raise RuntimeError(f"scikit-learn ran {clf.n_iter_} epochs, not {epochs}")
    val_acc = float(np.mean(clf.predict_proba(X_val).argmax(1) == y_val))
    train_acc = float(np.mean(clf.predict_proba(X_train).argmax(1) == y_train))
    steps = clf.n_iter_ * math.ceil(len(X_train) / BATCH)  # it keeps the last partial batch
    return steps, val_acc, train_acc


def run_textbook(X_train, Y_train, X_val, Y_val, epochs: int, return_weights: bool = False):
    """A float64 MLP as written from the textbook (Nielsen / Goodfellow style), vectorised over
    the mini-batch. Same seed scheme as helpers.train: the generator draws the initial weights,
    then one permutation per epoch; the last partial batch is dropped."""
    rng = np.random.default_rng(SEED)
    sizes = [X_train.shape[1], HIDDEN, 10]
    ws = [rng.normal(0.0, 1.0 / np.sqrt(fan_in), size=(fan_in, fan_out)).astype(X_train.dtype)
          for fan_in, fan_out in zip(sizes[:-1], sizes[1:])]  # computes in the data's dtype
    velocities = [np.zeros_like(w) for w in ws]

    def forward(x):
        zs, activations = [], [x]
        a = x
        for l, w in enumerate(ws):
            z = a @ w
            if l == len(ws) - 1:
                e = np.exp(z - z.max(axis=1, keepdims=True))
                a = e / e.sum(axis=1, keepdims=True)
            else:
                a = 1.7159 * np.tanh(2.0 / 3.0 * z)
            zs.append(z)
            activations.append(a)
        return zs, activations

    n = X_train.shape[0]
    steps, losses = 0, []
    for _ in range(epochs):
        order = rng.permutation(n)
        for start in range(0, n - BATCH + 1, BATCH):
            idx = order[start:start + BATCH]
            x, y = X_train[idx], Y_train[idx]
            zs, activations = forward(x)
            y_hat = activations[-1]
            losses.append(-np.sum(y * np.log(y_hat)) / BATCH)
            # backward: delta_k = -(y_k - yhat_k) / N, delta_j = f'(z_j) sum_k w_kj delta_k
            delta = -(y - y_hat) / BATCH
            grads = [None] * len(ws)
            for l in range(len(ws) - 1, -1, -1):
                grads[l] = activations[l].T @ delta
                if l > 0:
                    t = np.tanh(2.0 / 3.0 * zs[l - 1])
                    delta = (delta @ ws[l].T) * (1.7159 * 2.0 / 3.0) * (1.0 - t ** 2)
            # momentum: v = dC/dw + gamma v; w = w - lr v
            for l in range(len(ws)):
                velocities[l] = grads[l] + GAMMA * velocities[l]
                ws[l] = ws[l] - LR * velocities[l]
            steps += 1
        if not np.isfinite(losses[-1]):
            raise RuntimeError("the textbook run diverged")
    val_acc = float(np.mean(forward(X_val)[1][-1].argmax(1) == Y_val.argmax(1)))
    train_acc = float(np.mean(forward(X_train)[1][-1].argmax(1) == Y_train.argmax(1)))
    return (steps, val_acc, train_acc, ws) if return_weights else (steps, val_acc, train_acc)


def run_per_example(X_train, Y_train, X_val, Y_val, epochs: int, return_weights: bool = False):
    """The float64 textbook as Nielsen's network.py writes it: `backprop` for one example, and
    `update_mini_batch` summing those gradients over the batch (then momentum, as above). Same
    seed scheme as run_textbook, so the same initial weights and batch order."""
    rng = np.random.default_rng(SEED)
    sizes = [X_train.shape[1], HIDDEN, 10]
    ws = [rng.normal(0.0, 1.0 / np.sqrt(fan_in), size=(fan_in, fan_out))
          for fan_in, fan_out in zip(sizes[:-1], sizes[1:])]
    velocities = [np.zeros_like(w) for w in ws]

    def feedforward(x):
        a = 1.7159 * np.tanh(2.0 / 3.0 * (x @ ws[0]))
        z = a @ ws[1]
        e = np.exp(z - z.max(axis=-1, keepdims=True))
        return e / e.sum(axis=-1, keepdims=True)

    def backprop(x, y):
        """Gradients of one example's cross-entropy: x (785,), y (10,) one-hot."""
        z1 = x @ ws[0]
        t = np.tanh(2.0 / 3.0 * z1)
        a1 = 1.7159 * t
        z2 = a1 @ ws[1]
        e = np.exp(z2 - z2.max())
        delta = e / e.sum() - y                                  # delta_k = yhat_k - y_k
        nabla_w = [None, np.outer(a1, delta)]
        delta = (ws[1] @ delta) * (1.7159 * 2.0 / 3.0) * (1.0 - t ** 2)  # delta_j
        nabla_w[0] = np.outer(x, delta)
        return nabla_w

    n, steps = X_train.shape[0], 0
    for _ in range(epochs):
        order = rng.permutation(n)
        for start in range(0, n - BATCH + 1, BATCH):
            nabla_w = [np.zeros_like(w) for w in ws]
            for i in order[start:start + BATCH]:
                nabla_w = [nw + dnw for nw, dnw in zip(nabla_w, backprop(X_train[i], Y_train[i]))]
            for l in range(len(ws)):
                velocities[l] = nabla_w[l] / BATCH + GAMMA * velocities[l]
                ws[l] = ws[l] - LR * velocities[l]
            steps += 1
        if not all(np.isfinite(w).all() for w in ws):
            raise RuntimeError("the per-example run diverged")
    val_acc = float(np.mean(feedforward(X_val).argmax(1) == Y_val.argmax(1)))
    train_acc = float(np.mean(feedforward(X_train).argmax(1) == Y_train.argmax(1)))
    return (steps, val_acc, train_acc, ws) if return_weights else (steps, val_acc, train_acc)


def run_ceiling(h, X_train, epochs: int):
    """Not an implementation: only the batch gather, the two big float32 matrix products of a
    training step (forward ``X @ W1``, gradient ``X.T @ delta``, both with ``h.matmul``) and one
    in-place update of W1, which any float32 NumPy step of this network must do; its steps/s is a
    ceiling for all such implementations."""
    rng = np.random.default_rng(SEED)
    w = rng.normal(0.0, 1.0 / np.sqrt(X_train.shape[1]), size=(X_train.shape[1], HIDDEN))
    w = w.astype(X_train.dtype)
    delta = rng.normal(0.0, 1e-3, size=(BATCH, HIDDEN)).astype(X_train.dtype)
    update = np.full_like(w, 1e-6)
    n, steps = X_train.shape[0], 0
    for _ in range(epochs):
        order = rng.permutation(n)
        for start in range(0, n - BATCH + 1, BATCH):
            x = X_train[order[start:start + BATCH]]
            h.matmul(x, w)
            h.matmul(x.T, delta)
            w -= update
            steps += 1
    return steps, float("nan"), float("nan")


# ------------------------------------------------------------------------------------------------
# Products: helpers.matmul against a @ b, and a check's forward pass against its bare products
# ------------------------------------------------------------------------------------------------

#: The report's networks whose products the second table times (hidden layers).
NETWORKS = {"2c-3c [64]": (64,), "4a [32]": (32,), "4b [128]": (128,), "4d [60, 60]": (60, 60),
            "4e 10 x [64]": (64,) * 10}


def best_time(f, min_seconds: float = 0.2, repeats: int = 5) -> float:
    """Seconds per call of ``f``: the best of ``repeats`` timings, each of as many calls as fill
    about ``min_seconds``."""
    f()
    start, calls = time.perf_counter(), 0
    while time.perf_counter() - start < min_seconds / repeats:
        f()
        calls += 1
    calls = max(calls, 1)
    best = math.inf
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(calls):
            f()
        best = min(best, (time.perf_counter() - start) / calls)
    return best


def product_rows(h, data) -> list[dict]:
    """For each network: helpers.matmul / (a @ b) on a step's forward product (32, 785) @ (785, n)
    and gradient (785, 32) @ (32, n), and on a check's first product over the 30,000 images
    (whole, and one block of ``helpers.PREDICT_ROWS`` rows as ``predict`` computes it); then a
    check's forward pass (``predict`` over the training and validation images) against its bare
    products (every layer's product over all 30,000 images, on precomputed inputs)."""
    X = np.concatenate([data.X_train, data.X_val])
    rng = np.random.default_rng(SEED)
    block = X[:h.PREDICT_ROWS]
    rows = []
    for name, hidden in NETWORKS.items():
        model = h.SoftmaxModel((*hidden, 10), True, True, rng=rng, dtype=X.dtype.type)
        n = hidden[0]
        w1 = model.ws[0]
        x, delta = X[:BATCH], rng.normal(size=(BATCH, n)).astype(X.dtype)
        grad = np.empty_like(w1)
        ratio = {}
        for what, (a, b, out) in {"step": (x, w1, None), "gradient": (x.T, delta, grad),
                                  "check": (X, w1, None), "block": (block, w1, None)}.items():
            ours = best_time(lambda: h.matmul(a, b, out=out))
            plain = best_time(lambda: np.matmul(a, b, out=out))
            ratio[what] = ours / plain
        inputs, a = [], X                  # every layer's input over the 30,000 images
        for l, w in enumerate(model.ws):
            inputs.append(a)
            a = np.tanh(a @ w)
        bare = best_time(lambda: [np.matmul(a, w) for a, w in zip(inputs, model.ws)])
        forward = best_time(lambda: (model.predict(data.X_train), model.predict(data.X_val)))
        rows.append(dict(name=name, **ratio, bare=bare, forward=forward))
    return rows


def product_table(rows: list[dict]) -> str:
    lines = ["helpers.matmul / plain a @ b (1 thread; best of 5; below 1.00: ours faster), and a "
             "check's forward pass over 30,000 images against its bare products", "",
             "| network       | step (32,785)@(785,n) | gradient (785,32)@(32,n) | "
             "check (30000,785)@(785,n) | one predict block | bare products ms | "
             "forward pass ms | forward / bare |",
             "|---------------|------:|------:|------:|------:|------:|------:|------:|"]
    for r in rows:
        lines.append(f"| {r['name']:<13} | {r['step']:.2f} | {r['gradient']:.2f} | "
                     f"{r['check']:.2f} | {r['block']:.2f} | {1e3 * r['bare']:.1f} | "
                     f"{1e3 * r['forward']:.1f} | {r['forward'] / r['bare']:.2f} |")
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------------
# Measurement and report
# ------------------------------------------------------------------------------------------------

def cpu_busy(interval: float = 0.5) -> float | None:
    """Fraction of all CPUs busy over ``interval`` seconds (Linux /proc/stat; None elsewhere)."""
    def read():
        values = [int(v) for v in open("/proc/stat").readline().split()[1:]]
        return sum(values), values[3] + values[4]  # total, idle + iowait
    try:
        total0, idle0 = read()
        time.sleep(interval)
        total1, idle1 = read()
    except (OSError, ValueError, IndexError):
        return None
    return 1.0 - (idle1 - idle0) / max(total1 - total0, 1)


def wait_for_idle(max_wait: float, threshold: float = 0.15) -> None:
    """On a shared machine, wait (at most ``max_wait`` s) until other processes leave the CPUs
    nearly idle, so that they do not slow down the next measurement."""
    deadline = time.monotonic() + max_wait
    while time.monotonic() < deadline:
        busy = cpu_busy()
        if busy is None or busy < threshold:
            return
    print(f"  (CPUs still busy after waiting {max_wait:g} s; measuring anyway)", file=sys.stderr)


def measure(jobs: dict, repeats: int, blas_context, max_wait: float) -> dict:
    """Run each job ``repeats`` times, interleaved; returns name -> dict(times, steps, acc)."""
    results = {name: dict(times=[], steps=None, val_acc=None, train_acc=None) for name in jobs}
    for r in range(repeats):
        for name, job in jobs.items():
            if max_wait > 0:
                wait_for_idle(max_wait)
            with blas_context():
                start = time.perf_counter()
                steps, val_acc, train_acc = job()
                seconds = time.perf_counter() - start
            res = results[name]
            if res["val_acc"] is not None and name == "ours" and res["val_acc"] != val_acc:
                print(f"  note: {name} gave a different accuracy on repeat {r + 1}",
                      file=sys.stderr)
            res.update(steps=steps, val_acc=val_acc, train_acc=train_acc)
            res["times"].append(seconds)
            print(f"  [{name:11s} repeat {r + 1}/{repeats}] {seconds:6.2f} s, "
                  f"{steps / seconds:7.0f} steps/s, val acc {val_acc:.2%}",
                  file=sys.stderr, flush=True)
    return results


NAMES = {"ours": "ours (helpers.train, f32)", "plain": "ours with plain a @ b",
         "ours+checks": "ours, protocol's checks", "plain+checks": "plain a @ b, checks",
         "sklearn": "scikit-learn MLP (f32)",
         "textbook": "textbook NumPy (f64)",
         "per-example": "per-example textbook (f64)", "ceiling": "ceiling: gather+matmuls+W1"}


def table(results: dict, title: str) -> tuple[str, dict]:
    ours = results["ours"]
    best = {name: res["steps"] / min(res["times"]) for name, res in results.items()}
    lines = [title, "",
             f"| {'implementation':<27} | {'steps':>6} | {'best s':>7} | {'median s':>8} | "
             f"{'steps/s (best)':>14} | {'ours / this':>11} | {'val acc':>7} | {'vs ours':>8} |",
             f"|{'-' * 29}|{'-' * 7}:|{'-' * 8}:|{'-' * 9}:|{'-' * 15}:|{'-' * 12}:|"
             f"{'-' * 8}:|{'-' * 9}:|"]
    for name, res in results.items():
        ratio = "-" if name == "ours" else f"{best['ours'] / best[name]:.2f}x"
        acc = "-" if math.isnan(res["val_acc"]) else f"{res['val_acc']:.2%}"
        gap = ("-" if name == "ours" or math.isnan(res["val_acc"])
               else f"{100 * (res['val_acc'] - ours['val_acc']):+.2f} pp")
        lines.append(f"| {NAMES[name]:<27} | {res['steps']:>6} | {min(res['times']):>7.2f} | "
                     f"{statistics.median(res['times']):>8.2f} | {best[name]:>14.0f} | "
                     f"{ratio:>11} | {acc:>7} | {gap:>8} |")
    return "\n".join(lines), best


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=10,
                        help="epochs each implementation trains (default 10: the benchmark "
                             "takes about 2 minutes, 3 with --default-threads, on 2 cores)")
    parser.add_argument("--repeats", type=int, default=3,
                        help="repeats of each measurement; the best is reported (default 3)")
    parser.add_argument("--default-threads", action="store_true",
                        help="also measure with the BLAS library's default thread count")
    parser.add_argument("--skip", nargs="*", default=[],
                        choices=["sklearn", "textbook", "per-example", "ceiling", "checks",
                                 "products"],
                        help="leave out some of the comparisons")
    parser.add_argument("--max-wait", type=float, default=5.0,
                        help="before each measurement wait up to this many seconds for the "
                             "CPUs to be idle (other processes); 0: do not wait (default 5)")
    parser.add_argument("--data-dir", default=None,
                        help="MNIST folder (default: $MNIST_DIR, else <project>/data/mnist)")
    parser.add_argument("--engine", type=Path, default=PROJECT_DIR / "helpers.py",
                        help="the engine module to benchmark (default: the project's "
                             "helpers.py; point it at a patched copy to measure a change)")
    args = parser.parse_args(argv)
    if args.epochs < 1 or args.repeats < 1:
        parser.error("--epochs and --repeats must be >= 1")

    h = load_engine(args.engine)
    sys.path.insert(0, str(PROJECT_DIR))
    from report import experiments  # after load_engine, so that it uses that engine
    import sklearn
    import sklearn.neural_network  # noqa: F401  (imported here, not inside the timed region)
    from threadpoolctl import threadpool_info

    t0 = time.perf_counter()
    raw = h.load_mnist(args.data_dir, download=False)
    data = h.prepare_data(*raw)                                   # float32, with bias column
    data64 = h.prepare_data(*raw, dtype=np.float64)               # the textbook's float64 copy
    X_sk, X_sk_val = (np.ascontiguousarray(data.X_train[:, :784]),  # no bias column: sklearn
                      np.ascontiguousarray(data.X_val[:, :784]))    # has its own intercepts
    y_sk, y_sk_val = data.Y_train.argmax(1), data.Y_val.argmax(1)
    load_seconds = time.perf_counter() - t0

    jobs = {"ours": lambda: run_ours(h, data, args.epochs),
            "plain": lambda: run_ours_plain(h, data, args.epochs)}
    if "checks" not in args.skip:
        jobs["ours+checks"] = lambda: run_ours(h, data, args.epochs, checks_per_epoch=5)
        jobs["plain+checks"] = lambda: run_ours_plain(h, data, args.epochs, checks_per_epoch=5)
    if "sklearn" not in args.skip:
        jobs["sklearn"] = lambda: run_sklearn(X_sk, y_sk, X_sk_val, y_sk_val, args.epochs)
    if "textbook" not in args.skip:
        jobs["textbook"] = lambda: run_textbook(data64.X_train, data64.Y_train, data64.X_val,
                                                data64.Y_val, args.epochs)
    if "per-example" not in args.skip:
        jobs["per-example"] = lambda: run_per_example(data64.X_train, data64.Y_train,
                                                      data64.X_val, data64.Y_val, args.epochs)
    if "ceiling" not in args.skip:
        jobs["ceiling"] = lambda: run_ceiling(h, data.X_train, args.epochs)

    blas = [f"{p['internal_api']} {p['version']} ({p.get('architecture', '?')}, "
            f"{p['num_threads']} threads by default)"
            for p in threadpool_info() if p["user_api"] == "blas"]
    header = (f"Task 3 network [64, 10], batch {BATCH}, lr {LR}, momentum {GAMMA}, "
              f"{args.epochs} epochs on {len(data.X_train)} images; timed: training + one "
              f"final evaluation; best of {args.repeats} interleaved repeats.\n"
              f"numpy {np.__version__}, scikit-learn {sklearn.__version__}, "
              f"{'; '.join(blas) or 'BLAS unknown'}, Python {platform.python_version()}, "
              f"{os.cpu_count()} CPUs, engine {args.engine}\n"
              f"helpers.BLAS_CORE = {h.BLAS_CORE!r}: helpers.matmul "
              f"{'is blocked_matmul' if h.matmul is h.blocked_matmul else 'is np.matmul itself'}"
              f" (kernel family from OPENBLAS_CORETYPE or the processor)\n"
              f"(data loaded and preprocessed in {load_seconds:.1f} s, not timed)")
    print(header, file=sys.stderr)

    tables = []
    print("\nBLAS pinned to one thread:", file=sys.stderr)
    results = measure(jobs, args.repeats, experiments.single_threaded_blas, args.max_wait)
    text, best = table(results, "BLAS pinned to 1 thread (experiments.single_threaded_blas)")
    tables.append(text)
    if args.default_threads:
        print("\nBLAS default threads:", file=sys.stderr)
        results_mt = measure(jobs, args.repeats, contextlib.nullcontext, args.max_wait)
        tables.append(table(results_mt, "BLAS default threads")[0])

    if "products" not in args.skip:
        print("\nProducts and checks (1 thread):", file=sys.stderr, flush=True)
        if args.max_wait > 0:
            wait_for_idle(args.max_wait)
        with experiments.single_threaded_blas():
            products = product_rows(h, data)
        tables.append(product_table(products))

    print("\n" + header + "\n")
    print("\n\n".join(tables))
    print("\nThe engine's own strategy against plain a @ b (this kernel family):")
    for mine, plain, what in (("ours", "plain", "steps only"),
                              ("ours+checks", "plain+checks", "with the protocol's checks")):
        if mine in best and plain in best:
            print(f"  training, {what}: ours / plain-@ = {best[mine] / best[plain]:.3f} "
                  f"(steps/s; >= 1: ours at least as fast)")
    if "products" not in args.skip:
        print("  products: helpers.matmul / a @ b at most "
              f"{max(max(r['step'], r['gradient'], r['check'], r['block']) for r in products):.2f}"
              f"; a check's forward pass at most "
              f"{max(r['forward'] / r['bare'] for r in products):.2f}x its bare products "
              f"(target 1.25x)")
    print("\nTargets (from the 1-thread table):")
    ok_all = True
    for name, target, what in (("sklearn", TARGET_VS_SKLEARN, "scikit-learn"),
                               ("textbook", TARGET_VS_TEXTBOOK, "float64 textbook")):
        if name not in results:
            continue
        ratio = best["ours"] / best[name]
        ok = ratio >= target
        ok_all &= ok
        print(f"  throughput >= {target:g}x {what}: {ratio:.2f}x  {'MET' if ok else 'NOT MET'}")
    if "textbook" in results and "ceiling" in results:
        print(f"    (that needs {TARGET_VS_TEXTBOOK * best['textbook']:.0f} steps/s; the batch "
              f"gather, the two big float32 products and one pass over W1 alone, nothing else "
              f"of a step, run at {best['ceiling']:.0f} steps/s, "
              f"{best['ceiling'] / best['textbook']:.2f}x the textbook)")
    for name in ("sklearn", "textbook"):
        if name in results:
            gap = results[name]["val_acc"] - results["ours"]["val_acc"]
            ok = abs(gap) <= TARGET_ACCURACY_GAP
            ok_all &= ok
            print(f"  validation accuracy within 1 pp of {name}: {100 * gap:+.2f} pp  "
                  f"{'MET' if ok else 'NOT MET'}")
    print(f"  => {'all targets met' if ok_all else 'some targets NOT met'}")
    if "per-example" in results:
        print(f"  (for reference, not a target: {best['ours'] / best['per-example']:.1f}x the "
              f"per-example textbook, validation accuracy "
              f"{100 * (results['per-example']['val_acc'] - results['ours']['val_acc']):+.2f} pp)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
