"""The report's prose against its numbers: every number a Markdown cell quotes comes from the
committed figures/results.json, rounded as printed, and every verdict word agrees with its test.

Each entry of CLAIMS is a fragment of one Markdown cell, written as a Python f-string over
results.json (names below). The test renders it and requires it verbatim in that cell, so a changed
number, a flipped sign word ("lower" for a rise) or a verdict the test does not support fails. Then
every number left in the cell's prose, outside math and code and outside the rendered fragments,
must be one of the protocol's fixed numbers (CONSTANTS): a number quoted without a claim fails too.
The notebook's prose lives in Markdown cells (what GitHub and JupyterLab show as text); the limits
on its length are tested here as well.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import nbformat
import pytest

from report.analysis import format_p, signed

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "assignment2.ipynb"
RESULTS = ROOT / "figures" / "results.json"
MINUS = "\u2212"

# ================================================================================================
# Reading the notebook: Markdown cells, running prose, numbers
# ================================================================================================

_MATH = re.compile(r"\$\$.*?\$\$|\$[^$]+\$", re.DOTALL)
_CODE = re.compile(r"`[^`]*`")
NUMBER = re.compile(r"(?<![\w.,])[+\u2212-]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:e[-+]\d+)?(?![\w])")


def normalise(text: str) -> str:
    """Non-breaking spaces as spaces, every run of whitespace as one space."""
    return " ".join(text.replace("\u00a0", " ").split())


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


def quoted_numbers(text: str) -> list[str]:
    """The numbers of a Markdown text outside math and code spans, as written."""
    return NUMBER.findall(_CODE.sub(" ", _MATH.sub(" ", normalise(text))))


# ================================================================================================
# Rendering claims from results.json
# ================================================================================================

def fixed(x: float, digits: int, sign: bool = False) -> str:
    """'4.27', or with ``sign`` '+4.27' / '−0.07' (`analysis.signed`: the tables' true minus sign,
    as the prose writes it too)."""
    return signed(x, digits) if sign else f"{x:.{digits}f}".replace("-", MINUS)


def namespace(results: dict) -> dict:
    """What the claims' f-strings can use."""
    P, S = results["primary"], results["secondary"]
    M = {k: {m: v[0] for m, v in r["mean_sd"].items()} for k, r in results["runs"].items()}
    SD = {k: {m: v[1] for m, v in r["mean_sd"].items()} for k, r in results["runs"].items()}
    seed = {k: r["per_seed"] for k, r in results["runs"].items()}

    def pct(x, digits=2):               # an accuracy: '96.23 %'
        return f"{100 * x:.{digits}f} %"

    def mag(d, scale=100, digits=2):    # a difference's size: '4.27'
        return f"{abs(scale * d['diff']):.{digits}f}"

    def diff(d, scale=100, digits=2):   # a signed difference: '−0.46'
        return fixed(scale * d["diff"], digits, sign=True)

    def ci(d, scale=100, digits=2):     # '95 % CI +3.92 to +4.63'
        return (f"95 % CI {fixed(scale * d['ci_low'], digits, True)} to "
                f"{fixed(scale * d['ci_high'], digits, True)}")

    def holm(task):
        return f"Holm-adjusted {format_p(P[task]['holm_p_value'])}"

    def word(d, negative, positive):    # the word for the difference's sign
        return negative if d["diff"] < 0 else positive

    def verdict(task, expected):        # the verdict a primary comparison's sentence states
        got = P[task]["verdict"]
        assert got == expected, f"{task}: the text says '{expected}', the test says '{got}'"
        return ""

    return dict(R=results, P=P, S=S, M=M, SD=SD, seed=seed, pct=pct, mag=mag, diff=diff, ci=ci,
                holm=holm, word=word, verdict=verdict, fixed=fixed)


def render(template: str, ns: dict) -> str:
    return normalise(eval("f" + repr(template), dict(ns)))  # noqa: S307 (our own templates)


# ================================================================================================
# The claims, cell by cell (cell id -> fragments)
# ================================================================================================

PRIMARY_SENTENCE = "{ci(P['%s'])}; {holm('%s')}"

