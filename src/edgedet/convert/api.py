"""`edgedet convert`: source -> FP32 ONNX (checked against PyTorch) -> FP16 / INT8 ONNX -> TensorRT engine.

Each step writes one artifact beside the input (or under `output`): `<stem>.onnx`, `<stem>.fp16.onnx`,
`<stem>.int8.onnx`, `<stem>.engine` (+ `.json` sidecar). Parity is checked after every conversion and the INT8
file goes through the accuracy gate before an engine is built from it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from edgedet import datasets
from edgedet.config import option, parse_imgsz
from edgedet.datasets import IMAGE_SUFFIXES
from edgedet.errors import ConfigError, DataError, MissingDependencyError, ModelError
from edgedet.spec import OUTPUT_FORMATS, ModelSpec, read_names_file, read_onnx_spec, sha256_file

log = logging.getLogger(__name__)

CALIB_METHODS = ("minmax", "percentile", "entropy")
HOLDOUT_MIN_IMAGES = 40
ENGINE_DEFERRED = "ONNX files are ready; build the engine on the device with the same command"

Progress = Callable[[str], None]


def _parse_imgsz(text: str) -> int | tuple[int, int]:
    """`640` -> 640; `384,640` or `384x640` -> (384, 640)."""
    h, w = parse_imgsz(text) or (0, 0)
    return h if h == w else (h, w)


#: the largest batch of an engine built from a --dynamic export when --batch is not given
DEFAULT_ENGINE_BATCH = 8


@dataclass(frozen=True)
class ConvertConfig:
    """One field per `edgedet convert` flag, declared with `edgedet.config.option` (flag, help, YAML key).

    source: .pt checkpoint (YOLOv5 repo or Ultralytics), .onnx file, or "pkg.module:factory".
    weights: state_dict for a module factory. imgsz: square input side, or (h, w); None = 640 (or the ONNX
    file's own size). format: output layout override (yolov5 | yolov8 | end2end). names: class names file
    (one per line, or a dataset yaml). output: folder for artifacts (None = beside the source).
    """

    source: str = option("", ".pt checkpoint, .onnx file, or package.module:factory", cli=False)
    weights: str | None = option(None, "state_dict for a module:factory source.")
    imgsz: int | tuple[int, int] | None = option(
        None, "Input size: 640 or 384,640 (h,w).", parse=_parse_imgsz
    )
    format: str | None = option(None, "Head layout: yolov5 | yolov8 | end2end.", flags="--format")
    names: str | None = option(None, "Class names file (one per line) or dataset yaml.")
    opset: int = option(19, "ONNX opset.")
    dynamic: bool = option(False, "Dynamic batch dimension.", flags="--dynamic")
    batch: int | None = option(
        None,
        "With --dynamic --engine: the engine's largest batch (profile 1..N, tuned for N; default 8). Run it "
        "with --max-batch N.",
    )
    simplify: bool = option(True, "Simplify with onnxslim.", flags="--simplify/--no-simplify")
    fp16: bool = option(False, "Also write an FP16 ONNX.", flags="--fp16")
    int8: bool = option(False, "Also write an INT8 (Q/DQ) ONNX; needs --calib.", flags="--int8")
    calib: str | None = option(None, "Calibration images folder (100+ deployment-like images).")
    labels: str | None = option(None, "Labels (YOLO txt folder or COCO json) for the accuracy gate.")
    # mAP50-95 points; None = the gate's default (1 with labels, 10 without)
    max_map_drop: float | None = option(
        None,
        "Largest mAP50-95 drop (points) INT8 may cost: default 1 against --labels, 10 against the FP32 model's "
        "own detections.",
    )
    # measured best on yolov5n/coco128 (-0.74 mAP points vs -1.60 minmax)
    calib_method: str = option("percentile", "minmax | percentile | entropy")
    int8_target: str | None = option(
        None,
        "cpu (uint8 activations, fast in ONNX Runtime) | tensorrt (symmetric int8; default with --engine)",
    )
    gate: bool = option(
        True, "INT8 accuracy gate; --no-gate writes INT8 without it (warns; the file records it).",
        flags="--gate/--no-gate",
    )
    engine: bool = option(False, "Build a TensorRT engine (on the device).", flags="--engine")
    output: str | None = option(None, "Output folder (default: beside the input).", flags=("--output", "-o"))
    json: bool = option(False, "Print a JSON summary.", flags="--json")
    parity_inputs: int = option(4, "Real-looking inputs the ONNX is checked against PyTorch on.", cli=False)
    loader: str = option(
        "auto",
        "Ultralytics .pt reader: auto | builtin (edgedet's own, no ultralytics needed) | ultralytics (the "
        "installed package).",
    )
    one2many: bool = option(
        False,
        "YOLOv10/YOLO26: export the one-to-many head (NMS in run) instead of the NMS-free one.",
        flags="--one2many",
    )


@dataclass(frozen=True)
class Artifact:
    """One file written by `convert`: path, precision (fp32 | fp16 | int8), size in bytes, seconds taken,
    parity (ParityReport.as_dict or None), gate (GateResult fields or None), notes."""

    path: Path
    precision: str
    size_bytes: int
    seconds: float
    kind: str = "onnx"  # onnx | engine
    parity: dict[str, Any] | None = None
    gate: dict[str, Any] | None = None
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class ConvertResult:
    spec: ModelSpec
    artifacts: tuple[Artifact, ...]
    notes: tuple[str, ...] = ()
    seconds: float = 0.0

    def artifact(self, precision: str, kind: str = "onnx") -> Artifact | None:
        return next((a for a in self.artifacts if a.precision == precision and a.kind == kind), None)

    def as_dict(self) -> dict[str, Any]:
        return {
            "spec": asdict(self.spec),
            "artifacts": [{**asdict(a), "path": str(a.path)} for a in self.artifacts],
            "notes": list(self.notes),
            "seconds": self.seconds,
        }


@dataclass
class _Run:
    progress: Progress | None
    notes: list[str] = field(default_factory=list)

    def say(self, msg: str) -> None:
        # one channel per message: the caller's progress callback when given, else the log (never both: -v
        # would print every line twice)
        if self.progress is not None:
            self.progress(msg)
        else:
            log.info(msg)

    def note(self, msg: str) -> None:
        self.notes.append(msg)
        self.say(msg)


def list_images(folder_or_file: str | Path) -> list[Path]:
    """Images in a folder (sorted, recursive), or the lines of a .txt list file."""
    p = Path(folder_or_file)
    if p.is_dir():
        return datasets.list_images(p)
    if p.is_file() and p.suffix.lower() == ".txt":
        base = p.parent
        lines = [ln.strip() for ln in p.read_text(encoding="utf-8").splitlines() if ln.strip()]
        return [Path(ln) if Path(ln).is_absolute() else base / ln for ln in lines]
    if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES:
        return [p]
    raise DataError(
        f"calibration images {p} not found; pass --calib DIR (100+ images like the deployment scenes)"
    )


def validate(config: ConvertConfig) -> None:
    """Refuse conflicting or incomplete options before any work (ConfigError says which flag to change)."""
    if config.format is not None and config.format not in OUTPUT_FORMATS:
        raise ConfigError(f"--format {config.format!r} is unknown; use one of {', '.join(OUTPUT_FORMATS)}")
    if config.int8 and not config.calib:
        raise ConfigError(
            "--int8 needs calibration images: pass --calib DIR (100+ images like the deployment scenes)"
        )
    if config.labels and not config.int8:
        raise ConfigError(
            "--labels is used by the INT8 accuracy gate; add --int8 --calib DIR or drop --labels"
        )
    if config.int8_target not in (None, "cpu", "tensorrt"):
        raise ConfigError(f"--int8-target {config.int8_target!r} is unknown; use cpu or tensorrt")
    if config.engine and config.int8 and config.int8_target == "cpu":
        # ONNX Runtime on the CPU is fast only with uint8 activations; TensorRT reads only symmetric int8.
        raise ConfigError(
            "--engine builds from the INT8 file, which must be quantized for TensorRT: use --int8-target "
            "tensorrt (or run convert twice: once for the CPU, once with --engine)"
        )
    if config.calib_method not in CALIB_METHODS:
        raise ConfigError(
            f"--calib-method {config.calib_method!r} is unknown; use one of {', '.join(CALIB_METHODS)}"
        )
    if config.max_map_drop is not None and not 0.0 <= config.max_map_drop <= 100.0:
        raise ConfigError(
            f"--max-map-drop {config.max_map_drop} must be in mAP points, 0..100 (1.0 = one point of mAP50-95)"
        )
    if config.weights and not _is_factory(config.source):
        raise ConfigError(
            "--weights goes with a module factory source (pkg.module:factory); a .pt carries its weights"
        )
    if config.dynamic and config.int8:
        # onnxruntime's quantization pre-processing fails on a dynamic batch dimension (seen with onnxruntime 1.32)
        raise ConfigError(
            "--dynamic cannot be combined with --int8 (quantization needs a fixed batch); drop one"
        )
    if config.loader not in ("auto", "builtin", "ultralytics"):
        raise ConfigError(f"--loader {config.loader!r} is unknown; use auto, builtin or ultralytics")
    if config.batch is not None and (config.batch < 1 or not config.dynamic):
        raise ConfigError(
            f"--batch {config.batch}: the engine batch goes with a dynamic-batch export: add --dynamic and use "
            "a batch of 1 or more"
        )
    if config.imgsz is not None:
        hw = _imgsz(config.imgsz)
        if min(hw) < 32 or max(hw) > 4096:
            raise ConfigError(
                f"--imgsz {config.imgsz} is out of range; use 32..4096 (a multiple of the stride)"
            )
    if config.int8 and config.gate:
        from edgedet._optional import require_all

        require_all("convert --int8")  # the gate's mAP, before the export and calibration, not after them


def _is_factory(source: str) -> bool:
    from edgedet.convert.adapters.module_factory import is_factory_ref

    return not Path(source).exists() and is_factory_ref(source)


def _imgsz(v: int | tuple[int, int] | Sequence[int]) -> tuple[int, int]:
    if isinstance(v, int):
        return v, v
    seq = [int(x) for x in v]
    if len(seq) == 1:
        return seq[0], seq[0]
    return seq[0], seq[1]


def _names(config: ConvertConfig) -> tuple[str, ...] | None:
    if config.names is None:
        return None
    if Path(config.names).is_file():
        return read_names_file(config.names)
    if "," in config.names:
        return tuple(n.strip() for n in config.names.split(",") if n.strip())
    raise DataError(f"class names file {config.names} not found; pass a text file, one name per line")


def output_paths(config: ConvertConfig) -> dict[str, Path]:
    """Where each artifact goes: keys fp32, fp16, int8, engine, engine_json."""
    src = config.source
    if _is_factory(src):
        stem = src.split(":")[-1].split(".")[-1] or "model"
        default_dir = Path.cwd()
    else:
        stem = Path(src).stem
        default_dir = Path(src).resolve().parent
    out_dir = Path(config.output) if config.output else default_dir
    return {
        "fp32": out_dir / f"{stem}.onnx",
        "fp16": out_dir / f"{stem}.fp16.onnx",
        "int8": out_dir / f"{stem}.int8.onnx",
        "engine": out_dir / f"{stem}.engine",
        "engine_json": out_dir / f"{stem}.engine.json",
    }


def convert(config: ConvertConfig, progress: Progress | None = None) -> ConvertResult:
    """Run the whole conversion; return the artifacts written. Raises EdgedetError subclasses with one-line
    messages (ModelError when a parity check fails, the gate's error when INT8 loses too much accuracy)."""
    from edgedet.convert import verify
    from edgedet.convert.adapters import detect_source_kind
    from edgedet.convert.export_onnx import export_onnx

    t_start = time.perf_counter()
    validate(config)
    run = _Run(progress)
    paths = output_paths(config)
    paths["fp32"].parent.mkdir(parents=True, exist_ok=True)
    calib_images = list_images(config.calib) if config.calib else []
    if config.int8 and not calib_images:
        raise DataError(
            f"--calib {config.calib} holds no images; pass a folder of .jpg/.png like the deployment scenes"
        )
    parity_images = calib_images[: config.parity_inputs] or None
    names = _names(config)
    artifacts: list[Artifact] = []

    kind = detect_source_kind(config.source)
    run.say(f"source {config.source}: {kind}")
    t0 = time.perf_counter()
    if kind == "onnx":
        spec, fp32_path = _from_onnx(config, names, paths["fp32"], run)
        artifacts.append(_artifact(fp32_path, "fp32", time.perf_counter() - t0, None))
    else:
        loaded = _load(kind, config, names)
        if loaded.extra.get("fallback_note"):
            run.note(str(loaded.extra["fallback_note"]))
        # default size: the one the model was trained at (Ultralytics checkpoints record it), else 640
        hw = _imgsz(config.imgsz if config.imgsz is not None else loaded.extra.get("train_imgsz") or 640)
        spec = ModelSpec(
            input_hw=hw,
            output_format=config.format or loaded.output_format,
            class_names=names if names is not None else loaded.class_names,
            stride=loaded.stride,
        )
        run.say(f"exporting {kind} model to {paths['fp32']} (opset {config.opset}, {hw[0]}x{hw[1]})")
        fp32_path, spec, export_notes = export_onnx(
            loaded.module,
            paths["fp32"],
            spec,
            opset=config.opset,
            dynamic=config.dynamic,
            simplify=config.simplify,
            source=None if kind == "module" else config.source,
            provenance={"loader": kind}
            | {k: str(v) for k, v in loaded.extra.items() if k in _PROVENANCE_EXTRA and v is not None}
            | (
                {"weights": Path(config.weights).name, "weights_sha256": sha256_file(config.weights)}
                if config.weights
                else {}
            ),
        )
        for n in export_notes:
            run.note(n)
        seconds = time.perf_counter() - t0
        report = verify.check_parity(
            loaded.module, fp32_path, spec, images=parity_images, n=config.parity_inputs
        )
        run.say(report.summary())
        artifacts.append(_artifact(fp32_path, "fp32", seconds, report.as_dict()))

    if config.fp16:
        from edgedet.convert.fp16 import convert_fp16

        t0 = time.perf_counter()
        run.say(f"FP16: {paths['fp16']}")
        fp16_path = convert_fp16(fp32_path, paths["fp16"])
        _stamp(fp16_path, spec.replace(precision="fp16"))
        seconds = time.perf_counter() - t0
        report = verify.check_parity(
            fp32_path, fp16_path, spec.replace(precision="fp16"), images=parity_images
        )
        run.say(report.summary())
        artifacts.append(_artifact(fp16_path, "fp16", seconds, report.as_dict()))

    if config.int8:
        artifacts.append(_int8(config, spec, fp32_path, paths["int8"], calib_images, run))

    if config.engine:
        best = artifacts[-1].path  # the last, most compressed precision requested
        precision = artifacts[-1].precision
        engine_art = _engine(
            best, precision, paths, run, (config.batch or DEFAULT_ENGINE_BATCH) if config.dynamic else None
        )
        if engine_art is not None:
            artifacts.append(engine_art)

    final_spec = read_onnx_spec(fp32_path)
    return ConvertResult(final_spec, tuple(artifacts), tuple(run.notes), time.perf_counter() - t_start)


# LoadedModel.extra keys worth keeping in the ONNX provenance (Ultralytics: which family, head, loader)
_PROVENANCE_EXTRA = ("family", "task", "head", "train_imgsz", "ultralytics_version", "weights_from")


def _load(kind: str, config: ConvertConfig, names: tuple[str, ...] | None) -> Any:
    if config.one2many and kind != "ultralytics":
        raise ConfigError(
            "--one2many applies to Ultralytics end-to-end checkpoints (YOLOv10, YOLO26); drop it"
        )
    if kind == "yolov5":
        from edgedet.convert.adapters.yolov5 import load_yolov5

        return load_yolov5(config.source)
    if kind == "ultralytics":
        from edgedet.convert.adapters.ultralytics import load_ultralytics

        return load_ultralytics(config.source, loader=config.loader, one2many=config.one2many)
    if kind == "module":
        from edgedet.convert.adapters.module_factory import load_module_factory

        return load_module_factory(config.source, config.weights, config.format, names or ())
    raise ConfigError(f"unknown source kind {kind!r}")


def _from_onnx(
    config: ConvertConfig, names: tuple[str, ...] | None, fp32_out: Path, run: _Run
) -> tuple[ModelSpec, Path]:
    """Start from an existing ONNX file: read its spec; write a normalised copy (spec in metadata, weights not
    listed as graph inputs) unless the copy would overwrite the source."""
    import onnx

    from edgedet.convert.export_onnx import (
        drop_initializer_inputs,
        save_single_file,
        set_spec,
    )

    src = Path(config.source)
    spec = read_onnx_spec(src)
    if config.imgsz is not None and _imgsz(config.imgsz) != spec.input_hw:
        raise ConfigError(
            f"--imgsz {config.imgsz} differs from {src.name}'s input {spec.input_hw}; re-export from the checkpoint "
            "to change the size"
        )
    changes: dict[str, Any] = {}
    if config.format:
        changes["output_format"] = config.format
    if names is not None:
        changes["class_names"] = names
    if spec.precision != "fp32":
        raise ConfigError(f"{src.name} is already {spec.precision}; start from the FP32 ONNX file")
    prov = dict(spec.provenance)
    prov.setdefault("source", src.name)
    prov.setdefault("source_sha256", sha256_file(src))
    spec = spec.replace(provenance=prov, **changes)
    if fp32_out.resolve() == src.resolve():
        run.note(
            f"{src.name} is used as the FP32 model as it is (pass --output DIR to write a copy with the spec)"
        )
        return spec, src
    model = onnx.load(str(src))
    if drop_initializer_inputs(model):
        run.note("removed initializers from graph inputs (they blocked constant folding)")
    set_spec(model, spec)
    save_single_file(model, fp32_out)
    return spec, fp32_out


def _stamp(path: Path, spec: ModelSpec) -> None:
    import onnx

    from edgedet.convert.export_onnx import save_single_file, set_spec

    m = onnx.load(str(path))
    set_spec(m, spec)
    save_single_file(m, path)


def _artifact(
    path: Path, precision: str, seconds: float, parity: dict[str, Any] | None, **kw: Any
) -> Artifact:
    return Artifact(path, precision, path.stat().st_size, round(seconds, 3), parity=parity, **kw)


def _int8(
    config: ConvertConfig, spec: ModelSpec, fp32_path: Path, out: Path, calib_images: list[Path], run: _Run
) -> Artifact:
    """Quantize with the accuracy gate's repair loop (sensitive layers kept in float while the gate fails);
    the gate's GateRefused (a ModelError) propagates when even that loses too much, and the refused file is then
    `<stem>.int8.rejected.onnx`, never `out`. With `config.gate` False the gate is skipped with a warning and
    the verdict "skipped" is stored in the file."""
    from edgedet.convert.calibrate import ProgressLine
    from edgedet.convert.gate import quantize_with_gate, rejected_path, verdict, write_verdict

    t0 = time.perf_counter()
    method: Any = config.calib_method  # checked against CALIB_METHODS in validate()
    target = config.int8_target or ("tensorrt" if config.engine else "cpu")
    activation_type: Any = "int8" if target == "tensorrt" else "uint8"
    if not config.gate:
        from edgedet.convert.quantize import quantize_int8

        msg = (
            "--no-gate: the INT8 model's accuracy is NOT checked against FP32; "
            "measure it with `edgedet eval det` before deploying it"
        )
        log.warning(msg)
        run.note(f"warning: {msg}")
        run.say(f"INT8 ({config.calib_method}, {len(calib_images)} calibration images, no gate): {out}")
        quantize_int8(
            fp32_path,
            out,
            calib_images,
            spec,
            method,
            progress=ProgressLine("calibration", run.say),
            activation_type=activation_type,
        )
        write_verdict(out, verdict(None, skipped=True))
        rejected_path(out).unlink(missing_ok=True)
        return _artifact(out, "int8", time.perf_counter() - t0, None, gate=verdict(None, skipped=True))
    # The gate scores every image it has: mAP on a few dozen images swings by a point between two INT8 files
    # that agree to 0.1 point on 128 (YOLOv5n@320, coco128: 0.69 vs 1.85 points on the 32 held-out images, 0.0
    # vs 0.1 on all 128). Every 4th image is still kept out of calibration, so a quarter of what the gate
    # scores was never seen by it; calibration only sets activation ranges, it fits nothing to the labels.
    eval_images = list(calib_images)
    if len(calib_images) >= HOLDOUT_MIN_IMAGES:
        calib = [p for i, p in enumerate(calib_images) if i % 4]
        held_out = f" ({len(calib_images) - len(calib)} not used for calibration)"
    else:
        calib, held_out = calib_images, ""
        run.note(f"only {len(calib_images)} images: the gate scores INT8 on its calibration images")
    gate_kind = "labels" if config.labels else "agreement with FP32 (no --labels)"
    run.say(
        f"INT8 ({config.calib_method}, {len(calib)} calibration images, gate on {len(eval_images)}{held_out}, "
        f"{gate_kind}): {out}"
    )
    gate = quantize_with_gate(
        fp32_path,
        out,
        calib,
        eval_images,
        Path(config.labels) if config.labels else None,
        config.max_map_drop,
        spec=spec,
        method=method,
        activation_type=activation_type,
        progress=run.say,
        calib_progress=ProgressLine("calibration", run.say),
    )
    return _artifact(out, "int8", time.perf_counter() - t0, None, gate=verdict(gate))


def _engine(
    onnx_path: Path, precision: str, paths: dict[str, Path], run: _Run, max_batch: int | None = None
) -> Artifact | None:
    """Build the TensorRT engine; max_batch: for a dynamic-batch ONNX, the profile's largest (and tuned) batch."""
    from edgedet.backends.engine_build import build_engine

    t0 = time.perf_counter()
    try:
        dynamic_batch = (1, max_batch, max_batch) if max_batch is not None else None
        result = build_engine(onnx_path, paths["engine"], progress=run.say, dynamic_batch=dynamic_batch)
    except MissingDependencyError as exc:
        run.note(f"{exc}; {ENGINE_DEFERRED}")
        return None
    engine_path = Path(result.plan)
    if not engine_path.is_file():
        raise ModelError(f"the TensorRT build reported success but {engine_path} is missing")
    return _artifact(
        engine_path, precision, time.perf_counter() - t0, None, kind="engine", notes=(str(result),)
    )


def _as_dict(obj: Any) -> dict[str, Any]:
    if hasattr(obj, "as_dict"):
        return dict(obj.as_dict())
    try:
        return asdict(obj)
    except TypeError:
        return {"result": repr(obj)}
