"""INT8 on ONNX Runtime CPU per Ultralytics family (YOLOv5nu, YOLOv8n, YOLO11n, YOLO26n): does `edgedet convert
--int8` quantize it and pass its gate, how much faster is it than FP32, and how does Ultralytics' own INT8 ONNX
export (`export(format="onnx", quantize=8, data=...)`) compare on the same images and in the same timing loop.

    YOLO_OFFLINE=1 python benchmarks/bench_int8_families.py [--sizes 640 320] [--families v5nu v8n 11n 26n 26n-o2m]
        [--images 64] [--rounds 30] [--threads 1 2]

There are no trained weights for these families here: checkpoints are random-init, made by the real ultralytics
package with BatchNorm statistics and class-conv scales set on real images so scores spread
(tests/convert/ultralytics_helpers.py). Without labels the gate runs in its FP32-agreement mode: mAP50-95 of the
INT8 model against the FP32 model's own detections (conf 0.25), limit 5 points. Ultralytics' INT8 file is
scored the same way (edgedet.convert.gate.accuracy_gate, no labels, against edgedet's FP32 file, same images).

Images: the first --images of coco128 train2017 (symlinked into a scratch dataset, so ultralytics' label cache
is written there and not into the shared data). edgedet calibrates on 3/4 of them and its gate scores all of
them (`edgedet convert` holds every 4th image out of calibration); Ultralytics calibrates on all of them.
Latency: ONNX Runtime CPU, batch 1, model `run` only, edgedet FP32 / edgedet INT8 / Ultralytics INT8 timed
round-robin in one loop; 2 intra-op threads are timed only when the 1-minute load is under 1.2 (a busy
2-core machine makes them noise). Read the ratios, not the absolute ms.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"
COCO = DATA / "coco128"
# id -> (ultralytics_helpers family, edgedet --one2many); "yolov5n-trained" is the real YOLOv5-repo checkpoint,
# the control: what the same FP32-agreement gate says about a trained model (Ultralytics cannot export it)
FAMILIES: dict[str, tuple[str, bool]] = {
    "yolov5n-trained": ("", False),
    "v5nu": ("v5nu", False),
    "v8n": ("v8n", False),
    "11n": ("11n", False),
    "26n": ("26n", False),
    "26n-o2m": ("26n", True),
}
QUIET_LOAD = 1.2


def scratch_dataset(root: Path, n: int) -> tuple[Path, Path]:
    """A YOLO dataset of the first n coco128 images (symlinks) and its data yaml; returns (images dir, yaml)."""
    import yaml
    from tests.convert.ultralytics_helpers import coco_names

    images = sorted((COCO / "images" / "train2017").glob("*.jpg"))[:n]
    img_dir, lbl_dir = root / "images" / "train2017", root / "labels" / "train2017"
    img_dir.mkdir(parents=True)
    lbl_dir.mkdir(parents=True)
    for p in images:
        (img_dir / p.name).symlink_to(p)
        label = COCO / "labels" / "train2017" / (p.stem + ".txt")
        if label.is_file():
            (lbl_dir / label.name).symlink_to(label)
    data = root / "data.yaml"
    data.write_text(
        yaml.safe_dump(
            {"path": str(root), "train": "images/train2017", "val": "images/train2017", "names": coco_names()}
        )
    )
    return img_dir, data


def edgedet_int8(ckpt: Path, size: int, one2many: bool, calib: Path, out: Path) -> dict[str, Any]:
    """`edgedet convert ckpt --imgsz size --int8 --calib calib [--one2many]` through the Python API."""
    from edgedet.convert.api import ConvertConfig, convert, output_paths
    from edgedet.convert.gate import GateRefused, verdict
    from edgedet.errors import ModelError

    cfg = ConvertConfig(
        source=str(ckpt),
        imgsz=size,
        int8=True,
        calib=str(calib),
        output=str(out),
        loader="builtin",  # edgedet's own reader: ultralytics is not used to load
        one2many=one2many,
    )
    t0 = time.perf_counter()
    notes: list[str] = []
    parity_failed = ""
    try:
        try:
            res = convert(cfg, progress=notes.append)
        except ModelError as exc:
            if "does not match PyTorch" not in str(exc) or not output_paths(cfg)["fp32"].is_file():
                raise
            # The FP32 export missed the parity tolerance: still quantize that ONNX (as `edgedet convert
            # file.onnx --int8` would), so the INT8 numbers exist; the table says parity failed.
            parity_failed = f"parity FAILED: {str(exc).split(': ', 1)[-1][:160]}"
            cfg = replace(cfg, source=str(output_paths(cfg)["fp32"]), output=str(out / "from_onnx"))
            res = convert(cfg, progress=notes.append)
        fp32, int8 = res.artifact("fp32"), res.artifact("int8")
        assert fp32 is not None and int8 is not None
        row = {"fp32": fp32.path, "int8": int8.path, "gate": int8.gate or {}}
    except GateRefused as exc:  # the refused file is still timed: how far off it is matters
        row = {"fp32": output_paths(cfg)["fp32"], "int8": exc.rejected_path, "gate": verdict(exc.result)}
    except Exception as exc:  # reported in the table: which family fails, and why
        return {"error": f"{type(exc).__name__}: {str(exc).splitlines()[0][:300]}", "log": notes}
    row["seconds"] = time.perf_counter() - t0
    row["log"] = notes
    # convert's own check of the FP32 ONNX against the PyTorch module it loaded (same images)
    row["parity"] = parity_failed or next((n for n in notes if n.startswith("parity ")), "no parity line")
    return row


def kept_in_float(path: Path) -> dict[str, int]:
    """Float compute nodes of a Q/DQ file by op type: nodes none of whose inputs come from a DequantizeLinear
    (shape plumbing such as Reshape/Shape/Constant left out)."""
    import onnx

    m = onnx.load(str(path))
    producer = {o: n.op_type for n in m.graph.node for o in n.output}
    skip = {"QuantizeLinear", "DequantizeLinear", "Constant", "Shape", "Gather", "Unsqueeze", "Squeeze",
            "Reshape", "Transpose", "Flatten", "Identity", "Cast", "Slice", "Split", "Concat", "ConstantOfShape",
            "Range", "Expand", "Equal", "Where"}  # fmt: skip
    counts: dict[str, int] = {}
    for n in m.graph.node:
        if n.op_type in skip:
            continue
        if not any(producer.get(i) == "DequantizeLinear" for i in n.input):
            counts[n.op_type] = counts.get(n.op_type, 0) + 1
    return counts


def ultralytics_int8(ckpt: Path, size: int, one2many: bool, data: Path, out: Path) -> Path:
    """Ultralytics' own INT8 ONNX (quantize=8; ORT quantize_static on Conv/Gemm/MatMul), same head as edgedet's."""
    import shutil

    from ultralytics import YOLO

    out.mkdir(parents=True, exist_ok=True)
    local = out / ckpt.name
    shutil.copy(ckpt, local)  # the exporter writes beside the checkpoint
    kw: dict[str, Any] = {} if one2many else {"nms": False}  # nms=False: the NMS-free head where there is one
    f = YOLO(str(local)).export(
        format="onnx", imgsz=size, quantize=8, data=str(data), batch=1, simplify=True, verbose=False, **kw
    )
    return Path(f)


def agreement_drop(fp32: Path, int8: Path, images: list[Path]) -> float:
    """The gate's FP32-agreement drop (points) of `int8` against `fp32` on `images` (nan if none)."""
    from edgedet.convert.gate import accuracy_gate

    if not images:
        return float("nan")
    return accuracy_gate(fp32, int8, images, None, threads=2).drop_points


