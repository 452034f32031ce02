"""Tests of the PDF and HTML exports in export/ (nbconvert + xelatex + the report templates).

The end-to-end tests build a small synthetic report notebook, export it with
``jupyter nbconvert --config export/nbconvert_config.py --to pdf --execute``
exactly as documented in export/README.md, and read the PDF back with
poppler (pdftotext, pdfinfo, pdffonts, pdfimages) and export/check_pdf.py.
They are skipped only when xelatex or pandoc is missing.  The same notebook
exported ``--to html`` is read back with export/check_html.py (no TeX
needed).  The preprocessor and checker unit tests need neither.
"""

import copy
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from conftest import load_file
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output, new_raw_cell

ROOT = Path(__file__).resolve().parents[1]
EXPORT = ROOT / "export"
CONFIG = EXPORT / "nbconvert_config.py"
CHECKER = EXPORT / "check_pdf.py"

TITLE = "Assignment 2: Optimisation"
PROSE = (
    "The step size α, the tolerance δ and the learning rate η control the "
    "update; Σ sums the partial derivatives ∂L/∂w, so w → w − η∂L/∂w, "
    "the error is ≈ 0.5 ± 0.1 and the grid is 3 × 4."
)


def _load(name: str, path: Path):
    """Import a module of export/ by file path (export/ is not a package)."""
    return load_file(path, name)


check_pdf = _load("check_pdf", CHECKER)
check_html = _load("check_html", EXPORT / "check_html.py")
pdf_preprocessors = _load("pdf_preprocessors", EXPORT / "pdf_preprocessors.py")


def build_notebook():
    """Return the synthetic report notebook (unexecuted; the export runs it)."""
    cells = [
        new_markdown_cell("# Task 1a: Gradient descent\n\n" + PROSE),
        new_markdown_cell(
            "Inline math $\\alpha_t = \\eta / \\sqrt{t}$ and display math:\n\n"
            "$$\n\\begin{aligned}\nf(x) &= x^2 + \\delta \\\\\n"
            "f'(x) &= 2x\n\\end{aligned}\n$$\n\n"
            "A numbered environment:\n\\begin{align}\ng(x) &= \\sin x \\\\\n"
            "g'(x) &= \\cos x\n\\end{align}\n\n"
            "The form pandoc breaks, repaired on export:\n\n"
            "$$\\begin{align} h(x) &= e^{x} \\end{align}$$"
        ),
        new_code_cell(
            "import matplotlib.pyplot as plt\n"
            "import ipywidgets as widgets\n"
            "from IPython.display import Markdown, display\n"
            "from matplotlib_inline.backend_inline import set_matplotlib_formats\n"
            "set_matplotlib_formats('png', 'pdf')\n"
            "fig, ax = plt.subplots(figsize=(6, 3.5))\n"
            "ax.plot([0, 1, 2, 3], [3, 1, 0.5, 0.2], marker='o', label='loss')\n"
            "ax.set_xlabel('iterationcount'); ax.legend()\n"
            "display(fig, metadata={'image/png': {'alt': 'Loss falling over three iterations'}})\n"
            "plt.close(fig)"
        ),
        new_code_cell(
            "display(Markdown('| method | α | error |\\n|---|---:|---:|\\n'\n"
            "                 '| GD | 0.1 | 1.2e-3 |\\n| SGD | 0.01 | 4.5e-3 |'))"
        ),
        new_code_cell("print('final loss = 0.0123')"),
        # untagged widgets: dropped by CleanOutputsPreprocessor
        new_code_cell("widgets.interact(lambda a=1.0: a * 2, a=(0.0, 2.0))"),
        new_code_cell("widgets.HBox([widgets.Button(description='go')])"),
        new_code_cell("import warnings\nwarnings.warn('WARNING_MARKER')"),
        new_code_cell("lines = plt.plot([1, 2])\n"  # [<matplotlib.lines.Line2D ...>] + a figure
                      "display(plt.gcf(), metadata={'image/png': {'alt': 'A rising line'}})\n"
                      "plt.close()\nlines"),
        new_code_cell(
            "widgets.IntProgress(value=3, max=10)",
            metadata={"tags": ["remove_output_in_pdf"]},
        ),
        new_code_cell(
            "hidden_value = 42\nprint('REMOVED_CELL_MARKER')",
            metadata={"tags": ["remove_cell_in_pdf"]},
        ),
        # the hidden-unit explorer's kind of output: HTML with sliders, a PNG, a text; its
        # metadata says it has no place in the PDF (the HTML keeps it)
        new_code_cell(
            "import base64, io\n"
            "from PIL import Image\n"
            "png = io.BytesIO()\n"
            "Image.new('RGB', (60, 30), 'red').save(png, 'PNG')\n"
            "display({'text/html': '<p>EXPLORER_HTML_MARKER</p>',\n"
            "         'image/png': base64.b64encode(png.getvalue()).decode(),\n"
            "         'text/plain': 'Hidden-unit explorer: EXPLORER_TEXT_MARKER'},\n"
            "        raw=True, metadata={'remove_output_in_pdf': True})"
        ),
        new_raw_cell("\\newpage", metadata={"raw_mimetype": "text/latex"}),
        new_markdown_cell("## Task 1b: Results\n\nThe sum Σ of all η is finite."),
        # uses the removed cell's variable: tag removal must come after execution
        new_code_cell("f'the hidden value is {hidden_value}'"),
    ]
    return new_notebook(
        cells=cells,
        metadata={
            "title": TITLE,
            "authors": [{"name": "Ada Lovelace"}, {"name": "Alan Turing"}],
            "course": "Numerical Methods (CS 101)",
            "date": "1 March 2025",
            "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
        },
    )


