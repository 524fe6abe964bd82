"""Every storage key is built in ``format/keys.py``, in the layout docs/format.md states."""

from __future__ import annotations

from pathlib import Path

from tensorlake.engine.format import keys


def test_keys_have_the_documented_layout():
    commit_id = "ab" * 20
    assert keys.commit_key(commit_id) == f"commits/{commit_id}.msgpack"
    assert keys.commit_id_of(keys.commit_key(commit_id)) == commit_id
    assert keys.ref_key("main") == "refs/heads/main"
    assert keys.staging_key("dev") == "staging/dev.msgpack"
    assert keys.chunk_key("labels/boxes", 255) == "tensors/labels/boxes/chunks/00000000000000ff"
    assert keys.chunk_key("x", 7).startswith(keys.chunk_prefix("x"))
    assert keys.segment_key(b"abc") == keys.segment_key(b"abc") != keys.segment_key(b"abd")
    assert keys.segment_key(b"abc").startswith(keys.SEGMENTS_PREFIX)
    assert (keys.DATASET_META_KEY, keys.LOCK_KEY) == ("tensorlake.json", "lock")


def test_only_chunks_are_chunk_keys():
    assert keys.is_chunk_key(keys.chunk_key("images", 1))
    for other in (keys.commit_key("c" * 40), keys.segment_key(b""), "tensors/x/meta", "lock"):
        assert not keys.is_chunk_key(other)


def test_the_format_document_names_every_prefix():
    text = (Path(__file__).parents[3] / "docs" / "format.md").read_text()
    for prefix in (
        keys.REFS_PREFIX,
        keys.COMMITS_PREFIX,
        keys.STAGING_PREFIX,
        keys.SEGMENTS_PREFIX,
    ):
        assert prefix in text, prefix
    assert keys.DATASET_META_KEY in text and "tensors/<tensor>/chunks/<id>" in text
