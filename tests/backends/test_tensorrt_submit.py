"""TensorRTBackend.submit/collect: two inferences in flight, each in its own buffers, each with a CUDA event.

Against the TensorRT stand-in built from TensorRT 10.3's and 11.1's real API (tests/helpers/trt_standin.py) and
FakeCuda. The stand-in's context reads its input from, and writes its outputs to, the addresses bound last with
`set_tensor_address`, so a slot bound to the wrong buffers, or two slots sharing one, gives wrong outputs here.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from tests.backends.test_cuda_mem import FakeCuda
from tests.backends.test_tensorrt import ROWS, FakeTrt, image_batch, write_plan
from tests.helpers.trt_standin import API_VERSIONS

from edgedet.backends.tensorrt import TensorRTBackend
from edgedet.errors import BackendError


def expected(x: np.ndarray) -> np.ndarray:
    return x.reshape(1, ROWS, 8) * 2 + 1  # the tiny plan's model: reshape(images * 2 + 1)


@pytest.mark.parametrize("api", API_VERSIONS)
@pytest.mark.parametrize("memory", ["device", "mapped"])
def test_two_in_flight_each_in_its_own_buffers_with_its_own_event(
    tmp_path: Path, api: str, memory: str
) -> None:
    plan = write_plan(tmp_path, version=f"{api}.0")
    cuda = FakeCuda()
    xs = [image_batch(seed=s) for s in range(4)]
    with TensorRTBackend(plan, memory=memory, trt=FakeTrt(f"{api}.0", api), cuda=cuda) as be:
        assert be.max_in_flight == 2 and be.reuses_outputs
        cuda.calls.clear()
        h0 = be.submit(xs[0])
        h1 = be.submit(xs[1])
        with pytest.raises(BackendError, match="more than 2 inferences submitted"):
            be.submit(xs[2])
        out0 = be.collect(h0)
        np.testing.assert_array_equal(out0[0], expected(xs[0]))  # not overwritten by the second submit
        h2 = be.submit(xs[2])  # reuses the first slot
        np.testing.assert_array_equal(be.collect(h1)[0], expected(xs[1]))
        np.testing.assert_array_equal(be.collect(h2)[0], expected(xs[2]))
        with pytest.raises(BackendError, match="already collected"):
            be.collect(h2)
        np.testing.assert_array_equal(be.infer(xs[3])[0], expected(xs[3]))  # infer still works afterwards
        calls = list(cuda.calls)
        events = sorted(cuda.events)
    assert len(events) == 2
    e0, e1 = events
    copies = {"device": ["htod", "dtoh"], "mapped": []}[memory]
    kinds = [
        c[0] if c[0] in ("htod", "dtoh", "sync") else c[:2]
        for c in calls
        if c[0] not in ("malloc", "host_alloc")
    ]
    assert (
        sum(c[0] == "host_alloc" for c in calls) == 2
    )  # the second slot's input and output, made on first use
    # each submit queues its copies and records its slot's event, and returns without waiting; collect waits on
    # that slot's event alone; only infer() synchronises the whole stream
    assert kinds == [
        *copies, ("record", e0), *copies, ("record", e1), ("wait", e0),
        *copies, ("record", e0), ("wait", e1), ("wait", e0), *copies, "sync",
    ]  # fmt: skip
    assert cuda.live() == 0 and not cuda.events and not cuda.streams  # close freed both slots and events


@pytest.mark.parametrize("api", API_VERSIONS)
def test_infer_with_work_in_flight_and_use_after_close_are_refused(tmp_path: Path, api: str) -> None:
    plan = write_plan(tmp_path, version=f"{api}.0")
    be = TensorRTBackend(plan, trt=FakeTrt(f"{api}.0", api), cuda=FakeCuda())
    h = be.submit(image_batch())
    with pytest.raises(BackendError, match="uncollected"):
        be.infer(image_batch())
    be.collect(h)
    be.close()
    with pytest.raises(BackendError, match="closed"):
        be.submit(image_batch())
