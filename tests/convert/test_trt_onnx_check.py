"""Every ONNX kind `convert` makes for TensorRT passes TensorRT 10's parser rules (operators, opset 9-20, uint8
only at the network's edges); the CPU INT8 flavour and hand-made bad files are refused, naming the reason."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from edgedet.backends.trt_onnx_check import check_onnx_for_tensorrt, require_tensorrt_compatible
from edgedet.errors import ModelError


def _images(folder: Path, n: int = 32, hw: tuple[int, int] = (96, 128)) -> Path:
    import cv2

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        img = rng.integers(0, 255, (*hw, 3), dtype=np.uint8)
        cv2.rectangle(img, (10 + 2 * i, 20), (60 + 2 * i, 80), (255, 255, 255), -1)
        cv2.imwrite(str(folder / f"im{i}.jpg"), img)
    return folder


def _convert(source: str, tmp_path: Path, **changes: object) -> dict[str, Path]:
    from edgedet.convert.api import ConvertConfig, convert

    cfg = ConvertConfig(
        source=source,
        output=str(tmp_path / "out"),
        fp16=True,
        int8=True,
        int8_target="tensorrt",
        calib=str(_images(tmp_path / "calib")),
        max_map_drop=100.0,  # the gate's verdict is not what is tested here
        **changes,  # type: ignore[arg-type]
    )
    result = convert(cfg)
    return {a.precision: a.path for a in result.artifacts if a.kind == "onnx"}


@pytest.fixture(scope="module")
def tiny_kinds(tmp_path_factory: pytest.TempPathFactory, tiny_factory: str) -> dict[str, Path]:
    return _convert(tiny_factory, tmp_path_factory.mktemp("tiny"), imgsz=64, format="yolov8")


@pytest.fixture(scope="module")
def demo_kinds(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    pytest.importorskip("onnxruntime")
    from edgedet import demo

    return _convert(str(demo.model_path()), tmp_path_factory.mktemp("demo"))


@pytest.mark.parametrize("precision", ["fp32", "fp16", "int8"])
@pytest.mark.parametrize("model", ["tiny", "demo"])
def test_every_kind_convert_makes_for_tensorrt_passes(
    precision: str, model: str, request: pytest.FixtureRequest
) -> None:
    kinds = request.getfixturevalue(f"{model}_kinds")
    check = check_onnx_for_tensorrt(kinds[precision])
    assert check.ok, check.summary()
    assert 9 <= check.opset <= 20
    if precision == "int8":
        assert {"QuantizeLinear", "DequantizeLinear"} <= set(check.op_types)
    if precision == "fp16":
        m = onnx.load(str(kinds[precision]))
        assert any(i.data_type == TensorProto.FLOAT16 for i in m.graph.initializer)


def test_cpu_int8_flavour_is_refused_naming_the_fix() -> None:
    from edgedet import demo

    cpu_int8 = Path(demo.model_path()).with_name("demo.int8.onnx")  # the bundled uint8 (CPU) INT8 model
    check = check_onnx_for_tensorrt(cpu_int8)
    assert not check.ok
    assert "uint8 constants inside the network" in check.problems[0]
    assert "--int8-target tensorrt" in check.problems[0]
    with pytest.raises(ModelError, match="TensorRT 10 parser would refuse it") as info:
        require_tensorrt_compatible(cpu_int8)
    assert "\n" not in str(info.value)


def _model(nodes: list, opset: int = 17, out_type: int = TensorProto.FLOAT, extra: dict | None = None):  # type: ignore[no-untyped-def,type-arg]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("y", out_type, [1, 4])],
        **(extra or {}),
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


@pytest.mark.parametrize(
    ("model", "problem"),
    [
        (
            _model([helper.make_node("Relu", ["x"], ["y"])], opset=21),
            "opset 21 is outside TensorRT 10's 9-20",
        ),
        (_model([helper.make_node("Relu", ["x"], ["y"])], opset=8), "opset 8 is outside"),
        (
            _model([helper.make_node("Det", ["x"], ["y"])]),
            "Det x1 is not supported by TensorRT 10's ONNX parser",
        ),
        (
            _model([helper.make_node("FusedGemm", ["x"], ["y"], domain="com.microsoft")]),
            "com.microsoft.FusedGemm x1 is a custom-domain operator",
        ),
        (
            _model(
                [
                    helper.make_node("Cast", ["x"], ["u"], to=TensorProto.UINT8),
                    helper.make_node("Cast", ["u"], ["y"], to=TensorProto.FLOAT),
                ]
            ),
            "1 uint8 tensors inside the network (e.g. 'u')",
        ),
    ],
)
def test_bad_files_name_the_problem(model: object, problem: str) -> None:
    check = check_onnx_for_tensorrt(model)
    assert not check.ok
    assert any(problem in p for p in check.problems), check.problems


def test_uint8_at_the_network_edges_is_allowed() -> None:
    m = _model([helper.make_node("Cast", ["x"], ["y"], to=TensorProto.UINT8)], out_type=TensorProto.UINT8)
    check = check_onnx_for_tensorrt(m)
    assert check.ok, check.problems
    assert check.op_types == ("Cast",) and check.restricted == ()


def test_reference_yolov5n_passes_and_lists_restricted_ops() -> None:
    path = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "models" / "reference_onnx"
    onnx_path = path / "yolov5n_320.onnx"
    if not onnx_path.is_file():
        pytest.skip(f"missing {onnx_path}")
    check = check_onnx_for_tensorrt(onnx_path)
    assert check.ok and check.opset == 17
    assert "Resize" in check.restricted and "Conv" in check.op_types
