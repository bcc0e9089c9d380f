"""Ultralytics checkpoints made by the real, pinned `ultralytics` package (one per detection family of 8.4.x,
saved as release files are) load with edgedet's built-in loader in a process where `ultralytics` cannot be
imported; their ONNX export on ONNX Runtime matches ultralytics' own PyTorch forward on a real image."""

from __future__ import annotations

import io
import json
import os
import pickle
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from tests.conftest import shared_path

from edgedet.errors import DataError, MissingDependencyError, ModelError

torch = pytest.importorskip("torch")
pytest.importorskip("ultralytics", reason="the parity tests compare against the real ultralytics package")
os.environ.setdefault("YOLO_OFFLINE", "1")

from tests.convert.ultralytics_helpers import FAMILIES, IMGSZ, make_checkpoint  # noqa: E402

from edgedet.convert.verify import align_end2end_rows  # noqa: E402

WORKER = Path(__file__).with_name("_ultralytics_worker.py")
# fp32 PyTorch vs fp32 ONNX Runtime: measured <= 1.3e-4 (boxes, input pixels) over all families
PARITY_ATOL = 2e-3
E2E_FAMILIES = ("v10n", "26n", "26n-p2", "26n-p6")


def _image_input() -> np.ndarray:
    import cv2

    from edgedet.convert.verify import preprocess_image
    from edgedet.spec import ModelSpec

    img = cv2.imread(str(shared_path("coco128", "images", "train2017", "000000000009.jpg")))
    return preprocess_image(img, ModelSpec(input_hw=(IMGSZ, IMGSZ)))


def _reference(checkpoint: Path, x: np.ndarray, end2end: bool) -> np.ndarray:
    """ultralytics' own loader and PyTorch forward (eval mode; the head's first output)."""
    from ultralytics.nn.tasks import load_checkpoint

    model = load_checkpoint(str(checkpoint))[0].float().eval()
    model.end2end = end2end
    with torch.no_grad():
        y = model(torch.from_numpy(x))
    return (y[0] if isinstance(y, (tuple, list)) else y)[0].numpy()


