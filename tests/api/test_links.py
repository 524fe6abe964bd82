"""link[image]: local, S3 (creds by key, secrets never stored) and HTTP links; verify,
sample info, drift detection, and links inside compute workers."""

from __future__ import annotations

import functools
import http.server
import threading
import warnings
from collections.abc import Iterator
from pathlib import Path

import boto3
import numpy as np
import pytest

import tensorlake as tl
from tests.api.helpers import jpeg_bytes

SECRET = "s3cr3t-Never-Store-Me-7f1d"


@pytest.fixture
def images(tmp_path: Path) -> list[Path]:
    folder = tmp_path / "src"
    folder.mkdir()
    paths = []
    for i in range(6):
        path = folder / f"img{i}.jpg"
        path.write_bytes(jpeg_bytes(20 + i, 30, seed=i))
        paths.append(path)
    (folder / "notes.txt").write_text("not an image")
    return paths


def _link_tensor(ds, **kwargs):
    ds.create_tensor("images", htype="link[image]", sample_compression="jpg", **kwargs)


def test_local_links_read_like_images(tmp_path, images):
    ds = tl.empty(str(tmp_path / "ds"))
    _link_tensor(ds)
    ds.images.extend([tl.link(p) for p in images[:3]])
    ds.images.append(tl.link(f"file://{images[3]}"))
    assert len(ds) == 4 and list(ds.tensors) == ["images"]
    assert ds.images[2].shape == (22, 30, 3)  # from the ingest record, no fetch
    assert ds.images.shape == (4, None, 30, 3)
    assert ds.images[1].tobytes() == images[1].read_bytes()
    arr = ds.images[3].numpy()
    assert arr.shape == (23, 30, 3) and arr.dtype == np.uint8
    rows = ds.images[0:4].numpy(aslist=True)
    assert [r.shape[0] for r in rows] == [20, 21, 22, 23]
    assert ds.images.links()[0] == f"file://{images[0]}"
    info = tl.load(str(tmp_path / "ds"), read_only=True)
    assert info.images[0]._core.engines["_images_info"].num_rows == 4


@pytest.mark.parametrize(
    "target,message",
    [("missing.jpg", "does not exist"), ("notes.txt", "is not an image")],
)
def test_verify_refuses_broken_links_and_appends_nothing(tmp_path, images, target, message):
    ds = tl.empty(str(tmp_path / "ds"))
    _link_tensor(ds)
    ds.images.append(tl.link(images[0]))
    with pytest.raises(tl.SampleError, match=message) as info:
        ds.images.extend([tl.link(images[1]), tl.link(images[0].parent / target)])
    assert str(images[0].parent / target) in str(info.value)
    assert len(ds.images) == 1
    assert all(len(e.table) + len(e._open_rows) <= 1 for e in ds._core.engines.values())


def test_a_png_is_not_a_jpeg_and_a_string_is_not_a_link(tmp_path, images):
    from PIL import Image

    png = tmp_path / "x.png"
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(png)
    ds = tl.empty(str(tmp_path / "ds"))
    _link_tensor(ds)
    with pytest.raises(tl.SampleError, match="is a png image"):
        ds.images.append(tl.link(png))
    with pytest.raises(tl.SampleError, match=r"takes tl\.link"):
        ds.images.append(str(images[0]))
    with pytest.raises(ValueError, match="supports local paths"):
        tl.link("ftp://host/x.jpg")


def test_verify_off_without_extra_tensors_does_no_io(tmp_path, images):
    ds = tl.empty(str(tmp_path / "ds"))
    _link_tensor(ds, verify=False, create_shape_tensor=False, create_sample_info_tensor=False)
    ds.images.extend([tl.link(tmp_path / f"not-there-{i}.jpg") for i in range(3)])
    ds.images.append(tl.link(images[0]))
    assert len(ds) == 4 and ds._tensor_names(include_hidden=True) == ["images"]
    assert ds.images[3].shape == (20, 30, 3)  # fetched on demand
    with pytest.raises(tl.KeyNotFoundError, match="no longer exists"):
        ds.images[0].numpy()
    with pytest.raises(tl.DatasetError, match="no sample info"):
        ds.images.verify_links()


