"""The hidden-unit explorer where a reader meets it without a kernel, in headless Chromium driven
by Playwright (Debian's chromium; every request that leaves the machine is aborted).

* ``assignment2.html`` (`make html`'s export) of a quick-mode run of the notebook whose explorer
  cell is given the sweep (`browser_support.quick_static_report`): both sliders go through every
  position, one key press at a time; at each, the plot, its caption and the explorer's
  ``data-network`` name the sliders' network; no console error and no request leaving the file
  (the page asks for nothing: its formulas are MathML); the rest of the report renders (every
  task's heading, every image, no code).
* The same notebook in JupyterLab with no kernel (the server offers none): trusted with
  `jupyter trust`, the sliders work in the saved output; untrusted, the Task 3 network's plot and
  the hint, no slider.
* Its PDF: the sweep figure, no explorer.
* The committed notebook: under 3 MB, and the same checks of its HTML export and in JupyterLab,
  skipped (saying why) while its explorer cell is not yet given the sweep or its figures carry no
  alt text (the report must be rerun: `make report`).

The quick run is shared with tests/test_html_export.py (`browser_support.shared_quick_report`).

Screenshots go to pytest's temporary folder (``static-explorer-shots``; the failure report names
it). Needs MNIST_DIR for the quick run, Debian's chromium and the pip package playwright for the
browser (never ``playwright install``); without them the tests skip, saying what is missing, and
with ``A2_REQUIRE_BROWSER=1`` (CI) the browser tests fail instead.
"""

from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess
import sys
import urllib.request
from pathlib import Path

import nbformat
import pytest
from conftest import load_file
from browser_support import (ROOT, OfflinePage, chromium, export_html, jupyter_lab, require_browser,
                             shared_quick_report, undescribed_figures, wait_until)

MS = 1000                 # Playwright counts milliseconds
NOTEBOOK = ROOT / "assignment2.ipynb"
MAX_NOTEBOOK_BYTES = 3_000_000
TASKS = ["1a", "1b", "2a", "2b", "2c", "2d", "3a", "3b", "3c", "4a", "4b", "4c", "4d", "4e"]


def _load(name: str, path: Path):
    """Import a module of export/ by file path (export/ is not a package)."""
    return load_file(path, name)


check_html = _load("check_html", ROOT / "export" / "check_html.py")


# ================================================================================================
# The notebooks: a quick run with the static explorer, and the committed one
# ================================================================================================

def explorer_html(notebook: Path) -> str | None:
    """The static explorer's HTML in ``notebook``'s saved outputs, or None."""
    nb = nbformat.read(notebook, as_version=4)
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            html = output.get("data", {}).get("text/html", "")
            if 'class="a2-explorer"' in html:
                return html
    return None


def explorer_grid(notebook: Path) -> dict:
    """What the saved static explorer offers (from its script's data, not from the page):
    widths, depths, start [depth, width], and each position's network and PNG."""
    html = explorer_html(notebook)
    assert html, f"{notebook} has no static explorer"
    return json.loads(check_html.EXPLORER_DATA.search(html).group(1))


def network(depth: int, width: int) -> str:
    return str([width] * depth + [10])


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("static-explorer-shots")


@pytest.fixture(scope="module")
def quick_notebook(tmp_path_factory) -> Path:
    return shared_quick_report(tmp_path_factory)


@pytest.fixture(scope="module", params=["quick", "committed"])
def notebook(request, tmp_path_factory) -> Path:
    """The quick run's notebook, or (a copy of) the committed one once it has the explorer."""
    if request.param == "quick":
        return request.getfixturevalue("quick_notebook")
    assert explorer_html(NOTEBOOK) is not None, (
        "the committed assignment2.ipynb has no static explorer: its explorer cell must pass "
        "sweep=sweep_runs to HiddenUnitExplorer and the report be rerun (make report)")
    assert not undescribed_figures(NOTEBOOK), (
        f"{undescribed_figures(NOTEBOOK)} figures of the committed assignment2.ipynb carry no alt "
        "text in their saved outputs: rerun the report (make report) with "
        "report.plots.show_figure(..., alt=...)")
    copy = tmp_path_factory.mktemp("committed") / "assignment2.ipynb"
    shutil.copy(NOTEBOOK, copy)
    return copy


@pytest.fixture(scope="module")
def html_file(notebook) -> Path:
    """``notebook`` exported as `make html` does."""
    return export_html(notebook)


