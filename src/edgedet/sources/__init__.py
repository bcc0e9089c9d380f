"""Video sources: cameras, network streams, GStreamer pipelines, files, image folders and a synthetic scene.

`open_source(uri, SourceConfig(...))` returns a Source: a context manager and an iterator of Frame. Live
sources read on their own thread and keep only the newest frame; files deliver every frame in order.
"""

from edgedet.sources.base import Source, SourceConfig, SourceStats
from edgedet.sources.live import Capture, CaptureFactory, LiveSource
from edgedet.sources.registry import SCHEMES, Opener, Scheme, open_source, source_kind

__all__ = [
    "SCHEMES",
    "Capture",
    "CaptureFactory",
    "LiveSource",
    "Opener",
    "Scheme",
    "Source",
    "SourceConfig",
    "SourceStats",
    "open_source",
    "source_kind",
]