CLAIMS: dict[str, list[str]] = {
    "md-task2": [
        "mean **μ = {R['mean']:.6f}** and standard deviation **σ = {R['std']:.6f}**",
    ],
    "md-2a-after": [
        "mean {R['pixels']['validation set, normalised with the training statistics']['mean']:.4f} "
        "and standard deviation {R['pixels']['validation set, normalised with the training statistics']['std']:.4f}",
    ],
    "md-2b": [
        "(largest error {R['gradient_check']['2b_max_abs_error_eps1e-3']:.1e})",
        "all {R['params_64_10_layers'][1]:,} output weights and a random 1,000 of the "
        "{R['params_64_10_layers'][0]:,} input weights",
        "saturated ({pct(R['initialisation']['uniform']['saturated'], 0)} in Task 3a)",
        "at most {R['gradient_check']['2b_max_rel_error_eps1e-5']:.1e}",
    ],
    "md-2c": [
        "validation accuracy of {pct(M['2c']['best_val_accuracy'])} at epoch {M['2c']['best_epoch']:.1f} "
        "on average, with a training accuracy of {pct(M['2c']['best_train_accuracy'])}, and "
        "{pct(M['2c']['end_val_accuracy'])} at the end of training",
        "the gap of {100 * M['2c']['best_gap']:.2f} points between them at the kept weights",
    ],
    "md-2d": [
        "**The network has {R['params_64_10']:,} parameters**: 785 × 64 = {R['params_64_10_layers'][0]:,}",
        "64 × 10 = {R['params_64_10_layers'][1]:,}",
    ],
    "md-3a": [
        "{verdict('3a', 'higher')}raises the validation accuracy of the kept weights by {mag(P['3a'])} points**",
        "(" + PRIMARY_SENTENCE % ("3a", "3a") + "), from {pct(M['2c']['best_val_accuracy'])} to "
        "{pct(M['3a']['best_val_accuracy'])}",
        "the validation loss is {mag(S['3a']['val_loss_epoch1'], 1, 3)} "
        "{word(S['3a']['val_loss_epoch1'], 'lower', 'higher')} ({ci(S['3a']['val_loss_epoch1'], 1, 3)})",
        "({diff(S['3a']['best_epoch'], 1, 1)} epochs, {ci(S['3a']['best_epoch'], 1, 1)})",
        "({pct(M['3a']['best_train_accuracy'])} against {pct(M['2c']['best_train_accuracy'])})",
        "{word(S['3a']['best_gap'], 'narrows', 'widens')} from {100 * M['2c']['best_gap']:.2f} to "
        "{100 * M['3a']['best_gap']:.2f} points ({diff(S['3a']['best_gap'])}, {ci(S['3a']['best_gap'])})",
        "the standard deviations are {R['initialisation']['uniform']['std']:.1f} and "
        "{R['initialisation']['improved']['std']:.2f}, and "
        "{pct(R['initialisation']['uniform']['saturated'], 0)} of the pre-activations",
    ],
    "md-3b": [
        "{verdict('3b', 'no difference shown')}shows no difference in validation accuracy:** "
        "{diff(P['3b'])} points (" + PRIMARY_SENTENCE % ("3b", "3b") + "), which rules out a gain "
        "of more than {100 * P['3b']['ci_high']:.2f} points",
        "the best check comes {mag(S['3b']['best_epoch'], 1, 1)} epochs "
        "{word(S['3b']['best_epoch'], 'sooner', 'later')} ({ci(S['3b']['best_epoch'], 1, 1)}), at epoch "
        "{M['3b']['best_epoch']:.1f} instead of {M['3a']['best_epoch']:.1f}",
        "the validation loss after one epoch is {mag(S['3b']['val_loss_epoch1'], 1, 3)} "
        "{word(S['3b']['val_loss_epoch1'], 'lower', 'higher')} ({ci(S['3b']['val_loss_epoch1'], 1, 3)})",
        "fits every training image ({pct(M['3b']['end_train_accuracy'])})",
        "its validation loss rises {mag(S['3b']['overfit_rise'], 1, 4)} "
        "{word(S['3b']['overfit_rise'], 'less', 'more')} after the best check ({ci(S['3b']['overfit_rise'], 1, 4)})",
    ],
    "md-3c": [
        "{verdict('3c', 'no difference shown')}shows no difference in validation accuracy:** "
        "{diff(P['3c'])} points (" + PRIMARY_SENTENCE % ("3c", "3c") + ")",
        "the best check comes {mag(S['3c']['best_epoch'], 1, 1)} epochs "
        "{word(S['3c']['best_epoch'], 'sooner', 'later')} ({ci(S['3c']['best_epoch'], 1, 1)})",
        "the validation loss after one epoch is {mag(S['3c']['val_loss_epoch1'], 1, 3)} "
        "{word(S['3c']['val_loss_epoch1'], 'lower', 'higher')} ({ci(S['3c']['val_loss_epoch1'], 1, 3)})",
        "(standard deviation {100 * SD['3c']['best_val_accuracy']:.2f} against "
        "{100 * SD['3b']['best_val_accuracy']:.2f} points)",
        "kept the weights of epoch {seed['3c'][1]['best']['epoch']:.1f} "
        "({pct(seed['3c'][1]['best']['val_accuracy'])}, training accuracy "
        "{pct(seed['3c'][1]['best']['train_accuracy'])})",
        "Dixon's Q test (95 %) finds {'no seed standing apart in any configuration' if not R['stands_apart'] else 'a seed apart: ' + str(R['stands_apart'])}",
        "from {pct(M['2c']['best_val_accuracy'])} to {pct(M['3c']['best_val_accuracy'])}, reached at "
        "epoch {M['3c']['best_epoch']:.1f} instead of {M['2c']['best_epoch']:.1f}",
    ],
    "md-4a": [
        "{verdict('4a', 'lower')}the validation accuracy is lower, by {mag(P['4a'])} points** "
        "(" + PRIMARY_SENTENCE % ("4a", "4a") + "): {pct(M['4a']['best_val_accuracy'])} against "
        "{pct(M['3c']['best_val_accuracy'])}",
        "({pct(M['4a']['best_train_accuracy'])} against {pct(M['3c']['best_train_accuracy'])}; "
        "{diff(S['4a']['best_train_accuracy'])} points, {ci(S['4a']['best_train_accuracy'])})",
        "every training image ({pct(M['4a']['end_train_accuracy'])})",
        "also climbs {word(S['4a']['overfit_rise'], 'less', 'more')}, by {mag(S['4a']['overfit_rise'], 1, 3)} "
        "({ci(S['4a']['overfit_rise'], 1, 3)})",
    ],
    "md-4b": [
        "{verdict('4b', 'higher')}the validation accuracy is higher, by {mag(P['4b'])} points** "
        "(" + PRIMARY_SENTENCE % ("4b", "4b") + "): {pct(M['4b']['best_val_accuracy'])} against "
        "{pct(M['3c']['best_val_accuracy'])}",
        "with a {word(S['4b']['best_val_loss'], 'lower', 'higher')} validation loss "
        "({diff(S['4b']['best_val_loss'], 1, 3)}, {ci(S['4b']['best_val_loss'], 1, 3)})",
        "almost perfectly ({pct(M['4b']['best_train_accuracy'])})",
        "climbs {word(S['4b']['overfit_rise'], 'less', 'more')} after the best check than the 64-unit "
        "network's ({diff(S['4b']['overfit_rise'], 1, 3)}, {ci(S['4b']['overfit_rise'], 1, 3)})",
        "parameters ({R['params']['4b']:,} against {R['params']['3c']:,})",
        "a step takes {R['step_multiply_adds']['4b'] / R['step_multiply_adds']['3c']:.1f} times",
    ],
    "md-4c": [
        "(largest error {R['gradient_check']['4c_max_abs_error_eps1e-3']:.1e})",
        "at most {R['gradient_check']['4c_max_rel_error_eps1e-5']:.1e}",
    ],
    "md-4d": [
        "Task 3 network's {R['task4d']['target']:,} gives $w = {R['task4d']['real_width']:.2f}$",
        "{R['task4d']['width']} comes closer, with {R['task4d']['params']:,} parameters",
    ],
    "md-4dfig-caption": ["two hidden layers of {R['task4d']['width']} units"],
    "md-4d-answer": [
        "{verdict('4d', 'no difference shown')}a second hidden layer shows no difference in "
        "validation accuracy:** {diff(P['4d'])} points (" + PRIMARY_SENTENCE % ("4d", "4d") + ")",
        "its best check comes {mag(S['4d']['best_epoch'], 1, 1)} epochs "
        "{word(S['4d']['best_epoch'], 'earlier', 'later')} ({ci(S['4d']['best_epoch'], 1, 1)})",
        "at a training accuracy {mag(S['4d']['best_train_accuracy'])} points "
        "{word(S['4d']['best_train_accuracy'], 'lower', 'higher')} ({ci(S['4d']['best_train_accuracy'])})",
        "their validation accuracies differ by {diff(S['4d']['end_val_accuracy'])} points "
        "({ci(S['4d']['end_val_accuracy'])})",
    ],
    "md-4e": [
        "{verdict('4e', 'lower')}give a lower validation accuracy than the Task 3 network, by "
        "{mag(P['4e'])} points** (" + PRIMARY_SENTENCE % ("4e", "4e") + "): "
        "{pct(M['4e']['best_val_accuracy'])} against {pct(M['3c']['best_val_accuracy'])}, with "
        "{R['params']['4e']:,} parameters instead of {R['params']['3c']:,}",
        "validation loss is {mag(S['4e']['val_loss_epoch1'], 1, 3)} "
        "{word(S['4e']['val_loss_epoch1'], 'lower', 'higher')} ({ci(S['4e']['val_loss_epoch1'], 1, 3)})",
        "less well ({pct(M['4e']['best_train_accuracy'])} against {pct(M['3c']['best_train_accuracy'])})",
        "{M['4e']['loss_rises']:.1f} times per run, against {M['3c']['loss_rises']:.1f} times",
    ],
    "md-4e-why": [
        "span a factor of {R['task4e']['init_norm_spread']['logistic sigmoid']:,.0f}",
        "they span a factor of "
        "{R['task4e']['init_norm_spread']['Task 3 choices (scaled tanh)']:.1f}",
        "the largest at {pct(R['task4e']['first_layer_largest_seed0'], 0)} of the checks",
        "kept weights are {mag(S['4e-lr']['best_val_accuracy'])} points "
        "{word(S['4e-lr']['best_val_accuracy'], 'less', 'more')} accurate "
        "({ci(S['4e-lr']['best_val_accuracy'])}), at {pct(M['4e-lr']['best_val_accuracy'])}",
        "the best check comes {mag(S['4e-lr']['best_epoch'], 1, 1)} epochs "
        "{word(S['4e-lr']['best_epoch'], 'sooner', 'later')} ({ci(S['4e-lr']['best_epoch'], 1, 1)})",
        "leaving it {mag(S['4e-lr vs 3c']['best_val_accuracy'])} points "
        "{word(S['4e-lr vs 3c']['best_val_accuracy'], 'short of', 'ahead of')} the Task 3 network "
        "({ci(S['4e-lr vs 3c']['best_val_accuracy'])})",
        "The jumps do not clearly go ({diff(S['4e-lr']['loss_rises'], 1, 1)} per run, "
        "{ci(S['4e-lr']['loss_rises'], 1, 1)})",
    ],
    "md-sweep-caption": [
        "standard deviations of {min(100 * SD[k]['best_val_accuracy'] for k in ('2c', '3a', '3b', '3c')):.2f} "
        "to {max(100 * SD[k]['best_val_accuracy'] for k in ('2c', '3a', '3b', '3c')):.2f} points",
    ],
    "md-appendix-best": [
        "configuration, {R['best']['configuration']} (128 hidden units), seed {R['best']['seed']}",
        "{R['best']['right']:,} of {R['best']['images']:,} are right, and the most common confusion "
        "is a {R['best']['top_confusion']['true']} read as a {R['best']['top_confusion']['predicted']} "
        "({R['best']['top_confusion']['images']} images)",
    ],
    "md-appendix-sklearn": ["trains a fixed {R['sklearn']['epochs']} epochs"],
    "md-sklearn-after": [
        "It reaches {pct(R['sklearn']['val_accuracy'])}",
        "between {pct(min(s['end']['val_accuracy'] for s in seed['3c']))} and "
        "{pct(max(s['end']['val_accuracy'] for s in seed['3c']))}, "
        "{'each above' if min(s['end']['val_accuracy'] for s in seed['3c']) > R['sklearn']['val_accuracy'] else 'around'} "
        "its single run",
    ],
}

