"""Prints the fuzz figures (``fuzzing.STATS``) at the end of a run that set FUZZ_EXAMPLES."""

from __future__ import annotations

import os

from tests.engine.format.fuzzing import STATS


def pytest_terminal_summary(terminalreporter: object) -> None:
    if os.environ.get("FUZZ_EXAMPLES") and STATS:
        terminalreporter.write_line(
            "fuzz cases: " + ", ".join(f"{k}={v}" for k, v in sorted(STATS.items()))
        )
