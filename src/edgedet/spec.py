"""ModelSpec: everything the runtime must know about a model besides its weights.

Stored as JSON under the ONNX metadata key `edgedet.spec` (and in a `.json` sidecar next to a TensorRT
engine). ONNX files exported by Ultralytics and by the YOLOv5 repo carry `names`, `stride` and `imgsz`
instead; `spec_from_metadata` reads those as they are and infers the output format from the output shapes.
"""

from __future__ import annotations

import ast
import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from edgedet.errors import DataError, ModelError

SPEC_KEY = "edgedet.spec"
SPEC_VERSION = 1
OUTPUT_FORMATS = ("yolov5", "yolov8", "end2end")
PRECISIONS = ("fp32", "fp16", "int8")


@dataclass(frozen=True)
class ModelSpec:
    """Contract between a model file and the runtime.

    input_hw: model input height, width (pixels). layout: "NCHW". color: "RGB" or "BGR".
    scale: multiply uint8 pixels by this (1/255 -> [0, 1]). letterbox: keep aspect and pad (else stretch).
    pad_value: letterbox fill (114 as Ultralytics). output_format: one of OUTPUT_FORMATS.
    class_names: index -> name. precision: one of PRECISIONS. provenance: free-form (source sha256, tools).
    """

    input_name: str = "images"
    input_hw: tuple[int, int] = (640, 640)
    batch: int = 1  # 0 = dynamic
    layout: str = "NCHW"
    color: str = "RGB"
    scale: float = 1.0 / 255.0
    letterbox: bool = True
    pad_value: int = 114
    output_format: str = "yolov8"
    class_names: tuple[str, ...] = ()
    precision: str = "fp32"
    stride: int = 32
    provenance: Mapping[str, Any] = field(default_factory=dict)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def to_json(self) -> str:
        d = asdict(self)
        d["version"] = SPEC_VERSION
        return json.dumps(d, sort_keys=True)

    @classmethod
    def from_json(cls, text: str, where: str = "model spec") -> ModelSpec:
        try:
            d = json.loads(text)
        except (ValueError, TypeError, RecursionError) as exc:  # ValueError: bad JSON, or bytes not UTF-8
            raise DataError(
                f"{where}: not valid JSON ({type(exc).__name__}); re-export the model with `edgedet convert`"
            ) from exc
        if not isinstance(d, dict):
            raise DataError(f"{where}: expected a JSON object; re-export the model with `edgedet convert`")
        d.pop("version", None)
        known = set(cls.__dataclass_fields__)
        unknown = set(d) - known
        if unknown:
            raise DataError(f"{where}: unknown fields {sorted(unknown)}; this file needs a newer edgedet")
        try:
            if "input_hw" in d:
                d["input_hw"] = _hw(d["input_hw"])
            if "class_names" in d:
                if not isinstance(d["class_names"], list):
                    raise TypeError(f"class_names must be a list, got {type(d['class_names']).__name__}")
                d["class_names"] = tuple(str(n) for n in d["class_names"])
            _check_json_types(d)
            spec = cls(**d)
        except (TypeError, ValueError, OverflowError) as exc:
            raise DataError(
                f"{where}: bad field value ({exc}); re-export the model with `edgedet convert`"
            ) from exc
        try:
            spec.validate(where)
        except TypeError as exc:  # a field of the wrong JSON type (e.g. "input_hw": [null, 3])
            raise DataError(
                f"{where}: bad field value ({exc}); re-export the model with `edgedet convert`"
            ) from exc
        return spec

    def validate(self, where: str = "model spec") -> None:
        if self.output_format not in OUTPUT_FORMATS:
            raise ModelError(
                f"{where}: unknown output format {self.output_format!r}; use one of {', '.join(OUTPUT_FORMATS)}"
            )
        if self.precision not in PRECISIONS:
            raise DataError(
                f"{where}: unknown precision {self.precision!r}; use one of {', '.join(PRECISIONS)}"
            )
        if self.layout != "NCHW":
            raise DataError(
                f"{where}: layout {self.layout!r} is not supported; export the model with NCHW input"
            )
        if self.color not in ("RGB", "BGR"):
            raise DataError(f"{where}: colour {self.color!r} must be RGB or BGR")
        h, w = self.input_hw
        if not (8 <= h <= 8192 and 8 <= w <= 8192):
            raise DataError(f"{where}: input size {self.input_hw} is out of range (8..8192)")

    def replace(self, **changes: Any) -> ModelSpec:
        return replace(self, **changes)


