"""The drone link: annotated video to the ground station, tracks to other software, target selection over
MAVLink. Optional packages (PyAV, pymavlink, paho-mqtt, pyserial: `pip install 'edgedet[link]'`) are imported
only when a link is opened.

- `video` / `stream_sink`: `--stream URL` (RTP/H.264, MPEG-TS over UDP or SRT, RTSP publish), encoder off the loop.
- `mavlink`: the MAVLink camera component (`--mavlink CONNECTION`), target selection and vehicle state.
- `publish`: `--publish mqtt://... | udp://...`, one JSON message per frame.
- `target`, `vehicle`: the shared state those read and write; `factory`: a LinkConfig -> sinks.
"""
