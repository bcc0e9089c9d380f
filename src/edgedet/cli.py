"""The command line: a thin translator from flags to config objects. Only this module prints.

`main(argv) -> int` is the entry point for tests; `run_cli()` is the console script.
"""

from __future__ import annotations

import json
import logging
import sys
import traceback
from pathlib import Path
from typing import Annotated, Any

import typer

from edgedet.errors import EdgedetError

app = typer.Typer(
    name="edgedet",
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    help="Run a PyTorch object detector on a live camera in real time: convert, run, bench, eval.",
)

_state: dict[str, Any] = {"debug": False}

# Options shared by several commands: one declaration each, so help texts and types cannot drift apart.
TrackMaxAgeOpt = Annotated[float | None, typer.Option(help="Seconds a lost track is kept.")]
TrackMinHitsOpt = Annotated[int | None, typer.Option(help="Detections before a track is reported.")]
TrackIouOpt = Annotated[float | None, typer.Option(help="IoU needed to match a detection to a track.")]
TrackScoreOpt = Annotated[
    float | None, typer.Option(help="Detections below this score do not start or update tracks.")
]
SecondAssociationOpt = Annotated[
    bool | None,
    typer.Option("--second-association/--no-second-association", help="ByteTrack-style low-score pass."),
]


def _echo(text: str = "", err: bool = False) -> None:
    typer.echo(text, err=err)


@app.callback()
def _root(
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks and debug logs.")] = False,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Show info logs (reconnects, model loading).")
    ] = False,
) -> None:
    _state["debug"] = debug
    level = logging.DEBUG if debug else logging.INFO if verbose else logging.WARNING
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", force=True)


# --- run --------------------------------------------------------------------------------------------------------

_RUN_HELP = """Capture -> detector -> tracker -> outputs, skipping detector runs to hold a frame rate.

Examples:

  edgedet run --source demo

  edgedet run --camera 0 --model yolov5n.onnx --target-fps 30 --save-video out.mp4 --save-mot tracks.txt

  edgedet run --source flight.mp4 --model model.onnx --detect-every 3

  edgedet run --source images/ --model model.onnx --no-track --conf 0.001 --save-coco results.json
"""


