"""The MNIST loader (IDX parsing, verification, error messages, downloads) and preprocessing.

The loader checks the real published SHA-256 sums, so these tests swap `helpers.MNIST_FILES`,
`helpers._IDX_SHAPES`, `helpers.NUM_TRAIN` and `helpers.NUM_VAL` for four small fake IDX files
with their own hashes. Downloads are served by a local HTTP server on 127.0.0.1 only.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import http.server
import os
import socket
import struct
import threading
from pathlib import Path

import numpy as np
import pytest

import helpers

IMAGES, LABELS = 0x0803, 0x0801
FAKE_TRAIN, FAKE_VAL = 12, 5  # images in the fake files
FAKE_NUM_TRAIN = 8            # load_mnist keeps the first NUM_TRAIN training images


def idx_bytes(magic: int, array: np.ndarray) -> bytes:
    """Encode a uint8 array as an IDX file (big-endian header: magic, then each dimension)."""
    return struct.pack(f">I{array.ndim}I", magic, *array.shape) + array.astype(np.uint8).tobytes()


def make_fake_mnist():
    """Four small IDX files: name -> (magic, array, decompressed bytes)."""
    rng = np.random.default_rng(99)
    arrays = {
        "train-images-idx3-ubyte": (IMAGES, rng.integers(0, 256, (FAKE_TRAIN, 28, 28))),
        "train-labels-idx1-ubyte": (LABELS, rng.integers(0, 10, FAKE_TRAIN)),
        "t10k-images-idx3-ubyte": (IMAGES, rng.integers(0, 256, (FAKE_VAL, 28, 28))),
        "t10k-labels-idx1-ubyte": (LABELS, rng.integers(0, 10, FAKE_VAL)),
    }
    return {name: (magic, a.astype(np.uint8), idx_bytes(magic, a))
            for name, (magic, a) in arrays.items()}


FAKE = make_fake_mnist()
NAMES = list(FAKE)


@pytest.fixture
def fake_mnist(monkeypatch):
    """Make the loader expect the fake files (their shapes and SHA-256) instead of real MNIST."""
    monkeypatch.setattr(helpers, "MNIST_FILES",
                        {n: hashlib.sha256(raw).hexdigest() for n, (_, _, raw) in FAKE.items()})
    monkeypatch.setattr(helpers, "_IDX_SHAPES", {n: (m, a.shape) for n, (m, a, _) in FAKE.items()})
    monkeypatch.setattr(helpers, "NUM_TRAIN", FAKE_NUM_TRAIN)
    monkeypatch.setattr(helpers, "NUM_VAL", FAKE_VAL)
    return FAKE


def write_fake(folder: Path, gzipped: bool = True, overrides: dict | None = None) -> Path:
    """Write the four fake files to ``folder``; ``overrides`` maps a name to (file name, bytes)."""
    folder.mkdir(parents=True, exist_ok=True)
    overrides = overrides or {}
    for name, (_, _, raw) in FAKE.items():
        if name in overrides:
            filename, blob = overrides[name]
            if blob is not None:
                (folder / filename).write_bytes(blob)
        elif gzipped:
            (folder / f"{name}.gz").write_bytes(gzip.compress(raw, mtime=0))
        else:
            (folder / name).write_bytes(raw)
    return folder


def assert_loaded_fake(arrays):
    X_train, Y_train, X_val, Y_val = arrays
    assert X_train.shape == (FAKE_NUM_TRAIN, 784) and X_train.dtype == np.uint8
    assert Y_train.shape == (FAKE_NUM_TRAIN,) and Y_train.dtype == np.int64
    assert X_val.shape == (FAKE_VAL, 784) and X_val.dtype == np.uint8
    assert Y_val.shape == (FAKE_VAL,) and Y_val.dtype == np.int64
    np.testing.assert_array_equal(
        X_train, FAKE["train-images-idx3-ubyte"][1][:FAKE_NUM_TRAIN].reshape(FAKE_NUM_TRAIN, -1))
    np.testing.assert_array_equal(Y_train, FAKE["train-labels-idx1-ubyte"][1][:FAKE_NUM_TRAIN])
    np.testing.assert_array_equal(X_val, FAKE["t10k-images-idx3-ubyte"][1].reshape(FAKE_VAL, -1))
    np.testing.assert_array_equal(Y_val, FAKE["t10k-labels-idx1-ubyte"][1])


def assert_helpful(err: pytest.ExceptionInfo, name: str, *phrases: str) -> None:
    """The message names the file and tells the reader what to do."""
    message = str(err.value)
    assert name in message, message
    assert "MNIST_DIR" in message, message
    for phrase in phrases:
        assert phrase in message, message


# ------------------------------------------------------------------------------------------------
# parse_idx
# ------------------------------------------------------------------------------------------------

def test_parse_idx_decodes_header_and_payload(fake_mnist):
    for name, (_, array, raw) in FAKE.items():
        out = helpers.parse_idx(raw, name)
        assert out.dtype == np.uint8 and out.shape == array.shape
        np.testing.assert_array_equal(out, array)


@pytest.mark.parametrize("damage, phrase", [
    (lambda raw: raw[:6], "truncated"),                                   # shorter than header
    (lambda raw: struct.pack(">I", 0x0801) + raw[4:], "magic"),
    (lambda raw: raw[:4] + struct.pack(">I", FAKE_TRAIN + 1) + raw[8:], "dimensions"),
    (lambda raw: raw[:-1], "truncated"),
    (lambda raw: raw + b"\x00", "expected"),                              # trailing bytes
    (lambda raw: raw[:-1] + bytes([raw[-1] ^ 0xFF]), "SHA-256"),
], ids=["short_header", "wrong_magic", "wrong_dimensions", "short_payload", "trailing_bytes",
        "checksum"])
def test_parse_idx_rejects_damaged_bytes(fake_mnist, damage, phrase):
    name = "train-images-idx3-ubyte"
    with pytest.raises(helpers.MnistError) as err:
        helpers.parse_idx(damage(FAKE[name][2]), name, source=f"/somewhere/{name}")
    assert_helpful(err, name, phrase)


# ------------------------------------------------------------------------------------------------
# load_mnist from a folder
# ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("gzipped", [True, False], ids=["gzipped", "uncompressed"])
def test_load_mnist_reads_gzipped_and_uncompressed_files(fake_mnist, tmp_path, gzipped):
    folder = write_fake(tmp_path / "mnist", gzipped=gzipped)
    assert_loaded_fake(helpers.load_mnist(folder, download=False))


def test_load_mnist_reads_a_mix_of_gzipped_and_uncompressed(fake_mnist, tmp_path):
    raw = FAKE["t10k-images-idx3-ubyte"][2]
    folder = write_fake(tmp_path, overrides={"t10k-images-idx3-ubyte": ("t10k-images-idx3-ubyte",
                                                                       raw)})
    assert_loaded_fake(helpers.load_mnist(folder, download=False))


def test_load_mnist_slices_with_the_module_split_sizes(fake_mnist, tmp_path, monkeypatch):
    """The first NUM_TRAIN training images train (the assignment: 20000 of 60000)."""
    monkeypatch.setattr(helpers, "NUM_TRAIN", 3)
    X_train, Y_train, _, _ = helpers.load_mnist(write_fake(tmp_path), download=False)
    assert X_train.shape == (3, 784)
    np.testing.assert_array_equal(Y_train, FAKE["train-labels-idx1-ubyte"][1][:3])


def _gz(name: str) -> bytes:
    return gzip.compress(FAKE[name][2], mtime=0)


def _flip_payload_byte(raw: bytes) -> bytes:
    return raw[:-1] + bytes([raw[-1] ^ 0x01])


# Each bad file kind: (file name on disk, its bytes (None: absent), phrase expected in the message)
BAD_FILES = {
    "missing": lambda n: (f"{n}.gz", None, "missing"),
    "truncated_gzip": lambda n: (f"{n}.gz", _gz(n)[: len(_gz(n)) // 2], "truncated gzip"),
    "corrupt_gzip_crc": lambda n: (f"{n}.gz", _gz(n)[:-8] + bytes([_gz(n)[-8] ^ 0xFF])
                                   + _gz(n)[-7:], "gzip"),
    "not_gzip_named_gz": lambda n: (f"{n}.gz", FAKE[n][2], "not gzip"),
    "empty_gz": lambda n: (f"{n}.gz", b"", "not gzip"),
    "wrong_magic": lambda n: (n, struct.pack(">I", 0x0802) + FAKE[n][2][4:], "magic"),
    "wrong_dimensions": lambda n: (f"{n}.gz", gzip.compress(
        FAKE[n][2][:4] + struct.pack(">I", 7) + FAKE[n][2][8:]), "dimensions"),
    "truncated_payload": lambda n: (f"{n}.gz", gzip.compress(FAKE[n][2][:-10]), "truncated"),
    "checksum_mismatch": lambda n: (f"{n}.gz", gzip.compress(_flip_payload_byte(FAKE[n][2])),
                                    "SHA-256"),
}


@pytest.mark.parametrize("name", ["train-images-idx3-ubyte", "t10k-labels-idx1-ubyte"])
@pytest.mark.parametrize("kind", list(BAD_FILES))
def test_load_mnist_bad_file_raises_helpful_mnist_error(fake_mnist, tmp_path, kind, name):
    """Every damaged or missing file gives an MnistError naming the file and the fix (no bare
    EOFError / ValueError / OSError from gzip or NumPy)."""
    filename, blob, phrase = BAD_FILES[kind](name)
    folder = write_fake(tmp_path, overrides={name: (filename, blob)})
    with pytest.raises(helpers.MnistError) as err:
        helpers.load_mnist(folder, download=False)
    assert_helpful(err, name, phrase)


def test_missing_folder_raises_mnist_error(fake_mnist, tmp_path):
    with pytest.raises(helpers.MnistError) as err:
        helpers.load_mnist(tmp_path / "does-not-exist", download=False)
    assert_helpful(err, "train-images-idx3-ubyte", "missing")


def test_mnist_error_is_a_runtime_error():
    assert issubclass(helpers.MnistError, RuntimeError)


# ------------------------------------------------------------------------------------------------
# Where the data lives
# ------------------------------------------------------------------------------------------------

def test_mnist_dir_argument_beats_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("MNIST_DIR", str(tmp_path / "from-env"))
    assert helpers.mnist_dir(tmp_path / "from-arg") == tmp_path / "from-arg"
    assert helpers.mnist_dir(str(tmp_path / "from-arg")) == tmp_path / "from-arg"


def test_mnist_dir_uses_environment_then_project_default(monkeypatch, tmp_path):
    monkeypatch.setenv("MNIST_DIR", str(tmp_path / "from-env"))
    assert helpers.mnist_dir() == tmp_path / "from-env"
    monkeypatch.delenv("MNIST_DIR")
    assert helpers.mnist_dir() == helpers.PROJECT_DIR / "data" / "mnist"
    monkeypatch.setenv("MNIST_DIR", "")
    assert helpers.mnist_dir() == helpers.PROJECT_DIR / "data" / "mnist"


def test_load_mnist_reads_mnist_dir_from_environment(fake_mnist, tmp_path, monkeypatch):
    folder = write_fake(tmp_path / "env")
    monkeypatch.setenv("MNIST_DIR", str(folder))
    assert_loaded_fake(helpers.load_mnist(download=False))
    # an explicit data_dir wins over the environment
    monkeypatch.setenv("MNIST_DIR", str(tmp_path / "empty"))
    assert_loaded_fake(helpers.load_mnist(folder, download=False))
    with pytest.raises(helpers.MnistError, match="missing"):
        helpers.load_mnist(download=False)


# ------------------------------------------------------------------------------------------------
# Downloads from a local HTTP server
# ------------------------------------------------------------------------------------------------

class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


class _CutHandler(_QuietHandler):
    """Under /cut/: announces the full length, sends half of the file, then hangs up."""

    def do_GET(self):
        if not self.path.startswith("/cut/"):
            return super().do_GET()
        blob = Path(self.translate_path("/good/" + self.path[len("/cut/"):])).read_bytes()
        self.send_response(200)
        self.send_header("Content-Type", "application/gzip")
        self.send_header("Content-Length", str(len(blob)))
        self.end_headers()
        self.wfile.write(blob[: len(blob) // 2])
        self.wfile.flush()
        self.close_connection = True


@pytest.fixture
def mirror_server(tmp_path):
    """An HTTP server on 127.0.0.1 (a free port) serving tmp_path/www: /good/ holds the fake
    files, /bad/ corrupted copies (payload byte flipped), /truncated/ cut gzip streams, /empty/
    nothing (404), /cut/ connections dropped mid-body. Yields the base URL."""
    www = tmp_path / "www"
    write_fake(www / "good")
    write_fake(www / "bad", overrides={n: (f"{n}.gz", gzip.compress(_flip_payload_byte(raw)))
                                       for n, (_, _, raw) in FAKE.items()})
    write_fake(www / "truncated", overrides={n: (f"{n}.gz", _gz(n)[: len(_gz(n)) // 2])
                                             for n in FAKE})
    (www / "empty").mkdir()
    handler = functools.partial(_CutHandler, directory=str(www))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture
def closed_port_url():
    """A URL on 127.0.0.1 whose port nobody listens on (connection refused)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/mnist/"


