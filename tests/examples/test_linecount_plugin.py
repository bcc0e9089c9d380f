"""The example sink plugin (examples/edgedet-linecount): its counting, and the whole plugin path: installed into
a fresh virtual environment, found through its entry point and run by `edgedet run --sink linecount:...`."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import numpy as np
import pytest

from edgedet.types import Detections, Frame, FrameResult

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "edgedet-linecount"


def _plugin_module():  # the example is not installed in the test environment: import it from its folder
    sys.path.insert(0, str(EXAMPLE / "src"))
    try:
        import edgedet_linecount
    finally:
        sys.path.remove(str(EXAMPLE / "src"))
    return edgedet_linecount


def _result(i: int, boxes: list[list[float]], ids: list[int], cls: list[int]) -> FrameResult:
    frame = Frame(np.zeros((100, 200, 3), np.uint8), i, i / 10)
    return FrameResult(
        frame, Detections(np.array(boxes, np.float32).reshape(-1, 4), [0.9] * len(ids), cls, ids)
    )


def _crossings(tracks_by_frame: list[list[tuple[int, float]]], line: float) -> tuple[int, int]:
    """Reference count from (track id, centre) per frame: sign changes of centre - line per track."""
    side: dict[int, int] = {}
    down = up = 0
    for tracks in tracks_by_frame:
        for tid, c in tracks:
            s = 1 if c >= line else -1
            if tid in side and side[tid] != s:
                down, up = (down + 1, up) if s > 0 else (down, up + 1)
            side[tid] = s
    return down, up


def test_counts_each_crossing_once_with_its_direction(tmp_path: Path) -> None:
    lc = _plugin_module()
    out = tmp_path / "c.json"
    sink = lc.LineCounter(str(out), "y", 0.5, ("car", "person"))
    # line at y = 50 of a 100 px high frame; track 1 (car) goes down across it, back up, track 2 (person) stays
    for i, (y1, y2) in enumerate([(30, 40), (45, 52), (60, 70), (30, 35)]):
        sink.write(_result(i, [[0, y1, 10, y1 + 10], [0, y2, 10, y2 + 10]], [1, 2], [0, 1]))
    sink.write(_result(4, [], [], []))
    sink.close()
    got = json.loads(out.read_text())
    # centres of track 1: 35, 50, 65, 35 -> down at frame 1 (50 >= 50), up at frame 3; track 2: 45, 57, 75, 40
    assert got == {
        "line": {"axis": "y", "at": 0.5}, "frames": 5, "crossings": 4, "down": 2, "up": 2,
        "by_class": {"car": 2, "person": 2}, "tracks_seen": 2,
    }  # fmt: skip


@pytest.mark.parametrize(
    ("arg", "match"),
    [("", "needs an output file"), ("c.json,at=2", "between 0 and 1"), ("c.json,speed=3", "unknown option")],
)
def test_bad_argument_says_what_to_write(arg: str, match: str) -> None:
    from edgedet.errors import ConfigError

    lc = _plugin_module()
    with pytest.raises(ConfigError, match=match):
        lc.parse_arg(arg)


@pytest.mark.slow
def test_installed_in_a_fresh_venv_and_run_through_edgedet_run(tmp_path: Path) -> None:
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    py = env_dir / "bin" / "python"
    fresh_site = Path(
        subprocess.run([py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                       capture_output=True, text=True, check=True).stdout.strip()
    )  # fmt: skip
    # edgedet and its dependencies come from this environment (not re-downloaded); the plugin is installed fresh
    (fresh_site / "_edgedet_dev.pth").write_text(
        f"import site; site.addsitedir({sysconfig.get_paths()['purelib']!r})\n"
    )
    before = subprocess.run([py, "-m", "edgedet", "run", "--sink", "linecount:x.json", "--max-frames", "1"],
                            capture_output=True, text=True, cwd=tmp_path)  # fmt: skip
    assert before.returncode == 2 and "unknown sink 'linecount'" in before.stderr, before.stderr
    package = shutil.copytree(EXAMPLE, tmp_path / "pkg")  # pip builds in the folder: keep the checkout clean
    pip = subprocess.run(  # (its build backend, setuptools, comes from the package index, as for any user)
        [py, "-m", "pip", "install", "-q", "--no-deps", str(package)], capture_output=True, text=True
    )
    assert pip.returncode == 0, pip.stderr
    counts, frames = tmp_path / "counts.json", tmp_path / "frames.jsonl"
    run = subprocess.run(
        [py, "-m", "edgedet", "run", "--source", "demo:frames=90", "--threads", "2", "--detect-every", "1",
         "--sink", f"linecount:{counts},axis=x,at=0.5", "--sink", f"json:{frames}"],
        capture_output=True, text=True, cwd=tmp_path, timeout=600,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    got = json.loads(counts.read_text())
    assert got["frames"] == 90
    # the same count, recomputed from the run's own JSON lines (box centres of each track along x)
    records = [json.loads(line) for line in frames.read_text().splitlines()]
    width = 640  # the demo renders 640x384 frames
    per_frame = [
        [(d["track_id"], (d["xyxy"][0] + d["xyxy"][2]) / 2) for d in r["detections"] if d["track_id"] >= 0]
        for r in records
    ]
    right, left = _crossings(per_frame, 0.5 * width)
    assert (got["right"], got["left"]) == (right, left)
    assert got["tracks_seen"] == len({tid for tracks in per_frame for tid, _ in tracks}) > 0
