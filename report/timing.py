"""Where the report's time goes: named phases, recorded only when ``$A2_PROFILE`` names a file.

    with timing.phase("figures"):
        ...

appends one JSON line, ``{"phase": "figures", "seconds": 0.41, "pid": 1234}``, to that file when
the block ends (also when it raises); without ``A2_PROFILE`` it costs nothing and records nothing.
The notebook's kernel and the worker processes it starts (which inherit the variable) append to the
same file; each line is one small write, so their lines never interleave.
``benchmarks/bench_report.py`` sets it and sums the lines per phase. Phases are not nested: a
second of the report is counted in at most one phase per process.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import time
from collections.abc import Callable, Iterator


def record(name: str, seconds: float) -> None:
    """Record ``seconds`` spent in phase ``name`` when ``$A2_PROFILE`` is set."""
    path = os.environ.get("A2_PROFILE")
    if not path:
        return
    line = json.dumps({"phase": name, "seconds": seconds, "pid": os.getpid()}) + "\n"
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


@contextlib.contextmanager
def phase(name: str) -> Iterator[None]:
    """Time the block as phase ``name`` when ``$A2_PROFILE`` is set."""
    if not os.environ.get("A2_PROFILE"):
        yield
        return
    start = time.perf_counter()
    try:
        yield
    finally:
        record(name, time.perf_counter() - start)


def timed(name: str) -> Callable[[Callable], Callable]:
    """A decorator: every call of the function is timed as phase ``name``."""
    def decorate(function: Callable) -> Callable:
        @functools.wraps(function)
        def wrapper(*args, **kwargs):
            with phase(name):
                return function(*args, **kwargs)
        return wrapper
    return decorate


def read(path: str | os.PathLike) -> dict[str, float]:
    """The seconds per phase in a file written by `phase`, summed over calls and processes."""
    totals: dict[str, float] = {}
    with open(path) as lines:
        for line in lines:
            record = json.loads(line)
            totals[record["phase"]] = totals.get(record["phase"], 0.0) + record["seconds"]
    return totals
