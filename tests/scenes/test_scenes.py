"""Scene generator: determinism, ground truth that matches the pixels, visibility, motion, and file formats."""

from __future__ import annotations

import configparser
import json
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest

from edgedet.datasets import load_coco_json, load_yolo_dataset
from edgedet.errors import ConfigError
from edgedet.scenes import (
    CLASS_NAMES,
    DemoScene,
    SceneConfig,
    gt_to_detections,
    scene_seed,
    write_coco,
    write_sequence,
)
from edgedet.scenes.agents import CAR, TRUCK, Crowd, Traffic
from edgedet.scenes.camera import CameraPose, homography
from edgedet.scenes.scene import _render, _Renderer, _vehicle_sprite
from edgedet.scenes.world import WALKABLE_LABELS, World, build_world

# Small and low so that tests are fast and objects are big enough to check pixel by pixel.
SMALL = SceneConfig(
    size_hw=(192, 320), frames=120, world_size=2048, vehicles=70, people=160, altitude_m=(28.0, 40.0)
)
QUIET = replace(SMALL, sensor_effects=False)


@pytest.fixture(scope="module")
def frames() -> list[tuple[np.ndarray, np.ndarray]]:
    return list(DemoScene(seed=3, config=QUIET))


@pytest.fixture(scope="module")
def backgrounds() -> list[np.ndarray]:
    return [img for img, _ in DemoScene(seed=3, config=replace(QUIET, draw_objects=False))]


def test_same_seed_same_frames_and_truth() -> None:
    cfg = replace(SMALL, frames=6)
    a, b = list(DemoScene(seed=11, config=cfg)), list(DemoScene(seed=11, config=cfg))
    scene = DemoScene(seed=11, config=cfg)
    c, again = list(scene), list(scene)  # iterating one instance twice replays it
    for run in (b, c, again):
        for (ia, ga), (ib, gb) in zip(a, run, strict=True):
            assert np.array_equal(ia, ib)
            assert np.array_equal(ga, gb)
    other = list(DemoScene(seed=12, config=cfg))
    assert not np.array_equal(a[0][0], other[0][0])
    train = list(DemoScene(seed=11, config=cfg, split="train"))
    assert not np.array_equal(a[0][0], train[0][0])


def test_split_streams_are_disjoint() -> None:
    states = {
        (split, i): tuple(scene_seed(0, split, i).generate_state(4))
        for split in ("train", "val", "demo")
        for i in range(50)
    }
    assert len(set(states.values())) == len(states)
    with pytest.raises(ConfigError, match="unknown scene split"):
        scene_seed(0, "nope")


def test_every_rendered_object_has_a_box_and_boxes_cover_objects(
    frames: list[tuple[np.ndarray, np.ndarray]], backgrounds: list[np.ndarray]
) -> None:
    checked = {CAR + 1: 0, TRUCK + 1: 0, 3: 0}
    h, w = QUIET.size_hw
    gain = DemoScene(seed=3, config=QUIET).world.shadow_gain
    for (img, gt), bg in zip(frames, backgrounds, strict=True):
        i16, b16 = img.astype(np.int16), bg.astype(np.int16)
        diff = np.abs(i16 - b16).max(axis=2) > 12
        # the shadow of an object just outside the frame may fall inside it: ground darkened by the shadow gain
        shadow = ((i16 <= b16) & (i16 >= b16 * gain - 3)).all(axis=2)
        covered = np.zeros_like(diff)
        for row in gt:
            x, y, bw, bh = row[2:6]
            x0, y0, x1, y1 = int(np.floor(x)), int(np.floor(y)), int(np.ceil(x + bw)), int(np.ceil(y + bh))
            # shadows fall next to the body: up to 2 m for trucks, ~12 px per m at these altitudes
            m = 30
            covered[max(y0 - m, 0) : y1 + m, max(x0 - m, 0) : x1 + m] = True
            fully_inside = x > 1 and y > 1 and x + bw < w - 1 and y + bh < h - 1
            if row[8] == 1.0 and fully_inside and min(bw, bh) >= 4:
                inside = diff[y0:y1, x0:x1].mean()
                # a car's body fills most of its box (rotated boxes less); a person is an ellipse + head
                assert inside > (0.3 if row[7] == 3 else 0.4), (row, inside)
                checked[int(row[7])] += 1
        # nothing drawn outside every box (plus its shadow margin): no object without ground truth
        assert not (diff & ~covered & ~shadow).any()
    assert checked[CAR + 1] >= 10 and checked[3] >= 10, checked


