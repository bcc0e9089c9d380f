"""INT8 Q/DQ ONNX from calibration images, with settings that keep YOLO accuracy and stay TensorRT-readable.

Static quantization only (dynamic quantization ran 2x slower than FP32 here). The recipe, each item measured:
- calibration images pass through the runtime's own `Preprocessor`, so ranges match what inference sees;
- weights: per-channel, symmetric int8; biases stay float (`QuantizeBias=False`), as TensorRT expects;
- activations: uint8 by default (int8 activations ran 3x slower in ONNX Runtime's CPU kernels); pass
  `activation_type="int8"` for a TensorRT-bound file (TensorRT reads only signed, zero-point-0 Q/DQ);
- op types Conv/Add/Concat/Mul/MaxPool/Resize/Sigmoid (Q/DQ around the SiLU Sigmoid*Mul pairs let ONNX
  Runtime keep whole blocks in int8);
- the box/score decode at the end of the head (everything downstream of the last feature Conv: reshape,
  sigmoid, grid/anchor mul/add/pow, concat, DFL) stays float: quantizing it drops mAP to 0;
- percentile (99.999) calibration by default: on YOLOv5n@640 it lost 0.7 mAP50-95 points where MinMax lost 1.6
  and Entropy 3.3 (benchmarks/bench_precision.py);
- ranges come from edgedet's own streaming calibrator (`calibrate.py`: running min/max and histograms, memory
  independent of the image count; ORT's calibrators keep every intermediate tensor of every image) and reach
  `quantize_static` through its calibration cache.
"""

from __future__ import annotations

import hashlib
import json
import logging
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from edgedet.convert.export_onnx import drop_initializer_inputs
from edgedet.errors import ConfigError, ModelError
from edgedet.spec import SPEC_KEY, ModelSpec, sha256_file

log = logging.getLogger(__name__)

CalibMethod = Literal["minmax", "percentile", "entropy"]
CALIB_METHODS: tuple[str, ...] = ("minmax", "percentile", "entropy")
#: op types that get Q/DQ (measured best on YOLOv5n / YOLOv8n with ONNX Runtime 1.32 CPU)
QUANT_OP_TYPES: tuple[str, ...] = ("Conv", "Add", "Concat", "Mul", "MaxPool", "Resize", "Sigmoid")
MIN_CALIB_IMAGES = 32
#: ONNX Runtime's per-channel Q/DQ needs opset 13+ (an opset-11 file came out unloadable)
MIN_OPSET = 13
#: ops with weights that carry features; a Conv fed (through reshapes) by a Softmax is a DFL decode instead
_FEATURE_OPS = frozenset({"Conv", "ConvTranspose", "Gemm", "MatMul"})
_PASS_THROUGH = frozenset({"Reshape", "Transpose", "Flatten", "Squeeze", "Unsqueeze", "Identity"})

ProgressFn = Callable[[int, int], None]


@dataclass(frozen=True)
class QuantizeResult:
    """What `quantize_int8_detailed` produced: the file, the nodes kept in float and the activation ranges used."""

    path: Path
    excluded_nodes: tuple[str, ...]
    decode_nodes: tuple[str, ...]
    ranges: Mapping[str, tuple[float, float]]
    silu_fused: int = 0  # SiLUs run as one float QuickGelu between dequantize and quantize (CPU files)
    stem_float: str | None = None  # the stem conv run in float with its int8-rounded weights (CPU files)


def _ort_method(method: str) -> Any:
    from onnxruntime.quantization import CalibrationMethod

    table = {
        "minmax": CalibrationMethod.MinMax,
        "percentile": CalibrationMethod.Percentile,
        "entropy": CalibrationMethod.Entropy,
    }
    if method not in table:
        raise ConfigError(f"unknown calibration method {method!r}; use one of {', '.join(CALIB_METHODS)}")
    return table[method]


