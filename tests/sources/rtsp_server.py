"""A real RTSP server on loopback for the live-source tests (run with the SYSTEM python: /usr/bin/python3).

    /usr/bin/python3 rtsp_server.py PORT      ->  rtsp://127.0.0.1:PORT/test  (160x120 @ 30 fps, H.264)

SIGUSR1 stalls it (the connection stays up, no more frames: what a hung camera or encoder looks like),
SIGUSR2 resumes it, SIGTERM/SIGKILL ends it. Needs Debian's gir1.2-gst-rtsp-server-1.0, python3-gi,
gstreamer1.0-plugins-{base,good,ugly} (x264enc) and gstreamer1.0-rtsp.
"""

import signal
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402

LAUNCH = (
    "( videotestsrc is-live=true pattern=ball ! video/x-raw,width=160,height=120,framerate=30/1 "
    "! valve name=v drop=false ! x264enc tune=zerolatency speed-preset=ultrafast key-int-max=15 "
    "! rtph264pay name=pay0 pt=96 config-interval=1 )"
)


def main() -> None:
    Gst.init(None)
    port = sys.argv[1]
    valves = []
    state = {"stalled": False}

    def on_configure(_factory, media):
        valve = media.get_element().get_by_name("v")
        valve.set_property("drop", state["stalled"])
        valves.append(valve)

    def set_stalled(stalled):
        state["stalled"] = stalled
        for valve in valves:
            valve.set_property("drop", stalled)
        return True

    server = GstRtspServer.RTSPServer()
    server.set_service(port)
    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_launch(LAUNCH)
    factory.set_shared(False)
    factory.connect("media-configure", on_configure)
    server.get_mount_points().add_factory("/test", factory)
    server.attach(None)
    loop = GLib.MainLoop()
    GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signal.SIGUSR1, set_stalled, True)
    GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signal.SIGUSR2, set_stalled, False)
    GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signal.SIGTERM, loop.quit)
    print("ready", flush=True)
    loop.run()


if __name__ == "__main__":
    main()
