"""The dataset commands: info, log, diff, branch, checkout, commit, reset, gc, verify,
lock, delete. Each runs once through the real entry point (a subprocess); the details
run in-process through ``main``."""

from __future__ import annotations

import io
import json
import secrets
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import tensorlake as tl
from tensorlake.cli.main import main
from tensorlake.engine.format import keys
from tensorlake.engine.lock import LockHolder
from tensorlake.storage import from_url
from tests.api.helpers import jpeg_bytes

ROOT = str(Path(tl.__file__).resolve().parents[1])
CLI = [sys.executable, "-m", "tensorlake.cli.main"]


def _run(*args: str) -> subprocess.CompletedProcess:
    """The command in a subprocess, stdin not a terminal (as in a script)."""
    return subprocess.run(
        [*CLI, *args], capture_output=True, text=True, cwd=ROOT, stdin=subprocess.DEVNULL
    )


def _json(*args: str) -> object:
    out = _run(*args, "--json")
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)  # stdout holds the JSON document and nothing else


@pytest.fixture
def path(tmp_path) -> str:
    """A dataset: 10 rows committed as "ten", one more row stored but not committed."""
    where = str(tmp_path / "ds")
    ds = tl.empty(where)
    with ds:
        ds.create_tensor("x", dtype="int64")
        ds.x.extend(np.arange(10))
    ds.commit("ten")
    ds.x.append(10)
    ds.close()
    return where


def _append(path: str, value: int) -> None:
    """Store a row without committing it, and release the writer lock."""
    ds = tl.load(path)
    ds.x.append(value)
    ds.close()


def _lock(path: str, age: float = 0.0) -> LockHolder:
    """Put a writer lock of a process elsewhere, heartbeat ``age`` seconds ago."""
    now = time.time() - age
    holder = LockHolder("bob", "elsewhere", 4242, secrets.token_hex(16), now, now, 60.0)
    (Path(path) / keys.LOCK_KEY).write_bytes(holder.to_bytes())
    return holder


