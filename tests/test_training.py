"""TrainConfig, batching, the SGD/momentum step and the training loop (validation checks, early
stopping, divergence, reproducibility), all on the tiny synthetic data set of conftest.py."""

from __future__ import annotations

import dataclasses
import json
import math
import re
import warnings

import numpy as np
import pytest

import helpers

# ------------------------------------------------------------------------------------------------
# TrainConfig
# ------------------------------------------------------------------------------------------------

def test_config_defaults_are_the_assignment_values():
    c = helpers.TrainConfig()
    assert c.neurons_per_layer == (64, 10)
    assert (c.use_improved_weight_init, c.use_improved_sigmoid, c.use_momentum) == (False,) * 3
    assert c.batch_size == 32 and c.num_epochs == 50 and c.shuffle is True
    assert c.learning_rate == 0.1
    assert c.momentum_gamma == 0.9
    assert c.early_stopping_patience == 50
    assert (c.train_size, c.val_size) == (20000, 10000)
    assert c.steps_per_epoch == 625 and c.steps_per_check == 125
    assert c.hidden_layers == (64,)


def test_config_learning_rate_none_means_the_assignment_choice():
    assert helpers.TrainConfig(learning_rate=None).learning_rate == 0.1
    assert helpers.TrainConfig(use_momentum=True).learning_rate == 0.02
    assert helpers.TrainConfig(use_momentum=True, learning_rate=0.05).learning_rate == 0.05
    # equal configs compare (and hash) equal however the default was spelled
    assert helpers.TrainConfig(use_momentum=True) == helpers.TrainConfig(use_momentum=True,
                                                                         learning_rate=0.02)


def test_config_replace_rederives_the_learning_rate_for_momentum():
    c = helpers.TrainConfig()
    assert c.replace(use_momentum=True).learning_rate == 0.02
    assert c.replace(use_momentum=True).replace(use_momentum=False).learning_rate == 0.1
    assert c.replace(seed=3).learning_rate == 0.1 and c.replace(seed=3).seed == 3
    assert helpers.TrainConfig(use_momentum=True).replace(seed=1).learning_rate == 0.02


def test_config_is_frozen_and_hashable():
    c = helpers.TrainConfig(neurons_per_layer=[64, 64, 10])
    with pytest.raises(dataclasses.FrozenInstanceError):
        c.batch_size = 64
    with pytest.raises(dataclasses.FrozenInstanceError):
        c.learning_rate = 1.0
    assert c.neurons_per_layer == (64, 64, 10)  # lists are stored as tuples
    assert {c: 1}[helpers.TrainConfig(neurons_per_layer=(64, 64, 10))] == 1


def test_config_to_dict_is_json_and_label_is_readable():
    c = helpers.TrainConfig(use_improved_weight_init=True, use_improved_sigmoid=True,
                            use_momentum=True, seed=4)
    d = c.to_dict()
    assert json.loads(json.dumps(d)) == d
    assert d["neurons_per_layer"] == [64, 10] and d["learning_rate"] == 0.02
    assert c.label() == "[64, 10] init+sig+mom lr=0.02 seed 4"
    assert helpers.TrainConfig().label() == "[64, 10] plain lr=0.1 seed 0"


INVALID = [
    ("neurons_per_layer", []),
    ("neurons_per_layer", ()),
    ("neurons_per_layer", 64),
    ("neurons_per_layer", [0, 10]),
    ("neurons_per_layer", [-64, 10]),
    ("neurons_per_layer", [64.0, 10]),
    ("neurons_per_layer", [True, 10]),
    ("neurons_per_layer", [64, 9]),
    ("neurons_per_layer", [64, 64]),
    ("learning_rate", 0.0),
    ("learning_rate", -0.1),
    ("learning_rate", float("inf")),
    ("learning_rate", float("nan")),
    ("momentum_gamma", -0.1),
    ("momentum_gamma", 1.0),
    ("batch_size", 0),
    ("batch_size", 20001),
    ("train_size", 0),
    ("train_size", 20001),
    ("val_size", 0),
    ("val_size", 10001),
    ("num_epochs", 0),
    ("early_stopping_patience", 0),
    ("checks_per_epoch", -1),
    ("checks_per_epoch", 626),  # more checks than the 625 batches of an epoch
]


