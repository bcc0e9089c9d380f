"""Live poses from the drone link's MAVLink telemetry (edgedet.link's VehicleState: the latest ATTITUDE,
GLOBAL_POSITION_INT and gimbal attitude, each with the `time.monotonic()` time it arrived).

The link keeps only the latest of each message; this source polls it (on every `pose_at`, and whenever the
owner calls `poll()`, e.g. once per frame), keeps the last `window_s` seconds of samples and interpolates them
at a frame's capture time like a telemetry log. Samples are stamped with their arrival time, so the link's
transport delay is what `latency_s` compensates. Duck-typed: any object with `latest()` returning
.attitude/.position/.gimbal in the link's field names works.
"""

from __future__ import annotations

import math
from collections import deque
from typing import Any

from edgedet.geo.geodesy import GeoReference
from edgedet.geo.pose import Pose, TelemetryTrack


class MavlinkPoseSource:
    """PoseSource over a live vehicle state. `home`: the take-off point when known (HOME_POSITION), else the
    first position received."""

    def __init__(
        self, state: Any, home: GeoReference | None = None, latency_s: float = 0.0, window_s: float = 5.0
    ) -> None:
        self.state = state
        self._home = home
        self.latency_s = float(latency_s)
        self.window_s = float(window_s)
        self._records: deque[dict[str, Any]] = deque()
        self._seen: dict[str, float] = {}
        self._track: TelemetryTrack | None = None

    @property
    def home(self) -> GeoReference | None:
        return self._home

    def poll(self) -> None:
        """Take whatever the link received since the last call."""
        snap = self.state.latest()
        new = False
        pos = getattr(snap, "position", None)
        if pos is not None and self._seen.get("pos") != pos.received_s:
            self._seen["pos"] = pos.received_s
            self._records.append(
                {"t": pos.received_s, "lat": pos.lat_deg, "lon": pos.lon_deg, "alt_rel_m": pos.alt_rel_m}
            )
            if self._home is None:
                self._home = GeoReference(pos.lat_deg, pos.lon_deg, pos.alt_msl_m - pos.alt_rel_m)
            new = True
        att = getattr(snap, "attitude", None)
        if att is not None and self._seen.get("att") != att.received_s:
            self._seen["att"] = att.received_s
            self._records.append(
                {
                    "t": att.received_s,
                    "roll_deg": math.degrees(att.roll_rad),
                    "pitch_deg": math.degrees(att.pitch_rad),
                    "yaw_deg": math.degrees(att.yaw_rad),
                }
            )
            new = True
        gim = getattr(snap, "gimbal", None)
        if gim is not None and self._seen.get("gim") != gim.received_s:
            self._seen["gim"] = gim.received_s
            self._records.append(
                {"t": gim.received_s, "gimbal_q": list(gim.q_wxyz), "gimbal_yaw_frame": gim.frame}
            )
            new = True
        if new:
            latest = max(r["t"] for r in self._records)
            while self._records and self._records[0]["t"] < latest - self.window_s:
                self._records.popleft()
            self._track = None

    def pose_at(self, time_s: float) -> Pose | None:
        self.poll()
        if self._track is None:
            if not any("lat" in r for r in self._records):
                return None
            self._track = TelemetryTrack(list(self._records), home=self._home, latency_s=self.latency_s)
        return self._track.pose_at(time_s)
