"""Accuracy gate: identical models pass with zero drop, a broken candidate fails, sensitivity ranks real layers."""

from __future__ import annotations

from pathlib import Path

import onnx
import pytest
from onnx import numpy_helper
from tests.conftest import shared_path

from edgedet.convert.gate import accuracy_gate, find_sensitive_nodes, quantize_with_gate
from edgedet.convert.quantize import quantize_int8
from edgedet.datasets import DetectionDataset, load_dataset
from edgedet.errors import ModelError
from edgedet.eval.det import load_onnx_spec


@pytest.fixture(scope="module")
def ref() -> Path:
    return shared_path("models", "reference_onnx", "yolov5n_320.onnx")


@pytest.fixture(scope="module")
def coco() -> DetectionDataset:
    return load_dataset(shared_path("coco128"))


def _damaged(ref: Path, out: Path) -> Path:
    """The reference with the last head conv's weights halved: same graph, worse boxes on one scale."""
    m = onnx.load(str(ref))
    for i, init in enumerate(m.graph.initializer):
        if init.name == "model.24.m.2.weight":
            m.graph.initializer[i].CopyFrom(
                numpy_helper.from_array(numpy_helper.to_array(init) * 0.5, init.name)
            )
    onnx.save(m, str(out))
    return out


def test_identical_models_pass_with_zero_drop(ref: Path, coco: DetectionDataset) -> None:
    images = coco.paths[:6]
    labelled = accuracy_gate(ref, ref, images, labels=coco)
    assert labelled.mode == "labels" and labelled.drop_points == 0.0 and labelled.passed
    pseudo = accuracy_gate(ref, ref, images)
    assert pseudo.mode == "reference" and pseudo.drop_points == 0.0 and pseudo.threshold_points == 10.0


def test_damaged_candidate_fails(ref: Path, coco: DetectionDataset, tmp_path: Path) -> None:
    bad = _damaged(ref, tmp_path / "bad.onnx")
    res = accuracy_gate(ref, bad, coco.paths[:6], labels=coco, max_map_drop=1.0)
    assert not res.passed and res.drop_points > 1.0
    assert "FAIL" in res.summary() and "\n" not in res.summary()


def test_gate_images_must_be_labelled(ref: Path, coco: DetectionDataset, tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="no labels"):
        accuracy_gate(ref, ref, [tmp_path / "elsewhere.jpg"], labels=coco)


def test_sensitive_nodes_are_quantized_convs_of_the_model(
    ref: Path, coco: DetectionDataset, tmp_path: Path
) -> None:
    paths = coco.paths
    q = quantize_int8(ref, tmp_path / "q.onnx", paths[:8], load_onnx_spec(ref), min_images=8)
    ranked = find_sensitive_nodes(ref, q, paths[8:10])
    conv_names = {n.name for n in onnx.load(str(ref)).graph.node if n.op_type == "Conv"}
    assert len(ranked) >= 50 and {r.name for r in ranked} <= conv_names
    assert all(r.op_type == "Conv" for r in ranked)
    assert [r.added_error for r in ranked] == sorted((r.added_error for r in ranked), reverse=True)
    assert 0 < ranked[0].output_error < 1  # a real, bounded relative error


def test_refused_model_never_sits_where_run_looks_and_carries_its_verdict(
    ref: Path, coco: DetectionDataset, tmp_path: Path
) -> None:
    from edgedet.convert.gate import GateRefused, read_verdict
    from edgedet.convert.info import describe

    paths = coco.paths
    out = tmp_path / "m.int8.onnx"
    out.write_bytes(b"an INT8 file from an earlier run")
    with pytest.raises(GateRefused) as err:
        quantize_with_gate(
            ref, out, paths[:32], paths[32:40], labels=coco, max_map_drop=-50.0, float_steps=(2,)
        )
    msg = str(err.value)
    assert (
        "\n" not in msg
        and "limit -50.00" in msg
        and "all int8: drop" in msg
        and "; +2 sensitive layers in float: drop" in msg  # a CPU file's SiLUs and stem already run in float
        and "stem conv in float" not in msg
    )
    assert "m.int8.rejected.onnx" in msg and "older m.int8.onnx was removed" in msg
    assert not out.exists()
    rejected = tmp_path / "m.int8.rejected.onnx"
    v = read_verdict(onnx.load(str(rejected)))
    assert v is not None and v["verdict"] == "refused" and v["mode"] == "labels" and v["images"] == 8
    assert v["limit_points"] == -50.0 and v["tries"][0][0] == "all int8"
    assert describe(rejected)["gate"].startswith("REFUSED: mAP50-95 ")
    assert not list(tmp_path.glob(".edgedet-int8-*"))  # scratch files cleaned up