@pytest.mark.parametrize("field, value", INVALID, ids=[f"{f}={v!r}" for f, v in INVALID])
def test_config_rejects_invalid_values_naming_the_field(field, value):
    with pytest.raises(ValueError) as err:
        helpers.TrainConfig(**{field: value})
    assert field in str(err.value)


def test_config_batch_size_is_checked_against_train_size():
    with pytest.raises(ValueError, match="batch_size"):
        helpers.TrainConfig(train_size=100, batch_size=101)
    assert helpers.TrainConfig(train_size=100, batch_size=100,
                               checks_per_epoch=1).steps_per_epoch == 1


NON_INTEGERS = [("batch_size", 32.5), ("num_epochs", 2.5), ("early_stopping_patience", 1.5),
                ("train_size", 1000.5), ("val_size", 100.5), ("checks_per_epoch", 2.5),
                ("seed", 0.5), ("batch_size", "32")]


@pytest.mark.parametrize("field, value", NON_INTEGERS,
                         ids=[f"{f}={v!r}" for f, v in NON_INTEGERS])
def test_config_rejects_non_integer_counts_naming_the_field(field, value):
    """A count that is not an integer fails at construction, not deep inside training (range()
    or default_rng would raise TypeError there) or silently in the cache key."""
    with pytest.raises(ValueError) as err:
        helpers.TrainConfig(**{field: value})
    assert field in str(err.value)


def test_config_accepts_numpy_scalars_and_stores_python_numbers():
    """Seeds from np.arange and sizes from NumPy arithmetic are common in notebooks; the config
    must equal the plain-Python one and still serialise to JSON (the cache key)."""
    c = helpers.TrainConfig(seed=np.arange(3)[2], batch_size=np.int64(16),
                            neurons_per_layer=np.array([32, 10]),
                            learning_rate=np.float32(0.5), num_epochs=np.int32(2))
    assert c == helpers.TrainConfig(seed=2, batch_size=16, neurons_per_layer=(32, 10),
                                    learning_rate=0.5, num_epochs=2)
    json.dumps(c.to_dict())
    assert type(c.seed) is int and type(c.batch_size) is int and type(c.learning_rate) is float


# ------------------------------------------------------------------------------------------------
# batch_indices
# ------------------------------------------------------------------------------------------------

def test_batch_indices_cover_each_sample_once_per_epoch_minus_the_remainder():
    rng = np.random.default_rng(0)
    epochs = [list(helpers.batch_indices(103, 10, True, rng)) for _ in range(3)]
    for batches in epochs:
        assert len(batches) == 10 and all(len(b) == 10 for b in batches)
        seen = np.concatenate(batches)
        assert len(np.unique(seen)) == 100 and seen.min() >= 0 and seen.max() < 103
    orders = [np.concatenate(b) for b in epochs]
    assert not np.array_equal(orders[0], orders[1]) and not np.array_equal(orders[1], orders[2])
    dropped = [set(range(103)) - set(o.tolist()) for o in orders]
    assert all(len(d) == 3 for d in dropped)


def test_batch_indices_are_contiguous_slices_of_one_permutation():
    batches = list(helpers.batch_indices(50, 8, True, np.random.default_rng(42)))
    permutation = np.random.default_rng(42).permutation(50)
    np.testing.assert_array_equal(np.concatenate(batches), permutation[:48])


def test_batch_indices_without_shuffle_are_in_order():
    batches = list(helpers.batch_indices(10, 3, False, np.random.default_rng(0)))
    assert [b.tolist() for b in batches] == [[0, 1, 2], [3, 4, 5], [6, 7, 8]]
    assert [b.tolist() for b in helpers.batch_indices(4, 4, False, None)] == [[0, 1, 2, 3]]


# ------------------------------------------------------------------------------------------------
# sgd_step
# ------------------------------------------------------------------------------------------------

class _ScriptedGradients:
    """Replaces a model's forward/backward: backward sets the next scripted gradients."""

    def __init__(self, model, gradients):
        self.model, self.gradients = model, iter(gradients)
        model.forward = lambda X: np.full((len(X), 10), 0.1)
        model.backward = self.backward

    def backward(self, X, outputs, targets):
        self.model.grads = [np.array(g, dtype=np.float64) for g in next(self.gradients)]