def find_decode_nodes(model: Any) -> list[str]:
    """Names of the nodes that decode boxes/scores after the head's last feature Conv (onnx ModelProto in).

    A node belongs to the decode when no feature layer (Conv/Gemm/MatMul) lies downstream of it. A Conv fed by
    a Softmax through reshapes (YOLOv8's DFL) counts as decode, not as a feature layer. Unnamed nodes get
    names first (ORT's quantizer refers to nodes by name).
    """
    nodes = list(model.graph.node)
    for i, n in enumerate(nodes):
        if not n.name:
            n.name = f"{n.op_type}_{i}"
    producer = {out: n for n in nodes for out in n.output}
    consumers: dict[str, list[Any]] = {}
    for n in nodes:
        for inp in n.input:
            consumers.setdefault(inp, []).append(n)

    def is_dfl(conv: Any) -> bool:
        src = producer.get(conv.input[0])
        while src is not None and src.op_type in _PASS_THROUGH:
            src = producer.get(src.input[0])
        return src is not None and src.op_type == "Softmax"

    feature = {n.name for n in nodes if n.op_type in _FEATURE_OPS and not is_dfl(n)}
    # reverse topological order: graph.node is topologically sorted in valid ONNX
    feeds_feature: dict[str, bool] = {}
    for n in reversed(nodes):
        down = [c for out in n.output for c in consumers.get(out, [])]
        feeds_feature[n.name] = any(c.name in feature or feeds_feature.get(c.name, False) for c in down)
    return [
        n.name
        for n in nodes
        if n.name not in feature and not feeds_feature[n.name] and n.op_type != "Constant"
    ]


def find_head_convs(model: Any) -> list[str]:
    """The last feature Conv of each detect branch: feature layers with no feature layer downstream. Their
    outputs are raw box/score logits, whose 8-bit rounding cost a full mAP point on YOLOv5n; in float they
    cost little time (three 1x1 convs)."""
    decode = set(find_decode_nodes(model))
    consumers: dict[str, list[Any]] = {}
    for n in model.graph.node:
        for inp in n.input:
            consumers.setdefault(inp, []).append(n)
    heads = []
    for n in model.graph.node:
        if n.op_type in _FEATURE_OPS and n.name not in decode:
            down = [c for out in n.output for c in consumers.get(out, [])]
            if down and all(c.name in decode for c in down):
                heads.append(n.name)
    return heads


def _prepare_model(fp32_onnx: Path, work: Path) -> tuple[Path, Any]:
    """Opset >= 13, initializers out of graph.input, and ORT's quant_pre_process (shape inference + folding)
    when it works (it fails on a dynamic batch dimension; then quantize the plain file)."""
    import onnx

    try:
        model = onnx.load(str(fp32_onnx))
    except Exception as exc:  # onnx raises several unrelated types for a bad file
        raise ModelError(f"cannot read ONNX file {fp32_onnx}: {exc}; re-export the model") from exc
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
    if opset < MIN_OPSET:
        from onnx import version_converter

        log.info(
            "converting %s from opset %d to %d before per-channel quantization",
            fp32_onnx.name,
            opset,
            MIN_OPSET,
        )
        model = version_converter.convert_version(model, MIN_OPSET)
    # initializers listed as inputs block constant folding (older exporters write them)
    drop_initializer_inputs(model)
    keep = list(model.graph.input)
    plain = work / "fp32.onnx"
    onnx.save(model, str(plain))
    dims = [d for d in keep[0].type.tensor_type.shape.dim] if keep else []
    static = bool(dims) and all(d.HasField("dim_value") and d.dim_value > 0 for d in dims)
    if static:
        from onnxruntime.quantization.shape_inference import quant_pre_process

        pre = work / "pre.onnx"
        try:
            quant_pre_process(str(plain), str(pre))
            return pre, onnx.load(str(pre))
        except Exception as exc:  # a failed optional optimisation must not stop quantization
            log.warning("quant_pre_process failed on %s (%s); quantizing without it", fp32_onnx.name, exc)
    return plain, model


def calibrate_ranges(
    fp32_onnx: Path,
    calib_images: Sequence[Path],
    spec: ModelSpec,
    method: CalibMethod = "minmax",
    progress: ProgressFn | None = None,
    op_types: Sequence[str] = QUANT_OP_TYPES,
    symmetric: bool = False,
    percentile: float = 99.999,
    threads: int = 2,
) -> dict[str, tuple[float, float]]:
    """Activation ranges (tensor name -> (low, high)) from streaming calibration over the images, in the order
    given; memory does not grow with the number of images (`edgedet.convert.calibrate`)."""
    from edgedet.convert.calibrate import collect_ranges

    _ort_method(method)
    return collect_ranges(
        Path(fp32_onnx),
        calib_images,
        spec,
        method,
        op_types=op_types,
        symmetric=symmetric,
        percentile=percentile,
        threads=threads,
        progress=progress,
    )


