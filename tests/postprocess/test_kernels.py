"""The compiled postprocess (postprocess.kernels) against the numpy path: the same Detections, bit for bit.

The numpy path's NMS is OpenCV's engine, which rounds IoU to float32; the kernels follow `nms`'s contract in
float64, which is `nms_numpy`'s result. So the exact reference here is decode + `nms_numpy` + `to_frame`, and
the default numpy path (OpenCV) is compared on the real model's outputs, where no IoU sits within 3e-8 of the
threshold.
"""

from __future__ import annotations

import numpy as np
import pytest
from tests.conftest import shared_path
from tests.helpers.backends import run_without_numba

from edgedet.boxes import Letterbox
from edgedet.errors import ConfigError
from edgedet.postprocess import PostprocessConfig, Postprocessor, decode
from edgedet.postprocess.nms import nms_numpy
from edgedet.spec import ModelSpec
from edgedet.types import Detections

pytest.importorskip("numba")

COMPARES_BACKENDS = True


def _reference(fmt: str, outputs, lb: Letterbox, c: PostprocessConfig, nc: int | None) -> Detections:
    xyxy, score, cls = decode(fmt, outputs, c.conf_threshold, False, nc)
    keep = nms_numpy(xyxy, score, cls, c.iou_threshold, c.agnostic, c.max_det, c.top_k)
    if keep.size == 0:
        return Detections.empty()
    return Detections(lb.to_frame(xyxy[keep]), score[keep], cls[keep])


def _same(a: Detections, b: Detections) -> None:
    for name in ("xyxy", "confidence", "class_id", "track_id"):
        x, y = getattr(a, name), getattr(b, name)
        assert x.dtype == y.dtype and x.shape == y.shape, name
        np.testing.assert_array_equal(x, y, err_msg=name)
    assert a.xyxy.flags.c_contiguous


def _head(rng: np.random.Generator, fmt: str, n: int, nc: int, grid: bool) -> np.ndarray:
    """A head with many overlapping boxes; `grid` snaps everything to coarse steps so scores tie and boxes
    coincide (the tie and equal-IoU rules), else continuous values."""
    cx = rng.uniform(-20, 340, n)
    cy = rng.uniform(-20, 340, n)
    w = rng.uniform(0, 120, n)
    h = rng.uniform(0, 120, n)
    obj = rng.uniform(0, 1, n)
    probs = rng.uniform(0, 1, (n, nc))
    if grid:
        cx, cy, w, h = (np.round(v / 16) * 16 for v in (cx, cy, w, h))
        obj, probs = np.round(obj * 4) / 4, np.round(probs * 4) / 4
    if fmt == "yolov5":
        return np.concatenate([np.stack([cx, cy, w, h, obj], 1), probs], 1).astype(np.float32)[None]
    return np.ascontiguousarray(np.concatenate([np.stack([cx, cy, w, h], 1), probs * obj[:, None]], 1).T)[
        None
    ].astype(np.float32)


@pytest.mark.parametrize("fmt", ["yolov5", "yolov8"])
@pytest.mark.parametrize("seed", range(12))
def test_random_heads_match_the_numpy_path(fmt: str, seed: int) -> None:
    rng = np.random.default_rng(seed)
    nc = int(rng.integers(1, 6))
    out = _head(rng, fmt, int(rng.integers(0, 400)), nc, grid=seed % 2 == 0)
    if seed % 3 == 0:  # NaN scores and boxes: dropped / never suppressing, as in numpy
        flat = out.reshape(-1)
        flat[rng.integers(0, flat.size, 20)] = np.nan
    src = [(320, 320), (720, 1280), (480, 640), (1080, 607)][seed % 4]
    lb = Letterbox.fit(src, (320, 320))
    spec = ModelSpec(output_format=fmt, class_names=tuple("abcdef"[:nc]))
    for c in (
        PostprocessConfig(),
        PostprocessConfig(conf_threshold=0.3, iou_threshold=0.5),  # 0.3 is not a float32: NEP 50 rounding
        PostprocessConfig(conf_threshold=0.05, agnostic=True, max_det=7),
        PostprocessConfig(conf_threshold=0.0, iou_threshold=0.0, top_k=25),
        PostprocessConfig(conf_threshold=0.1, iou_threshold=1.0),
    ):
        fast = Postprocessor(spec, c, backend="numba")
        assert fast._kernel_input([out]) is not None
        _same(fast([out], lb), _reference(fmt, [out], lb, c, nc))


