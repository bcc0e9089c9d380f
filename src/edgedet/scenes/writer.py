"""Write scene sequences to disk in the formats tools already read.

Layout of one sequence (MOTChallenge, with the image folder named `images` so that YOLO tools find the labels
by swapping `images` for `labels` in the path):

    <out>/<name>/seqinfo.ini          [Sequence] name, imDir, frameRate, seqLength, imWidth, imHeight, imExt
    <out>/<name>/gt/gt.txt            frame,id,x,y,w,h,consider,class_id+1,visibility (all objects in frame;
                                      x, y 1-based as MOTChallenge, so tracker output such as edgedet's
                                      --save-mot lines up with it)
    <out>/<name>/images/000001.jpg    frames (or <out>/<name>/<name>.mp4 with image_format="mp4")
    <out>/<name>/labels/000001.txt    YOLO `class cx cy w h` (normalised), objects with enough visibility
    <out>/<name>/gt/gt_geo.csv        frame,id,east_m,north_m,lat,lon: each gt.txt row's exact ground position
                                      (object centre; metres from the world centre, WGS84 degrees)
    <out>/<name>/camera.yaml          the camera's intrinsics as cv2.FileStorage writes a calibration
    <out>/<name>/telemetry.jsonl      the flight's exact telemetry (edgedet.geo.pose format, 50 Hz)
    <out>/<name>/telemetry_noisy.jsonl  the same with realistic errors and 50 ms latency (scenes.telemetry)

COCO records (one image per frame) are returned so that a whole split can go into one json (`write_coco`).
"""

from __future__ import annotations

import configparser
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from edgedet.errors import ConfigError, SinkError
from edgedet.motchallenge import MotGroundTruth, SeqInfo
from edgedet.scenes.scene import DemoScene
from edgedet.scenes.telemetry import REALISTIC, TelemetryNoise, scene_telemetry
from edgedet.types import Detections

IMAGE_FORMATS = ("jpg", "png", "mp4")


