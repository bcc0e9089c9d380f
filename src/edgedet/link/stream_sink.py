"""`--stream URL` as a Sink: the annotated video, with the selected target highlighted, to a ground station."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from edgedet.link.target import TargetSelector
from edgedet.link.urls import StreamUrl, parse_stream_url
from edgedet.link.video import OutputFactory, StreamOptions, StreamStats, VideoStreamer, write_sdp
from edgedet.sinks.base import OutputStatus, Sink
from edgedet.sinks.draw import draw_detections, line_thickness
from edgedet.types import Detections, FrameResult

logger = logging.getLogger(__name__)

_TARGET_COLOUR = (0, 0, 255)  # BGR red, outlined in white: stands out from every palette colour


@dataclass(frozen=True)
class _Job:
    """What the encoder thread draws one frame from (the frame loop only builds this)."""

    image: npt.NDArray[np.uint8]
    detections: Detections
    fps: float
    detector_ran: bool
    target_id: int
    index: int


def draw_target(image: npt.NDArray[np.uint8], detections: Detections, track_id: int) -> npt.NDArray[np.uint8]:
    """Highlight track `track_id` in `image` in place (a white-outlined red frame with corner ticks and a
    'TARGET #id' tag); a no-op when the track is not in `detections`. Returns `image`."""
    import cv2

    rows = np.flatnonzero(detections.track_id == track_id)
    if track_id < 0 or rows.size == 0:
        return image
    x1, y1, x2, y2 = (round(v) for v in detections.xyxy[rows[0]].tolist())
    t = line_thickness(image.shape[:2])
    pad = 2 * t
    x1, y1, x2, y2 = x1 - pad, y1 - pad, x2 + pad, y2 + pad
    cv2.rectangle(image, (x1, y1), (x2, y2), (255, 255, 255), t + 2)
    cv2.rectangle(image, (x1, y1), (x2, y2), _TARGET_COLOUR, t)
    tick = max(6, (x2 - x1) // 4)
    cx, cy = (x1 + x2) // 2, (y1 + y2) // 2
    for (ax, ay), (bx, by) in (((cx, y1 - tick), (cx, y1)), ((cx, y2), (cx, y2 + tick)),
                               ((x1 - tick, cy), (x1, cy)), ((x2, cy), (x2 + tick, cy))):  # fmt: skip
        cv2.line(image, (ax, ay), (bx, by), _TARGET_COLOUR, t)
    text = f"TARGET #{track_id}"
    scale = t / 2.5
    (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, max(1, t // 2))
    ty = y2 + th + base + 4 if y2 + th + base + 4 < image.shape[0] else max(y1 - 4, th)
    cv2.rectangle(image, (x1, ty - th - base), (x1 + tw + 4, ty + 2), _TARGET_COLOUR, -1)
    cv2.putText(
        image,
        text,
        (x1 + 2, ty - 2),
        cv2.FONT_HERSHEY_SIMPLEX,
        scale,
        (255, 255, 255),
        max(1, t // 2),
        cv2.LINE_AA,
    )
    return image


class StreamSink(Sink):
    """Streams annotated frames to `url` (see `edgedet.link.video`). `write` costs one image copy; drawing,
    encoding and sending run on the stream's own thread.

    selector: when given, its selected track is highlighted. sdp_path: for rtp:// streams, where to write the
    .sdp description (None: none written). stamp: optional hook that draws into the annotated image before
    encoding (benchmarks draw a frame counter with it). A stream skips frames by design (newest frame wins, a
    link that is down): they are counted in `stream_stats()` and in the run summary's line for this output
    (`status()`), not as lost frames, so they never mark the run's outputs incomplete.
    """

    flag = "--stream"

    def __init__(
        self,
        url: str | StreamUrl,
        options: StreamOptions = StreamOptions(),
        fps: float = 30.0,
        class_names: Sequence[str] = (),
        selector: TargetSelector | None = None,
        sdp_path: str | Path | None = None,
        output_factory: OutputFactory | None = None,
        stamp: Callable[[npt.NDArray[np.uint8], int], None] | None = None,
        on_sent: Callable[[Any, float], None] | None = None,
    ) -> None:
        super().__init__()
        self.url = url if isinstance(url, StreamUrl) else parse_stream_url(url)
        self.class_names = tuple(class_names)
        self.selector = selector
        self._stamp = stamp
        self.sdp_path: Path | None = None
        if sdp_path is not None and self.url.scheme == "rtp":
            self.sdp_path = write_sdp(self.url, sdp_path)
        self.streamer = VideoStreamer(
            self.url, options, fps=fps, render=self._render, output_factory=output_factory, on_sent=on_sent
        )
        self._final: StreamStats | None = None

    @property
    def path(self) -> Path | None:
        """The .sdp written beside the run (the pipeline lists sinks' paths among its outputs)."""
        return self.sdp_path

    def describe(self) -> str:
        return self.url.url

    def _render(self, job: _Job) -> npt.NDArray[np.uint8]:
        image = draw_detections(
            job.image, job.detections, self.class_names, job.fps if job.fps > 0 else None, job.detector_ran
        )
        if job.target_id >= 0:
            draw_target(image, job.detections, job.target_id)
        if self._stamp is not None:
            self._stamp(image, job.index)
        return image

    def _write(self, result: FrameResult) -> None:
        target = self.selector.selected_track_id if self.selector is not None else -1
        # The copy: a live source may reuse its buffer for the next frame while the encoder still draws this one.
        job = _Job(result.frame.image.copy(), result.detections, result.fps, result.detector_ran, target,
                   result.frame.index)  # fmt: skip
        self.streamer.submit(job)

    def stream_stats(self) -> StreamStats:
        return self._final if self._final is not None else self.streamer.stats()

    def _close(self) -> None:
        self._final = self.streamer.close()
        st = self._final
        logger.info(
            "--stream %s: %d frames sent, %d dropped at the encoder (%d busy, %d link down), %d reconnects",
            self.url.url, st.sent, st.dropped, st.dropped_busy, st.dropped_down, st.reconnects,
        )  # fmt: skip

    def status(self) -> OutputStatus:
        """The run summary's line: frames sent, skipped at the encoder, dropped while the link was down."""
        st = self.stream_stats()
        note = (
            f"sent {st.sent} frames, skipped {st.dropped_busy} (a newer frame had come), "
            f"{st.dropped_down} while the link was down, {st.reconnects} reconnects"
        )
        return OutputStatus(self.flag, self.url.url, None, self.lost_frames, None, note)


__all__ = ["StreamSink", "draw_target"]