def test_rows_are_well_formed(frames: list[tuple[np.ndarray, np.ndarray]]) -> None:
    h, w = QUIET.size_hw
    for i, (img, gt) in enumerate(frames):
        assert img.shape == (h, w, 3) and img.dtype == np.uint8
        assert gt.shape[1] == 9
        assert (gt[:, 0] == i + 1).all()
        assert len(np.unique(gt[:, 1])) == len(gt)
        assert (gt[:, 2] >= 0).all() and (gt[:, 3] >= 0).all()
        assert (gt[:, 2] + gt[:, 4] <= w + 1e-9).all() and (gt[:, 3] + gt[:, 5] <= h + 1e-9).all()
        assert ((gt[:, 4] > 0) & (gt[:, 5] > 0)).all()
        assert set(np.unique(gt[:, 7])) <= {1, 2, 3}
        assert ((gt[:, 8] >= 0) & (gt[:, 8] <= 1)).all()
        assert np.array_equal(gt[:, 6] == 0, gt[:, 8] == 0)
    person = np.concatenate([g for _, g in frames])
    person = person[(person[:, 7] == 3) & (person[:, 8] == 1)]
    # people are small objects: a few pixels to about a dozen at this (low) test altitude
    assert 4 <= np.median(np.maximum(person[:, 4], person[:, 5])) <= 16


def test_objects_enter_and_leave_at_the_frame_edge(frames: list[tuple[np.ndarray, np.ndarray]]) -> None:
    h, w = QUIET.size_hw
    entered = left = 0
    # two flights: in 4 s one of them may have nobody leaving the view
    for flight in (frames, list(DemoScene(seed=5, config=QUIET))):
        e, lft = _check_entries_and_exits(flight, h, w)
        entered, left = entered + e, left + lft
    assert entered > 0 and left > 0


def _check_entries_and_exits(frames: list[tuple[np.ndarray, np.ndarray]], h: int, w: int) -> tuple[int, int]:
    gt = np.concatenate([g for _, g in frames])
    last = len(frames)
    entered = left = 0
    for tid in np.unique(gt[:, 1]):
        rows = gt[gt[:, 1] == tid]
        for row, is_new in ((rows[0], rows[0, 0] > 1), (rows[-1], rows[-1, 0] < last)):
            if not is_new:
                continue
            x, y, bw, bh = row[2:6]
            at_edge = x <= 1e-6 or y <= 1e-6 or x + bw >= w - 1e-6 or y + bh >= h - 1e-6
            assert at_edge, row
            assert row[8] < 1.0
        entered += int(rows[0, 0] > 1)
        left += int(rows[-1, 0] < last)
    return entered, left


# --- visibility in controlled set-ups -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def world() -> World:
    return build_world(np.random.default_rng(5), 2048, 8.0)


def _stage(
    world: World,
    placements: list[tuple[int, float, float, float]],
    people: list[tuple[float, float]] | None = None,
    centre: tuple[float, float] = (1024.0, 1024.0),
) -> tuple[np.ndarray, np.ndarray, np.ndarray, Traffic]:
    """Render one frame from a nadir camera 30 m above `centre` with exactly the given objects."""
    rng = np.random.default_rng(0)
    cfg = replace(QUIET, vehicles=0, people=0)
    traffic = Traffic(rng, world, n_moving=0, parked_fraction=0.0)
    for cls, x, y, heading in placements:
        v = traffic._new_vehicle(cls)
        v.x, v.y, v.heading, v.parked = x, y, heading, True
        if cls == TRUCK:
            v.length_m = 9.0
        traffic.vehicles.append(v)
    crowd = Crowd(rng, world, 0, first_id=1000)
    if people:
        crowd = Crowd(rng, world, len(people), first_id=1000)
        crowd.xy = np.array(people, np.float64)
    pose = CameraPose(centre, 0.0, 30.0, 0.0)
    hmat = homography(pose, cfg.size_hw, cfg.hfov_deg, world.px_per_m)
    img, gt = _render(cfg, world, hmat, traffic, crowd, {}, _Renderer(cfg, world, rng), 1)
    return img, gt, hmat, traffic


