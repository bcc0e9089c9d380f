"""`edgedet run --stream/--mavlink/--publish` end to end through the CLI (flags and YAML), and the one-line
errors for bad addresses and missing packages."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from tests.link.conftest import free_port

from edgedet.cli import main


def test_run_streams_publishes_and_writes_the_sdp_in_the_run_folder(
    receiver, tmp_path: Path, monkeypatch
) -> None:
    pytest.importorskip("av")
    pytest.importorskip("pymavlink")
    monkeypatch.chdir(tmp_path)
    vport, uport = free_port(even=True), free_port()
    rx = receiver("rtp", vport).start()
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("127.0.0.1", uport))
    udp.settimeout(5)
    (tmp_path / "run.yaml").write_text(
        f"publish: [udp://127.0.0.1:{uport}]\nstream_encoder: pyav\nmavlink: udpout:127.0.0.1:{free_port()}\n"
    )
    try:
        code = main([
            "run", "--source", "demo:frames=40", "--config", "run.yaml", "--stream", f"rtp://127.0.0.1:{vport}",
            "--stream-keyint", "0.5", "--json", "summary.json",
        ])  # fmt: skip
        assert code == 0
        messages = [json.loads(udp.recv(65536)) for _ in range(40)]
    finally:
        udp.close()
    assert [m["frame"] for m in messages] == list(range(40))
    summary = json.loads((tmp_path / "summary.json").read_text())
    sdp = [Path(p) for p in summary["outputs"] if p.endswith(".sdp")]
    assert (
        len(sdp) == 1
        and sdp[0].parent.name.startswith("demo-")
        and f"m=video {vport} RTP/AVP 96" in sdp[0].read_text()
    )
    live = {o["flag"]: o["note"] for o in summary["live_outputs"]}
    assert set(live) == {"--stream", "--mavlink", "--publish"} and summary["incomplete_outputs"] == []
    sent = int(re.search(r"sent (\d+) frames", live["--stream"]).group(1))  # type: ignore[union-attr]
    assert sent >= 20 and "published 40 messages" in live["--publish"]
    assert rx.wait_frames(sent, 10), (len(rx.frames), sent)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--stream", "rtp://127.0.0.1:5601"], "--stream rtp://127.0.0.1:5601: RTP uses an even port"),
        (["--mavlink", "COM"], "--mavlink COM: not a MAVLink connection"),
        (["--publish", "mqtt://broker"], "--publish mqtt://broker: an MQTT address needs a topic"),
        (["--stream-bitrate", "10"], "--stream-bitrate"),
        (["--stream-encoder", "nvenc"], "--stream-encoder"),
    ],
)
def test_bad_link_options_fail_before_anything_opens(args: list[str], message: str, capsys) -> None:
    assert main(["run", "--source", "demo:frames=5", *args]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


@pytest.mark.parametrize(
    ("args", "package"),
    [
        (["--stream", "rtp://127.0.0.1:5600", "--stream-encoder", "pyav"], "av"),
        (["--mavlink", "udpout:127.0.0.1:14550"], "pymavlink"),
        (["--publish", "mqtt://127.0.0.1/t"], "paho"),
    ],
)
def test_a_missing_link_package_names_the_extra(args: list[str], package: str, tmp_path: Path) -> None:
    code = textwrap.dedent(
        f"""
        import importlib.abc, sys
        class Block(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] == {package!r}:
                    raise ImportError(name)
        sys.meta_path.insert(0, Block())
        from edgedet.cli import main
        sys.exit(main(["run", "--source", "demo:frames=5", *{args!r}]))
        """
    )
    t = time.monotonic()
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=tmp_path
    )
    assert out.returncode == 1, out.stderr
    assert f"needs the '{package}' package" in out.stderr and "pip install 'edgedet[link]'" in out.stderr
    assert "Traceback" not in out.stderr
    assert time.monotonic() - t < 60


def test_stream_and_publish_are_also_sink_registry_entries(receiver, tmp_path: Path, monkeypatch) -> None:
    pytest.importorskip("av")
    monkeypatch.chdir(tmp_path)
    vport, uport = free_port(even=True), free_port()
    rx = receiver("rtp", vport).start()
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("127.0.0.1", uport))
    udp.settimeout(5)
    try:
        code = main([
            "run", "--source", "demo:frames=20", "--sink", f"stream:rtp://127.0.0.1:{vport}",
            "--sink", f"publish:udp://127.0.0.1:{uport}",
        ])  # fmt: skip
        assert code == 0
        assert [json.loads(udp.recv(65536))["frame"] for _ in range(20)] == list(range(20))
    finally:
        udp.close()
    assert rx.wait_frames(10, 10)
    assert main(["run", "--source", "demo:frames=5", "--sink", "stream"]) == 2  # needs its URL


def test_a_stream_nobody_receives_is_reported_not_failed(tmp_path: Path, monkeypatch, capsys) -> None:
    pytest.importorskip("av")
    monkeypatch.chdir(tmp_path)
    port = free_port()  # no RTSP server there: every open fails, the run goes on
    args = [
        "run",
        "--source",
        "demo:frames=15",
        "--stream",
        f"rtsp://127.0.0.1:{port}/x",
        "--stream-encoder",
        "pyav",
    ]
    assert main(args) == 0  # a live output's drops never make the run INCOMPLETE (exit 74)
    out = capsys.readouterr().out
    assert f"--stream rtsp://127.0.0.1:{port}/x: sent 0 frames" in out and "INCOMPLETE" not in out
