"""The progress bar of an eval: tqdm in terminals and notebooks, whole lines in logs.

A tqdm object, even a disabled one, starts a monitor thread that outlives it, and a
process with a thread cannot fork its next eval's workers: no tqdm object is made
unless the bar is shown, and it is made only once the workers run.
"""

from __future__ import annotations

import sys
import threading
import time
from typing import Any, TypeAlias

from tqdm.auto import tqdm

__all__ = [
    "LOG_LINE_SECONDS",
    "LogLines",
    "NoBar",
    "ProgressBar",
    "SharedBar",
    "human_bytes",
    "in_notebook",
    "is_terminal",
    "progress_bar",
]

LOG_LINE_SECONDS = 30.0  # progress lines in logs (output that is not a terminal)


class NoBar:
    """The progress bar's interface, showing nothing."""

    total: int | None = None

    def update(self, n: int = 1) -> None:
        pass

    def set_postfix(self, **kwargs: Any) -> None:
        pass

    def close(self) -> None:
        pass


class LogLines(NoBar):
    """Progress as whole lines on stderr, for logs: the bar's text without redraws."""

    def __init__(
        self,
        total: int | None,
        initial: int,
        name: str,
        unit: str = "item",
        unit_scale: bool = False,
    ) -> None:
        self.total, self.n, self.initial, self.name = total, initial, initial, name
        self.unit, self.unit_scale = unit, unit_scale
        self.postfix = ""
        self.started = self.last = time.monotonic()

    def update(self, n: int = 1) -> None:
        self.n += n
        if time.monotonic() - self.last >= LOG_LINE_SECONDS:
            self._line()

    def set_postfix(self, **kwargs: Any) -> None:
        self.postfix = ", ".join(f"{k}={v}" for k, v in kwargs.items() if k != "refresh")

    def close(self) -> None:
        self._line()

    def _line(self) -> None:
        self.last = time.monotonic()
        elapsed = self.last - self.started
        rate = (self.n - self.initial) / elapsed if elapsed > 0 else None
        text = tqdm.format_meter(
            self.n,
            self.total,
            elapsed,
            prefix=self.name,
            unit=self.unit,
            unit_scale=self.unit_scale,
            rate=rate,
            postfix=self.postfix or None,
            ncols=0,
        )
        print(text, file=sys.stderr, flush=True)


ProgressBar: TypeAlias = tqdm | NoBar


def progress_bar(
    enabled: bool,
    total: int | None,
    initial: int,
    name: str,
    unit: str = "item",
    unit_scale: bool = False,
) -> ProgressBar:
    """A live bar in notebooks and terminals; in logs (where tqdm's ``\\r`` updates would
    pile up) a plain line every ``LOG_LINE_SECONDS`` and one at the end; nothing (and no
    tqdm object, see the module's docstring) when not ``enabled``. ``unit="B",
    unit_scale=True`` counts bytes (uploads, downloads)."""
    if not enabled:
        return NoBar()
    if in_notebook() or is_terminal(sys.stderr):
        return tqdm(
            total=total,
            initial=initial,
            desc=name,
            unit=unit,
            unit_scale=unit_scale,
            dynamic_ncols=True,
        )
    return LogLines(total, initial, name, unit, unit_scale)


def in_notebook() -> bool:
    """Whether this process is a Jupyter kernel: an imported ``ipykernel`` is not enough
    (jupyter's client libraries import it in plain scripts, whose output is a log)."""
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    return shell is not None and "IPKernelApp" in getattr(shell, "config", {})


def is_terminal(stream: Any) -> bool:
    """Whether ``stream`` is a terminal (False for no stream, or a closed one)."""
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # no stream, or a closed one
        return False


class SharedBar:
    """Items done, counted from any thread (workers, the process relay) onto the bar,
    which is shown only once the workers run (``show``); until then, onto ``NoBar``."""

    def __init__(self) -> None:
        self._bar: ProgressBar = NoBar()
        self._lock = threading.Lock()

    def show(self, bar: ProgressBar) -> None:
        self._bar = bar

    def update(self, n: int) -> None:
        with self._lock:
            self._bar.update(n)


def human_bytes(n: float) -> str:
    """``n`` bytes for people: 0 B, 512 B, 3.4 kB, 12.6 MB ..."""
    if n < 1000:
        return f"{n:.0f} B"
    for unit in ("kB", "MB", "GB", "TB"):
        n /= 1000
        if n < 1000 or unit == "TB":
            break
    return f"{n:.1f} {unit}"
