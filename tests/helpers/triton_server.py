"""A real Triton Inference Server on loopback, from the `nvidia-pytriton` wheel, for the triton tests.

The wheel carries the tritonserver binary with the Python backend only (no ONNX Runtime backend outside NVIDIA's
GPU containers). So the model repository `edgedet export triton` writes is served through a Python-backend twin:
the same model name, inputs, outputs, max_batch_size, dynamic batching and edgedet spec parameter, with
`backend: "python"` and a model.py that runs the same model.onnx in ONNX Runtime (dynamic batching: every
request Triton groups into one execute() goes through one session call).

The server runs from its own virtual environment (the wheel pins numpy < 2): EDGEDET_TRITON_VENV, default
`<repo>/.triton-venv`, made by `tools/make_triton_venv.sh` from the system python3. Its Python-backend stub links
the system libpython, so LD_LIBRARY_PATH gets that interpreter's LIBDIR. The tests skip, naming the path, when the
venv is absent. One server serves a whole test module (start-up costs seconds).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]

MODEL_PY = '''
import json
import os

import numpy as np
import onnxruntime as ort
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    """model.onnx in ONNX Runtime; the requests Triton batched together run as one session call."""

    def initialize(self, args):
        cfg = json.loads(args["model_config"])
        here = os.path.join(args["model_repository"], args["model_version"])
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1
        self.session = ort.InferenceSession(os.path.join(here, "model.onnx"), opts, providers=["CPUExecutionProvider"])
        self.input = cfg["input"][0]["name"]
        self.outputs = [o["name"] for o in cfg["output"]]
        self.batching = int(cfg.get("max_batch_size", 0)) > 0

    def execute(self, requests):
        arrays = [pb_utils.get_input_tensor_by_name(r, self.input).as_numpy() for r in requests]
        if self.batching:
            results = self.session.run(self.outputs, {self.input: np.concatenate(arrays)})
            per_request, start = [], 0
            for a in arrays:
                per_request.append([o[start : start + len(a)] for o in results])
                start += len(a)
        else:
            per_request = [self.session.run(self.outputs, {self.input: a}) for a in arrays]
        return [
            pb_utils.InferenceResponse(output_tensors=[pb_utils.Tensor(n, np.ascontiguousarray(o))
                                                      for n, o in zip(self.outputs, outs)])
            for outs in per_request
        ]
'''


def triton_venv() -> Path:
    return Path(os.environ.get("EDGEDET_TRITON_VENV", REPO_ROOT / ".triton-venv"))


def python_twin(export_dir: Path, repo: Path) -> Path:
    """Copy an exported model folder into `repo` as a Python-backend model with the same name and I/O."""
    dst = repo / export_dir.name
    shutil.copytree(export_dir, dst)
    text = (dst / "config.pbtxt").read_text()
    lines = [ln for ln in text.splitlines() if not ln.startswith("platform:")]
    lines.insert(1, 'backend: "python"')
    text = "\n".join(lines).replace("KIND_GPU", "KIND_CPU") + "\n"
    (dst / "config.pbtxt").write_text(text)
    (dst / "1" / "model.py").write_text(MODEL_PY)
    return dst


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class TritonServer:
    """A running tritonserver: its ports, process and log file. `stop()` ends it (SIGINT, then SIGKILL)."""

    process: subprocess.Popen[bytes]
    http_port: int
    grpc_port: int
    log_path: Path
    repo: Path
    workdir: Path

    @property
    def grpc_url(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    @property
    def http_url(self) -> str:
        return f"127.0.0.1:{self.http_port}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)  # Triton unloads its models and exits on SIGINT
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


def _server_tree(workdir: Path) -> tuple[Path, dict[str, str]]:
    """A copy of the wheel's server with the stub for the venv's Python, and the environment it needs."""
    venv = triton_venv()
    py = venv / "bin" / "python"
    if not py.exists():
        raise FileNotFoundError(
            f"no Triton virtual environment at {venv} (make it: bash tools/make_triton_venv.sh, or set "
            "EDGEDET_TRITON_VENV)"
        )
    out = subprocess.run(
        [str(py), "-c", "import pytriton, sys, sysconfig; print(pytriton.__file__); "
         "print(f'{sys.version_info.major}.{sys.version_info.minor}'); print(sysconfig.get_config_var('LIBDIR'))"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    pkg_file, version, libdir = out.stdout.split("\n")[:3]
    pkg = Path(pkg_file).parent
    tree = workdir / "tritonserver"
    shutil.copytree(
        pkg / "tritonserver", tree, ignore=shutil.ignore_patterns("python_backend_stubs", "caches")
    )
    stub = pkg / "tritonserver" / "python_backend_stubs" / version / "triton_python_backend_stub"
    shutil.copy(stub, tree / "backends" / "python" / "triton_python_backend_stub")
    env = dict(os.environ)
    libs = [str(pkg.parent / "nvidia_pytriton.libs"), libdir]
    env["LD_LIBRARY_PATH"] = ":".join([*libs, env.get("LD_LIBRARY_PATH", "")]).rstrip(":")
    env["PATH"] = f"{venv / 'bin'}:{env.get('PATH', '')}"  # the stub runs model.py with the venv's packages
    env["PYTHONPATH"] = ""
    return tree, env


def _launch(
    repo: Path, workdir: Path, ports: tuple[int, int], log_mode: str, timeout_s: float
) -> TritonServer:
    import tritonclient.http as httpclient

    tree = workdir / "tritonserver"
    if tree.exists():
        shutil.rmtree(tree)
    tree, env = _server_tree(workdir)
    http_port, grpc_port = ports
    log_path = workdir / "tritonserver.log"
    cmd = [
        str(tree / "bin" / "tritonserver"),
        f"--model-repository={repo}",
        f"--backend-directory={tree / 'backends'}",
        "--http-address=127.0.0.1", f"--http-port={http_port}",
        "--grpc-address=127.0.0.1", f"--grpc-port={grpc_port}",
        "--allow-metrics=false", "--allow-gpu-metrics=false",
        "--backend-config=python,shm-default-byte-size=33554432",
        "--exit-on-error=true", "--log-verbose=0",
    ]  # fmt: skip
    with log_path.open(log_mode) as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=workdir)
    server = TritonServer(proc, http_port, grpc_port, log_path, repo, workdir)
    client = httpclient.InferenceServerClient(server.http_url)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:  # readiness polled: ready = listening and every model loaded
        if proc.poll() is not None:
            raise RuntimeError(f"tritonserver exited with {proc.returncode}:\n{server.log()[-3000:]}")
        try:
            if client.is_server_ready():
                return server
        except Exception:  # connection refused while it starts
            pass
        time.sleep(0.3)
    server.stop()
    raise RuntimeError(f"tritonserver not ready after {timeout_s:.0f} s:\n{server.log()[-3000:]}")


def start_server(repo: Path, workdir: Path, timeout_s: float = 90.0) -> TritonServer:
    """Start tritonserver on free loopback ports over `repo`; return once every model is ready.

    RuntimeError with the server's log tail when it exits or is not ready within timeout_s.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    return _launch(repo, workdir, (_free_port(), _free_port()), "wb", timeout_s)


def restart(server: TritonServer, timeout_s: float = 90.0) -> TritonServer:
    """A new server on the same ports and repository (after `server.stop()`), for the reconnect tests."""
    return _launch(server.repo, server.workdir, (server.http_port, server.grpc_port), "ab", timeout_s)


__all__ = ["TritonServer", "python_twin", "restart", "start_server", "triton_venv"]
