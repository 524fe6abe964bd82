"""The notebook views in a real browser: headless Chromium (Debian's ``chromium``
package; ``.ci/run`` installs it) renders them, and the screenshot has the pixels."""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pytest
from PIL import Image

import tensorlake as tl

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="no chromium: apt-get install -y chromium (.ci/run does)"
)


def _screenshot(tmp_path, body: str, size=(600, 400)) -> np.ndarray:
    page = tmp_path / "page.html"
    page.write_text(
        f"<!doctype html><html><body style='margin:0;background:#fff'>{body}</body></html>"
    )
    shot = tmp_path / "shot.png"
    subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
         "--force-device-scale-factor=1", f"--window-size={size[0]},{size[1]}",
         f"--screenshot={shot}", page.as_uri()],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    return np.asarray(Image.open(shot).convert("RGB")).astype(int)


def test_a_grid_shows_its_box_at_the_expected_pixels(tmp_path):
    from tensorlake.integrations.notebook.draw import colour
    from tensorlake.integrations.notebook.grid import GAP

    ds = tl.empty(tmp_path / "ds")
    ds.create_tensor("images", htype="image", sample_compression="png")
    ds.create_tensor("boxes", htype="bbox", coords={"type": "pixel", "mode": "LTRB"})
    ds.create_tensor("labels", htype="class_label", class_names=["thing"])
    ds.append({"images": np.zeros((100, 100, 3), np.uint8),
               "boxes": np.array([[20, 30, 60, 80]], np.float32), "labels": [0]})  # fmt: skip
    pixels = _screenshot(tmp_path, ds.visualize(size=100, cols=1)._repr_html_())
    edge = np.array(colour(0))
    assert np.abs(pixels[GAP + 60, GAP + 20] - edge).max() <= 8  # the box's left edge
    assert np.abs(pixels[GAP + 55, GAP + 40]).max() <= 8  # black inside the box


def test_a_dataset_view_shows_its_thumbnail(tmp_path, monkeypatch):
    monkeypatch.setenv("TENSORLAKE_HTML_PREVIEW", "2")
    ds = tl.empty(tmp_path / "ds")
    ds.create_tensor("images", htype="image", sample_compression="png")
    red = np.zeros((64, 64, 3), np.uint8)
    red[..., 0] = 255
    ds.images.extend([red, red])
    pixels = _screenshot(tmp_path, ds._repr_html_(), size=(800, 600))
    is_red = (pixels[..., 0] > 200) & (pixels[..., 1] < 60) & (pixels[..., 2] < 60)
    assert is_red.sum() >= 2 * 60 * 60  # both 64x64 thumbnails are on the page
