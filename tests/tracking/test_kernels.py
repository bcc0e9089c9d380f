"""The numba path (tracking.kernels) gives the numpy path's tracks frame by frame, on every option it covers,
with track-only frames, camera-motion warps, irregular and repeated timestamps and degenerate boxes."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from tests.helpers.backends import run_without_numba

from edgedet.errors import ConfigError
from edgedet.tracking import sort
from edgedet.tracking.sort import SortTracker, TrackerConfig
from edgedet.types import Detections

pytest.importorskip("numba")

COMPARES_BACKENDS = True  # each test picks its paths: run once, not once per conftest backend

CONFIGS = {
    "default": TrackerConfig(nominal_fps=30.0),
    "bytetrack": TrackerConfig(nominal_fps=30.0, second_association=True),
    "class_aware_byte": TrackerConfig(nominal_fps=30.0, second_association=True, class_aware=True),
    "sort_like_gated": TrackerConfig(
        nominal_fps=30.0,
        min_hits=3,
        max_age_s=1 / 30,
        report_lost_s=0.0,
        keep_confirmed=False,
        score_threshold=0.0,
    ),
    "min_hits_0_new_score": TrackerConfig(
        nominal_fps=30.0, min_hits=0, new_track_score=0.8, report_lost_s=0.2
    ),
}


def scene(seed: int, n_frames: int = 150) -> list[tuple[float, Detections | None, np.ndarray | None]]:
    """(timestamp, detections or None for a track-only frame, warp or None) per frame: 30 crowded objects
    (contested assignments), random scores and classes, dropped and repeated timestamps, a few zero-height and
    shrinking boxes."""
    rng = np.random.default_rng(seed)
    n = 30
    c = rng.uniform(50, 600, (n, 2))
    v = rng.uniform(-4, 4, (n, 2))
    wh = rng.uniform(20, 60, (n, 2))
    out: list[tuple[float, Detections | None, np.ndarray | None]] = []
    t = 0.0
    for f in range(n_frames):
        t += [1 / 30, 2 / 30, 0.0, 0.5 / 30][int(rng.choice(4, p=[0.8, 0.1, 0.05, 0.05]))]
        size = wh * (1.0 - 0.004 * f) if seed % 2 else wh  # shrinking objects on odd seeds
        cc = c + v * f + rng.normal(0, 1.5, (n, 2))
        boxes = np.concatenate([cc - size / 2, cc + size / 2], axis=1)[rng.random(n) > 0.15]
        if f % 17 == 5 and len(boxes):
            boxes[0, 3] = boxes[0, 1]  # zero height: aspect ratio inf
        conf = rng.uniform(0.05, 1.0, len(boxes)).astype(np.float32)
        cls = rng.integers(0, 2, len(boxes)).astype(np.int32)
        warp = None
        if f % 5 == 3:
            a = rng.normal(0, 0.01)
            s = 1 + rng.normal(0, 0.01)
            warp = np.array(
                [
                    [s * np.cos(a), -s * np.sin(a), rng.normal(0, 3)],
                    [s * np.sin(a), s * np.cos(a), rng.normal(0, 3)],
                ]
            )
        detect = f % 3 != 2
        out.append((t, Detections(boxes.astype(np.float32), conf, cls) if detect else None, warp))
    return out


@pytest.mark.parametrize("name", sorted(CONFIGS))
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_numba_path_reports_what_the_numpy_path_reports(name: str, seed: int) -> None:
    frames = scene(seed)
    a = SortTracker(CONFIGS[name], backend="numpy")
    b = SortTracker(CONFIGS[name], backend="numba")
    assert (a.backend, b.backend) == ("numpy", "numba")
    reported = 0
    for i, (t, d, w) in enumerate(frames):
        ra = a.update(d, t, warp=w) if d is not None else a.predict(t, warp=w)
        rb = b.update(d, t, warp=w) if d is not None else b.predict(t, warp=w)
        assert rb.track_id.tolist() == ra.track_id.tolist(), f"frame {i}"
        assert rb.class_id.tolist() == ra.class_id.tolist(), f"frame {i}"
        assert rb.confidence.tolist() == ra.confidence.tolist(), f"frame {i}"
        # the predict step's float64 sums may differ in the last place (BLAS vs written out): float32 boxes
        np.testing.assert_allclose(rb.xyxy, ra.xyxy, rtol=1e-6, atol=1e-4, err_msg=f"frame {i}")
        for arr in ("xyxy", "confidence", "class_id", "track_id"):
            assert getattr(rb, arr).dtype == getattr(ra, arr).dtype
        reported += len(ra)
        assert (b.num_tracks, b._next_id) == (a.num_tracks, a._next_id), f"frame {i}"
    assert reported > 300  # the scene did produce tracks on both
    assert a._next_id > 40


def test_backend_choice() -> None:
    assert SortTracker(backend="numba").backend == "numba"
    assert SortTracker(backend="numpy").backend == "numpy"
    # SORT's solve-then-filter association is not in the kernels: numpy under "auto", an error when asked for
    assert SortTracker(TrackerConfig.sort(30.0), backend="auto").backend == "numpy"
    with pytest.raises(ConfigError, match="gate_first"):
        SortTracker(TrackerConfig.sort(30.0), backend="numba")
    with pytest.raises(ConfigError, match="one of auto, numba, numpy"):
        SortTracker(backend="cuda")


def test_without_numba_the_tracker_uses_numpy() -> None:
    out = run_without_numba(
        """
        from edgedet.tracking import kernels
        from edgedet.tracking.sort import SortTracker
        from edgedet.errors import MissingDependencyError
        assert not kernels.NUMBA
        assert SortTracker().backend == "numpy"
        try:
            SortTracker(backend="numba")
        except MissingDependencyError as exc:
            print(exc)
        """
    )
    assert "needs the 'numba' package" in out


def test_the_default_backend_is_numba_where_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sort, "DEFAULT_BACKEND", "auto")
    assert SortTracker().backend == "numba"


def test_every_kernel_is_compiled_at_construction_not_on_a_live_frame() -> None:
    """A fresh process: after the first SortTracker is made, a whole scene (both passes, contested frames,
    track-only frames, warps, dropped tracks, read-only inputs) compiles nothing more."""
    code = textwrap.dedent(
        """
        import sys
        import numpy as np
        from numba.core.registry import CPUDispatcher
        from edgedet.tracking import kernels
        from edgedet.tracking.sort import SortTracker, TrackerConfig
        from edgedet.types import Detections
        sys.path.insert(0, sys.argv[1])
        from test_kernels import scene

        SortTracker()
        disp = {n: f for n, f in vars(kernels).items() if isinstance(f, CPUDispatcher)}
        before = {n: len(f.signatures) for n, f in disp.items()}
        for cfg in (TrackerConfig(nominal_fps=30.0, second_association=True, class_aware=True), TrackerConfig()):
            tr = SortTracker(cfg)
            for t, d, w in scene(1):
                if d is not None:
                    d.class_id.flags.writeable = False
                tr.update(d, t, warp=w) if d is not None else tr.predict(t, warp=w)
        after = {n: len(f.signatures) for n, f in disp.items()}
        assert after == before, (before, after)
        assert sum(before.values()) >= 7, before
        print("ok")
        """
    )
    here = str(Path(__file__).resolve().parent)
    out = subprocess.run([sys.executable, "-c", code, here], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.strip() == "ok"


def test_kernels_compile_without_a_writable_cache() -> None:
    """No cache location numba can write (read-only install and home): the kernels compile in each process
    instead of failing at import."""
    code = textwrap.dedent(
        """
        from numba.core import caching
        caching.CacheImpl._locator_classes = []  # what numba sees when no cache folder is writable
        from edgedet.tracking import kernels
        from edgedet.tracking.sort import SortTracker
        from edgedet.types import Detections
        import numpy as np
        tr = SortTracker(backend="numba")
        box = np.array([[10, 10, 50, 90]], np.float32)
        out = tr.update(Detections(box, np.ones(1, np.float32), np.zeros(1, np.int32)), 0.0)
        print(type(kernels.predict._cache).__name__, out.track_id.tolist())
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.split() == ["NullCache", "[1]"]


