"""The speed benchmark's baselines are the same algorithm as ours: three independent
implementations (helpers.train, the vectorised textbook and the per-example textbook of
benchmarks/bench_train.py) share the seed scheme, so in float64 they must end with the same
weights. That checks our training loop (initialisation, shuffling, momentum, the gradient) against
two plain re-implementations, and it checks that the benchmark compares like with like."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import load_file

import helpers

BENCH_PATH = Path(__file__).resolve().parent.parent / "benchmarks" / "bench_train.py"


@pytest.fixture(scope="module")
def bench():
    return load_file(BENCH_PATH)


@pytest.fixture(scope="module")
def data64(tiny_raw) -> helpers.Dataset:
    return helpers.prepare_data(*tiny_raw, dtype=np.float64)


def ours(bench, data: helpers.Dataset, epochs: int) -> tuple[list[np.ndarray], float]:
    """helpers.train with the benchmark's settings, on all of ``data``, validation off."""
    config = helpers.TrainConfig(
        neurons_per_layer=(bench.HIDDEN, 10), use_improved_weight_init=True,
        use_improved_sigmoid=True, use_momentum=True, learning_rate=bench.LR,
        momentum_gamma=bench.GAMMA, batch_size=bench.BATCH, num_epochs=epochs, seed=bench.SEED,
        train_size=len(data.X_train), val_size=len(data.X_val), checks_per_epoch=0)
    model, history = helpers.train(config, data)
    return model.ws, history.last["val_accuracy"]


def test_three_implementations_end_with_the_same_weights(bench, data64):
    epochs = 3  # 3 x 8 steps of 32 on the 256 synthetic training images
    ws, val_acc = ours(bench, data64, epochs)
    args = (data64.X_train, data64.Y_train, data64.X_val, data64.Y_val, epochs)
    steps_t, val_t, _, ws_t = bench.run_textbook(*args, return_weights=True)
    steps_p, val_p, _, ws_p = bench.run_per_example(*args, return_weights=True)
    assert steps_t == steps_p == epochs * (len(data64.X_train) // bench.BATCH)
    initial = helpers.SoftmaxModel([bench.HIDDEN, 10], True, True, dtype=np.float64,
                                   rng=np.random.default_rng(bench.SEED)).ws
    for w, w_t, w_p, w0 in zip(ws, ws_t, ws_p, initial):
        assert np.abs(w - w0).max() > 1e-2  # training moved the weights
        np.testing.assert_allclose(w, w_t, rtol=0, atol=1e-10)
        np.testing.assert_allclose(w_p, w_t, rtol=0, atol=1e-10)
    assert val_acc == val_t == val_p


def test_the_benchmark_rows_report_steps_and_accuracies(bench, tiny_data, data64):
    """Every row runs on small data and returns (steps, val_acc, train_acc) as the table needs."""
    args = (data64.X_train, data64.Y_train, data64.X_val, data64.Y_val, 1)
    for steps, val_acc, train_acc in (bench.run_textbook(*args), bench.run_per_example(*args)):
        assert steps == len(data64.X_train) // bench.BATCH
        assert 0.0 <= val_acc <= 1.0 and 0.0 <= train_acc <= 1.0
    steps, val_acc, train_acc = bench.run_ceiling(helpers, tiny_data.X_train, 1)
    assert steps == len(tiny_data.X_train) // bench.BATCH and np.isnan(val_acc)
