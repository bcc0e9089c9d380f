"""The demo-training script's data sampling (tools/train_demo.py; the training itself is too slow for tests)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def td():
    spec = importlib.util.spec_from_file_location("train_demo", REPO / "tools" / "train_demo.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules["train_demo"] = mod
    spec.loader.exec_module(mod)
    yield mod
    sys.modules.pop("train_demo", None)


@pytest.mark.parametrize("centre", [0.0, 3.0, 8.0, 200.0, 320.0, 632.0, 639.9])
def test_crop_origin_holds_the_centre_inside_the_frame(td, centre):
    rng = np.random.default_rng(0)
    for _ in range(300):
        x0 = td._crop_origin(rng, centre, 320, 640)
        assert 0 <= x0 <= 320
        assert x0 <= centre <= x0 + 320
        if 8 <= centre <= 632:
            assert x0 + 8 <= centre <= x0 + 320 - 8


def _frames():
    """Four 384x640 frames: one truck (class 1) in frame 3 at the right edge, cars (class 0) elsewhere."""
    images = np.zeros((4, 384, 640, 3), np.uint8)
    labels = [np.array([[0, 10 + 30 * i, 20, 40 + 30 * i, 40]], np.float32) for i in range(3)]
    labels.append(np.array([[1, 600, 350, 638, 383]], np.float32))
    for k, lab in enumerate(labels):
        _, x0, y0, x1, y1 = lab[0].astype(int)
        images[k, y0:y1, x0:x1] = 200
    return images, labels


def test_focus_crops_give_a_rare_class_its_share(td):
    images, labels = _frames()
    by_class = td.objects_by_class(labels, 3)
    assert [len(p) for p in by_class] == [3, 1, 0]
    rng = np.random.default_rng(1)
    x, t = td.make_batch(images, labels, rng, 400, (256, 320), focus=1.0, by_class=by_class)
    assert x.shape == (400, 3, 256, 320)
    per_crop_cls = {int(b): int(c) for b, c in t[:, :2]}
    trucks = sum(1 for c in per_crop_cls.values() if c == 1)
    assert 150 < trucks < 250  # half the crops: two classes present, drawn uniformly
    assert len(per_crop_cls) == 400  # every focus crop holds its object
    # boxes are normalised to the crop and lie on the painted pixels
    assert (t[:, 2:4] >= 0).all() and (t[:, 2:4] <= 1).all()
    for b, _c, cx, cy, _w, _h in t[:20]:
        px = x[int(b), :, int(cy * 256), int(cx * 320)]
        assert px.max() > 0.4


def test_uniform_crops_without_focus(td):
    images, labels = _frames()
    rng = np.random.default_rng(2)
    _, t = td.make_batch(images, labels, rng, 400, (256, 320))
    trucks = len({int(b) for b, c in t[:, :2] if c == 1})
    assert trucks < 120  # a quarter of the frames hold the truck, and most crops miss its corner
