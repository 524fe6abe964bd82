"""A ``@tl.compute`` job that ``test_compute_crash.py`` runs as a subprocess and kills.

Usage::

    python tests/compute/crash_eval.py <url> <creds-json-or-null> <n_items> <num_workers> \
        <interval> [<delay_ms> [<die_how> <die_at>]]

It creates the dataset (``create_schema``), commits the schema, then evaluates
``crash_rows(delay=<delay_ms> / 1000)`` on ``list(range(n_items))`` with worker
processes (or the scheduler named by ``CRASH_EVAL_SCHEDULER``) and a checkpoint every
``interval`` items. The per-item delay makes the
run last long enough to be killed at a moment of the test's choosing. With
``<die_how> <die_at>`` the worker that meets item ``die_at`` dies (``DEATHS``), and
the eval's ``TransformError`` is printed as ``FAILED <json>``.

Everything the job writes is a pure function of the item numbers (``rows``), so
``expected(k)`` gives the exact content after the first ``k`` items without reading
anything the job wrote.

Markers on stdout (flushed at once), for the test to aim its kill::

    READY                    imported; the dataset is created next
    SCHEMA <commit id>       the schema is committed (no checkpoint yet)
    EVAL                     eval() is about to be called
    CHECKPOINT <p>           a checkpoint holding the first <p> items is the branch head
                             (seen by a thread polling the stored head, so it comes
                             shortly after the commit landed)
    DONE <items> <checkpoints>
    FAILED <json>            eval raised TransformError: its message and
                             samples_processed, and the dataset's state right after
"""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import sys
import threading
import time
from typing import Any

import numpy as np

import tensorlake as tl

TENSORS = ("img", "label", "boxes", "meta")
# The chunks here are tiny: have them all take the O_DIRECT path that workers use for
# chunks of 1 MiB and more, so that kills land in direct writes too.
os.environ["TENSORLAKE_DIRECT_WRITE_MIN_BYTES"] = "0"


def rows(i: int) -> list[dict[str, Any]]:
    """The rows item ``i`` becomes: none, one or two (so rows and items differ)."""
    count = (1, 1, 2, 0, 1)[i % 5]
    out = []
    for c in range(count):
        rng = np.random.default_rng(i * 4 + c)
        shape = (2 + (i * 3 + c) % 7, 1 + (i * 5 + c) % 6, 3)  # ragged
        out.append(
            {
                "img": rng.integers(0, 256, shape, dtype=np.uint8),
                # names met in an order that depends on i: workers meet them out of order
                "label": f"cls-{(i * 13 + c * 5) % 17}",
                "boxes": rng.uniform(0, 100, (1 + (i + c) % 3, 4)).astype(np.float32),
                "meta": {"item": i, "copy": c, "name": f"item-{i:04d}", "tags": ["t"] * (i % 3)},
            }
        )
    return out


def expected(k: int) -> dict[str, Any]:
    """The content (as ``content`` reads it) after the first ``k`` items."""
    values: dict[str, list[Any]] = {name: [] for name in TENSORS}
    names: list[str] = []
    for i in range(k):
        for row in rows(i):
            if row["label"] not in names:
                names.append(row["label"])
            values["img"].append((row["img"].shape, row["img"].tobytes()))
            values["label"].append([names.index(row["label"])])
            values["boxes"].append((row["boxes"].shape, row["boxes"].tobytes()))
            values["meta"].append(row["meta"])
    return {**values, "class_names": names}


def content(ds: Any) -> dict[str, Any]:
    """Every tensor's values (shapes and bytes for arrays) and the class names."""
    return {
        "img": [(a.shape, a.tobytes()) for a in ds.img.numpy(aslist=True)],
        "label": [a.tolist() for a in ds.label.numpy(aslist=True)],
        "boxes": [(a.shape, a.tobytes()) for a in ds.boxes.numpy(aslist=True)],
        "meta": list(ds.meta.data()["value"]) if len(ds.meta) else [],
        "class_names": list(ds.label.info.class_names),
    }


