"""The hidden-unit explorer: sliders that recall or train a network of any width and depth and
draw its curves against the Task 3 network.

Every widget is updated in place (an `ipywidgets.Image` whose value is replaced, HTML lines whose
value is set), never cleared and re-displayed: clearing an `Output` from outside the cell's
execution, or from a thread, does not clear it in the browser, and the plots would pile up. The
training thread only sets widget values, under the explorer's lock. Where no kernel runs (GitHub,
nbviewer), the explorer's output shows a PNG of its current plot instead of the live widget.

The static explorer (`static_explorer`) needs no kernel: one HTML output holding the precomputed
plot of every network of the report's sweep and a small script that creates two range sliders and
swaps the plot. It works wherever the output's script runs (a trusted notebook in JupyterLab, the
HTML export assignment2.html); viewers that strip scripts (GitHub, an untrusted notebook) show the
default network's plot and one line saying where the sliders work. Given ``sweep=``, the live
explorer's output carries it too, so that the saved notebook (whose widget view
`report.execute.static_widgets` drops) shows it.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import html
import json
import os
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from helpers import NUM_CLASSES, Dataset, History, Progress, TrainConfig, atomic_write
from report.experiments import Run, cache_folder, cached_run, data_fingerprint, run_experiment
from report.plots import figure_bytes, plot_explorer
from report.timing import timed

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
PNG_DPI = 150          # the plot's pixels per inch; it is shown at 100 CSS pixels per inch (crisp)
CSS_DPI = 100

# ================================================================================================
# Text and pictures: what the status lines say, the plot as PNG bytes
# ================================================================================================

def network_name(config: TrainConfig) -> str:
    """'[128, 10], 101,770 parameters'."""
    return f"{list(config.neurons_per_layer)}, {config.num_parameters:,} parameters"


def layers(config: TrainConfig) -> str:
    """'[128, 10]'."""
    return str(list(config.neurons_per_layer))


def plot_title(run: Run) -> str:
    """The plot's two-line title: the network, its parameters and seed, its accuracies."""
    h = run.history
    return (f"{layers(run.config)}: {h.num_parameters:,} parameters (seed {run.config.seed})\n"
            f"best validation accuracy {h.best['val_accuracy']:.2%} at epoch "
            f"{h.best['epoch']:.1f}, at the end {h.last['val_accuracy']:.2%}")


def render_png(run: Run, baseline: Run, dpi: int = PNG_DPI) -> tuple[bytes, int]:
    """``run``'s explorer plot as PNG bytes (no timestamp or version in them: the same run gives
    the same bytes) and the width in CSS pixels to show it at."""
    fig = plot_explorer(run, baseline, plot_title(run))
    return figure_bytes(fig, "png", dpi=dpi), round(fig.get_figwidth() * CSS_DPI)


def training_text(training: TrainConfig | None, progress: Progress | None,
                  queued: TrainConfig | None, failure: str) -> str:
    """The training line (HTML): what trains and how far it is, what is next, or a failure."""
    if training is None and queued is None:
        return failure
    if training is None:
        return f"<b>Training</b> {network_name(queued)}: starting ..."
    how_far = ("starting ..." if progress is None else
               f"epoch {progress.epoch + 1}/{progress.num_epochs}, validation accuracy "
               f"{progress.val_accuracy:.2%}")
    return (f"<b>Training</b> {network_name(training)}: {how_far}"
            + (f"; next: {layers(queued)}" if queued is not None else ""))


# ================================================================================================
# The static explorer: every network of the sweep precomputed, the sliders made by a small script
# ================================================================================================

STATIC_DPI = 150            # the static plots' pixels per inch, as the live explorer's
STATIC_CLASS = "a2-explorer"
PDF_FLAG = "remove_output_in_pdf"   # output metadata: the PDF export drops the output (export/)
Position = tuple[int, int]  # (hidden layers, hidden units per layer): the notebook's sweep keys


