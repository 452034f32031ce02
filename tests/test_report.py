"""The report notebook: it runs top to bottom (quick mode), exports a clean PDF, the committed copy
holds a full run's outputs without run-to-run noise, and (with A2_FULL_REPORT=1) a fresh full run
agrees with the committed results.json."""

import json
import re
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import numpy as np
import pytest
from nbclient import NotebookClient
from test_prose import check_claims, markdown_cells

from report import prose

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "assignment2.ipynb"
TASKS = ["1a", "1b", "2a", "2b", "2c", "2d", "3a", "3b", "3c", "4a", "4b", "4c", "4d", "4e"]
WIDGET_TEXT = ("interactive(", "IntProgress(", "HBox(", "VBox(")

needs_mnist = pytest.mark.skipif(not os.environ.get("MNIST_DIR"),
                                 reason="set MNIST_DIR to the folder with the MNIST files")


def execute(tmp_path: Path, monkeypatch, quick: bool) -> tuple[nbformat.NotebookNode, Path]:
    """Run the notebook in the project folder with its cache and figures in tmp_path."""
    figures = tmp_path / "figures"
    monkeypatch.setenv("A2_QUICK", "1" if quick else "0")
    monkeypatch.setenv("A2_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("A2_FIGURE_DIR", str(figures))
    nb = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(nb, timeout=1800, kernel_name="python3", record_timing=False,
                   store_widget_state=False, resources={"metadata": {"path": str(ROOT)}}).execute()
    return nb, figures


def text_outputs(nb) -> list[tuple[int, str]]:
    out = []
    for i, cell in enumerate(nb.cells):
        for o in cell.get("outputs", []):
            if "text" in o:
                out.append((i, o["text"]))
            for mime, value in o.get("data", {}).items():
                if mime.startswith("text/"):
                    out.append((i, value if isinstance(value, str) else "".join(value)))
    return out


def check_notebook(nb) -> None:
    """Every code cell ran without error; no widget text outside the widget cell."""
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        assert cell.get("execution_count"), f"cell {i} did not run"
        for o in cell.get("outputs", []):
            assert o["output_type"] != "error", f"cell {i} raised {o.get('ename')}: {o.get('evalue')}"
    for i, text in text_outputs(nb):
        if "remove_output_in_pdf" in nb.cells[i].metadata.get("tags", []):
            continue
        for bad in WIDGET_TEXT:
            assert bad not in text, f"cell {i} prints widget text {bad!r}"
        assert "\r" not in text, f"cell {i} keeps carriage-return progress output"


def export_pdf(notebook_path: Path) -> Path:
    subprocess.run([sys.executable, "-m", "jupyter", "nbconvert", "--config",
                    str(ROOT / "export" / "nbconvert_config.py"), "--to", "pdf",
                    str(notebook_path)], check=True, cwd=ROOT, capture_output=True)
    pdf = notebook_path.with_suffix(".pdf")
    headings = [arg for t in TASKS for arg in ("--require-heading", f"Task {t}")]
    subprocess.run([sys.executable, str(ROOT / "export" / "check_pdf.py"), str(pdf),
                    "--notebook", str(notebook_path), *headings], check=True)
    return pdf


@needs_mnist
@pytest.mark.skipif(not (shutil.which("xelatex") and shutil.which("pandoc")),
                    reason="the PDF needs xelatex and pandoc (see export/README.md)")
def test_quick_report_runs_and_exports(tmp_path, monkeypatch):
    """The notebook runs top to bottom and exports. Its kernel starts with neither
    OPENBLAS_CORETYPE nor NPY_DISABLE_CPU_FEATURES set, as on a reader's machine: everything it
    computes (gradient checks, gradient norms, predictions) and every run its worker processes train
    (they check that they compute as the kernel does) uses the pinned kernels, as results.json
    records them, read back from OpenBLAS."""
    import helpers
    monkeypatch.delenv("OPENBLAS_CORETYPE", raising=False)
    monkeypatch.delenv("NPY_DISABLE_CPU_FEATURES", raising=False)
    nb, figures = execute(tmp_path, monkeypatch, quick=True)
    check_notebook(nb)
    results = json.loads((figures / "results.json").read_text())
    assert results["quick"] is True
    pins = helpers.pinned_kernels(platform.machine(), helpers.cpu_flags())
    if "OPENBLAS_CORETYPE" in pins:
        assert results["environment"]["blas_core"] == helpers.PINNED_BLAS_CORE, results["environment"]
    if "NPY_DISABLE_CPU_FEATURES" in pins:
        assert results["environment"]["numpy_dispatch"] == "X86_V3", results["environment"]
    assert results["params_64_10"] == 50880
    assert {p.stem for p in figures.glob("*.png")} == {p.stem for p in figures.glob("*.pdf")}
    assert {p.stem for p in figures.glob("*.png")} == {p.stem for p in (ROOT / "figures").glob("*.png")}
    path = tmp_path / "assignment2.ipynb"
    nbformat.write(nb, path)
    assert export_pdf(path).stat().st_size > 100_000


def test_committed_notebook_holds_a_clean_full_run():
    """The committed report: every cell ran, in order, in full mode; no timings or widget state."""
    nb = nbformat.read(NOTEBOOK, as_version=4)
    check_notebook(nb)
    counts = [c.execution_count for c in nb.cells if c.cell_type == "code"]
    assert counts == list(range(1, len(counts) + 1)), "run it top to bottom in one kernel"
    assert "widgets" not in nb.metadata, "stored widget state"
    for i, cell in enumerate(nb.cells):
        assert "execution" not in cell.metadata, "cell timings are run-to-run noise"
        for output in cell.get("outputs", []):   # a warning names a path of this machine's
            assert output.get("name") != "stderr", f"cell {i} keeps stderr: {output['text'][:300]}"
    sources = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    for task in TASKS:
        assert f"### Task {task}" in sources or f"Task {task} " in sources, f"no heading for Task {task}"
    results = json.loads((ROOT / "figures" / "results.json").read_text())
    assert results["quick"] is False, "the committed results come from a quick run"
    check_records(results)


def check_records(results: dict) -> None:
    """What the report concludes rests on at least five seeds per configuration, read both ways and
    scored on the held-out images, and on the pre-named primary comparisons, each checked on the
    held-out images; 4e's follow-up has its control and the interaction; no wall-clock time is
    recorded."""
    for key in ("2c", "3a", "3b", "3c", "4a", "4b", "4d", "4e", "4e-lr", "3c-lr"):
        run = results["runs"][key]
        assert len(run["seeds"]) >= 5 and len(run["per_seed"]) == len(run["seeds"]), key
        for seed in run["per_seed"]:
            for reading in ("best", "end"):
                assert set(seed[reading]) == {"val_loss", "val_accuracy", "train_accuracy", "epoch"}, (key, seed)
            assert set(seed["held_out"]) == {"accuracy", "loss"}, (key, seed)
            assert 0.8 < seed["held_out"]["accuracy"] <= 1, (key, seed)
    assert set(results["primary"]) == {"3a", "3b", "3c", "4a", "4b", "4d", "4e"}
    for task, p in results["primary"].items():
        h = p["held_out"]
        assert h["confidence"] == p["confidence"] and h["test"] == p["test"], task
        assert h["ci_low"] <= h["diff"] <= h["ci_high"], task
    i = results["interaction"]
    effects = [np.array([s[1]["best"]["val_accuracy"] - s[0]["best"]["val_accuracy"]
                         for s in zip(results["runs"][a]["per_seed"], results["runs"][b]["per_seed"])])
               for a, b in (("3c", "3c-lr"), ("4e", "4e-lr"))]
    assert i["diff"] == pytest.approx(effects[1].mean() - effects[0].mean())
    assert i["confidence"] == pytest.approx(0.95) and i["ci_low"] < i["diff"] < i["ci_high"]
    assert "seconds" not in json.dumps(results), "wall-clock times are not results"


def conclusions(new: dict, old: dict) -> list[str]:
    """What the report concludes, compared: each primary comparison's verdict and the words the
    prose renders from it (`report.prose.conclusions`)."""
    problems = [f"primary {task}: verdict {new['primary'][task]['verdict']!r}, committed {p['verdict']!r}"
                for task, p in old["primary"].items() if new["primary"][task]["verdict"] != p["verdict"]]
    for (cell, task, words), (_, _, committed) in zip(prose.conclusions(new), prose.conclusions(old)):
        if words != committed:
            problems.append(f"{cell} ({task}): the prose would say {words!r}, committed {committed!r}")
    return problems


def claim_changes(new: dict, old: dict) -> list[str]:
    """Every quoted fragment whose text differs between two results, as 'cell: old -> new'."""
    a, b = prose.namespace(old), prose.namespace(new)
    return [f"{cell}: {prose.render(t, a)}  ->  {prose.render(t, b)}"
            for cell, templates in prose.CLAIMS.items() for t in templates
            if prose.render(t, a) != prose.render(t, b)]


def rerun_and_compare(tmp_path, monkeypatch) -> tuple[dict, dict, list[str]]:
    """Run the full report into tmp_path; return (its results, the committed ones, problems that
    hold everywhere: a failing cell, prose that does not quote the rerun's own numbers once
    re-rendered, a verdict or a rendered conclusion word that differs from the committed one)."""
    start = time.perf_counter()
    nb, figures = execute(tmp_path, monkeypatch, quick=False)
    print(f"full report from a clean cache: {time.perf_counter() - start:.0f} s")
    check_notebook(nb)
    new = json.loads((figures / "results.json").read_text())
    old = json.loads((ROOT / "figures" / "results.json").read_text())
    committed = nbformat.read(NOTEBOOK, as_version=4)
    cells = prose.rerender_cells(markdown_cells(committed), new, [old])
    return new, old, conclusions(new, old) + check_claims(cells, new)


@needs_mnist
@pytest.mark.skipif(os.environ.get("A2_FULL_REPORT") != "1",
                    reason="the full report takes minutes: set A2_FULL_REPORT=1 (CI does)")
def test_full_report_agrees_with_committed_results(tmp_path, monkeypatch):
    """Where the rerun computes with the committed report's kernels and versions (its results.json
    "environment"), every byte of results.json and of every figure is the committed one. Elsewhere
    the numbers may differ; the conclusions may not, and the prose re-rendered from the rerun
    quotes the rerun's numbers."""
    new, old, problems = rerun_and_compare(tmp_path, monkeypatch)
    figures = tmp_path / "figures"
    if new["environment"] == old["environment"]:
        print(f"exact comparison: the committed environment {old['environment']}")
        if (figures / "results.json").read_bytes() != (ROOT / "figures" / "results.json").read_bytes():
            problems.append("results.json differs from the committed one:\n  "
                            + "\n  ".join(claim_changes(new, old)[:20]))
        for path in sorted(figures.glob("*.png")):
            if path.read_bytes() != (ROOT / "figures" / path.name).read_bytes():
                problems.append(f"figures/{path.name} differs from the committed one")
    else:
        print(f"conclusions only: this machine computes with {new['environment']}, the committed "
              f"report with {old['environment']}")
    assert not problems, "the committed report is stale:\n" + "\n".join(problems)


def other_kernel_family() -> str:
    """A second OpenBLAS kernel family this processor runs: SkylakeX (AVX-512) or Sandybridge
    (AVX, any x86-64 of the last decade)."""
    import helpers
    flags = helpers.cpu_flags() or set()
    return "SkylakeX" if {"avx512f", "avx512bw", "avx512vl"} <= flags else "Sandybridge"


@needs_mnist
@pytest.mark.skipif(os.environ.get("A2_KERNEL_CHECK") != "1",
                    reason="the full report under a second kernel family takes minutes: set "
                           "A2_KERNEL_CHECK=1 (CI and make kernel-check do)")
def test_report_under_another_kernel_family_keeps_every_conclusion(tmp_path, monkeypatch):
    """The full report rerun with OpenBLAS's SkylakeX (or Sandybridge) kernels, read back from
    OpenBLAS: its numbers differ in the last bits, and through early stopping sometimes more, but
    every verdict and every rendered conclusion word is the committed one, and the prose
    re-rendered from it quotes its own numbers. What changes is printed (and written to
    build/kernel-check.txt)."""
    family = other_kernel_family()
    monkeypatch.setenv("OPENBLAS_CORETYPE", family)
    new, old, problems = rerun_and_compare(tmp_path, monkeypatch)
    assert new["environment"]["blas_core"] == family, new["environment"]
    changes = claim_changes(new, old)
    words = [f"{cell}: {was!r} -> {now!r}" for (cell, now), (_, was)
             in zip(prose.descriptions(new), prose.descriptions(old)) if now != was]
    report = (f"kernel check: {family} against the committed {old['environment']['blas_core']}: "
              f"{len(changes)} of {sum(map(len, prose.CLAIMS.values()))} quoted fragments change, "
              f"{len(words)} of {len(prose.descriptions(old))} estimate words change (allowed), "
              f"{len(problems)} problems\n" + "\n".join(changes + ["estimate words:"] + words
                                                         + problems) + "\n")
    (ROOT / "build").mkdir(exist_ok=True)
    (ROOT / "build" / "kernel-check.txt").write_text(report)
    print(report)
    assert not problems, "a conclusion changes with the kernel family:\n" + "\n".join(problems)
