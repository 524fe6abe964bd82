"""A canary secret goes through every path that takes credentials and must come out of
none: no stored byte, error message, repr, log record, warning, progress bar, CLI line
or file a worker leaves in the temp dir holds it.

The canary (``CANARY-<random hex>``, new each run) is the ``aws_secret_access_key`` and
the ``aws_session_token`` everywhere: creds dicts of ``tl.empty`` / ``tl.load`` on the
moto S3 server, ``populate_creds``, a managed key's ``TENSORLAKE_CREDS_<KEY>_*``
variables, compute workers (threads, fork, forkserver), ``tl.upload`` and the DIGITS
config file, the registry's private ``config.toml``, the ``AWS_*`` environment of the
CLI, and errors from a refusing server (403) and an unreachable one. ``Canary`` gathers
what the user could see (texts, logs, warnings, stdout/stderr at the descriptor level,
the temp dir, every object in the bucket, every file under the test's folder but the
three that hold the secret on purpose) and ``Canary.assert_clean`` lists every place
the canary was found.

Logging: the main test leaves logger levels as they are (what a user gets) and records
everything emitted; botocore's own DEBUG output, which prints request headers (the
session token among them), appears only when a user turns DEBUG on for botocore:
``test_our_logs_hold_no_secret_at_debug`` checks that tensorlake never does so and that
its own records hold no secret even then.
"""

from __future__ import annotations

import http.server
import io
import logging
import os
import pickle
import secrets
import shutil
import tempfile
import threading
import traceback
import warnings
from collections.abc import Callable, Iterator
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path
from typing import Any

import boto3
import numpy as np
import pytest

import tensorlake as tl
from tensorlake.api.dataset import core_of
from tensorlake.cli.main import main as cli
from tensorlake.storage import S3Storage
from tests.api.helpers import jpeg_bytes
from tests.compute.transforms import fail_on, link_rows

CANARY = "CANARY-" + secrets.token_hex(16)
ACCESS_KEY = "AKIASECRETSTEST"  # an access key id is not a secret (it is in every log line)
_BOTO_LOGGERS = ("boto3", "botocore", "s3transfer", "urllib3")


# --- what the user could see ------------------------------------------------------------


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.NOTSET)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def _text(record: logging.LogRecord) -> str:
    text = f"{record.name}: {record.getMessage()}"
    if record.exc_info:
        text += "".join(traceback.format_exception(*record.exc_info))
    return text


