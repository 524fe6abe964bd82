"""Managed creds keys (``ds.add_creds_key(key, managed=True)``): only the name is stored;
every process, compute workers included, resolves it from ``TENSORLAKE_CREDS_<KEY>_*``
variables or the AWS profile named ``key``, against the moto S3 server."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
import textwrap
from pathlib import Path

import boto3
import pytest

import tensorlake as tl
from tensorlake.api.dataset import core_of
from tensorlake.engine.links.managed import env_prefix, resolve_managed
from tensorlake.storage import from_url
from tests.api.helpers import jpeg_bytes

SECRET = "managed-s3cr3t-Never-Store-Me-41c9"
KEY = "raw-data"
PREFIX = "TENSORLAKE_CREDS_RAW_DATA_"
REPO = Path(__file__).parents[3]


@pytest.fixture
def bucket(s3_bucket: str, s3_server: str) -> str:
    """A moto bucket holding ``raw/img<i>.jpg`` (i < 4, 20 + i rows high) and a text file."""
    client = boto3.client(
        "s3",
        endpoint_url=s3_server,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    for i in range(4):
        client.put_object(Bucket=s3_bucket, Key=f"raw/img{i}.jpg", Body=jpeg_bytes(20 + i, 30, i))
    client.put_object(Bucket=s3_bucket, Key="raw/notes.txt", Body=b"text")
    return s3_bucket


@pytest.fixture
def env_creds(monkeypatch: pytest.MonkeyPatch, s3_server: str) -> dict[str, str]:
    """The managed key's variables: the only place the moto endpoint is named."""
    found = {
        PREFIX + "AWS_ACCESS_KEY_ID": "testing",
        PREFIX + "AWS_SECRET_ACCESS_KEY": SECRET,
        PREFIX + "ENDPOINT_URL": s3_server,
        PREFIX + "AWS_REGION": "us-east-1",
    }
    for name, value in found.items():
        monkeypatch.setenv(name, value)
    return found


def _links(bucket: str, n: int = 4) -> list[tl.LinkedSample]:
    return [tl.link(f"s3://{bucket}/raw/img{i}.jpg", creds_key=KEY) for i in range(n)]


def _new(path: Path) -> tl.Dataset:
    ds = tl.empty(str(path))
    ds.create_tensor("images", htype="link[image]", sample_compression="jpg")
    ds.add_creds_key(KEY, managed=True)
    return ds


def _assert_never_stored(path: Path, secret: str = SECRET) -> None:
    storage = from_url(str(path), read_only=True)
    keys = list(storage.list(""))
    assert any(k.startswith("commits/") for k in keys)
    for key in keys:
        assert secret.encode() not in storage.get(key), key


def test_the_variable_names_follow_the_key():
    assert env_prefix("raw-data.v2") == "TENSORLAKE_CREDS_RAW_DATA_V2_"
    assert env_prefix("Raw") == "TENSORLAKE_CREDS_RAW_"
    assert env_prefix("ü9") == "TENSORLAKE_CREDS__9_"


def test_env_vars_resolve_a_managed_key_and_the_secret_is_never_stored(tmp_path, bucket, env_creds):
    path = tmp_path / "ds"
    ds = _new(path)
    assert ds.get_creds_keys() == [KEY] and ds.get_managed_creds_keys() == [KEY]
    ds.images.extend(_links(bucket, 3))  # verify: fetched concurrently
    ds.images.append(_links(bucket)[3])  # and one by one
    with pytest.raises(tl.SampleError, match="is not an image"):
        ds.images.append(tl.link(f"s3://{bucket}/raw/notes.txt", creds_key=KEY))
    assert len(ds) == 4
    assert ds.images[2].shape == (22, 30, 3)
    assert ds.images[1].tobytes() == jpeg_bytes(21, 30, 1)
    assert [a.shape[0] for a in ds.images.numpy(aslist=True)] == [20, 21, 22, 23]
    assert ds.images.verify_links() == {"checked": 4, "missing": [], "changed": []}
    assert SECRET.encode() not in pickle.dumps(core_of(ds).links)  # what workers get
    ds.commit("four managed links")
    ds.close()
    _assert_never_stored(path)
    again = tl.load(str(path), read_only=True)
    assert again.get_managed_creds_keys() == [KEY]
    assert again.images[3].numpy().shape == (23, 30, 3)