def _toy_model():
    model = helpers.SoftmaxModel([2, 10], rng=np.random.default_rng(0), dtype=np.float64,
                                 input_size=3)
    model.ws = [np.ones((3, 2)), np.full((2, 10), -2.0)]
    return model


def test_sgd_step_with_momentum_matches_a_hand_computation():
    """v := g + gamma v; w := w - lr v over three steps (dw(-1) = 0)."""
    lr, gamma = 0.5, 0.9
    g = [(np.full((3, 2), 1.0), np.full((2, 10), 0.5)),
         (np.full((3, 2), 2.0), np.full((2, 10), -1.0)),
         (np.full((3, 2), -1.0), np.full((2, 10), 0.0))]
    model = _toy_model()
    _ScriptedGradients(model, g)
    velocity = [np.zeros((3, 2)), np.zeros((2, 10))]
    X, Y = np.ones((4, 3)), helpers.one_hot_encode(np.array([0, 1, 2, 3]), 10)
    for _ in range(3):
        loss = helpers.sgd_step(model, X, Y, lr, velocity, gamma)
        assert loss == pytest.approx(math.log(10))
    # first matrix: v1 = 1, w1 = 0.5; v2 = 2 + 0.9 = 2.9, w2 = -0.95; v3 = -1 + 2.61 = 1.61,
    # w3 = -1.755. second: v = 0.5, -0.55, -0.495; w = -2.25, -1.975, -1.7275.
    np.testing.assert_allclose(velocity[0], 1.61, rtol=1e-14)
    np.testing.assert_allclose(model.ws[0], -1.755, rtol=1e-14)
    np.testing.assert_allclose(velocity[1], -0.495, rtol=1e-14)
    np.testing.assert_allclose(model.ws[1], -1.7275, rtol=1e-14)


def test_sgd_step_without_momentum_is_plain_gradient_descent():
    g = [(np.full((3, 2), 1.0), np.full((2, 10), 0.5)),
         (np.full((3, 2), 2.0), np.full((2, 10), -1.0))]
    model = _toy_model()
    _ScriptedGradients(model, g)
    X, Y = np.ones((4, 3)), helpers.one_hot_encode(np.array([0, 1, 2, 3]), 10)
    for _ in range(2):
        helpers.sgd_step(model, X, Y, 0.5, None, 0.9)
    np.testing.assert_allclose(model.ws[0], 1 - 0.5 * (1 + 2), rtol=1e-14)
    np.testing.assert_allclose(model.ws[1], -2 - 0.5 * (0.5 - 1), rtol=1e-14)


def test_sgd_step_on_a_real_model(tiny_data):
    """Returns the batch loss before the update, applies -lr * backward's gradient, and a small
    step lowers the batch loss."""
    model = helpers.SoftmaxModel([16, 10], rng=np.random.default_rng(0), dtype=np.float64)
    X, Y = tiny_data.X_train[:32].astype(np.float64), tiny_data.Y_train[:32].astype(np.float64)
    reference = helpers.SoftmaxModel([16, 10], rng=np.random.default_rng(0), dtype=np.float64)
    out = reference.forward(X)
    reference.backward(X, out, Y)
    loss = helpers.sgd_step(model, X, Y, 0.01, None, 0.9)
    assert loss == helpers.cross_entropy_loss(Y, out)
    for w, w0, g in zip(model.ws, reference.ws, reference.grads):
        np.testing.assert_allclose(w, w0 - 0.01 * g, rtol=1e-13)
    assert helpers.cross_entropy_loss(Y, model.forward(X)) < loss


def test_momentum_with_gamma_zero_equals_plain_sgd(tiny_data):
    X, Y = tiny_data.X_train[:32], tiny_data.Y_train[:32]
    a = helpers.SoftmaxModel([16, 10], rng=np.random.default_rng(0))
    b = helpers.SoftmaxModel([16, 10], rng=np.random.default_rng(0))
    velocity = [np.zeros_like(w) for w in b.ws]
    for _ in range(3):
        helpers.sgd_step(a, X, Y, 0.1, None, 0.9)
        helpers.sgd_step(b, X, Y, 0.1, velocity, 0.0)
    for wa, wb in zip(a.ws, b.ws):
        np.testing.assert_array_equal(wa, wb)


