"""Building the geo stages from options: what `edgedet run` wires (flags --camera-calib/--hfov, --camera-mount,
--telemetry, --telemetry-latency-ms, --ground-height-m, --max-range-m, --geo-anchor) into a GeoLocator for the
sinks and a PoseMotion for `--cmc pose`.

--telemetry takes a JSON-lines log (edgedet.geo.pose) or, with a demo source, `demo` (the flight's exact
telemetry) or `demo-noisy` (realistic errors, stamped 50 ms late: edgedet.scenes.TelemetryNoise).
"""

from __future__ import annotations

from dataclasses import dataclass

from edgedet.errors import ConfigError
from edgedet.geo.camera import CameraModel, Mount, load_calibration
from edgedet.geo.locate import ANCHORS, GeoLocator
from edgedet.geo.pose import PoseSource, read_telemetry
from edgedet.geo.pose_cmc import PoseMotion
from edgedet.geo.project import ErrorModel, GroundProjector

DEMO_TELEMETRY = ("demo", "demo-noisy")


@dataclass(frozen=True)
class GeoConfig:
    """Options of the ground-position stage; each field is one flag.

    telemetry: a telemetry.jsonl, "demo" or "demo-noisy" (demo sources), or None (no ground positions).
    camera_calib: an OpenCV calibration file; hfov_deg: else the horizontal field of view (the demo's camera
    when neither is given with a demo source). camera_mount: "gimbal", or "body" with mount_angles_deg
    (roll, pitch, yaw of the camera in the body frame; pitch -90 = straight down).
    telemetry_latency_ms: how late the telemetry is stamped (compensated). ground_height_m: the ground's
    height above home. max_range_m: no position farther than this. geo_anchor: "bottom" (box bottom centre,
    upright objects) or "center" (flat objects / views from straight above); None: "center" with demo
    telemetry (the scenes' objects are drawn flat on the ground), else "bottom".
    """

    telemetry: str | None = None
    camera_calib: str | None = None
    hfov_deg: float | None = None
    camera_mount: str = "gimbal"
    mount_angles_deg: tuple[float, float, float] = (0.0, -90.0, 0.0)
    telemetry_latency_ms: float = 0.0
    ground_height_m: float = 0.0
    max_range_m: float = 1000.0
    geo_anchor: str | None = None

    def validate(self) -> GeoConfig:
        if self.camera_calib is not None and self.hfov_deg is not None:
            raise ConfigError("--camera-calib and --hfov both describe the camera: pass only one of them")
        if self.geo_anchor is not None and self.geo_anchor not in ANCHORS:
            raise ConfigError(f"unknown --geo-anchor {self.geo_anchor!r}: use one of {', '.join(ANCHORS)}")
        if not self.max_range_m > 0:
            raise ConfigError(f"--max-range-m must be positive, got {self.max_range_m}")
        Mount(self.camera_mount)  # raises on an unknown kind
        return self


@dataclass
class GeoStages:
    """What `build_geo` returns: the per-frame locator (pipeline `geo=`) and the pose-based CMC."""

    locator: GeoLocator
    motion: PoseMotion
    poses: PoseSource


def build_geo(
    config: GeoConfig, poses: PoseSource | None = None, camera: CameraModel | None = None
) -> GeoStages | None:
    """The geo stages for `config` (None when no telemetry is configured). `poses`: a pose source already made
    (the demo's: `edgedet.scenes.telemetry.demo_geo`), else config.telemetry is read as a file; `camera`: the
    camera when the options name none (the demo's)."""
    config.validate()
    if config.telemetry is None and poses is None:
        if config.camera_calib or config.hfov_deg:
            raise ConfigError("ground positions need the drone's pose: add --telemetry FILE (or demo)")
        return None
    if poses is None:
        if config.telemetry in DEMO_TELEMETRY:
            raise ConfigError(
                f"--telemetry {config.telemetry} works with --source demo only: pass a telemetry.jsonl"
            )
        assert config.telemetry is not None
        poses = read_telemetry(config.telemetry, latency_s=config.telemetry_latency_ms / 1000.0)
    if config.camera_calib is not None:
        camera = load_calibration(config.camera_calib)
    elif config.hfov_deg is not None:
        camera = CameraModel.from_hfov(config.hfov_deg, (1080, 1920))  # remade for the real frame size
    elif camera is None:
        raise ConfigError("ground positions need the camera: pass --camera-calib FILE or --hfov DEG")
    roll, pitch, yaw = config.mount_angles_deg
    mount = Mount(config.camera_mount, roll, pitch, yaw)
    projector = GroundProjector(
        camera, mount, ground_up_m=config.ground_height_m, max_range_m=config.max_range_m, errors=ErrorModel()
    )
    anchor = config.geo_anchor or ("center" if config.telemetry in DEMO_TELEMETRY else "bottom")
    locator = GeoLocator(projector, poses, anchor=anchor)
    motion = PoseMotion(camera, poses, mount, ground_up_m=config.ground_height_m)
    return GeoStages(locator, motion, poses)
