"""Plumbing for the browser tests (tests/test_browser.py): what the machine lacks, a quiet
offline JupyterLab server on a copy of the notebook, and Chromium driven by Playwright.

Nothing here downloads anything: Playwright drives Debian's /usr/bin/chromium (never
``playwright install``), and the server neither fetches news nor checks for updates nor lists
extensions from PyPI.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
T = TypeVar("T")

# ================================================================================================
# What this machine lacks
# ================================================================================================

def missing(*modules: str) -> str:
    """What this machine lacks for the browser tests (and the extra Python ``modules``, if any), as
    install instructions ('' if nothing)."""
    needs = []
    for module in modules:
        try:
            __import__(module)
        except ImportError:
            needs.append(f"the pip package {module.replace('_', '-')}")
    if not CHROMIUM.exists():
        needs.append("Debian's Chromium at /usr/bin/chromium (apt-get install chromium)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        needs.append("the Python package playwright in .venv (.venv/bin/pip install playwright; "
                     "never `playwright install`, which downloads a browser of its own)")
    if not os.environ.get("MNIST_DIR"):
        needs.append("MNIST_DIR set to the folder holding the four MNIST files")
    return "; ".join(needs)


def require_browser(*modules: str) -> None:
    """Skip the calling test (fail it where A2_REQUIRE_BROWSER=1, as in CI) if `missing` names
    anything."""
    import pytest
    lacking = missing(*modules)
    if lacking:
        if os.environ.get("A2_REQUIRE_BROWSER") == "1":
            raise RuntimeError(f"the browser tests are required here but need {lacking}")
        pytest.skip(f"the browser tests need {lacking}")


# ================================================================================================
# Waiting
# ================================================================================================

def wait_until(condition: Callable[[], T], seconds: float, what: str, step: float = 0.1) -> T:
    """The first truthy value of ``condition()``, polled every ``step`` s; AssertionError naming
    ``what`` after ``seconds``."""
    deadline = time.monotonic() + seconds
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {seconds:.0f} s waiting for {what}")
        time.sleep(step)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ================================================================================================
# JupyterLab on a copy of the notebook
# ================================================================================================

@dataclass
class Lab:
    """A running JupyterLab server: where it answers, its token, the notebook copy it serves,
    its folder of settings, logs and runtime files."""
    base: str
    token: str
    notebook: str
    folder: Path

    def url(self, path: str) -> str:
        return f"{self.base}{path}?token={self.token}"

    def notebook_url(self) -> str:
        return self.url(f"/lab/tree/{self.notebook}")

    def answers(self) -> bool:
        try:
            with urllib.request.urlopen(self.url("/api/status"), timeout=2) as reply:
                return reply.status == 200
        except OSError:
            return False

    def log(self) -> str:
        return (self.folder / "server.log").read_text(errors="replace")[-5000:]


def quiet_settings(folder: Path) -> Path:
    """A user-settings folder where JupyterLab neither fetches news nor checks for updates."""
    settings = folder / "settings"
    notes = settings / "@jupyterlab" / "apputils-extension"
    notes.mkdir(parents=True)
    (notes / "notification.jupyterlab-settings").write_text(
        json.dumps({"fetchNews": "false", "checkForUpdates": False}))
    return settings


def lab_command(port: int, token: str, folder: Path) -> list[str]:
    """The server's command line: loopback only, our token, the project as root, no browser, no
    xsrf check (Playwright's page is the only client), nothing fetched from the internet."""
    command = [sys.executable, "-m", "jupyter", "lab", "--no-browser",
               "--ServerApp.open_browser=False", "--ServerApp.ip=127.0.0.1",
               f"--ServerApp.port={port}", "--ServerApp.port_retries=0",
               f"--ServerApp.token={token}", f"--ServerApp.root_dir={ROOT}",
               "--ServerApp.disable_check_xsrf=True",
               "--LabApp.news_url=None",
               "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
               "--LabApp.extension_manager=readonly",
               f"--LabApp.user_settings_dir={quiet_settings(folder)}",
               f"--LabApp.workspaces_dir={folder / 'workspaces'}"]
    if os.geteuid() == 0:
        command.append("--allow-root")
    return command


def lab_environment(folder: Path) -> dict[str, str]:
    """Quick mode, cache and figures in ``folder``, Jupyter's own files there too (its data
    folder holds the notebook signatures that `jupyter trust` writes), and the virtualenv first
    on PATH (its Python runs the kernel, as with `make lab`)."""
    return dict(os.environ, A2_QUICK="1", A2_CACHE_DIR=str(folder / "cache"),
                A2_FIGURE_DIR=str(folder / "figures"),
                JUPYTER_CONFIG_DIR=str(folder / "config"),
                JUPYTER_DATA_DIR=str(folder / "data"),
                JUPYTER_RUNTIME_DIR=str(folder / "runtime"),
                IPYTHONDIR=str(folder / "ipython"),
                PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
                PYTHONUNBUFFERED="1")


def kernel_processes(folder: Path) -> list:
    """The kernels this server started: processes whose command line names a connection file
    in the server's runtime folder."""
    import psutil
    runtime = str(folder / "runtime")
    found = []
    for proc in psutil.process_iter(["pid", "cmdline"]):
        if any(runtime in part for part in (proc.info["cmdline"] or [])):
            found.append(proc)
    return found


def stop(server: subprocess.Popen, lab: Lab) -> None:
    """Shut the server and its kernels down (its own API first, then signals), and end any
    kernel of ours that outlived it, by its pid."""
    import psutil
    kernels = kernel_processes(lab.folder)
    try:
        request = urllib.request.Request(lab.url("/api/shutdown"), method="POST")
        urllib.request.urlopen(request, timeout=5).close()
        server.wait(timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        pass
    for sig, wait in ((signal.SIGTERM, 10), (signal.SIGKILL, 5)):
        if server.poll() is not None:
            break
        os.killpg(server.pid, sig)          # its own session: the server and what it spawned
        try:
            server.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            pass
    for proc in kernels + kernel_processes(lab.folder):
        try:
            proc.kill()
            proc.wait(timeout=5)
        except psutil.Error:
            pass


def trust(notebook: Path, folder: Path) -> None:
    """Sign ``notebook`` with `jupyter trust` in the Jupyter data folder of a server started on
    ``folder`` (so that it, and only it, trusts the notebook's outputs)."""
    result = subprocess.run([sys.executable, "-m", "jupyter", "trust", str(notebook)],
                            env=lab_environment(folder), capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, f"jupyter trust failed:\n{result.stdout}{result.stderr}"


@contextmanager
def jupyter_lab(folder: Path, seconds: float = 90, notebook: Path = ROOT / "assignment2.ipynb",
                trusted: bool = False, kernels: bool = True) -> Iterator[Lab]:
    """JupyterLab serving a copy of ``notebook`` (default assignment2.ipynb; in the project
    folder, so that the notebook finds helpers.py; the original is never opened), removed
    afterwards. ``trusted``: the copy is signed with `jupyter trust` first. ``kernels=False``:
    the server offers no kernel at all (none can start: the page shows the saved outputs)."""
    # .gitignore'd; not hidden (Jupyter refuses hidden files by default)
    name = f"browser-test-{secrets.token_hex(4)}.ipynb"
    port, token = free_port(), secrets.token_hex(16)
    lab = Lab(f"http://127.0.0.1:{port}", token, name, folder)
    command = lab_command(port, token, folder)
    if not kernels:
        command.append("--KernelSpecManager.allowed_kernelspecs=no-kernel-here")
    shutil.copy(notebook, ROOT / name)
    try:
        if trusted:
            trust(ROOT / name, folder)
        with open(folder / "server.log", "w") as log:
            server = subprocess.Popen(command, cwd=ROOT,
                                      env=lab_environment(folder), stdin=subprocess.DEVNULL,
                                      stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    except BaseException:
        (ROOT / name).unlink(missing_ok=True)
        raise
    try:
        wait_until(lambda: lab.answers() or server.poll() is not None, seconds,
                   "JupyterLab to answer")
        assert server.poll() is None, f"JupyterLab exited:\n{lab.log()}"
        yield lab
    finally:
        try:
            stop(server, lab)
        finally:
            (ROOT / name).unlink(missing_ok=True)
            for checkpoint in (ROOT / ".ipynb_checkpoints").glob(f"{Path(name).stem}-*"):
                checkpoint.unlink(missing_ok=True)


# ================================================================================================
# The report with the static explorer: a quick-mode run of a copy of the notebook
# ================================================================================================

#: The explorer cell that gives the live explorer the sweep, so that the saved notebook carries the
#: static explorer (the notebook's own cell is used instead once it passes ``sweep=``).
EXPLORER_CELL = """\
explorer = HiddenUnitExplorer(data, runs["3c"][0], widths=(8, 16, 32, 64, 128, 256),
                              depths=(1, 2, 3, 4), sweep=sweep_runs)
display(explorer)"""


def with_static_explorer(nb):
    """``nb`` (an nbformat notebook, changed in place and returned) with its explorer cell (the
    code cell that displays a HiddenUnitExplorer) replaced by `EXPLORER_CELL`, unless it already
    passes ``sweep=``. Raises AssertionError if there is no explorer cell."""
    cells = [c for c in nb.cells if c.cell_type == "code" and "HiddenUnitExplorer(" in c.source
             and "import" not in c.source]
    assert len(cells) == 1, f"expected one explorer cell in the notebook, found {len(cells)}"
    if "sweep=" not in cells[0].source:
        cells[0].source = EXPLORER_CELL
    return nb


def quick_static_report(folder: Path, seconds: float = 600) -> Path:
    """assignment2.ipynb with the static explorer (`with_static_explorer`) run top to bottom in
    quick mode, cache and figures in ``folder``, and saved as `make report` saves it (no widget
    views): ``folder/assignment2.ipynb``. Built once per folder: a second call returns it."""
    import nbformat
    from nbclient import NotebookClient
    from report.execute import static_widgets
    path = folder / "assignment2.ipynb"
    if path.exists():
        return path
    nb = with_static_explorer(nbformat.read(ROOT / "assignment2.ipynb", as_version=4))
    env = dict(os.environ, A2_QUICK="1", A2_CACHE_DIR=str(folder / "cache"),
               A2_FIGURE_DIR=str(folder / "figures"))
    NotebookClient(nb, timeout=seconds, kernel_name="python3", record_timing=False,
                   store_widget_state=False, extra_arguments=["--IPKernelApp.log_level=ERROR"],
                   resources={"metadata": {"path": str(ROOT)}}).execute(env=env)
    static_widgets(nb)
    nbformat.write(nb, folder / "partial.ipynb")
    (folder / "partial.ipynb").rename(path)       # whole or not at all
    return path


def export_html(notebook: Path) -> Path:
    """``notebook`` exported as `make html` does (export/nbconvert_config.py, --to html), next
    to it; returns the HTML's path. AssertionError with nbconvert's messages if it fails."""
    result = subprocess.run([sys.executable, "-m", "jupyter", "nbconvert", "--config",
                             str(ROOT / "export" / "nbconvert_config.py"), "--to", "html",
                             str(notebook)], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, f"the HTML export failed:\n{result.stderr[-3000:]}"
    return notebook.with_suffix(".html")


# ================================================================================================
# One quick run per test session, shared by the test modules that read the exported report
# ================================================================================================

_SHARED_QUICK_REPORT: dict[str, Path] = {}


def shared_quick_report(tmp_path_factory) -> Path:
    """`quick_static_report` run once per pytest session (in a folder of ``tmp_path_factory``)
    and shared by every test module that asks for it: the quick run takes half a minute. Skips the
    calling test where MNIST_DIR is not set."""
    if not os.environ.get("MNIST_DIR"):
        import pytest
        pytest.skip("the quick run needs MNIST_DIR set to the folder with the four MNIST files")
    if "path" not in _SHARED_QUICK_REPORT:
        _SHARED_QUICK_REPORT["path"] = quick_static_report(tmp_path_factory.mktemp("quick-report"))
    return _SHARED_QUICK_REPORT["path"]


def undescribed_figures(notebook: Path) -> int:
    """How many image outputs of ``notebook`` the HTML export shows as an <img> without a
    description: a PNG or JPEG output (not one whose HTML form wins, like the explorer's, nor one
    flagged ``remove_output_in_html``) whose metadata has no ``alt`` for its image."""
    import nbformat
    count = 0
    for cell in nbformat.read(notebook, as_version=4).cells:
        for output in cell.get("outputs", []):
            data, metadata = output.get("data", {}), output.get("metadata", {})
            images = [m for m in ("image/png", "image/jpeg") if m in data]
            if not images or "text/html" in data or metadata.get("remove_output_in_html"):
                continue
            if not (metadata.get(images[0], {}).get("alt") or metadata.get("alt")):
                count += 1
    return count


# ================================================================================================
# Chromium with the network cut
# ================================================================================================

class OfflinePage:
    """A new page of ``browser`` (a Playwright Browser) that may load only URLs starting with one
    of ``allowed``: every other request is aborted and remembered in ``aborted``. Console errors
    and uncaught exceptions are recorded in ``errors``."""

    def __init__(self, browser, allowed: tuple[str, ...], width: int = 1280, height: int = 1000):
        self.allowed = allowed
        self.context = browser.new_context(viewport={"width": width, "height": height})
        self.page = self.context.new_page()
        self.page.set_default_timeout(30_000)
        self.aborted, self.errors, self.requests = [], [], []
        self.page.route("**/*", self._route)
        self.page.on("request", lambda request: self.requests.append(request.url))
        self.page.on("console", lambda m: m.type == "error" and self.errors.append(
            f"{m.text} (at {m.location.get('url', '?')})"))
        self.page.on("pageerror", lambda e: self.errors.append(f"uncaught: {e}"))

    def _route(self, route) -> None:
        url = route.request.url
        if url.startswith(self.allowed):
            route.continue_()
        else:
            self.aborted.append(url)
            route.abort()

    def unexpected_errors(self) -> list[str]:
        """Console errors other than the failed loads of the requests this page aborted."""
        return [e for e in self.errors if not (
            "net::ERR_FAILED" in e and any(url in e for url in self.aborted))]

    def close(self) -> None:
        self.context.close()


@contextmanager
def chromium() -> Iterator:
    """Debian's Chromium, headless, driven by Playwright (never a browser Playwright downloads)."""
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS,
                                    timeout=60_000)
        try:
            yield browser
        finally:
            browser.close()
