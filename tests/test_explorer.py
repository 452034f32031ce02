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
    assert explorer.status.value == "from the cache"
    assert len(explorer.out.outputs) == 1 and "image/png" in explorer.out.outputs[0]["data"]


def test_new_network_trains_in_background_then_is_drawn_and_cached(explorer_setup):
    data, task3, cache = explorer_setup
    explorer = HiddenUnitExplorer(data, task3, widths=(8, 16), depths=(1, 2), cache_dir=cache)
    explorer.layers.value = 2                       # [16, 16, 10]: not in the cache
    assert "training" in explorer.status.value      # returned at once, training announced
    assert wait_for(lambda: explorer.status.value == "trained just now"), explorer.status.value
    assert explorer.bar.layout.visibility == "hidden" or wait_for(
        lambda: explorer.bar.layout.visibility == "hidden")
    wanted = task3.config.replace(neurons_per_layer=(16, 16, 10))
    assert experiments.cached_run(wanted, experiments.data_fingerprint(data), cache) is not None
    explorer.layers.value = 1
    explorer.layers.value = 2                       # now answered from the cache
    assert explorer.status.value == "from the cache"


def test_only_the_latest_choice_is_drawn(explorer_setup):
    """Moving the sliders while a network trains: the newest choice is trained next and drawn."""
    data, task3, cache = explorer_setup
    explorer = HiddenUnitExplorer(data, task3, widths=(8, 16), depths=(1, 2), cache_dir=cache)
    explorer.layers.value = 2                       # starts training [16, 16, 10]
    explorer.units.value = 8                        # then asks for [8, 8, 10]
    assert wait_for(lambda: experiments.cached_run(explorer.config(), experiments.data_fingerprint(data), cache,
                                         warn=False) is not None)
    assert wait_for(lambda: explorer.shown == explorer.config())
    assert explorer.shown.neurons_per_layer == (8, 8, 10)
    assert explorer.status.value == "trained just now"
