"""Formulas as MathML in the HTML export: no script, nothing fetched, read by screen readers.

The HTML export (export/nbconvert_config.py) replaces nbconvert's ``markdown2html`` filter by
`Markdown2HTMLWithMathML`. It parses Markdown exactly as nbconvert does (`MarkdownWithMath`,
mistune with nbconvert's math rules, which take ``$...$``, ``$$...$$``, ``\\\\(...\\\\)``,
``\\\\[...\\\\]`` and bare ``\\begin{env}...\\end{env}`` out of the text before any Markdown rule
sees them, so underscores and asterisks inside a formula stay TeX), and renders each formula as
MathML Core with the pure-Python ``latex2mathml`` (`tex_to_mathml`) instead of leaving its TeX
for MathJax. It applies to Markdown cells and to ``text/markdown`` outputs (the report's tables).

``latex2mathml`` alone gets a few things wrong for MathML Core (what Chromium, Firefox and Safari
render), so `tex_to_mathml` adds, around it:

* before: the environments it lacks mapped to ones it has (``aligned``, ``align``, ``alignat``,
  ``flalign``, ``eqnarray`` to ``align*``; ``gathered``, ``gather``, ``multline`` to a centred
  one-column array; ``equation`` to its body); ``:=`` to ``\\coloneqq``; ``\\label`` dropped;
* after: ``mathvariant`` other than ``normal`` (which MathML Core ignores: ``\\mathbb{1}`` would
  show a plain 1) replaced by the Unicode mathematical letters (𝟙); a ``\\mathrm{softmax}``
  spelt letter by letter joined into one ``<mi>``; TeX escapes in ``\\text{fan\\_in}`` undone;
  table alignment and spacing (``columnalign``, ``columnspacing``, ``rowspacing``, which MathML
  Core leaves to CSS) written as inline styles, so ``aligned`` lines up on its ``&``;
* a check: a formula ``latex2mathml`` did not understand (an unknown command, an ``&`` or a
  ``\\\\`` outside a table) raises `MathConversionError`; the filter then leaves the formula as
  TeX inside ``<span class="a2-math-error">`` and logs a warning, and export/check_html.py fails
  on that class.

Bare numbered environments (``\\begin{align}...\\end{align}`` outside ``$$``) get equation
numbers (1), (2), ... in order through the document, as in the PDF; ``\\nonumber``/``\\notag``
skip a line. Inside ``$$`` every environment is unnumbered (as the PDF's repair makes it).
"""

from __future__ import annotations

import html
import re
import unicodedata
from xml.etree.ElementTree import Element, SubElement, tostring

import jinja2
from latex2mathml.converter import convert_to_element
from nbconvert.filters.markdown_mistune import IPythonRenderer, MarkdownWithMath
from traitlets.config import LoggingConfigurable

#: the class of a formula that could not be converted (shown as its TeX); check_html fails on it
ERROR_CLASS = "a2-math-error"

# ------------------------------------------------------------------------------------------------
# TeX before latex2mathml
# ------------------------------------------------------------------------------------------------

#: environments rendered as latex2mathml's align* (right/left column pairs, display style)
_ALIGN_LIKE = {"aligned", "alignedat", "align", "alignat", "flalign", "eqnarray"}
#: environments rendered as one centred column in display style
_GATHER_LIKE = {"gathered", "gather", "multline"}
#: environments that are only a wrapper around one formula
_EQUATION_LIKE = {"equation"}
#: environments that number their lines when they stand bare in Markdown (as in LaTeX)
NUMBERED = {"align", "alignat", "flalign", "eqnarray", "gather", "multline", "equation"}

_ENV = re.compile(r"\\(begin|end)\{([A-Za-z]+)(\*?)\}(\{\d+\})?")


class MathConversionError(ValueError):
    """A formula latex2mathml did not convert faithfully."""

    def __init__(self, tex: str, reason: str):
        super().__init__(f"{reason} in formula {tex.strip()!r}")
        self.tex, self.reason = tex, reason


