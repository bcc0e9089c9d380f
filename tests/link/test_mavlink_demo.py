"""The whole loop on the demo scene: the real detector and tracker, a pymavlink ground station that selects a
known truck with TRACK_POINT, and CAMERA_TRACKING_IMAGE_STATUS checked against the scene's ground truth until
the truck leaves the view; STOP_TRACKING ends the messages. The annotated video goes to a GStreamer receiver
at the same time. With the demo's telemetry (ground positions), CAMERA_TRACKING_GEO_STATUS follows the truck on
the map too; without it, none is sent."""

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
from edgedet.pipeline import Pipeline, build_pipeline
from edgedet.sources.base import SourceStats
from edgedet.types import Frame, FrameResult

pytest.importorskip("pymavlink", reason="pymavlink not installed: pip install 'edgedet[link]'")
from tests.link.gcs import GroundStation

# Demo flight seed 0, split "demo": track 248 (a truck, ~61x26 px) is in view and scored from frame 0 to 185.
TRUCK = 248
FRAMES = 300
SELECT_AT = 30  # frames, so its track is confirmed


class GtSource:
    """The demo scene as a pipeline source that keeps each frame's ground truth (pacing ~30 FPS): `gt` (image
    boxes) and `where` (each object's true ground east/north, metres from the scene's home)."""

    is_live = False

    def __init__(self, frames: int) -> None:
        from edgedet.scenes import DemoScene

        self.scene = DemoScene(seed=0, frames=frames, split="demo")
        self.fps = self.scene.config.fps
        self.gt: dict[int, np.ndarray] = {}
        self.where: dict[int, dict[int, tuple[float, float]]] = {}

    def __iter__(self) -> Iterator[Frame]:
        t0 = time.monotonic()
        for i, (image, gt, where) in enumerate(self.scene.iter_truth()):
            self.gt[i], self.where[i] = gt, where
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


def demo_pipeline(frames: int, telemetry: str | None = None) -> tuple[Pipeline, GtSource]:
    """The demo's pipeline (its settings without output files, the detector on every frame: no target-FPS
    skipping) over a GtSource of the same flight; `telemetry` "demo" adds the flight's exact pose (ground
    positions). Its sinks are the caller's to set."""
    config = dataclasses.replace(
        apply_demo_defaults(RunConfig(source=f"demo:frames={frames}", telemetry=telemetry), outputs=False),
        target_fps=None,
    )
    pipeline = build_pipeline(config)
    pipeline.source.close()
    source = GtSource(frames)
    pipeline.source = source
    return pipeline, source


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
    pipeline, source = demo_pipeline(FRAMES)
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
        _, info = gcs.wait("CAMERA_INFORMATION")
        assert not info.flags & d.CAMERA_CAP_FLAGS_HAS_TRACKING_GEO_STATUS  # no --telemetry: no ground positions
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
        assert gcs.messages("CAMERA_TRACKING_GEO_STATUS") == []  # no pose source, no geo status
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


GEO_FRAMES = 120


def true_velocity(source: GtSource, frame: int, window: int = 30) -> tuple[float, float]:
    """The truck's true (north, east) ground velocity in m/s over the `window` frames up to `frame`."""
    e1, n1 = source.where[frame][TRUCK]
    e0, n0 = source.where[frame - window][TRUCK]
    dt = window / source.fps
    return (n1 - n0) / dt, (e1 - e0) / dt


@pytest.mark.slow
def test_geo_status_puts_the_selected_truck_on_the_map() -> None:
    """--telemetry demo: after TRACK_POINT on the truck, CAMERA_TRACKING_GEO_STATUS comes at the image status's
    rate with the truck's true position (3 m), the distance from the camera, its ground velocity; the camera
    announces CAMERA_CAP_FLAGS_HAS_TRACKING_GEO_STATUS."""
    from edgedet.geo.geodesy import GeoReference

    gcs_port = free_port()
    gcs = GroundStation(f"udpin:127.0.0.1:{gcs_port}")
    selector = RecordingSelector()
    camera = MavlinkCamera(MavlinkConfig(f"udpout:127.0.0.1:{gcs_port}"), selector=selector, geo=True)
    pipeline, source = demo_pipeline(GEO_FRAMES, telemetry="demo")
    pipeline.sinks = [MavlinkSink(camera.start())]
    cfg = source.scene.config
    home = GeoReference(cfg.origin_lat_deg, cfg.origin_lon_deg, 0.0)
    runner = threading.Thread(target=pipeline.run, daemon=True)
    try:
        d = gcs.d
        gcs.wait("HEARTBEAT", timeout_s=10)
        assert gcs.request_message(d.MAVLINK_MSG_ID_CAMERA_INFORMATION) == d.MAV_RESULT_ACCEPTED
        _, info = gcs.wait("CAMERA_INFORMATION")
        assert info.flags & d.CAMERA_CAP_FLAGS_HAS_TRACKING_GEO_STATUS
        runner.start()
        while not selector.observed or selector.observed[-1][1] < SELECT_AT:
            time.sleep(0.01)
            assert runner.is_alive()
        box = truck_box(source.gt[selector.observed[-1][1]])
        assert box is not None
        cx, cy = (box[0] + box[2]) / 2 / 640, (box[1] + box[3]) / 2 / 384
        t_sent, _, res = gcs.command(d.MAV_CMD_CAMERA_TRACK_POINT, cx, cy, 0.01)
        assert res == d.MAV_RESULT_ACCEPTED
        runner.join(60)
        assert not runner.is_alive()
        t_end = selector.observed[-1][0]
        geo = [(t, m) for t, m in gcs.messages("CAMERA_TRACKING_GEO_STATUS", since=t_sent) if t <= t_end]
        image = [(t, m) for t, m in gcs.messages("CAMERA_TRACKING_IMAGE_STATUS", since=t_sent) if t <= t_end]
    finally:
        if runner.is_alive():
            pipeline.request_stop()
            runner.join(10)
        camera.close()
        gcs.close()
    # ~3 s of 10 Hz status, one geo status per image status
    assert len(geo) >= 20 and abs(len(geo) - len(image)) <= 1, (len(geo), len(image))
    moving = 0
    for t, m in geo:
        frame = selector.frame_at(t)
        assert m.tracking_status == d.CAMERA_TRACKING_STATUS_FLAGS_ACTIVE
        east, north, _up = home.to_enu(m.lat / 1e7, m.lon / 1e7, 0.0)
        # the position of this frame or the one before (the status may leave just before a frame is observed)
        err = min(
            float(np.hypot(east - e, north - n))
            for e, n in (source.where[k][TRUCK] for k in (frame, frame - 1) if TRUCK in source.where.get(k, {}))
        )
        assert err < 3.0, (frame, err)
        assert 0.0 < m.h_acc < 10.0 and m.alt == 0.0  # sigma_m; the demo's ground is at the home's height 0
        assert 20.0 < m.dist < 300.0  # camera -> truck, a 30-60 m flight
        assert all(np.isnan(v) for v in (m.v_acc, m.vel_d, m.vel_acc, m.hdg_acc))
        if np.isfinite(m.vel_n) and frame >= 30:  # 0.5 s of positions after the selection
            tn, te = true_velocity(source, frame)
            assert np.hypot(m.vel_n - tn, m.vel_e - te) < 1.5, (frame, m.vel_n, m.vel_e, tn, te)
            # heading of its motion, radians clockwise from north (the truck drives at 3-8 m/s here)
            assert abs((m.hdg - np.arctan2(te, tn) + np.pi) % (2 * np.pi) - np.pi) < 0.3, (frame, m.hdg)
            moving += 1
    assert moving >= 10
