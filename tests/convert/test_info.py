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


# --- the human summary ---------------------------------------------------------------------------------------------


def _ultralytics_like(tmp_path: Path) -> Path:
    """The reference export with the metadata an Ultralytics export carries (80 names, author, date, ...)."""
    import onnx

    src = shared_path("models", "reference_onnx", "yolov5n_320.onnx")
    m = onnx.load(str(src))
    names = {q.key: q.value for q in m.metadata_props}["names"]
    del m.metadata_props[:]
    for k, v in {
        "description": "Ultralytics YOLOv5n model", "author": "Ultralytics", "date": "2026-11-30T13:55:11+00:00",
        "version": "8.4.190", "license": "AGPL-3.0 License", "stride": "32", "task": "detect", "batch": "1",
        "imgsz": "[320, 320]", "names": names,
    }.items():  # fmt: skip
        entry = m.metadata_props.add()
        entry.key, entry.value = k, v
    out = tmp_path / "u.onnx"
    onnx.save(m, str(out))
    return out


def test_summary_is_short_classes_counted_provenance_once(tmp_path: Path) -> None:
    from edgedet.convert.info import format_summary

    p = _ultralytics_like(tmp_path)
    lines = format_summary(describe(p))
    assert lines[0] == f"u.onnx: ONNX model, fp32, {p.stat().st_size / 1e6:.1f} MB"
    assert lines[1] == "  input      images [1, 3, 320, 320] float32, NCHW RGB x/255, letterbox (pad 114)"
    assert lines[2] == "  output     output0 [1, 6300, 85] float32, format yolov5"
    assert lines[3] == "  classes    80: person, bicycle, car, motorcycle, airplane, bus, ... (--json lists all)"
    assert lines[4] == (
        "  provenance author Ultralytics; description Ultralytics YOLOv5n model; version 8.4.190; date 2026-11-30; "
        "license AGPL-3.0 License"
    )
    text = "\n".join(lines)
    assert text.count("Ultralytics YOLOv5n model") == 1 and text.count("8.4.190") == 1  # provenance once
    assert "toothbrush" not in text  # the 80th name: only --json lists them all
    assert len(lines) <= 10 and max(map(len, lines)) <= 130
    assert lines[-1].startswith("--json prints everything")


def test_summary_of_int8_model_and_engine_sidecar(tmp_path: Path) -> None:
    from edgedet.convert.info import format_summary

    demo = Path(__file__).resolve().parents[2] / "src" / "edgedet" / "_demo" / "demo.int8.onnx"
    lines = format_summary(describe(demo))
    assert lines[0].startswith("demo.int8.onnx: ONNX model, int8, ")
    assert "  classes    3: car, truck, person" in lines
    prov = next(ln for ln in lines if ln.startswith("  provenance "))
    assert prov.startswith("  provenance source demo.pt (sha256 7364f6263470); loader yolov5; edgedet 0.1.0; ")
    assert prov.endswith(" more")
    assert any(ln.startswith("  graph      opset 19") and "Q/DQ)" in ln for ln in lines)

    engine = tmp_path / "m.engine"
    engine.write_bytes(b"plan")
    spec = ModelSpec(input_hw=(640, 640), output_format="yolov5", precision="fp16", class_names=("a",))
    side = tmp_path / "m.engine.json"
    key = {"tensorrt_version": "10.3.0", "gpu_name": "Orin", "sm": "8.7"}
    side.write_text(json.dumps({"spec": json.loads(spec.to_json()), "key": key}))
    lines = format_summary(describe(engine))
    assert lines[0] == "m.engine: TensorRT engine, fp16, 0.0 MB"
    assert "  built for  TensorRT 10.3.0, GPU Orin, SM 8.7" in lines
    assert "  classes    1: a" in lines


def test_info_cli_summary_and_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from edgedet.cli import main

    p = _ultralytics_like(tmp_path)
    assert main(["info", str(p)]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[3].startswith("  classes    80: person,")
    assert main(["info", "--json", str(p)]) == 0
    full = json.loads(capsys.readouterr().out)
    assert len(full["spec"]["class_names"]) == 80 and full["spec"]["class_names"][-1] == "toothbrush"
