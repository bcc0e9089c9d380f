"""Property-based fuzzing of every parser of outside data: a bad input gives a one-line EdgedetError, nothing else.

Each parser gets two kinds of input: arbitrary bytes/text/JSON, and mutations of a VALID file (one field replaced
by a hostile token such as nan, 1e999, -1, a huge integer, a Unicode digit, an interpolation `%(`), which reach
the parser's deeper checks. A parse that succeeds is fine; any exception other than EdgedetError, or an error
message with a newline, fails the test. Case counts: `pytest tests/fuzz --hypothesis-show-statistics`.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edgedet.backends.engine_build import GpuInfo, check_engine, read_sidecar
from edgedet.config import RunConfig, build_config, read_yaml_config
from edgedet.convert.info import describe
from edgedet.datasets import load_coco_json, load_yolo_dataset
from edgedet.errors import EdgedetError
from edgedet.motchallenge import read_det, read_gt, read_seqinfo, read_tracks
from edgedet.spec import ModelSpec, parse_names, read_names_file, spec_from_metadata

# a RuntimeWarning from a parser (an invalid float -> int cast) is silent corruption: fail on it
pytestmark = pytest.mark.filterwarnings("error::RuntimeWarning")

# Cases per parser test: 100 by default (the whole file in ~20 s); EDGEDET_FUZZ_EXAMPLES=1000 for a deep run.
EXAMPLES = int(os.environ.get("EDGEDET_FUZZ_EXAMPLES", "100"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)

HOSTILE_TOKENS = [
    "", " ", "nan", "NaN", "inf", "-inf", "1e999", "-1e999", "-1", "0", "-0", "1e-320", "3.5", "1_000",
    "0x10", "9" * 40, "١٢", "²", "%(x)s", "%", "[", "{", "'", '"', "\x00", "\ufeff", "True", "None", "[]", "{}",
    "[0]", "[[1]]", "-" * 3, "1,2", "\n", "\r", "é",
]  # fmt: skip
token = st.sampled_from(HOSTILE_TOKENS) | st.text(max_size=8)


def clean(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Call fn; an EdgedetError with a one-line message is fine, any other exception fails."""
    try:
        return fn(*args, **kwargs)
    except EdgedetError as exc:
        msg = str(exc)
        assert msg and "\n" not in msg and "\r" not in msg, f"multi-line error: {msg!r}"
        return None


class Scratch:
    """One temporary file per test, rewritten for each example (hypothesis and tmp_path do not mix)."""

    def __init__(self, name: str) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="edgedet-fuzz-"))
        self.path = self.dir / name

    def write(self, data: bytes | str) -> Path:
        if isinstance(data, str):
            self.path.write_bytes(data.encode("utf-8", "surrogatepass"))
        else:
            self.path.write_bytes(data)
        return self.path


def mutate_csv(rows: list[list[str]], picks: list[tuple[int, int, str]]) -> str:
    rows = [list(r) for r in rows]
    for r, c, tok in picks:
        row = rows[r % len(rows)]
        row[c % len(row)] = tok
    return "\n".join(",".join(r) for r in rows) + "\n"


csv_picks = st.lists(st.tuples(st.integers(0, 9), st.integers(0, 11), token), min_size=1, max_size=4)
text_or_bytes = st.binary(max_size=300) | st.text(max_size=300)

# --- MOTChallenge: det.txt, gt.txt, tracks, seqinfo.ini ---------------------------------------------------------

DET = [
    ["1", "-1", "10.5", "20", "30", "40", "0.9"],
    ["2", "-1", "11", "21", "30", "40", "0.8", "-1", "-1", "-1"],
]
GT = [
    ["1", "1", "10", "20", "30", "40", "1", "1", "0.9"],
    ["2", "1", "11", "21", "30", "40", "1", "1", "1.0"],
]


@pytest.mark.parametrize(("reader", "valid"), [(read_det, DET[:1]), (read_gt, GT), (read_tracks, GT)])
@FUZZ
@given(data=text_or_bytes)
def test_mot_tables_arbitrary(
    reader: Callable[[Path], Any], valid: list[list[str]], data: bytes | str
) -> None:
    clean(reader, SCRATCH_TXT.write(data))


@pytest.mark.parametrize(("reader", "valid"), [(read_det, DET[:1]), (read_gt, GT), (read_tracks, GT)])
@FUZZ
@given(picks=csv_picks)
def test_mot_tables_mutated(reader: Callable[[Path], Any], valid: list[list[str]], picks: Any) -> None:
    clean(reader, SCRATCH_TXT.write(mutate_csv(valid, picks)))


SEQINFO_KEYS = ["name", "frameRate", "seqLength", "imWidth", "imHeight"]
SEQINFO_VALUES = ["MOT17-02", "30", "600", "1920", "1080"]


@FUZZ
@given(data=text_or_bytes)
def test_seqinfo_arbitrary(data: bytes | str) -> None:
    clean(read_seqinfo, SCRATCH_INI.write(data))


