"""A drone-view sequence: world + traffic + people + camera path, rendered frame by frame with exact truth.

Rendering a frame: warp the world through the camera homography, darken the ground under object shadows, draw
each object's sprite (flat polygons on the ground plane, through the same homography), put tree crowns back on
top (they hide what is under them), then the sensor: motion blur along the image motion, exposure drift with
vignetting and white balance, sensor noise, and optionally a JPEG round trip.

Ground truth comes from the same polygons: the box is the extent of the object's body (sprite without shadow)
clipped to the frame, and visibility is the fraction of the body's pixels that end up visible (hidden by an
object drawn above it, by a tree crown, or by the frame edge), counted on an id buffer drawn alongside.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import cv2
import numpy as np
import numpy.typing as npt

from edgedet.errors import ConfigError
from edgedet.scenes.agents import CAR, CLASS_NAMES, PERSON, TRUCK, Crowd, Traffic, Vehicle
from edgedet.scenes.camera import CameraPath, CameraPose, homography
from edgedet.scenes.world import World, build_world

SPLITS: dict[str, int] = {"train": 1, "val": 2, "demo": 3, "test": 4}
_SHIFT = 4  # sub-pixel bits for OpenCV polygon drawing
_ONE = 1 << _SHIFT
_GLASS = (48.0, 40.0, 36.0)


@dataclass(frozen=True)
class SceneConfig:
    """What a sequence looks like. Defaults give a 640x384, 30 FPS drone flight at 30-60 m.

    size_hw: output (height, width) px. fps: frame rate; simulation steps 1/fps per frame.
    frames: sequence length (None: endless). world_size: world image side, px; px_per_m: world resolution.
    vehicles, people: moving vehicles and people in the whole world (the view sees a few percent of it);
    parked_fraction: share of parking stalls with a car in them.
    altitude_m, tilt_deg: ranges the flight wanders through; hfov_deg: horizontal field of view.
    speed_mps: typical drone ground speed. exposure: fraction of the frame interval the shutter is open
    (motion blur length). noise_sigma: sensor noise, grey levels. gain_drift: amplitude of exposure drift
    (0.15 = +-15%). vignette: brightness loss in the corners. jpeg_quality: None, or a JPEG round trip.
    draw_objects: False renders the same frames without any object (for tests and backgrounds).
    sensor_effects: False skips blur, exposure, noise and JPEG.
    origin_lat_deg, origin_lon_deg: WGS84 position of the world's centre on flat ground at ellipsoidal height
    0 (the geo reference of `DemoScene.truth` and the scene's telemetry; default: PX4's simulator home).
    World px (x right, y down) -> metres east = (x - size/2) / px_per_m, north = (size/2 - y) / px_per_m.
    """

    size_hw: tuple[int, int] = (384, 640)
    fps: float = 30.0
    frames: int | None = 900
    world_size: int = 4096
    px_per_m: float = 8.0
    vehicles: int = 200
    people: int = 500
    parked_fraction: float = 0.6
    altitude_m: tuple[float, float] = (30.0, 60.0)
    tilt_deg: tuple[float, float] = (0.0, 18.0)
    hfov_deg: float = 75.0
    speed_mps: float = 6.0
    exposure: float = 0.8
    noise_sigma: float = 2.5
    gain_drift: float = 0.12
    vignette: float = 0.25
    jpeg_quality: int | None = None
    draw_objects: bool = True
    sensor_effects: bool = True
    origin_lat_deg: float = 47.397742
    origin_lon_deg: float = 8.545594

    def __post_init__(self) -> None:
        h, w = self.size_hw
        if h < 32 or w < 32:
            raise ConfigError(f"scene size {w}x{h} is too small: use at least 32x32 (e.g. 640x384)")
        if not self.fps > 0:
            raise ConfigError(f"scene fps={self.fps} must be positive, e.g. 30")
        if self.frames is not None and self.frames <= 0:
            raise ConfigError(f"scene frames={self.frames} must be positive, or None for an endless sequence")
        if self.world_size < 1024:
            raise ConfigError(f"world_size={self.world_size} is too small: use 1024 or more (default 4096)")
        if not 0 < self.altitude_m[0] <= self.altitude_m[1]:
            raise ConfigError(f"altitude_m={self.altitude_m} must be (low, high) with 0 < low <= high")
        if not 0 <= self.tilt_deg[0] <= self.tilt_deg[1] < 45:
            raise ConfigError(f"tilt_deg={self.tilt_deg} must be (low, high) with 0 <= low <= high < 45")
        if self.jpeg_quality is not None and not 1 <= self.jpeg_quality <= 100:
            raise ConfigError(f"jpeg_quality={self.jpeg_quality} must be in 1..100 or None")


def scene_seed(seed: int, split: str = "demo", index: int = 0) -> np.random.SeedSequence:
    """The seed sequence of sequence `index` of `split`. Splits draw from disjoint streams, so a training set
    made with any `seed` never contains a val, test or demo world."""
    if split not in SPLITS:
        raise ConfigError(f"unknown scene split {split!r}: use one of {', '.join(SPLITS)}")
    return np.random.SeedSequence(entropy=int(seed), spawn_key=(SPLITS[split], int(index)))


# --- sprite geometry (local metres: u forward, v right) -------------------------------------------------------


def _box(u0: float, u1: float, v0: float, v1: float, c: float = 0.0) -> npt.NDArray[np.float64]:
    """Rectangle [u0,u1] x [v0,v1] with corners cut by c, as a convex polygon."""
    if c <= 0:
        return np.array([[u1, v0], [u1, v1], [u0, v1], [u0, v0]], np.float64)
    return np.array(
        [
            [u1, v0 + c],
            [u1, v1 - c],
            [u1 - c, v1],
            [u0 + c, v1],
            [u0, v1 - c],
            [u0, v0 + c],
            [u0 + c, v0],
            [u1 - c, v0],
        ],
        np.float64,
    )


def _trap(u0: float, hw0: float, u1: float, hw1: float) -> npt.NDArray[np.float64]:
    return np.array([[u1, -hw1], [u1, hw1], [u0, hw0], [u0, -hw0]], np.float64)


def _ellipse(cu: float, cv: float, ru: float, rv: float, n: int = 12) -> npt.NDArray[np.float64]:
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    return np.stack([cu + ru * np.cos(t), cv + rv * np.sin(t)], axis=1)


@dataclass(frozen=True)
class _Sprite:
    """Polygons of one object in local metres; the first `n_body` parts form the body (truth and id buffer)."""

    parts: tuple[npt.NDArray[np.float64], ...]
    colours: tuple[tuple[float, float, float], ...]
    n_body: int
    shadow: npt.NDArray[np.float64]  # local metres, already offset along the sun direction (world frame)
    shadow_is_world: bool = False


def _scaled(c: tuple[float, float, float], k: float, add: float = 0.0) -> tuple[float, float, float]:
    return (min(255.0, c[0] * k + add), min(255.0, c[1] * k + add), min(255.0, c[2] * k + add))


def _vehicle_sprite(v: Vehicle) -> _Sprite:
    length, width = v.length_m, v.width_m
    h_l, h_w = length / 2, width / 2
    if v.cls == CAR:
        body = _box(-h_l, h_l, -h_w, h_w, 0.22 * width)
        parts: tuple[npt.NDArray[np.float64], ...] = (
            body,
            _trap(0.06 * length, 0.44 * width, 0.22 * length, 0.38 * width),  # windscreen
            _box(-0.24 * length, 0.06 * length, -0.40 * width, 0.40 * width, 0.05 * width),  # roof
            _trap(-0.34 * length, 0.34 * width, -0.24 * length, 0.40 * width),  # rear window
        )
        dark = sum(v.colour) < 200
        roof = _scaled(v.colour, 1.0, 25.0) if dark else _scaled(v.colour, 0.9)
        colours: tuple[tuple[float, float, float], ...] = (v.colour, _GLASS, roof, _GLASS)
        return _Sprite(parts, colours, 1, body)
    cab_l = 2.2
    cab = _box(h_l - cab_l, h_l, -0.96 * h_w, 0.96 * h_w, 0.3)
    cargo = _box(-h_l, h_l - cab_l - 0.25, -h_w, h_w, 0.05)
    parts = (
        cab,
        cargo,
        _trap(h_l - 0.8, 0.42 * width, h_l - 0.3, 0.4 * width),
        _box(-h_l + 0.3, h_l - cab_l - 0.55, -h_w + 0.15, -h_w + 0.45),  # roof rail
        _box(-h_l + 0.3, h_l - cab_l - 0.55, h_w - 0.45, h_w - 0.15),
    )
    colours = (v.colour, v.colour2, _GLASS, _scaled(v.colour2, 0.82), _scaled(v.colour2, 0.82))
    return _Sprite(parts, colours, 2, _box(-h_l, h_l, -h_w, h_w, 0.1))


def _person_sprite(size: float, shirt: npt.NDArray[np.float64], hair: npt.NDArray[np.float64]) -> _Sprite:
    # People are drawn about 1.5x life size (shoulders ~1 m) so that they reach ~6-12 px at these altitudes
    # (30-60 m), as the issue asks of the "small object" class; with true scale they would be 4-8 px.
    body = _ellipse(0.0, 0.0, 0.3 * size, 0.5 * size)
    head = _ellipse(0.04 * size, 0.0, 0.2 * size, 0.2 * size, 10)
    s = (float(shirt[0]), float(shirt[1]), float(shirt[2]))
    h = (float(hair[0]), float(hair[1]), float(hair[2]))
    return _Sprite(
        (body, head), (s, h), 2, _ellipse(0.0, 0.0, 0.85 * size, 0.28 * size), shadow_is_world=True
    )


@dataclass
class _Objects:
    """Everything drawable this frame, in draw order (bottom first)."""

    ids: list[int] = field(default_factory=list)
    cls: list[int] = field(default_factory=list)
    xy: list[tuple[float, float]] = field(default_factory=list)
    heading: list[float] = field(default_factory=list)
    sprite: list[_Sprite] = field(default_factory=list)
    shadow_m: list[float] = field(default_factory=list)


class _Renderer:
    """Per-sequence state of the sensor (vignette, white balance, noise bank) and drawing helpers."""

    def __init__(self, cfg: SceneConfig, world: World, rng: np.random.Generator) -> None:
        self.cfg = cfg
        self.world = world
        h, w = cfg.size_hw
        self.rng = rng
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        r2 = ((xx - w / 2) / (w / 2)) ** 2 + ((yy - h / 2) / (h / 2)) ** 2
        v = 1.0 - cfg.vignette * np.clip(r2 / 2.0, 0, 1) ** 1.5
        wb = rng.uniform(0.92, 1.06, 3).astype(np.float32)
        wb /= wb.max()
        # gain is applied as src * vign * scale with vign in 0..255: keep 8 % headroom for gains above 1
        self.vign = np.clip(v[..., None] * wb * 235.0, 0, 255).astype(np.uint8)
        pad = 16
        self.noise = np.round(rng.normal(0, cfg.noise_sigma, (6, h + pad, w + pad, 3))).astype(np.int16)
        self.gain_phase = rng.uniform(0, 2 * np.pi, 3)
        self.gain_period = rng.uniform(4.0, 20.0, 3)
        self.exposure_bias = float(rng.uniform(-0.08, 0.08))

    def sensor(
        self, img: npt.NDArray[np.uint8], blur_px: tuple[float, float], t: float
    ) -> npt.NDArray[np.uint8]:
        cfg = self.cfg
        bx, by = blur_px
        length = math.hypot(bx, by) * cfg.exposure
        if length >= 1.2:
            k = 2 * math.ceil(length / 2) + 1
            kern = np.zeros((k, k), np.float32)
            c = k // 2
            ux, uy = bx / math.hypot(bx, by), by / math.hypot(bx, by)
            p0 = (round((c - ux * length / 2) * _ONE), round((c - uy * length / 2) * _ONE))
            p1 = (round((c + ux * length / 2) * _ONE), round((c + uy * length / 2) * _ONE))
            cv2.line(kern, p0, p1, 1.0, 1, cv2.LINE_AA, _SHIFT)
            kern /= kern.sum()
            img = _u8(cv2.filter2D(img, -1, kern, borderType=cv2.BORDER_REPLICATE))
        drift = float(np.sum(np.sin(2 * np.pi * t / self.gain_period + self.gain_phase))) / 3.0
        gain = 1.0 + self.exposure_bias + cfg.gain_drift * drift
        img = _u8(cv2.multiply(img, self.vign, scale=gain * 255.0 / 235.0 / 255.0))
        if cfg.noise_sigma > 0:
            h, w = cfg.size_hw
            i = int(self.rng.integers(len(self.noise)))
            dy, dx = (int(v) for v in self.rng.integers(0, 16, 2))
            img = _u8(cv2.add(img, self.noise[i, dy : dy + h, dx : dx + w], dtype=cv2.CV_8U))
        if cfg.jpeg_quality is not None:
            ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, int(cfg.jpeg_quality)])
            if ok:
                img = _u8(cv2.imdecode(buf, cv2.IMREAD_COLOR))
        return img


class DemoScene:
    """A deterministic drone-view sequence with exact ground truth.

    Iterating yields (frame_bgr, gt) per frame: frame_bgr (H, W, 3) uint8; gt (N, 9) float64 MOTChallenge rows
    `frame, id, x, y, w, h, consider, class_id + 1, visibility` (frame 1-based; boxes in 0-based frame px like
    `Detections`, top-left x/y and size, the object's body clipped to the frame (gt.txt files and MOT scoring
    add 1 to x, y: `motchallenge_rows`); consider = 1 when any of it is visible, 0 when it is inside the frame
    but fully hidden). Every iteration replays the same sequence: same seed, same frames.

    seed, split, index: which sequence (see `scene_seed`); the demo is split "demo" and never appears in a
    training set. size_hw, fps, frames: override the same fields of `config`.
    Building the world takes about a second on first iteration; then frames come at well over 60 FPS at
    640x384 on one core (see benchmarks).
    """

    class_names: tuple[str, ...] = CLASS_NAMES

    def __init__(
        self,
        seed: int = 0,
        size_hw: tuple[int, int] | None = None,
        fps: float | None = None,
        frames: int | str | None = "config",
        *,
        config: SceneConfig | None = None,
        split: str = "demo",
        index: int = 0,
    ) -> None:
        cfg = config or SceneConfig()
        updates: dict[str, object] = {}
        if size_hw is not None:
            updates["size_hw"] = (int(size_hw[0]), int(size_hw[1]))
        if fps is not None:
            updates["fps"] = float(fps)
        if frames != "config":
            updates["frames"] = frames
        if updates:
            from dataclasses import replace

            cfg = replace(cfg, **updates)  # type: ignore[arg-type]
        self.config = cfg
        self.seed, self.split, self.index = int(seed), split, int(index)
        self._seeds = scene_seed(seed, split, index).spawn(4)  # world, agents, camera, sensor
        self._world: World | None = None
        self.name = f"edgedet-{split}-{seed}-{index:03d}"

    def __len__(self) -> int:
        if self.config.frames is None:
            raise TypeError("an endless scene (frames=None) has no length")
        return self.config.frames

    @property
    def world(self) -> World:
        if self._world is None:
            self._world = build_world(
                np.random.default_rng(self._seeds[0]), self.config.world_size, self.config.px_per_m
            )
        return self._world

    def seqinfo(self, im_ext: str = ".jpg", im_dir: str = "images") -> dict[str, str]:
        """MOTChallenge seqinfo.ini fields of this sequence."""
        h, w = self.config.size_hw
        return {
            "name": self.name,
            "imDir": im_dir,
            "frameRate": f"{self.config.fps:g}",
            "seqLength": str(self.config.frames if self.config.frames is not None else 0),
            "imWidth": str(w),
            "imHeight": str(h),
            "imExt": im_ext,
        }

    def _camera(self) -> CameraPath:
        cfg, world = self.config, self.world
        return CameraPath(
            np.random.default_rng(self._seeds[2]),
            world.size,
            world.px_per_m,
            cfg.altitude_m,
            cfg.tilt_deg,
            cfg.hfov_deg,
            cfg.speed_mps,
        )

    def ground_to_image(self, frames: Iterable[int]) -> list[npt.NDArray[np.float64]]:
        """The exact 3x3 homography from world-ground pixels to image pixels of each 0-based frame index: the
        camera's true motion, for testing motion estimators (frame j's view of frame i's ground point p is
        H[j] @ inv(H[i]) @ p)."""
        camera, cfg = self._camera(), self.config
        return [
            homography(camera.pose(i / cfg.fps), cfg.size_hw, cfg.hfov_deg, self.world.px_per_m)
            for i in frames
        ]

    def camera_pose(self, time_s: float) -> CameraPose:
        """The camera's exact pose at `time_s` seconds (frame i is at i / fps)."""
        return self._camera().pose(time_s)

    def world_to_en(self, xy: npt.ArrayLike) -> npt.NDArray[np.float64]:
        """(N, 2) world px -> (N, 2) metres east, north of the world's centre (the geo origin)."""
        p = np.asarray(xy, np.float64).reshape(-1, 2)
        half = self.config.world_size / 2.0
        ppm = self.config.px_per_m
        return np.stack([(p[:, 0] - half) / ppm, (half - p[:, 1]) / ppm], axis=1)

    def __iter__(self) -> Iterator[tuple[npt.NDArray[np.uint8], npt.NDArray[np.float64]]]:
        for img, gt, _truth in self._frames(False):
            yield img, gt

    def iter_truth(self) -> Iterator[tuple[npt.NDArray[np.uint8], npt.NDArray[np.float64], dict[int, tuple[float, float]]]]:
        """Like iterating the scene (same frames, same gt), plus each frame's exact ground positions: a dict
        object id -> (east_m, north_m) of the object's centre on the ground (see SceneConfig for the frame),
        for every object the frame's gt lists."""
        yield from self._frames(True)

    def _frames(
        self, truth: bool
    ) -> Iterator[tuple[npt.NDArray[np.uint8], npt.NDArray[np.float64], dict[int, tuple[float, float]]]]:
        cfg, world = self.config, self.world
        agents_rng = np.random.default_rng(self._seeds[1])
        traffic = Traffic(agents_rng, world, cfg.vehicles, cfg.parked_fraction)
        crowd = Crowd(agents_rng, world, cfg.people, first_id=1_000_000)
        camera = self._camera()
        renderer = _Renderer(cfg, world, np.random.default_rng(self._seeds[3]))
        sprites: dict[int, _Sprite] = {}
        dt = 1.0 / cfg.fps
        h_prev: npt.NDArray[np.float64] | None = None
        i = 0
        while cfg.frames is None or i < cfg.frames:
            t = i * dt
            hmat = homography(camera.pose(t), cfg.size_hw, cfg.hfov_deg, world.px_per_m)
            if h_prev is None:
                h_prev = homography(camera.pose(t - dt), cfg.size_hw, cfg.hfov_deg, world.px_per_m)
            img, gt, objs = _render_objects(cfg, world, hmat, traffic, crowd, sprites, renderer, i + 1)
            if cfg.sensor_effects:
                img = renderer.sensor(img, _image_motion(hmat, h_prev, cfg.size_hw), t)
            where: dict[int, tuple[float, float]] = {}
            if truth and objs is not None and len(gt):
                en = self.world_to_en(np.array(objs.xy))
                pos = {oid: (float(e), float(n)) for oid, (e, n) in zip(objs.ids, en, strict=True)}
                where = {int(oid): pos[int(oid)] for oid in gt[:, 1]}
            yield img, gt, where
            h_prev = hmat
            traffic.step(dt)
            crowd.step(dt)
            if len(sprites) > 4 * (len(traffic.vehicles) + len(crowd.ids)):
                alive = {v.id for v in traffic.vehicles}
                sprites = {k: s for k, s in sprites.items() if k in alive or k >= 1_000_000}
            i += 1