class Canary:
    """Collects everything a user could see, and greps it for the canary."""

    def __init__(self, root: Path, tmpdir: Path, capfd: pytest.CaptureFixture[str]) -> None:
        self.root = root
        self.tmpdir = tmpdir
        self.capfd = capfd
        self.seen: list[tuple[str, str]] = []  # (where, text)
        self.buckets: list[str] = []
        self.secret_files: set[Path] = set()  # hold the secret on purpose (the user wrote it)
        self.records = _Records()
        self.endpoint = ""
        self.extra_dirs: list[Path] = []  # other folders to scan (a cluster's)
        self.warnings: list[warnings.WarningMessage] = []

    def see(self, where: str, value: Any) -> None:
        self.seen.append((where, value if isinstance(value, str) else repr(value)))

    def reprs(self, where: str, *objects: Any) -> None:
        for obj in objects:
            self.see(f"{where}: repr", repr(obj))
            self.see(f"{where}: str", str(obj))

    def error(
        self,
        where: str,
        fn: Callable[..., Any],
        *args: Any,
        expected: type[BaseException] = tl.TensorlakeError,
        **kwargs: Any,
    ) -> BaseException:
        """Run ``fn(*args, **kwargs)``, which must raise ``expected``; see its message,
        repr, traceback and attributes."""
        with pytest.raises(expected) as info:
            fn(*args, **kwargs)
        err = info.value
        self.see(f"{where}: message", str(err))
        self.see(f"{where}: repr", repr(err))
        self.see(f"{where}: traceback", "".join(traceback.format_exception(err)))
        for name, value in vars(err).items():  # the context it carries (key, holder ...)
            self.see(f"{where}: .{name}", repr(value))
        return err

    def printed(self, where: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Run ``fn(*args, **kwargs)``, seeing what it prints through ``sys.stdout`` and
        ``sys.stderr`` (its exit status if it exits)."""
        out, err = io.StringIO(), io.StringIO()
        with redirect_stdout(out), redirect_stderr(err):
            try:
                result = fn(*args, **kwargs)
            except SystemExit as exit:  # argparse refused the command line
                result = exit.code
        self.see(f"{where}: stdout", out.getvalue())
        self.see(f"{where}: stderr", err.getvalue())
        return result

    def places(self) -> list[str]:
        """Every place the canary is found."""
        needle = CANARY.encode()
        found = [where for where, text in self.seen if CANARY in text]
        found += [f"log {_text(r)[:200]}" for r in self.records.records if CANARY in _text(r)]
        found += [f"warning {w.message}"[:200] for w in self.warnings if CANARY in str(w.message)]
        out, err = self.capfd.readouterr()
        found += [
            f"fd {name}" for name, text in (("stdout", out), ("stderr", err)) if CANARY in text
        ]
        for folder in [self.root, self.tmpdir, *self.extra_dirs]:
            for path in sorted(folder.rglob("*")):
                readable = path.is_file() and not path.is_symlink()
                if readable and path not in self.secret_files and needle in path.read_bytes():
                    found.append(f"file {path}")
        client = _admin(self.endpoint)
        for bucket in self.buckets:
            for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
                for obj in page.get("Contents", ()):
                    body = client.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read()
                    if needle in body or needle in obj["Key"].encode():
                        found.append(f"s3://{bucket}/{obj['Key']}")
        return found


def _admin(endpoint: str) -> Any:
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


@pytest.fixture
def canary(
    tmp_path: Path,
    capfd: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    s3_server: str,
) -> Iterator[Canary]:
    """A ``Canary`` recording logs (levels untouched), warnings and the temp dir."""
    tmpdir = tmp_path / "tmpdir"
    tmpdir.mkdir()
    monkeypatch.setenv("TMPDIR", str(tmpdir))
    monkeypatch.setattr(tempfile, "tempdir", None)  # gettempdir() reads $TMPDIR again
    watch = Canary(tmp_path / "work", tmpdir, capfd)
    watch.root.mkdir()
    watch.endpoint = s3_server
    levels = {name: logging.getLogger(name).level for name in _BOTO_LOGGERS}
    root = logging.getLogger()
    root.addHandler(watch.records)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            watch.warnings = caught
            yield watch
    finally:
        root.removeHandler(watch.records)
    # tensorlake never turns on the AWS libraries' own (header-printing) debug logs
    assert {name: logging.getLogger(name).level for name in _BOTO_LOGGERS} == levels


@pytest.fixture
def secret_creds(s3_creds: dict[str, str]) -> dict[str, str]:
    return {
        **s3_creds,
        "aws_access_key_id": ACCESS_KEY,
        "aws_secret_access_key": CANARY,
        "aws_session_token": CANARY,
    }


@pytest.fixture
def denying_server() -> Iterator[str]:
    """An S3 endpoint that answers every request 403 AccessDenied (a wrong secret)."""

    class Deny(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _deny(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            if length:
                self.rfile.read(length)
            body = (
                b"<?xml version='1.0' encoding='UTF-8'?><Error><Code>AccessDenied</Code>"
                b"<Message>Access Denied</Message></Error>"
            )
            self.send_response(403)
            self.send_header("Content-Type", "application/xml")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = _deny

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Deny)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join()


# --- the paths that take credentials ----------------------------------------------------


def _datasets_on_s3(watch: Canary, bucket: str, creds: dict[str, str]) -> None:
    url = f"s3://{bucket}/ds"
    ds = tl.empty(url, creds=creds)
    with ds:
        ds.create_tensor("images", htype="image", sample_compression="png")
        ds.create_tensor("labels", htype="class_label", class_names=["cat", "dog"])
        ds.create_tensor("meta", htype="json")
    ds.info.update(note="a dataset")
    for i in range(4):
        ds.append({"images": np.full((8, 8, 3), i, np.uint8), "labels": i % 2, "meta": {"row": i}})
    ds.commit("four rows")
    watch.reprs("dataset", ds, ds[1:3], ds.images, ds.labels, ds.info, ds.labels.info)
    watch.reprs("storage", core_of(ds).storage, core_of(ds).links)
    watch.see("dataset html", ds._repr_html_())
    watch.see("tensor html", ds.images._repr_html_())
    watch.printed("summary", ds.summary)
    watch.printed("log", ds.log)
    watch.printed("verify", lambda: watch.see("verify report", ds.verify(progressbar=True)))
    watch.reprs("unpickled", pickle.loads(pickle.dumps(ds)))
    ds.close()
    reader = tl.load(url, creds=creds, read_only=True)
    assert reader.labels.numpy().ravel().tolist() == [0, 1, 0, 1]
    watch.reprs("reader", reader)
    watch.error("write to a reader", lambda: reader.meta.append({}))
    watch.error("missing dataset", lambda: tl.load(f"s3://{bucket}/nothing", creds=creds))
    watch.error("creds typo", lambda: tl.load(url, creds={**creds, "aws_secret_key": CANARY}))
    local = str(watch.root / "local-with-creds")
    watch.error("creds for a local path", lambda: tl.empty(local, creds=creds))
    not_a_dict: Any = CANARY  # the secret alone, where the dict goes
    watch.error("creds not a dict", tl.load, url, creds=not_a_dict, expected=tl.StorageError)


def _errors_from_servers(watch: Canary, creds: dict[str, str], denying: str) -> None:
    denied = {**creds, "endpoint_url": denying}
    watch.error("access denied: load", lambda: tl.load("s3://b/ds", creds=denied))
    watch.error("access denied: empty", lambda: tl.empty("s3://b/ds", creds=denied))
    store = S3Storage("b", "p", denied, max_attempts=1)
    watch.error("access denied: put", lambda: store.put("k", b"v"))
    watch.error("access denied: list", lambda: list(store.list()))
    watch.reprs("denied storage", store)
    nowhere = {**creds, "endpoint_url": "http://127.0.0.1:9"}  # discard port: refused
    store = S3Storage("b", "p", nowhere, max_attempts=1, connect_timeout=1)
    watch.error("unreachable endpoint", lambda: store.get("k"))
    watch.error(
        "bad endpoint URL",
        lambda: tl.load("s3://b/ds", creds={**creds, "endpoint_url": "::"}),
        expected=tl.StorageError,
    )


def _links(
    watch: Canary, bucket: str, creds: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    admin = _admin(creds["endpoint_url"])
    for i in range(3):
        admin.put_object(Bucket=bucket, Key=f"raw/{i}.jpg", Body=jpeg_bytes(10 + i, 12, seed=i))
    path = watch.root / "links"
    ds = tl.empty(str(path))
    ds.create_tensor("images", htype="link[image]", sample_compression="jpg")
    ds.add_creds_key("raw")
    watch.error(
        "unpopulated key",
        lambda: ds.images.append(tl.link(f"s3://{bucket}/raw/0.jpg", creds_key="raw")),
    )
    ds.populate_creds("raw", creds)
    ds.images.extend([tl.link(f"s3://{bucket}/raw/{i}.jpg", creds_key="raw") for i in range(2)])
    watch.error(
        "missing object",
        lambda: ds.images.append(tl.link(f"s3://{bucket}/raw/gone.jpg", creds_key="raw")),
    )
    ds.populate_creds("raw", {**creds, "aws_secret_acces_key": CANARY})
    watch.error("populated creds typo", lambda: ds.images[0].numpy())
    ds.populate_creds("raw", creds)
    # a managed key: each process reads TENSORLAKE_CREDS_MANAGED_* itself
    ds.add_creds_key("managed", managed=True)
    watch.error(
        "managed key unset",
        lambda: ds.images.append(tl.link(f"s3://{bucket}/raw/2.jpg", creds_key="managed")),
    )
    monkeypatch.setenv("TENSORLAKE_CREDS_MANAGED_AWS_SECRET_ACCESS_KEY", CANARY)
    watch.error(
        "managed key half set",
        lambda: ds.images.append(tl.link(f"s3://{bucket}/raw/2.jpg", creds_key="managed")),
    )
    monkeypatch.setenv("TENSORLAKE_CREDS_MANAGED_AWS_ACCESS_KEY_ID", ACCESS_KEY)
    monkeypatch.setenv("TENSORLAKE_CREDS_MANAGED_AWS_SESSION_TOKEN", CANARY)
    monkeypatch.setenv("TENSORLAKE_CREDS_MANAGED_ENDPOINT_URL", creds["endpoint_url"])
    ds.images.append(tl.link(f"s3://{bucket}/raw/2.jpg", creds_key="managed"))
    ds.commit("three links")
    assert [a.shape for a in ds.images.numpy(aslist=True)] == [
        (10, 12, 3),
        (11, 12, 3),
        (12, 12, 3),
    ]
    watch.reprs("link dataset", ds, ds.images, core_of(ds).links, ds.images.info)
    watch.see("link html", ds._repr_html_())
    watch.printed("link summary", ds.summary)
    # compute workers get the populated key's creds and resolve the managed one
    for method in ("fork", "forkserver"):
        monkeypatch.setenv("TENSORLAKE_START_METHOD", method)
        for key in ("raw", "managed"):
            urls = [f"s3://{bucket}/raw/{i}.jpg" for i in range(3)]
            run = link_rows(creds_key=key).eval
            watch.printed(f"eval links {method} {key}", run, urls, ds, num_workers=2)
    watch.printed(
        "eval links threaded",
        lambda: link_rows(creds_key="raw").eval(urls, ds, num_workers=2, scheduler="threaded"),
    )
    assert len(ds.images) == 3 + 5 * 3
    ds.commit("computed links")
    ds.close()


def _compute_on_s3(
    watch: Canary, bucket: str, creds: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"s3://{bucket}/computed"
    ds = tl.empty(url, creds=creds)
    ds.create_tensor("x", dtype="int64")
    ds.commit("schema")
    runs = [("processed", "fork"), ("processed", "forkserver"), ("threaded", "auto")]
    for scheduler, method in runs:
        monkeypatch.setenv("TENSORLAKE_START_METHOD", method)
        report = watch.printed(
            f"eval {scheduler} {method}",
            fail_on(bad=-1).eval,
            list(range(20)),
            ds,
            num_workers=2,
            scheduler=scheduler,
            checkpoint_interval=10,
        )
        watch.reprs(f"eval report {scheduler}", report)
        err = watch.error(
            f"failing eval {scheduler} {method}",
            fail_on(bad=3).eval,
            list(range(8)),
            ds,
            num_workers=2,
            scheduler=scheduler,
        )
        assert "index 3" in str(err)
    assert len(ds.x) == 60
    watch.printed("compute log", ds.log)
    ds.close()


def _upload(watch: Canary, bucket: str, creds: dict[str, str], denying: str) -> None:
    folder = watch.root / "upload"
    (folder / "a").mkdir(parents=True)
    for i in range(3):
        (folder / "a" / f"{i}.bin").write_bytes(bytes([i]) * 1000)
    report = watch.printed("upload", lambda: tl.upload(folder, f"s3://{bucket}/up", creds=creds))
    watch.reprs("upload report", report)
    watch.error(
        "upload denied",
        lambda: tl.upload(
            folder, "s3://b/up", creds={**creds, "endpoint_url": denying}, progressbar=False
        ),
    )
    # the DIGITS config file, on the command line
    config = watch.root / "upload_config.cfg"
    config.write_text(
        f"[S3 Config]\nendpoint = {creds['endpoint_url']}\naccesskey = {ACCESS_KEY}\n"
        f"secretkey = {CANARY}\nbucket = {bucket}\nprefix = cli-up\n"
    )
    watch.secret_files.add(config)
    assert (
        watch.printed(
            "cli upload", lambda: cli(["--debug", "upload", str(folder), "--config", str(config)])
        )
        == 0
    )
    bad_configs = {
        "no section": f"secretkey = {CANARY}\n",
        "no equals": f"[S3 Config]\nsecretkey {CANARY}\n",
        "twice": f"[S3 Config]\nsecretkey = {CANARY}\nsecretkey = {CANARY}\n",
        "half": f"[S3 Config]\nsecretkey = {CANARY}\nbucket = b\n",
        "unknown": f"[S3 Config]\nsecret = {CANARY}\n",
    }
    for name, text in bad_configs.items():
        bad = watch.root / f"bad-{name.replace(' ', '-')}.cfg"
        bad.write_text(text)
        watch.secret_files.add(bad)
        watch.printed(f"cli bad config {name}", cli, ["upload", str(folder), "--config", str(bad)])
        watch.error(
            f"debug bad config {name}",
            cli,
            ["--debug", "upload", str(folder), "--config", str(bad)],
        )


def _registry(
    watch: Canary, bucket: str, creds: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    home = watch.root / "home"
    monkeypatch.setenv("TENSORLAKE_HOME", str(home))
    for key in ("REMOTE", "ENDPOINT_URL", "PROFILE", "REGION", "PUBLIC"):
        monkeypatch.delenv(f"TENSORLAKE_{key}", raising=False)
    watch.error(
        "config set secret", lambda: tl.registry.set_setting("aws_secret_access_key", CANARY)
    )
    watch.printed(
        "cli config set secret", lambda: cli(["config", "set", "aws_secret_access_key", CANARY])
    )
    tl.registry.set_setting("remote", f"s3://{bucket}/shared")
    tl.registry.set_setting("endpoint_url", creds["endpoint_url"])
    path = home / "config.toml"
    text = path.read_text() + (
        f'aws_access_key_id = "{ACCESS_KEY}"\naws_secret_access_key = "{CANARY}"\n'
        f'aws_session_token = "{CANARY}"\n'
    )
    path.write_text(text)
    watch.secret_files.add(path)
    path.chmod(0o644)
    watch.error("config readable by others", tl.registry.load_settings)
    watch.printed("cli ls remote, readable", lambda: cli(["ls", "--remote"]))
    path.chmod(0o600)
    settings = tl.registry.load_settings()
    assert settings.creds()["aws_secret_access_key"] == CANARY  # the file's key is used
    watch.reprs("settings", settings)
    watch.see("list_settings", tl.registry.list_settings())
    watch.printed("cli config list", lambda: cli(["config", "list"]))
    watch.printed("cli config get", lambda: cli(["config", "get", "aws_secret_access_key"]))
    ds = tl.empty(home / "datasets" / "flower")
    ds.create_tensor("x", dtype="int64")
    ds.x.extend([1, 2, 3])
    ds.commit("rows")
    ds.close()
    watch.reprs("push", watch.printed("push", lambda: tl.registry.push("flower", progressbar=True)))
    watch.see("ls remote", tl.registry.ls(remote=True))
    watch.printed("cli ls remote", lambda: cli(["--debug", "ls", "--remote"]))
    monkeypatch.setenv("TENSORLAKE_HOME", str(watch.root / "home2"))
    (watch.root / "home2").mkdir()
    (watch.root / "home2" / "config.toml").write_text(text)
    (watch.root / "home2" / "config.toml").chmod(0o600)
    watch.secret_files.add(watch.root / "home2" / "config.toml")
    watch.reprs("pull", watch.printed("pull", lambda: tl.registry.pull("flower", progressbar=True)))
    watch.error("pull missing", lambda: tl.registry.pull("ghost", progressbar=False))
    watch.printed("cli pull missing", lambda: cli(["pull", "ghost", "--no-progress"]))


def _cli_with_aws_env(
    watch: Canary, bucket: str, creds: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", CANARY)
    monkeypatch.setenv("AWS_SESSION_TOKEN", CANARY)
    endpoint = ["--endpoint-url", creds["endpoint_url"]]
    url = f"s3://{bucket}/ds"
    for args in (
        ["info", url],
        ["log", url],
        ["verify", url],
        ["lock", "status", url],
        ["info", f"s3://{bucket}/nothing"],
    ):
        watch.printed(f"cli {args}", cli, [*args, *endpoint])
    watch.error(
        "cli --debug missing", lambda: cli(["--debug", "info", f"s3://{bucket}/nothing", *endpoint])
    )
    profile_file = watch.root / "aws-credentials"
    profile_file.write_text(
        f"[secret]\naws_access_key_id = {ACCESS_KEY}\naws_secret_access_key = {CANARY}\n"
        f"aws_session_token = {CANARY}\n"
    )
    watch.secret_files.add(profile_file)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(profile_file))
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    monkeypatch.delenv("AWS_SESSION_TOKEN")
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    watch.printed("cli profile", lambda: cli(["info", url, "--profile", "secret", *endpoint]))


def test_the_canary_is_nowhere(
    canary: Canary,
    s3_bucket: str,
    secret_creds: dict[str, str],
    denying_server: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    canary.buckets.append(s3_bucket)
    _datasets_on_s3(canary, s3_bucket, secret_creds)
    _errors_from_servers(canary, secret_creds, denying_server)
    _links(canary, s3_bucket, secret_creds, monkeypatch)
    _compute_on_s3(canary, s3_bucket, secret_creds, monkeypatch)
    _upload(canary, s3_bucket, secret_creds, denying_server)
    _registry(canary, s3_bucket, secret_creds, monkeypatch)
    _cli_with_aws_env(canary, s3_bucket, secret_creds, monkeypatch)
    assert len(canary.seen) > 150  # every path above was seen
    leaks = canary.places()
    assert not leaks, "the canary was found in:\n" + "\n".join(leaks)


def test_our_logs_hold_no_secret_at_debug(
    canary: Canary,
    s3_bucket: str,
    secret_creds: dict[str, str],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With every logger at DEBUG (a user's ``logging.basicConfig(level=DEBUG)``), no
    record but the AWS libraries' own holds the canary (botocore prints request
    headers, the session token among them: its behaviour, documented in
    docs/reliability.md, and the reason tensorlake never turns those loggers on)."""
    caplog.set_level(logging.DEBUG)
    canary.buckets.append(s3_bucket)
    _datasets_on_s3(canary, s3_bucket, secret_creds)
    _compute_on_s3(canary, s3_bucket, secret_creds, monkeypatch)
    _upload(canary, s3_bucket, secret_creds, "http://127.0.0.1:9")
    ours = [r for r in canary.records.records if not r.name.startswith(_BOTO_LOGGERS)]
    assert len(ours) < len(canary.records.records)  # DEBUG was on: botocore spoke
    assert [_text(r)[:200] for r in ours if CANARY in _text(r)] == []
    canary.records.records.clear()  # botocore's own, checked above
    caplog.clear()
    leaks = canary.places()
    assert not leaks, "the canary was found in:\n" + "\n".join(leaks)


def test_the_grep_finds_a_planted_canary(canary: Canary, s3_bucket: str) -> None:
    """Each channel ``Canary`` greps does catch the canary (so a clean result means it)."""
    canary.buckets.append(s3_bucket)
    canary.see("a text", f"x {CANARY} y")
    logging.getLogger("tensorlake.planted").warning("creds %s", CANARY)
    warnings.warn(f"planted {CANARY}", UserWarning, stacklevel=1)
    os.write(2, f"planted {CANARY}\n".encode())
    (canary.root / "sub").mkdir()
    (canary.root / "sub" / "f.bin").write_bytes(b"\0" + CANARY.encode() + b"\0")
    (canary.tmpdir / "pickled").write_bytes(pickle.dumps({"secret": CANARY}))
    _admin(canary.endpoint).put_object(Bucket=s3_bucket, Key="k", Body=CANARY.encode())
    found = canary.places()
    assert [p.split(" ")[0] for p in found] == [
        "a",
        "log",
        "warning",
        "fd",
        "file",
        "file",
        f"s3://{s3_bucket}/k",
    ]


def test_a_compute_jobs_repr_shows_no_secret(secret_creds: dict[str, str]) -> None:
    from tensorlake.compute.cluster import ClusterJob
    from tensorlake.compute.worker import Job

    job = Job(["x"], "s3://b/x", secret_creds, False, False, environ={"AWS_SESSION_TOKEN": CANARY})
    assert CANARY not in repr(job) + repr(ClusterJob("t", job))


@pytest.fixture
def cluster(request: pytest.FixtureRequest, canary: Canary) -> Iterator[str]:
    """A local Ray or Dask cluster whose files (Ray's session folder, Dask's worker
    folders) are under the canary's temp dir."""
    if request.param == "ray":
        ray = pytest.importorskip("ray")
        if ray.is_initialized():
            pytest.skip("ray is already running in this process")
        # a short folder: Ray's socket paths must stay under 107 characters
        folder = Path(tempfile.mkdtemp(prefix="tl-ray-", dir="/tmp"))
        ray.init(
            num_cpus=2,
            object_store_memory=100 << 20,
            include_dashboard=False,
            _temp_dir=str(folder),
        )
        canary.extra_dirs.append(folder)  # its logs, spilled objects
        try:
            yield "ray"
        finally:
            ray.shutdown()
            shutil.rmtree(folder, ignore_errors=True)
    else:
        distributed = pytest.importorskip("distributed")
        cluster = distributed.LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            dashboard_address=None,
            local_directory=str(canary.tmpdir),
        )
        client = distributed.Client(cluster)
        try:
            yield "dask"
        finally:
            client.close()
            cluster.close()