def shared_concat_ranges(
    model: Any, ranges: Mapping[str, tuple[float, float]], skip_nodes: Sequence[str] = ()
) -> dict[str, tuple[float, float]]:
    """Ranges where each Concat's output and every input that only this Concat reads share one range (the union
    of theirs). ONNX Runtime's QLinearConcat then copies those inputs' bytes instead of re-quantizing them to
    the output's scale: YOLOv5n, 1 thread, INT8 1.33x -> 1.41x FP32 at 320 and 1.40x -> 1.48x at 640, mAP50-95
    within 0.3 point of the file without it on coco128. An input that other layers also read keeps its own range
    (widening it would coarsen them too: doing so through chains of Concats cost 0.8 point at 640). Concats in
    `skip_nodes` (kept float) and those with an input without a range are left alone."""
    readers: dict[str, int] = {}
    for node in model.graph.node:
        for t in node.input:
            readers[t] = readers.get(t, 0) + 1
    outputs = {o.name for o in model.graph.output}
    skip = set(skip_nodes)
    out = dict(ranges)
    for node in model.graph.node:
        if node.op_type != "Concat" or node.name in skip:
            continue
        tensors = [t for t in (*node.input, *node.output) if t]
        if not all(t in out for t in tensors):
            continue
        lo = min(out[t][0] for t in tensors)
        hi = max(out[t][1] for t in tensors)
        for t in node.output:
            out[t] = (lo, hi)
        for t in node.input:
            if readers.get(t, 0) == 1 and t not in outputs:
                out[t] = (lo, hi)
    return out


def first_conv(onnx_path: Path) -> tuple[str, ...]:
    """Name of the stem: the first Conv reading the graph input (one-element tuple; empty if there is none)."""
    import onnx

    model = onnx.load(str(onnx_path), load_external_data=False)
    inputs = {i.name for i in model.graph.input} - {i.name for i in model.graph.initializer}
    for n in model.graph.node:
        if n.op_type == "Conv" and n.input and n.input[0] in inputs:
            return (n.name,) if n.name else ()
    return ()


def needs_reduce_range(cpuinfo: str | None = None) -> bool:
    """True on an x86-64 CPU without VNNI (Linux /proc/cpuinfo flags; False elsewhere or when unknown).

    There ONNX Runtime's uint8-activation x int8-weight kernels add products pairwise in int16 (vpmaddubsw),
    which saturates for large activations times large weights; 7-bit weights cannot overflow. CPUs with
    avx512_vnni / avx_vnni (and ARM's dot-product kernels) accumulate in int32 and need no such care.
    """
    import platform

    if cpuinfo is None:
        if platform.machine().lower() not in ("x86_64", "amd64"):
            return False
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
        except OSError:
            return False
    flags_line = next((ln for ln in cpuinfo.splitlines() if ln.startswith("flags")), "")
    flags = set(flags_line.partition(":")[2].split())
    if not flags:
        return False
    return "avx2" in flags and not ({"avx512_vnni", "avx_vnni"} & flags)


