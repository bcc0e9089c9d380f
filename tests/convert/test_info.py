"""describe(): spec, I/O, precision, opset, provenance, size and sha256 of ONNX files and engine sidecars."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from tests.conftest import shared_path

from edgedet.convert.info import describe
from edgedet.errors import DataError, ModelError
from edgedet.spec import ModelSpec


def test_describe_reference_onnx_without_edgedet_spec() -> None:
    p = shared_path("models", "reference_onnx", "yolov5n_320.onnx")
    d = describe(p)
    assert d["kind"] == "onnx" and d["precision"] == "fp32" and d["opset"] == 17 and d["ir_version"] == 8
    assert d["sha256"] == "8ad1284124674633c92213c0a1cba6ac1742b996a2865dde3a7089ae1dcb48f7"
    assert d["size_bytes"] == p.stat().st_size
    assert d["inputs"] == [{"name": "images", "shape": [1, 3, 320, 320], "dtype": "float32"}]
    assert d["outputs"] == [{"name": "output0", "shape": [1, 6300, 85], "dtype": "float32"}]
    assert d["has_edgedet_spec"] is False
    assert d["spec"]["output_format"] == "yolov5" and d["spec"]["num_classes"] == 80
    assert d["metadata"]["stride"] == "32"
    json.dumps(d)  # JSON-ready


def test_describe_engine_sidecar(tmp_path: Path) -> None:
    engine = tmp_path / "m.engine"
    engine.write_bytes(b"plan bytes")
    spec = ModelSpec(input_hw=(320, 320), output_format="yolov5", precision="int8", class_names=("x",))
    side = tmp_path / "m.engine.json"
    side.write_text(json.dumps({"spec": json.loads(spec.to_json()), "tensorrt": "10.3.0", "gpu": "Orin"}))
    for target in (engine, side):
        d = describe(target)
        assert d["kind"] == "engine" and d["precision"] == "int8"
        assert d["engine"] == {"tensorrt": "10.3.0", "gpu": "Orin"}
        assert d["sha256"] == hashlib.sha256(b"plan bytes").hexdigest() and d["size_bytes"] == 10
        assert d["spec"]["input_hw"] == [320, 320]


@pytest.mark.parametrize(
    ("name", "content", "error", "match"),
    [
        ("missing.onnx", None, ModelError, "not found"),
        ("broken.onnx", b"\x00not onnx", ModelError, "cannot read"),
        ("x.engine", b"plan", ModelError, "no .json sidecar"),
        ("bad.json", b"{not json", DataError, "cannot read engine sidecar"),
    ],
)
def test_describe_errors(tmp_path: Path, name: str, content: bytes | None, error: type, match: str) -> None:
    p = tmp_path / name
    if content is not None:
        p.write_bytes(content)
    with pytest.raises(error, match=match):
        describe(p)
