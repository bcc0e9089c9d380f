from __future__ import annotations

import numpy as np
import pytest
from tests.conftest import shared_path
from tests.helpers.tiny_models import constant_model, yolov5_raw

from edgedet.backends import BackendConfig, backend_class, open_backend
from edgedet.errors import ConfigError, ModelError
from edgedet.spec import SPEC_KEY, ModelSpec


def _yolov5_outputs(nc: int = 3) -> list[np.ndarray]:
    return [yolov5_raw(np.array([[32, 32, 10, 20]]), np.array([0.9]), np.eye(nc)[[1]] * 0.8)]


def test_runs_a_model_and_returns_its_outputs(tmp_path):
    outs = _yolov5_outputs()
    path = constant_model(
        tmp_path / "m.onnx", outs, metadata={"names": "{0: 'car', 1: 'truck', 2: 'person'}"}
    )
    with open_backend(path) as be:
        got = be.infer(np.random.default_rng(0).random((1, 3, 64, 64), dtype=np.float32))
        assert be.spec.class_names == ("car", "truck", "person")
        assert be.spec.output_format == "yolov5"
        assert be.spec.input_hw == (64, 64)
    np.testing.assert_array_equal(got[0], outs[0])


@pytest.mark.parametrize(
    ("shape", "fmt"),
    [((1, 64, 8), "yolov5"), ((1, 7, 64), "yolov8"), ((1, 10, 6), "end2end")],
)
def test_format_inferred_from_output_shape(tmp_path, shape, fmt):
    path = constant_model(tmp_path / "m.onnx", [np.zeros(shape, np.float32)])
    with open_backend(path) as be:
        assert be.spec.output_format == fmt
        if fmt != "end2end":
            assert be.spec.class_names == ("class0", "class1", "class2")


def test_edgedet_spec_metadata_wins(tmp_path):
    spec = ModelSpec(input_hw=(64, 64), output_format="yolov5", class_names=("a", "b", "c"), precision="int8")
    path = constant_model(
        tmp_path / "m.onnx", _yolov5_outputs(), metadata={SPEC_KEY: spec.to_json(), "names": "['x']"}
    )
    with open_backend(path) as be:
        assert be.spec.class_names == ("a", "b", "c")
        assert be.spec.precision == "int8"


def test_overrides_format_and_names(tmp_path):
    path = constant_model(tmp_path / "m.onnx", [np.zeros((1, 7, 64), np.float32)])
    with open_backend(path, BackendConfig(class_names=("p", "q", "r"))) as be:
        assert be.spec.class_names == ("p", "q", "r")
    with pytest.raises(ModelError, match="outputs 3 classes but 2 class names"):
        open_backend(path, BackendConfig(class_names=("p", "q")))
    narrow = constant_model(tmp_path / "n.onnx", [np.zeros((1, 64, 5), np.float32)])
    with pytest.raises(ModelError, match="too narrow for yolov5"):
        open_backend(narrow, BackendConfig(output_format="yolov5"))
    with pytest.raises(ModelError, match="do not fit the end2end"):
        open_backend(path, BackendConfig(output_format="end2end"))


@pytest.mark.parametrize(
    ("write", "match"),
    [
        (None, "model file not found"),
        (b"", "not a usable ONNX model|not a readable ONNX model"),
        (b"\x08\x07garbage-not-onnx" * 10, "not a readable ONNX model|not a usable ONNX model"),
    ],
)
def test_missing_or_corrupt_model_is_one_clear_error(tmp_path, write, match):
    path = tmp_path / "m.onnx"
    if write is not None:
        path.write_bytes(write)
    with pytest.raises(ModelError, match=match):
        open_backend(path)


def test_truncated_model_is_refused(tmp_path):
    path = constant_model(tmp_path / "m.onnx", _yolov5_outputs())
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelError):
        open_backend(path)


def test_unknown_output_layout(tmp_path):
    path = constant_model(tmp_path / "m.onnx", [np.zeros((1, 64), np.float32), np.zeros((1, 2), np.float32)])
    with pytest.raises(ModelError, match=r"\[1, 64\]"):
        open_backend(path)


def test_unknown_backend_and_device(tmp_path):
    with pytest.raises(ConfigError, match="onnxruntime"):
        backend_class("openvino")
    path = constant_model(tmp_path / "m.onnx", _yolov5_outputs())
    with pytest.raises(Exception, match="cpu"):
        open_backend(path, BackendConfig(device="npu"))


def test_weights_listed_as_inputs_are_dropped(tmp_path):
    import onnx
    from onnx import helper

    path = constant_model(tmp_path / "m.onnx", _yolov5_outputs())
    model = onnx.load(str(path))
    for init in model.graph.initializer:
        model.graph.input.append(helper.make_tensor_value_info(init.name, init.data_type, list(init.dims)))
    onnx.save(model, str(path))
    with open_backend(path) as be:
        assert be.infer(np.zeros((1, 3, 64, 64), np.float32))[0].shape == (1, 64, 8)


