"""The hidden-unit explorer: sliders that recall or train a network of any width and depth and
draw its curves against the Task 3 network.

Every widget is updated in place (an `ipywidgets.Image` whose value is replaced, HTML lines whose
value is set), never cleared and re-displayed: clearing an `Output` from outside the cell's
execution, or from a thread, does not clear it in the browser, and the plots would pile up. The
training thread only sets widget values, under the explorer's lock. Where no kernel runs (GitHub,
nbviewer), the explorer's output shows a PNG of its current plot instead of the live widget.
"""

from __future__ import annotations

import base64
import os
import threading
from collections.abc import Sequence

from helpers import NUM_CLASSES, Dataset, Progress, TrainConfig
from report.experiments import Run, cached_run, data_fingerprint, run_experiment
from report.plots import figure_bytes, plot_explorer

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


def render_png(run: Run, baseline: Run) -> tuple[bytes, int]:
    """``run``'s explorer plot as PNG bytes (no timestamp or version in them: the same run gives
    the same bytes) and the width in CSS pixels to show it at."""
    fig = plot_explorer(run, baseline, plot_title(run))
    return figure_bytes(fig, "png", dpi=PNG_DPI), round(fig.get_figwidth() * CSS_DPI)


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
    kernel a PNG of the current plot. ``explorer.widget`` is the bare ipywidgets VBox.

    Attributes:
        units, layers: the two SelectionSliders.
        image: the ipywidgets.Image holding the plot (PNG bytes).
        drawn, training: HTML status lines (the drawn network; the training one, or a failure).
        bar: IntProgress of the training network's epochs (hidden when nothing trains).
        shown: the TrainConfig whose curves the image shows (None before the first plot).
    """

    def __init__(self, data: Dataset, task3: Run, widths: Sequence[int] = (8, 16, 32, 64, 128, 256),
                 depths: Sequence[int] = (1, 2, 3, 4), cache_dir: str | os.PathLike | None = None):
        self.data, self.task3, self.cache_dir = data, task3, cache_dir
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
        """The live widget view for JupyterLab, a PNG of the current plot for viewers without a
        kernel (GitHub, nbviewer: they show it instead of the widget's text), and a short text.

        Returns (data, metadata) as IPython's display accepts them."""
        bundle = dict(self.widget._repr_mimebundle_(**kwargs) or {})
        metadata = {}
        with self._lock:
            png, shown, width = bytes(self.image.value), self.shown, self.image.layout.width
        if png:
            bundle["image/png"] = base64.b64encode(png).decode("ascii")
            if width and width.endswith("px"):
                metadata["image/png"] = {"width": int(width[:-2])}
        showing = f"showing {layers(shown)}" if shown is not None else "no plot yet"
        bundle["text/plain"] = f"Hidden-unit explorer: needs a live kernel; {showing}"
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
