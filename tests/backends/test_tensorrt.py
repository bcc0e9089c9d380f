"""TensorRTBackend: everything around the TensorRT and CUDA calls, checked with real values.

TensorRT cannot be installed on the development machines (PyPI's packages are placeholders and there is no
GPU), so `FakeTrt` stands in for the `tensorrt` module, and `FakeCuda` (tests/backends/test_cuda_mem.py) for
the driver. The fake "plan" names an ONNX file, and the fake execution context runs that ONNX through ONNX
Runtime, reading its input from the address bound with set_tensor_address and writing its outputs to theirs.
So the outputs of the TensorRT backend must equal ONNX Runtime's exactly when the buffer sizes, dtypes,
addresses, copies and stream synchronisation are right, and differ when any of them is wrong.

Real TensorRT on a Jetson is validated by the commands in deploy/jetson/README.md (tests/gpu, marked gpu).
"""

from __future__ import annotations

import enum
import json
import os
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper
from tests.backends.test_cuda_mem import FakeCuda

from edgedet.backends import BackendConfig, open_backend
from edgedet.backends.cuda_mem import host_array
from edgedet.backends.engine_build import EngineKey, sha256_file
from edgedet.backends.onnxruntime import OnnxRuntimeBackend
from edgedet.backends.tensorrt import TENSORRT_MISSING, TensorRTBackend, numpy_dtype
from edgedet.errors import BackendError, MissingDependencyError
from edgedet.spec import SPEC_KEY, ModelSpec

NC = 3
HW = (32, 32)
ROWS = 3 * HW[0] * HW[1] // (5 + NC)  # 384 yolov5 rows of 5+nc


# ----------------------------------------------------------------------------- a fake tensorrt module


class TensorIOMode(enum.Enum):
    NONE = 0
    INPUT = 1
    OUTPUT = 2


class DataType(enum.Enum):
    FLOAT = 0
    HALF = 1
    INT8 = 2
    INT32 = 3
    BOOL = 4
    UINT8 = 5
    BF16 = 7
    INT64 = 8


_NP = {"FLOAT": np.float32, "HALF": np.float16, "INT32": np.int32, "INT64": np.int64, "INT8": np.int8}


class FakeContext:
    def __init__(self, engine: FakeEngine) -> None:
        self.engine = engine
        self.addresses: dict[str, int] = {}
        self.input_shapes = {n: tuple(t["shape"]) for n, t in engine.tensors.items() if t["mode"] == "input"}
        self.streams: list[int] = []

    def set_input_shape(self, name: str, shape: Any) -> bool:
        lo, hi = self.engine.plan.get("profile", [1, 1])
        declared = self.engine.tensors[name]["shape"]
        shape = tuple(int(d) for d in shape)
        if len(shape) != len(declared) or not lo <= shape[0] <= hi:
            return False
        self.input_shapes[name] = shape
        return True

    def get_tensor_shape(self, name: str) -> tuple[int, ...]:
        t = self.engine.tensors[name]
        if t["mode"] == "input":
            return self.input_shapes[name]
        batch = next(iter(self.input_shapes.values()))[0]
        return tuple(batch if d == -1 else d for d in t["shape"])

    def set_tensor_address(self, name: str, ptr: int) -> bool:
        self.addresses[name] = int(ptr)
        return True

    def execute_async_v3(self, stream: int) -> bool:
        if self.engine.plan.get("fail"):
            return False
        assert set(self.addresses) == set(self.engine.tensors), "every I/O tensor needs an address"
        self.streams.append(stream)
        import onnxruntime as ort

        sess = ort.InferenceSession(self.engine.plan["onnx"], providers=["CPUExecutionProvider"])
        feeds = {}
        for name, t in self.engine.tensors.items():
            if t["mode"] == "input":
                x = host_array(self.addresses[name], self.input_shapes[name], _NP[t["dtype"]])
                feeds[name] = x.astype(np.float32)
        outs = sess.run(None, feeds)
        out_names = [n for n, t in self.engine.tensors.items() if t["mode"] == "output"]
        for name, value in zip(out_names, outs, strict=True):
            t = self.engine.tensors[name]
            dst = host_array(self.addresses[name], self.get_tensor_shape(name), _NP[t["dtype"]])
            dst[...] = value.astype(_NP[t["dtype"]])
        return True


