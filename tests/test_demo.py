"""The bundled demo: `--source demo` (held-out flight rendered on the fly), the packaged model, run defaults."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pytest

from edgedet import demo
from edgedet.config import RunConfig, build_config
from edgedet.errors import ConfigError, ModelError, SourceError
from edgedet.scenes import DemoScene, scored
from edgedet.sources import SourceConfig, open_source
from edgedet.sources.demo import DemoSource, DemoSourceSpec, parse_demo
from edgedet.sources.registry import source_kind

REPO = Path(__file__).resolve().parents[1]


# --- the source ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("demo", DemoSourceSpec()),
        ("demo:frames=30", DemoSourceSpec(frames=30)),
        ("demo:frames=5,seed=2,split=test,index=3", DemoSourceSpec(frames=5, seed=2, split="test", index=3)),
        (" demo:split=val ", DemoSourceSpec(split="val")),
    ],
)
def test_parse_demo(uri: str, expected: DemoSourceSpec) -> None:
    assert parse_demo(uri) == expected


@pytest.mark.parametrize(
    ("uri", "fragment"),
    [
        ("demo:split=train", "split=train"),  # the demo never shows training flights
        ("demo:frames=0", "frames=0"),
        ("demo:frames=-3", "frames=-3"),
        ("demo:fps=60", "fps=60"),
        ("demo:frames", "'frames'"),
        ("synthetic:frames=3", "not a demo source"),
    ],
)
def test_parse_demo_refuses(uri: str, fragment: str) -> None:
    with pytest.raises(SourceError, match="demo") as info:
        parse_demo(uri)
    assert fragment in str(info.value)


def test_registry_resolves_demo() -> None:
    assert source_kind("demo") == "demo"
    assert source_kind("demo:frames=3") == "demo"
    with open_source("demo:frames=2,split=val") as src:
        assert isinstance(src, DemoSource)
        assert src.fps == 30.0 and not src.is_live
        assert src.spec == DemoSourceSpec(frames=2, split="val")


def test_demo_source_is_the_held_out_scene_frame_for_frame() -> None:
    expected = [img for img, _ in DemoScene(seed=0, split="demo", index=0, frames=4)]
    with DemoSource(DemoSourceSpec(frames=4)) as src:
        frames = list(src)
        stats = src.stats()
    assert [f.index for f in frames] == [0, 1, 2, 3]
    assert [f.source_index for f in frames] == [0, 1, 2, 3]
    assert [f.timestamp_s for f in frames] == pytest.approx([0, 1 / 30, 2 / 30, 3 / 30])
    assert frames[0].image.shape == (384, 640, 3) and frames[0].image.dtype == np.uint8
    for f, img in zip(frames, expected, strict=True):
        np.testing.assert_array_equal(f.image, img)
    assert stats.delivered == 4
    # the demo flight is not a training flight: different world, different pixels
    train0 = next(iter(DemoScene(seed=0, split="train", index=0, frames=1)))[0]
    assert np.abs(train0.astype(int) - frames[0].image.astype(int)).mean() > 10


def test_demo_source_loop_and_max_frames_replay_the_same_pixels() -> None:
    with DemoSource(DemoSourceSpec(frames=3), SourceConfig(loop=True, max_frames=7)) as src:
        frames = list(src)
    assert [f.source_index for f in frames] == [0, 1, 2, 0, 1, 2, 0]
    assert [f.index for f in frames] == list(range(7))
    np.testing.assert_array_equal(frames[3].image, frames[0].image)
    np.testing.assert_array_equal(frames[5].image, frames[2].image)


def test_demo_source_close_ends_iteration_and_stops_the_render_thread() -> None:
    src = DemoSource(DemoSourceSpec(frames=600))
    got = []
    for f in src:
        got.append(f.index)
        if len(got) == 3:
            src.close()
    assert got == [0, 1, 2]


def test_demo_source_realtime_paces_to_30_fps() -> None:
    import time

    with DemoSource(DemoSourceSpec(frames=7), SourceConfig(realtime=True)) as src:
        t0 = time.monotonic()
        n = sum(1 for _ in src)
        elapsed = time.monotonic() - t0
    assert n == 7
    assert elapsed >= 6 / 30 - 0.01  # frame 6 is released no earlier than 6/30 s after frame 0


# --- run defaults --------------------------------------------------------------------------------------------

NOW = dt.datetime(2025, 1, 2, 3, 4, 5)


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        (
            {},
            {
                "target_fps": 30.0,
                "realtime": True,
                "cmc": "sparse",
                "run_dir": "R/demo-20250102-030405",
                "save_video": "R/demo-20250102-030405/video.mp4",
                "save_mot": "R/demo-20250102-030405/tracks.txt",
                "save_json": "R/demo-20250102-030405/detections.jsonl",
            },
        ),
        (  # a skip policy of the user's own: no target FPS on top (RunConfig refuses both)
            {"detect_every": 3, "realtime": False, "target_fps": None},
            {
                "cmc": "sparse",
                "run_dir": "R/demo-20250102-030405",
                "save_video": "R/demo-20250102-030405/video.mp4",
                "save_mot": "R/demo-20250102-030405/tracks.txt",
                "save_json": "R/demo-20250102-030405/detections.jsonl",
            },
        ),
        ({"track": False, "save_coco": "c.json"}, {"realtime": True, "run_dir": "R/demo-20250102-030405"}),
        ({"target_fps": 15.0, "run_dir": "mine", "save_mot": "t.txt"}, {"realtime": True, "cmc": "sparse"}),
        (  # the user's own camera-motion choice wins
            {"cmc": "off", "run_dir": "mine", "save_mot": "t.txt"},
            {"target_fps": 30.0, "realtime": True},
        ),
        (
            {"run_dir": "mine"},
            {
                "target_fps": 30.0,
                "realtime": True,
                "cmc": "sparse",
                "save_video": "mine/video.mp4",
                "save_mot": "mine/tracks.txt",
                "save_json": "mine/detections.jsonl",
            },
        ),
    ],
)
def test_default_run_overrides(given: dict[str, object], expected: dict[str, object]) -> None:
    out = demo.default_run_overrides(given, now=NOW, root="R")
    assert {k: str(Path(v)) if isinstance(v, str) else v for k, v in out.items()} == {
        k: str(Path(v)) if isinstance(v, str) else v for k, v in expected.items()
    }
    # what the lead's wiring does with it: user values win, and the result is a valid RunConfig
    cfg = build_config(RunConfig, None, **{**out, **{k: v for k, v in given.items() if v is not None}})
    cfg.validate()


@pytest.mark.parametrize(
    ("source", "expected"),
    [("demo", True), ("demo:frames=3", True), (" demo ", True), ("demo.mp4", False), ("synthetic", False)],
)
def test_is_demo_source(source: str, expected: bool) -> None:
    assert demo.is_demo_source(source) is expected


# --- the packaged model --------------------------------------------------------------------------------------


def test_model_path_unknown_precision() -> None:
    with pytest.raises(ConfigError, match="fp32, int8"):
        demo.model_path("fp64")


def test_model_path_missing_file_says_how_to_fix(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(demo, "package_dir", lambda: tmp_path)
    with pytest.raises(ModelError, match=r"edgedet convert models/demo\.pt"):
        demo.model_path()


@pytest.mark.parametrize("precision", ["fp32", "int8"])
def test_packaged_models_carry_the_demo_spec(precision: str) -> None:
    from edgedet.eval.det import load_onnx_spec

    path = demo.model_path(precision)
    spec = load_onnx_spec(path)
    assert spec.class_names == demo.CLASS_NAMES
    assert tuple(spec.input_hw) == (384, 640)
    assert spec.output_format == "yolov5"
    assert path.stat().st_size < 8_000_000


@pytest.mark.parametrize("precision", ["fp32", "int8"])
def test_packaged_model_detects_on_held_out_frames(precision: str) -> None:
    """mAP50 on 27 test-split frames (3 flights) the model never saw: 0.91 for both precisions when written
    (cars 1.00, trucks 0.98, people 0.74; the full numbers: benchmarks/eval_demo.py and models/README.md)."""
    pytest.importorskip("pycocotools")
    from edgedet.datasets import DetectionDataset, LabelledImage
    from edgedet.eval.det import OnnxDetector, coco_map

    detector = OnnxDetector(demo.model_path(precision), threads=2)
    items, dets = [], []
    for index in (0, 1, 2):
        for i, (img, gt) in enumerate(DemoScene(seed=0, split="test", index=index, frames=90)):
            if i % 10:
                continue
            counted = scored(gt)
            xyxy = np.column_stack([gt[:, 2], gt[:, 3], gt[:, 2] + gt[:, 4], gt[:, 3] + gt[:, 5]])
            items.append(
                LabelledImage(
                    Path(f"{index}-{i}"),
                    (384, 640),
                    xyxy.astype(np.float32),
                    (gt[:, 7] - 1).astype(np.int32),
                    ~counted,
                )
            )
            dets.append(detector(img))
    _, map50, per_class = coco_map(DetectionDataset(tuple(items), demo.CLASS_NAMES), dets, per_class=True)
    assert per_class[0][1] >= 0.9 and per_class[1][1] >= 0.85  # cars, trucks
    assert per_class[2][1] >= 0.55  # people, 6-12 px
    assert map50 >= 0.8


def test_weights_load_safely_and_match_the_packaged_onnx() -> None:
    """models/demo.pt is a weights_only-loadable yolov5-statedict-v1 file, and demo.onnx is its export."""
    torch = pytest.importorskip("torch")
    import onnxruntime as ort

    from edgedet.convert.adapters.yolov5 import load_yolov5

    ckpt = torch.load(REPO / "models" / "demo.pt", map_location="cpu", weights_only=True)
    assert ckpt["format"] == "yolov5-statedict-v1"
    assert tuple(ckpt["names"]) == demo.CLASS_NAMES
    loaded = load_yolov5(REPO / "models" / "demo.pt")
    image = next(iter(DemoScene(seed=0, split="test", index=0, frames=1)))[0]
    x = np.ascontiguousarray(image[..., ::-1].transpose(2, 0, 1)[None], dtype=np.float32) / 255
    with torch.no_grad():
        ref = loaded.module(torch.from_numpy(x)).numpy()
    sess = ort.InferenceSession(str(demo.model_path("fp32")), providers=["CPUExecutionProvider"])
    got = sess.run(None, {sess.get_inputs()[0].name: x})[0]
    assert got.shape == ref.shape == (1, 15120, 8)
    np.testing.assert_allclose(got, ref, rtol=1e-3, atol=1e-3)


def test_demo_run_writes_the_run_folder(tmp_path: Path) -> None:
    """What `edgedet run --source demo` does, shortened to 12 frames: model, tracker, skip policy, outputs."""
    from edgedet.pipeline import build_pipeline

    overrides = demo.default_run_overrides({}, now=NOW, root=tmp_path)
    cfg = build_config(RunConfig, None, source="demo:frames=12", threads=2, **overrides)
    pipeline = build_pipeline(cfg)
    assert pipeline.cmc is not None  # the demo's camera flies: camera-motion compensation on
    summary = pipeline.run()
    assert summary.frames == 12
    assert summary.detector_runs >= 1
    run_dir = tmp_path / "demo-20250102-030405"
    assert sorted(p.name for p in run_dir.iterdir()) == ["detections.jsonl", "tracks.txt", "video.mp4"]
    lines = (run_dir / "detections.jsonl").read_text().splitlines()
    assert len(lines) == 12
    tracks = np.loadtxt(run_dir / "tracks.txt", delimiter=",", ndmin=2)
    assert len(tracks) > 0 and (tracks[:, 1] >= 0).all()  # confirmed tracks with ids
