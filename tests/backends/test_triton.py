"""`edgedet export triton` and `--backend triton`, against a real tritonserver on loopback (one for the module).

The server is the one in the nvidia-pytriton wheel (Python backend only), serving each exported model through
a Python-backend twin with the same name, I/O, batching and spec parameter that runs the same model.onnx in ONNX
Runtime (tests/helpers/triton_server.py). So what is checked is the client side for real: protocol, config
reading, batching, retries; and that the exported config is one Triton's schema accepts for that model.
"""

from __future__ import annotations

import threading
import time

import cv2
import numpy as np
import pytest
from tests.helpers.batch_model import brightness_model

pytest.importorskip(
    "tritonclient.grpc", reason="tritonclient is not installed: pip install 'edgedet[triton]'"
)

from edgedet import demo
from edgedet.backends import BackendConfig, open_backend
from edgedet.backends.triton import parse_triton_url
from edgedet.convert.triton import export_triton, read_config
from edgedet.datasets import sample_frames
from edgedet.detector import open_detector
from edgedet.errors import BackendError, ConfigError, ModelError

# --- export (no server needed) -------------------------------------------------------------------------------


def test_export_dynamic_model_config_matches_the_model(tmp_path):
    model = brightness_model(tmp_path / "dyn.onnx")
    out = export_triton(model, tmp_path / "repo", max_batch_size=16, max_queue_delay_us=500, kind="KIND_CPU")
    cfg = read_config(out.config_path)
    assert (cfg.name, cfg.platform, cfg.max_batch_size) == ("dyn", "onnxruntime_onnx", 16)
    assert [(i.name, list(i.dims)) for i in cfg.input] == [("images", [3, 64, 64])]
    assert [(o.name, list(o.dims)) for o in cfg.output] == [("output0", [4, 6])]
    assert cfg.dynamic_batching.max_queue_delay_microseconds == 500
    assert '"batch": 0' in cfg.parameters["edgedet.spec"].string_value
    assert (out.model_dir / "1" / "model.onnx").read_bytes() == model.read_bytes()


def test_export_fixed_batch_model_has_no_batching(tmp_path):
    out = export_triton(demo.model_path(), tmp_path / "repo")
    cfg = read_config(out.config_path)
    assert cfg.max_batch_size == 0 and not cfg.HasField("dynamic_batching")
    assert list(cfg.input[0].dims) == [1, 3, 384, 640] and list(cfg.output[0].dims) == [1, 15120, 8]


@pytest.mark.parametrize(("name", "side", "rows"), [("yolov5n_320", 320, 6300), ("yolov5n_640", 640, 25200)])
def test_export_reference_models(tmp_path, name, side, rows):
    from tests.conftest import shared_path

    out = export_triton(shared_path("models", "reference_onnx", f"{name}.onnx"), tmp_path / "repo", nms=False)
    cfg = read_config(out.config_path)
    assert list(cfg.input[0].dims) == [1, 3, side, side] and list(cfg.output[0].dims) == [1, rows, 85]
    nms = export_triton(
        shared_path("models", "reference_onnx", f"{name}.onnx"), tmp_path / "repo", name="n", nms=True
    )
    assert [(o.name, list(o.dims)) for o in read_config(nms.config_path).output] == [
        ("detections", [1, -1, 6])
    ]


def test_export_refuses_what_it_cannot_check(tmp_path):
    plan = tmp_path / "m.plan"
    plan.write_bytes(b"x")
    with pytest.raises(ConfigError, match="needs TensorRT"):
        export_triton(plan, tmp_path / "repo")
    model = brightness_model(tmp_path / "dyn.onnx")
    export_triton(model, tmp_path / "repo")
    with pytest.raises(ConfigError, match="exists: pass --overwrite"):
        export_triton(model, tmp_path / "repo")


