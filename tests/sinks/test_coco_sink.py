"""CocoSink: pycocotools loads and scores the file; checkpoints are atomic and always parse."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import numpy as np
import pytest

from edgedet.sinks import CocoSink, coco_image_id
from edgedet.types import Frame

from .conftest import MakeResult

# Ground truth: two images named as COCO names them, boxes xywh, category = class index.
GT_IMAGES = [("000000000009.jpg", 9), ("000000000025.jpg", 25)]
GT_BOXES = {
    9: [([10, 20, 100, 50], 0), ([150, 60, 40, 80], 2)],
    25: [([30, 30, 60, 60], 1)],
}


def _gt_file(tmp_path: Path) -> Path:
    anns, aid = [], 1
    for image_id, boxes in GT_BOXES.items():
        for (x, y, w, h), cat in boxes:
            anns.append(
                {
                    "id": aid,
                    "image_id": image_id,
                    "category_id": cat,
                    "bbox": [x, y, w, h],
                    "area": w * h,
                    "iscrowd": 0,
                }
            )
            aid += 1
    gt = {
        "images": [{"id": i, "file_name": n, "height": 240, "width": 320} for n, i in GT_IMAGES],
        "annotations": anns,
        "categories": [{"id": c, "name": f"c{c}"} for c in range(3)],
    }
    path = tmp_path / "gt.json"
    path.write_text(json.dumps(gt))
    return path


@pytest.mark.parametrize(
    ("name", "index", "expected"),
    [
        ("000000000009.jpg", 0, 9),
        ("images/42.png", 3, 42),
        ("frame_0007.jpg", 5, 5),
        ("", 11, 11),
        ("-3.jpg", 2, 2),
        ("\u00b2.jpg", 4, 4),
    ],
)
def test_coco_image_id(name: str, index: int, expected: int) -> None:
    frame = Frame(np.zeros((2, 2, 3), np.uint8), index=index, timestamp_s=0.0, name=name)
    assert coco_image_id(frame) == expected


def test_results_load_and_score_with_pycocotools(tmp_path: Path, make_result: MakeResult) -> None:
    coco_mod = pytest.importorskip("pycocotools.coco")
    cocoeval_mod = pytest.importorskip("pycocotools.cocoeval")
    out = tmp_path / "res" / "dets.json"
    with CocoSink(out) as sink:
        for index, (name, image_id) in enumerate(GT_IMAGES):
            boxes = GT_BOXES[image_id]
            xyxy = [[x, y, x + w, y + h] for (x, y, w, h), _ in boxes]
            sink.write(make_result(index, xyxy, [0.9] * len(boxes), [c for _, c in boxes], name=name))
    items = json.loads(out.read_text())
    assert items[0] == {"image_id": 9, "category_id": 0, "bbox": [10.0, 20.0, 100.0, 50.0], "score": 0.9}
    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints progress
        gt = coco_mod.COCO(str(_gt_file(tmp_path)))
        dt = gt.loadRes(str(out))
        ev = cocoeval_mod.COCOeval(gt, dt, "bbox")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    assert len(dt.getAnnIds()) == 3
    # Detections equal to the ground truth: AP@[.5:.95] is exactly 1 (small boxes area-range aside).
    assert ev.stats[0] == pytest.approx(1.0)
    assert ev.stats[1] == pytest.approx(1.0)


def test_file_is_valid_from_open_and_checkpoints_survive_a_crash(
    tmp_path: Path, make_result: MakeResult
) -> None:
    out = tmp_path / "dets.json"
    sink = CocoSink(out, checkpoint_s=1e9, checkpoint_frames=2, clock=lambda: 0.0)
    assert json.loads(out.read_text()) == []
    sink.write(make_result(0, [[0, 0, 10, 10]], [0.5], [1]))
    assert json.loads(out.read_text()) == []  # not due yet
    sink.write(make_result(1, [[5, 5, 25, 45]], [0.25], [2]))
    sink.write(make_result(2, [[1, 1, 2, 2]], [0.75], [0]))
    # "Crash": no close(). The last checkpoint (after frame 1) is on disk and parses.
    saved = json.loads(out.read_text())
    assert [(d["image_id"], d["category_id"], d["bbox"], d["score"]) for d in saved] == [
        (0, 1, [0.0, 0.0, 10.0, 10.0], 0.5),
        (1, 2, [5.0, 5.0, 20.0, 40.0], 0.25),
    ]
    assert not list(tmp_path.glob(".*.tmp"))  # no temporary file left behind
    sink.close()
    assert len(json.loads(out.read_text())) == 3
    sink.close()  # idempotent
    assert len(json.loads(out.read_text())) == 3


def test_checkpoint_by_time(tmp_path: Path, make_result: MakeResult) -> None:
    now = [0.0]
    out = tmp_path / "dets.json"
    sink = CocoSink(out, checkpoint_s=2.0, checkpoint_frames=10**9, clock=lambda: now[0])
    sink.write(make_result(0, [[0, 0, 10, 10]], [0.5], [1]))
    now[0] = 1.9
    sink.write(make_result(1, [[0, 0, 10, 10]], [0.5], [1]))
    assert json.loads(out.read_text()) == []
    now[0] = 2.1
    sink.write(make_result(2, [], [], []))
    assert len(json.loads(out.read_text())) == 2
    assert sink.checkpoints == 2  # the empty list at open, then this one
    sink.close()


def test_frames_without_detections_do_not_rewrite_the_file(tmp_path: Path, make_result: MakeResult) -> None:
    out = tmp_path / "dets.json"
    with CocoSink(out, checkpoint_frames=1, clock=lambda: 0.0) as sink:
        for i in range(5):
            sink.write(make_result(i, [], [], []))
        assert sink.checkpoints == 1
    assert json.loads(out.read_text()) == []


def test_checkpoints_are_spaced_by_their_own_cost(tmp_path: Path, make_result: MakeResult) -> None:
    # The clock advances 0.5 s per read. A checkpoint reads it before and after writing, so it "takes" 0.5 s
    # and the next may come no sooner than 10 s later, although checkpoint_frames=1 asks for one per frame.
    now = [0.0]

    def clock() -> float:
        now[0] += 0.5
        return now[0]

    out = tmp_path / "dets.json"
    sink = CocoSink(out, checkpoint_s=1e9, checkpoint_frames=1, clock=clock)
    for i in range(40):
        sink.write(make_result(i, [[0, 0, 10, 10]], [0.5], [1]))
    # 1 at open (ends at t=1.0), then at t=11.0 (write 20) and t=22.0 (write 39): 3 in 40 frames.
    assert sink.checkpoints == 3
    sink.close()
    assert len(json.loads(out.read_text())) == 40
