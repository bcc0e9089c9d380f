"""Accuracy gate for a lower-precision model, and the repair loop that keeps its most sensitive layers in float.

With labels the gate compares COCO mAP50-95 of reference and candidate on the same images. Without labels it
scores both against the reference's own detections at deployment settings (conf 0.25): the reference's score
against itself is the ceiling, and the candidate's distance below it is the drop. The second is stricter
(every changed borderline box counts), so it has its own threshold.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from edgedet.datasets import DetectionDataset, labels_for_images, list_images, load_dataset
from edgedet.errors import ModelError
from edgedet.eval.det import DetMetrics, evaluate_detections, load_onnx_spec, pseudo_label_dataset, read_image
from edgedet.spec import ModelSpec

log = logging.getLogger(__name__)

#: default allowed mAP50-95 drop in points (0-100 scale) against labels
MAX_MAP_DROP = 1.0
#: default allowed drop in points against the reference's own detections (no labels). mAP50-95 against
#: pseudo-labels counts every box that moved by a pixel, so it is far stricter than against real labels; measured
#: on coco128 (YOLOv5n, all 128 images), agreement drop vs label drop of the same INT8 file: 320: 7.3 (0.25),
#: 8.6 (0.1), 8.7 (0.15), 11.3 (1.21); 640: 8.6 (0.67), 8.3 (1.28), 9.8 (~1.2), 13.0 (1.66). 10 passes every file
#: within 0.7 label points and refuses those losing 1.2+, except one (8.3 for 1.28): with labels, pass --labels.
MAX_PSEUDO_DROP = 10.0


@dataclass(frozen=True)
class GateResult:
    """Outcome of one gate check (mAP values in [0, 1]; drop and threshold in points, 0-100).

    mode: "labels" or "reference". kept_float: nodes kept in float by the repair loop (empty if none).
    latency_ms: median model latency per image of reference and candidate (same run, ONNX Runtime CPU).
    """

    mode: str
    reference: DetMetrics
    candidate: DetMetrics
    drop_points: float
    threshold_points: float
    passed: bool
    candidate_path: Path | None = None
    kept_float: tuple[str, ...] = ()
    float_ops: tuple[str, ...] = ()  # op types left unquantized everywhere (the SiLU repair step)
    history: tuple[tuple[str, float, float], ...] = ()  # (what was tried, drop points, candidate ms p50)

    @property
    def speedup(self) -> float:
        return self.reference.latency_ms_p50 / self.candidate.latency_ms_p50

    def summary(self) -> str:
        what = (
            "labels gate: mAP50-95"
            if self.mode == "labels"
            else "FP32-agreement gate (no labels): mAP50-95 vs FP32 detections"
        )
        return (
            f"{what} {self.reference.map50_95:.3f} -> {self.candidate.map50_95:.3f} "
            f"(drop {self.drop_points:.2f} points, limit {self.threshold_points:.2f}, "
            f"{self.reference.num_images} images) "
            f"{'PASS' if self.passed else 'FAIL'}; model {self.reference.latency_ms_p50:.1f} -> "
            f"{self.candidate.latency_ms_p50:.1f} ms ({self.speedup:.2f}x)"
            + (f"; {len(self.kept_float)} layers kept in float" if self.kept_float else "")
            + (f", {'/'.join(self.float_ops)} in float" if self.float_ops else "")
        )


@dataclass(frozen=True)
class NodeSensitivity:
    """How much error one quantized layer adds: relative RMS error of its output (candidate vs reference) minus
    that of its input, averaged over the images. `output_error` is the plain relative RMS error."""

    name: str
    op_type: str
    added_error: float
    output_error: float


def _restrict(dataset: DetectionDataset, images: Sequence[Path] | None) -> DetectionDataset:
    if images is None:
        return dataset
    wanted = {Path(p).resolve() for p in images}
    idx = [i for i, im in enumerate(dataset) if im.path.resolve() in wanted]
    if len(idx) != len(wanted):
        raise ModelError(
            f"{len(wanted) - len(idx)} of the gate images have no labels in {dataset.name}; "
            "pass images from the labelled set or no labels"
        )
    return dataset[idx]


def accuracy_gate(
    reference_onnx: Path,
    candidate_onnx: Path,
    images: Sequence[Path] | None = None,
    labels: DetectionDataset | Path | str | None = None,
    max_map_drop: float | None = None,
    *,
    reference_conf: float = 0.25,
    threads: int = 2,
    progress: Callable[[int, int], None] | None = None,
) -> GateResult:
    """Score reference and candidate ONNX files and compare.

    images: the held-out images (with labels: a subset of the labelled set; None = all of it).
    labels: a DetectionDataset, YOLO folder or COCO json; None = compare against the reference's detections.
    max_map_drop: allowed mAP50-95 drop in points (default 1.0 with labels, 10.0 against the reference).
    Returns a GateResult; never raises on a failed gate (the caller decides: see `quantize_with_gate`).
    """
    if labels is not None:
        if isinstance(labels, DetectionDataset):
            ds = _restrict(labels, images)
        elif images is not None and Path(labels).is_dir() and not list_images(Path(labels)):
            ds = labels_for_images(images, labels)  # a bare labels/ folder beside the calibration images
        else:
            ds = _restrict(load_dataset(labels), images)
        mode = "labels"
        limit = MAX_MAP_DROP if max_map_drop is None else max_map_drop
    else:
        if not images:
            raise ModelError("the accuracy gate needs held-out images: pass --calib-holdout DIR or labels")
        ds = pseudo_label_dataset(reference_onnx, list(images), conf_threshold=reference_conf)
        if ds.num_objects == 0:
            raise ModelError(
                f"the FP32 model detects nothing (conf >= {reference_conf}) on the {len(images)} gate images, so "
                "the FP32-agreement gate has nothing to compare; pass --labels, images like the deployment "
                "scenes, or --no-gate"
            )
        mode = "reference"
        limit = MAX_PSEUDO_DROP if max_map_drop is None else max_map_drop
    ref = evaluate_detections(reference_onnx, ds, threads=threads, progress=progress)
    cand = evaluate_detections(candidate_onnx, ds, threads=threads, progress=progress)
    drop = 100.0 * (ref.map50_95 - cand.map50_95)
    return GateResult(mode, ref, cand, drop, limit, drop <= limit, Path(candidate_onnx))


def _intermediate_session(model: Any, tensor_names: Sequence[str], threads: int) -> Any:
    """An ORT session (no graph optimisation, so Q/DQ stay as written) that also outputs `tensor_names`."""
    import onnx
    import onnxruntime as ort

    m = onnx.ModelProto()
    m.CopyFrom(model)
    present = {o.name for o in m.graph.output}
    for name in tensor_names:
        if name not in present:
            m.graph.output.append(onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None))
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    opts.intra_op_num_threads = threads
    opts.log_severity_level = 3
    return ort.InferenceSession(m.SerializeToString(), opts, providers=["CPUExecutionProvider"])


def find_sensitive_nodes(
    reference_onnx: Path,
    candidate_onnx: Path,
    images: Sequence[Path],
    spec: ModelSpec | None = None,
    op_types: Sequence[str] = ("Conv",),
    threads: int = 2,
) -> list[NodeSensitivity]:
    """Quantized layers of `candidate_onnx` (a Q/DQ file) ranked by the error each adds, worst first.

    For every node of `op_types` whose input is fed through a QuantizeLinear/DequantizeLinear pair, both
    models are run on `images` (a few are enough) and the relative RMS error of the node's float output is
    compared with that of the float tensor entering its Q/DQ. The names are valid `exclude_nodes` for
    `quantize_int8` on the same FP32 file.
    """
    import onnx

    from edgedet.preprocess import Preprocessor

    ref_model = onnx.load(str(reference_onnx))
    cand_model = onnx.load(str(candidate_onnx))
    producer = {o: n for n in cand_model.graph.node for o in n.output}
    ref_tensors = {o for n in ref_model.graph.node for o in n.output} | {
        i.name for i in ref_model.graph.input
    }
    pairs: list[tuple[Any, str, str]] = []  # (node, float tensor entering its Q/DQ, its output)
    for n in cand_model.graph.node:
        if n.op_type not in op_types or not n.input:
            continue
        dq = producer.get(n.input[0])
        if dq is None or dq.op_type != "DequantizeLinear":
            continue
        q = producer.get(dq.input[0])
        if q is None or q.op_type != "QuantizeLinear":
            continue
        src, dst = q.input[0], n.output[0]
        if src in ref_tensors and dst in ref_tensors:
            pairs.append((n, src, dst))
    if not pairs:
        return []
    names = sorted({t for _, s, d in pairs for t in (s, d)})
    spec = spec if spec is not None else load_onnx_spec(Path(reference_onnx))
    pre = Preprocessor(spec)
    ref_sess = _intermediate_session(ref_model, names, threads)
    cand_sess = _intermediate_session(cand_model, names, threads)
    err_sum: dict[str, float] = dict.fromkeys(names, 0.0)
    for p in images:
        tensor, _ = pre(read_image(Path(p)))
        feed = {spec.input_name: tensor}
        ref_out = dict(zip([o.name for o in ref_sess.get_outputs()], ref_sess.run(None, feed), strict=True))
        cand_out = dict(
            zip([o.name for o in cand_sess.get_outputs()], cand_sess.run(None, feed), strict=True)
        )
        for t in names:
            a: npt.NDArray[np.float64] = np.asarray(ref_out[t], np.float64)
            b: npt.NDArray[np.float64] = np.asarray(cand_out[t], np.float64)
            err_sum[t] += float(np.sqrt(np.mean((a - b) ** 2)) / (np.sqrt(np.mean(a**2)) + 1e-12))
    k = max(len(images), 1)
    ranked = [
        NodeSensitivity(n.name, n.op_type, (err_sum[d] - err_sum[s]) / k, err_sum[d] / k) for n, s, d in pairs
    ]
    ranked.sort(key=lambda r: r.added_error, reverse=True)
    return ranked


GATE_KEY = "edgedet.gate"
#: the SiLU decomposition's op types, left in float by the first repair step
SILU_OPS: tuple[str, ...] = ("Sigmoid", "Mul")


class GateRefused(ModelError):
    """The INT8 model lost more accuracy than allowed even after the repair loop; `result` is the best try,
    `rejected_path` where it was written (a name `run` does not pick up)."""

    def __init__(self, message: str, result: GateResult, rejected_path: Path | None) -> None:
        super().__init__(message)
        self.result = result
        self.rejected_path = rejected_path


def rejected_path(out: Path) -> Path:
    """Where a refused model goes: `yolov5n.int8.onnx` -> `yolov5n.int8.rejected.onnx`."""
    out = Path(out)
    return out.with_name(out.name[: -len(out.suffix)] + ".rejected" + out.suffix)


def verdict(result: GateResult | None, *, skipped: bool = False) -> dict[str, Any]:
    """The gate's verdict as stored under `GATE_KEY` in the ONNX metadata (JSON). Keys: verdict (pass | refused |
    skipped), mode (labels | reference), metric, fp32, int8 (metric values, 0-1), drop_points, limit_points,
    images, kept_float (node count), float_ops (op types left in float), tries ([what, drop points] per try),
    speedup."""
    if skipped or result is None:
        return {"verdict": "skipped", "reason": "--no-gate: INT8 accuracy was not checked"}
    return {
        "verdict": "pass" if result.passed else "refused",
        "mode": result.mode,
        "metric": "mAP50-95" if result.mode == "labels" else "mAP50-95 vs FP32 detections (conf 0.25)",
        "fp32": round(result.reference.map50_95, 5),
        "int8": round(result.candidate.map50_95, 5),
        "drop_points": round(result.drop_points, 3),
        "limit_points": round(result.threshold_points, 3),
        "images": result.reference.num_images,
        "kept_float": len(result.kept_float),
        "float_ops": list(result.float_ops),
        "tries": [[n, round(d, 3)] for n, d, _ in result.history],
        "speedup": round(result.speedup, 3) if np.isfinite(result.speedup) else None,
    }


def write_verdict(path: Path, info: dict[str, Any]) -> None:
    """Store `info` (see `verdict`) as JSON under `GATE_KEY` in the ONNX file's metadata, in place."""
    import json

    import onnx

    from edgedet.convert.export_onnx import save_single_file

    m = onnx.load(str(path))
    keep = [p for p in m.metadata_props if p.key != GATE_KEY]
    del m.metadata_props[:]
    m.metadata_props.extend(keep)
    entry = m.metadata_props.add()
    entry.key, entry.value = GATE_KEY, json.dumps(info, sort_keys=True)
    save_single_file(m, Path(path))


