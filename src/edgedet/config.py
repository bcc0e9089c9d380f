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
    cmc: str = "off"  # camera-motion compensation: off | sparse (LK flow + RANSAC similarity)
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
    run_dir: str | None = None

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
        if self.cmc not in ("off", "sparse"):
            raise ConfigError(f"unknown --cmc {self.cmc!r}: choose one of off, sparse")
        if self.cmc != "off" and not self.track:
            raise ConfigError("--cmc moves tracks: it needs tracking on (drop --cmc or --no-track)")
        if self.max_frames is not None and self.max_frames < 1:
            raise ConfigError(f"--max-frames must be 1 or more, got {self.max_frames}")
        return self


C = TypeVar("C")


def _coerce(name: str, value: Any, field_type: Any) -> Any:
    # YAML gives lists where a tuple field is declared.
    if isinstance(value, list) and "tuple" in str(field_type):
        return tuple(value)
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
