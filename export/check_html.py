#!/usr/bin/env python3
"""Check the exported report HTML (assignment2.html) the way a reader without Python opens it.

    python export/check_html.py assignment2.html --require-heading "Task 1a" \
        [--require-heading "Task 1b" ...] [--require-explorer]

Fails (exit 1, one message per problem) when
  * anything would be fetched from the network: a script, stylesheet or image that is not
    inline (require.js, the widget manager and MathJax, which nbconvert's lab template loads
    from CDNs, count), or a ``url(http...)`` in a style;
  * an image is not described: its alt text is nbconvert's placeholder ("No description has
    been provided for this image", what nbconvert writes on every <img> that has none, e.g. when
    the output's metadata gives no alt);
  * a formula is not MathML: one export/html_math.py could not convert (shown as its TeX,
    ``span.a2-math-error``), or TeX math left in the text (``$...$`` with TeX in it, ``$$``);
  * code shows (an input area: the export hides code) or widget text leaked
    (``IntProgress(``, ``HBox(``, "Error displaying widget", a widget view);
  * a required heading is missing (case-insensitive prefix of an ``<h1>``..``<h6>``);
  * with ``--require-explorer``: there is no static hidden-unit explorer, or one is broken
    (no inline plot, no script, its data not the grid it announces).
Prints a one-line summary on success. Exit 2 when the file is missing. Standard library only.
"""

import argparse
import json
import re
import sys
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

WIDGET_TEXT = ("interactive(", "IntProgress(", "HBox(", "VBox(", "Error displaying widget")
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
#: what nbconvert writes as an <img>'s alt text when the output gives none
PLACEHOLDER_ALT = "No description has been provided for this image"
MATH_ERROR_CLASS = "a2-math-error"
#: TeX math in the text: $$...$$ (or a lone $$), or $...$ holding a backslash, ^, _ or a brace
TEX_LEFT = re.compile(r"\$\$[^$]{0,300}?\$\$|\$\$|\$[^$\n]{0,300}?[\\^_{}][^$\n]{0,300}?\$")
EXPLORER_CLASS = "a2-explorer"
EXPLORER_DATA = re.compile(r"var data = (\{.*?\});\n", re.DOTALL)


@dataclass
class Explorer:
    """One static explorer as written: its data attributes, its plot's src, its script."""
    network: str = ""
    positions: int = 0
    plot_src: str = ""
    script: str = ""


@dataclass
class Page:
    """What the checks need of a page.

    Attributes:
        scripts: (src, type, text) of every <script>.
        stylesheets: href of every <link rel="stylesheet">.
        images: src of every <img>.
        alts: the alt text of every <img> (None where it has none), in the order of ``images``.
        places: the heading above each <img> ('' above the first heading).
        maths: how many <math> elements there are (display="block" ones: ``display_maths``).
        math_errors: the TeX of every formula export/html_math.py could not convert.
        styles: the text of every <style>.
        headings: the text of every <h1>..<h6>, without nbconvert's anchor mark.
        classes: every class name used, once.
        text: the visible text (scripts and styles left out).
        explorers: the static explorers.
    """
    scripts: list = field(default_factory=list)
    stylesheets: list = field(default_factory=list)
    images: list = field(default_factory=list)
    alts: list = field(default_factory=list)
    places: list = field(default_factory=list)
    maths: int = 0
    display_maths: int = 0
    math_errors: list = field(default_factory=list)
    styles: list = field(default_factory=list)
    headings: list = field(default_factory=list)
    classes: set = field(default_factory=set)
    text: str = ""
    explorers: list = field(default_factory=list)


