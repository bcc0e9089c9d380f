"""YOLO-txt and COCO-json datasets: pixel boxes, duplicate rows, missing labels, round trip through COCO."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from tests.conftest import shared_path

from edgedet.datasets import load_coco_json, load_dataset, load_yolo_dataset
from edgedet.errors import DataError


def _yolo_set(root: Path, labels: dict[str, str], hw: tuple[int, int] = (100, 200)) -> Path:
    (root / "images" / "train").mkdir(parents=True)
    (root / "labels" / "train").mkdir(parents=True)
    for stem, text in labels.items():
        cv2.imwrite(str(root / "images" / "train" / f"{stem}.jpg"), np.zeros((*hw, 3), np.uint8))
        if text is not None:
            (root / "labels" / "train" / f"{stem}.txt").write_text(text)
    return root


def test_yolo_labels_become_pixel_boxes_and_duplicates_drop(tmp_path: Path) -> None:
    root = _yolo_set(tmp_path, {"b": "0 0.5 0.5 0.5 0.2\n0 0.5 0.5 0.5 0.2\n3 0.25 0.1 0.1 0.2\n", "a": ""})
    ds = load_yolo_dataset(root, class_names=("p", "q", "r", "s"))
    assert [p.name for p in ds.paths] == ["a.jpg", "b.jpg"]  # sorted by path
    assert len(ds[0].class_id) == 0
    b = ds[1]
    assert b.hw == (100, 200)
    order = np.argsort(b.class_id)
    np.testing.assert_allclose(b.xyxy[order], [[50, 40, 150, 60], [40, 0, 60, 20]], atol=1e-4)
    assert b.class_id[order].tolist() == [0, 3]
    assert ds.num_objects == 2


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("0 0.5 0.5 0.1\n", "5 fields"),
        ("x 0.5 0.5 0.1 0.1\n", "not a number"),
        ("0 50 60 10 10\n", "normalised"),
    ],
)
def test_bad_label_rows_are_refused(tmp_path: Path, text: str, fragment: str) -> None:
    root = _yolo_set(tmp_path, {"a": text})
    with pytest.raises(DataError, match=fragment):
        load_yolo_dataset(root)


def test_coco_json_round_trip_and_category_renumbering(tmp_path: Path) -> None:
    root = _yolo_set(tmp_path, {"a": "1 0.5 0.5 0.5 0.5\n", "b": "0 0.1 0.1 0.1 0.1\n"})
    ds = load_yolo_dataset(root, ("cat", "dog"))
    coco = ds.to_coco()
    # a COCO file numbers categories from 1 (and with gaps); loading renumbers them 0..K-1 in id order
    for c in coco["categories"]:
        c["id"] = {0: 5, 1: 9}[c["id"]]
    for a in coco["annotations"]:
        a["category_id"] = {0: 5, 1: 9}[a["category_id"]]
    for im in coco["images"]:
        im["file_name"] = f"train/{im['file_name']}"
    jp = root / "images" / "instances.json"
    jp.write_text(json.dumps(coco))
    back = load_coco_json(jp)
    assert back.class_names == ("cat", "dog")
    for x, y in zip(ds, back, strict=True):
        assert x.path.resolve() == y.path.resolve() and x.hw == y.hw
        np.testing.assert_allclose(x.xyxy, y.xyxy, atol=1e-4)
        assert x.class_id.tolist() == y.class_id.tolist()


def test_subsets_keep_names_and_order(tmp_path: Path) -> None:
    root = _yolo_set(tmp_path, {s: "0 0.5 0.5 0.2 0.2\n" for s in "abcd"})
    ds = load_yolo_dataset(root, ("x",))
    sub = ds[[3, 1]]
    assert [p.stem for p in sub.paths] == ["d", "b"] and sub.class_names == ("x",)
    assert [p.stem for p in ds[1:3].paths] == ["b", "c"]


def test_coco128_counts() -> None:
    ds = load_dataset(shared_path("coco128"))
    assert len(ds) == 128
    assert ds.num_objects == 929  # 941 rows less the 12 duplicates YOLOv5 drops (README)
    assert ds.class_names[0] == "person" and len(ds.class_names) == 80
    gt = ds.to_coco()
    assert len(gt["annotations"]) == 929 and gt["annotations"][0]["id"] == 1


def test_labels_folder_paired_with_images_by_stem(tmp_path):
    import cv2
    import numpy as np

    from edgedet.datasets import labels_for_images

    imgs = tmp_path / "calib"
    labels = tmp_path / "labels"
    imgs.mkdir()
    labels.mkdir()
    for name in ("a", "b"):
        cv2.imwrite(str(imgs / f"{name}.jpg"), np.zeros((100, 200, 3), np.uint8))
    (labels / "a.txt").write_text("1 0.5 0.5 0.2 0.4\n")  # b has no label file: no objects
    ds = labels_for_images(sorted(imgs.glob("*.jpg")), labels)
    assert len(ds) == 2
    np.testing.assert_allclose(ds[0].xyxy, [[80, 30, 120, 70]])
    assert ds[0].class_id.tolist() == [1] and len(ds[1].xyxy) == 0
