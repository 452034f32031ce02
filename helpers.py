"""TDT4265 Assignment 2: a NumPy multi-layer perceptron for MNIST, and the tools the report uses.

The module reads top to bottom in the order `assignment2.ipynb` uses it:

    data -> preprocessing -> activations and loss -> model -> gradient check -> training
    -> experiments (cache, parallel runs) -> analysis -> plots -> widgets

Notation follows the derivation in the notebook (Task 1): ``i`` indexes inputs, ``j`` hidden units,
``k`` outputs; ``z = a_prev @ w`` is a layer's pre-activation, ``a = f(z)`` its activation, and
``delta = dC/dz``. Weights are stored as the course's starter code stores them, one matrix per layer
of shape ``(fan_in, fan_out)``, so ``w[i, j]`` is the weight written ``w_ji`` in the derivation.

Everything random takes an explicit ``np.random.Generator``; nothing here seeds NumPy globally.
"""

from __future__ import annotations

import contextlib
import dataclasses
import gzip
import hashlib
import http.client
import io
import json
import math
import os
import struct
import sys
import tempfile
import time
import urllib.error
import urllib.request
import warnings
import zlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

PROJECT_DIR = Path(__file__).resolve().parent

# ================================================================================================
# Data: the four original MNIST IDX files, verified
# ================================================================================================

#: SHA-256 of the *decompressed* IDX bytes, as published for the original distribution.
MNIST_FILES: dict[str, str] = {
    "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
}
#: Expected IDX header of each file: (magic number, dimensions).
_IDX_SHAPES: dict[str, tuple[int, tuple[int, ...]]] = {
    "train-images-idx3-ubyte": (0x0803, (60000, 28, 28)),
    "train-labels-idx1-ubyte": (0x0801, (60000,)),
    "t10k-images-idx3-ubyte": (0x0803, (10000, 28, 28)),
    "t10k-labels-idx1-ubyte": (0x0801, (10000,)),
}
#: Public HTTPS mirrors of the gzipped files, tried in order.
MNIST_MIRRORS: tuple[str, ...] = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
)
#: The assignment's split: the first 20000 training images train, the 10000 test images validate.
NUM_TRAIN, NUM_VAL, NUM_CLASSES = 20000, 10000, 10

_HOW_TO_FIX = (
    "Set the environment variable MNIST_DIR (or pass data_dir=) to a folder holding the four "
    "original MNIST files (train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, "
    "t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz; gzipped or not)."
)


class MnistError(RuntimeError):
    """A MNIST file is missing, damaged or could not be downloaded. The message says what to do."""


def mnist_dir(data_dir: str | os.PathLike | None = None) -> Path:
    """The folder the loader reads: ``data_dir``, else ``$MNIST_DIR``, else ``<project>/data/mnist``."""
    if data_dir is not None:
        return Path(data_dir)
    if os.environ.get("MNIST_DIR"):
        return Path(os.environ["MNIST_DIR"])
    return PROJECT_DIR / "data" / "mnist"


def parse_idx(raw: bytes, name: str, source: str = "") -> np.ndarray:
    """Check and decode one decompressed IDX file.

    Args:
        raw: the decompressed bytes.
        name: the file's base name (a key of ``MNIST_FILES``), which fixes the expected header.
        source: where the bytes came from, for error messages.
    Returns:
        uint8 array of the shape in the header: (N, 28, 28) for images, (N,) for labels.
    Raises:
        MnistError: wrong magic number, wrong dimensions, wrong length or wrong checksum.
    """
    where = source or name
    magic, dims = _IDX_SHAPES[name]
    header_len = 4 + 4 * len(dims)
    if len(raw) < header_len:
        raise MnistError(f"{where}: truncated: {len(raw)} bytes, shorter than the IDX header. "
                         f"Delete it and fetch it again. {_HOW_TO_FIX}")
    got_magic = struct.unpack(">I", raw[:4])[0]
    if got_magic != magic:
        raise MnistError(f"{where}: wrong IDX magic number 0x{got_magic:08x} (expected "
                         f"0x{magic:08x}): this is not the file {name}. {_HOW_TO_FIX}")
    got_dims = struct.unpack(f">{len(dims)}I", raw[4:header_len])
    if got_dims != dims:
        raise MnistError(f"{where}: IDX dimensions {got_dims}, expected {dims}. {_HOW_TO_FIX}")
    if len(raw) != header_len + int(np.prod(dims)):
        raise MnistError(f"{where}: truncated: {len(raw) - header_len} data bytes, expected "
                         f"{int(np.prod(dims))}. Delete it and fetch it again. {_HOW_TO_FIX}")
    digest = hashlib.sha256(raw).hexdigest()
    if digest != MNIST_FILES[name]:
        raise MnistError(f"{where}: SHA-256 of the decompressed bytes is {digest}, expected "
                         f"{MNIST_FILES[name]}: the file is damaged or altered. Delete it and "
                         f"fetch it again. {_HOW_TO_FIX}")
    return np.frombuffer(raw, dtype=np.uint8, offset=header_len).reshape(dims)


def _decompress(blob: bytes, source: str) -> bytes:
    """Gunzip ``blob`` if it is gzipped (magic 1f 8b), else return it unchanged."""
    if blob[:2] != b"\x1f\x8b":
        return blob
    try:
        return gzip.decompress(blob)
    except EOFError:
        raise MnistError(f"{source}: truncated gzip stream (the download or copy was cut short). "
                         f"Delete it and fetch it again. {_HOW_TO_FIX}") from None
    except (gzip.BadGzipFile, zlib.error, OSError) as err:
        raise MnistError(f"{source}: corrupt gzip data ({err}). Delete it and fetch it again. "
                         f"{_HOW_TO_FIX}") from None


def _find_file(folder: Path, name: str) -> Path | None:
    for candidate in (folder / f"{name}.gz", folder / name):
        if candidate.is_file():
            return candidate
    return None


def read_mnist_file(path: Path, name: str) -> np.ndarray:
    """Read, decompress (if gzipped) and verify one IDX file; see `parse_idx`."""
    blob = path.read_bytes()
    if name in path.name and path.suffix == ".gz" and blob[:2] != b"\x1f\x8b":
        raise MnistError(f"{path}: named .gz but not gzip data. Delete it and fetch it again. "
                         f"{_HOW_TO_FIX}")
    return parse_idx(_decompress(blob, str(path)), name, str(path))


def atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` all or nothing: a temporary file in the same folder, renamed
    over ``path`` once complete; the temporary file never outlives a failure."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def download_mnist_file(name: str, folder: Path, mirrors: Sequence[str] = MNIST_MIRRORS,
                        timeout: float = 30.0) -> Path:
    """Fetch ``name``.gz from the first mirror that serves a verified copy; write it atomically.

    The bytes go to a temporary file in ``folder``, are verified (gzip, IDX header, SHA-256) and
    only then renamed to ``folder/name.gz``; nothing partial or unverified is ever left where the
    loader would trust it. Raises MnistError naming every mirror and why it failed.
    """
    folder.mkdir(parents=True, exist_ok=True)
    failures = []
    for mirror in mirrors:
        url = mirror.rstrip("/") + f"/{name}.gz"
        try:
            with urllib.request.urlopen(url, timeout=timeout) as response:
                blob = response.read()
            parse_idx(_decompress(blob, url), name, url)
        except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError,
                MnistError) as err:
            failures.append(f"{url}: {getattr(err, 'reason', err)}")
            continue
        atomic_write(folder / f"{name}.gz", blob)
        return folder / f"{name}.gz"
    raise MnistError(f"{name} is missing from {folder} and could not be downloaded (offline?):\n  "
                     + "\n  ".join(failures) + f"\n{_HOW_TO_FIX}")


def load_mnist(data_dir: str | os.PathLike | None = None, *, download: bool = True,
               mirrors: Sequence[str] = MNIST_MIRRORS) -> tuple[np.ndarray, ...]:
    """The assignment's MNIST split, verified.

    Args:
        data_dir: folder with the four IDX files (gzipped or not); default: see `mnist_dir`.
        download: fetch missing files from ``mirrors`` into that folder.
    Returns:
        X_train: uint8 (20000, 784), the first 20000 training images, flattened row by row.
        Y_train: int64 (20000,), digits 0-9.
        X_val: uint8 (10000, 784), the 10000 test images.
        Y_val: int64 (10000,).
    Raises:
        MnistError: a file is missing (and could not be downloaded) or fails verification.
    """
    folder = mnist_dir(data_dir)
    arrays = {}
    for name in MNIST_FILES:
        path = _find_file(folder, name)
        if path is None:
            if not download:
                raise MnistError(f"{name}(.gz) is missing from {folder}. {_HOW_TO_FIX}")
            path = download_mnist_file(name, folder, mirrors)
        arrays[name] = read_mnist_file(path, name)
    X_train = arrays["train-images-idx3-ubyte"][:NUM_TRAIN].reshape(NUM_TRAIN, -1)
    Y_train = arrays["train-labels-idx1-ubyte"][:NUM_TRAIN].astype(np.int64)
    X_val = arrays["t10k-images-idx3-ubyte"].reshape(NUM_VAL, -1)
    Y_val = arrays["t10k-labels-idx1-ubyte"].astype(np.int64)
    return X_train, Y_train, X_val, Y_val


# ================================================================================================
# Preprocessing: normalisation with training-set statistics, the bias trick, one-hot targets
# ================================================================================================

def pixel_statistics(X_train: np.ndarray) -> tuple[float, float]:
    """Mean and (population) standard deviation of *all* pixels of the training set, as floats.

    Computed once, on the training set only, and applied unchanged to every split: the network
    must see the same input transformation at validation time as during training.
    """
    X = np.asarray(X_train, dtype=np.float64)
    return float(X.mean()), float(X.std())


def pre_process_images(X: np.ndarray, mean: float, std: float,
                       dtype: type = np.float32) -> np.ndarray:
    """Normalise images with the *training-set* statistics and append the bias input.

    Args:
        X: (N, 784) images in [0, 255], any numeric dtype.
        mean, std: scalars from `pixel_statistics` of the training set (never of X itself).
        dtype: float32 for training, float64 for gradient checks.
    Returns:
        (N, 785) array ``[(X - mean) / std, 1]`` of ``dtype``.
    """
    X = np.asarray(X)
    if X.ndim != 2 or X.shape[1] != 784:
        raise ValueError(f"pre_process_images expects images of shape (N, 784), got {X.shape}; "
                         "flatten 28x28 images with X.reshape(len(X), -1).")
    if not std > 0:
        raise ValueError(f"std must be positive, got {std}: compute it with pixel_statistics().")
    out = np.empty((X.shape[0], 785), dtype=dtype)
    out[:, :784] = (X - mean) / std
    out[:, 784] = 1.0
    return out


def one_hot_encode(Y: np.ndarray, num_classes: int) -> np.ndarray:
    """Integer labels (N,) or (N, 1) -> one-hot float (N, num_classes)."""
    Y = np.asarray(Y).reshape(-1)
    if Y.size and (Y.min() < 0 or Y.max() >= num_classes):
        raise ValueError(f"labels must lie in [0, {num_classes}), got range "
                         f"[{Y.min()}, {Y.max()}]")
    out = np.zeros((Y.size, num_classes))
    out[np.arange(Y.size), Y] = 1.0
    return out


# ================================================================================================
# Activations and loss
# ================================================================================================

def sigmoid(z: np.ndarray) -> np.ndarray:
    """Logistic function 1 / (1 + e^-z), computed without overflow warnings for large |z|."""
    return 0.5 * (1.0 + np.tanh(0.5 * z))


def sigmoid_slope(z: np.ndarray) -> np.ndarray:
    """f'(z) = f(z) (1 - f(z)) for the logistic sigmoid."""
    s = sigmoid(z)
    return s * (1.0 - s)


def improved_sigmoid(z: np.ndarray) -> np.ndarray:
    """LeCun's scaled tanh, f(z) = 1.7159 tanh(2z/3): f(+-1) = +-1, zero-centred outputs."""
    return 1.7159 * np.tanh(z * (2.0 / 3.0))


def improved_sigmoid_slope(z: np.ndarray) -> np.ndarray:
    """f'(z) = 1.7159 * 2/3 * (1 - tanh^2(2z/3))."""
    t = np.tanh(z * (2.0 / 3.0))
    return (1.7159 * 2.0 / 3.0) * (1.0 - t * t)


def softmax(z: np.ndarray) -> np.ndarray:
    """Row-wise softmax of (N, K) logits, shifted by the row maximum so exp never overflows."""
    e = np.exp(z - z.max(axis=1, keepdims=True))
    e /= e.sum(axis=1, keepdims=True)
    return e


def cross_entropy_loss(targets: np.ndarray, outputs: np.ndarray) -> float:
    """Cross-entropy averaged over the batch, C = -(1/N) sum_n sum_k y_k log(yhat_k).

    Args:
        targets: (N, K) one-hot labels.
        outputs: (N, K) softmax probabilities.
    A probability that underflowed to 0 is read as the smallest positive float of its dtype, so
    the loss stays finite (at most about 87 in float32) unless the outputs are NaN.
    """
    if targets.shape != outputs.shape:
        raise ValueError(f"targets {targets.shape} and outputs {outputs.shape} differ in shape")
    tiny = np.finfo(outputs.dtype).tiny if outputs.dtype.kind == "f" else 1e-300
    log_p = np.log(np.maximum(outputs, tiny))
    return float(-np.vdot(targets, log_p) / targets.shape[0])


def accuracy(targets: np.ndarray, outputs: np.ndarray) -> float:
    """Fraction of rows where argmax(outputs) equals argmax(targets) (targets one-hot)."""
    return float(np.mean(outputs.argmax(axis=1) == targets.argmax(axis=1)))


# ================================================================================================
# Model
# ================================================================================================

SMALL_PRODUCT = 1_000_000  # multiply-adds; OpenBLAS's small-matrix kernel takes products below it


def matmul(a: np.ndarray, b: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """``a @ b`` for 2-D arrays, (m, k) @ (k, n) -> (m, n), written into ``out`` if given.

    Below 1e6 multiply-adds OpenBLAS, NumPy's BLAS, uses an unpacked small-matrix kernel that is
    10-25% faster than its general one for this network's thin products (``benchmarks/README.md``
    has the measurements), so larger products are computed in blocks of the output that stay
    under that size: column blocks (a multiple of 16 columns) when all m rows fit, as for a
    training step's (32, 785) @ (785, 64) and (785, 32) @ (32, 64); otherwise slabs of rows, each
    blocked the same way, as for predicting a whole data set (unless k is so long that even 32
    rows by 16 columns exceed the limit; then as one product). Every output element is still one
    dot product over k; only the rounding of its last bit may differ from ``a @ b``. A BLAS
    without such a kernel should spend about as long on the blocks as on the whole product (not
    measured here).
    """
    m, k = a.shape
    n = b.shape[1]
    if m * k * n <= SMALL_PRODUCT:
        return np.matmul(a, b, out=out)
    if out is None:
        out = np.empty((m, n), dtype=np.result_type(a, b))
    width = SMALL_PRODUCT // (m * k) // 16 * 16  # widest block of whole 16-float vectors
    if width >= 16:
        for j in range(0, n, width):
            np.matmul(a, b[:, j:j + width], out=out[:, j:j + width])
    elif m > 32 and 32 * k * 16 <= SMALL_PRODUCT:  # each slab takes one of the two branches
        rows = max(32, SMALL_PRODUCT // (k * n))
        for i in range(0, m, rows):
            matmul(a[i:i + rows], b, out=out[i:i + rows])
    else:  # k too long for even a (32, k) @ (k, 16) block to be small: nothing to gain
        np.matmul(a, b, out=out)
    return out


class SoftmaxModel:
    """A fully connected network: (improved) sigmoid hidden layers and a softmax output layer.

    Attributes:
        ws: list of weight matrices; ``ws[l]`` has shape (fan_in, fan_out), fan_in = 785 (784
            pixels + the bias input) for the first layer and the previous layer's width after.
        grads: one gradient per weight matrix, same shapes and dtype, overwritten in place by
            `backward` (so a training step allocates no weight-sized arrays).
        zs, activations: what the last `forward` kept for `backward` (as in Nielsen's network.py):
            ``activations[0]`` is the input X, ``zs[l] = activations[l] @ ws[l]`` and
            ``activations[l+1] = f(zs[l])`` (softmax for the last layer).
    """

    def __init__(self, neurons_per_layer: Sequence[int], use_improved_sigmoid: bool = False,
                 use_improved_weight_init: bool = False, rng: np.random.Generator | None = None,
                 dtype: type = np.float32, input_size: int = 785):
        """
        Args:
            neurons_per_layer: widths of the hidden layers, then 10 outputs, e.g. [64, 10].
            use_improved_sigmoid: 1.7159 tanh(2z/3) in the hidden layers instead of the logistic.
            use_improved_weight_init: w ~ N(0, 1/fan_in) instead of U(-1, 1).
            rng: the generator that draws the initial weights (required for reproducibility).
            dtype: float32 for training, float64 for gradient checks.
        """
        if rng is None:
            raise ValueError("pass rng=np.random.default_rng(seed): the initial weights must "
                             "come from an explicit generator")
        self.neurons_per_layer = list(neurons_per_layer)
        self.use_improved_sigmoid = use_improved_sigmoid
        self.use_improved_weight_init = use_improved_weight_init
        self.f = improved_sigmoid if use_improved_sigmoid else sigmoid
        self.f_prime = improved_sigmoid_slope if use_improved_sigmoid else sigmoid_slope
        self.ws = []
        fan_in = input_size
        for fan_out in self.neurons_per_layer:
            if use_improved_weight_init:
                w = rng.normal(0.0, 1.0 / np.sqrt(fan_in), size=(fan_in, fan_out))
            else:
                w = rng.uniform(-1.0, 1.0, size=(fan_in, fan_out))
            self.ws.append(w.astype(dtype))
            fan_in = fan_out
        self.grads = [np.zeros_like(w) for w in self.ws]
        self.zs: list[np.ndarray] = []
        self.activations: list[np.ndarray] = []

    @property
    def num_parameters(self) -> int:
        """Number of trainable parameters (the bias lives in the first matrix's last row)."""
        return sum(w.size for w in self.ws)

    def _check_inputs(self, X: np.ndarray, caller: str) -> None:
        if np.ndim(X) != 2 or X.shape[1] != self.ws[0].shape[0]:
            raise ValueError(f"{caller} expects inputs of shape (N, {self.ws[0].shape[0]}), got "
                             f"{np.shape(X)}: did you run pre_process_images (bias trick)?")

    def forward(self, X: np.ndarray) -> np.ndarray:
        """(N, 785) inputs -> (N, 10) softmax probabilities; keeps `zs` and `activations`."""
        self._check_inputs(X, "forward")
        self.activations, self.zs = [X], []
        a = X
        for l, w in enumerate(self.ws):
            z = matmul(a, w)
            a = softmax(z) if l == len(self.ws) - 1 else self.f(z)
            self.zs.append(z)
            self.activations.append(a)
        return a

    def backward(self, X: np.ndarray, outputs: np.ndarray, targets: np.ndarray) -> None:
        """Gradients of the batch-mean cross-entropy into `grads`, walking the layers in reverse.

        Output layer: delta_k = -(y_k - yhat_k) (divided by N for the batch mean).
        Hidden layers: delta_j = f'(z_j) * sum_k w_kj delta_k, i.e. ``f'(z) * (delta @ w.T)``.
        Each weight: dC/dw_ji = delta_j a_i, i.e. ``grads[l] = activations[l].T @ delta``.

        Args:
            X: (N, 785) the inputs given to the last `forward` call.
            outputs: (N, 10) what that call returned.
            targets: (N, 10) one-hot labels.
        """
        if outputs.shape != targets.shape:
            raise ValueError(f"outputs {outputs.shape} and targets {targets.shape} differ")
        if not self.activations or self.activations[0] is not X:
            self.forward(X)
        delta = (outputs - targets) / X.shape[0]
        for l in range(len(self.ws) - 1, -1, -1):
            matmul(self.activations[l].T, delta, out=self.grads[l])
            if l > 0:
                delta = self.f_prime(self.zs[l - 1]) * (delta @ self.ws[l].T)

    def zero_grad(self) -> None:
        self.grads = [np.zeros_like(w) for w in self.ws]

    def predict(self, X: np.ndarray) -> np.ndarray:
        """(N, 785) -> (N, 10) probabilities, without keeping anything for backward."""
        self._check_inputs(X, "predict")
        a = X
        for l, w in enumerate(self.ws):
            z = matmul(a, w)
            a = softmax(z) if l == len(self.ws) - 1 else self.f(z)
        return a


def count_parameters(neurons_per_layer: Sequence[int], input_size: int = 785) -> int:
    """Weights of a network with these layer widths: sum of fan_in * fan_out over the layers."""
    sizes = [input_size, *neurons_per_layer]
    return sum(a * b for a, b in zip(sizes[:-1], sizes[1:]))


# ================================================================================================
# Gradient check
# ================================================================================================

def gradient_check_errors(model: SoftmaxModel, X: np.ndarray, Y: np.ndarray,
                          epsilon: float = 1e-3, max_weights_per_layer: int | None = None,
                          rng: np.random.Generator | None = None) -> list[dict]:
    """Compare `backward` with centred differences, weight by weight.

    Args:
        model: the network (use dtype=float64).
        X: (N, 785) inputs; Y: (N, 10) one-hot targets.
        epsilon: the finite-difference step.
        max_weights_per_layer: check a random sample of this many weights per layer (None: all).
        rng: draws that sample.
    Returns:
        One dict per layer: ``layer``, ``shape``, ``checked`` (number of weights),
        ``max_abs_error`` = max |a - n| and ``max_rel_error`` = max |a - n| / max(|a|, |n|), the
        maxima over the layer's checked weights, with a the analytic and n the numerical
        gradient. The error is relative to the layer's largest gradient, not weight by weight:
        deep sigmoid layers have gradients near 0 (1e-7 .. 1e-10 in the first of ten layers),
        where |a - n| / (|a| + |n|) would only measure the rounding error of the loss
        difference, about 1e-16 * C / epsilon.
    """
    model.backward(X, model.forward(X), Y)
    analytic = [g.copy() for g in model.grads]
    rows = []
    for l, w in enumerate(model.ws):
        indices = list(np.ndindex(w.shape))
        if max_weights_per_layer is not None and max_weights_per_layer < len(indices):
            rng = rng if rng is not None else np.random.default_rng(0)
            picks = rng.choice(len(indices), size=max_weights_per_layer, replace=False)
            indices = [indices[p] for p in sorted(picks)]
        max_abs = max_scale = 0.0
        for idx in indices:
            original = w[idx]
            w[idx] = original + epsilon
            loss_plus = cross_entropy_loss(Y, model.forward(X))
            w[idx] = original - epsilon
            loss_minus = cross_entropy_loss(Y, model.forward(X))
            w[idx] = original
            numerical = (loss_plus - loss_minus) / (2 * epsilon)
            error = abs(analytic[l][idx] - numerical)
            max_abs = max(max_abs, error)
            max_scale = max(max_scale, abs(analytic[l][idx]), abs(numerical))
        rows.append(dict(layer=l, shape=tuple(w.shape), checked=len(indices),
                         max_abs_error=float(max_abs),
                         max_rel_error=float(max_abs / max(max_scale, 1e-300))))
    model.grads = analytic
    return rows


def gradient_approximation_test(model: SoftmaxModel, X: np.ndarray, Y: np.ndarray,
                                epsilon: float = 1e-3) -> None:
    """The course's check: every weight's analytic gradient within epsilon**2 of the numerical one.

    Raises AssertionError naming the layer and the worst error if the check fails.
    """
    for row in gradient_check_errors(model, X, Y, epsilon):
        assert row["max_abs_error"] <= epsilon ** 2, (
            f"gradient check failed in layer {row['layer']} {row['shape']}: max |analytic - "
            f"numerical| = {row['max_abs_error']:.3g} > epsilon^2 = {epsilon ** 2:.3g}")


# ================================================================================================
# Training: one frozen config per run, mini-batch SGD with momentum, validation, early stopping
# ================================================================================================

@dataclass(frozen=True)
class TrainConfig:
    """Everything that determines a training run. The defaults are the assignment's values.

    ``learning_rate=None`` means the assignment's choice: 0.1, or 0.02 with momentum.
    ``train_size``/``val_size`` take the first so many images of each split (the report's quick
    mode uses fewer); ``checks_per_epoch`` validation checks per epoch (5: every 125 steps).
    """
    neurons_per_layer: tuple[int, ...] = (64, 10)
    use_improved_weight_init: bool = False
    use_improved_sigmoid: bool = False
    use_momentum: bool = False
    learning_rate: float | None = None
    momentum_gamma: float = 0.9
    batch_size: int = 32
    num_epochs: int = 50
    early_stopping_patience: int = 50
    shuffle: bool = True
    seed: int = 0
    train_size: int = NUM_TRAIN
    val_size: int = NUM_VAL
    checks_per_epoch: int = 5

    def __post_init__(self):
        layers = self.neurons_per_layer
        if isinstance(layers, (int, np.integer)) or not isinstance(layers, Iterable):
            raise ValueError(f"neurons_per_layer must be a list of layer widths ending in 10, "
                             f"e.g. [64, 10]; got {layers!r}")
        layers = tuple(layers)
        if len(layers) == 0:
            raise ValueError("neurons_per_layer is empty: give the hidden widths then 10, e.g. "
                             "[64, 10]")
        if not all(isinstance(n, (int, np.integer)) and not isinstance(n, bool) and n > 0
                   for n in layers):
            raise ValueError(f"neurons_per_layer must hold positive integers, got {layers!r}")
        if layers[-1] != NUM_CLASSES:
            raise ValueError(f"neurons_per_layer must end with the {NUM_CLASSES} output units, "
                             f"got {layers!r}")
        object.__setattr__(self, "neurons_per_layer", tuple(int(n) for n in layers))
        for name in ("batch_size", "num_epochs", "early_stopping_patience", "seed", "train_size",
                     "val_size", "checks_per_epoch"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
                raise ValueError(f"TrainConfig.{name} must be an integer, got {value!r}")
            object.__setattr__(self, name, int(value))
        if self.learning_rate is None:
            object.__setattr__(self, "learning_rate", 0.02 if self.use_momentum else 0.1)
        for name in ("learning_rate", "momentum_gamma"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float, np.integer,
                                                                 np.floating)):
                raise ValueError(f"TrainConfig.{name} must be a number, got {value!r}")
            object.__setattr__(self, name, float(value))
        for name in ("use_improved_weight_init", "use_improved_sigmoid", "use_momentum",
                     "shuffle"):
            object.__setattr__(self, name, bool(getattr(self, name)))
        checks = {
            "learning_rate": self.learning_rate > 0 and np.isfinite(self.learning_rate),
            "momentum_gamma": 0 <= self.momentum_gamma < 1,
            "train_size": 1 <= self.train_size <= NUM_TRAIN,
            "val_size": 1 <= self.val_size <= NUM_VAL,
            "batch_size": 1 <= self.batch_size <= self.train_size,
            "num_epochs": self.num_epochs >= 1,
            "early_stopping_patience": self.early_stopping_patience >= 1,
            "checks_per_epoch": self.checks_per_epoch >= 0,
        }
        limits = {
            "learning_rate": "a finite number > 0", "momentum_gamma": "in [0, 1)",
            "train_size": f"in [1, {NUM_TRAIN}]", "val_size": f"in [1, {NUM_VAL}]",
            "batch_size": f"in [1, train_size={self.train_size}]", "num_epochs": ">= 1",
            "early_stopping_patience": ">= 1 validation checks", "checks_per_epoch": ">= 0",
        }
        for name, ok in checks.items():
            if not ok:
                raise ValueError(f"TrainConfig.{name} must be {limits[name]}, got "
                                 f"{getattr(self, name)!r}")
        batches = self.train_size // self.batch_size
        if self.checks_per_epoch > batches:
            raise ValueError(f"TrainConfig.checks_per_epoch={self.checks_per_epoch} exceeds the "
                             f"{batches} batches of an epoch")

    @property
    def hidden_layers(self) -> tuple[int, ...]:
        return self.neurons_per_layer[:-1]

    @property
    def steps_per_epoch(self) -> int:
        """Batches per epoch; the last partial batch is dropped (20000 // 32 = 625)."""
        return self.train_size // self.batch_size

    @property
    def steps_per_check(self) -> int:
        """Steps between validation checks (625 // 5 = 125); 0 when validation is off."""
        return self.steps_per_epoch // self.checks_per_epoch if self.checks_per_epoch else 0

    @property
    def num_parameters(self) -> int:
        return count_parameters(self.neurons_per_layer)

    def label(self) -> str:
        """A short readable name, e.g. '[64, 10] init+sig+mom lr=0.02 seed 0'."""
        tricks = [name for name, on in (("init", self.use_improved_weight_init),
                                        ("sig", self.use_improved_sigmoid),
                                        ("mom", self.use_momentum)) if on]
        return (f"{list(self.neurons_per_layer)} {'+'.join(tricks) or 'plain'} "
                f"lr={self.learning_rate:g} seed {self.seed}")

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["neurons_per_layer"] = list(self.neurons_per_layer)
        return d

    def replace(self, **changes) -> "TrainConfig":
        """A copy with some fields changed; a changed ``use_momentum`` re-derives the default lr."""
        if "use_momentum" in changes and "learning_rate" not in changes:
            changes["learning_rate"] = None
        return dataclasses.replace(self, **changes)


@dataclass(frozen=True)
class Dataset:
    """Preprocessed data for training. X: float32 (N, 785); Y: float32 one-hot (N, 10)."""
    X_train: np.ndarray
    Y_train: np.ndarray
    X_val: np.ndarray
    Y_val: np.ndarray
    mean: float
    std: float


def prepare_data(X_train: np.ndarray, Y_train: np.ndarray, X_val: np.ndarray, Y_val: np.ndarray,
                 dtype: type = np.float32) -> Dataset:
    """Normalise both splits with the training-set statistics, add the bias input, one-hot labels."""
    mean, std = pixel_statistics(X_train)
    return Dataset(pre_process_images(X_train, mean, std, dtype),
                   one_hot_encode(Y_train, NUM_CLASSES).astype(dtype),
                   pre_process_images(X_val, mean, std, dtype),
                   one_hot_encode(Y_val, NUM_CLASSES).astype(dtype), mean, std)


def batch_indices(num_samples: int, batch_size: int, shuffle: bool,
                  rng: np.random.Generator) -> Iterable[np.ndarray]:
    """One epoch of mini-batch indices: one permutation (if shuffling), cut into contiguous
    batches; the last partial batch is dropped."""
    order = rng.permutation(num_samples) if shuffle else np.arange(num_samples)
    for start in range(0, num_samples - batch_size + 1, batch_size):
        yield order[start:start + batch_size]


@dataclass(frozen=True)
class Progress:
    """What `train` reports at each validation check (for progress displays)."""
    label: str
    epoch: int
    num_epochs: int
    step: int
    val_loss: float
    val_accuracy: float


@dataclass
class History:
    """What a run produced.

    Attributes:
        config: the run's TrainConfig.
        train_loss: float64 (S,), the mini-batch loss of step 1..S (S = steps taken; a
            diverged run's final non-finite loss is not recorded, the warning reports it).
        check_steps: int64 (C,), the step of each validation check; check 0 is step 0 (the
            initial weights), then every ``config.steps_per_check`` steps.
        check_train_loss, val_loss, train_accuracy, val_accuracy: float64 (C,), the loss on the
            whole training set, the validation loss, and the accuracies at each check.
        grad_norms: float64 (C, L), the Frobenius norm of dC/dW for each of the L weight matrices,
            computed at each check on a fixed probe batch (the first 512 training images).
        best, last: summary dicts of the best check (lowest validation loss) and the last one:
            step, epoch, train_loss, val_loss, train_accuracy, val_accuracy.
        stopped_early: early stopping ended the run before ``num_epochs``.
        diverged: the loss became NaN or infinite; the run was stopped there.
        seconds: wall time of the run (not part of the reproducible result).
    """
    config: TrainConfig
    train_loss: np.ndarray
    check_steps: np.ndarray
    check_train_loss: np.ndarray
    val_loss: np.ndarray
    train_accuracy: np.ndarray
    val_accuracy: np.ndarray
    grad_norms: np.ndarray
    best: dict
    last: dict
    stopped_early: bool
    diverged: bool
    seconds: float
    num_parameters: int = field(init=False)

    ARRAYS = ("train_loss", "check_steps", "check_train_loss", "val_loss", "train_accuracy",
              "val_accuracy", "grad_norms")

    def __post_init__(self):
        self.num_parameters = self.config.num_parameters

    def check_epochs(self) -> np.ndarray:
        """The check steps in epochs (float)."""
        return self.check_steps / self.config.steps_per_epoch

    def summary_row(self) -> dict:
        """One flat row for summary tables."""
        return dict(label=self.config.label(), params=self.num_parameters,
                    best_val_loss=self.best["val_loss"], best_val_acc=self.best["val_accuracy"],
                    best_train_acc=self.best["train_accuracy"], best_step=self.best["step"],
                    last_val_loss=self.last["val_loss"], last_val_acc=self.last["val_accuracy"],
                    last_train_acc=self.last["train_accuracy"], last_step=self.last["step"],
                    last_epoch=self.last["epoch"], stopped_early=self.stopped_early,
                    diverged=self.diverged, seconds=self.seconds)


def sgd_step(model: SoftmaxModel, X: np.ndarray, Y: np.ndarray, learning_rate: float,
             velocity: list[np.ndarray] | None, gamma: float) -> float:
    """One mini-batch step; returns the batch loss (before the update).

    Without momentum: w := w - lr dC/dw. With momentum (``velocity`` a list of zero-initialised
    arrays, one per weight matrix): v := dC/dw + gamma v; w := w - lr v.
    """
    outputs = model.forward(X)
    model.backward(X, outputs, Y)
    for l, (w, g) in enumerate(zip(model.ws, model.grads)):
        if velocity is not None:
            velocity[l] *= gamma
            velocity[l] += g
            g = velocity[l]
        w -= learning_rate * g
    return cross_entropy_loss(Y, outputs)


def _probe_gradient_norms(model: SoftmaxModel, X: np.ndarray, Y: np.ndarray) -> np.ndarray:
    """Frobenius norm of each layer's gradient on (X, Y); leaves those gradients in `grads`."""
    model.backward(X, model.forward(X), Y)
    return np.array([np.linalg.norm(g) for g in model.grads], dtype=np.float64)


def train(config: TrainConfig, data: Dataset,
          progress: Callable[[Progress], None] | None = None) -> tuple[SoftmaxModel, History]:
    """Train one network as ``config`` says.

    Each epoch shuffles once and walks contiguous batches. Every ``steps_per_check`` steps (and
    at step 0) it measures the validation loss, the loss and accuracy on the whole training set
    and the validation accuracy; it keeps the weights of the check with the lowest validation
    loss and stops early after ``early_stopping_patience`` checks without improvement. A NaN or
    infinite loss stops the run, marks it diverged and warns.

    Returns:
        The model holding the best check's weights (the last weights if validation is off), and
        its History.
    """
    for name, available in (("train_size", len(data.X_train)), ("val_size", len(data.X_val))):
        if getattr(config, name) > available:
            raise ValueError(f"TrainConfig.{name}={getattr(config, name)} but the data set has "
                             f"only {available} such images")
    rng = np.random.default_rng(config.seed)
    model = SoftmaxModel(config.neurons_per_layer, config.use_improved_sigmoid,
                         config.use_improved_weight_init, rng=rng,
                         dtype=data.X_train.dtype.type)
    X_train, Y_train = data.X_train[:config.train_size], data.Y_train[:config.train_size]
    X_val, Y_val = data.X_val[:config.val_size], data.Y_val[:config.val_size]
    X_probe, Y_probe = X_train[:512], Y_train[:512]
    velocity = [np.zeros_like(w) for w in model.ws] if config.use_momentum else None
    label = config.label()

    train_loss: list[float] = []
    checks: dict[str, list] = {k: [] for k in ("step", "train_loss", "val_loss", "train_accuracy",
                                               "val_accuracy", "grad_norms")}
    best_ws, best_index, since_best = [w.copy() for w in model.ws], 0, 0
    stopped_early = diverged = False
    start = time.perf_counter()

    def check(step: int, epoch: int) -> bool:
        """Record a validation check; True when early stopping says stop."""
        nonlocal best_ws, best_index, since_best
        train_out, val_out = model.predict(X_train), model.predict(X_val)
        checks["step"].append(step)
        checks["train_loss"].append(cross_entropy_loss(Y_train, train_out))
        checks["val_loss"].append(cross_entropy_loss(Y_val, val_out))
        checks["train_accuracy"].append(accuracy(Y_train, train_out))
        checks["val_accuracy"].append(accuracy(Y_val, val_out))
        checks["grad_norms"].append(_probe_gradient_norms(model, X_probe, Y_probe))
        if progress is not None:
            progress(Progress(label, epoch, config.num_epochs, step, checks["val_loss"][-1],
                              checks["val_accuracy"][-1]))
        if checks["val_loss"][-1] < checks["val_loss"][best_index]:
            best_ws, best_index, since_best = [w.copy() for w in model.ws], len(checks["step"]) - 1, 0
        elif len(checks["step"]) > 1:
            since_best += 1
        return since_best >= config.early_stopping_patience

    if config.checks_per_epoch:
        check(0, 0)
    step = 0
    for epoch in range(config.num_epochs):
        for idx in batch_indices(config.train_size, config.batch_size, config.shuffle, rng):
            loss = sgd_step(model, X_train[idx], Y_train[idx], config.learning_rate, velocity,
                            config.momentum_gamma)
            step += 1
            if math.isfinite(loss):
                train_loss.append(loss)
            # The loss is checked every step (NaN weights make the next loss NaN); the weights
            # themselves, a pass over every matrix (~6% of a step), only before each validation
            # check and at the end of each epoch.
            at_check = bool(config.steps_per_check) and step % config.steps_per_check == 0
            if not math.isfinite(loss) or ((at_check or step % config.steps_per_epoch == 0) and
                                         not all(np.isfinite(w).all() for w in model.ws)):
                what = (f"the loss became {loss}" if not np.isfinite(loss)
                        else "the weights overflowed")
                warnings.warn(f"run {label}: {what} at step {step} (epoch {epoch}); the run "
                              f"diverged and was stopped there", RuntimeWarning, stacklevel=2)
                diverged = True
                break
            if at_check:
                if check(step, epoch):
                    stopped_early = True
                    break
        if stopped_early or diverged:
            break

    if not config.checks_per_epoch:  # validation off (benchmarks): one final check
        check(step, config.num_epochs)
        best_index, best_ws = 0, [w.copy() for w in model.ws]
    seconds = time.perf_counter() - start

    def summary(i: int) -> dict:
        return dict(step=int(checks["step"][i]),
                    epoch=checks["step"][i] / config.steps_per_epoch,
                    train_loss=float(checks["train_loss"][i]),
                    val_loss=float(checks["val_loss"][i]),
                    train_accuracy=float(checks["train_accuracy"][i]),
                    val_accuracy=float(checks["val_accuracy"][i]))

    model.ws = best_ws
    history = History(
        config=config,
        train_loss=np.asarray(train_loss, dtype=np.float64),
        check_steps=np.asarray(checks["step"], dtype=np.int64),
        check_train_loss=np.asarray(checks["train_loss"], dtype=np.float64),
        val_loss=np.asarray(checks["val_loss"], dtype=np.float64),
        train_accuracy=np.asarray(checks["train_accuracy"], dtype=np.float64),
        val_accuracy=np.asarray(checks["val_accuracy"], dtype=np.float64),
        grad_norms=np.asarray(checks["grad_norms"], dtype=np.float64).reshape(
            len(checks["step"]), len(model.ws)),
        best=summary(best_index), last=summary(len(checks["step"]) - 1),
        stopped_early=stopped_early, diverged=diverged, seconds=seconds)
    return model, history


# ================================================================================================
# Experiments: an on-disk cache keyed by config, data and code; independent runs in parallel
# ================================================================================================
# Everything above this banner is "the code that produced a result": its text is part of every
# cache key, so editing the engine invalidates old results while editing plots below does not.

def _engine_source() -> str:
    text = Path(__file__).read_text(encoding="utf-8")
    return text[:text.index("# Experiments: an on-disk cache")]


CODE_VERSION = hashlib.sha256(
    (_engine_source() + f"numpy {np.__version__}").encode()).hexdigest()[:16]


def default_cache_dir() -> Path:
    """``$A2_CACHE_DIR``, else ``<project>/cache`` (git-ignored)."""
    return Path(os.environ.get("A2_CACHE_DIR") or PROJECT_DIR / "cache")


def cache_folder(cache_dir: str | os.PathLike | None = None) -> Path:
    """``cache_dir`` if given, else `default_cache_dir`."""
    return Path(cache_dir or default_cache_dir())


def data_fingerprint(data: Dataset) -> str:
    """SHA-256 (16 hex digits) of the preprocessed arrays, so that a cache entry is tied to data."""
    h = hashlib.sha256()
    for a in (data.X_train, data.Y_train, data.X_val, data.Y_val):
        h.update(str((a.shape, a.dtype.str)).encode())
        h.update(np.ascontiguousarray(a).data)
    return h.hexdigest()[:16]


def cache_key(config: TrainConfig, fingerprint: str) -> str:
    blob = json.dumps([config.to_dict(), fingerprint, CODE_VERSION], sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:20]


def cache_path(config: TrainConfig, fingerprint: str, cache_dir: Path) -> Path:
    slug = "-".join(map(str, config.neurons_per_layer))
    return Path(cache_dir) / f"run-{slug}-{cache_key(config, fingerprint)}.npz"


def save_run(path: Path, ws: Sequence[np.ndarray], history: History, fingerprint: str) -> None:
    """Write a run (weights + history) as one .npz with a JSON header; atomic (temp + rename)."""
    meta = dict(key=cache_key(history.config, fingerprint), config=history.config.to_dict(),
                best=history.best, last=history.last, stopped_early=history.stopped_early,
                diverged=history.diverged, seconds=history.seconds, num_layers=len(ws))
    arrays = {name: getattr(history, name) for name in History.ARRAYS}
    arrays.update({f"w{l}": w for l, w in enumerate(ws)})
    blob = io.BytesIO()
    np.savez(blob, meta=np.array(json.dumps(meta)), **arrays)
    atomic_write(path, blob.getvalue())


def load_run(path: Path, config: TrainConfig,
             fingerprint: str) -> tuple[list[np.ndarray], History]:
    """Read a run written by `save_run`; raises (any exception) if it is corrupt or stale."""
    with np.load(path, allow_pickle=False) as f:
        meta = json.loads(str(f["meta"]))
        if meta["key"] != cache_key(config, fingerprint) or meta["config"] != config.to_dict():
            raise ValueError("the entry belongs to another config, data set or code version")
        ws = [f[f"w{l}"] for l in range(meta["num_layers"])]
        arrays = {name: f[name] for name in History.ARRAYS}
    shapes = [(a, b) for a, b in zip((785, *config.neurons_per_layer), config.neurons_per_layer)]
    if [w.shape for w in ws] != shapes:
        raise ValueError(f"weight shapes {[w.shape for w in ws]} differ from {shapes}")
    history = History(config=config, best=meta["best"], last=meta["last"],
                      stopped_early=meta["stopped_early"], diverged=meta["diverged"],
                      seconds=meta["seconds"], **arrays)
    return ws, history


@dataclass
class Run:
    """A finished run: its history, the best check's weights, and whether it came from the cache."""
    history: History
    ws: list[np.ndarray]
    cached: bool = False

    @property
    def config(self) -> TrainConfig:
        return self.history.config

    def model(self, dtype: type = np.float32) -> SoftmaxModel:
        """A SoftmaxModel holding this run's (best) weights."""
        c = self.config
        model = SoftmaxModel(c.neurons_per_layer, c.use_improved_sigmoid,
                             c.use_improved_weight_init, rng=np.random.default_rng(c.seed),
                             dtype=dtype)
        model.ws = [w.astype(dtype) for w in self.ws]
        return model


def cached_run(config: TrainConfig, fingerprint: str, cache_dir: str | os.PathLike | None = None,
               warn: bool = True) -> Run | None:
    """The cached Run of ``config`` on the data with ``fingerprint``, or None if there is none.

    A corrupt or stale entry gives None (with a RuntimeWarning when ``warn``): it is recomputed
    and overwritten, never trusted."""
    path = cache_path(config, fingerprint, cache_folder(cache_dir))
    if not path.exists():
        return None
    try:
        ws, history = load_run(path, config, fingerprint)
    except Exception as err:
        if warn:
            warnings.warn(f"cache entry {path.name} is unusable ({type(err).__name__}: {err}); "
                          f"recomputing {config.label()}", RuntimeWarning, stacklevel=3)
        return None
    return Run(history, ws, cached=True)


@contextlib.contextmanager
def single_threaded_blas():
    """Pin BLAS to one thread: OpenBLAS results depend on the thread count, so every run (alone
    or in parallel) uses one thread and gives the same bits."""
    from threadpoolctl import threadpool_limits
    with threadpool_limits(limits=1, user_api="blas"):
        yield


def run_experiment(config: TrainConfig, data: Dataset, *, cache_dir: str | os.PathLike | None = None,
                   use_cache: bool = True, progress: Callable[[Progress], None] | None = None,
                   fingerprint: str | None = None) -> Run:
    """Train ``config`` on ``data``, or return the cached result of the same config, data and code.

    A corrupt or stale cache entry is reported with a warning and recomputed, never trusted.
    ``use_cache=False`` neither reads nor writes the cache.
    """
    fingerprint = fingerprint or data_fingerprint(data)
    if use_cache and (run := cached_run(config, fingerprint, cache_dir)) is not None:
        return run
    with single_threaded_blas():
        model, history = train(config, data, progress)
    if use_cache:
        save_run(cache_path(config, fingerprint, cache_folder(cache_dir)),
                 model.ws, history, fingerprint)
    return Run(history, model.ws)


@dataclass
class _WorkerState:
    data: Dataset | None = None
    fingerprint: str = ""
    queue: object = None


_WORKER = _WorkerState()  # per worker process: the data it loaded once, and its progress queue


def _worker_init(data_dir: str | None, queue) -> None:
    _WORKER.data = prepare_data(*load_mnist(data_dir, download=False))
    _WORKER.fingerprint = data_fingerprint(_WORKER.data)
    _WORKER.queue = queue


def _worker_run(config: TrainConfig, cache_dir: str, use_cache: bool, fingerprint: str) -> Run:
    if _WORKER.fingerprint != fingerprint:
        raise RuntimeError(f"worker processes loaded data (fingerprint {_WORKER.fingerprint}) "
                           f"other than the data passed in ({fingerprint}); pass data_dir= or "
                           "set MNIST_DIR to the folder the data came from, or processes=1")
    return run_experiment(config, _WORKER.data, cache_dir=cache_dir, use_cache=use_cache,
                          progress=_WORKER.queue.put, fingerprint=_WORKER.fingerprint)


class ProgressReporter:
    """Shows which runs are training (epoch, step, validation loss) while they run, then leaves a
    one-line summary. In Jupyter it updates a single text display in place (so a saved notebook
    keeps only the summary); elsewhere it prints a line every few seconds to stderr."""

    def __init__(self, total: int, interval: float = 2.0):
        self.total, self.done, self.interval = total, 0, interval
        self.active: dict[str, Progress] = {}
        self.handle, self._last = None, 0.0
        try:
            from IPython import get_ipython
            from IPython.display import display
            if getattr(get_ipython(), "kernel", None) is not None:  # a Jupyter kernel
                self.handle = display({"text/plain": f"0/{total} runs ..."}, raw=True,
                                      display_id=True)
                self.interval = 0.5
        except ImportError:
            pass

    def _show(self, text: str, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last < self.interval:
            return
        self._last = now
        if self.handle is not None:
            self.handle.update({"text/plain": text}, raw=True)
        else:
            print(text, file=sys.stderr, flush=True)

    def update(self, event: Progress) -> None:
        self.active[event.label] = event
        lines = [f"{self.done}/{self.total} runs done; training:"] + [
            f"  {p.label}: epoch {p.epoch + 1}/{p.num_epochs}, step {p.step}, "
            f"val loss {p.val_loss:.4f}, val acc {p.val_accuracy:.2%}"
            for p in self.active.values()]
        self._show("\n".join(lines))

    def finished(self, label: str) -> None:
        self.done += 1
        self.active.pop(label, None)

    def close(self, summary: str) -> None:
        self._show(summary, force=True)


def run_experiments(configs: Sequence[TrainConfig], data: Dataset, *,
                    processes: int | None = None, cache_dir: str | os.PathLike | None = None,
                    use_cache: bool = True, data_dir: str | os.PathLike | None = None,
                    quiet: bool = False) -> list[Run]:
    """Run independent configs, in parallel processes, answering from the cache where it can.

    Args:
        configs: the runs (duplicates are run once).
        data: the preprocessed data; worker processes load the same MNIST files themselves
            (from ``data_dir`` or ``$MNIST_DIR``), which the data fingerprint then confirms.
        processes: worker processes (default: all cores); 1 runs in this process.
    Returns:
        One Run per config, in order. Each worker pins BLAS to one thread, so the results equal
        a serial run's bit for bit.
    """
    cache_dir = str(cache_folder(cache_dir))
    fingerprint = data_fingerprint(data)
    start = time.perf_counter()
    results: dict[TrainConfig, Run] = {}
    todo = []
    for config in dict.fromkeys(configs):
        run = cached_run(config, fingerprint, cache_dir) if use_cache else None
        if run is not None:
            results[config] = run
        else:
            todo.append(config)
    processes = max(1, min(processes or os.cpu_count() or 1, len(todo)))
    reporter = None if quiet else ProgressReporter(len(todo))

    def on_progress(event: Progress) -> None:
        if reporter:
            reporter.update(event)

    if processes == 1 or len(todo) <= 1:
        for config in todo:
            results[config] = run_experiment(config, data, cache_dir=cache_dir,
                                             use_cache=use_cache, progress=on_progress,
                                             fingerprint=fingerprint)
            if reporter:
                reporter.finished(config.label())
    elif todo:
        import multiprocessing as mp
        from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
        ctx = mp.get_context("spawn")
        with ctx.Manager() as manager:
            queue = manager.Queue()
            with ProcessPoolExecutor(processes, mp_context=ctx, initializer=_worker_init,
                                     initargs=(str(mnist_dir(data_dir)), queue)) as pool:
                futures = {pool.submit(_worker_run, c, cache_dir, use_cache, fingerprint): c
                           for c in todo}
                pending = set(futures)
                while pending:
                    finished, pending = wait(pending, timeout=0.25, return_when=FIRST_COMPLETED)
                    while not queue.empty():
                        on_progress(queue.get())
                    for future in finished:
                        run = future.result()
                        if run.history.config != futures[future]:
                            raise RuntimeError("a worker returned another config's result")
                        results[futures[future]] = run
                        if reporter:
                            reporter.finished(futures[future].label())
    if reporter:
        trained = sum(r.history.seconds for r in results.values() if not r.cached)
        reporter.close(f"{len(results)} runs: {len(results) - len(todo)} from the cache, "
                       f"{len(todo)} trained" + (f" ({trained:.0f} s of training in "
                       f"{time.perf_counter() - start:.0f} s on {processes} process"
                       f"{'es' if processes > 1 else ''})" if todo else ""))
    return [results[c] for c in configs]


# ================================================================================================
# The report's experiments: settings (full or quick), the named configurations, seeds
# ================================================================================================

FIGURE_DIR = PROJECT_DIR / "figures"  # the committed report's figures and results.json


@dataclass(frozen=True)
class ReportSettings:
    """How much the report computes. ``quick`` (``A2_QUICK=1``) is for tests: the same code paths
    on 2000 training / 1000 validation images and 3 epochs."""
    quick: bool
    base: TrainConfig
    seeds: tuple[int, ...] = (0, 1, 2)
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
                              sweep_widths=(16, 32, 64), sweep_depths=(1, 2), sklearn_epochs=2,
                              gradient_check_images=10, gradient_check_weights=50,
                              figure_dir=figure_dir)
    return ReportSettings(False, TrainConfig(), figure_dir=figure_dir)


#: Display names of the report's configurations, by task.
RUN_NAMES = {
    "2c": "2c: sigmoid, uniform init",
    "3a": "3a: + improved init",
    "3b": "3b: + improved sigmoid",
    "3c": "3c: + momentum (Task 3 net)",
    "4a": "4a: 32 hidden units",
    "4b": "4b: 128 hidden units",
    "4d": "4d: two hidden layers",
    "4e": "4e: ten hidden layers",
}


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
    then the Task 4 topologies built on the final Task 3 network."""
    c3a = base.replace(use_improved_weight_init=True)
    c3b = c3a.replace(use_improved_sigmoid=True)
    c3c = c3b.replace(use_momentum=True)
    width = equal_parameter_width(count_parameters(c3c.neurons_per_layer), depth=2)["width"]
    return {"2c": base, "3a": c3a, "3b": c3b, "3c": c3c,
            "4a": c3c.replace(neurons_per_layer=(32, 10)),
            "4b": c3c.replace(neurons_per_layer=(128, 10)),
            "4d": c3c.replace(neurons_per_layer=(width, width, 10)),
            "4e": c3c.replace(neurons_per_layer=(64,) * 10 + (10,))}


def sweep_configs(task3: TrainConfig, widths: Sequence[int],
                  depths: Sequence[int]) -> dict[tuple[int, int], TrainConfig]:
    """The explorer's grid: ``depth`` hidden layers of ``width`` units, Task 3 tricks on."""
    return {(d, w): task3.replace(neurons_per_layer=(w,) * d + (NUM_CLASSES,))
            for d in depths for w in widths}


# ================================================================================================
# Analysis: seed statistics, tables, initialisation statistics, errors of the best network
# ================================================================================================

def run_metrics(history: History) -> dict[str, float]:
    """The numbers the report compares, for one run.

    best_val_loss / best_val_accuracy / best_train_accuracy / best_epoch: at the check with the
    lowest validation loss (the weights early stopping keeps); stop_epoch: where the run ended;
    val_loss_epoch1: validation loss after one epoch (convergence speed); final_train_accuracy:
    at the last check; overfit_rise: last minus best validation loss (how far it climbed after
    the best check, a sign of overfitting)."""
    h = history
    after_one = int(np.searchsorted(h.check_steps, h.config.steps_per_epoch))
    return dict(best_val_loss=h.best["val_loss"], best_val_accuracy=h.best["val_accuracy"],
                best_train_accuracy=h.best["train_accuracy"], best_epoch=h.best["epoch"],
                stop_epoch=h.last["epoch"],
                val_loss_epoch1=float(h.val_loss[min(after_one, h.val_loss.size - 1)]),
                final_train_accuracy=h.last["train_accuracy"],
                overfit_rise=h.last["val_loss"] - h.best["val_loss"])


def seed_statistics(runs: Sequence[Run]) -> dict[str, tuple[float, float]]:
    """`run_metrics` over seeds: metric -> (mean, standard deviation with ddof=1; 0 for one run)."""
    rows = [run_metrics(r.history) for r in runs]
    out = {}
    for metric in rows[0]:
        v = np.array([row[metric] for row in rows], dtype=np.float64)
        out[metric] = (float(v.mean()), float(v.std(ddof=1)) if v.size > 1 else 0.0)
    return out


def differs_beyond_noise(a: tuple[float, float], b: tuple[float, float], k: float = 2.0) -> bool:
    """True when two (mean, std) pairs differ by more than ``k`` times their combined std
    (sqrt(std_a^2 + std_b^2)); with k = 2 roughly a two-sigma difference."""
    return abs(a[0] - b[0]) > k * float(np.hypot(a[1], b[1]))


def mean_std(ms: tuple[float, float], digits: int = 4, percent: bool = False) -> str:
    """'0.1234 ± 0.0012', or '96.43 ± 0.12 %' for accuracies (digits - 2 decimals). The spaces
    after '±' and before '%' are non-breaking, so a narrow table cell breaks only before '±'."""
    m, s = ms
    if percent:
        d = max(digits - 2, 0)
        return f"{100 * m:.{d}f} ±\u00a0{100 * s:.{d}f}\u00a0%"
    return f"{m:.{digits}f} ±\u00a0{s:.{digits}f}"


def compare(before: tuple[float, float], after: tuple[float, float], higher_is_better: bool,
            percent: bool = False, digits: int = 4) -> str:
    """'a → b (better|worse, beyond seed noise)' or 'a → b (within seed noise)'."""
    text = f"{mean_std(before, digits, percent)} → {mean_std(after, digits, percent)}"
    if not differs_beyond_noise(before, after):
        return text + " (within seed noise)"
    better = (after[0] > before[0]) == higher_is_better
    return text + f" ({'better' if better else 'worse'}, beyond seed noise)"


def table_widths(columns: Sequence[Sequence[str]], budget: int = 70) -> list[int]:
    """Relative widths for a table's columns (each: header, then cells), in characters.

    Pandoc (the PDF export) sizes the columns of a wide table in proportion to the separator
    dashes, and wraps cells at ordinary spaces. Each column gets at least its longest unbreakable
    word, so nothing spills into its neighbour; what ``budget`` (about the characters a line of
    the PDF's table font holds) leaves over goes to the columns whose full entries are longer.
    """
    least = [max(len(word) for text in col for word in text.split(" ")) for col in columns]
    full = [max(len(text) for text in col) for col in columns]
    spare, wants = budget - sum(least), [f - m for f, m in zip(full, least)]
    if spare <= 0 or not sum(wants):
        return least
    return [m + round(spare * w / sum(wants)) for m, w in zip(least, wants)]


def markdown_table(rows: Sequence[dict], columns: dict[str, str]) -> str:
    """A Markdown table: ``columns`` maps each row key to its header; values are str()-ed."""
    cells = [[str(row[k]) for k in columns] for row in rows]
    widths = table_widths([[h, *(r[i] for r in cells)] for i, h in enumerate(columns.values())])
    lines = ["| " + " | ".join(columns.values()) + " |",
             "|" + "|".join("-" * max(w, 3) for w in widths) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in cells]
    return "\n".join(lines)


def initial_preactivations(X: np.ndarray, use_improved_weight_init: bool,
                           rng: np.random.Generator, width: int = 64) -> np.ndarray:
    """Hidden pre-activations z = X w of a freshly initialised first layer: float (N, width)."""
    w = SoftmaxModel([width, NUM_CLASSES], use_improved_weight_init=use_improved_weight_init,
                     rng=rng, dtype=X.dtype.type).ws[0]
    return X @ w


def initial_gradient_norms(config: TrainConfig, X: np.ndarray, Y: np.ndarray) -> np.ndarray:
    """Norm of dC/dW for each weight matrix of ``config``'s network as initialised (its seed),
    on inputs X (N, 785) and one-hot targets Y (N, 10): float64 (L,). Equals the first row of
    the trained run's ``History.grad_norms`` when X, Y are the probe batch."""
    model = SoftmaxModel(config.neurons_per_layer, config.use_improved_sigmoid,
                         config.use_improved_weight_init, rng=np.random.default_rng(config.seed),
                         dtype=X.dtype.type)
    return _probe_gradient_norms(model, X, Y)


def confusion_matrix(labels: np.ndarray, predictions: np.ndarray,
                     num_classes: int = NUM_CLASSES) -> np.ndarray:
    """int64 (K, K): entry [t, p] counts images of digit t predicted as p."""
    cm = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(cm, (labels, predictions), 1)
    return cm


def most_confident_mistakes(probabilities: np.ndarray, labels: np.ndarray,
                            k: int = 12) -> np.ndarray:
    """Indices of the k misclassified images with the highest predicted probability, descending."""
    predictions = probabilities.argmax(axis=1)
    wrong = np.flatnonzero(predictions != labels)
    confidence = probabilities[wrong, predictions[wrong]]
    return wrong[np.argsort(-confidence, kind="stable")[:k]]


def sklearn_crosscheck(data: Dataset, config: TrainConfig, epochs: int, *,
                       cache_dir: str | os.PathLike | None = None) -> dict:
    """Train scikit-learn's MLPClassifier as close to ``config`` as it allows, as an independent
    check of the accuracy; the result is cached as JSON.

    One hidden layer (the width of ``config``), tanh (the closest to the improved sigmoid),
    SGD with batch 32, momentum ``gamma`` without Nesterov and the same learning rate, no L2,
    ``epochs`` epochs, on the same normalised images (without the bias column: scikit-learn adds
    its own biases). Returns dict(val_accuracy, val_loss, train_accuracy, epochs, seconds).
    """
    import sklearn
    key = hashlib.sha256(json.dumps([config.to_dict(), epochs, data_fingerprint(data),
                                     sklearn.__version__]).encode()).hexdigest()[:20]
    path = cache_folder(cache_dir) / f"sklearn-{key}.json"
    if path.exists():
        try:
            return json.loads(path.read_text())
        except ValueError:
            warnings.warn(f"cache entry {path.name} is unusable; recomputing", RuntimeWarning)
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier
    X_train, X_val = data.X_train[:config.train_size, :784], data.X_val[:config.val_size, :784]
    y_train = data.Y_train[:config.train_size].argmax(1)
    clf = MLPClassifier(hidden_layer_sizes=config.hidden_layers, activation="tanh", solver="sgd",
                        alpha=0.0, batch_size=config.batch_size,
                        learning_rate_init=config.learning_rate,
                        momentum=config.momentum_gamma if config.use_momentum else 0.0,
                        nesterovs_momentum=False, max_iter=epochs, shuffle=True,
                        random_state=config.seed, tol=0.0, n_iter_no_change=epochs + 1)
    start = time.perf_counter()
    with warnings.catch_warnings(), single_threaded_blas():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(X_train, y_train)
    probabilities = clf.predict_proba(X_val)
    Y_val = data.Y_val[:config.val_size]
    result = dict(val_accuracy=accuracy(Y_val, probabilities),
                  val_loss=cross_entropy_loss(Y_val.astype(np.float64), probabilities),
                  train_accuracy=float(clf.score(X_train, y_train)), epochs=epochs,
                  seconds=time.perf_counter() - start)
    atomic_write(path, json.dumps(result).encode())
    return result


def gradient_check_report(X_raw: np.ndarray, Y_raw: np.ndarray, mean: float, std: float,
                          neurons_per_layer: Sequence[int], use_improved: bool = False,
                          weights_per_layer: int | None = None) -> tuple[list[dict], float, bool]:
    """The report's gradient-check table: a float64 network (seed 0; improved sigmoid and init
    when ``use_improved``) checked on raw images X_raw (N, 784) with labels Y_raw (N,), at
    epsilon 1e-3 (the course's criterion: every |a - n| <= epsilon^2) and 1e-5.

    Returns: (Markdown-ready rows, the largest relative error at 1e-5, whether the course's
    criterion held for every checked weight)."""
    X = pre_process_images(X_raw, mean, std, np.float64)
    Y = one_hot_encode(Y_raw, NUM_CLASSES)
    model = SoftmaxModel(neurons_per_layer, use_improved, use_improved,
                         rng=np.random.default_rng(0), dtype=np.float64)
    with single_threaded_blas():
        coarse, fine = (gradient_check_errors(model, X, Y, eps, weights_per_layer,
                                              np.random.default_rng(1)) for eps in (1e-3, 1e-5))
    rows = [dict(layer=f"$W_{c['layer'] + 1}$ {c['shape'][0]}×{c['shape'][1]}",
                 checked=f"{c['checked']:,} of {c['shape'][0] * c['shape'][1]:,}",
                 abs3=f"{c['max_abs_error']:.1e}",
                 ok="yes" if c["max_abs_error"] <= 1e-6 else "**NO**",
                 rel3=f"{c['max_rel_error']:.1e}", rel5=f"{f['max_rel_error']:.1e}")
            for c, f in zip(coarse, fine)]
    return (rows, max(f["max_rel_error"] for f in fine),
            all(c["max_abs_error"] <= 1e-6 for c in coarse))


GRADIENT_CHECK_COLUMNS = dict(layer="weights", checked="weights checked",
                              abs3="max abs. error (ε = 1e-3)", ok="≤ ε² ?",
                              rel3="rel. error (ε = 1e-3)", rel5="rel. error (ε = 1e-5)")


def seed_table(stats: dict[str, dict], runs: dict[str, Sequence[Run]],
               keys: Sequence[str]) -> str:
    """Markdown table of `seed_statistics` for the configurations ``keys``."""
    rows = []
    for key in keys:
        s = stats[key]
        rows.append(dict(name=RUN_NAMES.get(key, key),
                         params=f"{runs[key][0].history.num_parameters:,}",
                         vl1=mean_std(s["val_loss_epoch1"], 3),
                         bvl=mean_std(s["best_val_loss"], 4),
                         bva=mean_std(s["best_val_accuracy"], 4, percent=True),
                         bta=mean_std(s["best_train_accuracy"], 4, percent=True),
                         be=mean_std(s["best_epoch"], 1), rise=mean_std(s["overfit_rise"], 3)))
    return markdown_table(rows, dict(
        name="configuration", params="parameters", vl1="val. loss after 1 epoch",
        bvl="best val. loss", bva="best val. accuracy", bta="train. accuracy (at best)",
        be="epoch of best", rise="val. loss rise after best"))


def change(stats: dict[str, dict], before: str, after: str, metric: str,
           higher_is_better: bool, percent: bool = False, digits: int = 4) -> str:
    """`compare` of one metric between two configurations' seed statistics."""
    return compare(stats[before][metric], stats[after][metric], higher_is_better, percent, digits)


def write_results(path: str | os.PathLike, results: dict) -> None:
    """Write the report's key numbers as sorted, indented JSON (for tests and for diffs)."""
    atomic_write(Path(path), (json.dumps(results, indent=2, sort_keys=True) + "\n").encode())


# ================================================================================================
# Plots: one colour per configuration, training curves, comparisons, diagnostics
# ================================================================================================
# Every function returns a matplotlib Figure (not pyplot state): the notebook displays it, and the
# explorer can draw one from a background thread.

from matplotlib.figure import Figure  # noqa: E402  (plots only; the engine above needs no matplotlib)

#: One colour per configuration, the same in every figure.
RUN_COLORS = {"2c": "#7f7f7f", "3a": "#1f77b4", "3b": "#ff7f0e", "3c": "#2ca02c",
              "4a": "#9467bd", "4b": "#8c564b", "4d": "#e377c2", "4e": "#d62728"}
DEPTH_COLORS = {1: "#2ca02c", 2: "#e377c2", 3: "#17becf", 4: "#bcbd22"}


def moving_average(x: np.ndarray, window: int) -> np.ndarray:
    """Trailing mean over ``window`` values (over fewer at the start); same length as ``x``."""
    x = np.asarray(x, dtype=np.float64)
    c = np.concatenate([[0.0], np.cumsum(x)])
    end = np.arange(1, x.size + 1)
    start = np.maximum(end - window, 0)
    return (c[end] - c[start]) / (end - start)


def show_figure(fig: Figure, name: str, folder: str | os.PathLike | None = None) -> None:
    """Save ``fig`` (see `save_figure`) and display it in the notebook."""
    from IPython.display import display
    save_figure(fig, name, folder)
    display(fig)


def save_figure(fig: Figure, name: str, folder: str | os.PathLike | None = None) -> list[Path]:
    """Save ``fig`` as ``<name>.png`` (150 dpi, for the web) and ``<name>.pdf`` (vector, for
    print) in ``folder`` (default: the project's figures/)."""
    folder = Path(folder or FIGURE_DIR)
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"{name}.png", folder / f"{name}.pdf"]
    fig.savefig(paths[0], dpi=150)
    fig.savefig(paths[1], metadata={"CreationDate": None})  # no timestamp: same bytes on rerun
    return paths


def _figure(ncols: int = 1, nrows: int = 1, width: float = 6.4,
            height: float = 3.6, **kw) -> tuple[Figure, np.ndarray]:
    """A constrained-layout Figure, drawn at 0.7 of the nominal size in inches so that its text
    stays legible when the PDF scales it to the page width; 100 dpi inline (files: 150 dpi)."""
    fig = Figure(figsize=(0.7 * width, 0.7 * height), layout="constrained", dpi=100)
    return fig, fig.subplots(nrows, ncols, squeeze=False, **kw).ravel()


def _epoch_axis(ax, steps_per_epoch: int) -> None:
    """A second x-axis on top, in epochs."""
    ax.secondary_xaxis("top", functions=(lambda s: s / steps_per_epoch,
                                         lambda e: e * steps_per_epoch)).set_xlabel("epoch")


def _zoom(ax, curves: Iterable[np.ndarray], pad: float = 0.08, skip: float = 0.1,
          lower: float | None = None, upper: float | None = None) -> None:
    """Y-limits that fit the curves after their first ``skip`` fraction (the fast initial drop
    would otherwise squash the part worth reading)."""
    tails = [np.asarray(c, dtype=np.float64)[int(len(c) * skip):] for c in curves if len(c)]
    values = np.concatenate(tails) if tails else np.array([])
    values = values[np.isfinite(values)]
    if values.size:
        lo, hi = values.min(), values.max()
        span = max(hi - lo, 1e-3)
        ax.set_ylim(lo - pad * span if lower is None else lower,
                    hi + pad * span if upper is None else upper)


def _smoothed_train_loss(history: History, window: int | None = None):
    """(steps, training loss averaged over ``window`` steps), thinned to every window/5-th step:
    the smoothed curve loses nothing visible and the figures stay small."""
    window = window or history.config.steps_per_check or 1
    steps = np.arange(1, history.train_loss.size + 1)
    keep = slice(max(window // 5, 1) - 1, None, max(window // 5, 1))
    return steps[keep], moving_average(history.train_loss, window)[keep]


def plot_training(history: History, title: str = "") -> Figure:
    """One run: loss (left) and accuracy (right) against gradient steps.

    Training loss is the mini-batch loss averaged over the steps between two checks (125), the
    other curves are measured at each check; the dotted line marks the check with the lowest
    validation loss, whose weights early stopping keeps."""
    fig, (ax_loss, ax_acc) = _figure(2, width=10, height=3.9)
    steps, smooth = _smoothed_train_loss(history)
    window = history.config.steps_per_check or 1
    ax_loss.plot(steps, smooth, color="#1f77b4", lw=1.2,
                 label=f"training (mean of {window} batches)")
    ax_loss.plot(history.check_steps, history.val_loss, color="#d62728", lw=1.4,
                 label="validation")
    ax_acc.plot(history.check_steps, history.train_accuracy, color="#1f77b4", lw=1.4,
                label="training (whole set)")
    ax_acc.plot(history.check_steps, history.val_accuracy, color="#d62728", lw=1.4,
                label="validation")
    best = history.best
    for ax in (ax_loss, ax_acc):
        ax.axvline(best["step"], color="k", ls=":", lw=1,
                   label=f"best check (step {best['step']})")
        ax.set_xlabel("gradient step")
        ax.grid(alpha=0.3)
        _epoch_axis(ax, history.config.steps_per_epoch)
    ax_loss.plot(best["step"], best["val_loss"], "o", color="#d62728")
    ax_acc.plot(best["step"], best["val_accuracy"], "o", color="#d62728")
    _zoom(ax_loss, [smooth, history.val_loss], lower=0.0)
    _zoom(ax_acc, [history.train_accuracy, history.val_accuracy], upper=1.0)
    ax_loss.set_ylabel("cross-entropy loss")
    ax_acc.set_ylabel("accuracy")
    ax_loss.legend(fontsize=8)
    ax_acc.legend(fontsize=8, loc="lower right")
    if title:
        fig.suptitle(title)
    return fig


def plot_comparison(runs: dict[str, Sequence[Run]], metric: str = "loss",
                    names: dict[str, str] | None = None, title: str = "") -> Figure:
    """Several configurations side by side: training (left) and validation (right) curves.

    Args:
        runs: key -> that configuration's runs over seeds; the first seed is drawn bold, the
            others thin, so the spread between seeds is visible.
        metric: "loss" (training loss smoothed over the steps between checks) or "accuracy".
    """
    names = names or RUN_NAMES
    fig, (ax_train, ax_val) = _figure(2, width=10, height=4.0, sharey=True)
    curves = []
    for key, seeds in runs.items():
        color = RUN_COLORS.get(key, "k")
        for n, run in enumerate(seeds):
            h = run.history
            style = dict(color=color, lw=1.4 if n == 0 else 0.6, alpha=1.0 if n == 0 else 0.45,
                         label=names.get(key, key) if n == 0 else None)
            if metric == "loss":
                train_x, train_y = _smoothed_train_loss(h)
                val_y = h.val_loss
            else:
                train_x, train_y, val_y = h.check_steps, h.train_accuracy, h.val_accuracy
            ax_train.plot(train_x, train_y, **style)
            ax_val.plot(h.check_steps, val_y, **style)
            if n == 0:
                ax_val.plot(h.best["step"], h.best["val_loss" if metric == "loss"
                                                   else "val_accuracy"], "o", color=color, ms=4)
            curves += [train_y, val_y]
    ylabel = "cross-entropy loss" if metric == "loss" else "accuracy"
    window = next(iter(runs.values()))[0].config.steps_per_check
    ax_train.set_title(f"training {metric}" + (f" (mean of {window} batches)"
                                               if metric == "loss" else " (whole set)"))
    ax_val.set_title(f"validation {metric} (dots: best check)")
    for ax in (ax_train, ax_val):
        ax.set_xlabel("gradient step")
        ax.grid(alpha=0.3)
    ax_train.set_ylabel(ylabel)
    if metric == "loss":
        _zoom(ax_train, curves, lower=0.0)
    else:
        _zoom(ax_train, curves, upper=1.0)
    ax_val.legend(fontsize=8, loc="upper right" if metric == "loss" else "lower right")
    if title:
        fig.suptitle(title)
    return fig


def plot_initialisation(z_uniform: np.ndarray, z_improved: np.ndarray) -> Figure:
    """Why the improved init helps: hidden pre-activations (left) and logistic-sigmoid slopes
    (right) of a fresh first layer, under U(-1, 1) and N(0, 1/fan_in) weights."""
    fig, (ax_z, ax_s) = _figure(2, width=10, height=3.6)
    for z, name, color in ((z_uniform, "uniform U(-1, 1)", RUN_COLORS["2c"]),
                           (z_improved, "normal, std 1/sqrt(fan_in)", RUN_COLORS["3a"])):
        z = np.asarray(z, dtype=np.float64).ravel()
        ax_z.hist(z, bins=120, range=(-60, 60), density=True, alpha=0.6, color=color,
                  label=f"{name}: std {z.std():.1f}")
        slope = sigmoid_slope(z)
        ax_s.hist(slope, bins=50, range=(0, 0.25), alpha=0.6, color=color,
                  weights=np.full(z.size, 100.0 / z.size),
                  label=f"{name}: {np.mean(slope < 0.01):.0%} below 0.01")
    ax_z.set_xlabel("hidden pre-activation $z_j$")
    ax_z.set_ylabel("density")
    ax_z.set_yscale("log")
    ax_s.set_xlabel(r"sigmoid slope $f'(z_j)$ (at most 0.25)")
    ax_s.set_ylabel("% of hidden activations")
    for ax in (ax_z, ax_s):
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    return fig


def plot_gradient_norms(init_norms: dict[str, tuple[np.ndarray, str]], deep: Run,
                        title: str = "") -> Figure:
    """Per-layer gradient norms on a log scale: at initialisation for several networks (left;
    label -> (norms, colour)), and during training of ``deep`` (right, one line per layer)."""
    from matplotlib import colormaps
    fig, (ax_init, ax_train) = _figure(2, width=10, height=3.9)
    for label, (norms, color) in init_norms.items():
        ax_init.semilogy(np.arange(1, norms.size + 1), norms, "o-", color=color, label=label, ms=4)
    ax_init.set_xlabel("weight matrix (1 = input to first hidden layer)")
    ax_init.set_ylabel(r"$\|\partial C / \partial W_l\|$ at initialisation")
    ax_init.legend(fontsize=6, loc="lower right")
    h = deep.history
    layers = h.grad_norms.shape[1]
    colors = [colormaps["viridis"](t) for t in np.linspace(0, 0.95, layers)]
    for l in range(layers):
        ax_train.semilogy(h.check_steps, h.grad_norms[:, l], color=colors[l], lw=1.0,
                          label=f"$W_{{{l + 1}}}$" if l in (0, layers - 1) or l % 3 == 0 else None)
    ax_train.set_xlabel("gradient step")
    ax_train.set_ylabel(r"$\|\partial C / \partial W_l\|$ (probe batch)")
    ax_train.set_title(title, fontsize=10)
    ax_train.legend(fontsize=7, ncol=2)
    for ax in (ax_init, ax_train):
        ax.grid(alpha=0.3, which="both")
    return fig


def plot_sweep(sweep: dict[tuple[int, int], Run], highlight: tuple[int, int] = (1, 64)) -> Figure:
    """The explorer's grid as a static figure: best validation accuracy (left) and parameter
    count (right) against hidden units per layer, one line per number of hidden layers."""
    fig, (ax_acc, ax_par) = _figure(2, width=10, height=3.7)
    for depth in sorted({d for d, _ in sweep}):
        widths = sorted(w for d, w in sweep if d == depth)
        runs = [sweep[(depth, w)] for w in widths]
        color = DEPTH_COLORS.get(depth, "k")
        label = f"{depth} hidden layer{'s' if depth > 1 else ''}"
        ax_acc.plot(widths, [r.history.best["val_accuracy"] for r in runs], "o-", color=color,
                    label=label)
        ax_par.plot(widths, [r.history.num_parameters for r in runs], "o-", color=color,
                    label=label)
    if highlight in sweep:
        h = sweep[highlight].history
        ax_acc.plot(highlight[1], h.best["val_accuracy"], "*", ms=14, color=RUN_COLORS["3c"],
                    label="Task 3 network", zorder=3)
        ax_par.plot(highlight[1], h.num_parameters, "*", ms=14, color=RUN_COLORS["3c"], zorder=3)
    widths = sorted({w for _, w in sweep})
    for ax in (ax_acc, ax_par):
        ax.set_xscale("log", base=2)
        ax.set_xticks(widths, [str(w) for w in widths])
        ax.minorticks_off()
        ax.set_xlabel("hidden units per layer")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    ax_acc.set_ylabel("best validation accuracy")
    ax_par.set_ylabel("parameters")
    ax_par.yaxis.set_major_formatter(lambda v, _: f"{v:,.0f}")
    return fig


def plot_first_layer_weights(w: np.ndarray, count: int = 64, columns: int = 16) -> Figure:
    """The incoming weights of the ``count`` hidden units with the largest weight norm, each as a
    28x28 image (bias row dropped), in one mosaic on a symmetric colour scale: red excites, blue
    inhibits the unit."""
    order = np.argsort(-np.linalg.norm(w[:784], axis=0), kind="stable")[:count]
    rows = int(np.ceil(len(order) / columns))
    mosaic = np.full((rows * 29 - 1, columns * 29 - 1), np.nan)
    for n, j in enumerate(order):
        r, c = divmod(n, columns)
        mosaic[r * 29:r * 29 + 28, c * 29:c * 29 + 28] = w[:784, j].reshape(28, 28)
    fig, (ax,) = _figure(1, width=0.55 * columns, height=0.55 * rows + 0.2)
    limit = np.abs(w[:784]).max()
    ax.imshow(mosaic, cmap="RdBu_r", vmin=-limit, vmax=limit, interpolation="nearest")
    ax.axis("off")
    return fig


def plot_confusion_matrix(cm: np.ndarray) -> Figure:
    """Counts of (true digit, predicted digit); the colour shows the off-diagonal errors."""
    fig, (ax,) = _figure(1, width=5.2, height=4.6)
    errors = cm.astype(np.float64).copy()
    np.fill_diagonal(errors, 0.0)
    image = ax.imshow(errors, cmap="Reds")
    for t in range(cm.shape[0]):
        for p in range(cm.shape[1]):
            ax.text(p, t, str(cm[t, p]), ha="center", va="center", fontsize=7,
                    color="#1a1a1a" if t != p else "#2ca02c", weight="bold" if t == p else None)
    ax.set_xticks(range(cm.shape[1]))
    ax.set_yticks(range(cm.shape[0]))
    ax.set_xlabel("predicted digit")
    ax.set_ylabel("true digit")
    fig.colorbar(image, ax=ax, label="misclassified images", shrink=0.85)
    return fig


def plot_mistakes(images: np.ndarray, labels: np.ndarray, probabilities: np.ndarray,
                  columns: int = 6) -> Figure:
    """Images (k, 784) titled 'true -> predicted (confidence)'."""
    rows = int(np.ceil(len(images) / columns))
    fig, axes = _figure(columns, rows, width=1.45 * columns, height=1.65 * rows)
    for ax in axes:
        ax.axis("off")
    for ax, image, label, p in zip(axes, images, labels, probabilities):
        ax.imshow(image.reshape(28, 28), cmap="gray_r")
        ax.set_title(f"{label} → {p.argmax()} ({p.max():.1%})", fontsize=8)
    return fig


def plot_explorer(run: Run, baseline: Run, title: str) -> Figure:
    """The explorer's view of one network: validation loss and accuracy against the Task 3
    baseline."""
    fig, (ax_loss, ax_acc) = _figure(2, width=10, height=3.6)
    for r, name, color in ((baseline, "Task 3 network [64, 10]", RUN_COLORS["3c"]),
                           (run, str(list(run.config.neurons_per_layer)), "#d62728")):
        h = r.history
        steps, smooth = _smoothed_train_loss(h)
        ax_loss.plot(steps, smooth, color=color, lw=0.8, alpha=0.5)
        ax_loss.plot(h.check_steps, h.val_loss, color=color, lw=1.5, label=f"{name}")
        ax_acc.plot(h.check_steps, h.val_accuracy, color=color, lw=1.5,
                    label=f"{name}: best {h.best['val_accuracy']:.2%}")
    ax_loss.set_title("loss (thin: training, thick: validation)", fontsize=10)
    ax_acc.set_title("validation accuracy", fontsize=10)
    _zoom(ax_loss, [baseline.history.val_loss, run.history.val_loss], lower=0.0)
    _zoom(ax_acc, [baseline.history.val_accuracy, run.history.val_accuracy], upper=1.0)
    for ax in (ax_loss, ax_acc):
        ax.set_xlabel("gradient step")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(title, fontsize=11)
    return fig


# ================================================================================================
# Widgets: the hidden-unit explorer
# ================================================================================================

import threading  # noqa: E402  (the explorer's background training; the engine needs none)


class HiddenUnitExplorer:
    """Sliders for hidden units per layer and number of hidden layers (Task 3 tricks on).

    Moving them draws that network's curves against the Task 3 baseline with its parameter count
    and validation accuracy. Networks already in the cache answer at once; a new one trains in a
    background thread with a progress bar, so the sliders stay responsive; if the sliders moved
    on meanwhile, the newest choice is trained next and drawn when ready.
    """

    def __init__(self, data: Dataset, task3: Run, widths: Sequence[int] = (8, 16, 32, 64, 128, 256),
                 depths: Sequence[int] = (1, 2, 3, 4), cache_dir: str | os.PathLike | None = None):
        import ipywidgets as W
        self.data, self.task3, self.cache_dir = data, task3, cache_dir
        self.fingerprint = data_fingerprint(data)
        self.units = W.SelectionSlider(options=list(widths), value=task3.config.hidden_layers[0],
                                       description="hidden units", continuous_update=False)
        self.layers = W.SelectionSlider(options=list(depths), value=len(task3.config.hidden_layers),
                                        description="hidden layers", continuous_update=False)
        self.status = W.HTML()
        self.bar = W.IntProgress(min=0, max=task3.config.num_epochs, layout=W.Layout(width="40%"))
        self.out = W.Output()
        self.widget = W.VBox([W.HBox([self.units, self.layers]), W.HBox([self.bar, self.status]),
                              self.out])
        self._lock = threading.Lock()
        self._wanted: TrainConfig | None = None
        self.shown: TrainConfig | None = None  # the network whose curves are on screen
        self._worker: threading.Thread | None = None
        self.units.observe(self._on_change, names="value")
        self.layers.observe(self._on_change, names="value")
        self.bar.layout.visibility = "hidden"
        self._on_change()

    def config(self) -> TrainConfig:
        """The network the sliders point at."""
        return self.task3.config.replace(
            neurons_per_layer=(self.units.value,) * self.layers.value + (NUM_CLASSES,))

    def _draw(self, run: Run) -> None:
        h = run.history
        title = (f"{list(run.config.neurons_per_layer)}: {h.num_parameters:,} parameters; "
                 f"best validation accuracy {h.best['val_accuracy']:.2%} at epoch "
                 f"{h.best['epoch']:.1f}, last {h.last['val_accuracy']:.2%}")
        from IPython.display import Image
        png = io.BytesIO()
        plot_explorer(run, self.task3, title).savefig(png, format="png")  # no formatter needed
        self.out.clear_output(wait=True)
        self.out.append_display_data(Image(data=png.getvalue(), format="png"))
        self.shown = run.config
        self.status.value = f"{'from the cache' if run.cached else 'trained just now'}"

    def _on_change(self, change=None) -> None:
        config = self.config()
        run = cached_run(config, self.fingerprint, self.cache_dir, warn=False)
        if run is not None:
            self._wanted = None
            self._draw(run)
            return
        with self._lock:
            self._wanted = config
            busy = self._worker is not None and self._worker.is_alive()
            if not busy:
                self._worker = threading.Thread(target=self._train_loop, daemon=True)
                self._worker.start()
        self.status.value = (f"<b>training {list(config.neurons_per_layer)}</b> "
                             f"({config.num_parameters:,} parameters) ...")

    def _train_loop(self) -> None:
        while True:
            with self._lock:
                config, self._wanted = self._wanted, None
                if config is None:
                    self.bar.layout.visibility = "hidden"
                    return
            self.bar.layout.visibility = "visible"
            self.bar.value = 0

            def progress(p: Progress, config=config) -> None:
                self.bar.value = p.epoch
                self.status.value = (f"<b>training {list(config.neurons_per_layer)}</b>: epoch "
                                     f"{p.epoch + 1}/{p.num_epochs}, validation accuracy "
                                     f"{p.val_accuracy:.2%}")
            try:
                run = run_experiment(config, self.data, cache_dir=self.cache_dir,
                                     progress=progress, fingerprint=self.fingerprint)
            except Exception as err:  # shown, not lost in a background thread
                self.status.value = f"<b>training failed</b>: {type(err).__name__}: {err}"
                continue
            if config == self.config():
                self._draw(run)
