"""Stopping real training: Ctrl-C in a terminal and the kernel's stop button end `run_experiments`
within seconds, leave no worker process behind and no partial cache entry, keep the runs that
finished, and a second call trains only the rest.

Each test starts real worker processes (small configs, a few seconds each) on the real MNIST files
when MNIST_DIR is set, else on synthetic images of the same sizes sent to the workers, and measures
the time from SIGINT to the end.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from report import experiments

ROOT = Path(__file__).resolve().parents[1]
STOP_WITHIN = 2.0      # seconds, the project's promise (the issue allows 5 s for the stop button)

SETUP = """
import os
import sys
sys.path.insert(0, {root!r})
import numpy as np
import helpers as h
from report import experiments
CONFIGS = [h.TrainConfig(neurons_per_layer=(32, 10), train_size=4000, val_size=2000, num_epochs=6,
                         use_improved_weight_init=True, seed=s) for s in range(8)]

def load_data():
    \"\"\"MNIST from $MNIST_DIR, else synthetic images.\"\"\"
    if os.environ.get("MNIST_DIR"):
        return h.prepare_data(*h.load_mnist(download=False))
    rng = np.random.default_rng(0)
    prototypes = rng.integers(0, 256, size=(10, 784))
    def images(n):
        labels = rng.integers(0, 10, size=n)
        noisy = prototypes[labels] + rng.normal(0, 60, size=(n, 784))
        return np.clip(noisy, 0, 255).astype(np.uint8), labels
    return h.prepare_data(*images(4000), *images(2000))
"""


def setup_namespace() -> dict:
    namespace = {}
    exec(SETUP.format(root=str(ROOT)), namespace)
    return namespace


def configs():
    return setup_namespace()["CONFIGS"]


def children(pid: int) -> list[int]:
    """Worker processes of ``pid``: its children started by multiprocessing's spawn (not its
    resource tracker, which lives as long as its parent), from /proc."""
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
                cmdline = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if int(stat[stat.rindex(")") + 2:].split()[1]) == pid and b"spawn_main" in cmdline:
                out.append(int(entry.name))
    return out


def running(pid: int) -> bool:
    """Whether ``pid`` exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] != "Z"


def wait_for(condition, seconds: float, step: float = 0.05) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(step)
    return False


def entries(cache: Path) -> list[Path]:
    return sorted(cache.glob("run-*.npz"))


def check_cache(cache: Path, data) -> int:
    """Every entry is complete and loadable; no temp file is left. Returns the entry count."""
    assert not list(cache.glob(".*partial")), "a partial write was left in the cache"
    fingerprint = experiments.data_fingerprint(data)
    found = 0
    for config in configs():
        if experiments.cache_path(config, fingerprint, cache).exists():
            assert experiments.cached_run(config, fingerprint, cache, warn=False) is not None
            found += 1
    assert found == len(entries(cache)), "an entry that belongs to no config"
    return found


def training_script(tmp_path: Path, quiet: bool = True) -> Path:
    """A script that trains CONFIGS on 2 workers into the cache ``tmp_path``."""
    script = tmp_path / "train.py"
    script.write_text(SETUP.format(root=str(ROOT)) + textwrap.dedent(f"""
        if __name__ == "__main__":
            data = load_data()
            experiments.run_experiments(CONFIGS, data, processes=2, cache_dir={str(tmp_path)!r},
                                        quiet={quiet})
        """))
    return script


@pytest.fixture(scope="module")
def data():
    return setup_namespace()["load_data"]()


