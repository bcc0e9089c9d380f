"""Detection accuracy: COCO mAP50-95 / mAP50 through pycocotools, on a labelled set or against a reference model.

Images pass through the runtime's own Detector (`edgedet.detector`: preprocess, any registered backend,
postprocess), so the number measured is the number the deployed pipeline gets.
Defaults follow YOLOv5/Ultralytics validation: conf 0.001, NMS IoU 0.6, multi-label, max_det 300.
COCO evaluation itself keeps the 100 highest-scoring detections per image.
"""

from __future__ import annotations

import contextlib
import io
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from edgedet._optional import require
from edgedet.datasets import DetectionDataset, LabelledImage, load_dataset, read_image
from edgedet.detector import DetectionTimes, Detector, default_backend
from edgedet.errors import DataError, ModelError
from edgedet.postprocess import PostprocessConfig
from edgedet.spec import ModelSpec, read_onnx_spec
from edgedet.types import Detections

#: a detector as the evaluator sees it: BGR uint8 HxWx3 image -> Detections in that image's pixels
DetectFn = Callable[[npt.NDArray[np.uint8]], Detections]


@dataclass(frozen=True)
class DetMetrics:
    """COCO box metrics of one model on one image set.

    map50_95: AP averaged over IoU 0.50:0.95 (COCO "mAP"), in [0, 1]. map50: AP at IoU 0.5.
    per_class: class index -> (map50_95, map50), only for classes present in the ground truth and only when
    asked for. latency_ms_p50: median model time per image (ONNX Runtime `run` alone for an ONNX file; the whole
    call for a callable). e2e_ms_p50: median of preprocess + model + postprocess.
    """

    map50_95: float
    map50: float
    num_images: int
    num_gt: int
    num_detections: int
    latency_ms_p50: float
    e2e_ms_p50: float
    per_class: Mapping[int, tuple[float, float]] = field(default_factory=dict)

    def summary(self) -> str:
        return (
            f"mAP50-95 {self.map50_95:.3f}  mAP50 {self.map50:.3f}  ({self.num_images} images, {self.num_gt} objects, "
            f"model {self.latency_ms_p50:.1f} ms p50)"
        )


load_onnx_spec = read_onnx_spec  # kept under this name for callers; the reader lives in edgedet.spec


class OnnxDetector(Detector):
    """A model file -> callable `(image_bgr) -> Detections`, through `edgedet.detector.Detector` (the runtime's
    preprocess, the named backend, the runtime's postprocess), with mAP-style defaults.

    Keeps the backend `infer` time of every call (ms) in `model_ms` and preprocess + infer + postprocess in
    `e2e_ms`. threads: CPU inference threads (2 = the embedded CPU budget the benchmarks assume). backend: a
    backend registry name (None: tensorrt for .engine/.plan files, onnxruntime otherwise); device: its device.
    """

    def __init__(
        self,
        onnx_path: Path | str,
        *,
        conf_threshold: float = 0.001,
        iou_threshold: float = 0.6,
        multi_label: bool = True,
        max_det: int = 300,
        threads: int = 2,
        spec: ModelSpec | None = None,
        backend: str | None = None,
        device: str = "cpu",
    ) -> None:
        from edgedet.backends import BackendConfig, open_backend

        self.path = Path(onnx_path)
        if not self.path.is_file():
            raise ModelError(f"model file {self.path} does not exist; pass the path of an .onnx file")
        name = backend or default_backend(self.path)
        super().__init__(
            open_backend(self.path, BackendConfig(backend=name, device=device, threads=threads)),
            PostprocessConfig(
                conf_threshold=conf_threshold,
                iou_threshold=iou_threshold,
                multi_label=multi_label,
                max_det=max_det,
            ),
            spec=spec,
        )
        self.model_ms: list[float] = []
        self.e2e_ms: list[float] = []

    def detect(self, image_bgr: npt.NDArray[np.uint8]) -> tuple[Detections, DetectionTimes]:
        dets, times = super().detect(image_bgr)
        self.model_ms.append(times.infer_ms)
        self.e2e_ms.append(times.total_ms)
        return dets, times


def as_detector(model: Path | str | DetectFn, **onnx_options: Any) -> DetectFn:
    """An ONNX path becomes an OnnxDetector (with `onnx_options`); a callable is used as it is."""
    if isinstance(model, (str, Path)):
        return OnnxDetector(model, **onnx_options)
    if not callable(model):
        raise TypeError(
            f"model must be an ONNX path or a callable image -> Detections, got {type(model).__name__}"
        )
    return model


def run_detector(
    model: DetectFn, images: Iterable[Path], progress: Callable[[int, int], None] | None = None
) -> tuple[list[Detections], list[float]]:
    """Detections for each image (in order) and the wall time of each call in ms."""
    paths = list(images)
    out: list[Detections] = []
    call_ms: list[float] = []
    for i, p in enumerate(paths):
        img = read_image(p)
        t0 = time.perf_counter_ns()
        out.append(model(img))
        call_ms.append((time.perf_counter_ns() - t0) / 1e6)
        if progress is not None:
            progress(i + 1, len(paths))
    return out, call_ms


