"""What the report computes from finished runs: seed statistics, comparisons, tables, diagnostics."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from helpers import (
    NUM_CLASSES,
    History,
    SoftmaxModel,
    TrainConfig,
    atomic_write,
    gradient_check_errors,
    one_hot_encode,
    pre_process_images,
    probe_gradient_norms,
)
from report.configurations import RUN_NAMES
from report.experiments import Run, single_threaded_blas

# ================================================================================================
# Analysis: seed statistics, tables, initialisation statistics, errors of the best network
# ================================================================================================

def run_metrics(history: History) -> dict[str, float]:
    """The numbers the report compares, for one run.

    best_val_loss / best_val_accuracy / best_train_accuracy / best_epoch: at the check with the
    lowest validation loss (the weights early stopping keeps); stop_epoch: where the run ended;
    val_loss_epoch1: validation loss after one epoch (convergence speed); final_train_accuracy:
    at the last check; overfit_rise: last minus best validation loss (how far it climbed after
    the best check, a sign of overfitting)."""
    h = history
    after_one = int(np.searchsorted(h.check_steps, h.config.steps_per_epoch))
    return dict(best_val_loss=h.best["val_loss"], best_val_accuracy=h.best["val_accuracy"],
                best_train_accuracy=h.best["train_accuracy"], best_epoch=h.best["epoch"],
                stop_epoch=h.last["epoch"],
                val_loss_epoch1=float(h.val_loss[min(after_one, h.val_loss.size - 1)]),
                final_train_accuracy=h.last["train_accuracy"],
                overfit_rise=h.last["val_loss"] - h.best["val_loss"])


def seed_statistics(runs: Sequence[Run]) -> dict[str, tuple[float, float]]:
    """`run_metrics` over seeds: metric -> (mean, standard deviation with ddof=1; 0 for one run)."""
    rows = [run_metrics(r.history) for r in runs]
    out = {}
    for metric in rows[0]:
        v = np.array([row[metric] for row in rows], dtype=np.float64)
        out[metric] = (float(v.mean()), float(v.std(ddof=1)) if v.size > 1 else 0.0)
    return out


def differs_beyond_noise(a: tuple[float, float], b: tuple[float, float], k: float = 2.0) -> bool:
    """True when two (mean, std) pairs differ by more than ``k`` times their combined std
    (sqrt(std_a^2 + std_b^2)); with k = 2 roughly a two-sigma difference."""
    return abs(a[0] - b[0]) > k * float(np.hypot(a[1], b[1]))


def mean_std(ms: tuple[float, float], digits: int = 4, percent: bool = False) -> str:
    """'0.1234 ± 0.0012', or '96.43 ± 0.12 %' for accuracies (digits - 2 decimals). The spaces
    after '±' and before '%' are non-breaking, so a narrow table cell breaks only before '±'."""
    m, s = ms
    if percent:
        d = max(digits - 2, 0)
        return f"{100 * m:.{d}f} ±\u00a0{100 * s:.{d}f}\u00a0%"
    return f"{m:.{digits}f} ±\u00a0{s:.{digits}f}"


def compare(before: tuple[float, float], after: tuple[float, float], higher_is_better: bool,
            percent: bool = False, digits: int = 4) -> str:
    """'a → b (better|worse, beyond seed noise)' or 'a → b (within seed noise)'."""
    text = f"{mean_std(before, digits, percent)} → {mean_std(after, digits, percent)}"
    if not differs_beyond_noise(before, after):
        return text + " (within seed noise)"
    better = (after[0] > before[0]) == higher_is_better
    return text + f" ({'better' if better else 'worse'}, beyond seed noise)"


def table_widths(columns: Sequence[Sequence[str]], budget: int = 70) -> list[int]:
    """Relative widths for a table's columns (each: header, then cells), in characters.

    Pandoc (the PDF export) sizes the columns of a wide table in proportion to the separator
    dashes, and wraps cells at ordinary spaces. Each column gets at least its longest unbreakable
    word, so nothing spills into its neighbour; what ``budget`` (about the characters a line of
    the PDF's table font holds) leaves over goes to the columns whose full entries are longer.
    """
    least = [max(len(word) for text in col for word in text.split(" ")) for col in columns]
    full = [max(len(text) for text in col) for col in columns]
    spare, wants = budget - sum(least), [f - m for f, m in zip(full, least)]
    if spare <= 0 or not sum(wants):
        return least
    return [m + round(spare * w / sum(wants)) for m, w in zip(least, wants)]


def markdown_table(rows: Sequence[dict], columns: dict[str, str]) -> str:
    """A Markdown table: ``columns`` maps each row key to its header; values are str()-ed."""
    cells = [[str(row[k]) for k in columns] for row in rows]
    widths = table_widths([[h, *(r[i] for r in cells)] for i, h in enumerate(columns.values())])
    lines = ["| " + " | ".join(columns.values()) + " |",
             "|" + "|".join("-" * max(w, 3) for w in widths) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in cells]
    return "\n".join(lines)


def initial_preactivations(X: np.ndarray, use_improved_weight_init: bool,
                           rng: np.random.Generator, width: int = 64) -> np.ndarray:
    """Hidden pre-activations z = X w of a freshly initialised first layer: float (N, width)."""
    w = SoftmaxModel([width, NUM_CLASSES], use_improved_weight_init=use_improved_weight_init,
                     rng=rng, dtype=X.dtype.type).ws[0]
    return X @ w


def initial_gradient_norms(config: TrainConfig, X: np.ndarray, Y: np.ndarray) -> np.ndarray:
    """Norm of dC/dW for each weight matrix of ``config``'s network as initialised (its seed),
    on inputs X (N, 785) and one-hot targets Y (N, 10): float64 (L,). Equals the first row of
    the trained run's ``History.grad_norms`` when X, Y are the probe batch."""
    model = SoftmaxModel(config.neurons_per_layer, config.use_improved_sigmoid,
                         config.use_improved_weight_init, rng=np.random.default_rng(config.seed),
                         dtype=X.dtype.type)
    return probe_gradient_norms(model, X, Y)


def confusion_matrix(labels: np.ndarray, predictions: np.ndarray,
                     num_classes: int = NUM_CLASSES) -> np.ndarray:
    """int64 (K, K): entry [t, p] counts images of digit t predicted as p."""
    cm = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(cm, (labels, predictions), 1)
    return cm


def most_confident_mistakes(probabilities: np.ndarray, labels: np.ndarray,
                            k: int = 12) -> np.ndarray:
    """Indices of the k misclassified images with the highest predicted probability, descending."""
    predictions = probabilities.argmax(axis=1)
    wrong = np.flatnonzero(predictions != labels)
    confidence = probabilities[wrong, predictions[wrong]]
    return wrong[np.argsort(-confidence, kind="stable")[:k]]




def gradient_check_report(X_raw: np.ndarray, Y_raw: np.ndarray, mean: float, std: float,
                          neurons_per_layer: Sequence[int], use_improved: bool = False,
                          weights_per_layer: int | None = None) -> tuple[list[dict], float, bool]:
    """The report's gradient-check table: a float64 network (seed 0; improved sigmoid and init
    when ``use_improved``) checked on raw images X_raw (N, 784) with labels Y_raw (N,), at
    epsilon 1e-3 (the course's criterion: every |a - n| <= epsilon^2) and 1e-5.

    Returns: (Markdown-ready rows, the largest relative error at 1e-5, whether the course's
    criterion held for every checked weight)."""
    X = pre_process_images(X_raw, mean, std, np.float64)
    Y = one_hot_encode(Y_raw, NUM_CLASSES)
    model = SoftmaxModel(neurons_per_layer, use_improved, use_improved,
                         rng=np.random.default_rng(0), dtype=np.float64)
    with single_threaded_blas():
        coarse, fine = (gradient_check_errors(model, X, Y, eps, weights_per_layer,
                                              np.random.default_rng(1)) for eps in (1e-3, 1e-5))
    rows = [dict(layer=f"$W_{c['layer'] + 1}$ {c['shape'][0]}×{c['shape'][1]}",
                 checked=f"{c['checked']:,} of {c['shape'][0] * c['shape'][1]:,}",
                 abs3=f"{c['max_abs_error']:.1e}",
                 ok="yes" if c["max_abs_error"] <= 1e-6 else "**NO**",
                 rel3=f"{c['max_rel_error']:.1e}", rel5=f"{f['max_rel_error']:.1e}")
            for c, f in zip(coarse, fine)]
    return (rows, max(f["max_rel_error"] for f in fine),
            all(c["max_abs_error"] <= 1e-6 for c in coarse))


GRADIENT_CHECK_COLUMNS = dict(layer="weights", checked="weights checked",
                              abs3="max abs. error (ε = 1e-3)", ok="≤ ε² ?",
                              rel3="rel. error (ε = 1e-3)", rel5="rel. error (ε = 1e-5)")


def seed_table(stats: dict[str, dict], runs: dict[str, Sequence[Run]],
               keys: Sequence[str]) -> str:
    """Markdown table of `seed_statistics` for the configurations ``keys``."""
    rows = []
    for key in keys:
        s = stats[key]
        rows.append(dict(name=RUN_NAMES.get(key, key),
                         params=f"{runs[key][0].history.num_parameters:,}",
                         vl1=mean_std(s["val_loss_epoch1"], 3),
                         bvl=mean_std(s["best_val_loss"], 4),
                         bva=mean_std(s["best_val_accuracy"], 4, percent=True),
                         bta=mean_std(s["best_train_accuracy"], 4, percent=True),
                         be=mean_std(s["best_epoch"], 1), rise=mean_std(s["overfit_rise"], 3)))
    return markdown_table(rows, dict(
        name="configuration", params="parameters", vl1="val. loss after 1 epoch",
        bvl="best val. loss", bva="best val. accuracy", bta="train. accuracy (at best)",
        be="epoch of best", rise="val. loss rise after best"))


def change(stats: dict[str, dict], before: str, after: str, metric: str,
           higher_is_better: bool, percent: bool = False, digits: int = 4) -> str:
    """`compare` of one metric between two configurations' seed statistics."""
    return compare(stats[before][metric], stats[after][metric], higher_is_better, percent, digits)


def write_results(path: str | os.PathLike, results: dict) -> None:
    """Write the report's key numbers as sorted, indented JSON (for tests and for diffs)."""
    atomic_write(Path(path), (json.dumps(results, indent=2, sort_keys=True) + "\n").encode())
