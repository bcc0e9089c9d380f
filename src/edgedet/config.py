"""One frozen dataclass per command. YAML config files use the same field names as the flags.

Precedence: dataclass defaults < YAML file (`--config FILE`) < flags given on the command line.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from edgedet.errors import ConfigError


@dataclass(frozen=True)
class RunConfig:
    """`edgedet run`: source -> detector -> tracker -> sinks."""

    source: str = "demo"
    model: str | None = None  # None: the bundled demo model
    backend: str = "onnxruntime"
    device: str = "cpu"
    threads: int = 0
    trt_memory: str = "device"  # TensorRT: "device" or "mapped" (zero-copy on Jetson)
    format: str | None = None  # override the model's output format (yolov5 | yolov8 | end2end)
    names: str | None = None  # class names file for models without names in their metadata
    # detection
    conf: float = 0.25
    iou: float = 0.45
    agnostic: bool = False
    max_det: int = 300
    classes: tuple[int, ...] | None = None  # keep only these class ids
    # tracking and skipping
    track: bool = True
    detect_every: int = 1
    target_fps: float | None = None
    max_interval: int = 10
    track_max_age_s: float | None = None
    track_min_hits: int | None = None
    track_iou: float | None = None
    track_score: float | None = None  # detections below this do not start or update tracks (tracker default)
    second_association: bool | None = None
    # camera-motion compensation: auto (sparse for live sources, off for files) | off | sparse (LK flow + RANSAC
    # similarity); the demo turns it on (its drone camera moves)
    cmc: str = "auto"
    # source
    realtime: bool = False
    loop: bool = False
    width: int | None = None
    height: int | None = None
    fps: float | None = None
    stall_timeout_s: float = 2.0
    give_up_s: float = 30.0
    max_frames: int | None = None
    # sinks
    show: bool = False
    save_video: str | None = None
    save_mot: str | None = None
    save_json: str | None = None
    save_coco: str | None = None
    run_dir: str | None = None  # --source demo: folder for its default outputs (runs/demo-<time>/)

    def validate(self) -> RunConfig:
        if not 0.0 <= self.conf <= 1.0:
            raise ConfigError(f"--conf must be between 0 and 1, got {self.conf}")
        if not 0.0 < self.iou <= 1.0:
            raise ConfigError(f"--iou must be in (0, 1], got {self.iou}")
        if self.max_det < 1:
            raise ConfigError(f"--max-det must be 1 or more, got {self.max_det}")
        if self.threads < 0:
            raise ConfigError(f"--threads must be 0 (library default) or more, got {self.threads}")
        if self.detect_every < 1:
            raise ConfigError(f"--detect-every must be 1 or more, got {self.detect_every}")
        if self.target_fps is not None and self.detect_every != 1:
            raise ConfigError(
                "--detect-every and --target-fps both set the skip policy: pass only one of them"
            )
        if not self.track and (self.detect_every != 1 or self.target_fps is not None):
            raise ConfigError(
                "--no-track cannot skip detector runs (only the tracker can predict skipped frames): "
                "drop --detect-every/--target-fps or turn tracking on"
            )
        from edgedet.tracking.cmc import CMC_METHODS

        if self.cmc not in CMC_METHODS:
            raise ConfigError(f"unknown --cmc {self.cmc!r}: choose one of {', '.join(CMC_METHODS)}")
        if self.cmc == "sparse" and not self.track:
            raise ConfigError("--cmc moves tracks: it needs tracking on (drop --cmc or --no-track)")
        if self.max_frames is not None and self.max_frames < 1:
            raise ConfigError(f"--max-frames must be 1 or more, got {self.max_frames}")
        return self


C = TypeVar("C")


_SCALARS: dict[str, tuple[type, ...]] = {"str": (str,), "int": (int,), "float": (int, float), "bool": (bool,)}


def _fits(value: Any, kind: str) -> bool:
    if kind == "None":
        return value is None
    if kind in _SCALARS:
        # bool is an int in Python, but `conf: true` in a YAML file is a mistake, not 1.0
        return isinstance(value, _SCALARS[kind]) and (kind == "bool" or not isinstance(value, bool))
    if kind.startswith("tuple[") and isinstance(value, tuple):
        inner = [k.strip() for k in kind[len("tuple[") : -1].split(",")]
        if inner[-1] == "...":
            return all(_fits(v, inner[0]) for v in value)
        return len(value) == len(inner) and all(_fits(v, k) for v, k in zip(value, inner, strict=True))
    return True  # a type this check does not know: leave it to validate()


def _coerce(name: str, value: Any, field_type: Any) -> Any:
    """The value, with YAML lists turned into tuples; ConfigError when it is not of the field's type (a YAML
    file can hold anything: `conf: abc`, `classes: {a: 1}`), so validate() only ever compares numbers."""
    if isinstance(value, list) and "tuple" in str(field_type):
        value = tuple(value)
    kinds = [k.strip() for k in str(field_type).split("|")]
    if not any(_fits(value, k) for k in kinds):
        shown = repr(value)
        shown = shown if len(shown) <= 40 else shown[:37] + "..."
        raise ConfigError(f"option {name} must be {' or '.join(kinds)}, got {type(value).__name__} {shown}")
    if "float" in kinds and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    return value


def build_config(cls: type[C], yaml_path: str | Path | None = None, **flags: Any) -> C:
    """Defaults, then the YAML file, then the flags that are not None."""
    values: dict[str, Any] = {}
    names = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    if yaml_path is not None:
        values.update(read_yaml_config(yaml_path, tuple(names)))
    unknown = [k for k in flags if k not in names]
    if unknown:
        raise ConfigError(f"unknown option(s) {unknown}")
    values.update({k: v for k, v in flags.items() if v is not None})
    values = {k: _coerce(k, v, names[k].type) for k, v in values.items()}
    try:
        return cls(**values)
    except TypeError as exc:
        raise ConfigError(f"bad configuration: {exc}") from exc


def read_yaml_config(path: str | Path, valid: tuple[str, ...]) -> Mapping[str, Any]:
    import yaml

    p = Path(path)
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read config file {p}: {exc.strerror}; check the path") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"config file {p} is not UTF-8 text (byte {exc.start}); save it as UTF-8") from exc
    except RecursionError as exc:
        raise ConfigError(
            f"config file {p} is nested too deeply; write a flat mapping of option: value"
        ) from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"config file {p} is not valid YAML{where}; fix the syntax") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {p} must be a mapping of option: value, got {type(data).__name__}")
    out: dict[str, Any] = {}
    for key, value in data.items():
        k = str(key).replace("-", "_")
        if k not in valid:
            raise ConfigError(f"config file {p}: unknown option {key!r}; valid options: {', '.join(valid)}")
        out[k] = value
    return out


@dataclass(frozen=True)
class BenchConfig:
    """`edgedet bench`: engines side by side (models), or the whole pipeline (pipeline=True, model, source).

    imgsz: engine bench synthetic frame size (h, w); None = each model's own input size.
    runs / warmup: timed and discarded interleaved rounds (engine bench); warmup also counts the pipeline
    frames left out of the statistics.
    """

    models: tuple[str, ...] = ()
    pipeline: bool = False
    model: str | None = None  # pipeline bench model (None: the bundled demo model)
    source: str = "demo"
    backend: str | None = None  # None: tensorrt for .engine/.plan files, onnxruntime otherwise
    device: str = "cpu"
    threads: int = 0
    imgsz: tuple[int, int] | None = None
    runs: int = 300
    warmup: int = 30
    images: str | None = None
    seed: int = 0
    # pipeline bench: the options of `run` that change timing
    conf: float = 0.25
    iou: float = 0.45
    track: bool = True
    detect_every: int = 1
    target_fps: float | None = None
    realtime: bool = False
    max_frames: int | None = None
    telemetry_interval_s: float = 0.5

    def validate(self) -> BenchConfig:
        if self.pipeline and self.models:
            raise ConfigError(
                "--pipeline times one model on a source: pass it with --model, not as arguments"
            )
        if not self.pipeline and not self.models:
            raise ConfigError(
                "bench needs one or more models (edgedet bench a.onnx b.onnx) or --pipeline --model M --source S"
            )
        if self.runs < 1:
            raise ConfigError(f"--runs must be 1 or more, got {self.runs}")
        if self.warmup < 0:
            raise ConfigError(f"--warmup must be 0 or more, got {self.warmup}")
        if self.imgsz is not None and min(self.imgsz) < 16:
            raise ConfigError(f"--imgsz must be 16 or more per side, got {self.imgsz}")
        if not self.telemetry_interval_s > 0:
            raise ConfigError(f"telemetry interval must be positive, got {self.telemetry_interval_s}")
        return self


@dataclass(frozen=True)
class EvalDetConfig:
    """`edgedet eval det`: COCO mAP of a model on a YOLO-txt folder (or yaml) or a COCO json, via pycocotools.

    Defaults follow YOLOv5/Ultralytics validation (conf 0.001, NMS IoU 0.6, multi-label, max_det 300).
    """

    model: str | None = None
    data: str = ""
    conf: float = 0.001
    iou: float = 0.6
    multi_label: bool = True
    max_det: int = 300
    threads: int = 2
    per_class: bool = False
    max_images: int | None = None

    def validate(self) -> EvalDetConfig:
        if not self.data:
            raise ConfigError("eval det needs --data: a YOLO dataset folder/yaml or a COCO instances json")
        if not 0.0 <= self.conf <= 1.0:
            raise ConfigError(f"--conf must be between 0 and 1, got {self.conf}")
        if not 0.0 < self.iou <= 1.0:
            raise ConfigError(f"--iou must be in (0, 1], got {self.iou}")
        if self.max_images is not None and self.max_images < 1:
            raise ConfigError(f"--max-images must be 1 or more, got {self.max_images}")
        return self


@dataclass(frozen=True)
class EvalMotConfig:
    """`edgedet eval mot`: MOTChallenge folders (det.txt + gt.txt + seqinfo.ini) tracked as `run` would, scored
    with TrackEval (HOTA, CLEAR, Identity) and cross-checked with py-motmetrics.

    realtime: replay at the sequence's frame rate with a detector of `latency_ms` (or the latency measured for
    `model` on this machine); missed: what frames superseded while the detector was busy get ("predict": the
    tracker's prediction; "drop": nothing); track_ms: simulated cost of a tracker-only frame.
    """

    data: str = ""
    sequences: tuple[str, ...] | None = None
    benchmark: str = "auto"
    detect_every: int = 1
    target_fps: float | None = None
    max_interval: int = 10
    track_max_age_s: float | None = None
    track_min_hits: int | None = None
    track_iou: float | None = None
    track_score: float | None = None
    second_association: bool | None = None
    realtime: bool = False
    latency_ms: float | None = None
    model: str | None = None
    track_ms: float = 1.0
    # "drop" is what `run` writes on a live source: a frame superseded while the detector is busy never
    # reaches the tracker or the sinks. So it is the honest default for "what would this device score".
    missed: str = "drop"
    crosscheck: bool = True

    def validate(self) -> EvalMotConfig:
        if not self.data:
            raise ConfigError(
                "eval mot needs --data: a folder of MOTChallenge sequences (det.txt, gt.txt, seqinfo.ini)"
            )
        if self.detect_every < 1:
            raise ConfigError(f"--detect-every must be 1 or more, got {self.detect_every}")
        if self.target_fps is not None and self.detect_every != 1:
            raise ConfigError(
                "--detect-every and --target-fps both set the skip policy: pass only one of them"
            )
        if self.target_fps is not None and not self.realtime:
            raise ConfigError(
                "--target-fps schedules by time, which only exists in a timed replay: add --realtime --latency-ms MS"
            )
        if not self.realtime and (self.latency_ms is not None or self.model is not None):
            raise ConfigError(
                "--latency-ms/--model set the detector time of a --realtime replay: add --realtime"
            )
        if self.realtime and self.latency_ms is None and self.model is None:
            raise ConfigError(
                "--realtime needs the detector's latency: pass --latency-ms MS or --model M.onnx to measure it"
            )
        if self.latency_ms is not None and self.model is not None:
            raise ConfigError("--latency-ms and --model both set the detector latency: pass only one of them")
        if self.latency_ms is not None and not self.latency_ms >= 0:
            raise ConfigError(f"--latency-ms must be 0 or more, got {self.latency_ms}")
        if self.missed not in ("predict", "drop"):
            raise ConfigError(f"--missed must be predict or drop, got {self.missed!r}")
        if not self.track_ms > 0:
            raise ConfigError(f"--track-ms must be a positive number of ms, got {self.track_ms}")
        return self
