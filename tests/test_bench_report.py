"""benchmarks/bench_report.py's pure parts on synthetic inputs (no notebook runs): the multiply-adds
counted from a cache's run files against a hand count, the phase and cell rows of a synthetic
profile (kernel start-up and shutdown, "other", the workers' idle core-seconds), the --compare
table, and the export commands against the Makefile's."""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from conftest import load_file

import helpers

ROOT = Path(__file__).resolve().parents[1]
BENCH_PATH = ROOT / "benchmarks" / "bench_report.py"


@pytest.fixture(scope="module")
def bench():
    return load_file(BENCH_PATH)


# ------------------------------------------------------------------------------------------------
# The limit: multiply-adds from the cache's run files
# ------------------------------------------------------------------------------------------------

def write_run(path: Path, config: helpers.TrainConfig, steps: int, checks: int,
              held_out: dict | None) -> None:
    """A run file in report.experiments.save_run's format: meta (JSON) and the history's arrays."""
    meta = dict(key="synthetic", config=config.to_dict(), num_layers=len(config.neurons_per_layer),
                held_out=held_out)
    np.savez(path, meta=np.array(json.dumps(meta)), train_loss=np.linspace(2.3, 0.1, steps),
             check_steps=np.arange(checks) * 125, val_loss=np.ones(checks))


def test_multiply_adds_of_a_cache_match_a_hand_count(bench, tmp_path):
    task3 = helpers.TrainConfig(neurons_per_layer=(64, 10), use_improved_weight_init=True,
                                use_improved_sigmoid=True, use_momentum=True)
    deep = helpers.TrainConfig(neurons_per_layer=(60, 60, 10), train_size=2000, val_size=1000)
    write_run(tmp_path / "run-64-10-a.npz", task3, steps=7, checks=3, held_out={"accuracy": 0.9})
    write_run(tmp_path / "run-60-60-10-b.npz", deep, steps=5, checks=2, held_out=None)
    (tmp_path / "sklearn-x.json").write_text("{}")          # other cache entries are not runs
    work = bench.cache_multiply_adds(tmp_path)

    # [64, 10]: Σ fan_in·fan_out = 785·64 + 64·10 = 50,880 per image forward. A step of 32:
    # forward 32·50,880, weight gradients as many, back-propagated error 32·640.
    step_a = 32 * (2 * 50_880 + 640)                          # 3,276,800
    check_a = (20_000 + 10_000) * 50_880                      # 1,526,400,000
    probe_a = 512 * (2 * 50_880 + 640)                        # 52,428,800
    held_a = 40_000 * 50_880                                  # 2,035,200,000
    # [60, 60, 10] on 2000 + 1000 images: 785·60 + 60·60 + 60·10 = 51,300 per image forward.
    step_b = 32 * (2 * 51_300 + 3_600 + 600)                  # 3,417,600
    check_b = (2_000 + 1_000) * 51_300
    probe_b = 512 * (2 * 51_300 + 3_600 + 600)
    assert work["parts"] == dict(steps=7 * step_a + 5 * step_b, checks=3 * check_a + 2 * check_b,
                                 probes=3 * probe_a + 2 * probe_b, held_out=held_a)
    assert work["total"] == 7 * 3_276_800 + 3 * (1_526_400_000 + 52_428_800) + 2_035_200_000 \
        + 5 * 3_417_600 + 2 * (153_900_000 + 54_681_600)
    assert (work["runs"], work["steps"], work["checks"], work["held_out_runs"]) == (2, 12, 5, 1)


def test_the_probe_is_at_most_the_training_set(bench):
    tiny = helpers.TrainConfig(neurons_per_layer=(16, 10), train_size=300, val_size=100,
                               checks_per_epoch=1)
    parts = bench.run_multiply_adds(tiny, steps=0, checks=1, held_out=False)
    assert parts["probes"] == 300 * (2 * (785 * 16 + 160) + 160)


