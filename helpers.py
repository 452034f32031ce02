"""TDT4265 Assignment 2: the NumPy multi-layer perceptron for MNIST, and nothing else.

This is the engine the assignment asks a student to write (the starter code's ``mnist.py``,
``utils.py``, ``task2a.py``, ``task2.py`` and ``trainer.py`` in one file), in the order
``assignment2.ipynb`` uses it:

    data -> preprocessing -> activations and loss -> model -> gradient check -> training

It imports only the standard library and NumPy. The report's own machinery (the run cache and
parallel runs, statistics and tables, plots, the explorer widget) lives in the ``report`` package,
which imports this module and never the other way round.

Notation follows the derivation in the notebook (Task 1): ``i`` indexes inputs, ``j`` hidden units,
``k`` outputs; ``z = a_prev @ w`` is a layer's pre-activation, ``a = f(z)`` its activation, and
``delta = dC/dz``. Weights are stored as the course's starter code stores them, one matrix per layer
of shape ``(fan_in, fan_out)``, so ``w[i, j]`` is the weight written ``w_ji`` in the derivation.

Everything random takes an explicit ``np.random.Generator``; nothing here seeds NumPy globally.
"""

from __future__ import annotations

import ctypes
import dataclasses
import glob
import gzip
import hashlib
import http.client
import math
import os
import struct
import tempfile
import time
import urllib.error
import urllib.request
import warnings
import zlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

# ================================================================================================
# One set of kernels on every x86-64 machine (before NumPy loads them)
# ================================================================================================

#: The OpenBLAS kernel family every number of the report is computed with: AVX2 + FMA, which every
#: x86-64 processor of the last decade has. Left to itself OpenBLAS picks kernels by processor
#: (``SkylakeX`` on an AVX-512 one), and through early stopping a last-bit difference in a matrix
#: product becomes a different run.
PINNED_BLAS_CORE = "Haswell"
#: NumPy's own dispatch group that is switched off for the same reason: on AVX-512 processors
#: NumPy's float64 ``exp`` and ``log`` take AVX-512 code whose last bits differ from the AVX2 code.
NUMPY_DISABLED_GROUP = "X86_V4"
_AVX512_GROUP = {"avx512f", "avx512cd", "avx512vl", "avx512bw", "avx512dq"}   # what X86_V4 needs


def cpu_flags() -> set[str] | None:
    """The processor's feature flags as Linux lists them (``/proc/cpuinfo``), or None elsewhere."""
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return None


def pinned_kernels(machine: str, flags: set[str] | None) -> dict[str, str]:
    """The environment variables that give a processor of this kind (``platform.machine()``) and
    these flags (None: unknown) the report's kernels: ``OPENBLAS_CORETYPE`` on any x86-64 with
    AVX2 and FMA (assumed where the flags are unknown), ``NPY_DISABLE_CPU_FEATURES`` where NumPy
    would otherwise dispatch to AVX-512 code. Elsewhere (ARM, another BLAS) nothing can be pinned."""
    if machine.lower() not in ("x86_64", "amd64"):
        return {}
    pins = {}
    if flags is None or {"avx2", "fma"} <= flags:
        pins["OPENBLAS_CORETYPE"] = PINNED_BLAS_CORE
    if flags is not None and _AVX512_GROUP <= flags:
        pins["NPY_DISABLE_CPU_FEATURES"] = NUMPY_DISABLED_GROUP
    return pins


def pin_kernels(environ=os.environ) -> dict[str, str]:
    """Set `pinned_kernels` in ``environ`` where it is not set already (a value the user set, for
    example because other kernels are wrong on their machine, is respected). It takes effect in a
    process that has not loaded NumPy yet, and in every process started from it (the report's
    workers, the notebook's kernel). Returns what it set."""
    import platform
    pins = {k: v for k, v in pinned_kernels(platform.machine(), cpu_flags()).items() if k not in environ}
    environ.update(pins)
    return pins


_NUMPY_LOADED_FIRST = "numpy" in __import__("sys").modules   # then too late to pin this process
if not _NUMPY_LOADED_FIRST:
    pin_kernels()
