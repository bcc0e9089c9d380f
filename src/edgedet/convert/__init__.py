"""`edgedet convert` and `edgedet info`: PyTorch detector -> ONNX (FP32/FP16/INT8) -> TensorRT engine.

torch, onnxslim, ultralytics and tensorrt are optional and imported inside the functions that need them.
"""

from edgedet.convert.api import Artifact, ConvertConfig, ConvertResult, convert
from edgedet.convert.info import describe

__all__ = ["Artifact", "ConvertConfig", "ConvertResult", "convert", "describe"]
