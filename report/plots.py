"""The report's figures. Every function returns a matplotlib `Figure` (no pyplot state), so the
notebook can display it and the explorer can draw one from a background thread.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from matplotlib.figure import Figure

from helpers import History, sigmoid_slope
from report.configurations import FIGURE_DIR, RUN_NAMES

if TYPE_CHECKING:  # plots draw finished runs; they never import the runner
    from report.experiments import Run

# ================================================================================================
# Plots: one colour per configuration, training curves, comparisons, diagnostics
# ================================================================================================

#: One colour per configuration, the same in every figure.
RUN_COLORS = {"2c": "#7f7f7f", "3a": "#1f77b4", "3b": "#ff7f0e", "3c": "#2ca02c",
              "4a": "#9467bd", "4b": "#8c564b", "4d": "#e377c2", "4e": "#d62728",
              "4e-lr": "#17becf"}
DEPTH_COLORS = {1: "#2ca02c", 2: "#e377c2", 3: "#17becf", 4: "#bcbd22"}


def moving_average(x: np.ndarray, window: int) -> np.ndarray:
    """Trailing mean over ``window`` values (over fewer at the start); same length as ``x``."""
    x = np.asarray(x, dtype=np.float64)
    c = np.concatenate([[0.0], np.cumsum(x)])
    end = np.arange(1, x.size + 1)
    start = np.maximum(end - window, 0)
    return (c[end] - c[start]) / (end - start)


def show_figure(fig: Figure, name: str, folder: str | os.PathLike | None = None) -> None:
    """Save ``fig`` (see `save_figure`) and display it in the notebook as PNG (screen) and vector
    PDF (the exported report), both rendered here with fixed metadata: no creation date, so a
    rerun stores the same bytes."""
    from IPython.display import display
    save_figure(fig, name, folder)
    display({"image/png": figure_bytes(fig, "png"), "application/pdf": figure_bytes(fig, "pdf"),
             "text/plain": f"<Figure {name}>"}, raw=True)


def figure_bytes(fig: Figure, fmt: str, dpi: int | None = None) -> bytes:
    """``fig`` rendered as ``fmt`` ("png" or "pdf") without a timestamp in its metadata. A PNG is
    reduced to a palette of 256 colours (a plot has few; the notebook, which embeds every figure,
    shrinks by a third and stays small enough to read on GitHub)."""
    metadata = {"CreationDate": None} if fmt == "pdf" else {"Software": None}
    buffer = io.BytesIO()
    fig.savefig(buffer, format=fmt, dpi=dpi or fig.dpi, metadata=metadata)
    if fmt != "png":
        return buffer.getvalue()
    from PIL import Image      # matplotlib's own dependency
    image = Image.open(buffer).convert("RGB").quantize(
        colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    small = io.BytesIO()
    image.save(small, format="PNG", optimize=True)
    return small.getvalue()


def save_figure(fig: Figure, name: str, folder: str | os.PathLike | None = None) -> list[Path]:
    """Save ``fig`` as ``<name>.png`` (150 dpi, for the web) and ``<name>.pdf`` (vector, for
    print) in ``folder`` (default: the project's figures/)."""
    folder = Path(folder or FIGURE_DIR)
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"{name}.png", folder / f"{name}.pdf"]
    fig.savefig(paths[0], dpi=150)
    fig.savefig(paths[1], metadata={"CreationDate": None})  # no timestamp: same bytes on rerun
    return paths


def _figure(ncols: int = 1, nrows: int = 1, width: float = 6.4,
            height: float = 3.6, **kw) -> tuple[Figure, np.ndarray]:
    """A constrained-layout Figure, drawn at 0.7 of the nominal size in inches so that its text
    stays legible when the PDF scales it to the page width; 100 dpi inline (files: 150 dpi)."""
    fig = Figure(figsize=(0.7 * width, 0.7 * height), layout="constrained", dpi=100)
    return fig, fig.subplots(nrows, ncols, squeeze=False, **kw).ravel()