def caption(run: Run) -> str:
    """One line naming ``run``'s network: '[32, 32, 10]: 26,506 parameters, seed 0; best
    validation accuracy 97.12% (epoch 23.4), at the end 97.01%'."""
    h = run.history
    return (f"{layers(run.config)}: {h.num_parameters:,} parameters, seed {run.config.seed}; "
            f"best validation accuracy {h.best['val_accuracy']:.2%} (epoch {h.best['epoch']:.1f}), "
            f"at the end {h.last['val_accuracy']:.2%}")


def hint_text(count: int) -> str:
    """The line shown where the sliders cannot be (the output's script does not run)."""
    return (f"Sliders over all {count} networks of the sweep work in assignment2.html and in this "
            f"notebook once trusted (jupyter trust assignment2.ipynb; no kernel needed); here: "
            f"the Task 3 network.")


@dataclass(frozen=True)
class StaticPlot:
    """One network of the static explorer.

    Attributes:
        network: its layers, '[32, 32, 10]'.
        caption: the line under the plot (`caption`).
        png: the explorer plot (PNG bytes, palette), the same drawing as the live explorer's.
        css_width: the width in CSS pixels to show the PNG at.
    """
    network: str
    caption: str
    png: bytes
    css_width: int


def sweep_axes(positions: Iterable[Position]) -> tuple[list[int], list[int]]:
    """(widths, depths), each sorted, of a complete grid of (depth, width) positions.

    Raises ValueError naming the missing positions when the grid has holes (a slider position
    with no network behind it), or when it is empty."""
    positions = set(positions)
    if not positions:
        raise ValueError("the sweep is empty: the static explorer needs at least one network")
    widths = sorted({w for _, w in positions})
    depths = sorted({d for d, _ in positions})
    holes = [(d, w) for d in depths for w in widths if (d, w) not in positions]
    if holes:
        raise ValueError(f"the sweep is not a complete grid of widths {widths} and depths {depths}: "
                         f"no network at (depth, width) {holes}")
    return widths, depths


def start_position(baseline: Run) -> Position:
    """(depth, width) of ``baseline``'s network; ValueError if its hidden layers differ in width."""
    hidden = baseline.config.hidden_layers
    if not hidden or len(set(hidden)) != 1:
        raise ValueError(f"the baseline {layers(baseline.config)} is not a stack of equal hidden "
                         "layers: it has no position on the sliders")
    return len(hidden), hidden[0]


@functools.cache
def _drawing_code() -> bytes:
    """What the plots are drawn with: `plots.drawing_code` and the source of this module (an edit
    to any of them draws every plot anew). Read once per process."""
    from report import plots
    return plots.drawing_code() + Path(__file__).read_bytes()


def plot_key(run: Run, baseline: Run, dpi: int) -> str:
    """SHA-256 (20 hex digits) of everything ``run``'s explorer plot is drawn from: both runs'
    configs and histories, the dpi and the drawing code (`_drawing_code`)."""
    digest = hashlib.sha256(_drawing_code() + f"dpi {dpi}".encode())
    for r in (run, baseline):
        h = r.history
        digest.update(json.dumps([r.config.to_dict(), h.best, h.last], sort_keys=True,
                                 default=str).encode())
        for name in History.ARRAYS:
            digest.update(np.ascontiguousarray(getattr(h, name)).tobytes())
    return digest.hexdigest()[:20]


def png_css_width(png: bytes, dpi: int) -> int:
    """The CSS width of a PNG rendered at ``dpi`` and shown at `CSS_DPI` (from its header)."""
    return round(int.from_bytes(png[16:20], "big") * CSS_DPI / dpi)


def cached_png(run: Run, baseline: Run, dpi: int, folder: Path | None) -> bytes:
    """`render_png`'s bytes, kept in ``folder`` under `plot_key` (None: always rendered). A warm
    rerun of the report then reads the static explorer's plots instead of drawing them."""
    if folder is None:
        return render_png(run, baseline, dpi)[0]
    path = Path(folder) / f"plot-{plot_key(run, baseline, dpi)}.png"
    if path.exists():
        return path.read_bytes()
    png = render_png(run, baseline, dpi)[0]
    atomic_write(path, png)
    return png


