"""``ingest_archive`` and ``ingest_files``: archives served over loopback HTTP (with
``Range`` and a connection dropped mid-body), told by content; unsafe entries, bombs,
truncated and non-archive files refused with nothing written outside the target;
layouts detected; the generic dataset holding every byte; temporary files removed."""

from __future__ import annotations

import http.server
import io
import os
import stat
import subprocess
import tarfile
import tempfile
import threading
import zipfile
from collections.abc import Iterator
from pathlib import Path

import boto3
import numpy as np
import pytest
from PIL import Image

import tensorlake as tl
from examples.synthetic_coco import generate
from tensorlake.errors import IngestError, SampleError
from tensorlake.ingestion import archive
from tensorlake.ingestion.archive import _kind, ingest_archive
from tensorlake.ingestion.generic import ingest_files

QUIET = {"progressbar": False, "summary": False}


class _Server:
    """Objects served from memory on 127.0.0.1, with ``Range``; ``drops`` paths whose
    next full response is cut off mid-body (once each)."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.drops: set[str] = set()
        self.always: set[str] = set()
        self.ranges: list[str] = []
        files, drops, always, ranges = self.files, self.drops, self.always, self.ranges

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                data = files.get(self.path)
                if data is None:
                    self.send_error(404)
                    return
                start, status = 0, 200
                header = self.headers.get("Range")
                if header:
                    ranges.append(header)
                    start = int(header.removeprefix("bytes=").split("-")[0])
                    status = 206
                self.send_response(status)
                self.send_header("Content-Length", str(len(data) - start))
                if status == 206:
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                self.end_headers()
                body = data[start:]
                if self.path in drops or self.path in always:
                    drops.discard(self.path)
                    self.wfile.write(body[: len(body) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/{name}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server() -> Iterator[_Server]:
    s = _Server()
    yield s
    s.close()


@pytest.fixture
def tmp(tmp_path: Path) -> Path:
    """The folder temporary files go to: checked empty after each ingest."""
    folder = tmp_path / "tmp"
    folder.mkdir()
    return folder


def _png(value: int, size: tuple[int, int] = (6, 5)) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.full((size[1], size[0], 3), value, np.uint8)).save(buf, "PNG")
    return buf.getvalue()


def _tar(files: dict[str, bytes], mode: str = "w:gz") -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode=mode) as tar:  # type: ignore[call-overload]
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _zip(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in files.items():
            z.writestr(name, data)
    return buf.getvalue()


CLASSES = {
    f"pets/{c}/{i}.png": _png(40 * i + (c == "dog")) for c in ("cat", "dog") for i in range(3)
}
MIXED = {
    "stuff/readme.txt": b"hello\n",
    "stuff/a/pic.png": _png(7),
    "stuff/a/blob.bin": bytes(range(256)) * 3,
    "stuff/.hidden": b"",
}


@pytest.mark.parametrize(
    ("kind", "suffix"),
    [("zip", "data.tar"), ("tar", "data.zip"), ("tar.gz", "data.bin")],
)
def test_classification_over_http_by_content(
    server: _Server, tmp: Path, tmp_path: Path, kind: str, suffix: str
) -> None:
    blob = {"zip": _zip, "tar": lambda f: _tar(f, "w"), "tar.gz": _tar}[kind](CLASSES)
    server.files["/" + suffix] = blob
    ds = ingest_archive(server.url(suffix), str(tmp_path / "ds"), tmp_dir=tmp, **QUIET)
    assert sorted(ds.tensors) == ["images", "labels"]
    assert len(ds) == 6
    assert list(ds.labels.info.class_names) == ["cat", "dog"]
    assert ds.images[3].numpy()[0, 0, 0] == 1  # dog/0.png
    assert os.listdir(tmp) == []


def test_download_resumes_with_range(server: _Server, tmp: Path, tmp_path: Path) -> None:
    server.files["/a.tgz"] = _tar(CLASSES)
    server.drops.add("/a.tgz")
    ds = ingest_archive(server.url("a.tgz"), str(tmp_path / "ds"), tmp_dir=tmp, **QUIET)
    assert len(ds) == 6
    assert len(server.ranges) == 1 and server.ranges[0] != "bytes=0-"
    assert os.listdir(tmp) == []


def test_http_errors(server: _Server, tmp: Path, tmp_path: Path) -> None:
    with pytest.raises(IngestError, match="HTTP 404"):
        ingest_archive(server.url("missing.zip"), str(tmp_path / "ds"), tmp_dir=tmp, **QUIET)
    assert os.listdir(tmp) == []


def test_generic_layout_keeps_every_byte(tmp: Path, tmp_path: Path) -> None:
    path = tmp_path / "mixed.zip"
    path.write_bytes(_zip(MIXED))
    ds = ingest_archive(path, str(tmp_path / "ds"), tmp_dir=tmp, **QUIET)
    assert sorted(ds.tensors) == ["data", "images", "path"]
    got = {p: bytes(d) for p, d in zip(ds["path"].numpy(aslist=True), ds.data.numpy(aslist=True))}
    assert got == {k.removeprefix("stuff/"): v for k, v in MIXED.items()}
    shapes = dict(
        zip(ds["path"].numpy(aslist=True), [im.shape for im in ds.images.numpy(aslist=True)])
    )
    assert shapes["a/pic.png"] == (5, 6, 3)
    assert shapes["readme.txt"] == (0, 0, 3)
    assert os.listdir(tmp) == []


def test_ingest_files_without_images_and_again(tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "d").mkdir(parents=True)
    (src / "d" / "x.json").write_bytes(b'{"a": 1}')
    (src / "y.txt").write_bytes(b"")
    ds = ingest_files(src, str(tmp_path / "ds"), **QUIET)
    assert sorted(ds.tensors) == ["data", "path"]
    assert ds["path"].numpy(aslist=True) == ["d/x.json", "y.txt"]
    (src / "z.txt").write_bytes(b"new")
    ds = ingest_files(src, str(tmp_path / "ds"), **QUIET)
    assert ds["path"].numpy(aslist=True) == ["d/x.json", "y.txt", "z.txt"]
    assert bytes(ds.data[2].numpy()) == b"new"


def test_coco_layout(tmp: Path, tmp_path: Path) -> None:
    ann = generate(tmp_path / "coco" / "set", 5, width=64, height=48)
    path = tmp_path / "coco.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        tar.add(ann.parent, arcname="set")
    ds = ingest_archive(path, str(tmp_path / "ds"), tmp_dir=tmp, **QUIET)
    assert "boxes" in ds.tensors and len(ds) == 5
    assert os.listdir(tmp) == []


def test_forced_layout(tmp: Path, tmp_path: Path) -> None:
    path = tmp_path / "pets.zip"
    path.write_bytes(_zip(CLASSES))
    ds = ingest_archive(path, str(tmp_path / "ds"), tmp_dir=tmp, layout="files", **QUIET)
    assert sorted(ds.tensors) == ["data", "images", "path"] and len(ds) == 6
    mixed = tmp_path / "mixed.zip"
    mixed.write_bytes(_zip(MIXED))
    with pytest.raises(IngestError, match="layout='classification'"):
        ingest_archive(mixed, str(tmp_path / "ds2"), tmp_dir=tmp, layout="classification", **QUIET)
    with pytest.raises(IngestError, match="layout='coco'"):
        ingest_archive(mixed, str(tmp_path / "ds2"), tmp_dir=tmp, layout="coco", **QUIET)
    assert os.listdir(tmp) == []


def _evil_tar_symlink() -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        link = tarfile.TarInfo("a/escape")
        link.type = tarfile.SYMTYPE
        link.linkname = "../../../outside.txt"
        tar.addfile(link)
        info = tarfile.TarInfo("a/escape")
        info.size = 3
        tar.addfile(info, io.BytesIO(b"bad"))
    return buf.getvalue()


def _zip_slip() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("ok.txt", b"fine")
        z.writestr("../../evil.txt", b"evil")
    return buf.getvalue()


def _tar_absolute() -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo("/tmp/evil.txt")
        info.size = 4
        tar.addfile(info, io.BytesIO(b"evil"))
    return buf.getvalue()


def _tar_device() -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo("dev/null")
        info.type = tarfile.CHRTYPE
        tar.addfile(info)
    return buf.getvalue()


def _zip_bomb() -> bytes:
    return _zip({"zeros.bin": bytes(5_000_000)})  # ~5 KB compressed, ratio ~1000


def _zip_encrypted() -> bytes:
    data = bytearray(_zip({"secret.txt": b"x" * 10}))
    # set the "encrypted" flag bit in the local and central headers
    for sig in (b"PK\x03\x04", b"PK\x01\x02"):
        at = data.find(sig)
        flag = 6 if sig == b"PK\x03\x04" else 8
        data[at + flag] |= 1
    return bytes(data)


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (_zip_slip, "outside the extraction folder"),
        (_evil_tar_symlink, "outside"),
        (_tar_absolute, "outside the extraction folder"),
        (_tar_device, "refused"),
        (_zip_bomb, "decompression bomb"),
        (_zip_encrypted, "password-protected"),
        (lambda: _tar(CLASSES)[:-300], "truncated or corrupt"),
        (lambda: _zip(CLASSES)[:-40], "not a readable zip"),
        (lambda: b"just some text, no archive" * 40, "not a zip or tar archive"),
    ],
)
def test_refused(make, match: str, tmp: Path, tmp_path: Path) -> None:
    path = tmp_path / "in.archive"
    path.write_bytes(make())
    before = sorted(os.listdir(tmp_path))
    with pytest.raises(IngestError, match=match):
        ingest_archive(path, str(tmp_path / "ds"), tmp_dir=tmp, **QUIET)
    assert sorted(os.listdir(tmp_path)) == before  # nothing outside, no dataset
    assert os.listdir(tmp) == []
    assert not Path("/tmp/evil.txt").exists() or Path("/tmp/evil.txt").read_bytes() != b"evil"


def test_bomb_by_lowered_limits(tmp: Path, tmp_path: Path) -> None:
    path = tmp_path / "big.tar.gz"
    path.write_bytes(_tar({"a.bin": bytes(200_000), "b.bin": bytes(200_000)}))
    with pytest.raises(IngestError, match="decompression bomb"):
        ingest_archive(path, str(tmp_path / "ds"), tmp_dir=tmp, max_size=300_000, **QUIET)
    with pytest.raises(IngestError, match="decompression bomb"):
        ingest_archive(path, str(tmp_path / "ds"), tmp_dir=tmp, max_ratio=10, **QUIET)
    assert os.listdir(tmp) == []
    ds = ingest_archive(path, str(tmp_path / "ds"), tmp_dir=tmp, max_ratio=1e6, **QUIET)
    assert len(ds) == 2


def test_links_inside_are_copies(tmp: Path, tmp_path: Path) -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo("top/a.txt")
        info.size = 2
        tar.addfile(info, io.BytesIO(b"hi"))
        sym = tarfile.TarInfo("top/b.txt")
        sym.type, sym.linkname = tarfile.SYMTYPE, "a.txt"
        tar.addfile(sym)
        hard = tarfile.TarInfo("top/c.txt")
        hard.type, hard.linkname = tarfile.LNKTYPE, "top/a.txt"
        tar.addfile(hard)
        again = tarfile.TarInfo("top/a.txt")  # given twice: the last wins
        again.size = 3
        tar.addfile(again, io.BytesIO(b"new"))
    path = tmp_path / "links.tar"
    path.write_bytes(buf.getvalue())
    ds = ingest_archive(path, str(tmp_path / "ds"), tmp_dir=tmp, **QUIET)
    assert ds["path"].numpy(aslist=True) == ["a.txt", "b.txt", "c.txt"]
    assert [bytes(d) for d in ds.data.numpy(aslist=True)] == [b"new", b"hi", b"hi"]


def test_link_refused_and_bad_args(tmp_path: Path) -> None:
    with pytest.raises(IngestError, match="link=True"):
        ingest_archive(tmp_path / "x.zip", str(tmp_path / "ds"), link=True)
    with pytest.raises(IngestError, match="layout must be"):
        ingest_archive(tmp_path / "x.zip", str(tmp_path / "ds"), layout="nope")
    with pytest.raises(IngestError, match="does not exist"):
        ingest_archive(tmp_path / "x.zip", str(tmp_path / "ds"), tmp_dir=tmp_path, **QUIET)


def test_kind_by_content(tmp_path: Path) -> None:
    for name, blob, kind in [
        ("a.tar.gz", _zip(MIXED), "zip"),
        ("a.zip", _tar(MIXED, "w"), "tar"),
        ("a.txt", _tar(MIXED, "w:bz2"), "tar"),
        ("a.tgz", b"\x00" * 1024, "none"),
    ]:
        (tmp_path / name).write_bytes(blob)
        assert _kind(str(tmp_path / name)) == kind


def test_s3_archive_with_workers(
    s3_server, s3_creds, s3_bucket, tmp: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = boto3.client("s3", endpoint_url=s3_server, region_name="us-east-1")
    client.put_object(Bucket=s3_bucket, Key="in/pets.weird", Body=_zip(CLASSES))
    ds = ingest_archive(
        f"s3://{s3_bucket}/in/pets.weird",
        str(tmp_path / "ds"),
        src_creds=s3_creds,
        num_workers=2,
        tmp_dir=tmp,
        **QUIET,
    )
    assert len(ds) == 6 and list(ds.labels.info.class_names) == ["cat", "dog"]
    assert os.listdir(tmp) == []
    monkeypatch.setattr(archive, "S3_PART", 1000)  # several ranges
    ds = ingest_archive(
        f"s3://{s3_bucket}/in/pets.weird",
        str(tmp_path / "ds"),
        src_creds=s3_creds,
        tmp_dir=tmp,
        overwrite=True,
        **QUIET,
    )
    assert len(ds) == 6
    with pytest.raises(IngestError, match="Cannot read the archive"):
        ingest_archive(f"s3://{s3_bucket}/in/none.zip", str(tmp_path / "d2"), src_creds=s3_creds)


def test_download_gives_up_after_retries(
    server: _Server, tmp: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(archive, "BACKOFF", 0.0)
    server.files["/a.zip"] = _zip(CLASSES)
    server.always.add("/a.zip")  # every response is cut off
    with pytest.raises(IngestError, match="connection failed 6 times"):
        ingest_archive(server.url("a.zip"), str(tmp_path / "ds"), tmp_dir=tmp, **QUIET)
    assert os.listdir(tmp) == []


def test_temporary_files_removed_when_the_ingest_fails(
    tmp: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp))  # the default place
    files = dict(CLASSES)
    files["pets/cat/0.png"] = files["pets/cat/0.png"][:-20]  # a truncated PNG: a bad row
    path = tmp_path / "bad.tgz"
    path.write_bytes(_tar(files))
    with pytest.raises(SampleError, match=r"0\.png"):
        ingest_archive(path, str(tmp_path / "ds"), **QUIET)
    assert os.listdir(tmp) == []
    assert not tl.exists(tmp_path / "ds")  # a failed first ingest leaves no dataset


def test_zip_symlink_outside_refused(tmp: Path, tmp_path: Path) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        info = zipfile.ZipInfo("up")
        info.create_system = 3
        info.external_attr = (stat.S_IFLNK | 0o777) << 16
        z.writestr(info, "../../secret")
    path = tmp_path / "link.zip"
    path.write_bytes(buf.getvalue())
    before = sorted(os.listdir(tmp_path))
    with pytest.raises(IngestError, match="outside the extraction folder"):
        ingest_archive(path, str(tmp_path / "ds"), tmp_dir=tmp, **QUIET)
    assert sorted(os.listdir(tmp_path)) == before and os.listdir(tmp) == []


def test_a_second_ingest_appends_nothing(server: _Server, tmp: Path, tmp_path: Path) -> None:
    server.files["/pets.tgz"] = _tar(CLASSES)
    for _ in range(2):  # the same extraction paths: the rows' sources are recognised
        ds = ingest_archive(server.url("pets.tgz"), str(tmp_path / "ds"), tmp_dir=tmp, **QUIET)
        assert len(ds) == 6 and len(ds.commits) == 1  # the ingest's commit
        ds.close()
    assert os.listdir(tmp) == []


def test_a_killed_run_leftovers_are_replaced(tmp: Path, tmp_path: Path) -> None:
    path = tmp_path / "pets.zip"
    path.write_bytes(_zip(CLASSES))
    work, held = archive._workspace(str(path), str(tmp_path / "ds"), tmp)
    with pytest.raises(IngestError, match="Another ingest"):
        ingest_archive(path, str(tmp_path / "ds"), tmp_dir=tmp, **QUIET)
    Path(work, "x", "pets", "stale").mkdir(parents=True)
    os.close(held)  # the holder died
    ds = ingest_archive(path, str(tmp_path / "ds"), tmp_dir=tmp, **QUIET)
    assert len(ds) == 6 and list(ds.labels.info.class_names) == ["cat", "dog"]
    assert os.listdir(tmp) == []


@pytest.fixture
def small_disk(tmp_path):
    """A 1 MiB file system (tmpfs), where this machine lets the tests mount one."""
    mount = tmp_path / "small-disk"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)], capture_output=True
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=False)


def test_a_full_disk_is_said_as_such_and_leaves_nothing(tmp_path, small_disk):
    src = tmp_path / "src" / "a"
    src.mkdir(parents=True)
    (src / "big.bin").write_bytes(os.urandom(3_000_000))
    archive = tmp_path / "big.tgz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(tmp_path / "src", arcname="src")
    with pytest.raises(tl.IngestError, match="No space left on the disk"):
        tl.ingest_archive(archive, tmp_path / "ds", tmp_dir=str(small_disk), progressbar=False)
    assert os.listdir(small_disk) == [] and not tl.exists(tmp_path / "ds")
