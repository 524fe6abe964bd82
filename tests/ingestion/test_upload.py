"""``tl.upload`` and ``tensorlake upload`` against the moto S3 server of conftest."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from benchmarks.harness import slow_proxy
from tensorlake.cli.main import main
from tensorlake.errors import IngestError, StorageError
from tensorlake.ingestion.upload import UploadReport, upload

MiB = 1024 * 1024
PARTS = {"multipart_threshold": 5 * MiB, "multipart_chunksize": 5 * MiB}  # s3transfer's least
CLI = [sys.executable, "-m", "tensorlake.cli.main", "upload"]


def _tree(root: Path) -> dict[str, bytes]:
    """Nested folders, small files and one of 11 MiB (three parts); relative path -> bytes."""
    files = {
        "train/0/a.png": os.urandom(3000),
        "train/0/b.png": os.urandom(70_000),
        "train/1/c.png": b"",
        "train/1/deep/er/d.bin": os.urandom(1 * MiB + 7),
        "val/e.txt": b"hello",
        "big.bin": os.urandom(11 * MiB),
        "top.json": b"{}",
    }
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    return files


def _objects(admin, bucket: str, prefix: str = "") -> dict[str, bytes]:
    out = {}
    for page in admin.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for obj in page.get("Contents", ()):
            key = obj["Key"]
            out[key] = admin.get_object(Bucket=bucket, Key=key)["Body"].read()
    return out


def _keys(admin, bucket: str) -> list[str]:
    pages = admin.get_paginator("list_objects_v2").paginate(Bucket=bucket)
    return [obj["Key"] for page in pages for obj in page.get("Contents", ())]


def _wait_for_objects(admin, bucket: str, count: int, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while len(_keys(admin, bucket)) < count:
        assert time.monotonic() < deadline, f"fewer than {count} objects after {timeout} s"
        time.sleep(0.02)


def _under(prefix: str, files: dict[str, bytes]) -> dict[str, bytes]:
    return {f"{prefix}/{rel}": data for rel, data in files.items()}


@pytest.fixture
def tree(tmp_path: Path) -> tuple[Path, dict[str, bytes]]:
    root = tmp_path / "mnist"
    return root, _tree(root)


@pytest.fixture
def new_bucket(_s3_admin) -> str:
    """A bucket name that does not exist yet; whatever is made under it is removed after."""
    name = f"tl-new-{uuid.uuid4().hex[:16]}"
    yield name
    existing = {b["Name"] for b in _s3_admin.list_buckets().get("Buckets", ())}
    if name in existing:
        for key in _objects(_s3_admin, name):
            _s3_admin.delete_object(Bucket=name, Key=key)
        _s3_admin.delete_bucket(Bucket=name)


def test_uploads_a_tree_with_nested_folders_and_a_multipart_file(
    tree, s3_bucket, s3_creds, _s3_admin
):
    root, files = tree
    report = upload(root, f"s3://{s3_bucket}/mnist", s3_creds, num_workers=4, **PARTS)
    assert _objects(_s3_admin, s3_bucket) == _under("mnist", files)
    assert (report.files_uploaded, report.files_skipped) == (len(files), 0)
    assert report.bytes_sent == sum(map(len, files.values())) and report.bytes_skipped == 0
    assert report.url == f"s3://{s3_bucket}/mnist" and report.seconds > 0
    head = _s3_admin.head_object(Bucket=s3_bucket, Key="mnist/big.bin")
    assert head["ETag"].strip('"').endswith("-3")  # 5 + 5 + 1 MiB parts
    assert head["ContentType"] == "application/octet-stream"
    assert (
        _s3_admin.head_object(Bucket=s3_bucket, Key="mnist/train/0/a.png")["ContentType"]
        == "image/png"
    )


def test_no_prefix_puts_the_files_at_the_top_of_the_bucket(tree, s3_bucket, s3_creds, _s3_admin):
    root, files = tree
    upload(root, f"s3://{s3_bucket}", s3_creds, progressbar=False, **PARTS)
    assert _objects(_s3_admin, s3_bucket) == files


def test_the_bucket_is_created_when_missing(tree, new_bucket, s3_creds, _s3_admin):
    root, files = tree
    report = upload(root, f"s3://{new_bucket}/mnist/", s3_creds, progressbar=False, **PARTS)
    assert report.files_uploaded == len(files)
    assert _objects(_s3_admin, new_bucket) == _under("mnist", files)


def test_a_second_run_skips_everything(tree, s3_bucket, s3_creds, _s3_admin):
    root, files = tree
    url = f"s3://{s3_bucket}/mnist"
    upload(root, url, s3_creds, progressbar=False, **PARTS)
    before = {
        k: _s3_admin.head_object(Bucket=s3_bucket, Key=k)["LastModified"]
        for k in _under("mnist", files)
    }
    time.sleep(1.1)  # LastModified has one-second resolution
    again = upload(root, url, s3_creds, progressbar=False, **PARTS)
    assert (again.files_uploaded, again.files_skipped, again.bytes_sent) == (0, len(files), 0)
    assert again.bytes_skipped == sum(map(len, files.values()))
    after = {k: _s3_admin.head_object(Bucket=s3_bucket, Key=k)["LastModified"] for k in before}
    assert after == before


def test_changed_files_are_uploaded_again(tree, s3_bucket, s3_creds, _s3_admin):
    root, files = tree
    url = f"s3://{s3_bucket}/mnist"
    upload(root, url, s3_creds, progressbar=False, **PARTS)
    files["train/0/a.png"] = os.urandom(3000)  # same size, other bytes
    files["val/e.txt"] = b"hello, longer"  # other size
    big = bytearray(files["big.bin"])
    big[6 * MiB] ^= 0xFF  # one byte of the second part
    files["big.bin"] = bytes(big)
    for rel in ("train/0/a.png", "val/e.txt", "big.bin"):
        (root / rel).write_bytes(files[rel])
    report = upload(root, url, s3_creds, progressbar=False, **PARTS)
    assert (report.files_uploaded, report.files_skipped) == (3, len(files) - 3)
    assert report.bytes_sent == 3000 + 13 + 11 * MiB
    assert _objects(_s3_admin, s3_bucket) == _under("mnist", files)


def test_other_part_sizes_make_a_multipart_object_differ(tree, s3_bucket, s3_creds):
    """The ETag of a multipart object depends on its part size: uploaded again with other
    settings, the big file is sent again (and only it)."""
    root, files = tree
    url = f"s3://{s3_bucket}/mnist"
    upload(root, url, s3_creds, progressbar=False, **PARTS)
    report = upload(
        root,
        url,
        s3_creds,
        progressbar=False,
        multipart_threshold=5 * MiB,
        multipart_chunksize=6 * MiB,
    )
    assert (report.files_uploaded, report.files_skipped) == (1, len(files) - 1)


def test_an_interrupted_upload_resumes_with_only_the_missing_files(
    tree, s3_bucket, s3_creds, _s3_admin
):
    root, files = tree
    url = f"s3://{s3_bucket}/mnist"
    upload(root, url, s3_creds, progressbar=False, **PARTS)
    gone = sorted(_under("mnist", files))[::2]
    for key in gone:
        _s3_admin.delete_object(Bucket=s3_bucket, Key=key)
    report = upload(root, url, s3_creds, progressbar=False, **PARTS)
    assert (report.files_uploaded, report.files_skipped) == (len(gone), len(files) - len(gone))
    assert report.bytes_sent == sum(len(files[k[len("mnist/") :]]) for k in gone)
    assert _objects(_s3_admin, s3_bucket) == _under("mnist", files)


def test_refused_uploads_fail_in_one_error_and_the_next_run_sends_only_those(
    tree, s3_bucket, s3_creds, s3_server, _s3_admin
):
    root, files = tree
    url = f"s3://{s3_bucket}/mnist"

    def refuse(method: str, path: str) -> bool:
        return method == "PUT" and "/train/1/" in path

    with (
        slow_proxy(urlsplit(s3_server).port, 0.0, refuse) as endpoint,
        pytest.raises(StorageError, match="access denied") as err,
    ):
        upload(
            root,
            url,
            {**s3_creds, "endpoint_url": endpoint},
            num_workers=1,
            progressbar=False,
            **PARTS,
        )
    message = str(err.value)
    assert "\n" not in message and "run the same upload again" in message
    assert "could not be uploaded" in message
    present = _objects(_s3_admin, s3_bucket)
    assert not any("/train/1/" in k for k in present)
    report = upload(root, url, s3_creds, progressbar=False, **PARTS)
    assert report.files_uploaded == len(files) - len(present) >= 2
    assert _objects(_s3_admin, s3_bucket) == _under("mnist", files)


def test_a_killed_upload_resumes(tmp_path, s3_bucket, s3_creds, s3_server, _s3_admin):
    """SIGKILL of ``tensorlake upload`` half-way; run again, it sends only what is missing."""
    root = tmp_path / "many"
    files = {f"d{i % 4}/f{i:03d}.bin": os.urandom(2000 + i) for i in range(60)}
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    url = f"s3://{s3_bucket}/many"
    with slow_proxy(urlsplit(s3_server).port, 0.05) as endpoint:
        cmd = [*CLI, str(root), url, "--endpoint-url", endpoint, "--workers", "2"]
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            _wait_for_objects(_s3_admin, s3_bucket, 10)
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
        time.sleep(0.3)  # requests the proxy still forwards
    present = len(_keys(_s3_admin, s3_bucket))
    assert 10 <= present < len(files)
    report = upload(root, url, s3_creds, progressbar=False)
    assert report.files_skipped >= present and report.files_uploaded >= 1
    assert report.files_skipped + report.files_uploaded == len(files)
    assert _objects(_s3_admin, s3_bucket) == _under("many", files)


def test_a_file_gone_mid_way_fails_alone_and_the_next_run_sends_it(
    tmp_path, s3_bucket, s3_creds, s3_server, _s3_admin
):
    root = tmp_path / "many"
    files = {f"f{i:02d}.bin": os.urandom(1000 + i) for i in range(30)}
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    url = f"s3://{s3_bucket}/many"
    outcome: list[BaseException] = []

    def run() -> None:
        try:
            upload(
                root, url, {**s3_creds, "endpoint_url": endpoint}, num_workers=1, progressbar=False
            )
        except BaseException as err:
            outcome.append(err)

    with slow_proxy(urlsplit(s3_server).port, 0.05) as endpoint:
        thread = threading.Thread(target=run)
        thread.start()
        _wait_for_objects(_s3_admin, s3_bucket, 5)
        (root / "f25.bin").unlink()  # sent in key order, one at a time: not yet sent
        thread.join()
    assert len(outcome) == 1 and isinstance(outcome[0], IngestError), outcome
    message = str(outcome[0])
    assert "1 of 30 files could not be uploaded" in message and "f25.bin" in message
    assert "29 were" in message and "run the same upload again" in message
    assert len(_keys(_s3_admin, s3_bucket)) == 29
    (root / "f25.bin").write_bytes(files["f25.bin"])
    report = upload(root, url, s3_creds, progressbar=False)
    assert (report.files_uploaded, report.files_skipped) == (1, 29)
    assert _objects(_s3_admin, s3_bucket) == _under("many", files)


def test_special_files_are_skipped(tree, s3_bucket, s3_creds, _s3_admin):
    root, files = tree
    os.mkfifo(root / "train" / "fifo")
    upload(root, f"s3://{s3_bucket}/mnist", s3_creds, progressbar=False, **PARTS)
    assert _objects(_s3_admin, s3_bucket) == _under("mnist", files)


def test_hidden_files_are_skipped_unless_asked_for(tree, s3_bucket, s3_creds, _s3_admin):
    root, files = tree
    (root / ".DS_Store").write_bytes(b"x")
    (root / ".git" / "objects").mkdir(parents=True)
    (root / ".git" / "objects" / "ab").write_bytes(b"y")
    (root / "train" / ".hidden.png").write_bytes(b"z")
    url = f"s3://{s3_bucket}/mnist"
    upload(root, url, s3_creds, progressbar=False, **PARTS)
    assert _objects(_s3_admin, s3_bucket) == _under("mnist", files)
    report = upload(root, url, s3_creds, progressbar=False, include_hidden=True, **PARTS)
    assert (report.files_uploaded, report.files_skipped) == (3, len(files))
    extra = {".DS_Store": b"x", ".git/objects/ab": b"y", "train/.hidden.png": b"z"}
    assert _objects(_s3_admin, s3_bucket) == _under("mnist", {**files, **extra})


def test_a_hidden_folder_itself_can_be_uploaded(tmp_path, s3_bucket, s3_creds, _s3_admin):
    root = tmp_path / ".cache" / "data"
    root.mkdir(parents=True)
    (root / "a.txt").write_bytes(b"a")
    upload(root, f"s3://{s3_bucket}/p", s3_creds, progressbar=False)
    assert _objects(_s3_admin, s3_bucket) == {"p/a.txt": b"a"}


def test_symlinks_are_followed_and_loops_skipped(tmp_path, s3_bucket, s3_creds, _s3_admin):
    outside = tmp_path / "outside"
    (outside / "sub").mkdir(parents=True)
    (outside / "sub" / "s.txt").write_bytes(b"s")
    (outside / "o.txt").write_bytes(b"o")
    root = tmp_path / "root"
    (root / "in").mkdir(parents=True)
    (root / "in" / "f.txt").write_bytes(b"f")
    (root / "link.txt").symlink_to(outside / "o.txt")
    (root / "linked_dir").symlink_to(outside / "sub")
    (root / "in" / "loop").symlink_to(root)  # back up: not followed
    url = f"s3://{s3_bucket}/p"
    upload(root, url, s3_creds, progressbar=False)
    expected = {"p/in/f.txt": b"f", "p/link.txt": b"o", "p/linked_dir/s.txt": b"s"}
    assert _objects(_s3_admin, s3_bucket) == expected
    report = upload(root, f"s3://{s3_bucket}/q", s3_creds, progressbar=False, follow_symlinks=False)
    assert report.files_uploaded == 1
    (root / "dangling").symlink_to(tmp_path / "nothing")
    with pytest.raises(IngestError, match="broken symbolic link"):
        upload(root, url, s3_creds, progressbar=False)


def test_the_report_reads_well(tree, s3_bucket, s3_creds):
    root, files = tree
    report = upload(root, f"s3://{s3_bucket}/mnist", s3_creds, progressbar=False, **PARTS)
    text = repr(report)
    assert text.startswith(f"UploadReport(s3://{s3_bucket}/mnist: {len(files)} files uploaded (")
    assert " MB in " in text and " MB/s)" in text
    assert text.endswith(", 0 skipped as already there (0 B))")
    assert report.files == len(files) and report.bytes_per_second > 0
    assert isinstance(report, UploadReport)


@pytest.mark.parametrize(
    ("make", "target", "creds", "match"),
    [
        (None, "s3://b/p", None, "does not exist"),
        ("empty", "s3://b/p", None, "no files to upload"),
        ("hidden_only", "s3://b/p", None, r"1 hidden, skipped: pass include_hidden=True"),
        ("file", "s3://b/p", None, "is a file, not a folder"),
        ("tree", "/tmp/elsewhere", None, "must be an S3 URL"),
        ("tree", "gs://b/p", None, "must be an S3 URL"),
        ("tree", "s3:///p", None, "names no bucket"),
        ("tree", "s3://b/a//c", None, r"empty, '\.' or '\.\.' component"),
        ("tree", "s3://b/p", {"aws_key": "x"}, "unknown S3 creds key"),
        ("tree", "s3://b/p", {"endpoint_url": "s3.example.com:9000"}, "http:// or https://"),
    ],
)
def test_bad_inputs_are_ingest_errors(tmp_path, make, target, creds, match):
    root = tmp_path / "d"
    if make == "empty":
        root.mkdir()
    elif make == "hidden_only":
        root.mkdir()
        (root / ".x").write_bytes(b"x")
    elif make == "file":
        root.write_bytes(b"x")
    elif make == "tree":
        root.mkdir()
        (root / "a").write_bytes(b"a")
    with pytest.raises(IngestError, match=match):
        upload(root, target, creds, progressbar=False)


@pytest.mark.parametrize("bad", [0, -1, 2.5, True])
def test_bad_counts_are_ingest_errors(tree, bad):
    root, _ = tree
    with pytest.raises(IngestError, match="positive integer"):
        upload(root, "s3://b/p", num_workers=bad)
    with pytest.raises(IngestError, match="positive integer"):
        upload(root, "s3://b/p", multipart_threshold=bad)


def test_an_unreachable_endpoint_is_a_storage_error_soon(tree, s3_creds):
    root, _ = tree
    started = time.monotonic()
    with pytest.raises(StorageError, match=r"the endpoint cannot be reached.*--endpoint-url"):
        upload(
            root, "s3://b/p", {**s3_creds, "endpoint_url": "http://127.0.0.1:9"}, progressbar=False
        )
    assert time.monotonic() - started < 10


def test_wrong_credentials_are_a_storage_error(tree, s3_bucket, s3_creds, s3_server):
    root, _ = tree
    with (
        slow_proxy(urlsplit(s3_server).port, 0.0, lambda method, path: True) as endpoint,
        pytest.raises(StorageError, match=r"access denied \(403\).*accesskey and secretkey"),
    ):
        upload(
            root,
            f"s3://{s3_bucket}/p",
            {**s3_creds, "endpoint_url": endpoint},
            progressbar=False,
        )


# --- the command line -----------------------------------------------------------------


def _digits_config(path: Path, endpoint: str, bucket: str, prefix: str = "mnist") -> Path:
    """The ``upload_config.cfg`` as the DIGITS documentation writes it (moto takes any keys)."""
    path.write_text(
        "[S3 Config]\n"
        f"endpoint = {endpoint}\n"
        "accesskey = 0123456789abcde\n"
        "secretkey = PrIclctP80KrMi6+UPO9ZYNrkg6ByFeFRR6484qL\n"
        f"bucket = {bucket}\n"
        f"prefix = {prefix}\n"
    )
    return path


def test_cli_uploads_with_a_digits_config(tmp_path, new_bucket, s3_server, _s3_admin):
    root = tmp_path / "mnist"
    files = {f"train/{d}/{i}.png": os.urandom(500 + i) for d in range(3) for i in range(4)}
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    config = _digits_config(tmp_path / "upload_config.cfg", s3_server, new_bucket)
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("AWS_ACCESS") and not k.startswith("AWS_SECRET")
    }
    run = subprocess.run(
        [*CLI, str(root), "--config", str(config)], capture_output=True, text=True, env=env
    )
    assert run.returncode == 0, run.stderr
    assert _objects(_s3_admin, new_bucket) == _under("mnist", files)
    assert f"uploaded {len(files)} files" in run.stdout and f"s3://{new_bucket}/mnist" in run.stdout
    assert "\r" not in run.stderr and "upload" in run.stderr  # log lines, no redraws
    again = subprocess.run(
        [*CLI, str(root), "--config", str(config), "--no-progress"],
        capture_output=True,
        text=True,
        env=env,
    )
    assert again.returncode == 0 and again.stderr == ""
    assert f"{len(files)} were there already" in again.stdout
    # the target argument wins over the file's bucket and prefix
    other = subprocess.run(
        [*CLI, str(root), f"s3://{new_bucket}/other", "--config", str(config), "--workers", "2"],
        capture_output=True,
        text=True,
        env=env,
    )
    assert other.returncode == 0, other.stderr
    assert _objects(_s3_admin, new_bucket, "other/") == _under("other", files)


def test_cli_endpoint_flag_overrides_the_config(tmp_path, tree, s3_bucket, s3_server, _s3_admin):
    root, files = tree
    config = _digits_config(tmp_path / "c.cfg", "http://127.0.0.1:9", s3_bucket, "x")
    assert (
        main(
            [
                "upload",
                str(root),
                "--config",
                str(config),
                "--no-progress",
                "--endpoint-url",
                s3_server,
            ]
        )
        == 0
    )
    assert _objects(_s3_admin, s3_bucket) == _under("x", files)


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (["{missing}", "s3://b/p"], "does not exist"),
        (["{root}", "/not/s3"], "must be an S3 URL"),
        (["{root}"], "no upload target"),
        (["{root}", "--config", "{missing}"], "cannot read the upload config"),
        (["{root}", "--config", "{no_section}"], r"no \[S3 Config\] section"),
        (["{root}", "--config", "{not_ini}"], "is not an upload config"),
        (["{root}", "--config", "{typo}"], "unknown field"),
        (["{root}", "--config", "{half_keys}"], "both accesskey and secretkey"),
        (["{root}", "--config", "{no_bucket}"], "no upload target"),
        (["{root}", "s3://b/p", "--endpoint-url", "http://127.0.0.1:9"], "cannot be reached"),
        (["{root}", "s3://b/p", "--profile", "nobody"], "nobody"),
        (["{root}", "s3://b/p", "--workers", "0"], "positive integer"),
    ],
)
def test_cli_errors_are_one_line(tmp_path, tree, args, match, capsys):
    root, _ = tree
    paths = {"root": str(root), "missing": str(tmp_path / "missing")}
    for name, text in {
        "no_section": "[Other]\nbucket = b\n",
        "not_ini": "bucket = b\n",
        "typo": "[S3 Config]\nbuckett = b\n",
        "half_keys": "[S3 Config]\naccesskey = a\nbucket = b\n",
        "no_bucket": "[S3 Config]\nendpoint = http://127.0.0.1:9\n",
    }.items():
        (tmp_path / f"{name}.cfg").write_text(text)
        paths[name] = str(tmp_path / f"{name}.cfg")
    code = main(["upload", *(a.format(**paths) for a in args), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 1
    assert err.startswith("tensorlake: ") and err.count("\n") == 1, err
    assert "Traceback" not in err
    assert re.search(match, err), err


def test_cli_wrong_credentials_and_no_credentials_are_one_line(
    tmp_path, tree, s3_bucket, s3_server
):
    root, _ = tree
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("AWS_ACCESS") and not k.startswith("AWS_SECRET")
    }
    run = subprocess.run(
        [*CLI, str(root), f"s3://{s3_bucket}/p", "--endpoint-url", s3_server],
        capture_output=True,
        text=True,
        env=env,
    )
    assert run.returncode == 1 and run.stderr.count("\n") == 1, run.stderr
    assert "no AWS credentials found" in run.stderr
    with slow_proxy(urlsplit(s3_server).port, 0.0, lambda method, path: True) as endpoint:
        config = _digits_config(tmp_path / "upload_config.cfg", endpoint, s3_bucket)
        run = subprocess.run(
            [*CLI, str(root), "--config", str(config)], capture_output=True, text=True
        )
    assert run.returncode == 1 and run.stderr.count("\n") == 1, run.stderr
    assert "access denied" in run.stderr and "Traceback" not in run.stderr


def test_importing_upload_imports_no_boto3():
    """``import tensorlake`` stays quick with ``tl.upload`` in it: boto3 loads on first use."""
    code = (
        "import sys, tensorlake.ingestion.upload, tensorlake.cli.upload; "
        "print(','.join(m for m in ('boto3', 'botocore', 's3transfer') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
