"""`edgedet eval det` / `eval mot` through the CLI, checked against pycocotools and TrackEval run directly."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from tests.conftest import shared_path

from edgedet.cli import main
from edgedet.motchallenge import read_seqinfo, write_mot
from edgedet.tracking.replay import track_sequence

MOT_KEYS = ("HOTA", "DetA", "AssA", "LocA", "MOTA", "MOTP", "IDF1", "IDP", "IDR", "Recall", "Precision")
MOT_COUNTS = ("IDSW", "FP", "FN", "TP", "Frag", "MT", "ML")


def run_cli(args: list[str]) -> tuple[int, str]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(args)
    return code, out.getvalue()


# --------------------------------------------------------------------------------------------- mot


def trackeval_direct(data: Path, tmp: Path) -> dict[str, dict[str, float]]:
    """TrackEval's own MotChallenge2DBox + Evaluator on files in its folder layout, per sequence and combined.

    Tracker rows come from the same tracker (track_sequence, detect every frame); everything after the
    tracks file (reading, preprocessing, matching, metrics, combination) is TrackEval's.
    """
    te = pytest.importorskip("trackeval")
    seqs = sorted(p for p in data.iterdir() if (p / "seqinfo.ini").is_file())
    groups = {"MOT17": [s for s in seqs if s.name.startswith("MOT17")]}
    groups["MOT15"] = [s for s in seqs if s not in groups["MOT17"]]
    metrics = [
        te.metrics.HOTA(),
        te.metrics.CLEAR({"PRINT_CONFIG": False}),
        te.metrics.Identity({"PRINT_CONFIG": False}),
    ]
    raw: dict[str, dict[str, Any]] = {}
    for bench, members in groups.items():
        gt_root, tr_root = tmp / bench / "gt", tmp / bench / "trackers"
        seq_info = {}
        for s in members:
            (gt_root / s.name / "gt").mkdir(parents=True)
            (gt_root / s.name / "gt" / "gt.txt").write_bytes((s / "gt.txt").read_bytes())
            (gt_root / s.name / "seqinfo.ini").write_bytes((s / "seqinfo.ini").read_bytes())
            info = read_seqinfo(s / "seqinfo.ini")
            seq_info[s.name] = info.seq_length
            (tr_root / "edgedet" / "data").mkdir(parents=True, exist_ok=True)
            write_mot(track_sequence(s / "det.txt", info), tr_root / "edgedet" / "data" / f"{s.name}.txt")
        ds = te.datasets.MotChallenge2DBox(
            {
                "GT_FOLDER": str(gt_root),
                "TRACKERS_FOLDER": str(tr_root),
                "BENCHMARK": bench,
                "SKIP_SPLIT_FOL": True,
                "SEQ_INFO": seq_info,
                "TRACKERS_TO_EVAL": ["edgedet"],
                "PRINT_CONFIG": False,
            }
        )
        ev = te.Evaluator(
            {
                "USE_PARALLEL": False,
                "PRINT_RESULTS": False,
                "PRINT_CONFIG": False,
                "OUTPUT_SUMMARY": False,
                "OUTPUT_DETAILED": False,
                "PLOT_CURVES": False,
                "OUTPUT_EMPTY_CLASSES": False,
                "TIME_PROGRESS": False,
                "DISPLAY_LESS_PROGRESS": True,
                "PRINT_ONLY_COMBINED": True,
            }
        )
        with contextlib.redirect_stdout(io.StringIO()):
            res, _ = ev.evaluate([ds], metrics)
        for name, r in res["MotChallenge2DBox"]["edgedet"].items():
            if name != "COMBINED_SEQ":
                raw[name] = r["pedestrian"]
    combined = {
        m.get_name(): m.combine_sequences({s: r[m.get_name()] for s, r in raw.items()}) for m in metrics
    }
    out = {s: flatten(r) for s, r in raw.items()}
    out["OVERALL"] = flatten(combined)
    return out


def flatten(r: dict[str, Any]) -> dict[str, float]:
    h, c, i = r["HOTA"], r["CLEAR"], r["Identity"]
    return {
        "HOTA": 100 * float(np.mean(h["HOTA"])),
        "DetA": 100 * float(np.mean(h["DetA"])),
        "AssA": 100 * float(np.mean(h["AssA"])),
        "LocA": 100 * float(np.mean(h["LocA"])),
        "MOTA": 100 * float(c["MOTA"]),
        "MOTP": 100 * float(c["MOTP"]),
        "IDF1": 100 * float(i["IDF1"]),
        "IDP": 100 * float(i["IDP"]),
        "IDR": 100 * float(i["IDR"]),
        "Recall": 100 * float(c["CLR_Re"]),
        "Precision": 100 * float(c["CLR_Pr"]),
        "IDSW": float(c["IDSW"]),
        "FP": float(c["CLR_FP"]),
        "FN": float(c["CLR_FN"]),
        "TP": float(c["CLR_TP"]),
        "Frag": float(c["Frag"]),
        "MT": float(c["MT"]),
        "ML": float(c["ML"]),
    }


@pytest.mark.slow  # ~10 s: tracking five sequences and scoring them twice
def test_eval_mot_agrees_with_trackeval_run_directly(tmp_path: Path) -> None:
    data = shared_path("mot")
    code, text = run_cli(["eval", "mot", "--data", str(data), "--json", str(tmp_path / "mot.json")])
    assert code == 0, text
    report = json.loads((tmp_path / "mot.json").read_text())
    assert report["schema"] == "edgedet.eval.mot/1"
    assert {"versions", "device", "models", "config", "overall", "sequences", "crosscheck"} <= set(report)
    ref = trackeval_direct(data, tmp_path / "te")
    assert set(ref) == {*report["sequences"], "OVERALL"}
    for name, expected in ref.items():
        got = report["overall"] if name == "OVERALL" else report["sequences"][name]
        for key in MOT_KEYS + MOT_COUNTS:
            assert got[key] == pytest.approx(expected[key], abs=0.1), (name, key)
    # the printed table shows the same overall numbers
    assert f"{report['overall']['MOTA']:.1f}" in text and f"{report['overall']['HOTA']:.1f}" in text
    # py-motmetrics, an independent implementation, agrees on MOTA / IDF1 / ID switches
    diff = report["crosscheck"]["motmetrics"]["max_abs_diff"]
    assert diff["MOTA"] < 0.1 and diff["IDF1"] < 0.1 and diff["IDSW"] <= 2


def test_eval_mot_realtime_json_and_policies(tmp_path: Path) -> None:
    data = shared_path("mot")
    seq = "TUD-Stadtmitte"  # 25 fps

    def overall(*extra: str) -> dict[str, Any]:
        out = tmp_path / "r.json"
        code, text = run_cli(
            ["eval", "mot", "--data", str(data), "--sequences", seq, "--json", str(out), *extra]
        )
        assert code == 0, text
        return dict(json.loads(out.read_text()))

    offline = overall()
    fast = overall("--realtime", "--latency-ms", "30")  # keeps up with 40 ms frames: same as offline
    assert fast["overall"]["MOTA"] == offline["overall"]["MOTA"]
    assert fast["sequences"][seq]["realtime"]["missed_frames"] == 0
    slow = overall("--realtime", "--latency-ms", "150", "--missed", "drop")
    rt = slow["sequences"][seq]["realtime"]
    assert rt["missed_frames"] > 0 and slow["realtime"]["latency_ms"] == 150
    assert slow["overall"]["MOTA"] < offline["overall"]["MOTA"]
    held = overall("--realtime", "--latency-ms", "150", "--missed", "drop", "--target-fps", "25")
    assert held["sequences"][seq]["realtime"]["missed_frames"] < rt["missed_frames"]


@pytest.mark.parametrize(
    "args",
    [
        ["--target-fps", "30"],  # needs --realtime
        ["--realtime"],  # needs a latency
        ["--latency-ms", "40"],  # needs --realtime
        ["--realtime", "--latency-ms", "40", "--detect-every", "2", "--target-fps", "30"],
        ["--realtime", "--latency-ms", "40", "--missed", "later"],
    ],
)
def test_eval_mot_refuses_conflicting_options(args: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    data = shared_path("mot")
    code, _ = run_cli(["eval", "mot", "--data", str(data), *args])
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1


def test_eval_mot_missing_data(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _ = run_cli(["eval", "mot", "--data", str(tmp_path)])
    assert code == 1
    assert "no MOTChallenge sequences" in capsys.readouterr().err


# --------------------------------------------------------------------------------------------- det


def pycocotools_direct(model: Path, root: Path, limit: int | None) -> tuple[float, float]:
    """Labels parsed here (YOLO txt, duplicates dropped as YOLOv5 does), scored by pycocotools' COCOeval."""
    import cv2
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    from edgedet.eval.det import OnnxDetector

    det = OnnxDetector(
        model, conf_threshold=0.001, iou_threshold=0.6, multi_label=True, max_det=300, threads=2
    )
    images = sorted((root / "images").rglob("*.jpg"))[:limit]
    gt: dict[str, Any] = {"images": [], "annotations": [], "categories": [{"id": i} for i in range(80)]}
    results = []
    for img_id, p in enumerate(images):
        img = np.asarray(cv2.imread(str(p)), np.uint8)
        h, w = img.shape[:2]
        gt["images"].append({"id": img_id, "height": h, "width": w})
        lab = Path(str(p).replace("/images/", "/labels/")).with_suffix(".txt")
        rows = np.unique(np.loadtxt(lab, ndmin=2), axis=0) if lab.is_file() else np.zeros((0, 5))
        for c, cx, cy, bw, bh in rows:
            box = [(cx - bw / 2) * w, (cy - bh / 2) * h, bw * w, bh * h]
            gt["annotations"].append(
                {"id": len(gt["annotations"]) + 1, "image_id": img_id, "category_id": int(c), "bbox": box,
                 "area": box[2] * box[3], "iscrowd": 0}
            )  # fmt: skip
        d = det(img)
        for (x1, y1, x2, y2), s, c in zip(
            d.xyxy.tolist(), d.confidence.tolist(), d.class_id.tolist(), strict=True
        ):
            results.append(
                {"image_id": img_id, "category_id": c, "bbox": [x1, y1, x2 - x1, y2 - y1], "score": s}
            )
    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO()
        coco.dataset = gt
        coco.createIndex()
        ev = COCOeval(coco, coco.loadRes(results), "bbox")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return float(ev.stats[0]), float(ev.stats[1])