def motchallenge_rows(gt: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """A scene's gt rows (0-based frame pixels, as `Detections`) -> MOTChallenge gt.txt rows: a copy with the
    box's top-left x, y moved to MOTChallenge's 1-based pixel convention, the one tracker output is written in
    (edgedet's --save-mot, the MOT17 files). Comparing 0-based truth with 1-based tracks shifts every box by a
    pixel, which costs a 7 px person a third of its IoU."""
    rows = np.array(gt, np.float64).reshape(-1, 9)
    rows[:, 2:4] += 1.0
    return rows


def scored(
    gt: npt.NDArray[np.float64], min_visibility: float = 0.3, min_side_px: float = 2.0
) -> npt.NDArray[np.bool_]:
    """Rows of a scene's gt that count as objects to find: in view (consider 1), at least `min_visibility`
    visible and both box sides at least `min_side_px`. The rest are neither rewarded nor penalised (COCO crowd
    regions, MOT distractors). The same rule makes the training labels, the COCO/YOLO files and the scoring."""
    g = np.asarray(gt, np.float64).reshape(-1, 9)
    return (g[:, 6] > 0) & (g[:, 8] >= min_visibility) & (g[:, 4] >= min_side_px) & (g[:, 5] >= min_side_px)


def scene_mot_truth(scene: DemoScene) -> tuple[MotGroundTruth, SeqInfo]:
    """A rendered flight's MOTChallenge ground truth, class-agnostic as the demo is scored: every `scored` object is
    MOT17's class 1 (pedestrian), the rest are distractors (class 8, neither rewarded nor penalised); boxes in
    MOTChallenge's 1-based pixels like the tracks `--save-mot` writes. Renders the whole flight."""
    rows = motchallenge_rows(np.concatenate([gt for _, gt in scene]))
    h, w = scene.config.size_hw
    truth = MotGroundTruth(
        frame=rows[:, 0].astype(np.int64),
        track_id=rows[:, 1].astype(np.int64),
        xywh=rows[:, 2:6].copy(),
        flag=np.ones(len(rows), np.int64),
        class_id=np.where(scored(rows), 1, 8).astype(np.int64),
        visibility=rows[:, 8].copy(),
        has_classes=True,
    )
    return truth, SeqInfo(scene.name, scene.config.fps, len(scene), w, h)


def gt_to_detections(gt: npt.NDArray[np.float64], min_visibility: float = 0.0) -> Detections:
    """MOT gt rows (N, 9) -> Detections (confidence 1, class_id = column 8 - 1, track_id = column 2), keeping
    rows with visibility >= min_visibility and consider flag 1."""
    gt = np.asarray(gt, np.float64).reshape(-1, 9)
    keep = (gt[:, 8] >= min_visibility) & (gt[:, 6] > 0)
    g = gt[keep]
    xyxy = np.concatenate([g[:, 2:4], g[:, 2:4] + g[:, 4:6]], axis=1)
    return Detections(
        xyxy, np.ones(len(g), np.float32), g[:, 7].astype(np.int32) - 1, g[:, 1].astype(np.int32)
    )


@dataclass
class SequenceRecord:
    """What `write_sequence` wrote: COCO images/annotations (ids local to the sequence) and counts."""

    name: str
    path: Path
    frames: int
    gt_rows: int
    seconds: float
    images: list[dict[str, Any]] = field(default_factory=list)
    annotations: list[dict[str, Any]] = field(default_factory=list)


def write_sequence(
    scene: DemoScene,
    out_dir: Path | str,
    *,
    image_format: str = "jpg",
    jpeg_quality: int = 92,
    min_visibility: float = 0.3,
    min_size_px: float = 3.0,
    rel_to: Path | str | None = None,
    keep_every: int = 1,
    progress: Callable[[int, int], None] | None = None,
    geo: bool = True,
    telemetry_noise: TelemetryNoise | None = REALISTIC,
) -> SequenceRecord:
    """Render `scene` (must have a length) into `out_dir/<scene.name>/`.

    Objects with visibility >= min_visibility and both box sides >= min_size_px are training labels (YOLO txt,
    COCO iscrowd 0); partly visible or tiny ones stay in COCO as iscrowd 1 (ignored by COCO evaluation) and in
    gt.txt. COCO `file_name`s are relative to `rel_to` (default: `out_dir`). keep_every=N writes images, labels
    and COCO records for every Nth frame only (consecutive frames are near duplicates for detector training);
    gt.txt always has every frame. Not combinable with image_format="mp4".
    progress(done, total) is called after each frame.
    geo: also write gt_geo.csv and telemetry.jsonl (needs pymap3d: the `geo` extra); telemetry_noise: the
    errors of telemetry_noisy.jsonl (None: no noisy file).
    """
    if image_format not in IMAGE_FORMATS:
        raise ConfigError(f"image format {image_format!r} is not one of {', '.join(IMAGE_FORMATS)}: pick one")
    if keep_every < 1 or (keep_every > 1 and image_format == "mp4"):
        raise ConfigError(f"keep_every={keep_every} is invalid: use 1, or N > 1 with image frames (not mp4)")
    total = len(scene)
    h, w = scene.config.size_hw
    seq_dir = Path(out_dir) / scene.name
    rel_base = Path(rel_to) if rel_to is not None else Path(out_dir)
    im_ext = ".mp4" if image_format == "mp4" else f".{image_format}"
    try:
        (seq_dir / "gt").mkdir(parents=True, exist_ok=True)
        if image_format != "mp4":
            (seq_dir / "images").mkdir(exist_ok=True)
            (seq_dir / "labels").mkdir(exist_ok=True)
    except OSError as exc:
        raise SinkError(f"cannot create {seq_dir}: {exc}; pick a writable --out folder") from exc

    writer = None
    if image_format == "mp4":
        fourcc = cv2.VideoWriter.fourcc(*"mp4v")
        writer = cv2.VideoWriter(str(seq_dir / f"{scene.name}.mp4"), fourcc, scene.config.fps, (w, h))
        if not writer.isOpened():
            raise SinkError(
                f"OpenCV cannot write {seq_dir / scene.name}.mp4 (mp4v); write frames with --format jpg"
            )
    params = [cv2.IMWRITE_JPEG_QUALITY, int(jpeg_quality)] if image_format == "jpg" else []
    record = SequenceRecord(scene.name, seq_dir, total, 0, 0.0)
    t0 = time.perf_counter()
    gt_lines: list[str] = []
    geo_rows: list[tuple[int, int, float, float]] = []
    for i, (img, gt, where) in enumerate(scene.iter_truth()):
        frame_no = i + 1
        stem = f"{frame_no:06d}"
        gt_lines += [_mot_line(row) for row in motchallenge_rows(gt)]  # every frame has truth, kept or not
        geo_rows += [(frame_no, int(tid), *where[int(tid)]) for tid in gt[:, 1]]
        record.gt_rows += len(gt)
        if i % keep_every:
            if progress is not None:
                progress(frame_no, total)
            continue
        if writer is not None:
            writer.write(img)
            file_name = (seq_dir / f"{scene.name}.mp4").relative_to(rel_base).as_posix()
        else:
            path = seq_dir / "images" / f"{stem}.{image_format}"
            if not cv2.imwrite(str(path), img, params):
                raise SinkError(f"cannot write {path}; check free space and permissions")
            file_name = path.relative_to(rel_base).as_posix()
        image_id = len(record.images) + 1
        record.images.append(
            {
                "id": image_id,
                "file_name": file_name,
                "width": w,
                "height": h,
                "frame_index": i,
                "sequence": scene.name,
            }
        )
        labels = []
        for row, good in zip(gt, scored(gt, min_visibility, min_size_px), strict=True):
            _, tid, x, y, bw, bh, consider, cls1, vis = (float(v) for v in row)
            if consider <= 0:
                continue
            record.annotations.append(
                {
                    "id": len(record.annotations) + 1,
                    "image_id": image_id,
                    "category_id": int(cls1),
                    "bbox": [round(x, 2), round(y, 2), round(bw, 2), round(bh, 2)],
                    "area": round(bw * bh, 2),
                    "iscrowd": 0 if good else 1,
                    "track_id": int(tid),
                    "visibility": round(vis, 4),
                }
            )
            if good:
                labels.append(
                    f"{int(cls1) - 1} {(x + bw / 2) / w:.6f} {(y + bh / 2) / h:.6f} {bw / w:.6f} {bh / h:.6f}"
                )
        if writer is None:
            (seq_dir / "labels" / f"{stem}.txt").write_text(
                "".join(s + "\n" for s in labels), encoding="utf-8"
            )
        if progress is not None:
            progress(frame_no, total)
    if writer is not None:
        writer.release()
    (seq_dir / "gt" / "gt.txt").write_text("".join(s + "\n" for s in gt_lines), encoding="utf-8")
    if geo:
        _write_geo(scene, seq_dir, geo_rows, telemetry_noise)
    ini = configparser.ConfigParser()
    ini.optionxform = str  # type: ignore[assignment,method-assign]  # MOT keys are camelCase
    ini["Sequence"] = scene.seqinfo(im_ext=im_ext, im_dir="images" if image_format != "mp4" else ".")
    with open(seq_dir / "seqinfo.ini", "w", encoding="utf-8") as fh:
        ini.write(fh, space_around_delimiters=False)
    record.seconds = time.perf_counter() - t0
    return record


def _write_geo(
    scene: DemoScene,
    seq_dir: Path,
    rows: list[tuple[int, int, float, float]],
    noise: TelemetryNoise | None,
) -> None:
    from edgedet.geo.geodesy import GeoReference
    from edgedet.geo.pose import write_telemetry

    cfg = scene.config
    home = GeoReference(cfg.origin_lat_deg, cfg.origin_lon_deg, 0.0)
    arr = np.array(rows, np.float64).reshape(-1, 4)
    latlon = home.to_geodetic(arr[:, 2], arr[:, 3], 0.0).reshape(-1, 3)
    lines = ["frame,id,east_m,north_m,lat,lon\n"] + [
        f"{int(f)},{int(tid)},{e:.4f},{n:.4f},{lat:.9f},{lon:.9f}\n"
        for (f, tid, e, n), (lat, lon, _h) in zip(arr.tolist(), latlon.tolist(), strict=True)
    ]
    (seq_dir / "gt" / "gt_geo.csv").write_text("".join(lines), encoding="utf-8")
    from edgedet.geo.camera import CameraModel

    camera = CameraModel.from_hfov(cfg.hfov_deg, cfg.size_hw)
    fs = cv2.FileStorage(str(seq_dir / "camera.yaml"), cv2.FILE_STORAGE_WRITE)
    fs.write("image_width", int(cfg.size_hw[1]))
    fs.write("image_height", int(cfg.size_hw[0]))
    fs.write("camera_matrix", camera.camera_matrix)
    fs.write("distortion_coefficients", np.zeros((1, 5)))
    fs.release()
    _, records = scene_telemetry(scene)
    write_telemetry(seq_dir / "telemetry.jsonl", records, home)
    if noise is not None:
        _, noisy = scene_telemetry(scene, noise=noise)
        write_telemetry(seq_dir / "telemetry_noisy.jsonl", noisy, home)


def _mot_line(row: npt.NDArray[np.float64]) -> str:
    f, tid, x, y, bw, bh, consider, cls1, vis = (float(v) for v in row)
    return f"{int(f)},{int(tid)},{x:.3f},{y:.3f},{bw:.3f},{bh:.3f},{int(consider)},{int(cls1)},{vis:.4f}"


def write_coco(
    path: Path | str, records: Sequence[SequenceRecord], class_names: Sequence[str]
) -> dict[str, Any]:
    """Merge sequence records into one COCO instances json (ids renumbered across sequences) and write it.
    Category ids are class_id + 1, the same numbers as gt.txt's class column."""
    images: list[dict[str, Any]] = []
    annotations: list[dict[str, Any]] = []
    for rec in records:
        base_img = len(images)
        for im in rec.images:
            images.append({**im, "id": im["id"] + base_img})
        for ann in rec.annotations:
            annotations.append({**ann, "id": len(annotations) + 1, "image_id": ann["image_id"] + base_img})
    data = {
        "info": {"description": "edgedet synthetic drone scenes"},
        "images": images,
        "annotations": annotations,
        "categories": [
            {"id": i + 1, "name": n, "supercategory": "object"} for i, n in enumerate(class_names)
        ],
    }
    Path(path).write_text(json.dumps(data), encoding="utf-8")
    return data
