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


def line_thickness(hw: tuple[int, int]) -> int:
    """Box line width in pixels for an image of this size: 2 px at 640x480, growing with the image."""
    return max(2, round(min(hw) / 240))


def draw_detections(
    image: npt.NDArray[np.uint8],
    detections: Detections,
    class_names: Sequence[str] = (),
    fps: float | None = None,
    detector_ran: bool = True,
) -> npt.NDArray[np.uint8]:
    """Return a copy of `image` (HxWx3 uint8 BGR) with boxes, labels and an overlay drawn; `image` is untouched.

    Each box (frame pixels, xyxy) gets a rectangle in `color_for(track_id, class_id)` and a filled label of the
    same colour above it (inside the box when there is no room above). The overlay in the top-left corner
    reads 'FPS <fps> DET' on frames where the detector ran and 'TRK' on track-only frames (boxes predicted by
    the tracker); the FPS part is left out when `fps` is None.
    """
    import cv2

    out = np.ascontiguousarray(image).copy()
    h, w = out.shape[:2]
    thick = line_thickness((h, w))
    font = cv2.FONT_HERSHEY_SIMPLEX
    font_scale = thick / 3.0
    font_thick = max(1, thick // 2)

    # Round to the nearest pixel, and keep the rectangle inside int32 range for boxes that run far off-frame.
    xyxy = np.nan_to_num(detections.xyxy, nan=0.0).clip(-(2**20), 2**20)
    corners = np.rint(xyxy).astype(np.int32)
    for (x1, y1, x2, y2), conf, cls, tid in zip(
        corners.tolist(),
        detections.confidence.tolist(),
        detections.class_id.tolist(),
        detections.track_id.tolist(),
        strict=True,
    ):
        color = color_for(tid, cls)
        cv2.rectangle(out, (x1, y1), (x2, y2), color, thick)
        text = label_for(cls, tid, conf, class_names)
        (tw, th), base = cv2.getTextSize(text, font, font_scale, font_thick)
        lx = min(max(x1, 0), max(w - tw - 2, 0))
        top = y1 - th - base - 2
        if top < 0:  # no room above the box: put the label just inside its top edge
            top = max(y1, 0)
        cv2.rectangle(out, (lx, top), (lx + tw + 2, top + th + base + 2), color, -1)
        cv2.putText(
            out, text, (lx + 1, top + th + 1), font, font_scale, _text_color(color), font_thick, cv2.LINE_AA
        )

    mode = "DET" if detector_ran else "TRK"
    overlay = f"FPS {fps:.1f} {mode}" if fps is not None else mode
    (tw, th), base = cv2.getTextSize(overlay, font, font_scale * 1.2, font_thick)
    cv2.rectangle(out, (0, 0), (tw + 8, th + base + 8), _BLACK, -1)
    cv2.putText(out, overlay, (4, th + 4), font, font_scale * 1.2, _WHITE, font_thick, cv2.LINE_AA)
    return out


def _text_color(bg: tuple[int, int, int]) -> tuple[int, int, int]:
    # Dark text on light label backgrounds, white on dark ones (ITU-R BT.601 luma of a BGR colour).
    b, g, r = bg
    return _BLACK if 0.114 * b + 0.587 * g + 0.299 * r > 140 else _WHITE