def _map_environments(tex: str) -> tuple[str, set]:
    """``tex`` with its environments mapped to those latex2mathml draws right; also the set of
    gather-like tables made (their mtables get display style afterwards)."""
    gathered = set()

    def replace(match):
        kind, name, _star, _columns = match.groups()
        if name in _ALIGN_LIKE:
            return rf"\{kind}{{align*}}"
        if name in _GATHER_LIKE:
            gathered.add(name)
            return r"\begin{array}{c}" if kind == "begin" else r"\end{array}"
        if name in _EQUATION_LIKE:
            return " "
        return match.group(0)

    return _ENV.sub(replace, tex), gathered


def _prepare(tex: str) -> tuple[str, bool]:
    """TeX that latex2mathml converts faithfully, and whether it made a gather-like table."""
    tex, gathered = _map_environments(tex)
    tex = re.sub(r"\\label\{[^{}]*\}", " ", tex)
    tex = re.sub(r"(?<![\\:]):\s*=", r"\\coloneqq ", tex)
    return tex, bool(gathered)


# ------------------------------------------------------------------------------------------------
# MathML after latex2mathml
# ------------------------------------------------------------------------------------------------

_VARIANTS = {
    "bold": "BOLD", "italic": "ITALIC", "bold-italic": "BOLD ITALIC",
    "double-struck": "DOUBLE-STRUCK", "script": "SCRIPT", "bold-script": "BOLD SCRIPT",
    "fraktur": "FRAKTUR", "bold-fraktur": "BOLD FRAKTUR", "sans-serif": "SANS-SERIF",
    "bold-sans-serif": "SANS-SERIF BOLD", "sans-serif-italic": "SANS-SERIF ITALIC",
    "sans-serif-bold-italic": "SANS-SERIF BOLD ITALIC", "monospace": "MONOSPACE",
}
# Letters Unicode encodes outside the Mathematical Alphanumeric block (the block's "holes").
_HOLE_NAMES = {"DOUBLE-STRUCK": "DOUBLE-STRUCK", "SCRIPT": "SCRIPT", "FRAKTUR": "BLACK-LETTER"}
_TOKENS = {"mi", "mn", "mo", "mtext", "ms"}
_TEXT_ESCAPES = re.compile(r"\\([_%&#${}])")


def styled(char: str, variant: str) -> str:
    """``char`` in the Unicode mathematical alphabet of MathML's ``mathvariant`` ``variant``
    (``styled("1", "double-struck") == "𝟙"``); ``char`` itself where Unicode has none."""
    style = _VARIANTS.get(variant)
    name = unicodedata.name(char, "")
    if not style:
        return char
    match = re.fullmatch(r"(?:LATIN|GREEK) (CAPITAL|SMALL) LETTER (\w+)", name)
    if match:
        case, letter = match.groups()
        candidates = [f"MATHEMATICAL {style} {case} {letter}"]
        if style in _HOLE_NAMES:
            candidates.append(f"{_HOLE_NAMES[style]} {case} {letter}")
        if (style, case, letter) == ("ITALIC", "SMALL", "H"):
            candidates.append("PLANCK CONSTANT")
    elif name.startswith("DIGIT "):
        candidates = [f"MATHEMATICAL {style} {name}"]
    else:
        return char
    for candidate in candidates:
        try:
            return unicodedata.lookup(candidate)
        except KeyError:
            pass
    return char


def _lengths(value: str | None, count: int, default: str) -> list:
    """A MathML list attribute (``"0em 2em"``) spread over ``count`` slots, its last entry
    repeated (as MathML does)."""
    parts = (value or "").split() or [default]
    return [parts[min(i, len(parts) - 1)] for i in range(count)]


def _style(element: Element, **properties) -> None:
    declarations = [f"{name.replace('_', '-')}: {value}" for name, value in properties.items()]
    old = element.get("style")
    element.set("style", "; ".join(([old] if old else []) + declarations))


