"""Activations, loss, the model (shapes, parameters, initialisation) and the gradient check."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

import helpers
from conftest import gradient_check_batch

# ------------------------------------------------------------------------------------------------
# Activations
# ------------------------------------------------------------------------------------------------

Z = np.linspace(-6, 6, 241)


def centred_difference(f, z, h=1e-5):
    return (f(z + h) - f(z - h)) / (2 * h)


def test_sigmoid_values():
    assert helpers.sigmoid(np.array(0.0)) == 0.5
    np.testing.assert_allclose(helpers.sigmoid(Z), 1 / (1 + np.exp(-Z)), rtol=1e-13)
    np.testing.assert_allclose(helpers.sigmoid(-Z), 1 - helpers.sigmoid(Z), atol=1e-15)


def test_sigmoid_saturates_without_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = helpers.sigmoid(np.array([-1e4, -800.0, 800.0, 1e4]))
    np.testing.assert_array_equal(out, [0, 0, 1, 1])


def test_improved_sigmoid_values():
    """LeCun's scaled tanh: f(z) = 1.7159 tanh(2z/3), so f(1) is about 1 and f is odd."""
    assert helpers.improved_sigmoid(np.array(1.0)) == pytest.approx(1.7159 * math.tanh(2 / 3),
                                                                    rel=1e-15)
    assert helpers.improved_sigmoid(np.array(1.0)) == pytest.approx(1.0, abs=1e-4)
    assert helpers.improved_sigmoid(np.array(-1.0)) == pytest.approx(-1.0, abs=1e-4)
    assert helpers.improved_sigmoid(np.array(0.0)) == 0.0
    np.testing.assert_allclose(helpers.improved_sigmoid(Z), 1.7159 * np.tanh(2 * Z / 3),
                               rtol=1e-15)
    assert helpers.improved_sigmoid(np.array(1e4)) == pytest.approx(1.7159)


@pytest.mark.parametrize("f, slope", [(helpers.sigmoid, helpers.sigmoid_slope),
                                      (helpers.improved_sigmoid, helpers.improved_sigmoid_slope)],
                         ids=["sigmoid", "improved_sigmoid"])
def test_slopes_match_centred_differences(f, slope):
    np.testing.assert_allclose(slope(Z), centred_difference(f, Z), rtol=1e-8, atol=1e-11)


def test_slopes_at_zero():
    assert helpers.sigmoid_slope(np.array(0.0)) == 0.25
    assert helpers.improved_sigmoid_slope(np.array(0.0)) == pytest.approx(1.7159 * 2 / 3,
                                                                          rel=1e-15)


# ------------------------------------------------------------------------------------------------
# Softmax, loss, accuracy
# ------------------------------------------------------------------------------------------------

