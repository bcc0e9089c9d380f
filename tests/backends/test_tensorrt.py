"""TensorRTBackend: everything around the TensorRT and CUDA calls, checked with real values.

TensorRT cannot be installed on the development machines (PyPI's packages are placeholders and there is no
GPU), so a stand-in built from TensorRT's real Python API (tests/helpers/trt_standin.py: every class, method,
property and enum value of TensorRT 10.3 or 11.1, and nothing else) replaces the `tensorrt` module, and
`FakeCuda` (tests/backends/test_cuda_mem.py) the driver. Tests taking `api` run against both versions, so a
name the backend or the builder uses that one of them lacks fails here. The stand-in's "plan" names an ONNX
file, and its execution context runs that ONNX through ONNX Runtime, reading its input from the address bound
with set_tensor_address and writing its outputs to theirs.
So the outputs of the TensorRT backend must equal ONNX Runtime's exactly when the buffer sizes, dtypes,
addresses, copies and stream synchronisation are right, and differ when any of them is wrong.

Real TensorRT on a Jetson is validated by the commands in deploy/jetson/README.md (tests/gpu, marked gpu).
"""

from __future__ import annotations

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
from tests.helpers.trt_standin import API_VERSIONS, fake_plan, make_tensorrt, used_names

from edgedet.backends import BackendConfig, open_backend
from edgedet.backends.engine_build import EngineKey, sha256_file
from edgedet.backends.onnxruntime import OnnxRuntimeBackend
from edgedet.backends.tensorrt import TENSORRT_MISSING, TensorRTBackend, numpy_dtype
from edgedet.errors import BackendError, MissingDependencyError
from edgedet.spec import SPEC_KEY, ModelSpec

NC = 3
HW = (32, 32)
ROWS = 3 * HW[0] * HW[1] // (5 + NC)  # 384 yolov5 rows of 5+nc


# ----------------------------------------------------------------------------- the tensorrt stand-in


@pytest.fixture(params=API_VERSIONS, ids=lambda v: f"trt{v}")
def api(request: pytest.FixtureRequest) -> str:
    """Each test that takes it runs against TensorRT 10.3's and 11.1's real API names."""
    return str(request.param)


def FakeTrt(version: str = "10.3.0", api: str = "10.3") -> Any:
    """The tensorrt stand-in (tests/helpers/trt_standin.py) with TensorRT `api`'s names, reporting `version`."""
    return make_tensorrt(api, version)


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
def test_outputs_match_onnxruntime_and_copies_are_honest(tmp_path: Path, memory: str, api: str) -> None:
    plan = write_plan(tmp_path, version=f"{api}.0")
    trt, cuda = FakeTrt(f"{api}.0", api), FakeCuda()
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
        stream = trt._engines[0]._contexts[0]._streams[-1]
        kinds = [c[0] for c in cuda.calls]
    if memory == "device":
        # each call: upload, (execute), download, then synchronise before returning
        assert kinds == ["htod", "dtoh", "sync"] * 4
        assert all(c[-1] == stream for c in cuda.calls if c[0] in ("htod", "dtoh", "sync"))
    else:
        assert kinds == ["sync"] * 4  # mapped: no copies at all
    assert cuda.live() == 0 and not cuda.streams


def test_version_mismatch_is_refused_before_loading_naming_both(tmp_path: Path, api: str) -> None:
    plan = write_plan(tmp_path, version="10.3.0")
    trt = FakeTrt("10.7.0" if api == "10.3" else "11.1.0", api)
    with pytest.raises(BackendError) as info:
        TensorRTBackend(plan, trt=trt, cuda=FakeCuda())
    msg = str(info.value)
    assert f"TensorRT 10.3.0 vs {trt.__version__}" in msg
    assert f"edgedet convert {tmp_path / 'tiny-1.onnx'} --engine" in msg
    assert trt._deserialized == []  # refused before TensorRT saw the bytes


def test_gpu_mismatch_is_refused_naming_both(tmp_path: Path, api: str) -> None:
    plan = write_plan(tmp_path, version=f"{api}.0", gpu=("Orin", "8.7"))
    cuda = FakeCuda(integrated=False, name="NVIDIA GeForce RTX 3080", sm=(8, 6))
    with pytest.raises(BackendError) as info:
        TensorRTBackend(plan, trt=FakeTrt(f"{api}.0", api), cuda=cuda)
    msg = str(info.value)
    assert "GPU Orin vs NVIDIA GeForce RTX 3080" in msg and "SM 8.7 vs 8.6" in msg
    assert "--engine" in msg and "\n" not in msg


