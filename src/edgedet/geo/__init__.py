"""Where tracks are on the map: ground positions of detections from the drone's pose, and pose-based motion
compensation.

    camera = CameraModel.from_hfov(75, (384, 640))            # or load_calibration("calib.yaml")
    poses = read_telemetry("telemetry.jsonl", latency_s=0.05)  # or scenes.scene_pose_source(scene)
    locator = GeoLocator(GroundProjector(camera, Mount("gimbal")), poses)
    positions = locator(frame, detections)                     # edgedet.types.GroundPositions

Modules: camera (intrinsics, mounting), rotation (frames and angles), geodesy (WGS84 <-> local metres through
pymap3d), pose (telemetry series, interpolation, latency), project (ray/ground intersection, error
propagation), locate (per-frame glue), pose_cmc (the homography between frames), mavlink (a live source).
"""

from edgedet.geo.camera import CameraModel, Mount, load_calibration
from edgedet.geo.geodesy import GeoReference
from edgedet.geo.locate import ANCHORS, GeoLocator, anchor_points
from edgedet.geo.pose import Pose, PoseSource, TelemetryTrack, read_telemetry, write_telemetry
from edgedet.geo.pose_cmc import PoseMotion, fit_affine
from edgedet.geo.project import ErrorModel, GroundFix, GroundProjector, ground_to_image

__all__ = [
    "ANCHORS",
    "CameraModel",
    "ErrorModel",
    "GeoLocator",
    "GeoReference",
    "GroundFix",
    "GroundProjector",
    "Mount",
    "Pose",
    "PoseMotion",
    "PoseSource",
    "TelemetryTrack",
    "anchor_points",
    "fit_affine",
    "ground_to_image",
    "load_calibration",
    "read_telemetry",
    "write_telemetry",
]
