"""The hidden-unit explorer, driven without a browser: cached networks are drawn at once, a new
one trains in a background thread (sliders stay free) and is drawn when it finishes; one image is
replaced in place; the status lines always name the drawn network and the training one. The static
explorer: every sweep network's plot in one HTML output whose script makes the sliders; without the
script, the Task 3 network's plot and the hint, no dead control.

Where the order of events matters, training is held at its first progress report by a gate the
test opens, so that no test depends on how fast a thread happens to run."""

from __future__ import annotations

import base64
import json
import re
import threading
import time

import numpy as np
import pytest

import helpers as h
from report import experiments
from report import explorer as module
from report.explorer import (PDF_FLAG, HiddenUnitExplorer, StaticExplorer, hint_text,
                             static_explorer, static_explorer_html, static_plots, sweep_axes)

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


# ================================================================================================
# The static explorer: sliders over the sweep without a kernel
# ================================================================================================

SCRIPT = re.compile(r"<script>\n(.*?)\n</script>", re.DOTALL)


@pytest.fixture
def sweep(explorer_setup):
    """(depth, width) -> Run over widths 8 and 16, depths 1 and 2, on the synthetic data; the
    Task 3 stand-in [16, 10] among them."""
    data, task3, cache = explorer_setup
    return {(d, w): experiments.run_experiment(
                task3.config.replace(neurons_per_layer=(w,) * d + (10,)), data, cache_dir=cache)
            for d in (1, 2) for w in (8, 16)}


def script_data(html: str) -> dict:
    """The data the static explorer's script carries."""
    script = SCRIPT.search(html).group(1)
    return json.loads(re.search(r"var data = (\{.*?\});\n", script).group(1))


def without_scripts(html: str) -> str:
    """What a viewer that strips scripts (GitHub, an untrusted notebook) keeps."""
    return re.sub(r"<script>.*?</script>", "", html, flags=re.DOTALL)


def test_static_explorer_shows_the_task3_network_with_its_caption_and_the_hint(sweep, explorer_setup):
    task3 = explorer_setup[1]
    static = static_explorer(sweep, task3)
    html = static.html
    assert html.startswith('<div class="a2-explorer" ') and html.endswith("</div>")
    assert 'data-network="[16, 10]"' in html and 'data-positions="4"' in html
    plain = without_scripts(html)
    images = re.findall(r'<img [^>]*src="data:image/png;base64,([^"]+)"[^>]*>', plain)
    assert len(images) == 1 and base64.b64decode(images[0]) == static.start.png
    assert 'width="700"' in plain and 'alt="Validation loss and accuracy of [16, 10]' in plain
    assert "[16, 10]: 12,720 parameters, seed 0; best validation accuracy" in plain
    assert hint_text(4) in plain and "assignment2.html" in hint_text(4)
    # what a sanitiser leaves: no control at all (the script makes them), nothing hidden
    for dead in ("<input", "<output", "display:none", "display: none", "hidden"):
        assert dead not in plain, dead


def test_static_explorer_script_carries_every_position(sweep, explorer_setup):
    static = static_explorer(sweep, explorer_setup[1])
    data = script_data(static.html)
    assert data["widths"] == [8, 16] and data["depths"] == [1, 2] and data["start"] == [1, 16]
    assert set(data["plots"]) == {"1,8", "1,16", "2,8", "2,16"}
    assert data["plots"]["2,8"]["network"] == "[8, 8, 10]"
    assert data["plots"]["2,8"]["caption"].startswith("[8, 8, 10]: 6,424 parameters, seed 0;")
    assert data["plots"]["1,16"]["png"] is None        # the start plot is the <img>, not repeated
    plots = static_plots(sweep, explorer_setup[1])
    for key, plot in data["plots"].items():
        if plot["png"] is not None:
            depth, width = map(int, key.split(","))
            assert base64.b64decode(plot["png"]) == plots[(depth, width)].png
    script = SCRIPT.search(static.html).group(1)
    assert "</" not in script and "<!--" not in script   # nothing can end the script early
    assert "document.currentScript" in script and "getElementById" not in script


def test_static_explorer_is_deterministic_and_its_plots_cached(sweep, explorer_setup, tmp_path,
                                                               monkeypatch):
    task3 = explorer_setup[1]
    first = static_explorer(sweep, task3, cache=tmp_path / "plots")
    assert len(list((tmp_path / "plots").glob("plot-*.png"))) == 4
    assert static_explorer(sweep, task3).html == first.html        # drawn again: same bytes

    def broken(*args, **kwargs):
        raise AssertionError("drawn although cached")
    monkeypatch.setattr(module, "plot_explorer", broken)
    assert static_explorer(sweep, task3, cache=tmp_path / "plots").html == first.html
    with pytest.raises(AssertionError, match="drawn although cached"):
        static_explorer(sweep, task3, dpi=100, cache=tmp_path / "plots")   # another key