def _tables_to_css(math: Element) -> None:
    """Write each mtable's column alignment and spacing as inline CSS on its cells (and drop the
    attributes): MathML Core (Chromium) ignores ``columnalign``, ``columnspacing`` and
    ``rowspacing``."""
    for table in math.iter("mtable"):
        rows = [row for row in table if row.tag == "mtr"]
        columns = max((len(row) for row in rows), default=0)
        spacing = _lengths(table.get("columnspacing"), max(columns - 1, 1), "0.8em")
        row_spacing = _lengths(table.get("rowspacing"), max(len(rows) - 1, 1), "1ex")
        for r, row in enumerate(rows):
            for c, cell in enumerate(row):
                align = cell.attrib.pop("columnalign", None)
                properties = {}
                if align:
                    properties["text_align"] = align
                properties["padding"] = (f"{row_spacing[r - 1] if r else '0'} 0 0 "
                                         f"{spacing[c - 1] if c else '0'}")
                _style(cell, **properties)
        for attribute in ("columnspacing", "rowspacing"):
            table.attrib.pop(attribute, None)


def _polish(math: Element, tex: str) -> None:
    """Make latex2mathml's tree MathML Core: real characters instead of entity strings, styled
    letters instead of ``mathvariant``, one ``<mi>`` per upright word, an upright single letter
    where latex2mathml forgot it (``\\mathrm{d}``, which it writes as a character reference),
    plain text in ``mtext``.
    Raises `MathConversionError` where the conversion went wrong."""
    parents = {child: parent for parent in math.iter() for child in parent}
    for element in list(math.iter()):
        if element.text:
            raw, element.text = element.text, html.unescape(element.text)
            if element.tag == "mi" and raw.startswith("&#") and len(element.text) == 1 and \
                    element.text.isascii() and element.text.isalpha():
                element.set("mathvariant", "normal")  # latex2mathml's \mathrm{d}: upright

        if element.tag not in _TOKENS:
            if element.tag == "mspace" and element.get("linebreak"):
                raise MathConversionError(tex, r"a line break (\\) outside a table")
            continue
        text = element.text or ""
        if element.tag == "mtext":
            element.text = _TEXT_ESCAPES.sub(r"\1", text)
            continue
        if text.startswith("\\"):
            raise MathConversionError(tex, f"unknown command {text}")
        if text == "&" and parents.get(element) is not None and \
                not any(p.tag == "mtd" for p in _ancestors(element, parents)):
            raise MathConversionError(tex, "an & outside a table")
        variant = element.get("mathvariant")
        if variant and variant != "normal":
            element.text = "".join(styled(ch, variant) for ch in text)
            del element.attrib["mathvariant"]
        if element.tag == "mo" and len(text) > 1 and text.isalpha() and not element.attrib:
            element.tag = "mi"              # \operatorname{softmax}: a name, not an operator
    for row in math.iter("mrow"):
        children = list(row)
        if len(children) > 1 and all(
                c.tag == "mi" and c.get("mathvariant") == "normal" and len(c.text or "") == 1
                and (c.text or "").isalpha() and not len(c) for c in children):
            word = "".join(c.text for c in children)  # \mathrm{softmax}, spelt letter by letter
            for child in children:
                row.remove(child)
            row.tag, row.text = "mi", word         # the row becomes the word
            row.attrib.clear()
    _typeset_like_tex(math)


_PRIMES = set("′″‴⁗")
_OPENERS = set("([{⟨⌈⌊|‖")
_CLOSERS = set(")]}⟩⌉⌋|‖")
_SIGNS = set("−+±∓")
#: elements whose children form a row (MathML's inferred mrow); the others have fixed children
_ROWS = {"math", "mrow", "mtd", "mstyle", "msqrt", "mpadded", "mphantom", "menclose"}