@app.command("run", help=_RUN_HELP)
def run_cmd(
    source: Annotated[
        str | None,
        typer.Option(
            "--source",
            "-s",
            help="demo | video file | image folder/glob | rtsp://... | GStreamer pipeline | synthetic",
        ),
    ] = None,
    camera: Annotated[
        str | None, typer.Option("--camera", help="Camera index (0) or device (/dev/video0).")
    ] = None,
    model: Annotated[
        str | None, typer.Option("--model", "-m", help="ONNX model (default: the bundled demo).")
    ] = None,
    config: Annotated[
        Path | None, typer.Option("--config", help="YAML file with the same option names.")
    ] = None,
    backend: Annotated[str | None, typer.Option(help="onnxruntime | tensorrt")] = None,
    device: Annotated[str | None, typer.Option(help="cpu | cuda | tensorrt (ONNX Runtime provider)")] = None,
    threads: Annotated[int | None, typer.Option(help="CPU inference threads (0 = library default).")] = None,
    trt_memory: Annotated[
        str | None, typer.Option(help="TensorRT buffers: device (copies) | mapped (zero-copy, Jetson).")
    ] = None,
    format: Annotated[
        str | None, typer.Option("--format", help="Model head: yolov5 | yolov8 | end2end.")
    ] = None,
    names: Annotated[
        str | None, typer.Option(help="Class names file (one per line) or dataset yaml.")
    ] = None,
    conf: Annotated[float | None, typer.Option(help="Confidence threshold (default 0.25).")] = None,
    iou: Annotated[float | None, typer.Option(help="NMS IoU threshold (default 0.45).")] = None,
    agnostic: Annotated[
        bool | None, typer.Option("--agnostic/--class-aware", help="Class-agnostic NMS.")
    ] = None,
    max_det: Annotated[int | None, typer.Option(help="Detections kept per frame (default 300).")] = None,
    classes: Annotated[str | None, typer.Option(help="Keep only these class ids, e.g. 0,2,5.")] = None,
    track: Annotated[
        bool | None, typer.Option("--track/--no-track", help="SORT tracking (default on).")
    ] = None,
    detect_every: Annotated[int | None, typer.Option(help="Run the detector on every N-th frame.")] = None,
    target_fps: Annotated[
        float | None, typer.Option(help="Skip detector runs adaptively to hold this FPS.")
    ] = None,
    track_max_age_s: TrackMaxAgeOpt = None,
    track_min_hits: TrackMinHitsOpt = None,
    track_iou: TrackIouOpt = None,
    track_score: TrackScoreOpt = None,
    cmc: Annotated[
        str | None,
        typer.Option(
            help="Camera-motion compensation: auto (on for live sources and the demo, off for files) | off | sparse."
        ),
    ] = None,
    second_association: SecondAssociationOpt = None,
    realtime: Annotated[
        bool | None, typer.Option("--realtime", help="Pace files to their frame rate.")
    ] = None,
    loop: Annotated[bool | None, typer.Option("--loop", help="Restart files/folders at the end.")] = None,
    width: Annotated[int | None, typer.Option(help="Camera capture width.")] = None,
    height: Annotated[int | None, typer.Option(help="Camera capture height.")] = None,
    fps: Annotated[float | None, typer.Option(help="Camera capture FPS.")] = None,
    stall_timeout_s: Annotated[
        float | None, typer.Option(help="Live: reopen after this long without a frame.")
    ] = None,
    give_up_s: Annotated[
        float | None, typer.Option(help="Live: end the run after this long without a frame.")
    ] = None,
    max_frames: Annotated[int | None, typer.Option(help="Stop after this many frames.")] = None,
    show: Annotated[bool | None, typer.Option("--show", help="Show a window with boxes and IDs.")] = None,
    save_video: Annotated[str | None, typer.Option(help="Annotated mp4.")] = None,
    save_mot: Annotated[str | None, typer.Option(help="MOTChallenge txt of tracks.")] = None,
    save_json: Annotated[str | None, typer.Option(help="JSON lines, one per frame.")] = None,
    save_coco: Annotated[str | None, typer.Option(help="COCO results json of detections.")] = None,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write the run summary as JSON.")] = None,
) -> None:
    import dataclasses

    from edgedet.config import RunConfig, build_config, read_yaml_config
    from edgedet.demo import default_run_overrides, is_demo_source
    from edgedet.errors import ConfigError
    from edgedet.pipeline import build_pipeline

    if source is not None and camera is not None:
        raise ConfigError("--source and --camera both name the input: pass only one")
    class_ids = None
    if classes is not None:
        try:
            class_ids = tuple(int(c) for c in classes.split(",") if c.strip())
        except ValueError:
            raise ConfigError(
                f"--classes takes comma-separated class ids like 0,2,5, got {classes!r}"
            ) from None
    flags: dict[str, Any] = dict(
        source=camera if camera is not None else source,
        model=model,
        backend=backend,
        device=device,
        threads=threads,
        trt_memory=trt_memory,
        format=format,
        names=names,
        conf=conf,
        iou=iou,
        agnostic=agnostic,
        max_det=max_det,
        classes=class_ids,
        track=track,
        detect_every=detect_every,
        target_fps=target_fps,
        track_max_age_s=track_max_age_s,
        track_min_hits=track_min_hits,
        track_iou=track_iou,
        track_score=track_score,
        second_association=second_association,
        cmc=cmc,
        realtime=realtime,
        loop=loop,
        width=width,
        height=height,
        fps=fps,
        stall_timeout_s=stall_timeout_s,
        give_up_s=give_up_s,
        max_frames=max_frames,
        show=show,
        save_video=save_video,
        save_mot=save_mot,
        save_json=save_json,
        save_coco=save_coco,
    )
    cfg = build_config(RunConfig, config, **flags)
    if is_demo_source(cfg.source):
        # The demo fills in what a first run should show (a run folder with video, tracks and detections, the
        # target-FPS scheduler on a paced source) without overriding anything the user set.
        fields = tuple(f.name for f in dataclasses.fields(RunConfig))
        given = {**(read_yaml_config(config, fields) if config else {}), **flags}
        cfg = dataclasses.replace(cfg, **default_run_overrides(given))
    pipeline = build_pipeline(cfg)
    tracking = "SORT + camera-motion compensation" if pipeline.cmc is not None else "SORT"
    _echo(
        f"edgedet run: {cfg.source} -> {pipeline.backend.description} -> "
        f"{tracking if cfg.track else 'no tracking'}; Ctrl-C to stop"
    )
    summary = pipeline.run()
    _echo(summary.format())
    if json_out is not None:
        json_out.write_text(json.dumps(summary.as_dict(), indent=2) + "\n")
    if summary.stopped_by in ("SIGINT", "SIGTERM"):
        raise typer.Exit(130 if summary.stopped_by == "SIGINT" else 143)


