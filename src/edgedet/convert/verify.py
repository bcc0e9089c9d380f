"""Parity: does the exported file compute what the PyTorch model (or a reference ONNX) computes?

Both sides run on the same inputs: calibration images put through the runtime's preprocess when given, else
deterministic synthetic scenes (gradient sky/ground, textured boxes and blobs; not zeros, not pure noise,
because a detector's activations on those say little about real frames). Each output is compared element-wise
with numpy's allclose rule |cand - ref| <= atol + rtol * |ref|; the report gives, per output, the max abs
error, the max relative error (over elements with |ref| >= `rel_floor`) and the worst ratio to the tolerance.

The accuracy gate (mAP drop of INT8 vs FP32) lives in `edgedet.convert.gate`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from edgedet.errors import DataError, ModelError
from edgedet.spec import ModelSpec

# defaults per precision: (rtol, atol, box_atol), element-wise over every candidate row. box_atol applies to
# the 4 box coordinates (input pixels), atol to everything else (scores). FP16: float16 spacing is 0.25 px
# near 320 px and errors grow through ~60 layers; yolov5n at 640 measured max rel 3.7% on a box w/h (where
# (2 sigmoid)^2 amplifies) and 0.04 px off on a centre near x = 0 (cancellation), hence 5% and 0.25 px.
TOLERANCES: dict[str, tuple[float, float, float]] = {"fp32": (1e-3, 1e-3, 1e-2), "fp16": (5e-2, 2e-2, 0.25)}
# output_format -> (axis holding the box coordinates in a 3-D output, first index after them)
_BOX_AXIS = {"yolov5": -1, "yolov8": 1, "end2end": -1}
REL_FLOOR = 1e-2


@dataclass(frozen=True)
class OutputError:
    """Error of one output: max_abs (output units), max_rel (over |ref| >= rel_floor), worst = max of
    |cand - ref| / (atol + rtol |ref|) (<= 1 passes)."""

    name: str
    shape: tuple[int, ...]
    max_abs: float
    max_rel: float
    worst: float

    @property
    def passed(self) -> bool:
        return self.worst <= 1.0


@dataclass(frozen=True)
class ParityReport:
    reference: str
    candidate: str
    n_inputs: int
    rtol: float
    atol: float
    outputs: tuple[OutputError, ...]
    box_atol: float | None = None

    @property
    def passed(self) -> bool:
        return all(o.passed for o in self.outputs)

    @property
    def max_abs(self) -> float:
        return max((o.max_abs for o in self.outputs), default=0.0)

    @property
    def max_rel(self) -> float:
        return max((o.max_rel for o in self.outputs), default=0.0)

    def summary(self) -> str:
        parts = [f"{o.name}: max abs {o.max_abs:.3g}, max rel {o.max_rel:.3g}" for o in self.outputs]
        verdict = "ok" if self.passed else "FAILED"
        return (
            f"parity {self.candidate} vs {self.reference} on {self.n_inputs} inputs "
            f"(rtol {self.rtol:g}, atol {self.atol:g}{self._box_note}): {verdict}; " + "; ".join(parts)
        )

    @property
    def _box_note(self) -> str:
        return f", boxes atol {self.box_atol:g} px" if self.box_atol is not None else ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "reference": self.reference,
            "candidate": self.candidate,
            "n_inputs": self.n_inputs,
            "rtol": self.rtol,
            "atol": self.atol,
            "box_atol": self.box_atol,
            "passed": self.passed,
            "outputs": [
                {
                    "name": o.name,
                    "shape": list(o.shape),
                    "max_abs": o.max_abs,
                    "max_rel": o.max_rel,
                    "worst": o.worst,
                }
                for o in self.outputs
            ],
        }

    def raise_if_failed(self) -> None:
        if not self.passed:
            bad = next(o for o in self.outputs if not o.passed)
            raise ModelError(
                f"{self.candidate} does not match {self.reference}: output {bad.name} differs by up to "
                f"{bad.max_abs:.3g} ({bad.worst:.1f}x the tolerance rtol {self.rtol:g} atol {self.atol:g}{self._box_note}); "
                "the export changed the model's maths: try another --opset, or report the model"
            )


def synthetic_scene(index: int, hw: tuple[int, int] = (480, 640)) -> npt.NDArray[np.uint8]:
    """A deterministic HxWx3 uint8 BGR scene: sky/ground gradients, shaded boxes and ellipses, mild texture."""
    import cv2

    h, w = hw
    rng = np.random.default_rng(1000 + index)
    yy = np.linspace(0.0, 1.0, h, dtype=np.float32)[:, None, None]
    sky, ground = rng.uniform(60, 230, 3), rng.uniform(20, 160, 3)
    horizon = rng.uniform(0.3, 0.6)
    img = np.where(yy < horizon, sky * (0.7 + 0.3 * yy), ground * (0.6 + 0.4 * yy)).astype(np.float32)
    img = np.broadcast_to(img, (h, w, 3)).copy()
    for _ in range(int(rng.integers(4, 10))):
        x1, y1 = int(rng.integers(0, w - 20)), int(rng.integers(0, h - 20))
        bw, bh = int(rng.integers(12, max(13, w // 3))), int(rng.integers(12, max(13, h // 3)))
        color = tuple(float(c) for c in rng.uniform(0, 255, 3))
        if rng.random() < 0.5:
            cv2.rectangle(img, (x1, y1), (min(w - 1, x1 + bw), min(h - 1, y1 + bh)), color, -1)
        else:
            cv2.ellipse(img, (x1, y1), (bw // 2, bh // 2), float(rng.uniform(0, 180)), 0, 360, color, -1)
    img += rng.normal(0.0, 6.0, (h, w, 1)).astype(np.float32)  # sensor-like grain, shared across channels
    img = cv2.GaussianBlur(img, (3, 3), 0)
    return np.clip(img, 0, 255).astype(np.uint8)


def preprocess_image(image_bgr: npt.NDArray[np.uint8], spec: ModelSpec) -> npt.NDArray[np.float32]:
    """(1, 3, H, W) float32 input for `spec`, through the runtime's own Preprocessor."""
    from edgedet.preprocess import Preprocessor

    tensor, _ = Preprocessor(spec)(image_bgr)
    return np.array(tensor, dtype=np.float32, copy=True)  # the Preprocessor reuses its buffer


