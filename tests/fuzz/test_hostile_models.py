"""Truncated and bit-flipped model files, engine sidecars and plans: refused with one clear line, or they work.

Through the ONNX Runtime backend and the real CLI (`edgedet info`, `edgedet run`, in process through
`edgedet.cli.main`): exit code 0 (a flip that leaves a valid model) or an EdgedetError's code with exactly one
`error:` line; never 70 (an unexpected exception), never a traceback.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.helpers.blob_model import blob_model
from tests.helpers.tiny_models import constant_model, yolov5_raw

from edgedet.backends import BackendConfig, open_backend
from edgedet.cli import main
from edgedet.errors import EdgedetError

# bit flips per test: 60 by default; EDGEDET_FUZZ_EXAMPLES=500 for a deep run
EXAMPLES = int(os.environ.get("EDGEDET_FUZZ_EXAMPLES", "60"))
WORK = Path(tempfile.mkdtemp(prefix="edgedet-hostile-"))
BLOB = blob_model(WORK / "blob.onnx", input_hw=(64, 64)).read_bytes()
CONST = constant_model(
    WORK / "const.onnx",
    [
        yolov5_raw(
            np.array([[20, 20, 8, 8]], np.float32), np.array([0.9], np.float32), np.ones((1, 2), np.float32)
        )
    ],
).read_bytes()
MODELS = {"blob": BLOB, "const": CONST}


def cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main(list(argv))
    return rc, out.getvalue(), err.getvalue()


def assert_clean_cli(rc: int, out: str, err: str) -> None:
    assert "Traceback" not in out + err
    assert rc != 70, f"unexpected exception: {err}"
    if rc != 0:
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), err


def check_model_bytes(data: bytes, name: str) -> None:
    path = WORK / name
    path.write_bytes(data)
    try:
        with open_backend(path, BackendConfig()) as backend:
            assert backend.spec is not None
    except EdgedetError as exc:
        assert "\n" not in str(exc)
    assert_clean_cli(*cli("info", str(path)))
    assert_clean_cli(
        *cli("run", "--source", "synthetic:64x64@30,frames=2", "--model", str(path), "--no-track")
    )


@pytest.mark.parametrize("model", sorted(MODELS))
@pytest.mark.parametrize("keep", [0.0, 0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.99, -1])
def test_truncated_onnx_refused_in_one_line(model: str, keep: float) -> None:
    data = MODELS[model]
    n = len(data) - 1 if keep == -1 else int(len(data) * keep)
    check_model_bytes(data[:n], f"truncated_{model}.onnx")


def test_truncated_onnx_message_says_what_and_how_to_fix() -> None:
    path = WORK / "half.onnx"
    path.write_bytes(BLOB[: len(BLOB) // 2])
    rc, _, err = cli("run", "--source", "synthetic:64x64@30,frames=2", "--model", str(path))
    assert rc != 0 and "not a readable ONNX model" in err and "truncated" in err and "re-export" in err
    rc, _, err = cli("info", str(path))
    assert rc != 0 and "cannot read" in err and "is the file complete?" in err


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    model=st.sampled_from(sorted(MODELS)),
    flips=st.lists(st.tuples(st.floats(0, 1), st.integers(0, 7)), min_size=1, max_size=3),
)
def test_bit_flipped_onnx_loads_or_is_refused_in_one_line(model: str, flips: list[tuple[float, int]]) -> None:
    data = bytearray(MODELS[model])
    for where, bit in flips:
        data[min(int(where * len(data)), len(data) - 1)] ^= 1 << bit
    check_model_bytes(bytes(data), f"flipped_{model}.onnx")


# --- TensorRT engines: the sidecar is read before TensorRT is needed ---------------------------------------------

SIDECAR = {
    "key": {
        "tensorrt_version": "10.3.0", "gpu_name": "Orin", "sm": "8.7", "onnx_sha256": "ab" * 32,
        "precision": "fp16", "input_shape": "1x3x640x640",
    },
    "spec": {"input_hw": [640, 640], "output_format": "yolov5", "class_names": ["a"]},
}  # fmt: skip


@pytest.mark.parametrize("cut", [0, 1, 10, 40, 100, -1])
def test_truncated_engine_sidecar_refused_by_info_in_one_line(cut: int) -> None:
    plan = WORK / f"cut{cut}.engine"
    plan.write_bytes(b"\x00" * 64)
    text = json.dumps(SIDECAR)
    (WORK / f"cut{cut}.engine.json").write_text(text[: len(text) + cut if cut < 0 else cut])
    rc, out, err = cli("info", str(plan))
    assert rc != 0
    assert_clean_cli(rc, out, err)
    assert "sidecar" in err and "rebuild" in err


@settings(max_examples=EXAMPLES, deadline=None)
@given(flips=st.lists(st.tuples(st.floats(0, 1), st.integers(0, 7)), min_size=1, max_size=3))
def test_bit_flipped_engine_sidecar_info_is_clean(flips: list[tuple[float, int]]) -> None:
    data = bytearray(json.dumps(SIDECAR).encode())
    for where, bit in flips:
        data[min(int(where * len(data)), len(data) - 1)] ^= 1 << bit
    plan = WORK / "flip.engine"
    plan.write_bytes(b"\x00" * 64)
    (WORK / "flip.engine.json").write_bytes(bytes(data))
    assert_clean_cli(*cli("info", str(plan)))


def test_engine_plan_with_hostile_sidecar_refused_before_tensorrt_loads_it() -> None:
    """A plan whose sidecar names another TensorRT version is refused with the rebuild command, in one line."""
    plan = WORK / "other.engine"
    plan.write_bytes(b"\x00garbage plan")
    (WORK / "other.engine.json").write_text(json.dumps(SIDECAR))
    rc, out, err = cli(
        "run", "--source", "synthetic:64x64@30,frames=2", "--model", str(plan), "--backend", "tensorrt"
    )
    assert_clean_cli(rc, out, err)
    assert rc != 0  # without TensorRT: the missing package; with it: the version/GPU mismatch
    assert "tensorrt" in err.lower()
