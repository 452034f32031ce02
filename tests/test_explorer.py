"""The hidden-unit explorer, driven without a browser: cached networks are drawn at once, a new
one trains in a background thread (sliders stay free) and is drawn when it finishes; one image is
replaced in place; the status lines always name the drawn network and the training one.

Where the order of events matters, training is held at its first progress report by a gate the
test opens, so that no test depends on how fast a thread happens to run."""

from __future__ import annotations

import base64
import threading
import time

import numpy as np
import pytest

import helpers as h
from report import experiments
from report import explorer as module
from report.explorer import HiddenUnitExplorer

pytest.importorskip("ipywidgets")


# ================================================================================================
# Fixtures and helpers
# ================================================================================================

@pytest.fixture
def explorer_setup(tmp_path):
    """Synthetic separable data, a tiny quick config, and its cached baseline run."""
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 10, size=600)
    centres = rng.normal(0, 60, size=(10, 784))
    X = np.clip(centres[labels] + rng.normal(0, 20, size=(600, 784)) + 100, 0, 255)
    data = h.prepare_data(X[:400], labels[:400], X[400:], labels[400:])
    base = h.TrainConfig(neurons_per_layer=(16, 10), use_improved_weight_init=True,
                         use_improved_sigmoid=True, use_momentum=True, num_epochs=2,
                         train_size=400, val_size=200, batch_size=32,
                         early_stopping_patience=5)
    task3 = experiments.run_experiment(base, data, cache_dir=tmp_path)
    return data, task3, tmp_path


@pytest.fixture
def explorer(explorer_setup):
    """The explorer on the synthetic data: widths 8 and 16, depths 1 and 2; [16, 10] cached."""
    data, task3, cache = explorer_setup
    return HiddenUnitExplorer(data, task3, widths=(8, 16), depths=(1, 2), cache_dir=cache)


class Gate:
    """Replaces the explorer's run_experiment: every run stops at its first progress report
    until ``open()``; ``reached`` is set when a run got there. ``trained`` lists the configs."""

    def __init__(self, monkeypatch):
        self.reached, self.opened, self.trained = threading.Event(), threading.Event(), []
        real = module.run_experiment

        def gated(config, data, *, progress=None, **kwargs):
            self.trained.append(config)

            def held(p):
                progress(p)
                self.reached.set()
                assert self.opened.wait(60), "the test never opened the gate"
            return real(config, data, progress=held, **kwargs)
        monkeypatch.setattr(module, "run_experiment", gated)

    def wait(self) -> None:
        assert self.reached.wait(60), "training never reported progress"
        self.reached.clear()

    def open(self) -> None:
        self.opened.set()


def wait_for(condition, seconds=60.0):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return False


def images_in(widget) -> list:
    """Every Image widget in ``widget``'s tree."""
    found = [widget] if widget.__class__.__name__ == "Image" else []
    for child in getattr(widget, "children", ()):
        found += images_in(child)
    return found


def png(explorer) -> bytes:
    return bytes(explorer.image.value)


# ================================================================================================
# Tests
# ================================================================================================

def test_cached_network_is_drawn_at_once(explorer):
    assert explorer.config() == explorer.task3.config
    assert explorer.shown == explorer.task3.config
    assert png(explorer).startswith(b"\x89PNG")
    assert "Drawn:</b> [16, 10], 12,720 parameters, from the cache" in explorer.drawn.value
    assert explorer.training.value == "" and explorer.bar.layout.visibility == "hidden"
    assert explorer._worker is None


def test_slider_descriptions_are_whole(explorer):
    for slider, text in ((explorer.units, "hidden units per layer"),
                         (explorer.layers, "hidden layers")):
        assert slider.description == text
        assert slider.style.description_width == "initial"   # no fixed width cuts it off


