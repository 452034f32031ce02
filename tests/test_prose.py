"""The report's prose against its numbers: the committed Markdown is exactly what `report.prose`
renders from the committed figures/results.json, the prose draws conclusions only from the primary
comparisons' verdicts, and re-rendering from a rerun's results puts its numbers in and keeps the rest.

`report.prose.CLAIMS` holds every number and result-dependent word the prose quotes, as fragments
of their cells written over results.json. A changed number, a flipped verdict or estimate word or a
number quoted without a claim fails; so does a conclusion word anywhere but in a rendered verdict
or estimate word. The answers' shape (Task 3's three comments) and the limits on the prose's length
and on intervals in running text are tested here as well.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import nbformat
import pytest

from report import prose

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "assignment2.ipynb"
RESULTS = ROOT / "figures" / "results.json"
MINUS = prose.MINUS

#: Words that conclude which way a difference goes, or that it is real. The prose may use them only
#: inside a rendered verdict of a primary comparison, or inside an estimate's words rendered by
#: `clear` (from its interval) or the held-out check: never typed.
CONCLUSION_WORDS = re.compile(
    r"\b(excludes? zero|rules? out|ruled out|sooner|earlier|later|faster|slower|clearly|"
    r"significant(ly)?|better|worse|generalises?|overfits?|underfits?|too (small|large|few|many)|"
    r"does not go|do not go|proves?|jagged)\b", re.IGNORECASE)
#: The functions whose words a claim may conclude with.
RENDERED_WORDS = ("verdict(", "clear(", "held_out_check(")
#: The three comments the assignment asks for under each trick of Task 3, in this order.
TASK3_LABELS = ("**Convergence speed.**", "**Generalisation and overfitting.**",
                "**Final accuracy and validation loss.**")

# ================================================================================================
# Reading the notebook: Markdown cells, running prose
# ================================================================================================


def running_prose(text: str) -> str:
    """A Markdown text without what the word count leaves out: tables, headings, display math."""
    text = re.sub(r"\$\$.*?\$\$", " ", text, flags=re.DOTALL)
    return "\n".join(line for line in text.splitlines()
                     if not line.lstrip().startswith(("|", "#")))


def prose_words(nb) -> tuple[int, int]:
    """(words of running prose in Markdown cells, words in Markdown that code cells print)."""
    markdown = sum(len(running_prose(c.source).split()) for c in nb.cells
                   if c.cell_type == "markdown")
    printed = 0
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            text = output.get("data", {}).get("text/markdown")
            if text:
                printed += len(running_prose("".join(text)).split())
    return markdown, printed


def markdown_cells(nb) -> dict[str, str]:
    return {c.id: c.source for c in nb.cells if c.cell_type == "markdown"}


def check_claims(cells: dict[str, str], results: dict) -> list[str]:
    """`report.prose.problems` (kept under this name for tests/test_report.py)."""
    return prose.problems(cells, results)


@pytest.fixture(scope="module")
def notebook():
    return nbformat.read(NOTEBOOK, as_version=4)


@pytest.fixture(scope="module")
def results():
    return json.loads(RESULTS.read_text())


# ================================================================================================
# The committed prose is the rendering of the committed results
# ================================================================================================

def test_every_quoted_number_agrees_with_the_committed_results(notebook, results):
    problems = check_claims(markdown_cells(notebook), results)
    assert not problems, "the prose disagrees with figures/results.json:\n" + "\n".join(problems)


def test_the_committed_markdown_is_exactly_its_rendering(notebook, results):
    cells = markdown_cells(notebook)
    assert prose.rerender_cells(cells, results, []) == cells


def bump(text: str) -> str:
    """``text`` with its last digit changed (9 becomes 0)."""
    i = max(i for i, ch in enumerate(text) if ch.isdigit())
    return text[:i] + str((int(text[i]) + 1) % 10) + text[i + 1:]


def flip(text: str) -> str:
    """``text`` with its first sign turned round."""
    i = min(i for i, ch in enumerate(text) if ch in "+" + MINUS)
    return text[:i] + ("+" if text[i] == MINUS else MINUS) + text[i + 1:]


def other_verdict(task: str, *phrases: str):
    """The words a primary verdict renders, and the words of another verdict in their place."""
    def edit(ns):
        said = prose.render("{verdict(%r, %r, %r, %r)}" % (task, *phrases), ns)
        return said, next(p for p in phrases if p != said)
    return edit


def other_description(measure: str, *phrases: str):
    """The words `clear` renders for an estimate, and the words of another reading in their place."""
    def edit(ns):
        said = prose.render("{clear(%s, %r, %r, %r)}" % (measure, *phrases), ns)
        return said, next(p for p in phrases if p != said)
    return edit


@pytest.mark.parametrize("cell_id, edit", [
    ("md-3a", lambda ns: (t := prose.render("{est(P['3a'])}", ns), bump(t))),      # a primary difference
    ("md-4d-answer", lambda ns: (t := prose.render("{diff(P['4d'])} points", ns), bump(t))),
    ("md-4b", other_verdict("4b", "128 hidden units are not too many", "128 hidden units are too many",
                            "128 hidden units are not shown to be too many or too few")),
    ("md-3c", other_verdict("3c", "raises", "lowers", "shows no difference in")),
    ("md-3b", other_description("S['3b']['overfit_rise']", "overfits clearly more",
                                "overfits clearly less", "shows no clear difference in overfitting")),
    ("md-4e-why", lambda ns: (t := prose.render("{est(I)}", ns), flip(t))),       # the interaction
    ("md-2c", lambda ns: (t := prose.render("{pct(M['2c']['best_val_accuracy'])}", ns), bump(t))),
    ("md-appendix-best", lambda ns: (t := prose.render("({R['best']['top_confusion']['images']} images)", ns),
                                     bump(t))),
])
def test_a_changed_number_or_word_fails(notebook, results, cell_id, edit):
    """The test bites: each edit below (a digit, a sign, a verdict's words, as rendered from the
    committed results, so on any machine's rerun too), made to a correct notebook, is caught."""
    cells = markdown_cells(notebook)
    old, new = edit(prose.namespace(results))
    text = prose.normalise(cells[cell_id])
    assert prose.normalise(old) in text, f"{cell_id} no longer says {old!r}: update the case"
    cells[cell_id] = text.replace(prose.normalise(old), prose.normalise(new), 1)
    assert check_claims(cells, results), f"changing {old!r} to {new!r} went unnoticed"


def test_an_unclaimed_number_fails(notebook, results):
    cells = markdown_cells(notebook)
    cells["md-3c"] += " It took 7.3 epochs."
    assert any("numbers without a claim: ['7.3']" in p for p in check_claims(cells, results))


def test_a_changed_verdict_fails(notebook, results):
    """A rerun whose verdict differs from what the prose says fails the suite."""
    changed = json.loads(json.dumps(results))
    changed["primary"]["4b"]["verdict"] = "no difference shown"
    problems = check_claims(markdown_cells(notebook), changed)
    assert any(p.startswith("md-4b") for p in problems)


# ================================================================================================
# Re-rendering: a rerun's numbers go in, the rest of the text stays, an edited cell stops it
# ================================================================================================

def perturbed(results: dict) -> dict:
    """results.json as another machine's rerun might give it: every difference and mean moved."""
    new = json.loads(json.dumps(results))
    for d in [*new["primary"].values(), *(m for s in new["secondary"].values() for m in s.values())]:
        for field in ("diff", "ci_low", "ci_high"):
            d[field] -= 0.0013
    for run in new["runs"].values():
        for measure, (mean, sd) in run["mean_sd"].items():
            run["mean_sd"][measure] = [mean * 0.999, sd]
    new["primary"]["3c"]["verdict"] = "lower"
    return new


def test_rerendering_puts_a_reruns_numbers_in_and_keeps_the_rest(notebook, results):
    cells = markdown_cells(notebook)
    new = perturbed(results)
    done = prose.rerender_cells(cells, new, [results])
    assert done != cells
    assert not check_claims(done, new), check_claims(done, new)
    assert check_claims(done, results)                       # the old numbers are gone
    for cell_id, text in cells.items():                      # cells without claims are untouched
        if cell_id not in prose.CLAIMS:
            assert done[cell_id] == text
    assert prose.rerender_cells(done, new, [results]) == done          # idempotent
    assert prose.rerender_cells(done, results, [new]) == prose.rerender_cells(cells, results, [])


def test_an_edited_cell_stops_the_rendering_and_names_the_cell(notebook, results):
    cells = markdown_cells(notebook)
    edited = dict(cells)
    edited["md-3a"] = edited["md-3a"].replace("points", "percentage points", 1)
    with pytest.raises(prose.ProseEdited, match="md-3a"):
        prose.rerender_cells(edited, perturbed(results), [results])


def test_rerender_leaves_the_notebook_file_alone_when_a_cell_was_edited(tmp_path, results):
    path = tmp_path / "nb.ipynb"
    nb = nbformat.read(NOTEBOOK, as_version=4)
    for cell in nb.cells:
        if cell.id == "md-4e":
            cell.source = "An edit by hand."
    nbformat.write(nb, path)
    before = path.read_bytes()
    results_path = tmp_path / "results.json"
    results_path.write_text(json.dumps(perturbed(results)))
    assert prose.main([str(path), "--results", str(results_path)]) == 1
    assert path.read_bytes() == before


# ================================================================================================
# Conclusions come from the primary verdicts alone
# ================================================================================================

def test_primary_intervals_and_verdicts_agree_by_construction(results):
    """results.json: each primary comparison's interval has Bonferroni's coverage 1 − 0.05/7, its
    verdict is the side of zero the interval lies on, and the adjusted p-value agrees."""
    primary = results["primary"]
    assert set(primary) == {"3a", "3b", "3c", "4a", "4b", "4d", "4e"}
    for task, p in primary.items():
        assert p["confidence"] == pytest.approx(1 - 0.05 / 7), task
        assert p["ci_low"] <= p["diff"] <= p["ci_high"], task
        expected = ("higher" if p["ci_low"] > 0 else "lower" if p["ci_high"] < 0
                    else "no difference shown")
        assert p["verdict"] == expected, task
        assert (p["adjusted_p_value"] < 0.05) == (expected != "no difference shown"), task
        assert p["adjusted_p_value"] == pytest.approx(min(1.0, 7 * p["p_value"])), task
        assert p["test"] == ("paired t-test" if p["paired"] else "Welch's t-test"), task
        assert p["measure"] == "best_val_accuracy", task
    for task, measures in results["secondary"].items():
        for measure, d in measures.items():
            assert d["confidence"] == pytest.approx(0.95) and "p_value" not in d, (task, measure)


def test_verdict_words_render_only_from_primary_comparisons(results):
    ns = prose.namespace(results)
    with pytest.raises(KeyError):
        ns["verdict"]("4e-lr", "higher", "lower", "no difference")     # a secondary: no verdict
    with pytest.raises(ValueError, match="verdict"):
        ns["clear"](results["primary"]["3a"], "up", "down", "none")    # a primary: no estimate words
    said = prose.conclusions(results)
    assert {task for _, task, _ in said} == set(results["primary"])


def test_estimate_words_follow_the_interval(results):
    """`clear` words an estimate by its 95 % interval: up or down only where it excludes zero."""
    ns = prose.namespace(results)
    d = dict(diff=0.5, ci_low=0.1, ci_high=0.9, confidence=0.95)
    assert ns["clear"](d, "up", "down", "none") == "up"
    assert ns["clear"](dict(d, diff=-0.5, ci_low=-0.9, ci_high=-0.1), "up", "down", "none") == "down"
    assert ns["clear"](dict(d, ci_low=-0.1), "up", "down", "none") == "none"
    assert ns["described"] == ["up", "down", "none"]
    words = [w for _, w in prose.descriptions(results)]
    assert len(words) >= 20 and any(w.startswith("held-out readings moved") for w in words)


def test_no_conclusion_word_outside_a_rendered_verdict(notebook, results):
    """Running prose may not conclude from an estimate: the words that say a difference is real or
    which way it goes appear only inside the claims that render a primary verdict."""
    ns, found = prose.namespace(results), []
    for cell_id, text in markdown_cells(notebook).items():
        rest = prose.normalise(running_prose(text))
        for template in prose.CLAIMS.get(cell_id, []):
            if any(function in template for function in RENDERED_WORDS):
                rest = rest.replace(prose.normalise(prose.render(template, ns)), " ")
        found += [f"{cell_id}: {m.group(0)!r} in …{rest[max(0, m.start() - 60):m.end() + 20]}…"
                  for m in CONCLUSION_WORDS.finditer(rest)]
    assert not found, "conclusion words outside the primary verdicts:\n" + "\n".join(found)


def test_a_conclusion_word_from_an_estimate_fails(notebook, results):
    cells = markdown_cells(notebook)
    text = prose.normalise(running_prose(cells["md-3b"])) + " It overfits sooner."
    assert CONCLUSION_WORDS.search(text)


# ================================================================================================
# The answers' shape: Task 3's three comments, each with its rendered direction word
# ================================================================================================

def labelled_comments(text: str) -> dict[str, str]:
    """A cell's paragraphs that start with one of `TASK3_LABELS`, by label."""
    return {p.split("**", 2)[1]: p for p in text.split("\n\n")
            if any(p.startswith(label) for label in TASK3_LABELS)}


@pytest.mark.parametrize("cell_id", ["md-3a", "md-3b", "md-3c"])
def test_each_trick_is_answered_in_the_three_comments_the_assignment_asks_for(notebook, results,
                                                                            cell_id):
    """Under 3a, 3b and 3c: the three labelled comments, once each and in order, each with a word
    that says which way its answer goes, rendered from results.json (a verdict or an estimate's
    words), never typed."""
    text = markdown_cells(notebook)[cell_id]
    places = [text.find(label) for label in TASK3_LABELS]
    assert all(p >= 0 for p in places) and places == sorted(places), places
    assert all(text.count(label) == 1 for label in TASK3_LABELS)
    ns = prose.namespace(results)
    rendered = [prose.normalise(prose.render(t, ns)) for t in prose.CLAIMS[cell_id]
                if any(function in t for function in RENDERED_WORDS)]
    for label, paragraph in labelled_comments(text).items():
        assert any(words in prose.normalise(paragraph) for words in rendered), (
            f"{cell_id}, {label}: no rendered direction word")
    assert len(labelled_comments(text)) == 3


def test_a_comment_without_its_rendered_word_fails(notebook, results):
    """The test above bites: the speed comment with its rendered words typed over is caught."""
    cells = markdown_cells(notebook)
    ns = prose.namespace(results)
    template = next(t for t in prose.CLAIMS["md-3a"] if "val_loss_epoch1'], 'makes" in t)
    typed = cells["md-3a"].replace(prose.render(template, ns), "converges at its own pace")
    rendered = [prose.normalise(prose.render(t, ns)) for t in prose.CLAIMS["md-3a"]
                if any(function in t for function in RENDERED_WORDS)]
    speed = labelled_comments(typed)["Convergence speed."]
    assert not any(words in prose.normalise(speed) for words in rendered)


# ================================================================================================
# Length
# ================================================================================================

INTERVAL = re.compile(r"\bCI\b")


def test_intervals_live_in_tables_with_about_one_per_answer_in_the_text(notebook):
    """At most 10 confidence intervals in running prose (tables do not count)."""
    count = sum(len(INTERVAL.findall(running_prose(c.source))) for c in notebook.cells
                if c.cell_type == "markdown")
    assert count <= 10, f"{count} intervals in running text"

def test_running_prose_is_short_and_in_markdown_cells(notebook):
    """At most 2,200 words of running prose (tables, headings and display math not counted), at
    least 90 % of them in Markdown cells rather than printed by code."""
    markdown, printed = prose_words(notebook)
    assert markdown + printed <= 2200, f"{markdown + printed} words of prose"
    assert markdown >= 0.9 * (markdown + printed), f"{printed} of {markdown + printed} words printed by code"
