"""Target selection (point, rectangle, lost, coasting), the highlight drawn in the video, and the link factory."""

from __future__ import annotations

import numpy as np
import pytest

from edgedet.errors import ConfigError
from edgedet.link.factory import LinkConfig, open_link_sinks, sdp_path_for
from edgedet.link.stream_sink import draw_target
from edgedet.link.target import SelectionError, TargetSelector
from edgedet.link.urls import parse_stream_url
from edgedet.types import Detections, Frame, FrameResult

HW = (400, 800)
# id: (x1, y1, x2, y2) in pixels of an 800x400 frame
TRACKS = {1: (100, 100, 200, 150), 2: (180, 120, 260, 200), 3: (600, 300, 700, 380)}


def result(index: int, ids: tuple[int, ...] = (1, 2, 3), t: float | None = None) -> FrameResult:
    xyxy = np.array([TRACKS[i] for i in ids], np.float32).reshape(-1, 4)
    dets = Detections(xyxy, np.full(len(ids), 0.8), np.zeros(len(ids)), np.array(ids))
    return FrameResult(Frame(np.zeros((*HW, 3), np.uint8), index, index / 30 if t is None else t), dets)


@pytest.mark.parametrize(
    ("x", "y", "radius", "want"),
    [
        (150, 125, 0.0, 1),  # inside 1 only
        (185, 125, 0.0, 1),  # inside 1 and 2: 1's centre (150, 125) is nearer than 2's (220, 160)
        (215, 165, 0.0, 2),  # inside 2 only
        (590, 290, 0.02, 3),  # 14 px off 3's corner, radius 16 px
        (650, 390, 0.02, 3),  # 10 px below 3
    ],
)
def test_point_selects_the_nearest_track_within_the_radius(
    x: float, y: float, radius: float, want: int
) -> None:
    sel = TargetSelector()
    sel.observe(result(0))
    st = sel.select_point(x / 800, y / 400, radius)
    assert (st.state, st.mode, st.track_id) == ("active", "point", want)
    assert st.box_norm == pytest.approx(
        tuple(v / s for v, s in zip(TRACKS[want], (800, 400, 800, 400), strict=True))
    )
    assert sel.selected_track_id == want


@pytest.mark.parametrize(
    ("x", "y", "radius", "message"),
    [
        (590, 290, 0.01, "no track within radius"),  # 14 px away, radius 8 px
        (400, 50, 0.1, "no track within radius"),
        (1.5 * 800, 10, 0.0, "not a normalised image coordinate"),
        (10, 10, 2.0, "radius 2.0 is not in 0..1"),
    ],
)
def test_point_refusals(x: float, y: float, radius: float, message: str) -> None:
    sel = TargetSelector()
    sel.observe(result(0))
    with pytest.raises(SelectionError, match=message):
        sel.select_point(x / 800, y / 400, radius)
    assert sel.status().state == "idle"


def test_nothing_to_select_before_frames_or_without_tracks() -> None:
    sel = TargetSelector()
    with pytest.raises(SelectionError, match="no frame"):
        sel.select_point(0.5, 0.5, 0.1)
    dets = Detections(np.array([[1, 1, 50, 50]], np.float32), [0.9], [0])  # tracking off: no ids
    sel.observe(FrameResult(Frame(np.zeros((*HW, 3), np.uint8), 0, 0.0), dets))
    with pytest.raises(SelectionError, match="no tracks"):
        sel.select_point(0.01, 0.01, 0.5)


def test_rectangle_selects_the_best_overlap_in_any_corner_order() -> None:
    sel = TargetSelector()
    sel.observe(result(0))
    # a box around 2 that also clips 1: IoU with 2 is larger
    st = sel.select_rectangle(270 / 800, 210 / 400, 170 / 800, 110 / 400)
    assert (st.mode, st.track_id) == ("rectangle", 2)
    with pytest.raises(SelectionError, match="no track overlaps"):
        sel.select_rectangle(0.0, 0.8, 0.1, 1.0)


def test_lost_after_its_track_ends_and_coasting_before() -> None:
    sel = TargetSelector(lost_after_s=0.5)
    sel.observe(result(0))
    sel.select_point(650 / 800, 340 / 400)
    sel.observe(result(1, ids=(1, 2)))  # 3 missing for one frame: coasting, still the target
    st = sel.status()
    assert (st.state, st.coasting, st.track_id) == ("active", True, 3) and sel.selected_track_id == 3
    sel.observe(result(2))  # back
    assert sel.status().coasting is False
    for i in range(3, 20):  # 17 frames = 0.57 s without it
        sel.observe(result(i, ids=(1, 2)))
    st = sel.status()
    assert st.state == "lost" and st.track_id == 3 and sel.selected_track_id == -1
    assert st.box_norm == pytest.approx((0.75, 0.75, 0.875, 0.95))  # where it was last seen
    sel.observe(result(30))  # the id does not come back to life: lost stays lost until a new selection
    assert sel.status().state == "lost"
    assert sel.stop().state == "idle"


def test_highlight_is_drawn_around_the_selected_track_only() -> None:
    img = np.zeros((*HW, 3), np.uint8)
    dets = result(0).detections
    draw_target(img, dets, 3)
    assert img[300 - 6 - 1 : 300 - 6 + 2, 650].max() > 0  # the frame, padded 2 line widths above the box
    assert img[:, :400].max() == 0  # nothing near tracks 1 and 2
    untouched = np.zeros((*HW, 3), np.uint8)
    draw_target(untouched, dets, 99)
    assert untouched.max() == 0


