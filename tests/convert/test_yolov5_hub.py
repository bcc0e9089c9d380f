"""Every YOLOv5 v7.0 layout (models/, models/hub/, models/segment/) converts: built at random init by edgedet's
own modules, pickled the way YOLOv5 pickles a checkpoint (classes under models.common / models.yolo, fp16
weights), read back through the restricted unpickler, exported, and compared with the PyTorch forward."""

from __future__ import annotations

import io
import sys
import types
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import pytest

from edgedet.convert.adapters import detect_source_kind, pickle_globals
from edgedet.errors import DataError

from .yolov5_yamls import YAMLS

torch = pytest.importorskip("torch")

from edgedet.convert.adapters import yolov5_modules as ym  # noqa: E402  (needs torch)
from edgedet.convert.adapters.yolov5 import RestrictedUnpickler, load_yolov5  # noqa: E402
from edgedet.convert.api import ConvertConfig, convert  # noqa: E402

_YOLO_MODULE = {"Detect": "models.yolo", "Segment": "models.yolo", "MixConv2d": "models.experimental"}


@contextmanager
def yolov5_module_paths() -> Iterator[None]:
    """Make edgedet's classes pickle as YOLOv5's (models.common.Conv, models.yolo.Detect, ...) for a moment."""
    fake = {n: types.ModuleType(n) for n in ("models", "models.common", "models.yolo", "models.experimental")}
    classes = {**ym.MODULES, "DetectionModel": ym.DetectionModel}
    saved = {}
    for name, cls in classes.items():
        mod = _YOLO_MODULE.get(name, "models.yolo" if name == "DetectionModel" else "models.common")
        setattr(fake[mod], name, cls)
        saved[cls] = cls.__module__
        cls.__module__ = mod
    sys.modules.update(fake)
    try:
        yield
    finally:
        for cls, mod in saved.items():
            cls.__module__ = mod
        for n in fake:
            sys.modules.pop(n, None)