def test_config_checks_catch_a_wrong_config(tmp_path):
    from edgedet.convert.triton import check_config

    model = brightness_model(tmp_path / "dyn.onnx")
    out = export_triton(model, tmp_path / "repo")
    text = out.config_path.read_text()
    out.config_path.write_text(text.replace("dims: 6\n", "dims: 7\n"))
    with pytest.raises(ModelError, match=r"output0 dims \[4, 7\] but the model's are \[4, 6\]"):
        check_config(out.config_path, out.model_file)
    out.config_path.write_text(text.replace("max_batch_size", "max_batch"))
    with pytest.raises(ConfigError, match="not a valid Triton model config"):
        read_config(out.config_path)


def test_url_forms():
    u = parse_triton_url("grpc:/127.0.0.1:8001/yolo/2?give_up_s=5")  # what Path() makes of grpc://
    assert (u.protocol, u.address, u.model, u.version, u.give_up_s) == (
        "grpc",
        "127.0.0.1:8001",
        "yolo",
        "2",
        5.0,
    )
    with pytest.raises(ConfigError, match="grpc://HOST:PORT/MODEL"):
        parse_triton_url("tcp://x:1/m")


# --- against the real server ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    from tests.helpers.triton_server import python_twin, start_server, triton_venv

    if not (triton_venv() / "bin" / "python").exists():
        pytest.skip(f"no Triton server venv at {triton_venv()}: bash tools/make_triton_venv.sh")
    root = tmp_path_factory.mktemp("triton")
    models = root / "models"
    models.mkdir()
    export_triton(
        brightness_model(models / "dyn.onnx"), root / "export", kind="KIND_CPU", max_queue_delay_us=20000
    )
    export_triton(demo.model_path(), root / "export", kind="KIND_CPU")
    export_triton(demo.model_path(), root / "export", kind="KIND_CPU", name="demonms", nms=True)
    repo = root / "repo"
    repo.mkdir()
    for name in ("dyn", "demo", "demonms"):
        python_twin(root / "export" / name, repo)
    holder = {"server": start_server(repo, root / "work"), "models": models}
    yield holder
    holder["server"].stop()


def _frames(n: int, hw=(64, 64)) -> list[np.ndarray]:
    return [np.full((*hw, 3), 30 + 40 * i, np.uint8) for i in range(n)]


@pytest.mark.parametrize("protocol", ["grpc", "http"])
def test_outputs_equal_in_process_onnxruntime_exactly(server, protocol):
    s = server["server"]
    address = s.grpc_url if protocol == "grpc" else s.http_url
    for name, local, frames in (
        ("demo", demo.model_path(), sample_frames(2, (384, 640))),
        ("dyn", server["models"] / "dyn.onnx", _frames(3)),
    ):
        with open_detector(f"{protocol}://{address}/{name}", "triton") as remote, open_detector(local) as ref:
            assert remote.spec == ref.spec
            for img in frames:
                tensor = ref.preprocess(img)[0].copy()
                got, want = remote.infer(tensor), ref.infer(tensor)
                assert len(got) == len(want) and all(
                    np.array_equal(g, w) for g, w in zip(got, want, strict=True)
                )
                a, b = remote(img), ref(img)
                assert np.array_equal(a.xyxy, b.xyxy) and np.array_equal(a.confidence, b.confidence)
        if name == "dyn":  # a batch of 3 in one request, split back in order
            be = open_backend(f"{protocol}://{address}/dyn", BackendConfig(backend="triton"))
            x = np.stack([np.full((3, 64, 64), v, np.float32) for v in (0.1, 0.5, 0.9)])
            with be:
                (out,) = be.infer(x)
            assert out.shape == (3, 4, 6) and out[:, 0, 0] == pytest.approx([12.0, 28.0, 44.0], abs=1e-3)


@pytest.mark.parametrize("protocol", ["grpc", "http"])
def test_server_side_nms_sends_only_detections(server, protocol):
    s = server["server"]
    address = s.grpc_url if protocol == "grpc" else s.http_url
    with (
        open_detector(f"{protocol}://{address}/demonms", "triton") as remote,
        open_detector(demo.model_path()) as ref,
    ):
        assert remote.spec.output_format == "end2end"
        n = 0
        for img in sample_frames(4, (384, 640)):
            a, b = remote(img), ref(img)
            assert np.array_equal(a.class_id, b.class_id) and np.allclose(a.xyxy, b.xyxy, atol=1e-3)
            n += len(a)
        assert n > 0
        be = remote.backend
        assert be.bytes_received / be.requests < 2000 < 483840  # [1, K, 6] floats instead of [1, 15120, 8]


