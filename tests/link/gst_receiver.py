"""A GStreamer video receiver for the link tests and benchmarks, run with the system python3 (python3-gi).

    /usr/bin/python3 tests/link/gst_receiver.py rtp PORT      # udpsrc, RTP/H.264 caps, rtph264depay
    /usr/bin/python3 tests/link/gst_receiver.py ts PORT       # udpsrc, MPEG-TS, tsdemux
    /usr/bin/python3 tests/link/gst_receiver.py srt PORT      # srtsrc listener, MPEG-TS, tsdemux
    ... rtp PORT 1                                             # optional: avdec_h264 max-threads (0 = auto)

Every path ends in h264parse ! avdec_h264 (gstreamer1.0-libav) ! grey appsink. For each decoded frame it
prints one line: `FRAME <time.monotonic()> <width> <height> <code>`, where code is the frame counter that
`read_code`'s layout encodes in the picture (-1 when there is none), and flushes, so the parent process can
read frames as they come. Prints `READY` once the pipeline is playing. Stops on SIGTERM/SIGINT or stdin EOF.
Uses only the standard library besides gi (the system python has no numpy).
"""

from __future__ import annotations

import signal
import sys
import threading
import time

# Frame-counter layout shared with tests/link/framecode.py: BITS blocks of BLOCK x BLOCK pixels in a row,
# starting at (X0, Y0) from the top-left corner; white = 1, black = 0; most significant bit first.
BITS = 20
BLOCK = 16
X0 = 8
Y0 = 40

_DECODE = "h264parse ! avdec_h264 max-threads={threads} ! videoconvert ! video/x-raw,format=GRAY8 ! appsink name=sink emit-signals=true sync=false max-buffers=1000"
PIPELINES = {
    "rtp": 'udpsrc port={port} buffer-size=4194304 caps="application/x-rtp,media=video,clock-rate=90000,encoding-name=H264,payload=96" ! rtph264depay ! '
    + _DECODE,
    "ts": "udpsrc port={port} buffer-size=4194304 ! tsdemux ! " + _DECODE,
    "srt": "srtsrc uri=srt://127.0.0.1:{port}?mode=listener latency=120 ! tsdemux ! " + _DECODE,
}


def read_code(data: bytes, width: int, height: int, stride: int) -> int:
    """The frame counter drawn in a GRAY8 picture, or -1 when the marker blocks are not there."""
    if width < X0 + BITS * BLOCK or height < Y0 + BLOCK:
        return -1
    y = Y0 + BLOCK // 2
    value = 0
    for i in range(BITS):
        x = X0 + i * BLOCK + BLOCK // 2
        value = (value << 1) | (1 if data[y * stride + x] > 128 else 0)
    return value


def main() -> int:
    import gi

    gi.require_version("Gst", "1.0")
    from gi.repository import GLib, Gst

    Gst.init(None)
    mode, port = sys.argv[1], int(sys.argv[2])
    # avdec_h264's default (auto) threading decodes several frames in parallel, which holds each frame back by
    # up to a frame per thread; 1 thread is what a latency-minded ground station would use.
    threads = int(sys.argv[3]) if len(sys.argv) > 3 else 0
    pipeline = Gst.parse_launch(PIPELINES[mode].format(port=port, threads=threads))
    sink = pipeline.get_by_name("sink")
    out_lock = threading.Lock()

    def on_sample(appsink: object) -> object:
        sample = appsink.emit("pull-sample")  # type: ignore[attr-defined]
        t = time.monotonic()
        caps = sample.get_caps().get_structure(0)
        w, h = caps.get_value("width"), caps.get_value("height")
        buf = sample.get_buffer()
        ok, info = buf.map(Gst.MapFlags.READ)
        code = -1
        if ok:
            stride = (w + 3) // 4 * 4  # GStreamer pads GRAY8 rows to 4 bytes
            code = read_code(bytes(info.data), w, h, stride)
            buf.unmap(info)
        with out_lock:
            sys.stdout.write(f"FRAME {t:.6f} {w} {h} {code}\n")
            sys.stdout.flush()
        return Gst.FlowReturn.OK

    sink.connect("new-sample", on_sample)
    loop = GLib.MainLoop()
    bus = pipeline.get_bus()
    bus.add_signal_watch()

    def on_message(_bus: object, message: object) -> None:
        if message.type == Gst.MessageType.ERROR:  # type: ignore[attr-defined]
            err, dbg = message.parse_error()  # type: ignore[attr-defined]
            sys.stderr.write(f"ERROR {err} {dbg}\n")
            loop.quit()

    bus.connect("message", on_message)
    GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signal.SIGTERM, lambda: loop.quit() or False)
    GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signal.SIGINT, lambda: loop.quit() or False)

    def watch_stdin() -> None:
        sys.stdin.read()
        GLib.idle_add(loop.quit)

    threading.Thread(target=watch_stdin, daemon=True).start()
    pipeline.set_state(Gst.State.PLAYING)
    sys.stdout.write("READY\n")
    sys.stdout.flush()
    loop.run()
    pipeline.set_state(Gst.State.NULL)
    return 0


if __name__ == "__main__":
    sys.exit(main())