def test_static_explorer_refuses_a_grid_with_holes_or_without_the_baseline(sweep, explorer_setup):
    task3 = explorer_setup[1]
    holed = {k: v for k, v in sweep.items() if k != (2, 8)}
    with pytest.raises(ValueError, match=r"no network at \(depth, width\) \[\(2, 8\)\]"):
        static_explorer(holed, task3)
    with pytest.raises(ValueError, match="start position"):
        static_explorer({k: v for k, v in sweep.items() if k[1] == 8}, task3)
    with pytest.raises(ValueError, match=r"\(depth 1, width 8\) holds the network \[16, 10\]"):
        static_explorer({**sweep, (1, 8): sweep[(1, 16)]}, task3)
    with pytest.raises(ValueError, match="empty"):
        sweep_axes([])
    assert sweep_axes([(2, 8), (1, 16), (1, 8), (2, 16)]) == ([8, 16], [1, 2])
    plots = static_plots(sweep, task3)
    assert static_explorer_html(plots, (1, 16)) == static_explorer(sweep, task3).html


def test_static_explorer_output_html_png_text_and_pdf_flag(sweep, explorer_setup):
    from IPython.core.formatters import DisplayFormatter
    static = static_explorer(sweep, explorer_setup[1])
    assert isinstance(static, StaticExplorer) and static.count == 4
    data, metadata = DisplayFormatter().format(static)
    assert data["text/html"] == static.html
    assert base64.b64decode(data["image/png"]) == static.start.png
    assert data["text/plain"] == ("Hidden-unit explorer: [16, 10] (sliders over 4 networks in "
                                  "assignment2.html or the trusted notebook)")
    assert metadata == {"image/png": {"width": 700}, PDF_FLAG: True}


def test_live_explorer_given_the_sweep_carries_the_static_one(explorer_setup, sweep):
    """In a kernel session JupyterLab shows the widget view; the saved notebook, whose widget view
    report.execute drops, shows the static explorer's HTML."""
    import nbformat
    from report.execute import WIDGET_VIEW, static_widgets
    data, task3, cache = explorer_setup
    live = HiddenUnitExplorer(data, task3, widths=(8, 16), depths=(1, 2), cache_dir=cache,
                              sweep=sweep)
    bundle, metadata = live._repr_mimebundle_()
    assert {WIDGET_VIEW, "text/html", "image/png", "text/plain"} == set(bundle)
    assert bundle["text/html"] == live.static.html == static_explorer(sweep, task3).html
    assert base64.b64decode(bundle["image/png"]) == png(live)
    assert metadata[PDF_FLAG] is True
    assert len(list((cache / "explorer").glob("plot-*.png"))) == 4   # kept for a warm rerun
    cell = nbformat.v4.new_code_cell("display(explorer)", outputs=[
        nbformat.v4.new_output("display_data", data=bundle, metadata=metadata)])
    nb = nbformat.v4.new_notebook(cells=[cell])
    static_widgets(nb)
    assert set(nb.cells[0].outputs[0].data) == {"text/html", "image/png", "text/plain"}


def test_a_viewer_without_a_kernel_shows_the_static_explorer(explorer_setup, sweep):
    """nbconvert's HTML of the saved output (nbviewer, the HTML export): the explorer's HTML with
    its script, not the PNG. (nbconvert's own sanitiser is no stand-in for GitHub's: it escapes
    <img> and <p> as text. What a script-stripping viewer keeps is tested above.)"""
    nbformat = pytest.importorskip("nbformat")
    nbconvert = pytest.importorskip("nbconvert")
    static = static_explorer(sweep, explorer_setup[1])
    data, metadata = static._repr_mimebundle_()
    cell = nbformat.v4.new_code_cell("display(explorer)", outputs=[
        nbformat.v4.new_output("display_data", data=data, metadata=metadata)])
    page, _ = nbconvert.HTMLExporter().from_notebook_node(nbformat.v4.new_notebook(cells=[cell]))
    assert SCRIPT.search(static.html).group(1) in page     # (its attributes get reordered)
    assert '<div class="a2-explorer" data-key=' in page and 'data-mime-type="text/html"' in page
    assert page.count('src="data:image/png;base64,') == 1   # the <img>, not the PNG output too