def leftovers(folder: Path) -> list[str]:
    """Files the loader would trust, or temporary files: *.gz, *.partial, anything else."""
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_download_from_good_mirror_lands_atomically(fake_mnist, mirror_server, tmp_path,
                                                    monkeypatch):
    """Each file is written to a temporary name in the target folder, verified, then renamed."""
    target = tmp_path / "data"
    renames = []
    real_replace = os.replace

    def spy_replace(src, dst):
        src, dst = Path(src), Path(dst)
        assert src.parent == dst.parent == target
        assert not dst.exists(), "the final file must appear only by the rename"
        name = dst.name[: -len(".gz")]
        helpers.parse_idx(gzip.decompress(src.read_bytes()), name)  # complete and verified
        renames.append((src.name, dst.name))
        return real_replace(src, dst)

    monkeypatch.setattr(helpers.os, "replace", spy_replace)
    arrays = helpers.load_mnist(target, mirrors=[f"{mirror_server}/good/"])
    assert_loaded_fake(arrays)
    assert sorted(dst for _, dst in renames) == sorted(f"{n}.gz" for n in NAMES)
    assert all(src.endswith(".partial") for src, _ in renames)
    assert leftovers(target) == sorted(f"{n}.gz" for n in NAMES)
    for name in NAMES:
        assert gzip.decompress((target / f"{name}.gz").read_bytes()) == FAKE[name][2]
    # a second load uses the downloaded files and needs no network
    assert_loaded_fake(helpers.load_mnist(target, download=False))