def test_one_image_replaced_in_place_through_every_move(explorer, monkeypatch):
    """Untrained, back to a cached width while it trains, another untrained one queued, back
    again, then the trained one: always exactly one image, and the status lines name the drawn
    network and the training one at every step."""
    gate = Gate(monkeypatch)
    image, first = explorer.image, png(explorer)

    explorer.layers.value = 2                       # [16, 16, 10]: not in the cache
    assert "<b>Training</b> [16, 16, 10], 12,976 parameters" in explorer.training.value  # at once
    assert explorer.bar.layout.visibility == "visible"
    assert png(explorer) == first and "Drawn:</b> [16, 10]" in explorer.drawn.value  # plot stays
    gate.wait()
    assert "Training</b> [16, 16, 10], 12,976 parameters: epoch 1/2" in explorer.training.value

    explorer.layers.value = 1                       # back to the cached [16, 10] while training
    assert "Drawn:</b> [16, 10]" in explorer.drawn.value and png(explorer) == first
    assert "Training</b> [16, 16, 10]" in explorer.training.value     # says what still trains
    assert "next" not in explorer.training.value

    explorer.units.value = 8                        # [8, 10]: queued behind the training one
    assert "Training</b> [16, 16, 10]" in explorer.training.value
    assert "next: [8, 10]" in explorer.training.value
    explorer.units.value = 16                       # cached again: nothing waits any more
    assert "next" not in explorer.training.value and "Drawn:</b> [16, 10]" in explorer.drawn.value

    gate.open()                                     # [16, 16, 10] finishes: not drawn, cached
    assert wait_for(lambda: explorer._worker is None), explorer.training.value
    assert explorer.training.value == "" and explorer.bar.layout.visibility == "hidden"
    assert explorer.shown == explorer.task3.config and png(explorer) == first
    assert [c.neurons_per_layer for c in gate.trained] == [(16, 16, 10)]

    explorer.layers.value = 2                       # now from the cache, at once
    assert explorer.shown.neurons_per_layer == (16, 16, 10)
    assert "Drawn:</b> [16, 16, 10], 12,976 parameters, from the cache" in explorer.drawn.value
    assert png(explorer) != first and png(explorer).startswith(b"\x89PNG")
    assert explorer._worker is None
    assert images_in(explorer.widget) == [image], "the plot must be one Image, replaced in place"


def test_new_network_trains_in_background_then_is_drawn_and_cached(explorer):
    explorer.layers.value = 2                       # [16, 16, 10]: not in the cache
    assert wait_for(lambda: "trained just now" in explorer.drawn.value), explorer.drawn.value
    assert wait_for(lambda: explorer._worker is None)
    assert explorer.training.value == "" and explorer.bar.layout.visibility == "hidden"
    wanted = explorer.task3.config.replace(neurons_per_layer=(16, 16, 10))
    assert explorer.shown == wanted
    fingerprint = experiments.data_fingerprint(explorer.data)
    assert experiments.cached_run(wanted, fingerprint, explorer.cache_dir) is not None


def test_only_the_latest_choice_is_drawn(explorer, monkeypatch):
    """Moving the sliders while a network trains: the newest choice is trained next and drawn;
    the one the sliders left is trained to the end but never covers the plot."""
    gate = Gate(monkeypatch)
    explorer.layers.value = 2                       # starts training [16, 16, 10]
    gate.wait()
    explorer.units.value = 8                        # then asks for [8, 8, 10]
    assert "next: [8, 8, 10]" in explorer.training.value
    gate.open()
    assert wait_for(lambda: explorer._worker is None), explorer.training.value
    assert [c.neurons_per_layer for c in gate.trained] == [(16, 16, 10), (8, 8, 10)]
    assert explorer.shown.neurons_per_layer == (8, 8, 10)
    assert "Drawn:</b> [8, 8, 10]" in explorer.drawn.value
    assert "trained just now" in explorer.drawn.value