# ------------------------------------------------------------------------------------------------
# train: what it records
# ------------------------------------------------------------------------------------------------

def test_train_records_the_documented_history(tiny_data, tiny_config):
    events = []
    model, h = helpers.train(tiny_config, tiny_data, progress=events.append)
    steps = tiny_config.num_epochs * tiny_config.steps_per_epoch  # 3 * 8
    assert tiny_config.steps_per_check == 4
    assert h.train_loss.shape == (steps,) and h.train_loss.dtype == np.float64
    np.testing.assert_array_equal(h.check_steps, np.arange(0, steps + 1, 4))
    C = len(h.check_steps)
    for name in ("check_train_loss", "val_loss", "train_accuracy", "val_accuracy"):
        assert getattr(h, name).shape == (C,) and getattr(h, name).dtype == np.float64
    assert h.grad_norms.shape == (C, 2) and (h.grad_norms > 0).all()
    assert not h.stopped_early and not h.diverged and h.seconds > 0
    assert h.num_parameters == 785 * 16 + 16 * 10
    np.testing.assert_allclose(h.check_epochs(), h.check_steps / 8)
    # progress: one event per check, with the check's numbers
    assert [e.step for e in events] == h.check_steps.tolist()
    assert [e.val_loss for e in events] == h.val_loss.tolist()
    assert all(e.label == tiny_config.label() and e.num_epochs == 3 for e in events)
    # it learns: the validation loss falls at every check, accuracy rises
    assert (np.diff(h.val_loss) < 0).all() and h.val_accuracy[-1] > h.val_accuracy[0]
    # the check at step 0 measures the initial weights
    initial = helpers.SoftmaxModel((16, 10), rng=np.random.default_rng(tiny_config.seed))
    X_val, Y_val = tiny_data.X_val[:64], tiny_data.Y_val[:64]
    assert h.val_loss[0] == pytest.approx(
        helpers.cross_entropy_loss(Y_val, initial.predict(X_val)), rel=1e-6)


def test_all_tricks_learn_the_synthetic_classes(tiny_data, tiny_config):
    config = tiny_config.replace(use_improved_weight_init=True, use_improved_sigmoid=True,
                                 use_momentum=True)
    assert config.learning_rate == 0.02
    _, h = helpers.train(config, tiny_data)
    assert h.val_accuracy[0] < 0.3 and h.best["val_accuracy"] > 0.95
    assert h.best["val_loss"] < 0.2 * h.val_loss[0]


def test_train_returns_the_best_checks_weights(tiny_data, tiny_config):
    model, h = helpers.train(tiny_config, tiny_data)
    best = int(np.argmin(h.val_loss))
    assert h.best["step"] == h.check_steps[best] and h.best["val_loss"] == h.val_loss[best]
    X_val, Y_val = tiny_data.X_val[:64], tiny_data.Y_val[:64]
    assert helpers.cross_entropy_loss(Y_val, model.predict(X_val)) == pytest.approx(
        h.best["val_loss"], rel=1e-6)
    assert h.last["step"] == h.check_steps[-1] and h.last["val_loss"] == h.val_loss[-1]
    assert h.summary_row()["best_val_loss"] == h.best["val_loss"]


def test_train_uses_only_the_first_train_size_and_val_size_samples(tiny_data, tiny_config):
    """Changing data beyond train_size / val_size changes nothing."""
    X_train, X_val = tiny_data.X_train.copy(), tiny_data.X_val.copy()
    X_train[128:] = 0
    X_val[64:] = 0
    other = dataclasses.replace(tiny_data, X_train=X_train, X_val=X_val)
    _, a = helpers.train(tiny_config, tiny_data)
    _, b = helpers.train(tiny_config, other)
    np.testing.assert_array_equal(a.val_loss, b.val_loss)
    np.testing.assert_array_equal(a.train_loss, b.train_loss)


