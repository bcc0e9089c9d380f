"""Triton Inference Server backend: inference on a server, capture/tracking/outputs here (`--backend triton`).

The model is a URL: `grpc://HOST:PORT/MODEL[/VERSION]` or `http://HOST:PORT/MODEL[/VERSION]`, optionally with
`?give_up_s=S` (default 30). The model spec comes from the server's model config: the `edgedet.spec` parameter
that `edgedet export triton` writes, else the declared input/output shapes. Each `infer` is one request (split
into requests of at most max_batch_size frames); requests from several streams or processes are grouped by
Triton's dynamic batcher.

A server that goes away is retried like a camera: the request is repeated with a doubling backoff (0.2 s up to
2 s) until it succeeds or `give_up_s` has passed without an answer, then BackendError names the server. A model
the server does not (yet) serve is waited for the same way (a restarted server loads its models after it
listens). Errors that are the request's own (a bad shape or dtype) fail at once as ModelError. tritonclient's
HTTP client is not thread-safe, so each thread gets its own client.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import numpy as np
import numpy.typing as npt

from edgedet._optional import require
from edgedet.backends.base import Backend, BackendConfig
from edgedet.errors import BackendError, ConfigError, ModelError
from edgedet.spec import SPEC_KEY, ModelSpec, spec_from_metadata

log = logging.getLogger(__name__)

__all__ = ["TritonBackend", "TritonURL", "parse_triton_url"]

_URL = re.compile(r"^(grpc|http)s?:/{1,2}([^/]+)/([^/?]+)(?:/(\d+))?/?(?:\?(.*))?$")
#: outcomes that mean "the server is not there (yet)": retried; anything else is the request's own problem
_TRANSIENT = ("unavailable", "connect", "connection", "socket closed", "broken pipe", "reset by peer",
              "unknown model", "not ready", "not found", "deadline", "eof", "timed out")  # fmt: skip
BACKOFF_S = 0.2
BACKOFF_MAX_S = 2.0
GIVE_UP_S = 30.0


class TritonURL:
    """A parsed model URL: protocol (grpc | http), host:port, model name, version ("" = the server's policy)."""

    def __init__(self, protocol: str, address: str, model: str, version: str, give_up_s: float) -> None:
        self.protocol, self.address, self.model, self.version, self.give_up_s = (
            protocol, address, model, version, give_up_s,
        )  # fmt: skip

    def __str__(self) -> str:
        return f"{self.protocol}://{self.address}/{self.model}" + (f"/{self.version}" if self.version else "")


def parse_triton_url(text: str) -> TritonURL:
    """`grpc://HOST:PORT/MODEL[/VERSION][?give_up_s=S]` (also the `grpc:/...` a Path makes of it)."""
    m = _URL.match(text.strip())
    if m is None:
        raise ConfigError(
            f"--backend triton takes the model as grpc://HOST:PORT/MODEL or http://HOST:PORT/MODEL, got {text!r}"
        )
    protocol, address, model, version, query = m.groups()
    give_up = GIVE_UP_S
    if query:
        q = parse_qs(query)
        unknown = set(q) - {"give_up_s"}
        if unknown:
            raise ConfigError(f"{text}: unknown option {sorted(unknown)[0]!r}; only give_up_s=SECONDS")
        try:
            give_up = float(q["give_up_s"][0])
        except ValueError:
            raise ConfigError(f"{text}: give_up_s takes seconds, e.g. give_up_s=10") from None
    return TritonURL(protocol, address, model, version or "", give_up)


def _transient(exc: BaseException) -> bool:
    if isinstance(exc, (OSError, ConnectionError, TimeoutError)):
        return True
    text = f"{getattr(exc, 'status', lambda: '')() if callable(getattr(exc, 'status', None)) else ''} {exc}"
    return any(t in text.lower() for t in _TRANSIENT)


_NP_TO_TRITON = {np.dtype(np.float32): "FP32", np.dtype(np.float16): "FP16"}
_TRITON_TO_NP = {"TYPE_FP32": np.float32, "TYPE_FP16": np.float16, "FP32": np.float32, "FP16": np.float16}


class TritonBackend(Backend):
    """Runs `infer` on a Triton server (see the module docstring for the URL and the retry rules).

    Counters for measurements: requests, retries, outages (times the server was found gone), downtime_s,
    bytes_sent and bytes_received (tensor payloads, not protocol framing).
    """

    def __init__(self, model_path: Path | str, config: BackendConfig | None = None) -> None:
        self.url = parse_triton_url(str(model_path))
        super().__init__(Path(self.url.model), config)
        self._tc = require(f"tritonclient.{self.url.protocol}", "--backend triton")
        self._local = threading.local()
        self.requests = self.retries = self.outages = 0
        self.downtime_s = 0.0
        self.bytes_sent = self.bytes_received = 0
        cfg = self._call(self._model_config)
        self._read_config(cfg)

    # --- clients and retries ----------------------------------------------------------------------------------

    def _client(self) -> Any:
        client = getattr(self._local, "client", None)
        if client is None:
            client = self._tc.InferenceServerClient(url=self.url.address)
            self._local.client = client
        return client

    def _drop_client(self) -> None:
        client = getattr(self._local, "client", None)
        self._local.client = None
        if client is not None:
            try:
                client.close()
            except Exception:  # a broken connection may fail to close; it is dropped either way
                pass

    def _call(self, fn: Any, *args: Any) -> Any:
        """fn(client, *args), retried with backoff while the server is away, for up to give_up_s."""
        delay = BACKOFF_S
        t_fail: float | None = None
        while True:
            try:
                out = fn(self._client(), *args)
            except Exception as exc:
                if not _transient(exc):
                    raise ModelError(f"Triton {self.url}: {str(exc).strip()[:300]}") from exc
                now = time.monotonic()
                if t_fail is None:
                    t_fail = now
                    self.outages += 1
                    log.warning(
                        "Triton %s unreachable (%s); retrying for %.0f s", self.url, exc, self.url.give_up_s
                    )
                if now - t_fail >= self.url.give_up_s:
                    self.downtime_s += now - t_fail
                    raise BackendError(
                        f"Triton server {self.url.address} gave no answer for {self.url.give_up_s:.0f} s "
                        f"({str(exc).strip()[:200]}); check that it runs and serves {self.url.model!r}"
                    ) from exc
                self.retries += 1
                self._drop_client()
                time.sleep(delay)
                delay = min(delay * 2, BACKOFF_MAX_S)
                continue
            if t_fail is not None:
                self.downtime_s += time.monotonic() - t_fail
                log.warning("Triton %s back after %.1f s", self.url, time.monotonic() - t_fail)
            return out

    # --- the model ------------------------------------------------------------------------------------------

    def _model_config(self, client: Any) -> dict[str, Any]:
        if not client.is_model_ready(self.url.model, self.url.version):
            raise RuntimeError(f"model {self.url.model} not ready")
        if self.url.protocol == "grpc":
            from google.protobuf import json_format

            resp = client.get_model_config(self.url.model, self.url.version)
            return dict(json_format.MessageToDict(resp.config, preserving_proto_field_name=True))
        return dict(client.get_model_config(self.url.model, self.url.version))

    def _read_config(self, cfg: dict[str, Any]) -> None:
        self.max_batch_size = int(cfg.get("max_batch_size", 0))
        inputs, outputs = cfg.get("input", []), cfg.get("output", [])
        if len(inputs) != 1:
            raise ModelError(
                f"Triton model {self.url}: {len(inputs)} inputs; edgedet detectors have one image input"
            )
        self._input = inputs[0]["name"]
        self._input_dtype = _TRITON_TO_NP.get(inputs[0].get("data_type", "TYPE_FP32"), np.float32)
        self._outputs = [o["name"] for o in outputs]
        lead: list[int | str | None] = ["batch"] if self.max_batch_size > 0 else []
        self._output_shapes = [tuple(lead + [int(d) for d in o.get("dims", [])]) for o in outputs]
        in_shape = lead + [int(d) for d in inputs[0].get("dims", [])]
        spec_text = cfg.get("parameters", {}).get(SPEC_KEY, {}).get("string_value")
        if spec_text:
            spec = ModelSpec.from_json(spec_text, where=f"Triton model {self.url}: parameters {SPEC_KEY}")
        else:
            spec = spec_from_metadata({}, self._input, in_shape, self._output_shapes, where=str(self.url))
        if self.max_batch_size > 0:
            spec = spec.replace(batch=0)
        if self.config.output_format is not None:
            spec = spec.replace(output_format=self.config.output_format)
        if self.config.class_names is not None:
            spec = spec.replace(class_names=tuple(self.config.class_names))
        self.spec = spec.replace(input_name=self._input)

    @property
    def description(self) -> str:
        return f"TritonBackend({self.url})"

    @property
    def output_shapes(self) -> list[tuple[int | str | None, ...]]:
        return list(self._output_shapes)

    def _request(self, client: Any, batch: np.ndarray) -> list[np.ndarray]:
        tc = self._tc
        inp = tc.InferInput(self._input, list(batch.shape), _NP_TO_TRITON[batch.dtype])
        inp.set_data_from_numpy(batch)
        outs = [tc.InferRequestedOutput(n) for n in self._outputs]
        result = client.infer(self.url.model, [inp], model_version=self.url.version, outputs=outs)
        return [result.as_numpy(n) for n in self._outputs]

    def infer(self, tensor: npt.NDArray[np.float32]) -> Sequence[npt.NDArray[np.floating]]:
        x = np.ascontiguousarray(tensor, dtype=self._input_dtype)
        step = self.max_batch_size if self.max_batch_size > 0 else len(x)
        parts: list[list[np.ndarray]] = []
        for start in range(0, len(x), step):
            chunk = x[start : start + step]
            outs = self._call(self._request, chunk)
            self.requests += 1
            self.bytes_sent += chunk.nbytes
            self.bytes_received += sum(o.nbytes for o in outs)
            parts.append(outs)
        if len(parts) == 1:
            return parts[0]
        return [np.concatenate([p[i] for p in parts]) for i in range(len(self._outputs))]

    def close(self) -> None:
        self._drop_client()
