"""``ingest_coco``: COCO images and annotations -> one row per image.

Synthetic COCO data made here with PIL (polygons, crowd RLE, compressed RLE, keypoints
in a second file) checked against hand-computed values and pycocotools' ``annToMask``;
the same rows as the seed's hand-written ``@tl.compute`` script; images on S3 (moto);
links; a SIGKILL mid-ingest then ``resume=True``; bad inputs; and the ``coco_rle``
masks behind ``binary_mask`` (every read gives pycocotools' arrays).
"""

from __future__ import annotations

import copy
import functools
import http.server
import io
import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import boto3
import numpy as np
import pycocotools.mask as mask_api
import pytest
from PIL import Image
from pycocotools.coco import COCO

import tensorlake as tl
from benchmarks.peers import tensorlake_peer
from examples.synthetic_coco import generate
from tensorlake.compression.coco_rle import (
    RleMasks,
    check_rle,
    counts_from_runs,
    decode_rle,
    encode_rle,
    rle_row,
    runs_from_counts,
)
from tensorlake.engine.format import records
from tensorlake.ingestion.coco import ingest_coco
from tensorlake.storage import from_url

# pycocotools' decode (the reference, annToMask) warns under numpy 2; ingest never calls it
pytestmark = pytest.mark.filterwarnings(
    "ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning"
)
ROOT = Path(__file__).resolve().parents[2]
H, W = 48, 64
PERSON = {"id": 1, "name": "person", "supercategory": "person"}
KEYPOINTS = {"keypoints": ["nose", "left_eye", "right_eye"], "skeleton": [[1, 2], [1, 3]]}
CATEGORIES = [  # not in id order: the tensor's order is by id
    {"id": 7, "name": "cat", "supercategory": "animal"},
    PERSON,
    {"id": 4, "name": "car", "supercategory": "vehicle"},
]
RECT = np.zeros((H, W), dtype=np.uint8)
RECT[10:20, 20:30] = 1
ANNOTATIONS = [
    # image 1: a triangle, and a person of two polygons (the second of 2 points: no area)
    {"id": 11, "image_id": 1, "category_id": 7, "segmentation": [[5, 5, 30, 5, 15, 25]]},
    {
        "id": 12,
        "image_id": 1,
        "category_id": 1,
        "segmentation": [[40, 10, 60, 10, 60, 40, 40, 40], [2, 30, 10, 30, 6, 44], [1, 1, 3, 3]],
    },
    # image 2: a crowd of uncompressed RLE (pixels (5..7, 0)), a compressed RLE rectangle
    {
        "id": 13,
        "image_id": 2,
        "category_id": 4,
        "iscrowd": 1,
        "segmentation": {"size": [H, W], "counts": [5, 3, H * W - 8]},
    },
    {
        "id": 14,
        "image_id": 2,
        "category_id": 1,
        "segmentation": {
            "size": [H, W],
            "counts": mask_api.encode(np.asfortranarray(RECT))["counts"].decode(),
        },
    },
    # image 3: a polygon reaching outside the image (clipped)
    {
        "id": 15,
        "image_id": 3,
        "category_id": 7,
        "segmentation": [[-10, -10, 30, -10, 30, 20, -10, 20]],
    },
    # image 4: a person, and an object without a segmentation (an empty mask)
    {"id": 16, "image_id": 4, "category_id": 1, "segmentation": [[10, 10, 20, 10, 20, 30, 10, 30]]},
    {"id": 17, "image_id": 4, "category_id": 4},
    # image 5: no objects
]
PERSON_KEYPOINTS = {12: [10, 12, 2, 20, 22, 1, 0, 0, 0], 14: [5, 6, 2, 7, 8, 2, 9, 10, 2], 16: [0, 0, 0, 15, 15, 2, 18, 25, 1]}  # fmt: skip
LABEL = {1: 0, 4: 1, 7: 2}  # category id -> class index (id order)


def _jpeg(seed: int, h: int = H, w: int = W, fmt: str = "JPEG") -> bytes:
    rng = np.random.default_rng(seed)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(buf, format=fmt)
    return buf.getvalue()


