"""nbconvert configuration for the graded PDF report and its HTML twin.

Usage, from the repository root (nbconvert does not pick this file up by
itself, so pass it explicitly)::

    jupyter nbconvert --config export/nbconvert_config.py --to pdf assignment2.ipynb
    jupyter nbconvert --config export/nbconvert_config.py --to html assignment2.ipynb

The notebook is exported as it is saved (add --execute to re-run it first):
code is hidden, outputs are kept, widget stand-ins are dropped.  The PDF uses
the custom LaTeX template in export/templates/report_pdf (fonts, title block,
layout); the HTML, export/templates/report_html (nbconvert's "lab" template
with no script but the outputs' own, images inline with their alt text), where
the static hidden-unit explorer keeps its sliders, and its formulas are MathML
written at export by export/html_math.py (no MathJax: the page makes no
request).  See export/README.md.
"""

import os
import sys

EXPORT_DIR = os.path.dirname(os.path.abspath(__file__))
# Make export/pdf_preprocessors.py importable whatever the working directory.
if EXPORT_DIR not in sys.path:
    sys.path.insert(0, EXPORT_DIR)

c = get_config()  # noqa: F821  (provided by traitlets when loading this file)

# --- template: export/templates/report_pdf, extending nbconvert's "latex" ---
c.LatexExporter.extra_template_basedirs = [os.path.join(EXPORT_DIR, "templates")]
c.LatexExporter.template_name = "report_pdf"

# --- hide code, keep outputs ---
c.TemplateExporter.exclude_input = True
c.TemplateExporter.exclude_input_prompt = True
c.TemplateExporter.exclude_output_prompt = True
# Raw cells reach the PDF only when their format is LaTeX (e.g. "\newpage").
c.LatexExporter.raw_mimetypes = ["text/latex", "text/tex"]

# --- cell tags and clean-up ---
# Tag removal runs in our preprocessor list, i.e. after --execute (if given),
# so a removed cell still runs and a removed output is not re-created.  The
# default instance, which would run before execution, is switched off.
c.TagRemovePreprocessor.enabled = False
c.TagRemovePreprocessor.remove_cell_tags = {"remove_cell_in_pdf"}
c.TagRemovePreprocessor.remove_all_outputs_tags = {"remove_output_in_pdf"}
c.LatexExporter.preprocessors = [
    "nbconvert.preprocessors.TagRemovePreprocessor",  # (enabled when listed here)
    # widget reprs, stray reprs like [<matplotlib.lines.Line2D ...>], stderr
    "pdf_preprocessors.CleanOutputsPreprocessor",
    # $$\begin{align}...$$ -> $$\begin{aligned}...$$
    "pdf_preprocessors.SafeDisplayMathPreprocessor",
]

# The LaTeX engine is nbconvert's default, xelatex (needed for fontspec). Two passes, not
# nbconvert's three: the second writes the bookmarks the first recorded, and a third changed no
# pixel of the report's pages (checked at 40 dpi, and its text and bookmarks); it saves 1.6 s.
c.PDFExporter.latex_count = 2

# --- the HTML twin: assignment2.html ---
# No tag removal (the remove_*_in_pdf tags are the PDF's; the title heading the
# PDF drops is the page's heading here). Widget views, stray reprs and stderr go
# as in the PDF; HTML outputs, the static explorer among them, stay.
c.HTMLExporter.extra_template_basedirs = [os.path.join(EXPORT_DIR, "templates")]
c.HTMLExporter.template_name = "report_html"
c.HTMLExporter.embed_images = True   # Markdown images inline too: one self-contained file
c.HTMLExporter.preprocessors = ["pdf_preprocessors.HtmlCleanOutputsPreprocessor"]
# nbconvert's Markdown filter with every formula written as MathML (export/html_math.py): the
# browser draws them with no script and nothing fetched. The PDF's route is not affected.
c.HTMLExporter.filters = {"markdown2html": "html_math.Markdown2HTMLWithMathML"}
