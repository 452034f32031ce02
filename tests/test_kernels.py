"""One set of kernels on every x86-64 machine: `helpers` pins OpenBLAS's kernel family (and NumPy's
dispatch on AVX-512 processors) before NumPy loads, every process started from it inherits the pin,
and what runs is read back from OpenBLAS itself (`helpers.blas_core`), not from the variable.

The end-to-end check, the notebook's kernel and its worker processes with the variables unset, is
`tests/test_report.py::test_quick_report_runs_and_exports` (results.json's "environment")."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest

import helpers

ROOT = Path(__file__).resolve().parents[1]
X86 = platform.machine().lower() in ("x86_64", "amd64")
FLAGS = helpers.cpu_flags()
AVX2 = FLAGS is not None and {"avx2", "fma"} <= FLAGS
AVX512 = FLAGS is not None and {"avx512f", "avx512cd", "avx512vl", "avx512bw", "avx512dq"} <= FLAGS


def unpinned_env(**extra) -> dict:
    """This process's environment without the two variables the pin sets."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("OPENBLAS_CORETYPE", "NPY_DISABLE_CPU_FEATURES")}
    return dict(env, PYTHONPATH=str(ROOT), **extra)


def python(code: str, env: dict) -> dict:
    """Run ``code`` in a fresh Python (the project folder on its path); it prints one JSON line."""
    done = subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return dict(json.loads(done.stdout.strip().splitlines()[-1]), stderr=done.stderr)


READ_BACK = """
import json, os, helpers
from report.experiments import environment
print(json.dumps(dict(environment(), variable=os.environ.get("OPENBLAS_CORETYPE"))))
"""
NUMPY_FIRST = "import numpy\n" + READ_BACK


def test_the_pins_by_processor():
    avx2 = {"avx2", "fma", "avx"}
    avx512 = avx2 | {"avx512f", "avx512cd", "avx512vl", "avx512bw", "avx512dq"}
    assert helpers.pinned_kernels("x86_64", avx2) == {"OPENBLAS_CORETYPE": "Haswell"}
    assert helpers.pinned_kernels("x86_64", avx512) == {"OPENBLAS_CORETYPE": "Haswell",
                                                        "NPY_DISABLE_CPU_FEATURES": "X86_V4"}
    assert helpers.pinned_kernels("AMD64", None) == {"OPENBLAS_CORETYPE": "Haswell"}  # flags unknown
    assert helpers.pinned_kernels("x86_64", {"avx", "sse4_2"}) == {}   # no AVX2: nothing to pin to
    assert helpers.pinned_kernels("aarch64", avx512) == {}              # ARM: another BLAS's kernels
    assert helpers.pinned_kernels("arm64", None) == {}


def test_a_value_already_set_is_respected():
    env = {"OPENBLAS_CORETYPE": "Zen", "PATH": "/bin"}
    set_now = helpers.pin_kernels(env)
    assert env["OPENBLAS_CORETYPE"] == "Zen" and "OPENBLAS_CORETYPE" not in set_now


@pytest.mark.skipif(not (X86 and AVX2), reason="the pin is for x86-64 processors with AVX2")
def test_unset_variables_give_the_pinned_kernels_read_back_from_openblas():
    """With neither variable set, a process that imports helpers (or report) first computes with
    OpenBLAS's Haswell kernels, as OpenBLAS itself reports, and NumPy's AVX2 code; what the
    processor would pick natively is printed beside it."""
    pinned = python(READ_BACK, unpinned_env())
    native = python(NUMPY_FIRST, unpinned_env())
    print(f"pinned: {pinned['blas_core']} / {pinned['numpy_dispatch']}; "
          f"native: {native['blas_core']} / {native['numpy_dispatch']}")
    assert pinned["blas_core"] == helpers.PINNED_BLAS_CORE
    assert pinned["variable"] == helpers.PINNED_BLAS_CORE
    if AVX512:
        assert pinned["numpy_dispatch"] == "X86_V3"
    assert pinned["stderr"] == ""


@pytest.mark.skipif(not (X86 and AVX2), reason="the pin is for x86-64 processors with AVX2")
def test_numpy_first_warns_and_its_children_compute_as_it_does():
    """NumPy imported before helpers: too late to pin this process. helpers says so when the kernels
    are not the report's, and sets the variable to the kernels it got, so that the workers it
    starts compute as it does (the report's workers check it)."""
    native = python(NUMPY_FIRST, unpinned_env())
    assert native["variable"] == native["blas_core"]
    if native["blas_core"] != helpers.PINNED_BLAS_CORE:
        assert "NumPy was imported before helpers" in native["stderr"]
    else:
        assert native["stderr"] == ""


@pytest.mark.skipif(not (X86 and AVX2), reason="the pin is for x86-64 processors with AVX2")
def test_another_family_asked_for_is_the_one_that_runs():
    """OPENBLAS_CORETYPE set by the user (here Sandybridge, which any AVX processor runs) is kept,
    and is what OpenBLAS runs."""
    other = python(READ_BACK, unpinned_env(OPENBLAS_CORETYPE="Sandybridge"))
    assert other["blas_core"] == "Sandybridge" and other["variable"] == "Sandybridge"


@pytest.mark.skipif(not (X86 and AVX2), reason="the pin is for x86-64 processors with AVX2")
def test_a_worker_started_unpinned_from_a_pinned_parent_refuses_to_train(tmp_path):
    """The report's workers compare their environment with their parent's before training: a
    worker that would compute with other kernels stops with a message instead of caching runs
    under the parent's key."""
    code = """
import json, os, helpers
from report import experiments
expected = dict(experiments.environment(), blas_core="SkylakeX")   # as if the parent ran SkylakeX
import multiprocessing as mp
ctx = mp.get_context("spawn")
tasks, events = ctx.Queue(), ctx.Queue()
tasks.put(None)
p = ctx.Process(target=experiments._worker_main,
                args=(os.getpid(), "/nonexistent", "x", "/tmp", False, tasks, events, expected))
p.start(); kind, index, text = events.get(timeout=60); p.join(10)
print(json.dumps(dict(kind=kind, text=text[-400:])))
"""
    got = python(code, unpinned_env())
    assert got["kind"] == "error" and "would differ" in got["text"], got
