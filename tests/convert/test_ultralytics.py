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

from tests.convert.ultralytics_helpers import (  # noqa: E402
    FAMILIES,
    IMGSZ,
    make_checkpoint,
    real_image_batch,
)

from edgedet.convert.verify import align_end2end_rows  # noqa: E402

WORKER = Path(__file__).with_name("_ultralytics_worker.py")
# Scores (sigmoid) must agree to SCORE_ATOL (or, where float32 noise is larger, as for boxes below). Box coordinates (input pixels; a random network predicts boxes
# up to ~550 px) carry float32 noise that the spread-out random weights amplify: ultralytics' own fp32 forward
# differs from its float64 forward by up to ~5e-3 px here, and its fused model from its unfused one as much.
# So boxes must agree within BOX_NOISE_FACTOR x that measured float32 noise (at least BOX_ATOL).
SCORE_ATOL = 1e-3
BOX_ATOL = 1e-2
BOX_NOISE_FACTOR = 4.0
E2E_FAMILIES = ("v10n", "26n", "26n-p2", "26n-p6")
TEST_IMAGE = "000000000009.jpg"


def _image_input() -> np.ndarray:
    import cv2

    from edgedet.convert.verify import preprocess_image
    from edgedet.spec import ModelSpec

    img = cv2.imread(str(shared_path("coco128", "images", "train2017", TEST_IMAGE)))
    return preprocess_image(img, ModelSpec(input_hw=(IMGSZ, IMGSZ)))


def _reference(checkpoint: Path, x: np.ndarray, end2end: bool, dtype: Any = None) -> np.ndarray:
    """ultralytics' own loader and PyTorch forward (eval mode; the head's first output), in float32 or
    (dtype=torch.float64) in double precision, to measure the float32 noise floor."""
    from ultralytics.nn.tasks import load_checkpoint

    dtype = dtype or torch.float32
    model = load_checkpoint(str(checkpoint))[0].to(dtype).eval()
    model.end2end = end2end
    with torch.no_grad():
        y = model(torch.from_numpy(x).to(dtype))
    return (y[0] if isinstance(y, (tuple, list)) else y)[0].numpy()


def _errors(ref: np.ndarray, got: np.ndarray, fmt: str) -> tuple[float, float]:
    """(max abs error of box coordinates, of scores) of `got` against `ref` ([4+nc, A] or [K, 6])."""
    ref, got = ref.astype(np.float64), got.astype(np.float64)
    if fmt == "end2end":
        got = align_end2end_rows(ref[None], got[None], SCORE_ATOL)[0]
        d = np.abs(ref - got)
        return float(d[:, :4].max()), float(d[:, 4:].max())
    d = np.abs(ref - got)
    return float(d[:4].max()), float(d[4:].max())


def assert_parity(ref: np.ndarray, ref64: np.ndarray, got: np.ndarray, fmt: str) -> None:
    box, score = _errors(ref, got, fmt)
    noise_box, noise_score = _errors(ref64, ref, fmt)
    assert score <= max(SCORE_ATOL, BOX_NOISE_FACTOR * noise_score), (
        f"scores differ by {score} ({noise_score})"
    )
    assert box <= max(BOX_ATOL, BOX_NOISE_FACTOR * noise_box), (
        f"boxes differ by {box} px (fp32 noise {noise_box})"
    )


@pytest.fixture(scope="module")
def calib() -> Any:
    """The test image, on which the random models' BatchNorm statistics and class-conv scales are set.

    A random network is unstable: statistics set on other images let activations blow up on a new one
    (measured: class logits with std 42 instead of 1.5), saturating every score at 1.0."""
    return real_image_batch([shared_path("coco128", "images", "train2017", TEST_IMAGE)])


