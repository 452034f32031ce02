"""The report's figures. Every function returns a matplotlib `Figure` (no pyplot state), so the
notebook can display it and the explorer can draw one from a background thread.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import io
import os
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from matplotlib.figure import Figure

import helpers
from helpers import History, atomic_write, sigmoid_slope
from report import configurations
from report.configurations import FIGURE_DIR, RUN_NAMES
from report.timing import phase

if TYPE_CHECKING:  # plots draw finished runs; they never import the runner
    from report.experiments import Run

# ================================================================================================
# Plots: one colour per configuration, training curves, comparisons, diagnostics
# ================================================================================================

#: One colour per configuration, the same in every figure.
RUN_COLORS = {"2c": "#7f7f7f", "3a": "#1f77b4", "3b": "#ff7f0e", "3c": "#2ca02c",
              "4a": "#9467bd", "4b": "#8c564b", "4d": "#e377c2", "4e": "#d62728",
              "4e-lr": "#17becf", "3c-lr": "#bcbd22"}
DEPTH_COLORS = {1: "#2ca02c", 2: "#e377c2", 3: "#17becf", 4: "#bcbd22"}


def moving_average(x: np.ndarray, window: int) -> np.ndarray:
    """Trailing mean over ``window`` values (over fewer at the start); same length as ``x``."""
    x = np.asarray(x, dtype=np.float64)
    c = np.concatenate([[0.0], np.cumsum(x)])
    end = np.arange(1, x.size + 1)
    start = np.maximum(end - window, 0)
    return (c[end] - c[start]) / (end - start)


def show_figure(draw: Callable[..., Figure], *args, name: str, alt: str,
                folder: str | os.PathLike | None = None, cache: str | os.PathLike | None = None,
                **kwargs) -> None:
    """Draw ``draw(*args, **kwargs)``, save it as ``<name>.png`` (150 dpi, for the web) and
    ``<name>.pdf`` (vector, for print) in ``folder`` (default: the project's figures/), and display
    it in the notebook as PNG (screen) and PDF (the exported report: the saved file's bytes). No
    file holds a timestamp, so a rerun stores the same bytes. ``alt`` says what the figure shows,
    for a reader who cannot see it: it is the output's ``alt`` metadata (the image's alt text in
    the HTML export) and its plain-text form.

    ``cache``: a folder that keeps the three renderings under the figure's `figure_key` (what it
    is drawn from and with), so that a rerun from the same runs (a warm re-execution) writes and
    shows them without drawing again; None draws every time."""
    from IPython.display import display
    if not alt.strip():
        raise ValueError(f"figure {name!r}: give it an alt text saying what it shows")
    with phase("figures"):
        png, pdf, screen = rendered(draw, args, kwargs, cache)
        folder = Path(folder or FIGURE_DIR)
        for data, suffix in ((png, ".png"), (pdf, ".pdf")):
            path = folder / f"{name}{suffix}"
            if not path.is_file() or path.read_bytes() != data:
                atomic_write(path, data)
    display({"image/png": screen, "application/pdf": pdf, "text/plain": alt},
            metadata={"image/png": {"alt": alt}}, raw=True)


@functools.cache
def drawing_code() -> bytes:
    """What the figures are drawn with: the source of this module, of the names and colours it
    reads (report/configurations.py) and of the engine whose records and functions it draws
    (helpers.py), and the versions of matplotlib and Pillow. Read once per process: the drawing
    code cannot change under a running one."""
    import matplotlib
    import PIL
    sources = [Path(m.__file__).read_bytes() for m in (helpers, configurations)]
    return (Path(__file__).read_bytes() + b"".join(sources)
            + f"matplotlib {matplotlib.__version__} PIL {PIL.__version__}".encode())


def _digest(h, value) -> None:
    """Feed ``value`` into the hash ``h``, tagged with its type: None, numbers, strings, NumPy
    arrays and scalars, lists, tuples, dicts, and dataclasses (their fields that take part in
    comparisons: a Run's ``cached`` flag and a History's wall time do not). TypeError for
    anything else, so that nothing is drawn from what the key does not see."""
    if value is None or isinstance(value, (bool, int, float, str)):
        h.update(f"{type(value).__name__}:{value!r};".encode())
    elif isinstance(value, np.ndarray):
        h.update(f"ndarray:{value.dtype.str}:{value.shape};".encode())
        h.update(np.ascontiguousarray(value).tobytes())
    elif isinstance(value, np.generic):
        _digest(h, value.item())
    elif isinstance(value, (list, tuple)):
        h.update(f"{type(value).__name__}[{len(value)}]".encode())
        for item in value:
            _digest(h, item)
    elif isinstance(value, dict):
        h.update(f"dict[{len(value)}]".encode())
        for key in sorted(value, key=repr):
            _digest(h, key)
            _digest(h, value[key])
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        h.update(f"{type(value).__qualname__}(".encode())
        for f in dataclasses.fields(value):
            if f.compare:
                _digest(h, f.name)
                _digest(h, getattr(value, f.name))
    else:
        raise TypeError(f"a figure drawn from a {type(value).__name__} cannot be keyed: pass "
                        "arrays, numbers, strings, runs or containers of them")


def figure_key(draw: Callable[..., Figure], args: Sequence, kwargs: dict) -> str:
    """SHA-256 (20 hex digits) of everything a figure is drawn from: the drawing function's name,
    its arguments' contents (`_digest`) and the drawing code (`drawing_code`)."""
    h = hashlib.sha256(drawing_code() + draw.__qualname__.encode())
    _digest(h, list(args))
    _digest(h, kwargs)
    return h.hexdigest()[:20]


