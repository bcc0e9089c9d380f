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
#: default allowed drop in points against the reference's own detections (no labels)
MAX_PSEUDO_DROP = 5.0


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
    history: tuple[tuple[int, float, float], ...] = ()  # (nodes kept in float, drop points, candidate ms p50)

    @property
    def speedup(self) -> float:
        return self.reference.latency_ms_p50 / self.candidate.latency_ms_p50

    def summary(self) -> str:
        return (
            f"{self.mode} gate: mAP50-95 {self.reference.map50_95:.3f} -> {self.candidate.map50_95:.3f} "
            f"(drop {self.drop_points:.2f} points, limit {self.threshold_points:.2f}) "
            f"{'PASS' if self.passed else 'FAIL'}; model {self.reference.latency_ms_p50:.1f} -> "
            f"{self.candidate.latency_ms_p50:.1f} ms ({self.speedup:.2f}x)"
            + (f"; {len(self.kept_float)} layers kept in float" if self.kept_float else "")
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
    max_map_drop: allowed mAP50-95 drop in points (default 1.0 with labels, 5.0 against the reference).
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
) -> GateResult:
    """Quantize, gate, and while the gate fails re-quantize with the k most sensitive Conv layers kept in float
    (k from `float_steps`). Returns the passing GateResult (its `history` lists every try with its drop and
    latency); raises ModelError in one line when the last try still fails."""
    from edgedet.convert.quantize import quantize_int8_detailed

    fp32_onnx, out = Path(fp32_onnx), Path(out)
    spec = spec if spec is not None else load_onnx_spec(fp32_onnx)

    def say(msg: str) -> None:
        if progress is not None:  # one channel per message, so -v does not print it twice
            progress(msg)
        else:
            log.info(msg)

    t0 = time.perf_counter()
    first = quantize_int8_detailed(
        fp32_onnx, out, calib_images, spec, method, activation_type=activation_type
    )
    result = accuracy_gate(fp32_onnx, out, eval_images, labels, max_map_drop, threads=threads)
    history = [(0, result.drop_points, result.candidate.latency_ms_p50)]
    say(f"int8 try 1 ({time.perf_counter() - t0:.0f} s): {result.summary()}")
    if result.passed:
        return replace(result, history=tuple(history))
    probe = list(eval_images if eval_images is not None else calib_images)[:sensitivity_images]
    ranking = find_sensitive_nodes(fp32_onnx, first.path, probe, spec, threads=threads)
    say("most sensitive layers: " + ", ".join(f"{r.name} ({r.added_error:.3f})" for r in ranking[:8]))
    for k in float_steps:
        keep = tuple(r.name for r in ranking[:k])
        if not keep:
            break
        quantize_int8_detailed(
            fp32_onnx, out, calib_images, spec, method, keep, activation_type=activation_type
        )
        result = accuracy_gate(fp32_onnx, out, eval_images, labels, max_map_drop, threads=threads)
        result = replace(result, kept_float=keep)
        history.append((len(keep), result.drop_points, result.candidate.latency_ms_p50))
        say(f"int8 with {len(keep)} layers in float: {result.summary()}")
        if result.passed:
            return replace(result, history=tuple(history))
    tried = "; ".join(f"{n} float: -{d:.2f}" for n, d, _ in history)
    raise ModelError(
        f"INT8 loses {result.drop_points:.2f} mAP50-95 points (limit {result.threshold_points:.2f}) even with "
        f"{len(result.kept_float)} layers in float ({tried}); use FP16, more/closer calibration images, or raise --max-map-drop"
    )


__all__ = [
    "MAX_MAP_DROP",
    "MAX_PSEUDO_DROP",
    "GateResult",
    "NodeSensitivity",
    "accuracy_gate",
    "find_sensitive_nodes",
    "quantize_with_gate",
]