def unsaturated(fp32: Path, images: list[Path], limit: float = 0.99) -> list[Path]:
    """The images on which no score of the FP32 model's raw output reaches `limit`."""
    import numpy as np
    import onnxruntime as ort

    from edgedet.eval.det import load_onnx_spec, read_image
    from edgedet.preprocess import Preprocessor

    spec = load_onnx_spec(fp32)
    pre = Preprocessor(spec)
    so = ort.SessionOptions()
    so.intra_op_num_threads, so.log_severity_level = 2, 3
    sess = ort.InferenceSession(str(fp32), so, providers=["CPUExecutionProvider"])
    keep = []
    for p in images:
        y = sess.run(None, {spec.input_name: pre(read_image(p))[0]})[0]
        fmt = spec.output_format  # end2end [1, K, 6]; yolov5 [1, A, 5 + nc]; yolov8 [1, 4 + nc, A]
        scores = y[..., 4] if fmt == "end2end" else y[..., 4:] if fmt == "yolov5" else y[:, 4:, :]
        if float(np.max(scores)) < limit:
            keep.append(p)
    return keep


def retime(
    scratch: Path, families: list[str], sizes: list[int], threads: list[int], rounds: int, timer: Any
) -> int:
    """Time edgedet FP32 / INT8 and Ultralytics INT8 files of an earlier run again (same interleaved loop)."""
    for fam in families:
        for size in sizes:
            d = scratch / "edgedet" / f"{fam}_{size}"
            d = d / "from_onnx" if (d / "from_onnx").is_dir() else d
            int8 = sorted(d.glob("*.int8*.onnx"))
            fp32 = [p for p in d.glob("*.onnx") if ".int8" not in p.name]
            if not int8 or not fp32:
                continue
            models = {"fp32": fp32[0], "int8": int8[0]}
            ul = sorted((scratch / "ul" / f"{fam}_{size}").glob("*_int8.onnx"))
            if ul:
                models["ul_int8"] = ul[0]
            for t in threads:
                before = load1()
                v = timer(models, (1, 3, size, size), rounds, t)
                ulpart = (
                    f", ultralytics INT8 {v['ul_int8']:.1f} ms ({v['fp32'] / v['ul_int8']:.2f}x)"
                    if ul
                    else ""
                )
                print(
                    f"{fam}@{size} {t} thread(s): FP32 {v['fp32']:.1f} ms, INT8 {v['int8']:.1f} ms "
                    f"({v['fp32'] / v['int8']:.2f}x){ulpart}; load {max(before, load1()):.2f}",
                    flush=True,
                )
    return 0