def _frame_poly(
    hmat: np.ndarray, part: np.ndarray, x: float, y: float, heading: float, ppm: float
) -> np.ndarray:
    c, s = np.cos(heading), np.sin(heading)
    wx = (part[:, 0] * c - part[:, 1] * s) * ppm + x
    wy = (part[:, 0] * s + part[:, 1] * c) * ppm + y
    p = np.stack([wx, wy, np.ones_like(wx)], axis=1) @ hmat.T
    return (p[:, :2] / p[:, 2:]).astype(np.float32)


def _clear_spot(world: World) -> tuple[float, float]:
    """A point with no tree crown within 25 m (the whole test view), so only our objects occlude."""
    r = int(25 * world.px_per_m)
    for y in range(r, world.size - r, 32):
        for x in range(r, world.size - r, 32):
            if not world.canopy[y - r : y + r, x - r : x + r].any():
                return float(x), float(y)
    pytest.skip("no tree-free spot in this world")


def test_visibility_of_a_car_half_under_a_truck(world: World) -> None:
    x, y = _clear_spot(world)
    ppm = world.px_per_m
    _, gt, _, _ = _stage(world, [(CAR, x, y, 0.0)], centre=(x, y))
    assert gt.shape[0] == 1 and gt[0, 8] == 1.0  # alone: fully visible

    truck_x = x + 5.5 * ppm  # the truck's rear overlaps the car's front
    _, gt, hmat, traffic = _stage(world, [(CAR, x, y, 0.3), (TRUCK, truck_x, y, 0.0)], centre=(x, y))
    car, truck = traffic.vehicles
    car_poly = _frame_poly(hmat, _vehicle_sprite(car).parts[0], car.x, car.y, car.heading, ppm)
    car_area = cv2.contourArea(car_poly)
    covered = sum(
        cv2.intersectConvexConvex(car_poly, _frame_poly(hmat, part, truck.x, truck.y, truck.heading, ppm))[0]
        for part in _vehicle_sprite(truck).parts[:2]
    )
    expected = 1.0 - covered / car_area
    assert 0.2 < expected < 0.9  # the set-up really is a partial occlusion
    row = gt[gt[:, 1] == car.id][0]
    assert row[8] == pytest.approx(expected, abs=0.05)
    assert gt[gt[:, 1] == truck.id][0, 8] == 1.0
    # the box is the whole body (MOT convention), not just its visible part
    x0, y0 = car_poly.min(axis=0)
    x1, y1 = car_poly.max(axis=0)
    assert row[2:6] == pytest.approx([x0, y0, x1 - x0, y1 - y0], abs=0.1)


def test_visibility_at_the_frame_edge(world: World) -> None:
    x, y = _clear_spot(world)
    ppm = world.px_per_m
    h = QUIET.size_hw[0]
    pose = CameraPose((x, y), 0.0, 30.0, 0.0)
    hmat = homography(pose, QUIET.size_hw, QUIET.hfov_deg, ppm)
    # world x of the left frame edge at the frame's middle row
    left = np.linalg.solve(hmat, [0.0, h / 2, 1.0])
    edge_x = left[0] / left[2]
    _, gt, _, _ = _stage(world, [(CAR, edge_x, y, np.pi / 2)], centre=(x, y))
    assert len(gt) == 1
    assert gt[0, 2] == 0.0  # clipped to the frame
    assert gt[0, 8] == pytest.approx(0.5, abs=0.08)


