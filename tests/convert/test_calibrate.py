"""Streaming calibration: statistics that do not depend on how the images are chunked, bounded histograms,
percentiles that match numpy's on the same data, identical ranges run to run on a real model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from tests.conftest import shared_path

from edgedet.convert.calibrate import MAX_BINS, ProgressLine, RangeCollector, collect_ranges
from edgedet.convert.quantize import QUANT_OP_TYPES
from edgedet.errors import ConfigError
from edgedet.eval.det import load_onnx_spec


def _batches(seed: int = 0, n: int = 20) -> list[np.ndarray]:
    """Activation-like batches: mostly small post-SiLU values, a heavy positive tail, a few negatives."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        x = rng.gamma(1.5, 0.8, 20000).astype(np.float32) - 0.25
        x[rng.integers(0, x.size, 3)] = rng.uniform(20, 40, 3)  # rare outliers the percentile should clip
        out.append(x)
    return out


def test_minmax_is_exact_and_chunking_does_not_matter() -> None:
    data = _batches()
    one = RangeCollector("minmax")
    one.update("t", np.concatenate(data))
    many = RangeCollector("minmax")
    for b in data:
        many.update("t", b)
    everything = np.concatenate(data)
    assert one.ranges() == many.ranges() == {"t": (float(everything.min()), float(everything.max()))}


def test_percentile_matches_numpy_within_one_bin_and_clips_outliers() -> None:
    data = _batches()
    c = RangeCollector("percentile", percentile=99.9)
    for b in data:
        c.update("t", b)
    lo, hi = c.ranges()["t"]
    everything = np.concatenate(data)
    width = c.stats["t"].hist.width  # type: ignore[union-attr]
    assert abs(hi - np.quantile(everything, 1 - 0.0005)) <= 2 * width
    assert abs(lo - np.quantile(everything, 0.0005)) <= 2 * width
    assert hi < 0.5 * float(everything.max())  # the 20-40 outliers are clipped
    assert lo < 0 < hi


def test_histogram_growth_is_bounded_whatever_the_outliers() -> None:
    c = RangeCollector("entropy")
    c.update("t", np.linspace(-1e-3, 1e-3, 1000, dtype=np.float32))  # tiny first range: tiny bins
    c.update("t", np.array([5e4, -5e4], np.float32))  # then a huge one
    h = c.stats["t"].hist
    assert h is not None and len(h.counts) <= MAX_BINS and int(h.counts.sum()) == 1002
    assert h.half >= 5e4
    lo, hi = c.ranges()["t"]
    assert -5e4 <= lo < 0 < hi <= 5e4


def test_symmetric_ranges_for_tensorrt() -> None:
    c = RangeCollector("percentile", symmetric=True)
    for b in _batches():
        c.update("t", b)
    lo, hi = c.ranges()["t"]
    assert lo == -hi and hi > 0


def test_entropy_clips_a_long_tail_more_than_minmax() -> None:
    data = _batches()
    ranges = {}
    for m in ("minmax", "entropy"):
        c = RangeCollector(m)
        for b in data:
            c.update("t", b)
        ranges[m] = c.ranges()["t"]
    assert ranges["entropy"][1] < 0.5 * ranges["minmax"][1]


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ConfigError, match="unknown calibration method 'kl'"):
        RangeCollector("kl")
    with pytest.raises(ConfigError, match="percentile 30"):
        RangeCollector("percentile", percentile=30)


def test_progress_line_reports_images_and_eta() -> None:
    said: list[str] = []
    p = ProgressLine("calibration", said.append, every_s=0.0)
    p(1, 4)
    p(4, 4)
    assert said[0].startswith("calibration: 1/4 images, ") and "ETA" in said[0]
    assert said[-1].startswith("calibration: 4/4 images")


def test_two_runs_over_a_real_model_give_identical_ranges() -> None:
    src = shared_path("models", "reference_onnx", "yolov5n_320.onnx")
    images = sorted(shared_path("coco128", "images", "train2017").glob("*.jpg"))[:4]
    spec = load_onnx_spec(src)
    a = collect_ranges(Path(src), images, spec, "percentile", op_types=QUANT_OP_TYPES)
    b = collect_ranges(Path(src), images, spec, "percentile", op_types=QUANT_OP_TYPES)
    assert a == b and len(a) > 100
    assert all(lo <= 0.0 <= hi for lo, hi in a.values())
    lo, hi = a["images"]  # the input is an image scaled to [0, 1]; percentile keeps all but the top bin
    assert lo == 0.0 and 0.998 < hi <= 1.0
