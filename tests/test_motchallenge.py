"""MOTChallenge text formats: real files parse, malformed ones raise one-line DataErrors naming file and line."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from tests.conftest import shared_path

from edgedet.errors import DataError, SinkError
from edgedet.motchallenge import MotRows, read_det, read_gt, read_seqinfo, read_tracks, write_mot

SEQINFO = (
    "[Sequence]\nname=S\nimDir=img1\nframeRate=25\nseqLength=10\nimWidth=640\nimHeight=480\nimExt=.jpg\n"
)


def write(tmp_path: Path, name: str, text: str) -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


def test_det_seven_and_ten_columns_and_trailing_commas(tmp_path: Path) -> None:
    seven = write(tmp_path, "a.txt", "1,-1,10,20,30,40,0.9\n2,-1,11.5,20,30,40,0.05,\n\n")
    ten = write(tmp_path, "b.txt", "1,-1,10,20,30,40,0.9,-1,-1,-1  \n2,-1,11.5,20,30,40,0.05,-1,-1,-1,\n")
    for p in (seven, ten):
        d = read_det(p)
        assert d.frame.tolist() == [1, 2]
        assert d.track_id.tolist() == [-1, -1]
        np.testing.assert_allclose(d.xywh, np.array([[10, 20, 30, 40], [11.5, 20, 30, 40]]))
        np.testing.assert_allclose(d.score, [0.9, 0.05])
        det = d.at_frame(2).to_detections()
        np.testing.assert_allclose(det.xyxy, [[11.5, 20, 41.5, 60]])


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("1,-1,10,20,30,40\n", r"a\.txt:1: det\.txt row has 6 columns, expected 7 to 10"),
        ("1,-1,10,20,30,40,0.9\n2,-1,10,x,30,40,0.9\n", r"a\.txt:2: .*non-numeric"),
        ("0,-1,10,20,30,40,0.9\n", r"a\.txt:1: frame number '0'"),
        ("1.5,-1,10,20,30,40,0.9\n", r"a\.txt:1: frame number"),
        ("1,-1,10,20,-3,40,0.9\n", r"a\.txt:1: box has negative width"),
        ("1,-1,10,20,30,40,0.9\n1,-1,10,20,30,40,0.9,-1,-1,-1\n", r"a\.txt:2: .*earlier rows have 7"),
        ("1,-1,10,20,30,nan,0.9\n", r"a\.txt:1: .*NaN"),
    ],
)
def test_malformed_det_rows(tmp_path: Path, text: str, match: str) -> None:
    with pytest.raises(DataError, match=match) as info:
        read_det(write(tmp_path, "a.txt", text))
    assert "\n" not in str(info.value)


def test_missing_file_is_a_data_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="does not exist"):
        read_det(tmp_path / "nope.txt")
    with pytest.raises(DataError, match="does not exist"):
        read_seqinfo(tmp_path / "nope.ini")


def test_gt_mot17_layout(tmp_path: Path) -> None:
    g = read_gt(write(tmp_path, "gt.txt", "1,1,10,20,30,40,1,1,0.8\n1,2,50,20,30,40,0,7,1\n"))
    assert g.has_classes
    assert g.class_id.tolist() == [1, 7]
    assert g.flag.tolist() == [1, 0]
    np.testing.assert_allclose(g.visibility, [0.8, 1.0])


@pytest.mark.parametrize(
    "text",
    [
        "1,1,10,20,30,40,1,-1,-1\n1,2,50,20,30,40,1,-1,-1\n",
        "1,1,10,20,30,40,1,4.48,5.50,0\n1,2,50,20,30,40,1,4.4,4.4,0\n",
    ],
)
def test_gt_mot15_layouts_have_no_classes(tmp_path: Path, text: str) -> None:
    g = read_gt(write(tmp_path, "gt.txt", text))
    assert not g.has_classes
    assert g.class_id.tolist() == [-1, -1]
    assert g.track_id.tolist() == [1, 2]


def test_seqinfo(tmp_path: Path) -> None:
    info = read_seqinfo(write(tmp_path, "seqinfo.ini", SEQINFO))
    assert (info.name, info.frame_rate, info.seq_length, info.im_width, info.im_height) == (
        "S",
        25.0,
        10,
        640,
        480,
    )
    assert info.timestamp_s(26) == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("name=S\n", "cannot parse"),
        ("[Other]\nframeRate=3\n", r"no \[Sequence\]"),
        (SEQINFO.replace("frameRate=25\n", ""), "lacks frameRate"),
        (SEQINFO.replace("frameRate=25", "frameRate=fast"), "not a number"),
        (SEQINFO.replace("seqLength=10", "seqLength=0"), "must be positive"),
    ],
)
def test_bad_seqinfo(tmp_path: Path, text: str, match: str) -> None:
    with pytest.raises(DataError, match=match):
        read_seqinfo(write(tmp_path, "seqinfo.ini", text))


def test_tracks_round_trip_and_negative_ids(tmp_path: Path) -> None:
    rows = MotRows.from_array(
        [[1, 3, 10.123, 20, 30, 40, 0.5, -1, -1, -1], [2, 4, 1, 2, 3, 4, 1.0, -1, -1, -1]]
    )
    out = tmp_path / "t.txt"
    write_mot(rows, out)
    assert out.read_text().splitlines()[0] == "1,3,10.12,20.00,30.00,40.00,0.5,-1,-1,-1"
    back = read_tracks(out)
    assert back.track_id.tolist() == [3, 4]
    np.testing.assert_allclose(back.xywh, np.round(rows.xywh, 2))
    with pytest.raises(DataError, match="track id -1"):
        read_tracks(write(tmp_path, "d.txt", "1,-1,10,20,30,40,0.9\n"))
    with pytest.raises(SinkError, match="cannot write"):
        write_mot(rows, tmp_path / "missing_dir" / "t.txt")


@pytest.mark.parametrize(
    ("seq", "n_det", "n_gt", "has_classes", "fps", "length"),
    [
        ("TUD-Stadtmitte", 951, 1156, False, 25.0, 179),
        ("Venice-2", 5466, 7141, False, 30.0, 600),
        ("MOT17-02-FRCNN", 8186, 30003, True, 30.0, 600),
        ("MOT17-05-FRCNN", 3848, 8013, True, 14.0, 837),
    ],
)
def test_shared_sequences_parse(
    seq: str, n_det: int, n_gt: int, has_classes: bool, fps: float, length: int
) -> None:
    root = shared_path("mot", seq)
    assert len(read_det(root / "det.txt")) == n_det
    g = read_gt(root / "gt.txt")
    assert (len(g), g.has_classes) == (n_gt, has_classes)
    info = read_seqinfo(root / "seqinfo.ini")
    assert (info.frame_rate, info.seq_length) == (fps, length)
