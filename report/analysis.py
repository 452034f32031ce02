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

#: The significance level of every comparison in the report (two-sided, per comparison).
LEVEL = 0.05


def run_metrics(history: History) -> dict[str, float]:
    """The numbers the report compares, for one run, in both readings of early stopping.

    At the *best check* (the lowest validation loss; the weights early stopping keeps):
    best_val_loss, best_val_accuracy, best_train_accuracy, best_epoch. At the *end of training*
    (the last check, where patience or the epoch limit ended the run): end_val_loss,
    end_val_accuracy, end_train_accuracy, end_epoch. And: val_loss_epoch1, the validation loss
    after one epoch (convergence speed); overfit_rise = end_val_loss - best_val_loss (how far the
    validation loss climbed after the best check); accuracy_gain = end_val_accuracy -
    best_val_accuracy (what validation accuracy did meanwhile)."""
    h = history
    after_one = int(np.searchsorted(h.check_steps, h.config.steps_per_epoch))
    return dict(best_val_loss=h.best["val_loss"], best_val_accuracy=h.best["val_accuracy"],
                best_train_accuracy=h.best["train_accuracy"], best_epoch=h.best["epoch"],
                end_val_loss=h.last["val_loss"], end_val_accuracy=h.last["val_accuracy"],
                end_train_accuracy=h.last["train_accuracy"], end_epoch=h.last["epoch"],
                val_loss_epoch1=float(h.val_loss[min(after_one, h.val_loss.size - 1)]),
                overfit_rise=h.last["val_loss"] - h.best["val_loss"],
                accuracy_gain=h.last["val_accuracy"] - h.best["val_accuracy"])


def seed_metrics(runs: Sequence[Run]) -> dict[str, np.ndarray]:
    """`run_metrics` of each run (one per seed): metric -> float64 (S,), in the runs' order."""
    rows = [run_metrics(r.history) for r in runs]
    return {m: np.array([row[m] for row in rows], dtype=np.float64) for m in rows[0]}


def mean_sd(values: np.ndarray) -> tuple[float, float]:
    """(mean, sample standard deviation with ddof=1; 0 for a single value)."""
    v = np.asarray(values, dtype=np.float64)
    return float(v.mean()), float(v.std(ddof=1)) if v.size > 1 else 0.0


def seed_statistics(runs: Sequence[Run]) -> dict[str, tuple[float, float]]:
    """`run_metrics` over seeds: metric -> (mean, standard deviation with ddof=1)."""
    return {m: mean_sd(v) for m, v in seed_metrics(runs).items()}


def outlier_seeds(values: np.ndarray, threshold: float = 3.5) -> np.ndarray:
    """Indices of values that stand apart from the others: modified z-score
    0.6745 |x - median| / MAD above ``threshold`` (Iglewicz and Hoaglin's rule, robust to the
    outlier itself). int64 (K,), empty when none does (or when the MAD is 0)."""
    v = np.asarray(values, dtype=np.float64)
    mad = np.median(np.abs(v - np.median(v)))
    if v.size < 3 or mad == 0:
        return np.array([], dtype=np.int64)
    return np.flatnonzero(0.6745 * np.abs(v - np.median(v)) / mad > threshold)


def two_sample_test(a: np.ndarray, b: np.ndarray) -> tuple[str, float]:
    """A two-sided test of a difference between two sets of seeds: (test name, p-value).

    Welch's t-test (no equal-variance assumption) when both samples look normal; the
    Mann–Whitney U test (exact, rank-based) when either has a seed that stands apart
    (`outlier_seeds`), where a t-test's mean and variance would be driven by that one seed."""
    from scipy import stats
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.size < 2 or b.size < 2:
        raise ValueError(f"a test across seeds needs at least 2 seeds per side, got {a.size} "
                         f"and {b.size}: set more seeds in the report's settings")
    if outlier_seeds(a).size or outlier_seeds(b).size:
        return "Mann–Whitney U", float(stats.mannwhitneyu(a, b, alternative="two-sided").pvalue)
    if np.ptp(a) == 0 and np.ptp(b) == 0:   # no spread at all: equal, or certainly different
        return "Welch's t-test", 1.0 if a[0] == b[0] else 0.0
    return "Welch's t-test", float(stats.ttest_ind(a, b, equal_var=False).pvalue)


def paired_test(a: np.ndarray, b: np.ndarray) -> tuple[str, float]:
    """A two-sided paired t-test of b - a over the same seeds (e.g. one configuration's accuracy
    at the end of training against at its best check): (test name, p-value)."""
    from scipy import stats
    d = np.asarray(b, dtype=np.float64) - np.asarray(a, dtype=np.float64)
    if d.size < 2:
        raise ValueError(f"a paired test needs at least 2 seeds, got {d.size}")
    if np.ptp(d) == 0:
        return "paired t-test", 1.0 if d[0] == 0 else 0.0
    return "paired t-test", float(stats.ttest_1samp(d, 0.0).pvalue)


def holm(p_values: Sequence[float]) -> np.ndarray:
    """Holm's step-down adjustment of p-values for testing them all at once (controls the chance
    of any false difference among them): float64 (M,), in the input's order."""
    p = np.asarray(p_values, dtype=np.float64)
    order = np.argsort(p, kind="stable")
    adjusted = np.maximum.accumulate((p.size - np.arange(p.size)) * p[order])
    out = np.empty_like(p)
    out[order] = np.minimum(adjusted, 1.0)
    return out


