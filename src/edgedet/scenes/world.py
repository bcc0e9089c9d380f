"""The ground a drone flies over: one large procedurally painted image plus the maps the agents need.

World coordinates are world-image pixels (x right, y down); `px_per_m` converts to metres. The road network is a
grid of axis-aligned roads with irregular spacing; the blocks between roads are houses with gardens, commercial
roofs with parking lots, parks, or crop fields. Trees are painted last and also kept as a canopy mask because
they hide whatever moves under them (the renderer uses the mask for occlusion and visibility).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

# Material labels (one byte per world pixel). People may walk on GRASS, SIDEWALK, PARKING and CROSSWALK.
GRASS, FIELD, ROAD, SIDEWALK, BUILDING, PARKING, CROSSWALK = range(7)
WALKABLE_LABELS = (GRASS, SIDEWALK, PARKING, CROSSWALK)
_WALK_CELL = 4  # world px per cell of the coarse walkable map

LANE_W_M = 3.4
SIDEWALK_W_M = 2.6


@dataclass(frozen=True)
class RoadNetwork:
    """Axis-aligned road grid.

    xs: centre x (world px) of each north-south road, ascending; lanes_x: lanes per direction on each.
    ys, lanes_y: the same for east-west roads. lane_w: lane width in world px. size: world side in px.
    """

    xs: tuple[float, ...]
    ys: tuple[float, ...]
    lanes_x: tuple[int, ...]
    lanes_y: tuple[int, ...]
    lane_w: float
    size: int

    def half_width(self, axis: int, road: int) -> float:
        """Half width (px) of the carriageway of road `road` on `axis` (0: east-west, 1: north-south)."""
        lanes = self.lanes_y[road] if axis == 0 else self.lanes_x[road]
        return lanes * self.lane_w + 0.15 * self.lane_w

    def lanes(self, axis: int, road: int) -> int:
        return self.lanes_y[road] if axis == 0 else self.lanes_x[road]

    def crossings(self, axis: int) -> tuple[float, ...]:
        """Coordinates along a road of `axis` where the other roads cross it."""
        return self.xs if axis == 0 else self.ys


@dataclass(frozen=True)
class World:
    """A painted world and what the simulation needs to know about it.

    layers: (S, S, 4) uint8: BGR colour and, as the 4th channel, 255 under tree crowns (they hide objects).
    OpenCV warps 4-channel images about twice as fast as 3-channel ones, hence one array for both.
    half: the same at half resolution (a mip level: less aliasing and faster warps when the view zooms out).
    walkable: (S/4, S/4) bool, one cell per 4x4 world px, True where people may walk.
    parking: (P, 3) float64 rows (x, y, heading_rad) of parking stalls, world px.
    sun_dir: unit (dx, dy) in which shadows fall; shadow_gain: brightness factor inside a shadow.
    """

    layers: npt.NDArray[np.uint8]
    half: npt.NDArray[np.uint8]
    walkable: npt.NDArray[np.bool_]
    roads: RoadNetwork
    parking: npt.NDArray[np.float64]
    px_per_m: float
    sun_dir: tuple[float, float]
    shadow_gain: float

    @property
    def size(self) -> int:
        return int(self.layers.shape[0])

    @property
    def image(self) -> npt.NDArray[np.uint8]:
        """(S, S, 3) uint8 BGR view of the colour layers."""
        return self.layers[..., :3]

    @property
    def canopy(self) -> npt.NDArray[np.uint8]:
        """(S, S) uint8 view, 255 under tree crowns."""
        return self.layers[..., 3]

    def is_walkable(self, xy: npt.NDArray[np.float64]) -> npt.NDArray[np.bool_]:
        """(N, 2) world px -> (N,) bool; outside the world counts as not walkable."""
        cells = np.floor(np.asarray(xy, np.float64) / _WALK_CELL).astype(np.int64)
        n = self.walkable.shape[0]
        inside = (cells >= 0).all(axis=1) & (cells < n).all(axis=1)
        out = np.zeros(len(cells), bool)
        c = cells[inside]
        out[inside] = self.walkable[c[:, 1], c[:, 0]]
        return out


def value_noise(rng: np.random.Generator, size: int, cells: int) -> npt.NDArray[np.float32]:
    """(size, size) float32 smooth noise, roughly in [-1, 1], with about `cells` features across."""
    grid = rng.uniform(-1.0, 1.0, (cells + 1, cells + 1)).astype(np.float32)
    return np.asarray(cv2.resize(grid, (size, size), interpolation=cv2.INTER_CUBIC), np.float32)


def _bgr(c: npt.NDArray[np.float64] | tuple[float, float, float]) -> tuple[int, int, int]:
    a = np.clip(np.asarray(c, np.float64), 0, 255)
    return int(a[0]), int(a[1]), int(a[2])


def _rect_poly(cx: float, cy: float, w: float, h: float, angle: float = 0.0) -> npt.NDArray[np.int32]:
    """Integer polygon (4, 2) of a w x h rectangle centred at (cx, cy), rotated by `angle` radians."""
    c, s = np.cos(angle), np.sin(angle)
    local = np.array([[-w / 2, -h / 2], [w / 2, -h / 2], [w / 2, h / 2], [-w / 2, h / 2]])
    pts = local @ np.array([[c, s], [-s, c]]) + [cx, cy]
    return np.round(pts).astype(np.int32)


class _Painter:
    """Paints colour and material label together so the two never disagree."""

    def __init__(self, img: npt.NDArray[np.uint8], label: npt.NDArray[np.uint8]) -> None:
        self.img = img
        self.label = label

    def poly(self, pts: npt.NDArray[np.int32], color: tuple[int, int, int], material: int | None) -> None:
        cv2.fillPoly(self.img, [pts], color, cv2.LINE_AA)
        if material is not None:
            cv2.fillPoly(self.label, [pts], material)

    def rect(
        self, x0: float, y0: float, x1: float, y1: float, color: tuple[int, int, int], material: int | None
    ) -> None:
        pts = np.round(np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]])).astype(np.int32)
        self.poly(pts, color, material)

    def shade(self, pts: npt.NDArray[np.int32], gain: float) -> None:
        """Darken the ground under a polygon (a cast shadow), keeping its texture."""
        x, y, w, h = cv2.boundingRect(pts)
        x0, y0 = max(x, 0), max(y, 0)
        x1, y1 = min(x + w, self.img.shape[1]), min(y + h, self.img.shape[0])
        if x1 <= x0 or y1 <= y0:
            return
        mask = np.zeros((y1 - y0, x1 - x0), np.uint8)
        cv2.fillPoly(mask, [pts - [x0, y0]], 255, cv2.LINE_AA)
        roi = self.img[y0:y1, x0:x1]
        f = 1.0 - (1.0 - gain) * (mask.astype(np.float32) / 255.0)
        roi[:] = (roi * f[..., None]).astype(np.uint8)


def _road_positions(rng: np.random.Generator, size: int, ppm: float) -> list[float]:
    pos, out = rng.uniform(25, 60) * ppm, []
    while pos < size - 25 * ppm:
        out.append(float(pos))
        pos += rng.uniform(65, 120) * ppm
    return out


def build_world(rng: np.random.Generator, size: int = 4096, px_per_m: float = 8.0) -> World:
    """Paint a new world. Deterministic given the generator state. About a second at 4096 px."""
    ppm = px_per_m
    xs, ys = _road_positions(rng, size, ppm), _road_positions(rng, size, ppm)
    lanes_x = tuple(int(v) for v in rng.choice([1, 1, 2], len(xs)))
    lanes_y = tuple(int(v) for v in rng.choice([1, 1, 2], len(ys)))
    roads = RoadNetwork(tuple(xs), tuple(ys), lanes_x, lanes_y, LANE_W_M * ppm, size)
    sun = rng.uniform(0, 2 * np.pi)
    sun_dir = (float(np.cos(sun)), float(np.sin(sun)))
    shadow_gain = float(rng.uniform(0.5, 0.68))

    # Base: grass whose hue wanders over tens of metres.
    grass = np.array(rng.choice([[60, 120, 95], [55, 110, 100], [70, 125, 105], [62, 105, 88]]), np.float32)
    # colour fields are smooth, so compute them at 1/8 resolution and upscale once
    lo = value_noise(rng, size // 8, 12)
    tint = np.array([-8, 14, 10], np.float32)
    small = np.clip(grass + lo[..., None] * tint, 0, 255).astype(np.uint8)
    img = np.asarray(cv2.resize(small, (size, size), interpolation=cv2.INTER_LINEAR), np.uint8)
    label = np.full((size, size), GRASS, np.uint8)
    p = _Painter(img, label)
    trees: list[tuple[float, float, float]] = []
    parking: list[tuple[float, float, float]] = []
    sdx, sdy = sun_dir

    # Blocks: the rectangles between roads (and the world edge), shrunk by road + sidewalk.
    bx = [0.0, *xs, float(size)]
    by = [0.0, *ys, float(size)]
    for i in range(len(bx) - 1):
        for j in range(len(by) - 1):
            x0 = bx[i] + (roads.half_width(1, i - 1) + SIDEWALK_W_M * ppm if i > 0 else 0)
            x1 = bx[i + 1] - (roads.half_width(1, i) + SIDEWALK_W_M * ppm if i < len(xs) else 0)
            y0 = by[j] + (roads.half_width(0, j - 1) + SIDEWALK_W_M * ppm if j > 0 else 0)
            y1 = by[j + 1] - (roads.half_width(0, j) + SIDEWALK_W_M * ppm if j < len(ys) else 0)
            if x1 - x0 < 10 * ppm or y1 - y0 < 10 * ppm:
                continue
            kind = rng.choice(["houses", "houses", "commercial", "park", "field"])
            _paint_block(rng, p, str(kind), (x0, y0, x1, y1), ppm, (sdx, sdy), shadow_gain, trees, parking)

    # Sidewalks, then carriageways, then markings (per segment between junctions).
    sw = SIDEWALK_W_M * ppm
    pave = _bgr(np.array([150, 155, 158]) + rng.uniform(-15, 15))
    asphalt = _bgr(np.array([78, 80, 82]) + rng.uniform(-12, 12))
    for axis, centres in ((0, ys), (1, xs)):
        for k, c in enumerate(centres):
            hw = roads.half_width(axis, k)
            if axis == 0:
                p.rect(0, c - hw - sw, size, c + hw + sw, pave, SIDEWALK)
            else:
                p.rect(c - hw - sw, 0, c + hw + sw, size, pave, SIDEWALK)
    for axis, centres in ((0, ys), (1, xs)):
        for k, c in enumerate(centres):
            hw = roads.half_width(axis, k)
            if axis == 0:
                p.rect(0, c - hw, size, c + hw, asphalt, ROAD)
            else:
                p.rect(c - hw, 0, c + hw, size, asphalt, ROAD)
    _paint_markings(rng, p, roads, ppm)

    for tx, ty, tr in trees:
        centre = (int(tx + sdx * tr * 0.9), int(ty + sdy * tr * 0.9))
        crown = cv2.ellipse2Poly(centre, (int(tr * 0.85), int(tr * 0.85)), 0, 0, 360, 20)
        p.shade(np.asarray(crown, np.int32), shadow_gain)
    canopy = np.zeros((size, size), np.uint8)
    for tx, ty, tr in trees:
        base = np.array([45, 100, 60], np.float64) + rng.uniform(-15, 15, 3)
        # a crown is a clump of leafy lobes: dark underneath, lighter towards the sun
        lobes = [
            (rng.normal(0, tr * 0.3), rng.normal(0, tr * 0.3), tr * rng.uniform(0.45, 0.65)) for _ in range(6)
        ]
        for ox, oy, rr in lobes:
            cv2.circle(img, (int(tx + ox), int(ty + oy)), int(rr), _bgr(base * 0.75), -1, cv2.LINE_AA)
            cv2.circle(canopy, (int(tx + ox), int(ty + oy)), int(rr), 255, -1)
        for ox, oy, rr in lobes:
            hx, hy = tx + ox - sdx * rr * 0.3, ty + oy - sdy * rr * 0.3
            cv2.circle(
                img, (int(hx), int(hy)), int(rr * 0.6), _bgr(base * rng.uniform(1.0, 1.3)), -1, cv2.LINE_AA
            )
    label[canopy > 0] = GRASS  # crowns over pavement still let people walk beneath

    _texture(rng, img, label)
    walk_small = cv2.resize(label, (size // _WALK_CELL, size // _WALK_CELL), interpolation=cv2.INTER_NEAREST)
    walkable = np.isin(walk_small, WALKABLE_LABELS)
    park = np.asarray(parking, np.float64).reshape(-1, 3)
    layers = np.dstack([img, canopy])
    return World(
        layers, np.asarray(cv2.pyrDown(layers), np.uint8), walkable, roads, park, ppm, sun_dir, shadow_gain
    )


def _paint_block(
    rng: np.random.Generator,
    p: _Painter,
    kind: str,
    box: tuple[float, float, float, float],
    ppm: float,
    sun: tuple[float, float],
    shadow_gain: float,
    trees: list[tuple[float, float, float]],
    parking: list[tuple[float, float, float]],
) -> None:
    x0, y0, x1, y1 = box
    if kind == "field":
        base = np.array(
            rng.choice([[70, 140, 150], [60, 120, 90], [90, 150, 170], [55, 95, 120], [80, 130, 110]])
        )
        p.rect(x0, y0, x1, y1, _bgr(base), FIELD)
        # crop rows: a stripe pattern at a random angle
        ix0, iy0, ix1, iy1 = int(x0), int(y0), int(x1), int(y1)
        yy, xx = np.mgrid[iy0:iy1, ix0:ix1].astype(np.float32)
        ang = rng.choice([0.0, np.pi / 2]) + rng.normal(0, 0.05)
        period = rng.uniform(1.2, 2.5) * ppm
        stripes = np.sin((xx * np.cos(ang) + yy * np.sin(ang)) * (2 * np.pi / period))
        roi = p.img[iy0:iy1, ix0:ix1].astype(np.float32)
        roi *= (1.0 + 0.10 * stripes)[..., None]
        p.img[iy0:iy1, ix0:ix1] = np.clip(roi, 0, 255).astype(np.uint8)
        return
    if kind == "park":
        lawn = np.array([65, 135, 95], np.float64) + rng.uniform(-10, 10, 3)
        p.rect(x0, y0, x1, y1, _bgr(lawn), GRASS)
        # footpaths crossing the park
        path = _bgr(np.array([140, 160, 170]) + rng.uniform(-15, 15))
        cx, cy = rng.uniform(x0, x1), rng.uniform(y0, y1)
        w = 2.2 * ppm
        p.rect(x0, cy - w / 2, x1, cy + w / 2, path, SIDEWALK)
        p.rect(cx - w / 2, y0, cx + w / 2, y1, path, SIDEWALK)
        for _ in range(int((x1 - x0) * (y1 - y0) / (ppm * ppm) / 180)):
            trees.append((rng.uniform(x0, x1), rng.uniform(y0, y1), rng.uniform(2.5, 5.5) * ppm))
        return
    if kind == "commercial":
        pave = _bgr(np.array([120, 122, 125]) + rng.uniform(-10, 10))
        p.rect(x0, y0, x1, y1, pave, PARKING)
        bw = (x1 - x0) * rng.uniform(0.45, 0.65)
        bh = (y1 - y0) * rng.uniform(0.45, 0.7)
        bx0 = x0 + rng.uniform(0.05, 0.95) * (x1 - x0 - bw)
        by0 = y0 + 3 * ppm
        roof = np.array(
            rng.choice([[175, 178, 180], [150, 160, 170], [120, 125, 130], [190, 195, 200]]), np.float64
        )
        _building(p, bx0, by0, bx0 + bw, by0 + bh, roof, ppm, sun, shadow_gain, flat=True, rng=rng)
        # parking stalls below the building: rows of 2.6 m x 5 m bays, cars facing the aisle
        line = (215, 215, 215)
        stall_w, stall_l = 2.6 * ppm, 5.0 * ppm
        row_y = by0 + bh + 7 * ppm
        while row_y + stall_l < y1 - 2 * ppm:
            sx = x0 + 3 * ppm
            while sx + stall_w < x1 - 3 * ppm:
                cv2.line(
                    p.img,
                    (int(sx), int(row_y)),
                    (int(sx), int(row_y + stall_l)),
                    line,
                    max(1, int(0.15 * ppm)),
                )
                if rng.random() < 0.55:
                    head = np.pi / 2 if rng.random() < 0.5 else -np.pi / 2
                    parking.append((sx + stall_w / 2, row_y + stall_l / 2, head + rng.normal(0, 0.04)))
                sx += stall_w
            row_y += stall_l + 7 * ppm
        return
    # houses with gardens, a row along each long side of the block
    garden = np.array([70, 130, 100], np.float64) + rng.uniform(-12, 12, 3)
    p.rect(x0, y0, x1, y1, _bgr(garden), GRASS)
    depth = y1 - y0
    for top in (True, False):
        if depth < 44 * ppm and not top:
            break
        x = x0 + rng.uniform(1, 5) * ppm
        while True:
            w, h = rng.uniform(8, 14) * ppm, rng.uniform(9, 13) * ppm
            if x + w > x1 - 1 * ppm:
                break
            setback = rng.uniform(4, 8) * ppm
            hy0 = y0 + setback if top else y1 - setback - h
            roof = np.array(
                rng.choice([[60, 80, 160], [70, 70, 75], [50, 60, 110], [90, 90, 95], [80, 100, 140]]),
                np.float64,
            ) + rng.uniform(-10, 10, 3)
            _building(p, x, hy0, x + w, hy0 + h, roof, ppm, sun, shadow_gain, flat=False, rng=rng)
            if rng.random() < 0.6:
                trees.append(
                    (
                        x + w + rng.uniform(1, 3) * ppm,
                        (hy0 + (y1 if top else y0)) / 2,
                        rng.uniform(2, 4) * ppm,
                    )
                )
            x += w + rng.uniform(3, 9) * ppm


def _building(
    p: _Painter,
    x0: float,
    y0: float,
    x1: float,
    y1: float,
    roof: npt.NDArray[np.float64],
    ppm: float,
    sun: tuple[float, float],
    shadow_gain: float,
    *,
    flat: bool,
    rng: np.random.Generator,
) -> None:
    sdx, sdy = sun
    height = (rng.uniform(6, 14) if flat else rng.uniform(4, 7)) * ppm * 0.5
    shadow = np.round(
        np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]]) + np.array([sdx * height, sdy * height])
    ).astype(np.int32)
    p.shade(
        np.asarray(
            cv2.convexHull(
                np.concatenate([shadow, _rect_poly((x0 + x1) / 2, (y0 + y1) / 2, x1 - x0, y1 - y0)])
            ),
            np.int32,
        ),
        shadow_gain,
    )
    p.rect(x0, y0, x1, y1, _bgr(roof), BUILDING)
    if flat:
        cv2.rectangle(p.img, (int(x0), int(y0)), (int(x1), int(y1)), _bgr(roof * 0.8), max(1, int(0.5 * ppm)))
        for _ in range(int(rng.integers(2, 7))):
            hx, hy = rng.uniform(x0 + 3 * ppm, x1 - 3 * ppm), rng.uniform(y0 + 3 * ppm, y1 - 3 * ppm)
            s = rng.uniform(1.2, 3.0) * ppm
            p.shade(_rect_poly(hx + sdx * s * 0.6, hy + sdy * s * 0.6, s, s), shadow_gain)
            p.rect(hx - s / 2, hy - s / 2, hx + s / 2, hy + s / 2, _bgr(roof * 1.1 + 10), None)
        return
    # gable roof: the ridge runs along the long side; the half facing the sun is brighter
    if x1 - x0 >= y1 - y0:
        ym = (y0 + y1) / 2
        lit_top = sdy > 0  # shadows fall +y, so the sun is at -y: the top half faces it
        p.rect(x0, y0, x1, ym, _bgr(roof * (1.15 if lit_top else 0.78)), None)
        p.rect(x0, ym, x1, y1, _bgr(roof * (0.78 if lit_top else 1.15)), None)
        cv2.line(p.img, (int(x0), int(ym)), (int(x1), int(ym)), _bgr(roof * 0.6), max(1, int(0.2 * ppm)))
    else:
        xm = (x0 + x1) / 2
        lit_left = sdx > 0
        p.rect(x0, y0, xm, y1, _bgr(roof * (1.15 if lit_left else 0.78)), None)
        p.rect(xm, y0, x1, y1, _bgr(roof * (0.78 if lit_left else 1.15)), None)
        cv2.line(p.img, (int(xm), int(y0)), (int(xm), int(y1)), _bgr(roof * 0.6), max(1, int(0.2 * ppm)))


def _paint_markings(rng: np.random.Generator, p: _Painter, roads: RoadNetwork, ppm: float) -> None:
    white = (225, 228, 230)
    yellow = (60, 190, 215)
    thick = max(1, round(0.15 * ppm))
    dash, gap = 3.0 * ppm, 6.0 * ppm
    for axis in (0, 1):
        centres = roads.ys if axis == 0 else roads.xs
        cross = roads.crossings(axis)
        for k, c in enumerate(centres):
            hw = roads.half_width(axis, k)
            lanes = roads.lanes(axis, k)
            # segments between junctions (junction boxes stay unmarked)
            stops = [0.0]
            for j, cc in enumerate(cross):
                chw = roads.half_width(1 - axis, j)
                stops += [cc - chw - 2.5 * ppm, cc + chw + 2.5 * ppm]
            stops.append(float(roads.size))
            centre_colour = yellow if rng.random() < 0.4 else white
            for a0, a1 in zip(stops[0::2], stops[1::2], strict=True):
                if a1 - a0 < ppm:
                    continue
                offsets: list[tuple[float, bool, tuple[int, int, int]]] = [(-hw + 0.3 * ppm, False, white)]
                offsets.append((hw - 0.3 * ppm, False, white))
                offsets.append((0.0, lanes == 1, centre_colour))
                for lane in range(1, lanes):
                    offsets += [(lane * roads.lane_w, True, white), (-lane * roads.lane_w, True, white)]
                for off, dashed, colour in offsets:
                    if dashed:
                        a = a0 + rng.uniform(0, gap)
                        while a < a1:
                            _line(p, axis, c + off, a, min(a + dash, a1), colour, thick)
                            a += dash + gap
                    else:
                        _line(p, axis, c + off, a0, a1, colour, thick)
            # zebra crossings just outside each junction
            for j, cc in enumerate(cross):
                chw = roads.half_width(1 - axis, j)
                for side in (-1, 1):
                    a_mid = cc + side * (chw + 1.3 * ppm)
                    n = int(2 * hw / (0.9 * ppm))
                    for s in range(n):
                        o = -hw + (s + 0.5) * (2 * hw / n)
                        if axis == 0:
                            p.rect(
                                a_mid - 1.2 * ppm,
                                c + o - 0.22 * ppm,
                                a_mid + 1.2 * ppm,
                                c + o + 0.22 * ppm,
                                white,
                                None,
                            )
                        else:
                            p.rect(
                                c + o - 0.22 * ppm,
                                a_mid - 1.2 * ppm,
                                c + o + 0.22 * ppm,
                                a_mid + 1.2 * ppm,
                                white,
                                None,
                            )
                    if axis == 0:
                        cv2.rectangle(
                            p.label,
                            (int(a_mid - 1.2 * ppm), int(c - hw)),
                            (int(a_mid + 1.2 * ppm), int(c + hw)),
                            CROSSWALK,
                            -1,
                        )
                    else:
                        cv2.rectangle(
                            p.label,
                            (int(c - hw), int(a_mid - 1.2 * ppm)),
                            (int(c + hw), int(a_mid + 1.2 * ppm)),
                            CROSSWALK,
                            -1,
                        )


def _line(
    p: _Painter, axis: int, c: float, a0: float, a1: float, colour: tuple[int, int, int], thick: int
) -> None:
    if axis == 0:
        cv2.line(p.img, (int(a0), round(c)), (int(a1), round(c)), colour, thick, cv2.LINE_AA)
    else:
        cv2.line(p.img, (round(c), int(a0)), (round(c), int(a1)), colour, thick, cv2.LINE_AA)


# Texture strength per material (relative brightness jitter of the fine grain and of the large-scale shading).
_GRAIN = np.array([0.10, 0.12, 0.05, 0.05, 0.04, 0.05, 0.03], np.float32)


def _texture(rng: np.random.Generator, img: npt.NDArray[np.uint8], label: npt.NDArray[np.uint8]) -> None:
    """Multiply in large-scale shading and material-dependent grain, in row bands to bound memory."""
    size = img.shape[0]
    small = size // 4
    shade = (
        value_noise(rng, small, 40) * 0.06
        + value_noise(rng, small, 160) * 0.05
        + value_noise(rng, small, 500) * 0.05
    )
    shade = cv2.resize(shade, (size, size), interpolation=cv2.INTER_LINEAR)
    # One 1024-px tile of grain repeated: the repeat (128 m at 8 px/m) is invisible under the shading.
    tile = min(size, 1024)
    grain_tile = cv2.GaussianBlur(rng.standard_normal((tile, tile), dtype=np.float32), (3, 3), 0.7)
    reps = -(-size // tile)
    band = 512
    for y0 in range(0, size, band):
        y1 = min(size, y0 + band)
        rows = np.arange(y0, y1) % tile
        grain = np.tile(grain_tile[rows], (1, reps))[:, :size]
        f = 1.0 + shade[y0:y1] + grain * _GRAIN[label[y0:y1]]
        img[y0:y1] = cv2.multiply(img[y0:y1], cv2.merge([f, f, f]), dtype=cv2.CV_8U)