# --- track ------------------------------------------------------------------------------------------------------


@app.command("track", help="Run the tracker on a MOTChallenge det.txt and write MOTChallenge tracks.")
def track_cmd(
    dets: Annotated[Path, typer.Option("--dets", help="MOTChallenge det.txt")],
    seqinfo: Annotated[Path, typer.Option("--seqinfo", help="seqinfo.ini (frame rate, length, size)")],
    out: Annotated[Path, typer.Option("--out", help="Output tracks txt")],
    detect_every: Annotated[int, typer.Option(help="Use detections only on every N-th frame.")] = 1,
    track_max_age_s: TrackMaxAgeOpt = None,
    track_min_hits: TrackMinHitsOpt = None,
    track_iou: TrackIouOpt = None,
    track_score: TrackScoreOpt = None,
    second_association: SecondAssociationOpt = None,
) -> None:
    from edgedet.motchallenge import write_mot
    from edgedet.tracking import TrackerConfig
    from edgedet.tracking.replay import track_sequence

    tcfg = TrackerConfig().with_overrides(
        max_age_s=track_max_age_s,
        min_hits=track_min_hits,
        iou_threshold=track_iou,
        score_threshold=track_score,
        second_association=second_association,
    )
    rows = track_sequence(dets, seqinfo, tcfg, detect_every=detect_every)
    write_mot(rows, out)
    n_ids = len(set(rows.track_id.tolist())) if len(rows) else 0
    _echo(f"wrote {out}: {len(rows)} rows, {n_ids} tracks (detect every {detect_every})")


# --- convert / info ---------------------------------------------------------------------------------------------

_CONVERT_HELP = """PyTorch detector -> ONNX (checked against PyTorch) -> FP16 / INT8 ONNX -> TensorRT engine.

Examples:

  edgedet convert yolov5n.pt --imgsz 640

  edgedet convert yolov5n.pt --imgsz 640 --fp16 --int8 --calib images/

  edgedet convert mypkg.models:build --weights det.pth --format yolov8 --names classes.txt --imgsz 512

  edgedet convert model.onnx --int8 --calib images/ --labels labels/
"""


