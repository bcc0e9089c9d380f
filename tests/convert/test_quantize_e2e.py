"""INT8 of the newer heads' building blocks: an attention block (YOLO11's C2PSA, YOLO26) in the middle and an
NMS-free top-k tail (YOLOv10 / YOLO26 end-to-end head) at the end. The tail must stay float (TopK's indices,
the gathered boxes and scores), the attention must stay in the quantized body, and the file must run."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from edgedet.convert.quantize import find_decode_nodes, find_head_convs, quantize_int8_detailed
from edgedet.preprocess import Preprocessor
from edgedet.spec import ModelSpec

HW = (32, 32)
K = 10
SPEC = ModelSpec(input_hw=HW, output_format="end2end", class_names=tuple("abcd"))
TAIL = ["t_reshape", "t_sigmoid", "t_reducemax", "t_topk", "t_expand", "t_gather", "t_transpose"]


def tiny_e2e(path: Path) -> Path:
    """Conv-SiLU, a self-attention block (q = k = v, MatMul-Softmax-MatMul, residual Add), a head Conv with 8
    channels, then an end-to-end tail: sigmoid, max over channels, TopK over the 256 cells, GatherElements of
    the K picked cells' 8 values -> output0 [1, K, 8]."""
    rng = np.random.default_rng(0)
    inits = [
        numpy_helper.from_array(rng.normal(0, 0.3, (8, 3, 3, 3)).astype(np.float32), "w1"),
        numpy_helper.from_array(rng.normal(0, 0.3, (8, 8, 1, 1)).astype(np.float32), "wh"),
        numpy_helper.from_array(np.array([1, 8, 256], np.int64), "flat"),
        numpy_helper.from_array(np.array([1, 8, 16, 16], np.int64), "grid"),
        numpy_helper.from_array(np.array([K], np.int64), "k"),
        numpy_helper.from_array(np.array([1, 8, K], np.int64), "wide"),
        numpy_helper.from_array(np.float32(0.125), "temp"),
    ]
    n = [
        helper.make_node("Conv", ["images", "w1"], ["c1"], name="conv1", pads=[1, 1, 1, 1], strides=[2, 2]),
        helper.make_node("Sigmoid", ["c1"], ["s1"], name="sig1"),
        helper.make_node("Mul", ["c1", "s1"], ["a1"], name="silu1"),
        helper.make_node("Reshape", ["a1", "flat"], ["v"], name="a_flat"),  # [1, 8, 256]
        helper.make_node("Transpose", ["v"], ["q"], name="a_q", perm=[0, 2, 1]),  # [1, 256, 8]
        helper.make_node("MatMul", ["q", "v"], ["qk"], name="a_qk"),  # [1, 256, 256]
        helper.make_node("Mul", ["qk", "temp"], ["qks"], name="a_scale"),
        helper.make_node("Softmax", ["qks"], ["att"], name="a_softmax", axis=-1),
        helper.make_node("MatMul", ["att", "q"], ["o"], name="a_av"),  # [1, 256, 8]
        helper.make_node("Transpose", ["o"], ["ot"], name="a_back", perm=[0, 2, 1]),
        helper.make_node("Reshape", ["ot", "grid"], ["og"], name="a_grid"),
        helper.make_node("Add", ["a1", "og"], ["x"], name="a_residual"),
        helper.make_node("Conv", ["x", "wh"], ["h"], name="head"),
        helper.make_node("Reshape", ["h", "flat"], ["r"], name="t_reshape"),
        helper.make_node("Sigmoid", ["r"], ["s"], name="t_sigmoid"),
        helper.make_node("ReduceMax", ["s"], ["m"], name="t_reducemax", axes=[1], keepdims=1),
        helper.make_node("TopK", ["m", "k"], ["vals", "idx"], name="t_topk", axis=2),
        helper.make_node("Expand", ["idx", "wide"], ["idx8"], name="t_expand"),
        helper.make_node("GatherElements", ["s", "idx8"], ["g"], name="t_gather", axis=2),
        helper.make_node("Transpose", ["g"], ["output0"], name="t_transpose", perm=[0, 2, 1]),
    ]
    graph = helper.make_graph(
        n,
        "tiny_e2e",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, *HW])],
        [helper.make_tensor_value_info("output0", TensorProto.FLOAT, [1, K, 8])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    d = tmp_path_factory.mktemp("calib_e2e")
    rng = np.random.default_rng(3)
    paths = []
    for i in range(10):
        p = d / f"{i:03d}.png"
        cv2.imwrite(str(p), rng.integers(0, 256, (40, 40, 3), dtype=np.uint8))
        paths.append(p)
    return paths


def test_topk_tail_is_decode_and_attention_is_not(tmp_path: Path) -> None:
    m = onnx.load(str(tiny_e2e(tmp_path / "e2e.onnx")))
    assert find_decode_nodes(m) == TAIL
    assert find_head_convs(m) == ["head"]


def test_e2e_int8_keeps_the_tail_float_quantizes_around_attention_and_runs(
    tmp_path: Path, images: list[Path]
) -> None:
    src = tiny_e2e(tmp_path / "e2e.onnx")
    res = quantize_int8_detailed(src, tmp_path / "q.onnx", images, SPEC, "minmax", min_images=8)
    assert set(TAIL) <= set(res.excluded_nodes)
    m = onnx.load(str(res.path))
    q_inputs = {n.input[0] for n in m.graph.node if n.op_type == "QuantizeLinear"}
    assert {"c1", "x"} <= q_inputs  # the body, including the attention block's residual output, is int8
    assert not q_inputs & {"h", "r", "s", "m", "vals", "g"}  # head output and the top-k tail stay float
    assert res.silu_fused == 1
    sess_ref = ort.InferenceSession(str(src), providers=["CPUExecutionProvider"])
    sess_q = ort.InferenceSession(str(res.path), providers=["CPUExecutionProvider"])
    x, _ = Preprocessor(SPEC)(cv2.imread(str(images[0])))  # type: ignore[arg-type]
    ref = sess_ref.run(None, {"images": x})[0]
    got = sess_q.run(None, {"images": x})[0]
    assert got.shape == ref.shape == (1, K, 8)
    # the K best cells' best scores (each row's max) agree to 8-bit rounding, whichever cells TopK picked
    assert float(np.abs(np.sort(got.max(2)) - np.sort(ref.max(2))).max()) < 0.05