def load1() -> float:
    return os.getloadavg()[0]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[640, 320])
    ap.add_argument("--families", nargs="+", default=list(FAMILIES), choices=list(FAMILIES))
    ap.add_argument("--images", type=int, default=64, help="coco128 images for calibration and the gate")
    ap.add_argument("--rounds", type=int, default=30)
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--no-ultralytics-int8", action="store_true")
    ap.add_argument(
        "--retime",
        type=Path,
        help="only time again the files an earlier run left in this scratch folder (e.g. at 2 threads once the "
        "machine is quiet)",
    )
    args = ap.parse_args(argv)
    os.environ.setdefault("YOLO_OFFLINE", "1")
    sys.path[:0] = [str(REPO), str(REPO / "src"), str(REPO / "benchmarks")]
    logging.basicConfig(level=logging.ERROR)
    from bench_precision import interleaved_latency

    if args.retime:
        return retime(args.retime, args.families, args.sizes, args.threads, args.rounds, interleaved_latency)
    from tests.convert.ultralytics_helpers import make_checkpoint, real_image_batch

    tmp = Path(tempfile.mkdtemp(prefix="bench-int8-families-"))
    images_dir, data_yaml = scratch_dataset(tmp / "coco", args.images)
    images = sorted(images_dir.glob("*.jpg"))
    spread = real_image_batch(images[:8], 320)
    print(f"scratch {tmp}; {len(images)} images; load at start {load1():.2f}", flush=True)
    ckpts: dict[str, Path] = {}
    rows = []
    for fam in args.families:
        helper_id, one2many = FAMILIES[fam]
        if not helper_id:
            ckpts[helper_id] = DATA / "models" / "yolov5n.pt"
        elif helper_id not in ckpts:
            ckpts[helper_id] = make_checkpoint(helper_id, tmp / "ckpt" / helper_id, spread)
        ckpt = ckpts[helper_id]
        for size in args.sizes:
            tag = f"{fam}@{size}"
            ed = edgedet_int8(ckpt, size, one2many, images_dir, tmp / "edgedet" / f"{fam}_{size}")
            if "error" in ed:
                print(f"[{tag}] edgedet FAILED: {ed['error']}", flush=True)
            else:
                g = ed["gate"]
                print(
                    f"[{tag}] edgedet converted in {ed['seconds']:.0f} s; {ed['parity']}\n  "
                    f"gate {g.get('verdict')} drop {g.get('drop_points')} tries {g.get('tries')}",
                    flush=True,
                )
            ul: dict[str, Any] = {}
            if not args.no_ultralytics_int8 and helper_id:
                t0 = time.perf_counter()
                try:
                    ul["int8"] = ultralytics_int8(
                        ckpt, size, one2many, data_yaml, tmp / "ul" / f"{fam}_{size}"
                    )
                    print(f"[{tag}] ultralytics INT8 in {time.perf_counter() - t0:.0f} s", flush=True)
                except Exception as exc:  # quoted in the table
                    ul["error"] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
                    print(f"[{tag}] ultralytics INT8 FAILED: {ul['error']}", flush=True)
            if "error" not in ed and ed.get("fp32") is not None:
                # Random-init heads saturate on some images (many scores of 1.0): which of the tied boxes
                # survive NMS / the NMS-free TopK is then arbitrary, and any rounding reorders them. Both INT8
                # files are also scored on the images where FP32 saturates nowhere.
                clean = unsaturated(ed["fp32"], images)
                ed["clean_images"] = len(clean)
                ed["clean_drop"] = agreement_drop(ed["fp32"], ed["int8"], clean)
                if "int8" in ul:
                    try:
                        ul["drop"] = agreement_drop(ed["fp32"], ul["int8"], images)
                        ul["clean_drop"] = agreement_drop(ed["fp32"], ul["int8"], clean)
                    except Exception as exc:  # e.g. an output layout edgedet cannot read
                        ul["score_error"] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
                print(
                    f"[{tag}] on the {len(clean)} images without saturated FP32 scores: edgedet INT8 drop "
                    f"{ed['clean_drop']:.2f}, ultralytics INT8 drop {ul.get('clean_drop', float('nan')):.2f}",
                    flush=True,
                )
                models = {"fp32": ed["fp32"], "int8": ed["int8"]}
                if "int8" in ul:
                    models["ul_int8"] = ul["int8"]
                lat: dict[int, Any] = {}
                for t in args.threads:
                    if t > 1 and load1() >= QUIET_LOAD:
                        lat[t] = f"skipped (load {load1():.2f} >= {QUIET_LOAD})"
                        continue
                    before = load1()
                    lat[t] = interleaved_latency(models, (1, 3, size, size), args.rounds, t)
                    lat[t]["load"] = max(before, load1())  # the highest load seen while timing
                ed["lat"] = lat
                ed["float"] = kept_in_float(ed["int8"]) if ed.get("int8") else {}
                print(f"[{tag}] latency {lat}; float compute ops in INT8 {ed['float']}", flush=True)
            rows.append((fam, size, ed, ul))
    print_table(rows, args)
    return 0