@pytest.mark.parametrize("field, size", [("train_size", 300), ("val_size", 100)])
def test_train_refuses_sizes_larger_than_the_data(tiny_data, tiny_config, field, size):
    """256 training / 96 validation images: asking for more must be a clear ValueError, not an
    IndexError mid-run or a silently smaller validation set."""
    config = tiny_config.replace(**{field: size})
    with pytest.raises(ValueError, match=field):
        helpers.train(config, tiny_data)


def test_validation_off_gives_one_final_check(tiny_data, tiny_config):
    config = tiny_config.replace(checks_per_epoch=0)
    assert config.steps_per_check == 0
    model, h = helpers.train(config, tiny_data)
    assert h.check_steps.tolist() == [24] and h.best == h.last
    assert len(h.train_loss) == 24


# ------------------------------------------------------------------------------------------------
# Early stopping on a scripted validation-loss curve
# ------------------------------------------------------------------------------------------------

VAL_SIZE = 40  # distinct from every other batch size below, so the script can spot val calls


@pytest.fixture
def scripted_val_loss(monkeypatch):
    """Make `train` see a scripted validation loss at each check; returns a setter."""
    script = []
    real_loss = helpers.cross_entropy_loss

    def loss(targets, outputs):
        if targets.shape[0] == VAL_SIZE:
            return script.pop(0)
        return real_loss(targets, outputs)

    monkeypatch.setattr(helpers, "cross_entropy_loss", loss)
    return lambda values: script.extend(values)


@pytest.fixture
def weight_snapshots(monkeypatch):
    """Record the weights after every SGD step: snapshots[s] = weights after step s."""
    snapshots = {}
    real_step = helpers.sgd_step

    def step(model, *args):
        if not snapshots:
            snapshots[0] = None  # filled by the caller from the initial weights
        loss = real_step(model, *args)
        snapshots[len(snapshots)] = [w.copy() for w in model.ws]
        return loss

    monkeypatch.setattr(helpers, "sgd_step", step)
    return snapshots


def _es_config(patience, num_epochs=20):
    return helpers.TrainConfig(neurons_per_layer=(8, 10), train_size=64, val_size=VAL_SIZE,
                               batch_size=8, num_epochs=num_epochs, checks_per_epoch=2,
                               early_stopping_patience=patience, seed=3)


def test_early_stopping_after_patience_checks_without_improvement(
        tiny_data, scripted_val_loss, weight_snapshots):
    # checks:  0    1    2    3    4    5    6    7    8
    curve = [5.0, 4.0, 4.5, 4.6, 3.0, 3.1, 3.0, 3.2, 9.0] + [0.1] * 20
    scripted_val_loss(curve)
    config = _es_config(patience=4)
    model, h = helpers.train(config, tiny_data)
    # best at check 4 (step 16); checks 5..8 do not improve (an equal loss is no improvement)
    assert h.stopped_early and not h.diverged
    np.testing.assert_array_equal(h.val_loss, curve[:9])
    np.testing.assert_array_equal(h.check_steps, np.arange(0, 33, 4))
    assert len(h.train_loss) == 32  # stopped right after the check at step 32
    assert h.best["step"] == 16 and h.best["val_loss"] == 3.0 and h.best["epoch"] == 2.0
    assert h.last["step"] == 32 and h.last["val_loss"] == 9.0
    for w, best in zip(model.ws, weight_snapshots[16]):
        np.testing.assert_array_equal(w, best)


def test_early_stopping_patience_one(tiny_data, scripted_val_loss, weight_snapshots):
    scripted_val_loss([5.0, 4.0, 3.0, 3.5] + [0.1] * 20)
    model, h = helpers.train(_es_config(patience=1), tiny_data)
    assert h.stopped_early and h.check_steps.tolist() == [0, 4, 8, 12]
    assert h.best["step"] == 8 and h.last["step"] == 12
    for w, best in zip(model.ws, weight_snapshots[8]):
        np.testing.assert_array_equal(w, best)


def test_no_early_stop_when_the_loss_keeps_improving(tiny_data, scripted_val_loss):
    scripted_val_loss(list(np.linspace(5, 1, 11)))
    model, h = helpers.train(_es_config(patience=2, num_epochs=5), tiny_data)
    assert not h.stopped_early and h.check_steps[-1] == 40 and len(h.train_loss) == 40
    assert h.best == h.last and h.best["step"] == 40