import numpy as np  # noqa: E402  (after pin_kernels: OpenBLAS reads its kernel family as it loads)

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
#: The other 40000 training images (indices 20000-59999), which the assignment leaves unused: no
#: run trains on them or chooses its weights by them, so they score the weights early stopping
#: keeps without the validation set's bias (the validation set both chooses and scores them).
NUM_HELD_OUT = 60000 - NUM_TRAIN

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
               mirrors: Sequence[str] = MNIST_MIRRORS, held_out: bool = False
               ) -> tuple[np.ndarray, ...]:
    """The assignment's MNIST split, verified.

    Args:
        data_dir: folder with the four IDX files (gzipped or not); default: see `mnist_dir`.
        download: fetch missing files from ``mirrors`` into that folder.
        held_out: also return the training images the assignment leaves unused.
    Returns:
        X_train: uint8 (20000, 784), the first 20000 training images, flattened row by row.
        Y_train: int64 (20000,), digits 0-9.
        X_val: uint8 (10000, 784), the 10000 test images.
        Y_val: int64 (10000,).
        and with ``held_out``: X_held_out uint8 (40000, 784) and Y_held_out int64 (40000,), the
        training images 20000-59999 (`NUM_HELD_OUT`).
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
    if not held_out:
        return X_train, Y_train, X_val, Y_val
    X_held_out = arrays["train-images-idx3-ubyte"][NUM_TRAIN:].reshape(NUM_HELD_OUT, -1)
    Y_held_out = arrays["train-labels-idx1-ubyte"][NUM_TRAIN:].astype(np.int64)
    return X_train, Y_train, X_val, Y_val, X_held_out, Y_held_out


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

def sigmoid(z: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """Logistic function 1 / (1 + e^-z), computed without overflow warnings for large |z|.
    ``out=z`` computes it in place (as `SoftmaxModel.predict` does), with the same bits."""
    s = np.tanh(np.multiply(z, 0.5, out=out), out=out)
    s += 1.0
    s *= 0.5
    return s


def sigmoid_slope(z: np.ndarray) -> np.ndarray:
    """f'(z) = f(z) (1 - f(z)) for the logistic sigmoid."""
    s = sigmoid(z)
    return s * (1.0 - s)