@pytest.fixture(scope="module")
def built(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, calib: Any
) -> dict[str, Any]:
    """Checkpoints for every family, ultralytics' reference outputs, and the built-in loader's ONNX outputs
    (computed in one subprocess where ultralytics is unimportable)."""
    root = tmp_path_factory.mktemp("ultralytics")
    x = _image_input()
    np.save(root / "input.npy", x)
    jobs, refs = [], {}
    # only the families whose tests were selected (-k), or all; at least one for the import check
    wanted = {
        str(item.callspec.params["job_id"]).removesuffix("-one2many")
        for item in request.session.items
        if hasattr(item, "callspec") and "job_id" in item.callspec.params
    }
    for fam in [f for f in FAMILIES if f in wanted] or ["v8n"]:
        ckpt = make_checkpoint(fam, root / fam, calib)
        variants = [False, True] if fam in E2E_FAMILIES else [False]
        for one2many in variants:
            job_id = fam + ("-one2many" if one2many and fam in E2E_FAMILIES else "")
            e2e = fam in E2E_FAMILIES and not one2many
            refs[job_id] = _reference(ckpt, x, end2end=e2e)
            refs[job_id + "/fp64"] = _reference(ckpt, x, end2end=e2e, dtype=torch.float64)
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
    assert len(built["results"]["jobs"]) >= 1


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
        assert len(np.unique(ref[:, 5])) >= 10 and ref[:, 4].std() > 0.01 and ref[:, :4].std() > 1.0
    else:
        assert ref[4:].std() > 0.02, ref[4:].std()
    assert_parity(ref, built["refs"][job_id + "/fp64"], got, res["format"])
    # `run` decodes both alike: the same detections (threshold set mid-way in a gap between scores wider than
    # the score tolerance, as near-equal scores may fall either side of a threshold under float noise)
    scores = np.sort((ref[:, 4] if e2e else ref[4:].max(axis=0)).ravel())[::-1][:1000]
    gaps = np.flatnonzero(-np.diff(scores) > 4 * SCORE_ATOL)
    if gaps.size:
        i = int(gaps[np.argmin(np.abs(gaps - 100))])  # keep about 100 detections
        conf = float(scores[i] + scores[i + 1]) / 2
    else:  # scores packed tightly (an NMS-free head's 300 rows): keep them all
        conf = float(scores[-1]) - 4 * SCORE_ATOL
    _, s_r, c_r = decode(res["format"], [ref[None]], conf_threshold=conf, num_classes=80)
    _, s_g, c_g = decode(res["format"], [got[None]], conf_threshold=conf, num_classes=80)
    assert len(s_r) >= 1 and len(s_r) == len(s_g)
    if e2e:
        assert sorted(c_r.tolist()) == sorted(c_g.tolist())
        return
    # The same anchors, in anchor order. Random weights leave some anchors with two classes scoring within
    # float noise of each other (a YOLOv9e failed here on one CPU and passed on another): such an anchor may
    # take either class; every other anchor must take the reference's.
    cls = ref[4:, ref[4:].max(axis=0) > conf]
    top2 = np.sort(cls, axis=0)[-2:]
    tied = top2[1] - top2[0] <= 4 * SCORE_ATOL
    assert (~tied).sum() >= len(c_r) // 2, "too few anchors with a clear class to compare"
    np.testing.assert_array_equal(c_r[~tied], c_g[~tied])


def test_trainer_checkpoint_reads_ema(tmp_path: Path, calib: Any) -> None:
    """A checkpoint as training writes it (model None, weights under ema, optimizer state) loads."""
    from edgedet.convert.adapters.ultralytics import load_ultralytics

    ckpt = make_checkpoint("v8n", tmp_path, calib, release=False)
    loaded = load_ultralytics(ckpt, loader="builtin")
    assert loaded.extra["weights_from"] == "ema" and loaded.output_format == "yolov8"
    x = torch.from_numpy(_image_input())
    with torch.no_grad():
        got = loaded.module(x)[0].numpy()
    ref, ref64 = (_reference(ckpt, x.numpy(), False, dt) for dt in (torch.float32, torch.float64))
    assert_parity(ref, ref64, got, "yolov8")


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
    ref, ref64 = (_reference(path, x, True, dt) for dt in (torch.float32, torch.float64))
    assert_parity(ref, ref64, got, "end2end")


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


def test_package_loader_matches_builtin(tmp_path: Path, calib: Any) -> None:
    """--loader ultralytics goes through the installed package's public load_checkpoint."""
    import ultralytics

    from edgedet.convert.adapters.ultralytics import load_ultralytics

    x = torch.from_numpy(_image_input())
    for fam in ("v8n", "26n"):
        ckpt = make_checkpoint(fam, tmp_path / fam, calib)
        pkg = load_ultralytics(ckpt, loader="ultralytics")
        own = load_ultralytics(ckpt, loader="builtin")
        assert pkg.extra["loader"] == f"ultralytics {ultralytics.__version__}"
        assert pkg.output_format == own.output_format and pkg.class_names == own.class_names
        with torch.no_grad():
            a, b = pkg.module(x)[0].numpy(), own.module(x)[0].numpy()
        e2e = own.output_format == "end2end"
        assert_parity(a, _reference(ckpt, x.numpy(), e2e, torch.float64), b, own.output_format)