@app.command("convert", help=_CONVERT_HELP)
def convert_cmd(
    source: Annotated[str, typer.Argument(help=".pt checkpoint, .onnx file, or package.module:factory")],
    weights: Annotated[str | None, typer.Option(help="state_dict for a module:factory source.")] = None,
    imgsz: Annotated[str | None, typer.Option(help="Input size: 640 or 384,640 (h,w).")] = None,
    format: Annotated[
        str | None, typer.Option("--format", help="Head layout: yolov5 | yolov8 | end2end.")
    ] = None,
    names: Annotated[
        str | None, typer.Option(help="Class names file (one per line) or dataset yaml.")
    ] = None,
    opset: Annotated[int, typer.Option(help="ONNX opset.")] = 19,
    dynamic: Annotated[bool, typer.Option("--dynamic", help="Dynamic batch dimension.")] = False,
    simplify: Annotated[
        bool, typer.Option("--simplify/--no-simplify", help="Simplify with onnxslim.")
    ] = True,
    fp16: Annotated[bool, typer.Option("--fp16", help="Also write an FP16 ONNX.")] = False,
    int8: Annotated[
        bool, typer.Option("--int8", help="Also write an INT8 (Q/DQ) ONNX; needs --calib.")
    ] = False,
    calib: Annotated[
        str | None, typer.Option(help="Calibration images folder (100+ deployment-like images).")
    ] = None,
    labels: Annotated[
        str | None, typer.Option(help="Labels (YOLO txt folder or COCO json) for the accuracy gate.")
    ] = None,
    max_map_drop: Annotated[
        float | None, typer.Option(help="Largest mAP50-95 drop (points) INT8 may cost.")
    ] = None,
    calib_method: Annotated[str, typer.Option(help="minmax | percentile | entropy")] = "percentile",
    int8_target: Annotated[
        str | None,
        typer.Option(
            help="cpu (uint8 activations, fast in ONNX Runtime) | tensorrt (symmetric int8; default with --engine)"
        ),
    ] = None,
    engine: Annotated[
        bool, typer.Option("--engine", help="Build a TensorRT engine (on the device).")
    ] = False,
    output: Annotated[
        str | None, typer.Option("--output", "-o", help="Output folder (default: beside the input).")
    ] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print a JSON summary.")] = False,
    loader: Annotated[
        str, typer.Option(help="Ultralytics .pt reader: auto | builtin (no ultralytics needed) | ultralytics.")
    ] = "auto",
    one2many: Annotated[
        bool, typer.Option("--one2many", help="YOLOv10/YOLO26: export the one-to-many head (NMS outside).")
    ] = False,
) -> None:
    from edgedet.convert import ConvertConfig, convert
    from edgedet.errors import ConfigError

    size: int | tuple[int, int] | None = None
    if imgsz is not None:
        try:
            parts = [int(p) for p in imgsz.replace("x", ",").split(",") if p.strip()]
        except ValueError:
            raise ConfigError(f"--imgsz takes 640 or 384,640 (h,w), got {imgsz!r}") from None
        if len(parts) not in (1, 2):
            raise ConfigError(f"--imgsz takes 640 or 384,640 (h,w), got {imgsz!r}")
        size = parts[0] if len(parts) == 1 else (parts[0], parts[1])
    cfg = ConvertConfig(
        source=source,
        weights=weights,
        imgsz=size,
        format=format,
        names=names,
        opset=opset,
        dynamic=dynamic,
        simplify=simplify,
        fp16=fp16,
        int8=int8,
        calib=calib,
        labels=labels,
        max_map_drop=max_map_drop,
        calib_method=calib_method,
        int8_target=int8_target,
        engine=engine,
        output=output,
        json=json_out,
        loader=loader,
        one2many=one2many,
    )
    result = convert(cfg, progress=lambda msg: _echo(msg, err=True))
    if json_out:
        _echo(json.dumps(result.as_dict(), indent=2, default=str))
        return
    for art in result.artifacts:
        _echo(f"{art.path}  {art.precision}  {art.size_bytes / 1e6:.2f} MB  {art.seconds:.1f} s")
        for note in art.notes:
            _echo(f"  {note}")
    for note in result.notes:
        _echo(note)


@app.command(
    "info", help="Show a model's spec, inputs/outputs, precision and provenance (.onnx, engine or .pt checkpoint)."
)
def info_cmd(
    path: Annotated[Path, typer.Argument(help=".onnx file, engine, or engine sidecar .json")],
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    from edgedet.convert.info import describe

    if path.suffix.lower() in (".pt", ".pth"):  # a checkpoint: read, not converted
        from edgedet.convert.adapters.checkpoint_info import describe_checkpoint

        info = describe_checkpoint(path)
    else:
        info = describe(path)
    if json_out:
        _echo(json.dumps(info, indent=2, default=str))
        return
    for key, value in info.items():
        if isinstance(value, dict):
            _echo(f"{key}:")
            for k, v in value.items():
                _echo(f"  {k}: {v}")
        elif isinstance(value, list):
            _echo(f"{key}:")
            for v in value:
                _echo(f"  {v}")
        else:
            _echo(f"{key}: {value}")


# --- bench ------------------------------------------------------------------------------------------------------

_BENCH_HELP = """Latency per stage, measured side by side: engines (interleaved rounds, warm-up discarded) or the whole
pipeline that `run` executes (glass-to-glass, FPS, CPU%/RSS, Jetson power where available).

Examples:

  edgedet bench model.onnx model.int8.onnx --imgsz 640 --runs 300 --warmup 30

  edgedet bench model.onnx --images calib/ --json bench.json --plot bench.png

  edgedet bench --pipeline --model model.int8.onnx --source flight.mp4 --target-fps 30 --json bench.json --plot bench.png
"""


def _console(err: bool = False) -> Any:
    from rich.console import Console

    # Piped output (CI logs, tests) gets a wide fixed width instead of Rich's 80-column default.
    probe = Console(stderr=err)
    return Console(stderr=err, width=None if probe.is_terminal else 150, highlight=False)


class _ProgressBar:
    """A rich.progress bar on stderr driven by (done, total) callbacks; total 0 = unknown length."""

    def __init__(self, description: str) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self._progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=_console(err=True),
            transient=True,
        )
        self._task = self._progress.add_task(description, total=None)

    def __enter__(self) -> _ProgressBar:
        self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._progress.stop()

    def __call__(self, done: int, total: int) -> None:
        self._progress.update(self._task, completed=done, total=total or None)


