"""TensorRT engine build logic: key, cache path, sidecar, cache hit/miss, messages.

Where TensorRT is absent, a small fake module stands in for `tensorrt` (it records the builder calls and
returns fixed plan bytes); on a machine with TensorRT the `gpu` test builds a real engine.
"""

from __future__ import annotations

import json
import sys
import types
from pathlib import Path
from typing import Any

import pytest
from tests.conftest import shared_path

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
from edgedet.errors import BackendError, ConfigError, MissingDependencyError

HAVE_TRT = available("tensorrt")
GPU = GpuInfo("Orin", "8.7")


def _fake_trt(calls: list[tuple[str, Any]]) -> types.ModuleType:
    trt = types.ModuleType("tensorrt")
    trt.__version__ = "10.3.0"  # type: ignore[attr-defined]

    class Logger:
        WARNING = 2

        def __init__(self, level: int) -> None:
            pass

    class Flag:
        STRONGLY_TYPED = 5

    class Pool:
        WORKSPACE = "workspace"

    class Tensor:
        name, shape = "images", (-1, 3, 320, 320)

    class Network:
        num_inputs = 1

        def get_input(self, i: int) -> Tensor:
            return Tensor()

    class Parser:
        num_errors = 0

        def __init__(self, network: Network, logger: Logger) -> None:
            pass

        def parse_from_file(self, path: str) -> bool:
            calls.append(("parse", path))
            return True

    class Cache:
        def __init__(self, data: bytes) -> None:
            self.data = data

        def serialize(self) -> bytes:
            return self.data + b"+timing"

    class Profile:
        def set_shape(
            self, name: str, lo: tuple[int, ...], opt: tuple[int, ...], hi: tuple[int, ...]
        ) -> None:
            calls.append(("set_shape", (name, lo, opt, hi)))

    class Config:
        def set_memory_pool_limit(self, pool: str, size: int) -> None:
            calls.append(("pool", (pool, size)))

        def create_timing_cache(self, data: bytes) -> Cache:
            calls.append(("timing_in", data))
            self.cache = Cache(data)
            return self.cache

        def set_timing_cache(self, cache: Cache, ignore_mismatch: bool) -> None:
            calls.append(("set_timing", ignore_mismatch))

        def get_timing_cache(self) -> Cache:
            return self.cache

        def add_optimization_profile(self, p: Profile) -> None:
            calls.append(("profile", None))

    class Builder:
        def __init__(self, logger: Logger) -> None:
            pass

        def create_network(self, flags: int) -> Network:
            calls.append(("network_flags", flags))
            return Network()

        def create_builder_config(self) -> Config:
            return Config()

        def create_optimization_profile(self) -> Profile:
            return Profile()

        def build_serialized_network(self, network: Network, config: Config) -> bytes:
            calls.append(("build", None))
            return b"PLAN"

    trt.Logger, trt.NetworkDefinitionCreationFlag, trt.MemoryPoolType = Logger, Flag, Pool  # type: ignore[attr-defined]
    trt.OnnxParser, trt.Builder = Parser, Builder  # type: ignore[attr-defined]
    return trt


@pytest.fixture
def fake_trt(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, Any]]:
    if HAVE_TRT:
        pytest.skip("real TensorRT present: the gpu test covers it")
    calls: list[tuple[str, Any]] = []
    monkeypatch.setitem(sys.modules, "tensorrt", _fake_trt(calls))
    return calls


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


def test_build_then_cache_hit_then_rebuild_on_force(
    fake_trt: list[tuple[str, Any]], tmp_path: Path, onnx320: Path
) -> None:
    msgs: list[str] = []
    r1 = build_engine(onnx320, cache_dir=tmp_path, workspace_gb=1.5, gpu=GPU, progress=msgs.append)
    assert not r1.cache_hit and r1.plan.read_bytes() == b"PLAN" and r1.plan.parent == tmp_path
    assert ("network_flags", 1 << 5) in fake_trt and ("pool", ("workspace", int(1.5 * 2**30))) in fake_trt
    assert ("set_timing", False) in fake_trt and ("timing_in", b"") in fake_trt
    side = read_sidecar(r1.plan)
    assert side["key"] == r1.key.__dict__ and side["key_digest"] == r1.key.digest
    assert side["spec"]["input_hw"] == [320, 320] and side["versions"]["tensorrt"] == "10.3.0"
    timing = list(tmp_path.glob("timing-*.cache"))
    assert len(timing) == 1 and timing[0].read_bytes() == b"+timing"
    assert any("building fp32 engine for Orin (SM 8.7)" in m for m in msgs)
    n_builds = sum(c[0] == "build" for c in fake_trt)
    r2 = build_engine(onnx320, cache_dir=tmp_path, gpu=GPU)
    assert r2.cache_hit and r2.plan == r1.plan and sum(c[0] == "build" for c in fake_trt) == n_builds
    r3 = build_engine(onnx320, cache_dir=tmp_path, gpu=GPU, force=True)
    assert not r3.cache_hit and ("timing_in", b"+timing") in fake_trt  # the timing cache was reused
    r4 = build_engine(onnx320, cache_dir=tmp_path, gpu=GpuInfo("Xavier", "7.2"))
    assert not r4.cache_hit and r4.plan != r1.plan  # another GPU, another engine


def test_engine_from_another_setup_is_refused_with_the_rebuild_command(
    fake_trt: list[tuple[str, Any]], tmp_path: Path, onnx320: Path
) -> None:
    r = build_engine(onnx320, cache_dir=tmp_path, gpu=GPU)
    assert check_engine(r.plan, "10.3.0", GPU).input_hw == (320, 320)
    with pytest.raises(
        BackendError,
        match=r"built with TensorRT 10.3.0 vs 10.7.0.*edgedet convert .*yolov5n_320.onnx --engine",
    ):
        check_engine(r.plan, "10.7.0", GPU)


def test_option_errors(fake_trt: list[tuple[str, Any]], tmp_path: Path, onnx320: Path) -> None:
    with pytest.raises(ConfigError, match="fixed batch of 1"):
        build_engine(onnx320, cache_dir=tmp_path, dynamic_batch=(1, 4, 8), gpu=GPU)
    with pytest.raises(ConfigError, match="workspace_gb must be positive"):
        build_engine(onnx320, cache_dir=tmp_path, workspace_gb=0, gpu=GPU)


def test_uint8_qdq_is_refused_for_tensorrt(
    fake_trt: list[tuple[str, Any]], tmp_path: Path, onnx320: Path
) -> None:
    from edgedet.convert.quantize import quantize_int8
    from edgedet.datasets import load_dataset
    from edgedet.eval.det import load_onnx_spec

    imgs = load_dataset(shared_path("coco128")).paths[:4]
    q = quantize_int8(onnx320, tmp_path / "q.onnx", imgs, load_onnx_spec(onnx320), min_images=4)
    with pytest.raises(ConfigError, match=r"uint8 Q/DQ.*activation_type='int8'"):
        build_engine(q, cache_dir=tmp_path, gpu=GPU)


@pytest.mark.gpu
def test_real_tensorrt_build(tmp_path: Path, onnx320: Path) -> None:
    if not HAVE_TRT:
        pytest.skip("TensorRT is not installed")
    r = build_engine(onnx320, cache_dir=tmp_path)
    assert r.plan.stat().st_size > 100_000 and json.loads(r.sidecar.read_text())["key_digest"] == r.key.digest
    assert build_engine(onnx320, cache_dir=tmp_path).cache_hit