def rendered(draw: Callable[..., Figure], args: Sequence, kwargs: dict,
             cache: str | os.PathLike | None) -> tuple[bytes, bytes, bytes]:
    """The figure ``draw(*args, **kwargs)`` as (PNG at 150 dpi, PDF, screen PNG: `figure_bytes`),
    rendered in that order (a figure with constrained layout can move by a pixel between two
    renderings, so the order is part of the bytes), or read from ``cache`` under `figure_key`."""
    files = None
    if cache is not None:
        stem = Path(cache) / f"figure-{figure_key(draw, args, kwargs)}"
        files = [stem.with_suffix(suffix) for suffix in (".png", ".pdf", ".screen.png")]
        if all(path.is_file() for path in files):
            return tuple(path.read_bytes() for path in files)
    fig = draw(*args, **kwargs)
    png, pdf = io.BytesIO(), io.BytesIO()
    fig.savefig(png, format="png", dpi=150)
    fig.savefig(pdf, format="pdf", metadata={"CreationDate": None})  # no timestamp
    out = (png.getvalue(), pdf.getvalue(), figure_bytes(fig, "png"))
    for path, data in zip(files or [], out):
        atomic_write(path, data)
    return out


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


#: Legend text size in points before the PDF scales a figure down (a two-panel figure prints at
#: about 0.77 of its size: 9 pt becomes about 7 pt).
LEGEND_SIZE = 9
#: Every legend of a data figure sits outside its panels, below them: it can cover no curve.
LEGEND_KW = dict(loc="outside lower center", frameon=False, fontsize=LEGEND_SIZE,
                 handlelength=2.0, columnspacing=1.6)


def _figure(ncols: int = 1, nrows: int = 1, width: float = 6.4,
            height: float = 3.6, **kw) -> tuple[Figure, np.ndarray]:
    """A constrained-layout Figure, drawn at 0.7 of the nominal size in inches so that its text
    stays legible when the PDF scales it to the page width; 100 dpi inline (files: 150 dpi)."""
    fig = Figure(figsize=(0.7 * width, 0.7 * height), layout="constrained", dpi=100)
    return fig, fig.subplots(nrows, ncols, squeeze=False, **kw).ravel()


