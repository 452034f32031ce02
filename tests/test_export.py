"""End-to-end test of the PDF export in export/ (nbconvert + xelatex).

A small synthetic report notebook is executed with the project's kernel,
exported with export/nbconvert_config.py exactly as a person would, and the
PDF is inspected with export/check_pdf.py (pdftotext).  Skipped only when
xelatex or pandoc is missing.
"""

import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

ROOT = Path(__file__).resolve().parents[1]
EXPORT = ROOT / "export"
CONFIG = EXPORT / "nbconvert_config.py"
CHECKER = EXPORT / "check_pdf.py"

PROSE = (
    "The step size α, the tolerance δ and the learning rate η control the "
    "update; Σ sums the partial derivatives ∂L/∂w, so w → w − η∂L/∂w, "
    "the error is ≈ 0.5 ± 0.1 and the grid is 3 × 4."
)


def build_notebook():
    """Return the synthetic report notebook (not yet executed)."""
    cells = [
        new_markdown_cell("# Task 1a: Gradient descent\n\n" + PROSE),
        new_markdown_cell(
            "Inline math $\\alpha_t = \\eta / \\sqrt{t}$ and display math:\n\n"
            "$$\n\\begin{aligned}\nf(x) &= x^2 + \\delta \\\\\n"
            "f'(x) &= 2x\n\\end{aligned}\n$$\n\n"
            "A bare environment:\n\n\\begin{align}\ng(x) &= \\sin x \\\\\n"
            "g'(x) &= \\cos x\n\\end{align}\n\n"
            "And the form that needs fixing: "
            "$$\\begin{align} h &= 1 \\end{align}$$"
        ),
        new_code_cell(
            "import matplotlib.pyplot as plt\n"
            "from matplotlib_inline.backend_inline import set_matplotlib_formats\n"
            "set_matplotlib_formats('png', 'pdf')\n"
            "fig, ax = plt.subplots(figsize=(6, 3.5))\n"
            "ax.plot([0, 1, 2, 3], [3, 1, 0.5, 0.2], marker='o', label='loss')\n"
            "ax.set_xlabel('iteration'); ax.set_ylabel('loss'); ax.legend()\n"
            "plt.show()"
        ),
        new_code_cell(
            "from IPython.display import Markdown, display\n"
            "display(Markdown('| method | α | error |\\n|---|---:|---:|\\n'\n"
            "                 '| GD | 0.1 | 1.2e-3 |\\n| SGD | 0.01 | 4.5e-3 |'))"
        ),
        new_code_cell("print('final loss = 0.0123')"),
        new_code_cell(
            "import ipywidgets as widgets\n"
            "widgets.interact(lambda a=1.0: a * 2, a=(0.0, 2.0))"
        ),
        new_code_cell(
            "import warnings\nwarnings.warn('this warning must not reach the PDF')"
        ),
        new_code_cell(
            "widgets.IntProgress(value=3, max=10)",
            metadata={"tags": ["remove_output_in_pdf"]},
        ),
        new_code_cell(
            "print('REMOVED_CELL_MARKER')",
            metadata={"tags": ["remove_cell_in_pdf"]},
        ),
        new_markdown_cell("## Task 1b: Results\n\nThe sum Σ of all η is finite."),
        new_code_cell("widgets.HBox([widgets.Button(description='go')])"),
        new_code_cell("'returned value 42'"),
    ]
    return new_notebook(
        cells=cells,
        metadata={
            "title": "Assignment 2: Optimisation",
            "authors": [{"name": "Ada Lovelace"}, {"name": "Alan Turing"}],
            "course": "Numerical Methods (CS 101)",
            "date": "1 March 2025",
            "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
        },
    )


def _load_checker():
    """Import export/check_pdf.py as a module."""
    spec = importlib.util.spec_from_file_location("check_pdf", CHECKER)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """Execute the synthetic notebook and export it; return (nb, pdf path)."""
    missing = [tool for tool in ("xelatex", "pandoc", "pdftotext") if not shutil.which(tool)]
    if missing:
        pytest.skip(
            f"PDF export needs {', '.join(missing)}: apt-get install texlive-xetex "
            "texlive-fonts-recommended texlive-plain-generic pandoc fonts-dejavu poppler-utils"
        )
    from nbclient import NotebookClient

    workdir = tmp_path_factory.mktemp("export")
    nb = build_notebook()
    NotebookClient(nb, timeout=60, kernel_name="python3", resources={"metadata": {"path": str(workdir)}}).execute()
    nb_path = workdir / "report.ipynb"
    nbformat.write(nb, nb_path)
    subprocess.run(
        [sys.executable, "-m", "nbconvert", "--config", str(CONFIG),
         "--to", "pdf", str(nb_path)],
        cwd=ROOT, check=True, capture_output=True, timeout=120,
    )
    pdf = workdir / "report.pdf"
    assert pdf.exists()
    return nb, pdf