@timed("explorer PNGs")
def static_plots(sweep: Mapping[Position, Run], baseline: Run, dpi: int = STATIC_DPI,
                 cache: str | os.PathLike | None = None) -> dict[Position, StaticPlot]:
    """Every sweep network's explorer plot against ``baseline``, keyed as ``sweep``.

    ``sweep``: (depth, width) -> Run, as the notebook's ``sweep_runs``; each run's network must
    be ``depth`` hidden layers of ``width`` units (ValueError otherwise). ``cache``: a folder
    that keeps the rendered plots (`cached_png`), or None."""
    plots = {}
    for (depth, width), run in sorted(sweep.items()):
        if run.config.hidden_layers != (width,) * depth:
            raise ValueError(f"the sweep's position (depth {depth}, width {width}) holds the "
                             f"network {layers(run.config)}")
        png = cached_png(run, baseline, dpi, cache)
        plots[(depth, width)] = StaticPlot(layers(run.config), caption(run), png,
                                           png_css_width(png, dpi))
    return plots


# The script that makes the sliders. It finds its explorer through document.currentScript (or, in
# a viewer that runs scripts some other way, through the data's key), never through an id, so the
# same output shown twice on a page gives two independent explorers. It creates the controls
# itself: a sanitiser that strips scripts then leaves no dead slider behind.
_SCRIPT = """(function () {
  "use strict";
  var data = __DATA__;
  var me = document.currentScript;
  var mine = me && me.closest && me.closest("div.a2-explorer");
  var roots = mine ? [mine] : [].slice.call(
    document.querySelectorAll('div.a2-explorer[data-key="' + data.key + '"]'));
  roots.forEach(function (root) {
    if (!root || root.getAttribute("data-ready")) return;
    root.setAttribute("data-ready", "true");
    var img = root.querySelector("img.a2-explorer-plot");
    var caption = root.querySelector(".a2-explorer-caption");
    var hint = root.querySelector(".a2-explorer-hint");
    var startSrc = img.getAttribute("src");
    var at = [data.widths.indexOf(data.start[1]), data.depths.indexOf(data.start[0])];
    var sliders = [];
    function show() {
      var width = data.widths[at[0]], depth = data.depths[at[1]];
      var plot = data.plots[depth + "," + width];
      img.src = plot.png ? "data:image/png;base64," + plot.png : startSrc;
      img.alt = plot.alt;
      caption.textContent = plot.caption;
      root.setAttribute("data-network", plot.network);
      sliders.forEach(function (s) { s.show(); });
    }
    function slider(role, label, values, axis) {
      var box = document.createElement("label");
      box.style.cssText = "display:inline-flex;align-items:center;gap:0.6em;margin-right:2em";
      var name = document.createElement("span");
      name.textContent = label;
      var input = document.createElement("input");
      input.type = "range";
      input.min = "0";
      input.max = String(values.length - 1);
      input.step = "1";
      input.value = String(at[axis]);
      input.setAttribute("data-role", role);
      input.style.cssText = "width:" + (4 + 3 * values.length) + "em;max-width:60vw";
      var value = document.createElement("output");
      value.style.cssText = "min-width:2.5em;font-weight:bold";
      input.addEventListener("input", function () { at[axis] = Number(input.value); show(); });
      // the arrow keys move the slider, not JupyterLab's selection of cells
      input.addEventListener("keydown", function (event) { event.stopPropagation(); });
      box.appendChild(name);
      box.appendChild(input);
      box.appendChild(value);
      sliders.push({show: function () {
        value.textContent = String(values[at[axis]]);
        input.setAttribute("aria-valuetext", label + " " + values[at[axis]]);
      }});
      return box;
    }
    var controls = document.createElement("div");
    controls.className = "a2-explorer-controls";
    controls.style.cssText = "display:flex;flex-wrap:wrap;align-items:center;margin:0.2em 0 0.4em";
    controls.appendChild(slider("units", "hidden units per layer", data.widths, 0));
    controls.appendChild(slider("layers", "hidden layers", data.depths, 1));
    root.insertBefore(controls, root.firstChild);
    if (hint) hint.parentNode.removeChild(hint);
    show();
  });
})();"""


def _alt(plot: StaticPlot) -> str:
    return f"Validation loss and accuracy of {plot.network} against the Task 3 network"


