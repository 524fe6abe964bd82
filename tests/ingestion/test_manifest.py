"""ingest_manifest: JSON and CSV registration manifests (local, S3 on moto, loopback HTTP),
their limits, duplicates, rejected rows and data types, verify, malformed files."""

from __future__ import annotations

import functools
import http.server
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

import tensorlake as tl
from tensorlake.ingestion import manifest as mf
from tensorlake.ingestion import manifest_reading as mr
from tensorlake.ingestion.manifest import SOURCES_TENSOR, ingest_manifest, read_manifest
from tests.api.helpers import jpeg_bytes

QUIET: dict[str, Any] = {"progressbar": False, "summary": False}


@pytest.fixture
def site(tmp_path: Path) -> Path:
    root = tmp_path / "site"
    (root / "img").mkdir(parents=True)
    for i in range(4):
        (root / "img" / f"{i}.jpg").write_bytes(jpeg_bytes(10 + i, 12, seed=i))
    (root / "img" / "notes.jpg").write_bytes(b"not an image")
    return root


@pytest.fixture
def http_root(site: Path) -> Iterator[str]:
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(site))
    handler.log_message = lambda *a: None  # type: ignore[attr-defined]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def bucket(s3_bucket: str, s3_creds: dict[str, str], site: Path) -> str:
    client = boto3.client(
        "s3",
        endpoint_url=s3_creds["endpoint_url"],
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    for path in sorted((site / "img").iterdir()):
        client.put_object(Bucket=s3_bucket, Key=f"img/{path.name}", Body=path.read_bytes())
    return s3_bucket


def _json(path: Path, doc: dict[str, Any]) -> Path:
    path.write_text(json.dumps(doc))
    return path


def _images(*urls: str, **extra: Any) -> dict[str, Any]:
    return {"images": [{"objectUrl": u} for u in urls], **extra}


def test_json_images_with_titles_and_metadata(tmp_path, site):
    doc = {
        "images": [
            {
                "objectUrl": str(site / "img" / f"{i}.jpg"),
                "title": f"image {i}",
                "clientMetadata": {"camera": f"c{i % 2}", "score": i / 2, "n": i, "odd": i % 2},
            }
            for i in range(3)
        ]
        + [{"objectUrl": f"s3://raw/img/{i}.jpg", "clientMetadata": {"n": 9}} for i in range(1)],
        "videos": [{"objectUrl": "s3://raw/v.mp4", "title": "a video"}],
        "image_groups": [
            {"title": "g", "objectUrl_0": "s3://raw/a.jpg", "objectUrl_1": "s3://raw/b.jpg"}
        ],
        "dicom_series": [{"title": "d", "objectUrl_0": "s3://raw/d.dcm"}],
    }
    ds = ingest_manifest(_json(tmp_path / "m.json", doc), tmp_path / "ds", **QUIET)
    assert len(ds) == 4 and ds.images.htype == "link[image]"
    assert ds.images.links()[:3] == [f"file://{site}/img/{i}.jpg" for i in range(3)]
    assert ds.images[1].numpy().shape == (11, 12, 3)
    assert ds.titles.numpy(aslist=True) == ["image 0", "image 1", "image 2", ""]
    assert ds.metadata[3].data()["value"] == {"n": 9}
    assert sorted(n for n in ds.tensors if n.startswith("meta/")) == ["meta/n"]  # in every row
    assert [int(v[0]) for v in ds["meta/n"].numpy(aslist=True)] == [0, 1, 2, 9]  # (1,) each
    assert ds[SOURCES_TENSOR].numpy(aslist=True)[3] == "s3://raw/img/0.jpg"
    report = ds.info["ingest"]
    rejected = report["skipped"]["items tensorlake cannot ingest"]
    assert rejected == [
        "videos[0]: tensorlake cannot decode videos: only images become rows",
        "image_groups[0]: tensorlake cannot decode image groups: only images become rows",
        "dicom_series[0]: tensorlake cannot decode dicom series: only images become rows",
    ]
    assert report["rows"] == 4 and report["found"] == 7


def test_typed_tensors_need_one_scalar_type_in_every_row(tmp_path):
    doc = {
        "images": [
            {"objectUrl": "s3://b/0.jpg", "clientMetadata": {"a": 1, "b": "x", "c": True, "d": 1}},
            {
                "objectUrl": "s3://b/1.jpg",
                "clientMetadata": {"a": 2, "b": "y", "c": False, "d": 1.5},
            },
        ]
    }
    ds = ingest_manifest(_json(tmp_path / "m.json", doc), tmp_path / "ds", **QUIET)
    assert sorted(n for n in ds.tensors if n.startswith("meta/")) == ["meta/a", "meta/b", "meta/c"]
    assert ds["meta/b"].numpy(aslist=True) == ["x", "y"]
    assert ds["meta/c"].dtype == "bool" and ds["meta/a"].dtype == "int64"


def test_csv_images_and_the_single_object_url_column(tmp_path, site):
    rows = [
        "Image URL,Image title,Client metadata,Video URL",
        f'{site}/img/0.jpg,first,"{{""k"": 1}}",',
        f"{site}/img/1.jpg,second,,",
        ",,,s3://raw/clip.mp4",
        "",
    ]
    (tmp_path / "m.csv").write_text("\n".join(rows))
    ds = ingest_manifest(tmp_path / "m.csv", tmp_path / "ds", **QUIET)
    assert ds.titles.numpy(aslist=True) == ["first", "second"]
    assert [ds.metadata[i].data()["value"] for i in range(2)] == [{"k": 1}, {}]
    skipped = ds.info["ingest"]["skipped"]["items tensorlake cannot ingest"]
    assert skipped == ["line 4: tensorlake cannot decode videos: only images become rows"]

    (tmp_path / "v.csv").write_text("ObjectUrl\ns3://raw/a.mp4\ns3://raw/b.mp4\n")
    found = read_manifest(tmp_path / "v.csv")
    assert len(found) == 0 and [r.where for r in found.unsupported] == ["line 2", "line 3"]
    with pytest.raises(
        tl.IngestError,
        match=r"no images to ingest .0 rejected rows, 2 items tensorlake cannot ingest",
    ):
        ingest_manifest(tmp_path / "v.csv", tmp_path / "ds2", **QUIET)
    assert not tl.exists(str(tmp_path / "ds2"))


def test_url_length_limit_at_its_edge(tmp_path):
    head = "s3://bucket/"
    exact = head + "a" * (mr.MAX_URL_BYTES - len(head))
    over = head + "é" * ((mr.MAX_URL_BYTES - len(head)) // 2) + "a"  # bytes, not characters
    assert len(exact.encode()) == mr.MAX_URL_BYTES and len(over.encode()) == mr.MAX_URL_BYTES + 1
    found = read_manifest(_json(tmp_path / "m.json", _images(exact, over, exact + "b")))
    assert found.urls == [exact]
    assert [(r.where, r.reason) for r in found.rejected] == [
        ("images[1]", "the URL has 16,385 bytes; at most 16,384"),
        ("images[2]", "the URL has 16,385 bytes; at most 16,384"),
    ]


def test_count_limits_at_their_edges(tmp_path, monkeypatch):
    monkeypatch.setattr(mr, "MAX_ITEMS", 3)
    monkeypatch.setattr(mr, "MAX_URLS", 4)
    group = {"objectUrl_0": "s3://b/0.jpg", "objectUrl_1": "s3://b/1.jpg", "title": "g"}
    ok = {
        "images": [{"objectUrl": "s3://b/x.jpg"}, {"objectUrl": "s3://b/y.jpg"}],
        "image_groups": [group],
    }
    assert read_manifest(_json(tmp_path / "ok.json", ok)).items == 3  # 3 items, 4 URLs
    with pytest.raises(tl.IngestError, match="holds 4 items; a manifest may hold 3"):
        read_manifest(_json(tmp_path / "items.json", _images(*[f"s3://b/{i}" for i in range(4)])))
    more_urls = {"images": ok["images"], "image_groups": [{**group, "objectUrl_2": "s3://b/2.jpg"}]}
    with pytest.raises(tl.IngestError, match="holds 5 URLs; a manifest may hold 4"):
        read_manifest(_json(tmp_path / "urls.json", more_urls))
    (tmp_path / "m.csv").write_text("Image URL\n" + "".join(f"s3://b/{i}.jpg\n" for i in range(4)))
    with pytest.raises(tl.IngestError, match="holds 4 items"):
        read_manifest(tmp_path / "m.csv")


def test_bad_rows_refuse_the_manifest_or_are_reported(tmp_path):
    urls = [
        "s3://b/ok.jpg",
        "s3://b/with space.jpg",
        "s3://b/tab\t.jpg",
        "gs://b/x.jpg",
        "ftp://host/x.jpg",
        "mailto:x@y",
        "arn:aws:s3::123456789012:accesspoint/mfzwi23gnjvgw.mrap/img/0.jpg",
        "arn:aws:s3:us-east-1:123456789012:accesspoint/ap/img/0.jpg",
        "https://host/ok.jpg?X-Amz-Signature=ab%2Bcd&x=1",
        "relative/path.jpg",
        "s3://",
    ]
    path = _json(
        tmp_path / "m.json", {"images": [{"objectUrl": u} for u in urls] + [{"title": "x"}, 7]}
    )
    with pytest.raises(tl.IngestError) as err:
        ingest_manifest(path, tmp_path / "ds", **QUIET)
    text = str(err.value)
    assert "9 rows of" in text and "nothing was ingested" in text
    assert "images[1]: the URL contains whitespace" in text
    assert "images[3]: unknown URL scheme 'gs'" in text
    assert "images[7]: an ARN must be an S3 Multi-Region Access Point's" in text
    assert not tl.exists(str(tmp_path / "ds"))
    found = read_manifest(path)
    assert [str(r) for r in found.rejected] == [
        "images[1]: the URL contains whitespace",
        "images[2]: the URL contains whitespace",
        "images[3]: unknown URL scheme 'gs': use s3://, http(s)://, file:// or a local path",
        "images[4]: unknown URL scheme 'ftp': use s3://, http(s)://, file:// or a local path",
        "images[5]: unknown URL scheme in 'mailto:x@y': use s3://, http(s)://, file:// or a "
        "local path",
        "images[7]: an ARN must be an S3 Multi-Region Access Point's followed by the object name",
        "images[10]: the URL names no bucket or host",
        "images[11]: no objectUrl",
        "images[12]: the item is not an object",
    ]
    assert found.urls == [urls[0], urls[6], urls[8], urls[9]]  # the MRAP ARN is accepted


def test_ignore_errors_ingests_the_good_rows_and_stores_the_report(tmp_path, site):
    arn = "arn:aws:s3::123456789012:accesspoint/mfzwi23gnjvgw.mrap/img/0.jpg"
    urls = [f"{site}/img/0.jpg", "s3://b/has space.jpg", f"{site}/img/1.jpg", "gs://b/x.jpg", arn]
    path = _json(tmp_path / "m.json", _images(*urls))
    ds = ingest_manifest(path, tmp_path / "ds", ignore_errors=True, **QUIET)
    assert len(ds) == 2
    assert ds.info["ingest"]["skipped"]["rejected rows"] == [
        "images[1]: the URL contains whitespace",
        "images[3]: unknown URL scheme 'gs': use s3://, http(s)://, file:// or a local path",
    ]
    assert ds.info["ingest"]["skipped"]["items tensorlake cannot ingest"] == [
        f"images[4]: {mf._ARN_UNSUPPORTED}"
    ]
    assert ds.commits[0]["message"].startswith("Ingested 2 rows")
    with pytest.raises(tl.IngestError, match=r"no images to ingest .2 rejected rows, 1 items"):
        ingest_manifest(
            _json(tmp_path / "bad.json", _images(urls[1], urls[3], arn)),
            tmp_path / "ds2",
            ignore_errors=True,
            **QUIET,
        )
    assert not tl.exists(str(tmp_path / "ds2"))


def test_duplicates_within_a_manifest(tmp_path):
    path = _json(tmp_path / "m.json", _images("s3://b/0.jpg", "s3://b/1.jpg", "s3://b/0.jpg"))
    with pytest.raises(tl.IngestError, match=r"images\[2\]: repeats the URL of images\[0\]"):
        ingest_manifest(path, tmp_path / "ds", **QUIET)
    ds = ingest_manifest(path, tmp_path / "ds", skip_duplicate_urls=True, **QUIET)
    assert ds.images.links() == ["s3://b/0.jpg", "s3://b/1.jpg"]
    assert ds.info["ingest"]["skipped"]["duplicate URLs"] == [
        "images[2]: repeats the URL of images[0]"
    ]
    own = _json(
        tmp_path / "own.json", _images("s3://b/0.jpg", "s3://b/0.jpg", skip_duplicate_urls=True)
    )
    assert len(ingest_manifest(own, tmp_path / "ds2", **QUIET)) == 1  # the manifest's own key


def test_a_next_manifest_adds_only_new_objects(tmp_path):
    first = _json(tmp_path / "1.json", _images("s3://b/0.jpg", "s3://b/1.jpg"))
    second = _json(tmp_path / "2.json", _images("s3://b/1.jpg", "s3://b/2.jpg", "s3://b/0.jpg"))
    commits = len(ingest_manifest(first, tmp_path / "ds", **QUIET).commits)
    with pytest.raises(tl.IngestError, match=r"images\[0\]: the URL is already in the dataset"):
        ingest_manifest(second, tmp_path / "ds", **QUIET)
    ds = ingest_manifest(second, tmp_path / "ds", skip_duplicate_urls=True, **QUIET)
    assert ds.images.links() == ["s3://b/0.jpg", "s3://b/1.jpg", "s3://b/2.jpg"]
    assert len(ds.commits) == commits + 1 and ds.info["ingest"]["already"] == 2
    again = ingest_manifest(second, tmp_path / "ds", skip_duplicate_urls=True, **QUIET)
    assert len(again) == 3 and len(again.commits) == commits + 1  # nothing new: no commit


def test_malformed_files_name_line_and_column(tmp_path):
    (tmp_path / "bad.json").write_text('{"images": [\n  {"objectUrl": "s3://b/0.jpg",}\n]}')
    with pytest.raises(tl.IngestError, match=r"not valid JSON: .* at line 2, column 32"):
        read_manifest(tmp_path / "bad.json")
    (tmp_path / "fields.csv").write_text(
        "Image URL,Image title\ns3://b/0.jpg,a\ns3://b/1.jpg,b,extra\n"
    )
    with pytest.raises(
        tl.IngestError, match="3 fields where the header has 2, at line 3, column 15"
    ):
        read_manifest(tmp_path / "fields.csv")
    (tmp_path / "quote.csv").write_text('Image URL,Image title\ns3://b/0.jpg,"open\n')
    with pytest.raises(tl.IngestError, match=r"not valid CSV: .* at line 2, column 14"):
        read_manifest(tmp_path / "quote.csv")
    (tmp_path / "cols.csv").write_text("Image URL,Colour\ns3://b/0.jpg,red\n")
    with pytest.raises(tl.IngestError, match=r"unknown CSV columns \['Colour'\] \(line 1\)"):
        read_manifest(tmp_path / "cols.csv")
    (tmp_path / "latin.json").write_bytes(b'{"images": [\n{"objectUrl": "s3://b/\xe9.jpg"}]}')
    with pytest.raises(tl.IngestError, match=r"not UTF-8 text .line 2, column 23"):
        read_manifest(tmp_path / "latin.json")
    with pytest.raises(tl.IngestError, match="unknown keys \\['picture'\\]"):
        read_manifest(_json(tmp_path / "keys.json", {"picture": []}))


def test_manifest_and_objects_on_s3_with_verify(tmp_path, bucket, s3_creds):
    doc = _images(*[f"s3://{bucket}/img/{i}.jpg" for i in (0, 1, 9)])
    boto3.client(
        "s3",
        endpoint_url=s3_creds["endpoint_url"],
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    ).put_object(Bucket=bucket, Key="manifests/m.json", Body=json.dumps(doc).encode())
    where = f"s3://{bucket}/manifests/m.json"
    with pytest.raises(tl.IngestError, match=r"images\[2\]: the object does not exist"):
        ingest_manifest(where, tmp_path / "ds", verify=True, src_creds=s3_creds, **QUIET)
    ds = ingest_manifest(
        where, tmp_path / "ds", verify=True, ignore_errors=True, src_creds=s3_creds, **QUIET
    )
    assert len(ds) == 2 and ds.get_creds_keys() == ["source"]
    assert ds.images[1].numpy().shape == (11, 12, 3)  # read with the populated creds
    with pytest.warns(UserWarning, match="1 of 3 files failed"):
        copied = ingest_manifest(
            where, tmp_path / "copy", link=False, ignore_errors=True, src_creds=s3_creds, **QUIET
        )
    assert copied.images.htype == "image" and len(copied) == 2
    assert copied.images[0].tobytes() == (Path(tmp_path / "site/img/0.jpg")).read_bytes()
    assert copied.info["ingest"]["failed"] == [f"s3://{bucket}/img/9.jpg"]


def test_http_manifest_links_and_verify_decode(tmp_path, site, http_root):
    doc = _images(*[f"{http_root}/img/{n}.jpg" for n in ("0", "1", "notes", "gone")])
    _json(site / "m.json", doc)
    found = read_manifest(f"{http_root}/m.json", skip_duplicate_urls=True)
    assert len(found) == 4
    ds = ingest_manifest(
        f"{http_root}/m.json", tmp_path / "ds", verify=True, ignore_errors=True, **QUIET
    )
    assert len(ds) == 3  # HEAD finds 'gone' missing, not that 'notes' is no image
    assert ds.info["ingest"]["skipped"]["rejected rows"] == ["images[3]: the object does not exist"]
    with pytest.warns(UserWarning, match="failed and were skipped"):
        decoded = ingest_manifest(
            f"{http_root}/m.json", tmp_path / "dec", verify="decode", ignore_errors=True, **QUIET
        )
    assert decoded.images.links() == [f"{http_root}/img/0.jpg", f"{http_root}/img/1.jpg"]
    assert decoded.info["ingest"]["failed"] == [
        f"{http_root}/img/notes.jpg",
        f"{http_root}/img/gone.jpg",
    ]
    with pytest.raises(tl.IngestError, match="verify must be"):
        ingest_manifest(f"{http_root}/m.json", tmp_path / "x", verify="yes", **QUIET)


def test_presigned_query_strings_are_kept(tmp_path, site, http_root):
    url = f"{http_root}/img/2.jpg?X-Amz-Credential=AKIA%2F2026%2Fus&X-Amz-Signature=a+b%3D"
    ds = ingest_manifest(_json(tmp_path / "m.json", _images(url)), tmp_path / "ds", **QUIET)
    assert ds.images.links() == [url]
    assert ds[SOURCES_TENSOR].numpy(aslist=True) == [url]
    assert ds.images[0].tobytes() == (site / "img" / "2.jpg").read_bytes()


def test_a_missing_manifest_and_resume(tmp_path, http_root, site):
    with pytest.raises(tl.IngestError, match="Cannot read the manifest"):
        read_manifest(f"{http_root}/nope.json")
    with pytest.raises(tl.IngestError, match="Cannot read the manifest"):
        read_manifest(tmp_path / "nope.json")
    path = _json(tmp_path / "m.json", _images(*[f"s3://b/{i}.jpg" for i in range(300)]))
    ds = ingest_manifest(path, tmp_path / "ds", checkpoint_interval=64, **QUIET)
    assert len(ds) == 300
    resumed = ingest_manifest(path, tmp_path / "ds", resume=True, **QUIET)  # all held already
    assert len(resumed) == 300 and resumed.images.links()[299] == "s3://b/299.jpg"
