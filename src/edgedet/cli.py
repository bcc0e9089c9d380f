"""The command line: a thin translator from flags to config objects. Only this module prints.

`main(argv) -> int` is the entry point for tests; `run_cli()` is the console script.
"""

from __future__ import annotations

import json
import sys
import traceback
from pathlib import Path
from typing import Annotated, Any

import typer

from edgedet.cli_options import with_options
from edgedet.config import (
    BenchConfig,
    EvalDetConfig,
    EvalGeoConfig,
    EvalMotConfig,
    RunConfig,
    TrackCommandConfig,
    build_config,
    options_of,
)
from edgedet.convert.api import ConvertConfig
from edgedet.errors import OUTPUTS_INCOMPLETE_EXIT_CODE, ConfigError, EdgedetError

app = typer.Typer(
    name="edgedet",
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    help="Run a PyTorch object detector on a live camera in real time: convert, run, bench, eval.",
)

_state: dict[str, Any] = {"debug": False}


def _echo(text: str = "", err: bool = False) -> None:
    typer.echo(text, err=err)


@app.callback()
def _root(
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks and debug logs.")] = False,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Show info logs (reconnects, model loading).")
    ] = False,
) -> None:
    from edgedet.logs import setup_logging

    _state["debug"] = debug
    setup_logging(verbose=verbose, debug=debug)


# --- run --------------------------------------------------------------------------------------------------------

_RUN_HELP = """Capture -> detector -> tracker -> outputs, skipping detector runs to hold a frame rate.

Examples:

  edgedet run --source demo

  edgedet run --camera 0 --model yolov5n.onnx --target-fps 30 --save-video out.mp4 --save-mot tracks.txt

  edgedet run --source flight.mp4 --model model.onnx --detect-every 3

  edgedet run --source images/ --model model.onnx --no-track --conf 0.001 --save-coco results.json

Exit codes: 0 done, every output complete; 74 the run finished but an output lost frames (disk full, device
gone; the summary lists it as INCOMPLETE, never as written); 130/143 stopped by SIGINT/SIGTERM; 1 error; 2 bad
options.
"""


@app.command("run", help=_RUN_HELP)
@with_options(RunConfig)
def run_cmd(
    source: Annotated[
        list[str] | None,
        typer.Option("--source", "-s", help=options_of(RunConfig)["source"][0].help),
    ] = None,
    camera: Annotated[
        str | None, typer.Option("--camera", help="Camera index (0) or device (/dev/video0).")
    ] = None,
    config: Annotated[
        Path | None, typer.Option("--config", help="YAML file with the same option names.")
    ] = None,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write the run summary as JSON.")] = None,
    **options: Any,
) -> None:
    from edgedet.errors import ConfigError
    from edgedet.multistream import is_multistream
    from edgedet.pipeline import build_pipeline

    if source and camera is not None:
        raise ConfigError("--source and --camera both name the input: pass only one")
    if camera is not None:
        source = [camera]
    cfg = build_config(RunConfig, config, **options, source=source[0] if source else None)
    if is_multistream(source or [cfg.source]):
        _run_streams(cfg, source or [cfg.source], json_out)
        return
    pipeline = build_pipeline(cfg)
    tracking = "no tracking"
    if cfg.track:
        tracking = cfg.tracker.upper() if cfg.tracker == "sort" else cfg.tracker
        tracking += " + camera-motion compensation" if pipeline.cmc is not None else ""
    runtime = "stages overlapped" if pipeline.overlap else "one frame at a time"
    _echo(
        f"edgedet run: {cfg.source} -> {pipeline.detector.description} -> {tracking}; {runtime}; Ctrl-C to stop"
    )
    summary = pipeline.run()
    _echo(summary.format())
    if json_out is not None:
        json_out.write_text(json.dumps(summary.as_dict(), indent=2) + "\n")
    if summary.incomplete_outputs:  # before the signal codes: lost data is what a script must notice
        raise typer.Exit(OUTPUTS_INCOMPLETE_EXIT_CODE)
    if summary.stopped_by in ("SIGINT", "SIGTERM"):
        raise typer.Exit(130 if summary.stopped_by == "SIGINT" else 143)


