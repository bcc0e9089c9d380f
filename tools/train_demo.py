#!/usr/bin/env python
"""Train the bundled demo detector (a small YOLOv5) on CPU from the procedural drone scenes.

    # the shipped models/demo.pt (47 min on 2 cores; models/README.md has the measured results)
    python tools/train_demo.py --out models/demo.pt --sequences 120 --frame-stride 10 --val-sequences 6 \
        --iters 12000 --warmup 100 --lr 2e-3 --ema-decay 0.998 --evals 6 --batch 8
    python tools/train_demo.py --out /tmp/demo.pt --iters 20 --sequences 4   # smoke run

Everything is deterministic from --seed once the iteration count is fixed. With --iters left out the script
times the first warm-up iterations and fixes the count so that training fits --budget-min; it logs the count
(and stores it in the checkpoint), so `--iters N` reproduces the run exactly.

Data: the generator's "train" split only (worlds that never appear in val/test/demo), --sequences flights of
--frames frames, every --frame-stride-th frame kept, rendered once into memory. Training samples are random
--crop-hw crops of those 384x640 frames (the detector is fully convolutional; crops cut the CPU cost per step
by 3x while the objects keep their size); --focus of them (half by default) are placed around an object of a class
drawn uniformly, so trucks (rare) and people (small) get as many crops as cars. HSV jitter and horizontal/vertical
flips (a nadir view has no up). Validation: full frames of the "val" split, pycocotools mAP through the same decode + NMS as the runtime.

Model: YOLOv5 v6 layout (edgedet's own modules) at --width/--depth multiples, 3 classes, anchors sized for the
scenes as first drawn (people ~4-7 px, cars ~10-30 px, trucks ~25-60 px at 640x384 from 45-95 m; since the flights
moved to 30-60 m, people are ~6-12 px, cars ~20-50 px, trucks ~45-100 px: still within YOLOv5's anchor-matching
ratio of 4, and kept so later stages could start from the earlier weights). Loss: YOLOv5's (CIoU box loss, objectness
BCE against the IoU, class BCE, anchors matched by w/h ratio < 4 with the two nearest neighbour cells).
AdamW, linear warm-up then cosine, EMA of the weights; the best EMA by fitness (0.1 mAP50 + 0.9 mAP50-95) is
saved as a yolov5-statedict-v1 file with fp16 weights, which `edgedet convert` loads with weights_only=True.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import io
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from edgedet.scenes import CLASS_NAMES, DemoScene, SceneConfig, scored

FORMAT = "yolov5-statedict-v1"
STRIDES = (8.0, 16.0, 32.0)
# anchors in input pixels, (w, h) pairs per level, from the box sizes of the train split (see module docstring)
ANCHORS = [[4, 4, 6, 6, 11, 10], [16, 20, 22, 16, 27, 27], [30, 48, 48, 30, 58, 56]]
MIN_SIDE_PX = 2.0  # a box cut by a crop edge is kept as a label when both its sides are at least this


def model_yaml(width: float, depth: float, nc: int = len(CLASS_NAMES)) -> dict[str, Any]:
    """YOLOv5 v6.0 (yolov5n/s/m layout) as a plain dict, with this project's anchors."""
    return {
        "nc": nc,
        "depth_multiple": depth,
        "width_multiple": width,
        "anchors": [list(a) for a in ANCHORS],
        "backbone": [
            [-1, 1, "Conv", [64, 6, 2, 2]],
            [-1, 1, "Conv", [128, 3, 2]],
            [-1, 3, "C3", [128]],
            [-1, 1, "Conv", [256, 3, 2]],
            [-1, 6, "C3", [256]],
            [-1, 1, "Conv", [512, 3, 2]],
            [-1, 9, "C3", [512]],
            [-1, 1, "Conv", [1024, 3, 2]],
            [-1, 3, "C3", [1024]],
            [-1, 1, "SPPF", [1024, 5]],
        ],
        "head": [
            [-1, 1, "Conv", [512, 1, 1]],
            [-1, 1, "nn.Upsample", [None, 2, "nearest"]],
            [[-1, 6], 1, "Concat", [1]],
            [-1, 3, "C3", [512, False]],
            [-1, 1, "Conv", [256, 1, 1]],
            [-1, 1, "nn.Upsample", [None, 2, "nearest"]],
            [[-1, 4], 1, "Concat", [1]],
            [-1, 3, "C3", [256, False]],
            [-1, 1, "Conv", [256, 3, 2]],
            [[-1, 14], 1, "Concat", [1]],
            [-1, 3, "C3", [512, False]],
            [-1, 1, "Conv", [512, 3, 2]],
            [[-1, 10], 1, "Concat", [1]],
            [-1, 3, "C3", [1024, False]],
            [[17, 20, 23], 1, "Detect", ["nc", "anchors"]],
        ],
    }


