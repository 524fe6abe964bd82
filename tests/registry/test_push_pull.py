"""push / pull through the moto S3 server: round trips, increments, races, kills, damage."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import tensorlake as tl
from tensorlake.api.names import RECORD_NAME
from tensorlake.errors import (
    DatasetNotFoundError,
    FormatError,
    InvalidNameError,
    LockedError,
    StorageError,
    VersionError,
)
from tensorlake.registry.remote import Remote

from .conftest import make_local

ROOT = Path(__file__).resolve().parents[2]


def tree(root: Path) -> dict[str, bytes]:
    """Every file of a local copy but its lock and registry record."""
    out = {}
    for parent, _, files in os.walk(root):
        for f in files:
            rel = Path(parent, f).relative_to(root).as_posix()
            if rel not in ("lock", RECORD_NAME):
                out[rel] = Path(parent, f).read_bytes()
    return out


def remote_keys(admin, bucket: str, prefix: str = "shared/") -> list[str]:
    keys = []
    for page in admin.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        keys += [o["Key"] for o in page.get("Contents", ())]
    return keys


def switch_home(monkeypatch: pytest.MonkeyPatch, path: Path) -> Path:
    monkeypatch.setenv("TENSORLAKE_HOME", str(path))
    return path


def test_push_then_pull_elsewhere_is_byte_for_byte_equal(home, remote, monkeypatch, tmp_path):
    ds = make_local(home, "flower")
    (home / "datasets" / "flower" / "README.md").write_text("# flower\n")
    report = tl.registry.push("flower", progressbar=False)
    assert (report.version, report.commit, report.up_to_date) == (1, ds.commit_id, False)
    assert report.uploaded_objects == report.objects > 0
    switch_home(monkeypatch, tmp_path / "other")
    pulled = tl.registry.pull("flower", progressbar=False)
    assert pulled.version == 1 and pulled.downloaded_objects > 0
    there = tl.load("flower")
    assert there.commit_id == ds.commit_id
    np.testing.assert_array_equal(there.images[5].numpy(), ds.images[5].numpy())
    assert there.notes[7].numpy() == ds.notes[7].numpy()
    assert tree(Path(there.path)) == tree(Path(ds.path))
    again = tl.registry.pull("flower", progressbar=False)
    assert again.downloaded_objects == 0


def test_incremental_push_uploads_only_new_objects(home, remote, s3_bucket, _s3_admin):
    ds = make_local(home, "flower", rows=200)
    first = tl.registry.push("flower", progressbar=False)
    before = set(remote_keys(_s3_admin, s3_bucket))
    with ds:
        ds.append({"images": np.zeros((16, 16, 3), np.uint8), "labels": 1, "notes": "new"})
    ds.commit("one row")
    second = tl.registry.push("flower", progressbar=False)
    added = set(remote_keys(_s3_admin, s3_bucket)) - before
    assert second.version == 2
    # the new commit, the tables that changed, one chunk per tensor, and the version index
    assert len(added) == second.uploaded_objects + 1 < first.uploaded_objects
    assert second.uploaded_bytes < 20_000
    assert any(k.endswith("versions/flower/00000002.msgpack") for k in added)
    assert tl.registry.push("flower", progressbar=False).up_to_date


def test_local_listing_shows_what_was_pushed(home, remote):
    ds = make_local(home, "flower")
    make_local(home, "other", rows=3)
    (home / "datasets" / ".pull-half").mkdir(parents=True)  # a pull cut off: not listed
    tl.registry.push("flower", progressbar=False)
    listed = {d["name"]: d for d in tl.registry.ls()}
    assert set(listed) == {"flower", "other"}
    assert listed["flower"]["pushed"] and listed["flower"]["version"] == 1
    assert (listed["flower"]["rows"], listed["flower"]["tensors"]) == (40, 3)
    assert listed["flower"]["head"] == ds.commit_id
    assert not listed["other"]["pushed"] and listed["other"]["rows"] == 3
    with ds:
        ds.notes.append("more")
    ds.commit("more")
    flower = next(d for d in tl.registry.ls() if d["name"] == "flower")
    assert not flower["pushed"] and flower["head"] == ds.commit_id
    remote_listing = tl.registry.ls(remote=True)
    assert [d["name"] for d in remote_listing] == ["flower"]
    assert [v["version"] for v in remote_listing[0]["versions"]] == [1]
    assert remote_listing[0]["versions"][0]["rows"] == 40


def test_pull_refuses_to_drop_local_work_without_force(home, remote, monkeypatch, tmp_path):
    ds = make_local(home, "flower")
    tl.registry.push("flower", progressbar=False)
    switch_home(monkeypatch, tmp_path / "b")
    tl.registry.pull("flower", progressbar=False)
    mine = tl.load("flower")
    with mine:
        mine.notes.append("b's row")
    mine.commit("b")
    switch_home(monkeypatch, home)
    with ds:
        ds.notes.append("a's row")
    ds.commit("a")
    tl.registry.push("flower", progressbar=False)
    switch_home(monkeypatch, tmp_path / "b")
    with pytest.raises(VersionError, match="has commits that version 2 does not hold"):
        tl.registry.pull("flower", progressbar=False)
    assert tl.load("flower").commit_id == mine.commit_id  # untouched
    with pytest.raises(VersionError, match="not in the history"):
        tl.registry.push("flower", progressbar=False)
    tl.registry.pull("flower", force=True, progressbar=False)
    assert tl.load("flower").commit_id == ds.commit_id
    assert tl.load("flower").notes[-1].numpy() == ds.notes[-1].numpy()


def test_force_push_publishes_a_diverged_commit_as_a_new_version(
    home, remote, monkeypatch, tmp_path
):
    ds = make_local(home, "flower")
    tl.registry.push("flower", progressbar=False)
    other = make_local(switch_home(monkeypatch, tmp_path / "b"), "flower", rows=5, seed=1)
    report = tl.registry.push("flower", force=True, progressbar=False)
    assert report.version == 2
    switch_home(monkeypatch, tmp_path / "c")
    tl.registry.pull("flower@1", progressbar=False)
    assert tl.load("flower").commit_id == ds.commit_id
    tl.registry.pull("flower", force=True, progressbar=False)
    assert tl.load("flower").commit_id == other.commit_id and len(tl.load("flower")) == 5


def test_versions_by_name(home, remote, monkeypatch, tmp_path):
    ds = make_local(home, "flower")
    first = ds.commit_id
    tl.registry.push("flower", progressbar=False)
    with ds:
        ds.notes.append("x")
    ds.commit("x")
    tl.registry.push("flower", progressbar=False)
    assert tl.load("flower@1").commit_id == first
    assert tl.load("flower@2").commit_id == ds.commit_id
    with pytest.raises(VersionError, match="knows no version 7"):
        tl.load("flower@7")
    switch_home(monkeypatch, tmp_path / "b")
    with pytest.raises(VersionError, match=r"no version 9 .* versions are \[1, 2\]"):
        tl.registry.pull("flower@9", progressbar=False)
    assert not (tmp_path / "b" / "datasets" / "flower").exists()
    tl.registry.pull("flower@1", progressbar=False)
    assert tl.load("flower").commit_id == first
    tl.registry.pull("flower", progressbar=False)  # a fast-forward: no force needed
    assert tl.load("flower").commit_id == ds.commit_id


def test_a_name_in_the_working_directory_is_a_path_first(home, remote, monkeypatch, tmp_path):
    make_local(home, "flower")
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    assert tl.load("flower").path.endswith("datasets/flower")
    tl.empty(work / "flower")
    assert Path(tl.load("flower").path).resolve() == (work / "flower").resolve()


def test_pull_refuses_a_damaged_object_and_installs_nothing(
    home, remote, s3_bucket, _s3_admin, monkeypatch, tmp_path
):
    make_local(home, "flower")
    tl.registry.push("flower", progressbar=False)
    chunk = next(k for k in remote_keys(_s3_admin, s3_bucket) if "/chunks/" in k)
    body = bytearray(_s3_admin.get_object(Bucket=s3_bucket, Key=chunk)["Body"].read())
    body[len(body) // 2] ^= 0xFF
    _s3_admin.put_object(Bucket=s3_bucket, Key=chunk, Body=bytes(body))
    other = switch_home(monkeypatch, tmp_path / "b")
    with pytest.raises(FormatError, match=r"damaged.*Nothing was installed"):
        tl.registry.pull("flower", progressbar=False)
    assert tl.registry.ls() == []
    assert not (other / "datasets" / "flower").exists()


def test_bad_input_gets_clear_errors(home, remote, monkeypatch, s3_server):
    with pytest.raises(DatasetNotFoundError, match="No local dataset 'ghost'"):
        tl.registry.push("ghost", progressbar=False)
    with pytest.raises(DatasetNotFoundError, match="has no dataset 'ghost'"):
        tl.registry.pull("ghost", progressbar=False)
    with pytest.raises(InvalidNameError):
        tl.registry.pull("Not A Name", progressbar=False)
    with pytest.raises(InvalidNameError, match="a version is a number"):
        tl.registry.pull("flower@latest", progressbar=False)
    monkeypatch.setenv("TENSORLAKE_REMOTE", "s3://no-such-bucket-here/x")
    with pytest.raises(StorageError, match="Cannot read the remote s3://no-such-bucket-here/x"):
        tl.registry.ls(remote=True)
    monkeypatch.delenv("TENSORLAKE_REMOTE")
    with pytest.raises(tl.ConfigError, match="No remote is set"):
        tl.registry.ls(remote=True)


def test_push_while_another_process_writes_is_refused(home, remote):
    make_local(home, "flower")
    writer = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time, tensorlake as tl\n"
            "ds = tl.load(sys.argv[1])\n"
            "with ds:\n"
            "    ds.notes.append('busy')\n"
            "    print('writing', flush=True)\n"
            "    time.sleep(60)\n",
            str(home / "datasets" / "flower"),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert writer.stdout is not None and writer.stdout.readline().strip() == "writing"
        with pytest.raises(LockedError, match="Cannot push 'flower' while another process"):
            tl.registry.push("flower", progressbar=False)
    finally:
        writer.kill()
        writer.communicate()


def _cli(*args: str, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "tensorlake.cli.main", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_concurrent_pushes_of_one_name_never_corrupt_it(home, remote, monkeypatch, tmp_path):
    make_local(home, "flower")
    tl.registry.push("flower", progressbar=False)
    homes = [tmp_path / "a", tmp_path / "b"]
    commits = []
    for i, h in enumerate(homes):
        switch_home(monkeypatch, h)
        tl.registry.pull("flower", progressbar=False)
        ds = tl.load("flower")
        with ds:
            ds.notes.append(f"from {i}")
        commits.append(ds.commit(f"from {i}"))
        ds.close()
    envs = [{**os.environ, "TENSORLAKE_HOME": str(h)} for h in homes]
    runs = [_cli("push", "flower", "--no-progress", env=e) for e in envs]
    results = [(*p.communicate(timeout=120), p.returncode) for p in runs]
    results = [(code, out, err) for out, err, code in results]
    codes = sorted(code for code, _, _ in results)
    assert codes == [0, 1], results
    loser = next(err for code, _, err in results if code == 1)
    assert "not in the history" in loser and "Traceback" not in loser
    versions = Remote(remote, {"endpoint_url": os.environ["TENSORLAKE_ENDPOINT_URL"]}).versions(
        "flower"
    )
    assert [v.number for v in versions] == [1, 2] and versions[1].commit in commits
    # forced, both publish: each its own version, numbered in the order they land
    runs = [_cli("push", "flower", "--force", "--no-progress", env=e) for e in envs]
    assert [(p.communicate(timeout=120), p.returncode)[1] for p in runs] == [0, 0]
    versions = Remote(remote, {"endpoint_url": os.environ["TENSORLAKE_ENDPOINT_URL"]}).versions(
        "flower"
    )
    # the push that finds its commit latest has nothing to do; else each is a new version
    assert [v.number for v in versions] in ([1, 2, 3], [1, 2, 3, 4])
    assert {v.commit for v in versions[1:]} == set(commits)


@pytest.mark.parametrize("seed", [0, 1])
def test_a_killed_push_publishes_nothing_and_the_next_resumes(
    home, remote, s3_bucket, _s3_admin, monkeypatch, tmp_path, small_chunks, seed
):
    ds = make_local(home, "flower", rows=400, seed=seed)
    env = {**os.environ, "TENSORLAKE_IO_THREADS": "1"}
    push = _cli("push", "flower", "--no-progress", env=env)
    deadline = time.monotonic() + 60
    wanted = np.random.default_rng(seed).integers(5, 60)
    while time.monotonic() < deadline:
        if len(remote_keys(_s3_admin, s3_bucket, "shared/datasets/")) >= wanted:
            break
        time.sleep(0.01)
    push.send_signal(signal.SIGKILL)
    push.communicate()
    assert remote_keys(_s3_admin, s3_bucket, "shared/versions/") == []
    assert tl.registry.ls(remote=True) == []
    sent_before = len(remote_keys(_s3_admin, s3_bucket, "shared/datasets/"))
    assert sent_before >= wanted
    with pytest.warns(tl.StaleLockWarning, match="no longer running"):  # the killed push's
        report = tl.registry.push("flower", progressbar=False)
    assert report.version == 1
    assert report.uploaded_objects == report.objects - sent_before
    switch_home(monkeypatch, tmp_path / "b")
    tl.registry.pull("flower", progressbar=False)
    assert tree(home / "datasets" / "flower") == tree(tmp_path / "b" / "datasets" / "flower")
    assert tl.load("flower").commit_id == ds.commit_id


def test_an_interrupted_pull_resumes(home, remote, monkeypatch, tmp_path, small_chunks):
    make_local(home, "flower", rows=300)
    tl.registry.push("flower", progressbar=False)
    other = switch_home(monkeypatch, tmp_path / "b")
    env = {**os.environ, "TENSORLAKE_IO_THREADS": "1"}
    pull = _cli("pull", "flower", "--no-progress", env=env)
    partial = other / "datasets" / ".pull-flower" / "tensors"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and sum(len(f) for _, _, f in os.walk(partial)) < 20:
        time.sleep(0.01)
    pull.send_signal(signal.SIGKILL)
    pull.communicate()
    assert tl.registry.ls() == []  # nothing installed
    had = sum(len(f) for _, _, f in os.walk(other / "datasets" / ".pull-flower"))
    with pytest.warns(tl.StaleLockWarning, match="no longer running"):  # the killed pull's
        report = tl.registry.pull("flower", progressbar=False)
    total = len(tree(home / "datasets" / "flower"))
    assert 0 < report.downloaded_objects <= total - had + 2  # +refs/lock are not downloads
    assert tree(home / "datasets" / "flower") == tree(other / "datasets" / "flower")


def test_a_public_remote_is_read_without_credentials(
    home, remote, monkeypatch, tmp_path, s3_bucket, _s3_admin
):
    make_local(home, "flower")
    tl.registry.push("flower", progressbar=False)
    switch_home(monkeypatch, tmp_path / "b")
    monkeypatch.setenv("TENSORLAKE_PUBLIC", "true")
    assert tl.registry.load_settings().creds()["anonymous"] is True
    with pytest.raises(StorageError, match="access denied"):  # unsigned, and not public yet
        tl.registry.pull("flower", progressbar=False)
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": "*",
                "Action": ["s3:GetObject", "s3:ListBucket"],
                "Resource": [f"arn:aws:s3:::{s3_bucket}", f"arn:aws:s3:::{s3_bucket}/*"],
            }
        ],
    }
    _s3_admin.put_bucket_policy(Bucket=s3_bucket, Policy=json.dumps(policy))
    tl.registry.pull("flower", progressbar=False)
    assert len(tl.load("flower")) == 40


def test_exists_and_delete_take_registry_names(home, monkeypatch, tmp_path):
    make_local(home, "flower").close()
    monkeypatch.chdir(tmp_path)
    assert tl.exists("flower") and not tl.exists("ghost") and not tl.exists("flower@9")
    tl.delete("flower")
    assert not tl.exists("flower") and tl.registry.ls() == []
