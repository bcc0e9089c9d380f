"""convert(): options are validated up front; a module factory goes to FP32 + FP16 ONNX with parity numbers."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import onnx
import pytest
from tests.conftest import shared_path

from edgedet.convert import ConvertConfig, convert, describe
from edgedet.convert.api import output_paths, validate
from edgedet.errors import ConfigError
from edgedet.spec import SPEC_KEY


@pytest.mark.parametrize(
    ("changes", "match"),
    [
        ({"int8": True}, "--int8 needs calibration images: pass --calib DIR"),
        ({"labels": "labels/"}, "--labels is used by the INT8 accuracy gate"),
        ({"format": "ssd"}, "--format 'ssd' is unknown; use one of yolov5, yolov8, end2end"),
        ({"calib_method": "kl", "int8": True, "calib": "x"}, "--calib-method 'kl' is unknown"),
        ({"max_map_drop": 200.0}, "must be in mAP points, 0..100"),
        ({"weights": "w.pth"}, "--weights goes with a module factory source"),
        ({"dynamic": True, "int8": True, "calib": "x"}, "--dynamic cannot be combined with --int8"),
        ({"imgsz": 16}, "--imgsz 16 is out of range"),
    ],
)
def test_invalid_options_refused(changes: dict[str, object], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        validate(ConvertConfig(source="model.pt", **changes))  # type: ignore[arg-type]


def test_output_names(tmp_path: Path) -> None:
    p = output_paths(ConvertConfig(source=str(tmp_path / "best.pt")))
    assert p["fp32"] == tmp_path / "best.onnx" and p["fp16"] == tmp_path / "best.fp16.onnx"
    assert p["int8"].name == "best.int8.onnx" and p["engine"].name == "best.engine"
    assert (
        output_paths(ConvertConfig(source="pkg.mod:build", output=str(tmp_path)))["fp32"]
        == tmp_path / "build.onnx"
    )


def test_module_factory_to_fp32_and_fp16(tmp_path: Path, tiny_factory: str, tiny_weights: Path) -> None:
    names = tmp_path / "classes.txt"
    names.write_text("cat\ndog\nbird\n")
    messages: list[str] = []
    cfg = ConvertConfig(
        source=tiny_factory,
        weights=str(tiny_weights),
        format="yolov8",
        names=str(names),
        imgsz=64,
        fp16=True,
        output=str(tmp_path / "out"),
    )
    result = convert(cfg, progress=messages.append)
    assert [(a.path.name, a.precision) for a in result.artifacts] == [
        ("build.onnx", "fp32"),
        ("build.fp16.onnx", "fp16"),
    ]
    fp32, fp16 = result.artifacts
    assert fp32.parity is not None and fp32.parity["passed"] and fp32.parity["reference"] == "PyTorch"
    assert fp16.parity is not None and fp16.parity["passed"] and fp16.parity["reference"] == "build.onnx"
    assert fp32.size_bytes == fp32.path.stat().st_size and fp16.size_bytes < fp32.size_bytes
    assert result.spec.class_names == ("cat", "dog", "bird") and result.spec.input_hw == (64, 64)
    assert result.spec.provenance["loader"] == "module" and result.spec.provenance["weights"] == "tiny.pth"
    assert describe(fp16.path)["spec"]["precision"] == "fp16"
    assert any("parity" in m for m in messages)
    assert result.as_dict()["artifacts"][1]["path"] == str(fp16.path)


def test_onnx_source_gets_spec_and_weights_out_of_inputs(tmp_path: Path) -> None:
    """Start from the YOLOv5 repo's ONNX: the copy carries an edgedet spec and the FP16 file is checked."""
    ref = shared_path("models", "reference_onnx", "yolov5n_320.onnx")
    result = convert(ConvertConfig(source=str(ref), fp16=True, output=str(tmp_path)))
    fp32 = result.artifact("fp32")
    assert fp32 is not None and fp32.path == tmp_path / "yolov5n_320.onnx"
    meta = {p.key for p in onnx.load(fp32.path, load_external_data=False).metadata_props}
    assert SPEC_KEY in meta
    assert result.spec.output_format == "yolov5" and len(result.spec.class_names) == 80
    assert result.spec.provenance["source_sha256"].startswith("8ad12841")
    fp16 = result.artifact("fp16")
    assert fp16 is not None and fp16.parity is not None and fp16.parity["passed"]


def test_engine_without_tensorrt_leaves_onnx_ready(tmp_path: Path, tiny_factory: str) -> None:
    if importlib.util.find_spec("edgedet.backends.engine_build") is None:
        pytest.skip("edgedet.backends.engine_build is not written yet")
    if importlib.util.find_spec("tensorrt") is not None:
        pytest.skip("TensorRT is installed; this checks the machine without it")
    cfg = ConvertConfig(source=tiny_factory, format="yolov8", imgsz=64, engine=True, output=str(tmp_path))
    result = convert(cfg)
    assert [a.kind for a in result.artifacts] == ["onnx"]
    assert any("build the engine on the device with the same command" in n for n in result.notes)


def test_int8_gate_without_pycocotools_is_refused_before_any_work(monkeypatch: pytest.MonkeyPatch) -> None:
    import edgedet._optional as opt
    from edgedet.errors import MissingDependencyError

    monkeypatch.setattr(opt, "available", lambda module: module != "pycocotools")
    cfg = ConvertConfig(source="model.pt", int8=True, calib="images/")
    with pytest.raises(MissingDependencyError, match=r"convert --int8 needs 'pycocotools'.*pip install"):
        validate(cfg)
    validate(ConvertConfig(source="model.pt", int8=True, calib="images/", gate=False))  # --no-gate: not needed