def test_package_loader_names_the_version_when_its_api_is_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, calib: Any
) -> None:
    import ultralytics
    import ultralytics.nn.tasks as tasks

    from edgedet.convert.adapters.ultralytics import load_ultralytics

    ckpt = make_checkpoint("v8n", tmp_path, calib)
    monkeypatch.delattr(tasks, "load_checkpoint")
    with pytest.raises(
        MissingDependencyError, match=rf"ultralytics {ultralytics.__version__} has no .*load_checkpoint"
    ):
        load_ultralytics(ckpt, loader="ultralytics")


def test_unpickler_refuses_plain_pickles_of_other_globals() -> None:
    from edgedet.convert.adapters.ultralytics_pickle import UltralyticsUnpickler

    with pytest.raises(DataError, match=r"refusing to unpickle builtins\.eval"):
        UltralyticsUnpickler(io.BytesIO(pickle.dumps(eval))).load()


def test_cli_info_and_convert_a_release_named_checkpoint(
    tmp_path: Path, calib: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    """`edgedet info yolov8n.pt` describes without converting; `edgedet convert yolov8n.pt` (no flags) exports
    at the training size recorded in the checkpoint, checked against PyTorch."""
    from edgedet.cli import main
    from edgedet.convert.export_onnx import read_spec

    ckpt = make_checkpoint("v8n", tmp_path, calib)
    assert ckpt.name == "yolov8n.pt"
    assert main(["info", str(ckpt), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["family"] == "YOLOv8n" and info["task"] == "detect" and info["format"] == "ultralytics"
    assert info["num_classes"] == 80 and info["class_names"][:3] == ["person", "bicycle", "car"]
    assert info["input_size"] == f"{IMGSZ}x{IMGSZ}"
    assert info["parameters"] == 3_157_200  # YOLOv8n's published 3.2M
    assert info["loader"].startswith("edgedet built-in") and info["output_format"] == "yolov8"
    assert not (tmp_path / "yolov8n.onnx").exists()
    assert main(["info", str(ckpt)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("yolov8n.pt: ultralytics checkpoint (written by ultralytics 8.4")
    assert "YOLOv8n, task detect" in lines[1] and f"{IMGSZ}x{IMGSZ}, stride 32" in lines[2]
    assert "80: person, bicycle, car" in lines[4] and "3,157,200" in lines[5]
    assert main(["convert", str(ckpt)]) == 0
    spec = read_spec(tmp_path / "yolov8n.onnx")
    assert (
        spec.input_hw == (IMGSZ, IMGSZ) and spec.output_format == "yolov8" and spec.class_names[0] == "person"
    )
    assert spec.provenance["family"] == "YOLOv8n" and spec.provenance["task"] == "detect"
    err = capsys.readouterr().err
    assert "parity yolov8n.onnx vs PyTorch" in err and ": ok;" in err


def test_cli_one2many_only_for_ultralytics(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from edgedet.cli import main

    assert main(["convert", "pkg.mod:factory", "--one2many"]) != 0
    assert "--one2many applies to Ultralytics end-to-end checkpoints" in capsys.readouterr().err


def test_auto_falls_back_to_the_package_for_a_layer_edgedet_lacks(tmp_path: Path, calib: Any) -> None:
    """A detection model with a layer the built-in loader does not implement (C3x, in no 8.4 detection yaml):
    --loader builtin refuses it naming the layer; auto reads it with the installed package and says so."""
    import yaml
    from ultralytics import YOLO
    from ultralytics.nn.tasks import yaml_model_load

    from edgedet.convert.adapters.ultralytics import load_ultralytics

    d = yaml_model_load("yolov8n.yaml")
    d = {k: v for k, v in d.items() if k not in ("yaml_file",)}
    d["backbone"][2][2] = "C3x"
    cfg = tmp_path / "yolov8n.yaml"
    cfg.write_text(yaml.safe_dump(d), encoding="utf-8")
    path = tmp_path / "custom.pt"
    YOLO(str(cfg)).save(path)
    with pytest.raises(DataError, match=r"refusing to unpickle ultralytics\.nn\.modules\.block\.C3x"):
        load_ultralytics(path, loader="builtin")
    loaded = load_ultralytics(path, loader="auto")
    assert loaded.extra["loader"].startswith("ultralytics 8.4")
    assert "used the installed ultralytics package instead" in loaded.extra["fallback_note"]
    with torch.no_grad():
        y = loaded.module(torch.zeros(1, 3, IMGSZ, IMGSZ))
    assert tuple(y.shape) == (1, 84, 2100)