#: Numbers the prose may quote without a claim: the protocol's and the assignment's settings,
#: layer widths, the report's fixed choices (seeds, images shown, grid ranges), and the 95 % of
#: the intervals. A number measured by a run is never here.
CONSTANTS = {
    "0", "1", "2", "3", "4", "5", "8", "10", "12", "16", "20", "28", "32", "48", "50", "60", "64",
    "95", "100", "125", "128", "256", "512", "784", "785", "1,000", "2,000", "10,000", "20,000",
    "0.005", "0.01", "0.02", "0.1", "0.25", "0.9",
}


# ================================================================================================
# Tests
# ================================================================================================

@pytest.fixture(scope="module")
def notebook():
    return nbformat.read(NOTEBOOK, as_version=4)


@pytest.fixture(scope="module")
def results():
    return json.loads(RESULTS.read_text())


def markdown_cells(nb) -> dict[str, str]:
    return {c.id: c.source for c in nb.cells if c.cell_type == "markdown"}


def check_claims(cells: dict[str, str], results: dict) -> list[str]:
    """Every problem found: a claim not in its cell as rendered, a verdict the test does not
    support, a number quoted outside the claims and the constants."""
    ns, problems = namespace(results), []
    for cell_id, text in cells.items():
        prose = normalise(text)
        for template in CLAIMS.get(cell_id, []):
            try:
                expected = render(template, ns)
            except (AssertionError, KeyError, IndexError) as err:
                problems.append(f"{cell_id}: {type(err).__name__}: {err}")
                continue
            if expected not in prose:
                problems.append(f"{cell_id}: expected the text\n    {expected}")
            prose = prose.replace(expected, " ")
        stray = [n for n in quoted_numbers(prose) if n.lstrip("+" + MINUS + "-") not in CONSTANTS]
        if stray:
            problems.append(f"{cell_id}: numbers without a claim: {stray}")
    return problems