# --- data -------------------------------------------------------------------------------------------------------


def labels_from_gt(gt: npt.NDArray[np.float64]) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
    """MOTChallenge gt rows -> (labels (N, 5) `class x0 y0 x1 y1` px, ignore (M, 4) xyxy px).

    Labels: the objects `edgedet.scenes.scored` counts (in view, visibility >= 0.3, both sides >= MIN_SIDE_PX).
    Ignore regions: the rest of the objects in view (mostly hidden or sliver boxes), which the evaluation neither
    rewards nor penalises.
    """
    xyxy = np.column_stack([gt[:, 2], gt[:, 3], gt[:, 2] + gt[:, 4], gt[:, 3] + gt[:, 5]]).astype(np.float32)
    good = scored(gt, min_side_px=MIN_SIDE_PX)
    labels = np.column_stack([gt[good, 7] - 1, xyxy[good]]).astype(np.float32)
    return labels.reshape(-1, 5), xyxy[~good].reshape(-1, 4)


def render_split(
    split: str,
    seed: int,
    sequences: int,
    frames: int,
    stride: int,
    size_hw: tuple[int, int],
    log: Any,
    first: int = 0,
) -> tuple[npt.NDArray[np.uint8], list[npt.NDArray[np.float32]], list[npt.NDArray[np.float32]]]:
    """Every `stride`-th frame of flights first..first+sequences-1 of `split` -> (images (N,H,W,3) BGR, labels,
    ignores)."""
    per_seq = len(range(0, frames, stride))
    images = np.empty((sequences * per_seq, *size_hw, 3), np.uint8)
    labels: list[npt.NDArray[np.float32]] = []
    ignores: list[npt.NDArray[np.float32]] = []
    cfg = SceneConfig(size_hw=size_hw, frames=frames)
    n = 0
    t0 = time.perf_counter()
    for s in range(sequences):
        for i, (img, gt) in enumerate(DemoScene(seed=seed, config=cfg, split=split, index=first + s)):
            if i % stride:
                continue
            images[n] = img
            lab, ign = labels_from_gt(gt)
            labels.append(lab)
            ignores.append(ign)
            n += 1
        if (s + 1) % 10 == 0 or s + 1 == sequences:
            log(f"  {split}: {s + 1}/{sequences} flights, {n} frames, {time.perf_counter() - t0:.0f} s")
    return images[:n], labels, ignores


def hsv_jitter(img: npt.NDArray[np.uint8], gains: npt.NDArray[np.float64]) -> npt.NDArray[np.uint8]:
    """YOLOv5's HSV augmentation: hue/saturation/value multiplied by `gains` (3,) through lookup tables."""
    hue, sat, val = cv2.split(cv2.cvtColor(img, cv2.COLOR_BGR2HSV))
    x = np.arange(256, dtype=np.float64)
    lut_h = ((x * gains[0]) % 180).astype(np.uint8)
    lut_s = np.clip(x * gains[1], 0, 255).astype(np.uint8)
    lut_v = np.clip(x * gains[2], 0, 255).astype(np.uint8)
    hsv = cv2.merge((cv2.LUT(hue, lut_h), cv2.LUT(sat, lut_s), cv2.LUT(val, lut_v)))
    return np.asarray(cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR), np.uint8)