def _main(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


# -- through the entry point -------------------------------------------------------------


def test_the_version_commands_through_the_entry_point(path):
    info = _json("info", path)
    assert info["rows"] == 11 and [t["name"] for t in info["tensors"]] == ["x"]
    assert info["tensors"][0]["dtype"] == "int64" and info["branch"] == "main"
    log = _json("log", path)
    assert [c["message"] for c in log] == ["ten"]  # the root commit is not listed
    assert log[0]["time"].startswith(str(time.localtime().tm_year))  # ISO times
    diff = _json("diff", path)  # the uncommitted changes
    assert diff["b"]["tensors"]["x"]["rows_added"] == [10, 11]

    committed = _run("commit", path, "-m", "eleven")
    assert committed.returncode == 0, committed.stderr
    eleven = committed.stdout.strip()
    latest = _json("log", path)[0]
    assert len(eleven) == 40 and (latest["commit"], latest["message"]) == (eleven, "eleven")

    created = _run("branch", path, "dev")
    assert created.returncode == 0 and f"created branch 'dev' at commit {eleven}" in created.stdout
    assert _json("branch", path) == [
        {"name": "main", "commit": eleven},
        {"name": "dev", "commit": eleven},
    ]  # in creation order, as Deep Lake lists them
    _append(f"{path}@dev", 11)  # stored on dev, not committed
    assert _run("commit", f"{path}@dev", "-m", "on dev").returncode == 0
    diff = _json("diff", path, "main", "dev")
    assert diff["base"] == eleven and diff["a"]["tensors"] == {}
    assert diff["b"]["tensors"]["x"]["rows_added"] == [11, 12]

    shown = _run("checkout", path, "dev")
    assert shown.returncode == 0 and "branch 'dev' at commit" in shown.stdout
    assert "rows=12" in shown.stdout
    started = _run("checkout", path, "relabel", "-b")
    assert started.returncode == 0 and "created branch 'relabel'" in started.stdout
    assert tl.load(path).branches == ["main", "dev", "relabel"]

    _append(path, 99)
    reset = _run("reset", path)
    assert reset.returncode == 0 and f"branch 'main' reset to commit {eleven}" in reset.stdout
    assert len(tl.load(path, read_only=True)) == 11
    assert _json("gc", path) == {
        "chunks": 0,
        "segments": 0,
        "commits": 0,
        "staging": 0,
        "temp_files": 0,
    }


def test_the_maintenance_commands_through_the_entry_point(path):
    ok = _run("verify", path)
    assert ok.returncode == 0 and ok.stdout.startswith(f"{path}: ok (checked 2 commits")
    assert ok.stderr == ""  # no bar: stderr is no terminal
    chunk = next(k for k in from_url(path).list(keys.TENSORS_PREFIX) if keys.is_chunk_key(k))
    file = Path(path) / chunk
    file.write_bytes(file.read_bytes()[:-1])
    damaged = _run("verify", path)
    assert damaged.returncode == 1 and f"  {chunk}: is " in damaged.stdout, damaged.stdout
    report = json.loads(_run("verify", path, "--json").stdout)
    assert report["ok"] is False and [p["key"] for p in report["problems"]] == [chunk]

    assert _json("lock", "status", path) == {"locked": False, "holder": None, "stale": None}
    _lock(path)
    status = _json("lock", "status", path)
    assert status["locked"] and status["holder"]["owner"] == "bob" and status["stale"] is None
    refused = _run("lock", "break", path)  # a live lock, and no terminal to ask
    assert refused.returncode == 1 and "--yes" in refused.stderr
    assert (Path(path) / keys.LOCK_KEY).exists()
    broken = _run("lock", "break", path, "--yes")
    assert broken.returncode == 0 and "removed the writer lock of bob@elsewhere" in broken.stdout
    assert not (Path(path) / keys.LOCK_KEY).exists()

    kept = _run("delete", path)
    assert kept.returncode == 1 and kept.stderr.count("\n") == 1 and "--yes" in kept.stderr
    assert tl.exists(path)
    gone = _run("delete", path, "--yes")
    assert gone.returncode == 0 and gone.stdout == f"deleted {path}\n"
    assert not tl.exists(path)


def test_failures_are_one_line_and_usage_errors_exit_2(tmp_path, path):
    missing = str(tmp_path / "nothing")
    for args in (
        ["info", missing],
        ["log", missing, "--json"],
        ["verify", missing],
        ["lock", "status", missing],
        ["delete", missing, "--yes"],
        ["diff", path, "no-such-branch"],
    ):
        out = _run(*args)
        assert out.returncode == 1, (args, out.stderr)
        assert out.stderr.startswith("tensorlake: ") and out.stderr.count("\n") == 1, out.stderr
        assert "Traceback" not in out.stderr and out.stdout == ""
    for args in (["commit", path], ["lock", path], ["info"], ["log", path, "--bogus"]):
        out = _run(*args)
        assert out.returncode == 2 and "usage:" in out.stderr, (args, out.stderr)


def test_debug_shows_the_traceback_before_or_after_the_command(tmp_path):
    missing = str(tmp_path / "nothing")
    for args in (["--debug", "info", missing], ["info", missing, "--debug"]):
        out = _run(*args)
        assert out.returncode == 1
        assert "Traceback (most recent call last)" in out.stderr
        assert "DatasetNotFoundError" in out.stderr


def test_version_and_help():
    version = _run("--version")
    assert version.returncode == 0 and version.stdout.strip() == f"tensorlake {tl.__version__}"
    out = _run("verify", "--help")
    assert out.returncode == 0 and "example" in out.stdout
    assert "  tensorlake verify ./coco" in out.stdout


# -- in-process details ------------------------------------------------------------------


def test_every_command_has_an_example_in_its_help(capsys):
    for command in (
        ["info"],
        ["delete"],
        ["log"],
        ["diff"],
        ["branch"],
        ["checkout"],
        ["commit"],
        ["reset"],
        ["gc"],
        ["verify"],
        ["lock"],
        ["lock", "status"],
        ["lock", "break"],
        ["create"],
        ["ingest"],
        ["ingest", "classification"],
        ["ingest", "manifest"],
        ["ingest", "coco"],
        ["upload"],
    ):
        with pytest.raises(SystemExit) as done:
            main([*command, "--help"])
        assert done.value.code == 0
        text = capsys.readouterr().out
        assert "example" in text and f"  tensorlake {' '.join(command)} " in text, command


def test_a_branch_is_not_started_over_uncommitted_changes(capsys, path):
    code, _, err = _main(capsys, "branch", path, "dev")
    assert code == 1 and "uncommitted changes" in err and "tensorlake reset" in err
    assert tl.load(path).branches == ["main"]
    assert [c["message"] for c in tl.load(path).commits] == ["ten"]  # nothing committed
    code, _, err = _main(capsys, "checkout", path, "dev", "-b")
    assert code == 1 and tl.load(path).branches == ["main"]


def test_branch_delete(capsys, path):
    assert _main(capsys, "reset", path)[0] == 0
    assert _main(capsys, "branch", path, "dev")[0] == 0
    code, _, err = _main(capsys, "branch", path, "--delete")
    assert code == 1 and "NAME" in err
    code, _, err = _main(capsys, "branch", path, "main", "--delete")
    assert code == 1 and "checked out" in err
    code, out, _ = _main(capsys, "branch", path, "dev", "-d")
    assert code == 0 and out == "deleted branch 'dev'\n"
    assert tl.load(path).branches == ["main"]


def test_commit_of_nothing_fails_unless_allowed(capsys, path):
    assert _main(capsys, "commit", path, "-m", "eleven")[0] == 0
    code, _, err = _main(capsys, "commit", path, "-m", "again")
    assert code == 1 and err.startswith("tensorlake: ")
    code, out, _ = _main(capsys, "commit", path, "-m", "again", "--allow-empty")
    assert code == 0 and tl.load(path).commits[0]["commit"] == out.strip()


def test_checkout_of_a_past_commit_and_reset_of_a_clean_branch(capsys, path):
    first = tl.load(path).commits[0]["commit"]
    code, out, _ = _main(capsys, "checkout", path, first[:10])
    assert code == 0 and f"commit {first} (made on branch 'main'; a past version" in out
    assert "rows=10" in out
    assert _main(capsys, "reset", path)[0] == 0
    code, out, _ = _main(capsys, "reset", path)
    assert code == 0 and "had no uncommitted changes" in out


def test_text_output_of_listings(capsys, path):
    code, out, _ = _main(capsys, "info", path)
    assert code == 0 and "x       generic  (11, 1)  int64" in out
    code, out, _ = _main(capsys, "log", path)
    assert "Message: ten" in out and "uncommitted changes" in out
    code, out, _ = _main(capsys, "diff", path)
    assert "1 rows added (10-10)" in out
    code, out, _ = _main(capsys, "branch", path)
    assert out.startswith("main  ") and len(out.split()[1]) == 40
    assert _main(capsys, "reset", path)[0] == 0
    code, out, _ = _main(capsys, "gc", path)
    assert out == "deleted 0 chunks, 0 table segments, 0 commits, 0 staging objects\n"


def test_lock_status_of_live_and_stale_locks(capsys, path):
    code, out, _ = _main(capsys, "lock", "status", path)
    assert code == 0 and out == f"{path}: not locked\n"
    _lock(path)
    code, out, _ = _main(capsys, "lock", "status", path)
    assert code == 0 and "locked by bob@elsewhere pid 4242" in out and out.endswith("(live)\n")
    _lock(path, age=3600)
    code, out, _ = _main(capsys, "lock", "status", path, "--json")
    assert json.loads(out)["stale"].startswith("its heartbeat is 3600s old")
    code, out, _ = _main(capsys, "lock", "break", path)  # stale: no question asked
    assert code == 0 and "removed the writer lock" in out
    assert not (Path(path) / keys.LOCK_KEY).exists()
    code, out, _ = _main(capsys, "lock", "break", path)
    assert code == 0 and out == f"{path}: not locked\n"


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize(("answer", "deleted"), [("y", True), ("no", False), ("", False)])
def test_delete_asks_on_a_terminal(capsys, monkeypatch, path, answer, deleted):
    monkeypatch.setattr(sys, "stdin", _Terminal(answer + "\n"))
    code, out, err = _main(capsys, "delete", path)
    assert "Delete the dataset at" in out and "[y/N]" in out
    assert (code == 0) is deleted and tl.exists(path) is not deleted
    if not deleted:
        assert err == "tensorlake: nothing done\n"


def test_a_live_lock_is_broken_once_confirmed(capsys, monkeypatch, path):
    _lock(path)
    monkeypatch.setattr(sys, "stdin", _Terminal("yes\n"))
    code, out, _ = _main(capsys, "lock", "break", path)
    assert code == 0 and "may still be writing" in out and "removed" in out


def test_delete_refuses_a_dataset_being_written(capsys, path):
    _lock(path)
    code, _, err = _main(capsys, "delete", path, "--yes")
    assert code == 1 and "bob@elsewhere" in err and tl.exists(path)


def test_verify_links(capsys, tmp_path):
    image = tmp_path / "a.jpg"
    image.write_bytes(jpeg_bytes(8, 8))
    ds = tl.empty(tmp_path / "ds")
    ds.create_tensor("images", htype="link[image]", sample_compression="jpeg")
    ds.images.append(tl.link(str(image)))
    ds.commit("one link")
    image.unlink()
    code, out, _ = _main(capsys, "verify", str(tmp_path / "ds"))
    assert code == 0 and "linked object" not in out
    code, out, _ = _main(capsys, "verify", str(tmp_path / "ds"), "--links", "--json")
    report = json.loads(out)
    assert code == 1 and report["links"] == 1
    assert report["problems"] == [
        {"key": f"file://{image}", "message": "linked object does not exist (tensor 'images')"}
    ]


def test_s3_paths_take_endpoint_url(capsys, s3_bucket, s3_creds, s3_server):
    url = f"s3://{s3_bucket}/ds"
    ds = tl.empty(url, creds=s3_creds)
    ds.create_tensor("x", dtype="int64")
    ds.x.extend(np.arange(3))
    ds.commit("three")
    ds.close()
    code, out, err = _main(capsys, "verify", url, "--endpoint-url", s3_server, "--json")
    assert code == 0, err
    assert json.loads(out)["ok"] and json.loads(out)["chunks"] == 1
    code, out, _ = _main(capsys, "log", url, "--endpoint-url", s3_server, "--json")
    assert [c["message"] for c in json.loads(out)] == ["three"]
    code, out, _ = _main(capsys, "delete", url, "--endpoint-url", s3_server, "--yes")
    assert code == 0 and not tl.exists(url, creds=s3_creds)
