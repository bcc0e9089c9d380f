"""tools/fetch_data.py against a real HTTP server on loopback serving the project's copy of the data.

The mirror is laid out like the data folder (mot/<seq>/det.txt, ...) plus coco128.zip, rebuilt here from the
copy's files under the member names Ultralytics' zip uses (coco128/images/train2017/..., with extra members the
tool must ignore). Every fetched file is compared byte for byte with the copy.
"""

from __future__ import annotations

import functools
import hashlib
import http.server
import json
import os
import shutil
import threading
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.helpers.data import DATA_ENV, data_path, data_root, missing_reason

from tools import fetch_data

MANIFEST = fetch_data.load_manifest()


class _Handler(http.server.SimpleHTTPRequestHandler):
    requests: list[str]

    def log_message(self, *args: object) -> None:  # keep pytest's output clean
        pass

    def do_GET(self) -> None:
        self.requests.append(self.path)
        super().do_GET()


@pytest.fixture
def mirror(tmp_path: Path) -> Iterator[tuple[str, Path, list[str]]]:
    """(base URL, mirror folder, request log) of a server on 127.0.0.1 serving a mirror of the data."""
    src = data_path("mot")  # skips naming the fetch command when the copy is absent
    root = src.parent
    for need in ("coco128", "video", "models/yolov5n.pt"):
        data_path(*need.split("/"))
    served = tmp_path / "mirror"
    for name in ("mot", "video"):
        shutil.copytree(root / name, served / name)
    (served / "models").mkdir()
    os.symlink(root / "models" / "yolov5n.pt", served / "models" / "yolov5n.pt")
    with zipfile.ZipFile(served / "coco128.zip", "w") as zf:
        for e in MANIFEST["datasets"]["coco128"]["files"]:
            if e.get("archive") == "coco128.zip":
                zf.write(root / e["path"], e["path"])
        zf.writestr("coco128/README.txt", "not listed in the manifest: left out")
    requests: list[str] = []
    handler = type("H", (_Handler,), {"requests": requests})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(handler, directory=str(served)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", served, requests
    server.shutdown()
    server.server_close()


def _same_tree(dest: Path, names: list[str]) -> None:
    root = data_root()
    for name in names:
        for e in MANIFEST["datasets"][name]["files"]:
            got = (dest / e["path"]).read_bytes()
            assert got == (root / e["path"]).read_bytes(), e["path"]
            assert hashlib.sha256(got).hexdigest() == e["sha256"]


def test_fetches_everything_verified_then_nothing_twice(
    mirror: tuple[str, Path, list[str]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url, _served, requests = mirror
    dest = tmp_path / "data"
    assert fetch_data.main(["--dest", str(dest), "--mirror", url]) == 0
    _same_tree(dest, ["coco128", "mot", "models", "video"])
    assert not (dest / "coco128" / "README.txt").exists()  # only the listed members are kept
    # one request per plain file, one for the whole zip; the seqinfo.ini files written by hand come from the manifest
    plain = sum(1 for d in MANIFEST["datasets"].values() for e in d["files"] if "urls" in e)
    assert len(requests) == plain + 1 and "/coco128.zip" in requests
    out = capsys.readouterr().out
    assert "275 files verified under" in out
    assert "models/reference_onnx/yolov5n_320.onnx: no public source, not fetched" in out
    assert "CC BY-NC-SA 3.0" in out  # the licence is said, not hidden

    requests.clear()
    assert fetch_data.main(["--dest", str(dest), "--mirror", url]) == 0
    assert requests == []  # all present with the right hashes: nothing downloaded again
    assert fetch_data.main(["--dest", str(dest), "--check"]) == 0


def test_a_file_with_the_wrong_bytes_is_refused_and_never_left_in_place(
    mirror: tuple[str, Path, list[str]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url, served, _ = mirror
    det = served / "mot" / "TUD-Stadtmitte" / "det.txt"
    det.write_bytes(det.read_bytes().replace(b",", b";", 1))  # one byte changed upstream
    dest = tmp_path / "data"
    assert fetch_data.main(["--dest", str(dest), "--mirror", url, "mot"]) == 1
    err = capsys.readouterr().err
    assert f"error: mot/TUD-Stadtmitte/det.txt: not fetched ({url}/mot/TUD-Stadtmitte/det.txt: sha256 " in err
    assert not (dest / "mot" / "TUD-Stadtmitte" / "det.txt").exists()
    assert not list((dest / "mot" / "TUD-Stadtmitte").glob("*.part"))
    assert (dest / "mot" / "Venice-2" / "gt.txt").is_file()  # the rest still arrived


def test_unreachable_source_names_the_file_and_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    assert fetch_data.main(["--dest", str(tmp_path), "--mirror", f"http://127.0.0.1:{port}", "video"]) == 1
    err = capsys.readouterr().err
    assert "error: video/people_indoor_640x368.mp4: not fetched (" in err and "refused" in err.lower()


def test_env_var_points_the_tool_and_the_tests_elsewhere(
    mirror: tuple[str, Path, list[str]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url, _, _ = mirror
    elsewhere = tmp_path / "elsewhere"
    monkeypatch.setenv(DATA_ENV, str(elsewhere))
    assert fetch_data.main(["--mirror", url, "mot"]) == 0
    assert (elsewhere / "mot" / "MOT17-09-FRCNN" / "gt.txt").is_file()
    assert data_path("mot", "MOT17-09-FRCNN") == elsewhere / "mot" / "MOT17-09-FRCNN"


def test_skip_reason_names_the_fetch_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(DATA_ENV, str(tmp_path))
    with pytest.raises(pytest.skip.Exception) as skipped:
        data_path("coco128")
    assert str(skipped.value) == (
        f"test data not present: {tmp_path / 'coco128'} (fetch it with `python tools/fetch_data.py coco128`; "
        f"or set {DATA_ENV} to a folder that has it)"
    )
    reason = missing_reason(tmp_path / "x.onnx", ("models", "reference_onnx", "yolov5n_320.onnx"))
    assert "no public source: `python tools/fetch_data.py --list models`" in reason


def test_manifest_matches_the_copy_and_every_file_has_a_source() -> None:
    root = data_path("mot").parent
    for name, ds in MANIFEST["datasets"].items():
        for e in ds["files"]:
            assert ("urls" in e) + ("archive" in e) + ("text" in e) == 1, e["path"]
            if "archive" in e:
                assert ds["archives"][e["archive"]]
        assert fetch_data.check([name], root, MANIFEST) == []
    json.dumps(MANIFEST)