def _max_abs(ref: np.ndarray, got: np.ndarray, fmt: str) -> float:
    if fmt == "end2end":
        got = align_end2end_rows(ref[None].astype(np.float64), got[None].astype(np.float64), 1e-3)[0]
    return float(np.abs(ref.astype(np.float64) - got).max())


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Checkpoints for every family, ultralytics' reference outputs, and the built-in loader's ONNX outputs
    (computed in one subprocess where ultralytics is unimportable)."""
    root = tmp_path_factory.mktemp("ultralytics")
    x = _image_input()
    np.save(root / "input.npy", x)
    jobs, refs = [], {}
    for fam in FAMILIES:
        ckpt = make_checkpoint(fam, root / fam)
        variants = [False, True] if fam in E2E_FAMILIES else [False]
        for one2many in variants:
            job_id = fam + ("-one2many" if one2many and fam in E2E_FAMILIES else "")
            e2e = fam in E2E_FAMILIES and not one2many
            refs[job_id] = _reference(ckpt, x, end2end=e2e)
            jobs.append(
                {
                    "id": job_id,
                    "checkpoint": str(ckpt),
                    "input": str(root / "input.npy"),
                    "one2many": one2many,
                }
            )
    (root / "jobs.json").write_text(json.dumps(jobs))
    proc = subprocess.run(
        [sys.executable, str(WORKER), str(root / "jobs.json"), str(root)],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads((root / "results.json").read_text())
    return {"root": root, "refs": refs, "results": results}


def test_builtin_loader_never_imported_ultralytics(built: dict[str, Any]) -> None:
    assert built["results"]["ultralytics_imported"] == []
    assert len(built["results"]["jobs"]) == len(FAMILIES) + len(E2E_FAMILIES)


EXPECTED_FAMILY = {
    "v3u": "YOLOv3u",
    "v3u-spp": "YOLOv3u-spp",
    "v3u-tiny": "YOLOv3u-tiny",
    "v5nu": "YOLOv5nu",
    "v5nu-p6": "YOLOv5nu-p6",
    "v6n": "YOLOv6n",
    "v8n": "YOLOv8n",
    "v8n-p2": "YOLOv8n-p2",
    "v8n-p6": "YOLOv8n-p6",
    "v8n-ghost": "YOLOv8n-ghost",
    "v9t": "YOLOv9t",
    "v9e": "YOLOv9e",
    "v10n": "YOLOv10n",
    "11n": "YOLO11n",
    "12n": "YOLO12n",
    "26n": "YOLO26n",
    "26n-p2": "YOLO26n-p2",
    "26n-p6": "YOLO26n-p6",
}


@pytest.mark.slow
@pytest.mark.parametrize("job_id", [*FAMILIES, *(f + "-one2many" for f in E2E_FAMILIES)])
def test_onnx_matches_ultralytics_forward(built: dict[str, Any], job_id: str) -> None:
    from edgedet.postprocess.decode import decode

    fam = job_id.removesuffix("-one2many")
    res = built["results"]["jobs"][job_id]
    ref = built["refs"][job_id]
    got = np.load(built["root"] / f"{job_id}.npy")
    e2e = fam in E2E_FAMILIES and not job_id.endswith("-one2many")
    assert res["format"] == ("end2end" if e2e else "yolov8")
    assert res["head"] == ("one2one" if e2e else "one2many")
    assert res["family"] == EXPECTED_FAMILY[fam]
    assert res["task"] == "detect" and res["train_imgsz"] == IMGSZ and res["weights_from"] == "model"
    assert res["nc"] == 80 and res["names"] == ["person", "bicycle", "car"]
    assert ref.shape == got.shape == ((300, 6) if e2e else (84, ref.shape[1]))
    # the comparison proves something only if the outputs vary
    if e2e:
        assert len(np.unique(ref[:, 5])) >= 3 and ref[:, :4].std() > 1.0
    else:
        assert ref[4:].std() > 0.005, ref[4:].std()
    assert _max_abs(ref, got, res["format"]) <= PARITY_ATOL
    # `run` decodes both alike: the same detections (threshold set in a gap between scores, as near-equal
    # scores may fall either side of it under float noise)
    scores = np.sort((ref[:, 4] if e2e else ref[4:].max(axis=0)).ravel())
    gaps = np.flatnonzero(np.diff(scores[-200:]) > 1e-4)
    assert gaps.size, "no gap between the top scores"
    conf = float(scores[-200:][gaps[0]] + 5e-5)
    _, s_r, c_r = decode(res["format"], [ref[None]], conf_threshold=conf, num_classes=80)
    _, s_g, c_g = decode(res["format"], [got[None]], conf_threshold=conf, num_classes=80)
    assert len(s_r) >= 1 and len(s_r) == len(s_g)
    assert sorted(c_r.tolist()) == sorted(c_g.tolist())


def test_trainer_checkpoint_reads_ema(tmp_path: Path) -> None:
    """A checkpoint as training writes it (model None, weights under ema, optimizer state) loads."""
    from edgedet.convert.adapters.ultralytics import load_ultralytics

    ckpt = make_checkpoint("v8n", tmp_path, release=False)
    loaded = load_ultralytics(ckpt, loader="builtin")
    assert loaded.extra["weights_from"] == "ema" and loaded.output_format == "yolov8"
    x = torch.from_numpy(_image_input())
    with torch.no_grad():
        got = loaded.module(x)[0].numpy()
    assert float(np.abs(got - _reference(ckpt, x.numpy(), end2end=False)).max()) <= PARITY_ATOL


def test_fused_checkpoint_loads_and_keeps_only_its_head(tmp_path: Path) -> None:
    """model.fuse() then save(): fused layers pickle `forward_fuse` through getattr, which the restricted
    unpickler allows only for edgedet's own layers; YOLO26 fused in end-to-end mode keeps only one2one."""
    from ultralytics import YOLO

    from edgedet.convert.adapters.ultralytics import load_ultralytics

    model = YOLO("yolo26n.yaml")
    model.model.end2end = True
    model.model.fuse(verbose=False)
    path = tmp_path / "yolo26n.pt"
    model.save(path)
    loaded = load_ultralytics(path, loader="builtin")
    assert loaded.output_format == "end2end"
    with pytest.raises(ModelError, match="one-to-many head was removed"):
        load_ultralytics(path, loader="builtin", one2many=True)
    x = _image_input()
    with torch.no_grad():
        got = loaded.module(torch.from_numpy(x))[0].numpy()
    assert _max_abs(_reference(path, x, end2end=True), got, "end2end") <= PARITY_ATOL


