#!/usr/bin/env bash
# Install edgedet on a Jetson (JetPack 6.1/6.2) without Docker, and set up the systemd service.
#
#   sudo deploy/jetson/install.sh                    # venv in /opt/edgedet/venv + service (not started)
#   sudo deploy/jetson/install.sh --no-service       # venv only
#   sudo ONNXRUNTIME_WHEEL=/path/onnxruntime_gpu-...-linux_aarch64.whl deploy/jetson/install.sh
#
# The venv is made with --system-site-packages so it sees JetPack's TensorRT (python3-libnvinfer) and the
# distribution's GStreamer-enabled OpenCV; edgedet is installed with --no-deps so pip never pulls PyPI's
# opencv-python (no GStreamer) or PyPI's onnxruntime over NVIDIA's GPU build.
set -euo pipefail

PREFIX=${PREFIX:-/opt/edgedet}
ONNXRUNTIME_WHEEL=${ONNXRUNTIME_WHEEL:-}
SERVICE=1
for arg in "$@"; do
    case "$arg" in
        --no-service) SERVICE=0 ;;
        -h | --help)
            sed -n '2,12p' "$0"
            exit 0
            ;;
        *)
            echo "unknown option: $arg (use --no-service or --help)" >&2
            exit 2
            ;;
    esac
done

if [[ $(id -u) -ne 0 ]]; then
    echo "run as root (sudo $0): it installs apt packages, $PREFIX and a systemd unit" >&2
    exit 1
fi
if [[ ! -f /etc/nv_tegra_release ]]; then
    echo "warning: /etc/nv_tegra_release not found; this script is meant for a Jetson with JetPack 6" >&2
fi

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
HERE="$REPO/deploy/jetson"
VENV="$PREFIX/venv"
PIP=("$VENV/bin/python" -m pip)

echo "== apt: TensorRT Python bindings, OpenCV with GStreamer, GStreamer tools"
apt-get update
apt-get install -y --no-install-recommends \
    python3-pip python3-venv python3-libnvinfer python3-opencv \
    gstreamer1.0-tools gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad v4l-utils

echo "== venv: $VENV (with system site packages)"
mkdir -p "$PREFIX"
python3 -m venv --system-site-packages "$VENV"
"${PIP[@]}" install --upgrade pip
"${PIP[@]}" install --no-deps "$REPO"
"${PIP[@]}" install -r "$HERE/requirements-jetson.txt"

echo "== onnxruntime"
if [[ -n "$ONNXRUNTIME_WHEEL" ]]; then
    # NVIDIA's GPU build: remove any CPU build first, they share the onnxruntime module.
    "${PIP[@]}" uninstall -y onnxruntime || true
    "${PIP[@]}" install "$ONNXRUNTIME_WHEEL"
elif "$VENV/bin/python" -c "import onnxruntime" 2>/dev/null; then
    echo "an onnxruntime is already importable; leaving it alone"
else
    echo "no onnxruntime found: installing PyPI's CPU build (for TensorRT through ONNX Runtime, pass ONNXRUNTIME_WHEEL)"
    "${PIP[@]}" install "onnxruntime>=1.17,<2"
fi

# A PyPI OpenCV wheel (pulled in by some other package) would shadow the system cv2 that has GStreamer.
"${PIP[@]}" uninstall -y opencv-python opencv-python-headless opencv-contrib-python 2>/dev/null || true

echo "== checks"
"$VENV/bin/python" "$HERE/check_env.py"

cp -r "$HERE" "$PREFIX/deploy-jetson"
if [[ "$SERVICE" -eq 1 ]]; then
    echo "== service"
    if ! id edgedet >/dev/null 2>&1; then
        useradd --system --home-dir /var/lib/edgedet --shell /usr/sbin/nologin --groups video,render edgedet
    fi
    install -d -m 0755 /etc/edgedet "$PREFIX/models"
    if [[ ! -f /etc/edgedet/config.yaml ]]; then
        install -m 0644 "$HERE/config.example.yaml" /etc/edgedet/config.yaml
        echo "wrote /etc/edgedet/config.yaml from the example: set model/source before starting"
    fi
    install -m 0644 "$HERE/edgedet.service" /etc/systemd/system/edgedet.service
    systemctl daemon-reload
    systemctl enable edgedet.service
    echo "enabled; start with: sudo systemctl start edgedet && journalctl -u edgedet -f"
fi
echo "done: $VENV/bin/edgedet"