@app.command("bench", help=_BENCH_HELP)
def bench_cmd(
    models: Annotated[
        list[str] | None, typer.Argument(help="Models to time side by side (.onnx; .engine with TensorRT).")
    ] = None,
    pipeline: Annotated[
        bool, typer.Option("--pipeline", help="Time the whole `run` pipeline on --source instead.")
    ] = False,
    model: Annotated[str | None, typer.Option("--model", "-m", help="Pipeline: the model.")] = None,
    source: Annotated[
        str | None, typer.Option("--source", "-s", help="Pipeline: the input (as for run).")
    ] = None,
    imgsz: Annotated[
        str | None, typer.Option(help="Engine: synthetic frame size 640 or 384,640 (default: model input).")
    ] = None,
    runs: Annotated[int | None, typer.Option(help="Engine: timed rounds (default 300).")] = None,
    warmup: Annotated[
        int | None, typer.Option(help="Rounds (engine) or frames (pipeline) discarded first (default 30).")
    ] = None,
    images: Annotated[
        str | None, typer.Option(help="Engine: real images folder instead of synthetic.")
    ] = None,
    backend: Annotated[
        str | None, typer.Option(help="onnxruntime | tensorrt (default: from the file).")
    ] = None,
    device: Annotated[str | None, typer.Option(help="cpu | cuda | tensorrt (ONNX Runtime provider)")] = None,
    threads: Annotated[int | None, typer.Option(help="CPU inference threads (0 = library default).")] = None,
    detect_every: Annotated[int | None, typer.Option(help="Pipeline: detector on every N-th frame.")] = None,
    target_fps: Annotated[
        float | None, typer.Option(help="Pipeline: skip detector runs to hold this FPS.")
    ] = None,
    track: Annotated[bool | None, typer.Option("--track/--no-track", help="Pipeline: SORT tracking.")] = None,
    realtime: Annotated[
        bool | None, typer.Option("--realtime", help="Pipeline: pace files to their rate.")
    ] = None,
    max_frames: Annotated[int | None, typer.Option(help="Pipeline: stop after this many frames.")] = None,
    config: Annotated[
        Path | None, typer.Option("--config", help="YAML file with the same option names.")
    ] = None,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write the report as JSON.")] = None,
    plot: Annotated[
        Path | None, typer.Option("--plot", help="Write latency CDF + timeline PNG (matplotlib).")
    ] = None,
) -> None:
    from edgedet.bench import bench_engines, bench_pipeline, resolve_imgsz
    from edgedet.bench_report import plot_engine_bench, plot_pipeline_bench, rich_table, write_json
    from edgedet.config import BenchConfig, build_config

    cfg = build_config(
        BenchConfig,
        config,
        models=tuple(models) if models else None,
        pipeline=pipeline or None,
        model=model,
        source=source,
        imgsz=resolve_imgsz(imgsz),
        runs=runs,
        warmup=warmup,
        images=images,
        backend=backend,
        device=device,
        threads=threads,
        detect_every=detect_every,
        target_fps=target_fps,
        track=track,
        realtime=realtime,
        max_frames=max_frames,
    ).validate()
    if plot is not None:
        from edgedet._optional import require

        require("matplotlib", "--plot")  # fail before a long run, not after it
    out = _console()
    if not cfg.pipeline:
        with _ProgressBar("bench (interleaved rounds)") as bar:
            report = bench_engines(cfg, progress=bar)
        rows = []
        for e in report["engines"]:
            lat = e["latency_ms"]
            rows.append(
                [
                    e["model"],
                    "x".join(map(str, e["input_hw"])),
                    e["precision"],
                    lat["infer"]["p50_ms"],
                    lat["infer"]["p90_ms"],
                    lat["infer"]["p99_ms"],
                    lat["infer"]["max_ms"],
                    lat["e2e"]["p50_ms"],
                    e["throughput_ips"],
                    e["ratio_p50_vs_first"],
                    e["ratio_throughput_vs_first"],
                ]
            )
        out.print(
            rich_table(
                f"engine latency (ms), {cfg.runs} interleaved rounds after {cfg.warmup} warm-up; {report['inputs']}",
                [
                    "model",
                    "input",
                    "precision",
                    "p50",
                    "p90",
                    "p99",
                    "max",
                    "e2e p50",
                    "infer/s",
                    "x p50",
                    "x infer/s",
                ],
                rows,
            )
        )
        out.print(
            "x = ratio to the first model (p50 < 1 and infer/s > 1: faster); e2e = preprocess + infer + NMS"
        )
        if plot is not None:
            plot_engine_bench(report["samples_ms"], plot, "inference latency CDF (interleaved, post warm-up)")
    else:
        with _ProgressBar("bench pipeline (frames)") as bar:
            report = bench_pipeline(cfg, progress=bar)
        ov = report["overall"]
        shares = report["shares"]
        rows = [
            [name, s["count"], s["mean_ms"], s["p50_ms"], s["p90_ms"], s["p99_ms"], s["max_ms"],
             f"{100 * shares[name]:.1f}%" if name in shares else ""]
            for name, s in report["stages"].items()
        ]  # fmt: skip
        out.print(
            rich_table(
                f"pipeline latency (ms): {report['backend']} on {cfg.source}, {ov['frames']} frames after "
                f"{ov['warmup_frames']} warm-up",
                ["stage", "count", "mean", "p50", "p90", "p99", "max", "share"],
                rows,
            )
        )
        out.print(
            f"{ov['fps']} FPS; detector runs {ov['detector_runs']}, track-only {ov['track_only_frames']}, "
            f"dropped {ov['dropped_frames']}; glass to glass (from {ov['glass_to_glass_from']}) "
            f"p50 {ov['glass_to_glass_p50_ms']:.1f} ms, p99 {ov['glass_to_glass_p99_ms']:.1f} ms"
        )
        out.print(
            f"dominant stage: {ov['dominant_stage']} ({100 * ov['infer_share']:.0f}% of stage time is infer); "
            f"everything but infer = {100 * ov['overhead_vs_infer']:.0f}% of infer"
        )
        out.print(
            f"process CPU {ov['cpu_percent_mean']}% mean, RSS max {ov['rss_mb_max']} MB; power "
            f"{ov['power_w_mean']}, energy/frame {ov['energy_j_per_frame']}, temperatures "
            f"{ov['temperature_c_max']}, power mode {ov['power_mode']}"
        )
        if plot is not None:
            plot_pipeline_bench(report, plot)
    if json_out is not None:
        write_json(report, json_out)
        out.print(f"wrote {json_out}")
    if plot is not None:
        out.print(f"wrote {plot}")


