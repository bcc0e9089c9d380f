"""A stand-in for the `tensorrt` module built from TensorRT's real Python API (../shared/trt-api manifests).

TensorRT cannot be installed here, so the TensorRT backend, the engine builder and deploy/jetson's scripts are
tested against this module. It has exactly the classes, methods, properties, enums and enum values of the
chosen version (10.3: what JetPack 6.1/6.2 ship; 11.1: strongly typed only), read from the manifests that were
generated from NVIDIA's pybind11 binding sources: touching any name the version lacks raises AttributeError, as
the real module would, so code that uses e.g. `BuilderFlag.FP16` or `IBuilderConfig.int8_calibrator` fails
its 11.1 tests. The behaviour behind the names is small and honest about what it fakes: a "plan" is JSON naming
an ONNX file, and the execution context runs that ONNX through ONNX Runtime, reading its input from the address
bound with `set_tensor_address` and writing outputs to theirs.

Facts the name-only manifests do not carry, taken from the same binding sources: `Severity` is bound inside
`ILogger` with `export_values()` (so `trt.Logger.WARNING` exists), and `Logger` derives from `ILogger`.

Every name the code touches is recorded in `module._used` ("Class.name", "tensorrt.name"), so a test can list
the TensorRT API the code depends on. Behaviour classes may only define names that exist in some manifest
(`make_tensorrt` checks), so the stand-in cannot invent API.
"""

from __future__ import annotations

import json
import types
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest

MANIFEST_DIR = Path(__file__).resolve().parents[2].parent / "shared" / "trt-api"
API_VERSIONS = ("10.3", "11.1")
_NESTED_ENUMS = {"ILogger": "Severity"}  # enum bound inside a class, values exported into it
_BASES = {"Logger": "ILogger"}

_NP = {"FLOAT": np.float32, "HALF": np.float16, "INT32": np.int32, "INT64": np.int64, "INT8": np.int8}


def load_manifest(api: str) -> dict[str, Any]:
    """The manifest of TensorRT `api` ("10.3" | "11.1"); skips the test when ../shared/trt-api is absent."""
    path = MANIFEST_DIR / f"tensorrt-{api}.json"
    if not path.is_file():
        pytest.skip(f"TensorRT API manifest not present: {path}")
    data: dict[str, Any] = json.loads(path.read_text())
    return data


class EnumValue(int):
    """A pybind11 enum value: an int with a `name` (and `value`)."""

    name: str

    def __new__(cls, value: int, name: str, owner: str) -> EnumValue:
        obj = super().__new__(cls, value)
        obj.name = name
        obj._owner = owner  # type: ignore[attr-defined]
        return obj

    @property
    def value(self) -> int:
        return int(self)

    def __repr__(self) -> str:
        return f"<{self._owner}.{self.name}: {int(self)}>"  # type: ignore[attr-defined]

    __str__ = __repr__


class _StrictMeta(type):
    """Class-level attribute access (`trt.Logger.WARNING`, `trt.DataType.HALF`) checked against the manifest."""

    def __getattribute__(cls, name: str) -> Any:
        if not name.startswith("_"):
            allowed = type.__getattribute__(cls, "_trt_allowed")
            owner = type.__getattribute__(cls, "_trt_name")
            used = type.__getattribute__(cls, "_trt_used")
            if name not in allowed:
                version = type.__getattribute__(cls, "_trt_version")
                raise AttributeError(
                    f"type object 'tensorrt.{owner}' has no attribute '{name}' (TensorRT {version})"
                )
            used.add(f"{owner}.{name}")
        return type.__getattribute__(cls, name)


class _Strict:
    """Instance attribute access and assignment checked against the manifest (pybind11 objects have no
    __dict__ for new attributes). Names starting with "_" are the stand-in's own state."""

    _trt_allowed: frozenset[str] = frozenset()
    _trt_name = ""
    _trt_version = ""
    _trt_used: ClassVar[set[str]] = set()

    def __getattribute__(self, name: str) -> Any:
        if not name.startswith("_"):
            cls = type(self)
            if name not in cls._trt_allowed:
                raise AttributeError(
                    f"'tensorrt.{cls._trt_name}' object has no attribute '{name}' (TensorRT {cls._trt_version})"
                )
            cls._trt_used.add(f"{cls._trt_name}.{name}")
        return object.__getattribute__(self, name)

    def __setattr__(self, name: str, value: Any) -> None:
        if not name.startswith("_"):
            cls = type(self)
            if name not in cls._trt_allowed:
                raise AttributeError(
                    f"'tensorrt.{cls._trt_name}' object has no attribute '{name}' (TensorRT {cls._trt_version})"
                )
            cls._trt_used.add(f"{cls._trt_name}.{name}")
        object.__setattr__(self, name, value)


