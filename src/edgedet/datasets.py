"""Labelled image sets for accuracy checks: YOLO-txt folders (coco128 layout) and COCO json files.

A dataset is read into memory as plain arrays (boxes in image pixels, class indices 0..K-1) so that
evaluation, calibration and the accuracy gate all see the same images in the same order (sorted by path).

YOLO layout: `<root>/images/<split>/*.jpg` beside `<root>/labels/<split>/*.txt`, one row per object,
`class cx cy w h` normalised to [0, 1]. Images without a label file have no objects. Duplicate rows are
dropped, as YOLOv5/Ultralytics do (coco128 has 12), so that scores match theirs.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, overload

import numpy as np
import numpy.typing as npt

from edgedet.errors import DataError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")


@dataclass(frozen=True)
class LabelledImage:
    """One image and its ground truth.

    hw: image height, width (pixels). xyxy: (N, 4) float32 image pixels. class_id: (N,) int32 class index.
    iscrowd: (N,) bool (COCO crowd regions: neither matched nor penalised by COCO evaluation).
    """

    path: Path
    hw: tuple[int, int]
    xyxy: npt.NDArray[np.float32]
    class_id: npt.NDArray[np.int32]
    iscrowd: npt.NDArray[np.bool_] = field(default_factory=lambda: np.zeros(0, bool))

    def __post_init__(self) -> None:
        n = int(np.asarray(self.xyxy).reshape(-1, 4).shape[0])
        object.__setattr__(self, "xyxy", np.asarray(self.xyxy, np.float32).reshape(n, 4))
        object.__setattr__(self, "class_id", np.asarray(self.class_id, np.int32).reshape(n))
        crowd = np.asarray(self.iscrowd, bool)
        object.__setattr__(self, "iscrowd", crowd.reshape(n) if crowd.size else np.zeros(n, bool))


@dataclass(frozen=True)
class DetectionDataset:
    """An ordered set of labelled images. Indexing with an int gives a LabelledImage; a slice or a sequence
    of ints gives a new DetectionDataset (same class names)."""

    images: tuple[LabelledImage, ...]
    class_names: tuple[str, ...] = ()
    name: str = "dataset"

    def __len__(self) -> int:
        return len(self.images)

    def __iter__(self) -> Iterator[LabelledImage]:
        return iter(self.images)

    @overload
    def __getitem__(self, index: int) -> LabelledImage: ...
    @overload
    def __getitem__(self, index: slice | Sequence[int]) -> DetectionDataset: ...
    def __getitem__(self, index: int | slice | Sequence[int]) -> LabelledImage | DetectionDataset:
        if isinstance(index, (int, np.integer)):
            return self.images[int(index)]
        if isinstance(index, slice):
            picked = self.images[index]
        else:
            picked = tuple(self.images[int(i)] for i in index)
        return DetectionDataset(picked, self.class_names, self.name)

    @property
    def paths(self) -> list[Path]:
        return [im.path for im in self.images]

    @property
    def num_objects(self) -> int:
        return sum(len(im.class_id) for im in self.images)

    def to_coco(self) -> dict[str, Any]:
        """COCO ground-truth dict for pycocotools: image id = position in this dataset, category id = class index.

        Boxes are `[x, y, w, h]` in pixels; `area` is the box area (no masks here).
        """
        images = []
        annotations = []
        ann_id = 1  # pycocotools treats id 0 as "unmatched"; annotation ids must start at 1
        used: set[int] = set()
        for img_id, im in enumerate(self.images):
            images.append({"id": img_id, "file_name": im.path.name, "height": im.hw[0], "width": im.hw[1]})
            for box, cls, crowd in zip(
                im.xyxy.tolist(), im.class_id.tolist(), im.iscrowd.tolist(), strict=True
            ):
                w, h = box[2] - box[0], box[3] - box[1]
                annotations.append(
                    {
                        "id": ann_id,
                        "image_id": img_id,
                        "category_id": int(cls),
                        "bbox": [box[0], box[1], w, h],
                        "area": w * h,
                        "iscrowd": int(crowd),
                    }
                )
                used.add(int(cls))
                ann_id += 1
        n_cat = max(len(self.class_names), max(used) + 1 if used else 0)
        categories = [
            {"id": i, "name": self.class_names[i] if i < len(self.class_names) else str(i)}
            for i in range(n_cat)
        ]
        return {"images": images, "annotations": annotations, "categories": categories}


def list_images(folder: Path) -> list[Path]:
    """Image files in `folder` and below, sorted by path (the order calibration splits rely on)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"image folder {folder} does not exist; pass a folder of .jpg/.png images")
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


