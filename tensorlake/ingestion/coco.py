"""``ingest_coco``: COCO images and annotation files -> one row per image.

The parent reads and checks the annotation files (every inconsistency is an
``IngestError`` before anything is written), lists the images directory once and
cuts the work into items, one per image in image-id order, each carrying its own
annotations; workers read the image (pass-through bytes or a link) and build the row.

Masks are stored in COCO's run-length form (``binary_mask`` with
``sample_compression="coco_rle"``, ``compression/coco_rle.py``): pycocotools makes
that code from the polygons without a dense mask, and reading a row decodes it to
exactly the bool (H, W, N) array ``COCO.annToMask`` gives, object by object. Polygon
points outside the image are clipped, as pycocotools clips them (the report notes how
many polygons reach outside); polygons of fewer than three points cover no pixel and
are dropped (pycocotools fails on some of them).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from tensorlake.api.dataset import Dataset
from tensorlake.api.factory import delete
from tensorlake.compression.coco_rle import COCO_RLE, RleMasks, check_rle, counts_from_runs, rle_row
from tensorlake.compute import compute
from tensorlake.engine.htypes.sample import Sample
from tensorlake.engine.links.sample import link as make_link
from tensorlake.errors import (
    FormatError,
    IngestError,
    SampleError,
)
from tensorlake.ingestion.coco_annotations import (
    NOT_STORED,
    CocoImage,
    MergedAnnotations,
    read_annotation_file,
    some_ids,
)
from tensorlake.ingestion.files import (
    IMAGE_EXTENSIONS,
    PREFETCH,
    FileSource,
    check_image,
    is_hidden,
)
from tensorlake.ingestion.run import IngestReport, open_dest, run_transform

__all__ = ["COCO_KEYS", "DEFAULT_CREDS_KEY", "ingest_coco"]

COCO_KEYS = {
    "images": "images",
    "category_id": "categories",
    "bbox": "boxes",
    "segmentation": "masks",
    "area": "areas",
    "iscrowd": "iscrowd",
    "image_id": "image_id",
    "keypoints": "keypoints",
}
"""COCO key -> the tensor it becomes. ``key_to_tensor_mapping`` and ``ignore_keys``
name a tensor by either (``"bbox"`` or ``"boxes"``)."""
_COCO_KEY = {tensor: key for key, tensor in COCO_KEYS.items()}

DEFAULT_CREDS_KEY = "source"
"""The creds key of links to an S3 images_directory read with src_creds (as for
``ingest_classification``), unless ``image_creds_key`` names another."""


@dataclass(frozen=True, slots=True)
class _Plan:
    """What every row shares: the tensor each COCO key goes to (absent: not stored)."""

    tensors: dict[str, str]
    source: FileSource
    link: bool
    creds_key: str | None
    keypoints: int  # K
    keypoints_dtype: str


def ingest_coco(
    images_directory: str | os.PathLike[str],
    annotation_files: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    dest: str | os.PathLike[str] | Dataset,
    key_to_tensor_mapping: dict[str, str] | None = None,
    ignore_keys: Sequence[str] | None = None,
    image_params: dict[str, Any] | None = None,
    src_creds: dict[str, Any] | None = None,
    dest_creds: dict[str, Any] | None = None,
    image_creds_key: str | None = None,
    link: bool = False,
    num_workers: int = 0,
    checkpoint_interval: int = 0,
    resume: bool = False,
    ignore_errors: bool = False,
    progressbar: bool = True,
    summary: bool = True,
    overwrite: bool = False,
    source_name: str | None = None,
) -> Dataset:
    """Ingest COCO images and annotations: one row per image, in image-id order.

    ``images_directory`` is a local folder or an ``s3://`` prefix (``src_creds``);
    ``annotation_files`` one COCO JSON file or a list of them (``instances``,
    ``person_keypoints`` ...: a local path, ``s3://`` or ``http(s)://`` URL), merged by
    image id and annotation id. Tensors: ``images`` (the files' bytes unchanged, or
    ``link[image]`` rows with ``link=True``), ``categories`` (class_label, COCO names in
    category-id order), ``boxes`` (bbox, pixel LTWH), ``masks`` (binary_mask (H, W, N),
    stored as COCO RLE), ``areas``, ``iscrowd``, ``image_id`` and, when the files have
    them, ``keypoints`` (keypoints_coco (3K, N)). ``key_to_tensor_mapping`` renames
    tensors, ``ignore_keys`` leaves some out, ``image_params`` overrides the images
    tensor's ``create_tensor`` arguments (``name`` renames it).

    Images already in ``dest`` (by ``image_id``) are skipped: ``resume=True`` after a
    crash goes on from the last checkpoint; workers, checkpoints, ``ignore_errors`` and
    the stored report are those of every ingest (``ds.info["ingest"]``).

    Example::

        ds = tl.ingest_coco(
            "s3://coco/train2017", ["instances_train2017.json"], "./coco-train",
            src_creds=creds, num_workers=8, checkpoint_interval=25000,
        )
    """
    source = FileSource(images_directory, src_creds, source_name)
    files = (
        [annotation_files]
        if isinstance(annotation_files, (str, os.PathLike))
        else list(annotation_files)
    )
    if not files:
        raise IngestError("annotation_files is empty: name at least one COCO JSON file.")
    coco = MergedAnnotations()
    for f in files:
        coco.add(os.fspath(f), read_annotation_file(os.fspath(f), src_creds))
    report = IngestReport(source=source.name)
    names = _tensor_names(key_to_tensor_mapping, ignore_keys, image_params)
    if "masks" in names and coco.has("segmentation"):
        _mask_api()  # the extra is needed: fail before anything is written
    images, kp_names, skeleton, kp_dtype = coco.items(names, report)
    tensors = {  # masks and keypoints only when some annotation has them
        key: name
        for key, name in names.items()
        if key not in ("masks", "keypoints") or coco.has(_COCO_KEY[key])
    }
    link, image_args = _image_args(image_params, link, images, report)
    if link and source.remote and src_creds and not image_creds_key:
        image_creds_key = DEFAULT_CREDS_KEY  # readers give src_creds under this name
    if not images:
        raise IngestError(f"The annotation files name no images ({', '.join(map(str, files))}).")
    images = _on_disk(source, images, ignore_errors, report)
    ds, created = open_dest(dest, dest_creds, overwrite, resume)
    try:
        _create(ds, tensors, image_args, coco, kp_names, skeleton, kp_dtype)
        if image_creds_key:
            if image_creds_key not in ds.get_creds_keys():
                ds.add_creds_key(image_creds_key)
            ds.populate_creds(image_creds_key, src_creds)
        images = _not_in(ds, tensors, images, report)
    except BaseException:
        if not isinstance(dest, Dataset):
            ds.close()  # opened here: the lock goes
        if created:
            delete(ds.path, creds=dest_creds)
        raise
    if source.remote and not link:
        names_in_order = [img.file_name for img in images]
        images = [
            _with_ahead(img, names_in_order[i : i + 1 + PREFETCH]) for i, img in enumerate(images)
        ]
    plan = _Plan(tensors, source, link, image_creds_key, len(kp_names), kp_dtype)
    run_transform(
        coco_rows(plan=plan),
        images,
        ds,
        created,
        report,
        num_workers=num_workers,
        checkpoint_interval=checkpoint_interval,
        ignore_errors=ignore_errors,
        progressbar=progressbar,
    )
    if summary:
        print(report)
    return ds


def _tensor_names(
    mapping: dict[str, str] | None, ignore: Sequence[str] | None, image_params: dict | None
) -> dict[str, str]:
    """Default tensor name -> the name it gets, without the ignored ones."""
    known = set(COCO_KEYS) | set(COCO_KEYS.values())
    valid = ", ".join(sorted(known))

    def tensor(key: str) -> str:
        if key not in known:
            raise IngestError(f"Unknown COCO key {key!r}; valid keys: {valid}.")
        return COCO_KEYS.get(key, key)

    ignore = [k for k in ignore or () if k not in NOT_STORED]

    names = {t: t for t in COCO_KEYS.values()}
    for key, name in (mapping or {}).items():
        if not isinstance(name, str) or not name:
            raise IngestError(
                f"key_to_tensor_mapping[{key!r}] must be a tensor name, got {name!r}."
            )
        names[tensor(key)] = name
    if image_params and "name" in image_params:
        names["images"] = image_params["name"]
    for key in ignore:
        if tensor(key) == "images":
            raise IngestError("The images tensor cannot be ignored (rename it instead).")
        names.pop(tensor(key), None)
    taken = [n for n in names.values() if list(names.values()).count(n) > 1]
    if taken:
        raise IngestError(f"key_to_tensor_mapping gives two tensors the name {taken[0]!r}.")
    return names


def _image_args(
    params: dict[str, Any] | None, link: bool, images: list[CocoImage], report: IngestReport
) -> tuple[bool, dict[str, Any]]:
    """Whether images are linked, and the images tensor's create_tensor arguments: the
    files' format when they share one (stored unchanged), else PNG, which loses nothing
    (the rule of ``ingest_classification``)."""
    args = {k: v for k, v in (params or {}).items() if k != "name"}
    htype = args.setdefault("htype", "link[image]" if link else "image")
    if link and htype != "link[image]":
        raise IngestError(
            f"link=True stores link[image] rows, but image_params has htype={htype!r}."
        )
    if "sample_compression" not in args:
        exts = {os.path.splitext(i.file_name)[1].lower() for i in images}
        formats = sorted({IMAGE_EXTENSIONS[e] for e in exts if e in IMAGE_EXTENSIONS})
        args["sample_compression"] = formats[0] if len(formats) == 1 else "png"
        if len(formats) > 1:
            report.notes.append(
                "The images are JPEG and PNG files: the images tensor is PNG, so the JPEGs "
                "are decoded and stored losslessly (image_params={'sample_compression': "
                "'jpeg'} keeps their bytes and re-encodes the PNGs)."
                if htype != "link[image]"
                else "The images are JPEG and PNG files: links to the JPEGs fail the PNG "
                "tensor's verification (image_params={'sample_compression': ...} chooses)."
            )
    return htype == "link[image]", args


def _create(
    ds: Dataset,
    tensors: dict[str, str],
    image_args: dict[str, Any],
    coco: MergedAnnotations,
    kp_names: list[str],
    skeleton: list[list[int]],
    kp_dtype: str,
) -> None:
    """Create the tensors, or check that those of an earlier ingest are the same."""
    cats = [coco.category(i) for i in range(len(coco.categories))]
    class_names = [str(c["name"]) for c in cats]
    existing = set(ds.tensors)
    if existing:
        if existing != set(tensors.values()):
            raise IngestError(
                f"{ds.path} holds tensors {sorted(existing)}, but this ingest writes "
                f"{sorted(tensors.values())}: ingest into a new dataset (or overwrite=True)."
            )
        if (
            "categories" in tensors
            and list(ds[tensors["categories"]].info.class_names) != class_names
        ):
            raise IngestError(f"{ds.path} has other category names than these annotation files.")
        return
    specs: dict[str, dict[str, Any]] = {
        "images": image_args,
        "categories": {"htype": "class_label", "class_names": class_names},
        "boxes": {"htype": "bbox", "coords": {"type": "pixel", "mode": "LTWH"}},
        "masks": {"htype": "binary_mask", "sample_compression": COCO_RLE},
        "areas": {"dtype": "float32"},
        "iscrowd": {"dtype": "uint8"},
        "image_id": {"dtype": "int64"},
        "keypoints": {
            "htype": "keypoints_coco",
            "dtype": kp_dtype,
            "keypoints": kp_names,
            "connections": skeleton,
        },
    }
    with ds:
        for key, name in tensors.items():
            ds.create_tensor(name, **specs[key])
        if "categories" in tensors:
            ds[tensors["categories"]].info.update(
                supercategories=[c.get("supercategory") for c in cats],
                category_ids=sorted(coco.categories),
            )


def _on_disk(
    source: FileSource, images: list[CocoImage], ignore_errors: bool, report: IngestReport
) -> list[CocoImage]:
    """The images whose files are in the directory (one listing); a missing one is an
    error, or skipped with ``ignore_errors``."""
    listed = {k for k in source.list() if not is_hidden(k)}
    report.found = len(listed)
    missing = [img.file_name for img in images if img.file_name not in listed]
    if len(missing) == len(images):
        raise IngestError(
            f"None of the {len(images)} images named in the annotations is in {source.name} "
            f"({some_ids(missing)}): is it the right images_directory?"
        )
    if missing and not ignore_errors:
        raise IngestError(
            f"{len(missing)} images named in the annotations are not in {source.name} "
            f"({some_ids(missing)}). Pass ignore_errors=True to skip them."
        )
    for name in missing:
        report.skip("image files missing from the images directory", name)
    unused = len(listed - {img.file_name for img in images})
    if unused:
        report.notes.append(f"{unused} files in the images directory are not in the annotations.")
    gone = set(missing)
    return [img for img in images if img.file_name not in gone]


def _not_in(
    ds: Dataset, tensors: dict[str, str], images: list[CocoImage], report: IngestReport
) -> list[CocoImage]:
    """The images ``ds`` does not hold yet (by their ids)."""
    if not len(ds):
        return images
    if "image_id" not in tensors:
        raise IngestError(
            f"{ds.path} holds {len(ds)} rows; continuing it needs the image_id tensor to "
            "tell which images it holds (do not ignore 'image_id'), or overwrite=True."
        )
    held = set(ds[tensors["image_id"]].numpy().reshape(-1).tolist())
    report.already = len(held)
    return [img for img in images if img.id not in held]


def _with_ahead(img: CocoImage, ahead: list[str]) -> CocoImage:
    return CocoImage(img.id, img.file_name, img.height, img.width, img.objects, tuple(ahead))


# -- one row ---------------------------------------------------------------------------


def _mask_api() -> Any:
    try:
        import pycocotools.mask as mask_api  # the coco extra, imported when masks are made
    except ImportError as err:
        raise ImportError(
            "Ingesting COCO masks needs pycocotools: pip install 'tensorlake[coco]' "
            "(or ignore_keys=['segmentation'] to leave masks out)."
        ) from err
    return mask_api


@compute
def coco_rows(img: CocoImage, sample_out: Any, plan: _Plan) -> None:
    t, objects = plan.tensors, img.objects
    row: dict[str, Any] = {}
    if plan.link:
        row[t["images"]] = make_link(plan.source.location(img.file_name), creds_key=plan.creds_key)
    else:
        if img.ahead:
            plan.source.read_ahead(img.ahead)
        data = plan.source.read(img.file_name)
        _check_image(data, img, plan.source.record(img.file_name))
        row[t["images"]] = Sample(data=data)
    if "categories" in t:
        row[t["categories"]] = np.array([o.label for o in objects], dtype=np.uint32)
    if "boxes" in t:
        row[t["boxes"]] = np.array([o.bbox for o in objects], dtype=np.float32).reshape(-1, 4)
    if "masks" in t:
        row[t["masks"]] = _masks(img)
    if "areas" in t:
        row[t["areas"]] = np.array([o.area for o in objects], dtype=np.float32)
    if "iscrowd" in t:
        row[t["iscrowd"]] = np.array([o.iscrowd for o in objects], dtype=np.uint8)
    if "image_id" in t:
        row[t["image_id"]] = np.int64(img.id)
    if "keypoints" in t:
        kp = np.zeros((3 * plan.keypoints, len(objects)), dtype=plan.keypoints_dtype)
        for j, o in enumerate(objects):
            if o.keypoints:
                kp[:, j] = o.keypoints
        row[t["keypoints"]] = kp
    sample_out.append(row)


def _check_image(data: bytes, img: CocoImage, where: str) -> None:
    """A readable image of the size the annotations give (the masks are made at it)."""
    h, w, _ = check_image(data, f"{where} (image {img.id})")
    if (h, w) != (img.height, img.width):
        raise SampleError(
            f"{where} (image {img.id}) is {h} x {w} pixels, but the annotations say "
            f"{img.height} x {img.width}."
        )


def _masks(img: CocoImage) -> RleMasks:
    """Each object's mask as pycocotools' ``annToRLE`` makes it (its compressed counts):
    polygons rasterised and merged, uncompressed RLE compressed, compressed RLE as is
    (checked here, to name the annotation when it is not valid)."""
    h, w = img.height, img.width
    counts: list[bytes] = []
    mask_api = None
    for o in img.objects:
        segm = o.segmentation
        if not segm:  # no segmentation, or no polygon of 3 points: an empty mask
            counts.append(counts_from_runs([h * w]))
            continue
        mask_api = mask_api or _mask_api()
        if isinstance(segm, list):
            counts.append(mask_api.merge(mask_api.frPyObjects(segm, h, w))["counts"])
        elif isinstance(segm["counts"], list):
            counts.append(mask_api.frPyObjects(segm, h, w)["counts"])
        else:
            code = segm["counts"].encode("ascii", "replace")
            try:
                check_rle(rle_row([code]), (h, w, 1))
            except FormatError as err:
                raise SampleError(
                    f"annotation {o.id} of image {img.id} ({img.file_name}) has RLE counts "
                    f"that are not a valid COCO RLE mask: {err}"
                ) from None
            counts.append(code)
    return RleMasks(h, w, tuple(counts), checked=True)
