"""Where the tests find the benchmark data (coco128, MOT sequences, YOLOv5n weights, a video clip).

$EDGEDET_DATA when set, else ../shared/data beside the repository: the folder `python tools/fetch_data.py`
fills. A test whose file is missing skips with a reason that names the file and the command that fetches it.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

DATA_ENV = "EDGEDET_DATA"
REPO = Path(__file__).resolve().parents[2]
DEFAULT_DATA = REPO.parent / "shared" / "data"

# top-level folder -> the fetch_data.py data set that fills it
_DATASET_OF = {"coco128": "coco128", "mot": "mot", "models": "models", "video": "video"}
# files with no public source (made from the downloads; see tools/data_manifest.json "made_here")
_MADE_HERE = ("models/reference_onnx/", "models/yolov5n.statedict.pt")


def data_root() -> Path:
    """$EDGEDET_DATA, else ../shared/data beside the repository."""
    env = os.environ.get(DATA_ENV)
    return Path(env).expanduser() if env else DEFAULT_DATA


def missing_reason(path: Path, parts: tuple[str, ...]) -> str:
    """The skip reason for a missing data file: what is missing and how to get it."""
    rel = "/".join(parts)
    dataset = _DATASET_OF.get(parts[0] if parts else "", "")
    if any(rel.startswith(m) for m in _MADE_HERE):
        how = "it has no public source: `python tools/fetch_data.py --list models` says how it was made"
    elif dataset:
        how = f"fetch it with `python tools/fetch_data.py {dataset}`"
    else:
        how = "fetch the data with `python tools/fetch_data.py`"
    return f"test data not present: {path} ({how}; or set {DATA_ENV} to a folder that has it)"


def data_path(*parts: str) -> Path:
    """A path under the data folder, or skip the calling test naming the file and the fetch command."""
    p = data_root().joinpath(*parts)
    if not p.exists():
        pytest.skip(missing_reason(p, parts))
    return p