def test_inside_frame_kernel_equals_numpy(monkeypatch: pytest.MonkeyPatch) -> None:
    """tracking.inside_frame: the compiled clip-and-drop gives the numpy path's Detections exactly."""
    from edgedet.tracking import inside_frame

    rng = np.random.default_rng(3)
    for n in (0, 1, 7, 60):
        xyxy = rng.uniform(-50, 400, (n, 4)).astype(np.float32)
        xyxy[:, 2:] = xyxy[:, :2] + rng.uniform(-5, 80, (n, 2)).astype(np.float32)
        if n > 5:
            xyxy[0] = [np.nan, 1, 5, 5]
            xyxy[1] = [10, 10, 10, 20]  # no width
            xyxy[2] = [-20, -20, -1, 30]  # wholly left of the frame
        dets = Detections(xyxy, rng.uniform(0, 1, n), rng.integers(0, 5, n), rng.integers(0, 99, n))
        monkeypatch.setattr(sort, "_kernels", None)
        slow = inside_frame(dets, (240, 320))
        monkeypatch.setattr(sort, "_kernels", sort._load_kernels())
        fast = inside_frame(dets, (240, 320))
        for name in ("xyxy", "confidence", "class_id", "track_id"):
            a, b = getattr(fast, name), getattr(slow, name)
            assert a.dtype == b.dtype and a.shape == b.shape
            np.testing.assert_array_equal(a, b)
