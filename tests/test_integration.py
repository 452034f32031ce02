"""End to end on the real MNIST files: skipped (with the reason) when MNIST_DIR is not set.

Run with: MNIST_DIR=/path/to/mnist python -m pytest tests/test_integration.py
"""

from __future__ import annotations

import numpy as np
import pytest

import helpers
from report import experiments
from test_experiments import assert_same_run, npz_files

TRAIN_MEAN = 33.55274553571429  # Task 2a: all pixels of the first 20000 training images
TRAIN_STD = 78.875500707847


def test_load_mnist_shapes_and_dtypes(real_raw):
    X_train, Y_train, X_val, Y_val = real_raw
    assert X_train.shape == (20000, 784) and X_train.dtype == np.uint8
    assert Y_train.shape == (20000,) and Y_train.dtype == np.int64
    assert X_val.shape == (10000, 784) and X_val.dtype == np.uint8
    assert Y_val.shape == (10000,) and Y_val.dtype == np.int64
    for Y in (Y_train, Y_val):
        assert Y.min() == 0 and Y.max() == 9 and len(np.unique(Y)) == 10
    assert X_train.max() == 255 and X_train.min() == 0


def test_training_set_pixel_statistics(real_raw):
    mean, std = helpers.pixel_statistics(real_raw[0])
    assert mean == pytest.approx(TRAIN_MEAN, rel=1e-12)
    assert std == pytest.approx(TRAIN_STD, rel=1e-12)


def test_prepared_real_data(real_data):
    assert real_data.X_train.shape == (20000, 785) and real_data.X_train.dtype == np.float32
    assert real_data.X_val.shape == (10000, 785)
    np.testing.assert_array_equal(real_data.X_train[:, -1], 1)
    assert abs(float(real_data.X_train[:, :784].mean())) < 1e-4
    assert (real_data.mean, real_data.std) == pytest.approx((TRAIN_MEAN, TRAIN_STD), rel=1e-12)


def test_task_2b_gradient_check_on_real_images(real_data):
    """The assignment's check: uniform [-1, 1] weights, 100 images, epsilon 1e-3, |error| <=
    epsilon^2 (Task 2b on [64, 10], Task 4c on [64, 64, 10]; 100 sampled weights per layer to
    stay fast)."""
    X = real_data.X_train[:100].astype(np.float64)
    Y = real_data.Y_train[:100].astype(np.float64)
    for layers in ([64, 10], [64, 64, 10]):
        model = helpers.SoftmaxModel(layers, rng=np.random.default_rng(0), dtype=np.float64)
        with experiments.single_threaded_blas():
            rows = helpers.gradient_check_errors(model, X, Y, epsilon=1e-3,
                                                 max_weights_per_layer=100,
                                                 rng=np.random.default_rng(1))
        assert max(r["max_abs_error"] for r in rows) <= 1e-6, rows


def test_one_epoch_with_all_tricks_learns(real_data):
    config = helpers.TrainConfig(num_epochs=1, use_improved_weight_init=True,
                                 use_improved_sigmoid=True, use_momentum=True)
    with experiments.single_threaded_blas():
        model, h = helpers.train(config, real_data)
    assert h.check_steps.tolist() == [0, 125, 250, 375, 500, 625]
    assert h.val_accuracy[0] < 0.2
    assert h.val_accuracy[-1] > 0.9 and h.train_accuracy[-1] > 0.9
    assert h.val_loss[-1] < 0.4
    assert not h.diverged and not h.stopped_early


@pytest.fixture(scope="module")
def held_out_data(mnist_folder) -> helpers.Dataset:
    """The assignment's split with the held-out images, as the report prepares it."""
    return helpers.prepare_data(*helpers.load_mnist(mnist_folder, download=False, held_out=True))


