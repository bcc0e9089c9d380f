"""YOLOv5 v7.0 model layouts (models/*.yaml, models/hub/*.yaml, models/segment/*.yaml) as test data.

Each entry is the layer list of one yaml, written out here as Python data ([from, repeats, module, args]),
so tests can build every layout with edgedet's own modules without the YOLOv5 repo. Depth and width multiples
are set small in the tests (the layer structure, not the size, is what they check).
"""

from __future__ import annotations

from typing import Any

A3 = [[10, 13, 16, 30, 33, 23], [30, 61, 62, 45, 59, 119], [116, 90, 156, 198, 373, 326]]
A4 = [
    [19, 27, 44, 40, 38, 94],
    [96, 68, 86, 152, 180, 137],
    [140, 301, 303, 264, 238, 542],
    [436, 615, 739, 380, 925, 792],
]
UP = ["nn.Upsample", [None, 2, "nearest"]]

BACKBONE_P5 = [
    [-1, 1, "Conv", [64, 6, 2, 2]],  # 0-P1/2
    [-1, 1, "Conv", [128, 3, 2]],  # 1-P2/4
    [-1, 3, "C3", [128]],
    [-1, 1, "Conv", [256, 3, 2]],  # 3-P3/8
    [-1, 6, "C3", [256]],
    [-1, 1, "Conv", [512, 3, 2]],  # 5-P4/16
    [-1, 9, "C3", [512]],
    [-1, 1, "Conv", [1024, 3, 2]],  # 7-P5/32
    [-1, 3, "C3", [1024]],
    [-1, 1, "SPPF", [1024, 5]],  # 9
]


def _pan_head(last: list[Any]) -> list[Any]:
    return [
        [-1, 1, "Conv", [512, 1, 1]],
        [-1, 1, *UP],
        [[-1, 6], 1, "Concat", [1]],
        [-1, 3, "C3", [512, False]],  # 13
        [-1, 1, "Conv", [256, 1, 1]],
        [-1, 1, *UP],
        [[-1, 4], 1, "Concat", [1]],
        [-1, 3, "C3", [256, False]],  # 17 (P3/8)
        [-1, 1, "Conv", [256, 3, 2]],
        [[-1, 14], 1, "Concat", [1]],
        [-1, 3, "C3", [512, False]],  # 20 (P4/16)
        [-1, 1, "Conv", [512, 3, 2]],
        [[-1, 10], 1, "Concat", [1]],
        [-1, 3, "C3", [1024, False]],  # 23 (P5/32)
        last,
    ]


PAN_HEAD = _pan_head([[17, 20, 23], 1, "Detect", ["nc", "anchors"]])

BACKBONE_P6 = [
    [-1, 1, "Conv", [64, 6, 2, 2]],
    [-1, 1, "Conv", [128, 3, 2]],
    [-1, 3, "C3", [128]],
    [-1, 1, "Conv", [256, 3, 2]],
    [-1, 6, "C3", [256]],
    [-1, 1, "Conv", [512, 3, 2]],
    [-1, 9, "C3", [512]],
    [-1, 1, "Conv", [768, 3, 2]],  # 7-P5/32
    [-1, 3, "C3", [768]],
    [-1, 1, "Conv", [1024, 3, 2]],  # 9-P6/64
    [-1, 3, "C3", [1024]],
    [-1, 1, "SPPF", [1024, 5]],  # 11
]
HEAD_P6 = [
    [-1, 1, "Conv", [768, 1, 1]],
    [-1, 1, *UP],
    [[-1, 8], 1, "Concat", [1]],
    [-1, 3, "C3", [768, False]],  # 15
    [-1, 1, "Conv", [512, 1, 1]],
    [-1, 1, *UP],
    [[-1, 6], 1, "Concat", [1]],
    [-1, 3, "C3", [512, False]],  # 19
    [-1, 1, "Conv", [256, 1, 1]],
    [-1, 1, *UP],
    [[-1, 4], 1, "Concat", [1]],
    [-1, 3, "C3", [256, False]],  # 23 (P3/8)
    [-1, 1, "Conv", [256, 3, 2]],
    [[-1, 20], 1, "Concat", [1]],
    [-1, 3, "C3", [512, False]],  # 26 (P4/16)
    [-1, 1, "Conv", [512, 3, 2]],
    [[-1, 16], 1, "Concat", [1]],
    [-1, 3, "C3", [768, False]],  # 29 (P5/32)
    [-1, 1, "Conv", [768, 3, 2]],
    [[-1, 12], 1, "Concat", [1]],
    [-1, 3, "C3", [1024, False]],  # 32 (P6/64)
    [[23, 26, 29, 32], 1, "Detect", ["nc", "anchors"]],
]