def test_people_under_tree_crowns_are_hidden(world: World) -> None:
    # a world point deep inside a crown (all canopy within 1.5 m); the camera looks straight down at it
    r = int(1.5 * world.px_per_m)
    ys, xs = np.nonzero(world.canopy > 0)
    for yy, xx in zip(ys[::211], xs[::211], strict=True):
        if (
            r < yy < world.size - r
            and r < xx < world.size - r
            and world.canopy[yy - r : yy + r, xx - r : xx + r].all()
        ):
            break
    else:
        pytest.skip("no tree crown in this world")
    p = (float(xx), float(yy))
    _, gt, _, _ = _stage(world, [], people=[p], centre=p)
    assert len(gt) == 1
    assert gt[0, 8] == 0.0 and gt[0, 6] == 0  # in frame, fully hidden: kept with consider flag 0
    assert gt_to_detections(gt).xyxy.shape == (0, 4)  # hidden rows are not detection targets


# --- motion --------------------------------------------------------------------------------------------------


def test_vehicles_keep_to_lanes_and_people_to_walkable_ground(world: World) -> None:
    # 30% of junction approaches stop, and few vehicles reach one in 10 s: a seed where somebody does
    rng = np.random.default_rng(3)
    traffic = Traffic(rng, world, n_moving=60, parked_fraction=0.5)
    crowd = Crowd(rng, world, 200, first_id=10_000)
    parked = {v.id: (v.x, v.y) for v in traffic.vehicles if v.parked}
    roads, ppm = world.roads, world.px_per_m
    stopped_seen = moved = 0
    start = {v.id: (v.x, v.y) for v in traffic.vehicles}
    for step in range(300):  # 10 s
        traffic.step(1 / 30)
        crowd.step(1 / 30)
        for v in traffic.vehicles:
            assert 0.0 <= v.speed <= 15.0 + 1e-9
            if v.parked:
                assert (v.x, v.y) == parked[v.id]
                continue
            if not v.in_turn:
                # on the centre line of its lane: right-hand traffic, lane (k + 0.5) widths from the road centre
                off = (v.lane + 0.5) * roads.lane_w
                if v.axis == 0:
                    assert v.y == pytest.approx(roads.ys[v.road] + v.dir * off, abs=1e-6)
                    assert np.cos(v.heading) * v.dir == pytest.approx(1.0, abs=1e-6) or v.speed == 0
                else:
                    assert v.x == pytest.approx(roads.xs[v.road] - v.dir * off, abs=1e-6)
            stopped_seen += v.wait_s > 0
        if step % 30 == 0:
            assert world.is_walkable(crowd.xy).mean() > 0.97
    for v in traffic.vehicles:
        if v.id in start and not v.parked:
            moved += np.hypot(v.x - start[v.id][0], v.y - start[v.id][1]) > 20 * ppm
    assert stopped_seen > 0  # some drivers stopped at a junction
    assert moved > 20  # and most drove on
    assert WALKABLE_LABELS  # people's ground is defined


# --- files ----------------------------------------------------------------------------------------------------


