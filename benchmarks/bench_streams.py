"""Several streams through one model: batched vs one call per frame vs one process per stream; a dead stream
beside a live one; and the Triton path (when a Triton server venv is there, see tools/make_triton_venv.sh).

Sources alternate between the people clip (../shared/data/video/people_indoor_640x368.mp4) and the demo scene,
both paced to their frame rate (--realtime). The detector runs on every frame (no skipping) with SORT tracking,
so what is compared is the inference. Each measurement records `uptime`'s load average: the machine may be
shared, so compare rows of one run, not runs.

    .venv/bin/python benchmarks/bench_streams.py --streams 1,2,4,8 --frames 90 --json bench_streams.json
    .venv/bin/python benchmarks/bench_streams.py --only triton
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
EDGEDET = str(Path(sys.executable).parent / "edgedet")
PEOPLE = ROOT.parent / "shared" / "data" / "video" / "people_indoor_640x368.mp4"


def load() -> str:
    return Path("/proc/loadavg").read_text().split()[0] if Path("/proc/loadavg").exists() else "?"


def sources(n: int) -> list[str]:
    out = []
    for i in range(n):
        if i % 2 == 0 and PEOPLE.exists():
            out.append(str(PEOPLE))
        else:
            out.append(f"demo:seed={i}")
    return out


def dynamic_demo(folder: Path) -> Path:
    """The demo detector exported with a dynamic batch (the shipped one has batch 1)."""
    out = folder / "demo.onnx"
    if not out.exists():
        cmd = [EDGEDET, "convert", str(ROOT / "models" / "demo.pt"), "--imgsz", "384,640",
               "--dynamic", "-o", str(folder)]  # fmt: skip
        subprocess.run(cmd, check=True, capture_output=True, cwd=ROOT)
    return out


def _cfg(model: Path | str, **kw: Any) -> Any:
    """A RunConfig with the demo's own defaults left off (they would turn on skipping and a run folder): every
    stream runs the detector on every frame, paced, without outputs unless asked."""
    import dataclasses

    from edgedet.config import RunConfig

    base = dict(model=str(model), realtime=True, cmc="off", detect_every=1, max_frames=kw.pop("frames"))
    return dataclasses.replace(RunConfig(), **base, **kw, defaults_applied=True)


def run_multi(model: Path | str, n: int, frames: int, **kw: Any) -> dict[str, Any]:
    from edgedet.multistream import build_multistream

    window = kw.pop("batch_window_s", None)
    runner = build_multistream(
        _cfg(model, frames=frames, source=sources(n)[0], **kw), sources(n), batch_window_s=window
    )
    before = load()
    s = runner.run()
    lat = [st.latency["frame"] for st in s.streams if "frame" in st.latency]
    return {
        "streams": n, "load_before": before, "load_after": load(),
        "total_fps": round(s.fps, 1),
        "per_stream_fps": [round(st.fps, 1) for st in s.streams],
        "latency_p50_ms": [round(x.p50_ms, 1) for x in lat],
        "latency_p99_ms": [round(x.p99_ms, 1) for x in lat],
        "queue_p50_ms": [round(st.latency["queue"].p50_ms, 1) for st in s.streams if "queue" in st.latency],
        "infer_calls": s.infer_calls, "mean_batch": round(s.mean_batch, 2),
        "status": [st.status for st in s.streams],
        "infer_call_ms_p50": round(s.latency["infer_call"].p50_ms, 1) if "infer_call" in s.latency else None,
    }  # fmt: skip


_ONE = """
import json, sys
from edgedet.config import RunConfig
from edgedet.pipeline import build_pipeline
src, model, frames = sys.argv[1], sys.argv[2], int(sys.argv[3])
# defaults_applied: the demo's own defaults (target FPS 30, i.e. skipping) stay off, as in the in-process modes
cfg = RunConfig(source=src, model=model, realtime=True, cmc="off", max_frames=frames, defaults_applied=True)
print(json.dumps(build_pipeline(cfg).run().as_dict()))
"""


def run_processes(model: Path, n: int, frames: int) -> dict[str, Any]:
    """One process per stream, all at once, each the single-stream `run` loop."""
    before = load()
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _ONE, src, str(model), str(frames)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for src in sources(n)
    ]
    reports = []
    for p in procs:
        out, err = p.communicate(timeout=600)
        if p.returncode != 0:
            raise RuntimeError(f"edgedet run failed: {err.decode()[-500:]}")
        reports.append(json.loads(out.decode().strip().splitlines()[-1]))
    return {
        "streams": n, "load_before": before, "load_after": load(),
        "total_fps": round(sum(r["fps"] for r in reports), 1),
        "per_stream_fps": [r["fps"] for r in reports],
        "latency_p50_ms": [round(r["latency_ms"]["frame"]["p50_ms"], 1) for r in reports],
        "latency_p99_ms": [round(r["latency_ms"]["frame"]["p99_ms"], 1) for r in reports],
    }  # fmt: skip


def dead_beside_live(model: Path, frames: int) -> dict[str, Any]:
    from edgedet.multistream import build_multistream

    with tempfile.TemporaryDirectory() as tmp:
        cfg = _cfg(model, frames=frames, give_up_s=3.0, stall_timeout_s=1.0,
                   save_mot=str(Path(tmp) / "{stream}.txt"))  # fmt: skip
        runner = build_multistream(cfg, ["demo", "rtsp://127.0.0.1:9/nothing-here"])
        s = runner.run()
        live_rows = len((Path(tmp) / "s0.txt").read_text().splitlines())
    return {"summary": s.format().splitlines(), "live_frames": s.streams[0].frames, "live_mot_rows": live_rows,
            "dead_status": s.streams[1].status, "wall_s": round(s.wall_s, 1), "load": load()}  # fmt: skip


# --- Triton ----------------------------------------------------------------------------------------------------


def triton(frames: int, dyn_model: Path) -> dict[str, Any]:
    from tests.helpers.triton_server import python_twin, restart, start_server, triton_venv

    from edgedet import demo
    from edgedet.backends import BackendConfig, open_backend
    from edgedet.convert.triton import export_triton
    from edgedet.datasets import sample_frames
    from edgedet.detector import open_detector

    if not (triton_venv() / "bin" / "python").exists():
        return {"skipped": f"no Triton venv at {triton_venv()}"}
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for model, name, nms in ((demo.model_path(), "demo1", False), (dyn_model, "demodyn", False),
                                 (demo.model_path(), "demo1nms", True)):  # fmt: skip
            export_triton(
                model, root / "export", name=name, kind="KIND_CPU", max_queue_delay_us=5000, nms=nms
            )
            python_twin(root / "export" / name, (root / "repo"))
        server = start_server(root / "repo", root / "work")
        try:
            # latency of one frame: in-process ORT vs the server over gRPC and HTTP (same model, batch 1), the
            # three interleaved call by call so that the machine's load hits them alike
            imgs = sample_frames(8, (384, 640))
            ref = open_detector(demo.model_path())
            tensors = [ref.preprocess(i)[0].copy() for i in imgs]
            remote = {p: open_backend(f"{p.split('+')[0]}://{a}/demo1" + ("nms" if "nms" in p else ""),
                                      BackendConfig(backend="triton"))
                      for p, a in (("grpc", server.grpc_url), ("http", server.http_url),
                                   ("grpc+nms", server.grpc_url))}  # fmt: skip
            calls = {"onnxruntime": ref.backend.infer, **{p: b.infer for p, b in remote.items()}}
            lat: dict[str, list[float]] = {k: [] for k in calls}
            for k in range(60):
                for name, fn in calls.items():
                    t = time.perf_counter()
                    fn(tensors[k % 8])
                    lat[name].append((time.perf_counter() - t) * 1e3)
            for p, be in remote.items():
                out[f"bytes_per_frame_{p}"] = {"sent": be.bytes_sent // be.requests,
                                               "received": be.bytes_received // be.requests}  # fmt: skip
                be.close()
            ref.close()
            out["latency_ms"] = {k: {"p50": round(float(np.percentile(v[5:], 50)), 1),
                                     "p99": round(float(np.percentile(v[5:], 99)), 1)} for k, v in lat.items()}  # fmt: skip
            out["load_latency"] = load()

            # 4 streams, each its own client thread sending batch-1 requests: Triton's dynamic batcher groups them
            import tritonclient.grpc as grpcclient

            from edgedet.pipeline import build_pipeline

            def stats() -> tuple[int, int]:
                c = grpcclient.InferenceServerClient(server.grpc_url)
                st = c.get_inference_statistics("demodyn").model_stats[0]
                return int(st.inference_count), int(st.execution_count)

            i0, e0 = stats()
            pipes = [build_pipeline(_cfg(f"grpc://{server.grpc_url}/demodyn", frames=frames, backend="triton",
                                         source=src)) for src in sources(4)]  # fmt: skip
            res: list[Any] = [None] * 4
            ths = [threading.Thread(target=lambda k=k: res.__setitem__(k, pipes[k].run())) for k in range(4)]
            t0 = time.perf_counter()
            for th in ths:
                th.start()
            for th in ths:
                th.join()
            wall = time.perf_counter() - t0
            i1, e1 = stats()
            out["four_streams_dynamic_batching"] = {
                "frames": [r.frames for r in res], "per_stream_fps": [round(r.fps, 1) for r in res],
                "total_fps": round(sum(r.frames for r in res) / wall, 1),
                "server_inferences": i1 - i0, "server_executions": e1 - e0,
                "mean_server_batch": round((i1 - i0) / max(e1 - e0, 1), 2), "load": load(),
            }  # fmt: skip

            # a server killed and restarted mid-run: 2 streams, multistream, gRPC
            from edgedet.multistream import build_multistream

            runner = build_multistream(
                _cfg(f"grpc://{server.grpc_url}/demodyn", frames=frames * 3, backend="triton"), sources(2)
            )
            box: dict[str, Any] = {}

            def chaos() -> None:
                time.sleep(2.0)
                server.stop()
                box["killed_at"] = time.monotonic()
                time.sleep(2.0)
                box["server"] = restart(server)
                box["back_at"] = time.monotonic()

            th = threading.Thread(target=chaos)
            th.start()
            s = runner.run()
            th.join()
            be = runner.detector.backend
            server = box.get("server", server)
            out["kill_and_restart"] = {
                "frames": [st.frames for st in s.streams], "status": [st.status for st in s.streams],
                "outages": getattr(be, "outages", None), "downtime_s": round(getattr(be, "downtime_s", 0.0), 1),
                "server_down_s": round(box["back_at"] - box["killed_at"], 1), "wall_s": round(s.wall_s, 1),
                "load": load(),
            }  # fmt: skip
        finally:
            server.stop()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--streams", default="1,2,4,8")
    ap.add_argument("--frames", type=int, default=90, help="frames per stream")
    ap.add_argument("--only", choices=["streams", "dead", "triton"], default=None)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    os.chdir(ROOT)
    from edgedet import demo

    results: dict[str, Any] = {"machine": f"{os.cpu_count()} cores, load {load()} at start (shared machine)"}
    with tempfile.TemporaryDirectory() as tmp:
        dyn = dynamic_demo(Path(tmp))
        if args.only in (None, "streams"):
            rows = []
            for n in [int(x) for x in args.streams.split(",")]:
                for mode in ("batched", "per-frame", "processes"):
                    if mode == "batched":
                        r = run_multi(dyn, n, args.frames)
                    elif mode == "per-frame":
                        r = run_multi(demo.model_path(), n, args.frames)
                    else:
                        r = run_processes(demo.model_path(), n, args.frames)
                    r["mode"] = mode
                    rows.append(r)
                    print(json.dumps(r), flush=True)
            results["streams"] = rows
        if args.only in (None, "dead"):
            results["dead_beside_live"] = dead_beside_live(dyn, args.frames)
            print(json.dumps(results["dead_beside_live"]), flush=True)
        if args.only in (None, "triton"):
            results["triton"] = triton(args.frames, dyn)
            print(json.dumps(results["triton"]), flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