def _poppler(*command):
    """Run a poppler tool; return stdout."""
    return subprocess.run(command, check=True, capture_output=True, text=True).stdout


@pytest.fixture(scope="module")
def pdf(tmp_path_factory):
    """Export the synthetic notebook with the documented command; return the PDF path."""
    missing = [tool for tool in ("xelatex", "pandoc") if not shutil.which(tool)]
    if missing:
        pytest.skip(
            f"PDF export needs {' and '.join(missing)}: apt-get install texlive-xetex "
            "texlive-fonts-recommended texlive-plain-generic pandoc fonts-dejavu poppler-utils"
        )
    return export_synthetic(tmp_path_factory, "pdf")


@pytest.fixture(scope="module")
def html_page(tmp_path_factory):
    """The synthetic notebook exported --to html with the documented config; its path."""
    return export_synthetic(tmp_path_factory, "html")


def export_synthetic(tmp_path_factory, to: str) -> Path:
    """Execute and export the synthetic notebook ``--to`` pdf or html with the documented config;
    the exported file's path."""
    workdir = tmp_path_factory.mktemp(f"export-{to}")
    nbformat.write(build_notebook(), workdir / "report.ipynb")
    result = subprocess.run(
        [sys.executable, "-m", "jupyter", "nbconvert", "--config", str(CONFIG),
         "--to", to, "--execute", str(workdir / "report.ipynb")],
        cwd=ROOT, capture_output=True, text=True, timeout=180,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return workdir / f"report.{to}"


@pytest.fixture(scope="module")
def text(pdf):
    """The PDF's text as pdftotext extracts it."""
    return _poppler("pdftotext", "-enc", "UTF-8", str(pdf), "-")


def test_check_pdf_passes(pdf):
    result = subprocess.run(
        [sys.executable, str(CHECKER), str(pdf),
         "--require-heading", "Task 1a", "--require-heading", "Task 1b: Results"],
        capture_output=True, text=True,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("check_pdf: OK")
    assert "2/2 required headings found" in result.stdout
    assert "Task 1a: Gradient descent | Task 1b: Results" in result.stdout


def test_check_pdf_fails_on_missing_heading_and_characters(pdf):
    result = subprocess.run(
        [sys.executable, str(CHECKER), str(pdf), "--require-heading", "Task 7", "--chars", "ω"],
        capture_output=True, text=True,
    )
    assert result.returncode == 1
    assert "required heading 'Task 7' not found" in result.stderr
    assert "missing from the PDF text" in result.stderr and "ω" in result.stderr


def test_title_block_from_metadata(pdf, text):
    assert re.search(r"^Title:\s+" + re.escape(TITLE), _poppler("pdfinfo", str(pdf)), re.M)
    head = text[: text.index("Task 1a")]
    for expected in (TITLE, "Ada Lovelace, Alan Turing", "Numerical Methods (CS 101)", "1 March 2025"):
        assert expected in head


def test_unicode_prose_survives_with_dejavu_fonts(pdf, text):
    for char in "αδηΣ∂→≈±×−":
        assert char in text, char
    fonts = _poppler("pdffonts", str(pdf))
    assert "DejaVuSerif" in fonts and "DejaVuMath" in fonts.replace("-", "")


def test_code_hidden_outputs_kept(text):
    for hidden in ("import matplotlib", "set_matplotlib_formats", "print(", "In [", "Out["):
        assert hidden not in text
    assert "final loss = 0.0123" in text
    assert "the hidden value is 42" in text


def test_tags_widgets_and_noise_removed(text):
    for leaked in ("interactive(", "HBox(", "IntProgress(", "Output(", "<function",
                   "Line2D", "REMOVED_CELL_MARKER", "WARNING_MARKER"):
        assert leaked not in text, leaked


def test_output_flagged_remove_output_in_pdf_is_removed(pdf, text):
    """The explorer's kind of output: neither its text nor its PNG reaches the PDF (the figures
    are vector, so the PDF holds no raster image at all)."""
    assert "EXPLORER" not in text and "Hidden-unit explorer" not in text
    images = _poppler("pdfimages", "-list", str(pdf)).splitlines()[2:]
    assert images == [], images


def test_math_rendered(text):
    flat = check_pdf._normalize(text)  # math italic 𝑓 -> f
    assert "$" not in text and "\\begin" not in text and "\\alpha" not in text
    assert "f(x) = x2 + δ" in flat  # aligned
    assert "(1)" in flat and "(2)" in flat  # numbered align
    assert "h(x) = ex" in flat  # repaired $$\begin{align}$$


def test_markdown_table_output_is_a_latex_table(pdf, text):
    assert "|---" not in text and "| GD" not in text
    layout = _poppler("pdftotext", "-layout", str(pdf), "-")
    assert re.search(r"method +α +error\s*\n\s*GD +0\.1 +1\.2e-3\s*\n\s*SGD +0\.01 +4\.5e-3", layout)


def test_figures_vector_and_within_margins(pdf, text):
    # the PDF (vector) version of the figure was used: its label is real text
    assert "iterationcount" in text
    layout = _poppler("pdftotext", "-bbox", str(pdf), "-")
    width = float(re.search(r'<page width="([\d.]+)"', layout).group(1))
    margin = 2.4 / 2.54 * 72  # 2.5 cm margins, less a little slack
    for x_min, x_max in re.findall(r'<word xMin="([\d.]+)" yMin="[\d.]+" xMax="([\d.]+)"', layout):
        assert margin <= float(x_min) and float(x_max) <= width - margin


def test_raw_latex_cell_breaks_page(pdf, text):
    page = next(page for page in text.split("\f") if "Task 1b" in page)
    assert page.lstrip().startswith("Task 1b: Results")


# ------------------------------------------------------------------- HTML --

def test_html_export_is_self_contained_with_code_hidden(html_page):
    result = subprocess.run(
        [sys.executable, str(EXPORT / "check_html.py"), str(html_page),
         "--require-heading", "Task 1a", "--require-heading", "Task 1b: Results"],
        capture_output=True, text=True,
    )
    assert result.returncode == 0, result.stderr
    assert "2/2 required headings found" in result.stdout
    # nothing from the network: no require.js, widget manager, mermaid or MathJax
    assert result.stdout.rstrip().endswith("scripts from the network: none"), result.stdout
    html = html_page.read_text()
    for fetched in ("require.min.js", "html-manager", "mermaid.esm", "unpkg.com", "mathjax"):
        assert fetched not in html, fetched


def test_html_export_keeps_results_and_html_drops_widgets_and_noise(html_page):
    page = check_html.read_page(html_page.read_text())
    for shown in ("final loss = 0.0123", "the hidden value is 42", "EXPLORER_HTML_MARKER",
                  "REMOVED_CELL_MARKER"):      # (the PDF's tags do not apply to the HTML)
        assert shown in page.text, shown
    for gone in ("import matplotlib", "set_matplotlib_formats", "In [", "Out[", "interactive(",
                 "HBox(", "IntProgress(", "<function", "Line2D", "WARNING_MARKER",
                 "EXPLORER_TEXT_MARKER"):
        assert gone not in page.text, gone
    assert len(page.images) == 2 and all(src.startswith("data:image/") for src in page.images)
    assert [h for h in page.headings if h.startswith("Task")] == [
        "Task 1a: Gradient descent", "Task 1b: Results"]


def test_check_html_fails_on_what_an_offline_reader_would_miss():
    page = check_html.read_page(
        '<html><head><script src="https://cdnjs.cloudflare.com/ajax/libs/require.js/2.1.10/'
        'require.min.js"></script><script src="https://cdnjs.cloudflare.com/ajax/libs/mathjax/'
        '2.7.7/latest.js"></script><link rel="stylesheet" href="https://example.org/a.css">'
        '<style>@font-face { src: url(https://fonts.example.org/x.woff) }</style></head><body>'
        '<h2 id="t">Task 1a: Setup<a class="anchor-link" href="#t">¶</a></h2>'
        '<div class="jp-InputArea-editor">x = 1</div><img src="figures/a.png">'
        '<p>IntProgress(value=3)</p></body></html>')
    problems, found = check_html.find_problems(page, ["Task 1a", "Task 2"], require_explorer=True)
    assert found == ["Task 1a: Setup"]
    for expected in ("script fetched from the network: https://cdnjs.cloudflare.com/ajax/libs/"
                     "require.js", "stylesheet fetched from the network: https://example.org",
                     "style fetches https://fonts.example.org", "image not inline: figures/a.png",
                     "code shows", "widget text 'IntProgress('", "'Task 2' not found",
                     "no static hidden-unit explorer",
                     "script fetched from the network: https://cdnjs.cloudflare.com/ajax/libs/"
                     "mathjax"):
        assert any(expected in p for p in problems), (expected, problems)
    assert len(problems) == 9, problems


def test_check_html_reads_a_static_explorer():
    def explorer(positions, plots):
        data = json.dumps({"widths": [32, 64], "depths": [1], "start": [1, 64], "plots": plots})
        return (f'<div class="a2-explorer" data-network="[64, 10]" data-positions="{positions}">'
                f'<img class="a2-explorer-plot" src="data:image/png;base64,AAAA"><p>caption</p>'
                f'<script>\n(function () {{\n  var data = {data};\n}})();\n</script></div>')
    plots = {"1,32": {"network": "[32, 10]", "png": "AAAA"}, "1,64": {"network": "[64, 10]"}}
    good = check_html.read_page(explorer(2, plots))
    assert check_html.find_problems(good, [], require_explorer=True) == ([], [])
    assert good.explorers[0].network == "[64, 10]" and good.explorers[0].positions == 2
    short = check_html.read_page(explorer(3, plots))
    assert check_html.find_problems(short, [], True)[0] == [
        "static explorer 1 ([64, 10]): 2 plots for 3 positions (grid of 2)"]
    unplotted = check_html.read_page(explorer(2, {**plots, "1,32": {"network": "[32, 10]"}}))
    assert check_html.find_problems(unplotted, [], True)[0] == [
        "static explorer 1 ([64, 10]): no plot for positions ['1,32']"]


# ------------------------------------------------------------------ units --

def test_clean_outputs_preprocessor():
    widget = {"text/plain": "interactive(children=(FloatSlider(value=1.0),))",
              "application/vnd.jupyter.widget-view+json": {"model_id": "x"}}
    outputs = [
        new_output("display_data", data=widget),
        new_output("execute_result", data={"text/plain": "HBox(children=(Button(),))"}),
        new_output("execute_result", data={"text/plain": "[<matplotlib.lines.Line2D at 0x7f>]"}),
        new_output("display_data", data={"text/plain": "<IPython.core.display.HTML object>",
                                         "text/html": "<b>x</b>"}),
        new_output("stream", name="stderr", text="UserWarning"),
        new_output("display_data", data={"text/plain": "<Figure size 640x480 with 1 Axes>",
                                          "image/png": "iVBOR"}),
        new_output("execute_result", data={"text/plain": "array([1, 2])"}),
        new_output("stream", name="stdout", text="loss 0.1"),
    ]
    cell = new_code_cell("x", outputs=outputs)
    cell, _ = pdf_preprocessors.CleanOutputsPreprocessor().preprocess_cell(cell, {}, 0)
    kept = [output.get("text") or output.data.get("image/png") or output.data["text/plain"]
            for output in cell.outputs]
    assert kept == ["iVBOR", "array([1, 2])", "loss 0.1"]


def test_outputs_flagged_for_removal_in_metadata():
    explorer = {"text/html": "<div>sliders</div>", "image/png": "iVBOR",
                "text/plain": "Hidden-unit explorer: [64, 10]"}
    html_only = {"text/html": "<b>x</b>", "text/plain": "<IPython.core.display.HTML object>"}
    outputs = [
        new_output("display_data", data=explorer, metadata={"remove_output_in_pdf": True}),
        new_output("display_data", data={"text/plain": "kept"}),
        new_output("display_data", data=html_only),
        new_output("display_data", data={"image/png": "gone"},
                   metadata={"remove_output_in_html": True}),
        new_output("display_data", data={"application/vnd.jupyter.widget-view+json": {},
                                         "text/plain": "VBox(children=(...))"}),
        new_output("stream", name="stderr", text="UserWarning"),
    ]

    def kept(preprocessor):
        cell = new_code_cell("x", outputs=copy.deepcopy(outputs))
        cell, _ = preprocessor.preprocess_cell(cell, {}, 0)
        return [sorted(o.get("data", {})) for o in cell.outputs]
    # PDF: the explorer goes (its flag), so does HTML it cannot draw; the html-only flag is not its
    assert kept(pdf_preprocessors.CleanOutputsPreprocessor()) == [["text/plain"], ["image/png"]]
    # HTML: the explorer and the HTML output stay; widget views and stderr go as in the PDF
    assert kept(pdf_preprocessors.HtmlCleanOutputsPreprocessor()) == [
        ["image/png", "text/html", "text/plain"], ["text/plain"], ["text/html", "text/plain"]]


def test_safe_display_math_preprocessor():
    source = ("a $$\\begin{align} x &= 1 \\nonumber \\\\ y &= 2 \\end{align}$$ b\n\n"
              "$$\\begin{equation*} E = mc^2 \\end{equation*}$$\n\n"
              "$$\\begin{aligned} u &= v \\end{aligned}$$")
    cell = new_markdown_cell(source)
    cell, _ = pdf_preprocessors.SafeDisplayMathPreprocessor().preprocess_cell(cell, {}, 0)
    assert cell.source == ("a $$\\begin{aligned} x &= 1  \\\\ y &= 2 \\end{aligned}$$ b\n\n"
                           "$$ E = mc^2 $$\n\n"
                           "$$\\begin{aligned} u &= v \\end{aligned}$$")


def test_checker_logic_without_pdf():
    problems, found = check_pdf.find_problems(
        "Task 1a: Setup\nsome HBox(children=()) text α\n", ["Task 1a: Setup"],
        ["Task 1a", "Task 2"], "αη")
    assert found == ["Task 1a: Setup"]
    assert any("'HBox('" in p for p in problems)
    assert any("'Task 2'" in p for p in problems)
    assert any(p.endswith("η") for p in problems)
    # math italic 𝜂 (from $\eta$) does not count for a prose η
    assert check_pdf.find_problems("𝜂", [], [], "η")[0]


def test_a_heading_after_its_page_limit_fails():
    """--heading-by-page: the first line that begins with the heading, on pdftotext's pages."""
    text = "Task 1\nIntro\fTask 2\n\fmore text\nAppendix A: the explorer\n\f"
    assert check_pdf.heading_page(text, "Appendix A") == 3
    assert check_pdf.late_headings(text, {"Appendix A": 3, "Task 2": 2}) == []
    assert check_pdf.late_headings(text, {"Appendix A": 2}) == [
        "'Appendix A' starts on page 3, after page 2"]
    assert check_pdf.late_headings(text, {"Appendix E": 9}) == [
        "'Appendix E' not found, so not by page 9"]
    assert check_pdf._page_limit("Appendix A=9") == ("Appendix A", 9)


def test_prose_characters_skip_math(tmp_path):
    nb = new_notebook(cells=[
        new_markdown_cell("Prose α and ≈, math $\\beta = γ$ and $$ω$$, code `λ`."),
        new_markdown_cell("Removed σ", metadata={"tags": ["remove_cell_in_pdf"]}),
    ])
    nbformat.write(nb, tmp_path / "n.ipynb")
    assert check_pdf.prose_characters(tmp_path / "n.ipynb") == "α≈"
