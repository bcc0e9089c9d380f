"""ONNX Runtime backend: the embedded default (CPU everywhere; CUDA / TensorRT execution providers if present)."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from edgedet.backends.base import Backend, BackendConfig
from edgedet.errors import BackendError, DataError, ModelError
from edgedet.spec import OUTPUT_FORMATS, ModelSpec, spec_from_metadata

log = logging.getLogger(__name__)

_PROVIDERS: dict[str, list[str]] = {
    "cpu": ["CPUExecutionProvider"],
    "cuda": ["CUDAExecutionProvider", "CPUExecutionProvider"],
    "tensorrt": ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"],
}


def load_onnx_bytes(path: Path) -> tuple[bytes, dict[str, str]]:
    """Read an ONNX file, drop initializers listed as graph inputs, return (serialized model, metadata).

    Older exporters list weights as graph inputs too; that blocks constant folding in ONNX Runtime and ran
    about 25% slower here, so they are removed (the model's meaning does not change).
    """
    import onnx

    if not path.exists():
        raise ModelError(
            f"model file not found: {path}; pass --model PATH to an .onnx file (or --source demo)"
        )
    if path.is_dir():
        raise ModelError(f"model path {path} is a directory; pass the .onnx file inside it")
    try:
        model = onnx.load(str(path))
    except Exception as exc:  # onnx raises DecodeError, ValueError, OSError... for corrupt files
        raise ModelError(
            f"{path} is not a readable ONNX model ({type(exc).__name__}); the file may be truncated or not ONNX: "
            "re-export it with `edgedet convert` or copy it again"
        ) from exc
    if not model.graph.output or not model.graph.input:
        raise ModelError(f"{path} has no graph inputs/outputs: it is not a usable ONNX model; re-export it")
    init_names = {i.name for i in model.graph.initializer}
    weight_inputs = [i for i in model.graph.input if i.name in init_names]
    if weight_inputs:
        keep = [i for i in model.graph.input if i.name not in init_names]
        del model.graph.input[:]
        model.graph.input.extend(keep)
        log.info("dropped %d initializers listed as graph inputs from %s", len(weight_inputs), path.name)
    meta = {p.key: p.value for p in model.metadata_props}
    return model.SerializeToString(), meta


@dataclass(frozen=True)
class ThreadBudget:
    """ONNX Runtime's CPU threads for one session, and why.

    threads: intra-op threads (the calling thread is one of them, so 1 means no worker pool).
    spinning: whether idle pool threads busy-wait for the next op (fast hand-offs, but each spins on a core).
    cores: cores this process may run on. beside: threads of other pipeline stages running at the same time.
    overridden: threads came from --threads, not from the budget.
    """

    threads: int
    spinning: bool
    cores: int
    beside: int
    overridden: bool = False

    def describe(self) -> str:
        """E.g. "1 thread, spinning off (2 cores, 1 stage thread beside)"; said in the run header."""
        why = (
            "--threads"
            if self.overridden
            else f"{self.cores} cores, {self.beside} stage thread{'s' * (self.beside != 1)} beside"
        )
        return f"{self.threads} thread{'s' * (self.threads != 1)}, spinning {'on' if self.spinning else 'off'} ({why})"


def thread_budget(cores: int, beside: int = 0, requested: int = 0) -> ThreadBudget:
    """Intra-op threads and spinning for a session that shares `cores` with `beside` busy stage threads.

    Threads: `requested` when > 0 (--threads), else the cores left by the stages beside (at least 1).
    Spinning only when the pool and the stages beside fit on the cores: a spinning worker holds its core
    between ops, so with more threads than cores it takes time from capture, tracking, drawing and encoding
    (on a 2-core machine with ONNX Runtime's default pool, inference itself doubled and the detector fell
    far behind). One thread has no pool to spin.
    """
    cores = max(1, int(cores))
    beside = max(0, int(beside))
    threads = int(requested) if requested > 0 else max(1, cores - beside)
    spinning = threads > 1 and threads + beside <= cores
    return ThreadBudget(threads, spinning, cores, beside, overridden=requested > 0)


def available_cores() -> int:
    """Cores this process may run on (its CPU affinity: a container's or taskset's limit, not the machine's)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _dims(shape: Sequence[Any]) -> tuple[int | str | None, ...]:
    return tuple(d if isinstance(d, (int, str)) or d is None else str(d) for d in shape)


class OnnxRuntimeBackend(Backend):
    reuses_outputs = False  # session.run returns new arrays on every call

    def __init__(self, model_path: Path, config: BackendConfig | None = None) -> None:
        import onnxruntime as ort

        super().__init__(model_path, config)
        data, meta = load_onnx_bytes(self.model_path)
        providers = self._providers(ort, self.config.device)
        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # stages_beside: how many pipeline stage threads run while this session infers (the runtime says;
        # None = nothing beside, as in bench and eval).
        beside = getattr(self.config, "stages_beside", None) or 0
        self.threads = thread_budget(available_cores(), beside, self.config.threads)
        if getattr(self.config, "sessions_beside", 0) and self.threads.spinning:
            # sessions taking turns: a spinning idle pool holds the cores the running session needs (measured:
            # yolov5n@640 FP32 at 2 threads, 26.6 ms interleaved with spinning vs 14.3 ms without)
            self.threads = replace(self.threads, spinning=False)
        opts.intra_op_num_threads = self.threads.threads
        opts.inter_op_num_threads = 1  # sequential execution: the inter-op pool would only add idle threads
        spin = "1" if self.threads.spinning else "0"
        opts.add_session_config_entry("session.intra_op.allow_spinning", spin)
        opts.add_session_config_entry("session.inter_op.allow_spinning", spin)
        opts.log_severity_level = 3
        try:
            self._session = ort.InferenceSession(data, sess_options=opts, providers=providers)
        except Exception as exc:  # ORT raises its own Fail/InvalidGraph/NotImplemented types
            first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
            raise ModelError(
                f"ONNX Runtime cannot load {self.model_path.name}: {first}; check the opset/ops or re-export it "
                "with `edgedet convert`"
            ) from exc
        inputs = self._session.get_inputs()
        if len(inputs) != 1:
            raise ModelError(
                f"{self.model_path.name} has {len(inputs)} inputs {[i.name for i in inputs]}; edgedet runs "
                "detectors with one image input"
            )
        self._input = inputs[0]
        self._input_dtype = np.float16 if "float16" in self._input.type else np.float32
        self._outputs = self._session.get_outputs()
        try:
            spec = spec_from_metadata(
                meta,
                self._input.name,
                _dims(self._input.shape),
                self.output_shapes,
                where=self.model_path.name,
            )
        except DataError as exc:
            raise ModelError(str(exc)) from exc
        self.spec = finish_spec(spec, self.output_shapes, self.config, self.model_path.name)
        log.info(
            "loaded %s on %s (format %s), CPU threads: %s",
            self.model_path.name,
            self.providers,
            self.spec.output_format,
            self.threads.describe(),
        )

    @staticmethod
    def _providers(ort: Any, device: str) -> list[str]:
        if device not in _PROVIDERS:
            raise BackendError(
                f"unknown device {device!r} for onnxruntime: choose one of {', '.join(_PROVIDERS)}"
            )
        wanted = _PROVIDERS[device]
        available = ort.get_available_providers()
        if wanted[0] not in available:
            raise BackendError(
                f"--device {device} needs ONNX Runtime's {wanted[0]}, which this onnxruntime build lacks "
                f"(it has {', '.join(available)}): install a GPU build (on Jetson: NVIDIA's onnxruntime-gpu wheel "
                "for JetPack, see deploy/jetson/README.md) or use --device cpu"
            )
        return wanted

    @property
    def description(self) -> str:
        """Name, model and the CPU thread budget, e.g. "OnnxRuntimeBackend(demo.onnx, 1 thread, spinning off
        (2 cores, 1 stage thread beside))": the run header shows it."""
        return f"{type(self).__name__}({self.model_path.name}, {self.threads.describe()})"

    @property
    def providers(self) -> list[str]:
        return list(self._session.get_providers())

    @property
    def output_shapes(self) -> list[tuple[int | str | None, ...]]:
        return [_dims(o.shape) for o in self._outputs]

    def infer(self, tensor: npt.NDArray[np.float32]) -> Sequence[npt.NDArray[np.floating]]:
        if tensor.dtype != self._input_dtype:
            tensor = tensor.astype(self._input_dtype)
        try:
            outs: list[npt.NDArray[np.floating]] = self._session.run(None, {self._input.name: tensor})
        except (
            Exception
        ) as exc:  # ORT's Fail/RuntimeException: a graph that loads but cannot run (corrupt file)
            first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
            raise ModelError(
                f"ONNX Runtime failed to run {self.model_path.name}: {first}; the file may be damaged: "
                "re-export it with `edgedet convert` or copy it again"
            ) from exc
        return outs

    def close(self) -> None:
        # ORT frees the session when the last reference goes; drop ours so a closed backend cannot be used.
        self.__dict__.pop("_session", None)


def finish_spec(
    spec: ModelSpec, output_shapes: list[tuple[int | str | None, ...]], config: BackendConfig, where: str
) -> ModelSpec:
    """Apply user overrides, then check the outputs fit the format and fill in class names when absent."""
    if config.output_format is not None:
        if config.output_format not in OUTPUT_FORMATS:
            raise ModelError(
                f"unknown --format {config.output_format!r}: choose one of {', '.join(OUTPUT_FORMATS)}"
            )
        spec = spec.replace(output_format=config.output_format)
    if config.class_names is not None:
        spec = spec.replace(class_names=tuple(config.class_names))
    nc = _classes_in_outputs(spec.output_format, output_shapes, where)
    if nc is not None:
        if not spec.class_names:
            spec = spec.replace(class_names=tuple(f"class{i}" for i in range(nc)))
        elif len(spec.class_names) != nc:
            raise ModelError(
                f"{where}: the model outputs {nc} classes but {len(spec.class_names)} class names were given; "
                "pass a --names file with one name per class"
            )
    return spec


def _classes_in_outputs(fmt: str, shapes: list[tuple[int | str | None, ...]], where: str) -> int | None:
    """Number of classes the outputs imply for `fmt` (None when it cannot be told), or ModelError on a misfit."""
    seen = ", ".join(str(list(s)) for s in shapes)
    if fmt == "end2end":
        ok = (len(shapes) == 1 and len(shapes[0]) == 3 and shapes[0][2] in (6, "6")) or len(shapes) == 3
        if not ok:
            raise ModelError(
                f"{where}: outputs {seen} do not fit the end2end format ([B, K, 6] or boxes/scores/labels); "
                "pass --format yolov5 or yolov8"
            )
        return None
    if len(shapes) != 1 or len(shapes[0]) != 3:
        raise ModelError(
            f"{where}: outputs {seen} fit no known head (expected [B, N, 5+nc] yolov5, [B, 4+nc, N] yolov8 or "
            "[B, K, 6] end2end); pass --format or check the export"
        )
    shape = shapes[0]
    if fmt == "yolov5":
        d = shape[2]
        if isinstance(d, int):
            if d < 6:
                raise ModelError(
                    f"{where}: output {list(shape)} is too narrow for yolov5 ([B, N, 5+nc]); try --format"
                )
            return d - 5
    if fmt == "yolov8":
        d = shape[1]
        if isinstance(d, int):
            if d < 5:
                raise ModelError(
                    f"{where}: output {list(shape)} is too narrow for yolov8 ([B, 4+nc, N]); try --format"
                )
            return d - 4
    return None