def spread(model: Any, seed: int = 0) -> None:
    """Non-trivial BatchNorm statistics and head biases, so outputs are not near-constant."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                n = m.num_features
                m.running_mean.copy_(torch.rand(n, generator=g) - 0.5)
                m.running_var.copy_(torch.rand(n, generator=g) * 1.5 + 0.5)
                m.weight.copy_(torch.rand(n, generator=g) + 0.5)
                m.bias.copy_(torch.rand(n, generator=g) * 0.6 - 0.3)
        det = model.model[-1]
        for conv in det.m:
            conv.bias.copy_(torch.randn(conv.bias.shape, generator=g) * 2.0)


def save_like_yolov5(model: Any, path: Path) -> None:
    """A release-style checkpoint: the pickled module tree in fp16 under "model", no ema/optimizer."""
    with yolov5_module_paths():
        torch.save(
            {"epoch": -1, "best_fitness": None, "model": model.half(), "ema": None, "optimizer": None}, path
        )


def build(name: str, width: float = 0.125, depth: float = 0.33) -> tuple[Any, int]:
    cfg, stride = YAMLS[name]
    torch.manual_seed(0)
    model = ym.DetectionModel(dict(cfg, depth_multiple=depth, width_multiple=width))
    spread(model)
    return model.eval(), stride


@pytest.mark.parametrize("name", sorted(YAMLS))
def test_yaml_layout_converts_with_parity(name: str, tmp_path: Path) -> None:
    model, stride = build(name)
    ckpt = tmp_path / f"{name}.pt"
    save_like_yolov5(model, ckpt)
    reference = model.float()  # the fp16-rounded weights, back in float: what the checkpoint holds
    names = pickle_globals(ckpt)
    assert "models.yolo.DetectionModel" in names and "models.common.Conv" in names
    if name == "module-zoo":
        assert "models.experimental.MixConv2d" in names
    assert detect_source_kind(str(ckpt)) == "yolov5"

    imgsz = max(128, 2 * stride)
    result = convert(ConvertConfig(source=str(ckpt), imgsz=imgsz, output=str(tmp_path / "out")))
    art = result.artifact("fp32")
    assert art is not None and art.parity is not None

    x = np.random.default_rng(1).random((1, 3, imgsz, imgsz), dtype=np.float32)
    with torch.no_grad():
        ref = reference(torch.from_numpy(x)).numpy()
    sess = ort.InferenceSession(str(art.path), providers=["CPUExecutionProvider"])
    got = sess.run(None, {sess.get_inputs()[0].name: x})[0]
    nc = int(model.model[-1].nc)
    assert got.shape == ref.shape == (1, ref.shape[1], 5 + nc)
    assert float(ref[..., 4:].std()) > 0.05  # scores really vary: the comparison means something
    np.testing.assert_allclose(got[..., :4], ref[..., :4], atol=0.05, rtol=1e-3)  # boxes, input pixels
    np.testing.assert_allclose(got[..., 4:], ref[..., 4:], atol=5e-4)  # objectness and class scores


def test_layouts_use_the_modules_they_are_named_for() -> None:
    """The test data really exercises each module family (a typo in a yaml would silently test less)."""
    used: dict[str, set[str]] = {}
    for name in YAMLS:
        model, _ = build(name)
        used[name] = {type(m).__name__ for m in model.modules()}
    assert {"GhostConv", "C3Ghost", "GhostBottleneck"} <= used["yolov5s-ghost"]
    assert {"C3TR", "TransformerBlock", "TransformerLayer", "MultiheadAttention"} <= used[
        "yolov5s-transformer"
    ]
    assert "LeakyReLU" in used["yolov5s-LeakyReLU"] and "SiLU" not in used["yolov5s-LeakyReLU"]
    assert {"Segment", "Proto"} <= used["yolov5s-seg"]
    assert {"ZeroPad2d", "MaxPool2d"} <= used["yolov3-tiny"]
    assert "SPP" in used["yolov3-spp"]
    assert {"Focus", "BottleneckCSP", "SPP"} <= used["yolov5s-v5"]
    zoo = {
        "DWConv",
        "DWConvTranspose2d",
        "C3x",
        "CrossConv",
        "Contract",
        "Expand",
        "C3SPP",
        "GhostBottleneck",
        "MixConv2d",
    }
    assert zoo <= used["module-zoo"]
    assert len(build("yolov5-p7")[0].model[-1].m) == 5 and len(build("yolov5-p2")[0].model[-1].m) == 4


def test_segmentation_checkpoint_exports_its_detection_part(tmp_path: Path) -> None:
    model, _ = build("yolov5s-seg")
    model.model[-1].detect = ym.Detect.forward  # YOLOv5's Segment keeps this method reference
    ckpt = tmp_path / "seg.pt"
    save_like_yolov5(model, ckpt)
    loaded = load_yolov5(ckpt)
    assert "segmentation model: its detection part is exported" in loaded.extra["note"]
    with torch.no_grad():
        out = loaded.module(torch.zeros(1, 3, 128, 128))
    assert out.shape[-1] == 85  # 5 + 80 classes, no mask coefficients


def _pickle_with_global(module: str, name: str) -> bytes:
    return f"\x80\x02c{module}\n{name}\nq\x00.".encode("latin-1")


def test_unknown_yolov5_module_is_named_with_the_supported_families() -> None:
    with pytest.raises(DataError) as err:
        RestrictedUnpickler(io.BytesIO(_pickle_with_global("models.common", "BiFormerBlock"))).load()
    msg = str(err.value)
    assert "models.common.BiFormerBlock" in msg and "YOLOv5 v5.0-v7.0 detection" in msg
    assert "\n" not in msg


def test_classification_checkpoint_is_refused_by_task() -> None:
    with pytest.raises(DataError, match="YOLOv5 classification model; edgedet converts detectors"):
        RestrictedUnpickler(io.BytesIO(_pickle_with_global("models.yolo", "ClassificationModel"))).load()


def test_getattr_is_allowed_only_for_the_head_method_reference() -> None:
    # getattr(Conv, "__init__") would be a step towards code: refused
    evil = b"\x80\x02c__builtin__\ngetattr\nq\x00cmodels.common\nConv\nq\x01X\x08\x00\x00\x00__init__q\x02\x86q\x03Rq\x04."
    with pytest.raises(DataError, match=r"getattr\(Conv, '__init__'\)"):
        RestrictedUnpickler(io.BytesIO(evil)).load()
    fine = b"\x80\x02c__builtin__\ngetattr\nq\x00cmodels.yolo\nDetect\nq\x01X\x07\x00\x00\x00forwardq\x02\x86q\x03Rq\x04."
    assert RestrictedUnpickler(io.BytesIO(fine)).load() is ym.Detect.forward


def test_mixconv2d_splits_channels_by_kernel_size() -> None:
    equal = ym.MixConv2d(8, 10, (1, 3, 5), 2)
    assert [m.out_channels for m in equal.m] == [4, 3, 3]  # the first c2 % n kernels get one channel more
    assert [m.groups for m in equal.m] == [4, 1, 1] and [m.kernel_size[0] for m in equal.m] == [1, 3, 5]
    by_weights = ym.MixConv2d(64, 32, (1, 3, 5), 1, False)
    assert [m.out_channels for m in by_weights.m] == [28, 3, 1]  # ~c2 / k^2: about equal weights per kernel
    with torch.no_grad():
        assert tuple(equal.eval()(torch.zeros(1, 8, 16, 16)).shape) == (1, 10, 8, 8)