class _Module(types.ModuleType):
    """The module: records the names taken from it; a missing one raises AttributeError as usual."""

    def __getattribute__(self, name: str) -> Any:
        value = super().__getattribute__(name)
        if not name.startswith("_") or name == "__version__":
            super().__getattribute__("_used").add(f"tensorrt.{name}")
        return value


def fake_plan(onnx_path: str, version: str, dtype: str = "FLOAT", **extra: Any) -> bytes:
    """A stand-in 'plan': the ONNX it runs and its I/O tensors (shapes read from the ONNX; dtype as given)."""
    import onnx

    model = onnx.load(onnx_path)

    def dims(vi: Any) -> list[int]:
        return [d.dim_value if d.HasField("dim_value") else -1 for d in vi.type.tensor_type.shape.dim]

    tensors = {i.name: {"mode": "input", "shape": dims(i), "dtype": dtype} for i in model.graph.input}
    tensors.update({o.name: {"mode": "output", "shape": dims(o), "dtype": dtype} for o in model.graph.output})
    return json.dumps({"trt": version, "onnx": onnx_path, "tensors": tensors, **extra}).encode()


def _behaviours(trt: Any) -> dict[str, type]:
    """What the named classes do. Only names present in a manifest may be defined (checked by make_tensorrt)."""

    class ILogger:
        def log(self, severity: Any, msg: str) -> None:
            trt._calls.append(("log", int(severity), msg))

    class Logger(ILogger):
        def __init__(self, min_severity: Any = None) -> None:
            self._min_severity = min_severity

        @property
        def min_severity(self) -> Any:
            return self._min_severity

    class IHostMemory:
        def __init__(self, data: bytes) -> None:
            self._data = bytes(data)

        def __bytes__(self) -> bytes:  # the real one exposes the buffer protocol
            return self._data

        @property
        def nbytes(self) -> int:
            return len(self._data)

    class IExecutionContext:
        def __init__(self, engine: Any) -> None:
            self._engine = engine
            self._addresses: dict[str, int] = {}
            self._input_shapes = {
                n: tuple(t["shape"]) for n, t in engine._tensors.items() if t["mode"] == "input"
            }
            self._streams: list[int] = []

        def set_input_shape(self, name: str, shape: Any) -> bool:
            lo, hi = self._engine._plan.get("profile", [1, 1])
            declared = self._engine._tensors[name]["shape"]
            shape = tuple(int(d) for d in shape)
            if len(shape) != len(declared) or not lo <= shape[0] <= hi:
                return False
            self._input_shapes[name] = shape
            return True

        def get_tensor_shape(self, name: str) -> tuple[int, ...]:
            return self._shape(name)

        def _shape(self, name: str) -> tuple[int, ...]:
            t = self._engine._tensors[name]
            if t["mode"] == "input":
                return self._input_shapes[name]
            batch = next(iter(self._input_shapes.values()))[0]
            return tuple(batch if d == -1 else d for d in t["shape"])

        def set_tensor_address(self, name: str, ptr: int) -> bool:
            self._addresses[name] = int(ptr)
            return True

        def execute_async_v3(self, stream_handle: int) -> bool:
            import onnxruntime as ort

            from edgedet.backends.cuda_mem import host_array

            plan = self._engine._plan
            if plan.get("fail"):
                return False
            assert set(self._addresses) == set(self._engine._tensors), "every I/O tensor needs an address"
            self._streams.append(stream_handle)
            sess = ort.InferenceSession(plan["onnx"], providers=["CPUExecutionProvider"])
            feeds = {}
            for name, t in self._engine._tensors.items():
                if t["mode"] == "input":
                    x = host_array(self._addresses[name], self._input_shapes[name], _NP[t["dtype"]])
                    feeds[name] = x.astype(np.float32)
            outs = sess.run(None, feeds)
            out_names = [n for n, t in self._engine._tensors.items() if t["mode"] == "output"]
            for name, value in zip(out_names, outs, strict=True):
                t = self._engine._tensors[name]
                dst = host_array(self._addresses[name], self._shape(name), _NP[t["dtype"]])
                dst[...] = value.astype(_NP[t["dtype"]])
            return True

    class ICudaEngine:
        def __init__(self, plan: dict[str, Any]) -> None:
            self._plan = plan
            self._tensors: dict[str, dict[str, Any]] = plan["tensors"]
            self._names = list(self._tensors)
            self._contexts: list[Any] = []

        @property
        def num_io_tensors(self) -> int:
            return len(self._names)

        def get_tensor_name(self, index: int) -> str:
            return self._names[index]

        def get_tensor_mode(self, name: str) -> Any:
            mode = "INPUT" if self._tensors[name]["mode"] == "input" else "OUTPUT"
            return _member(trt, "TensorIOMode", mode)

        def get_tensor_shape(self, name: str) -> tuple[int, ...]:
            return tuple(self._tensors[name]["shape"])

        def get_tensor_dtype(self, name: str) -> Any:
            return _member(trt, "DataType", self._tensors[name]["dtype"])

        def create_execution_context(self) -> Any:
            ctx = _cls(trt, "IExecutionContext")(self)
            self._contexts.append(ctx)
            return ctx

    class Runtime:
        def __init__(self, logger: Any) -> None:
            self._logger = logger

        def deserialize_cuda_engine(self, serialized_engine: bytes) -> Any:
            trt._deserialized.append(serialized_engine)
            try:
                plan = json.loads(serialized_engine)
            except ValueError:
                return None  # what TensorRT does with a corrupt plan
            if plan.get("trt") != trt.__dict__["__version__"]:
                return None  # ... and with a plan from another version
            engine = _cls(trt, "ICudaEngine")(plan)
            trt._engines.append(engine)
            return engine

    class ITensor:
        def __init__(self, name: str, shape: tuple[int, ...]) -> None:
            self._name, self._shape = name, shape

        @property
        def name(self) -> str:
            return self._name

        @property
        def shape(self) -> tuple[int, ...]:
            return self._shape

    class INetworkDefinition:
        def __init__(self, flags: int) -> None:
            self._flags = flags
            self._inputs: list[Any] = []
            self._onnx: str | None = None

        @property
        def num_inputs(self) -> int:
            return len(self._inputs)

        def get_input(self, index: int) -> Any:
            return self._inputs[index]

    class ParserError:
        def __init__(self, desc: str) -> None:
            self._desc = desc

        def desc(self) -> str:
            return self._desc

        def __str__(self) -> str:
            return self._desc

    class OnnxParser:
        def __init__(self, network: Any, logger: Any) -> None:
            self._network = network
            self._errors: list[Any] = []

        @property
        def num_errors(self) -> int:
            return len(self._errors)

        def get_error(self, index: int) -> Any:
            return self._errors[index]

        def parse_from_file(self, model: str) -> bool:
            import onnx

            trt._calls.append(("parse", model))
            if trt._parse_error:
                self._errors.append(_cls(trt, "ParserError")(trt._parse_error))
                return False
            m = onnx.load(model, load_external_data=False)
            net = self._network
            net._onnx = model
            for vi in m.graph.input:
                dims = tuple(
                    d.dim_value if d.HasField("dim_value") else -1 for d in vi.type.tensor_type.shape.dim
                )
                net._inputs.append(_cls(trt, "ITensor")(vi.name, dims))
            return True

    class ITimingCache:
        def __init__(self, data: bytes) -> None:
            self._data = bytes(data)

        def serialize(self) -> Any:
            return _cls(trt, "IHostMemory")(self._data + b"+timing")

    class IOptimizationProfile:
        def set_shape(self, input: str, min: Any, opt: Any, max: Any) -> None:
            trt._calls.append(("set_shape", (input, tuple(min), tuple(opt), tuple(max))))

    class IBuilderConfig:
        def __init__(self) -> None:
            self._cache: Any = None
            self._flags: set[int] = set()
            self._calibrator: Any = None

        def set_memory_pool_limit(self, pool: Any, pool_size: int) -> None:
            trt._calls.append(("pool", (pool, pool_size)))

        def create_timing_cache(self, serialized_timing_cache: bytes) -> Any:
            trt._calls.append(("timing_in", bytes(serialized_timing_cache)))
            return _cls(trt, "ITimingCache")(serialized_timing_cache)

        def set_timing_cache(self, cache: Any, ignore_mismatch: bool) -> bool:
            trt._calls.append(("set_timing", ignore_mismatch))
            self._cache = cache
            return True

        def get_timing_cache(self) -> Any:
            return self._cache

        def add_optimization_profile(self, profile: Any) -> int:
            trt._calls.append(("profile", None))
            return 0

        def set_flag(self, flag: Any) -> None:
            trt._calls.append(("set_flag", str.__str__(flag.name)))
            self._flags.add(int(flag))

        @property
        def int8_calibrator(self) -> Any:  # 10.x only: 11.x's stand-in refuses the name
            return self._calibrator

        @int8_calibrator.setter
        def int8_calibrator(self, value: Any) -> None:
            self._calibrator = value

    class Builder:
        def __init__(self, logger: Any) -> None:
            self._logger = logger

        def create_network(self, flags: int = 0) -> Any:
            trt._calls.append(("network_flags", flags))
            return _cls(trt, "INetworkDefinition")(flags)

        def create_builder_config(self) -> Any:
            return _cls(trt, "IBuilderConfig")()

        def create_optimization_profile(self) -> Any:
            return _cls(trt, "IOptimizationProfile")()

        def build_serialized_network(self, network: Any, config: Any) -> Any:
            trt._calls.append(("build", None))
            trt._builds += 1
            if trt._build_fails:
                return None
            plan = fake_plan(network._onnx, trt.__dict__["__version__"])
            return _cls(trt, "IHostMemory")(plan)

    return {
        c.__name__: c
        for c in (
            ILogger,
            Logger,
            IHostMemory,
            IExecutionContext,
            ICudaEngine,
            Runtime,
            ITensor,
            INetworkDefinition,
            ParserError,
            OnnxParser,
            ITimingCache,
            IOptimizationProfile,
            IBuilderConfig,
            Builder,
        )
    }