def _annotations() -> list[dict[str, Any]]:
    anns = copy.deepcopy(ANNOTATIONS)
    for i, ann in enumerate(anns):
        ann["bbox"] = [float(i), 2.0 * i, 10.0 + i, 5.5]
        ann["area"] = 10.0 * i + 0.5
        ann.setdefault("iscrowd", 0)
    return anns


@pytest.fixture
def coco_dir(tmp_path: Path) -> Path:
    """images/ (ids 3, 1, 2, 5, 4 listed in that order), instances.json and
    person_keypoints.json (persons again, same annotation ids, with keypoints)."""
    (tmp_path / "images").mkdir()
    images = []
    for image_id in (3, 1, 2, 5, 4):
        name = f"{image_id:06d}.jpg"
        (tmp_path / "images" / name).write_bytes(_jpeg(image_id))
        images.append({"id": image_id, "file_name": name, "height": H, "width": W})
    anns = _annotations()
    (tmp_path / "instances.json").write_text(
        json.dumps({"images": images, "annotations": anns, "categories": CATEGORIES})
    )
    persons = [dict(a, keypoints=PERSON_KEYPOINTS[a["id"]], num_keypoints=2) for a in anns if a["category_id"] == 1]  # fmt: skip
    (tmp_path / "person_keypoints.json").write_text(
        json.dumps(
            {
                "images": [i for i in images if i["id"] in (1, 2, 4)],
                "annotations": persons,
                "categories": [dict(PERSON, **KEYPOINTS)],
            }
        )
    )
    return tmp_path


def _ingest(coco_dir: Path, dest: Any, files=("instances.json",), **kwargs) -> tl.Dataset:
    kwargs.setdefault("progressbar", False)
    kwargs.setdefault("summary", False)
    return ingest_coco(coco_dir / "images", [coco_dir / f for f in files], dest, **kwargs)


def _reference_mask(coco: COCO, ann: dict[str, Any]) -> np.ndarray:
    if "segmentation" not in ann:
        return np.zeros((H, W), dtype=bool)
    segm = ann["segmentation"]
    if isinstance(segm, list):  # pycocotools fails on a first polygon of 2 points only
        ann = dict(ann, segmentation=[p for p in segm if len(p) >= 6])
    return coco.annToMask(ann).astype(bool)


def _content(ds: tl.Dataset) -> dict[str, Any]:
    """Every tensor's rows as (shape, bytes), images as their stored bytes, and infos."""
    out: dict[str, Any] = {}
    for name, t in ds.tensors.items():
        if t.meta.htype in ("image", "link[image]"):
            out[name] = [t[i].tobytes() for i in range(len(t))]
        else:
            out[name] = [(a.shape, a.tobytes()) for a in t.numpy(aslist=True)]
        out[f"{name}.info"] = dict(t.info)
    return out


# -- the rows -----------------------------------------------------------------------


