"""TensorRT backend: a serialized plan (+ its JSON sidecar) run with the TensorRT 10 tensor-name API.

`TensorRTBackend(path, config)` takes either
- an engine (`.plan` / `.engine`) with the JSON sidecar `<plan>.json` that `edgedet convert --engine` writes, or
- an `.onnx` file: the engine is built once on this device by `edgedet.backends.engine_build` (minutes on a
  Jetson, progress logged), cached under ~/.cache/edgedet/engines/, and reused on the next run.

A plan only runs on the TensorRT version and GPU that built it; the sidecar records both, and a mismatch is
refused before TensorRT sees the bytes, with a message naming both sides and the rebuild command.

Memory (all CUDA calls live in `cuda_mem`): one page-locked host buffer and one device buffer per I/O tensor,
one CUDA stream; `infer` queues host->device copies, `execute_async_v3`, device->host copies, then synchronises
the stream before returning, so a caller timing `infer` measures the whole inference. The pipelined runtime
uses `submit`/`collect` instead: two buffer sets ("slots", the second made on first use), each with a CUDA
event recorded after its copies; `submit` queues one slot's work and returns at once, `collect` waits on that
slot's event, so the GPU runs frame N while the host prepares N+1. With `memory="mapped"`
(Jetson: the GPU shares DRAM) the pinned host buffers are mapped into the GPU address space and the copies are
skipped.

Only names that exist in TensorRT 10.x and 11.x are used: `num_io_tensors`, `get_tensor_name/mode/shape/dtype`,
`set_input_shape`, `set_tensor_address`, `execute_async_v3`, `deserialize_cuda_engine`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from edgedet.backends.base import Backend, BackendConfig
from edgedet.backends.cuda_mem import CudaApi, DeviceInfo, IOBuffer, load_cuda_api
from edgedet.errors import BackendError, MissingDependencyError, ModelError
from edgedet.spec import ModelSpec

log = logging.getLogger(__name__)

MEMORY_MODES = ("device", "mapped")
TENSORRT_MISSING = (
    "--backend tensorrt needs NVIDIA TensorRT's Python module, which is not installed: on a Jetson it comes with "
    "JetPack (sudo apt install python3-libnvinfer; a venv must be made with --system-site-packages to see it); "
    "meanwhile run the ONNX model with --backend onnxruntime"
)

# TensorRT DataType name -> numpy dtype. BF16 and FP8/FP4 have no numpy dtype: such I/O tensors are refused.
_NUMPY_DTYPES: dict[str, np.dtype[Any]] = {
    "FLOAT": np.dtype(np.float32),
    "HALF": np.dtype(np.float16),
    "INT8": np.dtype(np.int8),
    "INT32": np.dtype(np.int32),
    "INT64": np.dtype(np.int64),
    "BOOL": np.dtype(np.bool_),
    "UINT8": np.dtype(np.uint8),
}


def require_tensorrt() -> Any:
    """The `tensorrt` module, or MissingDependencyError in one line naming JetPack's package and the fallback."""
    try:
        import tensorrt
    except ImportError as exc:
        raise MissingDependencyError(TENSORRT_MISSING) from exc
    return tensorrt


def numpy_dtype(trt_dtype: Any, tensor: str = "tensor") -> np.dtype[Any]:
    """numpy dtype for a `tensorrt.DataType`; BackendError for types numpy cannot hold (BF16, FP8, INT4...)."""
    name = getattr(trt_dtype, "name", str(trt_dtype)).split(".")[-1].upper()
    if name not in _NUMPY_DTYPES:
        raise BackendError(
            f"engine tensor {tensor!r} has type {name}, which numpy cannot hold: export the model with "
            "float32/float16 inputs and outputs (keep BF16/FP8 inside the network)"
        )
    return _NUMPY_DTYPES[name]


def gpu_info_of(device: DeviceInfo) -> Any:
    """build_engine's GpuInfo for a device (the conversion lives there, beside the cache key it feeds)."""
    from edgedet.backends.engine_build import gpu_info_of as convert

    return convert(device)


def find_sidecar(engine_path: Path) -> Path | None:
    """The plan's JSON sidecar (`<plan>.json`, as build_engine writes it), or None when there is none."""
    from edgedet.backends.engine_build import sidecar_path

    side = sidecar_path(engine_path)
    return side if side.is_file() else None