def test_http_from_several_threads(server):
    """tritonclient's HTTP client is not thread-safe: the backend keeps one per thread."""
    be = open_backend(f"http://{server['server'].http_url}/dyn", BackendConfig(backend="triton"))
    results: dict[int, float] = {}
    errors: list[BaseException] = []

    def work(k: int) -> None:
        try:
            for _ in range(10):
                (out,) = be.infer(np.full((1, 3, 64, 64), k / 10, np.float32))
                results[k] = float(out[0, 0, 0])
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert results == pytest.approx({k: 8.0 + 40.0 * k / 10 for k in range(4)}, abs=1e-3)


def test_four_streams_through_one_server(server, tmp_path):
    import json

    from edgedet.config import RunConfig, build_config
    from edgedet.multistream import build_multistream

    srcs = []
    for k in range(4):
        d = tmp_path / f"cam{k}"
        d.mkdir()
        for i in range(5):
            cv2.imwrite(str(d / f"{i:03d}.png"), np.full((64, 64, 3), 20 + 10 * k + 30 * i, np.uint8))
        srcs.append(str(d))
    cfg = build_config(RunConfig, None, model=f"grpc://{server['server'].grpc_url}/dyn", backend="triton",
                       track=False, save_json=str(tmp_path / "out" / "{stream}.jsonl"))  # fmt: skip
    summary = build_multistream(cfg, srcs, batch_window_s=0.5).run()
    assert [s.frames for s in summary.streams] == [5, 5, 5, 5]
    assert summary.mean_batch > 2  # frames of several streams went in one request
    for k in range(4):
        rows = [json.loads(x) for x in (tmp_path / "out" / f"s{k}.jsonl").read_text().splitlines()]
        cx = [np.mean(r["detections"][0]["xyxy"][::2]) for r in rows]
        assert cx == pytest.approx([8 + 40 * (20 + 10 * k + 30 * i) / 255 for i in range(5)], abs=0.01)


def test_server_gone_is_retried_then_given_up_and_a_restart_is_picked_up(server):
    """Last in the module: it stops the shared server and starts it again on the same ports."""
    from tests.helpers.triton_server import restart

    s = server["server"]
    be = open_backend(f"grpc://{s.grpc_url}/dyn?give_up_s=60", BackendConfig(backend="triton"))
    quick = open_backend(f"grpc://{s.grpc_url}/dyn?give_up_s=1", BackendConfig(backend="triton"))
    x = np.full((1, 3, 64, 64), 0.5, np.float32)
    assert be.infer(x)[0][0, 0, 0] == pytest.approx(28.0, abs=1e-3)
    s.stop()
    t0 = time.monotonic()
    with pytest.raises(BackendError, match="gave no answer for 1 s"):
        quick.infer(x)
    assert time.monotonic() - t0 < 10

    box: dict[str, object] = {}

    def later() -> None:
        time.sleep(2.0)
        box["server"] = restart(s)

    t = threading.Thread(target=later)
    t.start()
    out = be.infer(x)  # waits through the outage and the restart
    t.join()
    server["server"] = box["server"]
    assert out[0][0, 0, 0] == pytest.approx(28.0, abs=1e-3)
    assert be.outages == 1 and be.retries >= 2 and be.downtime_s > 2.0


def test_export_command(tmp_path, capsys):
    from edgedet.cli import main

    model = brightness_model(tmp_path / "dyn.onnx")
    assert main(["export", "triton", str(model), "--repo", str(tmp_path / "r"), "--name", "det"]) == 0
    assert "max_batch_size 8, dynamic batching; checked against the model" in capsys.readouterr().out
    assert read_config(tmp_path / "r" / "det" / "config.pbtxt").name == "det"
    assert main(["export", "triton", str(tmp_path / "nope.onnx"), "--repo", str(tmp_path / "r")]) == 2
    assert "model file not found" in capsys.readouterr().err
