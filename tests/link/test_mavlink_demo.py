"""The whole loop on the demo scene: the real detector and tracker, a pymavlink ground station that selects a
known truck with TRACK_POINT, and CAMERA_TRACKING_IMAGE_STATUS checked against the scene's ground truth until
the truck leaves the view; STOP_TRACKING ends the messages. The annotated video goes to a GStreamer receiver
at the same time."""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Iterator

import numpy as np
import pytest
from tests.link.conftest import free_port

from edgedet.config import RunConfig, apply_demo_defaults
from edgedet.link.mavlink import MavlinkCamera, MavlinkConfig, MavlinkSink, StreamDescription
from edgedet.link.stream_sink import StreamSink
from edgedet.link.target import TargetSelector
from edgedet.link.urls import parse_stream_url
from edgedet.link.video import StreamOptions
from edgedet.pipeline import build_pipeline
from edgedet.sources.base import SourceStats
from edgedet.types import Frame, FrameResult

pytest.importorskip("pymavlink", reason="pymavlink not installed: pip install 'edgedet[link]'")
from tests.link.gcs import GroundStation

# Demo flight seed 0, split "demo": track 248 (a truck, ~61x26 px) is in view and scored from frame 0 to 185.
TRUCK = 248
FRAMES = 300
SELECT_AT = 30  # frames, so its track is confirmed


class GtSource:
    """The demo scene as a pipeline source that keeps each frame's ground truth (pacing ~30 FPS)."""

    is_live = False

    def __init__(self, frames: int) -> None:
        from edgedet.scenes import DemoScene

        self.scene = DemoScene(seed=0, frames=frames, split="demo")
        self.fps = self.scene.config.fps
        self.gt: dict[int, np.ndarray] = {}

    def __iter__(self) -> Iterator[Frame]:
        t0 = time.monotonic()
        for i, (image, gt) in enumerate(self.scene):
            self.gt[i] = gt
            time.sleep(max(0.0, t0 + i / self.fps - time.monotonic()))  # the ground station needs real time
            yield Frame(image, i, i / self.fps, i)

    def stats(self) -> SourceStats:
        return SourceStats(delivered=len(self.gt), frames_read=len(self.gt))

    def close(self) -> None:
        pass


class RecordingSelector(TargetSelector):
    """Notes when each frame was observed, so a status message can be matched with the frame it describes."""

    def __init__(self) -> None:
        super().__init__(lost_after_s=0.5)
        self.observed: list[tuple[float, int]] = []

    def observe(self, result: FrameResult) -> None:
        super().observe(result)
        self.observed.append((time.monotonic(), result.frame.index))

    def frame_at(self, t: float) -> int:
        last = -1
        for tt, i in list(self.observed):
            if tt > t:
                break
            last = i
        return last


def truck_box(gt: np.ndarray) -> tuple[float, float, float, float] | None:
    from edgedet.scenes import scored

    rows = gt[(gt[:, 1] == TRUCK) & scored(gt)]
    if not len(rows):
        return None
    x, y, w, h = rows[0, 2:6]
    return float(x), float(y), float(x + w), float(y + h)


