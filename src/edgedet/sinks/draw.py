"""Drawing detections and the FPS/mode overlay onto a frame (used by the window and the video sinks)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from edgedet.types import Detections

# 20 well-separated BGR colours. A track keeps its colour for its whole life (track_id % 20), so an identity
# switch shows as a colour change.
PALETTE: tuple[tuple[int, int, int], ...] = (
    (56, 56, 255),
    (151, 157, 255),
    (31, 112, 255),
    (29, 178, 255),
    (49, 210, 207),
    (10, 249, 72),
    (23, 204, 146),
    (134, 219, 61),
    (52, 147, 26),
    (187, 212, 0),
    (168, 153, 44),
    (255, 194, 0),
    (147, 69, 52),
    (255, 115, 100),
    (236, 24, 0),
    (255, 56, 132),
    (133, 0, 82),
    (255, 56, 203),
    (200, 149, 255),
    (199, 55, 255),
)

_WHITE = (255, 255, 255)
_BLACK = (0, 0, 0)


def color_for(track_id: int, class_id: int) -> tuple[int, int, int]:
    """BGR colour of a box: by track id when tracked (track_id >= 0), else by class id."""
    key = track_id if track_id >= 0 else class_id
    return PALETTE[int(key) % len(PALETTE)]


def label_for(class_id: int, track_id: int, confidence: float, class_names: Sequence[str]) -> str:
    """Text drawn above a box: '<class> #<track> <conf>', e.g. 'person #12 0.87'."""
    name = class_names[class_id] if 0 <= class_id < len(class_names) else str(class_id)
    track = f" #{track_id}" if track_id >= 0 else ""
    return f"{name}{track} {confidence:.2f}"


def compact_label_for(class_id: int, track_id: int, class_names: Sequence[str]) -> str:
    """Text for a box too small for the full label: '#<track>' when tracked, else the class name alone."""
    if track_id >= 0:
        return f"#{track_id}"
    return class_names[class_id] if 0 <= class_id < len(class_names) else str(class_id)


def line_thickness(hw: tuple[int, int]) -> int:
    """Box line width in pixels for an image of this size: 2 px at 640x480, growing with the image."""
    return max(2, round(min(hw) / 240))


Rect = tuple[int, int, int, int]  # x1, y1, x2, y2 (exclusive), pixels


def _overlaps(a: Rect, b: Rect) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def place_label(box: Rect, size_wh: tuple[int, int], frame_wh: tuple[int, int], taken: Sequence[Rect]) -> Rect:
    """Where a label of `size_wh` goes for `box`: the first spot that stays in the frame and covers no label
    already placed (`taken`), among: above the box, inside its top edge, below it, then further above and below.
    When every spot collides, the first one that fits in the frame (labels then overlap, as before).
    """
    lw, lh = size_wh
    fw, fh = frame_wh
    x1, y1, _x2, y2 = box
    lx = min(max(x1, 0), max(fw - lw, 0))
    tops = [y1 - lh, y1, y2, y1 - 2 * lh, y2 + lh, y1 - 3 * lh, y2 + 2 * lh]
    candidates = [(lx, t, lx + lw, t + lh) for t in tops if 0 <= t and t + lh <= fh]
    for rect in candidates:
        if not any(_overlaps(rect, other) for other in taken):
            return rect
    if candidates:
        return candidates[0]
    top = min(max(y1, 0), max(fh - lh, 0))
    return (lx, top, lx + lw, top + lh)


def draw_detections(
    image: npt.NDArray[np.uint8],
    detections: Detections,
    class_names: Sequence[str] = (),
    fps: float | None = None,
    detector_ran: bool = True,
) -> npt.NDArray[np.uint8]:
    """Return a copy of `image` (HxWx3 uint8 BGR) with boxes, labels and an overlay drawn; `image` is untouched.

    Each box (frame pixels, xyxy) gets a rectangle in `color_for(track_id, class_id)` and a filled label of the
    same colour: the full label (`label_for`) when the box is at least as wide as it, else without the score,
    else the compact one (`compact_label_for`: the track id), so small objects' labels do not pile up. Labels are drawn after all
    boxes, most confident first, each at the first spot (`place_label`: above, inside the top edge, below, ...)
    that covers no label already drawn. The overlay in the top-left corner reads 'FPS <fps> DET' on frames
    where the detector ran and 'TRK' on track-only frames (boxes predicted by the tracker); the FPS part is left
    out when `fps` is None.
    """
    import cv2

    out = np.ascontiguousarray(image).copy()
    h, w = out.shape[:2]
    thick = line_thickness((h, w))
    font = cv2.FONT_HERSHEY_SIMPLEX
    font_scale = thick / 3.0
    font_thick = max(1, thick // 2)

    mode = "DET" if detector_ran else "TRK"
    overlay = f"FPS {fps:.1f} {mode}" if fps is not None else mode
    (ow, oh), obase = cv2.getTextSize(overlay, font, font_scale * 1.2, font_thick)
    overlay_rect: Rect = (0, 0, ow + 8, oh + obase + 8)

    # Round to the nearest pixel, and keep the rectangle inside int32 range for boxes that run far off-frame.
    xyxy = np.nan_to_num(detections.xyxy, nan=0.0).clip(-(2**20), 2**20)
    corners = np.rint(xyxy).astype(np.int32).tolist()
    confs = detections.confidence.tolist()
    classes = detections.class_id.tolist()
    tracks = detections.track_id.tolist()
    for (x1, y1, x2, y2), cls, tid in zip(corners, classes, tracks, strict=True):
        cv2.rectangle(out, (x1, y1), (x2, y2), color_for(tid, cls), thick)

    taken: list[Rect] = [overlay_rect]
    order = sorted(range(len(corners)), key=lambda i: -confs[i] if np.isfinite(confs[i]) else 0.0)
    for i in order:
        x1, y1, x2, y2 = corners[i]
        cls, tid, conf = classes[i], tracks[i], confs[i]
        color = color_for(tid, cls)
        # The longest label no wider than the box: full, then without the score, then the id alone.
        full = label_for(cls, tid, conf, class_names)
        ladder = [full, full.rsplit(" ", 1)[0], compact_label_for(cls, tid, class_names)]
        for text in ladder:
            (tw, th), base = cv2.getTextSize(text, font, font_scale, font_thick)
            if tw + 2 <= x2 - x1:
                break
        lx, top, rx, bottom = place_label((x1, y1, x2, y2), (tw + 2, th + base + 2), (w, h), taken)
        taken.append((lx, top, rx, bottom))
        cv2.rectangle(out, (lx, top), (rx, bottom), color, -1)
        cv2.putText(
            out, text, (lx + 1, top + th + 1), font, font_scale, _text_color(color), font_thick, cv2.LINE_AA
        )

    cv2.rectangle(out, (0, 0), (overlay_rect[2], overlay_rect[3]), _BLACK, -1)
    cv2.putText(out, overlay, (4, oh + 4), font, font_scale * 1.2, _WHITE, font_thick, cv2.LINE_AA)
    return out


def _text_color(bg: tuple[int, int, int]) -> tuple[int, int, int]:
    # Dark text on light label backgrounds, white on dark ones (ITU-R BT.601 luma of a BGR colour).
    b, g, r = bg
    return _BLACK if 0.114 * b + 0.587 * g + 0.299 * r > 140 else _WHITE