def quantize_int8_detailed(
    fp32_onnx: Path,
    out: Path,
    calib_images: Sequence[Path],
    spec: ModelSpec,
    method: CalibMethod = "percentile",
    exclude_nodes: Sequence[str] = (),
    progress: ProgressFn | None = None,
    *,
    min_images: int = MIN_CALIB_IMAGES,
    activation_type: Literal["uint8", "int8"] = "uint8",
    op_types: Sequence[str] = QUANT_OP_TYPES,
    percentile: float = 99.999,
    exclude_decode: bool = True,
    head_float: bool = True,
    ranges: Mapping[str, tuple[float, float]] | None = None,
    reduce_range: bool | None = None,
    threads: int = 2,
    fuse_silu_cpu: bool = True,
    clip_silu: bool = True,
    stem_float_cpu: bool = True,
    shared_concat: bool = True,
) -> QuantizeResult:
    """`quantize_int8` that also returns the nodes kept in float and the calibrated ranges.

    ranges: activation ranges from an earlier call on the same FP32 file (`QuantizeResult.ranges`): calibration
    is skipped (the repair loop re-quantizes with other layers in float, the ranges stay the same).
    reduce_range: 7-bit weights, which avoid the int16 overflow of ONNX Runtime's uint8 x int8 kernels on x86
    CPUs without VNNI; None = on exactly there (see `needs_reduce_range`).
    fuse_silu_cpu: for uint8 (CPU) files, run each SiLU as one dequantize -> QuickGelu -> quantize instead of a
    quantized Sigmoid and Mul (faster and exact; `silu_fusion.py`). int8 (TensorRT) files are never fused.
    clip_silu: for uint8 files, start each SiLU input's range where SiLU's output has reached 0 within half a
    step (`silu_fusion.clip_silu_inputs`); the returned `ranges` are the calibrated ones, before this.
    stem_float_cpu: for uint8 files, run the stem conv as a float conv over the float image with its int8-rounded
    weights (`cpu_stem.py`: ONNX Runtime's int8 conv is slow on 3 input channels).
    shared_concat: for uint8 files, one range for every input and the output of each quantized Concat
    (`shared_concat_ranges`).
    """
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.calibrate import save_tensors_data

    from edgedet.convert.calibrate import to_tensors_data

    fp32_onnx, out = Path(fp32_onnx), Path(out)
    _ort_method(method)  # validate before any work
    if activation_type not in ("uint8", "int8"):
        raise ConfigError(
            f"activation_type {activation_type!r} must be 'uint8' (ONNX Runtime CPU) or 'int8' (TensorRT)"
        )
    if len(calib_images) < min_images:
        raise ConfigError(
            f"INT8 calibration needs at least {min_images} images, got {len(calib_images)}: "
            "pass --calib DIR with 100+ images like the deployment scenes"
        )
    if not fp32_onnx.is_file():
        raise ModelError(f"model file {fp32_onnx} does not exist; export the FP32 ONNX first")
    int8_acts = activation_type == "int8"
    with tempfile.TemporaryDirectory(prefix="edgedet-quant-") as tmp:
        work = Path(tmp)
        prepared, model = _prepare_model(fp32_onnx, work)
        decode = find_decode_nodes(model) if exclude_decode else []
        if head_float:
            decode += find_head_convs(model)
        names = {n.name for n in model.graph.node}
        unknown = [n for n in exclude_nodes if n not in names]
        if unknown:
            raise ConfigError(
                f"exclude_nodes {unknown[:3]} are not nodes of {fp32_onnx.name}; use names from find_sensitive_nodes"
            )
        if ranges is None:
            ranges = calibrate_ranges(
                prepared,
                calib_images,
                spec,
                method,
                progress,
                op_types,
                symmetric=int8_acts,
                percentile=percentile,
                threads=threads,
            )
        if reduce_range is None:
            reduce_range = not int8_acts and needs_reduce_range()
        if reduce_range:
            log.info(
                "7-bit weights (reduce_range): this x86 CPU has no VNNI, whose absence makes u8 x s8 overflow"
            )
        excluded = sorted(set(decode) | set(exclude_nodes))
        q_ranges: Mapping[str, tuple[float, float]] = ranges
        if clip_silu and not int8_acts:
            from edgedet.convert.silu_fusion import clip_silu_inputs

            q_ranges = clip_silu_inputs(model, ranges)
        if shared_concat and not int8_acts:
            q_ranges = shared_concat_ranges(model, q_ranges, skip_nodes=excluded)
        cache = work / "calib.json"
        save_tensors_data(to_tensors_data(q_ranges), cache)
        quantize_static(
            str(prepared),
            str(out),
            None,
            quant_format=QuantFormat.QDQ,
            op_types_to_quantize=list(op_types),
            per_channel=True,
            reduce_range=reduce_range,
            activation_type=QuantType.QInt8 if int8_acts else QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            nodes_to_exclude=excluded,
            calibrate_method=CalibrationMethod.MinMax,  # the cache holds final ranges, whatever the method
            calibration_cache_path=str(cache),
            extra_options={
                "WeightSymmetric": True,
                # TensorRT needs zero-point 0; uint8 on the CPU keeps the full range for post-SiLU activations
                "ActivationSymmetric": int8_acts,
                "QuantizeBias": False,  # float bias: TensorRT fuses it; int32 bias Q/DQ is not what it expects
                "CalibTensorRangeSymmetric": int8_acts,
            },
        )
    fused, stem = 0, None
    if not int8_acts and (fuse_silu_cpu or stem_float_cpu):
        fused, stem = _cpu_rewrites(out, fuse_silu_cpu, stem_float_cpu)
    _write_spec(
        out, spec, fp32_onnx, calib_images, method, activation_type, excluded, reduce_range, fused, stem
    )
    return QuantizeResult(out, tuple(excluded), tuple(decode), dict(ranges), fused, stem)


