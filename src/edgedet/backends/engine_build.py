"""TensorRT engine from a (FP32 / FP16 / INT8 Q/DQ) ONNX, built on the device that runs it, cached by key.

TensorRT 10.x API, using only names that TensorRT 11 keeps: strongly typed networks (precision comes from the
ONNX: FP16 weights, or Q/DQ nodes for INT8), `build_serialized_network`, `set_memory_pool_limit`, tensors by
name. A timing cache per (TensorRT version, GPU) makes rebuilds fast.

An engine is only valid for the TensorRT version and GPU that built it, so the cache key is
sha256(TensorRT version, GPU name, SM, ONNX sha256, precision, input shape). The plan file stays a plain
TensorRT plan; everything else (spec, key fields, versions) goes in a JSON sidecar `<plan>.json`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from edgedet.backends.trt_onnx_check import require_tensorrt_compatible
from edgedet.errors import BackendError, ConfigError, DataError, MissingDependencyError, ModelError
from edgedet.spec import ModelSpec, sha256_file

log = logging.getLogger(__name__)

SIDECAR_VERSION = 1
DEFAULT_WORKSPACE_GB = 2.0

ProgressFn = Callable[[str], None]


def default_cache_dir() -> Path:
    """~/.cache/edgedet/engines (XDG_CACHE_HOME honoured)."""
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "edgedet" / "engines"


@dataclass(frozen=True)
class GpuInfo:
    """name: as CUDA reports it ("Orin", "NVIDIA H100 80GB HBM3"). sm: compute capability "major.minor"."""

    name: str
    sm: str


@dataclass(frozen=True)
class EngineKey:
    """Everything an engine's validity depends on. input_shape: e.g. "1x3x640x640" or "1-4-8x3x640x640"
    (min-opt-max batch for a dynamic batch)."""

    tensorrt_version: str
    gpu_name: str
    sm: str
    onnx_sha256: str
    precision: str
    input_shape: str

    @property
    def digest(self) -> str:
        """sha256 hex of the fields as canonical JSON."""
        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()

    def mismatch(self, other: EngineKey) -> list[str]:
        """Human-readable differences, `field: this vs other`, for the fields that make an engine unusable."""
        out = []
        for name, label in (
            ("tensorrt_version", "TensorRT"),
            ("gpu_name", "GPU"),
            ("sm", "SM"),
            ("onnx_sha256", "ONNX sha256"),
            ("precision", "precision"),
            ("input_shape", "input shape"),
        ):
            a, b = getattr(self, name), getattr(other, name)
            if a != b:
                out.append(f"{label} {a} vs {b}")
        return out


@dataclass(frozen=True)
class EngineResult:
    """plan: the engine file. sidecar: its JSON. cache_hit: reused without building. build_s: build time (0 on a hit)."""

    plan: Path
    sidecar: Path
    key: EngineKey
    cache_hit: bool
    build_s: float


def engine_cache_path(key: EngineKey, cache_dir: Path | None = None, stem: str = "model") -> Path:
    """`<cache_dir>/<stem>-<precision>-<digest[:16]>.plan` (a readable name; the digest decides identity)."""
    d = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    return d / f"{stem}-{key.precision}-{key.digest[:16]}.plan"


def sidecar_path(plan: Path) -> Path:
    return Path(str(plan) + ".json")


def require_tensorrt(onnx_path: Path | None = None) -> ModuleType:
    """`import tensorrt`, or MissingDependencyError saying the ONNX is ready and to build on the device."""
    try:
        import tensorrt as trt
    except ImportError as exc:
        where = f"the ONNX file {onnx_path} is ready" if onnx_path is not None else "the ONNX files are ready"
        raise MissingDependencyError(
            f"TensorRT is not installed here, so no engine was built: {where}; run the same command on the device "
            "(Jetson: apt install python3-libnvinfer, part of JetPack) to build the engine there"
        ) from exc
    return trt


def gpu_info(device: int = 0) -> GpuInfo:
    """Name and compute capability of CUDA device `device`, through the one CUDA module (backends.cuda_mem)."""
    from edgedet.backends.cuda_mem import load_cuda_api

    return gpu_info_of(load_cuda_api(device=device).device_info())


def gpu_info_of(device: Any) -> GpuInfo:
    """GpuInfo for a cuda_mem.DeviceInfo: the name and the "major.minor" SM the cache keys use."""
    return GpuInfo(name=device.name, sm=f"{device.sm[0]}.{device.sm[1]}")


def _onnx_io(onnx_path: Path) -> tuple[ModelSpec, list[int | str | None], bool]:
    """Spec, declared input shape, and whether any QuantizeLinear writes uint8 (TensorRT reads only int8)."""
    import onnx

    from edgedet.spec import read_onnx_spec

    spec = read_onnx_spec(onnx_path)
    model = onnx.load(str(onnx_path), load_external_data=False)
    init = {i.name: i for i in model.graph.initializer}
    inp = next(i for i in model.graph.input if i.name == spec.input_name)
    shape: list[int | str | None] = [
        d.dim_value if d.HasField("dim_value") else (d.dim_param or None)
        for d in inp.type.tensor_type.shape.dim
    ]
    uint8_q = any(
        n.op_type == "QuantizeLinear"
        and len(n.input) > 2
        and n.input[2] in init
        and init[n.input[2]].data_type == onnx.TensorProto.UINT8
        for n in model.graph.node
    )
    return spec, shape, uint8_q


def _shape_text(shape: list[int | str | None], dynamic_batch: tuple[int, int, int] | None) -> str:
    dims = [str(d) if isinstance(d, int) and d > 0 else "?" for d in shape]
    if dynamic_batch is not None:
        dims[0] = "-".join(str(b) for b in dynamic_batch)
    return "x".join(dims)


def engine_key(
    onnx_path: Path,
    tensorrt_version: str,
    gpu: GpuInfo,
    dynamic_batch: tuple[int, int, int] | None = None,
) -> tuple[EngineKey, ModelSpec]:
    """The cache key of `onnx_path` for this TensorRT version and GPU (and the ONNX's spec)."""
    spec, shape, _ = _onnx_io(onnx_path)
    key = EngineKey(
        tensorrt_version=tensorrt_version,
        gpu_name=gpu.name,
        sm=gpu.sm,
        onnx_sha256=sha256_file(onnx_path),
        precision=spec.precision,
        input_shape=_shape_text(shape, dynamic_batch),
    )
    return key, spec


def read_sidecar(plan: Path) -> dict[str, Any]:
    p = sidecar_path(plan)
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise DataError(
            f"engine {plan} has no sidecar {p.name}; rebuild it with `edgedet convert --engine`"
        ) from exc
    except (OSError, ValueError, RecursionError) as exc:  # ValueError: bad JSON or bad UTF-8
        raise DataError(
            f"engine sidecar {p} is unreadable ({type(exc).__name__}: {str(exc)[:80]}); "
            "rebuild with `edgedet convert --engine`"
        ) from exc
    if (
        not isinstance(data, dict)
        or not isinstance(data.get("key"), dict)
        or set(data["key"]) != set(EngineKey.__dataclass_fields__)
        or not all(isinstance(v, str) for v in data["key"].values())
        or not isinstance(data.get("spec"), dict)
    ):
        raise DataError(f"engine sidecar {p} lacks key/spec; rebuild with `edgedet convert --engine`")
    return data


def check_engine(plan: Path, tensorrt_version: str, gpu: GpuInfo) -> ModelSpec:
    """Refuse, in one line naming what differs, a plan built by another TensorRT version or on another GPU.

    Returns the engine's ModelSpec from the sidecar.
    """
    data = read_sidecar(plan)
    built = EngineKey(**data["key"])
    here = EngineKey(
        tensorrt_version, gpu.name, gpu.sm, built.onnx_sha256, built.precision, built.input_shape
    )
    diff = built.mismatch(here)
    if diff:
        onnx_src = data.get("onnx_path", "model.onnx")
        raise BackendError(
            f"engine {plan.name} was built for another setup ({'; '.join(f'built with {d}' for d in diff)} here); "
            f"rebuild it on this device: edgedet convert {onnx_src} --engine"
        )
    return ModelSpec.from_json(json.dumps(data["spec"]), where=f"{sidecar_path(plan)}: spec")


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def build_engine(
    onnx_path: Path | str,
    out_path: Path | str | None = None,
    workspace_gb: float = DEFAULT_WORKSPACE_GB,
    dynamic_batch: tuple[int, int, int] | None = None,
    progress: ProgressFn | None = None,
    *,
    cache_dir: Path | str | None = None,
    timing_cache: Path | str | None = None,
    force: bool = False,
    gpu: GpuInfo | None = None,
) -> EngineResult:
    """Build (or reuse) a TensorRT engine for `onnx_path` on this machine's GPU.

    out_path: plan file (default: the key-named file in `cache_dir`, ~/.cache/edgedet/engines/).
    workspace_gb: builder workspace pool limit. dynamic_batch: (min, opt, max) batch for an optimization
    profile; the ONNX must then have a dynamic batch dimension. An existing plan whose sidecar holds the same
    key is reused unless `force`. progress(message) is called at each phase. gpu: override GPU detection.
    """
    onnx_path = Path(onnx_path)
    if not onnx_path.is_file():
        raise ModelError(f"ONNX file {onnx_path} does not exist; export it first with `edgedet convert`")
    trt = require_tensorrt(onnx_path)

    def say(msg: str) -> None:
        if progress is not None:  # one channel per message, so -v does not print it twice
            progress(msg)
        else:
            log.info(msg)

    if workspace_gb <= 0:
        raise ConfigError(f"workspace_gb must be positive, got {workspace_gb}; pass e.g. --workspace-gb 2")
    spec, shape, uint8_q = _onnx_io(onnx_path)
    if uint8_q:
        raise ConfigError(
            f"{onnx_path.name} has uint8 Q/DQ (ONNX Runtime CPU flavour), which TensorRT cannot read; "
            "re-quantize for TensorRT with activation_type='int8' (--int8-target tensorrt)"
        )
    # Operators, opset and uint8 placement against TensorRT 10's parser table: one line now instead of a parser
    # error deep in the build (or a plan that fails on another TensorRT).
    require_tensorrt_compatible(onnx_path)
    batch_dim = shape[0] if shape else None
    if dynamic_batch is not None:
        lo, opt, hi = dynamic_batch
        if not 1 <= lo <= opt <= hi:
            raise ConfigError(f"dynamic batch {dynamic_batch} must satisfy 1 <= min <= opt <= max")
        if isinstance(batch_dim, int) and batch_dim > 0:
            raise ConfigError(
                f"{onnx_path.name} has a fixed batch of {batch_dim}, so a dynamic batch profile cannot apply; "
                "re-export with a dynamic batch (--dynamic-batch)"
            )
    elif not (isinstance(batch_dim, int) and batch_dim > 0):
        raise ConfigError(
            f"{onnx_path.name} has a dynamic batch dimension; pass dynamic_batch=(min, opt, max) (--batch 1,4,8)"
        )
    gpu = gpu if gpu is not None else gpu_info()
    key = EngineKey(
        tensorrt_version=str(trt.__version__),
        gpu_name=gpu.name,
        sm=gpu.sm,
        onnx_sha256=sha256_file(onnx_path),
        precision=spec.precision,
        input_shape=_shape_text(shape, dynamic_batch),
    )
    cdir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    plan = Path(out_path) if out_path is not None else engine_cache_path(key, cdir, onnx_path.stem)
    side = sidecar_path(plan)
    if not force and plan.is_file() and side.is_file():
        try:
            cached = read_sidecar(plan)
            if cached.get("key_digest") == key.digest:
                say(f"engine cache hit: {plan}")
                return EngineResult(plan, side, key, True, 0.0)
            log.info("engine %s exists for another key; rebuilding", plan)
        except DataError:
            log.info("engine %s has an unreadable sidecar; rebuilding", plan)

    t0 = time.perf_counter()
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    # strongly typed: precision comes from the ONNX (FP16 tensors, Q/DQ for INT8); TensorRT 11 has no flags
    network = builder.create_network(1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED))
    parser = trt.OnnxParser(network, logger)
    say(f"parsing {onnx_path.name}")
    if not parser.parse_from_file(str(onnx_path)):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise ModelError(
            f"TensorRT {trt.__version__} cannot parse {onnx_path.name}: {errors or 'unknown error'}"
        )
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(workspace_gb * (1 << 30)))
    if dynamic_batch is not None:
        profile = builder.create_optimization_profile()
        for i in range(network.num_inputs):
            tensor = network.get_input(i)
            dims = list(tensor.shape)[1:]
            lo, opt, hi = dynamic_batch
            profile.set_shape(tensor.name, (lo, *dims), (opt, *dims), (hi, *dims))
        config.add_optimization_profile(profile)
    tc_path = (
        Path(timing_cache)
        if timing_cache is not None
        else cdir / f"timing-trt{key.tensorrt_version}-sm{key.sm.replace('.', '')}.cache"
    )
    tc_bytes = tc_path.read_bytes() if tc_path.is_file() else b""
    cache = config.create_timing_cache(tc_bytes)
    config.set_timing_cache(cache, False)  # ignore_mismatch=False: a cache from another device is refused
    say(f"building {spec.precision} engine for {gpu.name} (SM {gpu.sm}), TensorRT {trt.__version__}")
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise BackendError(
            f"TensorRT {trt.__version__} failed to build an engine from {onnx_path.name} (see the log above); "
            f"try a larger --workspace-gb than {workspace_gb} or check the ONNX with polygraphy"
        )
    plan.parent.mkdir(parents=True, exist_ok=True)
    _atomic_write(plan, bytes(serialized))
    tc_path.parent.mkdir(parents=True, exist_ok=True)
    _atomic_write(tc_path, bytes(config.get_timing_cache().serialize()))
    build_s = time.perf_counter() - t0
    _atomic_write(
        side,
        json.dumps(_sidecar(key, spec, onnx_path, workspace_gb, dynamic_batch, build_s), indent=2).encode(),
    )
    say(f"engine written: {plan} ({build_s:.0f} s)")
    return EngineResult(plan, side, key, False, build_s)


def _sidecar(
    key: EngineKey,
    spec: ModelSpec,
    onnx_path: Path,
    workspace_gb: float,
    dynamic_batch: tuple[int, int, int] | None,
    build_s: float,
) -> Mapping[str, Any]:
    from edgedet import __version__

    return {
        "sidecar_version": SIDECAR_VERSION,
        "key": asdict(key),
        "key_digest": key.digest,
        "spec": json.loads(spec.to_json()),
        "onnx_path": str(onnx_path),
        "versions": {"edgedet": __version__, "tensorrt": key.tensorrt_version},
        "build": {
            "workspace_gb": workspace_gb,
            "dynamic_batch": list(dynamic_batch) if dynamic_batch is not None else None,
            "build_s": round(build_s, 3),
            "built_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        },
    }
