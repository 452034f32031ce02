"""benchmarks/bench_pin.py on synthetic subprocess results: a result whose read-back kernels are
not the ones its setting asked for is refused, and the table reports each setting's best with
native/pinned as a speed-up."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import load_file

BENCH_PATH = Path(__file__).resolve().parent.parent / "benchmarks" / "bench_pin.py"


@pytest.fixture(scope="module")
def bench():
    return load_file(BENCH_PATH)


def result(core: str, dispatch: str, steps: float = 1000.0, check: float = 0.04,
           steps_checks: float = 300.0) -> dict:
    return dict(blas_core=core, environment=dict(blas_core=core, numpy_dispatch=dispatch),
                steps_per_s=steps, check_s=check, steps_per_s_checks=steps_checks)


def test_a_result_with_the_asked_for_kernels_is_accepted(bench):
    assert bench.refusal("pinned", result("Haswell", "X86_V3")) is None
    assert bench.refusal("native", result("SkylakeX", "X86_V4")) is None


@pytest.mark.parametrize("setting, core, dispatch, named", [
    ("pinned", "SkylakeX", "X86_V3", "Haswell"),      # OpenBLAS ignored the pin
    ("native", "Haswell", "X86_V4", "SkylakeX"),      # OpenBLAS fell back to AVX2
    ("pinned", "Haswell", "X86_V4", "numpy_dispatch"),  # NumPy's AVX-512 code not switched off
    ("native", "SkylakeX", "X86_V3", "numpy_dispatch"),  # ... or switched off when it should not
    ("native", "", "X86_V4", "SkylakeX"),             # another BLAS
])
def test_a_result_with_other_kernels_is_refused(bench, setting, core, dispatch, named):
    why = bench.refusal(setting, result(core, dispatch))
    assert why is not None and named in why and why.startswith(setting)


def test_helpers_and_environment_must_agree(bench):
    mixed = result("SkylakeX", "X86_V4")
    mixed["environment"]["blas_core"] = "Haswell"
    assert bench.refusal("native", mixed) is not None


def test_table_reports_the_best_of_each_setting_and_the_speedup(bench):
    rows = {"pinned": [result("Haswell", "X86_V3", 800, 0.050, 200),
                       result("Haswell", "X86_V3", 1000, 0.040, 250)],
            "native": [result("SkylakeX", "X86_V4", 1500, 0.030, 400),
                       result("SkylakeX", "X86_V4", 1200, 0.020, 300)]}
    lines = bench.format_table(rows).splitlines()
    assert lines[0] == "| measure | pinned | native | native/pinned (speed-up) |"
    assert len(lines) == 2 + len(bench.MEASURES)
    # best: the largest steps/s, the shortest check; the speed-up is > 1 when native is faster
    assert lines[2].endswith("| 1000 | 1500 | 1.50x |")
    assert lines[3].endswith("| 40.0 | 20.0 | 2.00x |")
    assert lines[4].endswith("| 250 | 400 | 1.60x |")
