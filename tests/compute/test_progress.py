"""The progress bar: items and samples from worker processes, whole lines in logs."""

from __future__ import annotations

import sys
import types

import tensorlake as tl
from tensorlake.compute import progress
from tests.compute.transforms import create_schema, make_rows


def test_progress_bar_counts_items_and_samples_from_worker_processes(monkeypatch, capsys):
    monkeypatch.setattr(progress, "is_terminal", lambda stream: True)  # as in a terminal
    ds = tl.empty("mem://compute-bar", overwrite=True)
    create_schema(ds)
    report = make_rows().eval(range(60), ds, num_workers=2)
    err = capsys.readouterr().err
    assert "make_rows" in err and "60/60" in err and f"samples={report.samples}" in err
    make_rows().eval(range(60), ds, num_workers=2, progressbar=False)
    assert capsys.readouterr().err == ""


def test_progress_in_logs_is_whole_lines(monkeypatch, capsys):
    """Output that is not a terminal (pytest captures it) gets plain lines, never ``\\r``
    redraws: one per LOG_LINE_SECONDS while items finish, and a last one at the end."""
    ds = tl.empty("mem://compute-log-lines", overwrite=True)
    create_schema(ds)
    report = make_rows().eval(range(40), ds, num_workers=2)
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1 and "\r" not in lines[0]
    assert "make_rows" in lines[0] and "40/40" in lines[0]
    assert f"samples={report.samples}" in lines[0]

    monkeypatch.setattr(progress, "LOG_LINE_SECONDS", 0.0)  # a line per update
    make_rows().eval(range(40), ds, num_workers=2)
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) > 2 and lines[-1].startswith("make_rows: 100% 40/40")
    counts = [int(line.split("/40")[0].rsplit(" ", 1)[1]) for line in lines]
    assert counts == sorted(counts) and counts[0] < 40


def test_the_bar_is_a_tqdm_in_terminals_lines_in_logs_and_nothing_when_off(monkeypatch):
    assert type(progress.progress_bar(False, 10, 0, "fn")) is progress.NoBar
    assert type(progress.progress_bar(True, 10, 0, "fn")) is progress.LogLines  # captured
    assert not progress.is_terminal(None)
    monkeypatch.setitem(sys.modules, "ipykernel", types.ModuleType("ipykernel"))
    assert type(progress.progress_bar(True, 10, 0, "fn")) is progress.LogLines  # imported only
    monkeypatch.setattr(progress, "is_terminal", lambda stream: True)
    bar = progress.progress_bar(True, 10, 3, "fn")
    try:
        assert isinstance(bar, progress.tqdm) and bar.n == 3
    finally:
        bar.close()


def test_a_jupyter_kernel_gets_the_live_bar(monkeypatch):
    """A kernel is told by the running shell's config (as tqdm.auto tells it), not by
    which modules some library imported."""
    kernel = types.SimpleNamespace(config={"IPKernelApp": {}})
    fake_ipython = types.ModuleType("IPython")
    fake_ipython.get_ipython = lambda: kernel  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "IPython", fake_ipython)
    assert progress.in_notebook()
    bar = progress.progress_bar(True, 10, 0, "fn")
    try:
        assert isinstance(bar, progress.tqdm)
    finally:
        bar.close()
    kernel.config = {"TerminalIPythonApp": {}}  # IPython in a terminal: stderr decides
    assert not progress.in_notebook()
