"""register (etcetera's layout), dataset(name, auto_install=True), and the settings."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import tensorlake as tl
from tensorlake.errors import ConfigError, DatasetExistsError, DatasetNotFoundError, IngestError


def minimal(root: Path) -> Path:
    """The seed's minimal example: sample/data/train/data0000{1,2,3}.json."""
    train = root / "sample" / "data" / "train"
    train.mkdir(parents=True)
    for i in (1, 2, 3):
        (train / f"data0000{i}.json").write_text(json.dumps({"i": i}))
    return root / "sample"


def general(root: Path) -> Path:
    """The seed's general example: README, meta.json, assets/, train/test/val."""
    top = root / "sample"
    for part, n in (("train", 4), ("test", 2), ("val", 1)):
        (top / "data" / part).mkdir(parents=True)
        for i in range(n):
            (top / "data" / part / f"{part}{i:05d}.json").write_text(json.dumps([part, i]))
    Image.fromarray(np.full((8, 8, 3), 200, np.uint8)).save(top / "data" / "val" / "pic.png")
    (top / "README.md").write_text("# Sample\nA sample dataset.\n")
    (top / "meta.json").write_text(json.dumps({"license": "CC-BY", "classes": 10}))
    (top / "assets").mkdir()
    (top / "assets" / "Analysis.ipynb").write_text("{}")
    (top / "assets" / "DataCleanup.ipynb").write_text('{"cells": []}')
    return top


def test_register_the_minimal_example(home, tmp_path):
    ds = tl.registry.register(minimal(tmp_path), "supermnist", progressbar=False)
    assert len(ds) == 3
    assert list(ds["path"].numpy(aslist=True)) == [
        "train/data00001.json",
        "train/data00002.json",
        "train/data00003.json",
    ]
    assert json.loads(bytes(ds.data[1].numpy())) == {"i": 2}
    named = tl.registry.dataset("supermnist")
    assert named.keys() == {"train"} and named.meta == {}
    assert len(named["train"]) == 3
    assert named.root == home / "datasets" / "supermnist"
    assert [d["name"] for d in tl.registry.ls()] == ["supermnist"]


def test_register_the_general_example_keeps_everything(home, tmp_path):
    source = general(tmp_path)
    before = sorted(p.relative_to(source).as_posix() for p in source.rglob("*"))
    tl.registry.register(source, "sample", progressbar=False)
    named = tl.registry.dataset("sample")
    assert named.keys() == {"train", "test", "val"}
    assert named.meta == {"license": "CC-BY", "classes": 10}
    assert len(named["train"]) == 4 and len(named["test"]) == 2 and len(named["val"]) == 2
    val = named["val"]
    assert sorted(val["path"].numpy(aslist=True)) == ["val/pic.png", "val/val00000.json"]
    image_row = list(val["path"].numpy(aslist=True)).index("val/pic.png")
    assert val.images[image_row].numpy().shape == (8, 8, 3)
    assert (named.root / "README.md").read_text().startswith("# Sample")
    assert (named.root / "assets" / "DataCleanup.ipynb").read_text() == '{"cells": []}'
    assert not (named.root / "meta.json").exists()  # it is the dataset's info now
    after = sorted(p.relative_to(source).as_posix() for p in source.rglob("*"))
    assert after == before  # the directory itself is not changed


