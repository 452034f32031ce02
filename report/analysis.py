"""What the report computes from finished runs: seed statistics, comparisons, tables, diagnostics."""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from helpers import (
    NUM_CLASSES,
    SoftmaxModel,
    TrainConfig,
    atomic_write,
    gradient_check_errors,
    one_hot_encode,
    pre_process_images,
    probe_gradient_norms,
)
from report.experiments import CODE_VERSION, Run, cached_json, single_threaded_blas
from report.timing import timed

# ================================================================================================
# Analysis: seed statistics, tables, initialisation statistics, errors of the best network
# ================================================================================================

#: The chance of any false verdict among the primary comparisons together (two-sided tests). With
#: Bonferroni's correction each of the M comparisons is tested at LEVEL / M and its interval has
#: coverage 1 - LEVEL / M, so that a verdict is given exactly when its interval excludes zero. The
#: other differences are estimates with plain 1 - LEVEL (95 %) intervals.
LEVEL = 0.05
#: The primary measure: validation accuracy of the weights early stopping keeps (the network the
#: protocol delivers), compared across seeds.
PRIMARY_MEASURE = "best_val_accuracy"


def run_metrics(run: Run) -> dict[str, float]:
    """The numbers the report compares, for one run, in both readings of early stopping.

    At the *best check* (the lowest validation loss; the weights early stopping keeps, the *kept
    weights*): best_val_loss, best_val_accuracy, best_train_loss (on the whole training set),
    best_train_accuracy, best_epoch, and, where the data had held-out images, held_out_accuracy
    and held_out_loss (the kept weights scored on images that chose nothing). At the *end of
    training* (the last check, where patience or the epoch limit ended the run): end_val_loss,
    end_val_accuracy, end_train_accuracy, end_epoch. And:

    - val_loss_epoch1: the validation loss after one epoch (convergence speed);
    - overfit_rise, *the rise*: end_val_loss - best_val_loss, how far the validation loss climbed
      after the kept weights: over the 10 epochs of patience, or fewer where the epoch limit came
      first (overfitting);
    - accuracy_gain: end_val_accuracy - best_val_accuracy, what the validation accuracy did
      meanwhile;
    - best_gap: best_train_accuracy - best_val_accuracy, the kept weights' generalisation gap;
    - val_loss_noise: the mean absolute change of the validation loss from one check to the next,
      from the end of the first epoch on (how jagged its curve is)."""
    h = run.history
    after_one = min(int(np.searchsorted(h.check_steps, h.config.steps_per_epoch)), h.val_loss.size - 1)
    metrics = dict(best_val_loss=h.best["val_loss"], best_val_accuracy=h.best["val_accuracy"],
                   best_train_loss=h.best["train_loss"],
                   best_train_accuracy=h.best["train_accuracy"], best_epoch=h.best["epoch"],
                   end_val_loss=h.last["val_loss"], end_val_accuracy=h.last["val_accuracy"],
                   end_train_accuracy=h.last["train_accuracy"], end_epoch=h.last["epoch"],
                   val_loss_epoch1=float(h.val_loss[after_one]),
                   overfit_rise=h.last["val_loss"] - h.best["val_loss"],
                   accuracy_gain=h.last["val_accuracy"] - h.best["val_accuracy"],
                   best_gap=h.best["train_accuracy"] - h.best["val_accuracy"],
                   val_loss_noise=float(np.abs(np.diff(h.val_loss[after_one:])).mean())
                   if h.val_loss.size - after_one > 1 else 0.0)
    if run.held_out is not None:
        metrics.update(held_out_accuracy=run.held_out["accuracy"],
                       held_out_loss=run.held_out["loss"])
    return metrics


def seed_metrics(runs: Sequence[Run]) -> dict[str, np.ndarray]:
    """`run_metrics` of each run (one per seed): metric -> float64 (S,), in the runs' order."""
    rows = [run_metrics(r) for r in runs]
    return {m: np.array([row[m] for row in rows], dtype=np.float64) for m in rows[0]}


def mean_sd(values: np.ndarray) -> tuple[float, float]:
    """(mean, sample standard deviation with ddof=1; 0 for a single value)."""
    v = np.asarray(values, dtype=np.float64)
    return float(v.mean()), float(v.std(ddof=1)) if v.size > 1 else 0.0