@FUZZ
@given(
    picks=st.lists(st.tuples(st.integers(0, 4), token), min_size=1, max_size=3),
    header=st.sampled_from(["[Sequence]", "[sequence]", "[Sequence]\n[Sequence]", "", "[Sequence"]),
)
def test_seqinfo_mutated(picks: list[tuple[int, str]], header: str) -> None:
    values = list(SEQINFO_VALUES)
    for i, tok in picks:
        values[i] = tok
    text = header + "\n" + "".join(f"{k}={v}\n" for k, v in zip(SEQINFO_KEYS, values, strict=True))
    clean(read_seqinfo, SCRATCH_INI.write(text))


# --- YAML run configs ---------------------------------------------------------------------------------------------

VALID_FIELDS = tuple(f for f in RunConfig.__dataclass_fields__)
yaml_scalar = st.sampled_from(
    ["1", "-1", "0.5", ".nan", ".inf", "true", "null", "abc", "[1, 2]", "{a: 1}", "'x'", "1e999", "[]", "!!binary aGk="]
)  # fmt: skip


@FUZZ
@given(data=text_or_bytes)
def test_yaml_config_arbitrary(data: bytes | str) -> None:
    path = SCRATCH_YAML.write(data)
    clean(lambda: build_config(RunConfig, path).validate())


@FUZZ
@given(items=st.dictionaries(st.sampled_from(VALID_FIELDS), yaml_scalar, min_size=1, max_size=4))
def test_yaml_config_known_fields_hostile_values(items: dict[str, str]) -> None:
    path = SCRATCH_YAML.write("".join(f"{k}: {v}\n" for k, v in items.items()))
    clean(lambda: build_config(RunConfig, path).validate())
    clean(read_yaml_config, path, VALID_FIELDS)


# --- ONNX metadata: ModelSpec.from_json, parse_names, spec_from_metadata --------------------------------------------

json_value = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
VALID_SPEC = json.loads(ModelSpec(class_names=("a", "b")).to_json())
spec_field_values = st.sampled_from(
    [None, True, -1, 0, 3, 1e308, float("inf"), float("nan"), "", "abc", [], [0], [1, 2, 3], [640, 640],
     ["640", "x"], {}, {"a": 1}, "yolov5", "fp16", "BGR", [1e999]]
) | json_value  # fmt: skip


@FUZZ
@given(text=st.text(max_size=200) | st.sampled_from(["[" * 5000, '{"a":' * 3000, "1e999", "NaN", "null"]))
def test_spec_from_json_arbitrary_text(text: str) -> None:
    clean(ModelSpec.from_json, text)


@FUZZ
@given(
    changes=st.dictionaries(
        st.sampled_from([*VALID_SPEC, "unknown"]), spec_field_values, min_size=1, max_size=3
    )
)
def test_spec_from_json_mutated(changes: dict[str, Any]) -> None:
    d = {**VALID_SPEC, **changes}
    clean(ModelSpec.from_json, json.dumps(d))


names_text = st.sampled_from(
    ["{0: 'a', 1.5: 'b'}", "{' 0': 'a'}", "{0: 'a', '1': 'b'}", "{0: 'a', 'x': 'b'}", "{True: 'a'}",
     "['a', 'b']", "{}", "[]", "()", "{1, 2}", "b'ab'", "9" * 5000, "[" * 1000 + "]" * 1000, "{-1: 'a'}",
     "{0: 'a', 0.0: 'b'}", "__import__('os')", "{0: ['nested']}", "1e999"]
) | st.text(max_size=60)  # fmt: skip


@FUZZ
@given(text=names_text)
def test_parse_names(text: str) -> None:
    clean(parse_names, text)


meta_strategy = st.dictionaries(
    st.sampled_from(["names", "stride", "imgsz", "end2end", "edgedet.spec", "author"]),
    st.sampled_from(["inf", "nan", "1e999", "-32", "[640]", "[1e999, 2]", "(0, 0)", "'x'", "True", "[" * 500,
                     "{0: 'a'}", "{0: 'a', 1.5: 'b'}", "true", "{}", "[640, 640, 3]"]) | st.text(max_size=20),
    max_size=4,
)  # fmt: skip
shape_dim = st.none() | st.integers(-2, 2000) | st.text(max_size=3)


@FUZZ
@given(
    meta=meta_strategy,
    input_shape=st.lists(shape_dim, max_size=5),
    output_shapes=st.lists(st.lists(shape_dim, max_size=4), max_size=3),
)
def test_spec_from_metadata(
    meta: dict[str, str], input_shape: list[Any], output_shapes: list[list[Any]]
) -> None:
    clean(spec_from_metadata, meta, "images", input_shape, output_shapes)


# --- class names files and label files (datasets) -------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".txt", ".yaml"])
@FUZZ
@given(data=text_or_bytes | st.sampled_from(["names: {0: a, x: b}", "names: 5", "names: [[1]]", "[1, 2]"]))
def test_names_file(suffix: str, data: bytes | str) -> None:
    scratch = SCRATCH_NAMES_YAML if suffix == ".yaml" else SCRATCH_NAMES_TXT
    clean(read_names_file, str(scratch.write(data)))


