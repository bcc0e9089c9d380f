"""Read Ultralytics `.pt` checkpoints without the `ultralytics` package, through a restricted unpickler.

A checkpoint is code: unpickling it normally imports whatever it names. Here `find_class` resolves only an
allow-list: Ultralytics layer classes (mapped onto edgedet's own implementation in `ultralytics_modules`), the
`DetectionModel` container, a few torch.nn layers, torch's tensor-rebuild helpers, plain containers, and the
handful of harmless helpers Ultralytics' files contain (its args namespace, paths, numpy scalars, and the
`getattr(layer, "forward_fuse")` that a fused layer's bound method pickles as). Anything else raises DataError
naming the global, before anything is imported.

Other tasks (segment, pose, OBB, classify, RT-DETR, world/YOLOE) are refused from the pickle's global names
alone (pickletools; nothing executed), with one line naming the task.
"""

from __future__ import annotations

import codecs
import pathlib
import pickle
import types
import zipfile
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgedet._optional import require
from edgedet.convert.adapters.ultralytics_modules import FAMILIES, ultralytics_classes
from edgedet.errors import DataError, ModelError

SUPPORTED = (
    "detection models of " + ", ".join(FAMILIES) + " (incl. P2/P6, ghost, tiny/spp variants), any scale"
)

# Model container classes (ultralytics.nn.tasks.<name>) -> the task, for the one-line refusal.
_TASK_OF_MODEL = {
    "DetectionModel": "detect",
    "SegmentationModel": "segment",
    "PoseModel": "pose",
    "OBBModel": "obb",
    "ClassificationModel": "classify",
    "RTDETRDetectionModel": "RT-DETR detect",
    "WorldModel": "YOLO-World open-vocabulary detect",
    "YOLOEModel": "YOLOE open-vocabulary detect",
    "YOLOESegModel": "YOLOE segment",
}
# Head classes (ultralytics.nn.modules.head.<name>) of tasks edgedet does not export.
_TASK_OF_HEAD = {
    "Segment": "segment",
    "Segment26": "segment",
    "Pose": "pose",
    "Pose26": "pose",
    "OBB": "obb",
    "OBB26": "obb",
    "Classify": "classify",
    "RTDETRDecoder": "RT-DETR detect",
    "WorldDetect": "YOLO-World open-vocabulary detect",
    "YOLOEDetect": "YOLOE open-vocabulary detect",
    "YOLOESegment": "YOLOE segment",
}

_TORCH_LAYERS = {
    "torch.nn.modules.conv": {"Conv2d", "ConvTranspose2d"},
    "torch.nn.modules.batchnorm": {"BatchNorm2d"},
    "torch.nn.modules.activation": {"SiLU", "ReLU", "LeakyReLU", "Hardswish", "Sigmoid", "GELU", "Mish"},
    "torch.nn.modules.linear": {"Identity"},
    "torch.nn.modules.pooling": {"MaxPool2d"},
    "torch.nn.modules.upsampling": {"Upsample"},
    "torch.nn.modules.padding": {"ZeroPad2d"},
    "torch.nn.modules.container": {"Sequential", "ModuleList"},
    "torch.nn.modules.dropout": {"Dropout"},
}
_TORCH_OTHER = {
    ("torch._utils", "_rebuild_tensor_v2"),
    ("torch._utils", "_rebuild_parameter"),
    ("torch._utils", "_rebuild_parameter_with_state"),
    ("torch.nn.parameter", "Parameter"),
    ("torch", "Size"),
    ("torch", "device"),
    ("torch", "float16"),
    ("torch", "float32"),
    ("torch", "bfloat16"),
}


class ArgsNamespace(types.SimpleNamespace):
    """Stands in for ultralytics.utils.IterableSimpleNamespace (training args; data only)."""


