"""INT8 Q/DQ quantization: refusals, decode detection, calibration methods that really differ, output file."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper
from tests.conftest import shared_path

from edgedet.convert.quantize import (
    calibrate_ranges,
    find_decode_nodes,
    find_head_convs,
    quantize_int8,
    quantize_int8_detailed,
)
from edgedet.errors import ConfigError
from edgedet.spec import SPEC_KEY, ModelSpec

HW = (32, 32)


def tiny_yolov5(path: Path, opset: int = 17, dfl: bool = False) -> Path:
    """Conv-SiLU-Conv-SiLU-head Conv, then a YOLOv5-like decode (Reshape, Transpose, Sigmoid, Mul by a grid
    constant); with `dfl` the decode also runs a Softmax and a fixed 1x1 Conv, as YOLOv8's DFL does."""
    rng = np.random.default_rng(0)
    inits = [
        numpy_helper.from_array(rng.normal(0, 0.3, (8, 3, 3, 3)).astype(np.float32), "w1"),
        numpy_helper.from_array(rng.normal(0, 0.2, (8, 8, 3, 3)).astype(np.float32), "w2"),
        numpy_helper.from_array(rng.normal(0, 0.2, (16, 8, 1, 1)).astype(np.float32), "wh"),
        numpy_helper.from_array(np.array([1, 16, -1], np.int64), "shape"),
        numpy_helper.from_array(np.float32(4.0), "scale"),
    ]
    n = [
        helper.make_node("Conv", ["images", "w1"], ["c1"], name="conv1", pads=[1, 1, 1, 1], strides=[2, 2]),
        helper.make_node("Sigmoid", ["c1"], ["s1"], name="sig1"),
        helper.make_node("Mul", ["c1", "s1"], ["a1"], name="silu1"),
        helper.make_node("Conv", ["a1", "w2"], ["c2"], name="conv2", pads=[1, 1, 1, 1], strides=[2, 2]),
        helper.make_node("Sigmoid", ["c2"], ["s2"], name="sig2"),
        helper.make_node("Mul", ["c2", "s2"], ["a2"], name="silu2"),
        helper.make_node("Conv", ["a2", "wh"], ["h"], name="head"),
        helper.make_node("Reshape", ["h", "shape"], ["r"], name="dec_reshape"),
    ]
    if dfl:
        inits.append(numpy_helper.from_array(np.arange(16, dtype=np.float32).reshape(1, 16, 1, 1), "wdfl"))
        inits.append(numpy_helper.from_array(np.array([1, 16, 8, 8], np.int64), "shape4"))
        n += [
            helper.make_node("Softmax", ["r"], ["sm"], name="dec_softmax", axis=1),
            helper.make_node("Reshape", ["sm", "shape4"], ["sm4"], name="dec_reshape4"),
            helper.make_node("Conv", ["sm4", "wdfl"], ["d"], name="dec_dfl"),
            helper.make_node("Mul", ["d", "scale"], ["output0"], name="dec_mul"),
        ]
        out = helper.make_tensor_value_info("output0", TensorProto.FLOAT, [1, 1, 8, 8])
    else:
        n += [
            helper.make_node("Transpose", ["r"], ["t"], name="dec_transpose", perm=[0, 2, 1]),
            helper.make_node("Sigmoid", ["t"], ["st"], name="dec_sigmoid"),
            helper.make_node("Mul", ["st", "scale"], ["output0"], name="dec_mul"),
        ]
        out = helper.make_tensor_value_info("output0", TensorProto.FLOAT, [1, 64, 16])
    graph = helper.make_graph(
        n, "tiny", [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, *HW])], [out], inits
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Images with heavy-tailed pixel statistics (mostly dark, a few bright blobs), so ranges depend on method."""
    d = tmp_path_factory.mktemp("calib")
    rng = np.random.default_rng(1)
    paths = []
    for i in range(12):
        img = (rng.gamma(1.0, 12.0, (48, 64, 3))).clip(0, 255).astype(np.uint8)
        y, x = rng.integers(0, 40, 2)
        img[y : y + 4, x : x + 4] = 255
        p = d / f"{i:03d}.png"
        cv2.imwrite(str(p), img)
        paths.append(p)
    return paths


SPEC = ModelSpec(input_hw=HW, output_format="yolov5", class_names=tuple("abcdefghijk"))


def test_decode_nodes_are_everything_after_the_last_conv(tmp_path: Path) -> None:
    m = onnx.load(str(tiny_yolov5(tmp_path / "t.onnx")))
    assert find_decode_nodes(m) == ["dec_reshape", "dec_transpose", "dec_sigmoid", "dec_mul"]
    assert find_head_convs(m) == ["head"]


def test_dfl_conv_counts_as_decode(tmp_path: Path) -> None:
    m = onnx.load(str(tiny_yolov5(tmp_path / "t.onnx", dfl=True)))
    assert find_decode_nodes(m) == ["dec_reshape", "dec_softmax", "dec_reshape4", "dec_dfl", "dec_mul"]
    assert find_head_convs(m) == ["head"]


def test_yolov5n_decode_is_the_detect_tail() -> None:
    m = onnx.load(str(shared_path("models", "reference_onnx", "yolov5n_320.onnx")))
    decode = find_decode_nodes(m)
    ops = {n.name: n.op_type for n in m.graph.node}
    assert all(name.startswith("/model.24/") for name in decode)
    assert (
        sorted(ops[d] for d in decode if ops[d] in ("Sigmoid", "Pow", "Conv"))
        == ["Pow"] * 3 + ["Sigmoid"] * 3
    )
    assert sorted(find_head_convs(m)) == [f"/model.24/m.{i}/Conv" for i in range(3)]


def test_too_few_images_and_unknown_method_are_refused(tmp_path: Path, images: list[Path]) -> None:
    src = tiny_yolov5(tmp_path / "t.onnx")
    with pytest.raises(ConfigError, match=r"at least 32 images, got 12.*--calib"):
        quantize_int8(src, tmp_path / "q.onnx", images, SPEC)
    with pytest.raises(ConfigError, match="unknown calibration method 'kl'"):
        quantize_int8(src, tmp_path / "q.onnx", images, SPEC, "kl", min_images=4)  # type: ignore[arg-type]
    assert not (tmp_path / "q.onnx").exists()


def test_calibration_methods_give_different_ranges(tmp_path: Path, images: list[Path]) -> None:
    src = tiny_yolov5(tmp_path / "t.onnx")
    # 12 tiny images hold ~24k values per tensor: 99.999 would cut nothing, 99.0 must
    r = {
        m: calibrate_ranges(src, images, SPEC, m, percentile=99.0)
        for m in ("minmax", "entropy", "percentile")
    }
    names = sorted(r["minmax"])
    assert "c2" in names
    for m in ("entropy", "percentile"):
        # clipping methods never widen the MinMax range, and must narrow some (ORT's defaults made Entropy == MinMax)
        assert all(r[m][k][1] <= r["minmax"][k][1] + 1e-6 for k in names)
        assert sum(r[m][k][1] < r["minmax"][k][1] - 1e-4 for k in names) >= 1, m
    assert sum(r["entropy"][k][1] < 0.9 * r["minmax"][k][1] for k in names) >= 1  # KL clips the tails hard
    assert any(abs(r["entropy"][k][1] - r["percentile"][k][1]) > 1e-3 for k in names)


@pytest.mark.parametrize("opset", [11, 17])
def test_quantized_file_runs_keeps_decode_float_and_records_spec(
    tmp_path: Path, images: list[Path], opset: int
) -> None:
    src = tiny_yolov5(tmp_path / "t.onnx", opset=opset)
    res = quantize_int8_detailed(src, tmp_path / "q.onnx", images, SPEC, "minmax", min_images=8)
    m = onnx.load(str(res.path))
    assert next(o.version for o in m.opset_import if o.domain in ("", "ai.onnx")) >= 13
    q_inputs = {n.input[0] for n in m.graph.node if n.op_type == "QuantizeLinear"}
    assert {"c1", "a1"} <= q_inputs  # backbone activations are quantized
    assert not q_inputs & {"h", "r", "t", "st"}  # head output and decode stay float
    zps = [i for i in m.graph.initializer if i.name.endswith("_zero_point")]
    assert {z.data_type for z in zps if z.name.startswith(("c1", "a1"))} == {TensorProto.UINT8}
    assert not any(n.op_type == "QuantizeLinear" and n.input[0].endswith("bias") for n in m.graph.node)
    meta = {p.key: p.value for p in m.metadata_props}
    spec = ModelSpec.from_json(meta[SPEC_KEY])
    assert spec.precision == "int8" and '"images": 12' in spec.provenance["calibration"]
    from edgedet.preprocess import Preprocessor

    x, _ = Preprocessor(SPEC)(cv2.imread(str(images[0])))  # type: ignore[arg-type]
    ref = ort.InferenceSession(str(src), providers=["CPUExecutionProvider"]).run(None, {"images": x})[0]
    got = ort.InferenceSession(str(res.path), providers=["CPUExecutionProvider"]).run(None, {"images": x})[0]
    assert got.shape == ref.shape
    # 8-bit error through 3 layers on an image like the calibration ones, in the 0..4 output range
    assert float(np.abs(got - ref).mean()) < 0.03
    assert float(np.abs(got - ref).max()) < 0.3


def test_int8_activations_for_tensorrt_are_symmetric(tmp_path: Path, images: list[Path]) -> None:
    src = tiny_yolov5(tmp_path / "t.onnx")
    out = quantize_int8(src, tmp_path / "q.onnx", images, SPEC, min_images=8, activation_type="int8")
    m = onnx.load(str(out))
    zps = [numpy_helper.to_array(i) for i in m.graph.initializer if i.name.endswith("_zero_point")]
    assert zps and all(z.dtype == np.int8 and not z.any() for z in zps)


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        ("flags\t\t: fpu sse4_1 avx2 fma", True),  # AVX2 without VNNI: u8 x s8 pairs overflow int16
        ("flags\t\t: fpu avx2 avx512f avx512bw avx512_vnni", False),
        ("flags\t\t: fpu avx2 avx_vnni", False),
        ("processor\t: 0\n", False),  # no flags line: unknown, leave the weights alone
    ],
)
def test_reduce_range_only_where_the_cpu_lacks_vnni(flags: str, expected: bool) -> None:
    from edgedet.convert.quantize import needs_reduce_range

    assert needs_reduce_range(flags) is expected


def _ops(path: Path) -> list[str]:
    return [n.op_type for n in onnx.load(str(path)).graph.node]


def test_silu_fusion_is_exact_on_the_float_graph_and_leaves_other_sigmoids(tmp_path: Path) -> None:
    from edgedet.convert.silu_fusion import fuse_silu

    src = tiny_yolov5(tmp_path / "t.onnx")
    m = onnx.load(str(src))
    assert fuse_silu(m) == 2
    ops = [n.op_type for n in m.graph.node]
    assert (
        ops.count("QuickGelu") == 2 and ops.count("Sigmoid") == 1
    )  # the decode's sigmoid (times a constant)
    assert [n.name for n in m.graph.node if n.op_type == "Sigmoid"] == ["dec_sigmoid"]
    onnx.save(m, str(tmp_path / "f.onnx"))
    x = np.random.default_rng(3).random((1, 3, *HW), dtype=np.float32) * 2 - 0.5
    ref = ort.InferenceSession(str(src), providers=["CPUExecutionProvider"]).run(None, {"images": x})[0]
    got = ort.InferenceSession(str(tmp_path / "f.onnx"), providers=["CPUExecutionProvider"]).run(
        None, {"images": x}
    )[0]
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-5)


def test_cpu_int8_runs_silu_as_quickgelu_between_int8_convs(tmp_path: Path, images: list[Path]) -> None:
    src = tiny_yolov5(tmp_path / "t.onnx")
    fused = quantize_int8_detailed(src, tmp_path / "fused.onnx", images, SPEC, "minmax", min_images=8)
    plain = quantize_int8_detailed(
        src,
        tmp_path / "plain.onnx",
        images,
        SPEC,
        "minmax",
        min_images=8,
        ranges=fused.ranges,
        fuse_silu_cpu=False,
    )
    assert fused.silu_fused == 2 and plain.silu_fused == 0
    ops = _ops(fused.path)
    assert ops.count("QuickGelu") == 2 and ops.count("Sigmoid") == 1
    assert _ops(plain.path).count("Sigmoid") == 3
    # ONNX Runtime still turns the second conv into an int8 QLinearConv after the float QuickGelu (the stem, conv1,
    # runs in float: see test_cpu_int8_stem_runs_in_float_with_its_int8_weights)
    o = ort.SessionOptions()
    o.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    o.optimized_model_filepath = str(tmp_path / "opt.onnx")
    ort.InferenceSession(str(fused.path), o, providers=["CPUExecutionProvider"])
    assert _ops(tmp_path / "opt.onnx").count("QLinearConv") == 1
    spec = ModelSpec.from_json({p.key: p.value for p in onnx.load(str(fused.path)).metadata_props}[SPEC_KEY])
    assert '"silu": "2 fused to float QuickGelu"' in spec.provenance["calibration"]
    # one rounding fewer per SiLU: at least as close to FP32 as the quantized Sigmoid * Mul
    from edgedet.preprocess import Preprocessor

    errs = {}
    for name, path in (("fused", fused.path), ("plain", plain.path)):
        e = []
        for img in images:
            x, _ = Preprocessor(SPEC)(cv2.imread(str(img)))  # type: ignore[arg-type]
            ref = ort.InferenceSession(str(src), providers=["CPUExecutionProvider"]).run(None, {"images": x})[
                0
            ]
            got = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(
                None, {"images": x}
            )[0]
            e.append(float(np.abs(got - ref).mean()))
        errs[name] = float(np.mean(e))
    assert errs["fused"] <= errs["plain"] * 1.05, errs


def test_tensorrt_int8_keeps_plain_sigmoid_mul(tmp_path: Path, images: list[Path]) -> None:
    src = tiny_yolov5(tmp_path / "t.onnx")
    res = quantize_int8_detailed(src, tmp_path / "q.onnx", images, SPEC, min_images=8, activation_type="int8")
    assert res.silu_fused == 0
    ops = _ops(res.path)
    assert "QuickGelu" not in ops and ops.count("Sigmoid") == 3
    assert all(n.domain in ("", "ai.onnx") for n in onnx.load(str(res.path)).graph.node)


def test_silu_input_range_starts_where_silu_output_rounds_to_zero(tmp_path: Path) -> None:
    import math

    from edgedet.convert.silu_fusion import clip_silu_inputs, silu_pairs

    m = onnx.load(str(tiny_yolov5(tmp_path / "t.onnx")))
    assert silu_pairs(m) == [("c1", "a1"), ("c2", "a2")]
    ranges = {
        "c1": (-20.0, 10.0),
        "a1": (-0.2785, 10.0),
        "c2": (-1.0, 4.0),
        "a2": (-0.27, 4.0),
        "h": (-9.0, 9.0),
    }
    got = clip_silu_inputs(m, ranges)
    lo = got["c1"][0]
    half_step = (10.0 + 0.2785) / 255 / 2
    assert -7.0 < lo < -5.0 and got["c1"][1] == 10.0
    assert math.isclose(abs(lo / (1 + math.exp(-lo))), half_step, rel_tol=1e-6)
    assert got["c2"] == (-1.0, 4.0)  # its tail ends above SiLU's minimum: nothing to cut
    assert got["h"] == (-9.0, 9.0) and got["a1"] == ranges["a1"]  # not SiLU inputs
    assert ranges["c1"] == (-20.0, 10.0)  # the caller's ranges are not changed


def test_cpu_int8_stem_runs_in_float_with_its_int8_weights(tmp_path: Path, images: list[Path]) -> None:
    src = tiny_yolov5(tmp_path / "t.onnx")
    res = quantize_int8_detailed(src, tmp_path / "q.onnx", images, SPEC, "minmax", min_images=8)
    plain = quantize_int8_detailed(
        src,
        tmp_path / "p.onnx",
        images,
        SPEC,
        "minmax",
        min_images=8,
        ranges=res.ranges,
        stem_float_cpu=False,
    )
    assert res.stem_float == "conv1" and plain.stem_float is None
    g = onnx.load(str(res.path)).graph
    conv1 = next(n for n in g.node if n.name == "conv1")
    assert conv1.input[0] == "images"  # the float image, no Q/DQ in front
    assert not any(n.op_type == "QuantizeLinear" and n.input[0] == "images" for n in g.node)
    w = numpy_helper.to_array(next(i for i in g.initializer if i.name == conv1.input[1]))
    # the int8-rounded weights: each output channel is an integer multiple of its scale
    pg = onnx.load(str(plain.path)).graph
    inits = {i.name: numpy_helper.to_array(i) for i in pg.initializer}
    wdq = next(
        n
        for n in pg.node
        if n.op_type == "DequantizeLinear"
        and n.output[0] == next(c for c in pg.node if c.name == "conv1").input[1]
    )
    q, scale = inits[wdq.input[0]], inits[wdq.input[1]]
    np.testing.assert_array_equal(w, q.astype(np.float32) * scale.reshape(-1, 1, 1, 1).astype(np.float32))
    # same model as the all-int8 file except the image's 8-bit rounding
    from edgedet.preprocess import Preprocessor

    x, _ = Preprocessor(SPEC)(cv2.imread(str(images[0])))  # type: ignore[arg-type]
    a = ort.InferenceSession(str(res.path), providers=["CPUExecutionProvider"]).run(None, {"images": x})[0]
    b = ort.InferenceSession(str(plain.path), providers=["CPUExecutionProvider"]).run(None, {"images": x})[0]
    assert float(np.abs(a - b).mean()) < 0.02
    meta = ModelSpec.from_json({p.key: p.value for p in onnx.load(str(res.path)).metadata_props}[SPEC_KEY])
    assert '"stem": "float conv, int8-rounded weights"' in meta.provenance["calibration"]


def test_concat_output_and_its_sole_inputs_share_one_range() -> None:
    from edgedet.convert.quantize import shared_concat_ranges

    nodes = [
        helper.make_node("Concat", ["a", "b"], ["ab"], name="cat1", axis=1),
        helper.make_node("Relu", ["b"], ["rb"], name="other_reader_of_b"),
        helper.make_node("Concat", ["d", "k"], ["dk"], name="cat3", axis=1),  # "k" has no range: left alone
        helper.make_node("Concat", ["e", "f"], ["ef"], name="dec_cat", axis=1),  # kept float: left alone
    ]
    m = helper.make_model(helper.make_graph(nodes, "g", [], []))
    ranges = {
        "a": (-0.3, 2.0), "b": (-0.2, 6.0), "ab": (-0.5, 4.0), "rb": (0.0, 5.0),
        "d": (0.0, 1.0), "dk": (0.0, 9.0), "e": (0.0, 1.0), "f": (0.0, 3.0), "ef": (0.0, 3.0), "x": (-7.0, 7.0),
    }  # fmt: skip
    got = shared_concat_ranges(m, ranges, skip_nodes=["dec_cat"])
    assert got["a"] == got["ab"] == (-0.5, 6.0)  # the union, for the output and the input only cat1 reads
    assert got["b"] == (-0.2, 6.0) and got["rb"] == (0.0, 5.0)  # b is read elsewhere too: its own range
    assert got["d"] == (0.0, 1.0) and got["dk"] == (0.0, 9.0)
    assert (got["e"], got["f"], got["ef"]) == ((0.0, 1.0), (0.0, 3.0), (0.0, 3.0))
    assert got["x"] == (-7.0, 7.0) and ranges["a"] == (-0.3, 2.0)  # others and the caller's dict untouched


def test_cpu_int8_concat_reads_and_writes_one_scale(tmp_path: Path, images: list[Path]) -> None:
    """In the file, every quantized Concat's input Q/DQ pairs carry the output's scale and zero point."""
    src = tmp_path / "cat.onnx"
    rng = np.random.default_rng(0)
    inits = [
        numpy_helper.from_array(rng.normal(0, 0.3, (4, 3, 3, 3)).astype(np.float32), "w1"),
        numpy_helper.from_array(rng.normal(0, 0.9, (4, 3, 3, 3)).astype(np.float32), "w2"),
        numpy_helper.from_array(rng.normal(0, 0.2, (8, 8, 1, 1)).astype(np.float32), "w3"),
    ]
    n = [
        helper.make_node("Conv", ["images", "w1"], ["c1"], name="conv1", pads=[1, 1, 1, 1]),
        helper.make_node("Conv", ["images", "w2"], ["c2"], name="conv2", pads=[1, 1, 1, 1]),
        helper.make_node("Concat", ["c1", "c2"], ["cat"], name="cat", axis=1),
        helper.make_node("Conv", ["cat", "w3"], ["output0"], name="conv3"),
    ]
    g = helper.make_graph(
        n,
        "cat",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, *HW])],
        [helper.make_tensor_value_info("output0", TensorProto.FLOAT, [1, 8, *HW])],
        inits,
    )
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(src))
    spec = ModelSpec(input_hw=HW, output_format="yolov5", class_names=("a",))
    params = {}
    for shared in (True, False):
        out = tmp_path / f"q{shared}.onnx"
        quantize_int8_detailed(
            src, out, images, spec, "minmax", min_images=8, head_float=False, exclude_decode=False,
            shared_concat=shared, stem_float_cpu=False,
        )  # fmt: skip
        q = onnx.load(str(out))
        inits_q = {i.name: numpy_helper.to_array(i) for i in q.graph.initializer}
        qs = {nd.input[0]: nd for nd in q.graph.node if nd.op_type == "QuantizeLinear"}
        params[shared] = {
            t: (float(inits_q[qs[t].input[1]]), int(inits_q[qs[t].input[2]])) for t in ("c1", "c2", "cat")
        }
    assert len(set(params[True].values())) == 1  # one scale and zero point for both inputs and the output
    assert params[False]["c1"] != params[False]["cat"]  # without it, the narrower input keeps its own scale