def test_drift_is_detected_and_policy_decides(tmp_path, images):
    ds = tl.empty(str(tmp_path / "ds"))
    _link_tensor(ds)
    ds.images.extend([tl.link(p) for p in images[:3]])
    assert ds.images.verify_links() == {"checked": 3, "missing": [], "changed": []}
    images[1].write_bytes(jpeg_bytes(20, 30, seed=99))
    images[2].unlink()
    report = ds.images.verify_links()
    assert report["changed"] == [{"row": 1, "url": f"file://{images[1]}"}]
    assert report["missing"] == [{"row": 2, "url": f"file://{images[2]}"}]
    with pytest.warns(tl.LinkChangedWarning, match=r"rows \[1\]"):
        ds.images[0:2].numpy(aslist=True)
    ds.link_policy = "error"
    with pytest.raises(tl.LinkChangedError, match="changed since they were ingested"):
        ds.images[1].numpy()
    ds.link_policy = "ignore"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ds.images[1].numpy()
    assert tl.load(str(tmp_path / "ds")).link_policy == "ignore"  # stored with the version
    with pytest.raises(ValueError, match="link_policy"):
        ds.link_policy = "sometimes"


@pytest.fixture
def source_bucket(s3_bucket, s3_creds, images) -> str:
    client = boto3.client(
        "s3",
        endpoint_url=s3_creds["endpoint_url"],
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    for p in images:
        client.put_object(Bucket=s3_bucket, Key=f"raw/{p.name}", Body=p.read_bytes())
    client.put_object(Bucket=s3_bucket, Key="raw/notes.txt", Body=b"text")
    return s3_bucket


def test_s3_links_with_creds_by_key_never_store_the_secret(
    tmp_path, source_bucket, s3_creds, images
):
    path = tmp_path / "ds"
    ds = tl.empty(str(path))
    _link_tensor(ds)
    ds.add_creds_key("raw")
    secret_creds = {**s3_creds, "aws_secret_access_key": SECRET}
    with pytest.raises(tl.DatasetError, match="populate_creds"):
        ds.images.append(tl.link(f"s3://{source_bucket}/raw/img0.jpg", creds_key="raw"))
    ds.populate_creds("raw", secret_creds)
    ds.images.extend(
        [tl.link(f"s3://{source_bucket}/raw/img{i}.jpg", creds_key="raw") for i in range(4)]
    )
    with pytest.raises(tl.SampleError, match="does not exist"):
        ds.images.append(tl.link(f"s3://{source_bucket}/raw/gone.jpg", creds_key="raw"))
    with pytest.raises(tl.SampleError, match="creds key 'other'"):
        ds.images.append(tl.link(f"s3://{source_bucket}/raw/img0.jpg", creds_key="other"))
    assert ds.get_creds_keys() == ["raw"]
    assert ds.images[3].tobytes() == images[3].read_bytes()
    ds.commit("four linked images")
    ds.close()
    for f in path.rglob("*"):  # no stored byte holds the secret
        if f.is_file():
            assert SECRET.encode() not in f.read_bytes(), f
    reader = tl.load(str(path), read_only=True)
    with pytest.raises(tl.DatasetError, match="creds key 'raw'"):
        reader.images[0].numpy()
    reader.populate_creds("raw", s3_creds)
    assert [a.shape for a in reader.images.numpy(aslist=True)][:2] == [(20, 30, 3), (21, 30, 3)]


def test_s3_link_without_key_uses_the_environment(tmp_path, source_bucket, s3_server, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_server)
    ds = tl.empty(str(tmp_path / "ds"))
    _link_tensor(ds)
    ds.images.append(tl.link(f"s3://{source_bucket}/raw/img2.jpg"))
    assert ds.images[0].numpy().shape == (22, 30, 3)


@pytest.fixture
def http_root(images) -> Iterator[str]:
    handler = functools.partial(
        http.server.SimpleHTTPRequestHandler, directory=str(images[0].parent)
    )
    handler.log_message = lambda *a: None  # type: ignore[attr-defined]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_http_links(tmp_path, http_root, images):
    ds = tl.empty(str(tmp_path / "ds"))
    _link_tensor(ds)
    ds.images.extend([tl.link(f"{http_root}/img{i}.jpg") for i in range(3)])
    with pytest.raises(tl.SampleError, match="does not exist"):  # a 404
        ds.images.append(tl.link(f"{http_root}/missing.jpg"))
    with pytest.raises(tl.SampleError, match="is not an image"):
        ds.images.append(tl.link(f"{http_root}/notes.txt"))
    assert ds.images[2].tobytes() == images[2].read_bytes()
    assert ds.images.verify_links()["changed"] == []


@tl.compute
def link_rows(path, sample_out):
    sample_out.images.append(tl.link(path))


def test_links_inside_compute_workers(tmp_path, images):
    ds = tl.empty(str(tmp_path / "ds"))
    _link_tensor(ds)
    link_rows().eval([str(p) for p in images], ds, num_workers=2, progressbar=False)
    assert ds.images.links() == [f"file://{p}" for p in images]
    assert [a.shape[0] for a in ds.images.numpy(aslist=True)] == [20, 21, 22, 23, 24, 25]
    with pytest.raises(tl.TransformError, match="index 1"):
        link_rows().eval(
            [str(images[0]), str(tmp_path / "nope.jpg")], ds, num_workers=2, progressbar=False
        )
    assert len(ds) == 6


def test_deleting_a_link_tensor_deletes_its_companions(tmp_path, images):
    ds = tl.empty(str(tmp_path / "ds"))
    _link_tensor(ds)
    ds.images.append(tl.link(images[0]))
    ds.delete_tensor("images")
    assert ds._tensor_names(include_hidden=True) == []


def test_linked_images_example_runs(tmp_path, capsys):
    import runpy

    example = runpy.run_path(str(Path(__file__).parents[2] / "examples" / "linked_images.py"))
    example["main"](str(tmp_path))
    out = capsys.readouterr().out
    assert "8 images linked" in out and "'row': 2" in out and "changed since" in out


class _SignedHandler(http.server.BaseHTTPRequestHandler):
    """Serves one object only at its exact presigned path and query, as S3 checks a
    signature: any re-encoding of either is a 403."""

    body = b""
    exact = ""
    seen: list[str] = []

    def log_message(self, format: str, *args: object) -> None:  # quiet
        pass

    def _answer(self, send_body: bool) -> None:
        self.seen.append(self.path)
        if self.path != self.exact:
            self.send_error(403)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(self.body)))
        self.send_header("ETag", '"v1"')
        self.end_headers()
        if send_body:
            self.wfile.write(self.body)

    def do_GET(self) -> None:
        self._answer(True)

    def do_HEAD(self) -> None:
        self._answer(False)


def test_http_link_keeps_a_presigned_query_byte_for_byte(tmp_path, images):
    exact = (
        "/bucket/photos%20raw/img%2B0.jpg?X-Amz-Algorithm=AWS4-HMAC-SHA256"
        "&X-Amz-Credential=AKIA%2F20260101%2Fus-east-1%2Fs3%2Faws4_request"
        "&X-Amz-Signature=ab+cd%3D%3D&empty="
    )
    handler = type(
        "Signed", (_SignedHandler,), {"body": images[0].read_bytes(), "exact": exact, "seen": []}
    )
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}{exact}"
        ds = tl.empty(str(tmp_path / "ds"))
        _link_tensor(ds)
        ds.images.append(tl.link(url))
        assert ds.images.links() == [url]
        assert ds.images[0].tobytes() == images[0].read_bytes()
        assert set(handler.seen) == {exact}
    finally:
        server.shutdown()
        server.server_close()