def static_explorer_html(plots: Mapping[Position, StaticPlot], start: Position) -> str:
    """The static explorer as one HTML fragment (deterministic: the same plots give the same
    bytes).

    Without scripts it is the plot of ``start`` as an inline PNG, its caption line and the hint
    (`hint_text`). Its script (`_SCRIPT`) adds two range sliders over the grid's widths and
    depths, removes the hint, and on every move swaps the image, its alt text and the caption
    and sets the ``data-network`` attribute of the root ``div.a2-explorer`` to the network shown
    ('[32, 32, 10]'). The other positions' PNGs travel base64-encoded in the script's data."""
    widths, depths = sweep_axes(plots)
    if start not in plots:
        raise ValueError(f"the start position (depth, width) {start} is not in the sweep")
    first = plots[start]
    data = {"widths": widths, "depths": depths, "start": list(start),
            "plots": {f"{d},{w}": {"network": p.network, "caption": p.caption, "alt": _alt(p),
                                   "png": None if (d, w) == start
                                   else base64.b64encode(p.png).decode("ascii")}
                      for (d, w), p in sorted(plots.items())}}
    blob = json.dumps(data, sort_keys=True, separators=(",", ":"))
    data["key"] = hashlib.sha256(blob.encode()).hexdigest()[:12]
    # "<" only occurs inside JSON strings, where \u003c reads the same: nothing can close the script
    blob = json.dumps(data, sort_keys=True, separators=(",", ":")).replace("<", "\\u003c")
    src = base64.b64encode(first.png).decode("ascii")
    esc = html.escape
    return (f'<div class="{STATIC_CLASS}" data-key="{data["key"]}" '
            f'data-network="{esc(first.network)}" data-positions="{len(plots)}">\n'
            f'<img class="a2-explorer-plot" src="data:image/png;base64,{src}" '
            f'width="{first.css_width}" alt="{esc(_alt(first))}">\n'
            f'<p class="a2-explorer-caption">{esc(first.caption)}</p>\n'
            f'<p class="a2-explorer-hint"><em>{esc(hint_text(len(plots)))}</em></p>\n'
            f'<script>\n{_SCRIPT.replace("__DATA__", blob)}\n</script>\n</div>')


@dataclass(frozen=True)
class StaticExplorer:
    """The static explorer, displayable: ``display(static)`` shows its HTML (sliders where the
    output's script runs), with a PNG of the start network for viewers that show no HTML.

    Attributes:
        html: `static_explorer_html`'s fragment.
        start: the plot shown first (the baseline's network).
        count: the number of networks on the sliders.
    """
    html: str
    start: StaticPlot
    count: int

    def text(self) -> str:
        return (f"Hidden-unit explorer: {self.start.network} (sliders over {self.count} networks "
                f"in assignment2.html or the trusted notebook)")

    def _repr_mimebundle_(self, **kwargs) -> tuple[dict, dict]:
        """text/html (the explorer), image/png (the start plot, at its CSS width), text/plain;
        the metadata flags the output for removal from the PDF, which shows the sweep figure.

        Returns (data, metadata) as IPython's display accepts them."""
        data = {"text/html": self.html,
                "image/png": base64.b64encode(self.start.png).decode("ascii"),
                "text/plain": self.text()}
        return data, {"image/png": {"width": self.start.css_width}, PDF_FLAG: True}


def static_explorer(sweep: Mapping[Position, Run], baseline: Run, dpi: int = STATIC_DPI,
                    cache: str | os.PathLike | None = None) -> StaticExplorer:
    """The static explorer over ``sweep`` ((depth, width) -> Run, a complete grid, as the
    notebook's ``sweep_runs``), each network drawn against ``baseline`` (the Task 3 run), which
    is the network shown first and must be one of the grid's. ``cache``: a folder keeping the
    rendered plots (None: rendered every time)."""
    plots = static_plots(sweep, baseline, dpi, cache)
    start = start_position(baseline)
    return StaticExplorer(static_explorer_html(plots, start), plots.get(start), len(plots))


# ================================================================================================
# The widget
# ================================================================================================

