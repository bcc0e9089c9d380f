"""draw_detections: boxes in the right colour at the right place, labels, the FPS/DET/TRK overlay."""

from __future__ import annotations

import numpy as np
import pytest

from edgedet.sinks import color_for, draw_detections
from edgedet.sinks.draw import PALETTE, label_for, line_thickness
from edgedet.types import Detections

GREY = 128


def _dets(xyxy: list[list[float]], track_id: list[int], class_id: list[int] | None = None) -> Detections:
    n = len(xyxy)
    return Detections(
        np.asarray(xyxy, np.float32),
        np.full(n, 0.9, np.float32),
        np.asarray(class_id or [0] * n),
        np.asarray(track_id),
    )


def test_returns_new_image_and_leaves_input_alone() -> None:
    image = np.full((240, 320, 3), GREY, np.uint8)
    before = image.copy()
    out = draw_detections(image, _dets([[50, 60, 150, 200]], [3]), ("person",), fps=25.0)
    assert out is not image
    assert out.shape == image.shape and out.dtype == np.uint8
    np.testing.assert_array_equal(image, before)
    assert (out != image).any()


@pytest.mark.parametrize(
    ("track_id", "class_id", "expected"),
    [
        (3, 0, PALETTE[3]),
        (23, 5, PALETTE[3]),  # colour by track id, wrapping around the palette
        (-1, 7, PALETTE[7]),  # untracked: colour by class
        (-1, 0, PALETTE[0]),
    ],
)
def test_box_edge_has_the_track_colour(track_id: int, class_id: int, expected: tuple[int, int, int]) -> None:
    image = np.full((240, 320, 3), GREY, np.uint8)
    out = draw_detections(image, _dets([[60, 80, 200, 220]], [track_id], [class_id]))
    assert color_for(track_id, class_id) == expected
    # Middle of the left and bottom edges (away from the label, which sits above the top edge).
    assert tuple(out[150, 60]) == expected
    assert tuple(out[220, 130]) == expected
    # Inside and outside the box the image is unchanged.
    assert tuple(out[150, 130]) == (GREY,) * 3
    assert tuple(out[150, 40]) == (GREY,) * 3


def test_two_tracks_get_different_colours() -> None:
    image = np.zeros((240, 320, 3), np.uint8)
    out = draw_detections(image, _dets([[20, 60, 100, 200], [180, 60, 300, 200]], [1, 2]))
    assert tuple(out[130, 20]) == PALETTE[1]
    assert tuple(out[130, 180]) == PALETTE[2]
    assert PALETTE[1] != PALETTE[2]


@pytest.mark.parametrize(
    ("class_id", "track_id", "conf", "names", "expected"),
    [
        (0, 12, 0.873, ("person", "car"), "person #12 0.87"),
        (1, -1, 0.5, ("person", "car"), "car 0.50"),
        (5, 0, 0.999, ("person",), "5 #0 1.00"),  # class id beyond the names: the number
        (2, -1, 0.25, (), "2 0.25"),
    ],
)
def test_label_text(class_id: int, track_id: int, conf: float, names: tuple[str, ...], expected: str) -> None:
    assert label_for(class_id, track_id, conf, names) == expected


def test_overlay_differs_between_detect_and_track_only_frames() -> None:
    image = np.full((240, 320, 3), GREY, np.uint8)
    det = draw_detections(image, Detections.empty(), fps=30.0, detector_ran=True)
    trk = draw_detections(image, Detections.empty(), fps=30.0, detector_ran=False)
    no_fps = draw_detections(image, Detections.empty(), fps=None, detector_ran=True)
    corner = (slice(0, 30), slice(0, 160))
    # The overlay is white text on a black box in the top-left corner; the rest of the frame is untouched.
    assert tuple(det[1, 1]) == (0, 0, 0)
    assert (det[corner] == 255).all(axis=-1).any()
    assert (det[corner] != trk[corner]).any()
    assert (det[corner] != no_fps[corner]).any()
    np.testing.assert_array_equal(det[100:], image[100:])