def test_plan_without_sidecar_that_tensorrt_refuses(tmp_path: Path, api: str) -> None:
    plan = write_plan(tmp_path, version="8.6.1", sidecar=False)
    with pytest.raises(BackendError) as info:
        TensorRTBackend(plan, trt=FakeTrt(f"{api}.0", api), cuda=FakeCuda())
    msg = str(info.value)
    assert f"TensorRT {api}.0 could not deserialize tiny-1.plan on Orin (sm_87)" in msg
    assert "it has no sidecar" in msg and "edgedet convert tiny-1.onnx --engine" in msg


def test_plan_without_sidecar_loads_with_spec_from_overrides(tmp_path: Path, api: str) -> None:
    plan = write_plan(tmp_path, version=f"{api}.0", sidecar=False)
    cfg = BackendConfig(backend="tensorrt", output_format="yolov5")
    with TensorRTBackend(plan, cfg, trt=FakeTrt(f"{api}.0", api), cuda=FakeCuda()) as be:
        assert be.spec.output_format == "yolov5" and be.spec.class_names == ("class0", "class1", "class2")
        assert be.spec.input_hw == HW


@pytest.mark.parametrize(
    ("dtype", "in_bytes", "out_bytes", "np_dtype"),
    [("FLOAT", 12288, 12288, np.float32), ("HALF", 6144, 6144, np.float16)],
)
def test_buffers_sized_from_shape_and_dtype(
    tmp_path: Path, dtype: str, in_bytes: int, out_bytes: int, np_dtype: Any, api: str
) -> None:
    plan = write_plan(tmp_path, version=f"{api}.0", dtype=dtype)
    with TensorRTBackend(plan, trt=FakeTrt(f"{api}.0", api), cuda=FakeCuda()) as be:
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
def test_numpy_dtype(name: str, expected: Any, api: str) -> None:
    assert numpy_dtype(getattr(make_tensorrt(api).DataType, name)) == np.dtype(expected)


@pytest.mark.parametrize("name", ["BF16", "FP8", "INT4"])
def test_types_numpy_cannot_hold_are_refused(name: str, api: str) -> None:
    with pytest.raises(BackendError, match=f"tensor 'scores' has type {name}, which numpy cannot hold"):
        numpy_dtype(getattr(make_tensorrt(api).DataType, name), "scores")


def test_dynamic_batch_sets_input_shape_and_resizes_buffers(tmp_path: Path, api: str) -> None:
    plan = write_plan(tmp_path, version=f"{api}.0", batch="batch", sidecar=False, profile=[1, 4])
    cfg = BackendConfig(backend="tensorrt", output_format="yolov5")
    cuda = FakeCuda()
    with TensorRTBackend(plan, cfg, trt=FakeTrt(f"{api}.0", api), cuda=cuda) as be:
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


def test_wrong_input_size_is_refused(tmp_path: Path, api: str) -> None:
    plan = write_plan(tmp_path, version=f"{api}.0")
    with TensorRTBackend(plan, trt=FakeTrt(f"{api}.0", api), cuda=FakeCuda()) as be:
        with pytest.raises(
            BackendError, match=r"input shape \[1, 3, 64, 64\] does not fit engine input 'images'"
        ):
            be.infer(np.zeros((1, 3, 64, 64), np.float32))


def test_failed_execution_and_use_after_close(tmp_path: Path, api: str) -> None:
    plan = write_plan(tmp_path, version=f"{api}.0", fail=True)
    cuda = FakeCuda()
    be = TensorRTBackend(plan, trt=FakeTrt(f"{api}.0", api), cuda=cuda)
    with pytest.raises(BackendError, match=r"execute_async_v3 failed for tiny-1\.plan"):
        be.infer(image_batch())
    be.close()
    be.close()  # twice is fine
    assert cuda.live() == 0 and not cuda.streams
    with pytest.raises(BackendError, match="is closed"):
        be.infer(image_batch())


