"""One kind of work, run as a subprocess that ``test_crash_rounds.py`` kills with SIGKILL.

Usage::

    python tests/crash_rounds_driver.py <kind> <json arguments>

Kinds (the arguments each takes are read in its function):

- ``appends``: ``crash_writer``'s commits (appends and updates, inside ``with ds:`` or
  not, so flushed at its end or at once, then ``ds.commit``).
- ``compute``: ``crash_eval``'s ``@tl.compute`` job with process workers and checkpoints.
- ``classification``, ``coco``, ``manifest``, ``archive``: ``tl.ingest_*`` with workers
  and checkpoints (a local folder or an S3 prefix; a COCO folder; a JSON manifest of
  local files, copied; a ``.tar.gz`` of a classification folder).
- ``push``: ``tl.registry.push`` of a local dataset to the remote its environment names.

Everything written is a pure function of the arguments, so an uninterrupted run of the
same command is the reference a killed one is compared with.

``CRASH_ROUNDS_DELAY_MS`` (environment) slows every image check (the ingests) and every
object put (push) by that much, so a tiny job lasts long enough to be killed inside it.
Workers are forked (the driver starts no thread of its own), so they are slowed too.

Markers on stdout, flushed at once, for the test to aim its kill::

    READY                    imported; the work starts next
    START                    the work's first call is about to be made
    <kind's own>             appends: BATCH / UPDATING / COMMITTING / COMMITTED (see
                             crash_writer); compute: SCHEMA, EVAL; push: PUT <i> <key>
    DONE                     finished
    FAILED <message>         it raised (a worker was killed): the message
"""

from __future__ import annotations

import faulthandler
import json
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import tensorlake as tl
from tests.api import crash_writer as cw
from tests.compute import crash_eval as ce

DELAY = float(os.environ.get("CRASH_ROUNDS_DELAY_MS", "0")) / 1000
QUIET: dict[str, Any] = {"progressbar": False, "summary": False}


_SAYING = threading.Lock()


def say(line: str) -> None:
    """One marker line, whole (a push's upload threads say them at once)."""
    with _SAYING:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


def _slow_checks() -> None:
    """Every ingest's image check sleeps ``DELAY`` first (in the workers too: forked)."""
    from tensorlake.ingestion import coco, files, manifest

    for module in (files, coco, manifest):  # classification checks through files
        real = module.check_image

        def slow(data: Any, where: str, _real: Any = real) -> Any:
            time.sleep(DELAY)
            return _real(data, where)

        setattr(module, "check_image", slow)  # noqa: B010 (a module's name, replaced)


def appends(a: dict[str, Any]) -> None:
    ds = tl.empty(a["url"], creds=a["creds"], overwrite=True)
    say("CREATED")
    cw.create_schema(ds)
    for j in range(1, a["commits"] + 1):
        commit_id = cw.write_commit(ds, a["seed"], j, say)
        say(f"COMMITTED {j} {len(ds)} {commit_id}")
    ds.close()


def compute(a: dict[str, Any]) -> None:
    ds = tl.empty(a["url"], creds=a["creds"], overwrite=True)
    ce.create_schema(ds)
    say(f"SCHEMA {ds.commit('schema')}")
    say("EVAL")
    ce.crash_rows(delay=a["delay_ms"] / 1000).eval(
        list(range(a["n"])),
        ds,
        num_workers=a["workers"],
        checkpoint_interval=a["interval"],
        progressbar=False,
    )
    ds.close()


def ingest(kind: str, a: dict[str, Any], **extra: Any) -> tl.Dataset:
    """``tl.ingest_<kind>`` as the test calls it too (``extra``: resume=True ...)."""
    common = {**QUIET, "num_workers": a["workers"], "checkpoint_interval": a["interval"]}
    common.update(extra)
    if kind == "classification":
        return tl.ingest_classification(
            a["src"], a["dest"], src_creds=a["src_creds"], dest_creds=a["dest_creds"], **common
        )
    if kind == "coco":
        return tl.ingest_coco(a["images"], a["annotations"], a["dest"], **common)
    if kind == "manifest":
        return tl.ingest_manifest(a["manifest"], a["dest"], link=False, **common)
    if kind == "archive":
        return tl.ingest_archive(a["src"], a["dest"], tmp_dir=a["tmp_dir"], **common)
    raise ValueError(f"no ingest {kind!r}")


def push(a: dict[str, Any]) -> None:
    from tensorlake.registry.remote import Remote

    real = Remote.put
    count = iter(range(1 << 30))

    def put(self: Remote, key: str, data: Any) -> None:
        say(f"PUT {next(count)}")
        time.sleep(DELAY)
        real(self, key, data)

    setattr(Remote, "put", put)  # noqa: B010
    tl.registry.push(a["name"], progressbar=False)


def main(argv: list[str]) -> None:
    kind, args = argv[1], json.loads(argv[2])
    faulthandler.register(signal.SIGUSR1, all_threads=True)  # the test's view of a hang
    if DELAY:
        _slow_checks()
    say("READY")
    say("START")
    try:
        if kind == "appends":
            appends(args)
        elif kind == "compute":
            compute(args)
        elif kind == "push":
            push(args)
        else:
            ingest(kind, args).close()
    except (tl.TransformError, tl.IngestError) as err:  # a worker was killed
        say("FAILED " + " ".join(str(err).split()))
        return
    say("DONE")


if __name__ == "__main__":
    main(sys.argv)