def test_returning_to_the_training_network_does_not_train_it_twice(explorer, monkeypatch):
    gate = Gate(monkeypatch)
    explorer.layers.value = 2                       # [16, 16, 10] trains
    gate.wait()
    explorer.layers.value = 1                       # away to the cached [16, 10] ...
    explorer.layers.value = 2                       # ... and back while it still trains
    assert "next" not in explorer.training.value
    gate.open()
    assert wait_for(lambda: "trained just now" in explorer.drawn.value), explorer.drawn.value
    assert wait_for(lambda: explorer._worker is None)
    assert [c.neurons_per_layer for c in gate.trained] == [(16, 16, 10)]
    assert explorer.shown.neurons_per_layer == (16, 16, 10)


def test_a_training_failure_is_shown_not_lost(explorer, monkeypatch):
    def broken(*args, **kwargs):
        raise MemoryError("no room")
    monkeypatch.setattr(module, "run_experiment", broken)
    first = png(explorer)
    explorer.layers.value = 2
    assert wait_for(lambda: explorer._worker is None)
    assert "Training [16, 16, 10] failed</b>: MemoryError: no room" in explorer.training.value
    assert explorer.shown == explorer.task3.config and png(explorer) == first
    assert explorer.bar.layout.visibility == "hidden"


def test_a_drawing_failure_is_shown_and_the_plot_stays(explorer, monkeypatch):
    def broken(*args, **kwargs):
        raise ValueError("bad axis")
    first = png(explorer)
    monkeypatch.setattr(module, "plot_explorer", broken)
    explorer.layers.value = 1                       # no change: nothing happens
    explorer.units.value = 8                        # [8, 10], trained, then drawing fails
    assert wait_for(lambda: explorer._worker is None)
    assert "Drawing [8, 10] failed</b>: ValueError: bad axis" in explorer.drawn.value
    assert "still drawn: [16, 10]" in explorer.drawn.value
    assert png(explorer) == first and explorer.shown == explorer.task3.config


def test_output_carries_the_widget_and_a_static_image(explorer):
    """JupyterLab renders the widget view; GitHub and nbviewer, which cannot, the PNG."""
    from IPython.core.formatters import DisplayFormatter
    data, metadata = explorer._repr_mimebundle_()
    assert data["application/vnd.jupyter.widget-view+json"]["model_id"] == explorer.widget.model_id
    assert base64.b64decode(data["image/png"]) == png(explorer)
    assert data["text/plain"] == "Hidden-unit explorer: needs a live kernel; showing [16, 10]"
    for text in ("VBox(", "HBox(", "IntProgress(", "interactive("):
        assert text not in data["text/plain"]
    assert metadata["image/png"]["width"] > 0       # viewers show it at the widget's size
    # what display(explorer) puts in the notebook: the same three views
    shown, shown_metadata = DisplayFormatter().format(explorer)
    assert {"application/vnd.jupyter.widget-view+json", "image/png", "text/plain"} <= set(shown)
    assert shown_metadata["image/png"] == metadata["image/png"]


def test_static_image_follows_the_plot(explorer):
    explorer.units.value = 8                        # [8, 10] trains and is drawn
    assert wait_for(lambda: "trained just now" in explorer.drawn.value), explorer.drawn.value
    data, _ = explorer._repr_mimebundle_()
    assert base64.b64decode(data["image/png"]) == png(explorer)
    assert data["text/plain"].endswith("showing [8, 10]")


def test_a_viewer_without_a_kernel_shows_the_png(explorer):
    """nbconvert's HTML (what nbviewer shows) of the saved output: the plot as an image, no
    widget text, since the notebook holds no widget state."""
    nbformat = pytest.importorskip("nbformat")
    nbconvert = pytest.importorskip("nbconvert")
    data, metadata = explorer._repr_mimebundle_()
    cell = nbformat.v4.new_code_cell("display(explorer)", outputs=[
        nbformat.v4.new_output("display_data", data=data, metadata=metadata)])
    html, _ = nbconvert.HTMLExporter().from_notebook_node(nbformat.v4.new_notebook(cells=[cell]))
    assert f'src="data:image/png;base64,{data["image/png"]}"' in html
    assert f'width="{metadata["image/png"]["width"]}"' in html
    for text in ("VBox(", "HBox(", "needs a live kernel", "widget-view+json"):
        assert text not in html, text