def quantize_int8(
    fp32_onnx: Path,
    out: Path,
    calib_images: Sequence[Path],
    spec: ModelSpec,
    method: CalibMethod = "percentile",
    exclude_nodes: Sequence[str] = (),
    progress: ProgressFn | None = None,
    *,
    min_images: int = MIN_CALIB_IMAGES,
    activation_type: Literal["uint8", "int8"] = "uint8",
    head_float: bool = True,
) -> Path:
    """Static INT8 Q/DQ quantization of `fp32_onnx` into `out`; returns `out`.

    calib_images: image files fed through the runtime's Preprocessor for `spec` (at least `min_images`).
    method: activation range calibration. exclude_nodes: node names to keep in float (besides the head's decode,
    which is always kept; `head_float` also keeps the head's last Convs). progress(done, total) is called per calibration image. The spec stored in `out`
    says precision "int8" and records the calibration (method, image count and hash, source sha256).
    """
    return quantize_int8_detailed(
        fp32_onnx,
        out,
        calib_images,
        spec,
        method,
        exclude_nodes,
        progress,
        min_images=min_images,
        activation_type=activation_type,
        head_float=head_float,
    ).path


def _cpu_rewrites(path: Path, silu: bool, stem: bool) -> tuple[int, str | None]:
    """The ONNX Runtime CPU rewrites of a uint8 file: SiLU -> QuickGelu (`silu_fusion`), the stem conv in float
    (`cpu_stem`). Returns (SiLUs fused, stem name or None)."""
    import onnx

    from edgedet.convert.cpu_stem import run_stem_in_float
    from edgedet.convert.silu_fusion import fuse_silu

    model = onnx.load(str(path))
    n = fuse_silu(model) if silu else 0
    stem_name = run_stem_in_float(model) if stem else None
    if n or stem_name:
        onnx.save(model, str(path))
    if n:
        log.info("%d SiLU activations run as dequantize -> QuickGelu -> quantize (ONNX Runtime CPU)", n)
    if stem_name:
        log.info("stem %s runs as a float convolution with its int8-rounded weights", stem_name)
    return n, stem_name


def _write_spec(
    out: Path,
    spec: ModelSpec,
    source: Path,
    calib_images: Sequence[Path],
    method: str,
    activation_type: str,
    excluded: Sequence[str],
    reduce_range: bool = False,
    silu_fused: int = 0,
    stem_float: str | None = None,
) -> None:
    import onnx

    model = onnx.load(str(out))
    images_hash = hashlib.sha256("\n".join(sorted(Path(p).name for p in calib_images)).encode()).hexdigest()
    provenance = dict(spec.provenance)
    provenance.update(
        {
            "fp32_sha256": sha256_file(source),
            "quantizer": "onnxruntime.quantize_static QDQ",
            "calibration": json.dumps(
                {
                    "method": method,
                    "images": len(calib_images),
                    "images_sha256": images_hash,
                    "activations": activation_type,
                    "weights": "int7 per-channel symmetric" if reduce_range else "int8 per-channel symmetric",
                    "float_nodes": len(excluded),
                    "silu": f"{silu_fused} fused to float QuickGelu" if silu_fused else "as quantized",
                    "stem": "float conv, int8-rounded weights" if stem_float else "as quantized",
                },
                sort_keys=True,
            ),
        }
    )
    new_spec = spec.replace(precision="int8", provenance=provenance)
    props = [p for p in model.metadata_props if p.key != SPEC_KEY]
    del model.metadata_props[:]
    model.metadata_props.extend(props)
    entry = model.metadata_props.add()
    entry.key, entry.value = SPEC_KEY, new_spec.to_json()
    onnx.save(model, str(out))
