"""The selected target: which track the ground station picked, and where it is now.

The frame loop feeds every FrameResult in (`observe`); the MAVLink thread selects (`select_point`,
`select_rectangle`, `stop`) and reads (`status`); the video encoder reads `selected_track_id` to highlight it.
All three run on different threads, so every public method takes one lock and copies what it returns.
Coordinates in and out are normalised image coordinates (0..1 of width and height), as MAVLink's camera
tracking messages use.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from edgedet.types import FrameResult

IDLE, ACTIVE, LOST = "idle", "active", "lost"
MODE_NONE, MODE_POINT, MODE_RECTANGLE = "none", "point", "rectangle"

# Velocity from the target's ground positions over this window (frame time): one frame to the next is mostly
# box jitter (a pixel at 50 m is several cm, over 33 ms that is metres per second).
VELOCITY_WINDOW_S = 1.0
VELOCITY_MIN_SPAN_S = 0.5


@dataclass(frozen=True)
class TargetGeo:
    """The selected target's ground position in the frame it was last seen with one (see `GroundPositions`).

    lat_deg, lon_deg: WGS84. east_m, north_m: from home. sigma_m: horizontal 1-sigma (m). alt_m: ellipsoidal
    height of the ground it stands on (NaN: not known). dist_m: camera -> target (NaN: not known).
    vel_n, vel_e: ground velocity in m/s over the last `VELOCITY_WINDOW_S` of positions (NaN until
    `VELOCITY_MIN_SPAN_S` of them). frame_time_s: the frame this position comes from.
    """

    lat_deg: float
    lon_deg: float
    east_m: float
    north_m: float
    sigma_m: float
    alt_m: float = math.nan
    dist_m: float = math.nan
    vel_n: float = math.nan
    vel_e: float = math.nan
    frame_time_s: float = math.nan


@dataclass(frozen=True)
class TargetStatus:
    """A snapshot of the selection.

    state: idle (nothing selected) | active (the track is in the latest frames) | lost (its track ended).
    mode: how it was selected: none | point | rectangle.
    track_id: the selected track (-1 when idle).
    box_norm: (x1, y1, x2, y2) in 0..1 of the frame, the track's latest box (None when idle).
    frame_index / frame_time_s: the frame that box comes from.
    updated_s: time.monotonic() when that frame was observed.
    coasting: active, but the track was not in the latest frame (box_norm is where it was last seen).
    frame_hw: (height, width) of the frame box_norm refers to.
    geo: the target's ground position (None: no pose source, or no position since it was selected); while
        coasting or lost, the last one.
    """

    state: str = IDLE
    mode: str = MODE_NONE
    track_id: int = -1
    box_norm: tuple[float, float, float, float] | None = None
    frame_index: int = -1
    frame_time_s: float = math.nan
    updated_s: float = math.nan
    coasting: bool = False
    frame_hw: tuple[int, int] = (0, 0)
    geo: TargetGeo | None = None

    @property
    def center_norm(self) -> tuple[float, float] | None:
        if self.box_norm is None:
            return None
        x1, y1, x2, y2 = self.box_norm
        return (x1 + x2) / 2.0, (y1 + y2) / 2.0


class SelectionError(ValueError):
    """A selection command that cannot be honoured now (no track there, tracking off, bad coordinates)."""


@dataclass(frozen=True)
class _Seen:
    ids: npt.NDArray[np.int32]  # (N,)
    xyxy: npt.NDArray[np.float64]  # (N, 4) frame pixels
    hw: tuple[int, int]
    index: int
    time_s: float
    wall_s: float
    geo: npt.NDArray[np.float64] | None  # (N, 7): lat, lon, east, north, sigma, range, ground alt (NaN: none)


class TargetSelector:
    """Shared selection state between the frame loop, the MAVLink component and the video encoder.

    lost_after_s: how long (in frame time, so files and live sources behave alike) the selected track may be
    missing from the results before it counts as ended; short gaps (a frame where the tracker did not report
    it) do not drop the selection.
    """

    def __init__(self, lost_after_s: float = 0.5) -> None:
        self.lost_after_s = float(lost_after_s)
        self._lock = threading.Lock()
        self._seen: _Seen | None = None
        self._status = TargetStatus()
        self._last_seen_time_s = math.nan
        self._track: deque[tuple[float, float, float]] = deque()  # (time_s, east, north) of the target

    # --- fed by the frame loop ------------------------------------------------------------------------------

    def observe(self, result: FrameResult) -> None:
        """Record the tracks of one frame and update the selected target's box or lost state."""
        dets = result.detections
        keep = dets.track_id >= 0
        geo = None
        g = result.geo
        if g is not None:
            n = len(g)
            rng = g.range_m if g.range_m is not None else np.full(n, np.nan)
            cols = (g.lat, g.lon, g.east_m, g.north_m, g.sigma_m, rng, np.full(n, g.ground_alt_m))
            geo = np.stack([np.asarray(c, np.float64).reshape(n) for c in cols], axis=1)[keep]
        seen = _Seen(
            ids=dets.track_id[keep].copy(),
            xyxy=dets.xyxy[keep].astype(np.float64),
            hw=result.frame.hw,
            index=result.frame.index,
            time_s=float(result.frame.timestamp_s),
            wall_s=time.monotonic(),
            geo=geo,
        )
        with self._lock:
            self._seen = seen
            st = self._status
            if st.state != ACTIVE:
                return
            hit = np.flatnonzero(seen.ids == st.track_id)
            if hit.size:
                self._last_seen_time_s = seen.time_s
                self._status = TargetStatus(
                    ACTIVE,
                    st.mode,
                    st.track_id,
                    _norm(seen.xyxy[hit[0]], seen.hw),
                    seen.index,
                    seen.time_s,
                    seen.wall_s,
                    False,
                    seen.hw,
                    self._geo_of(seen, int(hit[0]), st.geo),
                )
            else:
                # Keep the last box so the ground station sees where the target was when it went missing.
                lost = seen.time_s - self._last_seen_time_s > self.lost_after_s
                self._status = TargetStatus(
                    LOST if lost else ACTIVE,
                    st.mode,
                    st.track_id,
                    st.box_norm,
                    seen.index,
                    seen.time_s,
                    seen.wall_s,
                    not lost,
                    st.frame_hw,
                    st.geo,
                )

    # --- commands from the ground station -------------------------------------------------------------------

    def select_point(self, x: float, y: float, radius: float = 0.0) -> TargetStatus:
        """Select the track whose box is nearest the point (x, y), if within `radius` (0..1 of the image width;
        0 means the point must touch the box). Returns the new status; raises SelectionError when no track is
        near enough or the arguments are not valid coordinates."""
        _check_unit("point x", x)
        _check_unit("point y", y)
        if not (math.isfinite(radius) and 0.0 <= radius <= 1.0):
            raise SelectionError(f"radius {radius} is not in 0..1")
        with self._lock:
            seen = self._require_tracks()
            h, w = seen.hw
            px, py = x * w, y * h
            x1, y1, x2, y2 = seen.xyxy.T
            dx = np.maximum(np.maximum(x1 - px, 0.0), px - x2)
            dy = np.maximum(np.maximum(y1 - py, 0.0), py - y2)
            gap = np.hypot(dx, dy)
            centre = np.hypot((x1 + x2) / 2 - px, (y1 + y2) / 2 - py)
            # Nearest box edge first; among boxes the point is inside, the one whose centre is nearest.
            order = np.lexsort((centre, gap))
            best = int(order[0])
            if gap[best] > max(radius * w, 1.0):
                raise SelectionError(
                    f"no track within radius {radius:g} of ({x:.3f}, {y:.3f}); nearest is "
                    f"{gap[best] / w:.3f} of the width away"
                )
            return self._select(seen, best, MODE_POINT)

    def select_rectangle(self, x1: float, y1: float, x2: float, y2: float) -> TargetStatus:
        """Select the track whose box best overlaps the rectangle (corners in 0..1, any order; IoU, then
        overlap area). Raises SelectionError when no track overlaps it."""
        for name, v in (
            ("top-left x", x1),
            ("top-left y", y1),
            ("bottom-right x", x2),
            ("bottom-right y", y2),
        ):
            _check_unit(name, v)
        with self._lock:
            seen = self._require_tracks()
            h, w = seen.hw
            rx1, rx2 = sorted((x1 * w, x2 * w))
            ry1, ry2 = sorted((y1 * h, y2 * h))
            bx1, by1, bx2, by2 = seen.xyxy.T
            iw = np.clip(np.minimum(bx2, rx2) - np.maximum(bx1, rx1), 0.0, None)
            ih = np.clip(np.minimum(by2, ry2) - np.maximum(by1, ry1), 0.0, None)
            inter = iw * ih
            union = (bx2 - bx1) * (by2 - by1) + (rx2 - rx1) * (ry2 - ry1) - inter
            iou = np.where(union > 0, inter / np.maximum(union, 1e-9), 0.0)
            best = int(np.lexsort((-inter, -iou))[0])
            if inter[best] <= 0.0:
                raise SelectionError("no track overlaps the rectangle")
            return self._select(seen, best, MODE_RECTANGLE)

    def stop(self) -> TargetStatus:
        """Clear the selection (MAV_CMD_CAMERA_STOP_TRACKING). Returns the idle status."""
        with self._lock:
            self._status = TargetStatus()
            return self._status

    # --- readers --------------------------------------------------------------------------------------------

    def status(self) -> TargetStatus:
        with self._lock:
            return self._status

    def frame_hw(self) -> tuple[int, int] | None:
        """(height, width) of the latest observed frame, None before the first."""
        with self._lock:
            return self._seen.hw if self._seen is not None else None

    @property
    def selected_track_id(self) -> int:
        """The track to highlight: the selected one while active, else -1."""
        st = self.status()
        return st.track_id if st.state == ACTIVE else -1

    # --- internals ------------------------------------------------------------------------------------------

    def _require_tracks(self) -> _Seen:
        seen = self._seen
        if seen is None:
            raise SelectionError("no frame has been processed yet")
        if seen.ids.size == 0:
            raise SelectionError(f"no tracks in the latest frame ({seen.index}); is tracking on?")
        return seen

    def _geo_of(self, seen: _Seen, row: int, last: TargetGeo | None) -> TargetGeo | None:
        """The target's TargetGeo from row `row` of `seen` (the last one when this frame has none)."""
        if seen.geo is None:
            return None
        lat, lon, east, north, sigma, rng, alt = (float(v) for v in seen.geo[row])
        if not (math.isfinite(lat) and math.isfinite(lon)):
            return last
        trail = self._track
        trail.append((seen.time_s, east, north))
        while trail and seen.time_s - trail[0][0] > VELOCITY_WINDOW_S:
            trail.popleft()
        vel_n = vel_e = math.nan
        t0, e0, n0 = trail[0]
        if seen.time_s - t0 >= VELOCITY_MIN_SPAN_S:
            dt = seen.time_s - t0
            vel_n, vel_e = (north - n0) / dt, (east - e0) / dt
        return TargetGeo(lat, lon, east, north, sigma, alt, rng, vel_n, vel_e, seen.time_s)

    def _select(self, seen: _Seen, row: int, mode: str) -> TargetStatus:
        self._last_seen_time_s = seen.time_s
        self._track.clear()
        self._status = TargetStatus(
            ACTIVE,
            mode,
            int(seen.ids[row]),
            _norm(seen.xyxy[row], seen.hw),
            seen.index,
            seen.time_s,
            seen.wall_s,
            False,
            seen.hw,
            self._geo_of(seen, row, None),
        )
        return self._status


def _check_unit(name: str, v: float) -> None:
    if not (math.isfinite(v) and 0.0 <= v <= 1.0):
        raise SelectionError(f"{name} {v} is not a normalised image coordinate in 0..1")


def _norm(xyxy: npt.NDArray[np.float64], hw: tuple[int, int]) -> tuple[float, float, float, float]:
    h, w = hw
    x1, y1, x2, y2 = (float(v) for v in xyxy)
    return (
        min(max(x1 / w, 0.0), 1.0),
        min(max(y1 / h, 0.0), 1.0),
        min(max(x2 / w, 0.0), 1.0),
        min(max(y2 / h, 0.0), 1.0),
    )


__all__ = ["ACTIVE", "IDLE", "LOST", "SelectionError", "TargetGeo", "TargetSelector", "TargetStatus"]
