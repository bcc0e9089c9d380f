"""Draw a frame counter into a BGR image in the layout tests/link/gst_receiver.py reads back after decoding."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

BITS = 20
BLOCK = 16
X0 = 8
Y0 = 40


def stamp(image: npt.NDArray[np.uint8], code: int) -> None:
    """Write `code` (0 .. 2**BITS - 1) as white/black blocks into `image` (HxWx3 uint8) in place."""
    for i in range(BITS):
        bit = (code >> (BITS - 1 - i)) & 1
        x = X0 + i * BLOCK
        image[Y0 : Y0 + BLOCK, x : x + BLOCK] = 255 if bit else 0


def read_stamp(image: npt.NDArray[np.uint8]) -> int:
    """The code `stamp` wrote (read before encoding)."""
    value = 0
    for i in range(BITS):
        value = (value << 1) | int(image[Y0 + BLOCK // 2, X0 + i * BLOCK + BLOCK // 2, 0] > 128)
    return value
