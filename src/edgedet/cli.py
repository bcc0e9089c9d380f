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
    track_max_age_s: Annotated[float | None, typer.Option(help="Seconds a lost track is kept.")] = None,
    track_min_hits: Annotated[int | None, typer.Option(help="Detections before a track is reported.")] = None,
    track_iou: Annotated[
        float | None, typer.Option(help="IoU needed to match a detection to a track.")
    ] = None,
    second_association: Annotated[
        bool | None,
        typer.Option("--second-association/--no-second-association", help="ByteTrack-style low-score pass."),
    ] = None,
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
    from edgedet.config import RunConfig, build_config
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
    cfg = build_config(
        RunConfig,
        config,
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
        second_association=second_association,
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
    pipeline = build_pipeline(cfg)
    _echo(
        f"edgedet run: {cfg.source} -> {pipeline.backend.description} -> "
        f"{'SORT' if cfg.track else 'no tracking'}; Ctrl-C to stop"
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
    min_score: Annotated[float | None, typer.Option(help="Drop detections below this score.")] = None,
    track_max_age_s: Annotated[float | None, typer.Option(help="Seconds a lost track is kept.")] = None,
    track_min_hits: Annotated[int | None, typer.Option(help="Detections before a track is reported.")] = None,
    track_iou: Annotated[float | None, typer.Option(help="IoU needed to match.")] = None,
    second_association: Annotated[
        bool | None,
        typer.Option("--second-association/--no-second-association", help="ByteTrack-style low-score pass."),
    ] = None,
) -> None:
    from dataclasses import replace

    from edgedet.tracking import TrackerConfig, replay

    overrides: dict[str, Any] = {
        "max_age_s": track_max_age_s,
        "min_hits": track_min_hits,
        "iou_threshold": track_iou,
        "second_association": second_association,
    }
    tcfg = replace(TrackerConfig(), **{k: v for k, v in overrides.items() if v is not None})
    result = replay.run_track_command(
        dets, seqinfo, out, tcfg, detect_every=detect_every, min_score=min_score
    )
    _echo(str(result))


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
        if callable(getattr(exc, "show", None)) and isinstance(getattr(exc, "exit_code", None), int):
            exc.show()  # a usage error from the option parser: it prints usage and the problem
            return int(exc.exit_code)  # type: ignore[attr-defined]
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
