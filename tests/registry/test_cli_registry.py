"""``tensorlake ls | push | pull | register | config`` through the real entry point."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import make_local
from .test_register import general


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tensorlake.cli.main", *args],
        capture_output=True,
        text=True,
        env=env or dict(os.environ),
        timeout=120,
    )


def test_register_push_ls_pull_on_the_command_line(home, remote, tmp_path):
    made = run("register", str(general(tmp_path)), "flower", "--no-progress")
    assert made.returncode == 0, made.stderr
    assert "registered flower: 8 files" in made.stdout
    listed = json.loads(run("ls", "--json").stdout)
    assert [(d["name"], d["rows"], d["pushed"]) for d in listed] == [("flower", 8, False)]
    pushed = run("push", "flower", "--no-progress")
    assert pushed.returncode == 0 and "published version 1" in pushed.stdout
    table = run("ls").stdout.splitlines()
    assert table[0].split() == ["NAME", "ROWS", "TENSORS", "SIZE", "HEAD", "PUSHED"]
    assert table[1].split()[0] == "flower" and table[1].endswith("yes (v1)")
    remote_listing = json.loads(run("ls", "-r", "--json").stdout)
    assert remote_listing[0]["name"] == "flower"
    assert [v["version"] for v in remote_listing[0]["versions"]] == [1]
    assert "flower  1" in run("ls", "--remote").stdout
    elsewhere = {**os.environ, "TENSORLAKE_HOME": str(tmp_path / "b")}
    pulled = run("pull", "flower@1", "--no-progress", env=elsewhere)
    assert pulled.returncode == 0 and "version 1" in pulled.stdout, pulled.stderr
    assert (tmp_path / "b" / "datasets" / "flower" / "README.md").exists()


def test_errors_are_one_line_with_exit_codes(home, remote):
    missing = run("push", "ghost", "--no-progress")
    assert missing.returncode == 1
    assert (
        missing.stderr.strip().splitlines() == [missing.stderr.strip()]
        and "No local dataset 'ghost'" in missing.stderr
    )
    assert "Traceback" not in missing.stderr
    debug = run("--debug", "pull", "ghost", "--no-progress")
    assert debug.returncode == 1 and "Traceback" in debug.stderr
    usage = run("push")
    assert usage.returncode == 2 and "usage:" in usage.stderr
    bad_name = run("pull", "Bad Name")
    assert bad_name.returncode == 1 and "Invalid dataset name" in bad_name.stderr


def test_config_commands(home):
    assert run("config", "set", "remote", "s3://team/datasets").returncode == 0
    assert run("config", "get", "remote").stdout.strip() == "s3://team/datasets"
    unset = run("config", "get", "profile")
    assert unset.returncode == 1 and "profile is not set" in unset.stderr
    listed = json.loads(run("config", "list", "--json").stdout)
    assert listed["remote"] == {"value": "s3://team/datasets", "source": "file"}
    assert "remote" in run("config", "list").stdout
    secret = run("config", "set", "aws_secret_access_key", "hush")
    assert secret.returncode == 2  # not a key the command knows
    assert "hush" not in secret.stderr and "invalid choice" in secret.stderr
    wrong = run("config", "set", "public", "maybe")
    assert wrong.returncode == 1 and "true or false" in wrong.stderr
    assert run("config", "unset", "remote").returncode == 0
    assert json.loads(run("config", "list", "--json").stdout)["remote"]["source"] == "unset"


@pytest.mark.parametrize("command", ["ls", "push", "pull", "register", "config"])
def test_every_registry_command_has_help_with_an_example(command):
    shown = run(command, "--help")
    assert shown.returncode == 0
    assert "example" in shown.stdout


def test_ls_of_an_empty_home(home):
    shown = run("ls")
    assert shown.returncode == 0 and "no datasets" in shown.stdout
    assert json.loads(run("ls", "--json").stdout) == []


def test_local_ls_needs_no_remote(home, tmp_path: Path):
    make_local(home, "flower").close()
    shown = run("ls", "--json", env={**os.environ, "TENSORLAKE_REMOTE": ""})
    assert shown.returncode == 0 and json.loads(shown.stdout)[0]["name"] == "flower"