def test_label_goes_inside_the_box_at_the_top_edge() -> None:
    image = np.full((240, 320, 3), GREY, np.uint8)
    out = draw_detections(image, _dets([[100, 0, 250, 200]], [4]), ("person",))
    # No room above: the filled label is drawn just inside the top edge, in the track colour.
    label_rows = out[3:10, 101:105]
    assert (label_rows == np.asarray(PALETTE[4], np.uint8)).all(axis=-1).any()


def test_off_frame_and_nan_boxes_do_not_raise() -> None:
    image = np.full((120, 160, 3), GREY, np.uint8)
    dets = _dets([[-1e9, -50, 1e9, 400], [np.nan, 10, 20, 30], [150, 110, 170, 130]], [1, 2, 3])
    out = draw_detections(image, dets, ("a",), fps=9.5, detector_ran=False)
    assert out.shape == image.shape


@pytest.mark.parametrize(
    ("hw", "expected"), [((240, 320), 2), ((480, 640), 2), ((1080, 1920), 4), ((64, 64), 2)]
)
def test_line_thickness_grows_with_image(hw: tuple[int, int], expected: int) -> None:
    assert line_thickness(hw) == expected


def _label_pixels(out: np.ndarray, track_id: int) -> np.ndarray:
    """Mask of pixels in the track's colour (its box outline and its filled label)."""
    return (out == np.asarray(PALETTE[track_id % len(PALETTE)], np.uint8)).all(axis=-1)


def _filled_width(mask: np.ndarray) -> int:
    """Width of the colour's extent in its fullest row: the label's background (text pixels sit inside it)."""
    row = mask[int(np.argmax(mask.sum(axis=1)))]
    cols = np.flatnonzero(row)
    return int(cols[-1] - cols[0] + 1) if cols.size else 0


@pytest.mark.parametrize(
    ("box_w", "expect"),
    [(200, "full"), (100, "no score"), (60, "id only"), (6, "id only")],
)
def test_label_shrinks_to_fit_the_box(box_w: int, expect: str) -> None:
    import cv2

    image = np.full((240, 320, 3), GREY, np.uint8)
    out = draw_detections(image, _dets([[40, 100, 40 + box_w, 140]], [5]), ("person",))
    thick = line_thickness((240, 320))
    texts = {"full": "person #5 0.90", "no score": "person #5", "id only": "#5"}
    widths = {k: cv2.getTextSize(t, cv2.FONT_HERSHEY_SIMPLEX, thick / 3.0, max(1, thick // 2))[0][0] + 2 + 1
              for k, t in texts.items()}  # fmt: skip
    assert _filled_width(_label_pixels(out[:98], 5)) == widths[expect]  # above the box and its 2 px edge


def test_compact_label_text() -> None:
    from edgedet.sinks.draw import compact_label_for

    assert compact_label_for(2, 17, ("car", "truck", "person")) == "#17"
    assert compact_label_for(2, -1, ("car", "truck", "person")) == "person"
    assert compact_label_for(7, -1, ()) == "7"


def test_labels_of_neighbouring_small_boxes_do_not_overlap() -> None:
    """Five 6x6 people side by side, 8 px apart (the drone view): each label stays readable."""
    from edgedet.sinks.draw import place_label

    boxes = [(100 + 8 * k, 120, 106 + 8 * k, 126) for k in range(5)]
    taken: list[tuple[int, int, int, int]] = []
    for b in boxes:
        taken.append(place_label(b, (30, 16), (320, 240), taken))
    for i, a in enumerate(taken):
        assert 0 <= a[0] and a[2] <= 320 and 0 <= a[1] and a[3] <= 240
        for b in taken[i + 1 :]:
            assert not (a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]), (a, b)
    # the first label keeps the usual place, just above its box
    assert taken[0] == (100, 104, 130, 120)

    # and drawn: every track's colour shows a full label-sized block somewhere
    image = np.full((240, 320, 3), GREY, np.uint8)
    out = draw_detections(image, _dets([list(map(float, b)) for b in boxes], [1, 2, 3, 4, 5]), ("person",))
    for tid in range(1, 6):
        assert _filled_width(_label_pixels(out, tid)) >= 20


def test_label_never_covers_the_overlay() -> None:
    from edgedet.sinks.draw import place_label

    overlay = (0, 0, 120, 24)
    rect = place_label((2, 2, 8, 8), (30, 16), (320, 240), [overlay])
    assert rect[1] >= 24 or rect[0] >= 120
