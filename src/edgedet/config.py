"""Every command option, declared once: type, default, help text, validation, and the stage config it feeds.

A config is a frozen dataclass whose fields are made with `option(...)`. From that one declaration come:
- the command-line flag and its `--help` text (`edgedet.cli` generates the Typer parameters from it),
- the YAML key (the field name; `detect-every` and `detect_every` both work),
- the check run by `validate()` (a per-option `check`, then the config's cross-option rules),
- the stage config it feeds (`stage`/`to`): `RunConfig.postprocess_config` builds a PostprocessConfig from
  every option declared with stage="postprocess", so no code copies options field by field.

Precedence: declared defaults < YAML file (`--config FILE`) < flags given on the command line. `build_config`
merges the three, checks types, applies the demo's defaults (`edgedet run --source demo`) and validates, so
the CLI, the Python API and `bench --pipeline` see the same configuration.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar, get_type_hints

from edgedet.errors import ConfigError

__all__ = [
    "BenchConfig",
    "EvalDetConfig",
    "EvalGeoConfig",
    "EvalMotConfig",
    "Option",
    "RunConfig",
    "TrackCommandConfig",
    "apply_demo_defaults",
    "build_config",
    "option",
    "options_of",
    "parse_imgsz",
    "read_yaml_config",
]

C = TypeVar("C")
Check = Callable[[Any], str | None]  # returns what is wrong ("must be 1 or more"), or None


@dataclass(frozen=True)
class Option:
    """The declaration of one option (in a dataclass field's metadata; make it with `option()`).

    help: the --help text. flags: the command-line spelling ("--conf", "--track/--no-track", "-s"); default
    "--" + the field name with dashes. check: value -> problem text or None (None values are never checked).
    parse: command-line text -> value, for options typed on the command line as text (e.g. "0,2,5").
    multiple: the flag may repeat (a tuple of strings). stage / to: the stage config field this option feeds
    (e.g. stage="postprocess", to="conf_threshold"); None values leave the stage's own default. cli: False for
    options that only YAML and the Python API set.
    """

    help: str
    flags: tuple[str, ...] = ()
    check: Check | None = None
    parse: Callable[[str], Any] | None = None
    multiple: bool = False
    stage: str | None = None
    to: str | None = None
    cli: bool = True

    def flag_names(self, name: str) -> tuple[str, ...]:
        return self.flags or ("--" + name.replace("_", "-"),)

    def main_flag(self, name: str) -> str:
        return self.flag_names(name)[0].split("/")[0]


def option(
    default: Any,
    help: str,
    *,
    flags: tuple[str, ...] | str = (),
    check: Check | None = None,
    parse: Callable[[str], Any] | None = None,
    multiple: bool = False,
    stage: str | None = None,
    to: str | None = None,
    cli: bool = True,
) -> Any:
    """A dataclass field carrying its Option declaration (see Option)."""
    opt = Option(
        help, (flags,) if isinstance(flags, str) else tuple(flags), check, parse, multiple, stage, to, cli
    )
    return field(default=default, metadata={"option": opt})


def options_of(cls: type) -> dict[str, tuple[Option, Any, Any]]:
    """name -> (Option, declared type, default) for every option field of the config class `cls`."""
    hints = get_type_hints(cls)
    out: dict[str, tuple[Option, Any, Any]] = {}
    for f in dataclasses.fields(cls):
        opt = f.metadata.get("option")
        if opt is not None:
            out[f.name] = (opt, hints[f.name], f.default)
    return out


# --- checks (each returns the problem, or None) --------------------------------------------------------------


def _at_least(low: float) -> Check:
    return lambda v: None if v >= low else f"must be {low:g} or more"


def _positive(v: float) -> str | None:
    return None if math.isfinite(v) and v > 0 else "must be a positive number"


def _between_ids(v: int) -> str | None:
    return None if 1 <= v <= 255 else "must be between 1 and 255"


def _one_of(*choices: str) -> Check:
    return lambda v: None if v in choices else f"must be one of {', '.join(choices)}"


def _conf(v: float) -> str | None:
    if not 0.0 <= v <= 1.0:
        return "must be between 0 and 1"
    # the postprocessor keeps scores strictly above conf, so 1.0 would keep nothing
    return None if v < 1.0 else "must be between 0 and 1 and below 1 (only scores above it are kept)"


def _iou(v: float) -> str | None:
    return None if 0.0 < v <= 1.0 else "must be in (0, 1]"


def _unit(v: float) -> str | None:
    return None if 0.0 <= v <= 1.0 else "must be between 0 and 1"


def _three_floats(text: str) -> tuple[float, float, float]:
    parts = [p.strip() for p in str(text).split(",")]
    try:
        roll, pitch, yaw = (float(p) for p in parts)
    except ValueError as exc:
        raise ConfigError(f"{text!r}: write three numbers roll,pitch,yaw in degrees, e.g. 0,-90,0") from exc
    return roll, pitch, yaw


def _cmc(v: str) -> str | None:
    from edgedet.tracking.cmc import CMC_METHODS

    return None if v in CMC_METHODS else f"must be one of {', '.join(CMC_METHODS)}"


def _class_ids(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(c) for c in text.split(",") if c.strip())
    except ValueError:
        raise ConfigError(f"--classes takes comma-separated class ids like 0,2,5, got {text!r}") from None


def _names(text: str) -> tuple[str, ...]:
    return tuple(s.strip() for s in text.split(",") if s.strip())


def parse_imgsz(text: str | None) -> tuple[int, int] | None:
    """`640` -> (640, 640); `384,640` or `384x640` -> (384, 640) (h, w); None -> None. The one imgsz parser."""
    if text is None:
        return None
    try:
        parts = [int(p) for p in text.replace("x", ",").split(",") if p.strip()]
    except ValueError:
        raise ConfigError(f"--imgsz takes 640 or 384,640 (h,w), got {text!r}") from None
    if len(parts) not in (1, 2):
        raise ConfigError(f"--imgsz takes 640 or 384,640 (h,w), got {text!r}")
    return (parts[0], parts[0]) if len(parts) == 1 else (parts[0], parts[1])


def usable_cores() -> int:
    """Cores this process may run on (its CPU affinity, e.g. a container's or taskset's limit): the count the
    ONNX Runtime core budget uses."""
    from edgedet.backends.onnxruntime import available_cores

    return available_cores()


# --- option groups shared by several commands (declared once, used by each) ------------------------------------


def _tracker_name() -> Any:
    return option(
        "sort",
        "Tracker: sort | bytetrack (SORT + a second, low-score association) | a plugin's name.",
        stage="tracker_name",
    )


def _track_max_age_s() -> Any:
    return option(None, "Seconds a lost track is kept.", check=_at_least(0), stage="tracker", to="max_age_s")


def _track_min_hits() -> Any:
    return option(
        None, "Detections before a track is reported.", check=_at_least(0), stage="tracker", to="min_hits"
    )


def _track_iou() -> Any:
    return option(
        None, "IoU needed to match a detection to a track.", check=_unit, stage="tracker", to="iou_threshold"
    )


def _track_score() -> Any:
    return option(
        None,
        "Detections below this score do not start or update tracks.",
        check=_unit,
        stage="tracker",
        to="score_threshold",
    )


def _second_association() -> Any:
    return option(
        None,
        "ByteTrack-style low-score pass (the same as --tracker bytetrack).",
        flags="--second-association/--no-second-association",
        stage="tracker",
    )


def _detect_every(help: str = "Run the detector on every N-th frame.") -> Any:
    return option(1, help, check=_at_least(1))


def _target_fps(help: str = "Skip detector runs adaptively to hold this FPS.") -> Any:
    return option(None, help, check=_positive)


def _max_interval() -> Any:
    return option(
        10, "Target FPS: longest run of track-only frames between detector runs.", check=_at_least(1)
    )


class _Options:
    """What every config class shares: the per-option checks, and stage configs built from declarations."""

    def check_options(self) -> None:
        for name, (opt, _type, _default) in options_of(type(self)).items():
            value = getattr(self, name)
            if value is None or opt.check is None:
                continue
            problem = opt.check(value)
            if problem:
                raise ConfigError(f"{opt.main_flag(name)} {problem}, got {value!r}")

    def stage_values(self, stage: str) -> dict[str, Any]:
        """The options declared for `stage`, as that stage config's field names; unset (None) ones left out."""
        out: dict[str, Any] = {}
        for name, (opt, _type, _default) in options_of(type(self)).items():
            value = getattr(self, name)
            if opt.stage == stage and value is not None:
                out[opt.to or name] = value
        return out

    @property
    def tracker_config(self) -> Any:
        """The TrackerConfig these options ask for (its defaults where unset)."""
        from edgedet.tracking import TrackerConfig

        return TrackerConfig().with_overrides(**self.stage_values("tracker"))


# --- edgedet run ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RunConfig(_Options):
    """`edgedet run`: source -> detector -> tracker -> sinks. Each field is one option (flag and YAML key);
    the stage configs are built from them: source_config, backend_config, postprocess_config, tracker_config,
    scheduler, sink_config."""

    # source
    source: str = option(
        "demo",
        "demo | video file | image folder/glob | rtsp://... | GStreamer pipeline | synthetic. Repeat it, or name a "
        ".streams file (one source a line), to run several streams through one model; output paths then take "
        "{stream} (s0, s1, ...).",
        flags=("--source", "-s"),
    )
    realtime: bool | None = option(
        None, "Pace files to their frame rate (the demo: on).", flags="--realtime", stage="source"
    )
    loop: bool = option(False, "Restart files/folders at the end.", flags="--loop", stage="source")
    width: int | None = option(None, "Camera capture width.", check=_at_least(1), stage="source")
    height: int | None = option(None, "Camera capture height.", check=_at_least(1), stage="source")
    fps: float | None = option(None, "Camera capture FPS.", check=_positive, stage="source")
    stall_timeout_s: float = option(
        2.0, "Live: reopen after this long without a frame.", check=_positive, stage="source"
    )
    give_up_s: float = option(
        30.0, "Live: end the run after this long without a frame.", check=_positive, stage="source"
    )
    max_frames: int | None = option(None, "Stop after this many frames (each stream's).", check=_at_least(1))
    batch_window_ms: float | None = option(
        None,
        "Several sources: wait this long after the first ready frame for the others' frames before one "
        "inference call (default: a quarter of the fastest stream's frame period).",
        check=_at_least(0),
    )
    max_batch: int | None = option(
        None, "Several sources: the most frames per inference call (default: all ready ones).", check=_at_least(1)
    )
    # detector: backend
    model: str | None = option(
        None, "ONNX model or engine (default: the bundled demo).", flags=("--model", "-m")
    )
    backend: str = option(
        "onnxruntime",
        "onnxruntime | tensorrt | triton (--model grpc://HOST:PORT/NAME or http://...) | a plugin's name.",
        stage="backend",
    )
    device: str = option("cpu", "cpu | cuda | tensorrt (ONNX Runtime provider)", stage="backend")
    threads: int = option(
        0, "CPU inference threads (0 = library default).", check=_at_least(0), stage="backend"
    )
    trt_memory: str = option(
        "device",
        "TensorRT buffers: device (copies) | mapped (zero-copy, Jetson).",
        check=_one_of("device", "mapped"),
        stage="backend",
    )
    format: str | None = option(
        None, "Model head: yolov5 | yolov8 | end2end.", flags="--format", stage="backend", to="output_format"
    )
    names: str | None = option(None, "Class names file (one per line) or dataset yaml.")
    # detector: postprocess
    conf: float = option(
        0.25, "Confidence threshold (default 0.25).", check=_conf, stage="postprocess", to="conf_threshold"
    )
    iou: float = option(
        0.45, "NMS IoU threshold (default 0.45).", check=_iou, stage="postprocess", to="iou_threshold"
    )
    agnostic: bool = option(
        False, "Class-agnostic NMS.", flags="--agnostic/--class-aware", stage="postprocess"
    )
    max_det: int = option(
        300, "Detections kept per frame (default 300).", check=_at_least(1), stage="postprocess"
    )
    classes: tuple[int, ...] | None = option(None, "Keep only these class ids, e.g. 0,2,5.", parse=_class_ids)
    # tracking
    track: bool = option(True, "Tracking (default on).", flags="--track/--no-track")
    tracker: str = _tracker_name()
    track_max_age_s: float | None = _track_max_age_s()
    track_min_hits: int | None = _track_min_hits()
    track_iou: float | None = _track_iou()
    track_score: float | None = _track_score()
    second_association: bool | None = _second_association()
    cmc: str = option(
        "auto",
        "Camera-motion compensation: auto (pose with --telemetry, else on for live sources and the demo, off "
        "for files) | off | sparse (image) | pose (from --telemetry, no image work).",
        check=_cmc,
    )
    # scheduler
    detect_every: int = _detect_every()
    target_fps: float | None = _target_fps()
    max_interval: int = _max_interval()
    # runtime
    overlap: str = option(
        "auto",
        "Stages on their own threads, host work beside inference: auto (on with 2+ cores) | on | off (one "
        "frame at a time, for debugging).",
        check=_one_of("auto", "on", "off"),
    )
    # sinks
    show: bool = option(False, "Show a window with boxes and IDs.", flags="--show", stage="sink")
    save_video: str | None = option(None, "Annotated mp4 (= --sink video:PATH).", stage="sink")
    save_mot: str | None = option(None, "MOTChallenge txt of tracks (= --sink mot:PATH).", stage="sink")
    save_json: str | None = option(None, "JSON lines, one per frame (= --sink json:PATH).", stage="sink")
    save_coco: str | None = option(
        None, "COCO results json of detections (= --sink coco:PATH).", stage="sink"
    )
    sink: tuple[str, ...] = option(
        (),
        "More outputs, NAME or NAME:ARG, repeatable: show, video:PATH, mot:PATH, json:PATH, coco:PATH, a plugin's.",
        multiple=True,
        stage="sink",
        to="sinks",
    )
    save_geojson: str | None = option(
        None, "GeoJSON of the tracks' ground positions, one line per track (= --sink geojson:PATH).", stage="sink"
    )
    save_kml: str | None = option(None, "KML of the tracks' ground positions (= --sink kml:PATH).", stage="sink")
    # ground positions (edgedet.geo): on with --telemetry
    telemetry: str | None = option(
        None,
        "Drone pose for ground positions: telemetry.jsonl, or demo | demo-noisy with --source demo.",
        stage="geo",
    )
    camera_calib: str | None = option(
        None, "Camera intrinsics: an OpenCV calibration file (YAML/XML/JSON).", stage="geo"
    )
    hfov_deg: float | None = option(
        None, "Camera intrinsics from the horizontal field of view (deg), without --camera-calib.",
        flags="--hfov", check=_positive, stage="geo",
    )  # fmt: skip
    camera_mount: str | None = option(
        None, "gimbal (earth-frame attitude reported, default) | body (fixed: --mount-angles).",
        check=_one_of("gimbal", "body"), stage="geo",
    )  # fmt: skip
    mount_angles_deg: tuple[float, float, float] | None = option(
        None, "--camera-mount body: camera roll,pitch,yaw in the body frame (default 0,-90,0: straight down).",
        flags="--mount-angles", parse=_three_floats, stage="geo",
    )  # fmt: skip
    telemetry_latency_ms: float | None = option(
        None, "How late the telemetry is stamped (compensated), ms.", check=_at_least(0), stage="geo"
    )
    ground_height_m: float | None = option(None, "Ground height above the take-off point, m.", stage="geo")
    max_range_m: float | None = option(
        None, "No ground position farther than this from the drone, m (1000).", check=_positive, stage="geo"
    )
    geo_anchor: str | None = option(
        None, "Ground point of a box: bottom (centre of its bottom edge) | center (default: bottom; demo: center).",
        check=_one_of("bottom", "center"), stage="geo",
    )  # fmt: skip
    run_dir: str | None = option(None, "--source demo: folder for its default outputs (runs/demo-<time>/).")
    # the drone link (pip install 'edgedet[link]'): video to the ground station, MAVLink, tracks out
    stream: tuple[str, ...] = option(
        (),
        "Annotated video out, repeatable: rtp://HOST:PORT (RTP/H.264; QGroundControl listens on 5600), "
        "udp://HOST:PORT (MPEG-TS), srt://HOST:PORT (MPEG-TS over SRT), rtsp://SERVER:PORT/PATH (publish).",
        multiple=True,
        stage="link",
    )
    stream_keyint: float = option(1.0, "Video out: seconds between keyframes.", check=_positive, stage="link")
    stream_bitrate: int = option(2000, "Video out: bitrate cap in kbit/s.", check=_at_least(50), stage="link")
    stream_width: int | None = option(
        None, "Video out: downscale to this width (height follows).", check=_at_least(32), stage="link"
    )
    stream_encoder: str = option(
        "auto",
        "Video out encoder: auto (the Jetson's hardware encoder where OpenCV has GStreamer, else PyAV) | pyav | "
        "gstreamer.",
        check=_one_of("auto", "pyav", "gstreamer"),
        stage="link",
    )
    mavlink: str | None = option(
        None,
        "MAVLink camera component (target selection, video discovery, vehicle attitude): udpout:HOST:14550 | "
        "udpin:HOST:PORT | tcp:HOST:PORT | tcpin:HOST:PORT | /dev/ttyTHS1:921600.",
        stage="link",
    )
    mavlink_sysid: int = option(1, "MAVLink system id (the vehicle's).", check=_between_ids, stage="link")
    mavlink_compid: int = option(
        100, "MAVLink component id (100 = MAV_COMP_ID_CAMERA).", check=_between_ids, stage="link"
    )
    publish: tuple[str, ...] = option(
        (),
        "Tracks out, one JSON message per frame, repeatable: mqtt://BROKER[:1883]/TOPIC[?qos=0] | udp://HOST:PORT.",
        multiple=True,
        stage="link",
    )
    #: set by apply_demo_defaults, so applying them twice changes nothing (not an option)
    defaults_applied: bool = field(default=False, repr=False)

    def validate(self) -> RunConfig:
        """Every option's own check, then the rules between options. Returns self; raises ConfigError."""
        self.check_options()
        if self.target_fps is not None and self.detect_every != 1:
            raise ConfigError(
                "--detect-every and --target-fps both set the skip policy: pass only one of them"
            )
        if self.tracker == "bytetrack" and self.second_association is False:
            raise ConfigError("--tracker bytetrack is the second association: drop --no-second-association")
        check_stage_combination(
            tracking=self.track, skipping=self.detect_every != 1 or self.target_fps is not None,
            motion_compensation=self.cmc in ("sparse", "pose"),
        )  # fmt: skip
        if self.cmc == "pose" and self.telemetry is None:
            raise ConfigError("--cmc pose needs the drone's pose: add --telemetry FILE (demo with --source demo)")
        geo_only = ("camera_calib", "hfov_deg", "save_geojson", "save_kml")
        if self.telemetry is None and any(getattr(self, k) is not None for k in geo_only):
            raise ConfigError(
                "--camera-calib/--hfov/--save-geojson/--save-kml need ground positions: add --telemetry FILE"
            )
        self.geo_config.validate()
        self.link_config.validate()  # the addresses, before anything opens
        return self

    @property
    def overlap_on(self) -> bool:
        """Whether the run uses the overlapped runtime: --overlap on/off, or for auto, when this process may
        use 2 or more cores (with one core the stage threads would only take turns on it)."""
        if self.overlap != "auto":
            return self.overlap == "on"
        return usable_cores() >= 2

    @property
    def geo_config(self) -> Any:
        """GeoConfig (edgedet.geo.build) from the ground-position options."""
        from edgedet.geo.build import GeoConfig

        return GeoConfig(**self.stage_values("geo"))

    # --- the stage configs, built from the declarations ---------------------------------------------------

    @property
    def source_config(self) -> Any:
        """SourceConfig (max_frames stays with the loop, which also names it as the reason the run stopped)."""
        from edgedet.sources import SourceConfig

        return SourceConfig(**self.stage_values("source"))

    def backend_config(self, class_names: tuple[str, ...] | None = None) -> Any:
        from edgedet.backends import BackendConfig

        return _with_options(BackendConfig, self.stage_values("backend"), class_names=class_names)

    @property
    def postprocess_config(self) -> Any:
        from edgedet.postprocess import PostprocessConfig

        return PostprocessConfig(**self.stage_values("postprocess"))

    @property
    def scheduler(self) -> Any:
        from edgedet.scheduler import make_scheduler

        return make_scheduler(self.detect_every, self.target_fps, self.max_interval)

    def sink_config(self, class_names: tuple[str, ...] = ()) -> Any:
        from edgedet.sinks import SinkConfig

        return _with_options(
            SinkConfig, self.stage_values("sink"), class_names=class_names, tracking=self.track
        )

    @property
    def link_config(self) -> Any:
        """LinkConfig: --stream, --mavlink, --publish and their options (edgedet.link)."""
        from edgedet.link.factory import LinkConfig

        return LinkConfig(**self.stage_values("link"))


def _with_options(cls: Any, values: dict[str, Any], **fixed: Any) -> Any:
    """`cls(**values, **fixed)`, with the values `cls` has no field for collected in its `options` mapping (the
    options a plugin declared for this stage)."""
    fields = {f.name for f in dataclasses.fields(cls)}
    known = {k: v for k, v in values.items() if k in fields}
    extra = {k: v for k, v in values.items() if k not in fields}
    return cls(**known, **fixed, options=extra)


def check_stage_combination(*, tracking: bool, skipping: bool, motion_compensation: bool) -> None:
    """The rules between stages, in one place (RunConfig.validate and Pipeline both call it)."""
    if not tracking and skipping:
        raise ConfigError(
            "--no-track cannot skip detector runs (only the tracker can predict skipped frames): "
            "drop --detect-every/--target-fps or turn tracking on"
        )
    if not tracking and motion_compensation:
        raise ConfigError("--cmc moves tracks: it needs tracking on (drop --cmc or --no-track)")


def apply_demo_defaults(
    config: RunConfig, *, outputs: bool = True, now: Any = None, root: str | Path = "runs"
) -> RunConfig:
    """For `--source demo`: the demo's defaults (target FPS, paced, CMC, a run folder with video, tracks and
    detections) for every option left unset; any other source, or a config already resolved, is returned as is.

    outputs: False leaves the run folder out (bench --pipeline times the loop, not the video encoder).
    """
    from edgedet.demo import default_run_overrides, is_demo_source

    if config.defaults_applied or not is_demo_source(config.source):
        return config
    given = {name: value for name, (_o, _t, default) in options_of(RunConfig).items()
             if (value := getattr(config, name)) != default}  # fmt: skip
    given.setdefault("track", config.track)
    changes = default_run_overrides(given, now=now, root=root)
    if not outputs or config.sink:  # --sink: the user chose the outputs, the demo adds none of its own
        for key in ("run_dir", "save_video", "save_mot", "save_json"):
            changes.pop(key, None)
    return dataclasses.replace(config, **changes, defaults_applied=True)


# --- other commands ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TrackCommandConfig(_Options):
    """`edgedet track`: the tracker over a MOTChallenge det.txt (the files are the command's own arguments)."""

    detect_every: int = _detect_every("Use detections only on every N-th frame.")
    tracker: str = _tracker_name()
    track_max_age_s: float | None = _track_max_age_s()
    track_min_hits: int | None = _track_min_hits()
    track_iou: float | None = _track_iou()
    track_score: float | None = _track_score()
    second_association: bool | None = _second_association()

    def validate(self) -> TrackCommandConfig:
        self.check_options()
        return self


@dataclass(frozen=True)
class BenchConfig(_Options):
    """`edgedet bench`: engines side by side (models), or the whole pipeline (pipeline=True, model, source).

    imgsz: engine bench synthetic frame size (h, w); None = each model's own input size.
    runs / warmup: timed and discarded interleaved rounds (engine bench); warmup also counts the pipeline
    frames left out of the statistics.
    """

    models: tuple[str, ...] = option((), "Models to time side by side.", cli=False)
    pipeline: bool = option(False, "Time the whole `run` loop instead.", flags="--pipeline")
    model: str | None = option(
        None, "Pipeline: the model (default: the bundled demo).", flags=("--model", "-m")
    )
    source: str = option("demo", "Pipeline: the source (as for run).", flags=("--source", "-s"))
    backend: str | None = option(
        None, "onnxruntime | tensorrt | a plugin's (default: tensorrt for .engine/.plan)."
    )
    device: str = option("cpu", "cpu | cuda | tensorrt (ONNX Runtime provider).")
    threads: int = option(0, "CPU inference threads (0 = library default).", check=_at_least(0))
    imgsz: tuple[int, int] | None = option(
        None, "Synthetic frame size: 640 or 384,640 (default: each model's input).", parse=parse_imgsz
    )
    runs: int = option(300, "Timed rounds.", check=_at_least(1))
    warmup: int = option(30, "Rounds (or pipeline frames) discarded first.", check=_at_least(0))
    images: str | None = option(None, "Folder of real images to time on (default: synthetic scenes).")
    seed: int = option(0, "Seed of the synthetic scenes.", cli=False)
    # pipeline bench: the options of `run` that change timing
    conf: float = option(0.25, "Confidence threshold.", check=_conf)
    iou: float = option(0.45, "NMS IoU threshold.", check=_iou)
    track: bool = option(True, "Pipeline: tracking.", flags="--track/--no-track")
    detect_every: int = _detect_every("Pipeline: detector on every N-th frame.")
    target_fps: float | None = _target_fps("Pipeline: skip detector runs to hold this FPS.")
    realtime: bool | None = option(None, "Pipeline: pace files to their rate.", flags="--realtime")
    max_frames: int | None = option(None, "Pipeline: stop after this many frames.", check=_at_least(1))
    telemetry_interval_s: float = option(0.5, "Telemetry sampling interval.", check=_positive, cli=False)

    def validate(self) -> BenchConfig:
        if self.pipeline and self.models:
            raise ConfigError(
                "--pipeline times one model on a source: pass it with --model, not as arguments"
            )
        if not self.pipeline and not self.models:
            raise ConfigError(
                "bench needs one or more models (edgedet bench a.onnx b.onnx) or --pipeline --model M --source S"
            )
        if self.imgsz is not None and min(self.imgsz) < 16:
            raise ConfigError(f"--imgsz must be 16 or more per side, got {self.imgsz}")
        self.check_options()
        return self


@dataclass(frozen=True)
class EvalDetConfig(_Options):
    """`edgedet eval det`: COCO mAP of a model on a YOLO-txt folder (or yaml) or a COCO json, via pycocotools.

    Defaults follow YOLOv5/Ultralytics validation (conf 0.001, NMS IoU 0.6, multi-label, max_det 300).
    """

    model: str | None = option(
        None, "The model to score (.onnx, or an engine with --backend tensorrt).", flags=("--model", "-m")
    )
    data: str = option("", "YOLO dataset folder/yaml or COCO instances json.")
    backend: str | None = option(
        None, "onnxruntime | tensorrt | a plugin's (default: tensorrt for .engine/.plan)."
    )
    device: str = option("cpu", "cpu | cuda | tensorrt (ONNX Runtime provider).")
    conf: float = option(0.001, "Confidence threshold (default 0.001, as for mAP).", check=_conf)
    iou: float = option(0.6, "NMS IoU threshold (default 0.6).", check=_iou)
    multi_label: bool = option(True, "One box per class above conf.", flags="--multi-label/--single-label")
    max_det: int = option(300, "Detections kept per image (default 300).", check=_at_least(1))
    threads: int = option(2, "CPU inference threads (default 2).", check=_at_least(0))
    per_class: bool = option(False, "Also print AP per class.", flags="--per-class")
    max_images: int | None = option(None, "Score only the first N images.", check=_at_least(1))

    def validate(self) -> EvalDetConfig:
        if not self.data:
            raise ConfigError("eval det needs --data: a YOLO dataset folder/yaml or a COCO instances json")
        self.check_options()
        return self


@dataclass(frozen=True)
class EvalGeoConfig(_Options):
    """`edgedet eval geo`: ground positions of tracks against a written scene's exact truth (edgedet.eval.geo).
    Without --pred the scene's images are tracked here (`run`'s pipeline with the scene's camera.yaml and
    telemetry); with --pred a run's JSON lines are scored."""

    data: str = option("", "A scene folder from tools/make_scenes.py (gt/gt_geo.csv, images/, camera.yaml).")
    pred: str | None = option(None, "Score this run's JSON lines (--save-json with --telemetry) instead.")
    model: str | None = option(None, "The detector (default: the bundled demo).", flags=("--model", "-m"))
    threads: int = option(0, "CPU inference threads (0 = library default).", check=_at_least(0))
    telemetry: str = option(
        "telemetry.jsonl", "Telemetry in --data (telemetry.jsonl | telemetry_noisy.jsonl) or a path."
    )
    telemetry_latency_ms: float = option(0.0, "How late the telemetry is stamped (compensated), ms.")
    geo_anchor: str = option(
        "center", "Ground point of a box: center (the scenes' flat objects) | bottom.",
        check=_one_of("bottom", "center"),
    )  # fmt: skip
    detect_every: int = _detect_every("Use the detector on every N-th frame.")
    cmc: str = option("pose", "Camera-motion compensation: pose | sparse | off.", check=_cmc)
    iou: float = option(0.5, "IoU that matches a track to a truth object (0.5).", check=_iou)

    def validate(self) -> EvalGeoConfig:
        if not self.data:
            raise ConfigError("eval geo needs --data: a scene folder written by tools/make_scenes.py")
        self.check_options()
        return self


@dataclass(frozen=True)
class EvalMotConfig(_Options):
    """`edgedet eval mot`: MOTChallenge folders (det.txt + gt.txt + seqinfo.ini) tracked as `run` would, scored
    with TrackEval (HOTA, CLEAR, Identity) and cross-checked with py-motmetrics.

    realtime: replay at the sequence's frame rate with a detector of `latency_ms` (or the latency measured for
    `model` on this machine); missed: what frames superseded while the detector was busy get ("predict": the
    tracker's prediction; "drop": nothing); track_ms: simulated cost of a tracker-only frame.
    """

    data: str = option("", "Folder of MOTChallenge sequence folders (or one).")
    sequences: tuple[str, ...] | None = option(
        None, "Only these sequences, comma separated, e.g. MOT17-02-FRCNN,TUD-Stadtmitte.", parse=_names
    )
    benchmark: str = option("auto", "auto | MOT15 | MOT16 | MOT17 | MOT20 (auto: from the gt layout).")
    detect_every: int = _detect_every("Use the detector on every N-th frame.")
    target_fps: float | None = _target_fps("--realtime: skip detector runs to hold this FPS.")
    max_interval: int = _max_interval()
    tracker: str = _tracker_name()
    track_max_age_s: float | None = _track_max_age_s()
    track_min_hits: int | None = _track_min_hits()
    track_iou: float | None = _track_iou()
    track_score: float | None = _track_score()
    second_association: bool | None = _second_association()
    realtime: bool = option(
        False, "Replay at the frame rate with a detector that takes time.", flags="--realtime"
    )
    latency_ms: float | None = option(
        None, "--realtime: detector latency per frame (ms).", check=_at_least(0)
    )
    model: str | None = option(
        None, "--realtime: measure this model's latency here instead.", flags=("--model", "-m")
    )
    track_ms: float = option(1.0, "--realtime: cost of a track-only frame (ms, 1).", check=_positive)
    # "drop" is what `run` writes on a live source: a frame superseded while the detector is busy never
    # reaches the tracker or the sinks. So it is the honest default for "what would this device score".
    missed: str = option(
        "drop",
        "--realtime: frames passed over while busy: drop (default, as run does live) | predict.",
        check=_one_of("predict", "drop"),
    )
    crosscheck: bool = option(True, "Cross-check with py-motmetrics.", flags="--crosscheck/--no-crosscheck")

    def validate(self) -> EvalMotConfig:
        if not self.data:
            raise ConfigError(
                "eval mot needs --data: a folder of MOTChallenge sequences (det.txt, gt.txt, seqinfo.ini)"
            )
        self.check_options()
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
        return self


# --- building a config: defaults < YAML < flags ----------------------------------------------------------------

_SCALARS: dict[str, tuple[type, ...]] = {"str": (str,), "int": (int,), "float": (int, float), "bool": (bool,)}


def _fits(value: Any, kind: str) -> bool:
    if kind == "None":
        return value is None
    if kind in _SCALARS:
        # bool is an int in Python, but `conf: true` in a YAML file is a mistake, not 1.0
        return isinstance(value, _SCALARS[kind]) and (kind == "bool" or not isinstance(value, bool))
    if kind.startswith("tuple["):
        if not isinstance(value, tuple):
            return False
        inner = [k.strip() for k in kind[len("tuple[") : -1].split(",")]
        if inner[-1] == "...":
            return all(_fits(v, inner[0]) for v in value)
        return len(value) == len(inner) and all(_fits(v, k) for v, k in zip(value, inner, strict=True))
    return True  # a type this check does not know: leave it to validate()


def _type_text(field_type: Any) -> str:
    text = field_type if isinstance(field_type, str) else str(field_type)
    return text.replace("typing.", "").replace("<class '", "").replace("'>", "")


def _coerce(name: str, value: Any, field_type: Any) -> Any:
    """The value, with YAML lists turned into tuples; ConfigError when it is not of the field's type (a YAML
    file can hold anything: `conf: abc`, `classes: {a: 1}`), so validate() only ever compares numbers."""
    text = _type_text(field_type)
    if isinstance(value, list) and "tuple" in text:
        value = tuple(value)
    kinds = [k.strip() for k in text.split("|")]
    if not any(_fits(value, k) for k in kinds):
        shown = repr(value)
        shown = shown if len(shown) <= 40 else shown[:37] + "..."
        raise ConfigError(f"option {name} must be {' or '.join(kinds)}, got {type(value).__name__} {shown}")
    if "float" in kinds and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    return value


def build_config(cls: type[C], yaml_path: str | Path | None = None, **flags: Any) -> C:
    """Defaults, then the YAML file, then the flags that are not None; types checked, demo defaults applied
    (RunConfig), not yet validated (call `.validate()`; build_pipeline and the commands do)."""
    declared = options_of(cls)
    values: dict[str, Any] = {}
    if yaml_path is not None:
        values.update(read_yaml_config(yaml_path, tuple(declared)))
    unknown = [k for k in flags if k not in declared]
    if unknown:
        raise ConfigError(f"unknown option(s) {unknown}")
    values.update({k: v for k, v in flags.items() if v is not None})
    values = {k: _coerce(k, v, declared[k][1]) for k, v in values.items()}
    try:
        cfg = cls(**values)
    except TypeError as exc:
        raise ConfigError(f"bad configuration: {exc}") from exc
    if isinstance(cfg, RunConfig):
        return apply_demo_defaults(cfg)  # type: ignore[return-value]
    return cfg


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


def iter_options(cls: type) -> Iterator[tuple[str, Option]]:
    """(name, Option) of every option of `cls` that has a command-line flag."""
    for name, (opt, _type, _default) in options_of(cls).items():
        if opt.cli:
            yield name, opt