def test_standin_refuses_what_its_version_lacks() -> None:
    """The stand-in is as strict as the real module: 11.1 has no precision flags and no INT8 calibrator."""
    old, new = make_tensorrt("10.3"), make_tensorrt("11.1")
    assert old.BuilderFlag.FP16.name == "FP16" and old.IInt8EntropyCalibrator2 is not None
    config = old.Builder(old.Logger(old.Logger.WARNING)).create_builder_config()
    config.int8_calibrator = None
    with pytest.raises(AttributeError, match=r"has no attribute 'FP16' \(TensorRT 11.1\)"):
        new.BuilderFlag.FP16  # noqa: B018
    with pytest.raises(AttributeError, match="IInt8EntropyCalibrator2"):
        new.IInt8EntropyCalibrator2  # noqa: B018
    config = new.Builder(new.Logger(new.Logger.WARNING)).create_builder_config()
    with pytest.raises(AttributeError, match=r"'int8_calibrator' \(TensorRT 11.1\)"):
        config.int8_calibrator = None
    with pytest.raises(AttributeError, match="has_implicit_batch_dimension"):
        new.ICudaEngine({"tensors": {}}).has_implicit_batch_dimension  # noqa: B018


def test_backend_uses_only_names_both_versions_have(tmp_path: Path) -> None:
    """The runtime path touches the same TensorRT names on 10.3 and 11.1 (the list the README gives)."""
    seen = {}
    for api_version in API_VERSIONS:
        (tmp_path / api_version).mkdir()
        plan = write_plan(tmp_path / api_version, version=f"{api_version}.0")
        trt = FakeTrt(f"{api_version}.0", api_version)
        with TensorRTBackend(plan, trt=trt, cuda=FakeCuda()) as be:
            be.infer(image_batch())
        seen[api_version] = used_names(trt)
    assert seen["10.3"] == seen["11.1"]
    assert {
        "ICudaEngine.num_io_tensors",
        "IExecutionContext.execute_async_v3",
        "IExecutionContext.set_tensor_address",
        "Runtime.deserialize_cuda_engine",
        "TensorIOMode.INPUT",
    } <= set(seen["10.3"])


@pytest.mark.parametrize("api_version", API_VERSIONS)
def test_jetson_check_env_runs_against_each_version(
    api_version: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """deploy/jetson/check_env.py's TensorRT lines use only names the version has."""
    import importlib.util

    trt = make_tensorrt(api_version, f"{api_version}.0")
    monkeypatch.setitem(sys.modules, "tensorrt", trt)
    path = Path(__file__).resolve().parents[2] / "deploy" / "jetson" / "check_env.py"
    spec = importlib.util.spec_from_file_location("edgedet_check_env", path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    mod.main(["--no-gpu"])
    out = capsys.readouterr().out
    assert f"ok   tensorrt {api_version}.0 from <tensorrt {api_version} stand-in>" in out
    assert used_names(trt) == ["tensorrt.__version__"]


def test_unknown_memory_mode(tmp_path: Path) -> None:
    with pytest.raises(
        BackendError, match="unknown TensorRT memory mode 'unified': choose one of device, mapped"
    ):
        TensorRTBackend(write_plan(tmp_path), memory="unified", trt=FakeTrt(), cuda=FakeCuda())


def test_onnx_builds_once_then_reuses_the_cached_engine(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, api: str
) -> None:
    trt = FakeTrt(f"{api}.0", api)
    monkeypatch.setitem(sys.modules, "tensorrt", trt)  # build_engine imports tensorrt itself
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    onnx_path = tiny_detector(tmp_path / "det.onnx")
    x = image_batch(seed=5)
    messages: list[str] = []
    with TensorRTBackend(onnx_path, trt=trt, cuda=FakeCuda(), progress=messages.append) as be:
        first = be.infer(x)[0].copy()
        engine_path = be.engine_path
    assert trt._builds == 1
    assert engine_path.parent == tmp_path / "cache" / "edgedet" / "engines"
    assert engine_path.name.startswith("det-fp32-") and engine_path.suffix == ".plan"
    assert any(m.startswith(f"building fp32 engine for Orin (SM 8.7), TensorRT {api}.0") for m in messages)
    mtime = os.stat(engine_path).st_mtime_ns
    messages.clear()
    with TensorRTBackend(onnx_path, trt=trt, cuda=FakeCuda(), progress=messages.append) as be:
        np.testing.assert_array_equal(be.infer(x)[0], first)
        assert be.engine_path == engine_path
    assert trt._builds == 1 and messages == [f"engine cache hit: {engine_path}"]
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