def test_initial_weights_returned_when_nothing_beats_step_zero(tiny_data, scripted_val_loss):
    scripted_val_loss([1.0] + [2.0] * 20)
    model, h = helpers.train(_es_config(patience=3), tiny_data)
    assert h.stopped_early and h.check_steps.tolist() == [0, 4, 8, 12] and h.best["step"] == 0
    initial = helpers.SoftmaxModel((8, 10), rng=np.random.default_rng(3))
    for w, w0 in zip(model.ws, initial.ws):
        np.testing.assert_array_equal(w, w0)


# ------------------------------------------------------------------------------------------------
# Divergence
# ------------------------------------------------------------------------------------------------

def _assert_curves_finite(h):
    for name in helpers.History.ARRAYS:
        values = getattr(h, name)
        assert np.isfinite(values).all(), f"History.{name} holds non-finite values: {values}"


def test_nan_loss_stops_the_run_marks_it_diverged_and_warns(tiny_data, tiny_config,
                                                            monkeypatch):
    """The loss of step 7 is NaN (weights still finite, as after a float32 overflow in a
    matmul): the run stops there, warns naming the run and the step, and returns finite curves
    and the best check's finite weights."""
    real_step = helpers.sgd_step
    count = [0]

    def step(*args):
        loss = real_step(*args)
        count[0] += 1
        return float("nan") if count[0] == 7 else loss

    monkeypatch.setattr(helpers, "sgd_step", step)
    with pytest.warns(RuntimeWarning) as record:
        model, h = helpers.train(tiny_config, tiny_data)
    messages = [str(r.message) for r in record if "diverged" in str(r.message)]
    assert len(messages) == 1
    assert tiny_config.label() in messages[0] and "step 7" in messages[0]
    assert h.diverged and not h.stopped_early
    assert count[0] == 7  # no step after the NaN
    assert h.check_steps.tolist() == [0, 4]
    _assert_curves_finite(h)
    assert all(np.isfinite(w).all() for w in model.ws)


@pytest.mark.parametrize("learning_rate", [3e38, 1e39])
def test_huge_learning_rate_diverges(tiny_data, tiny_config, learning_rate):
    """A learning rate that overflows float32 (NaN loss at 3e38, non-finite weights at 1e39)."""
    config = tiny_config.replace(learning_rate=learning_rate)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        model, h = helpers.train(config, tiny_data)
    assert h.diverged
    messages = [str(r.message) for r in record
                if r.category is RuntimeWarning and "diverged" in str(r.message)]
    assert len(messages) == 1 and config.label() in messages[0]
    assert re.search(r"step [1-9]\d*", messages[0])
    _assert_curves_finite(h)
    assert all(np.isfinite(w).all() for w in model.ws)
    assert h.best["step"] == 0


# ------------------------------------------------------------------------------------------------
# Reproducibility
# ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("tricks", [{}, dict(use_improved_weight_init=True,
                                             use_improved_sigmoid=True, use_momentum=True)],
                         ids=["plain", "all_tricks"])
def test_same_config_and_seed_give_identical_runs(tiny_data, tiny_config, tricks):
    config = tiny_config.replace(**tricks)
    m1, h1 = helpers.train(config, tiny_data)
    m2, h2 = helpers.train(config, tiny_data)
    for name in helpers.History.ARRAYS:
        a, b = getattr(h1, name), getattr(h2, name)
        assert a.dtype == b.dtype and a.tobytes() == b.tobytes(), name
    for w1, w2 in zip(m1.ws, m2.ws):
        assert w1.tobytes() == w2.tobytes()
    assert h1.best == h2.best and h1.last == h2.last
    _, h3 = helpers.train(config.replace(seed=config.seed + 1), tiny_data)
    assert not np.array_equal(h1.train_loss, h3.train_loss)


def test_shuffle_changes_the_batches(tiny_data, tiny_config):
    _, shuffled = helpers.train(tiny_config, tiny_data)
    _, ordered = helpers.train(tiny_config.replace(shuffle=False), tiny_data)
    assert shuffled.train_loss[0] != ordered.train_loss[0]
    assert np.array_equal(shuffled.val_loss[:1], ordered.val_loss[:1])  # same initial weights
