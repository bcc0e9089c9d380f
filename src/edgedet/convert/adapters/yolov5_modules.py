"""edgedet's own implementation of the YOLOv5 (v6+) modules, so a YOLOv5 checkpoint loads without YOLOv5 code.

The attribute names (conv/bn/act, cv1..cv3, m, f/i/type/np, nc/no/nl/na/anchors/stride) are the YOLOv5
repo's, because a pickled checkpoint restores instances by filling `__dict__` with exactly those names
(`__init__` is never called on unpickling). The maths follows the repo's `export.py` path: Conv+BN fused in
float32 and `Detect` in export mode, whose output is one tensor [B, N, 5+nc] with sigmoid applied and boxes
decoded to cx, cy, w, h in input pixels.

torch is optional for edgedet, so the classes are built on first use by `yolov5_classes()` rather than at
import time.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping, Sequence
from types import SimpleNamespace
from typing import Any

from edgedet._optional import require
from edgedet.errors import ModelError


def autopad(k: Any, p: Any = None, d: int = 1) -> Any:
    """'same' padding for kernel k (int or tuple) and dilation d, as YOLOv5 computes it."""
    if d > 1:
        k = d * (k - 1) + 1 if isinstance(k, int) else [d * (x - 1) + 1 for x in k]
    if p is None:
        p = k // 2 if isinstance(k, int) else [x // 2 for x in k]
    return p


def make_divisible(x: float, divisor: int) -> int:
    return int(math.ceil(x / divisor) * divisor)


@functools.lru_cache(maxsize=1)
def yolov5_classes() -> SimpleNamespace:
    """The module classes, built once: Conv, Bottleneck, C3, C3x, CrossConv, SPP, SPPF, Focus, Concat, Detect,
    DetectionModel (alias Model), plus `fuse_conv_and_bn`."""
    torch = require("torch", "loading a YOLOv5 checkpoint")
    nn = torch.nn
    Module: Any = nn.Module  # typed Any: torch is optional, so mypy may not see its stubs

    class Conv(Module):
        """Conv2d (no bias) + BatchNorm2d + SiLU; after `fuse()` Conv2d (with bias) + SiLU."""

        def __init__(
            self,
            c1: int,
            c2: int,
            k: Any = 1,
            s: Any = 1,
            p: Any = None,
            g: int = 1,
            d: int = 1,
            act: Any = True,
        ) -> None:
            super().__init__()
            self.conv = nn.Conv2d(c1, c2, k, s, autopad(k, p, d), groups=g, dilation=d, bias=False)
            self.bn = nn.BatchNorm2d(c2)
            self.act = nn.SiLU() if act is True else act if isinstance(act, nn.Module) else nn.Identity()

        def forward(self, x: Any) -> Any:
            bn = self._modules.get("bn")  # gone after fusion
            x = self.conv(x)
            if bn is not None:
                x = bn(x)
            return self.act(x)

    class Focus(Module):
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

    class Bottleneck(Module):
        def __init__(self, c1: int, c2: int, shortcut: bool = True, g: int = 1, e: float = 0.5) -> None:
            super().__init__()
            c_ = int(c2 * e)
            self.cv1 = Conv(c1, c_, 1, 1)
            self.cv2 = Conv(c_, c2, 3, 1, g=g)
            self.add = shortcut and c1 == c2

        def forward(self, x: Any) -> Any:
            return x + self.cv2(self.cv1(x)) if self.add else self.cv2(self.cv1(x))

    class CrossConv(Module):
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

    class C3(Module):
        """CSP bottleneck with 3 convolutions."""

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

    class SPP(Module):
        def __init__(self, c1: int, c2: int, k: Sequence[int] = (5, 9, 13)) -> None:
            super().__init__()
            c_ = c1 // 2
            self.cv1 = Conv(c1, c_, 1, 1)
            self.cv2 = Conv(c_ * (len(k) + 1), c2, 1, 1)
            self.m = nn.ModuleList([nn.MaxPool2d(kernel_size=x, stride=1, padding=x // 2) for x in k])

        def forward(self, x: Any) -> Any:
            x = self.cv1(x)
            return self.cv2(torch.cat([x] + [m(x) for m in self.m], 1))

    class SPPF(Module):
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

    class Concat(Module):
        def __init__(self, dimension: int = 1) -> None:
            super().__init__()
            self.d = dimension

        def forward(self, x: Any) -> Any:
            return torch.cat(x, self.d)

    class Detect(Module):
        """Anchor-based head. Eval mode returns [B, na*sum(ny*nx), 5+nc]: sigmoid, then
        xy = (2*s + grid - 0.5) * stride, wh = (2*s)^2 * anchor (pixels); training mode returns the raw maps.

        `anchors` (nl, na, 2) are in grid units (pixels / stride), as YOLOv5 stores them after building.
        """

        def __init__(
            self, nc: int = 80, anchors: Sequence[Sequence[float]] = (), ch: Sequence[int] = ()
        ) -> None:
            super().__init__()
            self.nc = nc
            self.no = nc + 5
            self.nl = len(anchors)
            self.na = len(anchors[0]) // 2
            self.register_buffer("anchors", torch.tensor(anchors).float().view(self.nl, -1, 2))
            self.m = nn.ModuleList(nn.Conv2d(x, self.no * self.na, 1) for x in ch)
            self.stride = torch.ones(self.nl)

        def forward(self, xs: list[Any]) -> Any:
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
                xy, wh, conf = x.sigmoid().split((2, 2, self.nc + 1), 4)
                xy = (xy * 2 + grid) * self.stride[i]
                wh = (wh * 2) ** 2 * anchor_grid
                y = torch.cat((xy, wh, conf), 4)
                z.append(y.view(bs, self.na * nx * ny, self.no))
            return xs if self.training else torch.cat(z, 1)

        def _make_grid(self, nx: int, ny: int, i: int) -> tuple[Any, Any]:
            a = self.anchors[i]
            shape = 1, self.na, ny, nx, 2
            y, x = (
                torch.arange(ny, device=a.device, dtype=a.dtype),
                torch.arange(nx, device=a.device, dtype=a.dtype),
            )
            yv, xv = torch.meshgrid(y, x, indexing="ij")
            grid = torch.stack((xv, yv), 2).expand(shape) - 0.5
            anchor_grid = (a * self.stride[i]).view((1, self.na, 1, 1, 2)).expand(shape)
            return grid, anchor_grid

    class DetectionModel(Module):
        """`model` is an nn.Sequential whose layers carry `f` (input layer index or list, -1 = previous),
        `i` (own index); `save` lists the layer outputs later layers read."""

        def __init__(
            self, cfg: Mapping[str, Any], ch: int = 3, stride: Sequence[float] | None = None
        ) -> None:
            super().__init__()
            self.yaml = dict(cfg)
            self.model, self.save = parse_model(self.yaml, [ch])
            self.names = [str(i) for i in range(int(self.yaml["nc"]))]
            self.inplace = False
            for m in self.modules():
                if isinstance(m, nn.BatchNorm2d):
                    # YOLOv5's initialize_weights() trains with these; eps is not in a state_dict
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
        """Fold BatchNorm into the preceding Conv2d, with YOLOv5's formula (so exports agree numerically)."""
        fused = nn.Conv2d(
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

    module_types: dict[str, Any] = {
        "Conv": Conv,
        "Focus": Focus,
        "Bottleneck": Bottleneck,
        "CrossConv": CrossConv,
        "C3": C3,
        "C3x": C3x,
        "SPP": SPP,
        "SPPF": SPPF,
        "Concat": Concat,
        "Detect": Detect,
        "nn.Upsample": nn.Upsample,
        "Upsample": nn.Upsample,
    }

    def parse_model(d: Mapping[str, Any], ch: list[int]) -> tuple[Any, list[int]]:
        """Build the layer list from a YOLOv5 model yaml (as a dict), the way YOLOv5's `parse_model` does,
        but resolving names through `module_types` instead of `eval`."""
        if d.get("activation"):
            raise ModelError(
                f"this YOLOv5 model uses activation {d['activation']!r}; edgedet's loader supports the default "
                "SiLU only: load the pickled checkpoint (.pt) instead of the state-dict file"
            )
        anchors, nc = d["anchors"], int(d["nc"])
        gd, gw = float(d["depth_multiple"]), float(d["width_multiple"])
        na = (len(anchors[0]) // 2) if isinstance(anchors, list) else int(anchors)
        no = na * (nc + 5)
        consts = {"None": None, "nc": nc, "anchors": anchors, "True": True, "False": False}
        layers: list[Any] = []
        save: list[int] = []
        c2 = ch[-1]
        for i, (f, n, name, raw_args) in enumerate(list(d["backbone"]) + list(d["head"])):
            m = module_types.get(str(name))
            if m is None:
                raise ModelError(
                    f"YOLOv5 layer {i} is a {name!r}, which edgedet's loader does not implement "
                    f"(supported: {', '.join(sorted(module_types))}); export it with the YOLOv5 repo instead"
                )
            args = [consts.get(a, a) if isinstance(a, str) else a for a in raw_args]
            n = max(round(n * gd), 1) if n > 1 else n
            if m in (Conv, Bottleneck, SPP, SPPF, Focus, CrossConv, C3, C3x):
                c1, c2 = ch[f], args[0]
                if c2 != no:
                    c2 = make_divisible(c2 * gw, 8)
                args = [c1, c2, *args[1:]]
                if m in (C3, C3x):
                    args.insert(2, n)
                    n = 1
            elif m is Concat:
                c2 = sum(ch[x] for x in f)
            elif m is Detect:
                args.append([ch[x] for x in f])
                if isinstance(args[1], int):
                    args[1] = [list(range(args[1] * 2))] * len(f)
            else:
                c2 = ch[f]
            m_ = nn.Sequential(*(m(*args) for _ in range(n))) if n > 1 else m(*args)
            m_.i, m_.f, m_.type = i, f, str(name)
            m_.np = sum(x.numel() for x in m_.parameters())
            save.extend(x % i for x in ([f] if isinstance(f, int) else f) if x != -1)
            layers.append(m_)
            if i == 0:
                ch = []
            ch.append(c2)
        return nn.Sequential(*layers), sorted(save)

    return SimpleNamespace(
        Conv=Conv,
        Focus=Focus,
        Bottleneck=Bottleneck,
        CrossConv=CrossConv,
        C3=C3,
        C3x=C3x,
        SPP=SPP,
        SPPF=SPPF,
        Concat=Concat,
        Detect=Detect,
        DetectionModel=DetectionModel,
        Model=DetectionModel,
        fuse_conv_and_bn=fuse_conv_and_bn,
        parse_model=parse_model,
    )


def prepare_for_export(model: Any) -> Any:
    """float32, eval, Conv+BN fused, patched for the running torch; returns the same model."""
    torch = require("torch", "loading a YOLOv5 checkpoint")
    ns = yolov5_classes()
    model = model.float().eval()
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, ns.Conv) and m._modules.get("bn") is not None:
                m.conv = ns.fuse_conv_and_bn(m.conv, m.bn)
                del m.bn
            elif isinstance(m, torch.nn.Upsample) and not hasattr(m, "recompute_scale_factor"):
                m.recompute_scale_factor = None  # pickled by an older torch that lacked the attribute
            elif isinstance(m, ns.Detect):
                m.stride = torch.as_tensor(m.stride, dtype=torch.float32)
    for p in model.parameters():
        p.requires_grad_(False)
    return model