def _crop_origin(rng: np.random.Generator, centre: float, crop: int, size: int, margin: int = 8) -> int:
    """A random crop start in [0, size - crop] whose crop holds `centre` at least `margin` px from its edges
    where the frame allows."""
    lo = min(max(0, int(centre) - crop + margin), size - crop)
    hi = max(lo, min(size - crop, int(centre) - margin))
    return int(rng.integers(lo, hi + 1))


def make_batch(
    images: npt.NDArray[np.uint8],
    labels: list[npt.NDArray[np.float32]],
    rng: np.random.Generator,
    batch: int,
    crop_hw: tuple[int, int],
    focus: float = 0.0,
    by_class: list[npt.NDArray[np.int64]] | None = None,
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
    """Random crops with flips and HSV jitter -> (x (B,3,h,w) float32 RGB 0..1, targets (T,6) `img cls cx cy w h`
    normalised to the crop). A box cut by the crop edge is kept (clipped) when >= 30% of its area remains, as the
    scene labels a box cut by the frame edge.

    With probability `focus` a crop is placed around one object of a class drawn uniformly from the classes in
    `by_class` ((frame, label row) pairs per class, from `objects_by_class`): rare classes (trucks) and small
    ones (people) then get as many training crops as cars, where uniform crops would be mostly road."""
    ch, cw = crop_hw
    h, w = images.shape[1:3]
    x = np.empty((batch, 3, ch, cw), np.float32)
    rows: list[npt.NDArray[np.float32]] = []
    pools = [p for p in (by_class or []) if len(p)]
    for b in range(batch):
        if pools and rng.random() < focus:
            pool = pools[int(rng.integers(len(pools)))]
            k, j = (int(v) for v in pool[int(rng.integers(len(pool)))])
            _, bx0, by0, bx1, by1 = labels[k][j]
            cx, cy = (bx0 + bx1) / 2, (by0 + by1) / 2
            # any crop that has the object's centre at least 8 px inside it (or the frame edge's crop)
            y0 = _crop_origin(rng, cy, ch, h)
            x0 = _crop_origin(rng, cx, cw, w)
        else:
            k = int(rng.integers(0, len(images)))
            y0, x0 = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
        img = images[k, y0 : y0 + ch, x0 : x0 + cw]
        lab = labels[k].copy()
        box = lab[:, 1:5] - np.array([x0, y0, x0, y0], np.float32)
        area = (box[:, 2] - box[:, 0]) * (box[:, 3] - box[:, 1])
        box = np.clip(box, 0, [cw, ch, cw, ch]).astype(np.float32)
        bw, bh = box[:, 2] - box[:, 0], box[:, 3] - box[:, 1]
        keep = (bw >= MIN_SIDE_PX) & (bh >= MIN_SIDE_PX) & (bw * bh >= 0.3 * area)
        cls, box = lab[keep, 0], box[keep]
        img = hsv_jitter(img, rng.uniform(-1, 1, 3) * (0.015, 0.5, 0.35) + 1)
        if rng.random() < 0.5:
            img = img[:, ::-1]
            box[:, [0, 2]] = cw - box[:, [2, 0]]
        if rng.random() < 0.5:
            img = img[::-1]
            box[:, [1, 3]] = ch - box[:, [3, 1]]
        x[b] = img[..., ::-1].transpose(2, 0, 1) / np.float32(255)
        if len(box):
            cxcy = (box[:, :2] + box[:, 2:]) / 2 / (cw, ch)
            wh = (box[:, 2:] - box[:, :2]) / (cw, ch)
            rows.append(np.column_stack([np.full(len(box), b), cls, cxcy, wh]).astype(np.float32))
    targets = np.concatenate(rows) if rows else np.zeros((0, 6), np.float32)
    return x, targets


def objects_by_class(labels: list[npt.NDArray[np.float32]], nc: int) -> list[npt.NDArray[np.int64]]:
    """(frame, label row) index pairs of every label, one (N, 2) array per class."""
    pairs = [(k, j, int(c)) for k, lab in enumerate(labels) for j, c in enumerate(lab[:, 0])]
    arr = np.array(pairs, np.int64).reshape(-1, 3)
    return [arr[arr[:, 2] == c, :2] for c in range(nc)]


# --- loss -------------------------------------------------------------------------------------------------------


def bbox_ciou(box1: Any, box2: Any, eps: float = 1e-7) -> Any:
    """Complete IoU of matched boxes (N, 4) cx, cy, w, h -> (N,)."""
    import torch

    (x1, y1, w1, h1), (x2, y2, w2, h2) = box1.unbind(-1), box2.unbind(-1)
    b1x1, b1x2, b1y1, b1y2 = x1 - w1 / 2, x1 + w1 / 2, y1 - h1 / 2, y1 + h1 / 2
    b2x1, b2x2, b2y1, b2y2 = x2 - w2 / 2, x2 + w2 / 2, y2 - h2 / 2, y2 + h2 / 2
    inter = (torch.min(b1x2, b2x2) - torch.max(b1x1, b2x1)).clamp(0) * (
        torch.min(b1y2, b2y2) - torch.max(b1y1, b2y1)
    ).clamp(0)
    union = w1 * h1 + w2 * h2 - inter + eps
    iou = inter / union
    cw = torch.max(b1x2, b2x2) - torch.min(b1x1, b2x1)
    ch = torch.max(b1y2, b2y2) - torch.min(b1y1, b2y1)
    c2 = cw**2 + ch**2 + eps
    rho2 = (x2 - x1) ** 2 + (y2 - y1) ** 2
    v = (4 / math.pi**2) * (torch.atan(w2 / (h2 + eps)) - torch.atan(w1 / (h1 + eps))) ** 2
    with torch.no_grad():
        alpha = v / (v - iou + (1 + eps))
    return iou - (rho2 / c2 + v * alpha)


class YoloV5Loss:
    """YOLOv5's ComputeLoss (v6/v7): build_targets with anchor_t and neighbour cells, CIoU, IoU-target obj."""

    def __init__(
        self, det: Any, box: float = 0.05, obj: float = 1.0, cls: float = 0.3, anchor_t: float = 4.0
    ):
        import torch

        self.torch = torch
        self.na, self.nc, self.nl = int(det.na), int(det.nc), int(det.nl)
        self.anchors = det.anchors.detach().clone()  # (nl, na, 2) grid units
        self.balance = [4.0, 1.0, 0.4]
        self.hyp_box, self.hyp_obj, self.hyp_cls, self.anchor_t = box, obj, cls, anchor_t
        self.bce = torch.nn.BCEWithLogitsLoss()

    def __call__(self, preds: list[Any], targets: Any) -> tuple[Any, Any]:
        torch = self.torch
        lcls, lbox, lobj = torch.zeros(()), torch.zeros(()), torch.zeros(())
        tcls, tbox, indices, anch = self.build_targets(preds, targets)
        for i, pi in enumerate(preds):
            b, a, gj, gi = indices[i]
            tobj = torch.zeros(pi.shape[:4], dtype=pi.dtype)
            n = b.shape[0]
            if n:
                pxy, pwh, _, pcls = pi[b, a, gj, gi].split((2, 2, 1, self.nc), 1)
                pxy = pxy.sigmoid() * 2 - 0.5
                pwh = (pwh.sigmoid() * 2) ** 2 * anch[i]
                iou = bbox_ciou(torch.cat((pxy, pwh), 1), tbox[i])
                lbox = lbox + (1.0 - iou).mean()
                tobj[b, a, gj, gi] = iou.detach().clamp(0).to(tobj.dtype)
                t = torch.zeros_like(pcls)
                t[torch.arange(n), tcls[i]] = 1.0
                lcls = lcls + self.bce(pcls, t)
            lobj = lobj + self.bce(pi[..., 4], tobj) * self.balance[i]
        bs = preds[0].shape[0]
        lbox, lobj, lcls = lbox * self.hyp_box, lobj * self.hyp_obj, lcls * self.hyp_cls
        return (lbox + lobj + lcls) * bs, torch.stack((lbox, lobj, lcls)).detach()

    def build_targets(
        self, preds: list[Any], targets: Any
    ) -> tuple[list[Any], list[Any], list[Any], list[Any]]:
        torch = self.torch
        na, nt = self.na, targets.shape[0]
        tcls, tbox, indices, anch = [], [], [], []
        gain = torch.ones(7)
        ai = torch.arange(na, dtype=torch.float32).view(na, 1).repeat(1, nt)
        targets = torch.cat((targets.repeat(na, 1, 1), ai[..., None]), 2)  # (na, nt, 7)
        g = 0.5
        off = torch.tensor([[0, 0], [1, 0], [0, 1], [-1, 0], [0, -1]], dtype=torch.float32) * g
        for i in range(self.nl):
            anchors, shape = self.anchors[i], preds[i].shape
            gain[2:6] = torch.tensor(shape, dtype=torch.float32)[[3, 2, 3, 2]]
            t = targets * gain
            if nt:
                r = t[..., 4:6] / anchors[:, None]
                j = torch.max(r, 1 / r).max(2)[0] < self.anchor_t
                t = t[j]
                gxy = t[:, 2:4]
                gxi = gain[[2, 3]] - gxy
                j, k = ((gxy % 1 < g) & (gxy > 1)).T
                lo, m = ((gxi % 1 < g) & (gxi > 1)).T
                j = torch.stack((torch.ones_like(j), j, k, lo, m))
                t = t.repeat((5, 1, 1))[j]
                offsets = (torch.zeros_like(gxy)[None] + off[:, None])[j]
            else:
                t = targets[0]
                offsets = torch.zeros((0, 2))
            bc, gxy, gwh, a = t.split((2, 2, 2, 1), 1)
            a, (b, c) = a.long().view(-1), bc.long().T
            gij = (gxy - offsets).long()
            gi, gj = gij.T
            gi, gj = gi.clamp(0, shape[3] - 1), gj.clamp(0, shape[2] - 1)
            indices.append((b, a, gj, gi))
            tbox.append(torch.cat((gxy - torch.stack((gi, gj), 1), gwh), 1))
            anch.append(anchors[a])
            tcls.append(c)
        return tcls, tbox, indices, anch


# --- evaluation -------------------------------------------------------------------------------------------------


def evaluate(
    model: Any,
    images: npt.NDArray[np.uint8],
    labels: list[npt.NDArray[np.float32]],
    ignores: list[npt.NDArray[np.float32]],
    batch: int = 8,
) -> tuple[float, float]:
    """(mAP50-95, mAP50) of `model` (eval mode) on full frames, pycocotools, conf 0.001, class-aware NMS 0.6."""
    import torch
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    from edgedet.postprocess.nms import nms

    model.eval()
    dets = []
    with torch.no_grad():
        for s in range(0, len(images), batch):
            x = torch.from_numpy(np.ascontiguousarray(images[s : s + batch, ..., ::-1].transpose(0, 3, 1, 2)))
            out = model(x.float() / 255).numpy()
            for k, o in enumerate(out):
                scores = o[:, 5:] * o[:, 4:5]
                cls = scores.argmax(1)
                conf = scores[np.arange(len(o)), cls]
                keep = conf > 0.001
                o, cls, conf = o[keep], cls[keep], conf[keep]
                xyxy = np.column_stack([o[:, :2] - o[:, 2:4] / 2, o[:, :2] + o[:, 2:4] / 2])
                kept = nms(xyxy, conf, cls, iou_threshold=0.6, max_det=300)
                for j in kept:
                    x0, y0, x1, y1 = (float(v) for v in xyxy[j])
                    dets.append([s + k, x0, y0, x1 - x0, y1 - y0, float(conf[j]), int(cls[j]) + 1])
    gt: dict[str, Any] = {"images": [], "annotations": [], "categories": []}
    gt["categories"] = [{"id": i + 1, "name": n} for i, n in enumerate(CLASS_NAMES)]
    h, w = images.shape[1:3]
    aid = 0
    for i, (lab, ign) in enumerate(zip(labels, ignores, strict=True)):
        gt["images"].append({"id": i, "width": w, "height": h})
        for c, x0, y0, x1, y1 in lab:
            aid += 1
            bw, bh = float(x1 - x0), float(y1 - y0)
            gt["annotations"].append(
                {"id": aid, "image_id": i, "category_id": int(c) + 1, "bbox": [float(x0), float(y0), bw, bh],
                 "area": bw * bh, "iscrowd": 0}
            )  # fmt: skip
        for x0, y0, x1, y1 in ign:
            for c in range(len(CLASS_NAMES)):  # an ignore region of every class: a hidden object of any label
                aid += 1
                bw, bh = float(x1 - x0), float(y1 - y0)
                gt["annotations"].append(
                    {"id": aid, "image_id": i, "category_id": c + 1, "bbox": [float(x0), float(y0), bw, bh],
                     "area": bw * bh, "iscrowd": 1}
                )  # fmt: skip
    if not dets:
        return 0.0, 0.0
    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO()
        coco.dataset = gt
        coco.createIndex()
        ev = COCOeval(coco, coco.loadRes(np.array(dets, np.float64)), "bbox")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return max(float(ev.stats[0]), 0.0), max(float(ev.stats[1]), 0.0)


# --- training ---------------------------------------------------------------------------------------------------


def build_model(width: float, depth: float, seed: int) -> Any:
    import torch

    from edgedet.convert.adapters.yolov5_modules import yolov5_classes

    torch.manual_seed(seed)
    model = yolov5_classes().DetectionModel(model_yaml(width, depth))
    det = model.model[-1]
    with torch.no_grad():  # YOLOv5's prior: ~8 objects per 640x640 image, class probability ~0.6 / nc
        for mi, s in zip(det.m, det.stride, strict=True):
            b = mi.bias.view(det.na, -1)
            b[:, 4] += math.log(8 / (640 / float(s)) ** 2)
            b[:, 5:] += math.log(0.6 / (det.nc - 0.99))
    return model


def checkpoint(model: Any, width: float, depth: float, provenance: dict[str, Any]) -> dict[str, Any]:
    """yolov5-statedict-v1: floating weights as fp16 (BatchNorm statistics and anchors stay fp32: they are
    tiny and running_var below fp16's resolution would change the fused conv)."""
    state = {}
    for k, v in model.state_dict().items():
        v = v.detach().clone()
        if v.is_floating_point() and not (k.endswith(("running_mean", "running_var")) or "anchors" in k):
            v = v.half()
        state[k] = v
    return {
        "format": FORMAT,
        "yaml": model_yaml(width, depth),
        "names": list(CLASS_NAMES),
        "stride": list(STRIDES),
        "state_dict": state,
        "provenance": provenance,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, default=Path("models/demo.pt"))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--sequences", type=int, default=60, help="training flights (train split)")
    p.add_argument("--first-sequence", type=int, default=0, help="index of the first training flight")
    p.add_argument("--frames", type=int, default=150, help="frames simulated per flight")
    p.add_argument("--frame-stride", type=int, default=6, help="keep every Nth frame of a flight")
    p.add_argument("--val-sequences", type=int, default=3)
    p.add_argument("--iters", type=int, default=None, help="optimizer steps (default: fit --budget-min)")
    p.add_argument(
        "--budget-min", type=float, default=30.0, help="training wall-time budget when --iters is unset"
    )
    p.add_argument("--batch", type=int, default=12)
    p.add_argument(
        "--focus",
        type=float,
        default=0.5,
        help="share of crops placed around an object of a class drawn uniformly",
    )
    p.add_argument("--crop", type=int, nargs=2, default=(256, 320), metavar=("H", "W"))
    p.add_argument("--width", type=float, default=0.1875)
    p.add_argument("--depth", type=float, default=0.33)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--weight-decay", type=float, default=0.05)
    p.add_argument("--warmup", type=int, default=100)
    p.add_argument("--evals", type=int, default=6, help="validations during training")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument(
        "--init", type=Path, default=None, help="start from this yolov5-statedict-v1 file (a second stage)"
    )
    p.add_argument("--ema-decay", type=float, default=0.995, help="EMA decay after its ramp")
    p.add_argument("--log", type=Path, default=None, help="also append the log to this file")
    args = p.parse_args(argv)

    import torch

    torch.set_num_threads(args.threads)
    cv2.setNumThreads(1)
    torch.use_deterministic_algorithms(True, warn_only=True)
    log_file = args.log.open("a", encoding="utf-8") if args.log else None
    t_start = time.perf_counter()

    def log(msg: str) -> None:
        line = f"[{time.perf_counter() - t_start:7.1f}s] {msg}"
        print(line, flush=True)
        if log_file:
            log_file.write(line + "\n")
            log_file.flush()

    log(f"args: {vars(args)}")
    size_hw = (384, 640)
    images, labels, _ = render_split(
        "train", args.seed, args.sequences, args.frames, args.frame_stride, size_hw, log, args.first_sequence
    )
    vimages, vlabels, vignores = render_split("val", args.seed, args.val_sequences, 150, 10, size_hw, log)
    counts = np.bincount(np.concatenate([lab[:, 0] for lab in labels]).astype(int), minlength=3)
    log(
        f"train: {len(images)} frames, labels per class {dict(zip(CLASS_NAMES, counts.tolist(), strict=True))}"
    )
    log(f"val: {len(vimages)} frames, {sum(len(v) for v in vlabels)} labels")
    by_class = objects_by_class(labels, len(CLASS_NAMES))
    t_data = time.perf_counter() - t_start

    model = build_model(args.width, args.depth, args.seed)
    if args.init is not None:
        # a second stage may render its data while the first finishes: wait for the file to appear
        while not args.init.exists() and time.perf_counter() - t_start < 3600:
            time.sleep(5)
        init = torch.load(args.init, map_location="cpu", weights_only=True)
        if init.get("format") != FORMAT or init.get("yaml") != model_yaml(args.width, args.depth):
            log(f"error: {args.init} is not a {FORMAT} file of this architecture (--width/--depth)")
            return 2
        model.load_state_dict(
            {k: v.float() if v.is_floating_point() else v for k, v in init["state_dict"].items()}
        )
        log(f"initialised from {args.init} ({init.get('provenance', {}).get('command', '?')})")
    nparams = sum(q.numel() for q in model.parameters())
    log(f"model: width {args.width} depth {args.depth}, {nparams / 1e6:.2f} M parameters")
    loss_fn = YoloV5Loss(model.model[-1])
    decay: list[Any] = []
    no_decay: list[Any] = []
    for name, q in model.named_parameters():
        (decay if name.endswith(".weight") and q.ndim > 1 else no_decay).append(q)
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": args.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=args.lr,
        betas=(0.937, 0.999),
    )
    ema = copy.deepcopy(model).eval()
    for q in ema.parameters():
        q.requires_grad_(False)

    total = args.iters
    init_command = init.get("provenance", {}).get("command", "") if args.init is not None else ""
    timing_from, timing_to = 5, 35
    t_timing = 0.0
    best = (-1.0, 0.0, 0.0)
    history: list[dict[str, float]] = []
    it = 0
    t_train = time.perf_counter()
    running = np.zeros(3)
    while total is None or it < total:
        if it == timing_from:
            t_timing = time.perf_counter()
        if total is None and it == timing_to:
            per_it = (time.perf_counter() - t_timing) / (timing_to - timing_from)
            budget_s = args.budget_min * 60 - (time.perf_counter() - t_train)
            # each evaluation costs about as much as 12 steps (measured); leave them room in the budget
            total = max(timing_to + 1, int(budget_s / per_it) + timing_to - 12 * args.evals)
            log(f"{per_it:.2f} s/step: training for {total} steps (pass --iters {total} to reproduce)")
        peak_it = total if total is not None else 10**9
        if it < args.warmup:
            lr = args.lr * (it + 1) / args.warmup
        else:
            frac = (it - args.warmup) / max(1, peak_it - args.warmup)
            lr = args.lr * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min(frac, 1.0))))
        for group in opt.param_groups:
            group["lr"] = lr
        rng = np.random.default_rng([args.seed, it])
        xb, tb = make_batch(images, labels, rng, args.batch, tuple(args.crop), args.focus, by_class)
        model.train()
        preds = model(torch.from_numpy(xb))
        loss, parts = loss_fn(preds, torch.from_numpy(tb))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 10.0)
        opt.step()
        it += 1
        # EMA with a short horizon: a few hundred steps in all, so YOLOv5's 2000-step ramp would lag far behind
        d = args.ema_decay * (1 - math.exp(-it / 100))
        with torch.no_grad():
            msd = model.state_dict()
            for k, v in ema.state_dict().items():
                if v.dtype.is_floating_point:
                    v.mul_(d).add_(msd[k].detach(), alpha=1 - d)
        running = 0.9 * running + 0.1 * parts.numpy() if it > 1 else parts.numpy()
        if it % 10 == 0:
            el = time.perf_counter() - t_train
            log(
                f"step {it}/{total or '?'} lr {lr:.2e} box {running[0]:.4f} obj {running[1]:.4f} "
                f"cls {running[2]:.4f}  {el / it:.2f} s/step"
            )
        if total is not None and (it == total or it % max(1, total // args.evals) == 0) and it >= args.warmup:
            t0 = time.perf_counter()
            m5095, m50 = evaluate(ema, vimages, vlabels, vignores)
            fit = 0.1 * m50 + 0.9 * m5095
            history.append({"step": it, "map50": m50, "map50_95": m5095})
            tag = ""
            if fit > best[0]:
                best = (fit, m50, m5095)
                tag = " (best, saved)"
                prov = {
                    "tool": "tools/train_demo.py",
                    "command": "python tools/train_demo.py " + " ".join(
                        f"--{k.replace('_', '-')} {' '.join(map(str, v)) if isinstance(v, (list, tuple)) else v}"
                        for k, v in vars(args).items() if v is not None and k not in ("log", "out", "iters")
                    ) + f" --iters {total}",
                    "seed": str(args.seed),
                    "step": str(it),
                    "val_map50": f"{m50:.4f}",
                    "val_map50_95": f"{m5095:.4f}",
                    "data": f"edgedet.scenes split=train seed={args.seed} flights={args.first_sequence}..{args.first_sequence + args.sequences - 1}",
                    "init": str(args.init) if args.init else "",
                    "init_command": init_command,
                }  # fmt: skip
                args.out.parent.mkdir(parents=True, exist_ok=True)
                torch.save(checkpoint(ema, args.width, args.depth, prov), args.out)
            log(
                f"val step {it}: mAP50 {m50:.4f} mAP50-95 {m5095:.4f} ({time.perf_counter() - t0:.1f} s){tag}"
            )
    wall = time.perf_counter() - t_start
    summary = {
        "steps": total,
        "data_s": round(t_data, 1),
        "train_s": round(time.perf_counter() - t_train, 1),
        "wall_s": round(wall, 1),
        "best_map50": round(best[1], 4),
        "best_map50_95": round(best[2], 4),
        "history": history,
        "out": str(args.out),
        "size_bytes": args.out.stat().st_size if args.out.exists() else 0,
    }
    log("summary " + json.dumps(summary))
    if log_file:
        log_file.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