def _typeset_like_tex(math: Element) -> None:
    """The spacing TeX gives and MathML Core's operator dictionary does not:

    * a prime (``f'``, ``k'``) is set on the line as ``<mo>′</mo>``, not as a superscript (the
      prime glyph is raised already: as a superscript it shrinks to a speck);
    * ``\\hat``/``\\tilde`` are the small accents (ˆ ˜), not stretched ones (``\\widehat`` stays);
    * ``/`` has no space around it (an ordinary symbol in TeX);
    * a sign right after an operator or an opening bracket, or first in its row, is unary: no
      space (``= −y``, ``(−x``);
    * a function name (``ln``, ``softmax``) is followed by U+2061 FUNCTION APPLICATION (read out
      by screen readers), with TeX's thin space before an argument that is not in brackets, and
      after a symbol before it (``y_k \\ln``)."""
    for element in math.iter():
        children = list(element)
        if element.tag == "msup" and len(children) == 2 and children[1].tag in ("mi", "mo") \
                and children[1].text and set(children[1].text) <= _PRIMES:
            element.tag = "mrow"
            children[1].tag = "mo"
            children[1].attrib.update(lspace="0", rspace="0")
        if element.tag == "mover" and element.get("accent") == "true" and len(children) == 2 \
                and children[1].tag == "mo" and children[1].text in ("^", "~"):
            children[1].text = {"^": "ˆ", "~": "˜"}[children[1].text]
            children[1].set("stretchy", "false")
    for parent in [element for element in math.iter() if element.tag in _ROWS]:
        children = list(parent)
        for i, child in enumerate(children):
            text = child.text or ""
            if child.tag == "mo" and text == "/" and not child.attrib:
                child.attrib.update(lspace="0", rspace="0")
            elif child.tag == "mo" and text in _SIGNS and not child.get("lspace"):
                before = [c for c in children[:i] if c.tag != "mspace"]
                if (not before or (before[-1].tag == "mo" and before[-1].text not in _CLOSERS
                                       and not set(before[-1].text or "") <= _PRIMES)):
                    child.attrib.update(lspace="0", rspace="0")
            elif child.tag == "mi" and len(text) > 1 and text.isalpha() and i + 1 < len(children):
                following = children[i + 1]
                if following.tag == "mo" and (following.text or "") not in _OPENERS:
                    continue
                apply = Element("mo")
                apply.text = "\u2061"
                if following.tag != "mo":
                    apply.set("rspace", "0.1667em")
                parent.insert(list(parent).index(child) + 1, apply)
                if i and children[i - 1].tag not in ("mo", "mspace"):
                    parent.insert(list(parent).index(child), Element("mspace", width="0.1667em"))


def _ancestors(element: Element, parents: dict):
    while element in parents:
        element = parents[element]
        yield element


def tex_to_mathml(tex: str, display: bool = False, numbers: list | None = None) -> str:
    """The MathML (a ``<math>`` element, as HTML) of the TeX formula ``tex`` (without its
    dollars). ``display``: a display formula (``display="block"``). ``numbers``: the equation
    number of each line of a numbered environment's table ('' for none), set at the right.
    Raises `MathConversionError` when latex2mathml cannot convert it faithfully."""
    prepared, gathered = _prepare(tex)
    try:
        math = convert_to_element(prepared, display="block" if display else "inline")
    except Exception as err:                      # latex2mathml's own errors, of many types
        raise MathConversionError(tex, f"latex2mathml: {type(err).__name__}: {err}") from err
    math.attrib.pop("xmlns", None)        # the HTML parser puts <math> in MathML's namespace
    if not display:
        math.attrib.pop("display", None)          # inline is the default
    _polish(math, tex)
    if gathered:
        for table in math.iter("mtable"):
            table.set("displaystyle", "true")
    if numbers is not None:
        _number_lines(math, numbers)
    _tables_to_css(math)
    return tostring(math, encoding="unicode", short_empty_elements=True)


def _number_lines(math: Element, numbers: list) -> None:
    """Add an equation-number column, 3em to the right, to the formula's (first) table, or make
    the formula a one-row table with one."""
    table = next(math.iter("mtable"), None)
    if table is None:
        content = list(math)
        for child in content:
            math.remove(child)
        table = SubElement(math, "mtable")
        SubElement(SubElement(table, "mtr"), "mtd").extend(content)
    rows = [row for row in table if row.tag == "mtr"]
    columns = max(len(row) for row in rows)
    gaps = _lengths(table.get("columnspacing"), columns - 1, "0.8em") if columns > 1 else []
    table.set("columnspacing", " ".join(gaps + ["3em"]))
    for row, number in zip(rows, numbers + [""] * len(rows)):
        while len(row) < columns:                 # short rows: the numbers stay in one column
            SubElement(row, "mtd")
        cell = SubElement(row, "mtd", columnalign="right")
        if number:
            SubElement(cell, "mtext").text = f"({number})"