def test_rows_hold_images_categories_boxes_masks_and_keypoints(coco_dir):
    ds = _ingest(coco_dir, "mem://coco-rows", files=("instances.json", "person_keypoints.json"))
    assert list(ds.tensors) == [
        "images", "categories", "boxes", "masks", "areas", "iscrowd", "image_id", "keypoints",
    ]  # fmt: skip
    assert ds.image_id.numpy().reshape(-1).tolist() == [1, 2, 3, 4, 5]  # image-id order
    assert ds.categories.info.class_names == ["person", "car", "cat"]
    assert ds.categories.info.supercategories == ["person", "vehicle", "animal"]
    assert ds.categories.info.category_ids == [1, 4, 7]
    assert ds.boxes.info.coords == {"type": "pixel", "mode": "LTWH"}
    assert ds.masks.meta.sample_compression == "coco_rle"
    assert ds.keypoints.meta.htype == "keypoints_coco" and ds.keypoints.dtype == np.int32
    assert ds.keypoints.info.keypoints == KEYPOINTS["keypoints"]
    assert ds.keypoints.info.connections == [[0, 1], [0, 2]]  # COCO's skeleton is 1-based
    coco = COCO(str(coco_dir / "instances.json"))
    anns = _annotations()
    for row, image_id in enumerate([1, 2, 3, 4, 5]):
        objs = [a for a in anns if a["image_id"] == image_id]
        assert ds.images[row].tobytes() == _jpeg(image_id)  # the file, unchanged
        assert ds.categories[row].numpy().tolist() == [LABEL[a["category_id"]] for a in objs]
        assert ds.boxes[row].numpy().tolist() == [a["bbox"] for a in objs]
        assert ds.areas[row].numpy().tolist() == [a["area"] for a in objs]
        assert ds.iscrowd[row].numpy().tolist() == [a["iscrowd"] for a in objs]
        masks = ds.masks[row].numpy()
        assert masks.shape == (H, W, len(objs)) and masks.dtype == bool
        for k, a in enumerate(objs):
            assert np.array_equal(masks[:, :, k], _reference_mask(coco, a)), a["id"]
        keypoints = ds.keypoints[row].numpy()
        assert keypoints.shape == (9, len(objs))
        for k, a in enumerate(objs):
            assert keypoints[:, k].tolist() == PERSON_KEYPOINTS.get(a["id"], [0] * 9)
    # hand-computed: the crowd RLE's runs (5 zeros, 3 ones) and the compressed rectangle
    crowd = np.zeros((H, W), dtype=bool)
    crowd[5:8, 0] = True
    assert np.array_equal(ds.masks[1].numpy()[:, :, 0], crowd)
    assert np.array_equal(ds.masks[1].numpy()[:, :, 1], RECT.astype(bool))
    assert not ds.masks[3].numpy()[:, :, 1].any()  # no segmentation: an empty mask
    assert ds.masks[4].numpy().shape == (H, W, 0) and ds.boxes[4].numpy().shape == (0, 4)
    clipped = ds.masks[2].numpy()[:, :, 0]
    assert clipped[0, 0] and clipped[:20, :30].all() and not clipped[21:].any()
    report = ds.info["ingest"]
    assert report["rows"] == 5 and report["found"] == 5 and report["failed"] == []
    assert any("1 polygons reach outside" in n for n in report["notes"])
    assert any("1 polygons of fewer than 3 points" in n for n in report["notes"])
    assert ds.commits[0]["message"].startswith("Ingested 5 rows from")


def test_renaming_ignoring_and_image_params(coco_dir):
    ds = _ingest(
        coco_dir,
        "mem://coco-names",
        key_to_tensor_mapping={"bbox": "labels/boxes", "categories": "labels/names"},
        ignore_keys=["area", "iscrowd", "segmentation", "id"],  # "id": never stored
        image_params={"name": "pixels", "max_chunk_size": 4096},
    )
    assert sorted(ds.tensors) == ["image_id", "labels/boxes", "labels/names", "pixels"]
    assert ds["labels/boxes"][0].numpy().shape == (2, 4)
    assert ds.pixels.meta.max_chunk_size == 4096 and ds.pixels[1].tobytes() == _jpeg(2)
    for bad, message in [
        ({"ignore_keys": ["bboxes"]}, "Unknown COCO key 'bboxes'"),
        ({"ignore_keys": ["images"]}, "cannot be ignored"),
        ({"key_to_tensor_mapping": {"bbox": "x", "area": "x"}}, "two tensors the name 'x'"),
        ({"link": True, "image_params": {"htype": "image"}}, "link=True stores link"),
    ]:
        with pytest.raises(tl.IngestError, match=message):
            _ingest(coco_dir, "mem://coco-bad-names", **bad)
        assert not tl.exists("mem://coco-bad-names")


