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
    assert pseudo.mode == "reference" and pseudo.drop_points == 0.0 and pseudo.threshold_points == 5.0


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


@pytest.mark.slow
def test_repair_loop_fails_in_one_line_when_the_limit_cannot_be_met(
    ref: Path, coco: DetectionDataset, tmp_path: Path
) -> None:
    paths = coco.paths
    with pytest.raises(ModelError) as err:
        quantize_with_gate(
            ref,
            tmp_path / "q.onnx",
            paths[:32],
            paths[32:40],
            labels=coco,
            max_map_drop=-50.0,
            float_steps=(2,),
        )
    msg = str(err.value)
    assert "\n" not in msg and "2 layers in float" in msg and "limit -50.00" in msg
