"""How a peer module talks to the harness (standard library only).

    python -m benchmarks.peers.<module> '{"scenario": "read", ...}'

The module prints ``BENCH-START`` and ``BENCH-END`` around what is measured (the
harness samples CPU and memory in between) and finally one ``BENCH-RESULT {json}``
line: ``{"value": ..., "unit": ...}`` plus extras, or ``{"status": "n/a", "reason": ...}``
when the system cannot do it, or ``{"status": "failed", "reason": ...}``.
"""

from __future__ import annotations

import json
import sys
import time
import traceback
from collections.abc import Callable

START, END, RESULT = "BENCH-START", "BENCH-END", "BENCH-RESULT "


class NotAvailable(Exception):
    """The system has no way to do this scenario (reported as n/a, with the reason)."""


class Skipped(Exception):
    """The scenario does not apply in this environment (e.g. no torch)."""


class Window:
    """``with Window() as w: ...`` marks the measured part; ``w.seconds`` after."""

    seconds: float = 0.0

    def __enter__(self) -> Window:
        print(START, flush=True)
        self._t = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self._t
        print(END, flush=True)


def main(handlers: dict[str, Callable[[dict], dict]]) -> None:
    args = json.loads(sys.argv[1])
    scenario = args["scenario"]
    try:
        if scenario not in handlers:
            raise NotAvailable(f"no {scenario!r} scenario for this system")
        result = handlers[scenario](args)
    except NotAvailable as err:
        result = {"status": "n/a", "reason": str(err)}
    except Skipped as err:
        result = {"status": "skipped", "reason": str(err)}
    except Exception as err:
        traceback.print_exc()
        result = {"status": "failed", "reason": f"{type(err).__name__}: {err}"[:500]}
    print(RESULT + json.dumps(result), flush=True)
