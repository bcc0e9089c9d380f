"""ONNX export: tiny module round trip with parity, spec in metadata, single file, dynamic batch; yolov5n at 320."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from tests.conftest import shared_path

from edgedet.convert import verify
from edgedet.convert.adapters.module_factory import load_module_factory
from edgedet.convert.export_onnx import export_onnx, read_spec, sha256_file
from edgedet.errors import ConfigError, ModelError
from edgedet.spec import SPEC_KEY, ModelSpec

torch = pytest.importorskip("torch")

NAMES = ("a", "b", "c")


def _tiny(tiny_factory: str, weights: Path | None = None):  # type: ignore[no-untyped-def]
    return load_module_factory(tiny_factory, weights, "yolov8", NAMES)


@pytest.mark.parametrize(("dynamic", "simplify"), [(False, True), (True, False)])
def test_tiny_round_trip(
    tmp_path: Path, tiny_factory: str, tiny_weights: Path, dynamic: bool, simplify: bool
) -> None:
    lm = _tiny(tiny_factory, tiny_weights)
    assert lm.stride == 8  # from the module's `stride` attribute
    spec = ModelSpec(input_hw=(64, 96), output_format="yolov8", class_names=NAMES, stride=lm.stride)
    out, written, notes = export_onnx(
        lm.module,
        tmp_path / "tiny.onnx",
        spec,
        opset=17,
        dynamic=dynamic,
        simplify=simplify,
        source=tiny_weights,
    )
    assert notes == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tiny.onnx"]  # one self-contained file
    m = onnx.load(out)
    onnx.checker.check_model(m, full_check=True)
    assert all(i.data_location != onnx.TensorProto.EXTERNAL for i in m.graph.initializer)
    assert {o.version for o in m.opset_import if o.domain in ("", "ai.onnx")} == {17}
    # spec in metadata, read back through the runtime's reader
    meta = {p.key: p.value for p in m.metadata_props}
    stored = json.loads(meta[SPEC_KEY])
    assert stored["provenance"]["source_sha256"] == sha256_file(tiny_weights)
    assert stored["provenance"]["opset"] == 17 and stored["provenance"]["torch"] == torch.__version__
    assert {"onnx", "onnxruntime", "edgedet", "date"} <= set(stored["provenance"])
    back = read_spec(out)
    assert back == written
    assert back.class_names == NAMES and back.input_hw == (64, 96) and back.batch == (0 if dynamic else 1)
    # parity against PyTorch on synthetic scenes: boxes in pixels, scores in [0, 1]
    report = verify.check_parity(lm.module, out, back, n=3)
    assert report.passed and report.max_abs < 1e-3, report.summary()
    assert report.outputs[0].shape == (1, 7, (64 // 4) * (96 // 4))
    if dynamic:
        x = np.stack([verify.sample_inputs(back, n=2)[i][0] for i in range(2)])
        (y,) = verify.onnx_session(out).run(None, {"images": x})
        with torch.no_grad():
            ref = lm.module(torch.from_numpy(x)).numpy()
        assert y.shape == (2, 7, 384)
        np.testing.assert_allclose(y, ref, rtol=1e-4, atol=1e-4)


def test_state_dict_is_really_loaded(tiny_factory: str, tiny_weights: Path) -> None:
    x = torch.from_numpy(verify.sample_inputs(ModelSpec(input_hw=(64, 64)), n=1)[0])
    with torch.no_grad():
        a = _tiny(tiny_factory).module(x)
        b = _tiny(tiny_factory, tiny_weights).module(x)
        expected = torch.load(tiny_weights, weights_only=True)["head.weight"]
    assert not torch.allclose(a, b)
    assert torch.equal(_tiny(tiny_factory, tiny_weights).module.head.weight, expected)


def test_export_refuses_size_not_multiple_of_stride(tmp_path: Path, tiny_factory: str) -> None:
    lm = _tiny(tiny_factory)
    with pytest.raises(ConfigError, match="multiple of the model stride 8"):
        export_onnx(lm.module, tmp_path / "t.onnx", ModelSpec(input_hw=(60, 64), stride=8))


def test_parity_failure_is_reported(tmp_path: Path, tiny_factory: str, tiny_weights: Path) -> None:
    """An ONNX file from other weights must fail the parity check with a clear message."""
    spec = ModelSpec(input_hw=(64, 64), output_format="yolov8", class_names=NAMES, stride=8)
    out, _, _ = export_onnx(_tiny(tiny_factory).module, tmp_path / "t.onnx", spec)
    with pytest.raises(ModelError, match=r"t.onnx does not match PyTorch: output output0 differs by up to"):
        verify.check_parity(_tiny(tiny_factory, tiny_weights).module, out, spec, n=1)


def test_sample_inputs_are_scenes_not_noise() -> None:
    spec = ModelSpec(input_hw=(96, 128))
    a, b = verify.sample_inputs(spec, n=2)
    assert a.shape == (1, 3, 96, 128) and a.dtype == np.float32
    assert 0.0 <= a.min() and a.max() <= 1.0 and a.std() > 0.05  # not flat
    # neighbouring pixels correlate (noise would give ~0), and scenes differ from each other
    x = a[0, 1, 20:80, :]
    assert np.corrcoef(x[:, :-1].ravel(), x[:, 1:].ravel())[0, 1] > 0.8
    assert np.abs(a - b).mean() > 0.02
    assert np.array_equal(a, verify.sample_inputs(spec, n=1)[0])  # deterministic


@pytest.mark.slow
def test_yolov5n_export_matches_pytorch_and_reference(tmp_path: Path) -> None:
    from edgedet.convert.adapters.yolov5 import load_yolov5

    ckpt = shared_path("models", "yolov5n.pt")
    ref = shared_path("models", "reference_onnx", "yolov5n_320.onnx")
    lm = load_yolov5(ckpt)
    spec = ModelSpec(input_hw=(320, 320), output_format="yolov5", class_names=lm.class_names, stride=32)
    out, written, _ = export_onnx(lm.module, tmp_path / "yolov5n.onnx", spec, source=ckpt)
    assert (
        written.provenance["source_sha256"]
        == "4f180cf23ba0717ada0badd6c685026d73d48f184d00fc159c2641284b2ac0a3"
    )
    vs_torch = verify.check_parity(lm.module, out, written, n=2)
    vs_ref = verify.check_parity(ref, out, written, n=2, rtol=1e-4, atol=1e-4)
    assert vs_torch.passed and vs_ref.passed, (vs_torch.summary(), vs_ref.summary())
    assert vs_ref.max_abs < 0.01  # pixels, on boxes up to ~330


@pytest.mark.parametrize(
    ("fmt", "shape", "box_index", "score_index"),
    [("yolov5", (1, 6, 85), (0, 2, 1), (0, 2, 7)), ("yolov8", (1, 84, 6), (0, 1, 2), (0, 7, 2))],
)
def test_box_tolerance_applies_to_box_coordinates_only(
    fmt: str, shape: tuple[int, ...], box_index: tuple[int, ...], score_index: tuple[int, ...]
) -> None:
    ref = np.full(shape, 0.5, np.float32)
    off_box, off_score = ref.copy(), ref.copy()
    off_box[box_index] += 0.2  # 0.2 px on a box coordinate: inside box_atol 0.25
    off_score[score_index] += 0.2  # 0.2 on a score: far outside atol 0.01
    kw = {"rtol": 0.0, "atol": 0.01, "box_atol": 0.25, "output_format": fmt}
    assert verify.compare([[ref]], [[off_box]], ["out"], **kw).passed  # type: ignore[arg-type]
    failed = verify.compare([[ref]], [[off_score]], ["out"], **kw)  # type: ignore[arg-type]
    assert not failed.passed and failed.outputs[0].worst == pytest.approx(20.0, rel=1e-5)