def test_register_refuses_each_broken_layout(home, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(IngestError, match="has no data/ folder"):
        tl.registry.register(empty, "x", progressbar=False)
    loose = minimal(tmp_path / "loose")
    (loose / "data" / "stray.txt").write_text("not in a partition")
    (loose / "data" / "hollow").mkdir()
    (loose / "meta.json").write_text("[1, 2]")
    with pytest.raises(IngestError) as err:
        tl.registry.register(loose, "x", progressbar=False)
    message = str(err.value)
    assert "holds files (stray.txt)" in message
    assert "partition(s) without files: hollow" in message
    assert "meta.json is not a JSON object" in message
    nothing = tmp_path / "nothing"
    (nothing / "data").mkdir(parents=True)
    with pytest.raises(IngestError, match="data/ has no partition folder"):
        tl.registry.register(nothing, "x", progressbar=False)
    bad_json = minimal(tmp_path / "badjson")
    (bad_json / "meta.json").write_text("{oops")
    with pytest.raises(IngestError, match=r"meta\.json is not valid JSON"):
        tl.registry.register(bad_json, "x", progressbar=False)
    with pytest.raises(tl.InvalidNameError):
        tl.registry.register(minimal(tmp_path / "ok"), "Bad Name", progressbar=False)
    assert tl.registry.ls() == []


def test_register_again_needs_force(home, tmp_path):
    tl.registry.register(minimal(tmp_path / "a"), "sample", progressbar=False)
    with pytest.raises(DatasetExistsError, match="--force"):
        tl.registry.register(general(tmp_path / "b"), "sample", progressbar=False)
    assert len(tl.registry.dataset("sample").dataset) == 3
    tl.registry.register(general(tmp_path / "c"), "sample", force=True, progressbar=False)
    assert len(tl.registry.dataset("sample").dataset) == 8


def test_dataset_auto_install_pulls_a_missing_one(home, remote, monkeypatch, tmp_path):
    tl.registry.register(general(tmp_path), "flower", progressbar=False)
    tl.registry.push("flower", progressbar=False)
    monkeypatch.setenv("TENSORLAKE_HOME", str(tmp_path / "elsewhere"))
    with pytest.raises(DatasetNotFoundError, match="auto_install=True"):
        tl.registry.dataset("flower")
    flower = tl.registry.dataset("flower", auto_install=True)
    assert flower.keys() == {"train", "test", "val"}
    assert flower.meta["license"] == "CC-BY"
    assert (flower.root / "README.md").exists()
    assert (flower.root / "assets" / "Analysis.ipynb").read_text() == "{}"
    assert tl.registry.dataset("flower@1").dataset.commit_id == flower.dataset.commit_id


# -- settings ---------------------------------------------------------------------------


def test_settings_round_trip_and_environment_overrides(home, monkeypatch):
    tl.registry.set_setting("remote", "s3://team/datasets")
    tl.registry.set_setting("public", "yes")
    path = home / "config.toml"
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    settings = tl.registry.load_settings()
    assert (settings.remote, settings.public) == ("s3://team/datasets", True)
    monkeypatch.setenv("TENSORLAKE_REMOTE", "s3://other/x")
    listed = tl.registry.list_settings()
    assert listed["remote"] == {"value": "s3://other/x", "source": "env TENSORLAKE_REMOTE"}
    assert listed["public"] == {"value": True, "source": "file"}
    assert tl.registry.unset_setting("public") and not tl.registry.unset_setting("public")
    assert tl.registry.load_settings().public is False


@pytest.mark.parametrize(
    ("key", "value", "match"),
    [
        ("aws_secret_access_key", "abc", "is a secret"),
        ("colour", "blue", "Unknown config key"),
        ("remote", "gs://bucket", "remote must be s3://"),
        ("remote", "s3://", "names no bucket"),
        ("endpoint_url", "127.0.0.1:9000", "http"),
        ("public", "maybe", "true or false"),
    ],
)
def test_bad_settings_are_refused(home, key, value, match):
    with pytest.raises(ConfigError, match=match):
        tl.registry.set_setting(key, value)
    assert not (home / "config.toml").exists()


def test_a_secret_in_the_file_needs_a_private_file(home):
    home.mkdir(parents=True)
    path = home / "config.toml"
    path.write_text('remote = "s3://team/x"\naws_secret_access_key = "hush"\n')
    os.chmod(path, 0o644)
    with pytest.raises(ConfigError, match="chmod 600") as err:
        tl.registry.load_settings()
    assert "hush" not in str(err.value)
    os.chmod(path, 0o600)
    settings = tl.registry.load_settings()
    assert dict(settings.secrets) == {"aws_secret_access_key": "hush"}
    assert settings.creds()["aws_secret_access_key"] == "hush"
    assert tl.registry.list_settings()["aws_secret_access_key"]["value"] == "****"


def test_a_damaged_config_file_is_named(home):
    home.mkdir(parents=True)
    (home / "config.toml").write_text("remote = \n")
    with pytest.raises(ConfigError, match=r"config\.toml is not valid TOML"):
        tl.registry.load_settings()