def _safe_getattr(obj: Any, name: str, *default: Any) -> Any:
    """A fused Ultralytics layer stores `forward = self.forward_fuse`, which pickles as getattr(layer, name).
    Allowed only for edgedet's own layer classes and forward methods; their single forward handles both the
    fused and the unfused layer."""
    if name in ("forward", "forward_fuse") and type(obj) in set(ultralytics_classes().values()):
        return obj.forward
    raise DataError(
        f"refusing to unpickle getattr(<{type(obj).__name__}>, {name!r}): a checkpoint is code; only a fused "
        "layer's forward method may be looked up"
    )


_PLAIN: dict[tuple[str, str], Any] = {
    ("collections", "OrderedDict"): OrderedDict,
    ("builtins", "set"): set,
    ("__builtin__", "set"): set,
    ("builtins", "frozenset"): frozenset,
    ("__builtin__", "frozenset"): frozenset,
    ("builtins", "getattr"): _safe_getattr,
    ("__builtin__", "getattr"): _safe_getattr,
    ("pathlib", "PosixPath"): pathlib.PurePosixPath,
    ("pathlib", "WindowsPath"): pathlib.PureWindowsPath,
    ("ultralytics.utils", "IterableSimpleNamespace"): ArgsNamespace,
    ("_codecs", "encode"): codecs.encode,  # how pickle protocol 2 stores bytes; it only builds a bytes object
}


def _ultralytics_class(module: str, name: str) -> Any | None:
    """edgedet's class for ultralytics.nn.modules[.<file>].<name> / ultralytics.nn.tasks.DetectionModel."""
    classes = ultralytics_classes()
    if module == "ultralytics.nn.tasks" and name == "DetectionModel":
        return classes["DetectionModel"]
    if (
        module == "ultralytics.nn.modules" or module.startswith("ultralytics.nn.modules.")
    ) and name != "DetectionModel":
        return classes.get(name)
    return None


def refusal(module: str, name: str) -> DataError:
    task = _task_of_global(module, name)
    if task is not None:
        return DataError(
            f"this is an Ultralytics {task} checkpoint ({name}); edgedet converts and runs {SUPPORTED}: "
            "train or pick a detection model (e.g. yolo11n.pt rather than yolo11n-seg.pt)"
        )
    return DataError(
        f"refusing to unpickle {module}.{name}: a checkpoint is code, and edgedet's Ultralytics loader knows "
        f"only the layers of the {SUPPORTED}; for other models pass --loader ultralytics with the package "
        "installed, or export with `yolo export format=onnx` and pass the .onnx"
    )


def _task_of_global(module: str, name: str) -> str | None:
    if module == "ultralytics.nn.tasks" and name in _TASK_OF_MODEL and name != "DetectionModel":
        return _TASK_OF_MODEL[name]
    if module.startswith("ultralytics.nn.modules") and name in _TASK_OF_HEAD:
        return _TASK_OF_HEAD[name]
    return None


def check_task(globals_: set[str]) -> None:
    """Refuse a non-detection checkpoint from its global names (nothing unpickled)."""
    for g in sorted(globals_):
        module, _, name = g.rpartition(".")
        if _task_of_global(module, name) is not None:
            raise refusal(module, name)


class UltralyticsUnpickler(pickle.Unpickler):
    """pickle.Unpickler whose `find_class` resolves only the allow-list above (never imports anything)."""

    def find_class(self, module: str, name: str) -> Any:
        key = (module, name)
        if key in _PLAIN:
            return _PLAIN[key]
        if module.startswith("ultralytics."):
            cls = _ultralytics_class(module, name)
            if cls is None:
                raise refusal(module, name)
            return cls
        torch = require("torch", "loading an Ultralytics checkpoint")
        if name in _TORCH_LAYERS.get(module, ()):
            return getattr(torch.nn, name)
        if key in _TORCH_OTHER:
            obj: Any = torch
            for part in [*module.split(".")[1:], name]:
                obj = getattr(obj, part)
            return obj
        if module in ("numpy.core.multiarray", "numpy._core.multiarray") and name == "scalar":
            # how a numpy float in training metrics pickles; it only rebuilds a number from bytes
            np = require("numpy", "loading an Ultralytics checkpoint")
            return np._core.multiarray.scalar
        if module == "numpy" and name == "dtype":
            return require("numpy", "loading an Ultralytics checkpoint").dtype
        raise refusal(module, name)


