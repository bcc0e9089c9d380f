"""Fixtures for convert tests: a tiny YOLOv8-style nn.Module importable as "edgedet_tiny_det:build"."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

TINY_SOURCE = '''
import torch
from torch import nn


class TinyDet(nn.Module):
    """Conv stem, an upsample + concat (a Resize node, as in real necks), a yolov8-style head:
    output [B, 4 + nc, N] with boxes in input pixels and sigmoid class scores."""

    stride = torch.tensor([4.0, 8.0])

    def __init__(self, nc: int = 3) -> None:
        super().__init__()
        self.nc = nc
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, 2, 1), nn.BatchNorm2d(8), nn.SiLU())
        self.down = nn.Sequential(nn.Conv2d(8, 16, 3, 2, 1), nn.SiLU())
        self.deep = nn.Sequential(nn.Conv2d(16, 16, 3, 2, 1), nn.SiLU())
        self.up = nn.Upsample(scale_factor=2, mode="nearest")
        self.head = nn.Conv2d(32, 4 + nc, 1)

    def forward(self, x):
        p = self.down(self.stem(x))
        f = torch.cat((p, self.up(self.deep(p))), 1)
        y = self.head(f).flatten(2)
        box = y[:, :4].sigmoid() * x.shape[-1]
        return torch.cat((box, y[:, 4:].sigmoid()), 1)


def build() -> TinyDet:
    torch.manual_seed(0)
    m = TinyDet()
    with torch.no_grad():  # non-trivial BatchNorm statistics
        m.stem[1].running_mean.uniform_(-0.5, 0.5)
        m.stem[1].running_var.uniform_(0.5, 2.0)
    return m
'''


@pytest.fixture(scope="session")
def tiny_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Writes the tiny module to a temp dir on sys.path; yields "edgedet_tiny_det:build"."""
    pytest.importorskip("torch")
    d = tmp_path_factory.mktemp("tiny_pkg")
    (d / "edgedet_tiny_det.py").write_text(TINY_SOURCE, encoding="utf-8")
    sys.path.insert(0, str(d))
    try:
        yield "edgedet_tiny_det:build"
    finally:
        sys.path.remove(str(d))
        sys.modules.pop("edgedet_tiny_det", None)


@pytest.fixture(scope="session")
def tiny_weights(tiny_factory: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A state_dict file for the tiny module, with weights different from build()'s."""
    import importlib

    import torch

    mod = importlib.import_module(tiny_factory.split(":")[0])
    torch.manual_seed(1)
    m = mod.TinyDet()
    path = tmp_path_factory.mktemp("tiny_w") / "tiny.pth"
    torch.save(m.state_dict(), path)
    return path
