"""edgedet: a PyTorch object detector on a drone or a Jetson, on a live camera, in real time."""

from edgedet.types import Detections, Frame

__all__ = ["Detections", "Frame", "__version__"]
__version__ = "0.1.0"