@pytest.mark.parametrize(
    ("model_name", "limit"),
    [("yolov5n_320.onnx", 16), pytest.param("yolov5n_640.onnx", None, marks=pytest.mark.slow)],
)
def test_eval_det_agrees_with_pycocotools_run_directly(
    tmp_path: Path, model_name: str, limit: int | None
) -> None:
    model = shared_path("models", "reference_onnx", model_name)
    data = shared_path("coco128")
    args = ["eval", "det", "--model", str(model), "--data", str(data), "--json", str(tmp_path / "det.json")]
    code, text = run_cli([*args, "--max-images", str(limit)] if limit else args)
    assert code == 0, text
    report = json.loads((tmp_path / "det.json").read_text())
    assert report["schema"] == "edgedet.eval.det/1"
    assert report["models"][0]["sha256"] in (
        "8ad1284124674633c92213c0a1cba6ac1742b996a2865dde3a7089ae1dcb48f7",
        "a73f08eb9fd78a9dcfec8213dce39b0cae53f759bed498d55c234c5b1fb98c69",
    )
    m50_95, m50 = pycocotools_direct(model, data, limit)
    assert report["overall"]["mAP50_95"] == pytest.approx(m50_95, abs=1e-4)
    assert report["overall"]["mAP50"] == pytest.approx(m50, abs=1e-4)
    assert report["overall"]["images"] == (limit or 128)
    assert report["overall"]["model_ms_p50"] > 0
    if limit is None:  # the published reference pipeline's numbers on this set (models README)
        assert (report["overall"]["mAP50_95"], report["overall"]["mAP50"]) == pytest.approx(
            (0.350, 0.547), abs=0.002
        )


def test_eval_det_per_class(tmp_path: Path) -> None:
    model = shared_path("models", "reference_onnx", "yolov5n_320.onnx")
    data = shared_path("coco128")
    out = tmp_path / "det.json"
    code, text = run_cli(
        [
            "eval",
            "det",
            "--model",
            str(model),
            "--data",
            str(data),
            "--max-images",
            "4",
            "--per-class",
            "--json",
            str(out),
        ]
    )
    assert code == 0, text
    per_class = json.loads(out.read_text())["per_class"]
    assert per_class and all(0.0 <= v["mAP50_95"] <= v["mAP50"] <= 1.0 for v in per_class.values())
    assert "per class" in text


def test_eval_det_bad_data(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model = shared_path("models", "reference_onnx", "yolov5n_320.onnx")
    code, _ = run_cli(["eval", "det", "--model", str(model), "--data", str(tmp_path / "nope")])
    assert code == 1
    assert "does not exist" in capsys.readouterr().err
