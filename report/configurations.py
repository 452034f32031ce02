"""The report's experiments: how much it computes (full or quick), its named configurations."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from helpers import NUM_CLASSES, PROJECT_DIR, TrainConfig, count_parameters

# ================================================================================================
# The report's settings (full or quick), the named configurations, the explorer's grid
# ================================================================================================

FIGURE_DIR = PROJECT_DIR / "figures"  # the committed report's figures and results.json


@dataclass(frozen=True)
class ReportSettings:
    """How much the report computes: five seeds per configuration (enough for a two-sample test
    to separate configurations whose seeds do not overlap), the explorer's grid (one seed each).
    ``quick`` (``A2_QUICK=1``) is for tests: the same code paths on 2000 training / 1000
    validation images, 3 epochs and three seeds."""
    quick: bool
    base: TrainConfig
    seeds: tuple[int, ...] = (0, 1, 2, 3, 4)
    sweep_widths: tuple[int, ...] = (16, 32, 64, 128)
    sweep_depths: tuple[int, ...] = (1, 2, 3)
    sklearn_epochs: int = 20
    gradient_check_images: int = 100
    gradient_check_weights: int = 1000
    figure_dir: Path = FIGURE_DIR


def report_settings(quick: bool | None = None) -> ReportSettings:
    """The assignment's settings, or the quick ones when ``quick`` (default: ``$A2_QUICK == 1``).

    Figures and results.json go to ``$A2_FIGURE_DIR`` if set, else figures/ (full) or
    build/quick-figures (quick), so that test runs never overwrite the committed report's."""
    if quick is None:
        quick = os.environ.get("A2_QUICK", "0") == "1"
    default_dir = PROJECT_DIR / "build/quick-figures" if quick else FIGURE_DIR
    figure_dir = Path(os.environ.get("A2_FIGURE_DIR") or default_dir)
    if quick:
        return ReportSettings(True, TrainConfig(num_epochs=3, train_size=2000, val_size=1000,
                                                early_stopping_patience=5),
                              seeds=(0, 1, 2), sweep_widths=(16, 32, 64), sweep_depths=(1, 2),
                              sklearn_epochs=2,
                              gradient_check_images=10, gradient_check_weights=50,
                              figure_dir=figure_dir)
    return ReportSettings(False, TrainConfig(), figure_dir=figure_dir)


#: Display names of the report's configurations, by task.
RUN_NAMES = {
    "2c": "2c: sigmoid, uniform init",
    "3a": "3a: + improved init",
    "3b": "3b: + improved sigmoid",
    "3c": "3c: + momentum (Task 3)",
    "4a": "4a: 32 hidden units",
    "4b": "4b: 128 hidden units",
    "4d": "4d: two hidden layers",
    "4e": "4e: ten hidden layers",
    "4e-lr": "4e at learning rate 0.005",
    "3c-lr": "Task 3 at learning rate 0.005",
}

#: The primary comparisons, one per question of Tasks 3 and 4, each the change the question asks
#: about (chosen after earlier runs of every configuration had been seen; see the README):
#: task -> (the configuration it starts from, the one it asks about).
PRIMARY_COMPARISONS = {"3a": ("2c", "3a"), "3b": ("3a", "3b"), "3c": ("3b", "3c"),
                       "4a": ("3c", "4a"), "4b": ("3c", "4b"), "4d": ("3c", "4d"),
                       "4e": ("3c", "4e")}
#: The question each primary comparison answers.
QUESTIONS = {"3a": "does the improved initialisation help?",
             "3b": "does the improved sigmoid help?",
             "3c": "does momentum help?",
             "4a": "are 32 hidden units too few?",
             "4b": "are 128 hidden units too many?",
             "4d": "two hidden layers at the same parameter count?",
             "4e": "ten hidden layers?"}
#: Task 4e's follow-up: the ten-layer network ("4e-lr") and its control, the Task 3 network
#: ("3c-lr"), at a quarter of the learning rate, five seeds each paired with their network's
#: runs at 0.02: does the smaller step help ten layers more than one?
SLOW_LEARNING_RATE = 0.005
#: The follow-up's comparisons (name -> (before, after)): each network's change of rate, and the
#: ten-layer network at the lower rate against the Task 3 network at its own.
FOLLOW_UP_COMPARISONS = {"4e-lr": ("4e", "4e-lr"), "3c-lr": ("3c", "3c-lr"),
                         "4e-lr vs 3c": ("3c", "4e-lr")}


def equal_parameter_width(target: int, depth: int = 2, num_inputs: int = 785,
                          num_outputs: int = NUM_CLASSES) -> dict:
    """The width w of ``depth`` equal hidden layers whose weight count is closest to ``target``.

    Parameters: P(w) = num_inputs w + (depth - 1) w^2 + w num_outputs. Solving P(w) = target
    (the positive root of the quadratic, or the linear solution for depth 1) gives a real width;
    the integers on both sides are the candidates and the one with the smaller |P(w) - target|
    wins (ties go to the smaller network).

    Returns: dict(real_width, candidates=[dict(width, params, difference)], width, params).
    """
    a, b = depth - 1, num_inputs + num_outputs
    real = target / b if a == 0 else (-b + np.sqrt(b * b + 4 * a * target)) / (2 * a)
    candidates = []
    for w in sorted({max(1, int(np.floor(real))), int(np.ceil(real))}):
        params = count_parameters([w] * depth + [num_outputs], num_inputs)
        candidates.append(dict(width=w, params=params, difference=params - target))
    best = min(candidates, key=lambda c: (abs(c["difference"]), c["width"]))
    return dict(real_width=float(real), candidates=candidates, width=best["width"],
                params=best["params"])


def report_configs(base: TrainConfig) -> dict[str, TrainConfig]:
    """The report's runs, keyed as `RUN_NAMES`: each Task 3 trick on top of the previous one,
    then the Task 4 topologies built on the final Task 3 network, and 4e's follow-up (the
    ten-layer and the Task 3 network at `SLOW_LEARNING_RATE`)."""
    c3a = base.replace(use_improved_weight_init=True)
    c3b = c3a.replace(use_improved_sigmoid=True)
    c3c = c3b.replace(use_momentum=True)
    width = equal_parameter_width(count_parameters(c3c.neurons_per_layer), depth=2)["width"]
    return {"2c": base, "3a": c3a, "3b": c3b, "3c": c3c,
            "4a": c3c.replace(neurons_per_layer=(32, 10)),
            "4b": c3c.replace(neurons_per_layer=(128, 10)),
            "4d": c3c.replace(neurons_per_layer=(width, width, 10)),
            "4e": c3c.replace(neurons_per_layer=(64,) * 10 + (10,)),
            "4e-lr": c3c.replace(neurons_per_layer=(64,) * 10 + (10,),
                                 learning_rate=SLOW_LEARNING_RATE),
            "3c-lr": c3c.replace(learning_rate=SLOW_LEARNING_RATE)}


def sweep_configs(task3: TrainConfig, widths: Sequence[int],
                  depths: Sequence[int]) -> dict[tuple[int, int], TrainConfig]:
    """The explorer's grid: ``depth`` hidden layers of ``width`` units, Task 3 tricks on."""
    return {(d, w): task3.replace(neurons_per_layer=(w,) * d + (NUM_CLASSES,))
            for d in depths for w in widths}
