"""Shared tools of the fuzz tests: corruptions of stored bytes, and the check every parser
of stored bytes must pass on them.

``corrupted(data)`` draws a damaged copy of valid stored bytes: bit flips, bytes
overwritten, truncation (to nothing, inside a small prefix, anywhere), bytes inserted,
deleted or appended, the whole object replaced by random bytes. ``parse_checked`` runs a
parser on them and allows exactly two outcomes: a value, or a ``FormatError`` that names
the object's key. Anything else fails the test: another exception, a parse that runs past
``TIMEOUT_S`` (a hang), or one whose peak traced allocation (``tracemalloc``, which numpy
reports its arrays to) is larger than the object justifies.

The number of examples per property is ``FUZZ_EXAMPLES`` (environment, default 150):
CI-sized; run with ``FUZZ_EXAMPLES=2000`` to search harder. ``STATS`` counts the cases
run and how they ended, for the figures in docs/reliability.md.
"""

from __future__ import annotations

import os
import signal
import tracemalloc
from collections import Counter
from collections.abc import Callable
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from tensorlake.errors import FormatError

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "150"))
TIMEOUT_S = 5.0
STATS: Counter[str] = Counter()

fuzz_settings = settings(
    max_examples=EXAMPLES,
    deadline=None,  # hangs are caught by TIMEOUT_S; a loaded CI machine is slow, not hung
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    database=None,
)


class ParseHang(Exception):
    """A parse ran past ``TIMEOUT_S``."""


def _on_alarm(signum: int, frame: Any) -> None:
    raise ParseHang(f"the parse ran past {TIMEOUT_S} s")


def budget_for(data: bytes, factor: int = 64, slack: int = 1 << 20) -> int:
    """The most a parse of ``data`` may allocate: ``factor`` times its size, plus ``slack``."""
    return factor * len(data) + slack


def parse_checked(
    parse: Callable[[bytes], Any],
    data: bytes,
    key: str | None,
    *,
    budget: int | None = None,
) -> Any:
    """``parse(data)``: its value, or the ``FormatError`` it raised (which must name ``key``;
    ``None`` for a codec, which does not know the key of the object its bytes come from).

    Any other exception propagates (the property fails); so does a hang or an allocation
    over ``budget`` bytes (default ``budget_for(data)``).
    """
    limit = budget_for(data) if budget is None else budget
    STATS["cases"] += 1
    outcome, peak = _measured(parse, data)
    if peak > limit:
        # tracemalloc counts every thread's allocations: a background thread of an
        # earlier test (a server, a writer) may have allocated meanwhile; a parse's own
        # allocation happens again on a second run, the parse being deterministic
        outcome, again = _measured(parse, data)
        peak = min(peak, again)
    assert peak <= limit, f"the parse allocated {peak} bytes for a {len(data)}-byte object"
    if isinstance(outcome, FormatError):
        STATS["format_error"] += 1
        if key is not None:
            assert key in str(outcome), f"FormatError does not name {key!r}: {outcome}"
            assert outcome.key == key, f"FormatError.key is {outcome.key!r}, expected {key!r}"
        return outcome
    value = outcome
    STATS["value"] += 1
    return value


def _measured(parse: Callable[[bytes], Any], data: bytes) -> tuple[Any, int]:
    """``parse(data)`` (or the ``FormatError`` it raised) and the peak bytes traced while
    it ran; a hang past ``TIMEOUT_S`` raises; any other exception propagates."""
    previous = signal.signal(signal.SIGALRM, _on_alarm)
    signal.setitimer(signal.ITIMER_REAL, TIMEOUT_S)
    tracemalloc.start()
    try:
        try:
            outcome: Any = parse(data)
        except FormatError as err:
            outcome = err
        return outcome, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


# -- corruptions ------------------------------------------------------------------------