def _u8(a: object) -> npt.NDArray[np.uint8]:
    """OpenCV's results are typed as any array; they are uint8 here (no copy)."""
    return np.asarray(a, np.uint8)


def _image_motion(
    h_now: npt.NDArray[np.float64], h_prev: npt.NDArray[np.float64], size_hw: tuple[int, int]
) -> tuple[float, float]:
    """Pixels the ground at the image centre moved between the previous frame and this one."""
    h, w = size_hw
    centre = np.array([w / 2, h / 2, 1.0])
    ground = np.linalg.solve(h_now, centre)
    prev = h_prev @ ground
    return float(w / 2 - prev[0] / prev[2]), float(h / 2 - prev[1] / prev[2])


def _project(hmat: npt.NDArray[np.float64], xy: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    p = xy @ hmat[:, :2].T + hmat[:, 2]
    return p[:, :2] / p[:, 2:3]


def _collect(
    cfg: SceneConfig,
    world: World,
    hmat: npt.NDArray[np.float64],
    traffic: Traffic,
    crowd: Crowd,
    sprites: dict[int, _Sprite],
) -> _Objects:
    h, w = cfg.size_hw
    margin = 12.0 * world.px_per_m * 1.6  # generous: half a truck at the lowest altitude, in output px
    objs = _Objects()
    if len(crowd.ids):
        p = _project(hmat, crowd.xy)
        keep = np.nonzero(
            (p[:, 0] > -margin) & (p[:, 0] < w + margin) & (p[:, 1] > -margin) & (p[:, 1] < h + margin)
        )[0]
        for k in keep:
            pid = int(crowd.ids[k])
            if pid not in sprites:
                sprites[pid] = _person_sprite(float(crowd.size_m[k]), crowd.shirt[k], crowd.hair[k])
            objs.ids.append(pid)
            objs.cls.append(PERSON)
            objs.xy.append((float(crowd.xy[k, 0]), float(crowd.xy[k, 1])))
            objs.heading.append(float(crowd.heading[k]))
            objs.sprite.append(sprites[pid])
            objs.shadow_m.append(0.9 * float(crowd.size_m[k]))
    state, ids = traffic.state()
    if len(ids):
        p = _project(hmat, state[:, :2])
        inside = (p[:, 0] > -margin) & (p[:, 0] < w + margin) & (p[:, 1] > -margin) & (p[:, 1] < h + margin)
        # cars below trucks: trucks are taller and cover what is next to them in an oblique view
        order = sorted(np.nonzero(inside)[0], key=lambda k: (traffic.vehicles[k].cls == TRUCK, int(ids[k])))
        for k in order:
            v = traffic.vehicles[k]
            if v.id not in sprites:
                sprites[v.id] = _vehicle_sprite(v)
            objs.ids.append(v.id)
            objs.cls.append(v.cls)
            objs.xy.append((v.x, v.y))
            objs.heading.append(v.heading)
            objs.sprite.append(sprites[v.id])
            objs.shadow_m.append(1.0 if v.cls == CAR else 2.0)
    return objs


def _render(
    cfg: SceneConfig,
    world: World,
    hmat: npt.NDArray[np.float64],
    traffic: Traffic,
    crowd: Crowd,
    sprites: dict[int, _Sprite],
    renderer: _Renderer,
    frame_no: int,
) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.float64]]:
    img, gt, _objs = _render_objects(cfg, world, hmat, traffic, crowd, sprites, renderer, frame_no)
    return img, gt