def test_every_claim_has_its_cell(notebook):
    missing = set(CLAIMS) - set(markdown_cells(notebook))
    assert not missing, f"claims for Markdown cells the notebook no longer has: {sorted(missing)}"


def test_every_quoted_number_agrees_with_the_committed_results(notebook, results):
    problems = check_claims(markdown_cells(notebook), results)
    assert not problems, "the prose disagrees with figures/results.json:\n" + "\n".join(problems)


@pytest.mark.parametrize("cell_id, old, new", [
    ("md-3a", "by 4.27 points", "by 4.28 points"),                  # a quoted difference
    ("md-4d-answer", "−0.46 points", "−0.47 points"),               # a signed one
    ("md-4b", "the validation accuracy is higher", "the validation accuracy is lower"),
    ("md-3b", "26.1 epochs sooner", "26.1 epochs later"),           # a sign word
    ("md-2c", "91.73", "91.74"),
    ("md-4e", "27.4 times", "27.5 times"),
    ("md-appendix-best", "(14 images)", "(15 images)"),
])
def test_a_changed_number_or_word_fails(notebook, results, cell_id, old, new):
    """The test bites: each edit below, made to a correct notebook, is caught."""
    cells = markdown_cells(notebook)
    assert old in normalise(cells[cell_id]), f"{cell_id} no longer says {old!r}: update the case"
    cells[cell_id] = normalise(cells[cell_id]).replace(old, new, 1)
    assert check_claims(cells, results), f"changing {old!r} to {new!r} went unnoticed"