DARKNET53 = [
    [-1, 1, "Conv", [32, 3, 1]],
    [-1, 1, "Conv", [64, 3, 2]],
    [-1, 1, "Bottleneck", [64]],
    [-1, 1, "Conv", [128, 3, 2]],
    [-1, 2, "Bottleneck", [128]],
    [-1, 1, "Conv", [256, 3, 2]],
    [-1, 8, "Bottleneck", [256]],
    [-1, 1, "Conv", [512, 3, 2]],
    [-1, 8, "Bottleneck", [512]],
    [-1, 1, "Conv", [1024, 3, 2]],
    [-1, 4, "Bottleneck", [1024]],  # 10
]


def _yolov3_head(spp: bool) -> list[Any]:
    first = (
        [[-1, 1, "Bottleneck", [1024, False]], [-1, 1, "SPP", [512, [5, 9, 13]]]]
        if spp
        else [[-1, 1, "Bottleneck", [1024, False]], [-1, 1, "Conv", [512, 1, 1]]]
    )
    return [
        *first,
        [-1, 1, "Conv", [1024, 3, 1]],
        [-1, 1, "Conv", [512, 1, 1]],
        [-1, 1, "Conv", [1024, 3, 1]],  # 15 (P5/32)
        [-2, 1, "Conv", [256, 1, 1]],
        [-1, 1, *UP],
        [[-1, 8], 1, "Concat", [1]],
        [-1, 1, "Bottleneck", [512, False]],
        [-1, 1, "Bottleneck", [512, False]],
        [-1, 1, "Conv", [256, 1, 1]],
        [-1, 1, "Conv", [512, 3, 1]],  # 22 (P4/16)
        [-2, 1, "Conv", [128, 1, 1]],
        [-1, 1, *UP],
        [[-1, 6], 1, "Concat", [1]],
        [-1, 1, "Bottleneck", [256, False]],
        [-1, 2, "Bottleneck", [256, False]],  # 27 (P3/8)
        [[27, 22, 15], 1, "Detect", ["nc", "anchors"]],
    ]


def _ghost(layers: list[Any]) -> list[Any]:
    out = []
    for f, n, m, args in layers:
        m = {"C3": "C3Ghost"}.get(m, m)
        if m == "Conv" and args[:3] != [64, 6, 2]:
            m = "GhostConv"
        out.append([f, n, m, args])
    return out


def _model(backbone: list[Any], head: list[Any], anchors: Any = A3, **extra: Any) -> dict[str, Any]:
    return {
        "nc": 80,
        "depth_multiple": 1.0,
        "width_multiple": 1.0,
        "anchors": anchors,
        "backbone": backbone,
        "head": head,
        **extra,
    }


