"""The demo with and without the core budget, idle and with one core busy, in one run.

    python benchmarks/bench_core_budget.py [--frames 600] [--rounds 1]

Each case runs `edgedet run --source demo` in a fresh process (the CLI, its defaults, outputs in a temp folder):
- "ORT default": ONNX Runtime's own pool (threads = physical cores, spinning on), i.e. edgedet before the budget;
- "budget": what `thread_budget` chooses for the sequential loop (said in the header);
both idle and with `python -c "while True: pass"` running beside (one core busy). Cases are interleaved per
round so the machine's other load hits them alike; the 1-minute load average is printed with each run (a
shared machine: read the ratios, not the absolute numbers). Prints FPS, detector runs of all frames, infer and
CMC p50, and the header's thread choice.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time

# Runs the CLI with the budget replaced by ONNX Runtime's defaults (0 = its own thread count, spinning on).
_DEFAULT_ORT = """
import sys
import edgedet.backends.onnxruntime as ortb
ortb.thread_budget = lambda cores, beside=0, requested=0: ortb.ThreadBudget(
    requested, True, cores, beside, requested > 0)
from edgedet.cli import main
sys.exit(main(sys.argv[1:]))
"""
_BUDGET = "import sys\nfrom edgedet.cli import main\nsys.exit(main(sys.argv[1:]))\n"


def run_demo(code: str, frames: int) -> dict[str, str]:
    with tempfile.TemporaryDirectory() as tmp:
        load = os.getloadavg()[0]
        out = subprocess.run(
            [sys.executable, "-c", code, "run", "--source", f"demo:frames={frames}"],
            capture_output=True,
            text=True,
            cwd=tmp,
            timeout=600,
        ).stdout
    fps = re.search(r"= ([\d.]+) FPS", out)
    runs = re.search(r"detector runs (\d+)", out)
    infer = re.search(r"infer ([\d.]+)/", out)
    cmc = re.search(r"cmc ([\d.]+)/", out)
    threads = re.search(r"OnnxRuntimeBackend\(demo\.onnx, (.*)\) -> ", out)
    chosen = threads.group(1) if threads else "?"
    if chosen.startswith("0 threads"):
        chosen = "ONNX Runtime's default pool (threads = cores), spinning on"
    return {
        "fps": fps.group(1) if fps else "?",
        "runs": runs.group(1) if runs else "?",
        "infer": infer.group(1) if infer else "?",
        "cmc": cmc.group(1) if cmc else "?",
        "threads": chosen,
        "load": f"{load:.1f}",
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--frames", type=int, default=600)
    ap.add_argument("--rounds", type=int, default=1)
    args = ap.parse_args(argv)
    print(f"{len(os.sched_getaffinity(0))} cores; demo:frames={args.frames}")
    print(f"{'case':28} {'FPS':>6} {'det runs':>9} {'infer p50':>10} {'cmc p50':>8} {'load1':>6}  threads")
    for _ in range(args.rounds):
        for busy in (False, True):
            hog = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if busy else None
            try:
                time.sleep(0.5 if busy else 0.0)
                for label, code in (("ORT default", _DEFAULT_ORT), ("budget", _BUDGET)):
                    r = run_demo(code, args.frames)
                    case = f"{label}, {'one core busy' if busy else 'idle'}"
                    print(
                        f"{case:28} {r['fps']:>6} {r['runs'] + '/' + str(args.frames):>9} {r['infer']:>10} "
                        f"{r['cmc']:>8} {r['load']:>6}  {r['threads']}",
                        flush=True,
                    )
            finally:
                if hog is not None:
                    hog.kill()
                    hog.wait()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
