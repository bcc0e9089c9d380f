"""The overlapped runtime (`--overlap on`): order, bounded queues, stopping, errors, the scheduler, parity.

The frames come from real sources (a video file written here, LiveSource reading a camera stand-in) and the
detections from a real image-dependent ONNX model run by ONNX Runtime (tests/helpers/blob_model.py), so a frame
that left its place, or detections paired with the wrong frame, show in the boxes.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from tests.conftest import shared_path
from tests.helpers.blob_model import RED, blob_model

from edgedet.backends import BackendConfig
from edgedet.config import RunConfig, build_config
from edgedet.detector import Detector, open_detector
from edgedet.errors import ConfigError, ModelError
from edgedet.overlap import CAPTURE_DEPTH, PREPARED_DEPTH, STAGE_DEPTH
from edgedet.pipeline import Pipeline, build_pipeline
from edgedet.postprocess import PostprocessConfig
from edgedet.scheduler import EveryN, TargetFps
from edgedet.sinks import Sink
from edgedet.sources import SourceConfig, open_source
from edgedet.sources.live import LiveSource
from edgedet.tracking import SortTracker, TrackerConfig
from edgedet.types import FrameResult

HW = (96, 160)


def ball_x(i: int) -> int:
    """Left edge of the red square in frame i: it moves 2 px a frame, so each frame's box is its own."""
    return 10 + 2 * (i % 60)