def seeds_shared(before: TrainConfig, after: TrainConfig) -> bool:
    """Whether runs of the two configurations with the same seed start from the same weights and
    see the same batches: the same layers and the same initialisation draw the same weights from
    the seed's generator and leave it in the same state for the shuffles. Such runs are paired."""
    return (before.neurons_per_layer == after.neurons_per_layer
            and before.use_improved_weight_init == after.use_improved_weight_init
            and before.train_size == after.train_size and before.batch_size == after.batch_size)


def difference(before: np.ndarray, after: np.ndarray, paired: bool, level: float = LEVEL) -> dict:
    """``after - before``: the difference of the means over seeds, its confidence interval of
    coverage ``1 - level`` (95 % by default) and a two-sided p-value, by Student's paired t-test on the per-seed differences (``paired``:
    the seeds' runs share weights and batches) or else Welch's t-test (no equal-variance
    assumption), both as SciPy computes them.

    Returns: dict(test, diff, ci_low, ci_high, confidence, p_value, mean_before, mean_after, seeds).
    Raises ValueError for fewer than 2 seeds a side, or unequal seeds when paired."""
    from scipy import stats
    a, b = np.asarray(before, dtype=np.float64), np.asarray(after, dtype=np.float64)
    if a.size < 2 or b.size < 2:
        raise ValueError(f"a difference across seeds needs at least 2 seeds per side, got "
                         f"{a.size} and {b.size}: set more seeds in the report's settings")
    if paired and a.size != b.size:
        raise ValueError(f"paired runs need the same seeds on both sides, got {a.size} and {b.size}")
    diff = float(b.mean() - a.mean())
    spread = np.ptp(b - a) if paired else max(np.ptp(a), np.ptp(b))
    if spread == 0:     # no spread at all: the difference is exact
        low = high = diff
        p = 1.0 if diff == 0 else 0.0
    else:
        with warnings.catch_warnings():
            # A side whose seeds agree exactly (100 % training accuracy, say) has variance 0, and
            # SciPy warns of precision loss although Welch's interval is then the other side's
            # one-sample interval, computed exactly (tests/test_analysis.py checks it).
            warnings.filterwarnings("ignore", "Precision loss occurred", RuntimeWarning)
            result = stats.ttest_rel(b, a) if paired else stats.ttest_ind(b, a, equal_var=False)
            low, high = result.confidence_interval(1 - level)
        p = float(result.pvalue)
    return dict(test="paired t-test" if paired else "Welch's t-test", diff=diff,
                ci_low=float(low), ci_high=float(high), confidence=1 - level, p_value=p,
                mean_before=float(a.mean()),
                mean_after=float(b.mean()), seeds=[int(a.size), int(b.size)])


def verdict(d: dict) -> str:
    """'higher' or 'lower' when a difference's interval excludes zero, else 'no difference shown'."""
    return "higher" if d["ci_low"] > 0 else "lower" if d["ci_high"] < 0 else "no difference shown"


def primary_comparisons(metrics: dict[str, dict[str, np.ndarray]], configs: dict[str, TrainConfig],
                        pairs: dict[str, tuple[str, str]], measure: str = PRIMARY_MEASURE) -> dict:
    """The report's primary comparisons, one per task question, as one family with Bonferroni's
    correction: for each of the M tasks, `difference` of ``measure`` (after - before, paired where
    `seeds_shared`) with an interval of coverage 1 - LEVEL / M, the p-value times M (at most 1),
    and the `verdict` of that interval, which is 'higher' or 'lower' exactly when the adjusted
    p-value is below LEVEL (the interval and the test are the same t-test's).

    Where the runs were scored on held-out images, each comparison also holds ``held_out``: the
    same difference of ``held_out_accuracy``, by the same test at the same level, and ``side``,
    the side of zero its interval lies on (as `verdict` words it). It is the check of the
    verdict's selection bias (the validation set chose the kept weights it scores), not a second
    verdict.

    Args:
        metrics: configuration -> `seed_metrics`; configs: configuration -> TrainConfig.
        pairs: task -> (before, after), e.g. {"3a": ("2c", "3a"), ...}.
    Returns: task -> dict(before, after, measure, paired, adjusted_p_value, verdict, **difference,
    and held_out=dict(side, **difference) where there are held-out scores)."""
    out = {}
    for task, (before, after) in pairs.items():
        paired = seeds_shared(configs[before], configs[after])
        d = difference(metrics[before][measure], metrics[after][measure], paired,
                       level=LEVEL / len(pairs))
        out[task] = dict(before=before, after=after, measure=measure, paired=paired, **d,
                         adjusted_p_value=min(1.0, d["p_value"] * len(pairs)), verdict=verdict(d))
        if "held_out_accuracy" in metrics[before] and "held_out_accuracy" in metrics[after]:
            h = difference(metrics[before]["held_out_accuracy"], metrics[after]["held_out_accuracy"],
                           paired, level=LEVEL / len(pairs))
            out[task]["held_out"] = dict(side=verdict(h), **h)
    return out