def test_passing_model_lands_in_place_with_its_verdict(
    ref: Path, coco: DetectionDataset, tmp_path: Path
) -> None:
    from edgedet.convert.gate import read_verdict
    from edgedet.convert.info import describe

    paths = coco.paths
    out = tmp_path / "m.int8.onnx"
    (tmp_path / "m.int8.rejected.onnx").write_bytes(b"stale")
    res = quantize_with_gate(ref, out, paths[:32], paths[32:38], labels=coco, max_map_drop=100.0)
    assert res.passed and res.candidate_path == out and out.is_file()
    assert not (tmp_path / "m.int8.rejected.onnx").exists()
    v = read_verdict(onnx.load(str(out)))
    assert (
        v is not None
        and v["verdict"] == "pass"
        and v["images"] == 6
        and v["tries"] == [["all int8", round(res.drop_points, 3)]]
    )
    line = describe(out)["gate"]
    assert line.startswith("PASS: mAP50-95 ") and "6 images" in line and "limit 100.00" in line


def test_repair_loop_stops_at_the_first_try_that_is_not_better(
    ref: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The loop's control flow, with quantization and scoring replaced by a scripted sequence of drops."""
    import dataclasses

    import edgedet.convert.gate as gate_mod
    import edgedet.convert.quantize as quant_mod
    from edgedet.eval.det import DetMetrics

    drops = iter([3.0, 2.0, 2.5, 0.1])  # all int8, SiLU + stem, +2 layers (worse: stop), +4 (never reached)
    tried: list[int] = []

    def fake_quantize(fp32, out, calib, spec, method, exclude=(), **kw):  # type: ignore[no-untyped-def]
        tried.append(len(exclude))
        Path(out).write_bytes(Path(ref).read_bytes())
        return quant_mod.QuantizeResult(Path(out), tuple(exclude), (), {})

    def fake_gate(reference, candidate, images, labels, limit, **kw):  # type: ignore[no-untyped-def]
        m = DetMetrics(0.4, 0.6, 8, 10, 10, 1.0, 1.0)
        d = next(drops)
        return gate_mod.GateResult(
            "labels", m, dataclasses.replace(m, map50_95=0.4 - d / 100), d, 1.0, d <= 1.0, Path(candidate)
        )

    ranking = [gate_mod.NodeSensitivity(f"n{i}", "Conv", 1.0 - i / 10, 0.5) for i in range(8)]
    monkeypatch.setattr(quant_mod, "quantize_int8_detailed", fake_quantize)
    monkeypatch.setattr(gate_mod, "accuracy_gate", fake_gate)
    monkeypatch.setattr(gate_mod, "find_sensitive_nodes", lambda *a, **k: ranking)
    said: list[str] = []
    with pytest.raises(gate_mod.GateRefused) as err:
        quantize_with_gate(
            ref, tmp_path / "q.onnx", [ref], [ref], spec=load_onnx_spec(ref), progress=said.append
        )
    assert tried == [0, 1, 3]  # +4 never tried
    assert any("made it worse" in s for s in said)
    assert err.value.result.kept_float == ("/model.0/conv/Conv",) and err.value.result.drop_points == 2.0
    assert err.value.result.float_ops == ("Sigmoid", "Mul")
    assert (
        "all int8: drop 3.00; SiLU + stem conv in float: drop 2.00; +2 sensitive layers in float: drop 2.50"
        in str(err.value)
    )


def test_without_labels_the_wording_is_the_fp32_agreement_gate(ref: Path, tmp_path: Path) -> None:
    import cv2
    import numpy as np

    blank = []
    for i in range(2):
        p = tmp_path / f"blank{i}.jpg"
        cv2.imwrite(str(p), np.full((320, 320, 3), 114, np.uint8))
        blank.append(p)
    with pytest.raises(
        ModelError, match=r"detects nothing .* FP32-agreement gate has nothing to compare; pass --labels"
    ):
        accuracy_gate(ref, ref, blank)
    images = sorted(shared_path("coco128", "images", "train2017").glob("*.jpg"))[:3]
    res = accuracy_gate(ref, ref, images)
    assert (
        res.summary().startswith("FP32-agreement gate (no labels)") and "labels folder" not in res.summary()
    )


def test_no_gate_writes_the_model_with_a_skipped_verdict_and_a_warning(ref: Path, tmp_path: Path) -> None:
    from edgedet.convert.api import ConvertConfig, convert
    from edgedet.convert.info import describe

    calib = tmp_path / "calib"
    calib.mkdir()
    for p in sorted(shared_path("coco128", "images", "train2017").glob("*.jpg"))[:32]:
        (calib / p.name).symlink_to(p)
    res = convert(
        ConvertConfig(source=str(ref), int8=True, calib=str(calib), gate=False, output=str(tmp_path / "out"))
    )
    art = res.artifact("int8")
    assert art is not None and art.path.name == "yolov5n_320.int8.onnx" and art.path.is_file()
    assert art.gate == {"verdict": "skipped", "reason": "--no-gate: INT8 accuracy was not checked"}
    assert any(
        n.startswith("warning: --no-gate: the INT8 model's accuracy is NOT checked") for n in res.notes
    )
    assert describe(art.path)["gate"] == "skipped (--no-gate): INT8 accuracy not checked"