def test_an_unclaimed_number_fails(notebook, results):
    cells = markdown_cells(notebook)
    cells["md-3c"] += " It took 7.3 epochs."
    assert any("numbers without a claim: ['7.3']" in p for p in check_claims(cells, results))


def test_a_changed_result_fails(notebook, results):
    """A rerun whose result differs from what the prose says fails the suite."""
    changed = json.loads(json.dumps(results))
    changed["primary"]["4b"]["holm_p_value"] = 0.2
    changed["primary"]["4b"]["verdict"] = "no difference shown"
    problems = check_claims(markdown_cells(notebook), changed)
    assert any("4b" in p and "the text says 'higher'" in p for p in problems)


def test_running_prose_is_short_and_in_markdown_cells(notebook):
    """At most 3,000 words of running prose (tables, headings and display math not counted), at
    least 85 % of them in Markdown cells rather than printed by code."""
    markdown, printed = prose_words(notebook)
    assert markdown + printed <= 3000, f"{markdown + printed} words of prose"
    assert markdown >= 0.85 * (markdown + printed), f"{printed} of {markdown + printed} words printed by code"


def test_primary_comparisons_are_recorded_with_their_method(results):
    """results.json holds, for each primary comparison, the difference, its 95 % interval, the
    test, the raw and Holm-adjusted p-value and the verdict those allow."""
    primary = results["primary"]
    assert set(primary) == {"3a", "3b", "3c", "4a", "4b", "4d", "4e"}
    for task, p in primary.items():
        assert p["test"] == ("paired t-test" if p["paired"] else "Welch's t-test"), task
        assert p["ci_low"] <= p["diff"] <= p["ci_high"], task
        assert p["p_value"] <= p["holm_p_value"] <= 1, task
        expected = ("no difference shown" if p["holm_p_value"] >= 0.05
                    else "higher" if p["diff"] > 0 else "lower")
        assert p["verdict"] == expected, task
        assert p["measure"] == "best_val_accuracy", task
    assert [primary[t]["paired"] for t in ("3a", "3b", "3c", "4a", "4b", "4d", "4e")] == [
        False, True, True, False, False, False, False]