def _render_objects(
    cfg: SceneConfig,
    world: World,
    hmat: npt.NDArray[np.float64],
    traffic: Traffic,
    crowd: Crowd,
    sprites: dict[int, _Sprite],
    renderer: _Renderer,
    frame_no: int,
) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.float64], _Objects | None]:
    h, w = cfg.size_hw
    bgra = _warp(world, hmat, (h, w))
    bg = _u8(cv2.cvtColor(bgra, cv2.COLOR_BGRA2BGR))
    if not cfg.draw_objects:
        return bg, np.zeros((0, 9), np.float64), None
    objs = _collect(cfg, world, hmat, traffic, crowd, sprites)
    n = len(objs.ids)
    if n == 0:
        return bg, np.zeros((0, 9), np.float64), objs
    ppm = world.px_per_m
    sdx, sdy = world.sun_dir

    # All polygon vertices of all objects -> world px -> frame px, in one go.
    local: list[npt.NDArray[np.float64]] = []
    owner: list[int] = []
    is_shadow: list[bool] = []
    for k in range(n):
        spr = objs.sprite[k]
        for part in spr.parts:
            local.append(part)
            owner.append(k)
            is_shadow.append(False)
        local.append(spr.shadow)
        owner.append(k)
        is_shadow.append(True)
    counts = np.array([len(p) for p in local])
    pts_m = np.concatenate(local)
    own = np.repeat(np.array(owner), counts)
    shadow_pt = np.repeat(np.array(is_shadow), counts)
    xy = np.array(objs.xy)
    heading = np.array(objs.heading)
    # people's shadows are drawn in the sun's frame (they are cast on the ground, not turned with the body)
    person = np.array(objs.cls) == PERSON
    ang = np.where(shadow_pt & person[own], math.atan2(sdy, sdx), heading[own])
    cos_a, sin_a = np.cos(ang), np.sin(ang)
    wx = (pts_m[:, 0] * cos_a - pts_m[:, 1] * sin_a) * ppm + xy[own, 0]
    wy = (pts_m[:, 0] * sin_a + pts_m[:, 1] * cos_a) * ppm + xy[own, 1]
    shadow_off = np.array(objs.shadow_m)[own] * ppm * shadow_pt
    wx += sdx * shadow_off
    wy += sdy * shadow_off
    fixed = np.round(_project(hmat, np.stack([wx, wy], axis=1)) * _ONE).astype(np.int32)
    bounds = np.concatenate([[0], np.cumsum(counts)])
    polys = [fixed[bounds[i] : bounds[i + 1]] for i in range(len(local))]

    img = bg.copy()
    # Shadows: one coverage mask over the region they span, then darken the ground under it (where shadows
    # overlap the ground darkens once, as in reality).
    roi = _roi(fixed[shadow_pt], h, w)
    if roi is not None:
        x0, y0, x1, y1 = roi
        mask = np.zeros((y1 - y0, x1 - x0), np.uint8)
        off = np.array([x0 * _ONE, y0 * _ONE], np.int32)
        for poly, sh in zip(polys, is_shadow, strict=True):
            if sh:
                cv2.fillConvexPoly(mask, poly - off, 255, cv2.LINE_AA, _SHIFT)
        fac = cv2.convertScaleAbs(mask, alpha=-(1.0 - world.shadow_gain), beta=255.0)
        img[y0:y1, x0:x1] = cv2.multiply(img[y0:y1, x0:x1], cv2.merge([fac, fac, fac]), scale=1.0 / 255.0)

    idbuf = np.zeros((h, w), np.uint16)
    pi = 0
    body_polys: list[list[npt.NDArray[np.int32]]] = [[] for _ in range(n)]
    for k in range(n):
        spr = objs.sprite[k]
        for j, colour in enumerate(spr.colours):
            poly = polys[pi]
            cv2.fillConvexPoly(img, poly, colour, cv2.LINE_AA, _SHIFT)
            if j < spr.n_body:
                cv2.fillConvexPoly(idbuf, poly, k + 1, cv2.LINE_8, _SHIFT)
                body_polys[k].append(poly)
            pi += 1
        pi += 1  # the shadow polygon
    # Tree crowns go back on top of everything drawn, and hide those pixels from the id buffer.
    roi = _roi(fixed, h, w)
    if roi is not None:
        x0, y0, x1, y1 = roi
        crown = bgra[y0:y1, x0:x1, 3] > 127
        np.copyto(img[y0:y1, x0:x1], bg[y0:y1, x0:x1], where=crown[..., None])
        open_sky = (~crown).view(np.uint8)
        ids = cv2.bitwise_and(idbuf[y0:y1, x0:x1], idbuf[y0:y1, x0:x1], mask=open_sky)
        visible = np.bincount(ids.ravel(), minlength=n + 1)[1:]
    else:
        visible = np.zeros(n, np.int64)

    rows = []
    for k in range(n):
        body = np.concatenate(body_polys[k])
        x0f, y0f = body.min(axis=0) / _ONE
        x1f, y1f = body.max(axis=0) / _ONE
        bx0, by0 = max(x0f, 0.0), max(y0f, 0.0)
        bx1, by1 = min(x1f, float(w)), min(y1f, float(h))
        if bx1 - bx0 <= 0 or by1 - by0 <= 0:
            continue
        full = _raster_count(body_polys[k])
        if full == 0:
            continue
        vis = min(1.0, visible[k] / full)
        rows.append(
            [
                frame_no,
                objs.ids[k],
                bx0,
                by0,
                bx1 - bx0,
                by1 - by0,
                1.0 if visible[k] > 0 else 0.0,
                objs.cls[k] + 1,
                vis,
            ]
        )
    gt = np.array(rows, np.float64).reshape(-1, 9)
    return img, gt, objs