def improved_sigmoid(z: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """LeCun's scaled tanh, f(z) = 1.7159 tanh(2z/3): f(+-1) = +-1, zero-centred outputs.
    ``out=z`` computes it in place, with the same bits."""
    t = np.tanh(np.multiply(z, 2.0 / 3.0, out=out), out=out)
    t *= 1.7159
    return t


def improved_sigmoid_slope(z: np.ndarray) -> np.ndarray:
    """f'(z) = 1.7159 * 2/3 * (1 - tanh^2(2z/3))."""
    t = np.tanh(z * (2.0 / 3.0))
    return (1.7159 * 2.0 / 3.0) * (1.0 - t * t)


def softmax(z: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """Row-wise softmax of (N, K) logits, shifted by the row maximum so exp never overflows.
    ``out=z`` computes it in place, with the same bits."""
    e = np.subtract(z, z.max(axis=1, keepdims=True), out=out)
    np.exp(e, out=e)
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

def blas_core() -> str:
    """The kernel family NumPy's OpenBLAS chose for this processor at start-up ('Haswell',
    'SkylakeX', ...; ``OPENBLAS_CORETYPE`` overrides it), or '' when NumPy uses another BLAS.

    It decides `matmul`'s strategy, and it is part of what fixes a run's bits: the same engine
    gives different last bits with different kernels. Found as threadpoolctl finds it: the
    library's ``openblas_get_corename``, through ctypes, in NumPy's bundled libraries (wheels)
    or among the libraries this process has loaded (Linux; a conda or system OpenBLAS).
    """
    here = Path(np.__file__).parent
    paths = sorted(glob.glob(str(here.parent / "numpy.libs" / "*openblas*"))
                   + glob.glob(str(here / ".dylibs" / "*openblas*")))
    try:
        with open("/proc/self/maps") as maps:
            paths += sorted({line.split()[-1] for line in maps if "openblas" in line.lower()
                             and line.split()[-1].startswith("/")})
    except OSError:
        pass
    for path in paths:
        try:
            library = ctypes.CDLL(path)
        except OSError:
            continue
        for symbol in ("openblas_get_corename", "scipy_openblas_get_corename64_",
                       "scipy_openblas_get_corename", "openblas_get_corename64_"):
            corename = getattr(library, symbol, None)
            if corename is not None:
                corename.restype = ctypes.c_char_p
                return corename().decode("ascii", "replace")
    return ""


#: This process's OpenBLAS kernel family (see `blas_core`); fixed for the life of the process.
BLAS_CORE = blas_core()
if _NUMPY_LOADED_FIRST and BLAS_CORE and "OPENBLAS_CORETYPE" not in os.environ:
    # NumPy came first, with the kernels the processor picked: the processes this one starts (the
    # report's workers) get the same, so that its runs agree with what this process computes.
    os.environ["OPENBLAS_CORETYPE"] = BLAS_CORE
    if BLAS_CORE != PINNED_BLAS_CORE:
        warnings.warn(f"NumPy was imported before helpers, and OpenBLAS runs its {BLAS_CORE} "
                      f"kernels, not the report's {PINNED_BLAS_CORE}: numbers may differ from the "
                      "committed report. Import helpers (or report) before NumPy, or set "
                      f"OPENBLAS_CORETYPE={PINNED_BLAS_CORE} before starting Python.", stacklevel=2)
#: Kernel families whose small-matrix kernel (for products of at most SMALL_PRODUCT
#: multiply-adds) beats the general one on a training step's products: OpenBLAS's AVX-512 kernels.
#: On its AVX2 kernels ('Haswell', also what AMD Zen gets) blocking was 10-30% slower.
SMALL_KERNEL_CORES = frozenset({"SkylakeX", "Cooperlake", "SapphireRapids"})
SMALL_PRODUCT = 1_000_000  # multiply-adds; OpenBLAS's small-matrix kernel takes products up to it
#: Rows `SoftmaxModel.predict` passes through the network at a time (measured: 1024-2048 rows
#: keep a check's forward pass within a few per cent of its bare products on both kernel families).
PREDICT_ROWS = 2048


def blocked_matmul(a: np.ndarray, b: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """``a @ b`` for 2-D arrays, (m, k) @ (k, n) -> (m, n), written into ``out`` if given, with a
    training step's large products cut into blocks for OpenBLAS's small-matrix kernel.

    A product above SMALL_PRODUCT multiply-adds whose m rows fit a block of at least 16 columns,
    as a step's (32, 785) @ (785, 64) and (785, 32) @ (32, 64) do, is computed in column blocks
    under that size: on OpenBLAS's AVX-512 kernels (`SMALL_KERNEL_CORES`) the unpacked
    small-matrix kernel is 10-25% faster there than the general one (``benchmarks/README.md``).
    Every other product is ``np.matmul`` as it is. Each output element is one dot product over k
    either way; only the rounding of its last bit may differ from ``a @ b``.
    """
    m, k = a.shape
    n = b.shape[1]
    width = SMALL_PRODUCT // (m * k) // 16 * 16  # widest block of whole 16-float vectors
    if m * k * n <= SMALL_PRODUCT or width < 16:
        return np.matmul(a, b, out=out)
    if out is None:
        out = np.empty((m, n), dtype=np.result_type(a, b))
    for j in range(0, n, width):
        np.matmul(a, b[:, j:j + width], out=out[:, j:j + width])
    return out


#: The engine's matrix product: `blocked_matmul` where it measured faster (OpenBLAS's AVX-512
#: kernel families), elsewhere ``np.matmul`` itself (blocking measured 10-30% slower on the AVX2
#: kernels, and unknown on other BLAS libraries), so it is never slower than plain ``a @ b``.
matmul = blocked_matmul if BLAS_CORE in SMALL_KERNEL_CORES else np.matmul


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

    def predict(self, X: np.ndarray, rows: int = PREDICT_ROWS) -> np.ndarray:
        """(N, 785) -> (N, 10) probabilities, without keeping anything for backward.

        The rows go through the network ``rows`` at a time, each layer's activation computed
        in place, so a validation check over 30,000 images costs little more than its matrix
        products (the activations of a block stay in cache, and nothing image-sized is
        allocated but the output)."""
        self._check_inputs(X, "predict")
        last = len(self.ws) - 1
        out = np.empty((X.shape[0], self.ws[-1].shape[1]), dtype=np.result_type(X, self.ws[-1]))
        for start in range(0, X.shape[0], rows):
            a = X[start:start + rows]
            for l, w in enumerate(self.ws):
                if l == last:
                    softmax(matmul(a, w, out=out[start:start + rows]), out=out[start:start + rows])
                else:
                    z = matmul(a, w)
                    a = self.f(z, out=z)
        return out


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
    """Preprocessed data for training. X: float32 (N, 785); Y: float32 one-hot (N, 10). The
    held-out images, if any, only score the weights a run keeps (`NUM_HELD_OUT`); None otherwise."""
    X_train: np.ndarray
    Y_train: np.ndarray
    X_val: np.ndarray
    Y_val: np.ndarray
    mean: float
    std: float
    X_held_out: np.ndarray | None = None
    Y_held_out: np.ndarray | None = None


def prepare_data(X_train: np.ndarray, Y_train: np.ndarray, X_val: np.ndarray, Y_val: np.ndarray,
                 X_held_out: np.ndarray | None = None, Y_held_out: np.ndarray | None = None,
                 dtype: type = np.float32) -> Dataset:
    """Normalise every split with the training-set statistics, add the bias input, one-hot labels.
    ``prepare_data(*load_mnist(held_out=True))`` keeps the held-out images too."""
    mean, std = pixel_statistics(X_train)

    def split(X, Y):
        return pre_process_images(X, mean, std, dtype), one_hot_encode(Y, NUM_CLASSES).astype(dtype)
    held_out = split(X_held_out, Y_held_out) if X_held_out is not None else (None, None)
    return Dataset(*split(X_train, Y_train), *split(X_val, Y_val), mean, std, *held_out)


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
        seconds: wall time of the run (not part of the reproducible result: it does not take part
            in comparisons, ``compare=False``).
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
    seconds: float = field(compare=False)
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


def probe_gradient_norms(model: SoftmaxModel, X: np.ndarray, Y: np.ndarray) -> np.ndarray:
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
        checks["grad_norms"].append(probe_gradient_norms(model, X_probe, Y_probe))
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