def read_verdict(model: Any) -> dict[str, Any] | None:
    """The stored verdict of an onnx ModelProto (None when there is none)."""
    import json

    raw = next((p.value for p in model.metadata_props if p.key == GATE_KEY), None)
    if raw is None:
        return None
    try:
        out = json.loads(raw)
    except ValueError:
        return {"verdict": "unreadable", "raw": raw[:200]}
    return out if isinstance(out, dict) else {"verdict": "unreadable"}


def verdict_line(info: dict[str, Any]) -> str:
    """One line for `edgedet info`."""
    v = info.get("verdict", "?")
    if v == "skipped":
        return "skipped (--no-gate): INT8 accuracy not checked"
    if v not in ("pass", "refused"):
        return str(v)
    return (
        f"{'PASS' if v == 'pass' else 'REFUSED'}: {info.get('metric')} {info.get('fp32', float('nan')):.3f} -> "
        f"{info.get('int8', float('nan')):.3f} (drop {info.get('drop_points', float('nan')):.2f} points, limit "
        f"{info.get('limit_points', float('nan')):.2f}, {info.get('images')} images"
        + (f", {info.get('kept_float')} layers in float" if info.get("kept_float") else "")
        + (f", {'/'.join(info.get('float_ops') or [])} in float" if info.get("float_ops") else "")
        + ")"
    )