def _run_streams(cfg: RunConfig, sources: list[str], json_out: Path | None) -> None:
    """`run` with several sources: one model, frames batched across streams (edgedet.multistream)."""
    from edgedet.multistream import build_multistream, stream_names, stream_uris

    uris = stream_uris(sources)
    runner = build_multistream(
        cfg,
        uris,
        batch_window_s=cfg.batch_window_ms / 1e3 if cfg.batch_window_ms is not None else None,
        max_batch=cfg.max_batch,
    )
    listing = ", ".join(f"{n}={u}" for n, u in zip(stream_names(uris), uris, strict=True))
    _echo(f"edgedet run: {len(uris)} streams ({listing}) -> {runner.detector.description}; Ctrl-C to stop")
    summary = runner.run()
    _echo(summary.format())
    if json_out is not None:
        json_out.write_text(json.dumps(summary.as_dict(), indent=2) + "\n")
    if summary.incomplete_outputs:
        raise typer.Exit(OUTPUTS_INCOMPLETE_EXIT_CODE)
    if summary.stopped_by in ("SIGINT", "SIGTERM"):
        raise typer.Exit(130 if summary.stopped_by == "SIGINT" else 143)
    if len(summary.failed_streams) == len(summary.streams):
        raise typer.Exit(1)  # nothing ran: every stream failed (each is named above)


# --- track ------------------------------------------------------------------------------------------------------


@app.command("track", help="Run the tracker on a MOTChallenge det.txt and write MOTChallenge tracks.")
@with_options(TrackCommandConfig)
def track_cmd(
    dets: Annotated[Path, typer.Option("--dets", help="MOTChallenge det.txt")],
    seqinfo: Annotated[Path, typer.Option("--seqinfo", help="seqinfo.ini (frame rate, length, size)")],
    out: Annotated[Path, typer.Option("--out", help="Output tracks txt")],
    **options: Any,
) -> None:
    from edgedet.motchallenge import write_mot
    from edgedet.tracking.replay import track_sequence

    cfg = build_config(TrackCommandConfig, None, **options).validate()
    rows = track_sequence(
        dets, seqinfo, cfg.tracker_config, detect_every=cfg.detect_every, tracker=cfg.tracker
    )
    write_mot(rows, out)
    n_ids = len(set(rows.track_id.tolist())) if len(rows) else 0
    _echo(f"wrote {out}: {len(rows)} rows, {n_ids} tracks (detect every {cfg.detect_every})")


# --- convert / info ---------------------------------------------------------------------------------------------

_CONVERT_HELP = """PyTorch detector -> ONNX (checked against PyTorch) -> FP16 / INT8 ONNX -> TensorRT engine.

Examples:

  edgedet convert yolov5n.pt --imgsz 640

  edgedet convert yolov5n.pt --imgsz 640 --fp16 --int8 --calib images/

  edgedet convert mypkg.models:build --weights det.pth --format yolov8 --names classes.txt --imgsz 512

  edgedet convert model.onnx --int8 --calib images/ --labels labels/
"""