@pytest.mark.parametrize("where", ["config", "credentials"])
def test_a_named_profile_resolves_a_managed_key(tmp_path, bucket, s3_server, monkeypatch, where):
    config, credentials = tmp_path / "aws_config", tmp_path / "aws_credentials"
    config.write_text("[default]\nregion = us-east-1\n")
    credentials.write_text("[other]\naws_access_key_id = x\naws_secret_access_key = y\n")
    keys = f"aws_access_key_id = testing\naws_secret_access_key = {SECRET}\n"
    if where == "config":  # the profile's own endpoint: nothing else names the server
        with config.open("a") as f:
            f.write(f"[profile {KEY}]\nregion = us-east-1\nendpoint_url = {s3_server}\n{keys}")
    else:  # only in the credentials file; the endpoint from the AWS environment
        with credentials.open("a") as f:
            f.write(f"[{KEY}]\n{keys}")
        monkeypatch.setenv("AWS_ENDPOINT_URL", s3_server)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(credentials))
    assert resolve_managed(KEY) == {"profile_name": KEY}
    path = tmp_path / "ds"
    ds = _new(path)
    ds.images.extend(_links(bucket))
    assert [a.shape[0] for a in ds.images.numpy(aslist=True)] == [20, 21, 22, 23]
    assert ds.images.verify_links()["missing"] == []
    ds.commit("linked through a profile")
    _assert_never_stored(path)


def test_variables_come_before_the_profile_and_populate_creds_before_both(
    tmp_path, bucket, s3_creds, monkeypatch
):
    config = tmp_path / "aws_config"
    config.write_text(f"[profile {KEY}]\nregion = eu-west-1\n")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    assert resolve_managed(KEY) == {"profile_name": KEY}
    monkeypatch.setenv(PREFIX + "AWS_REGION", "us-east-1")  # any variable: the variables
    assert resolve_managed(KEY) == {"aws_region": "us-east-1"}
    monkeypatch.setenv(PREFIX + "AWS_ACCESS_KEY_ID", "testing")
    with pytest.raises(tl.DatasetError, match=f"half set.*{PREFIX}AWS_SECRET_ACCESS_KEY"):
        resolve_managed(KEY)
    ds = _new(tmp_path / "ds")  # neither would reach the moto server ...
    ds.populate_creds(KEY, s3_creds)  # ... this session's creds take their place
    ds.images.extend(_links(bucket, 2))
    assert ds.images[1].numpy().shape == (21, 30, 3)


def test_a_managed_key_with_no_credentials_says_how_to_give_them(
    tmp_path, bucket, env_creds, monkeypatch
):
    path = tmp_path / "ds"
    ds = _new(path)
    ds.images.append(_links(bucket)[0])
    ds.close()
    for name in env_creds:
        monkeypatch.delenv(name)
    reader = tl.load(str(path), read_only=True)
    expected = (
        rf"managed creds key '{KEY}'.*{PREFIX}AWS_ACCESS_KEY_ID.*"
        rf"{PREFIX}AWS_SECRET_ACCESS_KEY.*AWS profile named '{KEY}'.*populate_creds"
    )
    with pytest.raises(tl.DatasetError, match=expected):
        reader.images[0].numpy()
    writer = _new(tmp_path / "other")
    with pytest.raises(tl.DatasetError, match=expected):
        writer.images.append(_links(bucket)[0])  # verify at append
    with pytest.raises(tl.DatasetError, match=expected):
        writer.images.extend(_links(bucket, 2))
    assert len(writer.images) == 0


