"""nbconvert preprocessors used by the PDF export (see export/nbconvert_config.py).

* ``DropWidgetOutputsPreprocessor`` removes the text stand-ins of ipywidgets
  (``interactive(children=...``, ``HBox(...)``, ``IntProgress(...)``) that a
  static PDF cannot show, and optionally stderr streams (warnings, progress
  bars).
* ``SafeDisplayMathPreprocessor`` rewrites ``$$\\begin{align}...\\end{align}$$``
  (which MathJax accepts but LaTeX rejects) into
  ``$$\\begin{aligned}...\\end{aligned}$$``, which both understand.
"""

import re

from nbconvert.preprocessors import Preprocessor
from traitlets import Bool, Unicode

WIDGET_MIMETYPE = "application/vnd.jupyter.widget-view+json"

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


class DropWidgetOutputsPreprocessor(Preprocessor):
    """Drop outputs that only stand for an interactive widget.

    An output carrying the widget-view mimetype keeps only its non-widget,
    non-``text/plain`` representations (``text/plain`` of a widget is its
    repr, e.g. ``interactive(children=(...))``); if nothing is left, the
    output is removed.  Plain-text outputs that look exactly like a widget
    repr (e.g. a notebook saved without the widget mimetype) are removed too,
    as is the ``<function f ...>`` that ``interact(f, ...)`` returns.
    """

    widget_repr_pattern = Unicode(
        r"^\s*(?:(?:interactive|[A-Z]\w*)\((?:children|value|layout|description|outputs|"
        r"options|min|max|style|msg_id)=|<function )",
        help="Regex matching a plain-text output that only stands for a widget.",
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
        data = output.get("data", {})
        if WIDGET_MIMETYPE in data:
            for mimetype in (WIDGET_MIMETYPE, "text/plain"):
                data.pop(mimetype, None)
            return output if data else None
        if set(data) == {"text/plain"} and re.match(
            self.widget_repr_pattern, data["text/plain"]
        ):
            return None
        return output

    def preprocess_cell(self, cell, resources, index):
        """Filter the outputs of one code cell."""
        if cell.cell_type == "code":
            kept = (self._keep(output) for output in cell.get("outputs", []))
            cell.outputs = [output for output in kept if output is not None]
        return cell, resources


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
