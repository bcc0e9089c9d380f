"""What every loader returns: a PyTorch module ready to export plus what edgedet must know about it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class LoadedModel:
    """A model ready for `torch.onnx.export`.

    module: a torch nn.Module in eval mode, float32, taking (B, 3, H, W) float32 RGB in [0, 1] and returning one
    tensor in `output_format` layout (yolov5 [B, N, 5+nc], yolov8 [B, 4+nc, N], end2end [B, K, 6]).
    class_names: index -> name (may be empty when unknown). stride: the largest feature stride (input sizes
    must be multiples of it). kind: which loader produced it ("yolov5", "ultralytics", "module").
    """

    module: Any
    output_format: str
    class_names: tuple[str, ...]
    stride: int
    kind: str
    extra: dict[str, Any] = field(default_factory=dict)


def checkpoint_names(names: Any) -> tuple[str, ...]:
    """Class names as a checkpoint stores them: an {id: name} dict (in id order) or a list; () for anything else."""
    if isinstance(names, dict):
        return tuple(str(names[k]) for k in sorted(names))
    if isinstance(names, (list, tuple)):
        return tuple(str(n) for n in names)
    return ()
