"""Make Ultralytics checkpoints with the real `ultralytics` package, as its release files are made.

`make_checkpoint(family, out, images)`: YOLO(yaml) with non-trivial weights (random init gives BatchNorm
identity statistics and near-constant class scores, so a comparison would prove little), wrapped in a trainer-style
checkpoint (weights under "ema", fp16, train_args) and passed through ultralytics' own `strip_optimizer`, which
is how release files (yolov8n.pt ...) are written: weights under "model", fp16, training args kept.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import yaml

IMGSZ = 320
# id -> (yaml name as YOLO() takes it, overrides that shrink a scale-less model for test time, or None)
FAMILIES: dict[str, tuple[str, dict[str, float] | None]] = {
    "v3u": ("yolov3u.yaml", {"depth_multiple": 0.33, "width_multiple": 0.125}),
    "v3u-spp": ("yolov3-sppu.yaml", {"depth_multiple": 0.33, "width_multiple": 0.125}),
    "v3u-tiny": ("yolov3-tinyu.yaml", {"width_multiple": 0.25}),
    "v5nu": ("yolov5nu.yaml", None),
    "v5nu-p6": ("yolov5n-p6u.yaml", None),
    "v6n": ("yolov6n.yaml", None),
    "v8n": ("yolov8n.yaml", None),
    "v8n-p2": ("yolov8n-p2.yaml", None),
    "v8n-p6": ("yolov8n-p6.yaml", None),
    "v8n-ghost": ("yolov8n-ghost.yaml", None),
    "v9t": ("yolov9t.yaml", None),
    "v9e": ("yolov9e.yaml", {"depth_multiple": 0.33, "width_multiple": 0.125}),
    "v10n": ("yolov10n.yaml", None),
    "11n": ("yolo11n.yaml", None),
    "12n": ("yolo12n.yaml", None),
    "26n": ("yolo26n.yaml", None),
    "26n-p2": ("yolo26n-p2.yaml", None),
    "26n-p6": ("yolo26n-p6.yaml", None),
}


def _div8(c: float) -> int:
    return int(math.ceil(c / 8) * 8)


def _cfg_path(name: str, overrides: dict[str, float] | None, tmp: Path) -> str:
    """The yaml to build from: the packaged one, or a shrunken copy (same layers, fewer channels/repeats)."""
    if overrides is None:
        return name
    from ultralytics.nn.tasks import yaml_model_load

    d = yaml_model_load(name)
    d = {k: v for k, v in d.items() if k not in ("yaml_file", "scale")} | overrides
    w = overrides.get("width_multiple", 1.0)
    for row in d["backbone"] + d["head"]:
        if row[2] == "CBLinear":  # ultralytics scales the layers these split, but not the split sizes
            row[3][0] = [_div8(c * w) for c in row[3][0]]
        elif row[2] in ("RepNCSPELAN4", "ELAN1"):  # hidden widths c3, c4 are not scaled either
            row[3][1:3] = [_div8(c * w) for c in row[3][1:3]]
        elif row[2] == "SPPELAN":
            row[3][1] = _div8(row[3][1] * w)
    out = tmp / name.replace("u.yaml", ".yaml")  # ultralytics maps yolov3u.yaml to its yolov3.yaml
    out.write_text(yaml.safe_dump(d), encoding="utf-8")
    return str(out)


def coco_names() -> dict[int, str]:
    """The 80 COCO class names from the installed ultralytics' own dataset yaml."""
    import ultralytics

    d = yaml.safe_load((Path(ultralytics.__file__).parent / "cfg" / "datasets" / "coco.yaml").read_text())
    return {int(k): str(v) for k, v in d["names"].items()}


