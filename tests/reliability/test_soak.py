"""A short soak (about 1.5 minutes) of benchmarks/soak.py: no fd or thread growth, bounded tracks, RSS flat.

The long version (20+ minutes, growth per hour of video) is `python benchmarks/soak.py --minutes 20`.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest
from tests.conftest import REPO, shared_path

pytestmark = pytest.mark.slow


def load_soak() -> ModuleType:
    spec = importlib.util.spec_from_file_location("edgedet_soak", REPO / "benchmarks" / "soak.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is created
    spec.loader.exec_module(module)
    return module


def test_short_soak_has_no_fd_thread_or_track_growth(tmp_path: Path) -> None:
    shared_path("models", "reference_onnx", "yolov5n_320.onnx")
    shared_path("video", "people_indoor_640x368.mp4")
    soak = load_soak()
    report = soak.run_soak(minutes=1.5, threads=1, sample_s=5.0, out_dir=tmp_path)
    samples = report["samples"]
    print({k: v for k, v in report.items() if k != "samples"})
    assert report["frames"] > 500 and len(samples) >= 10
    # the clip loops every 6.5 s: people vanish and reappear, so tracks are born and die all run long
    assert report["tracks"]["max"] < 30
    after_warmup = samples[len(samples) // 5 :]
    assert max(s["fds"] for s in after_warmup) <= samples[1]["fds"] + 1
    assert max(s["threads"] for s in after_warmup) <= samples[1]["threads"]
    assert report["fds"]["after_close"] <= samples[0]["fds"]
    # RSS: flat after warm-up (a leak of 2 KB a frame would add ~8 MB here)
    rss = [s["rss_mb"] for s in after_warmup]
    assert rss[-1] - rss[0] < 8.0, rss
    # frame age does not creep: a queue that grows raises every later sample, so compare the thirds' medians (a
    # single 5 s sample's p99 jumped to 104 ms from 23 ms when another job started beside CI; that is not creep)
    age = report["age_p99_ms"]
    assert age["last_third_median"] < 2 * age["first_third_median"] + 50, age
