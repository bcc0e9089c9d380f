"""Every CUDA call edgedet makes, in one small module: device facts, pinned host and device buffers, one stream.

Two allocators sit behind one small interface (`CudaApi`):

- cuda-python (`cuda.bindings.runtime`, or `cuda.cudart` in cuda-python < 12.6): NVIDIA's TensorRT samples use it
  and it has Jetson wheels. It imports without a GPU; each call returns an error code, which `_check` turns
  into one readable line (`cudaErrorInsufficientDriver` where no driver is loaded, for example).
- pycuda, when that is what is installed (it has no wheels; it builds against the CUDA toolkit). It works on
  the primary context, the one TensorRT's runtime API uses, so both see the same allocations.

`IOBuffer` pairs a page-locked host array with the device address TensorRT reads or writes. With
`mapped=True` (Jetson: CPU and GPU share DRAM) the host allocation is mapped into the GPU's address space and
the device address points at the same bytes, so the host<->device copies are skipped.
"""

from __future__ import annotations

import ctypes
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from edgedet._optional import require
from edgedet.errors import BackendError, MissingDependencyError

log = logging.getLogger(__name__)

ALLOCATORS = ("auto", "cuda-python", "pycuda")

# Errors that mean "no usable GPU here" rather than a bug: they get the hint about where edgedet can run.
_NO_GPU_ERRORS = {
    "cudaErrorInsufficientDriver",
    "cudaErrorNoDevice",
    "cudaErrorInitializationError",
    "cudaErrorStubLibrary",
    "cudaErrorCallRequiresNewerDriver",
    "cudaErrorSystemDriverMismatch",
}
NO_GPU_HINT = (
    "no usable NVIDIA driver/GPU here: on a Jetson run on the device itself or in a container started with "
    "`--runtime nvidia`; elsewhere use --backend onnxruntime"
)


