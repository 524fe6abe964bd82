"""Notebook views: HTML reprs (parsed, not string-matched), escaping, and the pixels
``visualize()`` draws."""

from __future__ import annotations

from html.parser import HTMLParser

import numpy as np
import pytest

import tensorlake as tl
from tensorlake.errors import ConfigError, DatasetError
from tests.integrations import data


class _Tree(HTMLParser):
    """Tags, their attributes and the text of a fragment (html.parser: what a browser
    would see, without string matching)."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.text: list[str] = []
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.text.append(data)

    def count(self, tag: str, **attrs) -> int:
        return sum(
            1 for t, a in self.tags if t == tag and all(a.get(k) == v for k, v in attrs.items())
        )

    @property
    def words(self) -> str:
        return " ".join(self.text)


def _tables(tree: _Tree) -> list[str]:
    return [a.get("class", "") for t, a in tree.tags if t == "table"]


@pytest.fixture
def ds(tmp_path):
    return data.make(str(tmp_path / "ds"), n=6)


def test_a_dataset_shows_its_version_rows_and_tensors(ds, monkeypatch):
    monkeypatch.setenv("TENSORLAKE_HTML_PREVIEW", "0")
    tree = _Tree(ds._repr_html_())
    assert _tables(tree) == ["tl-tensors"]
    assert tree.count("tr") == 1 + len(ds.tensors)  # the header and one row per tensor
    assert "6 rows" in tree.words and ds.commit_id[:12] in tree.words and "main" in tree.words
    assert "cat, dog, eel" in tree.words  # the class names
    assert "(6, 16, 20, 3)" in tree.words and "(6, None, 4)" in tree.words
    read_only = _Tree(tl.load(ds.path, read_only=True)._repr_html_())
    assert "read-only" in read_only.words


def test_views_groups_tensors_and_empty_datasets(ds, tmp_path, monkeypatch):
    monkeypatch.setenv("TENSORLAKE_HTML_PREVIEW", "0")
    view = _Tree(ds[2:5]._repr_html_())
    assert "View" in view.words and "rows 2..4" in view.words and "3 rows" in view.words
    picked = _Tree(ds[[5, 1]]._repr_html_())
    assert "rows [5, 1]" in picked.words
    tensor = _Tree(ds.images[1:3]._repr_html_())
    assert "2 rows of 6" in tensor.words and "jpeg" in tensor.words
    grouped = tl.empty(tmp_path / "grouped")
    grouped.create_group("a")
    grouped.a.create_tensor("x", dtype="int64")
    grouped.a.x.extend([np.array([1])])
    top = _Tree(grouped._repr_html_())
    assert "a/x" in top.words
    assert "Group" in _Tree(grouped.a._repr_html_()).words
    empty = _Tree(tl.empty(tmp_path / "empty")._repr_html_())
    assert "no tensors" in empty.words and _tables(empty) == []


def test_the_preview_shows_thumbnails_class_names_and_counts(ds, monkeypatch):
    monkeypatch.setenv("TENSORLAKE_HTML_PREVIEW", "3")
    tree = _Tree(ds._repr_html_())
    assert _tables(tree) == ["tl-tensors", "tl-preview"]
    images = [a for t, a in tree.tags if t == "img"]
    assert len(images) == 3 and all(a["src"].startswith("data:image/jpeg;base64,") for a in images)
    assert "dog" in tree.words and "2 boxes" in tree.words and "row 2" in tree.words
    monkeypatch.setenv("TENSORLAKE_HTML_PREVIEW", "many")
    with pytest.raises(ConfigError):
        ds._repr_html_()


def test_user_strings_are_escaped(tmp_path, monkeypatch):
    monkeypatch.setenv("TENSORLAKE_HTML_PREVIEW", "2")
    evil = "<script>alert(1)</script>"
    ds = tl.empty(tmp_path / "evil")
    ds.create_tensor("labels", htype="class_label", class_names=[evil])
    ds.create_tensor("notes", htype="text")
    ds.create_tensor("meta", htype="json")
    ds.append({"labels": 0, "notes": "<img src=x onerror=alert(2)>", "meta": {"k": "</td>"}})
    tree = _Tree(ds._repr_html_())
    assert tree.count("script") == 0 and tree.count("img") == 0
    assert evil in tree.words and "<img src=x onerror=alert(2)>" in tree.words


def test_the_table_reads_no_chunk(ds, monkeypatch):
    monkeypatch.setenv("TENSORLAKE_HTML_PREVIEW", "0")
    opened = tl.load(ds.path, read_only=True)
    storage = tl.api.dataset.core_of(opened).storage
    read: list[str] = []
    for method in ("get", "get_range", "get_many"):
        real = getattr(storage, method)

        def spy(key, *args, _real=real, **kwargs):
            read.extend([key] if isinstance(key, str) else list(key))
            return _real(key, *args, **kwargs)

        monkeypatch.setattr(storage, method, spy)
    opened._repr_html_()
    opened.images._repr_html_()
    assert not [k for k in read if "/chunks/" in k]


# -- visualize --------------------------------------------------------------------------


def _boxes_ds(tmp_path, coords, box):
    ds = tl.empty(tmp_path / f"boxes-{coords['type']}-{coords['mode']}")
    ds.create_tensor("images", htype="image", sample_compression="png")
    ds.create_tensor("boxes", htype="bbox", coords=coords)
    ds.create_tensor("labels", htype="class_label", class_names=["thing"])
    ds.append({"images": np.zeros((100, 100, 3), np.uint8), "boxes": np.array([box], np.float32),
               "labels": [0]})  # fmt: skip
    return ds


@pytest.mark.parametrize(
    "coords,box",
    [
        ({"type": "pixel", "mode": "LTWH"}, [20, 30, 40, 50]),
        ({"type": "pixel", "mode": "LTRB"}, [20, 30, 60, 80]),
        ({"type": "pixel", "mode": "CCWH"}, [40, 55, 40, 50]),
        ({"type": "fractional", "mode": "LTWH"}, [0.2, 0.3, 0.4, 0.5]),
    ],
)
def test_a_box_is_drawn_where_its_coords_say(tmp_path, coords, box):
    from tensorlake.integrations.notebook.draw import colour
    from tensorlake.integrations.notebook.grid import GAP

    grid = _boxes_ds(tmp_path, coords, box).visualize(size=100, cols=1)
    pixels = np.asarray(grid.image)[GAP:, GAP:]  # the cell, at scale 1 (100 px images)
    edge = np.array(colour(0))
    # left edge x=20 and bottom edge y=80 (the box spans x 20..60, y 30..80)
    assert (pixels[60, 20] == edge).all() and (pixels[80, 40] == edge).all()
    assert (pixels[55, 40] == 0).all()  # inside: the image's black
    assert (pixels[10, 90] == 0).all()  # outside, away from the label


def test_a_mask_is_tinted_where_it_is_set_and_nowhere_else(tmp_path):
    from tensorlake.integrations.notebook.grid import GAP

    ds = tl.empty(tmp_path / "masks")
    ds.create_tensor("images", htype="image", sample_compression="png")
    ds.create_tensor("masks", htype="binary_mask")
    mask = np.zeros((64, 64, 1), bool)
    mask[10:30, 40:60] = True
    ds.append({"images": np.full((64, 64, 3), 100, np.uint8), "masks": mask})
    pixels = np.asarray(ds.visualize(size=64, cols=1).image)[GAP : GAP + 64, GAP : GAP + 64]
    tinted = (pixels != 100).any(axis=-1)
    assert tinted[10:30, 40:60].all()
    assert not tinted[~mask[..., 0]].any()


def test_a_missing_linked_image_is_a_marked_cell(tmp_path):
    for i in range(2):
        (tmp_path / f"{i}.jpg").write_bytes(data.jpeg_bytes(16, 20, seed=i))
    ds = tl.empty(tmp_path / "linked")
    ds.create_tensor("images", htype="link[image]", sample_compression="jpeg")
    ds.images.extend([tl.link(str(tmp_path / f"{i}.jpg")) for i in range(2)])
    (tmp_path / "1.jpg").unlink()
    grid = ds.visualize(size=64)
    assert grid.rows == [0, 1] and grid.image.size[0] > 64
    assert grid._repr_png_().startswith(b"\x89PNG")
    assert _Tree(grid._repr_html_()).count("img") == 1
    grid.save(tmp_path / "grid.png")
    assert (tmp_path / "grid.png").stat().st_size > 0


def test_visualize_checks_what_it_is_asked(ds):
    with pytest.raises(DatasetError, match="no such tensor"):
        ds.visualize(boxes="nope")
    with pytest.raises(DatasetError, match="one row"):
        ds[2].visualize()
    with pytest.raises(ValueError):
        ds.visualize(cols=0)
    grid = ds[0:3].visualize(boxes=False, labels=False, size=32)
    assert grid.rows == [0, 1, 2]


def test_an_eval_report_renders_as_a_table():
    from tensorlake.compute.report import EvalReport

    report = EvalReport(
        items=30, samples=28, failed_indices=list(range(12)), checkpoints=["a" * 40]
    )
    report.seconds = 1.5
    tree = _Tree(report._repr_html_())
    assert tree.count("tr") == 5 and "20 items/s" in tree.words
    assert "(12 in all)" in tree.words and "a" * 12 in tree.words


def test_keypoints_and_their_skeleton_are_drawn(tmp_path):
    from tensorlake.integrations.notebook.draw import PALETTE
    from tensorlake.integrations.notebook.grid import GAP

    ds = tl.empty(tmp_path / "kp")
    ds.create_tensor("images", htype="image", sample_compression="png")
    ds.create_tensor("keypoints", htype="keypoints_coco", keypoints=["a", "b", "c"],
                     connections=[[0, 1]])  # fmt: skip
    # object 0: a at (20, 50) and b at (80, 50) visible, c not labelled
    ds.append({"images": np.zeros((100, 100, 3), np.uint8),
               "keypoints": np.array([[20], [50], [2], [80], [50], [2], [0], [0], [0]])})  # fmt: skip
    pixels = np.asarray(ds.visualize(size=100, cols=1).image)[GAP:, GAP:]
    assert (pixels[50, 50] == PALETTE[0]).all()  # on the line between a and b
    assert (pixels[50, 20] != 0).any() and (pixels[50, 80] != 0).any()  # the dots
    assert (pixels[20, 50] == 0).all()  # nothing off the skeleton