def test_the_same_rows_as_the_seed_script_with_two_workers(tmp_path):
    """The seed's ``@tl.compute`` transform (benchmarks/peers) and ``ingest_coco`` with
    num_workers=2 give the same images, categories, boxes and masks, row for row, by
    every way of reading the masks."""
    ann = generate(tmp_path / "src", 12)
    image_dir = str(tmp_path / "src" / "images")
    coco = COCO(str(ann))
    names, index_of = [c["name"] for c in coco.loadCats(coco.getCatIds())], {}
    index_of = {c["id"]: i for i, c in enumerate(coco.loadCats(coco.getCatIds()))}
    seed = tl.empty(str(tmp_path / "seed"))
    tensorlake_peer._create(seed, names, None)
    ids = sorted(coco.getImgIds())
    tensorlake_peer.coco_to_tl(coco_api=coco, image_dir=image_dir, index_of=index_of).eval(
        ids, seed, progressbar=False
    )
    ds = ingest_coco(
        image_dir, ann, tmp_path / "ds", num_workers=2, progressbar=False, summary=False
    )
    assert len(ds) == len(seed) == 12
    assert ds.categories.info.class_names == seed.categories.info.class_names
    for name in ("categories", "boxes"):
        assert [a.tolist() for a in ds[name].numpy(aslist=True)] == [
            a.tolist() for a in seed[name].numpy(aslist=True)
        ]
    seed_masks = seed.masks.numpy(aslist=True)
    for i in range(12):
        assert ds.images[i].tobytes() == seed.images[i].tobytes()
        assert np.array_equal(ds.masks[i].numpy(), seed_masks[i])
        assert np.array_equal(ds[i].masks.numpy(), seed_masks[i])
        assert np.array_equal(ds.masks[i, 100:200, 50:70].numpy(), seed_masks[i][100:200, 50:70])
    for got, want in zip(ds.masks[3:9].numpy(aslist=True), seed_masks[3:9]):
        assert got.dtype == bool and got.flags.c_contiguous and np.array_equal(got, want)
    same = [i for i in range(12) if seed_masks[i].shape == seed_masks[0].shape]
    assert np.array_equal(ds.masks[same].numpy(), seed.masks[same].numpy())  # stacked
    reopened = tl.load(str(tmp_path / "ds"), read_only=True)
    assert all(np.array_equal(a, b) for a, b in zip(reopened.masks.numpy(aslist=True), seed_masks))
    assert _stored(tmp_path / "ds" / "tensors" / "masks") * 3 < _stored(
        tmp_path / "seed" / "tensors" / "masks"
    )


