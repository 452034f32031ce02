"""nbconvert preprocessors used by the PDF and HTML exports (see export/nbconvert_config.py).

* ``CleanOutputsPreprocessor`` removes the text stand-ins of ipywidgets
  (``interactive(children=...``, ``HBox(...)``, ``IntProgress(...)``) that a
  static PDF cannot show, stray reprs such as ``[<matplotlib.lines.Line2D at
  0x...>]``, stderr streams (warnings, progress bars), and every output whose
  metadata sets ``remove_output_in_pdf`` (the hidden-unit explorer, whose
  sliders a PDF cannot show).
* ``HtmlCleanOutputsPreprocessor`` does the same for the HTML export, where
  HTML and JavaScript outputs are content and the metadata flag is
  ``remove_output_in_html``.
* ``SafeDisplayMathPreprocessor`` rewrites ``$$\\begin{align}...\\end{align}$$``
  (which MathJax accepts but LaTeX rejects) into
  ``$$\\begin{aligned}...\\end{aligned}$$``, which both understand.
"""

import re

from nbconvert.preprocessors import Preprocessor
from traitlets import Bool, List, Unicode

WIDGET_MIMETYPE = "application/vnd.jupyter.widget-view+json"
# Mimetypes the LaTeX template can draw besides text/plain.
LATEX_MIMETYPES = {
    "text/latex", "application/pdf", "image/png", "image/jpeg", "image/svg+xml", "text/markdown",
}
# Mimetypes the HTML template can draw besides text/plain.
HTML_MIMETYPES = LATEX_MIMETYPES | {"text/html", "application/javascript"}

# Display-math environments that LaTeX refuses inside \[...\] (which is what
# pandoc makes of $$...$$), mapped to the inner form that is allowed there.
_INNER_ENV = {
    "align": "aligned", "flalign": "aligned", "eqnarray": "aligned",
    "alignat": "alignedat", "gather": "gathered", "multline": "gathered",
    "equation": None,
}
_WRAPPED_ENV = re.compile(
    r"\$\$\s*\\begin\{(" + "|".join(_INNER_ENV) + r")(\*?)\}(.*?)\\end\{\1\2\}\s*\$\$",
    re.DOTALL,
)


def _unwrap_display_env(match):
    """Turn one ``$$\\begin{align}...\\end{align}$$`` into ``$$\\begin{aligned}...$$``."""
    env, body = match.group(1), match.group(3)
    body = re.sub(r"\\(?:nonumber|notag)\b", "", body)
    inner = _INNER_ENV[env]
    if inner is None:
        return f"$${body}$$"
    return f"$$\\begin{{{inner}}}{body}\\end{{{inner}}}$$"


class CleanOutputsPreprocessor(Preprocessor):
    """Drop outputs that are not content: widget stand-ins and stray reprs.

    * An output carrying the widget-view mimetype loses that mimetype and its
      ``text/plain`` (the widget's repr, e.g. ``interactive(children=...)``);
      if nothing is left, the output is removed.
    * An output with nothing LaTeX can draw but ``text/plain`` is removed when
      that text matches one of ``junk_text_patterns`` (widget reprs saved
      without the widget mimetype, ``<function f>`` returned by
      ``interact(f, ...)``, ``[<matplotlib.lines.Line2D at 0x...>]``, ...).
    * stderr streams (warnings, progress bars) are removed unless
      ``drop_stderr`` is False.
    * An output whose metadata sets ``remove_flag`` (by default
      ``remove_output_in_pdf``) to a true value is removed: the output's own
      word that it has no place in this export, as the cell tag of that name
      says it for all of a cell's outputs.
    """

    #: the mimetypes this export draws besides text/plain
    drawable_mimetypes = LATEX_MIMETYPES

    remove_flag = Unicode(
        "remove_output_in_pdf",
        help="An output whose metadata sets this key to a true value is removed.",
    ).tag(config=True)

    junk_text_patterns = List(
        Unicode(),
        default_value=[
            r"(?:interactive|[A-Z]\w*)\((?:children|value|layout|description|outputs"
            r"|options|min|max|style|msg_id)=",  # ipywidgets repr
            r"<function ",  # what interact(f, ...) returns
            r"<IPython\.core\.display\.\w+ object>",  # HTML/JS display, no LaTeX form
            r"\[?<[\w.]+ (?:object )?at 0x[0-9a-fA-F]+>",  # [<matplotlib...Line2D at 0x..>]
            r"<Figure size \d+x\d+ with \d+ Axes>",
            r"Text\([-+\d.e]+, [-+\d.e]+, .*\)\s*\Z",  # ax.set_title(...) as last line
        ],
        help="Regexes (matched at the start of text/plain) of non-content outputs.",
    ).tag(config=True)

    drop_stderr = Bool(
        True, help="Also drop stderr streams (warnings, progress bars)."
    ).tag(config=True)

    def _keep(self, output):
        """Return the output to keep (possibly trimmed), or None to drop it."""
        if output.output_type == "stream":
            return None if (self.drop_stderr and output.name == "stderr") else output
        if output.output_type not in ("display_data", "execute_result"):
            return output
        if output.get("metadata", {}).get(self.remove_flag):
            return None
        data = output.get("data", {})
        if WIDGET_MIMETYPE in data:
            for mimetype in (WIDGET_MIMETYPE, "text/plain"):
                data.pop(mimetype, None)
            return output if data else None
        text = data.get("text/plain", "").strip()
        if not self.drawable_mimetypes & set(data) and any(
            re.match(pattern, text, re.DOTALL) for pattern in self.junk_text_patterns
        ):
            return None
        return output

    def preprocess_cell(self, cell, resources, index):
        """Filter the outputs of one code cell."""
        if cell.cell_type == "code":
            kept = (self._keep(output) for output in cell.get("outputs", []))
            cell.outputs = [output for output in kept if output is not None]
        return cell, resources


class HtmlCleanOutputsPreprocessor(CleanOutputsPreprocessor):
    """``CleanOutputsPreprocessor`` for the HTML export: HTML and JavaScript
    outputs are content there, and the metadata flag that removes an output is
    ``remove_output_in_html`` (``remove_output_in_pdf`` outputs stay: the
    hidden-unit explorer works in the HTML)."""

    drawable_mimetypes = HTML_MIMETYPES

    remove_flag = Unicode(
        "remove_output_in_html",
        help="An output whose metadata sets this key to a true value is removed.",
    ).tag(config=True)


class SafeDisplayMathPreprocessor(Preprocessor):
    """Make ``$$\\begin{align}...\\end{align}$$`` in Markdown cells LaTeX-safe.

    Jupyter (MathJax) renders that form, but pandoc turns ``$$`` into
    ``\\[...\\]`` and LaTeX refuses an ``align`` inside display math.  The
    environment is replaced by its inner twin (align -> aligned, gather ->
    gathered, alignat -> alignedat, equation -> nothing), unnumbered, which
    renders the same in both.
    """

    def preprocess_cell(self, cell, resources, index):
        """Rewrite the Markdown source of one cell."""
        if cell.cell_type == "markdown":
            cell.source = _WRAPPED_ENV.sub(_unwrap_display_env, cell.source)
        return cell, resources
