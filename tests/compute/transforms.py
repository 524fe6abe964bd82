"""Transforms, a schema and a reader the compute tests share.

A module of its own (not a test module) so that worker processes started by a
forkserver import the transforms by name, as they would a user's.
"""

from __future__ import annotations

import os
import signal
import time

import numpy as np

import tensorlake as tl

__all__ = [
    "content",
    "create_schema",
    "die_once",
    "double_rows",
    "fail_on",
    "flip_rows",
    "link_rows",
    "make_rows",
    "running_at_once",
    "skip_everything",
]


def create_schema(ds) -> None:
    with ds:
        ds.create_tensor("x", dtype="int64")
        ds.create_tensor("img", htype="image", sample_compression=None)
        ds.create_tensor("label", htype="class_label")
        ds.create_tensor("boxes", htype="bbox")
        ds.create_tensor("meta", htype="json")


@tl.compute
def make_rows(i, sample_out, copies=1):
    """0..2 rows per item, ragged shapes, labels met in an order that depends on i."""
    for c in range((i + copies) % 3):
        rng = np.random.default_rng(i * 10 + c)
        sample_out.append(
            {
                "x": np.arange(i % 4 + 1) + i,
                "img": rng.integers(0, 255, (4 + i % 3, 5, 3), dtype=np.uint8),
                "label": [f"class-{(i * 7 + c) % 11}"],
                "boxes": rng.uniform(0, 50, (c + 1, 4)).astype(np.float32),
                "meta": {"i": int(i), "c": c},
            }
        )


def content(ds) -> dict:
    return {
        "x": [a.tolist() for a in ds.x.numpy(aslist=True)],
        "img": [a.tobytes() for a in ds.img.numpy(aslist=True)],
        "label": [a.tolist() for a in ds.label.numpy(aslist=True)],
        "names": list(ds.label.info.class_names),
        "boxes": [a.tobytes() for a in ds.boxes.numpy(aslist=True)],
        "meta": [m for m in ds.meta.data()["value"]] if len(ds.meta) else [],
    }


@tl.compute
def fail_on(i, sample_out, bad):
    if i == bad:
        raise ValueError(f"item {i} is broken")
    sample_out.x.append(i)


@tl.compute
def double_rows(sample_in, sample_out):
    """A dataset row read as Deep Lake reads one, appended twice."""
    for _ in range(2):
        sample_out.append({"images": sample_in.images.numpy(), "labels": sample_in.labels.numpy()})


@tl.compute
def flip_rows(sample_in, sample_out):
    """An earlier stage's sample read both ways: attribute (Deep Lake) and key."""
    sample_out.append({"images": sample_in.images.numpy() * 2 + 1, "labels": sample_in["labels"]})


@tl.compute
def skip_everything(i, sample_out):
    raise ValueError(f"item {i} is bad")


@tl.compute
def die_once(i, sample_out, marker, at):
    """``make_rows``, but the worker process that first meets item ``at`` is killed
    (``marker``, a file created exclusively, makes it happen once across retries)."""
    if i == at:
        try:
            os.close(os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        except FileExistsError:
            pass
        else:
            os.kill(os.getpid(), signal.SIGKILL)
    make_rows.__wrapped__(i, sample_out)


@tl.compute
def running_at_once(i, sample_out, folder):
    """Appends how many items were being transformed at once (in any process) as this
    one ran: each leaves a file in ``folder`` while it runs."""
    mine = os.path.join(folder, f"{os.getpid()}-{i}")
    open(mine, "w").close()
    try:
        most = 0
        for _ in range(5):
            most = max(most, len(os.listdir(folder)))
            time.sleep(0.004)
        sample_out.x.append(most)
    finally:
        os.remove(mine)


@tl.compute
def link_rows(url, sample_out, creds_key):
    """One linked image per item, fetched and checked by the worker (``verify=True``)."""
    sample_out.images.append(tl.link(url, creds_key=creds_key))
