"""One place that imports optional packages and turns their absence into a clear error."""

from __future__ import annotations

import importlib
from types import ModuleType

from edgedet.errors import MissingDependencyError

# module -> how a user gets it
_HOW_TO_INSTALL: dict[str, str] = {
    "torch": "pip install torch (CPU: pip install torch==2.13.0) or pip install 'edgedet[export]'",
    "onnxslim": "pip install 'edgedet[export]'",
    "ultralytics": "pip install 'edgedet[ultralytics]'",
    "tensorrt": "use JetPack's TensorRT (apt install python3-libnvinfer) on the device; PyPI has no usable wheel here",
    "cuda": "pip install 'edgedet[tensorrt]' (cuda-python) or install pycuda",
    "pycuda": "pip install pycuda (builds against the CUDA toolkit)",
    "jtop": "pip install 'edgedet[jetson]' (jetson-stats) on the Jetson",
    "pycocotools": "pip install 'edgedet[eval]'",
    "motmetrics": "pip install 'edgedet[eval]'",
    "trackeval": "pip install --no-deps trackeval",
    "matplotlib": "pip install 'edgedet[plot]'",
    "filterpy": "pip install filterpy",
    "av": "pip install 'edgedet[link]' (PyAV, FFmpeg with libx264 in its wheels)",
    "pymavlink": "pip install 'edgedet[link]'",
    "paho": "pip install 'edgedet[link]' (paho-mqtt)",
    "serial": "pip install 'edgedet[link]' (pyserial)",
}


def require(module: str, feature: str) -> ModuleType:
    """Import `module` or raise MissingDependencyError naming the feature and the install command."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        top = module.split(".")[0]
        how = _HOW_TO_INSTALL.get(top, f"pip install {top}")
        raise MissingDependencyError(
            f"{feature} needs the '{top}' package, which is not installed: {how}"
        ) from exc


def available(module: str) -> bool:
    try:
        importlib.import_module(module)
    except ImportError:
        return False
    return True
