"""DisplaySink refuses to open, in one line, where OpenCV has no GUI or there is no display."""

from __future__ import annotations

import pytest

from edgedet.errors import SinkError
from edgedet.sinks import DisplaySink, display_problem, opencv_has_gui

HEADLESS = "General configuration for OpenCV 5.0.0\n  GUI:                           NONE\n  Media I/O:\n"
GTK3 = "  GUI:                           GTK3\n    GTK+:                        YES (ver 3.24.41)\n"
# OpenCV 4.1 (JetPack 4) has no "GUI:" summary line, only the backend lines.
OLD_GTK = "  GUI: \n    GTK+ 2.x:                    YES (ver 2.24.32)\n    VTK support:  NO\n"
OLD_NONE = "    GTK+:                        NO\n    QT:                          NO\n"


@pytest.mark.parametrize(
    ("build_info", "expected"),
    [(HEADLESS, False), (GTK3, True), ("  GUI: QT6\n", True), (OLD_NONE, False), ("Video I/O:\n", None)],
)
def test_opencv_has_gui(build_info: str, expected: bool | None) -> None:
    assert opencv_has_gui(build_info) is expected


def test_opencv_has_gui_old_style_lines() -> None:
    # "GUI: " with nothing after it is not a verdict; the GTK+ 2.x line decides.
    assert opencv_has_gui(OLD_GTK.replace("  GUI: \n", "")) is True


@pytest.mark.parametrize(
    ("build_info", "platform", "environ", "fragment"),
    [
        (HEADLESS, "linux", {"DISPLAY": ":0"}, "pip install opencv-python instead of opencv-python-headless"),
        (HEADLESS, "win32", {}, "JetPack's OpenCV"),
        (GTK3, "linux", {}, "no display is set"),
        (GTK3, "linux", {"DISPLAY": ""}, "no display is set"),
        (GTK3, "linux", {"DISPLAY": ":1"}, None),
        (GTK3, "linux", {"WAYLAND_DISPLAY": "wayland-0"}, None),
        (GTK3, "darwin", {}, None),
    ],
)
def test_display_problem(
    build_info: str, platform: str, environ: dict[str, str], fragment: str | None
) -> None:
    problem = display_problem(build_info, platform, environ)
    if fragment is None:
        assert problem is None
    else:
        assert problem is not None and fragment in problem
        assert problem.startswith("--show needs a display and OpenCV with GUI support")
        assert problem.endswith("use --save-video instead")
        assert "\n" not in problem


def test_display_sink_refuses_here_with_one_line() -> None:
    if display_problem() is None:
        pytest.skip("this machine has a GUI OpenCV and a display")
    with pytest.raises(SinkError) as info:
        DisplaySink(("person",))
    assert str(info.value) == display_problem()
    assert "\n" not in str(info.value)