def _epoch_axis(ax, steps_per_epoch: int) -> None:
    """A second x-axis on top, in epochs."""
    ax.secondary_xaxis("top", functions=(lambda s: s / steps_per_epoch,
                                         lambda e: e * steps_per_epoch)).set_xlabel("epoch")


def _steps_axis(ax) -> None:
    """Gradient steps on the x-axis with at most six ticks, labelled '10k' style, so that the
    labels never run together when the figure is scaled down for print."""
    from matplotlib.ticker import FuncFormatter, MaxNLocator
    ax.xaxis.set_major_locator(MaxNLocator(nbins=5, steps=[1, 2, 2.5, 5, 10], integer=True))
    ax.xaxis.set_major_formatter(FuncFormatter(
        lambda x, _: f"{x / 1000:g}k" if abs(x) >= 1000 else f"{x:g}"))
    ax.set_xlabel("gradient step")


def _zoom(ax, curves: Iterable[np.ndarray], pad: float = 0.08, skip: float = 0.1,
          lower: float | None = None, upper: float | None = None) -> None:
    """Y-limits that fit the curves after their first ``skip`` fraction (the fast initial drop
    would otherwise squash the part worth reading)."""
    tails = [np.asarray(c, dtype=np.float64)[int(len(c) * skip):] for c in curves if len(c)]
    values = np.concatenate(tails) if tails else np.array([])
    values = values[np.isfinite(values)]
    if values.size:
        lo, hi = values.min(), values.max()
        span = max(hi - lo, 1e-3)
        ax.set_ylim(lo - pad * span if lower is None else lower,
                    hi + pad * span if upper is None else upper)


