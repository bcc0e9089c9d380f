"""cuda_mem: buffer sizing, host views over raw memory, copies, and the real cuda-python error path.

There is no GPU or driver on the development machines. `FakeCuda` stands in for the driver only: "device"
memory is ordinary host memory and copies are real `memmove`s, so the byte plumbing (sizes, addresses,
directions, the mapped path that skips copies) is checked for real. The cuda-python tests call the installed
cuda-python for real and check the error it gives without a driver.
"""

from __future__ import annotations

import ctypes
from typing import Any

import numpy as np
import pytest

from edgedet.backends.cuda_mem import (
    NO_GPU_HINT,
    CudaError,
    CudaPythonApi,
    DeviceInfo,
    IOBuffer,
    host_array,
    load_cuda_api,
    tensor_nbytes,
)
from edgedet.errors import BackendError


class FakeCuda:
    """CudaApi whose device memory is host memory (ctypes buffers) and whose copies are memmoves."""

    library = "fake"

    def __init__(self, integrated: bool = True, name: str = "Orin", sm: tuple[int, int] = (8, 7)) -> None:
        self.info = DeviceInfo(name, sm, integrated, 8 << 30)
        self.blocks: dict[int, Any] = {}  # address -> ctypes buffer (keeps it alive)
        self.kinds: dict[int, str] = {}  # address -> "device" | "host" | "host-mapped"
        self.calls: list[tuple[Any, ...]] = []
        self.streams: set[int] = set()
        self.events: set[int] = set()
        self._next_stream = 0x51
        self._next_event = 0xE0

    def _alloc(self, nbytes: int, kind: str) -> int:
        buf = (ctypes.c_ubyte * nbytes)()
        ptr = ctypes.addressof(buf)
        self.blocks[ptr] = buf
        self.kinds[ptr] = kind
        return ptr

    def device_info(self) -> DeviceInfo:
        return self.info

    def malloc(self, nbytes: int) -> int:
        self.calls.append(("malloc", nbytes))
        return self._alloc(nbytes, "device")

    def free(self, ptr: int) -> None:
        assert self.kinds.pop(ptr) == "device", "free() given a pointer that is not device memory"
        del self.blocks[ptr]
        self.calls.append(("free", ptr))

    def host_alloc(self, nbytes: int, mapped: bool) -> int:
        self.calls.append(("host_alloc", nbytes, mapped))
        return self._alloc(nbytes, "host-mapped" if mapped else "host")

    def free_host(self, ptr: int) -> None:
        assert self.kinds.pop(ptr).startswith("host"), "free_host() given a pointer that is not host memory"
        del self.blocks[ptr]
        self.calls.append(("free_host", ptr))

    def host_device_pointer(self, host_ptr: int) -> int:
        assert self.kinds[host_ptr] == "host-mapped", "device pointer asked for unmapped host memory"
        return host_ptr  # unified addressing: the alias is the same address

    def stream_create(self) -> int:
        self._next_stream += 1
        self.streams.add(self._next_stream)
        return self._next_stream

    def stream_destroy(self, stream: int) -> None:
        self.streams.remove(stream)

    def stream_synchronize(self, stream: int) -> None:
        assert stream in self.streams
        self.calls.append(("sync", stream))

    def _copy(
        self, what: str, dst: int, src: int, nbytes: int, stream: int, dst_kind: str, src_kind: str
    ) -> None:
        assert stream in self.streams
        assert self.kinds[dst].startswith(dst_kind) and self.kinds[src].startswith(src_kind), what
        assert nbytes <= len(self.blocks[dst]) and nbytes <= len(self.blocks[src]), (
            f"{what} overruns a buffer"
        )
        ctypes.memmove(dst, src, nbytes)
        self.calls.append((what, nbytes, stream))

    def memcpy_htod_async(self, dst: int, src: int, nbytes: int, stream: int) -> None:
        self._copy("htod", dst, src, nbytes, stream, "device", "host")

    def memcpy_dtoh_async(self, dst: int, src: int, nbytes: int, stream: int) -> None:
        self._copy("dtoh", dst, src, nbytes, stream, "host", "device")

    # Copies and kernels run when queued (this "device" is the host), so an event is complete once recorded.
    def event_create(self) -> int:
        self._next_event += 1
        self.events.add(self._next_event)
        return self._next_event

    def event_record(self, event: int, stream: int) -> None:
        assert event in self.events and stream in self.streams
        self.calls.append(("record", event, stream))

    def event_synchronize(self, event: int) -> None:
        assert event in self.events
        self.calls.append(("wait", event))

    def event_destroy(self, event: int) -> None:
        self.events.remove(event)

    def live(self) -> int:
        return len(self.blocks)


@pytest.mark.parametrize(
    ("shape", "dtype", "nbytes"),
    [
        ((1, 3, 640, 640), np.float32, 4_915_200),
        ((1, 3, 640, 640), np.float16, 2_457_600),
        ((1, 25200, 85), np.float32, 8_568_000),
        ((1, 84, 8400), np.float16, 1_411_200),
        ((1, 100, 6), np.int32, 2400),
        ((1, 100), np.int64, 800),
        ((4, 3, 32, 32), np.uint8, 12_288),
        ((1, 0, 6), np.float32, 1),  # empty output still gets a valid address
        ((), np.float32, 4),  # scalar
    ],
)
def test_tensor_nbytes(shape: tuple[int, ...], dtype: Any, nbytes: int) -> None:
    assert tensor_nbytes(shape, dtype) == nbytes
    if shape and 0 not in shape:
        assert nbytes == np.zeros(shape, dtype).nbytes