PLAUSIBLE = [
    b"TLCK\x01\x00\x00\x00\xff\xff\xff\xff\x00\x00\x00\x00",  # chunk prefix, 4 GB header
    b"TLCK\x02\x00\x00\x00\x10\x00\x00\x00\x00\x00\x00\x00",
    b"\xdd\xff\xff\xff\xff",  # msgpack array of 2**32 - 1
    b"\xdf\xff\xff\xff\xff",  # msgpack map of 2**32 - 1
    b"\xc6\xff\xff\xff\xff",  # msgpack bin of 4 GB
    b"\xcf\xff\xff\xff\xff\xff\xff\xff\xff",  # msgpack uint64 max
    b"\xd3\x80\x00\x00\x00\x00\x00\x00\x00",  # msgpack int64 min
    b"\xcb\x7f\xf0\x00\x00\x00\x00\x00\x00",  # msgpack float +inf
    b"\xcb\x7f\xf8\x00\x00\x00\x00\x00\x00",  # msgpack float NaN
    b"\xd6\xff\x00\x00\x00\x00",  # msgpack timestamp
    b"\x91" * 600,  # deeply nested msgpack arrays
    b"[" * 5000,  # deeply nested JSON
    b'{"format_version": 1e999}',
    b"\xff\xd8\xff\xc0\x00\x11\x08\xff\xff\xff\xff\x03",  # JPEG SOF of 65535 x 65535
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x7f\xff\xff\xff\x7f\xff\xff\xff\x08\x02",
    b"\x00\x00\x00\x00",
    b"\xff\xff\xff\xff",
]


@st.composite
def corrupted(draw: st.DrawFn, data: bytes) -> bytes:
    """A damaged copy of ``data``; it may by chance equal ``data``."""
    n = len(data)
    kind = draw(
        st.sampled_from(
            ["flip", "overwrite", "truncate", "insert", "delete", "append", "random", "plant"]
        )
    )
    buf = bytearray(data)
    if kind == "flip" and n:
        for pos in draw(st.lists(st.integers(0, n - 1), min_size=1, max_size=8)):
            buf[pos] ^= 1 << draw(st.integers(0, 7))
    elif kind == "overwrite" and n:
        pos = draw(st.integers(0, n - 1))
        chunk = draw(st.binary(min_size=1, max_size=16) | st.sampled_from(PLAUSIBLE))
        buf[pos : pos + len(chunk)] = chunk
    elif kind == "truncate":
        # every length class: empty, inside a small prefix, around the middle, one short
        cut = draw(
            st.integers(0, min(n, 24)) | st.integers(0, max(0, n - 1)) | st.just(max(0, n - 1))
        )
        del buf[cut:]
    elif kind == "insert":
        pos = draw(st.integers(0, n))
        buf[pos:pos] = draw(st.binary(min_size=1, max_size=16) | st.sampled_from(PLAUSIBLE))
    elif kind == "delete" and n:
        pos = draw(st.integers(0, n - 1))
        del buf[pos : pos + draw(st.integers(1, 16))]
    elif kind == "append":
        buf += draw(st.binary(min_size=1, max_size=64) | st.sampled_from(PLAUSIBLE))
    elif kind == "plant":  # a plausible header of another object, or a huge length, at the start
        buf[0:0] = draw(st.sampled_from(PLAUSIBLE))
    else:
        buf = bytearray(draw(st.binary(max_size=256)))
    return bytes(buf)


def mutated_value(draw: st.DrawFn) -> Any:
    """A value to put in place of a field of a decoded record (structure-aware fuzzing):
    other types, huge and negative numbers, non-finite floats, odd containers."""
    return draw(
        st.sampled_from(
            [
                None,
                True,
                -1,
                0,
                2**31,
                2**40,
                2**63 - 1,
                -(2**63),
                float("nan"),
                float("inf"),
                -0.5,
                "",
                "x" * 300,
                b"",
                b"\xff" * 7,
                [],
                [1, "a"],
                {},
                {"a": 1},
                {1: b"x"},
            ]
        )
        | st.integers(-(2**63), 2**64 - 1)
        | st.binary(max_size=40)
        | st.text(max_size=20)
    )


@st.composite
def mutated_record(draw: st.DrawFn, record: Any, depth: int = 0) -> Any:
    """``record`` (decoded msgpack or JSON) with one field somewhere replaced, removed,
    or a new one added."""
    if isinstance(record, dict) and record and depth < 6:
        name = draw(st.sampled_from(sorted(record, key=repr)))
        action = draw(st.sampled_from(["replace", "recurse", "recurse", "remove", "add"]))
        out = dict(record)
        if action == "remove":
            del out[name]
        elif action == "add":
            out[draw(st.text(max_size=8))] = mutated_value(draw)
        elif action == "recurse":
            out[name] = draw(mutated_record(record[name], depth + 1))
        else:
            out[name] = mutated_value(draw)
        return out
    if isinstance(record, list) and record and depth < 6:
        out_list = list(record)
        i = draw(st.integers(0, len(record) - 1))
        if draw(st.booleans()):
            out_list[i] = draw(mutated_record(record[i], depth + 1))
        else:
            out_list[i] = mutated_value(draw)
        return out_list
    return mutated_value(draw)
