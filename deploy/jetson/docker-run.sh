#!/usr/bin/env bash
# Run the edgedet container on a Jetson with what a camera + GPU pipeline needs:
#   --runtime nvidia            the GPU, CUDA and TensorRT libraries of the host's JetPack
#   /tmp/argus_socket           CSI cameras: nvarguscamerasrc talks to the host's nvargus-daemon through it
#   --device /dev/videoN        USB/V4L2 cameras (every one present is passed)
#   /etc/edgedet (read-only)    config.yaml and models
#   edgedet-engines volume      the TensorRT engine cache, so an engine is built once, not on every start
#   /run/jtop.sock              jetson-stats telemetry for `edgedet bench` (when jtop runs on the host)
# Extra arguments replace the default command, e.g.: deploy/jetson/docker-run.sh bench --model /etc/edgedet/m.onnx
set -euo pipefail

IMAGE=${IMAGE:-edgedet:jetson}
NAME=${NAME:-edgedet}
args=(--runtime nvidia --name "$NAME"
    -v /tmp/argus_socket:/tmp/argus_socket
    -v /etc/edgedet:/etc/edgedet:ro
    -v edgedet-engines:/var/cache/edgedet)
for dev in /dev/video*; do
    [[ -e "$dev" ]] && args+=(--device "$dev")
done
if [[ -S /run/jtop.sock ]]; then
    args+=(-v /run/jtop.sock:/run/jtop.sock)
fi
if [[ $# -gt 0 ]]; then
    # A one-off command (bench, convert, a test run): interactive, removed when it ends.
    exec docker run --rm -it "${args[@]}" "$IMAGE" "$@"
fi
# The service: detached, restarted by Docker when it fails and after a reboot.
exec docker run -d --restart unless-stopped "${args[@]}" "$IMAGE"
