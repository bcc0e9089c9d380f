"""WGS84 <-> local east/north/up metres, through pymap3d (a well-kept library; no geodesy is written here).

The local frame is a tangent plane at a reference point (the take-off point, "home"): east_m, north_m on the
ground, up_m above the reference's ellipsoidal height. Over the few hundred metres a drone camera sees, the
ground of that plane is the flat ground the projection assumes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from edgedet._optional import require

F64 = npt.NDArray[np.float64]


def _pm() -> Any:
    return require("pymap3d", "ground positions (lat/lon)")


@dataclass(frozen=True)
class GeoReference:
    """The origin of local east/north metres: WGS84 latitude, longitude (degrees) and ellipsoidal height (m).

    height_known: False when height_m is a stand-in (0.0: a telemetry log without the home's altitude), so
    outputs that report an absolute altitude (the drone link's CAMERA_TRACKING_GEO_STATUS) say NaN instead."""

    lat_deg: float
    lon_deg: float
    height_m: float = 0.0
    height_known: bool = True

    def to_enu(self, lat_deg: npt.ArrayLike, lon_deg: npt.ArrayLike, height_m: npt.ArrayLike = 0.0) -> F64:
        """(..., 3) east, north, up metres of WGS84 points."""
        e, n, u = _pm().geodetic2enu(
            np.asarray(lat_deg, np.float64),
            np.asarray(lon_deg, np.float64),
            np.asarray(height_m, np.float64),
            self.lat_deg,
            self.lon_deg,
            self.height_m,
        )
        return np.stack(np.broadcast_arrays(e, n, u), axis=-1).astype(np.float64)

    def to_geodetic(self, east_m: npt.ArrayLike, north_m: npt.ArrayLike, up_m: npt.ArrayLike = 0.0) -> F64:
        """(..., 3) latitude, longitude (degrees), ellipsoidal height (m) of local points."""
        lat, lon, h = _pm().enu2geodetic(
            np.asarray(east_m, np.float64),
            np.asarray(north_m, np.float64),
            np.asarray(up_m, np.float64),
            self.lat_deg,
            self.lon_deg,
            self.height_m,
        )
        return np.stack(np.broadcast_arrays(lat, lon, h), axis=-1).astype(np.float64)