class HiddenUnitExplorer:
    """Sliders for hidden units per layer and number of hidden layers (Task 3 tricks on).

    Moving them draws that network's curves against the Task 3 baseline, in one image replaced
    in place. Networks already in the cache are drawn at once. A new one trains in a background
    thread with a progress bar while the current plot stays; if the sliders moved on meanwhile,
    the newest choice is trained next, and a finished network is drawn only if the sliders still
    point at it. Two status lines say which network is drawn and which, if any, is training.

    Display it with ``display(explorer)``: JupyterLab shows the live widget, viewers without a
    kernel the static explorer over ``sweep`` (given ``sweep``) or a PNG of the current plot.
    ``explorer.widget`` is the bare ipywidgets VBox.

    Attributes:
        units, layers: the two SelectionSliders.
        image: the ipywidgets.Image holding the plot (PNG bytes).
        drawn, training: HTML status lines (the drawn network; the training one, or a failure).
        bar: IntProgress of the training network's epochs (hidden when nothing trains).
        shown: the TrainConfig whose curves the image shows (None before the first plot).
        static: the `StaticExplorer` over ``sweep`` ((depth, width) -> Run, as the notebook's
            ``sweep_runs``), or None without ``sweep``.
    """

    def __init__(self, data: Dataset, task3: Run, widths: Sequence[int] = (8, 16, 32, 64, 128, 256),
                 depths: Sequence[int] = (1, 2, 3, 4), cache_dir: str | os.PathLike | None = None,
                 sweep: Mapping[Position, Run] | None = None):
        self.data, self.task3, self.cache_dir = data, task3, cache_dir
        self.static = (None if sweep is None else
                       static_explorer(sweep, task3, cache=cache_folder(cache_dir) / "explorer"))
        self.fingerprint = data_fingerprint(data)
        self._lock = threading.Lock()     # guards everything below and every widget value
        self._wanted: TrainConfig | None = None      # to train next (the sliders' newest choice)
        self._training: TrainConfig | None = None    # training now, in the worker thread
        self._progress: Progress | None = None       # the training network's last check
        self._failure = ""                # the last training failure, until the next run
        self._worker: threading.Thread | None = None
        self.shown: TrainConfig | None = None
        self._build(widths, depths)
        self.units.observe(self._on_change, names="value")
        self.layers.observe(self._on_change, names="value")
        self._on_change()

    def _build(self, widths: Sequence[int], depths: Sequence[int]) -> None:
        import ipywidgets as W
        whole = {"description_width": "initial"}     # descriptions never cut off
        hidden = self.task3.config.hidden_layers
        self.units = W.SelectionSlider(
            options=list(widths), value=hidden[0], description="hidden units per layer",
            continuous_update=False, style=whole, layout=W.Layout(width="420px"))
        self.layers = W.SelectionSlider(
            options=list(depths), value=len(hidden), description="hidden layers",
            continuous_update=False, style=whole, layout=W.Layout(width="320px"))
        self.drawn = W.HTML("<b>Drawn:</b> nothing yet")
        self.training = W.HTML()
        self.bar = W.IntProgress(min=0, max=self.task3.config.num_epochs,
                                 layout=W.Layout(width="30%", visibility="hidden"))
        self.image = W.Image(format="png", layout=W.Layout(max_width="100%"))
        self.widget = W.VBox([W.HBox([self.units, self.layers]), self.drawn,
                              W.HBox([self.bar, self.training]), self.image])

    def config(self) -> TrainConfig:
        """The network the sliders point at."""
        return self.task3.config.replace(
            neurons_per_layer=(self.units.value,) * self.layers.value + (NUM_CLASSES,))

    # ---------------------------------------------------------------------------- static view

    def _repr_mimebundle_(self, **kwargs) -> tuple[dict, dict]:
        """The live widget view for JupyterLab; for viewers without a kernel the static explorer's
        HTML (given ``sweep``) and a PNG of the current plot (for viewers that show no HTML), and a
        short text. The metadata flags the output for removal from the PDF.

        Returns (data, metadata) as IPython's display accepts them."""
        bundle = dict(self.widget._repr_mimebundle_(**kwargs) or {})
        metadata = {PDF_FLAG: True}
        with self._lock:
            png, shown, width = bytes(self.image.value), self.shown, self.image.layout.width
        if png:
            bundle["image/png"] = base64.b64encode(png).decode("ascii")
            if width and width.endswith("px"):
                metadata["image/png"] = {"width": int(width[:-2])}
        showing = f"showing {layers(shown)}" if shown is not None else "no plot yet"
        bundle["text/plain"] = f"Hidden-unit explorer: needs a live kernel; {showing}"
        if self.static is not None:
            bundle["text/html"] = self.static.html
            bundle["text/plain"] = self.static.text()
        return bundle, metadata

    # -------------------------------------------------------------------------------- drawing

    def _draw(self, run: Run, how: str) -> None:
        """Replace the plot by ``run``'s, if the sliders still point at it, and say which network
        it is. Called by the sliders and by the worker thread; rendering happens outside the
        lock, the check and the replacement inside it (so a late run never covers a newer one)."""
        try:
            png, width = render_png(run, self.task3)
        except Exception as err:  # noqa: BLE001 (shown, not lost in a callback or a thread)
            with self._lock:
                self.drawn.value = (f"<b>Drawing {layers(run.config)} failed</b>: "
                                    f"{type(err).__name__}: {err}; "
                                    f"{self._drawn_now()}")
            return
        with self._lock:
            if run.config != self.config():
                return                        # the sliders moved on: their choice is drawn
            self.image.layout.width = f"{width}px"
            self.image.value = png
            self.shown = run.config
            self.drawn.value = (f"<b>Drawn:</b> {network_name(run.config)}, {how}; best "
                                f"validation accuracy {run.history.best['val_accuracy']:.2%}")

    def _drawn_now(self) -> str:
        return f"still drawn: {layers(self.shown)}" if self.shown is not None else "no plot yet"

    def _on_change(self, change=None) -> None:
        """A slider moved (or the explorer starts): draw a cached network, or queue training."""
        config = self.config()
        run = cached_run(config, self.fingerprint, self.cache_dir, warn=False)
        if run is not None:
            with self._lock:
                self._wanted = None           # nothing waits; a network in training finishes
                self._show_training()
            self._draw(run, "from the cache")
        else:
            self._queue(config)

    # -------------------------------------------------------------------------------- training

    def _show_training(self) -> None:
        """Set the training line and the bar from the state (call with the lock held). The bar
        shows before the line announces training, and hides after the line stops announcing."""
        text = training_text(self._training, self._progress, self._wanted, self._failure)
        busy = self._training is not None or self._wanted is not None
        if not busy:
            self.training.value = text
        if self._progress is not None:
            self.bar.max = self._progress.num_epochs
        self.bar.value = self._progress.epoch if self._progress is not None else 0
        self.bar.layout.visibility = "visible" if busy else "hidden"
        if busy:
            self.training.value = text

    def _queue(self, config: TrainConfig) -> None:
        """Have ``config`` trained next (unless it trains now) and say so at once."""
        with self._lock:
            self._wanted = None if config == self._training else config
            self._show_training()
            if self._worker is None:
                self._worker = threading.Thread(target=self._train_loop, daemon=True,
                                                name="hidden-unit explorer")
                self._worker.start()

    def _on_progress(self, progress: Progress) -> None:
        with self._lock:
            self._progress = progress
            self._show_training()

    def _next(self) -> TrainConfig | None:
        """The worker's next network, or None (and the worker is done) when nothing waits."""
        with self._lock:
            config, self._wanted = self._wanted, None
            self._training, self._progress = config, None
            if config is None:
                self._worker = None
            else:
                self._failure = ""
            self._show_training()
            return config

    def _train_loop(self) -> None:
        """The worker thread: train what the sliders want until nothing is wanted."""
        while (config := self._next()) is not None:
            try:
                run = run_experiment(config, self.data, cache_dir=self.cache_dir,
                                     progress=self._on_progress, fingerprint=self.fingerprint)
            except Exception as err:  # noqa: BLE001 (shown, not lost in a background thread)
                with self._lock:
                    self._training = None
                    self._failure = (f"<b>Training {layers(config)} failed</b>: "
                                     f"{type(err).__name__}: {err}")
                    self._show_training()
                continue
            with self._lock:
                self._training = None
            self._draw(run, "trained just now")