def secondary_differences(metrics: dict[str, dict[str, np.ndarray]], configs: dict[str, TrainConfig],
                          before: str, after: str, measures: Sequence[str]) -> dict:
    """Differences with their 95 % intervals for the other measures, read as estimates: no test,
    no verdict (the p-value is left out on purpose). measure -> dict(test, diff, ci_low, ci_high,
    mean_before, mean_after, seeds)."""
    paired = seeds_shared(configs[before], configs[after])
    out = {}
    for m in measures:
        d = difference(metrics[before][m], metrics[after][m], paired)
        del d["p_value"]
        out[m] = d
    return out


def interaction(metrics: dict[str, dict[str, np.ndarray]], configs: dict[str, TrainConfig],
                change: Sequence[tuple[str, str]], measure: str) -> dict:
    """How much more one change helps one network than another: with ``change`` = [(a, a'),
    (b, b')], the difference of the two changes' effects, (b' - b) - (a' - a), over seeds. Each
    effect is taken seed by seed (the pairs must share their seeds' weights and batches,
    `seeds_shared`), and the two sets of per-seed effects are compared by Welch's t-test: an
    estimate with its 95 % interval, no verdict. Returns `difference`'s dict without the p-value,
    with ``mean_before`` and ``mean_after`` the two mean effects."""
    effects = []
    for before, after in change:
        if not seeds_shared(configs[before], configs[after]):
            raise ValueError(f"{before} and {after} do not share their seeds' weights and batches: "
                             "their effect cannot be taken seed by seed")
        effects.append(np.asarray(metrics[after][measure]) - np.asarray(metrics[before][measure]))
    d = difference(effects[0], effects[1], paired=False)
    del d["p_value"]
    return d


def format_p(p: float) -> str:
    """'p < 0.001', 'p = 0.0079', 'p = 0.046', 'p = 0.41'."""
    return "p < 0.001" if p < 0.001 else f"p = {p:.2g}" if p < 0.1 else f"p = {p:.2f}"


def percent(x: float, digits: int = 2) -> str:
    """An accuracy as the report prints it: '96.23 %' (the space non-breaking)."""
    return f"{100 * x:.{digits}f}\u00a0%"


def percent_range(values: np.ndarray) -> str:
    """'96.13 % to 96.57 %' over seeds, or one value when they all agree."""
    low, high = percent(np.min(values)), percent(np.max(values))
    return low if low == high else f"{low} to {high}"


def signed(x: float, digits: int) -> str:
    """'+4.31' or '−0.07', with a true minus sign (U+2212), as the prose writes it. A value that is
    not zero but would print as ±0.00 gets up to two more decimals, so that its sign means
    something: '−0.004', not '−0.00'."""
    for places in range(digits, digits + 3):
        text = f"{x:+.{places}f}"
        if x == 0 or float(text) != 0:
            break
    return text.replace("-", "\u2212")


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


@timed("tables")
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




@timed("gradient checks")
def gradient_check_report(X_raw: np.ndarray, Y_raw: np.ndarray, mean: float, std: float,
                          neurons_per_layer: Sequence[int], use_improved: bool = False,
                          weights_per_layer: int | None = None,
                          cache_dir: str | os.PathLike | None = None) -> tuple[list[dict], float, bool]:
    """The report's gradient-check table: a float64 network (seed 0; improved sigmoid and init
    when ``use_improved``) checked on raw images X_raw (N, 784) with labels Y_raw (N,), at
    epsilon 1e-3 (the course's criterion: every |a - n| <= epsilon^2) and 1e-5.

    The check is kept in the run cache (``cache_dir``, default `experiments.cache_folder`) under
    the engine's version (`experiments.CODE_VERSION`: helpers.py and the kernels) and every input,
    as a training run is: a rerun of the report reads it instead of checking again.

    Returns: (Markdown-ready rows, the largest relative error at 1e-5, whether the course's
    criterion held for every checked weight)."""
    def check() -> dict:
        X = pre_process_images(X_raw, mean, std, np.float64)
        Y = one_hot_encode(Y_raw, NUM_CLASSES)
        model = SoftmaxModel(neurons_per_layer, use_improved, use_improved,
                             rng=np.random.default_rng(0), dtype=np.float64)
        with single_threaded_blas():
            return {f"{eps:g}": gradient_check_errors(model, X, Y, eps, weights_per_layer,
                                                      np.random.default_rng(1))
                    for eps in (1e-3, 1e-5)}
    inputs = [hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest() for a in (X_raw, Y_raw)]
    errors = cached_json("gradient-check", [CODE_VERSION, inputs, mean, std, list(neurons_per_layer),
                                            use_improved, weights_per_layer], check, cache_dir)
    coarse, fine = errors["0.001"], errors["1e-05"]
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