def test_tensor_nbytes_refuses_dynamic_dims() -> None:
    with pytest.raises(BackendError, match=r"images has unresolved dynamic dims \[-1, 3, 640, 640\]"):
        tensor_nbytes((-1, 3, 640, 640), np.float32, "images")


def test_host_array_views_raw_memory_without_copying() -> None:
    raw = (ctypes.c_ubyte * 24)()
    view = host_array(ctypes.addressof(raw), (2, 3), np.float32)
    assert view.shape == (2, 3) and view.dtype == np.float32
    view[...] = np.arange(6, dtype=np.float32).reshape(2, 3)
    again = np.frombuffer(bytes(raw), dtype=np.float32)
    np.testing.assert_array_equal(again, np.arange(6, dtype=np.float32))


@pytest.mark.parametrize("mapped", [False, True])
def test_iobuffer_round_trip_and_release(mapped: bool) -> None:
    cuda = FakeCuda()
    stream = cuda.stream_create()
    buf = IOBuffer.allocate(cuda, "images", (1, 3, 4, 5), np.float16, mapped=mapped)
    assert buf.nbytes == 120 and buf.host.shape == (1, 3, 4, 5) and buf.host.dtype == np.float16
    assert (buf.device_ptr == buf.host_ptr) is mapped
    data = np.random.default_rng(0).standard_normal((1, 3, 4, 5)).astype(np.float16)
    buf.host[...] = data
    buf.upload(cuda, stream)
    # What the GPU would read at device_ptr:
    np.testing.assert_array_equal(host_array(buf.device_ptr, buf.shape, buf.dtype), data)
    # The GPU writes a result; download brings it back to the host view.
    host_array(buf.device_ptr, buf.shape, buf.dtype)[...] = data * 2
    buf.download(cuda, stream)
    np.testing.assert_array_equal(buf.host, data * 2)
    copies = [c[0] for c in cuda.calls if c[0] in ("htod", "dtoh")]
    assert copies == ([] if mapped else ["htod", "dtoh"])
    assert cuda.live() == (1 if mapped else 2)
    buf.release(cuda)
    assert cuda.live() == 0 and buf.device_ptr == 0 and buf.host_ptr == 0


def test_iobuffer_frees_host_memory_when_device_alloc_fails() -> None:
    class NoDeviceMemory(FakeCuda):
        def malloc(self, nbytes: int) -> int:
            raise CudaError("CUDA cudaMalloc failed: cudaErrorMemoryAllocation", "cudaErrorMemoryAllocation")

    cuda = NoDeviceMemory()
    with pytest.raises(CudaError):
        IOBuffer.allocate(cuda, "out", (1, 100, 6), np.float32)
    assert cuda.live() == 0


def test_device_info_sm_tag() -> None:
    assert DeviceInfo("Orin", (8, 7), True, 1).sm_tag == "sm_87"
    assert DeviceInfo("NVIDIA H100", (9, 0), False, 1).sm_tag == "sm_90"


# ----------------------------------------------------------------------------- real cuda-python, no driver


def _cudart() -> Any:
    try:
        from cuda.bindings import runtime
    except ImportError:
        pytest.skip("cuda-python is not installed")
    err = runtime.cudaGetDeviceCount()[0]
    if int(err) == 0:
        pytest.skip("a CUDA driver is present here; this test covers the no-driver error path")
    return runtime


def test_cuda_python_without_driver_gives_one_clear_line() -> None:
    runtime = _cudart()
    with pytest.raises(CudaError) as info:
        CudaPythonApi(runtime)
    msg = str(info.value)
    assert "\n" not in msg
    assert msg.startswith("CUDA cudaSetDevice(0) failed: cudaError")
    assert info.value.code in {"cudaErrorInsufficientDriver", "cudaErrorNoDevice", "cudaErrorStubLibrary"}
    assert NO_GPU_HINT in msg and "--backend onnxruntime" in msg


def test_load_cuda_api_prefers_cuda_python_and_reports_the_driver_error() -> None:
    _cudart()
    with pytest.raises(CudaError, match="cudaSetDevice"):
        load_cuda_api("auto")
    with pytest.raises(CudaError, match="cudaSetDevice"):
        load_cuda_api("cuda-python")


def test_cuda_python_check_unpacks_results() -> None:
    runtime = _cudart()
    api = object.__new__(CudaPythonApi)
    api._rt = runtime
    ok = runtime.cudaError_t.cudaSuccess
    assert api._check((ok,), "x") is None
    assert api._check((ok, 7), "x") == 7
    assert api._check((ok, 1, 2), "x") == (1, 2)
    with pytest.raises(CudaError) as info:
        api._check((runtime.cudaError_t.cudaErrorMemoryAllocation, None), "cudaMalloc(10 bytes)")
    assert info.value.code == "cudaErrorMemoryAllocation"
    assert "cudaMalloc(10 bytes) failed: cudaErrorMemoryAllocation (out of memory)" in str(info.value)
    assert NO_GPU_HINT not in str(info.value)


def test_load_cuda_api_rejects_unknown_allocator() -> None:
    with pytest.raises(
        BackendError, match="unknown CUDA allocator 'cupy': choose one of auto, cuda-python, pycuda"
    ):
        load_cuda_api("cupy")


def test_pycuda_absent_is_a_missing_dependency() -> None:
    from edgedet.errors import MissingDependencyError

    try:
        import pycuda  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip("pycuda is installed here")
    with pytest.raises(MissingDependencyError, match="pycuda"):
        load_cuda_api("pycuda")