# --- eval -------------------------------------------------------------------------------------------------------

eval_app = typer.Typer(
    no_args_is_help=True,
    rich_markup_mode=None,
    help="Accuracy: detection mAP (eval det) and tracking HOTA/MOTA/IDF1 (eval mot), through pycocotools/TrackEval.",
)
app.add_typer(eval_app, name="eval")

_EVAL_DET_HELP = """COCO mAP50-95 / mAP50 of a model on labelled images (YOLO-txt folder or yaml, or COCO json), with latency.

Examples:

  edgedet eval det --model model.int8.onnx --data coco128/

  edgedet eval det --model model.onnx --data instances_val.json --per-class --json det.json
"""


@eval_app.command("det", help=_EVAL_DET_HELP)
def eval_det_cmd(
    model: Annotated[str, typer.Option("--model", "-m", help="The .onnx model to score.")],
    data: Annotated[str, typer.Option("--data", help="YOLO dataset folder/yaml or COCO instances json.")],
    conf: Annotated[
        float | None, typer.Option(help="Confidence threshold (default 0.001, as for mAP).")
    ] = None,
    iou: Annotated[float | None, typer.Option(help="NMS IoU threshold (default 0.6).")] = None,
    multi_label: Annotated[
        bool | None, typer.Option("--multi-label/--single-label", help="One box per class above conf.")
    ] = None,
    max_det: Annotated[int | None, typer.Option(help="Detections kept per image (default 300).")] = None,
    threads: Annotated[int | None, typer.Option(help="ONNX Runtime threads (default 2).")] = None,
    per_class: Annotated[bool, typer.Option("--per-class", help="Also print AP per class.")] = False,
    max_images: Annotated[int | None, typer.Option(help="Score only the first N images.")] = None,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write the report as JSON.")] = None,
) -> None:
    from edgedet.bench_report import rich_table, write_json
    from edgedet.config import EvalDetConfig, build_config
    from edgedet.eval.runner import eval_det

    cfg = build_config(
        EvalDetConfig,
        None,
        model=model,
        data=data,
        conf=conf,
        iou=iou,
        multi_label=multi_label,
        max_det=max_det,
        threads=threads,
        per_class=per_class,
        max_images=max_images,
    ).validate()
    with _ProgressBar("eval det (images)") as bar:
        report = eval_det(cfg, progress=bar)
    ov = report["overall"]
    out = _console()
    out.print(
        rich_table(
            f"detection accuracy: {Path(model).name} on {data} (pycocotools)",
            ["images", "objects", "detections", "mAP50-95", "mAP50", "model ms p50", "e2e ms p50"],
            [[ov["images"], ov["objects"], ov["detections"], f"{ov['mAP50_95']:.3f}", f"{ov['mAP50']:.3f}",
              ov["model_ms_p50"], ov["e2e_ms_p50"]]],
        )
    )  # fmt: skip
    if per_class and report["per_class"]:
        out.print(
            rich_table(
                "per class",
                ["class", "mAP50-95", "mAP50"],
                [[n, f"{v['mAP50_95']:.3f}", f"{v['mAP50']:.3f}"] for n, v in report["per_class"].items()],
            )
        )
    if json_out is not None:
        write_json(report, json_out)
        out.print(f"wrote {json_out}")