def _stored(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def test_png_files_are_stored_as_png_and_mixed_formats_as_png(coco_dir):
    data = json.loads((coco_dir / "instances.json").read_text())
    for img in data["images"]:
        png = img["file_name"].replace(".jpg", ".png")
        (coco_dir / "images" / png).write_bytes(_jpeg(img["id"], fmt="PNG"))
        img["file_name"] = png
    (coco_dir / "instances.json").write_text(json.dumps(data))
    ds = _ingest(coco_dir, "mem://coco-png")
    assert ds.images.meta.sample_compression == "png"
    assert ds.images[0].tobytes() == _jpeg(1, fmt="PNG")
    assert not any("JPEG and PNG" in n for n in ds.info["ingest"]["notes"])
    data["images"][0]["file_name"] = "000003.jpg"  # one JPEG among PNGs
    (coco_dir / "instances.json").write_text(json.dumps(data))
    ds = _ingest(coco_dir, "mem://coco-mixed")
    assert ds.images.meta.sample_compression == "png"
    jpeg = np.asarray(Image.open(io.BytesIO(_jpeg(3))))
    assert np.array_equal(ds.images[2].numpy(), jpeg)  # decoded once, kept losslessly
    assert any("JPEG and PNG files" in n for n in ds.info["ingest"]["notes"])


def test_an_ingest_again_adds_only_new_images(coco_dir, tmp_path):
    first = _ingest(coco_dir, tmp_path / "ds")
    first.close()
    commits = len(first.commits)
    again = _ingest(coco_dir, tmp_path / "ds")
    assert len(again) == 5 and len(again.commits) == commits  # nothing new: no commit


# -- S3 and links ---------------------------------------------------------------------


@pytest.fixture
def coco_bucket(coco_dir, s3_bucket, s3_creds) -> str:
    client = boto3.client(
        "s3",
        endpoint_url=s3_creds["endpoint_url"],
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    for f in (coco_dir / "images").iterdir():
        client.put_object(Bucket=s3_bucket, Key=f"coco/images/{f.name}", Body=f.read_bytes())
    for name in ("instances.json", "person_keypoints.json"):
        body = (coco_dir / name).read_bytes()
        client.put_object(Bucket=s3_bucket, Key=f"coco/{name}", Body=body)
    return s3_bucket


def test_images_and_annotations_on_s3(coco_dir, coco_bucket, s3_creds):
    local = _ingest(coco_dir, "mem://coco-local", files=("instances.json", "person_keypoints.json"))
    remote = ingest_coco(
        f"s3://{coco_bucket}/coco/images",
        [
            f"s3://{coco_bucket}/coco/instances.json",
            f"s3://{coco_bucket}/coco/person_keypoints.json",
        ],
        "mem://coco-s3",
        src_creds=s3_creds,
        num_workers=2,
        progressbar=False,
        summary=False,
    )
    assert _content(remote) == _content(local)
    assert remote.info["ingest"]["source"] == f"s3://{coco_bucket}/coco/images"


def test_links_to_local_and_s3_images(coco_dir, coco_bucket, s3_creds, tmp_path):
    ds = _ingest(coco_dir, "mem://coco-links", link=True)
    assert ds.images.meta.htype == "link[image]"
    assert ds.images.links()[0] == f"file://{coco_dir / 'images' / '000001.jpg'}"
    assert ds.images[0].tobytes() == _jpeg(1)
    ds = ingest_coco(
        f"s3://{coco_bucket}/coco/images", coco_dir / "instances.json", "mem://coco-x",
        src_creds=s3_creds, link=True, progressbar=False, summary=False,
    )  # fmt: skip
    assert ds.get_creds_keys() == ["source"]  # readers give src_creds by this name
    assert ds.images[1].tobytes() == _jpeg(2)
    path = str(tmp_path / "linked")
    ds = ingest_coco(
        f"s3://{coco_bucket}/coco/images",
        coco_dir / "instances.json",
        path,
        src_creds=s3_creds,
        link=True,
        image_creds_key="coco-src",
        num_workers=2,
        progressbar=False,
        summary=False,
    )
    assert ds.images.links()[1] == f"s3://{coco_bucket}/coco/images/000002.jpg"
    ds.close()
    reader = tl.load(path, read_only=True)
    assert reader.get_creds_keys() == ["coco-src"]
    reader.populate_creds("coco-src", s3_creds)
    assert reader.images[2].tobytes() == _jpeg(3)
    assert np.array_equal(reader.images[2].numpy(), np.asarray(Image.open(io.BytesIO(_jpeg(3)))))


def test_annotation_files_over_http(coco_dir):
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(coco_dir))
    handler.log_message = lambda *a: None  # type: ignore[attr-defined]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        root = f"http://127.0.0.1:{server.server_address[1]}"
        ds = ingest_coco(
            coco_dir / "images",
            [f"{root}/instances.json", f"{root}/person_keypoints.json"],
            "mem://coco-http",
            progressbar=False,
            summary=False,
        )
        with pytest.raises(tl.IngestError, match=r"gone\.json does not exist"):
            ingest_coco(coco_dir / "images", f"{root}/gone.json", "mem://coco-http-gone")
    finally:
        server.shutdown()
        server.server_close()
    local = _ingest(coco_dir, "mem://coco-http-local", files=("instances.json", "person_keypoints.json"))  # fmt: skip
    assert _content(ds) == _content(local)


# -- a crash, then resume=True --------------------------------------------------------

VICTIM = textwrap.dedent(
    """
    import sys, time
    from tensorlake.ingestion import coco

    masks = coco._masks

    def slow_masks(img):  # slow enough to be killed between checkpoints
        time.sleep(0.02)
        return masks(img)

    coco._masks = slow_masks
    images, ann, dest = sys.argv[1:]
    coco.ingest_coco(images, ann, dest, num_workers=2, checkpoint_interval=40,
                     progressbar=False, summary=False)
    print("DONE", flush=True)
    """
)


def _checkpointed(dest: str) -> int:
    storage = from_url(dest, read_only=True)
    try:
        head = records.read_head(storage, records.DEFAULT_BRANCH)
        return int(records.read_commit(storage, head).commit.extra.get("samples_processed", 0))
    except Exception:  # not there yet, or being written
        return 0


def test_a_killed_ingest_resumes_to_the_uninterrupted_result(tmp_path):
    ann = generate(tmp_path / "src", 200, width=64, height=48)
    images, dest = str(tmp_path / "src" / "images"), str(tmp_path / "ds")
    script = tmp_path / "victim.py"
    script.write_text(VICTIM)
    with open(tmp_path / "victim.err", "w") as err:
        proc = subprocess.Popen(
            [sys.executable, str(script), images, str(ann), dest],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=err,
            start_new_session=True,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
    deadline, done = time.monotonic() + 120, 0
    while not done and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
        done = _checkpointed(dest)
    os.killpg(proc.pid, signal.SIGKILL)  # the ingest and its workers, at once
    proc.wait()
    assert 0 < done < 200, (done, (tmp_path / "victim.err").read_text())
    with pytest.warns(tl.StaleLockWarning):
        ds = ingest_coco(
            images, ann, dest, resume=True, num_workers=2, checkpoint_interval=40,
            progressbar=False, summary=False,
        )  # fmt: skip
    report = ds.info["ingest"]
    assert report["already"] >= done and report["already"] + report["rows"] == 200
    reference = ingest_coco(images, ann, "mem://coco-reference", progressbar=False, summary=False)
    assert _content(ds) == _content(reference)
    assert not ds.has_head_changes and ds.gc() == {"chunks": 0, "segments": 0, "commits": 0, "staging": 0, "temp_files": 0}  # fmt: skip


# -- bad input ----------------------------------------------------------------------


def _write(coco_dir: Path, change) -> None:
    data = json.loads((coco_dir / "instances.json").read_text())
    change(data)
    (coco_dir / "instances.json").write_text(json.dumps(data))


@pytest.mark.parametrize(
    "change,message",
    [
        (lambda d: d.pop("categories"), "not a COCO annotation file: expected lists"),
        (lambda d: d["annotations"][0].update(image_id=99), r"image ids not in 'images' \(e.g. 99\)"),
        (lambda d: d["annotations"][1].update(category_id=3), r"category ids not in 'categories' \(e.g. 3\)"),
        (lambda d: d["annotations"][0].update(bbox=[1, 2]), "bboxes that are not 4 numbers"),
        (lambda d: d["annotations"][2]["segmentation"].update(size=[4, 4]), "RLE sizes other than"),
        (lambda d: d["annotations"][2]["segmentation"].update(counts=[5, 3]), "RLE counts that do not cover"),
        (lambda d: d["annotations"][0].update(segmentation=[[1, 2, 3]]), "even number of coordinates"),
        (lambda d: d["images"][0].pop("height"), r"an image has no \['height'\]"),
        (lambda d: d["images"].append({"id": 1, "file_name": "x.jpg", "height": H, "width": W}), "image 1 has file_name='x.jpg'"),
    ],
)  # fmt: skip
def test_inconsistent_annotations_are_ingest_errors_before_anything_is_written(
    coco_dir, tmp_path, change, message
):
    _write(coco_dir, change)
    with pytest.raises(tl.IngestError, match=message):
        _ingest(coco_dir, tmp_path / "ds")
    assert not (tmp_path / "ds").exists()


def test_bad_files_and_folders_are_ingest_errors(coco_dir, tmp_path):
    (tmp_path / "notes.json").write_text("this is not json")
    (tmp_path / "list.json").write_text("[1, 2]")
    cases = [
        (
            lambda: ingest_coco(tmp_path / "nowhere", coco_dir / "instances.json", "mem://c"),
            "does not exist",
        ),
        (
            lambda: _ingest(coco_dir, "mem://c", files=("missing.json",)),
            "missing.json does not exist",
        ),
        (
            lambda: ingest_coco(coco_dir / "images", tmp_path / "notes.json", "mem://c"),
            "is not JSON",
        ),
        (lambda: ingest_coco(coco_dir / "images", tmp_path / "list.json", "mem://c"), "found list"),
        (lambda: ingest_coco(coco_dir / "images", [], "mem://c"), "annotation_files is empty"),
    ]
    for call, message in cases:
        with pytest.raises(tl.IngestError, match=message):
            call()
    assert not tl.exists("mem://c")


def test_sources_without_images_and_other_datasets_are_ingest_errors(coco_dir, tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(tl.IngestError, match="None of the 5 images named in the annotations"):
        ingest_coco(tmp_path / "empty", coco_dir / "instances.json", "mem://c")
    other = tl.empty(str(tmp_path / "other"))
    other.create_tensor("x")
    other.commit("x")
    with pytest.raises(tl.IngestError, match=r"holds tensors \['x'\], but this ingest writes"):
        _ingest(coco_dir, other)
    assert list(other.tensors) == ["x"] and not other.has_head_changes
    _write(coco_dir, lambda d: d.update(images=[], annotations=[]))
    with pytest.raises(tl.IngestError, match="name no images"):
        _ingest(coco_dir, "mem://c")
    assert not tl.exists("mem://c")


def test_a_missing_image_file_is_an_error_or_skipped(coco_dir, tmp_path):
    (coco_dir / "images" / "000002.jpg").unlink()
    with pytest.raises(
        tl.IngestError, match=r"1 images named in the annotations are not in .*000002.jpg"
    ):
        _ingest(coco_dir, tmp_path / "ds")
    assert not (tmp_path / "ds").exists()
    ds = _ingest(coco_dir, tmp_path / "ds", ignore_errors=True)
    assert ds.image_id.numpy().reshape(-1).tolist() == [1, 3, 4, 5]
    assert ds.info["ingest"]["skipped"] == {
        "image files missing from the images directory": ["000002.jpg"]
    }


def test_a_corrupt_image_fails_its_row(coco_dir, tmp_path):
    (coco_dir / "images" / "000004.jpg").write_bytes(b"not an image")
    with pytest.raises(tl.SampleError, match=r"000004.jpg \(image 4\) is not a readable") as info:
        _ingest(coco_dir, tmp_path / "ds")
    assert isinstance(info.value.__cause__, tl.TransformError)
    assert "COCO image 4 (000004.jpg)" in str(info.value.__cause__)
    assert not tl.exists(tmp_path / "ds")  # created by the failed ingest: removed
    with pytest.warns(UserWarning, match="1 of 5 input items failed"):
        ds = _ingest(coco_dir, tmp_path / "ds", ignore_errors=True)
    assert ds.image_id.numpy().reshape(-1).tolist() == [1, 2, 3, 5]
    assert ds.info["ingest"]["failed"] == ["000004.jpg"]


def test_a_bad_compressed_rle_fails_its_row(coco_dir, tmp_path):
    _write(coco_dir, lambda d: d["annotations"][3]["segmentation"].update(counts="0"))
    with pytest.raises(tl.SampleError, match=r"annotation 14 of image 2 \(000002.jpg\) has RLE"):
        _ingest(coco_dir, tmp_path / "ds")


def test_an_image_of_another_size_than_its_annotation_fails_its_row(coco_dir, tmp_path):
    (coco_dir / "images" / "000003.jpg").write_bytes(_jpeg(3, h=H + 1))
    with pytest.raises(tl.SampleError, match=r"is 49 x 64 pixels, but the annotations say 48 x 64"):
        _ingest(coco_dir, tmp_path / "ds")
    truncated = _jpeg(2)[:-40]
    (coco_dir / "images" / "000003.jpg").write_bytes(truncated)
    with pytest.raises(tl.SampleError, match="truncated JPEG"):
        _ingest(coco_dir, tmp_path / "ds")


def test_pycocotools_is_needed_for_masks_only_and_named(coco_dir, monkeypatch):
    monkeypatch.setitem(sys.modules, "pycocotools.mask", None)  # as if not installed
    with pytest.raises(ImportError, match=r"pip install 'tensorlake\[coco\]'"):
        _ingest(coco_dir, "mem://coco-no-extra")
    assert not tl.exists("mem://coco-no-extra")
    ds = _ingest(coco_dir, "mem://coco-no-masks", ignore_keys=["segmentation"])
    assert "masks" not in ds.tensors and len(ds) == 5


def test_importing_the_module_leaves_pycocotools_unloaded():
    code = "import sys, tensorlake.ingestion.coco; print('pycocotools' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# -- coco_rle: the masks' compression -------------------------------------------------


def _random_masks(rng: np.random.Generator) -> np.ndarray:
    h, w, n = int(rng.integers(1, 40)), int(rng.integers(1, 40)), int(rng.integers(0, 5))
    kind = rng.integers(3)
    if kind == 0:
        return rng.random((h, w, n)) < rng.random()
    masks = np.full((h, w, n), kind == 2)
    for k in range(n):
        y, x = rng.integers(0, h), rng.integers(0, w)
        masks[y : y + rng.integers(0, h), x : x + rng.integers(0, w), k] ^= True
    return masks


def test_coco_rle_is_pycocotools_rle_both_ways():
    rng = np.random.default_rng(0)
    for _ in range(300):
        masks = _random_masks(rng)
        row = encode_rle(masks)
        n = masks.shape[2]
        if n:
            ref = mask_api.encode(np.asfortranarray(masks.astype(np.uint8)))
            assert row[4 * n :] == b"".join(r["counts"] for r in ref)
            assert np.array_equal(decode_rle(rle_row([r["counts"] for r in ref]), masks.shape), mask_api.decode(ref).astype(bool))  # fmt: skip
        back = decode_rle(row, masks.shape)
        assert back.dtype == bool and back.flags.c_contiguous and np.array_equal(back, masks)
    big = np.zeros((3000, 2500, 1), dtype=bool)  # run lengths of several 5-bit groups
    big[1000:, 1700:] = True
    assert (
        encode_rle(big)[4:] == mask_api.encode(np.asfortranarray(big.astype(np.uint8)))[0]["counts"]
    )
    assert runs_from_counts(counts_from_runs([7, 0, 3, 1_000_000, 2])).tolist() == [7, 0, 3, 1_000_000, 2]  # fmt: skip


@pytest.mark.parametrize(
    "data,shape,message",
    [
        (b"\x05\x00\x00\x00abc", (2, 2, 1), "its 1 counts say 9"),
        (b"\x02\x00\x00\x0014", (2, 2, 1), "covers 5 pixels, expected 2 x 2"),
        (b"\x02\x00\x00\x00\x001", (2, 2, 1), "outside '0'..'o'"),
        (b"\x01\x00\x00\x00P", (2, 2, 1), "truncated inside a value"),
        (b"\x01\x00", (2, 2, 1), "too short"),
    ],
)
def test_corrupt_coco_rle_is_a_format_error(data, shape, message):
    with pytest.raises(tl.FormatError, match=message):
        decode_rle(data, shape)
    with pytest.raises(tl.FormatError):
        check_rle(data, shape)


def test_binary_mask_tensors_take_rle_and_arrays_either_way():
    ds = tl.empty("mem://coco-rle-htype", overwrite=True)
    ds.create_tensor("rle", htype="binary_mask", sample_compression="coco_rle")
    ds.create_tensor("dense", htype="binary_mask")
    masks = np.random.default_rng(1).random((30, 20, 3)) < 0.4
    rle = RleMasks(30, 20, tuple(r["counts"] for r in mask_api.encode(np.asfortranarray(masks.astype(np.uint8)))))  # fmt: skip
    with ds:
        ds.rle.extend([masks, rle, np.zeros((4, 5, 0), dtype=bool), masks[:, :, 0]])
        ds.dense.extend([rle, masks])
    assert [r.shape for r in ds.rle.numpy(aslist=True)] == [(30, 20, 3), (30, 20, 3), (4, 5, 0), (30, 20, 1)]  # fmt: skip
    assert all(np.array_equal(a, masks) for a in ds.rle[:2].numpy())
    assert all(np.array_equal(a, masks) for a in ds.dense.numpy(aslist=True))
    assert ds.rle[1].tobytes() == rle.to_bytes()  # stored as given
    with pytest.raises(tl.SampleError, match="not a valid COCO RLE mask"):
        ds.rle.append(RleMasks(2, 2, (b"14",)))
    with pytest.raises(tl.SampleError, match="not a valid COCO RLE mask"):
        ds.dense.append(RleMasks(2, 2, (b"14",)))
    assert len(ds.rle) == 4 and len(ds.dense) == 2
