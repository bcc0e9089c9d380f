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
