"""A dataset writer that ``test_crash_safety.py`` runs as a subprocess and kills with SIGKILL.

Usage::

    python tests/api/crash_writer.py <url> <creds-json-or-null> <seed> [--wait]

``--wait`` makes it wait, once imported, for a line on stdin before it starts, so
the test times its kill from the start of the writing, not of the interpreter.

Everything written is a pure function of numbers the test knows: a row's values of
its row number (``row``), a commit's batches of ``(seed, commit number)`` (``plan``)
and its row updates of the commit number alone (``updates``). So ``expected(seed, k)``
recomputes the exact state of commit ``k`` without reading anything the writer wrote.

The writer prints one marker per step (flushed at once) so the test can aim its kill::

    READY                        imported; the dataset is created next (after --wait's line)
    CREATED                      tl.empty returned (head: the empty root commit)
    BATCH <j> <b> <mode>         batch b of commit j is about to be written
    UPDATING <j>                 the row updates of commit j are about to be written
    COMMITTING <j>               ds.commit is about to be called
    COMMITTED <j> <rows> <id>    ds.commit returned commit id <id> with <rows> rows
    DONE                         all MAX_COMMITS commits written

Commit ``j`` has the message ``"commit <j>"``; the root commit has none (commit 0).
"""

from __future__ import annotations

import json
import random
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

import tensorlake as tl

MAX_COMMITS = 40
INITIAL_CLASSES = ["class-0"]
TENSORS = ("x", "img", "text", "label", "record")

# Small chunks: many are sealed and written in the background, so a kill often lands
# between a chunk and the manifest naming it.
_CHUNK_SIZES = {"x": 256, "img": 4096, "text": 512, "label": 128, "record": 1024}

_MODES = ("with-extend", "with-append", "extend", "append")
"""How a batch is written: one ``extend`` or one ``append`` per row, inside
``with ds:`` (flushed at the end) or not (each call flushed at once)."""

Say = Callable[[str], None]


def row(r: int) -> dict[str, Any]:
    """The values of row ``r`` (before any update)."""
    rng = np.random.default_rng(r)
    shape = (1 + r * 7 % 19, 1 + r * 5 % 13, 3)
    return {
        "x": r * 1_000_003 - 7,
        "img": rng.integers(0, 256, shape, dtype=np.uint8),
        "text": f"row {r}" + " é" * (r % 4),
        "label": f"class-{r % (2 + r // 8)}",  # new class names keep appearing
        "record": {"row": r, "sq": r * r, "tags": ["t"] * (r % 3), "half": r / 2},
    }


def plan(seed: int, j: int) -> list[tuple[int, str]]:
    """Commit ``j``'s batches: ``(rows, mode)`` each."""
    rng = random.Random(seed * 100_003 + j)
    return [(rng.randint(1, 12), rng.choice(_MODES)) for _ in range(rng.randint(1, 3))]


def updates(j: int, rows: int) -> list[tuple[int, dict[str, Any]]]:
    """The rows commit ``j`` rewrites once its batches are in (``rows`` of them):
    ``(row, values)`` pairs, applied in order."""
    if j % 3 == 1 or rows == 0:
        return []
    rng = np.random.default_rng(10_000 + j)
    values = {
        "x": -j,
        "img": rng.integers(0, 256, (2 + j % 5, 3 + j % 4, 3), dtype=np.uint8),
        "text": f"updated by commit {j}",
        "label": f"update-{j % 4}",
        "record": {"updated_by": j},
    }
    targets = [j * 7919 % rows] + ([j * 31 % rows] if j % 4 == 0 else [])
    return [(u, values) for u in targets]


@dataclass
class State:
    """The expected content of one commit."""

    commit: int = 0
    rows: int = 0
    values: dict[str, list[Any]] = field(default_factory=lambda: {t: [] for t in TENSORS})
    class_names: list[str] = field(default_factory=lambda: list(INITIAL_CLASSES))

    def _label(self, name: str) -> None:
        if name not in self.class_names:
            self.class_names.append(name)

    def apply(self, seed: int, j: int) -> None:
        """Advance this state by commit ``j`` (which must be ``self.commit + 1``)."""
        assert j == self.commit + 1
        for n, _ in plan(seed, j):
            for r in range(self.rows, self.rows + n):
                values = row(r)
                self._label(values["label"])
                for name in TENSORS:
                    self.values[name].append(values[name])
            self.rows += n
        for u, values in updates(j, self.rows):
            self._label(values["label"])
            for name in TENSORS:
                self.values[name][u] = values[name]
        self.commit = j


def expected(seed: int, k: int) -> State:
    """The state of commit ``k`` (0: the root commit, which has no tensors)."""
    state = State()
    for j in range(1, k + 1):
        state.apply(seed, j)
    return state


def create_schema(ds: Any) -> None:
    with ds:
        ds.create_tensor("x", dtype="int64", max_chunk_size=_CHUNK_SIZES["x"])
        ds.create_tensor(
            "img", htype="image", sample_compression="lz4", max_chunk_size=_CHUNK_SIZES["img"]
        )
        ds.create_tensor("text", htype="text", max_chunk_size=_CHUNK_SIZES["text"])
        ds.create_tensor(
            "label",
            htype="class_label",
            class_names=list(INITIAL_CLASSES),
            max_chunk_size=_CHUNK_SIZES["label"],
        )
        ds.create_tensor(
            "record",
            htype="json",
            chunk_compression="lz4",
            max_chunk_size=_CHUNK_SIZES["record"],
        )


def write_commit(ds: Any, seed: int, j: int, say: Say = lambda line: None) -> str:
    """Write commit ``j`` onto a dataset at commit ``j - 1``; return its id."""
    start = len(ds)
    for b, (n, mode) in enumerate(plan(seed, j)):
        say(f"BATCH {j} {b} {mode}")
        rows = [row(r) for r in range(start, start + n)]
        columns = {name: [v[name] for v in rows] for name in TENSORS}
        if mode == "with-extend":
            with ds:
                ds.extend(columns)
        elif mode == "with-append":
            with ds:
                for values in rows:
                    ds.append(values)
        elif mode == "extend":
            ds.extend(columns)
        else:
            for values in rows:
                ds.append(values)
        start += n
    say(f"UPDATING {j}")
    changes = updates(j, start)
    if j % 2:
        _update(ds, changes)
    else:
        with ds:
            _update(ds, changes)
    say(f"COMMITTING {j}")
    return ds.commit(f"commit {j}")


def _update(ds: Any, changes: list[tuple[int, dict[str, Any]]]) -> None:
    for u, values in changes:
        for name in TENSORS:
            ds[name][u] = values[name]


def main(argv: list[str]) -> None:
    url, creds, seed = argv[1], json.loads(argv[2]), int(argv[3])

    def say(line: str) -> None:
        print(line, flush=True)

    say("READY")
    if "--wait" in argv[4:]:
        sys.stdin.readline()
    ds = tl.empty(url, creds=creds, overwrite=True)
    say("CREATED")
    create_schema(ds)
    for j in range(1, MAX_COMMITS + 1):
        commit_id = write_commit(ds, seed, j, say)
        say(f"COMMITTED {j} {len(ds)} {commit_id}")
    ds.close()
    say("DONE")


if __name__ == "__main__":
    main(sys.argv)
