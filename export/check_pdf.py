#!/usr/bin/env python3
"""Check an exported report PDF the way a grader would read it.

    python export/check_pdf.py assignment2.pdf --require-heading "Task 1a" \
        [--require-heading "Task 1b" ...] [--chars "αδΣ∂η"] [--notebook assignment2.ipynb] \
        [--heading-by-page "Appendix A=9"]

Fails (exit 1, one message per problem) when
  * text of an ipywidget leaked into the PDF (``interactive(``, ``HBox(`` ...);
  * a required heading is missing (case-insensitive prefix of a PDF bookmark,
    i.e. a Markdown heading, or else of a line of text);
  * a heading given with ``--heading-by-page TEXT=PAGE`` starts after page PAGE
    (the first line of text that begins with TEXT), or is not there;
  * a required character is missing from the text.  Default characters:
    α δ Σ ∂ η.  With ``--notebook``, the required characters are instead the
    Greek letters and math symbols typed in the notebook's Markdown prose
    (outside ``$...$`` math, whose glyphs pdftotext may not map back).
Prints a one-line summary on success.  Needs ``pdftotext`` and ``pdfinfo``
(Debian package poppler-utils).  Exit 2 when a tool or file is missing.
"""

import argparse
import json
import re
import shutil
import subprocess
import sys
import unicodedata
import zlib
from pathlib import Path

WIDGET_REPRS = ("interactive(", "IntProgress(", "HBox(", "VBox(", "Output(")
DEFAULT_CHARS = "αδΣ∂η"
_MATH = re.compile(
    r"\$\$.*?\$\$|\$[^$\n]+\$|\\begin\{(\w+\*?)\}.*?\\end\{\1\}|`[^`\n]*`",
    re.DOTALL,
)


def _normalize(text):
    """NFKC-normalise and collapse whitespace (math italic 𝛼 -> α, ﬁ -> fi)."""
    return " ".join(unicodedata.normalize("NFKC", text).split())


def _run(*command):
    """Run a poppler tool and return its stdout as text."""
    return subprocess.run(command, check=True, capture_output=True, text=True).stdout


def pdf_text(pdf):
    """Return the text of the PDF as extracted by pdftotext."""
    return _run("pdftotext", "-enc", "UTF-8", str(pdf), "-")


def pdf_pages(pdf):
    """Return the number of pages reported by pdfinfo."""
    match = re.search(r"^Pages:\s+(\d+)", _run("pdfinfo", str(pdf)), re.MULTILINE)
    return int(match.group(1)) if match else 0


def _decode_pdf_string(token):
    """Decode a PDF string token: ``<FEFF...>`` hex or ``(...)`` literal."""
    if token.startswith(b"<"):
        raw = bytes.fromhex(token[1:-1].decode("ascii"))
    else:
        raw = re.sub(rb"\\(.)", rb"\1", token[1:-1])
    if raw.startswith(b"\xfe\xff"):
        return raw[2:].decode("utf-16-be", errors="replace")
    return raw.decode("latin-1")


def pdf_bookmarks(pdf):
    """Return the bookmark (outline) titles that hyperref wrote for headings.

    Outline items are the ``/Title`` entries of dictionaries that have a
    ``/Parent``; they may sit in compressed object streams, so every Flate
    stream is inflated and searched too.
    """
    data = Path(pdf).read_bytes()
    chunks = [data]
    for match in re.finditer(rb"stream\r?\n", data):
        end = data.find(b"endstream", match.end())
        try:
            chunks.append(zlib.decompress(data[match.end():end]))
        except zlib.error:
            continue  # not Flate-compressed (e.g. an image)
    titles = []
    # /Title <string>, then (within the same dictionary) /Parent.
    item = re.compile(
        rb"/Title\s*(<[0-9A-Fa-f]*>|\((?:\\.|[^\\)])*\))"
        rb"(?=(?:[^<>]|<<[^<>]*>>|<[0-9A-Fa-f]*>)*?/Parent)"
    )
    for chunk in chunks:
        titles += [_decode_pdf_string(token) for token in item.findall(chunk)]
    return titles


def reading_order(bookmarks, text):
    """Sort bookmarks by the first text line that begins the heading.

    (xdvipdfmx stores them in reverse, and a heading's words may also occur
    earlier in prose, so a plain text search is not enough.)
    """
    lines = [_normalize(line) for line in text.splitlines()]

    def position(mark):
        mark = _normalize(mark)
        for index, line in enumerate(lines):
            if line and mark.startswith(line) and (line == mark or len(line) >= 12):
                return index
        return len(lines)

    return sorted(bookmarks, key=position)


