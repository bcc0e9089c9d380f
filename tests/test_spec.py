from __future__ import annotations

import pytest

from edgedet.errors import DataError, ModelError
from edgedet.spec import ModelSpec, infer_output_format, parse_names, read_names_file, spec_from_metadata


def test_json_round_trip():
    s = ModelSpec(input_hw=(320, 480), class_names=("a", "b"), precision="fp16", provenance={"sha256": "x"})
    assert ModelSpec.from_json(s.to_json()) == s


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("{", "not valid JSON"),
        ("[1]", "JSON object"),
        ('{"bogus": 1}', "unknown fields"),
        ('{"input_hw": [1, 2, 3]}', "bad field value"),
        ('{"input_hw": [4, 4]}', "out of range"),
        ('{"precision": "int4"}', "unknown precision"),
    ],
)
def test_bad_spec_json(text, match):
    with pytest.raises((DataError, ModelError), match=match):
        ModelSpec.from_json(text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("{0: 'person', 1: 'bicycle'}", ("person", "bicycle")), ("['a', 'b']", ("a", "b"))],
)
def test_parse_names(text, expected):
    assert parse_names(text) == expected


@pytest.mark.parametrize("text", ["__import__('os')", "{0: 'a', 2: 'b'}", "42", "{'x': 'a'}"])
def test_parse_names_refuses(text):
    with pytest.raises(DataError):
        parse_names(text)


def test_names_file(tmp_path):
    (tmp_path / "n.txt").write_text("car\n\ntruck\n")
    assert read_names_file(str(tmp_path / "n.txt")) == ("car", "truck")
    (tmp_path / "d.yaml").write_text("names:\n  0: car\n  1: person\n")
    assert read_names_file(str(tmp_path / "d.yaml")) == ("car", "person")
    with pytest.raises(DataError, match="cannot read"):
        read_names_file(str(tmp_path / "missing.txt"))


@pytest.mark.parametrize(
    ("shapes", "nc", "fmt"),
    [
        ([[1, 25200, 85]], 80, "yolov5"),
        ([[1, 84, 8400]], 80, "yolov8"),
        ([[1, 300, 6]], None, "end2end"),
        ([[1, 6300, 85]], None, "yolov5"),
        ([[1, 6, 8400]], 2, "yolov8"),
    ],
)
def test_infer_output_format(shapes, nc, fmt):
    assert infer_output_format(shapes, nc) == fmt


def test_ultralytics_metadata():
    meta = {"names": "{0: 'person', 1: 'car'}", "stride": "32", "imgsz": "[640, 640]", "task": "detect"}
    s = spec_from_metadata(meta, "images", ["batch", 3, "h", "w"], [[1, 6, 8400]])
    assert s.input_hw == (640, 640) and s.batch == 0 and s.output_format == "yolov8"
    assert s.class_names == ("person", "car")