def spread_weights(model: Any, images: Any, seed: int = 1) -> None:
    """Make a random-init model's outputs vary like a trained one's, so a comparison proves something.

    Random init leaves BatchNorm at identity statistics and the class convs near zero: scores come out nearly
    constant. Here the BatchNorm statistics are measured on `images` (a real-image batch, (B, 3, H, W) in
    [0, 1]) and the affine parameters spread; then each class conv (both branches of an end-to-end head) is
    rescaled so its logits over those images have mean -4 and standard deviation 1 per class.
    """
    import torch

    g = torch.Generator().manual_seed(seed)
    head = model.model[-1]
    class_convs = [seq[-1] for name in ("cv3", "one2one_cv3") for seq in (getattr(head, name, None) or ())]
    bns = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    stats: dict[int, tuple[Any, Any]] = {}

    def record(conv: Any, _inp: Any, out: Any) -> None:
        stats[id(conv)] = (out.mean(dim=(0, 2, 3)), out.std(dim=(0, 2, 3)))

    with torch.no_grad():
        for bn in bns:
            n = bn.num_features
            bn.reset_running_stats()
            bn.momentum = None  # cumulative: after one batch, exactly that batch's statistics
            bn.weight.copy_(torch.rand(n, generator=g) * 0.8 + 0.6)
            bn.bias.copy_((torch.rand(n, generator=g) - 0.5) * 0.4)
        for conv in class_convs:
            conv.weight.normal_(0.0, 1.0 / conv.weight.shape[1] ** 0.5, generator=g)
        model.train()
        model(images)
        model.eval()
        for bn in bns:
            bn.momentum = 0.03
        hooks = [conv.register_forward_hook(record) for conv in class_convs]
        model.end2end = False
        model(images)
        if getattr(head, "one2one_cv2", None) is not None:
            model.end2end = True
            model(images)
        for h in hooks:
            h.remove()
        for conv in class_convs:
            mean, std = stats[id(conv)]
            a = 1.0 / std.clamp_min(1e-6)
            conv.weight.mul_(a.view(-1, 1, 1, 1))
            conv.bias.copy_(a * (conv.bias - mean) - 4.0)


def real_image_batch(paths: list[Path], imgsz: int = IMGSZ) -> Any:
    """(B, 3, imgsz, imgsz) float32 torch tensor through edgedet's own preprocessing."""
    import cv2
    import numpy as np
    import torch

    from edgedet.convert.verify import preprocess_image
    from edgedet.spec import ModelSpec

    spec = ModelSpec(input_hw=(imgsz, imgsz))
    return torch.from_numpy(np.concatenate([preprocess_image(cv2.imread(str(p)), spec) for p in paths]))


def make_checkpoint(family: str, out_dir: Path, images: Any, *, release: bool = True) -> Path:
    """Write `<yaml stem>.pt` for FAMILIES[family] under out_dir; return its path. Needs ultralytics."""
    os.environ.setdefault("YOLO_OFFLINE", "1")
    import torch
    from ultralytics import YOLO, __version__
    from ultralytics.utils.torch_utils import strip_optimizer

    name, overrides = FAMILIES[family]
    out_dir.mkdir(parents=True, exist_ok=True)
    # The layers' random init draws from torch's global generator: seed it, so a model is the same whatever
    # ran before it in the session (unseeded, 26n-p2 saturated its scores after other tests had drawn numbers).
    torch.manual_seed(0)
    model = YOLO(_cfg_path(name, overrides, out_dir)).model
    spread_weights(model, images)
    model.names = coco_names()  # a model built from a yaml is named 0..79; trained ones carry their dataset's
    ckpt = {
        "epoch": 3,
        "best_fitness": 0.5,
        "model": None,
        "ema": __import__("copy").deepcopy(model).half(),
        "updates": 100,
        "optimizer": None,
        "train_args": {"imgsz": IMGSZ, "model": name, "data": "coco128.yaml", "epochs": 3},
        "date": "2026-01-01T00:00:00",
        "version": __version__,
    }
    path = out_dir / (Path(name).stem + ".pt")
    torch.save(ckpt, path)
    if release:
        strip_optimizer(path)
    return path
