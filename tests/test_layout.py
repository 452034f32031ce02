"""The project's layout: ``helpers.py`` is the assignment's engine and nothing else, and the report's
modules import only those below them (configurations < experiments < analysis < plots < explorer)."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

PROJECT_DIR = Path(__file__).resolve().parents[1]
REPORT_ORDER = ["configurations", "experiments", "analysis", "plots", "explorer"]


def imported_modules(path: Path, runtime_only: bool = True) -> set[str]:
    """Top-level names of every module ``path`` imports (at any depth of the code), skipping
    ``if TYPE_CHECKING:`` blocks when ``runtime_only``."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skip = set()
    if runtime_only:
        for node in ast.walk(tree):
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                skip |= {id(n) for n in ast.walk(node)}
    names = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            names.add(node.module)
            names |= {f"{node.module}.{alias.name}" for alias in node.names}
    return names


def test_engine_imports_only_the_standard_library_and_numpy():
    imports = imported_modules(PROJECT_DIR / "helpers.py", runtime_only=False)
    tops = {name.split(".")[0] for name in imports}
    outside = {t for t in tops if t not in sys.stdlib_module_names and t != "numpy"}
    assert not outside, f"helpers.py imports {sorted(outside)}: the engine may use only NumPy"
    for forbidden in ("matplotlib", "IPython", "ipywidgets", "multiprocessing",
                      "concurrent", "threading", "report", "sklearn", "threadpoolctl"):
        assert forbidden not in tops, f"helpers.py imports {forbidden}"


def test_engine_defines_the_course_names_in_reading_order():
    source = (PROJECT_DIR / "helpers.py").read_text(encoding="utf-8")
    names = ["load_mnist", "pre_process_images", "one_hot_encode", "cross_entropy_loss",
             "class SoftmaxModel", "gradient_approximation_test", "class TrainConfig",
             "sgd_step", "def train("]
    positions = []
    for name in names:
        needle = name if name.startswith(("class ", "def ")) else f"def {name}("
        assert needle in source, f"helpers.py no longer defines {name}"
        positions.append(source.index(needle))
    assert positions == sorted(positions), "helpers.py no longer reads in the notebook's order"


@pytest.mark.parametrize("module", REPORT_ORDER)
def test_report_modules_import_only_modules_below_them(module):
    imports = imported_modules(PROJECT_DIR / "report" / f"{module}.py")
    report_imports = {n.split(".")[1] for n in imports if n.startswith("report.")}
    report_imports &= set(REPORT_ORDER)
    above = {m for m in report_imports if REPORT_ORDER.index(m) >= REPORT_ORDER.index(module)}
    assert not above, f"report/{module}.py imports {sorted(above)}, which build on it"


def test_plots_never_import_the_runner():
    imports = imported_modules(PROJECT_DIR / "report" / "plots.py")
    assert not any(n.startswith("report.experiments") for n in imports)
    assert not {"multiprocessing", "concurrent.futures", "threading"} & imports