def test_write_sequence_formats(tmp_path: Path) -> None:
    pytest.importorskip("pycocotools")
    from pycocotools.coco import COCO

    cfg = replace(SMALL, frames=8)
    records = []
    for i in (1, 2):  # (val sequence 0 of this small config happens to see no object in 8 frames)
        scene = DemoScene(seed=0, config=cfg, split="val", index=i)
        records.append(write_sequence(scene, tmp_path / "val", rel_to=tmp_path, min_visibility=0.3))
    data = write_coco(tmp_path / "val.json", records, CLASS_NAMES)
    coco = COCO(str(tmp_path / "val.json"))
    assert len(coco.getImgIds()) == 16
    assert [c["name"] for c in coco.loadCats(coco.getCatIds())] == list(CLASS_NAMES)
    assert len({a["id"] for a in data["annotations"]}) == len(data["annotations"])

    seq = records[0].path
    ini = configparser.ConfigParser()
    ini.optionxform = str  # type: ignore[assignment,method-assign]
    ini.read(seq / "seqinfo.ini")
    info = ini["Sequence"]
    assert (info["name"], info["frameRate"], info["seqLength"]) == (seq.name, "30", "8")
    assert (info["imWidth"], info["imHeight"], info["imExt"], info["imDir"]) == (
        "320",
        "192",
        ".jpg",
        "images",
    )
    assert len(list((seq / "images").glob("*.jpg"))) == 8

    # gt.txt holds exactly what the scene yields, with x, y in MOTChallenge's 1-based pixels
    gt_file = np.loadtxt(seq / "gt" / "gt.txt", delimiter=",", ndmin=2).reshape(-1, 9)
    gt_scene = np.concatenate([g for _, g in DemoScene(seed=0, config=cfg, split="val", index=1)])
    assert len(gt_scene) > 0
    np.testing.assert_allclose(gt_file[:, 2:4], gt_scene[:, 2:4] + 1, atol=1e-3)
    np.testing.assert_allclose(np.delete(gt_file, [2, 3], 1), np.delete(gt_scene, [2, 3], 1), atol=1e-3)

    # YOLO labels = COCO non-crowd annotations = gt rows with enough visibility and size
    yolo = load_yolo_dataset(seq)
    coco_ds = load_coco_json(tmp_path / "val.json")
    first = [im for im in coco_ds.images if im.path.parent.parent == seq]
    assert len(yolo) == len(first) == 8
    n_good = 0
    for a, b in zip(yolo.images, first, strict=True):
        assert a.path == b.path
        keep = ~b.iscrowd
        order_a = np.lexsort(a.xyxy.T)
        order_b = np.lexsort(b.xyxy[keep].T)
        assert np.allclose(a.xyxy[order_a], b.xyxy[keep][order_b], atol=0.05)
        assert np.array_equal(a.class_id[order_a], b.class_id[keep][order_b])
        n_good += len(a.xyxy)
    rows = gt_scene[(gt_scene[:, 8] >= 0.3) & (gt_scene[:, 4] >= 3) & (gt_scene[:, 5] >= 3)]
    assert n_good == len(rows) > 0
    anns = json.loads((tmp_path / "val.json").read_text())["annotations"]
    assert {"track_id", "visibility"} <= set(anns[0])


def test_gt_txt_lines_up_with_what_the_mot_sink_writes(tmp_path: Path) -> None:
    """A perfect tracker (the scene's own objects as tracks, written by `--save-mot`'s sink) reproduces gt.txt's
    boxes exactly and scores MOTA 100: truth and tracker output use the same pixel convention."""
    from edgedet.eval.mot import evaluate_sequence
    from edgedet.sinks.files import MotSink
    from edgedet.types import Frame, FrameResult

    cfg = replace(SMALL, frames=10)
    scene = DemoScene(seed=0, config=cfg, split="val", index=2)
    rec = write_sequence(scene, tmp_path, rel_to=tmp_path)
    tracks = tmp_path / "tracks.txt"
    with MotSink(tracks, tracking=True) as sink:
        for i, (img, gt) in enumerate(scene):
            sink.write(FrameResult(Frame(img, i, i / 30), gt_to_detections(gt[gt[:, 6] > 0])))
    truth = np.loadtxt(rec.path / "gt" / "gt.txt", delimiter=",", ndmin=2)
    out = np.loadtxt(tracks, delimiter=",", ndmin=2)
    truth = truth[truth[:, 6] > 0]
    assert len(out) == len(truth) > 10
    key = lambda a: np.lexsort((a[:, 1], a[:, 0]))  # noqa: E731
    np.testing.assert_allclose(out[key(out), :6], truth[key(truth), :6], atol=0.01)
    # scored class-agnostically, every object a pedestrian (MOT17 class 1)
    truth_all = np.loadtxt(rec.path / "gt" / "gt.txt", delimiter=",", ndmin=2)
    truth_all[:, 7] = 1
    np.savetxt(rec.path / "gt" / "gt1.txt", truth_all, delimiter=",", fmt="%.4f")
    res = evaluate_sequence(rec.path / "gt" / "gt1.txt", tracks, rec.path / "seqinfo.ini", benchmark="MOT17")
    assert res["MOTA"] == pytest.approx(100.0)


