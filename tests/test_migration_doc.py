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
