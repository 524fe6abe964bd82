"""``ingest_files``: any folder of files as a dataset, one row per file, losing nothing.

Tensors:

- ``path`` (text): the file's path relative to the folder, ``/``-separated;
- ``data`` (generic uint8, one dimension): the file's bytes exactly (``bytes(row)``
  gives them back), whatever the file is;
- ``images`` (image), only when some file named ``.jpg``/``.jpeg``/``.png`` is a JPEG or
  PNG by its content (found without reading every file): each row the decoded image
  when the file is a readable JPEG or PNG (by content, whatever its name), else an empty
  ``(0, 0, 3)`` row.

Read ``path`` as ``ds["path"]``: ``ds.path`` is the dataset's own location.

Why ``images`` holds decoded arrays for every row: the rows of all tensors line up (row
``i`` of ``images`` is the file of row ``i`` of ``path``), and the engine refuses an
empty row in a JPEG- or PNG-compressed image tensor, so the tensor has no
``sample_compression`` (an empty ``(0, 0, 3)`` array is a valid uncompressed image) and
its chunks are lz4-compressed. An images tensor of only the image files would not line
up with ``path`` and ``data``. The exact image bytes are in ``data`` in any case.

Every file is ingested, hidden ones too (``.gitignore``, ``__MACOSX/``): nothing of the
source is lost. Rows follow the sorted paths; a file already in ``dest`` (by ``path``)
is skipped, so ``resume=True`` after a crash goes on from the last checkpoint.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np

from tensorlake.api.dataset import Dataset, core_of
from tensorlake.compression import detect_image_format
from tensorlake.compute import compute
from tensorlake.engine.htypes.sample import Sample
from tensorlake.errors import IngestError, SampleError
from tensorlake.ingestion.files import IMAGE_EXTENSIONS, FileSource, check_image
from tensorlake.ingestion.run import (
    IngestReport,
    held,
    open_dest,
    require_tensors,
    run_transform,
)

__all__ = ["DATA_TENSOR", "IMAGES_TENSOR", "PATH_TENSOR", "ingest_files"]

PATH_TENSOR = "path"
DATA_TENSOR = "data"
IMAGES_TENSOR = "images"

BATCH = 32  # files per transform item (rows are appended a batch at a time)
_EMPTY_IMAGE = np.zeros((0, 0, 3), dtype=np.uint8)
_EMPTY_IMAGE.flags.writeable = False


@dataclass(frozen=True, slots=True)
class _Plan:
    source: FileSource
    images: bool  # whether the dataset has an images tensor


@compute
def file_rows(batch: list[str], sample_out: Any, plan: _Plan) -> None:
    """A batch of files -> their rows: path, bytes and, with an images tensor, the image."""
    rows: dict[str, list[Any]] = {PATH_TENSOR: [], DATA_TENSOR: []}
    if plan.images:
        rows[IMAGES_TENSOR] = []
    for key in batch:
        data = plan.source.read(key)
        rows[PATH_TENSOR].append(key)
        rows[DATA_TENSOR].append(np.frombuffer(data, dtype=np.uint8))
        if plan.images:
            rows[IMAGES_TENSOR].append(_image(data, plan.source.record(key)))
    sample_out.extend(rows)


def _image(data: bytes, where: str) -> Any:
    """The image to store for a file: decoded when it is a readable JPEG or PNG, else
    empty (a corrupt image is kept whole in ``data``)."""
    if detect_image_format(data) is None:
        return _EMPTY_IMAGE
    try:
        check_image(data, where)
        return Sample(data=data).array
    except (SampleError, OSError, ValueError):
        return _EMPTY_IMAGE


def ingest_files(
    src: str | os.PathLike[str],
    dest: str | os.PathLike[str] | Dataset,
    src_creds: dict[str, Any] | None = None,
    dest_creds: dict[str, Any] | None = None,
    num_workers: int = 0,
    checkpoint_interval: int = 0,
    resume: bool = False,
    ignore_errors: bool = False,
    progressbar: bool = True,
    summary: bool = True,
    overwrite: bool = False,
    source_name: str | None = None,
) -> Dataset:
    """Ingest every file of a folder (local or ``s3://bucket/prefix/``): one row per file
    with its relative ``path``, its exact bytes (``data``) and, when the folder has
    images, the decoded ``images`` (empty rows for the other files).

    ``num_workers``, ``checkpoint_interval`` (in files, rounded up to batches of 32),
    ``ignore_errors``, ``progressbar`` and ``resume`` are those of every ingest.

    Example::

        ds = tl.ingest_files("./docs-and-pictures", "./files-ds")
        bytes(ds.data[0].numpy()), ds.path[0].numpy()
    """
    source = FileSource(src, src_creds, source_name)
    report = IngestReport(source.name)
    keys = source.list()
    report.found = len(keys)
    if not keys:
        raise IngestError(f"No files in {source.name}.")
    ds, created = open_dest(dest, dest_creds, overwrite, resume)
    if created:
        with_images = any(_looks_like_image(source, k) for k in keys)
        with ds:
            # ds.create_tensor refuses "path" (ds.path is the dataset's location), as Deep
            # Lake does; these datasets have had it from the start, read as ds["path"]
            core_of(ds).create_tensor(PATH_TENSOR, htype="text")
            ds.create_tensor(DATA_TENSOR, htype="generic", dtype="uint8")
            if with_images:
                ds.create_tensor(
                    IMAGES_TENSOR, htype="image", sample_compression=None, chunk_compression="lz4"
                )
    else:
        require_tensors(ds, (PATH_TENSOR, DATA_TENSOR), "ingest_files")
    with_images = IMAGES_TENSOR in ds.tensors
    recorded = held(ds, PATH_TENSOR)
    todo = [k for k in keys if k not in recorded]
    report.already = len(keys) - len(todo)
    run_transform(
        file_rows(plan=_Plan(source, with_images)),
        todo,
        ds,
        created,
        report,
        batch=BATCH,
        num_workers=num_workers,
        checkpoint_interval=checkpoint_interval,
        ignore_errors=ignore_errors,
        progressbar=progressbar,
        find_failed=(lambda: _missing(ds, todo)) if ignore_errors else None,
    )
    if summary:
        print(report)
        ds.summary()
    return ds


def _looks_like_image(source: FileSource, key: str) -> bool:
    if os.path.splitext(key)[1].lower() not in IMAGE_EXTENSIONS:
        return False  # the extension decides which files are read here, content the rows
    return detect_image_format(source.read_head(key, 16)) is not None


def _missing(ds: Dataset, todo: list[str]) -> list[str]:
    recorded = held(ds, PATH_TENSOR)
    return [k for k in todo if k not in recorded]