@pytest.fixture(scope="module")
def quick_html(quick_notebook) -> Path:
    return export_html(quick_notebook)


# ================================================================================================
# The browser, offline
# ================================================================================================

@pytest.fixture(scope="module")
def browser():
    require_browser()
    with chromium() as browser:
        yield browser


def offline_page(browser, *allowed: str, **size) -> OfflinePage:
    return OfflinePage(browser, allowed, **size)


# ================================================================================================
# The explorer as shown, and its sliders moved as a person moves them
# ================================================================================================

SHOWN = """(root) => {
    const img = root.querySelector('img.a2-explorer-plot');
    const outputs = [...root.querySelectorAll('output')].map(o => o.textContent);
    const hint = root.querySelector('.a2-explorer-hint');
    const box = img.getBoundingClientRect();
    return {
        network: root.getAttribute('data-network'),
        caption: root.querySelector('.a2-explorer-caption').textContent,
        alt: img.alt, src: img.src.length + ':' + img.src.slice(-120), loaded: img.complete && img.naturalWidth > 0,
        image_width: box.width, image_height: box.height,
        outputs: outputs,
        sliders: root.querySelectorAll('input[type=range]').length,
        visible_sliders: [...root.querySelectorAll('input[type=range]')]
            .filter(s => s.offsetWidth > 0 && getComputedStyle(s).visibility !== 'hidden').length,
        hint: hint ? hint.innerText : null,
        inputs_in_output: root.closest('.jp-OutputArea-output, .jp-RenderedHTMLCommon')
            .querySelectorAll('input').length,
    };
}"""


def shown(root) -> dict:
    """The explorer ``root`` (a Playwright locator of div.a2-explorer) as a person sees it."""
    return root.evaluate(SHOWN)


def walk_sliders(page, root, grid: dict, shots: Path, name: str) -> list[str]:
    """Move the two sliders through every position of ``grid`` with the keyboard, one step at a
    time (snaking through the widths), checking at each that the plot, its caption, its alt text,
    the sliders' values and ``data-network`` all name the sliders' network, and that the image
    loaded and changed. Returns the networks seen, in order."""
    widths, depths = grid["widths"], grid["depths"]
    units, layers = root.locator("input[data-role=units]"), root.locator("input[data-role=layers]")
    units.press("Home")
    layers.press("Home")
    seen, sources = [], set()
    for d_index, depth in enumerate(depths):
        if d_index:
            layers.press("ArrowRight")
        order = list(enumerate(widths))
        if d_index % 2:
            order.reverse()
        for step, (w_index, width) in enumerate(order):
            if step:
                units.press("ArrowLeft" if d_index % 2 else "ArrowRight")
            expected = network(depth, width)
            state = wait_until(lambda: (s := shown(root))["network"] == expected and s["loaded"]
                               and s, 5, f"the explorer to show {expected}", step=0.02)
            assert state["caption"].startswith(f"{expected}: "), state
            assert grid["plots"][f"{depth},{width}"]["caption"] == state["caption"]
            assert state["alt"] == f"Validation loss and accuracy of {expected} against the Task 3 network"
            assert state["outputs"] == [str(width), str(depth)], state
            assert state["src"] not in sources, f"{expected} shows a plot already shown"
            assert state["image_width"] > 300 and state["image_height"] > 100, state
            sources.add(state["src"])
            seen.append(expected)
            if len(seen) in (1, 2) or len(seen) == len(widths) * len(depths):
                page.screenshot(path=str(shots / f"{name}-{len(seen)}-{expected}.png"))
    assert sorted(seen) == sorted(network(d, w) for d in depths for w in widths)
    return seen


# ================================================================================================
# The committed notebook's size
# ================================================================================================

def test_committed_notebook_stays_under_3_mb():
    size = NOTEBOOK.stat().st_size
    html = explorer_html(NOTEBOOK)
    print(f"assignment2.ipynb: {size / 1e6:.2f} MB, of which the static explorer's HTML "
          f"{len(html or '') / 1e6:.2f} MB")
    assert size < MAX_NOTEBOOK_BYTES, f"the notebook is {size / 1e6:.2f} MB (limit 3 MB)"


