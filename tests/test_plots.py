"""The report's figures on synthetic runs: no legend covers a drawn point or sits on a panel, the
loss axes hold the whole fall of the loss, the first-layer weights use a symmetric colour limit
below their maximum, every text stays legible at the size the PDF prints the figure, and a figure
renders to the same PNG bytes twice."""

from __future__ import annotations

import numpy as np
import pytest
from matplotlib.collections import PathCollection
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Rectangle
from matplotlib.text import Text

from helpers import History, TrainConfig
from report import plots
from report.experiments import Run

#: The PDF's figure box (export/README.md): 85 % of a 16 cm line, 45 % of a 24.7 cm text height.
PDF_WIDTH_INCHES = 0.85 * 16.0 / 2.54
PDF_HEIGHT_INCHES = 0.45 * 24.7 / 2.54
SMALLEST_PRINTED_POINTS = 6.0


# ================================================================================================
# Synthetic runs
# ================================================================================================

def synthetic_history(config: TrainConfig, checks: int, floor: float = 0.3,
                      rise: float = 0.02, start: float = 6.0, seed: int = 0) -> History:
    """A run with the shape of the report's: the loss falls from ``start`` in the first epoch,
    then creeps down; the validation loss bottoms out at ``floor`` and rises by ``rise`` towards
    the end; the accuracies climb to the top of their axes, where a legend used to sit."""
    rng = np.random.default_rng(seed)
    per_check = config.steps_per_check
    steps = checks * per_check
    s = np.arange(1, steps + 1)
    epoch = config.steps_per_epoch
    train_loss = 0.04 + (2.3 - 0.04) * (0.55 * np.exp(-s / (0.3 * epoch))
                                        + 0.45 * np.exp(-s / (12 * epoch)))
    train_loss *= np.exp(rng.normal(0, 0.15, steps))
    check_steps = np.arange(checks + 1) * per_check
    x = check_steps / (steps or 1)
    val_loss = floor + (start - floor) * np.exp(-check_steps / (0.2 * epoch)) \
        + 0.25 * np.exp(-check_steps / (8 * epoch)) + rise * np.clip(x - 0.6, 0, None) / 0.4
    val_loss[0] = start
    train_accuracy = 1.0 - 0.9 * np.exp(-check_steps / (3 * epoch))
    val_accuracy = 0.92 - 0.82 * np.exp(-check_steps / (2 * epoch))
    layers = len(config.neurons_per_layer)
    grad_norms = np.exp(rng.normal(-1, 0.4, (checks + 1, layers))) * \
        np.linspace(3, 1, layers)[None, :]
    best_index = int(np.argmin(val_loss))

    def summary(i: int) -> dict:
        return dict(step=int(check_steps[i]), epoch=float(check_steps[i] / epoch),
                    train_loss=float(train_loss[max(check_steps[i] - 1, 0)]),
                    val_loss=float(val_loss[i]), train_accuracy=float(train_accuracy[i]),
                    val_accuracy=float(val_accuracy[i]))
    return History(config=config, train_loss=train_loss, check_steps=check_steps,
                   check_train_loss=train_loss[np.maximum(check_steps - 1, 0)],
                   val_loss=val_loss, train_accuracy=train_accuracy, val_accuracy=val_accuracy,
                   grad_norms=grad_norms, best=summary(best_index), last=summary(checks),
                   stopped_early=checks < config.num_epochs * config.checks_per_epoch,
                   diverged=False, seconds=1.0)


def synthetic_run(checks: int, seed: int = 0, layers=(64, 10), **kw) -> Run:
    config = TrainConfig(neurons_per_layer=tuple(layers), seed=seed)
    history = synthetic_history(config, checks, seed=seed, **kw)
    rng = np.random.default_rng(seed)
    ws, fan_in = [], 785
    for width in layers:
        ws.append(rng.normal(0, 1 / np.sqrt(fan_in), (fan_in, width)))
        fan_in = width
    return Run(history=history, ws=ws)


def seeds(checks: int, n: int = 5, **kw) -> list[Run]:
    return [synthetic_run(checks + 3 * s, seed=s, **kw) for s in range(n)]


@pytest.fixture(scope="module")
def runs():
    return {"2c": seeds(240, floor=0.3), "3a": seeds(215, floor=0.14), "3b": seeds(100, floor=0.13),
            "3c": seeds(95, floor=0.13, rise=0.01)}


