"""Run in a subprocess by test_ultralytics.py: load checkpoints with edgedet's built-in loader while
`ultralytics` cannot be imported, export each to ONNX and run it on ONNX Runtime.

argv: jobs.json out_dir. jobs.json: [{"id", "checkpoint", "input" (.npy), "one2many"}]. Writes <id>.npy (the
ONNX output) and results.json ({id: {format, family, names, stride, extra..., ultralytics_imported}}).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.modules["ultralytics"] = None  # type: ignore[assignment]  # any `import ultralytics` now raises ImportError


def main(jobs_path: str, out_dir: str) -> int:
    import numpy as np

    from edgedet.convert.adapters.ultralytics import load_ultralytics
    from edgedet.convert.export_onnx import export_onnx
    from edgedet.convert.verify import run_onnx
    from edgedet.spec import ModelSpec

    out = Path(out_dir)
    results = {}
    for job in json.loads(Path(jobs_path).read_text()):
        x = np.load(job["input"])
        loaded = load_ultralytics(job["checkpoint"], loader="builtin", one2many=job["one2many"])
        spec = ModelSpec(
            input_hw=(int(x.shape[2]), int(x.shape[3])),
            output_format=loaded.output_format,
            class_names=loaded.class_names,
            stride=loaded.stride,
        )
        onnx_path, _, _ = export_onnx(loaded.module, out / f"{job['id']}.onnx", spec, simplify=False)
        _, outs = run_onnx(onnx_path, [x])
        np.save(out / f"{job['id']}.npy", outs[0][0][0])  # first input, first output, batch item 0
        extra = {k: (list(v) if isinstance(v, tuple) else v) for k, v in loaded.extra.items()}
        results[job["id"]] = {
            "format": loaded.output_format,
            "names": list(loaded.class_names[:3]),
            "nc": len(loaded.class_names),
            "stride": loaded.stride,
            **extra,
        }
    imported = [m for m, v in sys.modules.items() if m.startswith("ultralytics") and v is not None]
    (out / "results.json").write_text(json.dumps({"jobs": results, "ultralytics_imported": imported}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