@pytest.mark.slow
@pytest.mark.parametrize("cluster", ["ray", "dask"], indirect=True)
def test_cluster_workers_leave_no_secret(
    cluster: str, canary: Canary, s3_bucket: str, secret_creds: dict[str, str]
) -> None:
    """The job a Ray or Dask worker gets (target creds, populated link creds) leaves the
    canary in no log, message or file of the cluster."""
    canary.buckets.append(s3_bucket)
    ds = tl.empty(f"s3://{s3_bucket}/cluster", creds=secret_creds)
    ds.create_tensor("x", dtype="int64")
    ds.commit("schema")
    report = canary.printed(
        "cluster eval", fail_on(bad=-1).eval, list(range(20)), ds, num_workers=2, scheduler=cluster
    )
    canary.reprs("cluster report", report)
    err = canary.error(
        "cluster failing eval",
        fail_on(bad=3).eval,
        list(range(8)),
        ds,
        num_workers=2,
        scheduler=cluster,
    )
    assert "index 3" in str(err)
    assert ds.x.numpy().ravel().tolist() == list(range(20))
    _admin(canary.endpoint).put_object(Bucket=s3_bucket, Key="raw/0.jpg", Body=jpeg_bytes(9, 9))
    links = tl.empty(str(canary.root / "links"))
    links.create_tensor("images", htype="link[image]", sample_compression="jpg")
    links.add_creds_key("raw")
    links.populate_creds("raw", secret_creds)
    urls = [f"s3://{s3_bucket}/raw/0.jpg"] * 4
    canary.printed(
        "cluster links",
        link_rows(creds_key="raw").eval,
        urls,
        links,
        num_workers=2,
        scheduler=cluster,
    )
    assert len(links.images) == 4
    ds.close()
    links.close()
    leaks = canary.places()
    assert not leaks, "the canary was found in:\n" + "\n".join(leaks)
