"""What moves in the world: vehicles that drive in lanes, turn and stop at junctions, and people who walk.

Vehicles drive on the right. A vehicle follows a short polyline (the rest of its lane up to the next junction,
or a curve through a junction) and picks the next piece when it reaches the end: straight on, turn left or
right, sometimes after a stop. Speeds change smoothly (limited acceleration) and a vehicle slows behind the
one in front. Vehicles that drive off the world are replaced by new ones (new ids) entering at a world edge,
far outside any view. Parked cars never move. People walk on pavements, lawns, car parks and crossings with a
slowly wandering heading, sometimes pausing; they turn away from anything they may not walk on.

Units: positions in world px, speeds in m/s, headings in radians (0 = +x, clockwise positive since y is down).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from edgedet.scenes.world import World

CAR, TRUCK, PERSON = 0, 1, 2
# where a vehicle's centre enters/leaves a junction: metres beyond the crossing road's kerb
_ENTRY_M = 5.0
CLASS_NAMES: tuple[str, ...] = ("car", "truck", "person")

_CAR_COLOURS = np.array(
    [
        [235, 235, 235],
        [230, 232, 228],
        [30, 30, 32],
        [45, 45, 50],
        [170, 172, 175],
        [130, 132, 135],
        [40, 40, 160],
        [120, 60, 30],
        [60, 30, 20],
        [40, 90, 40],
        [50, 160, 220],
        [200, 200, 190],
    ],
    np.float64,
)  # BGR: whites, blacks, silvers and greys dominate as on real roads
_CAR_COLOUR_P = np.array([0.16, 0.1, 0.12, 0.08, 0.14, 0.1, 0.07, 0.07, 0.05, 0.04, 0.03, 0.04])
_BOX_COLOURS = np.array(
    [[240, 240, 240], [215, 218, 220], [180, 185, 190], [60, 120, 200], [150, 90, 40]], np.float64
)
_SHIRTS = np.array(
    [
        [40, 40, 40],
        [230, 230, 230],
        [180, 60, 40],
        [40, 40, 180],
        [60, 150, 60],
        [50, 200, 230],
        [150, 100, 160],
    ],
    np.float64,
)


@dataclass
class Vehicle:
    """One vehicle. `path` is a polyline (list of (x, y) world px) and `s` the distance along it (px)."""

    id: int
    cls: int
    length_m: float
    width_m: float
    colour: tuple[float, float, float]
    colour2: tuple[float, float, float]
    x: float
    y: float
    heading: float
    speed: float = 0.0
    cruise: float = 10.0
    parked: bool = False
    # lane state: axis 0 = east-west road, 1 = north-south; road index; dir +1/-1 along the axis; lane
    axis: int = 0
    road: int = 0
    dir: int = 1
    lane: int = 0
    next_junction: int = -1  # index into roads.crossings(axis) of the junction ahead, -1 none (world edge)
    path: tuple[tuple[float, float], ...] = ()
    cum: tuple[float, ...] = ()
    s: float = 0.0
    in_turn: bool = False
    will_stop: bool = False
    wait_s: float = 0.0
    exited: bool = False


def _polyline(points: list[tuple[float, float]]) -> tuple[tuple[tuple[float, float], ...], tuple[float, ...]]:
    cum = [0.0]
    for (x0, y0), (x1, y1) in itertools.pairwise(points):
        cum.append(cum[-1] + math.hypot(x1 - x0, y1 - y0))
    return tuple(points), tuple(cum)


def _bezier(
    p0: tuple[float, float], d0: tuple[int, int], p1: tuple[float, float], d1: tuple[int, int]
) -> list[tuple[float, float]]:
    """A cubic curve leaving p0 along d0 and arriving at p1 along d1 (a smooth junction turn), 10 points."""
    k = 0.55 * max(abs(p1[0] - p0[0]), abs(p1[1] - p0[1]))
    c0 = (p0[0] + d0[0] * k, p0[1] + d0[1] * k)
    c1 = (p1[0] - d1[0] * k, p1[1] - d1[1] * k)
    pts = []
    for i in range(10):
        t = i / 9
        a, b, c, d = (1 - t) ** 3, 3 * (1 - t) ** 2 * t, 3 * (1 - t) * t * t, t**3
        pts.append(
            (a * p0[0] + b * c0[0] + c * c1[0] + d * p1[0], a * p0[1] + b * c0[1] + c * c1[1] + d * p1[1])
        )
    return pts


class Traffic:
    """All vehicles of a world. `step(dt)` advances them; arrays of the current state come from `state()`."""

    def __init__(self, rng: np.random.Generator, world: World, n_moving: int, parked_fraction: float) -> None:
        self.rng = rng
        self.world = world
        self.roads = world.roads
        self.ppm = world.px_per_m
        self.next_id = 1
        self.vehicles: list[Vehicle] = []
        for x, y, h in world.parking:
            if rng.random() < parked_fraction:
                v = self._new_vehicle(CAR if rng.random() < 0.85 else TRUCK)
                v.x, v.y, v.heading, v.parked = float(x), float(y), float(h), True
                if v.cls == TRUCK:
                    v.length_m = min(v.length_m, 6.5)
                self.vehicles.append(v)
        for _ in range(n_moving):
            self.vehicles.append(self._spawn(anywhere=True))
        self._gaps: npt.NDArray[np.float64] = np.zeros(0)
        self._gap_age_s = 1.0

    # --- creation -------------------------------------------------------------------------------------------
    def _new_vehicle(self, cls: int) -> Vehicle:
        rng = self.rng
        if cls == CAR:
            length, width = rng.uniform(3.9, 4.9), rng.uniform(1.7, 1.95)
            colour = _CAR_COLOURS[rng.choice(len(_CAR_COLOURS), p=_CAR_COLOUR_P)] + rng.uniform(-10, 10, 3)
            colour2 = colour
            cruise = rng.uniform(9, 14)
        else:
            length, width = rng.uniform(6.5, 11.0), rng.uniform(2.35, 2.55)
            colour = _CAR_COLOURS[rng.choice(len(_CAR_COLOURS), p=_CAR_COLOUR_P)] + rng.uniform(-10, 10, 3)
            colour2 = _BOX_COLOURS[rng.integers(len(_BOX_COLOURS))] + rng.uniform(-10, 10, 3)
            cruise = rng.uniform(7, 11)
        vid = self.next_id
        self.next_id += 1
        c, c2 = np.clip(colour, 0, 255), np.clip(colour2, 0, 255)
        return Vehicle(
            vid,
            cls,
            float(length),
            float(width),
            (float(c[0]), float(c[1]), float(c[2])),
            (float(c2[0]), float(c2[1]), float(c2[2])),
            0.0,
            0.0,
            0.0,
            cruise=float(cruise),
        )

    def _spawn(self, anywhere: bool) -> Vehicle:
        """A new moving vehicle on a random lane: anywhere along it, or entering at the world edge."""
        rng, roads = self.rng, self.roads
        v = self._new_vehicle(TRUCK if rng.random() < 0.25 else CAR)
        v.axis = int(rng.integers(2))
        n_roads = len(roads.ys) if v.axis == 0 else len(roads.xs)
        v.road = int(rng.integers(n_roads))
        v.dir = 1 if rng.random() < 0.5 else -1
        v.lane = int(rng.integers(roads.lanes(v.axis, v.road)))
        cross = roads.crossings(v.axis)
        if anywhere:
            # start between two junctions, clear of both
            j = int(rng.integers(len(cross) + 1))
            lo = cross[j - 1] + roads.half_width(1 - v.axis, j - 1) + 6 * self.ppm if j > 0 else 0.0
            hi = (
                cross[j] - roads.half_width(1 - v.axis, j) - 6 * self.ppm
                if j < len(cross)
                else float(roads.size)
            )
            along = float(rng.uniform(lo, max(lo, hi)))
        else:
            along = -20.0 * self.ppm if v.dir > 0 else roads.size + 20.0 * self.ppm
        v.speed = v.cruise * float(rng.uniform(0.6, 1.0))
        self._straight_from(v, along)
        return v

    def _lane_point(
        self, axis: int, road: int, direction: int, lane: int, along: float
    ) -> tuple[float, float]:
        off = (lane + 0.5) * self.roads.lane_w
        if axis == 0:
            return along, self.roads.ys[road] + direction * off
        return self.roads.xs[road] - direction * off, along

    def _straight_from(self, v: Vehicle, along: float) -> None:
        """Path from `along` on the current lane to the entry of the next junction (or past the world edge)."""
        cross = self.roads.crossings(v.axis)
        ahead = [j for j, c in enumerate(cross) if (c - along) * v.dir > 0]
        if ahead:
            j = ahead[0] if v.dir > 0 else ahead[-1]
            end = cross[j] - v.dir * (self.roads.half_width(1 - v.axis, j) + _ENTRY_M * self.ppm)
            v.next_junction = j
        else:
            end = float(self.roads.size) + 30 * self.ppm if v.dir > 0 else -30 * self.ppm
            v.next_junction = -1
        p0 = self._lane_point(v.axis, v.road, v.dir, v.lane, along)
        p1 = self._lane_point(v.axis, v.road, v.dir, v.lane, end)
        if (end - along) * v.dir <= 0:  # already at the entry: a zero-length piece
            p1 = p0
        v.path, v.cum = _polyline([p0, p1])
        v.s, v.in_turn = 0.0, False
        v.will_stop = v.next_junction >= 0 and self.rng.random() < 0.3
        self._place(v)

    def _through_junction(self, v: Vehicle) -> None:
        """At a junction entry: pick straight, left or right and lay the curve through the junction."""
        rng, roads = self.rng, self.roads
        j = v.next_junction
        d0 = (v.dir, 0) if v.axis == 0 else (0, v.dir)
        right = (-d0[1], d0[0])
        r = rng.random()
        turn = 0 if r < 0.55 else (1 if r < 0.8 else -1)  # 0 straight, 1 right, -1 left
        p0 = (v.x, v.y)
        if turn == 0:
            along_exit = roads.crossings(v.axis)[j] + v.dir * (
                roads.half_width(1 - v.axis, j) + _ENTRY_M * self.ppm
            )
            p1 = self._lane_point(v.axis, v.road, v.dir, v.lane, along_exit)
            v.path, v.cum = _polyline([p0, p1])
        else:
            d1 = (right[0] * turn, right[1] * turn)
            new_axis = 1 - v.axis
            new_dir = d1[0] if new_axis == 0 else d1[1]
            new_road = j
            cross_here = v.road  # the road we leave is the crossing on the new road
            lanes = roads.lanes(new_axis, new_road)
            new_lane = (
                lanes - 1 if turn == 1 else 0
            )  # right turns into the kerb lane, left into the inner lane
            along_exit = roads.crossings(new_axis)[cross_here] + new_dir * (
                roads.half_width(v.axis, v.road) + _ENTRY_M * self.ppm
            )
            p1 = self._lane_point(new_axis, new_road, new_dir, new_lane, along_exit)
            v.path, v.cum = _polyline(_bezier(p0, d0, p1, d1))
            v.axis, v.road, v.dir, v.lane = new_axis, new_road, new_dir, new_lane
        v.s, v.in_turn, v.will_stop = 0.0, turn != 0, False
        v.next_junction = -2  # marks "inside a junction": the next piece is a straight from the exit

    def _place(self, v: Vehicle) -> None:
        """Position and heading at distance s along the path."""
        path, cum = v.path, v.cum
        s = min(max(v.s, 0.0), cum[-1])
        i = 0
        while i < len(cum) - 2 and cum[i + 1] < s:
            i += 1
        (x0, y0), (x1, y1) = path[i], path[i + 1]
        seg = cum[i + 1] - cum[i]
        t = (s - cum[i]) / seg if seg > 1e-9 else 0.0
        v.x, v.y = x0 + (x1 - x0) * t, y0 + (y1 - y0) * t
        if seg > 1e-9:
            v.heading = math.atan2(y1 - y0, x1 - x0)

    # --- simulation -----------------------------------------------------------------------------------------
    def step(self, dt: float) -> None:
        """Advance every moving vehicle by dt seconds."""
        moving = [v for v in self.vehicles if not v.parked]
        # Drivers react in tenths of a second: refreshing the gaps every 0.1 s is enough and 3x cheaper.
        if self._gap_age_s >= 0.1 - 1e-9 or len(self._gaps) != len(moving):
            self._gaps, self._gap_age_s = self._gaps_ahead(moving), 0.0
        self._gap_age_s += dt
        gaps = self._gaps
        rng, ppm = self.rng, self.ppm
        for v, gap_m in zip(moving, gaps, strict=True):
            remaining_m = (v.cum[-1] - v.s) / ppm
            target = v.cruise
            if rng.random() < dt / 4.0:  # drivers change their mind about speed every few seconds
                v.cruise = min(15.0, max(6.0, v.cruise * float(rng.uniform(0.8, 1.2))))
            if v.in_turn:
                target = min(target, 4.5)
            elif v.next_junction >= 0:
                # slow for the junction (turns are decided there, so assume one), or stop at the line
                target = min(target, math.sqrt(4.5**2 + 2 * 2.0 * remaining_m))
                if v.will_stop:
                    target = min(target, math.sqrt(max(0.0, 2 * 3.0 * (remaining_m - 0.3))))
            # keep about 1.3 s and 2.5 m to the vehicle ahead
            target = min(target, max(0.0, (gap_m - 2.5) / 1.3))
            if v.wait_s > 0:
                v.wait_s -= dt
                target = 0.0
            accel = min(2.2, max(-5.0, (target - v.speed) / dt))
            v.speed = max(0.0, v.speed + accel * dt)
            v.s += v.speed * dt * ppm
            if v.s >= v.cum[-1] - 1e-6:
                self._end_of_piece(v, dt)
            else:
                self._place(v)
        for i, v in enumerate(self.vehicles):
            if v.exited:
                self.vehicles[i] = self._spawn(anywhere=False)

    def _end_of_piece(self, v: Vehicle, dt: float) -> None:
        v.s = v.cum[-1]
        self._place(v)
        if v.next_junction == -1:
            v.exited = True
        elif v.next_junction == -2:
            along = v.x if v.axis == 0 else v.y
            self._straight_from(v, along)
        elif v.will_stop and v.wait_s <= 0 and v.speed < 0.5:
            v.wait_s = float(self.rng.uniform(1.0, 4.0))
            v.will_stop = False
            v.speed = 0.0
        elif not v.will_stop and v.wait_s <= 0:
            self._through_junction(v)
            self._place(v)

    def _gaps_ahead(self, moving: list[Vehicle]) -> npt.NDArray[np.float64]:
        """Distance in metres to the nearest vehicle in a 2 m wide corridor ahead of each moving vehicle
        (parked ones included), bumper to bumper; inf when the corridor is clear for 60 m."""
        if not moving:
            return np.zeros(0)
        allv = self.vehicles
        pos = np.array([[v.x, v.y] for v in allv]) / self.ppm
        half = np.array([v.length_m / 2 for v in allv])
        mpos = np.array([[v.x, v.y] for v in moving]) / self.ppm
        mh = np.array([v.heading for v in moving])
        mhalf = np.array([v.length_m / 2 for v in moving])
        d = np.stack([np.cos(mh), np.sin(mh)], axis=1)
        rel = pos[None, :, :] - mpos[:, None, :]
        ahead = rel[..., 0] * d[:, None, 0] + rel[..., 1] * d[:, None, 1]
        lateral = np.abs(rel[..., 0] * d[:, None, 1] - rel[..., 1] * d[:, None, 0])
        gap = ahead - half[None, :] - mhalf[:, None]
        heading = np.array([v.heading for v in allv])
        # oncoming traffic does not count (two left-turners facing each other would wait forever)
        same_way = np.cos(heading[None, :] - mh[:, None]) > -0.3
        ok = (ahead > 0.5) & (lateral < 2.0) & (ahead < 60.0) & same_way
        gap = np.where(ok, gap, np.inf)
        return gap.min(axis=1)

    def state(self) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.int64]]:
        """(V, 5) float64 rows (x, y, heading, length_m, width_m) and (V,) int64 ids, in list order."""
        arr = np.array([[v.x, v.y, v.heading, v.length_m, v.width_m] for v in self.vehicles], np.float64)
        return arr.reshape(-1, 5), np.array([v.id for v in self.vehicles], np.int64)


class Crowd:
    """People, vectorised: (N,) arrays of position, heading, speed, pause timers."""

    def __init__(self, rng: np.random.Generator, world: World, n: int, first_id: int) -> None:
        self.rng = rng
        self.world = world
        ppm = world.px_per_m
        cells = np.argwhere(world.walkable)  # (row, col)
        pick = rng.integers(len(cells), size=n) if len(cells) else np.zeros(0, np.int64)
        cell_px = world.size / world.walkable.shape[0]
        xy = (cells[pick][:, ::-1] + rng.uniform(0, 1, (n, 2))) * cell_px if len(cells) else np.zeros((0, 2))
        # a third of people walk in pairs: copy a neighbour's position and heading, a metre apart
        self.heading = rng.uniform(-np.pi, np.pi, n)
        pair = rng.random(n) < 0.33
        pair[:1] = False
        idx = np.nonzero(pair)[0]
        xy[idx] = xy[idx - 1] + rng.normal(0, 0.8 * ppm, (len(idx), 2))
        self.heading[idx] = self.heading[idx - 1]
        self.xy = xy.astype(np.float64)
        self.walk_speed = rng.uniform(0.9, 1.6, n)
        self.speed = self.walk_speed.copy()
        self.pause_s = np.where(rng.random(n) < 0.2, rng.uniform(0, 8, n), 0.0)
        self.ids = np.arange(first_id, first_id + n, dtype=np.int64)
        self.size_m = rng.uniform(1.1, 1.35, n)  # see render: people are drawn about 1.5x life size
        self.shirt = np.clip(
            _SHIRTS[rng.integers(len(_SHIRTS), size=n)] + rng.uniform(-20, 20, (n, 3)), 0, 255
        )
        self.hair = np.clip(np.array([30, 35, 45]) + rng.uniform(-15, 60, (n, 1)), 0, 255) * np.ones((1, 3))

    def step(self, dt: float) -> None:
        rng, n = self.rng, len(self.ids)
        if n == 0:
            return
        ppm = self.world.px_per_m
        self.heading += rng.normal(0, 0.35 * math.sqrt(dt), n)
        self.pause_s = np.maximum(self.pause_s - dt, 0.0)
        start_pause = rng.random(n) < dt / 25.0
        self.pause_s[start_pause] = rng.uniform(1, 6, int(start_pause.sum()))
        speed = np.where(self.pause_s > 0, 0.0, self.walk_speed)
        # accelerate/decelerate over ~0.5 s instead of jumping
        self.speed += np.clip(speed - self.speed, -2.5 * dt, 2.5 * dt)
        d = np.stack([np.cos(self.heading), np.sin(self.heading)], axis=1)
        look = self.xy + d * 1.5 * ppm
        blocked = ~self.world.is_walkable(look)
        # turn away: a new heading somewhere in the back half-plane
        self.heading[blocked] += rng.uniform(np.pi / 2, 3 * np.pi / 2, int(blocked.sum()))
        step = np.where(blocked, 0.0, self.speed * dt * ppm)
        self.xy += d * step[:, None]
