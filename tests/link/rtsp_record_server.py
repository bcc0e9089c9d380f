"""An RTSP server that accepts a published stream (ANNOUNCE/RECORD, what MediaMTX does for `rtsp://` publish),
for the link tests. Run with the system python3 (python3-gi, gir1.2-gst-rtsp-server-1.0, gstreamer1.0-libav):

    /usr/bin/python3 tests/link/rtsp_record_server.py PORT      ->  accepts rtsp://127.0.0.1:PORT/edgedet

Prints `READY`, then `FRAME <time.monotonic()> <width> <height> <code>` per decoded frame (code: the frame
counter of tests/link/framecode.py, -1 when none). SIGTERM ends it.
"""

from __future__ import annotations

import signal
import sys
import time

from gst_receiver import read_code


def main() -> int:
    import gi

    gi.require_version("Gst", "1.0")
    gi.require_version("GstRtspServer", "1.0")
    from gi.repository import GLib, Gst, GstRtspServer

    Gst.init(None)
    port = sys.argv[1]
    server = GstRtspServer.RTSPServer()
    server.set_service(port)
    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_transport_mode(GstRtspServer.RTSPTransportMode.RECORD)
    factory.set_launch(
        "( decodebin name=depay0 ! videoconvert ! video/x-raw,format=GRAY8 ! "
        "appsink name=sink emit-signals=true sync=false )"
    )

    def on_sample(appsink: object) -> object:
        sample = appsink.emit("pull-sample")  # type: ignore[attr-defined]
        t = time.monotonic()
        caps = sample.get_caps().get_structure(0)
        w, h = caps.get_value("width"), caps.get_value("height")
        buf = sample.get_buffer()
        ok, info = buf.map(Gst.MapFlags.READ)
        code = read_code(bytes(info.data), w, h, (w + 3) // 4 * 4) if ok else -1
        if ok:
            buf.unmap(info)
        sys.stdout.write(f"FRAME {t:.6f} {w} {h} {code}\n")
        sys.stdout.flush()
        return Gst.FlowReturn.OK

    def on_configure(_factory: object, media: object) -> None:
        sink = media.get_element().get_child_by_name("sink")  # type: ignore[attr-defined]
        sink.connect("new-sample", on_sample)

    factory.connect("media-configure", on_configure)
    server.get_mount_points().add_factory("/edgedet", factory)
    server.attach(None)
    loop = GLib.MainLoop()
    GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signal.SIGTERM, lambda: loop.quit() or False)
    sys.stdout.write("READY\n")
    sys.stdout.flush()
    loop.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