def test_download_only_fetches_missing_files(fake_mnist, mirror_server, tmp_path):
    target = write_fake(tmp_path / "data", overrides={"t10k-labels-idx1-ubyte": ("x", None)})
    before = {p.name: p.stat().st_mtime_ns for p in target.iterdir()}
    assert_loaded_fake(helpers.load_mnist(target, mirrors=[f"{mirror_server}/good/"]))
    after = {p.name: p.stat().st_mtime_ns for p in target.iterdir()}
    assert set(after) - set(before) == {"t10k-labels-idx1-ubyte.gz"}
    assert all(after[n] == before[n] for n in before)


@pytest.mark.parametrize("first", ["bad", "truncated", "empty"])
def test_download_skips_a_bad_mirror_for_a_good_one(fake_mnist, mirror_server, tmp_path, first):
    target = tmp_path / "data"
    assert_loaded_fake(helpers.load_mnist(
        target, mirrors=[f"{mirror_server}/{first}/", f"{mirror_server}/good/"]))
    assert leftovers(target) == sorted(f"{n}.gz" for n in NAMES)
    for name in NAMES:
        assert gzip.decompress((target / f"{name}.gz").read_bytes()) == FAKE[name][2]


def test_download_skips_a_mirror_that_drops_the_connection(fake_mnist, mirror_server, tmp_path):
    """A mirror that hangs up mid-body (http.client.IncompleteRead) is a failed mirror like any
    other: the next one is tried."""
    target = tmp_path / "data"
    assert_loaded_fake(helpers.load_mnist(
        target, mirrors=[f"{mirror_server}/cut/", f"{mirror_server}/good/"]))
    assert leftovers(target) == sorted(f"{n}.gz" for n in NAMES)