def all_figures(runs) -> dict[str, Figure]:
    """Every figure of the report, drawn as the notebook draws it, on synthetic runs."""
    rng = np.random.default_rng(1)
    deep = synthetic_run(150, layers=(64,) * 10 + (10,))
    sweep = {(d, w): synthetic_run(60 + 3 * d + w // 16, layers=(w,) * d + (10,))
             for d in (1, 2, 3) for w in (16, 32, 64, 128)}
    cm = rng.integers(0, 15, (10, 10))
    np.fill_diagonal(cm, 950)
    probabilities = rng.dirichlet(np.full(10, 0.1), 12)
    return {
        "training": plots.plot_training(runs["2c"][0].history, "Task 2c: synthetic"),
        "comparison": plots.plot_comparison(runs, ("loss", "accuracy"), title="Task 3: synthetic"),
        "comparison_loss": plots.plot_comparison(
            {k: runs[k] for k in ("3c", "3a", "2c")}, ("loss",), title="one row"),
        "initialisation": plots.plot_initialisation(rng.normal(0, 16.4, (2000, 64)),
                                                    rng.normal(0, 1.0, (2000, 64))),
        "gradient_norms": plots.plot_gradient_norms(
            {"Task 3 choices (scaled tanh)": (np.linspace(2.5, 0.6, 11), "#d62728"),
             "logistic sigmoid": (np.logspace(-6, -0.3, 11), "#ff7f0e")}, deep, "4e (seed 0)"),
        "sweep": plots.plot_sweep(sweep),
        "weights": plots.plot_first_layer_weights(runs["3c"][0].ws[0], count=48, columns=8),
        "weights_12_columns": plots.plot_first_layer_weights(runs["3c"][0].ws[0], count=48,
                                                             columns=12),
        "confusion": plots.plot_confusion_matrix(cm),
        "mistakes": plots.plot_mistakes(rng.integers(0, 256, (12, 784)), rng.integers(0, 10, 12),
                                        probabilities),
        "explorer": plots.plot_explorer(sweep[(2, 32)], sweep[(1, 64)], "explorer"),
    }


@pytest.fixture(scope="module")
def figures(runs):
    figs = all_figures(runs)
    for fig in figs.values():
        fig.draw_without_rendering()
    return figs


# ================================================================================================
# Helpers
# ================================================================================================

def legends(fig: Figure) -> list:
    found = list(fig.legends)
    for ax in fig.axes:
        if ax.get_legend() is not None:
            found.append(ax.get_legend())
    return found


def data_axes(fig: Figure) -> list:
    """The panels that hold data (not colour bars)."""
    return [ax for ax in fig.axes if ax.get_label() != "<colorbar>"]


def drawn_points(ax) -> np.ndarray:
    """Display coordinates of every data point drawn in ``ax``: line vertices and markers,
    scatter offsets and bar corners, clipped to the axes (what is outside it is not drawn)."""
    pts = []
    for line in ax.get_lines():
        if line.get_visible() and line.get_xydata().size:
            pts.append(ax.transData.transform(line.get_xydata()))
    for coll in ax.collections:
        if isinstance(coll, PathCollection) and len(coll.get_offsets()):
            pts.append(ax.transData.transform(coll.get_offsets()))
    for patch in ax.patches:
        if isinstance(patch, Rectangle) and patch.get_height() > 0:
            x, y, w, h = patch.get_x(), patch.get_y(), patch.get_width(), patch.get_height()
            pts.append(ax.transData.transform([(x, y + h), (x + w, y + h)]))
    if not pts:
        return np.empty((0, 2))
    pts = np.concatenate(pts)
    box = ax.get_window_extent()
    inside = (pts[:, 0] >= box.x0) & (pts[:, 0] <= box.x1) & \
        (pts[:, 1] >= box.y0) & (pts[:, 1] <= box.y1)
    return pts[inside & np.isfinite(pts).all(axis=1)]


def undrawn_tick_labels(fig: Figure) -> set[int]:
    """ids of the tick labels matplotlib keeps for ticks outside the view (it does not draw them)."""
    hidden = set()
    axes = list(fig.axes)
    axes += [child for ax in fig.axes for child in ax.child_axes]
    for ax in axes:
        if not ax.axison:                # ax.axis("off"): no tick is drawn
            hidden |= {id(t) for t in ax.get_xticklabels() + ax.get_yticklabels()}
            hidden |= {id(t) for t in ax.get_xticklabels(minor=True) + ax.get_yticklabels(minor=True)}
        for axis in (ax.xaxis, ax.yaxis):
            lo, hi = sorted(axis.get_view_interval())
            span = hi - lo
            for tick in axis.get_major_ticks() + axis.get_minor_ticks():
                if not lo - 1e-9 * span <= tick.get_loc() <= hi + 1e-9 * span:
                    hidden |= {id(tick.label1), id(tick.label2)}
    return hidden


def printed_scale(fig: Figure) -> float:
    """The factor the PDF scales ``fig`` by: it fits the figure box, never enlarges."""
    w, h = fig.get_size_inches()
    return min(1.0, PDF_WIDTH_INCHES / w, PDF_HEIGHT_INCHES / h)


# ================================================================================================
# Tests
# ================================================================================================

@pytest.mark.parametrize("name", ["training", "comparison", "comparison_loss", "initialisation",
                                  "gradient_norms", "sweep", "explorer"])
def test_legends_cover_no_data(figures, name):
    fig = figures[name]
    found = legends(fig)
    assert found, f"{name}: no legend"
    for legend in found:
        box = legend.get_window_extent()
        for ax in data_axes(fig):
            assert not box.overlaps(ax.get_window_extent()), \
                f"{name}: a legend lies on a panel ({ax.get_title()!r})"
            pts = drawn_points(ax)
            covered = (pts[:, 0] > box.x0) & (pts[:, 0] < box.x1) & \
                (pts[:, 1] > box.y0) & (pts[:, 1] < box.y1)
            assert not covered.any(), f"{name}: a legend covers {covered.sum()} data points"


@pytest.mark.parametrize("name", ["training", "comparison", "comparison_loss", "initialisation",
                                  "gradient_norms", "sweep", "explorer"])
def test_legends_stay_inside_the_figure(figures, name):
    fig = figures[name]
    page = fig.bbox
    for legend in legends(fig):
        box = legend.get_window_extent()
        assert box.x0 >= page.x0 - 1 and box.x1 <= page.x1 + 1, f"{name}: legend cut off"
        assert box.y0 >= page.y0 - 1 and box.y1 <= page.y1 + 1, f"{name}: legend cut off"


@pytest.mark.parametrize("name", ["training", "comparison", "comparison_loss", "initialisation",
                                  "gradient_norms", "sweep", "weights", "weights_12_columns",
                                  "confusion", "mistakes", "explorer"])
def test_text_is_legible_where_the_pdf_prints_it(figures, name):
    fig = figures[name]
    scale = printed_scale(fig)
    page = fig.bbox
    hidden = undrawn_tick_labels(fig)
    for text in fig.findobj(Text):
        if not text.get_visible() or not text.get_text().strip() or id(text) in hidden:
            continue
        box = text.get_window_extent()
        printed = text.get_fontsize() * scale
        assert printed >= SMALLEST_PRINTED_POINTS, \
            f"{name}: {text.get_text()!r} prints at {printed:.1f} pt"
        assert box.x0 >= page.x0 - 2 and box.x1 <= page.x1 + 2 and \
            box.y0 >= page.y0 - 2 and box.y1 <= page.y1 + 2, \
            f"{name}: {text.get_text()!r} is cut off by the figure's edge"


def test_training_loss_axis_shows_the_whole_fall(runs, figures):
    h = runs["2c"][0].history
    ax_loss, ax_acc = data_axes(figures["training"])[:2]
    assert ax_loss.get_yscale() == "log"
    lo, hi = ax_loss.get_ylim()
    assert hi >= h.val_loss.max(), "the initial validation loss is cut off"
    assert hi >= plots._smoothed_train_loss(h)[1].max()
    assert lo <= min(h.val_loss.min(), plots._smoothed_train_loss(h)[1].min())
    # the later part stays readable: the kept validation loss and the final training loss are
    # at least a quarter of the axis apart (it was about a third on a linear axis from 0)
    y = ax_loss.transData.transform([(0, h.best["val_loss"]),
                                     (0, plots._smoothed_train_loss(h)[1][-1])])[:, 1]
    height = ax_loss.get_window_extent().height
    assert abs(y[0] - y[1]) > 0.2 * height
    assert ax_acc.get_ylim()[1] == pytest.approx(1.0)


def test_comparison_marks_every_best_check(runs, figures):
    ax_val = data_axes(figures["comparison"])[1]
    dots = [line for line in ax_val.get_lines() if line.get_marker() == "o"]
    assert len(dots) == len(runs)
    lo, hi = ax_val.get_ylim()
    for key, dot in zip(runs, dots):
        best = runs[key][0].history.best
        assert dot.get_xydata()[0] == pytest.approx((best["step"], best["val_loss"]))
        assert lo <= best["val_loss"] <= hi
    # one legend for the figure: every configuration and the seed styles
    (legend,) = legends(figures["comparison"])
    labels = [t.get_text() for t in legend.get_texts()]
    for key in runs:
        assert plots.RUN_NAMES[key] in labels
    assert "seeds 1–4" in labels


def test_first_layer_weights_use_a_symmetric_percentile_limit(runs):
    w = runs["3c"][0].ws[0].copy()
    w[5, 0] = 40.0                     # one huge weight must not wash the others out
    fig = plots.plot_first_layer_weights(w, count=48, columns=8, percentile=99)
    fig.draw_without_rendering()
    image = data_axes(fig)[0].get_images()[0]
    vmin, vmax = image.get_clim()
    assert vmin == -vmax
    assert vmax < 1.0 < 40.0
    order = np.argsort(-np.linalg.norm(w[:784], axis=0), kind="stable")[:48]
    assert vmax == pytest.approx(np.percentile(np.abs(w[:784, order]), 99))
    assert image.get_cmap().name.startswith("RdBu_r")
    assert any(ax.get_label() == "<colorbar>" for ax in fig.axes)
    # tiles print at least 1.2 cm wide with 8 columns, and the figure fits the PDF's box
    width, height = fig.get_size_inches()
    assert width <= PDF_WIDTH_INCHES and height <= PDF_HEIGHT_INCHES
    assert data_axes(fig)[0].get_window_extent().width / fig.dpi / 8 * 2.54 > 1.2


@pytest.mark.parametrize("fmt", ["png", "pdf"])
def test_a_rerun_renders_the_same_bytes(runs, fmt):
    """As show_figure does it (save, then PNG and PDF bytes), twice from the same runs."""
    def render(make):
        fig = make()
        fig.draw_without_rendering()
        return plots.figure_bytes(fig, fmt)
    for make in (lambda: plots.plot_comparison(runs, ("loss", "accuracy"), title="t"),
                 lambda: plots.plot_training(runs["2c"][0].history, "t"),
                 lambda: plots.plot_first_layer_weights(runs["3c"][0].ws[0], 48, 8)):
        assert render(make) == render(make)


def test_show_figure_draws_a_figure_once_for_the_same_runs(runs, tmp_path, monkeypatch):
    """A figure shown again from the same runs (a warm rerun) is read from the cache: the same
    files and the same display, nothing drawn; other arguments draw again. The files are the
    bytes an uncached rendering gives."""
    import dataclasses

    import IPython.display
    shown, drawn = [], []
    monkeypatch.setattr(IPython.display, "display", lambda data, **kw: shown.append(data))

    def draw(history, title):
        drawn.append(title)
        return plots.plot_training(history, title)

    run = runs["2c"][0]
    show = dict(name="f", alt="a line chart", folder=tmp_path / "fig", cache=tmp_path / "cache")
    plots.show_figure(draw, run.history, "t", **show)
    files = [(tmp_path / "fig" / f"f{suffix}").read_bytes() for suffix in (".png", ".pdf")]
    plots.show_figure(draw, run.history, "t", **show)
    assert drawn == ["t"] and shown[0] == shown[1]
    assert shown[0]["application/pdf"] == files[1]
    assert files == list(plots.rendered(plots.plot_training, (run.history, "t"), {}, None)[:2])
    plots.show_figure(draw, run.history, "another title", **show)
    assert drawn == ["t", "another title"]
    # what does not change a figure does not change its key; anything unknown cannot be keyed
    key = plots.figure_key(draw, (run,), {})
    assert plots.figure_key(draw, (dataclasses.replace(run, cached=True),), {}) == key
    assert plots.figure_key(draw, (runs["2c"][1],), {}) != key
    with pytest.raises(TypeError, match="cannot be keyed"):
        plots.figure_key(draw, (object(),), {})


def test_legend_reads_row_by_row():
    fig = Figure(figsize=(7, 3), layout="constrained")
    fig.subplots()
    groups = [[(Line2D([], []), f"config {i}") for i in range(3)],
              [(Line2D([], []), "style a"), (Line2D([], []), "style b")]]
    plots._legend_below(fig, groups)
    (legend,) = fig.legends
    texts = [t.get_text() for t in legend.get_texts()]
    ncol = legend._ncols
    rows = len(texts) // ncol
    by_row = [texts[c * rows + r] for r in range(rows) for c in range(ncol)]
    assert [t for t in by_row if t] == ["config 0", "config 1", "config 2", "style a", "style b"]
    # the styles start a row of their own
    assert by_row.index("style a") % ncol == 0
