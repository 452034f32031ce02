"""The hidden-unit explorer, driven without a browser: cached networks are drawn at once, a new
one trains in a background thread (sliders stay free) and is drawn when it finishes."""

import time

import numpy as np
import pytest

import helpers as h
from report import experiments
from report.explorer import HiddenUnitExplorer

pytest.importorskip("ipywidgets")


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


def wait_for(condition, seconds=60.0):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False



def test_cached_network_is_drawn_at_once(explorer_setup):
    data, task3, cache = explorer_setup
    explorer = HiddenUnitExplorer(data, task3, widths=(8, 16), depths=(1, 2), cache_dir=cache)
    assert explorer.config() == task3.config
    assert explorer.shown == task3.config
    assert bytes(explorer.image.value).startswith(b"\x89PNG")
    assert "Drawn:</b> [16, 10]" in explorer.drawn.value and "from the cache" in explorer.drawn.value
    assert explorer.training.value == "" and explorer.bar.layout.visibility == "hidden"
    # the slider descriptions are whole: no fixed description width that would cut them off
    for slider in (explorer.units, explorer.layers):
        assert slider.style.description_width == "initial"
    assert explorer.units.description == "hidden units per layer"


def test_one_image_replaced_in_place_through_every_move(explorer_setup):
    """Untrained, then back to a cached width while it trains, then the trained one: there is
    always exactly one image widget in the view, and its value changes."""
    data, task3, cache = explorer_setup
    explorer = HiddenUnitExplorer(data, task3, widths=(8, 16), depths=(1, 2), cache_dir=cache)
    image = explorer.image
    first = bytes(image.value)
    explorer.layers.value = 2                       # [16, 16, 10]: not in the cache
    assert "<b>Training</b> [16, 16, 10]" in explorer.training.value    # announced at once
    assert explorer.bar.layout.visibility == "visible"
    assert bytes(explorer.image.value) == first and explorer.shown == task3.config  # the plot stays
    explorer.layers.value = 1                       # back to the cached [16, 10] while training
    assert explorer.shown == task3.config and "[16, 10]" in explorer.drawn.value
    assert wait_for(lambda: explorer._worker is None), explorer.training.value
    assert explorer.training.value == "" and explorer.shown == task3.config
    # The thread may have trained [16, 16, 10] meanwhile, or dropped it because the sliders
    # left it before training began: either way it is drawn now, from the cache or trained.
    explorer.layers.value = 2
    assert wait_for(lambda: explorer.shown.neurons_per_layer == (16, 16, 10))
    assert bytes(explorer.image.value) != first
    images = [w for w in explorer.widget.children if w.__class__.__name__ == "Image"]
    assert images == [image], "the plot must be one Image widget, replaced in place"


def test_new_network_trains_in_background_then_is_drawn_and_cached(explorer_setup):
    data, task3, cache = explorer_setup
    explorer = HiddenUnitExplorer(data, task3, widths=(8, 16), depths=(1, 2), cache_dir=cache)
    explorer.layers.value = 2                       # [16, 16, 10]: not in the cache
    assert wait_for(lambda: "trained just now" in explorer.drawn.value), explorer.drawn.value
    assert wait_for(lambda: explorer.bar.layout.visibility == "hidden")
    assert explorer.training.value == ""
    wanted = task3.config.replace(neurons_per_layer=(16, 16, 10))
    assert experiments.cached_run(wanted, experiments.data_fingerprint(data), cache) is not None


def test_only_the_latest_choice_is_drawn(explorer_setup):
    """Moving the sliders while a network trains: the newest choice is trained next and drawn."""
    data, task3, cache = explorer_setup
    explorer = HiddenUnitExplorer(data, task3, widths=(8, 16), depths=(1, 2), cache_dir=cache)
    explorer.layers.value = 2                       # starts training [16, 16, 10]
    explorer.units.value = 8                        # then asks for [8, 8, 10]
    assert wait_for(lambda: explorer.shown == explorer.config())
    assert explorer.shown.neurons_per_layer == (8, 8, 10)
    assert "trained just now" in explorer.drawn.value


def test_a_failure_is_shown_not_lost(explorer_setup, monkeypatch):
    data, task3, cache = explorer_setup
    from report import explorer as module

    def broken(*args, **kwargs):
        raise MemoryError("no room")
    monkeypatch.setattr(module, "run_experiment", broken)
    explorer = HiddenUnitExplorer(data, task3, widths=(8, 16), depths=(1, 2), cache_dir=cache)
    explorer.layers.value = 2
    assert wait_for(lambda: "failed" in explorer.training.value)
    assert wait_for(lambda: explorer._worker is None)
    assert "MemoryError: no room" in explorer.training.value and explorer.shown == task3.config


def test_output_carries_the_widget_and_a_static_image(explorer_setup):
    """JupyterLab renders the widget view; GitHub and nbviewer, which cannot, the PNG."""
    import base64
    data, task3, cache = explorer_setup
    explorer = HiddenUnitExplorer(data, task3, widths=(8, 16), depths=(1, 2), cache_dir=cache)
    bundle = explorer._repr_mimebundle_()
    view = bundle["application/vnd.jupyter.widget-view+json"]
    assert view["model_id"] == explorer.widget.model_id
    assert base64.b64decode(bundle["image/png"]) == bytes(explorer.image.value)
    for text in ("VBox(", "HBox(", "IntProgress(", "interactive("):
        assert text not in bundle["text/plain"]
