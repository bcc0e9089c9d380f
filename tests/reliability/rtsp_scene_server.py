"""tests/sources/rtsp_server.py serving a scene the blob detector can track (run with /usr/bin/python3).

    /usr/bin/python3 rtsp_scene_server.py PORT   ->  rtsp://127.0.0.1:PORT/test  (240x120 @ 30 fps, H.264)

Left 160x120: videotestsrc's red ball, moving (it restarts from the centre whenever the media is created, i.e.
on every new connection and server restart). Right: a green 32x32 square that never moves (x 190..222,
y 44..76), so a tracker can keep its ID across an outage. Same signals as rtsp_server.py (SIGUSR1 stalls,
SIGUSR2 resumes).
"""

import importlib.util
import sys
from pathlib import Path

SQUARE_XYXY = (190, 44, 222, 76)

LAUNCH = (
    "( compositor name=c background=black sink_1::xpos=190 sink_1::ypos=44 "
    "! video/x-raw,width=240,height=120,framerate=30/1 ! videoconvert ! video/x-raw,format=I420 "
    "! valve name=v drop=false ! x264enc tune=zerolatency speed-preset=ultrafast key-int-max=15 "
    "! rtph264pay name=pay0 pt=96 config-interval=1 "
    "videotestsrc is-live=true pattern=ball foreground-color=0xffff0000 "
    "! video/x-raw,format=AYUV,width=160,height=120,framerate=30/1 ! c.sink_0 "
    "videotestsrc is-live=true pattern=solid-color foreground-color=0xff00ff00 "
    "! video/x-raw,format=AYUV,width=32,height=32,framerate=30/1 ! c.sink_1 )"
)

if __name__ == "__main__":
    base = Path(__file__).resolve().parents[1] / "sources" / "rtsp_server.py"
    spec = importlib.util.spec_from_file_location("rtsp_server", base)
    assert spec is not None and spec.loader is not None
    server = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(server)
    server.LAUNCH = LAUNCH  # type: ignore[attr-defined]
    sys.exit(server.main())
