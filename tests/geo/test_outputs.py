"""Ground positions in the outputs: JSON lines fields, GeoJSON and KML sinks, and the pipeline wiring."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import numpy as np
import pytest

from edgedet.sinks.files import JsonLinesSink
from edgedet.sinks.geo import GeoJsonSink, KmlSink
from edgedet.types import Detections, Frame, FrameResult, GroundPositions

NAN = float("nan")


def _result(i: int, lat: list[float], lon: list[float], tids: list[int]) -> FrameResult:
    n = len(tids)
    dets = Detections(np.tile([10, 10, 20, 20], (n, 1)), np.full(n, 0.9), np.array([2, 0, 1][:n]), tids)
    lat_a = np.array(lat)
    none = np.isnan(lat_a)
    east, north = np.arange(n, dtype=float), -np.arange(n, dtype=float)
    east[none] = north[none] = np.nan
    geo = GroundPositions(lat_a, np.array(lon), east, north, np.where(none, np.nan, 1.25))
    return FrameResult(Frame(np.zeros((4, 4, 3), np.uint8), i, i / 30), dets, geo=geo)


def _write(sink, results):
    with sink:
        for r in results:
            sink.write(r)


RESULTS = [
    _result(0, [47.1, 47.2, NAN], [8.1, 8.2, NAN], [1, 2, 3]),
    _result(1, [47.1001, NAN, 47.3], [8.1001, NAN, 8.3], [1, 2, -1]),
    _result(2, [47.1002], [8.1002], [1]),
]


def test_json_lines_gain_ground_fields(tmp_path):
    path = tmp_path / "d.jsonl"
    _write(JsonLinesSink(path, ("car", "truck", "person")), RESULTS)
    lines = [json.loads(x) for x in path.read_text().splitlines()]
    d0 = lines[0]["detections"]
    assert d0[0]["lat"] == 47.1 and d0[0]["lon"] == 8.1 and d0[0]["sigma_m"] == 1.25
    assert d0[1]["east_m"] == 1.0 and d0[1]["north_m"] == -1.0
    assert d0[2]["lat"] is None and d0[2]["sigma_m"] is None  # no position: null, not NaN (invalid JSON)
    with_geo = _result(0, [1.0], [2.0], [1])
    _write(
        JsonLinesSink(tmp_path / "p.jsonl"), [FrameResult(with_geo.frame, with_geo.detections)]
    )  # geo None
    assert "lat" not in json.loads((tmp_path / "p.jsonl").read_text())["detections"][0]


def test_geojson_one_line_per_track(tmp_path):
    path = tmp_path / "t.geojson"
    _write(GeoJsonSink(path, ("car", "truck", "person")), RESULTS)
    data = json.loads(path.read_text())
    assert data["type"] == "FeatureCollection"
    by_id = {f["properties"]["track_id"]: f for f in data["features"]}
    assert set(by_id) == {1, 2}  # track 3 never had a position; the -1 row is no track
    assert by_id[1]["geometry"]["type"] == "LineString"
    assert by_id[1]["geometry"]["coordinates"] == [
        [8.1, 47.1],
        [8.1001, 47.1001],
        [8.1002, 47.1002],
    ]  # lon, lat
    assert by_id[1]["properties"]["class_name"] == "person" and by_id[1]["properties"]["points"] == 3
    assert by_id[2]["geometry"] == {"type": "Point", "coordinates": [8.2, 47.2]}


def test_kml_parses_with_placemarks(tmp_path):
    path = tmp_path / "t.kml"
    _write(KmlSink(path, ("car", "truck", "person")), RESULTS)
    ns = {"k": "http://www.opengis.net/kml/2.2"}
    root = ET.parse(path).getroot()
    marks = root.findall(".//k:Placemark", ns)
    assert [m.find("k:name", ns).text for m in marks] == ["person 1", "car 2"]
    coords = marks[0].find(".//k:LineString/k:coordinates", ns).text.split()
    assert coords[0] == "8.10000000,47.10000000,0" and len(coords) == 3


def test_demo_run_with_pose_source_end_to_end(tmp_path):
    """`edgedet run --source demo --telemetry demo --cmc pose` with every geo output, scored against the same
    flight written to disk (gt_geo.csv)."""
    from edgedet.cli import main
    from edgedet.eval.geo import GeoTruth, read_positions, score_frames
    from edgedet.scenes import DemoScene, write_sequence

    frames = 24
    out = tmp_path / "out"
    argv = [
        "run", "--source", f"demo:split=test,index=0,frames={frames}", "--telemetry", "demo", "--cmc", "pose",
        "--detect-every", "2", "--threads", "1",  # a fixed skip policy: the demo's target FPS would vary with load
        "--save-json", str(out / "run.jsonl"), "--save-geojson", str(out / "run.geojson"),
        "--save-kml", str(out / "run.kml"),
    ]  # fmt: skip
    assert main(argv) == 0
    scene = DemoScene(seed=0, split="test", index=0, frames=frames)
    record = write_sequence(scene, tmp_path / "data", image_format="png", telemetry_noise=None)
    result = score_frames(GeoTruth.from_dir(record.path), read_positions(out / "run.jsonl")).summary()
    assert result["matched"] > 50 and result["coverage"] == 1.0
    assert result["median_m"] < 0.5 and result["p90_m"] < 1.5
    assert json.loads((out / "run.geojson").read_text())["features"]
    assert ET.parse(out / "run.kml").getroot().tag.endswith("kml")


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--cmc", "pose"], "--cmc pose needs"),
        (["--save-geojson", "x.geojson"], "need ground positions"),
        (["--telemetry", "demo", "--source", "synthetic:64x64@30"], "--source demo"),
        (["--telemetry", "demo", "--geo-anchor", "top"], "--geo-anchor"),
        (["--telemetry", "demo", "--mount-angles", "1,2"], "roll,pitch,yaw"),
        (["--telemetry", "nope.jsonl", "--hfov", "70"], "does not exist"),
    ],
)
def test_bad_geo_flags_are_one_line_errors(tmp_path, monkeypatch, capsys, argv, message):
    from edgedet.cli import main

    monkeypatch.chdir(tmp_path)  # the demo's default run folder goes here, not into the repository
    code = main(["run", "--max-frames", "1", *argv])
    err = capsys.readouterr().err
    assert code != 0 and message in err and "Traceback" not in err