def test_quick_run_saves_the_static_explorer_without_widget_view(quick_notebook):
    nb = nbformat.read(quick_notebook, as_version=4)
    outputs = [o for c in nb.cells for o in c.get("outputs", [])
               if 'class="a2-explorer"' in o.get("data", {}).get("text/html", "")]
    assert len(outputs) == 1
    assert set(outputs[0].data) == {"text/html", "image/png", "text/plain"}
    assert outputs[0].metadata["remove_output_in_pdf"] is True
    grid = explorer_grid(quick_notebook)
    assert grid["start"] == [1, 64] and len(grid["plots"]) == len(grid["widths"]) * len(grid["depths"])
    sizes = [len(base64.b64decode(p["png"])) for p in grid["plots"].values() if p["png"]]
    print(f"static explorer: {len(grid['plots'])} plots, PNGs {min(sizes)}-{max(sizes)} bytes, "
          f"its HTML {len(outputs[0].data['text/html'])} bytes")


# ================================================================================================
# assignment2.html in Chromium, offline
# ================================================================================================

def test_html_export_passes_its_checker(html_file):
    headings = [arg for t in TASKS for arg in ("--require-heading", f"Task {t}")]
    result = subprocess.run([sys.executable, str(ROOT / "export" / "check_html.py"),
                             str(html_file), "--require-explorer", *headings],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    print(result.stdout)


def test_html_sliders_go_through_every_network_offline(browser, notebook, html_file, shots):
    grid = explorer_grid(notebook)
    page = offline_page(browser, "file://")
    try:
        page.page.goto(html_file.as_uri())
        root = page.page.locator("div.a2-explorer")
        assert root.count() == 1
        root.scroll_into_view_if_needed()
        first = shown(root)
        start = network(*grid["start"])
        assert first["network"] == start and first["caption"].startswith(f"{start}: ")
        assert first["sliders"] == first["visible_sliders"] == 2 and first["hint"] is None, first
        seen = walk_sliders(page.page, root, grid, shots, f"html-{notebook.parent.name}")
        print(f"{len(seen)} networks shown in turn: {', '.join(seen)}")
        assert not page.unexpected_errors(), page.unexpected_errors()
        assert page.aborted == [], page.aborted
    finally:
        page.close()


def test_html_report_renders_offline(browser, notebook, html_file, shots):
    """Every task's heading is there and visible, every image loads, no code shows, no script
    fails; nothing was asked of the network."""
    page = offline_page(browser, "file://")
    try:
        page.page.goto(html_file.as_uri())
        page.page.wait_for_load_state("load")
        state = page.page.evaluate("""() => ({
            headings: [...document.querySelectorAll('h1, h2, h3, h4')]
                .filter(h => h.offsetHeight > 0).map(h => h.innerText.replace('¶', '').trim()),
            images: document.images.length,
            broken: [...document.images].filter(i => !(i.complete && i.naturalWidth > 0)).length,
            code: document.querySelectorAll('.jp-InputArea-editor, .jp-CodeMirrorEditor').length,
            outputs: document.querySelectorAll('.jp-OutputArea-output').length,
            width: document.documentElement.scrollWidth,
        })""")
        page.page.screenshot(path=str(shots / f"html-{notebook.parent.name}-top.png"))
        for task in TASKS:
            assert any(h.startswith(f"Task {task}") for h in state["headings"]), (task, state)
        written = check_html.read_page(html_file.read_text(encoding="utf-8"))
        assert state["images"] == len(written.images) and state["broken"] == 0, state
        assert state["code"] == 0 and state["outputs"] >= 10, state
        assert state["width"] <= 1280, f"the page scrolls sideways: {state}"
        assert not page.unexpected_errors(), page.unexpected_errors()
        assert page.aborted == [], page.aborted
    finally:
        page.close()


def test_html_explorer_fits_a_phone(browser, quick_html, shots):
    """On a 390-pixel-wide screen the plot shrinks to fit and the sliders stay usable."""
    page = offline_page(browser, "file://", width=390, height=844)
    try:
        page.page.goto(quick_html.as_uri())
        root = page.page.locator("div.a2-explorer")
        root.scroll_into_view_if_needed()
        state = shown(root)
        page.page.screenshot(path=str(shots / "html-phone.png"))
        assert state["image_width"] <= 390 and state["loaded"], state
        root.locator("input[data-role=layers]").press("ArrowRight")
        assert shown(root)["network"] == network(2, 64)
    finally:
        page.close()


# ================================================================================================
# JupyterLab, no kernel: trusted, the sliders work; untrusted, the plot and the hint
# ================================================================================================

def open_without_kernel(browser, lab) -> OfflinePage:
    """The notebook copy open in JupyterLab, the "Select Kernel" dialog answered "No Kernel" (the
    server offers none), its explorer's output laid out."""
    page = offline_page(browser, lab.base)
    page.page.goto(lab.notebook_url())
    page.page.wait_for_selector(".jp-Notebook .jp-CodeCell", timeout=90 * MS)
    page.page.wait_for_selector(".jp-Dialog button:has-text('No Kernel')", timeout=30 * MS)
    page.page.click(".jp-Dialog button:has-text('No Kernel')")
    page.page.wait_for_selector(".jp-Dialog", state="detached")
    root = page.page.locator("div.a2-explorer")
    wait_until(lambda: root.count() == 1, 30, "the explorer's output to render")
    root.scroll_into_view_if_needed()
    return page


def kernels(lab) -> list:
    with urllib.request.urlopen(lab.url("/api/kernels"), timeout=10) as reply:
        return json.loads(reply.read())


def test_lab_trusted_without_kernel_sliders_work(browser, notebook, shots, tmp_path):
    grid = explorer_grid(notebook)
    with jupyter_lab(tmp_path, notebook=notebook, trusted=True, kernels=False) as lab:
        page = open_without_kernel(browser, lab)
        try:
            root = page.page.locator("div.a2-explorer")
            state = wait_until(lambda: (s := shown(root))["sliders"] == 2 and s, 10,
                               "the sliders (made by the output's script)")
            assert state["visible_sliders"] == 2 and state["hint"] is None, state
            walk_sliders(page.page, root, grid, shots, f"lab-trusted-{notebook.parent.name}")
            assert kernels(lab) == [], "a kernel was started"
            assert not page.unexpected_errors(), page.unexpected_errors()
        finally:
            page.close()


def test_lab_untrusted_shows_the_plot_and_the_hint_no_slider(browser, notebook, shots, tmp_path):
    grid = explorer_grid(notebook)
    start = network(*grid["start"])
    with jupyter_lab(tmp_path, notebook=notebook, trusted=False, kernels=False) as lab:
        page = open_without_kernel(browser, lab)
        try:
            root = page.page.locator("div.a2-explorer")
            hint = root.locator(".a2-explorer-hint")
            hint.scroll_into_view_if_needed()
            state = wait_until(lambda: (s := shown(root))["loaded"] and s["hint"] and s, 10,
                               "the plot and the hint to show")
            page.page.screenshot(path=str(shots / f"lab-untrusted-{notebook.parent.name}.png"))
            assert state["sliders"] == 0 and state["inputs_in_output"] == 0, state
            assert state["caption"].startswith(f"{start}: ") and state["image_width"] > 300, state
            assert state["hint"] and "assignment2.html" in state["hint"], state
            assert hint.is_visible() and root.locator("img.a2-explorer-plot").is_visible()
            assert kernels(lab) == []
        finally:
            page.close()


# ================================================================================================
# The PDF: the sweep figure, not the explorer
# ================================================================================================

def png_size(png: bytes) -> tuple[int, int]:
    return int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")


def test_pdf_shows_the_sweep_figure_not_the_explorer(quick_notebook):
    if not (shutil.which("xelatex") and shutil.which("pandoc") and shutil.which("pdfimages")):
        pytest.skip("the PDF needs xelatex, pandoc and poppler-utils (see export/README.md)")
    result = subprocess.run([sys.executable, "-m", "jupyter", "nbconvert", "--config",
                             str(ROOT / "export" / "nbconvert_config.py"), "--to", "pdf",
                             str(quick_notebook)], cwd=ROOT, capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    pdf = quick_notebook.with_suffix(".pdf")
    pages = subprocess.run(["pdftotext", "-enc", "UTF-8", str(pdf), "-"], check=True,
                           capture_output=True, text=True).stdout.split("\f")
    assert not any("Hidden-unit explorer" in p or "Sliders over all" in p for p in pages)
    sweep_pages = [n for n, p in enumerate(pages, 1) if "hidden units per layer" in p
                   and "2 hidden layers" in p and "Task 3 network" in p]
    assert sweep_pages, "the sweep figure (accuracy and parameters against width) is missing"
    html = explorer_html(quick_notebook)
    start = base64.b64decode(re.search(r'src="data:image/png;base64,([^"]+)"', html).group(1))
    width, height = png_size(start)
    images = subprocess.run(["pdfimages", "-list", str(pdf)], check=True, capture_output=True,
                            text=True).stdout.splitlines()[2:]
    sizes = {(int(line.split()[3]), int(line.split()[4])) for line in images}
    assert (width, height) not in sizes, "the explorer's plot is in the PDF"