class FakeEngine:
    def __init__(self, plan: dict[str, Any]) -> None:
        self.plan = plan
        self.tensors: dict[str, dict[str, Any]] = plan["tensors"]
        self.names = list(self.tensors)
        self.contexts: list[FakeContext] = []

    @property
    def num_io_tensors(self) -> int:
        return len(self.names)

    def get_tensor_name(self, i: int) -> str:
        return self.names[i]

    def get_tensor_mode(self, name: str) -> TensorIOMode:
        return TensorIOMode.INPUT if self.tensors[name]["mode"] == "input" else TensorIOMode.OUTPUT

    def get_tensor_shape(self, name: str) -> tuple[int, ...]:
        return tuple(self.tensors[name]["shape"])

    def get_tensor_dtype(self, name: str) -> DataType:
        return DataType[self.tensors[name]["dtype"]]

    def create_execution_context(self) -> FakeContext:
        ctx = FakeContext(self)
        self.contexts.append(ctx)
        return ctx


class FakeTrt:
    """The parts of the `tensorrt` module edgedet uses, by the same names (runtime and builder)."""

    TensorIOMode = TensorIOMode
    DataType = DataType

    class Logger:
        WARNING = 2

        def __init__(self, severity: int) -> None:
            self.severity = severity

    class NetworkDefinitionCreationFlag:
        STRONGLY_TYPED = 5

    class MemoryPoolType:
        WORKSPACE = 0

    def __init__(self, version: str = "10.3.0") -> None:
        self.__version__ = version
        self.deserialized: list[bytes] = []
        self.builds = 0
        trt = self

        class Runtime:
            def __init__(self, logger: Any) -> None:
                pass

            def deserialize_cuda_engine(self, data: bytes) -> FakeEngine | None:
                trt.deserialized.append(data)
                try:
                    plan = json.loads(data)
                except ValueError:
                    return None  # what TensorRT does with a corrupt plan
                if plan.get("trt") != trt.__version__:
                    return None  # ... and with a plan from another version
                engine = FakeEngine(plan)
                trt.engines.append(engine)
                return engine

        self.Runtime = Runtime
        self.engines: list[FakeEngine] = []

        class Builder:
            def __init__(self, logger: Any) -> None:
                pass

            def create_network(self, flags: int) -> dict[str, Any]:
                assert flags == 1 << 5, "networks must be strongly typed"
                return {}

            def create_builder_config(self) -> FakeBuilderConfig:
                return FakeBuilderConfig()

            def build_serialized_network(self, network: dict[str, Any], config: Any) -> bytes:
                trt.builds += 1
                return fake_plan(network["onnx"], trt.__version__)

        class OnnxParser:
            def __init__(self, network: dict[str, Any], logger: Any) -> None:
                self.network = network
                self.num_errors = 0

            def parse_from_file(self, path: str) -> bool:
                self.network["onnx"] = path
                return True

        self.Builder = Builder
        self.OnnxParser = OnnxParser


class FakeBuilderConfig:
    def set_memory_pool_limit(self, pool: int, nbytes: int) -> None:
        self.workspace = nbytes

    def create_timing_cache(self, data: bytes) -> bytes:
        return data

    def set_timing_cache(self, cache: bytes, ignore_mismatch: bool) -> None:
        self.cache = cache

    def get_timing_cache(self) -> Any:
        class Cache:
            def serialize(self) -> bytes:
                return b"timing"

        return Cache()


def fake_plan(onnx_path: str, version: str, dtype: str = "FLOAT", **extra: Any) -> bytes:
    """A 'plan' for FakeTrt: the ONNX it runs and its I/O tensors (shapes/dtypes read from the ONNX)."""
    model = onnx.load(onnx_path)

    def dims(vi: Any) -> list[int]:
        return [d.dim_value if d.HasField("dim_value") else -1 for d in vi.type.tensor_type.shape.dim]

    tensors = {i.name: {"mode": "input", "shape": dims(i), "dtype": dtype} for i in model.graph.input}
    tensors.update({o.name: {"mode": "output", "shape": dims(o), "dtype": dtype} for o in model.graph.output})
    return json.dumps({"trt": version, "onnx": onnx_path, "tensors": tensors, **extra}).encode()


# ----------------------------------------------------------------------------- models, plans, sidecars