def _warp(world: World, hmat: npt.NDArray[np.float64], size_hw: tuple[int, int]) -> npt.NDArray[np.uint8]:
    """(H, W, 4) view of the world layers; from the half-resolution level when the view is zoomed out far
    enough that full resolution would only alias (fewer than 0.75 output px per world px at the centre)."""
    h, w = size_hw
    centre = np.linalg.solve(hmat, np.array([w / 2, h / 2, 1.0]))
    probe = np.array(
        [[centre[0] / centre[2], centre[1] / centre[2]], [centre[0] / centre[2] + 1, centre[1] / centre[2]]]
    )
    p = _project(hmat, probe)
    scale = float(np.hypot(*(p[1] - p[0])))
    if scale < 0.75:
        hmat = hmat @ np.diag([2.0, 2.0, 1.0])
        src = world.half
    else:
        src = world.layers
    return _u8(cv2.warpPerspective(src, hmat, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT))


def _roi(fixed: npt.NDArray[np.int32], h: int, w: int) -> tuple[int, int, int, int] | None:
    """Pixel rectangle (x0, y0, x1, y1) covering fixed-point points, clipped to the frame; None if empty."""
    if len(fixed) == 0:
        return None
    lo = fixed.min(axis=0) >> _SHIFT
    hi = (fixed.max(axis=0) >> _SHIFT) + 2
    x0, y0 = max(int(lo[0]), 0), max(int(lo[1]), 0)
    x1, y1 = min(int(hi[0]), w), min(int(hi[1]), h)
    if x1 <= x0 or y1 <= y0:
        return None
    return x0, y0, x1, y1


def _raster_count(polys: list[npt.NDArray[np.int32]]) -> int:
    """Pixels the union of `polys` covers when drawn with nothing in the way and no frame edge."""
    allp = np.concatenate(polys)
    lo = (allp.min(axis=0) >> _SHIFT) - 1
    hi = (allp.max(axis=0) >> _SHIFT) + 2
    canvas = np.zeros((int(hi[1] - lo[1]), int(hi[0] - lo[0])), np.uint8)
    off = (lo << _SHIFT).astype(np.int32)
    for p in polys:
        cv2.fillConvexPoly(canvas, p - off, 1, cv2.LINE_8, _SHIFT)
    return int(np.count_nonzero(canvas))
