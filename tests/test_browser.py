"""The notebook as a person uses it: JupyterLab in headless Chromium, driven by Playwright.

Run All in quick mode, then the hidden-unit explorer's sliders moved with the keyboard as a user
moves them: one plot under the sliders at all times, a cached width redrawn at once, an untrained
one announced, trained and drawn, the move back to a cached width while another network trains
(the status names both), slider labels whole. The tests run in order on one page.

Screenshots of every step, and on a failure a screenshot and the page's HTML, go to the test's
temporary folder (``browser-shots`` under pytest's basetemp; the failure report names it).

Needs Debian's chromium (``apt-get install chromium``), the pip package ``playwright`` (never
``playwright install``: it downloads a browser of its own and fails offline) and MNIST_DIR.
Without them the tests are skipped, saying what is missing; with ``A2_REQUIRE_BROWSER=1`` (CI)
they fail instead.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from browser_support import CHROMIUM, CHROMIUM_ARGS, jupyter_lab, missing, wait_until

if missing():
    if os.environ.get("A2_REQUIRE_BROWSER") == "1":
        raise RuntimeError(f"the browser tests are required here but need {missing()}")
    pytest.skip(f"the browser tests need {missing()}", allow_module_level=True)

from playwright.sync_api import Page, sync_playwright

MS = 1000                # Playwright counts milliseconds
RUN_ALL_SECONDS = 240    # quick mode runs in about 20 s on 2 cores; the margin is for a busy CI

# ================================================================================================
# Fixtures: the server, the page after Run All, screenshots on failure
# ================================================================================================

@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("browser-shots")


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    with jupyter_lab(tmp_path_factory.mktemp("lab")) as lab:
        yield lab


@pytest.fixture(scope="module")
def page(lab, shots):
    """The notebook copy open in Chromium once its kernel is idle; Run All is started here (the
    first test waits for it to finish)."""
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS,
                                    timeout=60 * MS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.set_default_timeout(30 * MS)
            page.set_default_navigation_timeout(60 * MS)
            page.goto(lab.notebook_url())
            page.wait_for_selector(".jp-Notebook .jp-CodeCell", timeout=90 * MS)
            page.wait_for_selector(".jp-StatusBar-TextItem[title^='Change kernel']:has-text('Idle')",
                                   timeout=90 * MS)        # the kernel started and answers
            menu(page, "Edit", "Clear Outputs of All Cells")   # so that Run All is seen to run
            page.wait_for_selector(".jp-CodeCell .jp-InputPrompt:text-is('[ ]:')")
            menu(page, "Run", "Run All Cells")
            yield page
        finally:
            browser.close()


@pytest.fixture(autouse=True)
def on_failure(request, page, shots, lab):
    """After a failed test: a screenshot, the page's HTML and the server's log in ``shots``."""
    failed = request.session.testsfailed
    yield
    if request.session.testsfailed > failed:
        name = request.node.name
        page.screenshot(path=str(shots / f"FAILED-{name}.png"), timeout=10 * MS)
        (shots / f"FAILED-{name}.html").write_text(page.content())
        (shots / "server.log").write_text(lab.log())
        print(f"screenshot, HTML and server log of the failure in {shots}")


def menu(page: Page, name: str, item: str) -> None:
    """Choose ``item`` in the menu bar's menu ``name``."""
    page.click(f"li.lm-MenuBar-item:has(.lm-MenuBar-itemLabel:text-is('{name}'))")
    page.click(f"li.lm-Menu-item:has(.lm-Menu-itemLabel:text-is('{item}'))")


def shot(page: Page, shots: Path, name: str) -> None:
    page.screenshot(path=str(shots / f"{name}.png"), timeout=10 * MS)


# ================================================================================================
# What a person sees: the explorer's part of the page, read in the browser
# ================================================================================================
# The explorer is the widget box holding the "hidden units per layer" slider; its output area
# is the cell output around it. Off-screen cells are not laid out, so it is scrolled into view.

FIND_EXPLORER = """() => [...document.querySelectorAll('.jupyter-widget-vbox, .widget-vbox')]
    .find(el => el.textContent.includes('hidden units per layer'))"""

STATE = """(find) => {
    const root = find();
    if (!root) return null;
    root.scrollIntoView({block: 'start'});
    const area = root.closest('.jp-OutputArea');
    const labels = [...root.querySelectorAll('label.widget-label')]
        .filter(l => l.textContent.trim());
    const imgs = [...root.querySelectorAll('img')];
    const bar = root.querySelector('.widget-hprogress');
    return {
        images: imgs.length,
        loaded: imgs.filter(i => i.complete && i.naturalWidth > 0).length,
        src: imgs.map(i => i.src).join(' '),
        area_images: area ? area.querySelectorAll('img').length : -1,
        area_text: area ? area.innerText : '',
        labels: labels.map(l => ({text: l.textContent.trim(), title: l.title,
                                   scroll: l.scrollWidth, client: l.clientWidth})),
        tracks: [...root.querySelectorAll('.noUi-target')].map(t => t.clientWidth),
        bar: bar ? getComputedStyle(bar).visibility : 'none',
        text: root.innerText.replace(/\\s+/g, ' '),
    };
}"""