def draw(i: int) -> np.ndarray:
    img = np.zeros((*HW, 3), np.uint8)
    x = ball_x(i)
    img[30:50, x : x + 20] = (0, 0, 255)  # BGR red, 20x20
    return img


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return blob_model(tmp_path_factory.mktemp("m") / "blob.onnx", input_hw=HW, colors=(RED,), names=("ball",))


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 60-frame lossless video of the moving square (a real file source: every frame delivered)."""
    path = tmp_path_factory.mktemp("v") / "ball.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"FFV1"), 30.0, (HW[1], HW[0]))
    assert writer.isOpened()
    for i in range(60):
        writer.write(draw(i))
    writer.release()
    return path


class Recorder(Sink):
    """Keeps (frame index, detector ran, box x1, track ids) per frame; `delay_s` makes it a slow sink."""

    def __init__(self, delay_s: float = 0.0, fail_at: int | None = None) -> None:
        super().__init__()
        self.rows: list[tuple[int, bool, float, tuple[int, ...]]] = []
        self.delay_s = delay_s
        self.fail_at = fail_at

    def _write(self, result: FrameResult) -> None:
        if self.fail_at is not None and len(self.rows) == self.fail_at:
            raise RuntimeError("sink exploded")
        d = result.detections
        x1 = float(d.xyxy[0, 0]) if len(d) else -1.0
        self.rows.append((result.frame.index, result.detector_ran, x1, tuple(int(t) for t in d.track_id)))
        if self.delay_s:
            time.sleep(self.delay_s)

    def _close(self) -> None:
        pass


def stage_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("edgedet-") and t.name.split("-")[1] in
            ("capture", "prepare", "infer", "track")]  # fmt: skip


def make(
    source: Any, model: Path, sinks: list[Sink], overlap: bool = True, scheduler: Any = None, **kw: Any
) -> Pipeline:
    det = open_detector(model, BackendConfig(threads=1), PostprocessConfig())
    return Pipeline(
        source,
        det,
        sinks,
        tracker=SortTracker(TrackerConfig(min_hits=1)),
        scheduler=scheduler or EveryN(1),
        overlap=overlap,
        **kw,
    )


@pytest.fixture(autouse=True)
def no_stage_thread_left() -> Iterator[None]:
    yield
    assert stage_threads() == []  # every run joins its stage threads before it returns or raises


# --- order and parity ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("every", [1, 3])
def test_file_frames_stay_in_order_and_tracks_equal_the_sequential_loop(model, clip, every):
    got = {}
    for overlap in (False, True):
        rec = Recorder()
        summary = make(open_source(str(clip)), model, [rec], overlap, EveryN(every)).run()
        assert summary.overlap is overlap and summary.frames == 60 and summary.dropped_frames == 0
        got[overlap] = rec.rows
    assert got[True] == got[False]
    rows = got[True]
    assert [r[0] for r in rows] == list(range(60))  # every frame, in capture order
    assert [r[1] for r in rows] == [i % every == 0 for i in range(60)]  # track-only frames where scheduled
    # detector frames: the box is the one drawn in that very frame (a 20 px square: 4*std = 23.1 px wide)
    for i, ran, x1, _ in rows:
        if ran:
            assert x1 == pytest.approx(ball_x(i) + 10 - 23.094 / 2, abs=0.05)
    assert {r[3] for r in rows} == {(1,)}  # one track all along


def test_people_clip_tracks_are_identical_with_and_without_overlap(tmp_path):
    video = shared_path("video", "people_indoor_640x368.mp4")
    model = shared_path("models", "reference_onnx", "yolov5n_320.onnx")
    out = {}
    for mode in ("off", "on"):
        cfg = build_config(
            RunConfig, None, source=str(video), model=str(model), threads=1, detect_every=2, max_frames=50,
            overlap=mode, save_mot=str(tmp_path / f"{mode}.txt"),
        )  # fmt: skip
        summary = build_pipeline(cfg).run()
        assert summary.frames == 50 and summary.detector_runs == 25 and summary.overlap is (mode == "on")
        out[mode] = (tmp_path / f"{mode}.txt").read_text()
    assert out["on"] == out["off"] and out["on"].count("\n") > 100  # three people on 50 frames


# --- bounded queues -----------------------------------------------------------------------------------------


class Camera:
    """A camera stand-in for LiveSource: a new frame of the moving square every `period_s`."""

    def __init__(self, period_s: float = 0.002) -> None:
        self.period_s = period_s
        self.i = 0

    def isOpened(self) -> bool:
        return True

    def read(self) -> tuple[bool, Any]:
        time.sleep(self.period_s)
        self.i += 1
        return True, draw(self.i)

    def release(self) -> None:
        pass


def live(max_frames: int | None = None) -> LiveSource:
    return LiveSource(
        Camera, "cam", SourceConfig(stall_timeout_s=2, give_up_s=5, max_frames=max_frames), fps=500
    )


def test_slow_sink_never_grows_a_queue_and_the_newest_frame_wins_at_capture(model):
    rec = Recorder(delay_s=0.03)
    pipe = make(live(), model, [rec], max_frames=25)
    summary = pipe.run()
    loop = pipe.overlapped
    assert loop is not None
    assert [q.high_water for q in loop.queues] == [CAPTURE_DEPTH, PREPARED_DEPTH, STAGE_DEPTH, STAGE_DEPTH]
    assert summary.frames == 25 == len(rec.rows) and summary.stopped_by == "max frames"
    # a 500 FPS camera into a 33 FPS sink: most frames are replaced in the source before capture takes one,
    # and counted there; every frame capture took reached the sink (indices count delivered frames)
    assert summary.dropped_frames == summary.source_stats.dropped > 25
    assert [r[0] for r in rec.rows] == list(range(25))
    age = summary.latency["age"]
    # the age of an output frame stays bounded by the frames in flight, it does not grow with the run
    assert age.max_ms < 25 * 30


# --- stopping -----------------------------------------------------------------------------------------------


def _signal_after(delay_s: float, *signums: int) -> threading.Timer:
    def fire() -> None:
        for s in signums:
            os.kill(os.getpid(), s)
            time.sleep(0.05)

    t = threading.Timer(delay_s, fire)
    t.start()
    return t


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_stops_capture_drains_the_frames_in_flight_and_closes_outputs(model, signum):
    rec = Recorder()
    pipe = make(open_source("synthetic:160x96@30", SourceConfig(realtime=True)), model, [rec])
    before = signal.getsignal(signal.SIGINT)  # SIG_IGN when pytest itself runs in a background job
    _signal_after(0.5, signum)
    summary = pipe.run()
    assert summary.stopped_by == signal.Signals(signum).name
    assert 3 <= summary.frames == len(rec.rows) < 200 and rec.closed
    assert [r[0] for r in rec.rows] == list(range(summary.frames))  # drained: no gap at the end
    assert signal.getsignal(signal.SIGINT) is before  # handlers restored


def test_a_second_ctrl_c_stops_at_once(model):
    rec = Recorder(delay_s=0.2)  # a sink slow enough that frames are still in flight at the 2nd Ctrl-C
    pipe = make(open_source("synthetic:160x96@30"), model, [rec])
    _signal_after(0.5, signal.SIGINT, signal.SIGINT)
    with pytest.raises(KeyboardInterrupt):
        pipe.run()
    assert rec.closed


def test_a_live_source_ends_by_max_frames_and_a_window_close(model):
    class Window(Recorder):
        def _write(self, result: FrameResult) -> None:
            super()._write(result)
            self.stop_requested = len(self.rows) == 5

    win = Window()
    summary = make(live(), model, [win]).run()
    assert summary.stopped_by == "window closed" and summary.frames == 5 and win.closed


# --- errors -------------------------------------------------------------------------------------------------


class BrokenSource:
    is_live = False
    fps = 30.0

    def __init__(self, after: int) -> None:
        self.after = after
        self.closed = False

    def __iter__(self) -> Iterator[Any]:
        from edgedet.types import Frame

        for i in range(self.after):
            yield Frame(draw(i), i, i / 30)
        raise OSError("camera unplugged")

    def stats(self) -> Any:
        from edgedet.sources.base import SourceStats

        return SourceStats()

    def close(self) -> None:
        self.closed = True


def _break(pipe: Pipeline, stage: str) -> tuple[type[BaseException], str]:
    """Make `stage` raise on the 4th frame; returns the error the run must raise."""
    calls = {"n": 0}

    def on_4th(exc: BaseException) -> None:
        calls["n"] += 1
        if calls["n"] == 4:
            raise exc

    if stage == "prepare":
        pipe.cmc = lambda _img, _t: on_4th(ValueError("cmc failed"))  # type: ignore[assignment,func-returns-value]
        return ValueError, "cmc failed"
    if stage == "infer":
        infer = pipe.detector.backend.infer

        def broken(tensor: Any) -> Any:
            on_4th(ModelError("engine lost"))
            return infer(tensor)

        pipe.detector.backend.infer = broken  # type: ignore[method-assign]
        return ModelError, "engine lost"
    if stage == "track":
        assert pipe.tracker is not None
        update = pipe.tracker.update

        def broken_update(*a: Any, **k: Any) -> Any:
            on_4th(RuntimeError("tracker bug"))
            return update(*a, **k)

        pipe.tracker.update = broken_update  # type: ignore[method-assign]
        return RuntimeError, "tracker bug"
    raise AssertionError(stage)


@pytest.mark.parametrize("stage", ["capture", "prepare", "infer", "track", "sinks"])
def test_an_error_in_any_stage_ends_the_run_with_that_error_and_closed_outputs(model, clip, tmp_path, stage):
    from edgedet.sinks.files import MotSink

    rec = Recorder(fail_at=4 if stage == "sinks" else None)
    mot = MotSink(tmp_path / "t.txt")
    source: Any = BrokenSource(after=6) if stage == "capture" else open_source(str(clip))
    pipe = make(source, model, [mot, rec])
    want: tuple[type[BaseException], str] = (
        (OSError, "camera unplugged") if stage == "capture"
        else (RuntimeError, "sink exploded") if stage == "sinks"
        else _break(pipe, stage)
    )  # fmt: skip
    with pytest.raises(want[0], match=want[1]):
        pipe.run()
    assert rec.closed and mot.closed
    # the outputs hold whole frames up to the error: the MOT file parses and its frames count up from 1
    lines = (tmp_path / "t.txt").read_text().splitlines()
    assert all(len(ln.split(",")) == 10 for ln in lines)
    frames = sorted({int(ln.split(",")[0]) for ln in lines})
    assert frames == list(range(1, len(frames) + 1)) and len(frames) <= 6
    assert [r[0] for r in rec.rows] == list(range(len(rec.rows)))


# --- the scheduler ------------------------------------------------------------------------------------------


def test_target_fps_skips_frames_and_track_only_frames_keep_their_place(model, clip):
    rec = Recorder()
    pipe = make(open_source(str(clip)), model, [rec], scheduler=TargetFps(400.0, max_interval=4))
    backend = pipe.detector.backend
    infer = backend.infer

    def slow(tensor: Any) -> Any:
        time.sleep(0.01)  # a 10 ms engine cannot hold 400 FPS: the scheduler must skip
        return infer(tensor)

    backend.infer = slow  # type: ignore[method-assign]
    summary = pipe.run()
    assert summary.frames == 60 and summary.detector_runs + summary.track_only_frames == 60
    assert 60 // 4 <= summary.detector_runs < 40 and summary.track_only_frames > 20
    assert [r[0] for r in rec.rows] == list(range(60))
    runs = [r[1] for r in rec.rows]
    assert runs[0] and all(any(runs[i : i + 4]) for i in range(0, 57))  # never more than max_interval apart
    # track-only frames carry the tracker's prediction of the same track, close to where the square is
    for i, ran, x1, ids in rec.rows:
        if not ran:
            assert ids == (1,) and abs(x1 - (ball_x(i) + 10 - 11.55)) < 4


# --- options ------------------------------------------------------------------------------------------------


def test_overlap_option(monkeypatch, model):
    import edgedet.config

    assert build_config(RunConfig, None, overlap="on").overlap_on
    assert not build_config(RunConfig, None, overlap="off").overlap_on
    monkeypatch.setattr(edgedet.config, "usable_cores", lambda: 1)
    assert not build_config(RunConfig, None).overlap_on  # auto: one core, nothing to overlap with
    monkeypatch.setattr(edgedet.config, "usable_cores", lambda: 4)
    assert build_config(RunConfig, None).overlap_on
    with pytest.raises(ConfigError, match="overlap"):
        build_config(RunConfig, None, overlap="maybe").validate()
    pipe = build_pipeline(build_config(RunConfig, None, source="synthetic", model=str(model), overlap="off"))
    assert pipe.overlap is False
    pipe.source.close()


def test_a_plugin_backend_without_submit_collect_runs_through_infer(model, clip):
    """A backend that only meets the protocol (no edgedet.backends.Backend base) still runs overlapped."""

    class Plain:
        def __init__(self, inner: Any) -> None:
            self.inner = inner
            self.spec = inner.spec
            self.model_path = inner.model_path
            self.description = "plain"

        def infer(self, tensor: Any) -> Any:
            return self.inner.infer(tensor)

        def close(self) -> None:
            self.inner.close()

        def __enter__(self) -> Any:
            return self

        def __exit__(self, *exc: Any) -> None:
            self.close()

    det = open_detector(model, BackendConfig(threads=1))
    rec = Recorder()
    pipe = Pipeline(
        open_source(str(clip)), Detector(Plain(det.backend)), [rec],  # type: ignore[arg-type]
        tracker=SortTracker(TrackerConfig(min_hits=1)), overlap=True,
    )  # fmt: skip
    assert pipe.run().frames == 60 and [r[0] for r in rec.rows] == list(range(60))


# --- two inferences in flight (TensorRT's submit/collect) -------------------------------------------------


@pytest.mark.parametrize("every", [1, 3])
def test_tensorrt_two_in_flight_keeps_the_order_and_the_tracks_of_the_sequential_loop(
    model, clip, tmp_path, every
):
    """TensorRT (the stand-in from TensorRT 10.3's real API, running the same ONNX) keeps two frames in flight;
    frames still leave in order, around track-only frames too, with the sequential ONNX Runtime run's tracks."""
    from tests.backends.test_cuda_mem import FakeCuda
    from tests.helpers.trt_standin import fake_plan, make_tensorrt

    from edgedet.backends.tensorrt import TensorRTBackend

    rec_ref = Recorder()
    make(open_source(str(clip)), model, [rec_ref], False, EveryN(every)).run()
    plan = tmp_path / "blob.plan"
    plan.write_bytes(fake_plan(str(model), "10.3.0"))
    backend = TensorRTBackend(plan, trt=make_tensorrt("10.3", "10.3.0"), cuda=FakeCuda())
    spec = open_detector(model).spec  # the plan has no sidecar: take the model's spec (stretch, names)
    outstanding, most = [0], [0]
    submit, collect = backend.submit, backend.collect

    def counting_submit(tensor: Any) -> Any:
        outstanding[0] += 1
        most[0] = max(most[0], outstanding[0])
        return submit(tensor)

    def counting_collect(handle: Any) -> Any:
        outstanding[0] -= 1
        return collect(handle)

    backend.submit = counting_submit  # type: ignore[method-assign]
    backend.collect = counting_collect  # type: ignore[method-assign]
    rec = Recorder()
    pipe = Pipeline(
        open_source(str(clip)), Detector(backend, PostprocessConfig(), spec=spec), [rec],
        tracker=SortTracker(TrackerConfig(min_hits=1)), scheduler=EveryN(every), overlap=True,
    )  # fmt: skip
    summary = pipe.run()
    assert summary.frames == 60 and summary.detector_runs == 60 // every
    # back-to-back detector frames go two at a time; a track-only frame between them is let through in order
    assert most[0] == (2 if every == 1 else 1) and outstanding[0] == 0
    assert rec.rows == rec_ref.rows
