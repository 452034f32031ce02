"""The hidden-unit explorer: sliders that recall or train a network of any width and depth and
draw its curves against the Task 3 network.

Every widget is updated in place (an `ipywidgets.Image` whose value is replaced, HTML labels whose
value is set), never cleared and re-displayed: clearing an `Output` from outside the cell's
execution, or from a thread, does not clear it in the browser, and the plots would pile up. The
training thread only sets widget values. Where no kernel runs (GitHub, nbviewer), the explorer's
output shows a PNG of its current plot instead of the live widget.
"""

from __future__ import annotations

import base64
import os
import threading
from collections.abc import Sequence

from helpers import NUM_CLASSES, Dataset, Progress, TrainConfig
from report.experiments import Run, cached_run, data_fingerprint, run_experiment
from report.plots import figure_bytes, plot_explorer

# ================================================================================================
# Widgets: the hidden-unit explorer
# ================================================================================================

def network_name(config: TrainConfig) -> str:
    """'[128, 10], 101,760 parameters'."""
    return f"{list(config.neurons_per_layer)}, {config.num_parameters:,} parameters"


class HiddenUnitExplorer:
    """Sliders for hidden units per layer and number of hidden layers (Task 3 tricks on).

    Moving them draws that network's curves against the Task 3 baseline. Networks already in the
    cache are drawn at once. A new one trains in a background thread with a progress bar while
    the current plot stays; if the sliders moved on meanwhile, the newest choice is trained next,
    and a finished network is drawn only if the sliders still point at it. Two status lines say
    which network is drawn and which, if any, is training.

    Display it with ``display(explorer)``.
    """

    def __init__(self, data: Dataset, task3: Run, widths: Sequence[int] = (8, 16, 32, 64, 128, 256),
                 depths: Sequence[int] = (1, 2, 3, 4), cache_dir: str | os.PathLike | None = None):
        import ipywidgets as W
        self.data, self.task3, self.cache_dir = data, task3, cache_dir
        self.fingerprint = data_fingerprint(data)
        label = {"description_width": "initial"}          # descriptions never cut off
        self.units = W.SelectionSlider(options=list(widths), value=task3.config.hidden_layers[0],
                                       description="hidden units per layer",
                                       continuous_update=False, style=label)
        self.layers = W.SelectionSlider(options=list(depths), value=len(task3.config.hidden_layers),
                                        description="hidden layers", continuous_update=False,
                                        style=label)
        self.drawn = W.HTML()       # which network the plot shows
        self.training = W.HTML()    # which network trains, and how far it is
        self.bar = W.IntProgress(min=0, max=task3.config.num_epochs,
                                 layout=W.Layout(width="30%", visibility="hidden"))
        self.image = W.Image(format="png", layout=W.Layout(width="100%", max_width="1000px"))
        self.widget = W.VBox([W.HBox([self.units, self.layers]), self.drawn,
                              W.HBox([self.bar, self.training]), self.image])
        self._lock = threading.Lock()        # guards _wanted and _worker
        self._draw_lock = threading.Lock()   # one drawing at a time, slider or thread
        self._wanted: TrainConfig | None = None
        self._worker: threading.Thread | None = None
        self.shown: TrainConfig | None = None  # the network whose curves are on screen
        self.units.observe(self._on_change, names="value")
        self.layers.observe(self._on_change, names="value")
        self._on_change()

    def config(self) -> TrainConfig:
        """The network the sliders point at."""
        return self.task3.config.replace(
            neurons_per_layer=(self.units.value,) * self.layers.value + (NUM_CLASSES,))

    def _repr_mimebundle_(self, **kwargs) -> dict:
        """The live widget for JupyterLab, and a PNG of the current plot for viewers without a
        kernel (they show the PNG instead of the widget's text)."""
        bundle = dict(self.widget._repr_mimebundle_(**kwargs) or {})
        bundle["image/png"] = base64.b64encode(self.image.value).decode("ascii")
        bundle["text/plain"] = (f"Hidden-unit explorer (needs a live kernel), showing "
                                f"{list(self.shown.neurons_per_layer)}")
        return bundle

    # -------------------------------------------------------------------------------- drawing

    def _draw(self, run: Run, how: str) -> None:
        """Replace the plot by ``run``'s (one PNG, in place) and say which network it is."""
        h = run.history
        title = (f"{list(run.config.neurons_per_layer)}: {h.num_parameters:,} parameters "
                 f"(seed {run.config.seed})\nbest validation accuracy "
                 f"{h.best['val_accuracy']:.2%} at epoch {h.best['epoch']:.1f}, at the end "
                 f"{h.last['val_accuracy']:.2%}")
        png = figure_bytes(plot_explorer(run, self.task3, title), "png")
        with self._draw_lock:
            self.image.value = png
            self.shown = run.config
            self.drawn.value = (f"<b>Drawn:</b> {network_name(run.config)}, {how}; best "
                                f"validation accuracy {h.best['val_accuracy']:.2%}")

    def _on_change(self, change=None) -> None:
        config = self.config()
        run = cached_run(config, self.fingerprint, self.cache_dir, warn=False)
        if run is not None:
            with self._lock:
                self._wanted = None
            self._draw(run, "from the cache")
            return
        with self._lock:
            self._wanted = config
            if self._worker is None or not self._worker.is_alive():
                self._worker = threading.Thread(target=self._train_loop, daemon=True)
                self._worker.start()
        self.training.value = f"<b>Training</b> {network_name(config)}: starting ..."
        self.bar.value = 0
        self.bar.layout.visibility = "visible"

    # -------------------------------------------------------------------------------- training

    def _train_loop(self) -> None:
        """The background thread: train what the sliders want until nothing is wanted."""
        last_words = ""                      # a failure stays on screen after the loop ends
        while True:
            with self._lock:
                config, self._wanted = self._wanted, None
                if config is None:
                    self._worker = None
                    self.training.value = last_words
                    self.bar.layout.visibility = "hidden"
                    return
            self.bar.value = 0
            self.bar.layout.visibility = "visible"

            def progress(p: Progress, config=config) -> None:
                queued = self._wanted
                self.bar.value = p.epoch
                self.training.value = (
                    f"<b>Training</b> {network_name(config)}: epoch {p.epoch + 1}/{p.num_epochs}, "
                    f"validation accuracy {p.val_accuracy:.2%}"
                    + (f"; next: {list(queued.neurons_per_layer)}" if queued else ""))
            try:
                run = run_experiment(config, self.data, cache_dir=self.cache_dir,
                                     progress=progress, fingerprint=self.fingerprint)
            except Exception as err:  # shown, not lost in a background thread
                last_words = (f"<b>Training {list(config.neurons_per_layer)} failed</b>: "
                              f"{type(err).__name__}: {err}")
                self.training.value = last_words
                continue
            last_words = ""
            if config == self.config():
                self._draw(run, "trained just now")