_EVAL_MOT_HELP = """HOTA / MOTA / IDF1 / ID switches of the tracker on MOTChallenge folders (det.txt + gt.txt + seqinfo.ini),
per sequence and overall, through TrackEval (cross-checked with py-motmetrics).

--realtime replays each sequence at its frame rate with a detector that takes --latency-ms (or the latency of
--model measured here): frames that arrive while it is busy are track-only, as in a live run.

Examples:

  edgedet eval mot --data mot/ --detect-every 2

  edgedet eval mot --data mot/ --realtime --latency-ms 45

  edgedet eval mot --data mot/ --realtime --latency-ms 120 --target-fps 30
"""


@eval_app.command("mot", help=_EVAL_MOT_HELP)
def eval_mot_cmd(
    data: Annotated[str, typer.Option("--data", help="Folder of MOTChallenge sequence folders (or one).")],
    sequences: Annotated[
        str | None,
        typer.Option(help="Only these sequences, comma separated, e.g. MOT17-02-FRCNN,TUD-Stadtmitte."),
    ] = None,
    benchmark: Annotated[
        str | None, typer.Option(help="auto | MOT15 | MOT16 | MOT17 | MOT20 (auto: from the gt layout).")
    ] = None,
    detect_every: Annotated[int | None, typer.Option(help="Use the detector on every N-th frame.")] = None,
    target_fps: Annotated[
        float | None, typer.Option(help="--realtime: skip detector runs to hold this FPS.")
    ] = None,
    track_max_age_s: TrackMaxAgeOpt = None,
    track_min_hits: TrackMinHitsOpt = None,
    track_iou: TrackIouOpt = None,
    track_score: TrackScoreOpt = None,
    second_association: SecondAssociationOpt = None,
    realtime: Annotated[
        bool, typer.Option("--realtime", help="Replay at the frame rate with a detector that takes time.")
    ] = False,
    latency_ms: Annotated[
        float | None, typer.Option(help="--realtime: detector latency per frame (ms).")
    ] = None,
    model: Annotated[
        str | None,
        typer.Option("--model", "-m", help="--realtime: measure this model's latency here instead."),
    ] = None,
    missed: Annotated[
        str | None,
        typer.Option(
            help="--realtime: frames passed over while busy: drop (default, as run does live) | predict."
        ),
    ] = None,
    track_ms: Annotated[
        float | None, typer.Option(help="--realtime: cost of a track-only frame (ms, 1).")
    ] = None,
    no_crosscheck: Annotated[
        bool, typer.Option("--no-crosscheck", help="Skip the py-motmetrics cross-check.")
    ] = False,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write the report as JSON.")] = None,
) -> None:
    from edgedet.bench_report import rich_table, write_json
    from edgedet.config import EvalMotConfig, build_config
    from edgedet.eval.runner import MOT_COLUMNS, eval_mot

    cfg = build_config(
        EvalMotConfig,
        None,
        data=data,
        sequences=tuple(s.strip() for s in sequences.split(",") if s.strip()) if sequences else None,
        benchmark=benchmark,
        detect_every=detect_every,
        target_fps=target_fps,
        track_max_age_s=track_max_age_s,
        track_min_hits=track_min_hits,
        track_iou=track_iou,
        track_score=track_score,
        second_association=second_association,
        realtime=realtime,
        latency_ms=latency_ms,
        model=model,
        missed=missed,
        track_ms=track_ms,
        crosscheck=not no_crosscheck,
    ).validate()
    with _ProgressBar("eval mot (sequences)") as bar:
        report = eval_mot(cfg, progress=bar)
    rt = report["realtime"]
    extra = ["det frames", "FPS", "age p50"] if rt else []
    rows = []
    for name, s in [*report["sequences"].items(), ("OVERALL", report["overall"])]:
        row = [name, *(s[k] for k in MOT_COLUMNS)]
        if rt:
            r = s.get("realtime")
            row += (
                [f"{r['detector_frames']}/{r['frames']}", r["achieved_fps"], r["age_ms_p50"]]
                if r
                else [f"{s['detector_frames']}/{s['frames']}", "", ""]
            )
        rows.append(row)
    if rt:
        how = f"--target-fps {rt['target_fps']}" if rt["target_fps"] else f"detect every {rt['detect_every']}"
        title = (
            f"tracking, live replay: detector {rt['latency_ms']} ms ({rt['latency_source']}), {how}, "
            f"missed frames: {rt['missed']}"
        )
    else:
        title = f"tracking, offline replay: detect every {cfg.detect_every}"
    out = _console()
    out.print(rich_table(title + " (TrackEval; % except counts)", ["sequence", *MOT_COLUMNS, *extra], rows))
    cc = report.get("crosscheck")
    if cc:
        d = cc["motmetrics"]["max_abs_diff"]
        out.print(
            f"py-motmetrics cross-check: max |diff| MOTA {d['MOTA']:.3f}, IDF1 {d['IDF1']:.3f}, IDSW {d['IDSW']:.0f}"
        )
    if json_out is not None:
        write_json(report, json_out)
        out.print(f"wrote {json_out}")


# --- errors and entry points -------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    """Run the CLI with `argv` (without the program name); return the exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    _state["debug"] = "--debug" in args
    try:
        rv = app(args=args, prog_name="edgedet", standalone_mode=False)
        return int(rv) if isinstance(rv, int) else 0
    except EdgedetError as exc:
        if _state["debug"]:
            traceback.print_exc()
        _echo(f"error: {exc}", err=True)
        return exc.exit_code
    except typer.Exit as exc:
        return int(exc.exit_code)
    except typer.Abort:
        _echo("aborted", err=True)
        return 130
    except KeyboardInterrupt:
        _echo("interrupted", err=True)
        return 130
    except Exception as exc:
        usage: Any = exc
        if callable(getattr(usage, "show", None)) and isinstance(getattr(usage, "exit_code", None), int):
            usage.show()  # a usage error from the option parser: it prints usage and the problem
            return int(usage.exit_code)
        # a bug, not bad input: say so and how to report it
        if _state["debug"]:
            traceback.print_exc()
        else:
            _echo(
                f"internal error: {type(exc).__name__}: {exc} (run again with --debug for the traceback)",
                err=True,
            )
        return 70


def run_cli() -> None:
    sys.exit(main())
