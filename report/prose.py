"""The numbers and result-dependent words the report's prose quotes, rendered from results.json.

The prose lives in the notebook's Markdown cells, where GitHub and JupyterLab show it. Every
number in it that a run measures, and every word that depends on a result (a verdict), is a
*claim*: a fragment of one cell, written here as a Python f-string over `namespace` (the names
below, read from results.json). This module is the single source of those fragments:

- `rerender` puts a new run's numbers into the cells (``make report`` does it after the run, so
  that a rerun on another machine, whose last bits differ, leaves prose that quotes its own
  numbers). A claim is found in its cell as rendered from the results the prose was written for
  (the committed ones, or those on disk before the run), and replaced; a cell where a claim is not
  found, because a person edited that text, stops it with a `ProseEdited` naming the cell, and
  nothing is written.
- `problems` is what ``tests/test_prose.py`` checks: each claim appears in its cell exactly as
  rendered from the committed results, and every other number in the prose is one of the
  protocol's fixed numbers (`CONSTANTS`).
- `conclusions` lists the words rendered from the primary comparisons' verdicts, the only
  conclusions the prose draws. A word that describes a secondary difference (an estimate: faster,
  more overfitting) is rendered by `clear` from the estimate itself: its direction from the
  interval's side of zero, and *clear* only where the 95 % interval excludes zero ("no clear
  difference" otherwise). `descriptions` lists those words, so that a rerun shows which changed.

    python -m report.prose assignment2.ipynb [--results figures/results.json]

re-renders the notebook in place from the results given (default: the figures folder's).
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from pathlib import Path

from report.analysis import percent, signed

MINUS = "\u2212"
NBSP = "\u00a0"


# ================================================================================================
# What a claim can say: numbers as the prose prints them, and the primary verdicts' words
# ================================================================================================


def namespace(results: dict) -> dict:
    """The names a claim's f-string can use, over one results.json:

    R the whole results; P the primary comparisons, S the secondary differences (task -> measure);
    M and SD each configuration's mean and standard deviation over seeds (configuration ->
    measure); seed its per-seed records. pct(x) an accuracy, '96.23 %'; diff(d) a difference's
    signed size; ci(d) its interval, '95 % CI +3.92 to +4.63' (the primary ones at their
    Bonferroni level); est(d) both, '+4.27 points (95 % CI +3.92 to +4.63)'; size(task) a primary
    difference's unsigned size, for the sentence its verdict words; verdict(task, higher, lower,
    none) the words for that primary comparison's verdict (collected in ``said``); clear(d, up,
    down, none) the words for an estimate (collected in ``described``); held_out_check() the
    sentence that says where the held-out images would move a verdict; than(x, y, more, less) a
    word comparing two descriptive numbers (never a difference's sign); worst(key) the kept
    weights of a configuration's least accurate seed; sig(x) a number to two significant
    figures, '350,000'."""
    P, S = results["primary"], results["secondary"]
    M = {k: {m: v[0] for m, v in r["mean_sd"].items()} for k, r in results["runs"].items()}
    SD = {k: {m: v[1] for m, v in r["mean_sd"].items()} for k, r in results["runs"].items()}
    seed = {k: r["per_seed"] for k, r in results["runs"].items()}
    said: list[tuple[str, str]] = []

    def diff(d, scale=100, digits=2):
        return signed(scale * d["diff"], digits)

    def ci(d, scale=100, digits=2):
        level = 100 * d.get("confidence", 0.95)
        level = f"{level:.0f}" if abs(level - round(level)) < 1e-9 else f"{level:.1f}"
        return (f"{level}{NBSP}% CI {signed(scale * d['ci_low'], digits)} to "
                f"{signed(scale * d['ci_high'], digits)}")

    def est(d, scale=100, digits=2, unit=" points"):
        return f"{diff(d, scale, digits)}{unit} ({ci(d, scale, digits)})"

    def than(x, y, more, less):
        return more if x > y else less

    def worst(key):
        return min((s["best"] for s in seed[key]), key=lambda best: best["val_accuracy"])

    def size(task, scale=100, digits=2):
        return f"{abs(scale * P[task]['diff']):.{digits}f}"

    def verdict(task, higher, lower, none):
        words = {"higher": higher, "lower": lower, "no difference shown": none}[P[task]["verdict"]]
        said.append((task, words))
        return words

    described: list[str] = []

    def clear(d, up, down, none):
        if abs(d.get("confidence", 0) - 0.95) > 1e-9:
            raise ValueError("clear() words an estimate with a 95 % interval; a primary comparison "
                             "is worded by verdict()")
        words = up if d["ci_low"] > 0 else down if d["ci_high"] < 0 else none
        described.append(words)
        return words

    def held_out_check():
        moved = [f"{task} ({p['held_out']['side']} instead of {p['verdict']})"
                 for task, p in P.items() if p["held_out"]["side"] != p["verdict"]]
        described.append(f"held-out readings moved: {', '.join(moved) or 'none'}")
        if not moved:
            return "On the held-out images every interval lies on its verdict's side of zero."
        return ("On the held-out images the interval" + ("s" if len(moved) > 1 else "") + " of "
                + ", ".join(moved) + " would read otherwise.")

    def sig(x, digits=2):
        return f"{float(f'{x:.{digits}g}'):,.0f}" if abs(x) >= 10 ** digits else f"{x:.{digits}g}"

    return dict(R=results, P=P, S=S, M=M, SD=SD, seed=seed, pct=percent, diff=diff, ci=ci, est=est,
                size=size, verdict=verdict, said=said, clear=clear, described=described,
                held_out_check=held_out_check, than=than, worst=worst, sig=sig,
                I=results.get("interaction"))


def render(template: str, ns: dict) -> str:
    """One claim's text: the f-string ``template`` evaluated over ``ns``."""
    return eval("f" + repr(template), dict(ns)).strip()  # noqa: S307 (our own templates)


# ================================================================================================
# The claims, cell by cell (cell id -> fragments)
# ================================================================================================

#: Task 3's and 4's primary sentence: the difference and its Bonferroni interval.
def _primary(task: str) -> str:
    return "{est(P['%s'])}" % task


CLAIMS: dict[str, list[str]] = {
    'md-summary': [
        '{held_out_check()}',
    ],
    'md-task2': [
        "mean **μ = {R['mean']:.6f}** and standard deviation **σ = {R['std']:.6f}**",
    ],
    'md-2a-after': [
        "mean {R['pixels']['validation set, normalised with the training statistics']['mean']:.4f} and standard deviation {R['pixels']['validation set, normalised with the training statistics']['std']:.4f}",
    ],
    'md-2b': [
        "(largest error {R['gradient_check']['2b_max_abs_error_eps1e-3']:.1e})",
        "all {R['params_64_10_layers'][1]:,} output weights and a random 1,000 of the {R['params_64_10_layers'][0]:,} input weights",
        "at most {R['gradient_check']['2b_max_rel_error_eps1e-5']:.1e}",
    ],
    'md-2c': [
        "a validation accuracy of {pct(M['2c']['best_val_accuracy'])} at epoch {M['2c']['best_epoch']:.1f}",
        "{pct(M['2c']['best_train_accuracy'])}; at the end of training the validation accuracy is {pct(M['2c']['end_val_accuracy'])}",
    ],
    'md-2d': [
        "{R['params_64_10']:,} parameters**: 785 × 64 = {R['params_64_10_layers'][0]:,}",
        "64 × 10 = {R['params_64_10_layers'][1]:,}",
    ],
    'md-3a': [
        "{clear(S['3a']['val_loss_epoch1'], 'makes the network converge clearly slower', 'makes the network converge clearly faster', 'shows no clear difference in convergence speed')}",
        "{M['3a']['val_loss_epoch1']:.3f} instead of {M['2c']['val_loss_epoch1']:.3f}",
        "{clear(S['3a']['best_gap'], 'generalise clearly worse', 'generalise clearly better', 'show no clear difference in generalisation')}",
        "{100 * M['3a']['best_gap']:.2f} points instead of {100 * M['2c']['best_gap']:.2f}",
        "{clear(S['3a']['overfit_rise'], 'overfits clearly more', 'overfits clearly less', 'shows no clear difference in overfitting')}",
        "{verdict('3a', 'raises', 'lowers', 'shows no difference in')} the validation accuracy of the kept weights from {pct(M['2c']['best_val_accuracy'])} to {pct(M['3a']['best_val_accuracy'])}: {est(P['3a'])}",
        "{clear(S['3a']['best_val_loss'], 'clearly raises', 'clearly lowers', 'does not clearly change')}",
        "{R['initialisation']['uniform']['std']:.1f} and {R['initialisation']['improved']['std']:.2f}",
        "{pct(R['initialisation']['uniform']['saturated'], 0)} of the pre-activations, against {pct(R['initialisation']['improved']['saturated'], 0)}",
    ],
    'md-3b': [
        "{clear(S['3b']['val_loss_epoch1'], 'makes the network converge clearly slower', 'makes the network converge clearly faster', 'shows no clear difference in convergence speed')}",
        "{M['3b']['val_loss_epoch1']:.3f} instead of {M['3a']['val_loss_epoch1']:.3f}",
        "{clear(S['3b']['best_gap'], 'generalise clearly worse', 'generalise clearly better', 'show no clear difference in generalisation')}",
        "{100 * M['3b']['best_gap']:.2f} points instead of {100 * M['3a']['best_gap']:.2f}",
        "{clear(S['3b']['overfit_rise'], 'overfits clearly more', 'overfits clearly less', 'shows no clear difference in overfitting')}",
        "{verdict('3b', 'raises', 'lowers', 'shows no difference in')} the validation accuracy of the kept weights: {est(P['3b'])}",
        "{clear(S['3b']['best_val_loss'], 'clearly raises', 'clearly lowers', 'does not clearly change')}",
    ],
    'md-3c': [
        "{clear(S['3c']['val_loss_epoch1'], 'makes the network converge clearly slower', 'makes the network converge clearly faster', 'shows no clear difference in convergence speed')}",
        "{M['3c']['val_loss_epoch1']:.3f} instead of {M['3b']['val_loss_epoch1']:.3f}",
        "{clear(S['3c']['best_gap'], 'generalise clearly worse', 'generalise clearly better', 'show no clear difference in generalisation')}",
        "{100 * M['3c']['best_gap']:.2f} points instead of {100 * M['3b']['best_gap']:.2f}",
        "{clear(S['3c']['overfit_rise'], 'overfits clearly more', 'overfits clearly less', 'shows no clear difference in overfitting')}",
        "{verdict('3c', 'raises', 'lowers', 'shows no difference in')} the validation accuracy of the kept weights: {est(P['3c'])}",
        "{clear(S['3c']['best_val_loss'], 'clearly raises', 'clearly lowers', 'does not clearly change')}",
        "{pct(M['2c']['best_val_accuracy'])} to {pct(M['3c']['best_val_accuracy'])}, at epoch {M['3c']['best_epoch']:.1f} instead of {M['2c']['best_epoch']:.1f}",
    ],
    'md-4a': [
        "{verdict('4a', '32 hidden units are not too few: the validation accuracy is higher', '32 hidden units are too few: the validation accuracy is lower', '32 hidden units are not shown to be too few: the validation accuracy shows no difference')}, {est(P['4a'])}",
        "{pct(M['4a']['best_val_accuracy'])} against {pct(M['3c']['best_val_accuracy'])}",
        "{clear(S['4a']['best_train_loss'], 'fits the training images clearly worse', 'fits the training images clearly better', 'shows no clear difference in how well it fits the training images')}",
        "{M['4a']['best_train_loss'] / M['3c']['best_train_loss']:.1f} times",
        "{clear(S['4a']['overfit_rise'], 'overfits clearly more', 'overfits clearly less', 'shows no clear difference in overfitting')}",
        "{M['4a']['overfit_rise']:.3f} against {M['3c']['overfit_rise']:.3f}",
    ],
    'md-4b': [
        "{verdict('4b', '128 hidden units are not too many: the validation accuracy is higher', '128 hidden units are too many: the validation accuracy is lower', '128 hidden units are not shown to be too many or too few: the validation accuracy shows no difference')}, {est(P['4b'])}",
        "{pct(M['4b']['best_val_accuracy'])} against {pct(M['3c']['best_val_accuracy'])}",
        "{est(P['4b']['held_out'])}",
        "{clear(S['4b']['best_train_loss'], 'fits the training images clearly worse', 'fits the training images clearly better', 'shows no clear difference in how well it fits the training images')}",
        "{pct(M['4b']['best_train_accuracy'])} training accuracy",
        "{clear(S['4b']['overfit_rise'], 'overfits clearly more', 'overfits clearly less', 'shows no clear difference in overfitting')}",
        "{R['params']['4b']:,} parameters instead of {R['params']['3c']:,}, and {R['step_multiply_adds']['4b'] / R['step_multiply_adds']['3c']:.1f} times",
    ],
    'md-4c': [
        "(largest error {R['gradient_check']['4c_max_abs_error_eps1e-3']:.1e})",
        "at most {R['gradient_check']['4c_max_rel_error_eps1e-5']:.1e}",
    ],
    'md-4d': [
        "Task 3 network's {R['task4d']['target']:,} gives $w = {R['task4d']['real_width']:.2f}$",
        "{R['task4d']['width']} comes closer, with {R['task4d']['params']:,} parameters",
    ],
    'md-4dfig-caption': [
        "two hidden layers of {R['task4d']['width']} units",
    ],
    'md-4d-answer': [
        "{verdict('4d', 'gives a higher validation accuracy', 'gives a lower validation accuracy', 'shows no difference in validation accuracy')}: {est(P['4d'])}",
        "{clear(S['4d']['best_val_loss'], 'clearly higher', 'clearly lower', 'not clearly different')}",
        "{clear(S['4d']['val_loss_noise'], 'clearly more jagged', 'clearly less jagged', 'not clearly more or less jagged')}",
        "{M['4d']['val_loss_noise']:.4f} from one check to the next, against {M['3c']['val_loss_noise']:.4f}",
        "{diff(S['4d']['end_val_accuracy'])} points",
        "{clear(S['4d']['accuracy_gain'], 'goes on rising clearly more than', 'goes on rising clearly less than', 'moves no clearly different amount from')}",
        "{100 * M['4d']['accuracy_gain']:+.2f} against {100 * M['3c']['accuracy_gain']:+.2f} points",
    ],
    'md-4e': [
        "{verdict('4e', 'give a higher validation accuracy than the Task 3 network', 'give a lower validation accuracy than the Task 3 network', 'show no difference in validation accuracy from the Task 3 network')}: {est(P['4e'])}",
        "{pct(M['4e']['best_val_accuracy'])} against {pct(M['3c']['best_val_accuracy'])}",
        "{clear(S['4e']['val_loss_epoch1'], 'learns clearly slower', 'learns clearly faster', 'shows no clear difference in speed')}",
        "{M['4e']['val_loss_epoch1']:.3f} against {M['3c']['val_loss_epoch1']:.3f}",
        "{clear(S['4e']['best_train_loss'], 'fits the training images clearly worse', 'fits the training images clearly better', 'shows no clear difference in how well it fits the training images')}",
        "{pct(M['4e']['best_train_accuracy'])} against {pct(M['3c']['best_train_accuracy'])}",
    ],
    'md-4e-why': [
        "{sig(R['task4e']['init_norm_spread']['logistic sigmoid'])}",
        "only a factor of {R['task4e']['init_norm_spread']['Task 3 choices (scaled tanh)']:.1f}",
        "{pct(R['task4e']['first_layer_largest'], 0)} of the checks",
        "{diff(S['4e-lr']['best_val_accuracy'])} points and the one-layer network's by {diff(S['3c-lr']['best_val_accuracy'])}",
        '{est(I)}',
        "{clear(I, 'shows that the lower rate helps ten layers clearly more than one: the learning rate accounts for part of the shortfall', 'shows that the lower rate helps ten layers clearly less than one, against the learning-rate account', 'does not show that the lower rate helps ten layers more than one: these runs do not support the learning-rate account')}",
    ],
    'md-sweep-caption': [
        "standard deviations of {min(100 * SD[k]['best_val_accuracy'] for k in ('2c', '3a', '3b', '3c')):.2f} to {max(100 * SD[k]['best_val_accuracy'] for k in ('2c', '3a', '3b', '3c')):.2f} points",
    ],
    'md-appendix-best': [
        "{R['best']['configuration']}, seed {R['best']['seed']}",
        "{R['best']['right']:,} of {R['best']['images']:,} right ({pct(R['best']['held_out_accuracy'])}, against {pct(R['best']['val_accuracy'])} on the validation images)",
        "a {R['best']['top_confusion']['true']} read as a {R['best']['top_confusion']['predicted']} ({R['best']['top_confusion']['images']} images)",
    ],
    'md-appendix-sklearn': [
        "a fixed {R['sklearn']['epochs']} epochs",
    ],
    'md-sklearn-after': [
        "{pct(R['sklearn']['val_accuracy'])}",
        "{pct(min(s['end']['val_accuracy'] for s in seed['3c']))} to {pct(max(s['end']['val_accuracy'] for s in seed['3c']))}",
    ],
    'md-appendix-build': [
        "OpenBLAS's {R['environment']['blas_core']} kernels and NumPy {R['environment']['numpy']}",
    ],
}

#: Numbers the prose may quote without a claim: the protocol's and the assignment's settings,
#: layer widths, the report's fixed choices (seeds, images shown, grid ranges), and the levels of
#: the intervals. A number measured by a run is never here.
CONSTANTS = {
    "0", "1", "2", "3", "4", "5", "7", "8", "10", "12", "16", "20", "28", "32", "48", "50", "60",
    "64", "95", "99.3", "100", "125", "128", "256", "512", "784", "785", "1,000", "2,000", "10,000",
    "20,000", "40,000", "59,999",
    "0.005", "0.01", "0.02", "0.05", "0.1", "0.2", "0.9",
}


# ================================================================================================
# Reading the prose
# ================================================================================================

_MATH = re.compile(r"\$\$.*?\$\$|\$[^$]+\$", re.DOTALL)
_CODE = re.compile(r"`[^`]*`")
NUMBER = re.compile(r"(?<![\w.,])[+\u2212-]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:e[-+]\d+)?(?![\w])")


def normalise(text: str) -> str:
    """Non-breaking spaces as spaces, every run of whitespace as one space."""
    return " ".join(text.replace(NBSP, " ").split())


def quoted_numbers(text: str) -> list[str]:
    """The numbers of a Markdown text outside math and code spans, as written."""
    return NUMBER.findall(_CODE.sub(" ", _MATH.sub(" ", normalise(text))))


def _pattern(fragment: str) -> re.Pattern:
    """``fragment`` as a pattern that matches it across any line breaks and spaces."""
    return re.compile(r"\s+".join(re.escape(part) for part in fragment.split()))


def find(fragment: str, text: str) -> list[re.Match]:
    """Every place ``fragment`` appears in ``text``, whatever the spacing between its words."""
    return list(_pattern(fragment).finditer(text))


# ================================================================================================
# Checking and re-rendering
# ================================================================================================

class ProseEdited(Exception):
    """A cell no longer holds a claim's text as rendered: someone edited it."""


def problems(cells: dict[str, str], results: dict, claims: dict[str, list[str]] | None = None) -> list[str]:
    """Every disagreement between the prose (cell id -> Markdown) and ``results``: a claim not in
    its cell exactly once as rendered, a claim that does not render, a number quoted outside the
    claims and `CONSTANTS`, a claim for a cell the notebook does not have."""
    claims = CLAIMS if claims is None else claims
    ns, found = namespace(results), []
    for cell_id in sorted(set(claims) - set(cells)):
        found.append(f"{cell_id}: claims for a Markdown cell the notebook does not have")
    for cell_id, text in cells.items():
        rest = text
        for template in claims.get(cell_id, []):
            try:
                expected = render(template, ns)
            except (KeyError, IndexError, TypeError, ValueError) as err:
                found.append(f"{cell_id}: the claim {template!r} does not render: "
                             f"{type(err).__name__}: {err}")
                continue
            places = find(expected, rest)
            if len(places) != 1:
                found.append(f"{cell_id}: expected the text once, found it {len(places)} times:\n"
                             f"    {expected}")
            rest = _pattern(expected).sub(" ", rest)
        stray = [n for n in quoted_numbers(rest) if n.lstrip("+" + MINUS + "-") not in CONSTANTS]
        if stray:
            found.append(f"{cell_id}: numbers without a claim: {stray}")
    return found


def _collected(results: dict, claims: dict[str, list[str]] | None, kind: str) -> list[tuple]:
    """(cell id, item) for every item the claims add to the namespace's list ``kind`` ("said" or
    "described") as they render, in the order of the cells and their claims."""
    claims = CLAIMS if claims is None else claims
    out = []
    for cell_id, templates in claims.items():
        for template in templates:
            ns = namespace(results)
            render(template, ns)
            out += [(cell_id, item) for item in ns[kind]]
    return out


def conclusions(results: dict, claims: dict[str, list[str]] | None = None) -> list[tuple[str, str, str]]:
    """The conclusions the prose draws: (cell id, task, words) for every verdict a claim renders,
    in the order of the cells and their claims."""
    return [(cell_id, task, words) for cell_id, (task, words) in _collected(results, claims, "said")]


def descriptions(results: dict, claims: dict[str, list[str]] | None = None) -> list[tuple[str, str]]:
    """The words the prose renders from estimates (`clear`): (cell id, words), in the order of
    the cells and their claims. Unlike a verdict, such a word may change with its number on a
    rerun elsewhere; the kernel check prints which did."""
    return _collected(results, claims, "described")


def rerender_cells(cells: dict[str, str], new: dict, old: list[dict],
                   claims: dict[str, list[str]] | None = None) -> dict[str, str]:
    """The cells (id -> Markdown) with every claim rendered from ``new``. Each claim is found as
    rendered from ``new`` (already current) or from one of ``old`` (the results the prose may have
    been written for), and replaced; the rest of the text is kept as it is.

    Raises ProseEdited, naming the cell and the text it no longer holds, if a claim is found under
    none of them, or in more than one place."""
    claims = CLAIMS if claims is None else claims
    out = dict(cells)
    for cell_id, templates in claims.items():
        if cell_id not in cells:
            raise ProseEdited(f"the notebook has no Markdown cell {cell_id!r}, which report/prose.py "
                              "quotes numbers in: was it deleted, or its id changed?")
        text, spans = cells[cell_id], []
        for template in templates:
            candidates = [render(template, namespace(new))]
            for results in old:      # results written before this claim existed cannot render it
                try:
                    candidates.append(render(template, namespace(results)))
                except (AttributeError, KeyError, IndexError, TypeError, ValueError):
                    pass
            for candidate in candidates:
                places = find(candidate, text)
                if len(places) == 1:
                    spans.append((places[0].start(), places[0].end(), candidates[0]))
                    break
            else:
                raise ProseEdited(
                    f"cell {cell_id!r} no longer holds the text\n    {normalise(candidates[-1])}\n"
                    "as report/prose.py renders it (was the cell edited by hand?). Nothing was "
                    "written. Restore the text, or change its claim in report/prose.py to match, "
                    "then run again (finished runs are cached).")
        spans.sort()
        for (_, end, _), (start, _, _) in zip(spans, spans[1:]):
            if start < end:
                raise ProseEdited(f"cell {cell_id!r}: two claims overlap; fix report/prose.py")
        for start, end, replacement in reversed(spans):
            text = text[:start] + replacement + text[end:]
        out[cell_id] = text
    return out


def committed_results(path: Path) -> dict | None:
    """The results.json at ``path`` as git's HEAD has it, or None (not in a git work tree)."""
    try:
        top = subprocess.run(["git", "-C", str(path.parent), "rev-parse", "--show-toplevel"],
                             capture_output=True, text=True, check=True).stdout.strip()
        relative = path.resolve().relative_to(Path(top).resolve())
        shown = subprocess.run(["git", "-C", top, "show", f"HEAD:{relative.as_posix()}"],
                               capture_output=True, text=True, check=True).stdout
        return json.loads(shown)
    except (OSError, subprocess.CalledProcessError, ValueError):
        return None


def rerender(nb, new: dict, old: list[dict | None]) -> int:
    """Re-render the claims of notebook ``nb`` (an nbformat node, changed in place) from ``new``;
    ``old`` as for `rerender_cells` (None entries are skipped). Returns how many cells changed."""
    cells = {c.id: c.source for c in nb.cells if c.cell_type == "markdown"}
    done = rerender_cells(cells, new, [r for r in old if r is not None])
    changed = 0
    for cell in nb.cells:
        if cell.cell_type == "markdown" and done[cell.id] != cell.source:
            cell.source = done[cell.id]
            changed += 1
    return changed


def main(argv: list[str] | None = None) -> int:
    import nbformat
    parser = argparse.ArgumentParser(description="Re-render the report's quoted numbers from a "
                                                 "results.json into the notebook, in place.")
    parser.add_argument("notebook", type=Path)
    parser.add_argument("--results", type=Path, default=None,
                        help="results.json (default: figures/results.json beside the notebook)")
    args = parser.parse_args(argv)
    path = args.results or args.notebook.resolve().parent / "figures" / "results.json"
    nb = nbformat.read(args.notebook, as_version=4)
    try:
        changed = rerender(nb, json.loads(path.read_text()), [committed_results(path)])
    except ProseEdited as err:
        print(f"report.prose: {err}", file=sys.stderr)
        return 1
    nbformat.write(nb, args.notebook)
    print(f"report.prose: {changed} cells re-rendered from {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