def test_a_run_file_written_by_save_run_is_read(bench, tmp_path, tiny_data):
    from report import experiments
    config = helpers.TrainConfig(neurons_per_layer=(8, 10), num_epochs=2, train_size=256,
                                 val_size=96, checks_per_epoch=2)
    model, history = helpers.train(config, tiny_data)
    experiments.save_run(tmp_path / "run-8-10-x.npz", model.ws, history, "fingerprint")
    work = bench.cache_multiply_adds(tmp_path)
    assert work["steps"] == 2 * (256 // 32) == history.train_loss.size
    assert work["checks"] == 1 + 2 * 2 == history.check_steps.size


def test_an_empty_cache_is_an_error(bench, tmp_path):
    with pytest.raises(ValueError, match="no run-"):
        bench.cache_multiply_adds(tmp_path)


# ------------------------------------------------------------------------------------------------
# The phase and cell rows of a synthetic run
# ------------------------------------------------------------------------------------------------

DRIVER, KERNEL, W1, W2, W3 = 10, 20, 31, 32, 33
T0 = 1_700_000_000.0


def record(phase: str, seconds: float, pid: int) -> dict:
    return dict(phase=phase, seconds=seconds, pid=pid)


def synthetic_records() -> list[dict]:
    """report.execute (driver) reads the environment at import; the kernel trains twice (two
    workers 42 s, then one worker 6 s), draws, tabulates; the driver re-renders the prose."""
    return [record("environment read-back", 0.05, DRIVER),
            record("environment read-back", 0.02, KERNEL),
            record("environment read-back", 0.01, W1), record("worker start-up (data)", 0.5, W1),
            record("environment read-back", 0.01, W2), record("worker start-up (data)", 0.6, W2),
            record("worker busy (training)", 30.0, W1), record("worker busy (training)", 25.0, W2),
            record("worker busy (training)", 10.0, W1),
            record("runs: trained, or read from the cache", 42.0, KERNEL),
            record("figures", 3.0, KERNEL),
            record("worker start-up (data)", 0.4, W3), record("worker busy (training)", 5.0, W3),
            record("runs: trained, or read from the cache", 6.0, KERNEL),
            record("tables", 1.0, KERNEL),
            record("a phase added later", 0.25, KERNEL),
            record("prose re-rendering", 2.0, DRIVER)]


#: Three cells: 3 s after the start, 40 s, 1 s gap, 19 s, 0.5 s gap, 0.5 s; the command ends 3 s
#: after the last cell (64 s in all).
CELLS = [("code-setup", T0 + 3.0, T0 + 43.0), ("code-runs", T0 + 44.0, T0 + 63.0),
         ("code-write", T0 + 63.5, T0 + 64.0)]


@pytest.fixture()
def profile(bench):
    return bench.run_profile(synthetic_records(), CELLS, T0, T0 + 67.0, DRIVER)


def test_phase_rows_add_up_to_the_wall_time(bench, profile):
    phases = profile["phases"]
    assert phases[bench.START_UP] == pytest.approx(3.0 - 0.05)     # minus the driver's import
    assert phases["environment read-back"] == pytest.approx(0.05 + 0.02)   # not the workers'
    assert phases["runs: trained, or read from the cache"] == pytest.approx(48.0)
    # other: from the first cell's start to the last one's end (61 s), minus the kernel's phases
    assert phases[bench.OTHER] == pytest.approx(61.0 - (0.02 + 48.0 + 3.0 + 1.0 + 0.25))
    assert phases[bench.SHUTDOWN] == pytest.approx(3.0 - 2.0)       # minus the prose
    assert phases["prose re-rendering"] == pytest.approx(2.0)
    assert phases[bench.NOTEBOOK_WALL] == pytest.approx(67.0)
    parts = [v for k, v in phases.items() if k != bench.NOTEBOOK_WALL]
    assert sum(parts) == pytest.approx(67.0)
    # in the order they run: known phases first, unknown after them, prose after the kernel
    assert list(phases) == [bench.START_UP, "runs: trained, or read from the cache", "figures",
                            "tables", "environment read-back", "a phase added later", bench.OTHER,
                            bench.SHUTDOWN, "prose re-rendering", bench.NOTEBOOK_WALL]


def test_idle_core_seconds_count_each_call_s_own_workers(bench, profile):
    workers = profile["workers"]
    assert workers["worker busy (training)"] == pytest.approx(70.0)
    assert workers["worker start-up (data)"] == pytest.approx(1.5)
    assert workers["environment read-back"] == pytest.approx(0.02)
    assert workers[bench.CAPACITY] == pytest.approx(2 * 42.0 + 1 * 6.0)
    assert workers[bench.IDLE] == pytest.approx(2 * 42.0 + 6.0 - 70.0)
    first, second = profile["calls"]
    assert (first["processes"], second["processes"]) == (2, 1)
    assert first["idle"] == pytest.approx(84.0 - 65.0)
    assert second["idle"] == pytest.approx(1.0)


def test_cell_rows(bench, profile):
    cells = profile["cells"]
    assert cells == pytest.approx({"before the first cell": 3.0, "code-setup": 40.0,
                                   "code-runs": 19.0, "code-write": 0.5, "between cells": 1.5,
                                   "after the last cell": 3.0, bench.NOTEBOOK_WALL: 67.0})


def test_a_recorded_kernel_shutdown_is_its_row_and_the_rest_comes_after_it(bench):
    records = synthetic_records() + [record("kernel shutdown", 0.4, DRIVER)]
    phases = bench.run_profile(records, CELLS, T0, T0 + 67.0, DRIVER)["phases"]
    assert phases[bench.SHUTDOWN] == pytest.approx(0.4)
    assert phases[bench.AFTER_SHUTDOWN] == pytest.approx(3.0 - 2.0 - 0.4)
    assert "kernel shutdown" not in phases
    assert sum(v for k, v in phases.items() if k != bench.NOTEBOOK_WALL) == pytest.approx(67.0)
    assert list(phases)[-4:] == [bench.SHUTDOWN, "prose re-rendering", bench.AFTER_SHUTDOWN,
                                 bench.NOTEBOOK_WALL]


def test_a_warm_run_without_workers_or_driver_phases(bench):
    records = [record("runs: trained, or read from the cache", 0.8, KERNEL),
               record("figures", 2.0, KERNEL)]
    profile = bench.run_profile(records, CELLS, T0, T0 + 65.0, DRIVER)
    assert profile["workers"] == {bench.CAPACITY: 0.0, bench.IDLE: 0.0}
    assert profile["phases"][bench.START_UP] == pytest.approx(3.0)
    assert profile["phases"][bench.SHUTDOWN] == pytest.approx(1.0)
    assert profile["phases"][bench.OTHER] == pytest.approx(61.0 - 2.8)


def test_worker_lines_after_the_last_call_are_an_error(bench):
    records = synthetic_records() + [record("worker busy (training)", 1.0, W1)]
    with pytest.raises(ValueError, match="incomplete"):
        bench.run_profile(records, CELLS, T0, T0 + 67.0, DRIVER)


def test_records_and_cell_times_are_read(bench, tmp_path):
    path = tmp_path / "profile.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in synthetic_records()[:3]))
    assert bench.read_records(path) == synthetic_records()[:3]
    assert bench.read_records(tmp_path / "missing.jsonl") == []
    path.write_text('{"phase": "figures"}\n')
    with pytest.raises(ValueError, match="line 1"):
        bench.read_records(path)

    nb = {"cells": [
        {"cell_type": "markdown", "metadata": {}},
        {"cell_type": "code", "id": "code-a", "metadata": {"execution": {
            "iopub.status.busy": "2026-12-02T10:00:01.250000Z",
            "iopub.status.idle": "2026-12-02T10:00:03.000000Z"}}},
        {"cell_type": "code", "metadata": {}},                     # empty: not run
        {"cell_type": "code", "metadata": {"execution": {
            "iopub.status.busy": "2026-12-02T10:00:03.5Z", "iopub.status.idle": "2026-12-02T10:01:00Z"}}}]}
    (a, start_a, end_a), (b, start_b, end_b) = bench.cell_times(nb)
    assert (a, b) == ("code-a", "cell 3")
    assert (end_a - start_a, start_b - end_a, end_b - start_b) == pytest.approx((1.75, 0.5, 56.5))
    with pytest.raises(ValueError, match="record_timing"):
        bench.cell_times({"cells": nb["cells"][:1]})


# ------------------------------------------------------------------------------------------------
# Tables
# ------------------------------------------------------------------------------------------------

def rows(table: str) -> dict[str, list[str]]:
    """A Markdown table's rows by their first cell."""
    out = {}
    for line in table.splitlines()[2:]:
        cells = [c.strip() for c in line.strip("|").split("|")]
        out[cells[0]] = cells[1:]
    return out


def test_the_phase_table_shows_cold_and_warm_with_shares(bench, profile):
    cold = json.loads(json.dumps(profile))
    cold["phases"]["HTML export (nbconvert)"] = 13.0
    cold["phases"][bench.MAKE_REPORT_WALL] = 80.0
    warm = bench.run_profile([record("runs: trained, or read from the cache", 0.8, KERNEL)],
                             CELLS, T0, T0 + 65.0, DRIVER)
    table = rows(bench.phase_table(cold, warm))
    assert table["runs: trained, or read from the cache"] == ["48.0", "60%", "0.80", "1%"]
    assert table["HTML export (nbconvert)"] == ["13.0", "16%", "–", ""]
    assert table["figures"][2:] == ["–", ""]
    assert table[bench.IDLE] == ["20.0", "", "0.00", ""]


def test_compare_prints_before_after_and_the_change(bench, profile, tmp_path):
    def run(runs_cold: float, runs_warm: float, idle: float) -> dict:
        phases = {"runs: trained, or read from the cache": runs_cold, bench.NOTEBOOK_WALL: 100.0}
        return dict(cold=dict(phases=phases, workers={bench.IDLE: idle}),
                    warm=dict(phases={"runs: trained, or read from the cache": runs_warm,
                                      bench.NOTEBOOK_WALL: 10.0}, workers={bench.IDLE: 0.0}))
    before, after = run(80.0, 1.0, 30.0), run(60.0, 1.5, 12.0)
    after["cold"]["phases"]["results.json"] = 0.5
    table = rows(bench.compare_table(before, after))
    assert table["runs: trained, or read from the cache"] == ["80.0", "60.0", "-20.0 (0.75×)",
                                                              "1.00", "1.50", "+0.50 (1.50×)"]
    assert table["results.json"] == ["–", "0.50", "–", "–", "–", "–"]
    assert table[bench.IDLE] == ["30.0", "12.0", "-18.0 (0.40×)", "0.00", "0.00", "+0.00"]

    for name, data in (("before", before), ("after", after)):
        data.update(machine=dict(date="2026-12-02T10:00:00", commit="abc1234", dirty=False, cpus=2,
                                 blas_core="Haswell"),
                    quick=False, yardstick=0.6, work=dict(total=1e12), gemm=dict(rate=1e11),
                    limit=dict(seconds=10.0, multiples={"notebook": 10.0}))
        (tmp_path / f"{name}.json").write_text(json.dumps(data))
    text = bench.compare(tmp_path / "before.json", tmp_path / "after.json")
    assert "-20.0 (0.75×)" in text and "yardstick 0.600 s" in text
    assert "limit after: 1e+12 multiply-adds at 100.0 G/s = 10.00 s; notebook 10.0×" in text


def test_the_limit_is_the_work_at_the_aggregate_rate(bench, profile):
    cold = json.loads(json.dumps(profile))
    cold["phases"][bench.MAKE_REPORT_WALL] = 100.0
    lim = bench.limit(dict(total=2e11), dict(rate=1e11), cold)
    assert lim["seconds"] == pytest.approx(2.0)
    assert lim["multiples"] == pytest.approx({"notebook": 33.5, "runs phase": 24.0,
                                              "make report": 50.0})


def test_the_report_prints_from_a_result(bench, profile):
    """What stdout shows, from a result as --json writes it (a full run takes minutes: a missing
    key must not show up only at its end)."""
    cold = json.loads(json.dumps(profile)) | dict(peak_rss=1.2e9)
    cold["phases"].update({label: 1.0 for chain in bench.EXPORT_CHAINS for label in chain})
    cold["phases"][bench.EXPORTS_WALL] = 2.0
    cold["phases"][bench.MAKE_REPORT_WALL] = 69.0
    warm = bench.run_profile([], CELLS, T0, T0 + 65.0, DRIVER) | dict(peak_rss=0.5e9)
    work = dict(runs=2, steps=12, checks=5, held_out_runs=1, total=4e11,
                parts=dict(steps=1e11, checks=2e11, probes=0.5e11, held_out=0.5e11))
    gemm = dict(rate=1e11, rounds=[0.9e11, 1e11, 0.95e11], per_process=[0.5e11, 0.5e11],
                processes=2, shape="blocks")
    result = dict(machine=dict(date="2026-12-02T10:00:00", commit="abc1234", dirty=True, cpus=2,
                               machine="x86_64", python="3.11.7", numpy="2.4.6",
                               blas_core="Haswell", load_before=0.1),
                  quick=False, yardstick=0.61, gemm=gemm, work=work,
                  limit=bench.limit(work, gemm, cold), cold=cold, warm=warm, blas_core="Haswell",
                  benchmark_seconds=400.0,
                  cpu_share=dict(benchmark=0.9, others=0.05, load_after=1.9))
    result["native"] = dict(cold=cold, warm=warm, work=work, blas_core="SkylakeX")
    text = bench.report_text(json.loads(json.dumps(result)))
    assert "commit abc1234 + edits, full report" in text
    assert "= 4.00 s; the cold notebook took 16.8× the limit" in text
    assert "the cold make report took 17.2× the limit" in text
    assert "| notebook, clean cache | 67.0 s | < 300 s | yes |" in text
    assert "| peak memory (summed RSS: driver, kernel, workers) | 1.20 GB | < 2 GB | yes |" in text
    assert "notebook, warm: pinned 65.0 s, native 65.0 s, pinned/native 1.00×" in text
    assert "Yardstick: 20 products (30000, 785) @ (785, 64), float32, 1 thread, best of 3: " \
        "0.610 s" in text


# ------------------------------------------------------------------------------------------------
# The exports are the Makefile's
# ------------------------------------------------------------------------------------------------

@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_the_commands_are_the_makefile_s(bench):
    """make report (dry run: nothing is executed) executes the notebook as the cold run does, then
    the exports side by side, with the commands `export_commands` gives."""
    dry = subprocess.run(["make", "-n", "-s", "report"], cwd=ROOT, capture_output=True,
                         text=True, check=True).stdout.splitlines()
    program = lambda argv: [Path(argv[0]).name, *argv[1:]]        # .venv/bin/x -> x
    assert [program(shlex.split(line)) for line in dry if "report.execute" in line] == [
        ["python", "-m", "report.execute", "--timeout", str(bench.TIMEOUT), "assignment2.ipynb"]]
    assert any("--jobs=2" in line and line.endswith(" html pdf") for line in dry), \
        "make report no longer exports side by side: change bench_report.run_exports"
    made = [shlex.split(line) for line in dry if "nbconvert" in line or "export/check_" in line]
    ours = bench.export_commands(Path("assignment2.ipynb"), None)
    assert [program(c) for c in made] == [program(c) for c in ours.values()]
    assert [label for chain in bench.EXPORT_CHAINS for label in chain] == list(ours)
    to_tmp = bench.export_commands(Path("copy.ipynb"), Path("/tmp/out"))
    assert to_tmp["HTML export (nbconvert)"][-4:] == ["--output-dir", "/tmp/out", "--output",
                                                      "assignment2"]
    assert to_tmp["PDF check (check_pdf.py)"][2:5] == ["/tmp/out/assignment2.pdf", "--notebook",
                                                       "copy.ipynb"]