@pytest.mark.parametrize("size", [320, 640])
def test_reference_yolov5n_outputs_match_both_numpy_engines(size: int) -> None:
    ort = pytest.importorskip("onnxruntime")
    cv2 = pytest.importorskip("cv2")
    from edgedet.preprocess import Preprocessor
    from edgedet.spec import spec_from_metadata

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 2
    sess = ort.InferenceSession(
        str(shared_path("models", "reference_onnx", f"yolov5n_{size}.onnx")),
        opts,
        providers=["CPUExecutionProvider"],
    )
    inp = sess.get_inputs()[0]
    spec = spec_from_metadata(
        sess.get_modelmeta().custom_metadata_map, inp.name, inp.shape, [o.shape for o in sess.get_outputs()]
    )
    pre = Preprocessor(spec)
    configs = [PostprocessConfig(), PostprocessConfig(0.001, 0.6), PostprocessConfig(0.1, agnostic=True)]
    paths = sorted(shared_path("coco128", "images", "train2017").glob("*.jpg"))[:: 16 if size == 640 else 8]
    compared = 0
    for path in paths:
        image = cv2.imread(str(path))
        tensor, lb = pre(image)
        outputs = sess.run(None, {inp.name: tensor})
        for c in configs:
            fast = Postprocessor(spec, c, backend="numba")(outputs, lb)
            _same(fast, Postprocessor(spec, c, backend="numpy")(outputs, lb))
            _same(fast, _reference("yolov5", outputs, lb, c, 80))
            compared += len(fast)
    assert compared > 100


def test_inputs_the_kernels_do_not_take_go_to_numpy() -> None:
    rng = np.random.default_rng(0)
    out = _head(rng, "yolov5", 200, 3, grid=False)
    lb = Letterbox.fit((480, 640), (320, 320))
    spec = ModelSpec(output_format="yolov5", class_names=("a", "b", "c"))
    fast, slow = Postprocessor(spec, backend="numba"), Postprocessor(spec, backend="numpy")
    ro = out.copy()
    ro.flags.writeable = False
    for odd in (out.astype(np.float16), np.asfortranarray(out), ro, out[:, ::2], out.astype(np.float64)):
        _same(fast([out], lb), slow([out], lb))  # primes the short path for this letterbox and head shape
        assert fast._args_for is lb and fast._fits_shape == out.shape
        assert fast._kernel_input([odd]) is None
        _same(fast([odd], lb), slow([odd], lb))
    with pytest.raises(Exception, match="need one 3-D output"):  # two outputs: the numpy path's error
        fast([out, out], lb)
    with pytest.raises(Exception, match="carry 4 classes"):  # the numpy path's own error, not a kernel's
        fast([_head(rng, "yolov5", 10, 4, grid=False)], lb)


def test_backend_choice() -> None:
    v5 = ModelSpec(output_format="yolov5", class_names=("a",))
    assert Postprocessor(v5).backend == "numba"  # auto, numba installed
    assert Postprocessor(v5, PostprocessConfig(multi_label=True)).backend == "numpy"
    assert Postprocessor(ModelSpec(output_format="end2end")).backend == "numpy"
    with pytest.raises(ConfigError, match="multi_label"):
        Postprocessor(v5, PostprocessConfig(multi_label=True), backend="numba")
    with pytest.raises(ConfigError, match="not one of"):
        Postprocessor(v5, backend="cuda")


def test_without_numba_the_stages_use_numpy() -> None:
    out = run_without_numba(
        """
        from edgedet.postprocess import Postprocessor
        from edgedet.preprocess import Preprocessor
        from edgedet.spec import ModelSpec
        from edgedet.errors import MissingDependencyError
        spec = ModelSpec(output_format="yolov5", class_names=("a",))
        assert Postprocessor(spec).backend == "numpy"
        assert Preprocessor(spec).backend == "opencv"
        for make in (Postprocessor, Preprocessor):
            try:
                make(spec, backend="numba")
            except MissingDependencyError as exc:
                print(exc)
        """
    )
    assert out.count("needs the 'numba' package") == 2