def _yolo_root() -> tuple[Path, Path]:
    import cv2
    import numpy as np

    root = Path(tempfile.mkdtemp(prefix="edgedet-fuzz-yolo-"))
    (root / "images").mkdir()
    (root / "labels").mkdir()
    cv2.imwrite(str(root / "images" / "a.png"), np.zeros((8, 12, 3), np.uint8))
    return root, root / "labels" / "a.txt"


YOLO_ROOT, YOLO_LABEL = _yolo_root()
LABEL = [["0", "0.5", "0.5", "0.2", "0.3"], ["3", "0.1", "0.2", "0.05", "0.05"]]


@FUZZ
@given(data=text_or_bytes)
def test_yolo_labels_arbitrary(data: bytes | str) -> None:
    YOLO_LABEL.write_bytes(data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data)
    clean(load_yolo_dataset, YOLO_ROOT)


@FUZZ
@given(picks=csv_picks)
def test_yolo_labels_mutated(picks: Any) -> None:
    YOLO_LABEL.write_text(mutate_csv(LABEL, picks).replace(",", " "))
    ds = clean(load_yolo_dataset, YOLO_ROOT)
    if ds is not None:  # accepted labels are usable numbers: finite boxes, valid class ids
        import numpy as np

        item = ds.images[0]
        assert np.isfinite(item.xyxy).all() and (item.class_id >= 0).all()


VALID_COCO = {
    "images": [{"id": 1, "file_name": "a.png", "height": 8, "width": 12}],
    "annotations": [{"id": 1, "image_id": 1, "category_id": 3, "bbox": [1, 2, 3, 4], "iscrowd": 0}],
    "categories": [{"id": 3, "name": "car"}],
}


@FUZZ
@given(data=text_or_bytes | json_value.map(json.dumps))
def test_coco_json_arbitrary(data: bytes | str) -> None:
    clean(load_coco_json, SCRATCH_JSON.write(data))


@FUZZ
@given(
    section=st.sampled_from(["images", "annotations", "categories"]),
    key=st.sampled_from(["id", "file_name", "height", "width", "image_id", "category_id", "bbox", "iscrowd", "name"]),
    value=spec_field_values,
    whole=st.booleans(),
)  # fmt: skip
def test_coco_json_mutated(section: str, key: str, value: Any, whole: bool) -> None:
    d = json.loads(json.dumps(VALID_COCO))
    if whole:
        d[section] = value
    else:
        d[section][0][key] = value
    clean(load_coco_json, SCRATCH_JSON.write(json.dumps(d)))


# --- engine sidecars -----------------------------------------------------------------------------------------------

VALID_SIDECAR = {
    "key": {
        "tensorrt_version": "10.3.0", "gpu_name": "Orin", "sm": "8.7", "onnx_sha256": "ab" * 32,
        "precision": "fp16", "input_shape": "1x3x640x640",
    },
    "spec": VALID_SPEC,
    "onnx_path": "model.onnx",
}  # fmt: skip


@FUZZ
@given(data=text_or_bytes | json_value.map(json.dumps))
def test_sidecar_arbitrary(data: bytes | str) -> None:
    SCRATCH_SIDECAR.write(data)
    clean(read_sidecar, SCRATCH_PLAN)
    clean(check_engine, SCRATCH_PLAN, "10.3.0", GpuInfo("Orin", "8.7"))
    clean(describe, SCRATCH_SIDECAR.path)


@FUZZ
@given(
    where=st.sampled_from(["key", "spec", "top"]),
    field=st.sampled_from([*VALID_SIDECAR["key"], *VALID_SPEC, "extra"]),
    value=spec_field_values,
)
def test_sidecar_mutated(where: str, field: str, value: Any) -> None:
    d = json.loads(json.dumps(VALID_SIDECAR))
    if where == "top":
        d[field if field in ("key", "spec") else "onnx_path"] = value
    else:
        d[where][field] = value
    SCRATCH_SIDECAR.write(json.dumps(d))
    clean(check_engine, SCRATCH_PLAN, "10.3.0", GpuInfo("Orin", "8.7"))
    clean(describe, SCRATCH_SIDECAR.path)


SCRATCH_TXT = Scratch("det.txt")
SCRATCH_INI = Scratch("seqinfo.ini")
SCRATCH_YAML = Scratch("run.yaml")
SCRATCH_NAMES_TXT = Scratch("names.txt")
SCRATCH_NAMES_YAML = Scratch("names.yaml")
SCRATCH_JSON = Scratch("instances.json")
SCRATCH_SIDECAR = Scratch("model.engine.json")
SCRATCH_PLAN = SCRATCH_SIDECAR.dir / "model.engine"
SCRATCH_PLAN.write_bytes(b"not a real plan")