_JSON_TYPES: dict[str, tuple[type, ...]] = {
    "input_name": (str,),
    "batch": (int,),
    "layout": (str,),
    "color": (str,),
    "scale": (int, float),
    "letterbox": (bool,),
    "pad_value": (int,),
    "output_format": (str,),
    "precision": (str,),
    "stride": (int,),
    "provenance": (dict,),
}


def _check_json_types(d: Mapping[str, Any]) -> None:
    """TypeError naming the first field of a spec JSON whose value has the wrong type."""
    for name, types in _JSON_TYPES.items():
        if name in d:
            v = d[name]
            if not isinstance(v, types) or (isinstance(v, bool) and bool not in types):
                raise TypeError(f"{name} must be {types[-1].__name__}, got {type(v).__name__}")


def _hw(v: Any) -> tuple[int, int]:
    if isinstance(v, (int, float)):
        return int(v), int(v)
    seq = list(v)
    if len(seq) == 1:
        return int(seq[0]), int(seq[0])
    if len(seq) != 2:
        raise ValueError(f"expected an image size (h, w), got {v!r}")
    return int(seq[0]), int(seq[1])


def parse_names(text: str) -> tuple[str, ...]:
    """Class names from Ultralytics/YOLOv5 metadata ("{0: 'person', ...}" or "['person', ...]")."""
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError) as exc:
        raise DataError(f"class names metadata is not a Python literal: {text[:60]!r}") from exc
    if isinstance(value, dict):
        return _names_from_dict(value)
    if isinstance(value, (list, tuple)):
        return tuple(str(v) for v in value)
    raise DataError(f"class names metadata must be a dict or list, got {type(value).__name__}")


def _names_from_dict(value: Mapping[Any, Any]) -> tuple[str, ...]:
    """{0: 'person', 1: 'car'} (keys 0, "0" or 0.0) -> names in index order; DataError on gaps or bad keys."""
    by_index: dict[int, Any] = {}
    for k, v in value.items():
        # 0, "0" and 0.0 name class 0; 1.5, " x" or a repeated index do not name a class
        try:
            i = int(k) if not isinstance(k, float) or k.is_integer() else None
        except (TypeError, ValueError, OverflowError):
            i = None
        if i is None or i in by_index:
            raise DataError(f"class names have a bad or repeated key {str(k)[:20]!r}; number them 0..N-1")
        by_index[i] = v
    if sorted(by_index) != list(range(len(by_index))):
        raise DataError("class names must number classes 0..N-1 without gaps")
    return tuple(str(by_index[i]) for i in range(len(by_index)))


def read_names_file(path: str) -> tuple[str, ...]:
    """One class name per line (blank lines ignored), or a YOLO dataset yaml with `names:`."""
    from pathlib import Path

    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise DataError(
            f"cannot read class names file {path}: {exc.strerror}; pass a text file, one name per line"
        ) from exc
    except UnicodeDecodeError as exc:
        raise DataError(
            f"class names file {path} is not UTF-8 text (byte {exc.start}); save it as UTF-8"
        ) from exc
    if p.suffix in (".yaml", ".yml"):
        import yaml

        try:
            data = yaml.safe_load(text)
        except (yaml.YAMLError, RecursionError) as exc:
            raise DataError(f"{path}: not valid YAML ({exc.__class__.__name__})") from exc
        names = data.get("names") if isinstance(data, dict) else None
        if isinstance(names, dict):
            return _names_from_dict(names)
        if isinstance(names, list):
            return tuple(str(n) for n in names)
        raise DataError(f"{path}: no `names:` list or mapping; pass a text file, one name per line")
    names_list = [ln.strip() for ln in text.splitlines() if ln.strip()]
    if not names_list:
        raise DataError(f"{path}: no class names; pass a text file, one name per line")
    return tuple(names_list)


