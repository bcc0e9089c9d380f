"""Map outputs of the tracks' ground positions: GeoJSON (QGIS, web maps) and KML (Google Earth), one line per
track. They read `FrameResult.geo` (edgedet.types.GroundPositions); frames without it add nothing.

A track's line is its positions in time order (frames where it had none are skipped); a track seen at a
single position is a Point. Both files are small (one vertex per track per frame) and written whole and
atomically: at every checkpoint (`checkpoint_s`, default 5 s) and at close, into a temporary file that
replaces the output, so a killed run leaves the last checkpoint, which always parses.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import numpy as np

from edgedet.sinks.base import Sink, check_output_path
from edgedet.sinks.factory import SinkKind
from edgedet.types import FrameResult


class _TrackPaths(Sink):
    """Collects (time, lat, lon, sigma) per track id and rewrites the whole file now and then."""

    flag = "--save-geo"

    def __init__(
        self,
        path: str | os.PathLike[str],
        class_names: Sequence[str] = (),
        checkpoint_s: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        self.path = check_output_path(path, self.flag)
        self.class_names = tuple(class_names)
        self.checkpoint_s = float(checkpoint_s)
        self._clock = clock
        self._tracks: dict[int, list[tuple[float, float, float, float]]] = {}
        self._cls: dict[int, int] = {}
        self._dirty = False
        self._tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        self._save()
        self._last = self._clock()

    def describe(self) -> str:
        return str(self.path)

    def _write(self, result: FrameResult) -> None:
        geo = result.geo
        dets = result.detections
        if geo is not None and len(dets):
            ok = np.isfinite(geo.lat) & np.isfinite(geo.lon) & (dets.track_id >= 0)
            t = float(result.frame.timestamp_s)
            for i in np.nonzero(ok)[0]:
                tid = int(dets.track_id[i])
                self._tracks.setdefault(tid, []).append(
                    (t, float(geo.lat[i]), float(geo.lon[i]), float(geo.sigma_m[i]))
                )
                self._cls[tid] = int(dets.class_id[i])
                self._dirty = True
        if self._dirty and self._clock() - self._last >= self.checkpoint_s:
            self._save()

    def _close(self) -> None:
        if self._dirty:
            self._save()

    def _save(self) -> None:
        try:
            with open(self._tmp, "w", encoding="utf-8") as fh:
                fh.write(self._render())
            os.replace(self._tmp, self.path)
        except OSError:
            try:
                self._tmp.unlink(missing_ok=True)
            except OSError:
                pass
            raise
        self._dirty = False
        self._last = self._clock()

    def _name(self, tid: int) -> str:
        c = self._cls.get(tid, -1)
        return self.class_names[c] if 0 <= c < len(self.class_names) else str(c)

    def _render(self) -> str:
        raise NotImplementedError


class GeoJsonSink(_TrackPaths):
    """`--save-geojson PATH`: a GeoJSON FeatureCollection (RFC 7946: [lon, lat] order, WGS84), one Feature per
    track: a LineString of its positions (a Point when it has one), properties track_id, class_id,
    class_name, first_s, last_s, points, sigma_m_median."""

    flag = "--save-geojson"

    def _render(self) -> str:
        features: list[dict[str, Any]] = []
        for tid in sorted(self._tracks):
            pts = self._tracks[tid]
            coords = [[round(lon, 8), round(lat, 8)] for _, lat, lon, _ in pts]
            sig = [s for *_, s in pts if np.isfinite(s)]
            features.append(
                {
                    "type": "Feature",
                    "geometry": {"type": "LineString", "coordinates": coords}
                    if len(coords) > 1
                    else {"type": "Point", "coordinates": coords[0]},
                    "properties": {
                        "track_id": tid,
                        "class_id": self._cls.get(tid, -1),
                        "class_name": self._name(tid),
                        "first_s": round(pts[0][0], 3),
                        "last_s": round(pts[-1][0], 3),
                        "points": len(pts),
                        "sigma_m_median": round(float(np.median(sig)), 3) if sig else None,
                    },
                }
            )
        return json.dumps({"type": "FeatureCollection", "features": features}, separators=(",", ":")) + "\n"


class KmlSink(_TrackPaths):
    """`--save-kml PATH`: a KML 2.2 document, one Placemark per track (a LineString clamped to the ground, or a
    Point), named `<class> <track id>`."""

    flag = "--save-kml"

    def _render(self) -> str:
        out = [
            '<?xml version="1.0" encoding="UTF-8"?>\n',
            '<kml xmlns="http://www.opengis.net/kml/2.2"><Document><name>',
            escape(Path(self.path).stem),
            "</name>\n",
        ]
        for tid in sorted(self._tracks):
            pts = self._tracks[tid]
            coords = " ".join(f"{lon:.8f},{lat:.8f},0" for _, lat, lon, _ in pts)
            geom = (
                f"<LineString><altitudeMode>clampToGround</altitudeMode><coordinates>{coords}</coordinates></LineString>"
                if len(pts) > 1
                else f"<Point><coordinates>{coords}</coordinates></Point>"
            )
            out.append(
                f"<Placemark><name>{escape(self._name(tid))} {tid}</name>"
                f"<description>{len(pts)} positions, {pts[0][0]:.2f}-{pts[-1][0]:.2f} s</description>"
                f"{geom}</Placemark>\n"
            )
        out.append("</Document></kml>\n")
        return "".join(out)


def _need(arg: str | None) -> str:
    assert arg is not None  # SinkKind(needs_arg=True): checked before opening
    return arg


GEOJSON = SinkKind(
    lambda arg, ctx: GeoJsonSink(_need(arg), class_names=ctx.class_names), writes_file=True, needs_arg=True
)
KML = SinkKind(
    lambda arg, ctx: KmlSink(_need(arg), class_names=ctx.class_names), writes_file=True, needs_arg=True
)