def format_p(p: float) -> str:
    """'p = 0.002', 'p = 0.41', 'p < 0.001'."""
    return "p < 0.001" if p < 0.001 else f"p = {p:.2g}" if p < 0.1 else f"p = {p:.2f}"


def mean_std(ms: tuple[float, float], digits: int = 4, percent: bool = False) -> str:
    """'0.1234 ± 0.0012', or '96.43 ± 0.12 %' for accuracies (digits - 2 decimals). The spaces
    after '±' and before '%' are non-breaking, so a narrow table cell breaks only before '±'."""
    m, s = ms
    if percent:
        d = max(digits - 2, 0)
        return f"{100 * m:.{d}f} ±\u00a0{100 * s:.{d}f}\u00a0%"
    return f"{m:.{digits}f} ±\u00a0{s:.{digits}f}"


class Comparisons:
    """The report's comparisons between configurations, each a two-sample test across seeds.

    ``compare(before, after, metric)`` returns the sentence fragment the text quotes, e.g.
    '0.1402 ± 0.0035 → 0.1169 ± 0.0023, lower (p = 0.002)' or '... no difference shown
    (p = 0.41)', and records the test (`records`, written to results.json), so that every
    comparative sentence in the report rests on a test whose p-value is shown next to it.
    """

    def __init__(self, metrics: dict[str, dict[str, np.ndarray]], level: float = LEVEL):
        self.metrics, self.level = metrics, level
        self.records: list[dict] = []

    def test(self, before: str, after: str, metric: str) -> dict:
        """The test of ``metric`` between two configurations (recorded once)."""
        a, b = self.metrics[before][metric], self.metrics[after][metric]
        name, p = two_sample_test(a, b)
        record = dict(before=before, after=after, metric=metric, test=name, p_value=p,
                      mean_before=float(a.mean()), mean_after=float(b.mean()),
                      seeds=[int(a.size), int(b.size)], significant=bool(p < self.level))
        if record not in self.records:
            self.records.append(record)
        return record

    def __call__(self, before: str, after: str, metric: str, percent: bool = False,
                 digits: int = 4) -> str:
        r = self.test(before, after, metric)
        a, b = self.metrics[before][metric], self.metrics[after][metric]
        text = f"{mean_std(mean_sd(a), digits, percent)} → {mean_std(mean_sd(b), digits, percent)}"
        how = format_p(r["p_value"]) + (", Mann–Whitney" if r["test"] != "Welch's t-test" else "")
        if not r["significant"]:
            return f"{text}, no difference shown ({how})"
        return f"{text}, {'higher' if r['mean_after'] > r['mean_before'] else 'lower'} ({how})"

    def differs(self, before: str, after: str, metric: str) -> bool:
        """Whether the test finds a difference at the report's level."""
        return self.test(before, after, metric)["significant"]


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


def step_multiply_adds(config: TrainConfig) -> int:
    """Multiply-adds of one training step of ``config`` (a deterministic measure of its cost):
    the forward products B·Σ fan_in·fan_out, the weight gradients as many again, and the
    back-propagated errors B·Σ fan_in·fan_out over every layer but the first."""
    sizes = [(a, b) for a, b in zip((785, *config.neurons_per_layer), config.neurons_per_layer)]
    per_example = [a * b for a, b in sizes]
    return config.batch_size * (2 * sum(per_example) + sum(per_example[1:]))


def seed_table(metrics: dict[str, dict[str, np.ndarray]], runs: dict[str, Sequence[Run]],
               keys: Sequence[str]) -> str:
    """Markdown table, mean ± standard deviation over seeds, of the configurations ``keys``:
    validation loss after one epoch, then validation loss and accuracy and the epoch at the best
    check (the weights early stopping keeps) and at the end of training."""
    rows = []
    for key in keys:
        m = {name: mean_sd(v) for name, v in metrics[key].items()}
        rows.append(dict(name=RUN_NAMES.get(key, key),
                         params=f"{runs[key][0].history.num_parameters:,}",
                         vl1=mean_std(m["val_loss_epoch1"], 3),
                         bvl=mean_std(m["best_val_loss"], 4),
                         bva=mean_std(m["best_val_accuracy"], 4, percent=True),
                         be=mean_std(m["best_epoch"], 1),
                         evl=mean_std(m["end_val_loss"], 4),
                         eva=mean_std(m["end_val_accuracy"], 4, percent=True),
                         ee=mean_std(m["end_epoch"], 1)))
    return markdown_table(rows, dict(
        name="configuration", params="parameters", vl1="val. loss after 1 epoch",
        bvl="best check: val. loss", bva="best check: val. accuracy", be="best check: epoch",
        evl="end: val. loss", eva="end: val. accuracy", ee="end: epoch"))


def per_seed_results(runs: Sequence[Run]) -> dict:
    """results.json's record of one configuration: its seeds and, per seed, the validation loss,
    accuracy and epoch at the best check and at the end of training."""
    out = dict(seeds=[r.config.seed for r in runs], per_seed=[])
    for r in runs:
        h = r.history
        out["per_seed"].append(dict(
            seed=r.config.seed,
            best=dict(val_loss=h.best["val_loss"], val_accuracy=h.best["val_accuracy"],
                      epoch=h.best["epoch"]),
            end=dict(val_loss=h.last["val_loss"], val_accuracy=h.last["val_accuracy"],
                     epoch=h.last["epoch"])))
    return out


def write_results(path: str | os.PathLike, results: dict) -> None:
    """Write the report's key numbers as sorted, indented JSON (for tests and for diffs)."""
    atomic_write(Path(path), (json.dumps(results, indent=2, sort_keys=True) + "\n").encode())