def test_download_all_mirrors_bad_lists_each_and_leaves_nothing(fake_mnist, mirror_server,
                                                                tmp_path, closed_port_url):
    target = tmp_path / "data"
    mirrors = [f"{mirror_server}/bad/", f"{mirror_server}/truncated/", f"{mirror_server}/empty/",
               closed_port_url]
    with pytest.raises(helpers.MnistError) as err:
        helpers.load_mnist(target, mirrors=mirrors)
    name = NAMES[0]
    assert_helpful(err, name)
    message = str(err.value)
    for mirror in mirrors:
        assert f"{mirror.rstrip('/')}/{name}.gz" in message, message
    assert "SHA-256" in message and "truncated gzip" in message, message
    assert leftovers(target) == []  # no *.gz, no *.partial: nothing unverified left behind


def test_download_all_mirrors_bad_including_dropped_connection(fake_mnist, mirror_server,
                                                               tmp_path):
    target = tmp_path / "data"
    mirrors = [f"{mirror_server}/cut/", f"{mirror_server}/bad/"]
    with pytest.raises(helpers.MnistError) as err:
        helpers.load_mnist(target, mirrors=mirrors)
    for mirror in mirrors:
        assert mirror in str(err.value)
    assert leftovers(target) == []


def test_download_from_unreachable_mirror_is_a_clear_error(fake_mnist, tmp_path, closed_port_url):
    target = tmp_path / "data"
    with pytest.raises(helpers.MnistError) as err:
        helpers.download_mnist_file(NAMES[1], target, mirrors=[closed_port_url], timeout=5)
    assert_helpful(err, NAMES[1], closed_port_url, "could not be downloaded")
    assert "refused" in str(err.value).lower()
    assert leftovers(target) == []