def print_table(
    rows: list[tuple[str, int, dict[str, Any], dict[str, Any]]], args: argparse.Namespace
) -> None:
    n_calib = args.images - (args.images + 3) // 4
    print(
        f"\n== INT8 on ONNX Runtime CPU: {args.images} coco128 images (edgedet calibrates on {n_calib}, its gate "
        f"scores all {args.images}; Ultralytics calibrates on all {args.images}); random-init checkpoints except "
        "yolov5n-trained. Latency p50 ms at 1 ORT thread, speed-up vs edgedet FP32 in brackets. Gate drop 'D of C' "
        "(points): C is FP32's score against its own detections (the ceiling). 'unsat.': the same drop on the N "
        "images where FP32 has no saturated (>= 0.99) score."
    )
    print(
        "| family | size | loads w/o ultralytics; parity | edgedet FP32 ms | edgedet INT8 ms (x) "
        "| gate (verdict, mode, drop, kept in float) | edgedet drop unsat. (N) | ultralytics INT8 ms (x) "
        "| ultralytics INT8 drop (all / unsat.) |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for fam, size, ed, ul in rows:
        if "error" in ed:
            print(f"| {fam} | {size} | failed: {ed['error']} | | | | | | |")
            continue
        parity = (
            "FAILED"
            if ed["parity"].startswith("parity FAILED")
            else ("ok" if ": ok;" in ed["parity"] else ed["parity"][:40])
        )
        g = ed["gate"]
        one = ed["lat"].get(1)
        fp, i8 = (one["fp32"], one["int8"]) if isinstance(one, dict) else (float("nan"), float("nan"))
        tries = g.get("tries") or []
        gate = (
            f"{g.get('verdict')}, {g.get('mode')}, {g.get('drop_points'):.2f} of {100 * g.get('fp32', 0):.1f}, "
            f"{g.get('kept_float', 0)} layers{' + ' + '/'.join(g['float_ops']) if g.get('float_ops') else ''} "
            f"({len(tries)} tries)"
        )
        if "int8" in ul and isinstance(one, dict):
            ulms = f"{one['ul_int8']:.1f} ({fp / one['ul_int8']:.2f}x)"
        elif not ul:
            ulms = "not run"
        else:
            ulms = f"failed: {ul.get('error', '-')}"
        uldrop = f"{ul['drop']:.2f} / {ul['clean_drop']:.2f}" if "drop" in ul else ul.get("score_error", "-")
        print(
            f"| {fam} | {size} | {'yes' if ed.get('builtin', True) else 'no'}; {parity} | {fp:.1f} "
            f"| {i8:.1f} ({fp / i8:.2f}x) | {gate} | {ed['clean_drop']:.2f} ({ed['clean_images']}) | {ulms} "
            f"| {uldrop} |"
        )
    for fam, size, ed, _ in rows:
        if ed.get("parity", "").startswith("parity FAILED"):
            print(f"{fam}@{size}: {ed['parity']} (INT8 made from that FP32 ONNX)")
        for t, v in (ed.get("lat") or {}).items():
            if isinstance(v, dict):
                ulpart = f", ultralytics INT8 {v['ul_int8']:.1f} ms" if "ul_int8" in v else ""
                print(
                    f"{fam}@{size} {t} thread(s): FP32 {v['fp32']:.1f} ms, INT8 {v['int8']:.1f} ms "
                    f"({v['fp32'] / v['int8']:.2f}x){ulpart}; load {v['load']:.2f}"
                )
            else:
                print(f"{fam}@{size} {t} thread(s): {v}")


if __name__ == "__main__":
    raise SystemExit(main())
