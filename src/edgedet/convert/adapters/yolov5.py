"""Load YOLOv5-repo checkpoints without YOLOv5 code, through a restricted unpickler.

A YOLOv5 `.pt` is a pickled module tree: unpickling it normally imports `models.yolo` from a YOLOv5 checkout and
can run any code the file names (a checkpoint is code). Here the unpickler resolves only an allow-list of
globals: the YOLOv5 module classes (mapped onto edgedet's own implementation in `yolov5_modules`), a few
torch.nn layers, torch's tensor-rebuild helpers, and plain containers. Anything else raises DataError naming
the global, before it is imported.

Also accepted: the "yolov5-statedict-v1" file (a plain dict with the model yaml, names, stride and a
state_dict), which `torch.load(weights_only=True)` reads safely.
"""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path
from typing import Any

from edgedet._optional import require
from edgedet.convert.adapters.base import LoadedModel, checkpoint_names
from edgedet.convert.adapters.yolov5_modules import prepare_for_export, yolov5_classes
from edgedet.errors import DataError, ModelError

#: classes of YOLOv5's models/common.py and models/yolo.py (v5.0 - v7.0) that edgedet implements
_COMMON = (
    "Conv",
    "DWConv",
    "DWConvTranspose2d",
    "Focus",
    "GhostConv",
    "Bottleneck",
    "BottleneckCSP",
    "CrossConv",
    "C3",
    "C3x",
    "C3Ghost",
    "C3SPP",
    "C3TR",
    "GhostBottleneck",
    "SPP",
    "SPPF",
    "Contract",
    "Expand",
    "Concat",
    "TransformerLayer",
    "TransformerBlock",
    "Proto",
)
# (module, name) as written in the pickle -> edgedet's class name in yolov5_modules
_YOLOV5_CLASSES = {
    ("models.yolo", "Model"): "DetectionModel",
    ("models.yolo", "DetectionModel"): "DetectionModel",
    ("models.yolo", "SegmentationModel"): "DetectionModel",
    ("models.yolo", "Detect"): "Detect",
    ("models.yolo", "Segment"): "Segment",
    ("models.common", "Detect"): "Detect",  # YOLOv5 <= v3 kept Detect in common
    ("models.experimental", "MixConv2d"): "MixConv2d",
    **{("models.common", n): n for n in _COMMON},
}
#: what the refusal names: the families this loader reads
SUPPORTED = (
    "YOLOv5 v5.0-v7.0 detection checkpoints (models/*.yaml and models/hub/*.yaml: P5/P6/P7/P2, ghost, "
    "transformer, BiFPN/FPN/PANet, YOLOv3 variants) and the detection part of YOLOv5 segmentation checkpoints"
)
#: YOLOv5 tasks edgedet does not convert, with what to say
_OTHER_TASKS = {
    ("models.yolo", "ClassificationModel"): "a YOLOv5 classification model",
    ("models.common", "Classify"): "a YOLOv5 classification model",
    ("models.experimental", "Ensemble"): "a YOLOv5 model ensemble",
}