def test_missing_file_without_download_does_not_touch_the_network(fake_mnist, tmp_path,
                                                                 monkeypatch):
    def no_network(*args, **kwargs):
        raise AssertionError("download=False must not open a URL")

    monkeypatch.setattr(helpers.urllib.request, "urlopen", no_network)
    with pytest.raises(helpers.MnistError):
        helpers.load_mnist(tmp_path, download=False, mirrors=["http://127.0.0.1:9/"])


# ------------------------------------------------------------------------------------------------
# Preprocessing
# ------------------------------------------------------------------------------------------------

def test_pixel_statistics_are_population_mean_and_std_of_all_pixels():
    X = np.array([[0, 255] * 392, [10, 20] * 392], dtype=np.uint8)
    mean, std = helpers.pixel_statistics(X)
    assert type(mean) is float and type(std) is float
    values = np.array([0, 255, 10, 20], dtype=np.float64)
    assert mean == pytest.approx(values.mean(), rel=1e-15)
    assert std == pytest.approx(values.std(ddof=0), rel=1e-15)  # no uint8 overflow, population


def test_pre_process_images_shape_bias_and_dtype(tiny_raw):
    X = tiny_raw[0][:7]
    mean, std = helpers.pixel_statistics(tiny_raw[0])
    out = helpers.pre_process_images(X, mean, std)
    assert out.shape == (7, 785) and out.dtype == np.float32
    np.testing.assert_array_equal(out[:, -1], 1.0)
    out64 = helpers.pre_process_images(X, mean, std, dtype=np.float64)
    assert out64.dtype == np.float64
    np.testing.assert_allclose(out64[:, :784], (X.astype(np.float64) - mean) / std, rtol=1e-15)


