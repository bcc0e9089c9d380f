from __future__ import annotations

import numpy as np

from edgedet.types import Detections


def _dets():
    return Detections(np.array([[0, 0, 10, 10], [5, 5, 20, 30], [1, 2, 3, 4]]), [0.9, 0.3, 0.6], [0, 1, 0])


def test_defaults_and_dtypes():
    d = _dets()
    assert d.xyxy.dtype == np.float32 and d.class_id.dtype == np.int32
    np.testing.assert_array_equal(d.track_id, [-1, -1, -1])
    np.testing.assert_allclose(d.xywh[1], [5, 5, 15, 25])


def test_indexing_returns_independent_copies():
    d = _dets()
    kept = d[d.confidence >= 0.5]
    assert len(kept) == 2
    kept.xyxy[0, 0] = 99
    assert d.xyxy[0, 0] == 0
    assert len(d[1]) == 1 and d[1].confidence[0] == np.float32(0.3)
    assert len(d[-1]) == 1 and d[-1].class_id[0] == 0


def test_empty_and_concat():
    e = Detections.empty()
    assert len(e) == 0 and e.xyxy.shape == (0, 4)
    c = Detections.concatenate([_dets(), e, _dets()])
    assert len(c) == 6
    assert len(_dets().with_track_ids([1, 2, 3]).track_id) == 3