def engine_for_onnx(
    onnx_path: Path, device: DeviceInfo, progress: Callable[[str], None] | None = None
) -> Path:
    """Build (first run) or reuse (later runs) the cached engine for `onnx_path` on this device.

    Delegates to `edgedet.backends.engine_build.build_engine`, which owns the cache key (TensorRT version, GPU,
    ONNX sha256, precision, input shape), the cache folder (~/.cache/edgedet/engines/) and the sidecar.
    progress(message) is called at each build phase (the CLI prints these; building takes minutes on a Jetson).
    """
    from edgedet.backends.engine_build import build_engine

    log.info("TensorRT engine for %s: reusing the cached one or building it on this device", onnx_path.name)
    result = build_engine(onnx_path, progress=progress, gpu=gpu_info_of(device))
    return Path(result.plan)


def _dims(shape: Any) -> tuple[int, ...]:
    return tuple(int(d) for d in shape)


@dataclass
class _Slot:
    """One set of I/O buffers for `submit`/`collect`, with the CUDA event marking the end of its work."""

    buffers: dict[str, IOBuffer]
    event: int
    busy: bool = False  # submitted and not yet collected


class TensorRTBackend(Backend):
    """A TensorRT plan with pinned I/O buffers and one CUDA stream. Use as a context manager.

    `infer` runs one batch and waits; `submit`/`collect` keep two in flight (see the module docstring).

    model_path: `.engine`/`.plan` (+ JSON sidecar) or `.onnx` (engine built and cached on first use).
    memory: "device" (pinned host + device buffers, async copies) or "mapped" (zero-copy mapped pinned memory;
    for Jetson, where it skips both copies). Also read from `config.trt_memory` when that field exists.
    allocator: "auto" | "cuda-python" | "pycuda" (see cuda_mem.load_cuda_api).
    progress: called with a message at each engine-build phase when `model_path` is an ONNX.
    trt / cuda: an already imported tensorrt module / CudaApi (None: import / load them).
    """

    max_in_flight = 2

    def __init__(
        self,
        model_path: Path,
        config: BackendConfig | None = None,
        *,
        memory: str | None = None,
        allocator: str = "auto",
        progress: Callable[[str], None] | None = None,
        trt: Any | None = None,
        cuda: CudaApi | None = None,
    ) -> None:
        self.model_path = Path(model_path)
        self.config = config or BackendConfig()
        self._buffers: dict[str, IOBuffer] = {}
        self._slots: list[_Slot] = []  # submit/collect's two buffer sets; the first is self._buffers
        self._next_slot = 0
        self._bound: dict[str, IOBuffer] | None = None  # the buffer set whose addresses the context holds
        self._stream = 0
        self._context: Any = None
        self._engine: Any = None
        self._closed = False
        memory = memory or str(getattr(self.config, "trt_memory", None) or "device")
        if memory not in MEMORY_MODES:
            raise BackendError(
                f"unknown TensorRT memory mode {memory!r}: choose one of {', '.join(MEMORY_MODES)}"
            )
        self.memory = memory
        self._trt = trt if trt is not None else require_tensorrt()
        if not self.model_path.exists():
            raise ModelError(
                f"model file not found: {self.model_path}; pass --model PATH to an .engine or .onnx file"
            )
        self._cuda = cuda if cuda is not None else load_cuda_api(allocator)
        self.device = self._cuda.device_info()
        if self.memory == "mapped" and not self.device.integrated:
            log.warning(
                "--trt-memory mapped on %s (a discrete GPU): every GPU access crosses PCIe; 'device' is faster there",
                self.device.name,
            )
        onnx_source: Path | None = None
        if self.model_path.suffix.lower() == ".onnx":
            onnx_source = self.model_path
            self.engine_path = engine_for_onnx(self.model_path, self.device, progress)
        else:
            self.engine_path = self.model_path
        self._sidecar_spec: ModelSpec | None = None
        self.sidecar: dict[str, Any] | None = None
        if find_sidecar(self.engine_path) is None:
            # A plan from trtexec or another tool: TensorRT itself will refuse a foreign version/GPU on load.
            log.warning(
                "%s has no JSON sidecar: its TensorRT version and GPU cannot be checked before loading, and the model "
                "spec falls back to defaults (pass --format/--names)",
                self.engine_path.name,
            )
        else:
            from edgedet.backends.engine_build import check_engine, read_sidecar

            # Refuses a plan from another TensorRT version or GPU, naming both and the rebuild command.
            self._sidecar_spec = check_engine(
                self.engine_path, str(self._trt.__version__), gpu_info_of(self.device)
            )
            self.sidecar = read_sidecar(self.engine_path)
        try:
            self._load_engine()
            self.spec = self._make_spec(onnx_source)
            self._allocate(self._input_shape_for(None))
        except BaseException:
            self.close()
            raise
        log.info(
            "loaded %s with TensorRT %s on %s (%s, memory=%s)",
            self.engine_path.name,
            self._trt.__version__,
            self.device.name,
            self.device.sm_tag,
            self.memory,
        )

    # ------------------------------------------------------------------ loading

    def _load_engine(self) -> None:
        trt = self._trt
        try:
            data = self.engine_path.read_bytes()
        except OSError as exc:
            raise ModelError(f"cannot read engine {self.engine_path}: {exc.strerror}") from exc
        self._logger = trt.Logger(trt.Logger.WARNING)
        self._runtime = trt.Runtime(self._logger)
        engine = self._runtime.deserialize_cuda_engine(data)
        if engine is None:
            key = (self.sidecar or {}).get("key", {})
            built = (
                f"its sidecar says TensorRT {key.get('tensorrt_version', '?')} on {key.get('gpu_name', '?')}"
                if key
                else "it has no sidecar saying what built it"
            )
            onnx = (self.sidecar or {}).get("onnx_path", f"{self.engine_path.stem}.onnx")
            raise BackendError(
                f"TensorRT {trt.__version__} could not deserialize {self.engine_path.name} on {self.device.name} "
                f"({self.device.sm_tag}); {built}: the file is corrupt or from another TensorRT/GPU; rebuild it "
                f"on this device: edgedet convert {onnx} --engine"
            )
        self._engine = engine
        self._context = engine.create_execution_context()
        if self._context is None:
            raise BackendError(
                f"TensorRT could not create an execution context for {self.engine_path.name} (out of GPU memory?); "
                "close other GPU programs or rebuild with a smaller workspace"
            )
        inputs: list[str] = []
        outputs: list[str] = []
        for i in range(engine.num_io_tensors):
            name = engine.get_tensor_name(i)
            mode = engine.get_tensor_mode(name)
            (inputs if mode == trt.TensorIOMode.INPUT else outputs).append(name)
        if len(inputs) != 1:
            raise ModelError(
                f"{self.engine_path.name} has {len(inputs)} inputs {inputs}; edgedet runs detectors with one image input"
            )
        if not outputs:
            raise ModelError(
                f"{self.engine_path.name} has no outputs; rebuild the engine from the detector's ONNX"
            )
        self._input_name = inputs[0]
        self._output_names = outputs
        self._dtypes = {n: numpy_dtype(engine.get_tensor_dtype(n), n) for n in (*inputs, *outputs)}
        self._declared = {n: _dims(engine.get_tensor_shape(n)) for n in (*inputs, *outputs)}

    def _make_spec(self, onnx_source: Path | None) -> ModelSpec:
        from edgedet.backends.onnxruntime import finish_spec

        in_shape = self._declared[self._input_name]
        if self._sidecar_spec is not None:
            spec = self._sidecar_spec.replace(input_name=self._input_name)
        elif onnx_source is not None:
            spec = _spec_from_onnx(onnx_source, self._input_name, in_shape, self.output_shapes)
        else:
            from edgedet.spec import spec_from_metadata

            spec = spec_from_metadata(
                {}, self._input_name, in_shape, self.output_shapes, where=self.engine_path.name
            )
        return finish_spec(spec, self.output_shapes, self.config, self.engine_path.name)

    def _input_shape_for(self, tensor_shape: tuple[int, ...] | None) -> tuple[int, ...]:
        """Concrete input shape: the engine's, with a dynamic batch/size filled from the tensor or the spec."""
        declared = self._declared[self._input_name]
        if tensor_shape is not None:
            if len(tensor_shape) != len(declared) or any(
                d >= 0 and d != t for d, t in zip(declared, tensor_shape, strict=True)
            ):
                raise BackendError(
                    f"input shape {list(tensor_shape)} does not fit engine input {self._input_name!r} "
                    f"{list(declared)}: preprocess to the engine's size (letterbox to {list(self.spec.input_hw)})"
                )
            return tensor_shape
        if all(d >= 0 for d in declared):
            return declared
        h, w = self.spec.input_hw
        fill = [max(1, self.spec.batch), declared[1] if declared[1] >= 0 else 3, h, w]
        return tuple(d if d >= 0 else fill[i] if i < 4 else 1 for i, d in enumerate(declared))

    def _allocate(self, input_shape: tuple[int, ...]) -> None:
        """Set the input shape, size every I/O tensor from its resolved shape and dtype, bind the addresses."""
        self._free_buffers()
        ctx = self._context
        if any(d < 0 for d in self._declared[self._input_name]):
            if not ctx.set_input_shape(self._input_name, input_shape):
                raise BackendError(
                    f"engine {self.engine_path.name} rejects input shape {list(input_shape)} (outside its optimization "
                    "profile); rebuild the engine with a profile that covers it"
                )
        mapped = self.memory == "mapped"
        if not self._stream:
            self._stream = self._cuda.stream_create()
        for name in (self._input_name, *self._output_names):
            shape = input_shape if name == self._input_name else _dims(ctx.get_tensor_shape(name))
            self._buffers[name] = IOBuffer.allocate(
                self._cuda, name, shape, self._dtypes[name], mapped=mapped
            )
        self._bind(self._buffers)

    def _bind(self, buffers: dict[str, IOBuffer]) -> None:
        """Give the context `buffers`' addresses (TensorRT reads them when work is enqueued, so each enqueue may
        use another set)."""
        if self._bound is buffers:
            return
        for name, buf in buffers.items():
            if not self._context.set_tensor_address(name, buf.device_ptr):
                raise BackendError(f"TensorRT refused the address for tensor {name!r} ({buf.nbytes} bytes)")
        self._bound = buffers

    def _ensure_slots(self) -> None:
        """Make the two slots on first use: the first reuses `infer`'s buffers, the second gets its own."""
        if self._slots:
            return
        second = {
            name: IOBuffer.allocate(self._cuda, name, buf.shape, buf.dtype, mapped=buf.mapped)
            for name, buf in self._buffers.items()
        }
        self._slots = [_Slot(self._buffers, self._cuda.event_create())]
        self._slots.append(_Slot(second, self._cuda.event_create()))
        self._next_slot = 0

    # ------------------------------------------------------------------ Backend API

    @property
    def output_shapes(self) -> list[tuple[int | str | None, ...]]:
        return [tuple(None if d < 0 else d for d in self._declared[n]) for n in self._output_names]

    @property
    def input_dtype(self) -> np.dtype[Any]:
        return self._dtypes[self._input_name]

    @property
    def buffers(self) -> Mapping[str, IOBuffer]:
        """The current I/O buffers by tensor name (sizes, addresses, host views)."""
        return dict(self._buffers)

    def _check_open(self) -> None:
        if self._closed:
            raise BackendError(f"{self.description} is closed; open the backend again")

    def _fit_input(self, tensor: npt.NDArray[Any]) -> None:
        """Resize the buffers when the batch shape changes (dynamic batch); never with work in flight."""
        shape = tuple(int(d) for d in tensor.shape)
        if shape != self._buffers[self._input_name].shape:
            if any(s.busy for s in self._slots):
                raise BackendError(
                    f"{self.description}: the input shape changed with inference in flight; collect() first"
                )
            self._allocate(self._input_shape_for(shape))

    def _enqueue(self, buffers: dict[str, IOBuffer], tensor: npt.NDArray[Any]) -> None:
        """Queue on the stream: input copy, execute_async_v3 on `buffers`, output copies."""
        inp = buffers[self._input_name]
        np.copyto(inp.host, tensor, casting="same_kind" if tensor.dtype.kind == inp.dtype.kind else "unsafe")
        api, stream = self._cuda, self._stream
        inp.upload(api, stream)
        self._bind(buffers)
        if not self._context.execute_async_v3(stream):
            raise BackendError(
                f"TensorRT execute_async_v3 failed for {self.engine_path.name}; run with --debug for TensorRT's log"
            )
        for name in self._output_names:
            buffers[name].download(api, stream)

    def infer(self, tensor: npt.NDArray[np.float32]) -> Sequence[npt.NDArray[np.floating]]:
        """Run one batch. tensor: (B, 3, H, W) as the spec says (float32; cast to the engine's input dtype).

        Returns the outputs in engine order as the backend's pinned host arrays (reused next call: copy what
        you keep). The stream is synchronised before returning. Not while `submit`ted work is uncollected.
        """
        self._check_open()
        if any(s.busy for s in self._slots):
            raise BackendError(
                f"{self.description}: infer() with submitted work uncollected; collect() first"
            )
        self._fit_input(tensor)
        self._enqueue(self._buffers, tensor)
        self._cuda.stream_synchronize(self._stream)
        return [self._buffers[n].host for n in self._output_names]

    def submit(self, tensor: npt.NDArray[np.float32]) -> Any:
        """Queue one batch on the next free slot and return at once (the tensor is copied before returning).

        Up to `max_in_flight` (2) submits may be outstanding; collect them in submit order.
        """
        self._check_open()
        self._fit_input(tensor)
        self._ensure_slots()
        slot = self._slots[self._next_slot]
        if slot.busy:
            raise BackendError(
                f"{self.description}: more than {self.max_in_flight} inferences submitted; collect() the oldest first"
            )
        self._enqueue(slot.buffers, tensor)
        self._cuda.event_record(slot.event, self._stream)
        slot.busy = True
        self._next_slot = (self._next_slot + 1) % len(self._slots)
        return slot

    def collect(self, handle: Any) -> Sequence[npt.NDArray[np.floating]]:
        """Wait for the slot `submit` returned and give its outputs (pinned host arrays, valid until that slot
        is submitted again, two submits later)."""
        self._check_open()
        slot: _Slot = handle
        if not slot.busy:
            raise BackendError(f"{self.description}: collect() of a result that was already collected")
        self._cuda.event_synchronize(slot.event)
        slot.busy = False
        return [slot.buffers[n].host for n in self._output_names]

    def _free_buffers(self) -> None:
        """Free every buffer and the slots' events (the stream must be idle)."""
        for slot in self._slots:
            self._cuda.event_destroy(slot.event)
            if slot.buffers is not self._buffers:
                for buf in slot.buffers.values():
                    buf.release(self._cuda)
        self._slots = []
        for buf in self._buffers.values():
            buf.release(self._cuda)
        self._buffers = {}
        self._bound = None

    def close(self) -> None:
        """Free buffers and the stream, drop the context and engine. Safe to call twice."""
        if self._closed:
            return
        self._closed = True
        try:
            if self._stream:
                self._cuda.stream_synchronize(self._stream)
        finally:
            self._free_buffers()
            if self._stream:
                self._cuda.stream_destroy(self._stream)
                self._stream = 0
            # Context before engine before runtime: TensorRT requires that destruction order.
            self._context = None
            self._engine = None
            self.__dict__.pop("_runtime", None)


def _spec_from_onnx(
    onnx_path: Path, input_name: str, in_shape: tuple[int, ...], outputs: list[tuple[int | str | None, ...]]
) -> ModelSpec:
    """The spec stored in the source ONNX's metadata (for an engine just built from it without a sidecar spec)."""
    import onnx

    from edgedet.spec import spec_from_metadata

    model = onnx.load(str(onnx_path), load_external_data=False)
    meta = {p.key: p.value for p in model.metadata_props}
    dims: list[int | str | None] = [None if d < 0 else d for d in in_shape]
    return spec_from_metadata(meta, input_name, dims, outputs, where=onnx_path.name)


__all__ = [
    "MEMORY_MODES",
    "TENSORRT_MISSING",
    "TensorRTBackend",
    "engine_for_onnx",
    "find_sidecar",
    "gpu_info_of",
    "numpy_dtype",
    "require_tensorrt",
]