_TORCH_GLOBALS = {
    ("torch.nn.modules.conv", "Conv2d"): "nn.Conv2d",
    ("torch.nn.modules.conv", "ConvTranspose2d"): "nn.ConvTranspose2d",
    ("torch.nn.modules.padding", "ZeroPad2d"): "nn.ZeroPad2d",
    ("torch.nn.modules.linear", "Linear"): "nn.Linear",
    (
        "torch.nn.modules.linear",
        "NonDynamicallyQuantizableLinear",
    ): "nn.modules.linear.NonDynamicallyQuantizableLinear",
    ("torch.nn.modules.activation", "MultiheadAttention"): "nn.MultiheadAttention",
    ("torch.nn.modules.activation", "ReLU6"): "nn.ReLU6",
    ("torch.nn.modules.activation", "Sigmoid"): "nn.Sigmoid",
    ("torch.nn.modules.dropout", "Dropout"): "nn.Dropout",
    ("torch.nn.modules.batchnorm", "BatchNorm2d"): "nn.BatchNorm2d",
    ("torch.nn.modules.activation", "SiLU"): "nn.SiLU",
    ("torch.nn.modules.activation", "Hardswish"): "nn.Hardswish",
    ("torch.nn.modules.activation", "LeakyReLU"): "nn.LeakyReLU",
    ("torch.nn.modules.activation", "ReLU"): "nn.ReLU",
    ("torch.nn.modules.linear", "Identity"): "nn.Identity",
    ("torch.nn.modules.pooling", "MaxPool2d"): "nn.MaxPool2d",
    ("torch.nn.modules.upsampling", "Upsample"): "nn.Upsample",
    ("torch.nn.modules.container", "Sequential"): "nn.Sequential",
    ("torch.nn.modules.container", "ModuleList"): "nn.ModuleList",
    ("torch._utils", "_rebuild_tensor_v2"): "_utils._rebuild_tensor_v2",
    ("torch._utils", "_rebuild_parameter"): "_utils._rebuild_parameter",
    ("torch", "Size"): "Size",
    ("torch", "float16"): "float16",
    ("torch", "float32"): "float32",
    ("torch", "bfloat16"): "bfloat16",
}
_PLAIN_GLOBALS: dict[tuple[str, str], Any] = {
    ("collections", "OrderedDict"): __import__("collections").OrderedDict,
    ("__builtin__", "set"): set,
    ("builtins", "set"): set,
    ("__builtin__", "frozenset"): frozenset,
    ("builtins", "frozenset"): frozenset,
}

STATEDICT_FORMAT = "yolov5-statedict-v1"


def _refuse(module: str, name: str) -> DataError:
    if (module, name) in _OTHER_TASKS:
        return DataError(
            f"{module}.{name}: this checkpoint is {_OTHER_TASKS[(module, name)]}; edgedet converts detectors: "
            f"{SUPPORTED}"
        )
    if module.startswith("models."):
        return DataError(
            f"refusing to unpickle {module}.{name}: a checkpoint is code; only YOLOv5 modules are allowed and "
            f"edgedet does not implement this one (supported: {SUPPORTED}); export it with the YOLOv5 repo's "
            "export.py and convert the .onnx"
        )
    return DataError(
        f"refusing to unpickle {module}.{name}: a checkpoint is code; only YOLOv5 modules are allowed "
        "(export other models with their own tools, or pass a module factory with --weights state_dict.pth)"
    )


def _safe_getattr(obj: Any, name: str) -> Any:
    """pickle protocol 2 writes a method reference (YOLOv5's `Segment.detect = Detect.forward`) as
    getattr(class, name); only that form, on edgedet's own head classes, is allowed."""
    from edgedet.convert.adapters import yolov5_modules as ym

    if obj in (ym.Detect, ym.Segment) and name == "forward":
        return getattr(obj, name)
    raise DataError(
        f"refusing to unpickle getattr({getattr(obj, '__name__', type(obj).__name__)}, {name!r}): "
        "a checkpoint is code; only YOLOv5 modules are allowed"
    )


class RestrictedUnpickler(pickle.Unpickler):
    """pickle.Unpickler whose `find_class` resolves only the allow-list above (never imports anything)."""

    def find_class(self, module: str, name: str) -> Any:
        key = (module, name)
        if key in _PLAIN_GLOBALS:
            return _PLAIN_GLOBALS[key]
        if key in _YOLOV5_CLASSES:
            return getattr(yolov5_classes(), _YOLOV5_CLASSES[key])
        if key in (("models.yolo", "Detect.forward"), ("models.yolo", "Segment.forward")):
            return getattr(yolov5_classes(), name.split(".")[0]).forward  # protocol 4+ method reference
        if key in (("builtins", "getattr"), ("__builtin__", "getattr")):
            return _safe_getattr
        if key in _TORCH_GLOBALS:
            obj: Any = require("torch", "loading a YOLOv5 checkpoint")
            for part in _TORCH_GLOBALS[key].split("."):
                obj = getattr(obj, part)
            return obj
        raise _refuse(module, name)


class _RestrictedPickleModule:
    """What torch.load expects of `pickle_module`: an `Unpickler` class and `load`."""

    Unpickler = RestrictedUnpickler
    __name__ = "edgedet_restricted_pickle"

    @staticmethod
    def load(file: Any, **kwargs: Any) -> Any:
        return RestrictedUnpickler(file, **kwargs).load()