def read_image(path: Path | str) -> npt.NDArray[np.uint8]:
    """Decode one image file to HxWx3 uint8 BGR as the pipeline decodes it (OpenCV, EXIF orientation applied).

    DataError when OpenCV cannot decode it. The one image reader of eval, bench and the converter's helpers.
    """
    import cv2

    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None:
        raise DataError(f"cannot read image {path}: OpenCV could not decode it; remove or replace the file")
    return np.asarray(img, np.uint8)


def image_hw(path: Path) -> tuple[int, int]:
    """Height and width of an image file, decoded as the pipeline decodes it (OpenCV, EXIF orientation applied)."""
    img = read_image(path)
    return int(img.shape[0]), int(img.shape[1])


def sample_frames(
    count: int, hw: tuple[int, int], images: str | Path | None = None, seed: int = 0
) -> list[npt.NDArray[np.uint8]]:
    """`count` BGR frames for timing a detector: images from a folder (sorted, the first `count`) or rendered
    synthetic scenes of size hw (textured background, moving objects; never zeros)."""
    if images is not None:
        paths = list_images(Path(images))[:count]
        if not paths:
            raise DataError(
                f"--images {images} has no .jpg/.png files; pass a folder of deployment-like images"
            )
        return [read_image(p) for p in paths]
    from edgedet.sources.synthetic import SyntheticScene, SyntheticSpec

    scene = SyntheticScene(SyntheticSpec(width=hw[1], height=hw[0], objects=8, seed=seed))
    return [scene.render(i * 7) for i in range(count)]


def _label_path(image: Path) -> Path:
    # YOLOv5/Ultralytics rule: swap the last `images` directory component for `labels`, suffix .txt
    parts = list(image.parts)
    for i in range(len(parts) - 2, -1, -1):
        if parts[i] == "images":
            parts[i] = "labels"
            break
    return Path(*parts).with_suffix(".txt")


def _read_yolo_labels(
    path: Path, hw: tuple[int, int]
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int32]]:
    if not path.is_file():
        return np.zeros((0, 4), np.float32), np.zeros(0, np.int32)
    rows = []
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise DataError(f"{path} is not UTF-8 text (byte {exc.start}); fix or remove the label file") from exc
    for lineno, line in enumerate(text.splitlines(), 1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != 5:
            # segment labels (class x1 y1 x2 y2 ...) are not boxes; refuse rather than guess
            raise DataError(
                f"{path}:{lineno}: expected 5 fields `class cx cy w h`, got {len(fields)}; convert segments to boxes"
            )
        try:
            rows.append([float(f) for f in fields])
        except ValueError as exc:
            raise DataError(f"{path}:{lineno}: not a number in {line.strip()!r}; fix the label file") from exc
    if not rows:
        return np.zeros((0, 4), np.float32), np.zeros(0, np.int32)
    arr = np.asarray(rows, np.float64)
    if not np.isfinite(arr).all():
        raise DataError(f"{path}: a label has a NaN or infinite value; fix the label file")
    arr = np.unique(arr, axis=0)  # drop duplicate rows, as YOLOv5 does
    if (arr[:, 0] < 0).any() or (arr[:, 0] != np.round(arr[:, 0])).any() or (arr[:, 0] > 2**31 - 1).any():
        raise DataError(f"{path}: class ids must be non-negative integers; fix the label file")
    if (arr[:, 1:] < 0).any() or (arr[:, 1:] > 1.0001).any():
        raise DataError(f"{path}: box values must be normalised to [0, 1]; this looks like pixel labels")
    h, w = hw
    cx, cy, bw, bh = arr[:, 1] * w, arr[:, 2] * h, arr[:, 3] * w, arr[:, 4] * h
    xyxy = np.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], axis=1)
    return xyxy.astype(np.float32), arr[:, 0].astype(np.int32)


def load_yolo_dataset(path: Path | str, class_names: Sequence[str] = ()) -> DetectionDataset:
    """A YOLO-format set: `path` is the dataset root (with images/), an images folder, or a dataset yaml.

    Class names come from `class_names`, else from the yaml's `names:`, else a `*.yaml` in the root.
    """
    path = Path(path)
    names = tuple(class_names)
    if path.suffix in (".yaml", ".yml"):
        from edgedet.spec import read_names_file

        if not names:
            names = read_names_file(str(path))
        path = path.parent
    if not path.is_dir():
        raise DataError(
            f"dataset {path} does not exist; pass a YOLO dataset folder (images/ and labels/) or a COCO json"
        )
    images_dir = path / "images" if (path / "images").is_dir() else path
    if not names:
        for yml in sorted(path.glob("*.y*ml")):
            try:
                from edgedet.spec import read_names_file

                names = read_names_file(str(yml))
                break
            except DataError:
                continue
    files = list_images(images_dir)
    if not files:
        raise DataError(f"no images found under {images_dir}; pass a folder with .jpg/.png images")
    items = []
    for f in files:
        hw = image_hw(f)
        xyxy, cls = _read_yolo_labels(_label_path(f), hw)
        items.append(LabelledImage(f, hw, xyxy, cls))
    return DetectionDataset(tuple(items), names, path.name)


