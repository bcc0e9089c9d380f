"""Local metres <-> WGS84 through pymap3d, checked against pyproj (PROJ's geodesic, an independent library)."""

from __future__ import annotations

import numpy as np
import pytest

from edgedet.geo.geodesy import GeoReference

pyproj = pytest.importorskip("pyproj", reason="pyproj is the reference for geodesy tests (dev extra)")

HOMES = [
    (47.397742, 8.545594, 488.0),
    (-33.8688, 151.2093, 0.0),
    (64.1466, -21.9426, 30.0),
    (0.0, 179.9999, 0.0),
]


@pytest.mark.parametrize("home", HOMES)
def test_round_trip_and_pyproj_distance_and_azimuth(home):
    ref = GeoReference(*home)
    rng = np.random.default_rng(0)
    en = rng.uniform(-800, 800, (200, 2))
    geo = ref.to_geodetic(en[:, 0], en[:, 1], 0.0)
    back = ref.to_enu(geo[:, 0], geo[:, 1], geo[:, 2])
    np.testing.assert_allclose(back[:, :2], en, atol=1e-6)
    geod = pyproj.Geod(ellps="WGS84")
    az, _, dist = geod.inv(np.full(len(en), home[1]), np.full(len(en), home[0]), geo[:, 1], geo[:, 0])
    # the geodesic runs on the ellipsoid (height 0), the plane h0 above it: distances shrink by R / (R + h0);
    # plane and ellipsoid otherwise differ by ~d^3/R^2 over a kilometre: well under a millimetre
    scale = 6371000.0 / (6371000.0 + home[2])
    np.testing.assert_allclose(dist, np.hypot(en[:, 0], en[:, 1]) * scale, atol=2e-3)
    expect_az = np.degrees(np.arctan2(en[:, 0], en[:, 1]))
    diff = (az - expect_az + 180) % 360 - 180
    assert np.abs(diff).max() < 1e-4


def test_against_pyproj_topocentric_pipeline():
    """ENU -> WGS84 of pymap3d equals PROJ's own topocentric conversion (ECEF <-> ENU) chain."""
    lat0, lon0, h0 = 47.397742, 8.545594, 488.0
    ref = GeoReference(lat0, lon0, h0)
    to_ecef = pyproj.Transformer.from_crs("EPSG:4979", "EPSG:4978", always_xy=True)
    topo = pyproj.Transformer.from_pipeline(
        f"+proj=pipeline +step +proj=cart +ellps=WGS84 +step +proj=topocentric +ellps=WGS84 "
        f"+lon_0={lon0} +lat_0={lat0} +h_0={h0}"
    )
    lat, lon, h = 47.4001, 8.5421, 490.0
    e, n, u = topo.transform(lon, lat, h)
    ours = ref.to_enu(lat, lon, h)
    np.testing.assert_allclose(ours, [e, n, u], atol=1e-4)
    x, y, z = to_ecef.transform(lon, lat, h)
    assert np.isfinite([x, y, z]).all()