#: How the report names and prints each measure: measure -> (name, scale, decimals). Accuracies
#: are printed in per cent, their differences in percentage points ("points"). Names are short
#: (tables print them): "val." is validation, "train." training; a measure is of the kept weights
#: unless its name says otherwise.
MEASURES = {
    "best_val_accuracy": ("val. accuracy", 100, 2),
    "held_out_accuracy": ("held-out accuracy", 100, 2),
    "best_val_loss": ("val. loss", 1, 3),
    "best_train_accuracy": ("train. accuracy", 100, 2),
    "best_train_loss": ("train. loss", 1, 4),
    "best_epoch": ("epoch", 1, 1),
    "val_loss_epoch1": ("val. loss after one epoch", 1, 3),
    "best_gap": ("train. − val. accuracy", 100, 2),
    "overfit_rise": ("the rise", 1, 4),
    "accuracy_gain": ("val. accuracy gained after", 100, 2),
    "end_val_accuracy": ("val. accuracy at the end", 100, 2),
    "end_train_accuracy": ("train. accuracy at the end", 100, 2),
    "val_loss_noise": ("val. loss change per check", 1, 4),
}


#: The rows of each task's table after its primary comparison and held-out check: the evidence
#: its answer rests on (Task 3: convergence speed, generalisation and overfitting, final
#: validation loss; Task 4: what the figure shows).
EVIDENCE = {
    "3a": ["val_loss_epoch1", "best_epoch", "best_gap", "overfit_rise", "best_val_loss"],
    "3b": ["val_loss_epoch1", "best_epoch", "best_gap", "overfit_rise", "best_val_loss"],
    "3c": ["val_loss_epoch1", "best_epoch", "best_gap", "overfit_rise", "best_val_loss"],
    "4a": ["best_train_loss", "best_train_accuracy", "overfit_rise", "best_val_loss"],
    "4b": ["best_train_loss", "best_train_accuracy", "overfit_rise", "best_val_loss"],
    "4d": ["best_epoch", "val_loss_noise", "accuracy_gain", "end_val_accuracy", "best_val_loss"],
    "4e": ["val_loss_epoch1", "best_train_loss", "best_train_accuracy", "best_val_loss"],
}


def is_accuracy(measure: str) -> bool:
    """Whether ``measure`` is printed in per cent (and its differences in points)."""
    return MEASURES[measure][1] == 100


def reading(d: dict) -> str:
    """An estimate's direction in words, by the report's rule: 'clearly higher' or 'clearly lower'
    where its interval excludes zero, else 'not clear'."""
    side = verdict(d)
    return "not clear" if side == "no difference shown" else f"clearly {side}"


#: Measures that are themselves differences of accuracies: their means are in points, not per cent.
POINTS = {"best_gap", "accuracy_gain"}


def _mean(value: float, measure: str) -> str:
    _, scale, digits = MEASURES[measure]
    if is_accuracy(measure) and measure not in POINTS:
        return percent(value, digits)
    return f"{scale * value:.{digits}f}"


def _span(d: dict, measure: str) -> str:
    """A difference's interval as the tables print it: '+3.68 to +4.86'."""
    _, scale, digits = MEASURES[measure]
    return f"{signed(scale * d['ci_low'], digits)} to {signed(scale * d['ci_high'], digits)}"


def _level(d: dict) -> str:
    """' (99.3 % CI)' for an interval whose level is not 95 %, else ''."""
    level = 100 * d["confidence"]
    return "" if abs(level - 95) < 1e-9 else f" ({level:.1f}\u00a0% CI)"