def sample_inputs(
    spec: ModelSpec, images: Sequence[str | Path] | None = None, n: int = 4
) -> list[npt.NDArray[np.float32]]:
    """`n` model inputs (1, 3, H, W) float32: the first `n` readable images, else synthetic scenes."""
    import cv2

    out: list[npt.NDArray[np.float32]] = []
    for p in list(images or [])[: max(n, 0) * 2]:
        img = cv2.imread(str(p), cv2.IMREAD_COLOR)
        if img is None:
            continue
        out.append(preprocess_image(np.asarray(img, np.uint8), spec))
        if len(out) >= n:
            break
    if images and not out:
        raise DataError(
            f"none of the {len(images)} calibration images could be read; pass a folder of .jpg/.png"
        )
    i = 0
    while len(out) < n:
        out.append(preprocess_image(synthetic_scene(i), spec))
        i += 1
    return out


def run_torch(module: Any, inputs: Sequence[npt.NDArray[np.float32]]) -> list[list[npt.NDArray[np.float32]]]:
    """Outputs of a torch module on each input, as float32 numpy arrays (one list per input)."""
    from edgedet._optional import require

    torch = require("torch", "checking parity against PyTorch")
    results = []
    with torch.no_grad():
        for x in inputs:
            y = module(torch.from_numpy(np.ascontiguousarray(x)))
            ys = list(y) if isinstance(y, (list, tuple)) else [y]
            results.append([t.detach().float().cpu().numpy() for t in ys])
    return results


