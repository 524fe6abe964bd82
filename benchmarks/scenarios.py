"""What is measured: scenarios, the systems' rows in each, and the targets.

A row (``Cell``) is one system (or one ceiling) in one scenario, maybe with a variant
(verify on/off for linked images, which ceiling). Every row's figure is the median of
``repeats`` fresh processes; ratios compare tensorlake's median with the others' in the
same scenario (same variant where variants match), always as tensorlake's speed over
theirs: for throughputs tensorlake/this, for times this/tensorlake.
"""

from __future__ import annotations

from dataclasses import dataclass

SYSTEMS = ("tensorlake", "deeplake3", "litdata", "ceilings")
PEERS = ("deeplake3", "litdata")  # installed into their own venvs
MODULES = {
    "tensorlake": "benchmarks.peers.tensorlake_peer",
    "deeplake3": "benchmarks.peers.deeplake3",
    "litdata": "benchmarks.peers.litdata_peer",
    "ceilings": "benchmarks.peers.ceilings",
}


@dataclass(frozen=True, slots=True)
class Cell:
    scenario: str
    system: str
    variant: str = ""
    label: str = ""  # the row's name in the table; the system's name when empty
    na: str = ""  # known in advance: the system cannot do this (no process is started)

    @property
    def key(self) -> str:
        return "/".join(p for p in (self.scenario, self.system, self.variant) if p)

    @property
    def name(self) -> str:
        return self.label or (f"{self.system} ({self.variant})" if self.variant else self.system)


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    title: str
    unit: str  # what the figure counts ("s" means lower is better)
    size: str  # which size gives its item count: images, ingest_images, s3_images, crash_images
    cells: tuple[Cell, ...]


# what a peer has no way to do, by scenario
NOT_AVAILABLE = {
    ("linked", "litdata"): "no linked tensors",
    ("boxes", "litdata"): "no column reads (a row at a time, every field)",
}
# systems whose crash recovery has a last checkpoint to read back (LitData's are per worker)
READS_CHECKPOINTS = ("tensorlake", "deeplake3")


def _systems(scenario: str, *variants: str) -> tuple[Cell, ...]:
    return tuple(
        Cell(scenario, s, v, na=NOT_AVAILABLE.get((scenario, s), ""))
        for v in (variants or ("",))
        for s in ("tensorlake", *PEERS)
    )


SCENARIOS: tuple[Scenario, ...] = (
    Scenario(
        "ingest",
        "seed COCO workflow into a local dataset: JPEG pass-through, labels, boxes, "
        "pycocotools masks; 2 workers, a checkpoint every 20%",
        "items/s",
        "ingest_images",
        (
            *_systems("ingest"),
            Cell(
                "ingest", "ceilings", "pool", "ceiling: per-item fn in Pool(2), outputs discarded"
            ),
            Cell("ingest", "ceilings", "copy", "ceiling: read + copy the JPEG files"),
        ),
    ),
    Scenario(
        "ingest_s3",
        "the same into S3 (moto server on 127.0.0.1)",
        "items/s",
        "s3_images",
        (
            *_systems("ingest_s3"),
            Cell("ingest_s3", "ceilings", "pool+put", "ceiling: per-item fn + put_object, Pool(2)"),
        ),
    ),
    Scenario(
        "linked",
        "the same with images as links (link[image]), verify on and off",
        "items/s",
        "images",
        _systems("linked", "verify", "noverify"),
    ),
    Scenario(
        "read",
        "sequential read+decode of every image, one process (tensorlake/Deep Lake: "
        "images[i:i+32].numpy(); LitData: iterate StreamingDataset)",
        "images/s",
        "images",
        (
            *_systems("read"),
            Cell("read", "ceilings", "decode1", "ceiling: PIL decode of the files, 1 process"),
            Cell("read", "ceilings", "decode2", "ceiling: PIL decode of the files, 2 processes"),
            Cell("read", "ceilings", "files", "ceiling: read the files' bytes"),
        ),
    ),
    Scenario(
        "random_rows",
        "500 random rows (decoded image, boxes, labels) from a freshly opened dataset",
        "rows/s",
        "images",
        (
            *_systems("random_rows"),
            Cell("random_rows", "ceilings", "decode1", "ceiling: PIL decode of those files"),
        ),
    ),
    Scenario(
        "boxes",
        "all boxes in one call (boxes.numpy(aslist=True))",
        "samples/s",
        "images",
        _systems("boxes"),
    ),
    Scenario(
        "loader",
        "PyTorch loader pass, 2 workers, batch 32 (images, labels, boxes decoded)",
        "images/s",
        "images",
        (
            *_systems("loader"),
            Cell("loader", "ceilings", "decode2", "ceiling: PIL decode of the files, 2 processes"),
        ),
    ),
    Scenario(
        "crash",
        "SIGKILL at ~60% of the ingest, then reopen consistent and finish (seconds)",
        "s",
        "crash_images",
        _systems("crash"),
    ),
)

BY_NAME = {s.name: s for s in SCENARIOS}


@dataclass(frozen=True, slots=True)
class Target:
    scenario: str
    text: str
    kind: str  # "ratio" (tensorlake over a row), "value" (tensorlake's median), "storage", "crash"
    other: str = ""  # for ratio: the other row's key
    threshold: float = 0.0


TARGETS: tuple[Target, ...] = (
    Target("ingest", ">= 0.85x the bare-Pool ceiling", "ratio", "ingest/ceilings/pool", 0.85),
    Target("ingest", ">= 3x Deep Lake 3.9.52", "ratio", "ingest/deeplake3", 3.0),
    Target("ingest", "storage within 10% of the JPEG bytes", "storage", threshold=1.10),
    Target("read", ">= 750 images/s in one process", "value", threshold=750.0),
    Target("boxes", ">= 100k samples/s", "value", threshold=100_000.0),
    Target("loader", ">= 2x LitData", "ratio", "loader/litdata", 2.0),
    Target("loader", ">= 0.9x the 2-process PIL ceiling", "ratio", "loader/ceilings/decode2", 0.9),
    Target("random_rows", ">= 1.1x LitData", "ratio", "random_rows/litdata", 1.1),
    Target(
        "random_rows",
        ">= 0.95x the 1-process PIL ceiling",
        "ratio",
        "random_rows/ceilings/decode1",
        0.95,
    ),
    Target(
        "crash",
        "opens with one call; only the work since the last checkpoint is redone",
        "crash",
    ),
)


def checkpoint_interval(n: int, workers: int) -> int:
    """20% of the input, a multiple of the worker count (Deep Lake 3 requires that)."""
    return max(workers, n // 5 // workers * workers)