class _PickleModule:
    """What torch.load expects of `pickle_module`: an `Unpickler` class and `load`."""

    Unpickler = UltralyticsUnpickler
    __name__ = "edgedet_ultralytics_pickle"

    @staticmethod
    def load(file: Any, **kwargs: Any) -> Any:
        return UltralyticsUnpickler(file, **kwargs).load()


@dataclass(frozen=True)
class Checkpoint:
    """What an Ultralytics checkpoint holds, as far as edgedet uses it.

    model: the DetectionModel (edgedet classes, as stored: fp16/fp32, maybe fused). source_key: "model" or
    "ema". train_imgsz: the training image size (train_args, else the model's args), None when absent.
    version: the Ultralytics version that wrote it (None when absent).
    """

    model: Any
    source_key: str
    train_imgsz: int | tuple[int, int] | None
    version: str | None
    task: str


def read_checkpoint(path: str | Path) -> Checkpoint:
    """Unpickle an Ultralytics checkpoint through the allow-list. Raises DataError for refused globals and
    other tasks, ModelError for a file that is not a checkpoint or holds no model."""
    from edgedet.convert.adapters import pickle_globals

    path = Path(path)
    check_task(pickle_globals(path))
    torch = require("torch", "loading an Ultralytics checkpoint")
    try:
        # weights_only=False is required to pass a pickle_module; the allow-list is the safety here.
        ckpt = torch.load(str(path), map_location="cpu", pickle_module=_PickleModule, weights_only=False)
    except DataError:
        raise
    except (pickle.UnpicklingError, EOFError, RuntimeError, zipfile.BadZipFile, AttributeError) as exc:
        raise ModelError(
            f"cannot read {path} as a PyTorch checkpoint ({exc}); is the file complete?"
        ) from exc
    det_cls = ultralytics_classes()["DetectionModel"]
    if isinstance(ckpt, det_cls):
        model, key, ckpt = ckpt, "model", {}
    elif isinstance(ckpt, dict):
        key = "model" if isinstance(ckpt.get("model"), det_cls) else "ema"
        model = ckpt.get(key)
        if not isinstance(model, det_cls):
            raise ModelError(
                f"{path}: no Ultralytics model inside (keys {sorted(map(str, ckpt))[:8]}); expected a checkpoint "
                "written by Ultralytics (model.save() or training)"
            )
    else:
        raise ModelError(f"{path}: holds a {type(ckpt).__name__}, not an Ultralytics checkpoint")
    if ckpt.get("modelopt"):
        raise ModelError(
            f"{path}: a quantization-aware-trained checkpoint (modelopt state); edgedet cannot restore its "
            "fake-quantization: export it with `yolo export format=onnx`"
        )
    head = model.model[-1]
    if type(head).__name__ not in ("Detect", "v10Detect"):
        raise ModelError(
            f"{path}: the last layer is {type(head).__name__}, not a detection head; {SUPPORTED}"
        )
    return Checkpoint(
        model=model,
        source_key=key,
        train_imgsz=_train_imgsz(ckpt, model),
        version=str(ckpt["version"]) if ckpt.get("version") else None,
        task=str(getattr(model, "task", None) or "detect"),
    )


def _train_imgsz(ckpt: dict[str, Any], model: Any) -> int | tuple[int, int] | None:
    for args in (ckpt.get("train_args"), getattr(model, "args", None)):
        if isinstance(args, types.SimpleNamespace):
            args = vars(args)
        if isinstance(args, dict) and args.get("imgsz") is not None:
            v = args["imgsz"]
            if isinstance(v, int):
                return v
            if isinstance(v, (list, tuple)) and len(v) == 2 and all(isinstance(s, int) for s in v):
                return (int(v[0]), int(v[1]))
            if isinstance(v, (list, tuple)) and len(v) == 1 and isinstance(v[0], int):
                return int(v[0])
    return None