def test_write_sequence_mp4(tmp_path: Path) -> None:
    scene = DemoScene(seed=0, config=replace(SMALL, frames=5))
    rec = write_sequence(scene, tmp_path, image_format="mp4")
    cap = cv2.VideoCapture(str(rec.path / f"{scene.name}.mp4"))
    n = 0
    while True:
        ok, img = cap.read()
        if not ok:
            break
        assert img.shape == (192, 320, 3)
        n += 1
    cap.release()
    assert n == 5
    assert (rec.path / "gt" / "gt.txt").read_text().count("\n") == rec.gt_rows


def test_gt_to_detections() -> None:
    gt = np.array(
        [[1, 7, 10, 20, 30, 40, 1, 2, 0.5], [1, 8, 0, 0, 5, 5, 1, 3, 0.1], [1, 9, 0, 0, 5, 5, 0, 1, 0.0]]
    )
    dets = gt_to_detections(gt, min_visibility=0.2)
    assert dets.xyxy.tolist() == [[10, 20, 40, 60]]
    assert dets.class_id.tolist() == [1] and dets.track_id.tolist() == [7]
    assert len(gt_to_detections(gt)) == 2


@pytest.mark.parametrize(
    ("field", "value", "match"),
    [
        ("size_hw", (16, 640), "too small"),
        ("fps", 0.0, "fps"),
        ("frames", 0, "frames"),
        ("altitude_m", (50.0, 40.0), "altitude"),
        ("tilt_deg", (0.0, 60.0), "tilt"),
        ("jpeg_quality", 0, "jpeg"),
        ("world_size", 512, "world_size"),
    ],
)
def test_config_errors(field: str, value: object, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        SceneConfig(**{field: value})  # type: ignore[arg-type]


def test_endless_scene_and_sensor_effects() -> None:
    scene = DemoScene(seed=2, config=replace(SMALL, frames=None, jpeg_quality=70))
    with pytest.raises(TypeError):
        len(scene)
    it = iter(scene)
    imgs = [next(it)[0] for _ in range(3)]
    clean = [img for img, _ in DemoScene(seed=2, config=replace(QUIET, frames=3))]
    # noise, exposure and JPEG change every pixel a little but keep the picture
    d = np.abs(imgs[0].astype(np.int16) - clean[0].astype(np.int16))
    assert 1.0 < d.mean() < 40.0
    assert np.corrcoef(imgs[0].ravel(), clean[0].ravel())[0, 1] > 0.8


def test_scene_mot_truth_is_the_written_gt_txt_with_distractors_marked(tmp_path: Path) -> None:
    """The in-memory truth the demo benchmarks score against equals gt.txt row for row; objects `scored` rejects
    become MOT17 distractors (class 8), the rest class 1; the sequence info matches the scene."""
    from edgedet.scenes import scene_mot_truth, scored

    scene = DemoScene(seed=0, config=replace(SMALL, frames=10), split="val", index=2)
    rec = write_sequence(scene, tmp_path, rel_to=tmp_path)
    truth, info = scene_mot_truth(scene)
    gt = np.loadtxt(rec.path / "gt" / "gt.txt", delimiter=",", ndmin=2)
    assert len(truth.frame) == len(gt) > 10
    np.testing.assert_array_equal(truth.frame, gt[:, 0].astype(np.int64))
    np.testing.assert_array_equal(truth.track_id, gt[:, 1].astype(np.int64))
    np.testing.assert_allclose(truth.xywh, gt[:, 2:6], atol=0.01)
    expected = np.where(scored(gt), 1, 8)
    np.testing.assert_array_equal(truth.class_id, expected)
    assert (info.name, info.seq_length, info.im_width, info.im_height) == (scene.name, 10, 320, 192)