@pytest.mark.slow
def test_ground_station_selects_the_truck_and_status_follows_it_until_it_leaves(receiver) -> None:
    gcs_port, video_port = free_port(), free_port(even=True)
    rx = receiver("rtp", video_port).start()
    gcs = GroundStation(f"udpin:127.0.0.1:{gcs_port}")
    selector = RecordingSelector()
    stream_url = f"rtp://127.0.0.1:{video_port}"
    camera = MavlinkCamera(
        MavlinkConfig(f"udpout:127.0.0.1:{gcs_port}"), selector=selector,
        streams=[StreamDescription(parse_stream_url(stream_url))],
    )  # fmt: skip
    # the demo's settings without its output files, the detector on every frame (no target-FPS skipping)
    config = dataclasses.replace(
        apply_demo_defaults(RunConfig(source="demo:frames=1"), outputs=False), target_fps=None
    )
    pipeline = build_pipeline(config)
    pipeline.source.close()
    source = GtSource(FRAMES)
    pipeline.source = source
    stream = StreamSink(
        stream_url,
        StreamOptions(encoder="pyav"),
        fps=30,
        class_names=("car", "truck", "person"),
        selector=selector,
    )
    pipeline.sinks = [MavlinkSink(camera.start()), stream]
    summary: list[object] = []
    runner = threading.Thread(target=lambda: summary.append(pipeline.run()), daemon=True)
    try:
        d = gcs.d
        gcs.wait("HEARTBEAT", timeout_s=10)
        assert gcs.request_message(d.MAVLINK_MSG_ID_CAMERA_INFORMATION) == d.MAV_RESULT_ACCEPTED
        assert gcs.request_message(d.MAVLINK_MSG_ID_VIDEO_STREAM_INFORMATION) == d.MAV_RESULT_ACCEPTED
        _, vs = gcs.wait("VIDEO_STREAM_INFORMATION")
        assert vs.uri == str(video_port)
        runner.start()
        while not selector.observed or selector.observed[-1][1] < SELECT_AT:
            time.sleep(0.01)
            assert runner.is_alive()
        f = selector.observed[-1][1]
        box = truck_box(source.gt[f])
        assert box is not None
        cx, cy = (box[0] + box[2]) / 2 / 640, (box[1] + box[3]) / 2 / 384
        t_sent, _, res = gcs.command(d.MAV_CMD_CAMERA_TRACK_POINT, cx, cy, 0.01)
        assert res == d.MAV_RESULT_ACCEPTED
        selected = selector.status().track_id
        # wait for the lost report (the truck leaves the view at frame 186), then STOP_TRACKING while the run goes on
        _, _ = gcs.wait("CAMERA_TRACKING_IMAGE_STATUS", since=t_sent, timeout_s=20,
                        where=lambda m: m.tracking_status == d.CAMERA_TRACKING_STATUS_FLAGS_ERROR)  # fmt: skip
        lost = selector.status()
        assert (lost.state, lost.track_id) == ("lost", selected)  # the same track from selection to loss
        time.sleep(0.3)
        assert runner.is_alive()
        t_stop, _, res = gcs.command(d.MAV_CMD_CAMERA_STOP_TRACKING)
        assert res == d.MAV_RESULT_ACCEPTED
        time.sleep(0.2)
        t_quiet = time.monotonic()
        time.sleep(0.5)
        assert gcs.messages("CAMERA_TRACKING_IMAGE_STATUS", since=t_quiet) == []  # STOP_TRACKING ended them
        runner.join(60)
        assert not runner.is_alive()
        statuses = [
            (t, m) for t, m in gcs.messages("CAMERA_TRACKING_IMAGE_STATUS", since=t_sent) if t < t_stop
        ]
        active_checked = 0
        lost_seen_at = None
        for t, st in statuses:
            frame = selector.frame_at(t)
            if st.tracking_status & d.CAMERA_TRACKING_STATUS_FLAGS_ACTIVE:
                assert lost_seen_at is None  # never active again after lost
                # the reported box centre lies on the truck (its ground truth in this frame or the one before:
                # the status may have left just before the next frame was observed), 3 px of slack
                cx = (st.rec_top_x + st.rec_bottom_x) / 2 * 640
                cy = (st.rec_top_y + st.rec_bottom_y) / 2 * 384
                boxes = [
                    b
                    for b in (truck_box(source.gt.get(k, np.zeros((0, 9)))) for k in (frame, frame - 1))
                    if b
                ]
                if frame <= 183:
                    assert boxes, (frame, st)
                    assert any(b[0] - 3 <= cx <= b[2] + 3 and b[1] - 3 <= cy <= b[3] + 3 for b in boxes), (
                        frame,
                        cx,
                        cy,
                        boxes,
                    )
                    active_checked += 1
            elif st.tracking_status == d.CAMERA_TRACKING_STATUS_FLAGS_ERROR and lost_seen_at is None:
                lost_seen_at = frame
        assert active_checked >= 30  # ~5 s of 10 Hz status while the truck is in view
        # lost within lost_after_s (0.5 s = 15 frames) and a little scheduling slack after the truck left
        assert lost_seen_at is not None and 185 <= lost_seen_at <= 186 + 15 + 10, lost_seen_at
        # the video went out all along, and nothing was lost on the way
        st = stream.stream_stats()
        assert st.sent >= 0.9 * FRAMES and st.errors == 0
        assert rx.wait_frames(st.sent, 5)
    finally:
        if runner.is_alive():
            pipeline.request_stop()
            runner.join(10)
        camera.close()
        gcs.close()