def task_table(primary: dict, estimates: dict, measures: Sequence[str]) -> str:
    """Markdown table of one task's evidence, one row per measure of the kept weights (unless its
    name says otherwise): the two configurations' means over seeds, the difference (later minus
    earlier; accuracies in points) and its interval, and its reading. The first row is the primary
    comparison (its Bonferroni interval and verdict with the adjusted p-value), the second its
    check on the held-out images (same test and level); the other ``measures`` are estimates
    (``estimates[measure]``, 95 % intervals) read by the `reading` rule."""
    rows = []
    held_out = [("held_out_accuracy", primary["held_out"])] if "held_out" in primary else []
    for measure, d in [(primary["measure"], primary), *held_out,
                       *((m, estimates[m]) for m in measures)]:
        _, scale, digits = MEASURES[measure]
        words = (f"{d['verdict']} ({format_p(d['adjusted_p_value'])})" if d is primary
                 else reading(d))
        rows.append(dict(measure=MEASURES[measure][0] + _level(d),
                         before=_mean(d["mean_before"], measure),
                         after=_mean(d["mean_after"], measure), diff=signed(scale * d["diff"], digits),
                         ci=_span(d, measure), reading=words))
    return markdown_table(rows, dict(
        measure="kept weights (mean over seeds)",
        before=primary["before"], after=primary["after"],
        diff=f"{primary['after']} − {primary['before']}", ci="95 % CI", reading="reading"))


def effects_table(rows: Sequence[tuple[str, dict]], measure: str = PRIMARY_MEASURE) -> str:
    """Markdown table of several estimates of one measure, one row per (label, difference): the
    difference (accuracies in points), its 95 % interval and its `reading`."""
    _, scale, digits = MEASURES[measure]
    return markdown_table(
        [dict(label=label, diff=signed(scale * d["diff"], digits), ci=_span(d, measure),
              reading=reading(d)) for label, d in rows],
        dict(label=f"difference in {MEASURES[measure][0]} (kept weights)", diff="estimate",
             ci="95 % CI", reading="reading"))


def primary_table(primary: dict, questions: dict[str, str]) -> str:
    """Markdown table of every primary comparison: the question, the comparison (and whether its
    seeds are paired), the difference in validation accuracy of the kept weights with its
    Bonferroni interval and verdict, and the same difference on the held-out images."""
    rows = []
    for task, p in primary.items():
        h = p.get("held_out")
        rows.append(dict(task=task, question=questions[task],
                         comparison=f"{p['after']} − {p['before']}"
                                    + (" (paired)" if p["paired"] else ""),
                         val=f"{signed(100 * p['diff'], 2)} ({_span(p, p['measure'])})",
                         verdict=f"{p['verdict']} ({format_p(p['adjusted_p_value'])})",
                         held="" if h is None else
                         f"{signed(100 * h['diff'], 2)} ({_span(h, 'held_out_accuracy')})"))
    level = f"{100 * next(iter(primary.values()))['confidence']:.1f} %"
    return markdown_table(rows, dict(
        task="task", question="question", comparison="comparison",
        val=f"validation accuracy, points ({level} CI)", verdict="verdict",
        held=f"held-out accuracy, points ({level} CI)"))


def per_seed_results(runs: Sequence[Run]) -> dict:
    """results.json's record of one configuration: its seeds and, per seed, the validation loss
    and accuracy, the training accuracy and the epoch at the best check and at the end of
    training, and the kept weights' accuracy and loss on the held-out images (where scored)."""
    out = dict(seeds=[r.config.seed for r in runs], per_seed=[])
    for r in runs:
        h = r.history
        out["per_seed"].append(dict(seed=r.config.seed, **{
            point: dict(val_loss=c["val_loss"], val_accuracy=c["val_accuracy"],
                        train_accuracy=c["train_accuracy"], epoch=c["epoch"])
            for point, c in (("best", h.best), ("end", h.last))}))
        if r.held_out is not None:
            out["per_seed"][-1]["held_out"] = dict(r.held_out)
    return out


@timed("results.json")
def write_results(path: str | os.PathLike, results: dict) -> None:
    """Write the report's key numbers as sorted, indented JSON (for tests and for diffs)."""
    atomic_write(Path(path), (json.dumps(results, indent=2, sort_keys=True) + "\n").encode())