def _cls(trt: Any, name: str) -> Any:
    """A stand-in class, taken without recording it as used by the code under test."""
    return trt.__dict__[name]


def _member(trt: Any, enum: str, name: str) -> Any:
    return type.__getattribute__(trt.__dict__[enum], name)


def _public(cls: type) -> set[str]:
    names: set[str] = set()
    for klass in cls.__mro__:
        if klass is object:
            continue
        names |= {n for n in vars(klass) if not n.startswith("_")}
    return names


def make_tensorrt(api: str = "10.3", version: str | None = None) -> Any:
    """A `tensorrt` module with TensorRT `api`'s names ("10.3" | "11.1"); `__version__` = version or api + ".0".

    State for tests (names starting with "_", not part of TensorRT): `_calls` (builder/parser calls in order),
    `_deserialized` (plan bytes given to Runtime), `_engines`, `_builds`, `_used` (API names touched);
    set `_parse_error` / `_build_fails` to make the parser or the build fail.
    """
    manifest = load_manifest(api)
    every = {
        name for v in API_VERSIONS for members in load_manifest(v)["classes"].values() for name in members
    }
    every |= {v for m in API_VERSIONS for values in load_manifest(m)["enums"].values() for v in values}
    trt = _Module("tensorrt")
    trt.__version__ = version or f"{api}.0"
    trt.__file__ = f"<tensorrt {api} stand-in>"
    used: set[str] = set()
    trt.__dict__.update(
        _used=used, _calls=[], _deserialized=[], _engines=[], _builds=0, _parse_error="", _build_fails=False
    )

    for enum_name, values in manifest["enums"].items():
        members = {v: EnumValue(i, v, enum_name) for i, v in enumerate(values)}
        ns = {
            "_trt_allowed": frozenset(members),
            "_trt_name": enum_name,
            "_trt_version": api,
            "_trt_used": used,
        }
        setattr(trt, enum_name, _StrictMeta(enum_name, (), {**ns, **members}))

    impls = _behaviours(trt)
    classes = manifest["classes"]
    for cls_name, members in classes.items():
        allowed = set(members)
        base_name = _BASES.get(cls_name)
        if base_name:
            allowed |= set(classes.get(base_name, ()))
        for holder in (cls_name, base_name):
            nested = _NESTED_ENUMS.get(holder or "")
            if nested:
                allowed |= {nested, *manifest["enums"][nested]}
        impl = impls.get(cls_name, object)
        invented = _public(impl) - every
        assert not invented, f"stand-in {cls_name} defines names no TensorRT version has: {sorted(invented)}"
        ns: dict[str, Any] = {
            "_trt_allowed": frozenset(allowed),
            "_trt_name": cls_name,
            "_trt_version": api,
            "_trt_used": used,
        }
        nested = _NESTED_ENUMS.get(cls_name) or _NESTED_ENUMS.get(base_name or "")
        if nested:
            enum_cls = trt.__dict__[nested]
            ns[nested] = enum_cls
            ns.update({v: type.__getattribute__(enum_cls, v) for v in manifest["enums"][nested]})
        bases = (_Strict, impl) if impl is not object else (_Strict,)
        setattr(trt, cls_name, _StrictMeta(cls_name, bases, ns))
    for name in manifest["module"]:
        if name not in trt.__dict__:
            setattr(trt, name, _not_modelled(name))
    return trt


def _not_modelled(name: str) -> Any:
    def fn(*args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(f"tensorrt.{name} exists but the stand-in does not model it")

    fn.__name__ = name
    return fn


def used_names(trt: Any) -> list[str]:
    """The TensorRT names the code touched on this stand-in, sorted."""
    return sorted(trt.__dict__["_used"])