def test_held_out_images_are_the_unused_training_images_and_overlap_no_other(mnist_folder,
                                                                             real_raw):
    """The held-out images are training images 20,000-59,999, and none of them is, byte for byte,
    a training or a validation image: they score the kept weights on images no run has seen."""
    X_train, Y_train, X_val, Y_val, X_held, Y_held = helpers.load_mnist(
        mnist_folder, download=False, held_out=True)
    for a, b in zip((X_train, Y_train, X_val, Y_val), real_raw):
        assert np.array_equal(a, b)
    assert X_held.shape == (40000, 784) and Y_held.shape == (40000,)
    assert sorted(np.unique(Y_held)) == list(range(10))
    rows = lambda X: {row.tobytes() for row in X}          # noqa: E731
    held = rows(X_held)
    assert len(held) == 40000
    assert not held & rows(X_train) and not held & rows(X_val)


def test_parallel_equals_serial_bit_for_bit(held_out_data, tmp_path):
    """Two worker processes given the data (held-out images included) give the serial results,
    held-out scores included; order is kept and a duplicate config is run once."""
    a = helpers.TrainConfig(num_epochs=1, train_size=2000, val_size=2000, seed=1)
    b = helpers.TrainConfig(num_epochs=1, train_size=2000, val_size=2000, seed=2,
                            use_improved_weight_init=True, use_improved_sigmoid=True,
                            use_momentum=True, neurons_per_layer=(32, 32, 10))
    configs = [b, a, b]
    serial = experiments.run_experiments(configs, held_out_data, processes=1,
                                         cache_dir=tmp_path / "s", quiet=True)
    parallel = experiments.run_experiments(configs, held_out_data, processes=2,
                                           cache_dir=tmp_path / "p", quiet=True)
    assert [r.config for r in parallel] == configs
    assert not any(r.cached for r in serial + parallel)
    for s, p in zip(serial, parallel):
        assert_same_run(s, p)
        with experiments.single_threaded_blas():       # the score is the kept weights' own
            outputs = s.model().predict(held_out_data.X_held_out)
        assert s.held_out == dict(accuracy=helpers.accuracy(held_out_data.Y_held_out, outputs),
                                  loss=helpers.cross_entropy_loss(held_out_data.Y_held_out,
                                                                  outputs))
    assert len(npz_files(tmp_path / "p")) == 2  # the workers wrote the cache
    cached = experiments.run_experiments(configs, held_out_data, processes=2,
                                         cache_dir=tmp_path / "p", quiet=True)
    assert all(r.cached for r in cached)
    for s, c in zip(serial, cached):
        assert_same_run(s, c)


def test_parallel_workers_refuse_other_data(real_data, tmp_path, monkeypatch):
    """If the files the workers read do not hold the data passed in, the runner says so instead
    of caching results under the wrong fingerprint."""
    fewer = helpers.Dataset(real_data.X_train[:5000], real_data.Y_train[:5000],
                            real_data.X_val, real_data.Y_val, real_data.mean, real_data.std)
    write = experiments.write_data
    monkeypatch.setattr(experiments, "write_data", lambda data, folder: write(fewer, folder))
    configs = [helpers.TrainConfig(num_epochs=1, train_size=500, val_size=500, seed=s,
                                   checks_per_epoch=1) for s in (1, 2)]
    with pytest.raises(RuntimeError, match="fingerprint"):
        experiments.run_experiments(configs, real_data, processes=2, cache_dir=tmp_path,
                                    quiet=True)
    assert npz_files(tmp_path) == []


def test_course_check_visits_every_weight_of_the_task_2b_network(real_raw):
    """Task 2b exactly as the course's starter code runs it: gradient_approximation_test over all
    50,880 weights of [64, 10] (uniform [-1, 1] weights) on 100 training images in float64.
    The report samples the first layer to stay fast; this is the exhaustive check (~30 s)."""
    X_raw, Y_raw = real_raw[0], real_raw[1]
    mean, std = helpers.pixel_statistics(X_raw)
    X = helpers.pre_process_images(X_raw[:100], mean, std, np.float64)
    Y = helpers.one_hot_encode(Y_raw[:100], 10)
    model = helpers.SoftmaxModel([64, 10], rng=np.random.default_rng(0), dtype=np.float64)
    assert model.num_parameters == 50880
    with experiments.single_threaded_blas():
        helpers.gradient_approximation_test(model, X, Y)   # raises AssertionError on failure