def test_ctrl_c_stops_the_workers_at_once_and_a_rerun_resumes(tmp_path, data):
    script = training_script(tmp_path, quiet=False)
    # A process started from a non-interactive shell ignores SIGINT; a terminal's does not.
    process = subprocess.Popen([sys.executable, str(script)], cwd=ROOT, stderr=subprocess.PIPE,
                               text=True,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        assert wait_for(lambda: len(entries(tmp_path)) >= 1, 120), "no run finished"
        workers = children(process.pid)
        assert len([w for w in workers if running(w)]) >= 2, "the workers are not running"
        finished_before = len(entries(tmp_path))
        assert finished_before < len(configs()), "everything finished before the interrupt"
        start = time.monotonic()
        process.send_signal(signal.SIGINT)
        process.wait(timeout=30)
        took = time.monotonic() - start
    finally:
        if process.poll() is None:
            process.kill()
    stderr = process.stderr.read()
    print(f"Ctrl-C to exit: {took:.2f} s; {finished_before} of {len(configs())} runs had finished")
    assert process.returncode != 0 and "KeyboardInterrupt" in stderr, stderr[-2000:]
    assert took < STOP_WITHIN, f"stopping took {took:.1f} s"
    assert wait_for(lambda: not any(running(w) for w in workers), 2), "worker processes remain"
    kept = check_cache(tmp_path, data)
    assert kept >= finished_before

    # Running it again trains only what is missing.
    runs = experiments.run_experiments(configs(), data, processes=2, cache_dir=tmp_path,
                                       quiet=True)
    assert sum(r.cached for r in runs) == kept
    assert [r.config for r in runs] == configs()
    assert check_cache(tmp_path, data) == len(configs())


@pytest.mark.parametrize("when", ["starting", "training"])
def test_terminal_ctrl_c_to_the_whole_process_group_leaves_no_worker_traceback(tmp_path, data,
                                                                              when):
    """A terminal sends SIGINT to every process of the group, workers included: they ignore it,
    also while they are still starting (importing), and the parent alone reports the interrupt."""
    script = training_script(tmp_path)
    process = subprocess.Popen([sys.executable, str(script)], cwd=ROOT, stderr=subprocess.PIPE,
                               text=True, start_new_session=True,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        if when == "starting":
            assert wait_for(lambda: len(children(process.pid)) >= 2, 60, step=0.005)
        else:
            assert wait_for(lambda: len([c for c in children(process.pid) if running(c)]) >= 2, 60)
            time.sleep(1.0)                              # the workers are training now
        workers = children(process.pid)
        start = time.monotonic()
        os.killpg(process.pid, signal.SIGINT)
        process.wait(timeout=30)
        took = time.monotonic() - start
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    stderr = process.stderr.read()
    print(f"Ctrl-C to the process group ({when}) to exit: {took:.2f} s")
    assert took < STOP_WITHIN, f"stopping took {took:.1f} s"
    assert stderr.count("Traceback") == 1 and "KeyboardInterrupt" in stderr, stderr[-3000:]
    assert wait_for(lambda: not any(running(w) for w in workers), 2), "worker processes remain"
    check_cache(tmp_path, data)


def quiet(msg) -> None:
    """An output hook for `execute_interactive` that prints nothing."""


def test_the_kernel_stop_button_interrupts_training_within_seconds(tmp_path, data):
    from jupyter_client.manager import start_new_kernel
    km, kc = start_new_kernel(kernel_name="python3", cwd=str(ROOT))
    try:
        kc.execute_interactive("import os", timeout=60, output_hook=quiet)  # the kernel is ready
        code = SETUP.format(root=str(ROOT)) + textwrap.dedent(f"""
            data = load_data()
            runs = experiments.run_experiments(CONFIGS, data, processes=2,
                                               cache_dir={str(tmp_path)!r})
            """)
        msg_id = kc.execute(code)
        assert wait_for(lambda: len(entries(tmp_path)) >= 1, 120), "no run finished"
        kernel_pid = km.provisioner.process.pid
        workers = [w for w in children(kernel_pid) if running(w)]
        assert len(workers) >= 2, "the workers are not running"
        start = time.monotonic()
        km.interrupt_kernel()                       # what the stop button does: SIGINT
        while True:
            reply = kc.get_shell_msg(timeout=30)
            if reply["parent_header"].get("msg_id") == msg_id:
                break
        took = time.monotonic() - start
        print(f"stop button to the cell's end: {took:.2f} s")
        assert reply["content"]["status"] == "error"
        assert reply["content"]["ename"] == "KeyboardInterrupt"
        assert took < STOP_WITHIN, f"stopping took {took:.1f} s"
        assert wait_for(lambda: not any(running(w) for w in workers), 2), "worker processes remain"
        check_cache(tmp_path, data)
        # The kernel is still usable, and running the cell again resumes from the cache.
        kc.execute_interactive(code, timeout=300, output_hook=quiet)
        assert check_cache(tmp_path, data) == len(configs())
    finally:
        kc.stop_channels()
        km.shutdown_kernel()


def test_a_failing_worker_is_reported_and_nothing_is_left_running(tmp_path, data):
    """A run that fails in a worker (here: its cache folder cannot be created): the error names
    the run and the cause, and every worker is ended."""
    before = set(children(os.getpid()))
    not_a_folder = tmp_path / "a-file"
    not_a_folder.write_text("")
    with pytest.raises(RuntimeError, match="(?s)a worker failed while .*(Exists|NotADirectory)"):
        experiments.run_experiments(configs()[:2], data, processes=2, cache_dir=not_a_folder,
                                    quiet=True)
    assert wait_for(lambda: not [c for c in set(children(os.getpid())) - before if running(c)], 3)


def test_workers_that_read_other_data_are_reported(tmp_path, data, monkeypatch):
    """Files that do not hold the data passed in (changed after they were written, say): the
    error names the cause, the workers end."""
    import dataclasses
    fewer = dataclasses.replace(data, X_val=data.X_val[:-1], Y_val=data.Y_val[:-1])
    write = experiments.write_data
    monkeypatch.setattr(experiments, "write_data", lambda data, folder: write(fewer, folder))
    before = set(children(os.getpid()))
    with pytest.raises(RuntimeError, match="fingerprint"):
        experiments.run_experiments(configs()[:2], data, processes=2, cache_dir=tmp_path,
                                    quiet=True)
    assert wait_for(lambda: not [c for c in set(children(os.getpid())) - before if running(c)], 3)


def test_expected_cost_starts_the_longest_runs_first():
    import helpers
    base = helpers.TrainConfig()
    plain, tanh = base, base.replace(use_improved_sigmoid=True, use_improved_weight_init=True)
    wide, deep = tanh.replace(neurons_per_layer=(128, 10)), tanh.replace(
        neurons_per_layer=(64,) * 10 + (10,))
    order = sorted([tanh, wide, plain, deep], key=experiments.expected_cost, reverse=True)
    assert order[-1] == tanh and set(order[:3]) == {plain, wide, deep}


def test_workers_die_with_their_parent(tmp_path):
    """A kernel shut down or killed while training (Ctrl-C during `make report` ends the kernel
    that way) takes its workers with it: none goes on training as an orphan."""
    script = training_script(tmp_path)
    # (stderr: the killed process's resource tracker reports the queues' semaphores as leaked)
    process = subprocess.Popen([sys.executable, str(script)], cwd=ROOT, stderr=subprocess.DEVNULL)
    try:
        assert wait_for(lambda: len([c for c in children(process.pid) if running(c)]) >= 2, 60)
        time.sleep(1.0)                              # the workers are training now
        workers = children(process.pid)
        process.kill()
        process.wait(timeout=10)
        assert wait_for(lambda: not any(running(w) for w in workers), 2), "orphaned workers"
    finally:
        if process.poll() is None:
            process.kill()


def descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (children, grandchildren, ...), from /proc."""
    parents = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat[stat.rindex(")") + 2:].split()[1])
    found, frontier = [], [pid]
    while frontier:
        parent = frontier.pop()
        kids = [p for p, pp in parents.items() if pp == parent]
        found += kids
        frontier += kids
    return found


@pytest.mark.skipif(not os.environ.get("MNIST_DIR"), reason="the notebook needs the MNIST files")
def test_ctrl_c_during_make_report_stops_the_kernel_and_its_workers(tmp_path):
    """`make report`'s notebook execution (report/execute.py, quick mode) with Ctrl-C in the
    terminal while the notebook trains: it interrupts the kernel, exits with status 130 within
    seconds, leaves the notebook as it was, no kernel or worker behind, and the cache holds only
    whole entries."""
    notebook = ROOT / f".rerun-interrupt-{os.getpid()}.ipynb"
    notebook.write_bytes((ROOT / "assignment2.ipynb").read_bytes())
    before = notebook.read_bytes()
    cache = tmp_path / "cache"
    env = dict(os.environ, A2_QUICK="1", A2_CACHE_DIR=str(cache),
               A2_FIGURE_DIR=str(tmp_path / "figures"))
    process = subprocess.Popen([sys.executable, "-m", "report.execute", str(notebook)], cwd=ROOT,
                               env=env, stderr=subprocess.PIPE, text=True,
                               start_new_session=True,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))

    def workers() -> list[int]:
        return [p for p in descendants(process.pid)
                if running(p) and b"spawn_main" in Path(f"/proc/{p}/cmdline").read_bytes()]
    try:
        assert wait_for(lambda: len(workers()) >= 2, 120, step=0.01), "no training started"
        assert wait_for(lambda: list(cache.glob("run-*.npz")), 60, step=0.01), "no run finished"
        below = descendants(process.pid)             # the kernel, its workers
        start = time.monotonic()
        os.killpg(process.pid, signal.SIGINT)       # what a terminal's Ctrl-C does
        process.wait(timeout=30)
        took = time.monotonic() - start
        stderr = process.stderr.read()
        assert wait_for(lambda: not any(running(p) for p in below), 2), "processes remain"
        assert notebook.read_bytes() == before, "the notebook was changed"
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        notebook.unlink(missing_ok=True)
    print(f"Ctrl-C during the notebook's training to exit: {took:.2f} s "
          f"({len(list(cache.glob('run-*.npz')))} runs kept)")
    assert process.returncode == 130, stderr[-3000:]
    assert "Interrupted" in stderr and "Traceback" not in stderr, stderr[-3000:]
    assert took < STOP_WITHIN, f"stopping took {took:.1f} s"
    assert not list(cache.glob(".*partial"))
    assert list(cache.glob("run-*.npz")), "the runs that finished were not kept"
    for entry in cache.glob("run-*.npz"):              # whole, loadable entries only
        import numpy as np
        with np.load(entry, allow_pickle=False) as f:
            assert "meta" in f.files and "w0" in f.files