def create_schema(ds: Any) -> None:
    """Small chunks, so one block of items spans several of them."""
    with ds:
        ds.create_tensor("img", htype="image", sample_compression="lz4", max_chunk_size=8192)
        ds.create_tensor("label", htype="class_label", max_chunk_size=512)
        ds.create_tensor("boxes", htype="bbox", max_chunk_size=2048)
        ds.create_tensor("meta", htype="json", max_chunk_size=4096)


DEATHS = ("sigkill", "exit", "sigkill-reporting")
"""How a worker dies on item ``die_at``: SIGKILL, ``os._exit(1)``, or SIGKILL while it
is sending progress to the parent (another thread floods the progress pipe, so the kill
nearly always lands while that thread writes to it)."""


@tl.compute
def crash_rows(
    item: int, sample_out: Any, delay: float = 0.0, die_at: int = -1, how: str = "sigkill"
) -> None:
    if item == die_at:
        _die(how)
    if delay:
        time.sleep(delay)
    for row in rows(item):
        sample_out.append(row)


def _die(how: str) -> None:
    if how == "exit":
        os._exit(1)
    if how == "sigkill-reporting":
        from tensorlake.compute import process_worker

        pipe = process_worker._process["progress"]  # the workers' progress pipe to the parent

        def flood() -> None:
            while True:
                pipe.send_bytes(process_worker.REPORT.pack(process_worker.PROGRESS, 0))

        threading.Thread(target=flood, daemon=True).start()
        time.sleep(0.05)
    os.kill(os.getpid(), signal.SIGKILL)


def _watch_checkpoints(url: str, creds: dict | None, say: Any, stop: threading.Event) -> None:
    """Print ``CHECKPOINT <p>`` whenever the stored branch head is a new checkpoint."""
    from tensorlake.engine.format import records
    from tensorlake.storage import from_url

    storage = from_url(url, creds=creds, read_only=True)
    last = None
    while not stop.wait(0.03):
        try:
            head = records.read_head(storage, records.DEFAULT_BRANCH)
            if head == last:
                continue
            extra = records.read_commit(storage, head).commit.extra
        except Exception:
            continue
        last = head
        if "samples_processed" in extra:
            say(f"CHECKPOINT {extra['samples_processed']}")


def main(argv: list[str]) -> None:
    url, creds = argv[1], json.loads(argv[2])
    n, workers, interval = int(argv[3]), int(argv[4]), int(argv[5])
    delay = float(argv[6]) / 1000 if len(argv) > 6 else 0.003
    die = {"how": argv[7], "die_at": int(argv[8])} if len(argv) > 8 else {}

    def say(line: str) -> None:
        print(line, flush=True)

    say("READY")
    ds = tl.empty(url, creds=creds, overwrite=True)
    create_schema(ds)
    say(f"SCHEMA {ds.commit('schema')}")
    stop = threading.Event()
    watcher = threading.Thread(target=_watch_checkpoints, args=(url, creds, say, stop), daemon=True)
    watcher.start()
    say("EVAL")
    try:
        report = crash_rows(delay=delay, **die).eval(
            list(range(n)),
            ds,
            num_workers=workers,
            scheduler=os.environ.get("CRASH_EVAL_SCHEDULER", "processed"),
            checkpoint_interval=interval,
            progressbar=False,
        )
    except tl.TransformError as err:
        state = {
            "message": str(err),
            "samples_processed": err.samples_processed,
            "head_samples_processed": ds.commits[0].get("samples_processed", 0),
            "has_head_changes": ds.has_head_changes,
            "gc": ds.gc(),
            "live_workers": len(multiprocessing.active_children()),
        }
        say(f"FAILED {json.dumps(state)}")
    else:
        say(f"DONE {report.items} {len(report.checkpoints)}")
    stop.set()
    watcher.join()
    ds.close()


if __name__ == "__main__":
    main(sys.argv)