def restricted_torch_load(path: Path) -> Any:
    """torch.load through the restricted unpickler (map_location cpu). Refused globals raise DataError."""
    torch = require("torch", "loading a YOLOv5 checkpoint")
    try:
        # weights_only=False is required to pass a pickle_module; the allow-list is the safety here.
        return torch.load(
            str(path), map_location="cpu", pickle_module=_RestrictedPickleModule, weights_only=False
        )
    except DataError:
        raise
    except (pickle.UnpicklingError, EOFError, RuntimeError, zipfile.BadZipFile) as exc:
        raise ModelError(
            f"cannot read {path} as a PyTorch checkpoint ({exc}); is the file complete?"
        ) from exc


def is_yolov5_statedict(obj: Any) -> bool:
    return isinstance(obj, dict) and obj.get("format") == STATEDICT_FORMAT


def load_yolov5(path: str | Path) -> LoadedModel:
    """A YOLOv5-repo checkpoint (pickled `model`/`ema`) or a yolov5-statedict-v1 file -> LoadedModel.

    The module is float32, Conv+BN fused, eval mode; its output is [B, N, 5+nc] (sigmoid applied, boxes
    cx, cy, w, h in input pixels), as the YOLOv5 repo's ONNX export.
    """
    path = Path(path)
    torch = require("torch", "loading a YOLOv5 checkpoint")
    ns = yolov5_classes()
    obj = _load_statedict_or_none(path)
    if obj is not None:
        model = ns.DetectionModel(obj["yaml"], stride=[float(s) for s in obj["stride"]])
        state = {k: v.float() if v.is_floating_point() else v for k, v in obj["state_dict"].items()}
        try:
            model.load_state_dict(state, strict=True)
        except RuntimeError as exc:
            raise ModelError(
                f"{path}: state_dict does not fit the model described by its yaml ({exc})"
            ) from exc
        names = obj.get("names")
        model.names = list(names) if names is not None else model.names
    else:
        ckpt = restricted_torch_load(path)
        if isinstance(ckpt, torch.nn.Module):
            model = ckpt
        elif isinstance(ckpt, dict) and (ckpt.get("ema") is not None or ckpt.get("model") is not None):
            model = ckpt.get("ema") or ckpt["model"]
        else:
            keys = sorted(ckpt) if isinstance(ckpt, dict) else type(ckpt).__name__
            raise ModelError(
                f"{path}: no YOLOv5 model inside (found {keys}); expected a YOLOv5 training checkpoint"
            )
        if not isinstance(model, ns.DetectionModel):
            raise ModelError(
                f"{path}: the checkpoint holds a {type(model).__name__}, not a YOLOv5 DetectionModel"
            )
    model = prepare_for_export(model)
    det = model.model[-1]
    if not isinstance(det, ns.Detect):
        raise ModelError(
            f"{path}: the last layer is {type(det).__name__}, not Detect; edgedet converts {SUPPORTED}"
        )
    extra: dict[str, Any] = {}
    if isinstance(det, ns.Segment):
        extra["note"] = (
            f"{path.name} is a YOLOv5 segmentation model: its detection part is exported (boxes and classes; "
            f"the {int(det.nm)} mask coefficients and the prototype branch are left out)"
        )
    names = _names(getattr(model, "names", None), int(det.nc))
    stride = int(max(float(s) for s in det.stride))
    return LoadedModel(
        module=model, output_format="yolov5", class_names=names, stride=stride, kind="yolov5", extra=extra
    )


def _load_statedict_or_none(path: Path) -> dict[str, Any] | None:
    torch = require("torch", "loading a YOLOv5 checkpoint")
    try:
        obj = torch.load(str(path), map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, AttributeError, TypeError, ValueError):
        return None  # a pickled module tree: weights_only refuses it, the restricted loader takes over
    except (zipfile.BadZipFile, EOFError) as exc:
        raise ModelError(
            f"cannot read {path} as a PyTorch checkpoint ({exc}); is the file complete?"
        ) from exc
    return obj if is_yolov5_statedict(obj) else None


def _names(names: Any, nc: int) -> tuple[str, ...]:
    out = checkpoint_names(names)
    if len(out) != nc:
        return tuple(str(i) for i in range(nc))
    return out