def onnx_session(path: str | Path, threads: int = 2) -> Any:
    """An ONNX Runtime CPU session (full graph optimisation, `threads` intra-op threads)."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.log_severity_level = 3
    try:
        return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own Fail/InvalidGraph types
        raise ModelError(f"ONNX Runtime cannot load {path}: {str(exc).splitlines()[0]}") from exc


def run_onnx(
    path: str | Path, inputs: Sequence[npt.NDArray[np.float32]], threads: int = 2
) -> tuple[list[str], list[list[npt.NDArray[np.float32]]]]:
    """(output names, outputs per input) of an ONNX file on ONNX Runtime CPU."""
    sess = onnx_session(path, threads)
    name = sess.get_inputs()[0].name
    names = [o.name for o in sess.get_outputs()]
    return names, [[np.asarray(o, np.float32) for o in sess.run(None, {name: x})] for x in inputs]


def compare(
    reference: Sequence[Sequence[npt.NDArray[np.float32]]],
    candidate: Sequence[Sequence[npt.NDArray[np.float32]]],
    names: Sequence[str],
    *,
    rtol: float,
    atol: float,
    reference_name: str = "reference",
    candidate_name: str = "candidate",
    rel_floor: float = REL_FLOOR,
    box_atol: float | None = None,
    output_format: str | None = None,
) -> ParityReport:
    """Element-wise comparison of outputs (per input, per output) -> ParityReport. With `output_format` and
    `box_atol`, the 4 box coordinates of a 3-D head output use `box_atol` (pixels) instead of `atol`."""
    if len(reference) != len(candidate):
        raise ValueError("reference and candidate ran on different numbers of inputs")
    errors = []
    for k, name in enumerate(names):
        max_abs = max_rel = worst = 0.0
        shape: tuple[int, ...] = ()
        for ref_outs, cand_outs in zip(reference, candidate, strict=True):
            if len(ref_outs) != len(cand_outs):
                raise ModelError(
                    f"{candidate_name} has {len(cand_outs)} outputs, {reference_name} has {len(ref_outs)}; "
                    "the export dropped or added an output"
                )
            r = np.asarray(ref_outs[k], np.float64)
            c = np.asarray(cand_outs[k], np.float64)
            if r.shape != c.shape:
                raise ModelError(
                    f"output {name}: {candidate_name} has shape {c.shape}, {reference_name} has {r.shape}; "
                    "check --imgsz and --format"
                )
            if output_format == "end2end" and r.ndim == 3 and r.shape[-1] == 6:
                c = align_end2end_rows(r, c, atol)
            shape = tuple(int(d) for d in r.shape)
            diff = np.abs(c - r)
            if not np.isfinite(c).all():
                diff = np.where(np.isfinite(c), diff, np.inf)
            max_abs = max(max_abs, float(diff.max(initial=0.0)))
            big = np.abs(r) >= rel_floor
            if big.any():
                max_rel = max(max_rel, float((diff[big] / np.abs(r[big])).max()))
            atol_arr = np.full(r.shape, atol)
            if box_atol is not None and output_format in _BOX_AXIS and r.ndim == 3:
                np.moveaxis(atol_arr, _BOX_AXIS[output_format], -1)[..., :4] = box_atol
            worst = max(worst, float((diff / (atol_arr + rtol * np.abs(r))).max(initial=0.0)))
        errors.append(OutputError(name, shape, max_abs, max_rel, worst))
    return ParityReport(reference_name, candidate_name, len(reference), rtol, atol, tuple(errors), box_atol)


def align_end2end_rows(
    reference: npt.NDArray[np.float64], candidate: npt.NDArray[np.float64], score_atol: float
) -> npt.NDArray[np.float64]:
    """Reorder the candidate's rows of an NMS-free output [B, K, 6] (x1, y1, x2, y2, score, class) to match
    the reference's, each reference row taking the nearest candidate row of the same class.

    Row order carries no meaning (decoding keeps every row above the threshold), and near-equal scores swap
    places under float noise, so an element-wise comparison would fail a correct export. Reference rows whose
    score is within `score_atol` of the K-th (lowest kept) score may legitimately be absent from the candidate
    (a near-tie at the cut-off): those without a candidate row within `_CUTOFF_MATCH` (pixels and score) are
    compared with themselves; every other row is compared with its match."""
    out = np.empty_like(candidate)
    for b in range(reference.shape[0]):
        r, c = reference[b], candidate[b]
        dist = np.abs(r[:, None, :5] - c[None, :, :5]).max(axis=-1)
        dist[r[:, None, 5] != c[None, :, 5]] = np.inf
        matched = c[np.argmin(dist, axis=1)]
        dropped = (r[:, 4] <= r[:, 4].min() + score_atol) & (dist.min(axis=1) > _CUTOFF_MATCH)
        matched[dropped] = r[dropped]
        out[b] = matched
    return out


# A row at the score cut-off counts as present in the other output when a same-class row lies this close
# (input pixels for boxes); a different detection is further away.
_CUTOFF_MATCH = 1.0


def check_parity(
    reference: Any,
    candidate_onnx: str | Path,
    spec: ModelSpec,
    *,
    images: Sequence[str | Path] | None = None,
    n: int = 4,
    rtol: float | None = None,
    atol: float | None = None,
    box_atol: float | None = None,
    raise_on_fail: bool = True,
    threads: int = 2,
) -> ParityReport:
    """Compare `candidate_onnx` on ONNX Runtime CPU against `reference`: a torch nn.Module or a path to an ONNX
    file. Tolerances default to TOLERANCES[precision of the candidate] (box coordinates: box_atol pixels). Raises ModelError when the outputs
    differ beyond tolerance and `raise_on_fail`; always returns the report otherwise."""
    candidate_onnx = Path(candidate_onnx)
    inputs = sample_inputs(spec, images, n)
    names, cand = run_onnx(candidate_onnx, inputs, threads)
    if isinstance(reference, (str, Path)):
        ref_names, ref = run_onnx(reference, inputs, threads)
        ref_label = Path(reference).name
        if len(ref_names) != len(names):
            raise ModelError(f"{candidate_onnx.name} has outputs {names}, {ref_label} has {ref_names}")
    else:
        ref = run_torch(reference, inputs)
        ref_label = "PyTorch"
    precision = _precision_of(candidate_onnx, spec)
    d_rtol, d_atol, d_box = TOLERANCES.get(precision, TOLERANCES["fp32"])
    report = compare(
        ref,
        cand,
        names,
        rtol=d_rtol if rtol is None else rtol,
        atol=d_atol if atol is None else atol,
        box_atol=d_box if box_atol is None else box_atol,
        output_format=spec.output_format,
        reference_name=ref_label,
        candidate_name=candidate_onnx.name,
    )
    if raise_on_fail:
        report.raise_if_failed()
    return report


def _precision_of(path: Path, spec: ModelSpec) -> str:
    try:
        from edgedet.convert.export_onnx import read_spec

        return read_spec(path).precision
    except (ModelError, DataError):
        return spec.precision