def quantize_with_gate(
    fp32_onnx: Path,
    out: Path,
    calib_images: Sequence[Path],
    eval_images: Sequence[Path] | None = None,
    labels: DetectionDataset | Path | str | None = None,
    max_map_drop: float | None = None,
    *,
    spec: ModelSpec | None = None,
    method: Literal["minmax", "percentile", "entropy"] = "percentile",
    float_steps: Sequence[int] = (2, 4, 8),
    sensitivity_images: int = 4,
    activation_type: Literal["uint8", "int8"] = "uint8",
    threads: int = 2,
    progress: Callable[[str], None] | None = None,
    calib_progress: Callable[[int, int], None] | None = None,
) -> GateResult:
    """Quantize, gate, and while the gate fails re-quantize with more kept in float (same calibration ranges):
    first the SiLU activations (Sigmoid/Mul) and the stem conv, then also the k most sensitive Conv layers (k
    from `float_steps`). The loop stops at the first try that is not better than the one before it.

    Every try is written to a scratch file beside `out`; only a passing model is moved to `out` (with the
    verdict under `GATE_KEY` in its metadata). When no try passes, the best one goes to `rejected_path(out)`
    (verdict "refused"), a stale `out` from an earlier run is removed, and GateRefused (a ModelError) says in
    one line what was tried. Returns the passing GateResult (`history` lists every try).
    """
    import shutil
    import tempfile

    from edgedet.convert.quantize import quantize_int8_detailed

    fp32_onnx, out = Path(fp32_onnx), Path(out)
    spec = spec if spec is not None else load_onnx_spec(fp32_onnx)

    def say(msg: str) -> None:
        if progress is not None:  # one channel per message, so -v does not print it twice
            progress(msg)
        else:
            log.info(msg)

    out.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=".edgedet-int8-", dir=out.parent))
    try:
        t0 = time.perf_counter()
        first = quantize_int8_detailed(
            fp32_onnx,
            scratch / "try0.onnx",
            calib_images,
            spec,
            method,
            activation_type=activation_type,
            progress=calib_progress,
            threads=threads,
        )
        result = accuracy_gate(fp32_onnx, first.path, eval_images, labels, max_map_drop, threads=threads)
        history: list[tuple[str, float, float]] = [
            ("all int8", result.drop_points, result.candidate.latency_ms_p50)
        ]
        result = replace(result, history=tuple(history))
        say(f"int8 try 1 ({time.perf_counter() - t0:.0f} s): {result.summary()}")
        best = result
        if not result.passed:
            probe = list(eval_images if eval_images is not None else calib_images)[:sensitivity_images]
            ranking = find_sensitive_nodes(fp32_onnx, first.path, probe, spec, threads=threads)
            say("most sensitive layers: " + ", ".join(f"{r.name} ({r.added_error:.3f})" for r in ranking[:8]))
            from edgedet.convert.quantize import QUANT_OP_TYPES, first_conv

            # First repair: SiLU (Sigmoid * Mul) and the stem conv in float, which halves the quantization
            # points per layer (measured on YOLOv5n@640, coco128: -0.85 mAP50-95 points vs -1.26 all-int8);
            # then the most sensitive layers on top of that.
            silu_ops = tuple(o for o in QUANT_OP_TYPES if o not in SILU_OPS)
            stem = first_conv(fp32_onnx)
            # A CPU file already runs its SiLUs in float (fused to QuickGelu) and its stem as a float conv: it
            # goes straight to the sensitive layers.
            steps: list[tuple[str, tuple[str, ...]]] = []
            if not first.stem_float:
                steps.append(("stem conv in float" if first.silu_fused else "SiLU + stem conv in float", stem))
            for k in float_steps:
                extra = tuple(r.name for r in ranking if r.name not in stem)[:k]
                if len(extra) < k and steps and steps[-1][1] == stem + extra:
                    break  # no more layers to try
                steps.append((f"+{len(extra)} sensitive layers in float", stem + extra))
            for i, (label, keep) in enumerate(steps, start=1):
                path = scratch / f"try{i}.onnx"
                quantize_int8_detailed(
                    fp32_onnx,
                    path,
                    calib_images,
                    spec,
                    method,
                    keep,
                    activation_type=activation_type,
                    op_types=silu_ops,
                    ranges=first.ranges,
                    threads=threads,
                )
                res = accuracy_gate(fp32_onnx, path, eval_images, labels, max_map_drop, threads=threads)
                history.append((label, res.drop_points, res.candidate.latency_ms_p50))
                res = replace(res, kept_float=keep, float_ops=SILU_OPS, history=tuple(history))
                say(f"int8, {label}: {res.summary()}")
                if res.drop_points >= best.drop_points:
                    say(f"{label} made it worse, not better: the repair loop stops")
                    best = replace(best, history=tuple(history))
                    break
                best = res
                if res.passed:
                    break
        assert best.candidate_path is not None
        write_verdict(best.candidate_path, verdict(best))
        if best.passed:
            shutil.move(str(best.candidate_path), str(out))
            rejected_path(out).unlink(missing_ok=True)
            return replace(best, candidate_path=out)
        rej = rejected_path(out)
        shutil.move(str(best.candidate_path), str(rej))
        stale = out.exists()
        out.unlink(missing_ok=True)
        tried = "; ".join(f"{n}: drop {d:.2f}" for n, d, _ in best.history)
        wording = (
            "mAP50-95 points against the labels"
            if best.mode == "labels"
            else "points of agreement with the FP32 model's own detections (no labels given)"
        )
        raise GateRefused(
            f"INT8 refused: it loses {best.drop_points:.2f} {wording} (limit {best.threshold_points:.2f}); tried "
            f"{tried}; the best try is kept as {rej.name} for inspection"
            + (f" and the older {out.name} was removed" if stale else "")
            + "; use FP16, more calibration images like the deployment scenes, --max-map-drop, or --no-gate",
            replace(best, candidate_path=rej),
            rej,
        )
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


__all__ = [
    "GATE_KEY",
    "MAX_MAP_DROP",
    "MAX_PSEUDO_DROP",
    "GateRefused",
    "GateResult",
    "NodeSensitivity",
    "accuracy_gate",
    "find_sensitive_nodes",
    "quantize_with_gate",
    "read_verdict",
    "rejected_path",
    "verdict",
    "verdict_line",
    "write_verdict",
]
