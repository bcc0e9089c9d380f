"""The restricted unpickler: YOLOv5 checkpoints load; crafted pickles that run code are refused before running."""

from __future__ import annotations

import io
import os
import pickle
import subprocess
from pathlib import Path

import pytest

from edgedet.convert.adapters import detect_source_kind, pickle_globals
from edgedet.convert.adapters.yolov5 import RestrictedUnpickler, load_yolov5
from edgedet.errors import DataError, ModelError

torch = pytest.importorskip("torch")


class _OsSystem:
    def __init__(self, canary: Path) -> None:
        self.canary = canary

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (os.system, (f"echo pwned > {self.canary}",))


class _Eval:
    def __init__(self, canary: Path) -> None:
        self.canary = canary

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (eval, (f"open({str(self.canary)!r}, 'w').write('pwned')",))


class _Popen:
    def __init__(self, canary: Path) -> None:
        self.canary = canary

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (subprocess.Popen, (["touch", str(self.canary)],))


PAYLOADS = [
    pytest.param(_OsSystem, "system", id="os.system"),
    pytest.param(_Eval, "builtins.eval", id="builtins.eval"),
    pytest.param(_Popen, "subprocess.Popen", id="subprocess.Popen"),
]


@pytest.mark.parametrize(("payload", "global_name"), PAYLOADS)
def test_raw_pickle_refused_and_canary_absent(tmp_path: Path, payload: type, global_name: str) -> None:
    canary = tmp_path / "canary"
    data = pickle.dumps({"model": payload(canary)}, protocol=2)
    with pytest.raises(DataError, match=r"refusing to unpickle .*" + global_name.split(".")[-1]):
        RestrictedUnpickler(io.BytesIO(data)).load()
    assert not canary.exists()


@pytest.mark.parametrize(("payload", "global_name"), PAYLOADS)
def test_torch_checkpoint_refused_and_canary_absent(tmp_path: Path, payload: type, global_name: str) -> None:
    canary = tmp_path / "canary"
    ckpt = tmp_path / "evil.pt"
    torch.save({"model": payload(canary), "epoch": 3}, ckpt)
    assert not canary.exists()
    # the globals are visible without unpickling, and name the payload
    assert any(global_name.split(".")[-1] in g for g in pickle_globals(ckpt))
    with pytest.raises(DataError, match="a checkpoint is code; only YOLOv5 modules are allowed"):
        load_yolov5(ckpt)
    assert not canary.exists()
    with pytest.raises(ModelError, match="cannot tell what kind of checkpoint"):
        detect_source_kind(str(ckpt))
    assert not canary.exists()


def test_yolov5_module_names_disguising_a_payload_are_refused(tmp_path: Path) -> None:
    # A global under models.common that is not an allow-listed class must not be imported.
    data = b"\x80\x02cmodels.common\nos_system_gadget\nq\x00."
    with pytest.raises(DataError, match=r"models\.common\.os_system_gadget"):
        RestrictedUnpickler(io.BytesIO(data)).load()


@pytest.mark.parametrize(
    ("module", "name", "expected"),
    [
        ("collections", "OrderedDict", "OrderedDict"),
        ("__builtin__", "set", "set"),
        ("models.common", "C3", "C3"),
        ("models.yolo", "Model", "DetectionModel"),
        ("torch.nn.modules.conv", "Conv2d", "Conv2d"),
        ("torch._utils", "_rebuild_tensor_v2", "_rebuild_tensor_v2"),
    ],
)
def test_allow_listed_globals_resolve_to_safe_objects(module: str, name: str, expected: str) -> None:
    obj = RestrictedUnpickler(io.BytesIO(b"")).find_class(module, name)
    assert obj.__name__ == expected
    assert not getattr(obj, "__module__", "").startswith("models")  # never the YOLOv5 repo's code