def load_coco_json(json_path: Path | str, images_dir: Path | str | None = None) -> DetectionDataset:
    """A COCO instances json. Categories are renumbered 0..K-1 in order of their ids (for COCO-80 that is the
    usual 80-class index). Images are looked up in `images_dir` (default: the json's folder, then its
    `images/` subfolder); sizes come from the json."""
    json_path = Path(json_path)
    try:
        data = json.loads(json_path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError) as exc:  # ValueError: bad JSON or bad UTF-8
        raise DataError(
            f"cannot read COCO json {json_path}: {type(exc).__name__}: {str(exc)[:80]}; pass a COCO instances file"
        ) from exc
    if not isinstance(data, Mapping) or "images" not in data or "annotations" not in data:
        raise DataError(f"{json_path}: no `images`/`annotations` lists; pass a COCO instances json")
    try:
        return _coco_dataset(data, json_path, images_dir)
    except (KeyError, TypeError, ValueError, AttributeError, OverflowError, OSError) as exc:
        # a field missing or of the wrong type somewhere in an outside file: say which, in one line
        raise DataError(
            f"{json_path}: malformed COCO json ({type(exc).__name__}: {str(exc)[:80]!r}); each image needs "
            "id, file_name, height, width; each annotation image_id, category_id, bbox [x, y, w, h]"
        ) from exc


def _coco_dataset(
    data: Mapping[str, Any], json_path: Path, images_dir: Path | str | None
) -> DetectionDataset:
    cats = sorted(data.get("categories", []), key=lambda c: int(c["id"]))
    cat_index = {int(c["id"]): i for i, c in enumerate(cats)}
    names = tuple(str(c.get("name", c["id"])) for c in cats)
    base = Path(images_dir) if images_dir is not None else json_path.parent
    by_image: dict[int, list[Mapping[str, Any]]] = {}
    for ann in data["annotations"]:
        by_image.setdefault(int(ann["image_id"]), []).append(ann)
    items = []
    for im in sorted(data["images"], key=lambda d: str(d["file_name"])):
        p = base / str(im["file_name"])
        if not p.exists() and images_dir is None and (base / "images" / str(im["file_name"])).exists():
            p = base / "images" / str(im["file_name"])
        anns = by_image.get(int(im["id"]), [])
        unknown = {int(a["category_id"]) for a in anns} - set(cat_index)
        if unknown:
            raise DataError(
                f"{json_path}: annotations use category ids {sorted(unknown)} not in `categories`"
            )
        boxes = np.asarray([a["bbox"] for a in anns], np.float32).reshape(-1, 4)
        boxes[:, 2:] += boxes[:, :2]
        cls = np.asarray([cat_index[int(a["category_id"])] for a in anns], np.int32)
        crowd = np.asarray([bool(a.get("iscrowd", 0)) for a in anns], bool)
        items.append(LabelledImage(p, (int(im["height"]), int(im["width"])), boxes, cls, crowd))
    return DetectionDataset(tuple(items), names, json_path.stem)


def labels_for_images(
    images: Sequence[Path | str], labels_dir: Path | str, class_names: Sequence[str] = ()
) -> DetectionDataset:
    """Pair images with YOLO label files `labels_dir/<image stem>.txt` (a missing file = no objects, as in
    YOLOv5): the `--calib images/ --labels labels/` form, where the two folders are given separately."""
    labels_dir = Path(labels_dir)
    if not labels_dir.is_dir():
        raise DataError(
            f"labels folder {labels_dir} does not exist; pass the folder of YOLO .txt label files"
        )
    if not any(labels_dir.glob("*.txt")):
        raise DataError(f"no .txt label files in {labels_dir}; pass the folder of YOLO label files")
    items = []
    for image in images:
        f = Path(image)
        hw = image_hw(f)
        xyxy, cls = _read_yolo_labels(labels_dir / f"{f.stem}.txt", hw)
        items.append(LabelledImage(f, hw, xyxy, cls))
    return DetectionDataset(tuple(items), tuple(class_names), labels_dir.name)


def load_dataset(path: Path | str, class_names: Sequence[str] = ()) -> DetectionDataset:
    """A COCO json (`*.json`) or a YOLO-format folder / dataset yaml."""
    p = Path(path)
    if p.suffix == ".json":
        return load_coco_json(p)
    return load_yolo_dataset(p, class_names)
