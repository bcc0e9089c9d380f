"""The live pose source over the drone link's vehicle state (edgedet.link, issue 14). Skipped until the link
package is on this branch: the adapter is duck-typed on its VehicleState API."""

from __future__ import annotations

import math

import pytest

link = pytest.importorskip(
    "edgedet.link.vehicle", reason="edgedet.link (drone link, issue 14) is not merged yet"
)


def test_poses_from_vehicle_state():
    from edgedet.geo.mavlink import MavlinkPoseSource

    state = link.VehicleState()
    src = MavlinkPoseSource(state)
    assert src.pose_at(0.0) is None  # nothing received yet
    for k in range(3):
        t = 100.0 + 0.1 * k
        state.update_position(
            link.GlobalPosition(47.0 + 1e-5 * k, 8.0, 500.0 + k, 40.0 + k, 0.0, 0.0, 0.0, 0.0, 0, t)
        )
        state.update_attitude(link.Attitude(0.0, 0.0, math.radians(10.0 * k), 0, 0, 0, 0, t))
        q = link.euler_to_quaternion(0.0, math.radians(-80.0), 0.0)
        state.update_gimbal(
            link.GimbalAttitude(
                q, 0.0, math.radians(-80.0), 0.0, "vehicle", "GIMBAL_DEVICE_ATTITUDE_STATUS", 0, t
            )
        )
        src.poll()
    pose = src.pose_at(100.05)
    assert pose is not None
    assert pose.alt_rel_m == pytest.approx(40.5) and pose.yaw_deg == pytest.approx(5.0)
    assert pose.gimbal_yaw_relative
    assert src.home.lat_deg == pytest.approx(47.0) and src.home.height_m == pytest.approx(460.0)
