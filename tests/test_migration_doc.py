"""docs/migrating-from-deeplake.md stays true: every Deep Lake name it marks *same*
exists in tensorlake under that name."""

from __future__ import annotations

import re
from pathlib import Path

import tensorlake as tl

DOC = Path(__file__).resolve().parents[1] / "docs" / "migrating-from-deeplake.md"
OWNERS = {"": tl, "ds.": tl.Dataset, "tensor.": tl.Tensor, "fn().": tl.ComputeFunction}
ROW = re.compile(r"^\| `(ds\.|tensor\.|fn\(\)\.|pipeline\.)?([A-Za-z_]\w*)` \| (\w[\w ]*?) \|")


def test_every_name_marked_same_exists():
    rows = [m.groups() for line in DOC.read_text().splitlines() if (m := ROW.match(line))]
    same = [(prefix or "", name) for prefix, name, status in rows if status == "same"]
    assert len(rows) > 150 and len(same) > 60  # the table parsed
    missing = [
        f"{prefix}{name}"
        for prefix, name in same
        if not hasattr(OWNERS.get(prefix, tl.ComputeFunction), name)
    ]
    assert missing == []


def test_no_row_is_left_without_a_status():
    assert "MISSING" not in DOC.read_text()


# What Deep Lake 3.9.52 defines as properties (read without calling); everything else
# in its Tensor and Dataset tables is a method, called.
DEEPLAKE_PROPERTIES = {
    "tensor.": {
        "base_htype", "chunk_engine", "dtype", "hidden", "htype", "info", "is_dynamic",
        "is_empty_tensor", "is_link", "is_sequence", "meta", "ndim", "num_samples",
        "pad_tensor", "sample_indices", "sample_info", "shape", "shape_interval", "size",
        "timestamps", "verify",
    },
    "ds.": {
        "allow_delete", "branch", "branches", "client", "commit_id", "commits", "groups",
        "has_head_changes", "info", "is_head_node", "is_optimized", "is_view", "max_len",
        "max_view", "meta", "min_len", "min_view", "no_view_dataset", "num_samples",
        "parent", "pending_commit_id", "read_only", "root", "sample_indices", "tensors",
        "token", "username",
    },
}  # fmt: skip


def test_names_marked_same_are_properties_or_methods_as_in_deeplake():
    rows = [m.groups() for line in DOC.read_text().splitlines() if (m := ROW.match(line))]
    wrong = []
    for prefix, name, status in rows:
        if status != "same" or prefix not in DEEPLAKE_PROPERTIES:
            continue
        is_property = isinstance(getattr(OWNERS[prefix], name), property)
        if is_property != (name in DEEPLAKE_PROPERTIES[prefix]):
            wrong.append(f"{prefix}{name}")
    assert wrong == []