def tiny_detector(path: Path, batch: int | str = 1) -> Path:
    """images [B,3,32,32] -> output0 [B,384,8] = reshape(images * 2 + 1): a yolov5-layout head with 3 classes."""
    spec = ModelSpec(
        input_hw=HW, output_format="yolov5", class_names=("a", "b", "c"), batch=0 if batch == "batch" else 1
    )
    graph = helper.make_graph(
        [
            helper.make_node("Mul", ["images", "two"], ["m"]),
            helper.make_node("Add", ["m", "one"], ["a"]),
            helper.make_node("Reshape", ["a", "shape"], ["output0"]),
        ],
        "tiny",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, [batch, 3, *HW])],
        [helper.make_tensor_value_info("output0", TensorProto.FLOAT, [batch, ROWS, 5 + NC])],
        [
            helper.make_tensor("two", TensorProto.FLOAT, [], [2.0]),
            helper.make_tensor("one", TensorProto.FLOAT, [], [1.0]),
            helper.make_tensor("shape", TensorProto.INT64, [3], [-1, ROWS, 5 + NC]),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    helper.set_model_props(model, {SPEC_KEY: spec.to_json()})
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def write_plan(
    tmp_path: Path,
    version: str = "10.3.0",
    gpu: tuple[str, str] = ("Orin", "8.7"),
    sidecar: bool = True,
    dtype: str = "FLOAT",
    batch: int | str = 1,
    **extra: Any,
) -> Path:
    """A fake plan built by TensorRT `version` on `gpu`, with a build_engine-format sidecar."""
    onnx_path = tiny_detector(tmp_path / f"tiny-{batch}.onnx", batch)
    plan = tmp_path / f"tiny-{batch}.plan"
    plan.write_bytes(fake_plan(str(onnx_path), version, dtype, **extra))
    if sidecar:
        key = EngineKey(version, gpu[0], gpu[1], sha256_file(onnx_path), "fp32", "1x3x32x32")
        spec = ModelSpec(input_hw=HW, output_format="yolov5", class_names=("a", "b", "c"))
        data = {
            "key": asdict(key),
            "key_digest": key.digest,
            "spec": json.loads(spec.to_json()),
            "onnx_path": str(onnx_path),
        }
        Path(str(plan) + ".json").write_text(json.dumps(data))
    return plan


def image_batch(n: int = 1, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random((n, 3, *HW), dtype=np.float32)


# ----------------------------------------------------------------------------- tests


def test_missing_tensorrt_is_one_line_naming_jetpack_and_the_fallback(tmp_path: Path) -> None:
    try:
        import tensorrt  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip("tensorrt is installed here")
    model = tiny_detector(tmp_path / "m.onnx")
    with pytest.raises(MissingDependencyError) as info:
        open_backend(model, BackendConfig(backend="tensorrt"))
    msg = str(info.value)
    assert msg == TENSORRT_MISSING and "\n" not in msg
    assert "python3-libnvinfer" in msg and "--backend onnxruntime" in msg


def test_modules_import_without_tensorrt_or_cuda() -> None:
    code = (
        "import sys; sys.modules['tensorrt'] = None; sys.modules['cuda'] = None; sys.modules['pycuda'] = None\n"
        "import edgedet.backends.tensorrt, edgedet.backends.cuda_mem, edgedet.telemetry, edgedet.sources.csi\n"
        "print('ok')"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


@pytest.mark.parametrize("memory", ["device", "mapped"])
def test_outputs_match_onnxruntime_and_copies_are_honest(tmp_path: Path, memory: str) -> None:
    plan = write_plan(tmp_path)
    trt, cuda = FakeTrt(), FakeCuda()
    x = image_batch(seed=1)
    with OnnxRuntimeBackend(tmp_path / "tiny-1.onnx") as ref:
        expected = [o.copy() for o in ref.infer(x)]
    with TensorRTBackend(plan, memory=memory, trt=trt, cuda=cuda) as be:
        assert be.spec.class_names == ("a", "b", "c") and be.spec.output_format == "yolov5"
        assert be.output_shapes == [(1, ROWS, 8)]
        bufs = be.buffers
        assert bufs["images"].nbytes == 3 * 32 * 32 * 4 and bufs["output0"].nbytes == ROWS * 8 * 4
        cuda.calls.clear()
        for seed in range(3):
            x = image_batch(seed=seed)
            out = be.infer(x)
            np.testing.assert_array_equal(out[0], x.reshape(1, ROWS, 8) * 2 + 1)
        np.testing.assert_array_equal(be.infer(image_batch(seed=1))[0], expected[0])
        stream = trt.engines[0].contexts[0].streams[-1]
        kinds = [c[0] for c in cuda.calls]
    if memory == "device":
        # each call: upload, (execute), download, then synchronise before returning
        assert kinds == ["htod", "dtoh", "sync"] * 4
        assert all(c[-1] == stream for c in cuda.calls if c[0] in ("htod", "dtoh", "sync"))
    else:
        assert kinds == ["sync"] * 4  # mapped: no copies at all
    assert cuda.live() == 0 and not cuda.streams


def test_version_mismatch_is_refused_before_loading_naming_both(tmp_path: Path) -> None:
    plan = write_plan(tmp_path, version="10.3.0")
    trt = FakeTrt(version="10.7.0")
    with pytest.raises(BackendError) as info:
        TensorRTBackend(plan, trt=trt, cuda=FakeCuda())
    msg = str(info.value)
    assert "TensorRT 10.3.0 vs 10.7.0" in msg
    assert f"edgedet convert {tmp_path / 'tiny-1.onnx'} --engine" in msg
    assert trt.deserialized == []  # refused before TensorRT saw the bytes


def test_gpu_mismatch_is_refused_naming_both(tmp_path: Path) -> None:
    plan = write_plan(tmp_path, gpu=("Orin", "8.7"))
    cuda = FakeCuda(integrated=False, name="NVIDIA GeForce RTX 3080", sm=(8, 6))
    with pytest.raises(BackendError) as info:
        TensorRTBackend(plan, trt=FakeTrt(), cuda=cuda)
    msg = str(info.value)
    assert "GPU Orin vs NVIDIA GeForce RTX 3080" in msg and "SM 8.7 vs 8.6" in msg
    assert "--engine" in msg and "\n" not in msg


def test_plan_without_sidecar_that_tensorrt_refuses(tmp_path: Path) -> None:
    plan = write_plan(tmp_path, version="8.6.1", sidecar=False)
    with pytest.raises(BackendError) as info:
        TensorRTBackend(plan, trt=FakeTrt("10.3.0"), cuda=FakeCuda())
    msg = str(info.value)
    assert "TensorRT 10.3.0 could not deserialize tiny-1.plan on Orin (sm_87)" in msg
    assert "it has no sidecar" in msg and "edgedet convert tiny-1.onnx --engine" in msg


def test_plan_without_sidecar_loads_with_spec_from_overrides(tmp_path: Path) -> None:
    plan = write_plan(tmp_path, sidecar=False)
    cfg = BackendConfig(backend="tensorrt", output_format="yolov5")
    with TensorRTBackend(plan, cfg, trt=FakeTrt(), cuda=FakeCuda()) as be:
        assert be.spec.output_format == "yolov5" and be.spec.class_names == ("class0", "class1", "class2")
        assert be.spec.input_hw == HW


@pytest.mark.parametrize(
    ("dtype", "in_bytes", "out_bytes", "np_dtype"),
    [("FLOAT", 12288, 12288, np.float32), ("HALF", 6144, 6144, np.float16)],
)
def test_buffers_sized_from_shape_and_dtype(
    tmp_path: Path, dtype: str, in_bytes: int, out_bytes: int, np_dtype: Any
) -> None:
    plan = write_plan(tmp_path, dtype=dtype)
    with TensorRTBackend(plan, trt=FakeTrt(), cuda=FakeCuda()) as be:
        assert be.input_dtype == np_dtype
        assert be.buffers["images"].nbytes == in_bytes and be.buffers["output0"].nbytes == out_bytes
        x = image_batch(seed=3)
        out = be.infer(x)[0]
        assert out.dtype == np_dtype
        expected = (x.astype(np_dtype).astype(np.float32) * 2 + 1).astype(np_dtype).reshape(1, ROWS, 8)
        np.testing.assert_array_equal(out, expected)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("FLOAT", np.float32),
        ("HALF", np.float16),
        ("INT8", np.int8),
        ("INT32", np.int32),
        ("INT64", np.int64),
        ("BOOL", np.bool_),
        ("UINT8", np.uint8),
    ],
)
def test_numpy_dtype(name: str, expected: Any) -> None:
    assert numpy_dtype(DataType[name]) == np.dtype(expected)


def test_bf16_io_is_refused() -> None:
    with pytest.raises(BackendError, match="tensor 'scores' has type BF16, which numpy cannot hold"):
        numpy_dtype(DataType.BF16, "scores")


def test_dynamic_batch_sets_input_shape_and_resizes_buffers(tmp_path: Path) -> None:
    plan = write_plan(tmp_path, batch="batch", sidecar=False, profile=[1, 4])
    cfg = BackendConfig(backend="tensorrt", output_format="yolov5")
    cuda = FakeCuda()
    with TensorRTBackend(plan, cfg, trt=FakeTrt(), cuda=cuda) as be:
        assert be.output_shapes == [(None, ROWS, 8)]
        assert be.buffers["images"].shape == (1, 3, 32, 32)  # batch 1 until told otherwise
        x = image_batch(3, seed=4)
        out = be.infer(x)[0]
        assert out.shape == (3, ROWS, 8)
        np.testing.assert_array_equal(out, x.reshape(3, ROWS, 8) * 2 + 1)
        assert be.buffers["output0"].nbytes == 3 * ROWS * 8 * 4
        assert cuda.live() == 4  # host + device for 2 tensors: the batch-1 buffers were freed, not leaked
        with pytest.raises(
            BackendError, match=r"rejects input shape \[8, 3, 32, 32\] \(outside its optimization profile\)"
        ):
            be.infer(image_batch(8))


def test_wrong_input_size_is_refused(tmp_path: Path) -> None:
    plan = write_plan(tmp_path)
    with TensorRTBackend(plan, trt=FakeTrt(), cuda=FakeCuda()) as be:
        with pytest.raises(
            BackendError, match=r"input shape \[1, 3, 64, 64\] does not fit engine input 'images'"
        ):
            be.infer(np.zeros((1, 3, 64, 64), np.float32))


def test_failed_execution_and_use_after_close(tmp_path: Path) -> None:
    plan = write_plan(tmp_path, fail=True)
    cuda = FakeCuda()
    be = TensorRTBackend(plan, trt=FakeTrt(), cuda=cuda)
    with pytest.raises(BackendError, match=r"execute_async_v3 failed for tiny-1\.plan"):
        be.infer(image_batch())
    be.close()
    be.close()  # twice is fine
    assert cuda.live() == 0 and not cuda.streams
    with pytest.raises(BackendError, match="is closed"):
        be.infer(image_batch())


def test_unknown_memory_mode(tmp_path: Path) -> None:
    with pytest.raises(
        BackendError, match="unknown TensorRT memory mode 'unified': choose one of device, mapped"
    ):
        TensorRTBackend(write_plan(tmp_path), memory="unified", trt=FakeTrt(), cuda=FakeCuda())


def test_onnx_builds_once_then_reuses_the_cached_engine(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    trt = FakeTrt()
    monkeypatch.setitem(sys.modules, "tensorrt", trt)  # build_engine imports tensorrt itself
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    onnx_path = tiny_detector(tmp_path / "det.onnx")
    x = image_batch(seed=5)
    messages: list[str] = []
    with TensorRTBackend(onnx_path, trt=trt, cuda=FakeCuda(), progress=messages.append) as be:
        first = be.infer(x)[0].copy()
        engine_path = be.engine_path
    assert trt.builds == 1
    assert engine_path.parent == tmp_path / "cache" / "edgedet" / "engines"
    assert engine_path.name.startswith("det-fp32-") and engine_path.suffix == ".plan"
    assert any(m.startswith("building fp32 engine for Orin (SM 8.7), TensorRT 10.3.0") for m in messages)
    mtime = os.stat(engine_path).st_mtime_ns
    messages.clear()
    with TensorRTBackend(onnx_path, trt=trt, cuda=FakeCuda(), progress=messages.append) as be:
        np.testing.assert_array_equal(be.infer(x)[0], first)
        assert be.engine_path == engine_path
    assert trt.builds == 1 and messages == [f"engine cache hit: {engine_path}"]
    assert os.stat(engine_path).st_mtime_ns == mtime
    np.testing.assert_array_equal(first, x.reshape(1, ROWS, 8) * 2 + 1)


@pytest.mark.gpu
def test_real_tensorrt_matches_onnxruntime(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """On a device with TensorRT and a GPU: build the tiny detector for real, compare with ONNX Runtime."""
    pytest.importorskip("tensorrt")
    from edgedet.backends.cuda_mem import CudaError, load_cuda_api

    try:
        info = load_cuda_api().device_info()
    except CudaError as exc:
        pytest.skip(f"no usable GPU: {exc}")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    onnx_path = tiny_detector(tmp_path / "det.onnx")
    x = image_batch(seed=7)
    with OnnxRuntimeBackend(onnx_path) as ref:
        expected = ref.infer(x)[0].copy()
    for memory in ("device", "mapped") if info.integrated else ("device",):
        with TensorRTBackend(onnx_path, memory=memory) as be:
            np.testing.assert_allclose(be.infer(x)[0], expected, rtol=1e-5, atol=1e-5)
