"""edgedet's own implementation of the YOLOv5 (v5.0 - v7.0) modules, so a YOLOv5 checkpoint loads without YOLOv5 code.

Written from the architecture (the model yamls and the layer maths), not from the YOLOv5 sources. The attribute
names (conv/bn/act, cv1..cv4, m, q/k/v/ma/fc1/fc2, f/i/type/np, nc/no/nl/na/anchors/stride, ...) are the YOLOv5
repo's, because a pickled checkpoint restores instances by filling `__dict__` with exactly those names
(`__init__` is never called on unpickling). The maths follows the repo's export path: Conv+BN fused in float32
and `Detect` in export mode, whose output is one tensor [B, N, 5+nc] with sigmoid applied and boxes decoded to
cx, cy, w, h in input pixels. `Segment` exports its detection part only (the mask coefficients and the
prototype branch are dropped).

torch is optional for edgedet: without it this module still imports (every class then derives from `object`
and cannot be instantiated usefully); the loader asks for torch through `edgedet._optional` before using it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from types import SimpleNamespace
from typing import Any

from edgedet._optional import require
from edgedet.errors import ModelError

try:  # torch is optional: the classes are defined either way, usable only with it
    import torch
    from torch import nn

    _Module: Any = nn.Module
    _ConvTranspose2d: Any = nn.ConvTranspose2d
except ImportError:  # pragma: no cover - exercised by tests/test_imports.py in a subprocess
    torch = None  # type: ignore[assignment]
    nn = None  # type: ignore[assignment]
    _Module = object
    _ConvTranspose2d = object


def autopad(k: Any, p: Any = None, d: int = 1) -> Any:
    """'same' padding for kernel k (int or tuple) and dilation d."""
    if d > 1:
        k = d * (k - 1) + 1 if isinstance(k, int) else [d * (x - 1) + 1 for x in k]
    if p is None:
        p = k // 2 if isinstance(k, int) else [x // 2 for x in k]
    return p


def make_divisible(x: float, divisor: int) -> int:
    return int(math.ceil(x / divisor) * divisor)


# --- convolutions -------------------------------------------------------------------------------------------


class Conv(_Module):
    """Conv2d (no bias) + BatchNorm2d + activation (SiLU unless the yaml's `activation` says otherwise);
    after `prepare_for_export` Conv2d (with bias) + activation."""

    default_act: Any = None  # None = nn.SiLU(); parse_model sets it from the yaml's `activation`

    def __init__(
        self, c1: int, c2: int, k: Any = 1, s: Any = 1, p: Any = None, g: int = 1, d: int = 1, act: Any = True
    ) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c1, c2, k, s, autopad(k, p, d), groups=g, dilation=d, bias=False)
        self.bn = nn.BatchNorm2d(c2)
        if act is True:
            self.act = _copy_act(Conv.default_act) if Conv.default_act is not None else nn.SiLU()
        else:
            self.act = act if isinstance(act, nn.Module) else nn.Identity()

    def forward(self, x: Any) -> Any:
        bn = self._modules.get("bn")  # gone after fusion
        x = self.conv(x)
        if bn is not None:
            x = bn(x)
        return self.act(x)


def _copy_act(act: Any) -> Any:
    import copy

    return copy.deepcopy(act)


class DWConv(Conv):
    """Depth-wise convolution: groups = gcd(c1, c2)."""

    def __init__(self, c1: int, c2: int, k: Any = 1, s: Any = 1, d: int = 1, act: Any = True) -> None:
        super().__init__(c1, c2, k, s, g=math.gcd(c1, c2), d=d, act=act)


class DWConvTranspose2d(_ConvTranspose2d):
    """Depth-wise transposed convolution (groups = gcd(c1, c2)), with bias; p1 padding, p2 output padding."""

    def __init__(self, c1: int, c2: int, k: int = 1, s: int = 1, p1: int = 0, p2: int = 0) -> None:
        super().__init__(c1, c2, k, s, p1, p2, groups=math.gcd(c1, c2))


class Focus(_Module):
    """Space-to-depth (4 pixel phases stacked on channels) then Conv (YOLOv5 <= v5)."""

    def __init__(
        self, c1: int, c2: int, k: Any = 1, s: Any = 1, p: Any = None, g: int = 1, act: Any = True
    ) -> None:
        super().__init__()
        self.conv = Conv(c1 * 4, c2, k, s, p, g, act=act)

    def forward(self, x: Any) -> Any:
        return self.conv(
            torch.cat((x[..., ::2, ::2], x[..., 1::2, ::2], x[..., ::2, 1::2], x[..., 1::2, 1::2]), 1)
        )


class GhostConv(_Module):
    """Half the output channels from a Conv, the other half from a cheap 5x5 depth-wise Conv of the first."""

    def __init__(self, c1: int, c2: int, k: Any = 1, s: Any = 1, g: int = 1, act: Any = True) -> None:
        super().__init__()
        c_ = c2 // 2
        self.cv1 = Conv(c1, c_, k, s, None, g, act=act)
        self.cv2 = Conv(c_, c_, 5, 1, None, c_, act=act)

    def forward(self, x: Any) -> Any:
        y = self.cv1(x)
        return torch.cat((y, self.cv2(y)), 1)


# --- blocks -------------------------------------------------------------------------------------------------


class Bottleneck(_Module):
    def __init__(self, c1: int, c2: int, shortcut: bool = True, g: int = 1, e: float = 0.5) -> None:
        super().__init__()
        c_ = int(c2 * e)
        self.cv1 = Conv(c1, c_, 1, 1)
        self.cv2 = Conv(c_, c2, 3, 1, g=g)
        self.add = shortcut and c1 == c2

    def forward(self, x: Any) -> Any:
        return x + self.cv2(self.cv1(x)) if self.add else self.cv2(self.cv1(x))


class BottleneckCSP(_Module):
    """The original CSP bottleneck: two paths, plain Conv2d on the side path, BatchNorm + SiLU after the concat."""

    def __init__(
        self, c1: int, c2: int, n: int = 1, shortcut: bool = True, g: int = 1, e: float = 0.5
    ) -> None:
        super().__init__()
        c_ = int(c2 * e)
        self.cv1 = Conv(c1, c_, 1, 1)
        self.cv2 = nn.Conv2d(c1, c_, 1, 1, bias=False)
        self.cv3 = nn.Conv2d(c_, c_, 1, 1, bias=False)
        self.cv4 = Conv(2 * c_, c2, 1, 1)
        self.bn = nn.BatchNorm2d(2 * c_)
        self.act = nn.SiLU()
        self.m = nn.Sequential(*(Bottleneck(c_, c_, shortcut, g, e=1.0) for _ in range(n)))

    def forward(self, x: Any) -> Any:
        y1 = self.cv3(self.m(self.cv1(x)))
        y2 = self.cv2(x)
        return self.cv4(self.act(self.bn(torch.cat((y1, y2), 1))))


class CrossConv(_Module):
    """(1 x k) then (k x 1) convolution."""

    def __init__(
        self, c1: int, c2: int, k: int = 3, s: int = 1, g: int = 1, e: float = 1.0, shortcut: bool = False
    ) -> None:
        super().__init__()
        c_ = int(c2 * e)
        self.cv1 = Conv(c1, c_, (1, k), (1, s))
        self.cv2 = Conv(c_, c2, (k, 1), (s, 1), g=g)
        self.add = shortcut and c1 == c2

    def forward(self, x: Any) -> Any:
        return x + self.cv2(self.cv1(x)) if self.add else self.cv2(self.cv1(x))


class C3(_Module):
    """CSP bottleneck with 3 convolutions: cv3(cat(m(cv1(x)), cv2(x)))."""

    def __init__(
        self, c1: int, c2: int, n: int = 1, shortcut: bool = True, g: int = 1, e: float = 0.5
    ) -> None:
        super().__init__()
        c_ = int(c2 * e)
        self.cv1 = Conv(c1, c_, 1, 1)
        self.cv2 = Conv(c1, c_, 1, 1)
        self.cv3 = Conv(2 * c_, c2, 1)
        self.m = nn.Sequential(*(Bottleneck(c_, c_, shortcut, g, e=1.0) for _ in range(n)))

    def forward(self, x: Any) -> Any:
        return self.cv3(torch.cat((self.m(self.cv1(x)), self.cv2(x)), 1))


class C3x(C3):
    """C3 with cross convolutions."""

    def __init__(
        self, c1: int, c2: int, n: int = 1, shortcut: bool = True, g: int = 1, e: float = 0.5
    ) -> None:
        super().__init__(c1, c2, n, shortcut, g, e)
        c_ = int(c2 * e)
        self.m = nn.Sequential(*(CrossConv(c_, c_, 3, 1, g, 1.0, shortcut) for _ in range(n)))


class GhostBottleneck(_Module):
    """GhostConv -> (depth-wise stride-2 Conv) -> GhostConv, plus a shortcut (Conv'd when it downsamples)."""

    def __init__(self, c1: int, c2: int, k: int = 3, s: int = 1) -> None:
        super().__init__()
        c_ = c2 // 2
        self.conv = nn.Sequential(
            GhostConv(c1, c_, 1, 1),
            DWConv(c_, c_, k, s, act=False) if s == 2 else nn.Identity(),
            GhostConv(c_, c2, 1, 1, act=False),
        )
        self.shortcut = (
            nn.Sequential(DWConv(c1, c1, k, s, act=False), Conv(c1, c2, 1, 1, act=False))
            if s == 2
            else nn.Identity()
        )

    def forward(self, x: Any) -> Any:
        return self.conv(x) + self.shortcut(x)


class C3Ghost(C3):
    """C3 with GhostBottlenecks."""

    def __init__(
        self, c1: int, c2: int, n: int = 1, shortcut: bool = True, g: int = 1, e: float = 0.5
    ) -> None:
        super().__init__(c1, c2, n, shortcut, g, e)
        c_ = int(c2 * e)
        self.m = nn.Sequential(*(GhostBottleneck(c_, c_) for _ in range(n)))


class SPP(_Module):
    """Spatial pyramid pooling: cat of the input and its 5/9/13 max-pools."""

    def __init__(self, c1: int, c2: int, k: Sequence[int] = (5, 9, 13)) -> None:
        super().__init__()
        c_ = c1 // 2
        self.cv1 = Conv(c1, c_, 1, 1)
        self.cv2 = Conv(c_ * (len(k) + 1), c2, 1, 1)
        self.m = nn.ModuleList([nn.MaxPool2d(kernel_size=x, stride=1, padding=x // 2) for x in k])

    def forward(self, x: Any) -> Any:
        x = self.cv1(x)
        return self.cv2(torch.cat([x] + [m(x) for m in self.m], 1))


class MixConv2d(_Module):
    """Mixed depth-wise convolution (YOLOv5's models/experimental.py): the output channels are split between
    convolutions of different kernel sizes k over the same input, each grouped by gcd(c1, its channels),
    concatenated, then BatchNorm and SiLU. equal_ch: the same channel count per kernel size, else channels
    in proportion to 1/k^2, so that each kernel size gets about the same number of weights."""

    def __init__(
        self, c1: int, c2: int, k: Sequence[int] = (1, 3), s: int = 1, equal_ch: bool = True
    ) -> None:
        super().__init__()
        k = [int(x) for x in (k if isinstance(k, (list, tuple)) else (k,))]
        n = len(k)
        if equal_ch:
            # output channel j goes to kernel floor(j * n / c2): the first c2 % n kernels get one more
            idx = torch.linspace(0, n - 1e-6, c2).floor()
            split = [int((idx == g).sum()) for g in range(n)]
        else:
            inv = [1.0 / x**2 for x in k]
            split = [round(c2 * w / sum(inv)) for w in inv]
        self.m = nn.ModuleList(
            nn.Conv2d(c1, c_, kk, s, kk // 2, groups=math.gcd(c1, c_), bias=False)
            for kk, c_ in zip(k, split, strict=True)
        )
        self.bn = nn.BatchNorm2d(c2)
        self.act = nn.SiLU()

    def forward(self, x: Any) -> Any:
        return self.act(self.bn(torch.cat([m(x) for m in self.m], 1)))


class SPPF(_Module):
    """SPP with one 5x5 max-pool applied three times in a row (same result as 5/9/13, faster)."""

    def __init__(self, c1: int, c2: int, k: int = 5) -> None:
        super().__init__()
        c_ = c1 // 2
        self.cv1 = Conv(c1, c_, 1, 1)
        self.cv2 = Conv(c_ * 4, c2, 1, 1)
        self.m = nn.MaxPool2d(kernel_size=k, stride=1, padding=k // 2)

    def forward(self, x: Any) -> Any:
        x = self.cv1(x)
        y1 = self.m(x)
        y2 = self.m(y1)
        return self.cv2(torch.cat((x, y1, y2, self.m(y2)), 1))


class C3SPP(C3):
    """C3 whose inner block is an SPP."""

    def __init__(
        self,
        c1: int,
        c2: int,
        k: Sequence[int] = (5, 9, 13),
        n: int = 1,
        shortcut: bool = True,
        g: int = 1,
        e: float = 0.5,
    ) -> None:
        super().__init__(c1, c2, n, shortcut, g, e)
        c_ = int(c2 * e)
        self.m = SPP(c_, c_, k)


# --- transformer ----------------------------------------------------------------------------------------------


class TransformerLayer(_Module):
    """Self-attention + 2-layer MLP, both residual, no LayerNorm; sequences are (S, B, C)."""

    def __init__(self, c: int, num_heads: int) -> None:
        super().__init__()
        self.q = nn.Linear(c, c, bias=False)
        self.k = nn.Linear(c, c, bias=False)
        self.v = nn.Linear(c, c, bias=False)
        self.ma = nn.MultiheadAttention(embed_dim=c, num_heads=num_heads)
        self.fc1 = nn.Linear(c, c, bias=False)
        self.fc2 = nn.Linear(c, c, bias=False)

    def forward(self, x: Any) -> Any:
        x = self.ma(self.q(x), self.k(x), self.v(x))[0] + x
        return self.fc2(self.fc1(x)) + x


class TransformerBlock(_Module):
    """Optional Conv to c2, a learned position embedding (Linear of the tokens), `num_layers` TransformerLayers."""

    def __init__(self, c1: int, c2: int, num_heads: int, num_layers: int) -> None:
        super().__init__()
        self.conv = Conv(c1, c2) if c1 != c2 else None
        self.linear = nn.Linear(c2, c2)
        self.tr = nn.Sequential(*(TransformerLayer(c2, num_heads) for _ in range(num_layers)))
        self.c2 = c2

    def forward(self, x: Any) -> Any:
        if self.conv is not None:
            x = self.conv(x)
        b, _, h, w = x.shape
        p = x.flatten(2).permute(2, 0, 1)  # (h*w, b, c)
        return self.tr(p + self.linear(p)).permute(1, 2, 0).reshape(b, self.c2, h, w)


class C3TR(C3):
    """C3 whose inner block is a TransformerBlock (4 heads, n layers)."""

    def __init__(
        self, c1: int, c2: int, n: int = 1, shortcut: bool = True, g: int = 1, e: float = 0.5
    ) -> None:
        super().__init__(c1, c2, n, shortcut, g, e)
        c_ = int(c2 * e)
        self.m = TransformerBlock(c_, c_, 4, n)


# --- reshaping ----------------------------------------------------------------------------------------------


class Contract(_Module):
    """Space-to-depth by `gain`: (b, c, h, w) -> (b, c*g*g, h/g, w/g)."""

    def __init__(self, gain: int = 2) -> None:
        super().__init__()
        self.gain = gain

    def forward(self, x: Any) -> Any:
        b, c, h, w = x.shape
        s = self.gain
        x = x.view(b, c, h // s, s, w // s, s).permute(0, 3, 5, 1, 2, 4).contiguous()
        return x.view(b, c * s * s, h // s, w // s)


class Expand(_Module):
    """Depth-to-space by `gain`: (b, c, h, w) -> (b, c/(g*g), h*g, w*g)."""

    def __init__(self, gain: int = 2) -> None:
        super().__init__()
        self.gain = gain

    def forward(self, x: Any) -> Any:
        b, c, h, w = x.shape
        s = self.gain
        x = x.view(b, s, s, c // s**2, h, w).permute(0, 3, 4, 1, 5, 2).contiguous()
        return x.view(b, c // s**2, h * s, w * s)


class Concat(_Module):
    def __init__(self, dimension: int = 1) -> None:
        super().__init__()
        self.d = dimension

    def forward(self, x: Any) -> Any:
        return torch.cat(x, self.d)


# --- heads and the model ----------------------------------------------------------------------------------------


class Detect(_Module):
    """Anchor-based head. Eval mode returns [B, na*sum(ny*nx), 5+nc]: sigmoid, then
    xy = (2*s + grid - 0.5) * stride, wh = (2*s)^2 * anchor (pixels); training mode returns the raw maps.

    `anchors` (nl, na, 2) are in grid units (pixels / stride), as YOLOv5 stores them after building.
    """

    def __init__(
        self,
        nc: int = 80,
        anchors: Sequence[Sequence[float]] = (),
        ch: Sequence[int] = (),
        inplace: bool = True,
    ) -> None:
        super().__init__()
        self.nc = nc
        self.no = nc + 5
        self.nl = len(anchors)
        self.na = len(anchors[0]) // 2
        self.register_buffer("anchors", torch.tensor(anchors).float().view(self.nl, -1, 2))
        self.m = nn.ModuleList(nn.Conv2d(x, self.no * self.na, 1) for x in ch)
        self.inplace = inplace
        self.stride = torch.ones(self.nl)

    def _decode(self, xs: list[Any], keep: int) -> Any:
        """Shared by Detect and Segment: the first `keep` values of each row are returned (5 + nc)."""
        xs = list(xs)
        z = []
        for i in range(self.nl):
            x = self.m[i](xs[i])
            bs, _, ny, nx = x.shape
            x = x.view(bs, self.na, self.no, ny, nx).permute(0, 1, 3, 4, 2).contiguous()
            xs[i] = x
            if self.training:
                continue
            grid, anchor_grid = self._make_grid(nx, ny, i)
            # the split/cat form (not in-place slice writes) is what YOLOv5's export traces
            rows = x if keep == self.no else x[..., :keep]  # Segment: drop the mask coefficients
            xy, wh, rest = rows.sigmoid().split((2, 2, keep - 4), 4)
            xy = (xy * 2 + grid) * self.stride[i]
            wh = (wh * 2) ** 2 * anchor_grid
            y = torch.cat((xy, wh, rest), 4)
            z.append(y.view(bs, self.na * nx * ny, keep))
        return xs if self.training else torch.cat(z, 1)

    def forward(self, xs: list[Any]) -> Any:
        return self._decode(xs, self.no)

    def _make_grid(self, nx: int, ny: int, i: int) -> tuple[Any, Any]:
        a = self.anchors[i]
        shape = 1, self.na, ny, nx, 2
        y = torch.arange(ny, device=a.device, dtype=a.dtype)
        x = torch.arange(nx, device=a.device, dtype=a.dtype)
        yv, xv = torch.meshgrid(y, x, indexing="ij")
        grid = torch.stack((xv, yv), 2).expand(shape) - 0.5
        anchor_grid = (a * self.stride[i]).view((1, self.na, 1, 1, 2)).expand(shape)
        return grid, anchor_grid


class Proto(_Module):
    """Mask prototypes of a segmentation model (kept so checkpoints load; not exported)."""

    def __init__(self, c1: int, c_: int = 256, c2: int = 32) -> None:
        super().__init__()
        self.cv1 = Conv(c1, c_, k=3)
        self.upsample = nn.Upsample(scale_factor=2, mode="nearest")
        self.cv2 = Conv(c_, c_, k=3)
        self.cv3 = Conv(c_, c2)

    def forward(self, x: Any) -> Any:
        return self.cv3(self.cv2(self.upsample(self.cv1(x))))


class Segment(Detect):
    """Segmentation head: rows are 5 + nc + nm (mask coefficients). Eval mode here returns the detection part
    only, [B, N, 5+nc]; the prototype branch is not run."""

    def __init__(
        self,
        nc: int = 80,
        anchors: Sequence[Sequence[float]] = (),
        nm: int = 32,
        npr: int = 256,
        ch: Sequence[int] = (),
        inplace: bool = True,
    ) -> None:
        super().__init__(nc, anchors, ch, inplace)
        self.nm = nm
        self.npr = npr
        self.no = 5 + nc + nm
        self.m = nn.ModuleList(nn.Conv2d(x, self.no * self.na, 1) for x in ch)
        self.proto = Proto(ch[0], npr, nm)

    def forward(self, xs: list[Any]) -> Any:
        return self._decode(xs, 5 + self.nc)


class DetectionModel(_Module):
    """`model` is an nn.Sequential whose layers carry `f` (input layer index or list, -1 = previous),
    `i` (own index); `save` lists the layer outputs later layers read. Also the class of YOLOv5's
    SegmentationModel (the same forward)."""

    def __init__(self, cfg: Mapping[str, Any], ch: int = 3, stride: Sequence[float] | None = None) -> None:
        super().__init__()
        self.yaml = dict(cfg)
        self.model, self.save = parse_model(self.yaml, [ch])
        self.names = [str(i) for i in range(int(self.yaml["nc"]))]
        self.inplace = False
        for m in self.modules():
            if isinstance(m, nn.BatchNorm2d):
                # YOLOv5 trains with these; eps is not in a state_dict
                m.eps, m.momentum = 1e-3, 0.03
        det = self.model[-1]
        if stride is None:
            s = 256
            with torch.no_grad():
                self.eval()
                det.training = True  # raw maps: only their spatial size matters here
                outs = self.forward(torch.zeros(1, ch, s, s))
                det.training = False
            stride = [s / o.shape[-3] for o in outs]
            det.anchors /= torch.tensor(stride).view(-1, 1, 1)
        det.stride = torch.tensor([float(v) for v in stride])
        self.stride = det.stride

    def forward(self, x: Any) -> Any:
        y: list[Any] = []
        for m in self.model:
            if m.f != -1:
                x = y[m.f] if isinstance(m.f, int) else [x if j == -1 else y[j] for j in m.f]
            x = m(x)
            y.append(x if m.i in self.save else None)
        return x


def fuse_conv_and_bn(conv: Any, bn: Any) -> Any:
    """Fold BatchNorm into the preceding Conv2d (w' = w * g / sqrt(var + eps), b' = beta - g * mean / sqrt(...))."""
    fused: Any = nn.Conv2d(
        conv.in_channels,
        conv.out_channels,
        kernel_size=conv.kernel_size,
        stride=conv.stride,
        padding=conv.padding,
        dilation=conv.dilation,
        groups=conv.groups,
        bias=True,
    ).requires_grad_(False)
    w_conv = conv.weight.clone().view(conv.out_channels, -1)
    w_bn = torch.diag(bn.weight.div(torch.sqrt(bn.eps + bn.running_var)))
    fused.weight.copy_(torch.mm(w_bn, w_conv).view(fused.weight.shape))
    b_conv = torch.zeros(conv.weight.size(0)) if conv.bias is None else conv.bias
    b_bn = bn.bias - bn.weight.mul(bn.running_mean).div(torch.sqrt(bn.running_var + bn.eps))
    fused.bias.copy_(torch.mm(w_bn, b_conv.reshape(-1, 1)).reshape(-1) + b_bn)
    return fused


# --- building from a yaml ---------------------------------------------------------------------------------------

#: yaml module name -> class (nn.* names resolved in `_module_types`)
MODULES: dict[str, Any] = {
    c.__name__: c
    for c in (
        Conv,
        DWConv,
        DWConvTranspose2d,
        Focus,
        GhostConv,
        Bottleneck,
        BottleneckCSP,
        CrossConv,
        C3,
        C3x,
        C3Ghost,
        C3SPP,
        C3TR,
        GhostBottleneck,
        SPP,
        SPPF,
        MixConv2d,
        Contract,
        Expand,
        Concat,
        Detect,
        Segment,
        TransformerLayer,
        TransformerBlock,
        Proto,
    )
}
#: modules whose first yaml argument is the output channel count (scaled by width_multiple)
_CHANNEL_FIRST = (
    "Conv",
    "GhostConv",
    "Bottleneck",
    "GhostBottleneck",
    "SPP",
    "SPPF",
    "DWConv",
    "Focus",
    "CrossConv",
    "BottleneckCSP",
    "C3",
    "C3TR",
    "C3SPP",
    "C3Ghost",
    "nn.ConvTranspose2d",
    "DWConvTranspose2d",
    "C3x",
    "MixConv2d",
)
#: modules whose yaml repeat count becomes their own `n` argument
_REPEAT_INSIDE = ("BottleneckCSP", "C3", "C3TR", "C3Ghost", "C3x")
_TORCH_LAYERS = ("Upsample", "MaxPool2d", "ZeroPad2d", "ConvTranspose2d", "BatchNorm2d", "Identity")
_ACTIVATION = re.compile(r"^\s*nn\.(SiLU|ReLU|LeakyReLU|Hardswish|Identity|ReLU6)\(\s*([0-9.eE+-]*)\s*\)\s*$")


def _module_types() -> dict[str, Any]:
    types = dict(MODULES)
    for name in _TORCH_LAYERS:
        types[f"nn.{name}"] = getattr(nn, name)
    types["Upsample"] = nn.Upsample
    return types


def parse_activation(text: str) -> Any:
    """A yaml `activation:` value such as "nn.LeakyReLU(0.1)" -> the module (only plain torch activations)."""
    m = _ACTIVATION.match(str(text))
    if m is None:
        raise ModelError(
            f"YOLOv5 yaml activation {text!r} is not one edgedet builds (nn.SiLU(), nn.ReLU(), "
            "nn.LeakyReLU(slope), nn.Hardswish(), nn.ReLU6()); load the pickled checkpoint (.pt) instead"
        )
    cls = getattr(nn, m.group(1))
    return cls(float(m.group(2))) if m.group(2) else cls()


def parse_model(d: Mapping[str, Any], ch: list[int]) -> tuple[Any, list[int]]:
    """Build the layer list from a YOLOv5 model yaml (as a dict), following YOLOv5's layer-list rules (depth and
    width multiples, channel bookkeeping, `f` indices), resolving names through `MODULES` and torch.nn only."""
    require("torch", "building a YOLOv5 model")
    types = _module_types()
    anchors, nc = d["anchors"], int(d["nc"])
    gd, gw = float(d["depth_multiple"]), float(d["width_multiple"])
    na = (len(anchors[0]) // 2) if isinstance(anchors, list) else int(anchors)
    no = na * (nc + 5)
    consts: dict[str, Any] = {"None": None, "nc": nc, "anchors": anchors, "True": True, "False": False}
    layers: list[Any] = []
    save: list[int] = []
    c2 = ch[-1]
    old_act = Conv.default_act
    Conv.default_act = parse_activation(d["activation"]) if d.get("activation") else None
    try:
        for i, (f, n, name, raw_args) in enumerate(list(d["backbone"]) + list(d["head"])):
            name = str(name)
            m = types.get(name)
            if m is None:
                raise ModelError(
                    f"YOLOv5 layer {i} is a {name!r}, which edgedet's YOLOv5 loader does not implement "
                    f"(supported: {', '.join(sorted(types))})"
                )
            args = [consts.get(a, a) if isinstance(a, str) else a for a in raw_args]
            n = max(round(n * gd), 1) if n > 1 else n
            if name in _CHANNEL_FIRST:
                c1, c2 = ch[f], args[0]
                if c2 != no:
                    c2 = make_divisible(c2 * gw, 8)
                args = [c1, c2, *args[1:]]
                if name in _REPEAT_INSIDE:
                    args.insert(2, n)
                    n = 1
            elif name == "nn.BatchNorm2d":
                args = [ch[f]]
            elif m is Concat:
                c2 = sum(ch[x] for x in f)
            elif m in (Detect, Segment):
                args.append([ch[x] for x in f])
                if isinstance(args[1], int):
                    args[1] = [list(range(args[1] * 2))] * len(f)
                if m is Segment:
                    args[3] = make_divisible(args[3] * gw, 8)
            elif m is Contract:
                c2 = ch[f] * args[0] ** 2
            elif m is Expand:
                c2 = ch[f] // args[0] ** 2
            else:
                c2 = ch[f]
            m_: Any = nn.Sequential(*(m(*args) for _ in range(n))) if n > 1 else m(*args)
            m_.i, m_.f, m_.type = i, f, name
            m_.np = sum(x.numel() for x in m_.parameters())
            save.extend(x % i for x in ([f] if isinstance(f, int) else f) if x != -1)
            layers.append(m_)
            if i == 0:
                ch = []
            ch.append(c2)
    finally:
        Conv.default_act = old_act
    return nn.Sequential(*layers), sorted(save)


def yolov5_classes() -> SimpleNamespace:
    """The classes as one namespace (kept for callers written against the earlier API): every `MODULES`
    entry plus DetectionModel (alias Model), fuse_conv_and_bn and parse_model. Needs torch."""
    require("torch", "loading a YOLOv5 checkpoint")
    return SimpleNamespace(
        **MODULES,
        DetectionModel=DetectionModel,
        Model=DetectionModel,
        fuse_conv_and_bn=fuse_conv_and_bn,
        parse_model=parse_model,
    )


def prepare_for_export(model: Any) -> Any:
    """float32, eval, Conv+BN fused, patched for the running torch; returns the same model."""
    require("torch", "loading a YOLOv5 checkpoint")
    model = model.float().eval()
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, Conv) and m._modules.get("bn") is not None:
                m.conv = fuse_conv_and_bn(m.conv, m.bn)
                del m.bn
            elif isinstance(m, nn.Upsample) and not hasattr(m, "recompute_scale_factor"):
                m.recompute_scale_factor = None  # pickled by an older torch that lacked the attribute
            elif isinstance(m, nn.MultiheadAttention) and not hasattr(m, "batch_first"):
                m.batch_first = False  # pickled before torch 1.9 added it
            elif isinstance(m, Detect):
                m.stride = torch.as_tensor(m.stride, dtype=torch.float32)
    for p in model.parameters():
        p.requires_grad_(False)
    return model
