"""A rerun changes nothing: executing the notebook the way `make report` does (report/execute.py,
from a clean cache) twice gives byte-identical notebooks, figures and results.json, and no output
holds a date or a wall-clock time. Quick mode, so that it takes seconds, not minutes."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
needs_mnist = pytest.mark.skipif(not os.environ.get("MNIST_DIR"),
                                 reason="set MNIST_DIR to the folder with the MNIST files")
# A date, a time of day, or a duration in seconds, as they would appear in outputs or metadata.
CLOCK = re.compile(r"\b20\d\d-\d\d-\d\d|\b\d\d:\d\d:\d\d\b|\d+(\.\d+)? ?(s|sec|seconds)\b(?! of)")
BASE64 = re.compile(r"[A-Za-z0-9+/]{64,}={0,2}")   # inline images hold "6s"-like runs by chance


def make_report_run(tmp_path: Path, name: str) -> tuple[bytes, dict[str, bytes], str]:
    """Execute a copy of the notebook as `make report` does, with a clean cache of its own.
    Returns (the saved notebook's bytes, figure name -> bytes, what the terminal showed)."""
    notebook = ROOT / f".rerun-{name}-{os.getpid()}.ipynb"   # beside helpers.py, like the real one
    shutil.copy(ROOT / "assignment2.ipynb", notebook)
    figures, cache = tmp_path / name / "figures", tmp_path / name / "cache"
    env = dict(os.environ, A2_QUICK="1", A2_CACHE_DIR=str(cache), A2_FIGURE_DIR=str(figures))
    try:
        done = subprocess.run([sys.executable, "-m", "report.execute", str(notebook)], cwd=ROOT,
                              env=env, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr[-3000:]
        saved = notebook.read_bytes()
    finally:
        notebook.unlink(missing_ok=True)
    return saved, {p.name: p.read_bytes() for p in sorted(figures.iterdir())}, done.stderr


@needs_mnist
def test_two_clean_runs_give_identical_bytes_and_no_clock_in_any_output(tmp_path):
    first, figures_1, terminal = make_report_run(tmp_path, "a")
    second, figures_2, _ = make_report_run(tmp_path, "b")
    assert first == second, "the saved notebook differs between two runs"
    assert figures_1.keys() == figures_2.keys()
    for name in figures_1:
        assert figures_1[name] == figures_2[name], f"figures/{name} differs between two runs"

    nb = json.loads(first)
    assert "widgets" not in nb["metadata"]
    for i, cell in enumerate(nb["cells"]):
        assert "execution" not in cell.get("metadata", {}), f"cell {i} keeps its timings"
        for out in cell.get("outputs", []):
            texts = [out.get("text", "")] + [v for k, v in out.get("data", {}).items()
                                             if k.startswith("text/")]
            texts = [BASE64.sub("", t if isinstance(t, str) else "".join(t)) for t in texts]
            for text in texts:
                assert not CLOCK.search(text), f"cell {i} shows a clock: {CLOCK.search(text)[0]!r}"
    results = json.loads(figures_1["results.json"])
    assert "seconds" not in json.dumps(results)
    for name, blob in figures_1.items():
        if name.endswith(".pdf"):
            assert b"/CreationDate" not in blob, f"{name} records its creation date"

    # The training cell keeps its one-line summary, none of the progress shown while it ran.
    outputs = json.dumps([cell.get("outputs", []) for cell in nb["cells"]])
    assert re.search(r"\d+ runs: 0 from the cache, \d+ trained \([\d,]+ gradient steps\)", outputs)
    assert "runs done; training" not in outputs

    # What the terminal showed: the sections as they ran, the training, one closing line, and
    # never a silence of more than 10 s.
    assert "cell 1/" in terminal and "Task 2c" in terminal and "runs: 0 from the cache" in terminal
    assert re.search(r"cells run in \d+ s; \d+ runs: ", terminal.strip().splitlines()[-1])
    times = [float(t) for t in re.findall(r"^\[ *(\d+\.\d) s\]", terminal, re.MULTILINE)]
    silences = [b - a for a, b in zip(times, times[1:])]
    print(f"terminal: {len(times)} lines in {times[-1]:.0f} s, longest silence {max(silences):.1f} s")
    assert max(silences) <= 10.0


def test_the_terminal_shows_sections_and_the_training_progress_on_one_line():
    import nbformat

    from report.execute import progress_text, section_titles
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("import helpers"),
        nbformat.v4.new_markdown_cell("# Report\n\ntext\n\n## Task 2c\n\nmore"),
        nbformat.v4.new_code_cell("train()"),
        nbformat.v4.new_markdown_cell("no heading here"),
        nbformat.v4.new_code_cell("plot()")])
    assert section_titles(nb) == ["", "Task 2c", "Task 2c", "Task 2c", "Task 2c"]

    def message(kind, text, display_id="abc"):
        return {"msg_type": kind, "content": {"data": {"text/plain": text},
                                              "transient": {"display_id": display_id}}}
    shown = ("3/49 runs done; training:\n"
             "  [64, 10] seed 0: epoch 4/50, step 2000, val loss 0.1234, val acc 95.00%\n"
             "  [64, 10] seed 1: epoch 2/50, step 900, val loss nan, val acc 9.80%")
    assert progress_text(message("update_display_data", shown)) == (
        "3/49 runs done; training: [64, 10] seed 0: epoch 4/50, val acc 95.00%; "
        "[64, 10] seed 1: epoch 2/50, val acc 9.80%")
    assert progress_text(message("update_display_data", "49 runs: 49 from the cache, 0 trained")) \
        == "49 runs: 49 from the cache, 0 trained"
    assert progress_text(message("display_data", "a figure", display_id=None)) is None
    assert progress_text({"msg_type": "stream", "content": {"text": "x"}}) is None