def test_reference_yolov5_export_metadata():
    path = shared_path("models", "reference_onnx", "yolov5n_320.onnx")
    with open_backend(path, BackendConfig(threads=1)) as be:
        assert be.spec.output_format == "yolov5"
        assert be.spec.input_hw == (320, 320)
        assert len(be.spec.class_names) == 80 and be.spec.class_names[0] == "person"
        out = be.infer(np.full((1, 3, 320, 320), 0.5, np.float32))
        assert out[0].shape == (1, 6300, 85)


@pytest.mark.parametrize(
    ("cores", "beside", "requested", "threads", "spinning"),
    [
        (2, 1, 0, 1, False),  # this machine in `run`: one core for the capture thread, no pool to spin
        (2, 0, 0, 2, True),  # bench / eval: nothing beside, ONNX Runtime's own default
        (6, 1, 0, 5, True),  # Orin Nano: five threads and the capture thread fit on six cores
        (6, 3, 0, 3, True),
        (4, 4, 0, 1, False),  # more stages than cores: still one thread
        (2, 1, 2, 2, False),  # --threads 2 wins, but two threads and a stage do not fit: no spinning
        (8, 1, 4, 4, True),  # --threads 4 with room to spare
        (1, 0, 0, 1, False),
    ],
)
def test_thread_budget(cores: int, beside: int, requested: int, threads: int, spinning: bool) -> None:
    from edgedet.backends.onnxruntime import thread_budget

    b = thread_budget(cores, beside, requested)
    assert (b.threads, b.spinning, b.overridden) == (threads, spinning, requested > 0)


def test_thread_budget_is_applied_and_said(tmp_path, monkeypatch):
    import edgedet.backends.onnxruntime as ortb

    monkeypatch.setattr(ortb, "available_cores", lambda: 2)
    path = constant_model(tmp_path / "m.onnx", _yolov5_outputs())
    with open_backend(path, BackendConfig(stages_beside=1)) as be:
        opts = be._session.get_session_options()
        assert opts.intra_op_num_threads == 1
        assert opts.get_session_config_entry("session.intra_op.allow_spinning") == "0"
        assert opts.get_session_config_entry("session.inter_op.allow_spinning") == "0"
        assert (
            be.description
            == "OnnxRuntimeBackend(m.onnx, 1 thread, spinning off (2 cores, 1 stage thread beside))"
        )
    with open_backend(path, BackendConfig(threads=2, stages_beside=1)) as be:
        assert be._session.get_session_options().intra_op_num_threads == 2
        assert be.description.endswith("(m.onnx, 2 threads, spinning off (--threads))")
    with open_backend(path) as be:  # bench / eval: nothing beside
        opts = be._session.get_session_options()
        assert opts.intra_op_num_threads == 2
        assert opts.get_session_config_entry("session.intra_op.allow_spinning") == "1"


def test_available_cores_is_the_affinity():
    import os

    from edgedet.backends.onnxruntime import available_cores

    assert available_cores() == len(os.sched_getaffinity(0))


def test_sessions_taking_turns_do_not_spin(tmp_path, monkeypatch):
    """bench's A/B loop: an idle session's spinning pool would hold the cores the running one needs."""
    import edgedet.backends.onnxruntime as ortb

    monkeypatch.setattr(ortb, "available_cores", lambda: 2)
    path = constant_model(tmp_path / "m.onnx", _yolov5_outputs())
    with (
        open_backend(path, BackendConfig()) as alone,
        open_backend(path, BackendConfig(sessions_beside=1)) as ab,
    ):
        assert alone.threads.spinning and alone.threads.threads == 2
        assert not ab.threads.spinning and ab.threads.threads == 2
        opts = ab._session.get_session_options()
        assert opts.get_session_config_entry("session.intra_op.allow_spinning") == "0"


def test_bench_ab_sessions_do_not_spin(tmp_path, monkeypatch):
    import edgedet.backends.onnxruntime as ortb
    from edgedet.bench import bench_engines
    from edgedet.config import BenchConfig

    monkeypatch.setattr(ortb, "available_cores", lambda: 2)
    seen = []
    real_init = ortb.OnnxRuntimeBackend.__init__

    def spy(self, *a, **k):
        real_init(self, *a, **k)
        seen.append(self.threads.spinning)

    monkeypatch.setattr(ortb.OnnxRuntimeBackend, "__init__", spy)
    a = constant_model(tmp_path / "a.onnx", _yolov5_outputs())
    b = constant_model(tmp_path / "b.onnx", _yolov5_outputs())
    bench_engines(BenchConfig(models=(str(a), str(b)), runs=2, warmup=0))
    assert seen == [False, False]