@pytest.mark.parametrize(
    ("yaml_name", "task"),
    [
        ("yolov8n-seg.yaml", "segment"),
        ("yolo11n-pose.yaml", "pose"),
        ("yolo26n-obb.yaml", "obb"),
        ("yolov8n-cls.yaml", "classify"),
    ],
)
def test_other_tasks_refused_in_one_line(tmp_path: Path, yaml_name: str, task: str) -> None:
    from ultralytics import YOLO

    from edgedet.convert.adapters.ultralytics import load_ultralytics

    path = tmp_path / yaml_name.replace(".yaml", ".pt")
    YOLO(yaml_name).save(path)
    with pytest.raises(DataError, match=rf"Ultralytics {task} checkpoint") as info:
        load_ultralytics(path, loader="builtin")
    msg = str(info.value)
    assert "\n" not in msg and "YOLOv8" in msg and "YOLO26" in msg


def test_unknown_layer_refused_naming_it_and_the_families() -> None:
    from edgedet.convert.adapters.ultralytics_pickle import UltralyticsUnpickler

    data = b"\x80\x02cultralytics.nn.modules.block\nSomeNewBlock\nq\x00)\x81q\x01."
    with pytest.raises(DataError, match=r"ultralytics\.nn\.modules\.block\.SomeNewBlock") as info:
        UltralyticsUnpickler(io.BytesIO(data)).load()
    assert "YOLOv3u" in str(info.value) and "YOLO12" in str(info.value)


class _Payload:
    def __init__(self, canary: Path) -> None:
        self.canary = canary

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (os.system, (f"touch {self.canary}",))


def test_code_in_checkpoint_is_refused_before_it_runs(tmp_path: Path) -> None:
    from edgedet.convert.adapters.ultralytics import load_ultralytics

    canary = tmp_path / "canary"
    from ultralytics import YOLO

    model = YOLO("yolov8n.yaml").model
    path = tmp_path / "evil.pt"
    torch.save({"model": model, "evil": _Payload(canary)}, path)
    for loader in ("builtin", "ultralytics"):
        with pytest.raises(DataError, match=r"refusing to unpickle .*system"):
            load_ultralytics(path, loader=loader)
    assert not canary.exists()


class _GetattrPayload:
    def __reduce__(self):  # type: ignore[no-untyped-def]
        from collections import OrderedDict

        return (getattr, (OrderedDict(), "__class__"))


def test_getattr_only_reaches_forward_of_edgedet_layers() -> None:
    """getattr on an allowed object could walk to a function's __globals__ and from there to eval; only a
    fused layer's forward may be looked up."""
    from edgedet.convert.adapters.ultralytics_pickle import UltralyticsUnpickler

    data = pickle.dumps(_GetattrPayload(), protocol=2)
    with pytest.raises(DataError, match=r"getattr\(<OrderedDict>, '__class__'\)"):
        UltralyticsUnpickler(io.BytesIO(data)).load()


def test_package_loader_matches_builtin(tmp_path: Path) -> None:
    """--loader ultralytics goes through the installed package's public load_checkpoint."""
    import ultralytics

    from edgedet.convert.adapters.ultralytics import load_ultralytics

    x = torch.from_numpy(_image_input())
    for fam in ("v8n", "26n"):
        ckpt = make_checkpoint(fam, tmp_path / fam)
        pkg = load_ultralytics(ckpt, loader="ultralytics")
        own = load_ultralytics(ckpt, loader="builtin")
        assert pkg.extra["loader"] == f"ultralytics {ultralytics.__version__}"
        assert pkg.output_format == own.output_format and pkg.class_names == own.class_names
        with torch.no_grad():
            a, b = pkg.module(x)[0].numpy(), own.module(x)[0].numpy()
        assert _max_abs(a, b, own.output_format) <= PARITY_ATOL


def test_package_loader_names_the_version_when_its_api_is_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import ultralytics
    import ultralytics.nn.tasks as tasks

    from edgedet.convert.adapters.ultralytics import load_ultralytics

    ckpt = make_checkpoint("v8n", tmp_path)
    monkeypatch.delattr(tasks, "load_checkpoint")
    with pytest.raises(
        MissingDependencyError, match=rf"ultralytics {ultralytics.__version__} has no .*load_checkpoint"
    ):
        load_ultralytics(ckpt, loader="ultralytics")


def test_unpickler_refuses_plain_pickles_of_other_globals() -> None:
    from edgedet.convert.adapters.ultralytics_pickle import UltralyticsUnpickler

    with pytest.raises(DataError, match=r"refusing to unpickle builtins\.eval"):
        UltralyticsUnpickler(io.BytesIO(pickle.dumps(eval))).load()
