"""edgedet's YOLOv5 implementation on the real yolov5n checkpoint, against the YOLOv5 repo's own ONNX export."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from tests.conftest import shared_path

from edgedet.convert import verify
from edgedet.convert.adapters import detect_source_kind
from edgedet.spec import ModelSpec

torch = pytest.importorskip("torch")

COCO_FIRST = ("person", "bicycle", "car")


@pytest.fixture(scope="module")
def yolov5n() -> object:
    from edgedet.convert.adapters.yolov5 import load_yolov5

    return load_yolov5(shared_path("models", "yolov5n.pt"))


def test_checkpoint_loads_without_yolov5_code(yolov5n: object) -> None:
    lm = yolov5n
    assert "models" not in sys.modules and "models.yolo" not in sys.modules
    assert lm.kind == "yolov5" and lm.output_format == "yolov5"  # type: ignore[attr-defined]
    assert lm.stride == 32  # type: ignore[attr-defined]
    assert lm.class_names[:3] == COCO_FIRST and len(lm.class_names) == 80  # type: ignore[attr-defined]
    module = lm.module  # type: ignore[attr-defined]
    # README: 1,867,405 parameters after Conv+BN fusion, all float32, no BatchNorm left
    assert sum(p.numel() for p in module.parameters()) == 1_867_405
    assert {p.dtype for p in module.parameters()} == {torch.float32}
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in module.modules())


def test_source_kind_detection() -> None:
    assert detect_source_kind(str(shared_path("models", "yolov5n.pt"))) == "yolov5"
    assert detect_source_kind(str(shared_path("models", "yolov5n.statedict.pt"))) == "yolov5"
    assert detect_source_kind("model.onnx") == "onnx"
    assert detect_source_kind("mypkg.models:build") == "module"


def test_statedict_file_gives_the_same_model(yolov5n: object) -> None:
    from edgedet.convert.adapters.yolov5 import load_yolov5

    other = load_yolov5(shared_path("models", "yolov5n.statedict.pt"))
    assert other.class_names == yolov5n.class_names  # type: ignore[attr-defined]
    x = torch.from_numpy(verify.sample_inputs(ModelSpec(input_hw=(160, 160)), n=1)[0])
    with torch.no_grad():
        a = yolov5n.module(x)  # type: ignore[attr-defined]
        b = other.module(x)
    assert a.shape == (1, 3 * (20 * 20 + 10 * 10 + 5 * 5), 85)
    assert torch.equal(a, b)


def test_pytorch_matches_reference_onnx_at_320(yolov5n: object) -> None:
    """Our modules, run in PyTorch, compute what the YOLOv5 repo exported (sigmoid + decode included)."""
    ref = shared_path("models", "reference_onnx", "yolov5n_320.onnx")
    spec = ModelSpec(input_hw=(320, 320), output_format="yolov5")
    inputs = verify.sample_inputs(spec, n=2)
    names, ref_out = verify.run_onnx(ref, inputs)
    ours = verify.run_torch(yolov5n.module, inputs)  # type: ignore[attr-defined]
    report = verify.compare(ref_out, ours, names, rtol=1e-4, atol=1e-4)
    assert report.passed, report.summary()
    assert ours[0][0].shape == (1, 6300, 85)
    # the decode really happened: centres = (2 sigmoid - 0.5 + cell) * stride lie within half a cell of the
    # input, scores are probabilities
    out = ours[0][0][0]
    assert -16 <= out[:, 0].min() < 8 and 312 < out[:, 0].max() <= 336
    assert 0 <= out[:, 4:].min() and out[:, 4:].max() <= 1
    assert np.any(out[:, 4] > 0.25)  # the synthetic scene gives the detector something to see