WATCH = """(find) => {
    const root = find();
    const bar = root.querySelector('.widget-hprogress');
    window.__seen = [];
    const record = () => window.__seen.push({
        t: performance.now(),
        text: root.innerText.replace(/\\s+/g, ' '),
        images: root.querySelectorAll('img').length,
        area_images: root.closest('.jp-OutputArea').querySelectorAll('img').length,
        bar: getComputedStyle(bar).visibility});
    window.__observer && window.__observer.disconnect();
    window.__observer = new MutationObserver(record);
    window.__observer.observe(root.closest('.jp-OutputArea'),
        {subtree: true, childList: true, characterData: true, attributes: true});
    return performance.now();
}"""


def explorer(page: Page) -> dict | None:
    """The explorer as shown: its images (and those of its whole output area), slider labels
    and track widths, progress bar visibility, text."""
    return page.evaluate(f"() => ({STATE})({FIND_EXPLORER})")


def watch(page: Page) -> float:
    """Record every state the explorer's output passes through from now on, however brief (a
    quick-mode network trains in well under a second); returns the page's clock (ms)."""
    return page.evaluate(f"() => ({WATCH})({FIND_EXPLORER})")


def seen(page: Page) -> list[dict]:
    return page.evaluate("() => window.__seen")


def wait_for_text(page: Page, *texts: str, seconds: float = 10) -> dict:
    """The explorer's state once its text holds every one of ``texts``."""
    return wait_until(lambda: (s := explorer(page)) and all(t in s["text"] for t in texts) and s,
                      seconds, f"the explorer to say {texts}")


def press(page: Page, slider: str, key: str) -> None:
    """Move a slider one step as a person does with the keyboard: focus its handle, press
    ``key`` (ArrowLeft or ArrowRight). ``slider``: its description."""
    box = page.locator(".jupyter-widget-vbox .widget-slider, .widget-vbox .widget-slider").filter(
        has=page.locator(f"label.widget-label:text-is('{slider}')"))
    handle = box.locator(".noUi-handle")
    handle.focus()
    handle.press(key)


# ================================================================================================
# The tests, in the order a person goes
# ================================================================================================

def test_run_all_finishes_without_a_traceback(page, shots):
    def finished():
        prompts = page.eval_on_selector_all(".jp-CodeCell .jp-InputPrompt",
                                            "els => els.map(e => e.textContent.trim())")
        return prompts if all(p.strip("[]:").isdigit() for p in prompts) else None
    prompts = wait_until(finished, RUN_ALL_SECONDS, "Run All to finish", step=0.5)
    shot(page, shots, "1-after-run-all")
    assert [int(p.strip("[]:")) for p in prompts] == list(range(1, len(prompts) + 1)), \
        "not every cell ran, in order"
    errors = page.eval_on_selector_all(
        ".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']",
        "els => els.map(e => e.innerText).filter(t => /Traceback|Error/.test(t))")
    assert not errors, errors[0][:3000]
    broken = page.eval_on_selector_all(
        ".jp-OutputArea-output", "els => els.map(e => e.innerText)"
        ".filter(t => /Error displaying widget|model not found/.test(t))")
    assert not broken, broken


def test_explorer_shows_one_plot(page, shots):
    state = wait_for_text(page, "Drawn: [64, 10]", "from the cache", seconds=30)
    wait_until(lambda: explorer(page)["loaded"] == 1, 10, "the plot to load")
    shot(page, shots, "2-explorer")
    (shots / "explorer.html").write_text(page.content())
    state = explorer(page)
    assert state["images"] == 1 and state["area_images"] == 1, state
    assert "needs a live kernel" not in state["area_text"], "the static fallback shows, not the widget"
    assert "Training" not in state["text"] and state["bar"] == "hidden", state


def test_slider_labels_are_whole(page, shots):
    state = explorer(page)
    texts = [label["text"] for label in state["labels"]]
    assert texts == ["hidden units per layer", "hidden layers"], texts
    for label in state["labels"]:
        assert label["scroll"] <= label["client"], f"label cut off: {label}"
    assert all(width >= 120 for width in state["tracks"]), f"slider tracks too short: {state}"


def test_moving_to_a_cached_width_redraws_at_once_with_one_plot(page, shots):
    before = explorer(page)
    start = time.monotonic()
    press(page, "hidden units per layer", "ArrowLeft")     # 64 -> 32 units: in the quick sweep
    state = wait_until(lambda: (s := explorer(page)) and "Drawn: [32, 10]" in s["text"]
                       and s["src"] != before["src"] and s["loaded"] == 1 and s,
                       10, "the cached [32, 10]", step=0.02)
    took = time.monotonic() - start
    shot(page, shots, "3-cached-32")
    print(f"cached width redrawn in {took:.2f} s")
    assert "from the cache" in state["text"]
    assert state["images"] == 1 and state["area_images"] == 1, state
    assert took < 1.5, f"a cached width took {took:.2f} s to draw"


