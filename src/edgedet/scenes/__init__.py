"""Procedural drone-view scenes with exact ground truth: the bundled demo and the tracking testbed.

`DemoScene(seed=0)` yields (frame_bgr, gt_rows) for a flight over a painted town: cars and trucks that drive in
lanes, turn and stop at junctions, people who walk on pavements and lawns, a camera that pans, yaws, climbs and
tilts, with motion blur, exposure drift and sensor noise. Needs only numpy and OpenCV. `write_sequence` and
`tools/make_scenes.py` turn sequences into MOTChallenge / COCO / YOLO datasets.
"""

from edgedet.scenes.agents import CLASS_NAMES
from edgedet.scenes.scene import SPLITS, DemoScene, SceneConfig, scene_seed
from edgedet.scenes.telemetry import REALISTIC, TelemetryNoise, demo_geo, scene_pose_source, scene_telemetry
from edgedet.scenes.writer import (
    gt_to_detections,
    motchallenge_rows,
    scene_mot_truth,
    scored,
    write_coco,
    write_sequence,
)

__all__ = [
    "CLASS_NAMES",
    "REALISTIC",
    "SPLITS",
    "DemoScene",
    "SceneConfig",
    "TelemetryNoise",
    "demo_geo",
    "gt_to_detections",
    "motchallenge_rows",
    "scene_mot_truth",
    "scene_pose_source",
    "scene_seed",
    "scene_telemetry",
    "scored",
    "write_coco",
    "write_sequence",
]