def test_management_is_stored_as_a_sorted_setting_and_can_change(tmp_path):
    path = tmp_path / "ds"
    ds = tl.empty(str(path))
    ds.add_creds_key("plain")
    ds.add_creds_key("zeta", managed=True)
    ds.add_creds_key("plain", managed=True)  # a plain key becomes managed
    ds.add_creds_key("zeta")  # adding again changes nothing
    assert ds.get_creds_keys() == ["plain", "zeta"]
    assert ds.get_managed_creds_keys() == ["plain", "zeta"]
    manifest = core_of(ds).manifest()
    assert manifest.creds_keys == ["plain", "zeta"]  # what an older tensorlake reads
    assert manifest.settings["managed_creds_keys"] == ["plain", "zeta"]
    ds.change_creds_management("zeta", False)
    assert tl.load(str(path)).get_managed_creds_keys() == ["plain"]
    ds.change_creds_management("plain", False)
    assert "managed_creds_keys" not in core_of(ds).manifest().settings
    assert tl.load(str(path)).get_managed_creds_keys() == []
    with pytest.raises(tl.DatasetError, match="Unknown creds key 'nope'"):
        ds.change_creds_management("nope", True)
    ds.add_creds_key("raw-data", managed=True)
    with pytest.raises(tl.LinkError, match=f"would both read {PREFIX}"):
        ds.add_creds_key("raw_data", managed=True)
    ds.checkout("other", create=True)
    assert ds.get_managed_creds_keys() == ["raw-data"]  # a version's setting


@tl.compute
def link_rows(url, sample_out):
    sample_out.images.append(tl.link(url, creds_key=KEY))


def test_compute_workers_resolve_a_managed_key_themselves(tmp_path, bucket, env_creds, monkeypatch):
    # spawn: each worker starts with this process's environment as it is now (a
    # forkserver started by an earlier test would keep the environment it started with)
    monkeypatch.setenv("TENSORLAKE_START_METHOD", "spawn")
    path = tmp_path / "ds"
    ds = _new(path)
    assert SECRET.encode() not in pickle.dumps(core_of(ds).links)  # what workers get
    urls = [f"s3://{bucket}/raw/img{i}.jpg" for i in range(4)]
    link_rows().eval(urls, ds, num_workers=2, progressbar=False)
    assert [a.shape[0] for a in ds.images.numpy(aslist=True)] == [20, 21, 22, 23]
    assert ds.images.verify_links()["checked"] == 4
    ds.commit("linked by workers")
    _assert_never_stored(path)


def test_a_fresh_process_resolves_the_key_with_no_populate_creds(tmp_path, bucket, env_creds):
    path = tmp_path / "ds"
    ds = _new(path)
    ds.images.extend(_links(bucket))
    ds.commit("managed")
    ds.close()
    script = textwrap.dedent(
        f"""
        import json, os
        import tensorlake as tl
        ds = tl.load({str(path)!r}, read_only=True)
        saved = {{k: os.environ.pop(k) for k in {sorted(env_creds)!r}}}
        try:
            ds.images[0].numpy()
            missing = None
        except tl.DatasetError as err:
            missing = str(err)
        os.environ.update(saved)  # given later in the session: found then
        print(json.dumps({{
            "managed": ds.get_managed_creds_keys(),
            "shapes": [list(a.shape) for a in ds.images.numpy(aslist=True)],
            "missing": missing,
            "report": ds.images.verify_links(),
        }}))
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=dict(os.environ),
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["managed"] == [KEY]
    assert [s[0] for s in result["shapes"]] == [20, 21, 22, 23]
    assert result["missing"] and PREFIX + "AWS_ACCESS_KEY_ID" in result["missing"]
    assert result["report"] == {"checked": 4, "missing": [], "changed": []}
