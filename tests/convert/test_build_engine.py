"""TensorRT engine build logic: key, cache path, sidecar, cache hit/miss, messages.

Where TensorRT is absent, a small fake module stands in for `tensorrt` (it records the builder calls and
returns fixed plan bytes); on a machine with TensorRT the `gpu` test builds a real engine.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest
from tests.conftest import shared_path
from tests.helpers.trt_standin import API_VERSIONS, make_tensorrt, used_names

from edgedet._optional import available
from edgedet.backends.engine_build import (
    EngineKey,
    GpuInfo,
    build_engine,
    check_engine,
    engine_cache_path,
    engine_key,
    read_sidecar,
)
from edgedet.errors import BackendError, ConfigError, MissingDependencyError, ModelError

HAVE_TRT = available("tensorrt")
GPU = GpuInfo("Orin", "8.7")


@pytest.fixture(params=API_VERSIONS, ids=lambda v: f"trt{v}")
def fake_trt(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The tensorrt stand-in with TensorRT 10.3's, then 11.1's, real API names (tests/helpers/trt_standin.py);
    its `_calls` list records the builder calls in order."""
    if HAVE_TRT:
        pytest.skip("real TensorRT present: the gpu test covers it")
    trt = make_tensorrt(request.param)
    monkeypatch.setitem(sys.modules, "tensorrt", trt)
    return trt


@pytest.fixture(scope="module")
def onnx320() -> Path:
    return shared_path("models", "reference_onnx", "yolov5n_320.onnx")


def test_missing_tensorrt_says_onnx_is_ready(tmp_path: Path, onnx320: Path) -> None:
    if HAVE_TRT:
        pytest.skip("TensorRT is installed here")
    with pytest.raises(
        MissingDependencyError,
        match=r"ONNX file .*yolov5n_320.onnx is ready; run the same command on the device",
    ):
        build_engine(onnx320, cache_dir=tmp_path, gpu=GPU)


KEY = EngineKey("10.3.0", "Orin", "8.7", "ab" * 32, "fp32", "1x3x320x320")


@pytest.mark.parametrize(
    "change",
    [
        {"tensorrt_version": "10.7.0"},
        {"gpu_name": "Xavier"},
        {"sm": "7.2"},
        {"onnx_sha256": "cd" * 32},
        {"precision": "int8"},
        {"input_shape": "1x3x640x640"},
    ],
)
def test_every_key_field_changes_the_digest_and_path(change: dict[str, str], tmp_path: Path) -> None:
    other = EngineKey(**{**KEY.__dict__, **change})
    assert other.digest != KEY.digest
    assert engine_cache_path(other, tmp_path) != engine_cache_path(KEY, tmp_path)
    assert len(KEY.mismatch(other)) == 1


def test_key_of_the_reference_onnx(onnx320: Path) -> None:
    key, spec = engine_key(onnx320, "10.3.0", GPU)
    assert (
        key.onnx_sha256 == "8ad1284124674633c92213c0a1cba6ac1742b996a2865dde3a7089ae1dcb48f7"
    )  # models/README
    assert (key.input_shape, key.precision, spec.output_format) == ("1x3x320x320", "fp32", "yolov5")


def test_build_then_cache_hit_then_rebuild_on_force(fake_trt: Any, tmp_path: Path, onnx320: Path) -> None:
    calls = fake_trt._calls
    msgs: list[str] = []
    r1 = build_engine(onnx320, cache_dir=tmp_path, workspace_gb=1.5, gpu=GPU, progress=msgs.append)
    assert not r1.cache_hit and r1.plan.parent == tmp_path
    # the plan TensorRT serialized, as written
    assert json.loads(r1.plan.read_bytes())["onnx"] == str(onnx320)
    strongly_typed = 1 << int(fake_trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)
    assert ("network_flags", strongly_typed) in calls
    assert ("pool", (fake_trt.MemoryPoolType.WORKSPACE, int(1.5 * 2**30))) in calls
    assert ("set_timing", False) in calls and ("timing_in", b"") in calls
    assert not [c for c in calls if c[0] == "set_flag"]  # precision lives in the ONNX: no builder flags
    side = read_sidecar(r1.plan)
    assert side["key"] == r1.key.__dict__ and side["key_digest"] == r1.key.digest
    assert side["spec"]["input_hw"] == [320, 320] and side["versions"]["tensorrt"] == fake_trt.__version__
    timing = list(tmp_path.glob("timing-*.cache"))
    assert len(timing) == 1 and timing[0].read_bytes() == b"+timing"
    assert any("building fp32 engine for Orin (SM 8.7)" in m for m in msgs)
    n_builds = fake_trt._builds
    r2 = build_engine(onnx320, cache_dir=tmp_path, gpu=GPU)
    assert r2.cache_hit and r2.plan == r1.plan and fake_trt._builds == n_builds
    r3 = build_engine(onnx320, cache_dir=tmp_path, gpu=GPU, force=True)
    assert not r3.cache_hit and ("timing_in", b"+timing") in calls  # the timing cache was reused
    r4 = build_engine(onnx320, cache_dir=tmp_path, gpu=GpuInfo("Xavier", "7.2"))
    assert not r4.cache_hit and r4.plan != r1.plan  # another GPU, another engine


