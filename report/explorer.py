"""The hidden-unit explorer: sliders that train or recall a network and draw it."""

from __future__ import annotations

import io
import os
import threading
from collections.abc import Sequence

from helpers import NUM_CLASSES, Dataset, Progress, TrainConfig
from report.experiments import Run, cached_run, data_fingerprint, run_experiment
from report.plots import plot_explorer

# ================================================================================================
# Widgets: the hidden-unit explorer
# ================================================================================================

class HiddenUnitExplorer:
    """Sliders for hidden units per layer and number of hidden layers (Task 3 tricks on).

    Moving them draws that network's curves against the Task 3 baseline with its parameter count
    and validation accuracy. Networks already in the cache answer at once; a new one trains in a
    background thread with a progress bar, so the sliders stay responsive; if the sliders moved
    on meanwhile, the newest choice is trained next and drawn when ready.
    """

    def __init__(self, data: Dataset, task3: Run, widths: Sequence[int] = (8, 16, 32, 64, 128, 256),
                 depths: Sequence[int] = (1, 2, 3, 4), cache_dir: str | os.PathLike | None = None):
        import ipywidgets as W
        self.data, self.task3, self.cache_dir = data, task3, cache_dir
        self.fingerprint = data_fingerprint(data)
        self.units = W.SelectionSlider(options=list(widths), value=task3.config.hidden_layers[0],
                                       description="hidden units", continuous_update=False)
        self.layers = W.SelectionSlider(options=list(depths), value=len(task3.config.hidden_layers),
                                        description="hidden layers", continuous_update=False)
        self.status = W.HTML()
        self.bar = W.IntProgress(min=0, max=task3.config.num_epochs, layout=W.Layout(width="40%"))
        self.out = W.Output()
        self.widget = W.VBox([W.HBox([self.units, self.layers]), W.HBox([self.bar, self.status]),
                              self.out])
        self._lock = threading.Lock()
        self._wanted: TrainConfig | None = None
        self.shown: TrainConfig | None = None  # the network whose curves are on screen
        self._worker: threading.Thread | None = None
        self.units.observe(self._on_change, names="value")
        self.layers.observe(self._on_change, names="value")
        self.bar.layout.visibility = "hidden"
        self._on_change()

    def config(self) -> TrainConfig:
        """The network the sliders point at."""
        return self.task3.config.replace(
            neurons_per_layer=(self.units.value,) * self.layers.value + (NUM_CLASSES,))

    def _draw(self, run: Run) -> None:
        h = run.history
        title = (f"{list(run.config.neurons_per_layer)}: {h.num_parameters:,} parameters; "
                 f"best validation accuracy {h.best['val_accuracy']:.2%} at epoch "
                 f"{h.best['epoch']:.1f}, last {h.last['val_accuracy']:.2%}")
        from IPython.display import Image
        png = io.BytesIO()
        plot_explorer(run, self.task3, title).savefig(png, format="png")  # no formatter needed
        self.out.clear_output(wait=True)
        self.out.append_display_data(Image(data=png.getvalue(), format="png"))
        self.shown = run.config
        self.status.value = f"{'from the cache' if run.cached else 'trained just now'}"

    def _on_change(self, change=None) -> None:
        config = self.config()
        run = cached_run(config, self.fingerprint, self.cache_dir, warn=False)
        if run is not None:
            self._wanted = None
            self._draw(run)
            return
        with self._lock:
            self._wanted = config
            busy = self._worker is not None and self._worker.is_alive()
            if not busy:
                self._worker = threading.Thread(target=self._train_loop, daemon=True)
                self._worker.start()
        self.status.value = (f"<b>training {list(config.neurons_per_layer)}</b> "
                             f"({config.num_parameters:,} parameters) ...")

    def _train_loop(self) -> None:
        while True:
            with self._lock:
                config, self._wanted = self._wanted, None
                if config is None:
                    self.bar.layout.visibility = "hidden"
                    return
            self.bar.layout.visibility = "visible"
            self.bar.value = 0

            def progress(p: Progress, config=config) -> None:
                self.bar.value = p.epoch
                self.status.value = (f"<b>training {list(config.neurons_per_layer)}</b>: epoch "
                                     f"{p.epoch + 1}/{p.num_epochs}, validation accuracy "
                                     f"{p.val_accuracy:.2%}")
            try:
                run = run_experiment(config, self.data, cache_dir=self.cache_dir,
                                     progress=progress, fingerprint=self.fingerprint)
            except Exception as err:  # shown, not lost in a background thread
                self.status.value = f"<b>training failed</b>: {type(err).__name__}: {err}"
                continue
            if config == self.config():
                self._draw(run)