def prose_characters(notebook):
    """Greek letters and math symbols typed in the notebook's Markdown prose.

    Math (``$...$``, ``$$...$$``, ``\\begin{..}``) and code spans are skipped,
    as are cells tagged ``remove_cell_in_pdf``.
    """
    nb = json.loads(Path(notebook).read_text(encoding="utf-8"))
    chars = set()
    for cell in nb.get("cells", []):
        if cell.get("cell_type") != "markdown":
            continue
        if "remove_cell_in_pdf" in cell.get("metadata", {}).get("tags", []):
            continue
        source = cell["source"] if isinstance(cell["source"], str) else "".join(cell["source"])
        for char in unicodedata.normalize("NFC", _MATH.sub(" ", source)):
            if ord(char) > 127 and (
                unicodedata.name(char, "").startswith("GREEK") or unicodedata.category(char) == "Sm"
            ):
                chars.add(char)
    return "".join(sorted(chars))


def heading_page(text, heading):
    """The page (from 1) whose text has the first line beginning with ``heading``, or None.
    pdftotext ends every page with a form feed."""
    wanted = _normalize(heading).lower()
    for number, page in enumerate(text.split("\f"), start=1):
        if any(_normalize(line).lower().startswith(wanted) for line in page.splitlines()):
            return number
    return None


def late_headings(text, limits):
    """Problems for the headings of ``limits`` (heading -> last page allowed) that start later."""
    problems = []
    for heading, limit in limits.items():
        page = heading_page(text, heading)
        if page is None or page > limit:
            problems.append(f"{heading!r} starts on page {page}, after page {limit}" if page
                            else f"{heading!r} not found, so not by page {limit}")
    return problems


def _page_limit(spec):
    """'Appendix A=9' -> ('Appendix A', 9)."""
    heading, _, page = spec.rpartition("=")
    if not heading or not page.isdigit():
        raise argparse.ArgumentTypeError(f"expected HEADING=PAGE, got {spec!r}")
    return heading, int(page)


def find_problems(text, bookmarks, headings, chars):
    """Return (problems, found headings) for extracted text and bookmarks."""
    problems = []
    for token in WIDGET_REPRS:
        where = text.find(token)
        if where >= 0:
            context = " ".join(text[max(0, where - 30):where + 50].split())
            problems.append(f"widget text {token!r} found in the PDF: ...{context}...")
    marks = [_normalize(mark) for mark in bookmarks]
    lines = [_normalize(line) for line in text.splitlines()]
    found = []
    for heading in headings:
        wanted = _normalize(heading).lower()
        # a bookmark, or a text line (math in a heading spoils its bookmark)
        hits = [m for m in marks + lines if m.lower().startswith(wanted)]
        if hits:
            found.append(hits[0])
        else:
            problems.append(f"required heading {heading!r} not found")
    # NFC, not NFKC: math italic 𝜂 (from $\eta$) must not stand in for a
    # prose η whose glyph went missing.
    normalized = unicodedata.normalize("NFC", text)
    missing = [char for char in unicodedata.normalize("NFC", chars) if char not in normalized]
    if missing:
        problems.append(
            "characters missing from the PDF text (font without these glyphs?): "
            + " ".join(missing)
        )
    return problems, found


def main(argv=None):
    """Command-line entry point; returns the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("pdf", type=Path)
    parser.add_argument("--require-heading", action="append", default=[], metavar="TEXT",
                        help="heading that must exist (prefix match); repeatable")
    parser.add_argument("--chars", default=None,
                        help=f"characters that must appear in the text (default {DEFAULT_CHARS})")
    parser.add_argument("--notebook", type=Path,
                        help="require the Greek/math characters of this notebook's Markdown prose")
    parser.add_argument("--heading-by-page", action="append", default=[], type=_page_limit,
                        metavar="HEADING=PAGE",
                        help="a heading that must start on this page or earlier; repeatable")
    args = parser.parse_args(argv)

    for tool in ("pdftotext", "pdfinfo"):
        if not shutil.which(tool):
            print(f"check_pdf: {tool} not found (apt-get install poppler-utils)", file=sys.stderr)
            return 2
    if not args.pdf.is_file():
        print(f"check_pdf: no such PDF: {args.pdf}", file=sys.stderr)
        return 2
    chars = args.chars or ""
    if args.notebook:
        chars += prose_characters(args.notebook)
    elif args.chars is None:
        chars = DEFAULT_CHARS

    text = pdf_text(args.pdf)
    bookmarks = reading_order(pdf_bookmarks(args.pdf), text)
    problems, found = find_problems(text, bookmarks, args.require_heading, chars)
    problems += late_headings(text, dict(args.heading_by_page))
    if "Traceback (most recent call last)" in text:
        print(f"check_pdf: warning: {args.pdf} contains a Python traceback", file=sys.stderr)
    if problems:
        for problem in problems:
            print(f"check_pdf: FAIL {args.pdf}: {problem}", file=sys.stderr)
        return 1
    headings = " | ".join(_normalize(mark) for mark in bookmarks) or "none"
    pages = pdf_pages(args.pdf)
    print(f"check_pdf: OK {args.pdf}: {pages} page{'' if pages == 1 else 's'}; "
          f"{len(found)}/{len(args.require_heading)} required headings found; "
          f"headings: {headings}; characters present: {chars or '-'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
