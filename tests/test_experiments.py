"""The run cache (keys, hits, misses, corrupt and stale entries) and run_experiments, in one
process and (with the data sent to them) in worker processes. Workers that load MNIST themselves:
test_integration.py; interrupts: test_interrupt.py."""

from __future__ import annotations

import dataclasses
import json
import tempfile
import warnings
from pathlib import Path

import numpy as np
import pytest

import helpers
from report import experiments


@pytest.fixture
def cache(tmp_path) -> Path:
    return tmp_path / "cache"


@pytest.fixture
def train_calls(monkeypatch):
    """Count calls of helpers.train (i.e. runs actually computed, not answered from the cache)."""
    calls = []
    real_train = helpers.train

    def train(config, data, progress=None):
        calls.append(config)
        return real_train(config, data, progress)

    monkeypatch.setattr(experiments, "train", train)
    return calls


def npz_files(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.npz")) if folder.exists() else []


def assert_same_run(a: experiments.Run, b: experiments.Run) -> None:
    """Bit-for-bit equal histories, weights and held-out scores."""
    assert a.config == b.config and a.held_out == b.held_out
    for name in helpers.History.ARRAYS:
        x, y = getattr(a.history, name), getattr(b.history, name)
        assert x.dtype == y.dtype and x.shape == y.shape and x.tobytes() == y.tobytes(), name
    assert a.history.best == b.history.best and a.history.last == b.history.last
    assert (a.history.stopped_early, a.history.diverged) == (b.history.stopped_early,
                                                             b.history.diverged)
    assert len(a.ws) == len(b.ws)
    for wa, wb in zip(a.ws, b.ws):
        assert wa.dtype == wb.dtype and wa.shape == wb.shape and wa.tobytes() == wb.tobytes()


# ------------------------------------------------------------------------------------------------
# Keys
# ------------------------------------------------------------------------------------------------

def test_cache_key_depends_on_config_data_and_code(tiny_config, monkeypatch):
    key = experiments.cache_key(tiny_config, "data-a")
    assert key == experiments.cache_key(dataclasses.replace(tiny_config), "data-a")
    assert key != experiments.cache_key(tiny_config.replace(seed=8), "data-a")
    assert key != experiments.cache_key(tiny_config.replace(use_momentum=True), "data-a")
    assert key != experiments.cache_key(tiny_config, "data-b")
    monkeypatch.setattr(experiments, "CODE_VERSION", "another-engine")
    assert key != experiments.cache_key(tiny_config, "data-a")


def test_engine_version_covers_the_whole_engine_file_and_nothing_else(tmp_path):
    """Any edit anywhere in helpers.py (even its last line) gives another version; the report's
    own modules are not part of it, so editing a plot keeps every cached run."""
    engine = Path(helpers.__file__).read_text()
    assert experiments.engine_version() == experiments.CODE_VERSION
    for edited in (engine + "# a comment at the very end\n", "#" + engine):
        (tmp_path / "helpers.py").write_text(edited)
        assert experiments.engine_version(tmp_path / "helpers.py") != experiments.CODE_VERSION
    (tmp_path / "helpers.py").write_text(engine)
    assert experiments.engine_version(tmp_path / "helpers.py") == experiments.CODE_VERSION
    for report_module in Path(experiments.__file__).parent.glob("*.py"):
        assert report_module.read_bytes() not in engine.encode()


def test_engine_version_covers_the_kernels_it_runs_with():
    """Runs made with other kernels (OpenBLAS's family, NumPy's dispatch) or versions are other
    runs: each field of the environment changes the version."""
    env = experiments.environment()
    assert experiments.engine_version(env=env) == experiments.CODE_VERSION
    for field, other in (("blas_core", "SkylakeX"), ("numpy_dispatch", "X86_V4"), ("numpy", "0.0"),
                         ("blas", "another BLAS")):
        assert experiments.engine_version(env=dict(env, **{field: other})) != experiments.CODE_VERSION


def test_data_fingerprint_changes_with_one_pixel(tiny_data):
    X = tiny_data.X_val.copy()
    X[5, 100] += 1e-3
    assert experiments.data_fingerprint(tiny_data) != experiments.data_fingerprint(
        dataclasses.replace(tiny_data, X_val=X))
    assert experiments.data_fingerprint(tiny_data) == experiments.data_fingerprint(
        dataclasses.replace(tiny_data, X_val=tiny_data.X_val.copy()))
    as64 = dataclasses.replace(tiny_data, X_train=tiny_data.X_train.astype(np.float64))
    assert experiments.data_fingerprint(tiny_data) != experiments.data_fingerprint(as64)


def test_cache_path_names_the_architecture(tiny_config, cache):
    path = experiments.cache_path(tiny_config, "fp", cache)
    assert path.parent == cache and path.suffix == ".npz" and path.name.startswith("run-16-10-")


# ------------------------------------------------------------------------------------------------
# run_experiment and the cache
# ------------------------------------------------------------------------------------------------

def test_cache_miss_trains_and_writes_one_file(tiny_data, tiny_config, cache, train_calls):
    run = experiments.run_experiment(tiny_config, tiny_data, cache_dir=cache)
    assert not run.cached and train_calls == [tiny_config]
    files = npz_files(cache)
    assert files == [experiments.cache_path(tiny_config, experiments.data_fingerprint(tiny_data), cache)]
    assert [p.name for p in cache.iterdir()] == [files[0].name]  # no temporary files left


def test_cache_hit_returns_the_identical_run(tiny_data, tiny_config, cache, train_calls):
    first = experiments.run_experiment(tiny_config, tiny_data, cache_dir=cache)
    second = experiments.run_experiment(tiny_config, tiny_data, cache_dir=cache)
    assert second.cached and len(train_calls) == 1
    assert_same_run(first, second)
    assert second.history.seconds == first.history.seconds
    assert second.history.num_parameters == first.history.num_parameters
    X_val = tiny_data.X_val[:64]
    np.testing.assert_array_equal(first.model().predict(X_val), second.model().predict(X_val))


def test_cache_file_loads_without_pickle(tiny_data, tiny_config, cache):
    experiments.run_experiment(tiny_config, tiny_data, cache_dir=cache)
    [path] = npz_files(cache)
    with np.load(path, allow_pickle=False) as f:
        arrays = {name: f[name] for name in f.files}
    assert all(a.dtype != object for a in arrays.values())
    meta = json.loads(str(arrays["meta"]))
    assert meta["config"] == tiny_config.to_dict()
    assert set(helpers.History.ARRAYS) <= set(arrays)


@pytest.mark.parametrize("damage", ["truncate", "garbage", "empty"])
def test_corrupt_cache_entry_warns_and_recomputes(tiny_data, tiny_config, cache, train_calls,
                                                  damage):
    first = experiments.run_experiment(tiny_config, tiny_data, cache_dir=cache)
    [path] = npz_files(cache)
    blob = path.read_bytes()
    path.write_bytes({"truncate": blob[: len(blob) // 2], "garbage": b"not a zip file" * 100,
                      "empty": b""}[damage])
    with pytest.warns(RuntimeWarning, match=path.name):
        again = experiments.run_experiment(tiny_config, tiny_data, cache_dir=cache)
    assert not again.cached and len(train_calls) == 2
    assert_same_run(first, again)
    # the entry was rewritten and is good again
    third = experiments.run_experiment(tiny_config, tiny_data, cache_dir=cache)
    assert third.cached and len(train_calls) == 2
    assert npz_files(cache) == [path]


def test_stale_cache_entry_is_recomputed(tiny_data, tiny_config, cache, train_calls):
    """An entry of another config found under this config's file name is not trusted."""
    other = tiny_config.replace(seed=99)
    experiments.run_experiment(other, tiny_data, cache_dir=cache)
    fp = experiments.data_fingerprint(tiny_data)
    experiments.cache_path(other, fp, cache).rename(experiments.cache_path(tiny_config, fp, cache))
    with pytest.warns(RuntimeWarning, match="recomputing"):
        run = experiments.run_experiment(tiny_config, tiny_data, cache_dir=cache)
    assert not run.cached and train_calls == [other, tiny_config]
    assert run.config == tiny_config
    fresh = experiments.run_experiment(tiny_config, tiny_data, use_cache=False)
    assert_same_run(run, fresh)
    assert experiments.run_experiment(tiny_config, tiny_data, cache_dir=cache).cached


def test_entry_of_other_data_is_not_used(tiny_data, tiny_config, cache, train_calls):
    experiments.run_experiment(tiny_config, tiny_data, cache_dir=cache)
    Y = tiny_data.Y_val.copy()
    Y[[0, 1]] = Y[[1, 0]]
    other = dataclasses.replace(tiny_data, Y_val=Y)
    run = experiments.run_experiment(tiny_config, other, cache_dir=cache)
    assert not run.cached and len(train_calls) == 2 and len(npz_files(cache)) == 2


def test_use_cache_false_neither_reads_nor_writes(tiny_data, tiny_config, cache, train_calls,
                                                  monkeypatch):
    run = experiments.run_experiment(tiny_config, tiny_data, cache_dir=cache, use_cache=False)
    assert not run.cached and npz_files(cache) == []
    experiments.run_experiment(tiny_config, tiny_data, cache_dir=cache)  # now an entry exists
    [path] = npz_files(cache)
    before = (path.read_bytes(), path.stat().st_mtime_ns)

    def no_read(*args, **kwargs):
        raise AssertionError("use_cache=False must not read the cache")

    monkeypatch.setattr(experiments, "load_run", no_read)
    again = experiments.run_experiment(tiny_config, tiny_data, cache_dir=cache, use_cache=False)
    assert not again.cached and len(train_calls) == 3
    assert (path.read_bytes(), path.stat().st_mtime_ns) == before
    assert_same_run(run, again)


def test_run_experiment_trains_with_single_threaded_blas(tiny_data, tiny_config, monkeypatch):
    """OpenBLAS results depend on its thread count: every run pins it to one thread, so serial
    and parallel runs give the same bits."""
    threadpoolctl = pytest.importorskip("threadpoolctl")
    if not [p for p in threadpoolctl.threadpool_info() if p["user_api"] == "blas"]:
        pytest.skip("threadpoolctl sees no BLAS library")
    seen = []
    real_train = helpers.train

    def train(config, data, progress=None):
        seen.extend(p["num_threads"] for p in threadpoolctl.threadpool_info()
                    if p["user_api"] == "blas")
        return real_train(config, data, progress)

    monkeypatch.setattr(experiments, "train", train)
    experiments.run_experiment(tiny_config, tiny_data, use_cache=False)
    assert seen and set(seen) == {1}


def test_default_cache_dir_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("A2_CACHE_DIR", str(tmp_path / "c"))
    assert experiments.default_cache_dir() == tmp_path / "c"
    monkeypatch.delenv("A2_CACHE_DIR")
    assert experiments.default_cache_dir() == helpers.PROJECT_DIR / "cache"


def test_run_model_holds_the_best_weights(tiny_data, tiny_config, cache):
    run = experiments.run_experiment(tiny_config, tiny_data, cache_dir=cache)
    model = run.model()
    X_val, Y_val = tiny_data.X_val[:64], tiny_data.Y_val[:64]
    assert helpers.cross_entropy_loss(Y_val, model.predict(X_val)) == pytest.approx(
        run.history.best["val_loss"], rel=1e-6)
    assert model.predict(X_val).dtype == np.float32
    assert run.model(np.float64).ws[0].dtype == np.float64


def test_diverged_run_round_trips_through_the_cache(tiny_data, tiny_config, cache):
    config = tiny_config.replace(learning_rate=1e39)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        first = experiments.run_experiment(config, tiny_data, cache_dir=cache)
    second = experiments.run_experiment(config, tiny_data, cache_dir=cache)
    assert first.history.diverged and second.cached and second.history.diverged
    assert_same_run(first, second)


# ------------------------------------------------------------------------------------------------
# run_experiments in this process
# ------------------------------------------------------------------------------------------------

def test_run_experiments_serial_keeps_order_and_runs_duplicates_once(tiny_data, tiny_config,
                                                                     cache, train_calls):
    a, b, c = tiny_config, tiny_config.replace(seed=8), tiny_config.replace(use_momentum=True)
    runs = experiments.run_experiments([b, a, c, a, b], tiny_data, processes=1, cache_dir=cache,
                                   quiet=True)
    assert [r.config for r in runs] == [b, a, c, a, b]
    assert sorted(map(repr, train_calls)) == sorted(map(repr, [a, b, c]))  # each once
    assert_same_run(runs[1], runs[3])
    assert len(npz_files(cache)) == 3
    for run in runs:
        assert_same_run(run, experiments.run_experiment(run.config, tiny_data, use_cache=False))
    again = experiments.run_experiments([c, a], tiny_data, processes=1, cache_dir=cache, quiet=True)
    assert all(r.cached for r in again) and len(train_calls) == 3 + 5
    assert_same_run(again[0], runs[2])


def test_run_experiments_recomputes_a_corrupt_entry(tiny_data, tiny_config, cache, train_calls):
    experiments.run_experiments([tiny_config], tiny_data, processes=1, cache_dir=cache, quiet=True)
    [path] = npz_files(cache)
    path.write_bytes(b"garbage")
    with pytest.warns(RuntimeWarning, match=path.name):
        [run] = experiments.run_experiments([tiny_config], tiny_data, processes=1, cache_dir=cache,
                                        quiet=True)
    assert not run.cached and len(train_calls) == 2


def test_run_experiments_use_cache_false(tiny_data, tiny_config, cache, train_calls):
    runs = experiments.run_experiments([tiny_config, tiny_config.replace(seed=1)], tiny_data,
                                   processes=1, cache_dir=cache, use_cache=False, quiet=True)
    assert not any(r.cached for r in runs) and npz_files(cache) == [] and len(train_calls) == 2


def test_run_experiments_trains_the_longest_runs_first_and_answers_in_order(tiny_data, tiny_config,
                                                                            cache, train_calls):
    """The queue is ordered by `expected_cost`, descending (so that parallel workers finish
    together); the answer keeps the caller's order."""
    configs = [tiny_config, tiny_config.replace(neurons_per_layer=(32, 10)),
               tiny_config.replace(neurons_per_layer=(8, 10)),
               tiny_config.replace(neurons_per_layer=(16, 16, 10), seed=3)]
    runs = experiments.run_experiments(configs, tiny_data, processes=1, cache_dir=cache,
                                       quiet=True)
    assert [r.config for r in runs] == configs
    assert train_calls == sorted(configs, key=experiments.expected_cost, reverse=True)
    assert train_calls[0].neurons_per_layer == (32, 10)
    assert train_calls[-1].neurons_per_layer == (8, 10)


def test_expected_cost_counts_steps_and_validation_checks(tiny_config):
    cost = experiments.expected_cost
    assert cost(tiny_config.replace(num_epochs=6)) == pytest.approx(2 * cost(tiny_config))
    assert cost(tiny_config.replace(neurons_per_layer=(32, 10))) > cost(tiny_config)
    assert cost(tiny_config.replace(val_size=128)) > cost(tiny_config)       # checks cost too
    assert cost(tiny_config.replace(checks_per_epoch=8)) > cost(tiny_config)


def test_summary_line_counts_runs_and_steps_but_no_wall_time(tiny_data, tiny_config, cache,
                                                             monkeypatch):
    """The line a notebook keeps says what happened, never how long it took (a saved notebook
    must not change from one run to the next)."""
    closed = []
    monkeypatch.setattr(experiments.ProgressReporter, "close",
                        lambda self, summary, seconds=None: closed.append(summary))
    configs = [tiny_config, tiny_config.replace(seed=8)]
    experiments.run_experiments(configs[:1], tiny_data, processes=1, cache_dir=cache)
    experiments.run_experiments(configs, tiny_data, processes=1, cache_dir=cache)
    steps = 3 * 8   # 3 epochs of 8 steps
    assert closed == [f"1 runs: 0 from the cache, 1 trained ({steps} gradient steps)",
                      f"2 runs: 1 from the cache, 1 trained ({steps} gradient steps)"]


class FakeDisplay:
    def __init__(self):
        self.texts = []

    def update(self, data, raw=False):
        self.texts.append(data["text/plain"])


def test_progress_reporter_puts_the_wall_time_in_a_terminal_only(capsys):
    in_jupyter = experiments.ProgressReporter(2)
    in_jupyter.handle = FakeDisplay()
    in_jupyter.close("2 runs: 0 from the cache, 2 trained", seconds=12.3)
    assert in_jupyter.handle.texts == ["2 runs: 0 from the cache, 2 trained"]
    experiments.ProgressReporter(2).close("2 runs: 0 from the cache, 2 trained", seconds=12.3)
    assert capsys.readouterr().err.strip() == "2 runs: 0 from the cache, 2 trained in 12 s"


def test_progress_reporter_shows_runs_done_and_epochs_in_place():
    reporter = experiments.ProgressReporter(3, interval=0.0)
    reporter.handle = FakeDisplay()
    reporter.update(helpers.Progress("a", 0, 5, 10, 0.5, 0.8))
    reporter.update(helpers.Progress("b", 2, 5, 30, 0.25, 0.9))
    reporter.finished("a")
    reporter.update(helpers.Progress("b", 3, 5, 40, 0.2, 0.92))
    assert reporter.handle.texts[1] == ("0/3 runs done; training:\n"
                                        "  a: epoch 1/5, step 10, val loss 0.5000, val acc 80.00%\n"
                                        "  b: epoch 3/5, step 30, val loss 0.2500, val acc 90.00%")
    assert reporter.handle.texts[-1].startswith("1/3 runs done; training:\n  b: epoch 4/5")


def test_partial_writes_are_never_read_and_are_cleaned_up(tiny_data, tiny_config, cache,
                                                          train_calls):
    """A worker killed in the middle of `helpers.atomic_write` leaves ``.<entry>.XXXX.partial``:
    it is not an entry, and the next run_experiments of that config deletes it."""
    import os
    import time
    fp = experiments.data_fingerprint(tiny_data)
    entry = experiments.cache_path(tiny_config, fp, cache)
    cache.mkdir()
    first = experiments.run_experiment(tiny_config, tiny_data, use_cache=False)
    experiments.save_run(entry, first.ws, first.history, fp)
    leftover = cache / f".{entry.name}.k2j3h4.partial"
    leftover.write_bytes(entry.read_bytes()[:100])
    entry.unlink()
    old = time.time() - 3600
    os.utime(leftover, (old, old))
    assert experiments.cached_run(tiny_config, fp, cache) is None
    [run] = experiments.run_experiments([tiny_config], tiny_data, processes=1, cache_dir=cache,
                                        quiet=True)
    assert not run.cached and not leftover.exists()
    assert sorted(p.name for p in cache.iterdir()) == [entry.name]
    assert_same_run(run, first)

    # A fresh temp file may be another process's write under way: it is left alone.
    fresh = cache / f".{experiments.cache_path(tiny_config.replace(seed=1), fp, cache).name}.x.partial"
    fresh.write_bytes(b"being written")
    experiments.run_experiments([tiny_config.replace(seed=1)], tiny_data, processes=1,
                                cache_dir=cache, quiet=True)
    assert fresh.exists()
    experiments.remove_partial_writes([tiny_config.replace(seed=1)], fp, cache)
    assert not fresh.exists()


def test_sklearn_crosscheck_records_no_wall_time(tiny_data, tiny_config, cache):
    pytest.importorskip("sklearn")
    result = experiments.sklearn_crosscheck(tiny_data, tiny_config, 2, cache_dir=cache)
    assert set(result) == {"val_accuracy", "val_loss", "train_accuracy", "epochs"}
    [path] = cache.glob("sklearn-*.json")
    assert "seconds" not in path.read_text()
    again = experiments.sklearn_crosscheck(tiny_data, tiny_config, 2, cache_dir=cache)
    assert again == result


def test_workers_given_the_data_equal_a_serial_run_bit_for_bit(tiny_data, tiny_config, cache):
    """Synthetic data (no MNIST files), handed to two worker processes in files: the serial
    results bit for bit, in the caller's order, written to the cache by the workers, and no
    file of the hand-over left behind."""
    configs = [tiny_config.replace(seed=s, use_momentum=bool(s % 2)) for s in range(4)]
    serial = experiments.run_experiments(configs, tiny_data, processes=1, use_cache=False,
                                         quiet=True)
    folders = set(Path(tempfile.gettempdir()).glob("a2-data-*"))
    parallel = experiments.run_experiments(configs, tiny_data, processes=2, cache_dir=cache,
                                           quiet=True)
    assert set(Path(tempfile.gettempdir()).glob("a2-data-*")) == folders
    assert [r.config for r in parallel] == configs and not any(r.cached for r in parallel)
    for s, p in zip(serial, parallel):
        assert_same_run(s, p)
    assert len(npz_files(cache)) == 4


def test_an_interrupt_leaves_a_line_saying_what_was_kept(tiny_data, tiny_config, cache,
                                                         monkeypatch):
    closed = []
    monkeypatch.setattr(experiments.ProgressReporter, "close",
                        lambda self, summary, seconds=None: closed.append(summary))
    real_train, calls = helpers.train, []

    def train(config, data, progress=None):
        calls.append(config)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real_train(config, data, progress)

    monkeypatch.setattr(experiments, "train", train)
    configs = [tiny_config.replace(seed=s) for s in range(4)]
    with pytest.raises(KeyboardInterrupt):
        experiments.run_experiments(configs, tiny_data, processes=1, cache_dir=cache)
    assert closed == ["interrupted: 2 of 4 runs trained; they are in the cache, so running this "
                      "again trains the other 2"]
    assert len(npz_files(cache)) == 2