#: name -> (yaml as a dict, largest stride)
YAMLS: dict[str, tuple[dict[str, Any], int]] = {
    # models/yolov5{n,s,m,l,x}.yaml: one layout, scaled by the multiples
    "yolov5s": (_model(BACKBONE_P5, PAN_HEAD), 32),
    # models/segment/yolov5s-seg.yaml
    "yolov5s-seg": (
        _model(BACKBONE_P5, _pan_head([[17, 20, 23], 1, "Segment", ["nc", "anchors", 32, 256]])),
        32,
    ),
    # models/hub
    "yolov5-panet": (_model([[-1, 1, "Conv", [64, 3, 2]], *BACKBONE_P5[1:]], PAN_HEAD), 32),
    "yolov5-bifpn": (
        _model(
            BACKBONE_P5,
            [
                *PAN_HEAD[:8],
                [-1, 1, "Conv", [256, 3, 2]],
                [[-1, 14, 6], 1, "Concat", [1]],  # BiFPN: the backbone's P4 joins too
                [-1, 3, "C3", [512, False]],
                *PAN_HEAD[11:],
            ],
        ),
        32,
    ),
    "yolov5-fpn": (
        _model(
            BACKBONE_P5,
            [
                [-1, 3, "C3", [1024, False]],  # 10 (P5/32)
                [-1, 1, *UP],
                [[-1, 6], 1, "Concat", [1]],
                [-1, 1, "Conv", [512, 1, 1]],
                [-1, 3, "C3", [512, False]],  # 14 (P4/16)
                [-1, 1, *UP],
                [[-1, 4], 1, "Concat", [1]],
                [-1, 1, "Conv", [256, 1, 1]],
                [-1, 3, "C3", [256, False]],  # 18 (P3/8)
                [[18, 14, 10], 1, "Detect", ["nc", "anchors"]],
            ],
        ),
        32,
    ),
    "yolov5-p2": (
        _model(
            BACKBONE_P5,
            [
                *PAN_HEAD[:8],
                [-1, 1, "Conv", [128, 1, 1]],
                [-1, 1, *UP],
                [[-1, 2], 1, "Concat", [1]],
                [-1, 1, "C3", [128, False]],  # 21 (P2/4)
                [-1, 1, "Conv", [128, 3, 2]],
                [[-1, 18], 1, "Concat", [1]],
                [-1, 3, "C3", [256, False]],  # 24 (P3/8)
                [-1, 1, "Conv", [256, 3, 2]],
                [[-1, 14], 1, "Concat", [1]],
                [-1, 3, "C3", [512, False]],  # 27 (P4/16)
                [-1, 1, "Conv", [512, 3, 2]],
                [[-1, 10], 1, "Concat", [1]],
                [-1, 3, "C3", [1024, False]],  # 30 (P5/32)
                [[21, 24, 27, 30], 1, "Detect", ["nc", "anchors"]],
            ],
            anchors=3,
        ),
        32,
    ),
    "yolov5-p34": (
        _model(BACKBONE_P5, [*PAN_HEAD[:11], [[17, 20], 1, "Detect", ["nc", "anchors"]]], anchors=3),
        16,
    ),
    "yolov5-p6": (_model(BACKBONE_P6, HEAD_P6, anchors=3), 64),
    "yolov5n6": (_model(BACKBONE_P6, HEAD_P6, anchors=A4), 64),
    "yolov5-p7": (
        _model(
            [
                *BACKBONE_P6[:11],
                [-1, 1, "Conv", [1280, 3, 2]],  # 11-P7/128
                [-1, 3, "C3", [1280]],
                [-1, 1, "SPPF", [1280, 5]],  # 13
            ],
            [
                [-1, 1, "Conv", [1024, 1, 1]],
                [-1, 1, *UP],
                [[-1, 10], 1, "Concat", [1]],
                [-1, 3, "C3", [1024, False]],  # 17
                [-1, 1, "Conv", [768, 1, 1]],
                [-1, 1, *UP],
                [[-1, 8], 1, "Concat", [1]],
                [-1, 3, "C3", [768, False]],  # 21
                [-1, 1, "Conv", [512, 1, 1]],
                [-1, 1, *UP],
                [[-1, 6], 1, "Concat", [1]],
                [-1, 3, "C3", [512, False]],  # 25
                [-1, 1, "Conv", [256, 1, 1]],
                [-1, 1, *UP],
                [[-1, 4], 1, "Concat", [1]],
                [-1, 3, "C3", [256, False]],  # 29 (P3/8)
                [-1, 1, "Conv", [256, 3, 2]],
                [[-1, 26], 1, "Concat", [1]],
                [-1, 3, "C3", [512, False]],  # 32
                [-1, 1, "Conv", [512, 3, 2]],
                [[-1, 22], 1, "Concat", [1]],
                [-1, 3, "C3", [768, False]],  # 35
                [-1, 1, "Conv", [768, 3, 2]],
                [[-1, 18], 1, "Concat", [1]],
                [-1, 3, "C3", [1024, False]],  # 38
                [-1, 1, "Conv", [1024, 3, 2]],
                [[-1, 14], 1, "Concat", [1]],
                [-1, 3, "C3", [1280, False]],  # 41 (P7/128)
                [[29, 32, 35, 38, 41], 1, "Detect", ["nc", "anchors"]],
            ],
            anchors=3,
        ),
        128,
    ),
    "yolov5s-ghost": (_model(_ghost(BACKBONE_P5), _ghost(PAN_HEAD)), 32),
    "yolov5s-transformer": (
        _model([*BACKBONE_P5[:8], [-1, 3, "C3TR", [1024]], BACKBONE_P5[9]], PAN_HEAD),
        32,
    ),
    "yolov5s-LeakyReLU": (_model(BACKBONE_P5, PAN_HEAD, activation="nn.LeakyReLU(0.1)"), 32),
    "yolov3": (_model(DARKNET53, _yolov3_head(spp=False)), 32),
    "yolov3-spp": (_model(DARKNET53, _yolov3_head(spp=True)), 32),
    "yolov3-tiny": (
        _model(
            [
                [-1, 1, "Conv", [16, 3, 1]],
                [-1, 1, "nn.MaxPool2d", [2, 2, 0]],
                [-1, 1, "Conv", [32, 3, 1]],
                [-1, 1, "nn.MaxPool2d", [2, 2, 0]],
                [-1, 1, "Conv", [64, 3, 1]],
                [-1, 1, "nn.MaxPool2d", [2, 2, 0]],
                [-1, 1, "Conv", [128, 3, 1]],
                [-1, 1, "nn.MaxPool2d", [2, 2, 0]],
                [-1, 1, "Conv", [256, 3, 1]],
                [-1, 1, "nn.MaxPool2d", [2, 2, 0]],
                [-1, 1, "Conv", [512, 3, 1]],
                [-1, 1, "nn.ZeroPad2d", [[0, 1, 0, 1]]],
                [-1, 1, "nn.MaxPool2d", [2, 1, 0]],  # 12
            ],
            [
                [-1, 1, "Conv", [1024, 3, 1]],
                [-1, 1, "Conv", [256, 1, 1]],
                [-1, 1, "Conv", [512, 3, 1]],  # 15 (P5/32)
                [-2, 1, "Conv", [128, 1, 1]],
                [-1, 1, *UP],
                [[-1, 8], 1, "Concat", [1]],
                [-1, 1, "Conv", [256, 3, 1]],  # 19 (P4/16)
                [[19, 15], 1, "Detect", ["nc", "anchors"]],
            ],
            anchors=[[10, 14, 23, 27, 37, 58], [81, 82, 135, 169, 344, 319]],
        ),
        32,
    ),
    # YOLOv5 v4.0/v5.0 layout (Focus, BottleneckCSP, SPP), still in many trained checkpoints
    "yolov5s-v5": (
        _model(
            [
                [-1, 1, "Focus", [64, 3]],
                [-1, 1, "Conv", [128, 3, 2]],
                [-1, 3, "BottleneckCSP", [128]],
                [-1, 1, "Conv", [256, 3, 2]],
                [-1, 9, "BottleneckCSP", [256]],
                [-1, 1, "Conv", [512, 3, 2]],
                [-1, 9, "BottleneckCSP", [512]],
                [-1, 1, "Conv", [1024, 3, 2]],
                [-1, 1, "SPP", [1024, [5, 9, 13]]],
                [-1, 3, "BottleneckCSP", [1024, False]],  # 9
            ],
            [[f, n, "BottleneckCSP" if m == "C3" else m, a] for f, n, m, a in PAN_HEAD],
        ),
        32,
    ),
    # every other models/common.py block in one made-up layout
    "module-zoo": (
        _model(
            [
                [-1, 1, "Focus", [32, 3]],  # 0 /2
                [-1, 1, "DWConv", [64, 3, 2]],  # 1 /4
                [-1, 2, "C3x", [64]],
                [-1, 1, "Conv", [128, 3, 2]],  # 3 /8
                [-1, 1, "BottleneckCSP", [128]],  # 4
                [-1, 1, "Contract", [2]],  # 5 /16
                [-1, 1, "MixConv2d", [256, [1, 3, 5], 1, False]],  # 6 (models/experimental.py)
                [-1, 1, "GhostBottleneck", [256, 3, 2]],  # 7 /32
                [-1, 1, "C3SPP", [256, [5, 9, 13]]],
                [-1, 1, "CrossConv", [256, 3, 1]],  # 9
            ],
            [
                [-1, 1, "Expand", [2]],  # 10 /16
                [[-1, 6], 1, "Concat", [1]],
                [-1, 1, "C3", [256, False]],  # 12
                [-1, 1, "DWConvTranspose2d", [256, 2, 2, 0, 0]],  # 13 /8
                [[-1, 4], 1, "Concat", [1]],
                [-1, 1, "C3", [128, False]],  # 15
                [[15, 12, 9], 1, "Detect", ["nc", "anchors"]],
            ],
            anchors=3,
        ),
        32,
    ),
}