def _legend_width(groups: Sequence[Sequence[str]], ncol: int,
                  size: float = LEGEND_SIZE) -> float:
    """Estimated width in inches of a legend of ``groups`` (each starting a row) in ``ncol``
    columns: 0.55 em per character of a column's longest label (DejaVu Sans averages about
    0.5), plus 4.5 em of handle and spacing per column."""
    em = size / 72.0
    longest = [0] * ncol
    for group in groups:
        for i, label in enumerate(group):
            longest[i % ncol] = max(longest[i % ncol], len(label))
    return sum(n * 0.55 * em + 4.5 * em for n in longest)


def _legend_columns(groups: Sequence[Sequence[str]], width_inches: float) -> int:
    """The number of columns that fits ``width_inches`` with the fewest rows, and of those the
    fewest columns (rows stay as full as they can)."""
    fits = [n for n in range(1, max(len(g) for g in groups) + 1)
            if n == 1 or _legend_width(groups, n) <= width_inches]
    return min(fits, key=lambda n: (sum(-(-len(g) // n) for g in groups), n))


def _legend_below(fig: Figure, groups: Sequence[Sequence[tuple]], **kw) -> None:
    """One legend for the whole figure, below its panels (matplotlib's "outside lower center":
    constrained layout makes room for it, so it covers no data). ``groups``: lists of
    (handle, label); each group starts a new row, and entries read row by row."""
    ncol = _legend_columns([[label for _, label in g] for g in groups], fig.get_figwidth())
    from matplotlib.lines import Line2D
    rows = []
    for group in groups:
        group = list(group)
        while len(group) % ncol:
            group.append((Line2D([], [], alpha=0.0), ""))
        rows += [group[i:i + ncol] for i in range(0, len(group), ncol)]
    # matplotlib fills a legend column by column: reorder so that it reads row by row
    ordered = [rows[r][c] for c in range(ncol) for r in range(len(rows))]
    fig.legend([h for h, _ in ordered], [s for _, s in ordered], ncol=ncol, **{**LEGEND_KW, **kw})


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


def _log_axis(ax, curves: Iterable[np.ndarray], pad: float = 1.12) -> None:
    """A log-scale y-axis that holds every positive value of ``curves`` (from the first check on,
    so the whole initial fall shows), with plain-number tick labels (0.1, 0.2, 0.5, 1, 2, ...;
    powers of ten when the range spans more than 2.6 decades): on a log scale equal ratios look
    equal, so the later, small losses stay readable."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter
    values = np.concatenate([np.asarray(c, dtype=np.float64).ravel() for c in curves])
    values = values[np.isfinite(values) & (values > 0)]
    ax.set_yscale("log")
    if not values.size:
        return
    lo, hi = values.min() / pad, values.max() * pad
    decades = np.log10(hi / lo)
    ax.set_ylim(lo, hi)
    # the densest of these tick sets that puts at most 7 ticks on the axis
    for subs in (np.arange(1.0, 10.0, 0.5), (1.0, 1.5, 2.0, 3.0, 4.0, 5.0, 7.0),
                 (1.0, 2.0, 5.0), (1.0,)):
        ticks = [m * 10.0 ** e for e in range(int(np.floor(np.log10(lo))),
                                              int(np.ceil(np.log10(hi))) + 1) for m in subs]
        if sum(lo <= t <= hi for t in ticks) <= 7:
            break
    ax.yaxis.set_major_locator(LogLocator(base=10, subs=subs))
    ax.yaxis.set_minor_locator(LogLocator(base=10, subs=np.arange(1.0, 10.0)))
    ax.yaxis.set_minor_formatter(NullFormatter())
    plain = decades <= 2.6 and lo >= 1e-3 and hi < 1e4
    ax.yaxis.set_major_formatter(FuncFormatter(
        lambda v, _: f"{v:g}" if plain else f"$10^{{{np.log10(v):.0f}}}$"))


def _smoothed_train_loss(history: History, window: int | None = None):
    """(steps, training loss averaged over ``window`` steps), thinned to every window/5-th step:
    the smoothed curve loses nothing visible and the figures stay small."""
    window = window or history.config.steps_per_check or 1
    steps = np.arange(1, history.train_loss.size + 1)
    keep = slice(max(window // 5, 1) - 1, None, max(window // 5, 1))
    return steps[keep], moving_average(history.train_loss, window)[keep]


#: The best check's dot: the bold curve's colour with a white rim, drawn above every line.
BEST_DOT = dict(marker="o", ms=5.5, mec="white", mew=0.8, ls="none", zorder=5)


def plot_training(history: History, title: str = "") -> Figure:
    """One run: loss (left, log scale) and accuracy (right) against gradient steps, epochs on top.

    Training loss is the mini-batch loss averaged over the steps between two checks (125), the
    validation loss is measured at each check from check 0 (the initial weights) on, so the loss
    axis shows the whole fall. The accuracy axis is zoomed on the part after the first tenth of
    training (up to 1). The dotted line and the dots mark the check with the lowest validation
    loss, whose weights early stopping keeps. One legend, below the panels."""
    from matplotlib.lines import Line2D
    fig, (ax_loss, ax_acc) = _figure(2, width=10, height=3.9)
    train_color, val_color = "#1f77b4", "#d62728"
    steps, smooth = _smoothed_train_loss(history)
    window = history.config.steps_per_check or 1
    ax_loss.plot(steps, smooth, color=train_color, lw=1.2)
    ax_loss.plot(history.check_steps, history.val_loss, color=val_color, lw=1.4)
    ax_acc.plot(history.check_steps, history.train_accuracy, color=train_color, lw=1.4)
    ax_acc.plot(history.check_steps, history.val_accuracy, color=val_color, lw=1.4)
    best = history.best
    for ax in (ax_loss, ax_acc):
        ax.axvline(best["step"], color="k", ls=":", lw=1)
        _steps_axis(ax)
        ax.grid(alpha=0.3)
        _epoch_axis(ax, history.config.steps_per_epoch)
    ax_loss.plot(best["step"], best["val_loss"], color=val_color, **BEST_DOT)
    ax_acc.plot(best["step"], best["val_accuracy"], color=val_color, **BEST_DOT)
    _log_axis(ax_loss, [smooth, history.val_loss])
    _zoom(ax_acc, [history.train_accuracy, history.val_accuracy], upper=1.0)
    ax_loss.set_ylabel("cross-entropy loss (log scale)")
    ax_acc.set_ylabel("accuracy")
    epoch = best["step"] / history.config.steps_per_epoch
    _legend_below(fig, [[
        (Line2D([], [], color=train_color, lw=1.4),
         f"training (loss: mean of {window} batches; accuracy: whole set)"),
        (Line2D([], [], color=val_color, lw=1.4), "validation"),
        (Line2D([], [], color="k", ls=":", lw=1, marker="o", mfc=val_color, mec="white", ms=5.5),
         f"kept weights: step {best['step']} (epoch {epoch:.1f}), lowest validation loss")]])
    if title:
        fig.suptitle(title)
    return fig


def plot_comparison(runs: dict[str, Sequence[Run]], metrics: Sequence[str] = ("loss",),
                    names: dict[str, str] | None = None, title: str = "") -> Figure:
    """Several configurations side by side: one row per metric, training (left) and validation
    (right) curves against gradient steps, one legend for all panels below them.

    Args:
        runs: key -> that configuration's runs over seeds; the first seed is drawn bold, the
            others thin, so the spread between seeds is visible. A dot marks each bold run's
            best check (the weights early stopping keeps).
        metrics: rows, each "loss" or "accuracy". Loss, on log scales: the training loss
            (averaged over the steps between checks) on an axis that holds all of it, from the
            first steps' fall to the lowest value; the validation loss on an axis fitted to its
            checks from the end of the first epoch on (earlier, higher checks run off the top),
            so the values after one epoch and the small later differences both read. Accuracy:
            training accuracy on the whole training set and validation accuracy, on a shared
            linear axis fitted to the part after the first tenth of each run, up to 1.
    """
    from matplotlib.lines import Line2D
    names = names or RUN_NAMES
    fig, axes = _figure(2, len(metrics), width=10, height=0.6 + 2.85 * len(metrics))
    first = next(iter(runs.values()))[0].config
    window = first.steps_per_check
    seeds_drawn = max(len(s) for s in runs.values())
    for row, metric in enumerate(metrics):
        ax_train, ax_val = axes[2 * row], axes[2 * row + 1]
        if metric != "loss":
            ax_val.sharey(ax_train)
        curves, train_curves, val_curves = [], [], []
        for key, seeds in runs.items():
            color = RUN_COLORS.get(key, "k")
            for n, run in enumerate(seeds):
                h = run.history
                style = dict(color=color, lw=1.4 if n == 0 else 0.6,
                             alpha=1.0 if n == 0 else 0.45, zorder=3 if n == 0 else 2)
                if metric == "loss":
                    train_x, train_y = _smoothed_train_loss(h)
                    val_y = h.val_loss
                else:
                    train_x, train_y, val_y = h.check_steps, h.train_accuracy, h.val_accuracy
                ax_train.plot(train_x, train_y, **style)
                ax_val.plot(h.check_steps, val_y, **style)
                if n == 0:
                    ax_val.plot(h.best["step"], h.best["val_loss" if metric == "loss"
                                                       else "val_accuracy"], color=color,
                                **BEST_DOT)
                curves += [train_y, val_y]
                train_curves.append(train_y)
                after = h.check_steps >= h.config.steps_per_epoch
                val_curves.append(val_y[after] if after.sum() >= 2 else val_y)
        ax_train.set_title(f"training {metric}" + (f" (mean of {window} batches)"
                                                   if metric == "loss" else " (whole set)"),
                           fontsize=10)
        ax_val.set_title("validation loss (zoomed to epoch ≥ 1)" if metric == "loss"
                         else "validation accuracy", fontsize=10)
        for ax in (ax_train, ax_val):
            _steps_axis(ax)
            ax.grid(alpha=0.3)
        if metric == "loss":
            _log_axis(ax_train, train_curves)
            _log_axis(ax_val, val_curves, pad=1.06)
            ax_train.set_ylabel("loss (log scale)")
        else:
            _zoom(ax_train, curves, upper=1.0)
            ax_train.set_ylabel("accuracy")
    configs = [(Line2D([], [], color=RUN_COLORS.get(k, "k"), lw=1.4), names.get(k, k))
               for k in runs]
    styles = [(Line2D([], [], color="0.35", lw=1.4, marker="o", mfc="0.35", mec="white",
                      ms=5.5), "seed 0 (dot: its kept weights)")]
    if seeds_drawn > 1:
        styles.append((Line2D([], [], color="0.35", lw=0.6, alpha=0.45),
                       "seed 1" if seeds_drawn == 2 else f"seeds 1–{seeds_drawn - 1}"))
    _legend_below(fig, [configs, styles])
    if title:
        fig.suptitle(title)
    return fig


def plot_initialisation(z_uniform: np.ndarray, z_improved: np.ndarray) -> Figure:
    """Why the improved init helps: hidden pre-activations (left, log density) and
    logistic-sigmoid slopes (right) of a fresh first layer, under U(-1, 1) and N(0, 1/fan_in)
    weights; one legend below the panels, with each init's std and share of slopes below 0.01."""
    from matplotlib.patches import Patch
    fig, (ax_z, ax_s) = _figure(2, width=10, height=3.5)
    entries = []
    for z, name, color in ((z_uniform, "uniform U(−1, 1)", RUN_COLORS["2c"]),
                           (z_improved, "normal, std 1/√fan_in", RUN_COLORS["3a"])):
        z = np.asarray(z, dtype=np.float64).ravel()
        ax_z.hist(z, bins=120, range=(-60, 60), density=True, alpha=0.6, color=color)
        slope = sigmoid_slope(z)
        ax_s.hist(slope, bins=50, range=(0, 0.25), alpha=0.6, color=color,
                  weights=np.full(z.size, 100.0 / z.size))
        entries.append((Patch(color=color, alpha=0.6),
                        f"{name}: std of $z_j$ {z.std():.3g}, "
                        f"{np.mean(slope < 0.01):.0%} of slopes below 0.01"))
    ax_z.set_xlabel("hidden pre-activation $z_j$")
    ax_z.set_ylabel("density (log scale)")
    ax_z.set_yscale("log")
    ax_s.set_xlabel(r"sigmoid slope $f'(z_j)$ (at most 0.25)")
    ax_s.set_ylabel("% of activations")
    for ax in (ax_z, ax_s):
        ax.grid(alpha=0.3)
    _legend_below(fig, [entries])
    return fig


def plot_gradient_norms(init_norms: dict[str, tuple[np.ndarray, str]], deep: Run,
                        title: str = "") -> Figure:
    """Per-layer gradient norms on a log scale: at initialisation for several networks (left;
    label -> (norms, colour); their legend below the panels), and during training of ``deep``
    (right, one line per weight matrix, coloured by layer as the colour bar beside it shows)."""
    from matplotlib import colormaps
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import BoundaryNorm, ListedColormap
    from matplotlib.lines import Line2D
    fig, (ax_init, ax_train) = _figure(2, width=10, height=3.7)
    entries = []
    for label, (norms, color) in init_norms.items():
        ax_init.plot(np.arange(1, norms.size + 1), norms, "o-", color=color, ms=4)
        entries.append((Line2D([], [], color=color, marker="o", ms=4), label))
    ax_init.set_xlabel("weight matrix $l$ (1: input to first hidden layer)")
    ax_init.set_ylabel(r"$\|\partial C / \partial W_l\|$ (probe batch)")
    ax_init.set_title("at initialisation", fontsize=10)
    from matplotlib.ticker import MaxNLocator
    ax_init.xaxis.set_major_locator(MaxNLocator(integer=True))
    h = deep.history
    layers = h.grad_norms.shape[1]
    colors = [colormaps["viridis"](t) for t in np.linspace(0, 0.95, layers)]
    for l in range(layers):
        ax_train.plot(h.check_steps, h.grad_norms[:, l], color=colors[l], lw=1.0,
                      zorder=3 if l == 0 else 2)
    _steps_axis(ax_train)
    ax_train.set_ylabel(r"$\|\partial C / \partial W_l\|$ (probe batch)")
    ax_train.set_title(title or "during training", fontsize=10)
    bar = fig.colorbar(ScalarMappable(BoundaryNorm(np.arange(0.5, layers + 1), layers),
                                      ListedColormap(colors)), ax=ax_train, pad=0.02,
                       aspect=25, label="weight matrix $l$")
    bar.set_ticks([t for t in range(1, layers + 1) if t in (1, layers) or t % 2 == 1])
    bar.ax.tick_params(labelsize=9)
    _log_axis(ax_init, [n for n, _ in init_norms.values()], pad=1.6)
    _log_axis(ax_train, [h.grad_norms])
    for ax in (ax_init, ax_train):
        ax.grid(alpha=0.3)
    _legend_below(fig, [entries])
    return fig


def plot_sweep(sweep: dict[tuple[int, int], Run], highlight: tuple[int, int] = (1, 64)) -> Figure:
    """The explorer's grid as a static figure: best validation accuracy (left) and parameter
    count (right) against hidden units per layer (log scale), one line per number of hidden
    layers, a star on the Task 3 network; one legend below the panels."""
    from matplotlib.lines import Line2D
    fig, (ax_acc, ax_par) = _figure(2, width=10, height=3.6)
    entries = []
    for depth in sorted({d for d, _ in sweep}):
        widths = sorted(w for d, w in sweep if d == depth)
        runs = [sweep[(depth, w)] for w in widths]
        color = DEPTH_COLORS.get(depth, "k")
        ax_acc.plot(widths, [r.history.best["val_accuracy"] for r in runs], "o-", color=color)
        ax_par.plot(widths, [r.history.num_parameters for r in runs], "o-", color=color)
        entries.append((Line2D([], [], color=color, marker="o"),
                        f"{depth} hidden layer{'s' if depth > 1 else ''}"))
    if highlight in sweep:
        h = sweep[highlight].history
        star = dict(marker="*", ms=14, color=RUN_COLORS["3c"], mec="white", mew=0.8, ls="none",
                    zorder=4)
        ax_acc.plot(highlight[1], h.best["val_accuracy"], **star)
        ax_par.plot(highlight[1], h.num_parameters, **star)
        entries.append((Line2D([], [], **star), "Task 3 network"))
    widths = sorted({w for _, w in sweep})
    for ax in (ax_acc, ax_par):
        ax.set_xscale("log", base=2)
        ax.set_xticks(widths, [str(w) for w in widths])
        ax.minorticks_off()
        ax.set_xlabel("hidden units per layer")
        ax.grid(alpha=0.3)
    ax_acc.set_title("validation accuracy of the kept weights", fontsize=10)
    ax_par.set_title("parameter count", fontsize=10)
    ax_acc.set_ylabel("accuracy")
    ax_par.set_ylabel("parameters")
    ax_par.yaxis.set_major_formatter(lambda v, _: f"{v:,.0f}")
    _legend_below(fig, [entries])
    return fig


def plot_first_layer_weights(w: np.ndarray, count: int = 48, columns: int = 8,
                             percentile: float = 99.0) -> Figure:
    """The incoming weights of the ``count`` hidden units with the largest weight norm, each as a
    28x28 image (bias row dropped), in one mosaic on a symmetric colour scale: red excites, blue
    inhibits the unit, white is zero. The colour limit is the ``percentile`` of the shown weights'
    magnitudes, not their maximum (a few large weights would wash the rest out); larger weights
    take the end colours, as the colour bar's pointed ends say. Tiles are separated by grey
    lines. The figure is sized so that the PDF prints it at the largest size its page allows:
    8 columns of 48 units print tiles of about 1.2 cm (12 columns: about 0.9 cm)."""
    from matplotlib import colormaps
    order = np.argsort(-np.linalg.norm(w[:784], axis=0), kind="stable")[:count]
    rows = int(np.ceil(len(order) / columns))
    gap = 2                                       # pixels of grey between tiles
    size = 28 + gap
    mosaic = np.full((rows * size - gap, columns * size - gap), np.nan)
    for n, j in enumerate(order):
        r, c = divmod(n, columns)
        mosaic[r * size:r * size + 28, c * size:c * size + 28] = w[:784, j].reshape(28, 28)
    shown = np.abs(w[:784, order])
    limit = float(np.percentile(shown, percentile)) if shown.size else 1.0
    limit = limit if limit > 0 else 1.0
    # the printed size: at most 13.6 cm (5.35 in) wide with the colour bar, 11 cm (4.35 in) high
    tile = min((5.1 - 0.85) / columns, (4.2 - 0.1) / rows, 0.75)
    fig = Figure(figsize=(columns * tile + 0.85, rows * tile + 0.1), layout="constrained",
                 dpi=100)
    ax = fig.subplots()
    cmap = colormaps["RdBu_r"].with_extremes(bad="#b4b4b4")
    image = ax.imshow(mosaic, cmap=cmap, vmin=-limit, vmax=limit, interpolation="nearest")
    ax.axis("off")
    bar = fig.colorbar(image, ax=ax, extend="both", shrink=0.9, aspect=25, pad=0.02)
    bar.set_label("incoming weight", fontsize=9)
    bar.ax.tick_params(labelsize=8)
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
