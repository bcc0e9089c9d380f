"""MOT scoring through TrackEval, cross-checked with py-motmetrics and hand-computed values."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from tests.conftest import shared_path

from edgedet.errors import DataError
from edgedet.motchallenge import SeqInfo, read_gt, read_seqinfo

pytest.importorskip("trackeval")
mot = pytest.importorskip("edgedet.eval.mot")

A, B, C = [10, 10, 40, 80], [100, 10, 40, 80], [300, 300, 40, 80]  # xywh, pairwise IoU 0


def write_rows(path: Path, rows: list[list[float]]) -> Path:
    path.write_text("".join(",".join(str(v) for v in r) + "\n" for r in rows))
    return path


def info(n: int) -> SeqInfo:
    return SeqInfo("hand", 10.0, n, 640, 480)


def test_perfect_tracker_scores_100() -> None:
    root = shared_path("mot", "MOT17-09-FRCNN")
    gt = read_gt(root / "gt.txt")
    keep = (gt.flag == 1) & (gt.class_id == 1)
    pred = np.c_[gt.frame[keep], gt.track_id[keep], gt.xywh[keep], np.ones(keep.sum())]
    s = mot.evaluate_sequence(gt, pred, read_seqinfo(root / "seqinfo.ini"))
    assert (s["MOTA"], s["IDF1"], s["HOTA"]) == pytest.approx((100.0, 100.0, 100.0))
    assert (s["IDSW"], s["FP"], s["FN"], s["num_gt_dets"]) == (0, 0, 0, 5325)


def test_hand_case_matches_trackeval_motmetrics_and_arithmetic(tmp_path: Path) -> None:
    """Two people over 4 frames; track of person 1 changes id at frame 3; one false positive at frame 4.

    TP 8, FP 1, FN 0, IDSW 1 -> MOTA = 1 - 2/8 = 75 %. IDF1: best id pairing gives IDTP 6, IDFP 3, IDFN 2
    -> 12/17. HOTA (IoU 1 everywhere): DetA 8/9, AssA (2*.5 + 2*.5 + 4*1)/8 = .75 -> sqrt(2/3).
    """
    gt = write_rows(
        tmp_path / "gt.txt", [[f, i, *box, 1, -1, -1] for f in range(1, 5) for i, box in ((1, A), (2, B))]
    )
    pred = [[f, 10 if f < 3 else 30, *A, 1] for f in range(1, 5)] + [[f, 20, *B, 1] for f in range(1, 5)]
    pred.append([4, 40, *C, 1])
    pred_path = write_rows(tmp_path / "pred.txt", [[*r, -1, -1, -1] for r in pred])
    s = mot.evaluate_sequence(gt, pred_path, info(4))
    assert (s["TP"], s["FP"], s["FN"], s["IDSW"]) == (8, 1, 0, 1)
    assert s["MOTA"] == pytest.approx(75.0)
    assert s["IDF1"] == pytest.approx(100 * 12 / 17)
    assert s["HOTA"] == pytest.approx(100 * np.sqrt(8 / 9 * 0.75))
    mm = mot.motmetrics_evaluate({"hand": (gt, np.array(pred), info(4))})["combined"]
    assert mm["MOTA"] == pytest.approx(75.0)
    assert mm["IDF1"] == pytest.approx(100 * 12 / 17)
    assert (mm["IDSW"], mm["FP"], mm["FN"]) == (1, 1, 0)


@pytest.mark.parametrize(
    ("gt_class", "gt_flag", "tp", "fp", "fn"),
    [
        (1, 1, 1, 0, 0),  # pedestrian: scored
        (7, 0, 0, 0, 0),  # static person (distractor): the prediction on it is removed
        (2, 0, 0, 0, 0),  # person on vehicle (distractor)
        (12, 0, 0, 0, 0),  # reflection (distractor)
        (1, 0, 0, 1, 0),  # pedestrian marked ignore: not scored, a prediction on it still counts as FP
        (3, 0, 0, 1, 0),  # car: not a distractor, the prediction is a false positive
    ],
)
def test_mot17_preprocessing(tmp_path: Path, gt_class: int, gt_flag: int, tp: int, fp: int, fn: int) -> None:
    gt = write_rows(tmp_path / "gt.txt", [[1, 1, *A, 1, 1, 1.0], [1, 2, *B, gt_flag, gt_class, 1.0]])
    pred = np.array([[1, 5, *A, 1.0], [1, 6, *B, 1.0]])
    s = mot.evaluate_sequence(gt, pred, info(1))
    assert (s["TP"] - 1, s["FP"], s["FN"]) == (tp, fp, fn)


def test_bad_inputs(tmp_path: Path) -> None:
    gt = write_rows(tmp_path / "gt.txt", [[1, 1, *A, 1, -1, -1]])
    with pytest.raises(DataError, match="beyond seqLength"):
        mot.evaluate_sequence(gt, np.array([[3, 1, *A, 1.0]]), info(2))
    with pytest.raises(DataError, match="TrackEval refused"):
        mot.evaluate_sequence(gt, np.array([[1, 1, *A, 1.0], [1, 1, *B, 1.0]]), info(2))
    with pytest.raises(DataError, match="needs a gt class column"):
        mot.evaluate_sequence(gt, np.zeros((0, 10)), info(2), benchmark="MOT17")
    with pytest.raises(DataError, match="no sequences"):
        mot.evaluate({})


def test_sort_on_tud_stadtmitte_scores_as_published_sort() -> None:
    """Our tracker configured as SORT on TUD-Stadtmitte, scored by both libraries (abewley/sort's numbers)."""
    from edgedet.tracking.replay import track_sequence
    from edgedet.tracking.sort import TrackerConfig

    root = shared_path("mot", "TUD-Stadtmitte")
    seqinfo = read_seqinfo(root / "seqinfo.ini")
    rows = track_sequence(root / "det.txt", seqinfo, TrackerConfig.sort(seqinfo.frame_rate))
    seqs = {"TUD-Stadtmitte": (root / "gt.txt", rows, seqinfo)}
    s = mot.evaluate(seqs)["combined"]
    assert (round(s["MOTA"], 1), round(s["IDF1"], 1), round(s["HOTA"], 1)) == (71.7, 73.5, 53.0)
    assert (s["IDSW"], s["FP"], s["FN"]) == (10, 22, 295)
    mm = mot.motmetrics_evaluate(seqs)["combined"]
    assert (mm["IDSW"], mm["FP"], mm["FN"]) == (10, 22, 295)
    assert mm["MOTA"] == pytest.approx(s["MOTA"]) and mm["IDF1"] == pytest.approx(s["IDF1"])


@pytest.mark.slow
def test_sort_on_all_shared_sequences_reproduces_the_reference() -> None:
    """SORT (max_age 1 frame, min_hits 3, IoU 0.3) over the five shared sequences: 35.9 / 41.9 / 35.6 / 237."""
    from edgedet.tracking.replay import track_sequence
    from edgedet.tracking.sort import TrackerConfig

    root = shared_path("mot")
    seqs = {}
    for d in sorted(p for p in root.iterdir() if p.is_dir()):
        seqinfo = read_seqinfo(d / "seqinfo.ini")
        seqs[d.name] = (
            d / "gt.txt",
            track_sequence(d / "det.txt", seqinfo, TrackerConfig.sort(seqinfo.frame_rate)),
            seqinfo,
        )
    c = mot.evaluate(seqs)["combined"]
    assert (round(c["MOTA"], 1), round(c["IDF1"], 1), round(c["HOTA"], 1), c["IDSW"]) == (
        35.9,
        41.9,
        35.6,
        237,
    )
    mm = mot.motmetrics_evaluate(seqs)["combined"]
    assert (mm["IDSW"], mm["FP"], mm["FN"]) == (c["IDSW"], c["FP"], c["FN"])