def _smoothed_train_loss(history: History, window: int | None = None):
    """(steps, training loss averaged over ``window`` steps), thinned to every window/5-th step:
    the smoothed curve loses nothing visible and the figures stay small."""
    window = window or history.config.steps_per_check or 1
    steps = np.arange(1, history.train_loss.size + 1)
    keep = slice(max(window // 5, 1) - 1, None, max(window // 5, 1))
    return steps[keep], moving_average(history.train_loss, window)[keep]


def plot_training(history: History, title: str = "") -> Figure:
    """One run: loss (left) and accuracy (right) against gradient steps.

    Training loss is the mini-batch loss averaged over the steps between two checks (125), the
    other curves are measured at each check; the dotted line marks the check with the lowest
    validation loss, whose weights early stopping keeps."""
    fig, (ax_loss, ax_acc) = _figure(2, width=10, height=3.9)
    steps, smooth = _smoothed_train_loss(history)
    window = history.config.steps_per_check or 1
    ax_loss.plot(steps, smooth, color="#1f77b4", lw=1.2,
                 label=f"training (mean of {window} batches)")
    ax_loss.plot(history.check_steps, history.val_loss, color="#d62728", lw=1.4,
                 label="validation")
    ax_acc.plot(history.check_steps, history.train_accuracy, color="#1f77b4", lw=1.4,
                label="training (whole set)")
    ax_acc.plot(history.check_steps, history.val_accuracy, color="#d62728", lw=1.4,
                label="validation")
    best = history.best
    for ax in (ax_loss, ax_acc):
        ax.axvline(best["step"], color="k", ls=":", lw=1,
                   label=f"best check (step {best['step']})")
        _steps_axis(ax)
        ax.grid(alpha=0.3)
        _epoch_axis(ax, history.config.steps_per_epoch)
    ax_loss.plot(best["step"], best["val_loss"], "o", color="#d62728")
    ax_acc.plot(best["step"], best["val_accuracy"], "o", color="#d62728")
    _zoom(ax_loss, [smooth, history.val_loss], lower=0.0)
    _zoom(ax_acc, [history.train_accuracy, history.val_accuracy], upper=1.0)
    ax_loss.set_ylabel("cross-entropy loss")
    ax_acc.set_ylabel("accuracy")
    ax_loss.legend(fontsize=8)
    ax_acc.legend(fontsize=8, loc="lower right")
    if title:
        fig.suptitle(title)
    return fig


def plot_comparison(runs: dict[str, Sequence[Run]], metrics: Sequence[str] = ("loss",),
                    names: dict[str, str] | None = None, title: str = "") -> Figure:
    """Several configurations side by side: one row per metric, training (left) and validation
    (right) curves against gradient steps.

    Args:
        runs: key -> that configuration's runs over seeds; the first seed is drawn bold, the
            others thin, so the spread between seeds is visible. A dot marks each bold run's
            best check (the weights early stopping keeps).
        metrics: rows, each "loss" (training loss averaged over the steps between checks) or
            "accuracy" (training accuracy on the whole training set).
    """
    names = names or RUN_NAMES
    fig, axes = _figure(2, len(metrics), width=10, height=3.9 * len(metrics))
    window = next(iter(runs.values()))[0].config.steps_per_check
    for row, metric in enumerate(metrics):
        ax_train, ax_val = axes[2 * row], axes[2 * row + 1]
        ax_val.sharey(ax_train)
        curves = []
        for key, seeds in runs.items():
            color = RUN_COLORS.get(key, "k")
            for n, run in enumerate(seeds):
                h = run.history
                style = dict(color=color, lw=1.4 if n == 0 else 0.6,
                             alpha=1.0 if n == 0 else 0.45,
                             label=names.get(key, key) if n == 0 else None)
                if metric == "loss":
                    train_x, train_y = _smoothed_train_loss(h)
                    val_y = h.val_loss
                else:
                    train_x, train_y, val_y = h.check_steps, h.train_accuracy, h.val_accuracy
                ax_train.plot(train_x, train_y, **style)
                ax_val.plot(h.check_steps, val_y, **style)
                if n == 0:
                    ax_val.plot(h.best["step"], h.best["val_loss" if metric == "loss"
                                                       else "val_accuracy"], "o", color=color,
                                ms=4)
                curves += [train_y, val_y]
        ax_train.set_title(f"training {metric}" + (f" (mean of {window} batches)"
                                                   if metric == "loss" else " (whole set)"),
                           fontsize=10)
        ax_val.set_title(f"validation {metric} (dot: best check)", fontsize=10)
        for ax in (ax_train, ax_val):
            _steps_axis(ax)
            ax.grid(alpha=0.3)
        ax_train.set_ylabel("cross-entropy loss" if metric == "loss" else "accuracy")
        if metric == "loss":
            _zoom(ax_train, curves, lower=0.0)
        else:
            _zoom(ax_train, curves, upper=1.0)
        ax_val.legend(fontsize=8, loc="upper right" if metric == "loss" else "lower right")
    if title:
        fig.suptitle(title)
    return fig


def plot_initialisation(z_uniform: np.ndarray, z_improved: np.ndarray) -> Figure:
    """Why the improved init helps: hidden pre-activations (left) and logistic-sigmoid slopes
    (right) of a fresh first layer, under U(-1, 1) and N(0, 1/fan_in) weights."""
    fig, (ax_z, ax_s) = _figure(2, width=10, height=3.6)
    for z, name, color in ((z_uniform, "uniform U(-1, 1)", RUN_COLORS["2c"]),
                           (z_improved, "normal, std 1/sqrt(fan_in)", RUN_COLORS["3a"])):
        z = np.asarray(z, dtype=np.float64).ravel()
        ax_z.hist(z, bins=120, range=(-60, 60), density=True, alpha=0.6, color=color,
                  label=f"{name}: std {z.std():.1f}")
        slope = sigmoid_slope(z)
        ax_s.hist(slope, bins=50, range=(0, 0.25), alpha=0.6, color=color,
                  weights=np.full(z.size, 100.0 / z.size),
                  label=f"{name}: {np.mean(slope < 0.01):.0%} below 0.01")
    ax_z.set_xlabel("hidden pre-activation $z_j$")
    ax_z.set_ylabel("density")
    ax_z.set_yscale("log")
    ax_s.set_xlabel(r"sigmoid slope $f'(z_j)$ (at most 0.25)")
    ax_s.set_ylabel("% of hidden activations")
    for ax in (ax_z, ax_s):
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    return fig


def plot_gradient_norms(init_norms: dict[str, tuple[np.ndarray, str]], deep: Run,
                        title: str = "") -> Figure:
    """Per-layer gradient norms on a log scale: at initialisation for several networks (left;
    label -> (norms, colour)), and during training of ``deep`` (right, one line per layer)."""
    from matplotlib import colormaps
    fig, (ax_init, ax_train) = _figure(2, width=10, height=3.9)
    for label, (norms, color) in init_norms.items():
        ax_init.semilogy(np.arange(1, norms.size + 1), norms, "o-", color=color, label=label, ms=4)
    ax_init.set_xlabel("weight matrix (1 = input to first hidden layer)")
    ax_init.set_ylabel(r"$\|\partial C / \partial W_l\|$ at initialisation")
    ax_init.legend(fontsize=7, loc="lower right")
    h = deep.history
    layers = h.grad_norms.shape[1]
    colors = [colormaps["viridis"](t) for t in np.linspace(0, 0.95, layers)]
    for l in range(layers):
        ax_train.semilogy(h.check_steps, h.grad_norms[:, l], color=colors[l], lw=1.0,
                          label=f"$W_{{{l + 1}}}$" if l in (0, layers - 1) or l % 3 == 0 else None)
    _steps_axis(ax_train)
    ax_train.set_ylabel(r"$\|\partial C / \partial W_l\|$ (probe batch)")
    ax_train.set_title(title, fontsize=10)
    ax_train.legend(fontsize=7, ncol=2)
    for ax in (ax_init, ax_train):
        ax.grid(alpha=0.3, which="both")
    return fig


def plot_sweep(sweep: dict[tuple[int, int], Run], highlight: tuple[int, int] = (1, 64)) -> Figure:
    """The explorer's grid as a static figure: best validation accuracy (left) and parameter
    count (right) against hidden units per layer, one line per number of hidden layers."""
    fig, (ax_acc, ax_par) = _figure(2, width=10, height=3.7)
    for depth in sorted({d for d, _ in sweep}):
        widths = sorted(w for d, w in sweep if d == depth)
        runs = [sweep[(depth, w)] for w in widths]
        color = DEPTH_COLORS.get(depth, "k")
        label = f"{depth} hidden layer{'s' if depth > 1 else ''}"
        ax_acc.plot(widths, [r.history.best["val_accuracy"] for r in runs], "o-", color=color,
                    label=label)
        ax_par.plot(widths, [r.history.num_parameters for r in runs], "o-", color=color,
                    label=label)
    if highlight in sweep:
        h = sweep[highlight].history
        ax_acc.plot(highlight[1], h.best["val_accuracy"], "*", ms=14, color=RUN_COLORS["3c"],
                    label="Task 3 network", zorder=3)
        ax_par.plot(highlight[1], h.num_parameters, "*", ms=14, color=RUN_COLORS["3c"], zorder=3)
    widths = sorted({w for _, w in sweep})
    for ax in (ax_acc, ax_par):
        ax.set_xscale("log", base=2)
        ax.set_xticks(widths, [str(w) for w in widths])
        ax.minorticks_off()
        ax.set_xlabel("hidden units per layer")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    ax_acc.set_ylabel("best validation accuracy")
    ax_par.set_ylabel("parameters")
    ax_par.yaxis.set_major_formatter(lambda v, _: f"{v:,.0f}")
    return fig


def plot_first_layer_weights(w: np.ndarray, count: int = 64, columns: int = 16) -> Figure:
    """The incoming weights of the ``count`` hidden units with the largest weight norm, each as a
    28x28 image (bias row dropped), in one mosaic on a symmetric colour scale: red excites, blue
    inhibits the unit."""
    order = np.argsort(-np.linalg.norm(w[:784], axis=0), kind="stable")[:count]
    rows = int(np.ceil(len(order) / columns))
    mosaic = np.full((rows * 29 - 1, columns * 29 - 1), np.nan)
    for n, j in enumerate(order):
        r, c = divmod(n, columns)
        mosaic[r * 29:r * 29 + 28, c * 29:c * 29 + 28] = w[:784, j].reshape(28, 28)
    fig, (ax,) = _figure(1, width=0.55 * columns, height=0.55 * rows + 0.2)
    limit = np.abs(w[:784]).max()
    ax.imshow(mosaic, cmap="RdBu_r", vmin=-limit, vmax=limit, interpolation="nearest")
    ax.axis("off")
    return fig


def plot_confusion_matrix(cm: np.ndarray) -> Figure:
    """Counts of (true digit, predicted digit); the colour shows the off-diagonal errors."""
    fig, (ax,) = _figure(1, width=5.2, height=4.6)
    errors = cm.astype(np.float64).copy()
    np.fill_diagonal(errors, 0.0)
    image = ax.imshow(errors, cmap="Reds")
    dark = 0.55 * errors.max()          # above it the red is dark: white text reads there
    for t in range(cm.shape[0]):
        for p in range(cm.shape[1]):
            color = "#2ca02c" if t == p else "white" if errors[t, p] > dark else "#1a1a1a"
            ax.text(p, t, str(cm[t, p]), ha="center", va="center", fontsize=7, color=color,
                    weight="bold" if t == p else None)
    ax.set_xticks(range(cm.shape[1]))
    ax.set_yticks(range(cm.shape[0]))
    ax.set_xlabel("predicted digit")
    ax.set_ylabel("true digit")
    fig.colorbar(image, ax=ax, label="misclassified images", shrink=0.85)
    return fig


def plot_mistakes(images: np.ndarray, labels: np.ndarray, probabilities: np.ndarray,
                  columns: int = 6) -> Figure:
    """Images (k, 784) titled 'true -> predicted (confidence)'."""
    rows = int(np.ceil(len(images) / columns))
    fig, axes = _figure(columns, rows, width=1.45 * columns, height=1.65 * rows)
    for ax in axes:
        ax.axis("off")
    for ax, image, label, p in zip(axes, images, labels, probabilities):
        ax.imshow(image.reshape(28, 28), cmap="gray_r")
        ax.set_title(f"{label} → {p.argmax()} ({p.max():.1%})", fontsize=8)
    return fig


def plot_explorer(run: Run, baseline: Run, title: str) -> Figure:
    """The explorer's view of one network: validation loss and accuracy against the Task 3
    baseline (drawn once when it is the baseline itself). The legend sits below the panels, where
    it covers no curve."""
    fig, (ax_loss, ax_acc) = _figure(2, width=10, height=3.9)
    shown = [(baseline, "Task 3 network [64, 10]", RUN_COLORS["3c"])]
    if run.config != baseline.config:
        shown.append((run, str(list(run.config.neurons_per_layer)), "#d62728"))
    for r, name, color in shown:
        h = r.history
        steps, smooth = _smoothed_train_loss(h)
        ax_loss.plot(steps, smooth, color=color, lw=0.8, alpha=0.5)
        ax_loss.plot(h.check_steps, h.val_loss, color=color, lw=1.5)
        ax_acc.plot(h.check_steps, h.val_accuracy, color=color, lw=1.5,
                    label=f"{name}: best {h.best['val_accuracy']:.2%}")
    ax_loss.set_title("loss (thin: training, thick: validation)", fontsize=10)
    ax_acc.set_title("validation accuracy", fontsize=10)
    _zoom(ax_loss, [baseline.history.val_loss, run.history.val_loss], lower=0.0)
    _zoom(ax_acc, [baseline.history.val_accuracy, run.history.val_accuracy], upper=1.0)
    for ax in (ax_loss, ax_acc):
        _steps_axis(ax)
        ax.grid(alpha=0.3)
    fig.legend(*ax_acc.get_legend_handles_labels(), loc="outside lower center", ncol=2,
               fontsize=8, frameon=False)
    fig.suptitle(title, fontsize=11)
    return fig