@app.command("convert", help=_CONVERT_HELP)
@with_options(ConvertConfig)
def convert_cmd(
    source: Annotated[str, typer.Argument(help=".pt checkpoint, .onnx file, or package.module:factory")],
    **options: Any,
) -> None:
    from edgedet.convert import convert

    cfg = build_config(ConvertConfig, None, source=source, **options)
    json_out = cfg.json
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
    "info",
    help="Show a model's spec, inputs/outputs, precision and provenance (.onnx, engine or .pt checkpoint).",
)
def info_cmd(
    path: Annotated[Path, typer.Argument(help=".onnx file, engine, engine sidecar .json, or .pt checkpoint")],
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    from edgedet.convert.info import describe, format_summary

    if path.suffix.lower() in (".pt", ".pth"):  # a checkpoint: read, not converted
        from edgedet.convert.adapters import checkpoint_info as ckpt

        info, summary = ckpt.describe_checkpoint(path), ckpt.format_checkpoint_summary
    else:
        info, summary = describe(path), format_summary
    if json_out:
        _echo(json.dumps(info, indent=2, default=str))
        return
    _echo("\n".join(summary(info)))


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
@with_options(BenchConfig)
def bench_cmd(
    models: Annotated[
        list[str] | None, typer.Argument(help="Models to time side by side (.onnx; .engine with TensorRT).")
    ] = None,
    config: Annotated[
        Path | None, typer.Option("--config", help="YAML file with the same option names.")
    ] = None,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write the report as JSON.")] = None,
    plot: Annotated[
        Path | None, typer.Option("--plot", help="Write latency CDF + timeline PNG (matplotlib).")
    ] = None,
    **options: Any,
) -> None:
    from edgedet.bench import bench_engines, bench_pipeline
    from edgedet.bench_report import plot_engine_bench, plot_pipeline_bench, write_json
    from edgedet.report import bench_engines_text, bench_pipeline_text

    cfg = build_config(BenchConfig, config, models=tuple(models) if models else None, **options).validate()
    if plot is not None:
        from edgedet._optional import require_all

        require_all("bench --plot")  # fail before a long run, not after it
    if not cfg.pipeline:
        with _ProgressBar("bench (interleaved rounds)") as bar:
            report = bench_engines(cfg, progress=bar)
        _print(bench_engines_text(report, cfg.runs, cfg.warmup))
        if plot is not None:
            plot_engine_bench(report["samples_ms"], plot, "inference latency CDF (interleaved, post warm-up)")
    else:
        with _ProgressBar("bench pipeline (frames)") as bar:
            report = bench_pipeline(cfg, progress=bar)
        _print(bench_pipeline_text(report, cfg.source))
        if plot is not None:
            plot_pipeline_bench(report, plot)
    if json_out is not None:
        write_json(report, json_out)
        _print([f"wrote {json_out}"])
    if plot is not None:
        _print([f"wrote {plot}"])


def _print(text: list[Any]) -> None:
    """Render a report's tables (edgedet.report.Table) and lines on stdout."""
    from edgedet.bench_report import rich_table
    from edgedet.report import Table

    out = _console()
    for item in text:
        out.print(rich_table(item.title, item.columns, item.rows) if isinstance(item, Table) else item)


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
@with_options(EvalDetConfig)
def eval_det_cmd(
    json_out: Annotated[Path | None, typer.Option("--json", help="Write the report as JSON.")] = None,
    **options: Any,
) -> None:
    from edgedet.bench_report import write_json
    from edgedet.eval.runner import eval_det
    from edgedet.report import eval_det_text

    cfg = build_config(EvalDetConfig, None, **options).validate()
    if cfg.model is None:
        raise ConfigError("eval det needs --model: the model file to score")
    with _ProgressBar("eval det (images)") as bar:
        report = eval_det(cfg, progress=bar)
    _print(eval_det_text(report, Path(cfg.model).name, cfg.data, cfg.per_class))
    if json_out is not None:
        write_json(report, json_out)
        _print([f"wrote {json_out}"])


_EVAL_MOT_HELP = """HOTA / MOTA / IDF1 / ID switches of the tracker on MOTChallenge folders (det.txt + gt.txt + seqinfo.ini),
per sequence and overall, through TrackEval (cross-checked with py-motmetrics).

--realtime replays each sequence at its frame rate with a detector that takes --latency-ms (or the latency of
--model measured here): frames that arrive while it is busy are track-only, as in a live run.

Examples:

  edgedet eval mot --data mot/ --detect-every 2

  edgedet eval mot --data mot/ --realtime --latency-ms 45

  edgedet eval mot --data mot/ --realtime --latency-ms 120 --target-fps 30
"""


_EVAL_GEO_HELP = """Ground positions of tracks against a demo scene's exact truth (gt/gt_geo.csv): tracks matched to
objects by image IoU per frame; error in metres (median, p90, max), coverage, and how often the error is within
the reported sigma. Without --pred the scene is tracked here with its camera.yaml and telemetry.

Examples:

  edgedet eval geo --data scenes/test/edgedet-test-0-000

  edgedet eval geo --data scenes/test/edgedet-test-0-000 --telemetry telemetry_noisy.jsonl --telemetry-latency-ms 50

  edgedet eval geo --data scenes/test/edgedet-test-0-000 --pred run.jsonl
"""


@eval_app.command("geo", help=_EVAL_GEO_HELP)
@with_options(EvalGeoConfig)
def eval_geo_cmd(
    json_out: Annotated[Path | None, typer.Option("--json", help="Write the report as JSON.")] = None,
    **options: Any,
) -> None:
    from edgedet.bench_report import write_json
    from edgedet.eval.geo import eval_geo, summary_lines

    cfg = build_config(EvalGeoConfig, None, **options).validate()
    run = dict(
        model=cfg.model, telemetry=cfg.telemetry, latency_ms=cfg.telemetry_latency_ms, anchor=cfg.geo_anchor,
        detect_every=cfg.detect_every, cmc=cfg.cmc, threads=cfg.threads,
    )  # fmt: skip
    report = eval_geo(cfg.data, cfg.pred, iou=cfg.iou, **({} if cfg.pred else run))
    _print(summary_lines(report))
    if json_out is not None:
        write_json(report, json_out)
        _print([f"wrote {json_out}"])


@eval_app.command("mot", help=_EVAL_MOT_HELP)
@with_options(EvalMotConfig)
def eval_mot_cmd(
    json_out: Annotated[Path | None, typer.Option("--json", help="Write the report as JSON.")] = None,
    **options: Any,
) -> None:
    from edgedet.bench_report import write_json
    from edgedet.eval.runner import eval_mot
    from edgedet.report import eval_mot_text

    cfg = build_config(EvalMotConfig, None, **options).validate()
    with _ProgressBar("eval mot (sequences)") as bar:
        report = eval_mot(cfg, progress=bar)
    _print(eval_mot_text(report, cfg.detect_every))
    if json_out is not None:
        write_json(report, json_out)
        _print([f"wrote {json_out}"])


# --- export -----------------------------------------------------------------------------------------------------

export_app = typer.Typer(help="Package a model for a serving system.", no_args_is_help=True)
app.add_typer(export_app, name="export")


@export_app.command(
    "triton",
    help="Write a Triton Inference Server model repository (config.pbtxt validated with Triton's schema and "
    "checked against the model's inputs and outputs). Serve it, then run with --backend triton "
    "--model grpc://HOST:8001/NAME.",
)
def export_triton_cmd(
    model: Annotated[Path, typer.Argument(help="The .onnx model (edgedet convert; --dynamic for batching).")],
    repo: Annotated[Path, typer.Option("--repo", help="Model repository folder (created).")],
    name: Annotated[str | None, typer.Option(help="Model name in Triton (default: the file's stem).")] = None,
    max_batch_size: Annotated[int, typer.Option(help="Dynamic-batch models: the largest batch.")] = 8,
    max_queue_delay_us: Annotated[
        int, typer.Option(help="Dynamic batching: microseconds to wait to fill a batch.")
    ] = 2000,
    instances: Annotated[int, typer.Option(help="Model instances.")] = 1,
    kind: Annotated[str, typer.Option(help="KIND_GPU | KIND_CPU")] = "KIND_GPU",
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace an existing model folder.")] = False,
    nms: Annotated[
        bool,
        typer.Option("--nms", help="Decode + NMS on the server: only detections travel (batch-1 models)."),
    ] = False,
    conf: Annotated[float, typer.Option(help="--nms: confidence threshold.")] = 0.25,
    iou: Annotated[float, typer.Option(help="--nms: NMS IoU threshold.")] = 0.45,
    max_det: Annotated[int, typer.Option(help="--nms: most detections per frame.")] = 300,
) -> None:
    from edgedet.convert.triton import describe, export_triton

    export = export_triton(
        model, repo, name=name, max_batch_size=max_batch_size, max_queue_delay_us=max_queue_delay_us,
        instances=instances, kind=kind, overwrite=overwrite, nms=nms, conf=conf, iou=iou, max_det=max_det,
    )  # fmt: skip
    _echo(describe(export))


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
