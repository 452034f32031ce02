"""Shared fixtures for the engine tests (helpers.py).

Everything except the tests marked by the ``real_data`` fixture runs on small synthetic data. The
network guard below makes sure no test ever talks to anything but 127.0.0.1.
"""

from __future__ import annotations

import os
import socket
import sys
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parents[1]
if str(PROJECT_DIR) not in sys.path:
    sys.path.insert(0, str(PROJECT_DIR))

import helpers  # noqa: E402  (before NumPy: it pins the kernels the report is computed with)
import numpy as np  # noqa: E402
import pytest  # noqa: E402

_LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}


def load_file(path: str | os.PathLike, name: str | None = None):
    """Import a module by file path (export/ and benchmarks/ are folders of scripts, not packages)."""
    import importlib.util
    path = Path(path)
    spec = importlib.util.spec_from_file_location(name or path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(autouse=True)
def _only_loopback_network(monkeypatch):
    """Refuse any socket connection that is not to the loopback address (or a local AF_UNIX
    socket, which multiprocessing uses): the suite must never contact the real mirrors."""
    original_connect = socket.socket.connect
    original_connect_ex = socket.socket.connect_ex

    def allowed(sock, address) -> bool:
        if sock.family == getattr(socket, "AF_UNIX", None):
            return True
        return isinstance(address, tuple) and address[0] in _LOCAL_HOSTS

    def connect(sock, address):
        if not allowed(sock, address):
            raise ConnectionRefusedError(f"test network guard: connection to {address!r} blocked")
        return original_connect(sock, address)

    def connect_ex(sock, address):
        if not allowed(sock, address):
            raise ConnectionRefusedError(f"test network guard: connection to {address!r} blocked")
        return original_connect_ex(sock, address)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)


# ------------------------------------------------------------------------------------------------
# Synthetic data
# ------------------------------------------------------------------------------------------------

def synthetic_images(num: int, rng: np.random.Generator,
                     prototypes: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """MNIST-like uint8 images (num, 784) and labels 0-9: a noisy fixed prototype per class, so a
    network can learn them."""
    if prototypes is None:
        prototypes = np.random.default_rng(1234).integers(0, 256, size=(10, 784))
    labels = rng.integers(0, 10, size=num)
    images = np.clip(prototypes[labels] + rng.normal(0, 60, size=(num, 784)), 0, 255)
    return images.astype(np.uint8), labels.astype(np.int64)


@pytest.fixture(scope="session")
def tiny_raw():
    """Raw synthetic split: 256 training and 96 validation images (uint8) with labels."""
    rng = np.random.default_rng(2024)
    X_train, Y_train = synthetic_images(256, rng)
    X_val, Y_val = synthetic_images(96, rng)
    return X_train, Y_train, X_val, Y_val


@pytest.fixture(scope="session")
def tiny_data(tiny_raw) -> helpers.Dataset:
    """The synthetic split preprocessed with `helpers.prepare_data` (float32, 785 inputs)."""
    return helpers.prepare_data(*tiny_raw)


@pytest.fixture
def tiny_config() -> helpers.TrainConfig:
    """A config that trains on `tiny_data` in a few milliseconds: 8 steps per epoch, a
    validation check every 4 steps."""
    return helpers.TrainConfig(neurons_per_layer=(16, 10), train_size=128, val_size=64,
                               batch_size=16, num_epochs=3, checks_per_epoch=2,
                               early_stopping_patience=50, seed=7)


def gradient_check_batch(num: int = 10, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """float64 (num, 785) inputs (normalised synthetic images + bias) and one-hot targets."""
    rng = np.random.default_rng(seed)
    raw, labels = synthetic_images(num, rng)
    mean, std = helpers.pixel_statistics(raw)
    return (helpers.pre_process_images(raw, mean, std, np.float64),
            helpers.one_hot_encode(labels, 10))


# ------------------------------------------------------------------------------------------------
# Real MNIST (integration tests only)
# ------------------------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def mnist_folder() -> Path:
    """$MNIST_DIR, or skip: the integration tests need the four real MNIST files."""
    folder = os.environ.get("MNIST_DIR")
    if not folder:
        pytest.skip("MNIST_DIR is not set: set it to a folder with the four MNIST files to run "
                    "the integration tests on real data")
    return Path(folder)


@pytest.fixture(scope="session")
def real_raw(mnist_folder):
    """The assignment's split, as `helpers.load_mnist` returns it (never downloads)."""
    return helpers.load_mnist(mnist_folder, download=False)


@pytest.fixture(scope="session")
def real_data(real_raw) -> helpers.Dataset:
    return helpers.prepare_data(*real_raw)