def coco_map(
    dataset: DetectionDataset, detections: Sequence[Detections], per_class: bool = False
) -> tuple[float, float, dict[int, tuple[float, float]]]:
    """pycocotools bbox mAP50-95 and mAP50 of `detections[i]` against `dataset[i]` (same order).

    Returns (map50_95, map50, per_class) with per_class filled only when asked.
    """
    if len(detections) != len(dataset):
        raise ValueError(f"{len(detections)} detection lists for {len(dataset)} images")
    require("pycocotools", "detection mAP")
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    gt_dict = dataset.to_coco()
    if not gt_dict["annotations"]:
        raise DataError(
            f"{dataset.name}: no ground-truth boxes, so mAP is undefined; check the labels folder"
        )
    rows = []
    for img_id, d in enumerate(detections):
        if len(d) == 0:
            continue
        xywh = d.xywh.astype(np.float64)
        rows.append(
            np.column_stack(
                [
                    np.full(len(d), img_id, np.float64),
                    xywh,
                    d.confidence.astype(np.float64),
                    d.class_id.astype(np.float64),
                ]
            )
        )
    if not rows:
        return 0.0, 0.0, {}
    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints progress; library code stays quiet
        gt = COCO()
        gt.dataset = gt_dict
        gt.createIndex()
        dt = gt.loadRes(np.concatenate(rows))
        ev = COCOeval(gt, dt, "bbox")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    map50_95, map50 = float(ev.stats[0]), float(ev.stats[1])
    classes: dict[int, tuple[float, float]] = {}
    if per_class:
        # precision: [T IoU thresholds, R recall points, K categories, A area ranges, M maxDets]; -1 = no gt
        prec = ev.eval["precision"]
        for k, cat_id in enumerate(ev.params.catIds):
            p = prec[:, :, k, 0, -1]
            if (p > -1).any():
                classes[int(cat_id)] = (float(p[p > -1].mean()), float(p[0][p[0] > -1].mean()))
    return max(map50_95, 0.0), max(map50, 0.0), classes


def pseudo_label_dataset(
    reference: Path | str | DetectFn,
    images: Sequence[Path],
    conf_threshold: float = 0.25,
    iou_threshold: float = 0.45,
    class_names: Sequence[str] = (),
) -> DetectionDataset:
    """A "labelled" set whose ground truth is a reference model's detections at deployment settings
    (conf 0.25, IoU 0.45, one label per box), for checking a candidate where no labels exist."""
    ref = as_detector(
        reference, conf_threshold=conf_threshold, iou_threshold=iou_threshold, multi_label=False
    )
    names = tuple(class_names) or (ref.spec.class_names if isinstance(ref, Detector) else ())
    items = []
    for p in images:
        img = read_image(p)
        d = ref(img)
        items.append(LabelledImage(Path(p), (int(img.shape[0]), int(img.shape[1])), d.xyxy, d.class_id))
    return DetectionDataset(tuple(items), names, "pseudo-labels")


def evaluate_detections(
    model: Path | str | DetectFn,
    dataset: DetectionDataset | Path | str | None = None,
    *,
    reference: Path | str | DetectFn | None = None,
    images: Sequence[Path] | None = None,
    conf_threshold: float = 0.001,
    iou_threshold: float = 0.6,
    multi_label: bool = True,
    max_det: int = 300,
    threads: int = 2,
    per_class: bool = False,
    reference_conf: float = 0.25,
    backend: str | None = None,
    device: str = "cpu",
    progress: Callable[[int, int], None] | None = None,
) -> DetMetrics:
    """mAP of `model` (an ONNX path or a callable image -> Detections) on `dataset` (a DetectionDataset, a YOLO
    folder or a COCO json), run through `backend` (a registry name; None: by file suffix), or, with `reference` and `images` instead of a dataset, against the reference
    model's detections at `reference_conf` ("pseudo-label" mode: how far a candidate strays from FP32)."""
    if dataset is None:
        if reference is None or images is None:
            raise ValueError("pass a labelled dataset, or a reference model and images for pseudo-label mode")
        dataset = pseudo_label_dataset(reference, images, conf_threshold=reference_conf)
    elif not isinstance(dataset, DetectionDataset):
        dataset = load_dataset(dataset)
    detector = as_detector(
        model,
        conf_threshold=conf_threshold,
        iou_threshold=iou_threshold,
        multi_label=multi_label,
        max_det=max_det,
        threads=threads,
        backend=backend,
        device=device,
    )
    dets, call_ms = run_detector(detector, dataset.paths, progress)
    m50_95, m50, classes = coco_map(dataset, dets, per_class)
    if isinstance(detector, OnnxDetector):
        model_ms, e2e_ms = detector.model_ms[-len(dets) :], detector.e2e_ms[-len(dets) :]
    else:
        model_ms = e2e_ms = call_ms
    return DetMetrics(
        map50_95=m50_95,
        map50=m50,
        num_images=len(dataset),
        num_gt=dataset.num_objects,
        num_detections=sum(len(d) for d in dets),
        latency_ms_p50=float(np.median(model_ms)) if model_ms else float("nan"),
        e2e_ms_p50=float(np.median(e2e_ms)) if e2e_ms else float("nan"),
        per_class=classes,
    )
