"""Trackers behind the protocol: sort and bytetrack from the registry, in replay and in eval mot."""

from __future__ import annotations

import numpy as np
import pytest

from edgedet.protocols import Tracker
from edgedet.tracking import TRACKERS, TrackerConfig, make_tracker
from edgedet.tracking.bytetrack import ByteTracker
from edgedet.tracking.sort import SortTracker
from edgedet.types import Detections


def test_registered_trackers_meet_the_protocol() -> None:
    for name in ("sort", "bytetrack"):
        assert isinstance(make_tracker(name), Tracker)
    assert (
        type(make_tracker("bytetrack")) is ByteTracker and make_tracker("bytetrack").config.second_association
    )
    assert not make_tracker("sort").config.second_association
    assert TRACKERS.get("sort") is SortTracker


def test_bytetrack_keeps_an_occluded_object_on_a_low_score_detection() -> None:
    """The second pass matches a low-score detection (0.3 < score_threshold 0.6) to a lost track: SORT does not."""
    cfg = TrackerConfig(min_hits=1, report_lost_s=0.0, nominal_fps=10.0)
    box = np.array([[10, 10, 50, 50]], np.float32)
    out = {}
    for name in ("sort", "bytetrack"):
        trk = make_tracker(name, cfg)
        trk.update(Detections(box, [0.9], [0]), 0.0)
        trk.update(Detections(box, [0.9], [0]), 0.1)
        out[name] = trk.update(Detections(box + 1, [0.3], [0]), 0.2)
    assert len(out["sort"]) == 0
    assert out["bytetrack"].track_id.tolist() == [1]


def test_bytetrack_equals_sort_with_the_second_association_flag() -> None:
    rng = np.random.default_rng(0)
    a, b = make_tracker("bytetrack"), SortTracker(TrackerConfig(second_association=True))
    for i in range(30):
        xy = rng.uniform(0, 200, (6, 2)).astype(np.float32)
        d = Detections(
            np.hstack([xy, xy + 20]), rng.uniform(0.05, 1, 6).astype(np.float32), np.zeros(6, np.int32)
        )
        ra, rb = a.update(d, i / 30), b.update(d, i / 30)
        np.testing.assert_array_equal(ra.track_id, rb.track_id)
        np.testing.assert_array_equal(ra.xyxy, rb.xyxy)


def test_unknown_tracker_is_a_config_error() -> None:
    from edgedet.errors import ConfigError

    with pytest.raises(ConfigError, match="unknown tracker 'deepsort': choose one of sort, bytetrack"):
        make_tracker("deepsort")


def test_track_command_takes_any_registered_tracker(tmp_path) -> None:
    """`edgedet track --tracker bytetrack` writes the same tracks as the old `--second-association` spelling, and
    different ones from SORT (the low-score pass matters on this sequence)."""
    from tests.conftest import shared_path

    from edgedet.cli import main

    seq = shared_path("mot", "TUD-Stadtmitte")
    args = ["track", "--dets", str(seq / "det.txt"), "--seqinfo", str(seq / "seqinfo.ini")]
    outs = {}
    for name, extra in [("bt", ["--tracker", "bytetrack"]), ("sa", ["--second-association"]), ("sort", [])]:
        outs[name] = tmp_path / f"{name}.txt"
        assert main([*args, "--out", str(outs[name]), *extra]) == 0
    assert outs["bt"].read_text() == outs["sa"].read_text()
    assert outs["bt"].read_text() != outs["sort"].read_text()
    assert main([*args, "--out", str(tmp_path / "x.txt"), "--tracker", "deepsort"]) == 2