def test_softmax_rows_are_probabilities():
    z = np.random.default_rng(0).normal(0, 3, size=(7, 10))
    p = helpers.softmax(z)
    assert p.shape == (7, 10) and (p > 0).all()
    np.testing.assert_allclose(p.sum(axis=1), 1, rtol=1e-15)
    expected = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(p, expected, rtol=1e-13)
    np.testing.assert_allclose(helpers.softmax(z + 100.0), p, rtol=1e-12)  # shift-invariant


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_softmax_is_stable_for_huge_logits(dtype):
    z = np.array([[1e4, 0, -1e4] + [0] * 7, [-1e4] * 10, [3e4, 3e4] + [-5e3] * 8], dtype=dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        p = helpers.softmax(z)
    assert np.isfinite(p).all()
    np.testing.assert_allclose(p.sum(axis=1), 1, rtol=1e-6)
    assert p[0, 0] == 1 and p[1, 3] == pytest.approx(0.1) and p[2, 1] == pytest.approx(0.5)


def test_cross_entropy_known_values():
    targets = helpers.one_hot_encode(np.array([1, 4, 7]), 10)
    uniform = np.full((3, 10), 0.1)
    assert helpers.cross_entropy_loss(targets, uniform) == pytest.approx(math.log(10), rel=1e-14)
    assert helpers.cross_entropy_loss(targets, targets) == 0.0
    outputs = np.full((3, 10), 0.05)
    outputs[0, 1], outputs[1, 4], outputs[2, 7] = 0.55, 0.55, 0.55
    outputs[2, 7], outputs[2, 0] = 0.3, 0.3
    expected = -(2 * math.log(0.55) + math.log(0.3)) / 3
    assert helpers.cross_entropy_loss(targets, outputs) == pytest.approx(expected, rel=1e-14)
    assert isinstance(helpers.cross_entropy_loss(targets, outputs), float)


@pytest.mark.parametrize("dtype, bound", [(np.float32, 88.0), (np.float64, 710.0)])
def test_cross_entropy_is_finite_for_underflowed_probabilities(dtype, bound):
    targets = helpers.one_hot_encode(np.array([0, 1]), 10).astype(dtype)
    outputs = helpers.softmax(np.array([[-1e4] + [0] * 9, [0] * 10], dtype=dtype))
    assert outputs[0, 0] == 0  # underflowed
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loss = helpers.cross_entropy_loss(targets, outputs)
    assert math.isfinite(loss) and math.log(10) / 2 < loss < bound


def test_cross_entropy_rejects_shape_mismatch():
    with pytest.raises(ValueError, match="shape"):
        helpers.cross_entropy_loss(np.zeros((3, 10)), np.zeros((3, 9)))


def test_accuracy():
    targets = helpers.one_hot_encode(np.array([0, 1, 2, 3]), 10)
    outputs = helpers.one_hot_encode(np.array([0, 1, 5, 3]), 10) * 0.9 + 0.01
    assert helpers.accuracy(targets, outputs) == 0.75


# ------------------------------------------------------------------------------------------------
# matmul: a @ b, with a step's products in column blocks on OpenBLAS's AVX-512 kernels
# ------------------------------------------------------------------------------------------------

# (m, k, n): a step's products for [64, 10], [128, 10] (4b) and [60, 60, 10] (4d), computed in
# column blocks by blocked_matmul; then data-set-sized ones, ones too long in k for any small block (a
# gradient over a batch of 2000, say), and small ones, always computed as they are.
PRODUCTS = [(32, 785, 64), (785, 32, 64), (32, 785, 128), (785, 32, 128), (32, 785, 60),
            (1000, 785, 64), (785, 512, 64), (3001, 64, 64), (2000, 64, 10),
            (785, 2000, 64), (40, 5000, 100), (32, 64, 10), (32, 785, 32)]
STEP_PRODUCTS = PRODUCTS[:5]


@pytest.mark.parametrize("matmul", [helpers.blocked_matmul, helpers.matmul])
@pytest.mark.parametrize("dtype, rtol", [(np.float32, 2e-5), (np.float64, 1e-12)])
@pytest.mark.parametrize("m, k, n", PRODUCTS)
def test_matmul_equals_the_plain_product(m, k, n, dtype, rtol, matmul):
    rng = np.random.default_rng(0)
    a = rng.normal(size=(m, k)).astype(dtype)
    b = rng.normal(size=(k, n)).astype(dtype)
    expected = a.astype(np.float64) @ b.astype(np.float64)
    got = matmul(a, b)
    assert got.shape == (m, n) and got.dtype == dtype
    np.testing.assert_allclose(got, expected, rtol=rtol, atol=rtol * np.abs(expected).max())
    out = np.full((m, n), np.nan, dtype=dtype)  # a column block left unwritten stays NaN
    assert matmul(a, b, out=out) is out
    np.testing.assert_array_equal(out, got)


def test_blocked_matmul_blocks_only_a_steps_products(monkeypatch):
    """The blocks' reason to exist: a step's large products become products under OpenBLAS's
    small-matrix limit that together write every element of the output exactly once; everything
    else is one plain product."""
    calls = []
    plain = np.matmul

    def recording_matmul(a, b, out=None):
        calls.append((a.shape[0] * a.shape[1] * b.shape[1], out))
        return plain(a, b, out=out)

    monkeypatch.setattr(helpers.np, "matmul", recording_matmul)
    for m, k, n in PRODUCTS:
        calls.clear()
        out = np.zeros((m, n), dtype=np.float32)
        helpers.blocked_matmul(np.ones((m, k), np.float32), np.ones((k, n), np.float32), out=out)
        np.testing.assert_array_equal(out, k)
        assert sum(o.size for _, o in calls) == m * n
        if (m, k, n) in STEP_PRODUCTS and m * k * n > helpers.SMALL_PRODUCT:
            assert len(calls) > 1 and all(macs <= helpers.SMALL_PRODUCT for macs, _ in calls)
        else:
            assert len(calls) == 1


def test_matmul_blocks_only_on_the_avx512_kernel_families():
    """The strategy follows the kernels OpenBLAS picked: blocking pays on its AVX-512 kernels
    and costs 10-30% on its AVX2 ones (benchmarks/README.md), where matmul is np.matmul itself."""
    blocks = helpers.BLAS_CORE in helpers.SMALL_KERNEL_CORES
    assert helpers.matmul is (helpers.blocked_matmul if blocks else np.matmul)


def test_blas_core_is_the_architecture_threadpoolctl_reports():
    threadpoolctl = pytest.importorskip("threadpoolctl")
    found = [i.get("architecture") for i in threadpoolctl.threadpool_info()
             if i["internal_api"] == "openblas"]
    if not found:
        assert helpers.BLAS_CORE == ""
    else:
        assert helpers.BLAS_CORE in found


def test_matmul_of_a_transposed_view_into_an_existing_array():
    """backward's use: the gradient activations.T @ delta, written into the grads array."""
    rng = np.random.default_rng(1)
    x = rng.normal(size=(32, 785)).astype(np.float32)
    delta = rng.normal(size=(32, 64)).astype(np.float32)
    out = np.zeros((785, 64), dtype=np.float32)
    helpers.matmul(x.T, delta, out=out)
    np.testing.assert_allclose(out, x.T.astype(np.float64) @ delta, rtol=2e-5, atol=1e-4)


# ------------------------------------------------------------------------------------------------
# Model: shapes, parameters, initialisation
# ------------------------------------------------------------------------------------------------

ARCHITECTURES = {"[64, 10]": [64, 10], "[64, 64, 10]": [64, 64, 10],
                 "10 x 64 hidden": [64] * 10 + [10]}


@pytest.mark.parametrize("layers", list(ARCHITECTURES.values()), ids=list(ARCHITECTURES))
def test_weight_and_gradient_shapes(layers):
    model = helpers.SoftmaxModel(layers, rng=np.random.default_rng(0))
    fan_ins = [785, *layers[:-1]]
    assert [w.shape for w in model.ws] == list(zip(fan_ins, layers))
    assert [g.shape for g in model.grads] == [w.shape for w in model.ws]
    assert all(w.dtype == np.float32 for w in model.ws)
    X = np.ones((3, 785), dtype=np.float32)
    out = model.forward(X)
    assert out.shape == (3, 10)
    model.backward(X, out, helpers.one_hot_encode(np.array([0, 1, 2]), 10).astype(np.float32))
    assert [g.shape for g in model.grads] == [w.shape for w in model.ws]
    assert model.num_parameters == helpers.count_parameters(layers)


def test_backward_overwrites_the_same_gradient_arrays():
    """A training step allocates no weight-sized arrays: backward writes into `grads` in place."""
    model = helpers.SoftmaxModel([16, 16, 10], True, True, rng=np.random.default_rng(2),
                                 dtype=np.float64)
    X, Y = gradient_check_batch(6)
    grads = model.grads
    ids = [id(g) for g in grads]
    model.backward(X, model.forward(X), Y)
    first = [g.copy() for g in model.grads]
    assert [id(g) for g in model.grads] == ids and any(np.abs(g).max() > 0 for g in first)
    model.backward(X[:3], model.forward(X[:3]), Y[:3])
    assert [id(g) for g in model.grads] == ids
    assert not all(np.array_equal(g, f) for g, f in zip(model.grads, first))


def test_number_of_parameters_of_the_task_2_network():
    """Task 2d: 785 * 64 + 64 * 10 (the bias is the 785th input)."""
    assert helpers.count_parameters([64, 10]) == 50880
    assert helpers.SoftmaxModel([64, 10], rng=np.random.default_rng(0)).num_parameters == 50880
    assert helpers.count_parameters([64, 64, 10]) == 50880 + 64 * 64
    assert helpers.TrainConfig().num_parameters == 50880


@pytest.mark.parametrize("method", ["forward", "predict"])
@pytest.mark.parametrize("shape", [(2, 784), (785,), (1, 2, 785)])
def test_forward_and_predict_reject_inputs_of_the_wrong_shape(method, shape):
    model = helpers.SoftmaxModel([8, 10], rng=np.random.default_rng(0))
    with pytest.raises(ValueError, match=rf"{method} expects inputs of shape \(N, 785\)"):
        getattr(model, method)(np.zeros(shape, dtype=np.float32))


def test_forward_outputs_probabilities_and_predict_agrees():
    model = helpers.SoftmaxModel([16, 16, 10], True, True, rng=np.random.default_rng(3),
                                 dtype=np.float64)
    X, _ = gradient_check_batch(6)
    out = model.forward(X)
    np.testing.assert_allclose(out.sum(axis=1), 1, rtol=1e-14)
    np.testing.assert_array_equal(model.predict(X), out)
    assert len(model.zs) == 3 and len(model.activations) == 4 and model.activations[0] is X


@pytest.mark.parametrize("rows", [1, 4, 5, 2048])
def test_predict_in_row_blocks_agrees_with_forward(rows):
    """predict's blocks of rows (the last one partial) give forward's probabilities."""
    model = helpers.SoftmaxModel([16, 16, 10], True, True, rng=np.random.default_rng(3),
                                 dtype=np.float64)
    X, _ = gradient_check_batch(11)
    np.testing.assert_allclose(model.predict(X, rows=rows), model.forward(X), rtol=1e-13)
    assert model.predict(X[:0], rows=rows).shape == (0, 10)


@pytest.mark.parametrize("f", [helpers.sigmoid, helpers.improved_sigmoid, helpers.softmax])
def test_activations_in_place_give_the_same_bits(f):
    z = np.random.default_rng(4).normal(scale=5, size=(7, 10)).astype(np.float32)
    expected = f(z)
    assert expected is not z
    inplace = z.copy()
    assert f(inplace, out=inplace) is inplace
    np.testing.assert_array_equal(inplace, expected)


def test_uniform_init_statistics():
    model = helpers.SoftmaxModel([64, 64, 10], rng=np.random.default_rng(11), dtype=np.float64)
    for w in model.ws:
        assert w.min() >= -1 and w.max() <= 1
    w = model.ws[0]  # 50240 draws
    assert w.min() < -0.999 and w.max() > 0.999
    assert w.mean() == pytest.approx(0, abs=0.01)
    assert w.std() == pytest.approx(1 / math.sqrt(3), rel=0.01)


def test_improved_init_statistics_per_layer():
    """N(0, 1/fan_in): the first layer's std is 1/sqrt(785), the others 1/sqrt(64)."""
    layers = [64] * 10 + [10]
    model = helpers.SoftmaxModel(layers, use_improved_weight_init=True,
                                 rng=np.random.default_rng(12), dtype=np.float64)
    for w, fan_in in zip(model.ws, [785, *layers[:-1]]):
        expected = 1 / math.sqrt(fan_in)
        rel = 4 / math.sqrt(2 * w.size)  # four standard errors of a sample std
        assert w.std() == pytest.approx(expected, rel=rel), w.shape
        assert abs(w.mean()) < 4 * expected / math.sqrt(w.size), w.shape
    assert np.abs(model.ws[0]).max() < 6 / math.sqrt(785)  # Gaussian, not U(-1, 1)


@pytest.mark.parametrize("improved_init", [False, True])
def test_same_seed_gives_same_weights(improved_init):
    a = helpers.SoftmaxModel([32, 32, 10], False, improved_init, rng=np.random.default_rng(5))
    b = helpers.SoftmaxModel([32, 32, 10], False, improved_init, rng=np.random.default_rng(5))
    c = helpers.SoftmaxModel([32, 32, 10], False, improved_init, rng=np.random.default_rng(6))
    for wa, wb, wc in zip(a.ws, b.ws, c.ws):
        np.testing.assert_array_equal(wa, wb)
        assert not np.array_equal(wa, wc)


def test_model_refuses_missing_rng():
    with pytest.raises(ValueError, match="rng"):
        helpers.SoftmaxModel([64, 10])
    with pytest.raises(ValueError, match="rng"):
        helpers.SoftmaxModel([64, 10], rng=None)


def test_model_does_not_use_the_global_numpy_seed():
    np.random.seed(0)
    a = helpers.SoftmaxModel([8, 10], rng=np.random.default_rng(1))
    np.random.seed(1)
    b = helpers.SoftmaxModel([8, 10], rng=np.random.default_rng(1))
    np.testing.assert_array_equal(a.ws[0], b.ws[0])


# ------------------------------------------------------------------------------------------------
# Gradient check
# ------------------------------------------------------------------------------------------------
# Measured in float64 on 10 synthetic images, 40 sampled weights per layer (see the report): the
# finite-difference error has a truncation part ~ epsilon^2 (dominant for the improved sigmoid,
# whose third derivative is large) and a rounding part ~ 1e-16 * C / epsilon ~ 3e-13 / (epsilon /
# 1e-3) in absolute terms (dominant for deep logistic-sigmoid nets, whose early-layer gradients
# vanish to 1e-7 .. 1e-10). epsilon = 1e-3 (the course's value) for the logistic sigmoid and 1e-4
# for the improved sigmoid keep both parts well below 1e-5 relative to each layer's gradients.
EPSILON = {False: 1e-3, True: 1e-4}
REL_TOL = 1e-5

GRAD_ARCHITECTURES = {"[64, 10]": [64, 10], "[16, 16, 10]": [16, 16, 10],
                      "10 x 8 hidden": [8] * 10 + [10]}


@pytest.mark.parametrize("improved_init", [False, True], ids=["uniform_init", "improved_init"])
@pytest.mark.parametrize("improved_sigmoid", [False, True], ids=["sigmoid", "improved_sigmoid"])
@pytest.mark.parametrize("layers", list(GRAD_ARCHITECTURES.values()),
                         ids=list(GRAD_ARCHITECTURES))
def test_gradient_check_relative_error(layers, improved_sigmoid, improved_init):
    X, Y = gradient_check_batch(10)
    model = helpers.SoftmaxModel(layers, improved_sigmoid, improved_init,
                                 rng=np.random.default_rng(0), dtype=np.float64)
    rows = helpers.gradient_check_errors(model, X, Y, epsilon=EPSILON[improved_sigmoid],
                                         max_weights_per_layer=40, rng=np.random.default_rng(0))
    assert [r["layer"] for r in rows] == list(range(len(layers)))
    assert all(r["checked"] == min(40, r["shape"][0] * r["shape"][1]) for r in rows)
    worst = max(r["max_rel_error"] for r in rows)
    assert worst < REL_TOL, rows


def test_gradient_check_leaves_the_model_unchanged():
    X, Y = gradient_check_batch(5)
    model = helpers.SoftmaxModel([8, 8, 10], True, True, rng=np.random.default_rng(0),
                                 dtype=np.float64)
    before = [w.copy() for w in model.ws]
    helpers.gradient_check_errors(model, X, Y, max_weights_per_layer=20)
    for w, b in zip(model.ws, before):
        np.testing.assert_array_equal(w, b)
    model.backward(X, model.forward(X), Y)
    fresh = [g.copy() for g in model.grads]
    helpers.gradient_check_errors(model, X, Y, max_weights_per_layer=20)
    for g, f in zip(model.grads, fresh):
        np.testing.assert_array_equal(g, f)


@pytest.mark.parametrize("layers, improved", [
    ([4, 10], False), ([4, 10], True), ([4, 4, 10], False), ([4, 4, 10], True),
    ([3] * 10 + [10], False)], ids=["one hidden plain", "one hidden improved", "two hidden plain",
                                    "two hidden improved", "ten hidden plain"])
def test_course_gradient_approximation_test_passes(layers, improved):
    """The course's check (every weight, |analytic - numerical| <= epsilon^2) raises nothing.

    (Not for ten improved-sigmoid layers: there the O(epsilon^2) truncation error itself exceeds
    epsilon^2, whatever epsilon, as the relative-error test above measures.)"""
    X, Y = gradient_check_batch(8)
    model = helpers.SoftmaxModel(layers, improved, improved, rng=np.random.default_rng(1),
                                 dtype=np.float64)
    helpers.gradient_approximation_test(model, X, Y)


def _wrong_slope(model):
    return helpers.sigmoid_slope if model.use_improved_sigmoid else helpers.improved_sigmoid_slope


@pytest.mark.parametrize("improved", [False, True], ids=["plain", "improved"])
def test_gradient_approximation_test_fails_on_a_broken_backward(improved):
    """A check that cannot fail is worthless: with the wrong activation slope in backward (the
    forward pass unchanged) the course's check must raise AssertionError."""
    X, Y = gradient_check_batch(8)
    model = helpers.SoftmaxModel([4, 10], improved, improved, rng=np.random.default_rng(1),
                                 dtype=np.float64)
    model.f_prime = _wrong_slope(model)
    with pytest.raises(AssertionError, match="gradient check failed in layer 0"):
        helpers.gradient_approximation_test(model, X, Y)


@pytest.mark.parametrize("layers", list(GRAD_ARCHITECTURES.values()),
                         ids=list(GRAD_ARCHITECTURES))
@pytest.mark.parametrize("improved", [False, True], ids=["plain", "improved"])
def test_relative_error_exposes_a_broken_backward(layers, improved):
    X, Y = gradient_check_batch(10)
    model = helpers.SoftmaxModel(layers, improved, improved, rng=np.random.default_rng(0),
                                 dtype=np.float64)
    model.f_prime = _wrong_slope(model)
    rows = helpers.gradient_check_errors(model, X, Y, epsilon=EPSILON[improved],
                                         max_weights_per_layer=40, rng=np.random.default_rng(0))
    assert rows[-1]["max_rel_error"] < REL_TOL  # the output layer does not use f'
    assert max(r["max_rel_error"] for r in rows[:-1]) > 1e-2


def test_gradient_check_with_a_scaled_gradient_fails():
    """Another plausible bug: forgetting to average over the batch (gradient N times too big)."""
    X, Y = gradient_check_batch(8)
    model = helpers.SoftmaxModel([4, 10], rng=np.random.default_rng(1), dtype=np.float64)
    backward = model.backward

    def summed_backward(X, outputs, targets):
        backward(X, outputs, targets)
        model.grads = [g * X.shape[0] for g in model.grads]

    model.backward = summed_backward
    with pytest.raises(AssertionError):
        helpers.gradient_approximation_test(model, X, Y)
    rows = helpers.gradient_check_errors(model, X, Y, max_weights_per_layer=20)
    assert min(r["max_rel_error"] for r in rows) > 0.5