def test_pre_process_images_uses_the_training_statistics_not_the_batch(tiny_raw):
    """A validation batch is normalised with the training mean/std, not its own."""
    X_train, X_val = tiny_raw[0], tiny_raw[2]
    mean, std = helpers.pixel_statistics(X_train)
    shifted_val = np.clip(X_val.astype(np.int64) + 40, 0, 255).astype(np.uint8)  # other stats
    out = helpers.pre_process_images(shifted_val, mean, std, dtype=np.float64)
    np.testing.assert_allclose(out[:, :784], (shifted_val - mean) / std, rtol=1e-14)
    own_mean, own_std = helpers.pixel_statistics(shifted_val)
    assert abs(own_mean - mean) > 10
    assert abs(out[:, :784].mean()) > 0.1  # not re-centred on the batch itself
    train_out = helpers.pre_process_images(X_train, mean, std, dtype=np.float64)[:, :784]
    assert train_out.mean() == pytest.approx(0, abs=1e-12)
    assert train_out.std() == pytest.approx(1, rel=1e-12)


@pytest.mark.parametrize("shape", [(3, 28, 28), (784,), (3, 785), (3, 783)])
def test_pre_process_images_rejects_wrong_shapes_helpfully(shape):
    with pytest.raises(ValueError) as err:
        helpers.pre_process_images(np.zeros(shape, np.uint8), 33.0, 78.0)
    assert "784" in str(err.value) and str(shape) in str(err.value)


@pytest.mark.parametrize("std", [0.0, -1.0, float("nan")])
def test_pre_process_images_rejects_non_positive_std(std):
    with pytest.raises(ValueError, match="std"):
        helpers.pre_process_images(np.zeros((2, 784), np.uint8), 33.0, std)


def test_one_hot_encode():
    out = helpers.one_hot_encode(np.array([3, 0, 9, 3]), 10)
    assert out.shape == (4, 10)
    np.testing.assert_array_equal(out.sum(axis=1), 1)
    np.testing.assert_array_equal(out.argmax(axis=1), [3, 0, 9, 3])
    np.testing.assert_array_equal(helpers.one_hot_encode(np.array([[3], [0]]), 10),
                                  helpers.one_hot_encode(np.array([3, 0]), 10))
    assert helpers.one_hot_encode(np.array([], dtype=int), 10).shape == (0, 10)


@pytest.mark.parametrize("labels", [[0, 10], [-1, 2]])
def test_one_hot_encode_rejects_out_of_range_labels(labels):
    with pytest.raises(ValueError, match="labels"):
        helpers.one_hot_encode(np.array(labels), 10)


def test_prepare_data_normalises_both_splits_with_training_statistics(tiny_raw, tiny_data):
    X_train, Y_train, X_val, Y_val = tiny_raw
    mean, std = helpers.pixel_statistics(X_train)
    assert (tiny_data.mean, tiny_data.std) == (mean, std)
    np.testing.assert_array_equal(tiny_data.X_train,
                                  helpers.pre_process_images(X_train, mean, std))
    np.testing.assert_array_equal(tiny_data.X_val, helpers.pre_process_images(X_val, mean, std))
    assert tiny_data.Y_train.dtype == np.float32 and tiny_data.Y_train.shape == (len(Y_train), 10)
    np.testing.assert_array_equal(tiny_data.Y_val.argmax(axis=1), Y_val)