def split_lines(body: str) -> list:
    """The lines of an environment's body: split at ``\\\\`` outside braces; a last empty line
    (a trailing ``\\\\``) dropped."""
    lines, depth, start, i = [], 0, 0, 0
    while i < len(body):
        ch = body[i]
        if ch == "\\":
            if body.startswith("\\\\", i) and depth == 0:
                lines.append(body[start:i])
                start = i + 2
            i += 2
            continue
        depth += {"{": 1, "}": -1}.get(ch, 0)
        i += 1
    lines.append(body[start:])
    if len(lines) > 1 and not lines[-1].strip():
        lines.pop()
    return lines


# ------------------------------------------------------------------------------------------------
# Markdown rendering
# ------------------------------------------------------------------------------------------------

class MathMLRenderer(IPythonRenderer):
    """nbconvert's Markdown renderer with every formula written as MathML.

    ``counter``: a one-element list holding the last equation number used (shared by all the
    cells of one export); ``log``: where a formula that could not be converted is reported."""

    def __init__(self, *args, counter: list | None = None, log=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.counter = counter if counter is not None else [0]
        self.log = log

    def _math(self, tex: str, display: bool, numbers: list | None = None,
              source: str | None = None) -> str:
        try:
            return tex_to_mathml(tex, display, numbers)
        except MathConversionError as err:
            if self.log is not None:
                self.log.warning("Formula left as TeX (no MathML): %s", err)
            shown = source if source is not None else (f"$${tex}$$" if display else f"${tex}$")
            return (f'<span class="{ERROR_CLASS}" title="{html.escape(err.reason)}">'
                    f"{html.escape(shown, quote=False)}</span>")

    def block_math(self, body: str) -> str:
        return self._math(body, display=True)

    def inline_math(self, body: str) -> str:
        return self._math(body, display=False)

    def latex_environment(self, name: str, body: str) -> str:
        source = f"\\begin{{{name}}}{body}\\end{{{name}}}"
        if name not in NUMBERED:                   # starred, or a matrix, cases, aligned...
            return self._math(source, display=True)
        lines = split_lines(body) if name != "equation" else [body]
        numbers = []
        for line in lines:
            if re.search(r"\\(?:nonumber|notag)\b", line):
                numbers.append("")
            else:
                self.counter[0] += 1
                numbers.append(str(self.counter[0]))
        unnumbered = re.sub(r"\\(?:nonumber|notag)\b", "", source)
        return self._math(unnumbered, display=True, numbers=numbers, source=source)


_PASS_CONTEXT = jinja2.pass_context(lambda context: None).jinja_pass_arg


class Markdown2HTMLWithMathML(LoggingConfigurable):
    """The HTML exporter's ``markdown2html`` filter (nbconvert's, with the same options: anchor
    links, embedded images, attachments), formulas as MathML (`MathMLRenderer`).

    Registered by name in the config (``c.HTMLExporter.filters``); nbconvert makes it with the
    exporter as its parent, whose options it reads. Equation numbers run through one export."""

    jinja_pass_arg = _PASS_CONTEXT                 # Jinja passes the template context first

    def __call__(self, context, source: str) -> str:
        exporter = self.parent
        cell = context.get("cell", {})
        resources = context.get("resources", {})
        counter = resources.setdefault("a2_equation_counter", [0])
        renderer = MathMLRenderer(
            escape=False,
            attachments=cell.get("attachments", {}),
            embed_images=getattr(exporter, "embed_images", False),
            path=resources.get("metadata", {}).get("path", ""),
            anchor_link_text=getattr(exporter, "anchor_link_text", "¶"),
            exclude_anchor_links=getattr(exporter, "exclude_anchor_links", False),
            counter=counter,
            log=self.log,
            **getattr(exporter, "lexer_options", {}),
        )
        return MarkdownWithMath(renderer=renderer).render(source)