class CudaError(BackendError):
    """A CUDA runtime call failed. `code` is the runtime's error name (e.g. "cudaErrorInsufficientDriver")."""

    def __init__(self, message: str, code: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class DeviceInfo:
    """The GPU a plan is built for and run on.

    name: as the driver reports it ("Orin", "NVIDIA H100 80GB HBM3"). sm: compute capability (major, minor).
    integrated: the GPU shares DRAM with the CPU (Jetson), so mapped pinned memory can skip copies.
    total_memory_bytes: device memory (on Jetson: the shared DRAM).
    """

    name: str
    sm: tuple[int, int]
    integrated: bool
    total_memory_bytes: int

    @property
    def sm_tag(self) -> str:
        """`sm_87` for compute capability 8.7 (the form engine cache keys and messages use)."""
        return f"sm_{self.sm[0]}{self.sm[1]}"


class CudaApi(Protocol):
    """The handful of CUDA runtime operations the TensorRT backend needs. Pointers and streams are ints."""

    library: str

    def device_info(self) -> DeviceInfo: ...

    def malloc(self, nbytes: int) -> int: ...

    def free(self, ptr: int) -> None: ...

    def host_alloc(self, nbytes: int, mapped: bool) -> int: ...

    def free_host(self, ptr: int) -> None: ...

    def host_device_pointer(self, host_ptr: int) -> int: ...

    def stream_create(self) -> int: ...

    def stream_destroy(self, stream: int) -> None: ...

    def stream_synchronize(self, stream: int) -> None: ...

    def memcpy_htod_async(self, dst: int, src: int, nbytes: int, stream: int) -> None: ...

    def memcpy_dtoh_async(self, dst: int, src: int, nbytes: int, stream: int) -> None: ...

    def event_create(self) -> int:
        """A CUDA event without timing (the cheapest kind): marks a point in a stream's work."""
        ...

    def event_record(self, event: int, stream: int) -> None:
        """Mark `event` after the work queued on `stream` so far."""
        ...

    def event_synchronize(self, event: int) -> None:
        """Block until the work before `event`'s last record has finished."""
        ...

    def event_destroy(self, event: int) -> None: ...


# --------------------------------------------------------------------------------------------- sizing


def tensor_nbytes(shape: Sequence[int], dtype: npt.DTypeLike, name: str = "tensor") -> int:
    """Bytes a tensor of `shape` and `dtype` occupies. A dynamic (-1) or negative dim is a BackendError.

    A zero-size tensor still gets 1 byte so the allocation has a valid address (TensorRT wants one per tensor).
    """
    dims = [int(d) for d in shape]
    if any(d < 0 for d in dims):
        raise BackendError(
            f"{name} has unresolved dynamic dims {dims}: the input shape must be set (set_input_shape) before "
            "buffers are sized; rebuild the engine with a fixed input size or pass a full input shape"
        )
    return max(1, math.prod(dims) * np.dtype(dtype).itemsize)


def host_array(ptr: int, shape: Sequence[int], dtype: npt.DTypeLike) -> npt.NDArray[Any]:
    """A numpy view of `prod(shape) * itemsize` bytes of host memory at `ptr` (no copy; it does not own them)."""
    dt = np.dtype(dtype)
    count = math.prod(int(d) for d in shape)
    raw = (ctypes.c_ubyte * max(1, count * dt.itemsize)).from_address(ptr)
    flat: npt.NDArray[Any] = np.frombuffer(memoryview(raw).cast("B"), dtype=np.uint8)[
        : count * dt.itemsize
    ].view(dt)
    return flat.reshape(tuple(int(d) for d in shape))


@dataclass
class IOBuffer:
    """One engine tensor's memory.

    host: page-locked array of `shape`/`dtype` (what infer() reads results from / writes inputs into).
    device_ptr: the address given to TensorRT (`set_tensor_address`); equals the mapped host memory's device
    alias when `mapped`. nbytes: allocation size in bytes.
    """

    name: str
    shape: tuple[int, ...]
    dtype: np.dtype[Any]
    host: npt.NDArray[Any]
    host_ptr: int
    device_ptr: int
    nbytes: int
    mapped: bool

    @classmethod
    def allocate(
        cls, api: CudaApi, name: str, shape: Sequence[int], dtype: npt.DTypeLike, mapped: bool = False
    ) -> IOBuffer:
        """Page-locked host memory plus device memory (or its mapped alias) for one tensor."""
        dt = np.dtype(dtype)
        nbytes = tensor_nbytes(shape, dt, name)
        host_ptr = api.host_alloc(nbytes, mapped)
        try:
            device_ptr = api.host_device_pointer(host_ptr) if mapped else api.malloc(nbytes)
        except BaseException:
            api.free_host(host_ptr)
            raise
        shp = tuple(int(d) for d in shape)
        return cls(name, shp, dt, host_array(host_ptr, shp, dt), host_ptr, device_ptr, nbytes, mapped)

    def release(self, api: CudaApi) -> None:
        """Free both allocations. The host view must not be used afterwards."""
        if not self.mapped and self.device_ptr:
            api.free(self.device_ptr)
        if self.host_ptr:
            api.free_host(self.host_ptr)
        self.device_ptr = self.host_ptr = 0

    def upload(self, api: CudaApi, stream: int) -> None:
        """Queue host -> device (nothing to do when mapped: the GPU reads the host bytes)."""
        if not self.mapped:
            api.memcpy_htod_async(self.device_ptr, self.host_ptr, self.nbytes, stream)

    def download(self, api: CudaApi, stream: int) -> None:
        """Queue device -> host (nothing to do when mapped)."""
        if not self.mapped:
            api.memcpy_dtoh_async(self.host_ptr, self.device_ptr, self.nbytes, stream)


# --------------------------------------------------------------------------------------------- cuda-python


def _import_cudart() -> Any:
    """`cuda.bindings.runtime` (cuda-python >= 12.6), else the older `cuda.cudart` module."""
    try:
        return require("cuda.bindings.runtime", "TensorRT inference (CUDA memory)")
    except MissingDependencyError:
        try:
            return require("cuda.cudart", "TensorRT inference (CUDA memory)")
        except MissingDependencyError:
            pass
        raise


class CudaPythonApi:
    """CudaApi over cuda-python's runtime bindings. Every call is checked; a failure raises CudaError."""

    library = "cuda-python"

    def __init__(self, cudart: Any | None = None, device: int = 0) -> None:
        self._rt = cudart if cudart is not None else _import_cudart()
        self._device = device
        self._check(self._rt.cudaSetDevice(device), f"cudaSetDevice({device})")

    def _check(self, result: Any, what: str) -> Any:
        """Unpack a cuda-python result tuple `(err, *values)`; raise CudaError unless err is cudaSuccess."""
        if isinstance(result, tuple):
            err, values = result[0], result[1:]
        else:
            err, values = result, ()
        if int(err) != 0:
            code = getattr(err, "name", str(err))
            text = ""
            try:
                ok, raw = self._rt.cudaGetErrorString(err)
                text = raw.decode() if isinstance(raw, bytes) else str(raw)
                if int(ok) != 0:
                    text = ""
            except Exception:  # the error string is a nicety; never mask the real error
                text = ""
            hint = (
                NO_GPU_HINT
                if code in _NO_GPU_ERRORS
                else "check `nvidia-smi` / `tegrastats` and free GPU memory"
            )
            detail = f" ({text})" if text else ""
            raise CudaError(f"CUDA {what} failed: {code}{detail}; {hint}", code)
        if not values:
            return None
        return values[0] if len(values) == 1 else values

    def device_info(self) -> DeviceInfo:
        props = self._check(self._rt.cudaGetDeviceProperties(self._device), "cudaGetDeviceProperties")
        raw = props.name
        name = (
            bytes(raw).split(b"\0", 1)[0].decode(errors="replace") if not isinstance(raw, str) else raw
        ).strip()
        return DeviceInfo(
            name, (int(props.major), int(props.minor)), bool(props.integrated), int(props.totalGlobalMem)
        )

    def malloc(self, nbytes: int) -> int:
        return int(self._check(self._rt.cudaMalloc(nbytes), f"cudaMalloc({nbytes} bytes)"))

    def free(self, ptr: int) -> None:
        self._check(self._rt.cudaFree(ptr), "cudaFree")

    def host_alloc(self, nbytes: int, mapped: bool) -> int:
        flags = self._rt.cudaHostAllocMapped if mapped else self._rt.cudaHostAllocDefault
        return int(self._check(self._rt.cudaHostAlloc(nbytes, flags), f"cudaHostAlloc({nbytes} bytes)"))

    def free_host(self, ptr: int) -> None:
        self._check(self._rt.cudaFreeHost(ptr), "cudaFreeHost")

    def host_device_pointer(self, host_ptr: int) -> int:
        return int(self._check(self._rt.cudaHostGetDevicePointer(host_ptr, 0), "cudaHostGetDevicePointer"))

    def stream_create(self) -> int:
        return int(self._check(self._rt.cudaStreamCreate(), "cudaStreamCreate"))

    def stream_destroy(self, stream: int) -> None:
        self._check(self._rt.cudaStreamDestroy(stream), "cudaStreamDestroy")

    def stream_synchronize(self, stream: int) -> None:
        self._check(self._rt.cudaStreamSynchronize(stream), "cudaStreamSynchronize")

    def memcpy_htod_async(self, dst: int, src: int, nbytes: int, stream: int) -> None:
        kind = self._rt.cudaMemcpyKind.cudaMemcpyHostToDevice
        self._check(self._rt.cudaMemcpyAsync(dst, src, nbytes, kind, stream), "cudaMemcpyAsync(host->device)")

    def memcpy_dtoh_async(self, dst: int, src: int, nbytes: int, stream: int) -> None:
        kind = self._rt.cudaMemcpyKind.cudaMemcpyDeviceToHost
        self._check(self._rt.cudaMemcpyAsync(dst, src, nbytes, kind, stream), "cudaMemcpyAsync(device->host)")

    def event_create(self) -> int:
        flags = self._rt.cudaEventDisableTiming
        return int(self._check(self._rt.cudaEventCreateWithFlags(flags), "cudaEventCreateWithFlags"))

    def event_record(self, event: int, stream: int) -> None:
        self._check(self._rt.cudaEventRecord(event, stream), "cudaEventRecord")

    def event_synchronize(self, event: int) -> None:
        self._check(self._rt.cudaEventSynchronize(event), "cudaEventSynchronize")

    def event_destroy(self, event: int) -> None:
        self._check(self._rt.cudaEventDestroy(event), "cudaEventDestroy")


# --------------------------------------------------------------------------------------------- pycuda


class PyCudaApi:
    """CudaApi over pycuda (driver API) on the device's primary context, which TensorRT shares.

    pycuda hands out objects, not addresses; this keeps them by address so the interface stays ints.
    """

    library = "pycuda"

    def __init__(self, driver: Any | None = None, device: int = 0) -> None:
        self._drv = (
            driver if driver is not None else require("pycuda.driver", "TensorRT inference (CUDA memory)")
        )
        try:
            self._drv.init()
            self._dev = self._drv.Device(device)
            self._ctx = self._dev.retain_primary_context()
            self._ctx.push()
        except Exception as exc:  # pycuda raises its own LogicError/RuntimeError with driver text
            raise CudaError(
                f"pycuda could not open CUDA device {device}: {exc}; {NO_GPU_HINT}", "pycuda"
            ) from exc
        self._device_allocs: dict[int, Any] = {}
        self._host_allocs: dict[int, Any] = {}  # address -> pycuda page-locked ndarray
        self._streams: dict[int, Any] = {}
        self._events: dict[int, Any] = {}

    def device_info(self) -> DeviceInfo:
        attr = self._drv.device_attribute
        major, minor = self._dev.compute_capability()
        integrated = bool(self._dev.get_attribute(attr.INTEGRATED))
        return DeviceInfo(
            str(self._dev.name()), (int(major), int(minor)), integrated, int(self._dev.total_memory())
        )

    def malloc(self, nbytes: int) -> int:
        alloc = self._drv.mem_alloc(nbytes)
        self._device_allocs[int(alloc)] = alloc
        return int(alloc)

    def free(self, ptr: int) -> None:
        self._device_allocs.pop(ptr).free()

    def host_alloc(self, nbytes: int, mapped: bool) -> int:
        flags = self._drv.host_alloc_flags.DEVICEMAP if mapped else 0
        arr: Any = self._drv.pagelocked_empty(nbytes, np.uint8, mem_flags=flags)
        ptr = int(arr.ctypes.data)
        self._host_allocs[ptr] = arr
        return ptr

    def free_host(self, ptr: int) -> None:
        arr = self._host_allocs.pop(ptr)
        arr.base.free()

    def host_device_pointer(self, host_ptr: int) -> int:
        return int(self._host_allocs[host_ptr].base.get_device_pointer())

    def stream_create(self) -> int:
        stream = self._drv.Stream()
        self._streams[int(stream.handle)] = stream
        return int(stream.handle)

    def stream_destroy(self, stream: int) -> None:
        self._streams.pop(stream, None)

    def stream_synchronize(self, stream: int) -> None:
        self._streams[stream].synchronize()

    def memcpy_htod_async(self, dst: int, src: int, nbytes: int, stream: int) -> None:
        self._drv.memcpy_htod_async(dst, self._host_allocs[src][:nbytes], self._streams[stream])

    def memcpy_dtoh_async(self, dst: int, src: int, nbytes: int, stream: int) -> None:
        self._drv.memcpy_dtoh_async(self._host_allocs[dst][:nbytes], src, self._streams[stream])

    def event_create(self) -> int:
        event = self._drv.Event(self._drv.event_flags.DISABLE_TIMING)
        key = id(event)  # pycuda does not expose the CUevent handle; the object is kept by this key
        self._events[key] = event
        return key

    def event_record(self, event: int, stream: int) -> None:
        self._events[event].record(self._streams[stream])

    def event_synchronize(self, event: int) -> None:
        self._events[event].synchronize()

    def event_destroy(self, event: int) -> None:
        self._events.pop(event, None)

    def close(self) -> None:
        """Pop the primary context pushed in __init__."""
        ctx, self._ctx = self._ctx, None
        if ctx is not None:
            ctx.pop()


def load_cuda_api(allocator: str = "auto", device: int = 0) -> CudaApi:
    """The CUDA allocator to use: cuda-python first (the documented choice), pycuda when only it is installed.

    allocator: "auto" | "cuda-python" | "pycuda". MissingDependencyError when none is installed; CudaError when
    one is installed but the driver/GPU is unusable (e.g. cudaErrorInsufficientDriver on a machine without one).
    """
    if allocator not in ALLOCATORS:
        raise BackendError(f"unknown CUDA allocator {allocator!r}: choose one of {', '.join(ALLOCATORS)}")
    if allocator == "pycuda":
        return PyCudaApi(device=device)
    try:
        cudart = _import_cudart()
    except MissingDependencyError:
        if allocator == "cuda-python":
            raise
        try:
            driver = require("pycuda.driver", "TensorRT inference (CUDA memory)")
        except MissingDependencyError:
            raise MissingDependencyError(
                "TensorRT inference needs CUDA memory through cuda-python or pycuda, and neither is installed: "
                "pip install 'edgedet[tensorrt]' (cuda-python matching the device's CUDA, e.g. 'cuda-python>=12.6,<13' "
                "on JetPack 6)"
            ) from None
        return PyCudaApi(driver, device)
    return CudaPythonApi(cudart, device)


__all__ = [
    "ALLOCATORS",
    "NO_GPU_HINT",
    "CudaApi",
    "CudaError",
    "CudaPythonApi",
    "DeviceInfo",
    "IOBuffer",
    "PyCudaApi",
    "host_array",
    "load_cuda_api",
    "tensor_nbytes",
]
