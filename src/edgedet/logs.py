"""Terminal logging for the command line: one handler, edgedet's own level, third-party chatter kept out.

The CLI calls `setup_logging()` once per invocation; library code only ever logs (house style: nothing happens
at import time). What ends up on the terminal:

- edgedet's loggers at WARNING, INFO with `-v`, DEBUG with `--debug`;
- every other Python logger at WARNING, and at DEBUG only with `--debug` (onnxruntime's quantizer logs one
  "Created a copy of bias input" line per bias on the root logger at INFO: with `-v` those flooded the terminal);
- native libraries: OpenCV's own log and the FFmpeg log inside OpenCV's video I/O (a refused RTSP connection
  printed two lines before edgedet's message) at errors only, or silent for FFmpeg, and ONNX Runtime's C++
  logger at errors, unless `--debug`. Variables the user already set (OPENCV_LOG_LEVEL,
  OPENCV_FFMPEG_LOGLEVEL) are left alone.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import TextIO

#: the format of every line: level, logger, message (no timestamps: journald and terminals add their own)
LOG_FORMAT = "%(levelname)s %(name)s: %(message)s"

# FFmpeg's AV_LOG_QUIET. OpenCV reads OPENCV_FFMPEG_LOGLEVEL once, at its first FFmpeg open, so setting it
# before any capture is opened is enough; OPENCV_LOG_LEVEL is read at OpenCV's first log call.
_FFMPEG_QUIET = "-8"
_ORT_ERROR = 3  # ONNX Runtime severities: 0 verbose, 1 info, 2 warning, 3 error, 4 fatal


class _EdgedetHandler(logging.StreamHandler):
    """Marks the handler this module installed, so a second setup replaces it instead of adding another."""


def setup_logging(
    verbose: bool = False, debug: bool = False, stream: TextIO | None = None, quiet_native: bool | None = None
) -> logging.Handler:
    """Configure logging for one CLI invocation; safe to call again (tests call main() many times).

    verbose: edgedet's info messages (reconnects, model loading). debug: everything, including third-party
    libraries' logs and native log lines. stream: where lines go (default: sys.stderr at the time of the call).
    quiet_native: silence OpenCV/FFmpeg/ONNX Runtime native logs (default: unless `debug`).
    Returns the one handler on the root logger.
    """
    own_level = logging.DEBUG if debug else logging.INFO if verbose else logging.WARNING
    root = logging.getLogger()
    # Exactly one terminal handler: drop ours from an earlier call and any that a library or an earlier
    # basicConfig put on the root logger (two handlers = every line printed twice).
    for handler in list(root.handlers):
        if isinstance(handler, _EdgedetHandler) or type(handler) is logging.StreamHandler:
            root.removeHandler(handler)
    handler = _EdgedetHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if debug else logging.WARNING)
    edgedet = logging.getLogger("edgedet")
    edgedet.setLevel(own_level)
    # edgedet's records reach the terminal only through the root handler.
    for h in list(edgedet.handlers):
        edgedet.removeHandler(h)
    edgedet.propagate = True
    if quiet_native is None:
        quiet_native = not debug
    if quiet_native:
        quiet_native_logs()
    return handler


def quiet_native_logs() -> None:
    """Keep OpenCV's, FFmpeg's (inside OpenCV) and ONNX Runtime's native log lines out of the terminal.

    Must run before the first capture is opened for FFmpeg's part to take effect. Values the user set in the
    environment win.
    """
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", _FFMPEG_QUIET)
    os.environ.setdefault("OPENCV_LOG_LEVEL", "ERROR")
    cv2 = sys.modules.get("cv2")
    if cv2 is not None and os.environ["OPENCV_LOG_LEVEL"] == "ERROR":
        # Already imported (and possibly already logging): the variable is read too early to matter now.
        try:
            cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)
        except AttributeError:  # an OpenCV build without the logging utils: nothing to turn down
            pass
    try:
        import onnxruntime
    except ImportError:  # the runtime is a core dependency, but logging setup must never be what fails
        return
    onnxruntime.set_default_logger_severity(_ORT_ERROR)