def infer_output_format(output_shapes: Sequence[Sequence[int | str | None]], num_classes: int | None) -> str:
    """Guess the head layout from output shapes.

    [B, N, 5+nc] -> yolov5; [B, 4+nc, N] -> yolov8; [B, K, 6] -> end2end. With `num_classes` known the
    match is exact; without it the longer axis is taken as the anchor axis.
    """
    if len(output_shapes) != 1:
        raise ModelError(
            f"cannot infer the output format from {len(output_shapes)} outputs {list(output_shapes)}; "
            "pass --format yolov5|yolov8|end2end"
        )
    shape = list(output_shapes[0])
    if len(shape) != 3 or not all(isinstance(d, int) and d > 0 for d in shape[1:]):
        raise ModelError(
            f"output shape {shape} fits no known head (expected [B, N, 5+nc], [B, 4+nc, N] or [B, K, 6]); "
            "pass --format and check the export"
        )
    a, b = int(shape[1]), int(shape[2])  # type: ignore[arg-type]
    if num_classes:
        if b == 5 + num_classes and a > b:
            return "yolov5"
        if a == 4 + num_classes and b > a:
            return "yolov8"
    if b == 6 and a <= 1000:
        return "end2end"
    if a > b:
        return "yolov5"
    return "yolov8"


def spec_from_metadata(
    meta: Mapping[str, str],
    input_name: str,
    input_shape: Sequence[int | str | None],
    output_shapes: Sequence[Sequence[int | str | None]],
    where: str = "model",
) -> ModelSpec:
    """Build a spec from ONNX metadata props and I/O shapes.

    Our own `edgedet.spec` wins; else Ultralytics / YOLOv5 keys (`names`, `stride`, `imgsz`); else defaults.
    """
    if SPEC_KEY in meta:
        spec = ModelSpec.from_json(meta[SPEC_KEY], where=f"{where}: metadata {SPEC_KEY}")
        return spec.replace(input_name=input_name)
    names: tuple[str, ...] = ()
    if "names" in meta:
        names = parse_names(meta["names"])
    stride = 32
    if "stride" in meta:
        try:
            stride = int(float(meta["stride"]))
        except (ValueError, OverflowError):
            stride = 32
    if len(input_shape) != 4:
        raise ModelError(
            f"{where}: input {input_name!r} has shape {list(input_shape)}; expected [B, 3, H, W]"
        )
    h, w = input_shape[2], input_shape[3]
    if isinstance(h, int) and isinstance(w, int) and h > 0 and w > 0:
        input_hw = (h, w)
    elif "imgsz" in meta:
        try:
            input_hw = _hw(ast.literal_eval(meta["imgsz"]))
        except (ValueError, SyntaxError, TypeError, OverflowError, MemoryError, RecursionError) as exc:
            raise DataError(f"{where}: metadata imgsz {meta['imgsz'][:40]!r} is not an image size") from exc
    else:
        input_hw = (640, 640)
    batch = input_shape[0] if isinstance(input_shape[0], int) and input_shape[0] > 0 else 0
    fmt = "end2end" if meta.get("end2end", "").lower() == "true" else None
    if fmt is None:
        try:
            fmt = infer_output_format(output_shapes, len(names) or None)
        except ModelError:
            fmt = "yolov8"  # caller re-checks against the real outputs and may override with --format
    spec = ModelSpec(
        input_name=input_name,
        input_hw=input_hw,
        batch=batch,
        output_format=fmt,
        class_names=names,
        stride=stride,
        provenance={k: v for k, v in meta.items() if k in ("author", "date", "version", "description")},
    )
    spec.validate(where)
    return spec


def read_onnx_spec(path: str | Path) -> ModelSpec:
    """The ModelSpec of an ONNX file without creating a session: our `edgedet.spec` metadata, else
    Ultralytics/YOLOv5 metadata and the I/O shapes (weights listed as graph inputs are not the image input)."""
    import onnx

    try:
        m = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # protobuf DecodeError and friends
        raise ModelError(f"cannot read {path} as ONNX ({type(exc).__name__}); is the file complete?") from exc
    meta = {p.key: p.value for p in m.metadata_props}
    init_names = {i.name for i in m.graph.initializer}
    inputs = [i for i in m.graph.input if i.name not in init_names]
    if len(inputs) != 1:
        raise ModelError(f"{path}: expected one image input, found {[i.name for i in inputs]}")
    return spec_from_metadata(
        meta,
        inputs[0].name,
        _value_info_dims(inputs[0]),
        [_value_info_dims(o) for o in m.graph.output],
        where=str(path),
    )


def _value_info_dims(value_info: Any) -> list[int | str | None]:
    dims: list[int | str | None] = []
    for d in value_info.type.tensor_type.shape.dim:
        if d.HasField("dim_value"):
            dims.append(int(d.dim_value))
        elif d.HasField("dim_param"):
            dims.append(str(d.dim_param))
        else:
            dims.append(None)
    return dims


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    """sha256 hex digest of a file, read in 1 MiB blocks (model provenance, engine cache keys)."""
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()