def test_engine_from_another_setup_is_refused_with_the_rebuild_command(
    fake_trt: Any, tmp_path: Path, onnx320: Path
) -> None:
    r = build_engine(onnx320, cache_dir=tmp_path, gpu=GPU)
    built = fake_trt.__version__
    assert check_engine(r.plan, built, GPU).input_hw == (320, 320)
    with pytest.raises(
        BackendError,
        match=rf"built with TensorRT {built} vs 10.7.0.*edgedet convert .*yolov5n_320.onnx --engine",
    ):
        check_engine(r.plan, "10.7.0", GPU)


def test_option_errors(fake_trt: Any, tmp_path: Path, onnx320: Path) -> None:
    with pytest.raises(ConfigError, match="fixed batch of 1"):
        build_engine(onnx320, cache_dir=tmp_path, dynamic_batch=(1, 4, 8), gpu=GPU)
    with pytest.raises(ConfigError, match="workspace_gb must be positive"):
        build_engine(onnx320, cache_dir=tmp_path, workspace_gb=0, gpu=GPU)


def test_uint8_qdq_is_refused_for_tensorrt(fake_trt: Any, tmp_path: Path, onnx320: Path) -> None:
    from edgedet.convert.quantize import quantize_int8
    from edgedet.datasets import load_dataset
    from edgedet.eval.det import load_onnx_spec

    imgs = load_dataset(shared_path("coco128")).paths[:4]
    q = quantize_int8(onnx320, tmp_path / "q.onnx", imgs, load_onnx_spec(onnx320), min_images=4)
    with pytest.raises(ConfigError, match=r"uint8 Q/DQ.*activation_type='int8'"):
        build_engine(q, cache_dir=tmp_path, gpu=GPU)


def test_dynamic_batch_profile(fake_trt: Any, tmp_path: Path) -> None:
    from tests.backends.test_tensorrt import tiny_detector

    onnx_path = tiny_detector(tmp_path / "dyn.onnx", batch="batch")
    r = build_engine(onnx_path, cache_dir=tmp_path, dynamic_batch=(1, 4, 8), gpu=GPU)
    assert r.key.input_shape == "1-4-8x3x32x32"
    assert ("set_shape", ("images", (1, 3, 32, 32), (4, 3, 32, 32), (8, 3, 32, 32))) in fake_trt._calls
    assert ("profile", None) in fake_trt._calls


def test_parse_and_build_failures_are_one_line(fake_trt: Any, tmp_path: Path, onnx320: Path) -> None:
    fake_trt._parse_error = "Unsupported operator: Det"
    with pytest.raises(ModelError, match=r"cannot parse yolov5n_320.onnx: Unsupported operator: Det$"):
        build_engine(onnx320, cache_dir=tmp_path, gpu=GPU)
    fake_trt._parse_error = ""
    fake_trt._build_fails = True
    with pytest.raises(BackendError, match=r"failed to build an engine from yolov5n_320\.onnx"):
        build_engine(onnx320, cache_dir=tmp_path, gpu=GPU, force=True)


def test_builder_uses_the_same_names_on_both_versions(
    tmp_path: Path, onnx320: Path, monkeypatch: Any
) -> None:
    """One strongly typed path serves 10.3 and 11.1 (11.x has no precision flags or calibrator to pick)."""
    if HAVE_TRT:
        pytest.skip("real TensorRT present")
    seen = []
    for api in API_VERSIONS:
        trt = make_tensorrt(api)
        monkeypatch.setitem(sys.modules, "tensorrt", trt)
        build_engine(onnx320, cache_dir=tmp_path / api, gpu=GPU)
        seen.append(used_names(trt))
    assert seen[0] == seen[1]
    assert "NetworkDefinitionCreationFlag.STRONGLY_TYPED" in seen[0]
    assert not [n for n in seen[0] if n.startswith(("BuilderFlag", "IInt8")) or "calibrator" in n]


@pytest.mark.gpu
def test_real_tensorrt_build(tmp_path: Path, onnx320: Path) -> None:
    if not HAVE_TRT:
        pytest.skip("TensorRT is not installed")
    r = build_engine(onnx320, cache_dir=tmp_path)
    assert r.plan.stat().st_size > 100_000 and json.loads(r.sidecar.read_text())["key_digest"] == r.key.digest
    assert build_engine(onnx320, cache_dir=tmp_path).cache_hit


def test_an_operator_tensorrt_lacks_is_refused_before_the_build(fake_trt: Any, tmp_path: Path) -> None:
    """build_engine runs the ONNX check first: an unsupported operator is one line naming it, no parse."""
    import onnx
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, 8, 8])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [None])
    idx = helper.make_tensor_value_info("idx", TensorProto.INT64, [None])
    flat = helper.make_node("Flatten", ["images"], ["flat"], axis=0)
    uniq = helper.make_node("Unique", ["flat"], ["y", "idx"])
    graph = helper.make_graph([flat, uniq], "g", [x], [y, idx])
    path = tmp_path / "unique.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    with pytest.raises(ModelError, match="Unique"):
        build_engine(path, cache_dir=tmp_path, gpu=GPU)
    assert not any(call[0] == "parse" for call in fake_trt._calls)
