"""convert --dynamic [--engine --batch N]: the ONNX takes any batch; the engine's batch profile is 1..N."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from edgedet.convert import ConvertConfig, convert
from edgedet.convert.api import validate
from edgedet.errors import ConfigError, MissingDependencyError
from edgedet.spec import read_onnx_spec


def test_batch_needs_dynamic() -> None:
    with pytest.raises(ConfigError, match="--batch 4: the engine batch goes with a dynamic-batch export"):
        validate(ConvertConfig(source="model.pt", batch=4))


def test_dynamic_export_runs_any_batch_and_the_engine_gets_the_profile(
    tmp_path: Path, tiny_factory: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import edgedet.backends.engine_build as eb

    asked: list[object] = []

    def fake_build(onnx_path, out_path=None, workspace_gb=0.0, dynamic_batch=None, progress=None, **kw):
        asked.append(dynamic_batch)  # what convert asks TensorRT for; TensorRT itself is not here
        raise MissingDependencyError("TensorRT is not installed")

    monkeypatch.setattr(eb, "build_engine", fake_build)
    cfg = ConvertConfig(source=tiny_factory, format="yolov8", imgsz=64, dynamic=True, engine=True, batch=4,
                        output=str(tmp_path))  # fmt: skip
    result = convert(cfg)
    assert asked == [(1, 4, 4)]
    onnx_path = next(a.path for a in result.artifacts if a.kind == "onnx")
    assert read_onnx_spec(onnx_path).batch == 0
    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    outs = [sess.run(None, {"images": np.zeros((b, 3, 64, 64), np.float32)})[0] for b in (1, 3)]
    assert outs[0].shape[0] == 1 and outs[1].shape[0] == 3
    assert np.allclose(outs[1][2], outs[0][0], atol=1e-5)