def test_moving_to_an_untrained_width_announces_trains_and_draws_one_new_plot(page, shots):
    """Quick mode's sweep trained 16, 32 and 64 units; 8 it did not."""
    press(page, "hidden units per layer", "ArrowLeft")      # 16: cached
    before = wait_for_text(page, "Drawn: [16, 10]")
    start = watch(page)
    press(page, "hidden units per layer", "ArrowLeft")      # 8: never trained in quick mode
    state = wait_for_text(page, "Drawn: [8, 10]", seconds=60)
    wait_until(lambda: "Training" not in explorer(page)["text"], 30, "training to end")
    shot(page, shots, "4-trained-8")
    states = seen(page)
    training = [s for s in states if "Training [8, 10]" in s["text"]]
    assert training, f"training was never announced: {states}"
    announced = training[0]["t"] - start
    print(f"{len(states)} states seen; training announced {announced:.0f} ms after the key")
    assert announced < 1000, f"training announced only {announced:.0f} ms after the key"
    assert all(s["images"] == 1 and s["area_images"] == 1 for s in states), \
        "more or fewer than one plot on the way"
    assert all(s["bar"] == "visible" for s in training), "no progress bar while training"
    assert any("epoch" in s["text"] for s in training), "no epoch progress was shown"
    # while it trains the old plot stays (until the new one replaces it), and says what it is
    assert "Drawn: [16, 10]" in training[0]["text"], training[0]
    assert all("Drawn: [16, 10]" in s["text"] or "Drawn: [8, 10]" in s["text"] for s in training)
    assert "trained just now" in state["text"] and state["src"] != before["src"]
    assert state["images"] == 1 and state["area_images"] == 1, state
    assert explorer(page)["bar"] == "hidden"


def test_back_to_a_cached_width_while_another_trains_says_which_is_which(page, shots):
    """Training slowed down (a cell added at the end, as a person could) so that the sliders
    can move back before it ends: the cached plot is drawn at once, and the status names it and
    the network still training; the finished network is not drawn over it."""
    slow_training_down(page, seconds_per_check=0.4)
    press(page, "hidden layers", "ArrowRight")               # [8, 8, 10]: untrained
    wait_for_text(page, "Training [8, 8, 10]", "epoch", seconds=10)
    watch(page)
    press(page, "hidden layers", "ArrowLeft")                # back to [8, 10], now cached
    state = wait_for_text(page, "Drawn: [8, 10]", "from the cache", seconds=5)
    shot(page, shots, "5-cached-while-training")
    assert "Training [8, 8, 10]" in state["text"] and "epoch" in state["text"], state["text"]
    assert state["bar"] == "visible" and state["images"] == 1 and state["area_images"] == 1
    wait_until(lambda: "Training" not in explorer(page)["text"], 60, "training to end")
    state = explorer(page)
    shot(page, shots, "6-after-training")
    assert "Drawn: [8, 10]" in state["text"], "a network the sliders left was drawn"
    assert all(s["images"] == 1 for s in seen(page))
    press(page, "hidden layers", "ArrowRight")               # [8, 8, 10]: cached now
    state = wait_for_text(page, "Drawn: [8, 8, 10]", "from the cache", seconds=5)
    assert state["images"] == 1 and state["area_images"] == 1, state


# ================================================================================================
# A cell added at the end of the notebook copy, typed and run as a person does
# ================================================================================================

SLOW_TRAINING = """\
import time
import report.explorer as explorer_module
_real_run = explorer_module.run_experiment
def _slow_run(config, data, *, progress=None, **kwargs):
    def slowly(p):
        progress(p)
        time.sleep({seconds})
    return _real_run(config, data, progress=slowly, **kwargs)
explorer_module.run_experiment = _slow_run
print("explorer training slowed down")"""


def slow_training_down(page: Page, seconds_per_check: float) -> None:
    """Add a cell below the last one that makes the explorer's training pause at every check,
    and run it (Shift+Enter)."""
    page.locator(".jp-Notebook .jp-Cell").last.locator(".jp-InputPrompt").click()
    page.keyboard.press("Escape")
    page.keyboard.press("b")                                 # a new cell below, in command mode
    page.keyboard.press("Enter")                             # edit it
    page.keyboard.insert_text(SLOW_TRAINING.replace("{seconds}", str(seconds_per_check)))
    page.keyboard.press("Shift+Enter")
    page.wait_for_selector(".jp-OutputArea-output:has-text('explorer training slowed down')",
                           timeout=30 * MS)