class _Reader(HTMLParser):
    """Fills a `Page` from HTML."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.page = Page()
        self._in = None             # "script", "style", "heading" or None
        self._math_error = None     # the text of the span.a2-math-error being read
        self._buffer = []
        self._script = None
        self._text = []
        self._explorer_depth = []   # open-div depth of each explorer being read
        self._divs = 0

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        classes = (a.get("class") or "").split()
        self.page.classes.update(classes)
        if tag == "div":
            self._divs += 1
            if EXPLORER_CLASS in classes:
                self.page.explorers.append(Explorer(
                    network=a.get("data-network", ""),
                    positions=int(a.get("data-positions") or 0)))
                self._explorer_depth.append(self._divs)
        elif tag == "script":
            self._in, self._buffer = "script", []
            self._script = (a.get("src") or "", a.get("type") or "")
        elif tag == "style":
            self._in, self._buffer = "style", []
        elif tag == "link" and "stylesheet" in (a.get("rel") or ""):
            self.page.stylesheets.append(a.get("href") or "")
        elif tag == "img":
            self.page.images.append(a.get("src") or "")
            self.page.alts.append(a.get("alt"))
            self.page.places.append(self.page.headings[-1] if self.page.headings else "")
            if self._explorer_depth and "a2-explorer-plot" in classes:
                self.page.explorers[-1].plot_src = a.get("src") or ""
        elif re.fullmatch(r"h[1-6]", tag):
            self._in, self._buffer = "heading", []
        elif tag == "math":
            self.page.maths += 1
            self.page.display_maths += a.get("display") == "block"
        elif tag == "span" and MATH_ERROR_CLASS in classes:
            self._math_error = []

    def handle_endtag(self, tag):
        if tag == "div":
            if self._explorer_depth and self._explorer_depth[-1] == self._divs:
                self._explorer_depth.pop()
            self._divs -= 1
        elif tag == "script" and self._in == "script":
            text = "".join(self._buffer)
            self.page.scripts.append((*self._script, text))
            if self._explorer_depth:
                self.page.explorers[-1].script += text
            self._in = None
        elif tag == "style" and self._in == "style":
            self.page.styles.append("".join(self._buffer))
            self._in = None
        elif tag == "span" and self._math_error is not None:
            self.page.math_errors.append("".join(self._math_error))
            self._math_error = None
        elif re.fullmatch(r"h[1-6]", tag) and self._in == "heading":
            heading = " ".join("".join(self._buffer).replace("¶", " ").split())
            self.page.headings.append(heading)
            self._text.append(heading)
            self._in = None

    def handle_data(self, data):
        if self._math_error is not None:
            self._math_error.append(data)   # reported as a formula, not as TeX in the text
        elif self._in:
            self._buffer.append(data)       # a heading's text joins the text at its end
        else:
            self._text.append(data)

    def close(self):
        super().close()
        self.page.text = " ".join(" ".join(self._text).split())


def read_page(html: str) -> Page:
    """The `Page` of an HTML document."""
    reader = _Reader()
    reader.feed(html)
    reader.close()
    return reader.page


def explorer_problems(explorer: Explorer, number: int) -> list:
    """What is wrong with one static explorer (its plot inline, its script's data the grid its
    attributes announce)."""
    name = f"static explorer {number} ({explorer.network or 'no data-network'})"
    problems = []
    if not explorer.plot_src.startswith("data:image/png;base64,"):
        problems.append(f"{name}: no inline PNG plot")
    match = EXPLORER_DATA.search(explorer.script)
    if not match:
        return problems + [f"{name}: no script with the sliders' data"]
    try:
        data = json.loads(match.group(1))
    except ValueError as err:
        return problems + [f"{name}: its script's data is not JSON ({err})"]
    plots = data.get("plots", {})
    grid = {f"{d},{w}" for d in data.get("depths", []) for w in data.get("widths", [])}
    if set(plots) != grid or len(plots) != explorer.positions:
        problems.append(f"{name}: {len(plots)} plots for {explorer.positions} positions "
                        f"(grid of {len(grid)})")
    missing = [key for key, plot in plots.items() if not plot.get("png") and
               plot.get("network") != explorer.network]
    if missing:
        problems.append(f"{name}: no plot for positions {sorted(missing)}")
    return problems


def find_problems(page: Page, headings, require_explorer: bool):
    """Return (problems, found headings) for a read page."""
    problems = []
    for src, kind, text in page.scripts:
        if src:
            problems.append(f"script fetched from the network: {src}")
        if kind == WIDGET_VIEW:
            problems.append("a widget view (needs the widget manager and a kernel's state)")
        if "require(" in text or "requirejs" in text:
            problems.append("a script that needs require.js")
    problems += [f"stylesheet fetched from the network: {href}" for href in page.stylesheets
                 if not href.startswith("data:")]
    problems += [f"image not inline: {src[:80]}" for src in page.images
                 if not src.startswith("data:")]
    for number, (alt, place) in enumerate(zip(page.alts, page.places), 1):
        where = f"image {number} of {len(page.images)} (under {place!r})"
        # (an <img> with no alt at all cannot come out of nbconvert, which writes its placeholder)
        if alt is not None and alt.strip() == PLACEHOLDER_ALT:
            problems.append(f"{where} is not described: nbconvert's placeholder alt text (the "
                            f"output's metadata needs {{\"image/png\": {{\"alt\": ...}}}})")
    problems += [f"formula not converted to MathML (shown as TeX): {tex}"
                 for tex in page.math_errors]
    for match in TEX_LEFT.finditer(page.text):
        problems.append(f"TeX math left in the text: {match.group(0)[:80]}")
    for style in page.styles:
        for url in re.findall(r"url\(\s*['\"]?((?:https?:)?//[^)'\"]+)", style):
            problems.append(f"style fetches {url}")
    if {"jp-InputArea-editor", "jp-CodeMirrorEditor"} & page.classes:
        problems.append("code shows (an input area): the export hides code")
    for token in WIDGET_TEXT:
        where = page.text.find(token)
        if where >= 0:
            problems.append(f"widget text {token!r} found: ..."
                            f"{page.text[max(0, where - 30):where + 50]}...")
    found = []
    for heading in headings:
        hits = [h for h in page.headings if h.lower().startswith(heading.lower())]
        if hits:
            found.append(hits[0])
        else:
            problems.append(f"required heading {heading!r} not found")
    if require_explorer and not page.explorers:
        problems.append("no static hidden-unit explorer (div.a2-explorer): the notebook's "
                        "explorer cell must display HiddenUnitExplorer(..., sweep=sweep_runs)")
    for number, explorer in enumerate(page.explorers, 1):
        problems += explorer_problems(explorer, number)
    return problems, found


def main(argv=None):
    """Command-line entry point; returns the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("html", type=Path)
    parser.add_argument("--require-heading", action="append", default=[], metavar="TEXT",
                        help="heading that must exist (prefix match); repeatable")
    parser.add_argument("--require-explorer", action="store_true",
                        help="fail without a working static hidden-unit explorer")
    args = parser.parse_args(argv)
    if not args.html.is_file():
        print(f"check_html: no such file: {args.html}", file=sys.stderr)
        return 2
    page = read_page(args.html.read_text(encoding="utf-8"))
    problems, found = find_problems(page, args.require_heading, args.require_explorer)
    if "Traceback (most recent call last)" in page.text:
        print(f"check_html: warning: {args.html} contains a Python traceback", file=sys.stderr)
    if problems:
        for problem in problems:
            print(f"check_html: FAIL {args.html}: {problem}", file=sys.stderr)
        return 1
    explorers = ", ".join(f"{e.positions} networks from {e.network}" for e in page.explorers)
    external = [src for src, _, _ in page.scripts if src]
    print(f"check_html: OK {args.html}: {args.html.stat().st_size / 1e6:.2f} MB, "
          f"{len(page.images)} inline images, all described; {page.maths} formulas in MathML "
          f"({page.display_maths} displayed); {len(found)}/{len(args.require_heading)} required "
          f"headings found; static explorers: {explorers or 'none'}; "
          f"scripts from the network: {', '.join(external) or 'none'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