def test_link_config_checks_every_address_before_opening() -> None:
    with pytest.raises(ConfigError, match="given twice"):
        LinkConfig(stream=("rtp://1.2.3.4:5600", "rtp://1.2.3.4:5600")).validate()
    with pytest.raises(ConfigError, match="--mavlink"):
        LinkConfig(mavlink="serial:/dev/x").validate()
    with pytest.raises(ConfigError, match="--stream-bitrate"):
        LinkConfig(stream=("rtp://1.2.3.4:5600",), stream_bitrate=1).validate()
    with pytest.raises(ConfigError, match="--publish"):
        LinkConfig(publish=("mqtt://b",)).validate()
    assert not LinkConfig().enabled and LinkConfig(publish=("udp://h:1",)).enabled


def test_open_link_sinks_orders_mavlink_first_and_writes_the_sdp(tmp_path) -> None:
    pytest.importorskip("av")
    pytest.importorskip("pymavlink")
    cfg = LinkConfig(
        stream=("rtp://127.0.0.1:5600",), stream_encoder="pyav", mavlink="udpout:127.0.0.1:14550",
        publish=("udp://127.0.0.1:9999",),
    )  # fmt: skip
    sinks = open_link_sinks(cfg, ("car",), source_fps=25.0, frame_hw=(384, 640), sdp_dir=tmp_path)
    try:
        assert [s.flag for s in sinks] == ["--mavlink", "--stream", "--publish"]
        mav, stream, pub = sinks
        assert mav.camera.selector is stream.selector is pub.selector  # type: ignore[attr-defined]
        sdp = sdp_path_for(parse_stream_url("rtp://127.0.0.1:5600"), tmp_path)
        assert stream.path == sdp and "m=video 5600 RTP/AVP 96" in sdp.read_text()  # type: ignore[attr-defined]
        assert mav.camera.streams[0].fps == 25.0 and mav.camera.streams[0].width == 640  # type: ignore[attr-defined]
        for i in range(3):
            for s in sinks:
                s.write(result(i))
    finally:
        for s in sinks:
            s.close()
    assert all(s.closed for s in sinks)


def test_vehicle_state_keeps_the_latest_and_the_nearest_in_time() -> None:
    from edgedet.link.vehicle import Attitude, VehicleState, euler_to_quaternion, quaternion_to_euler

    v = VehicleState(history=4)
    assert v.latest().attitude is None and v.at(1.0).attitude is None
    for i in range(6):
        v.update_attitude(Attitude(0.1 * i, 0, 0, 0, 0, 0, i * 100, 10.0 + i))
    assert v.latest().attitude.roll_rad == pytest.approx(0.5)  # type: ignore[union-attr]
    assert v.at(12.4).attitude.time_boot_ms == 200  # type: ignore[union-attr]
    assert v.at(0.0).attitude.time_boot_ms == 200  # only the last 4 are kept  # type: ignore[union-attr]
    q = euler_to_quaternion(0.1, -0.7, 2.0)
    assert quaternion_to_euler(q) == pytest.approx((0.1, -0.7, 2.0))


def with_geo(r: FrameResult, east: list[float], north: list[float]) -> FrameResult:
    """r with ground positions: track k at (east[k], north[k]) (NaN: none), 0.5 m sigma, 40 m away."""
    import dataclasses

    from edgedet.types import GroundPositions

    e, n = np.array(east, float), np.array(north, float)
    lat, lon = 47.0 + n / 111_000, 8.0 + e / 75_000  # stand-in degrees: only passed through here
    geo = GroundPositions(lat, lon, e, n, np.where(np.isnan(e), np.nan, 0.5), np.full(len(e), 40.0), 0.0)
    return dataclasses.replace(r, geo=geo)


def test_the_target_carries_its_ground_position_and_velocity() -> None:
    sel = TargetSelector(lost_after_s=0.5)
    sel.observe(result(0))
    sel.select_point(150 / 800, 125 / 400)
    assert sel.status().geo is None  # no pose source: no position
    for i in range(1, 31):  # track 1 drives north-east at (3, 4) m/s, frames at 30 FPS
        sel.observe(with_geo(result(i), [3 * i / 30, 50.0, 60.0], [4 * i / 30, 0.0, 0.0]))
        g = sel.status().geo
        assert g is not None and g.east_m == pytest.approx(3 * i / 30) and g.sigma_m == 0.5
        assert (g.dist_m, g.alt_m, g.frame_time_s) == (40.0, 0.0, pytest.approx(i / 30))
        if i < 16:  # velocity needs 0.5 s of positions after the selection
            assert np.isnan(g.vel_n)
        else:
            assert (g.vel_n, g.vel_e) == (pytest.approx(4.0), pytest.approx(3.0))
    # a frame where it has no ground position (above the horizon) and one where it is missing: the last stays
    sel.observe(with_geo(result(31), [np.nan, 50.0, 60.0], [np.nan, 0.0, 0.0]))
    sel.observe(with_geo(result(32, ids=(2, 3)), [50.0, 60.0], [0.0, 0.0]))
    st = sel.status()
    assert st.coasting and st.geo is not None and st.geo.east_m == pytest.approx(3.0)
    sel.select_point(220 / 800, 160 / 400)  # another target: its own position, velocity starts over
    g = sel.status().geo
    assert g is not None and g.east_m == 50.0 and np.isnan(g.vel_n)
