"""edgedet's own implementation of the layers that Ultralytics detection checkpoints are made of.

An Ultralytics `.pt` file is a pickled module tree. Unpickling restores each layer by filling its `__dict__`
(`__init__` is never called), so what edgedet must supply for every class the pickle names is a `forward` that
computes the layer from the attributes Ultralytics stores (cv1/cv2/m/c/add/...; the names are part of the file
format). The classes here therefore have no constructors: they exist only to be unpickled into, then fused and
exported. The maths follows the published architectures (YOLOv8 C2f/DFL head, YOLOv9 GELAN, YOLOv10 PSA/CIB
and one-to-one head, YOLO11 C3k2/C2PSA, YOLO12 area attention, YOLO26 end-to-end head).

Covered: every module that the detection yamls of ultralytics 8.4.x (cfg/models: v3, v5, v6, v8, v9, v10, 11,
12, 26) name, plus the sub-layers those build. Only `Detect`/`v10Detect` heads: segmentation, pose, OBB,
classification and RT-DETR heads are refused before unpickling (see `ultralytics_pickle`).

torch is optional for edgedet, so the classes are built on first use by `ultralytics_classes()`.
"""

from __future__ import annotations

import functools
from typing import Any

from edgedet._optional import require

# Ultralytics family names as the loader reports them, and the detection yamls of 8.4.x behind each.
FAMILIES = ("YOLOv3u", "YOLOv5u", "YOLOv6", "YOLOv8", "YOLOv9", "YOLOv10", "YOLO11", "YOLO12", "YOLO26")


@functools.lru_cache(maxsize=1)
def ultralytics_classes() -> dict[str, Any]:
    """Class name (as Ultralytics spells it) -> edgedet class. Built once; needs torch."""
    torch = require("torch", "loading an Ultralytics checkpoint")
    nn = torch.nn
    F = nn.functional
    Module: Any = nn.Module  # typed Any: torch is optional, so mypy may not see its stubs

    class Conv(Module):
        """conv -> bn (absent once fused) -> act. DWConv is the same layer with groups set on the conv."""

        def forward(self, x: Any) -> Any:
            x = self.conv(x)
            bn = self._modules.get("bn")
            return self.act(x if bn is None else bn(x))

    class RepConv(Module):
        """Re-parameterisable 3x3: act(3x3 conv-bn + 1x1 conv-bn [+ bn identity]); one `conv` once fused."""

        def forward(self, x: Any) -> Any:
            fused = self._modules.get("conv")
            if fused is not None:
                return self.act(fused(x))
            y = self.conv1(x) + self.conv2(x)
            ident = self._modules.get("bn")
            return self.act(y if ident is None else y + ident(x))

    class GhostConv(Module):
        """Half the channels from a conv, the other half from a cheap 5x5 depthwise conv of those."""

        def forward(self, x: Any) -> Any:
            y = self.cv1(x)
            return torch.cat((y, self.cv2(y)), 1)

    class Concat(Module):
        def forward(self, xs: list[Any]) -> Any:
            return torch.cat(list(xs), self.d)

    class Bottleneck(Module):
        """Two convs with a residual when `add` (YOLOv5/v8 bottleneck; RepBottleneck has a RepConv cv1)."""

        def forward(self, x: Any) -> Any:
            y = self.cv2(self.cv1(x))
            return x + y if self.add else y

    class GhostBottleneck(Module):
        def forward(self, x: Any) -> Any:
            return self.conv(x) + self.shortcut(x)

    class C3(Module):
        """CSP with 3 convs: cv3(cat(m(cv1 x), cv2 x)). Also C3k, C3Ghost, RepCSP (they differ only in `m`)."""

        def forward(self, x: Any) -> Any:
            return self.cv3(torch.cat((self.m(self.cv1(x)), self.cv2(x)), 1))

    class C2(Module):
        """cv1 split in two halves; the first through `m`; cv2 over both."""

        def forward(self, x: Any) -> Any:
            a, b = self.cv1(x).chunk(2, 1)
            return self.cv2(torch.cat((self.m(a), b), 1))

    class C2f(Module):
        """cv1 split in two halves, each block of `m` reads the previous output, cv2 over all of them.
        Also C3k2 and C2fCIB (other blocks in `m`)."""

        def forward(self, x: Any) -> Any:
            ys = list(self.cv1(x).chunk(2, 1))
            for block in self.m:
                ys.append(block(ys[-1]))
            return self.cv2(torch.cat(ys, 1))

    class SPP(Module):
        def forward(self, x: Any) -> Any:
            x = self.cv1(x)
            return self.cv2(torch.cat([x, *(pool(x) for pool in self.m)], 1))

    class SPPF(Module):
        """One k x k max-pool applied n times in a row (n = 3 unless stored), outputs stacked; optional residual."""

        def forward(self, x: Any) -> Any:
            ys = [self.cv1(x)]
            for _ in range(getattr(self, "n", 3)):
                ys.append(self.m(ys[-1]))
            y = self.cv2(torch.cat(ys, 1))
            return x + y if getattr(self, "add", False) else y

    class RepNCSPELAN4(Module):
        """GELAN block (YOLOv9): cv1 split, two chained stages each reading the last output, cv4 over all.
        ELAN1 is the same data flow with plain convs as stages."""

        def forward(self, x: Any) -> Any:
            ys = list(self.cv1(x).chunk(2, 1))
            ys.append(self.cv2(ys[-1]))
            ys.append(self.cv3(ys[-1]))
            return self.cv4(torch.cat(ys, 1))

    class SPPELAN(Module):
        def forward(self, x: Any) -> Any:
            ys = [self.cv1(x)]
            for pool in (self.cv2, self.cv3, self.cv4):
                ys.append(pool(ys[-1]))
            return self.cv5(torch.cat(ys, 1))

    class AConv(Module):
        """2x2 average (stride 1, count_include_pad) then a strided conv (YOLOv9 downsampling)."""

        def forward(self, x: Any) -> Any:
            return self.cv1(F.avg_pool2d(x, 2, 1, 0, False, True))

    class ADown(Module):
        """As AConv, then half the channels through a strided 3x3 conv, half through max-pool + 1x1 conv."""

        def forward(self, x: Any) -> Any:
            a, b = F.avg_pool2d(x, 2, 1, 0, False, True).chunk(2, 1)
            return torch.cat((self.cv1(a), self.cv2(F.max_pool2d(b, 3, 2, 1))), 1)

    class CBLinear(Module):
        def forward(self, x: Any) -> Any:
            return self.conv(x).split(list(self.c2s), dim=1)

    class CBFuse(Module):
        """Sum of the last input and, resized (nearest) to its size, the chosen split of each other input."""

        def forward(self, xs: list[Any]) -> Any:
            size = xs[-1].shape[2:]
            parts = [F.interpolate(x[self.idx[i]], size=size, mode="nearest") for i, x in enumerate(xs[:-1])]
            return torch.sum(torch.stack([*parts, xs[-1]]), dim=0)

    class SCDown(Module):
        """Pointwise conv then strided depthwise conv (YOLOv10)."""

        def forward(self, x: Any) -> Any:
            return self.cv2(self.cv1(x))

    class RepVGGDW(Module):
        """act(7x7 dw conv-bn + 3x3 dw conv-bn); one 7x7 `conv` once fused (no conv1)."""

        def forward(self, x: Any) -> Any:
            conv1 = self._modules.get("conv1")
            y = self.conv(x)
            return self.act(y if conv1 is None else y + conv1(x))

    class CIB(Module):
        def forward(self, x: Any) -> Any:
            y = self.cv1(x)
            return x + y if self.add else y

    class Attention(Module):
        """Multi-head self-attention over all positions, q/k/v from one 1x1 conv, plus a depthwise positional
        conv of v (YOLOv10 PSA, YOLO11 C2PSA)."""

        def forward(self, x: Any) -> Any:
            b, c, h, w = x.shape
            n = h * w
            q, k, v = (
                self.qkv(x)
                .view(b, self.num_heads, self.key_dim * 2 + self.head_dim, n)
                .split([self.key_dim, self.key_dim, self.head_dim], dim=2)
            )
            attn = ((q * self.scale).transpose(-2, -1) @ k).softmax(dim=-1)
            y = (v @ attn.transpose(-2, -1)).view(b, c, h, w) + self.pe(v.reshape(b, c, h, w))
            return self.proj(y)

    class PSABlock(Module):
        def forward(self, x: Any) -> Any:
            if self.add:
                x = x + self.attn(x)
                return x + self.ffn(x)
            return self.ffn(self.attn(x))

    class PSA(Module):
        def forward(self, x: Any) -> Any:
            a, b = self.cv1(x).split((self.c, self.c), dim=1)
            b = b + self.attn(b)
            b = b + self.ffn(b)
            return self.cv2(torch.cat((a, b), 1))

    class C2PSA(Module):
        def forward(self, x: Any) -> Any:
            a, b = self.cv1(x).split((self.c, self.c), dim=1)
            return self.cv2(torch.cat((a, self.m(b)), 1))

    class AAttn(Module):
        """Area attention (YOLO12): positions are cut into `area` horizontal strips, attention runs inside each
        strip; plus a 7x7 depthwise positional conv of v."""

        def forward(self, x: Any) -> Any:
            b, _, h, w = x.shape
            n = h * w
            dim = getattr(self, "all_head_dim", self.head_dim * self.num_heads)
            qkv = self.qkv(x).flatten(2).transpose(1, 2)  # (b, n, 3*dim)
            bb, nn_ = b, n
            if self.area > 1:
                bb, nn_ = b * self.area, n // self.area
                qkv = qkv.reshape(bb, nn_, dim * 3)
            q, k, v = (
                qkv.view(bb, nn_, self.num_heads, self.head_dim * 3)
                .permute(0, 2, 3, 1)
                .split([self.head_dim, self.head_dim, self.head_dim], dim=2)
            )  # each (bb, heads, head_dim, nn_)
            attn = ((q * self.head_dim**-0.5).transpose(-2, -1) @ k).softmax(dim=-1)
            y = (v @ attn.transpose(-2, -1)).permute(0, 3, 1, 2)  # (bb, nn_, heads, head_dim)
            v = v.permute(0, 3, 1, 2)
            y = y.reshape(b, h, w, dim).permute(0, 3, 1, 2).contiguous()
            v = v.reshape(b, h, w, dim).permute(0, 3, 1, 2).contiguous()
            return self.proj(y + self.pe(v))

    class ABlock(Module):
        def forward(self, x: Any) -> Any:
            x = x + self.attn(x)
            return x + self.mlp(x)

    class A2C2f(Module):
        """R-ELAN (YOLO12): cv1, chained blocks each reading the last output, cv2 over all; optional scaled
        residual (`gamma`)."""

        def forward(self, x: Any) -> Any:
            ys = [self.cv1(x)]
            for block in self.m:
                ys.append(block(ys[-1]))
            y = self.cv2(torch.cat(ys, 1))
            gamma = getattr(self, "gamma", None)
            return y if gamma is None else x + gamma.view(1, -1, 1, 1) * y

    class DFL(Module):
        """Distribution focal loss integral: each box side is a softmax over `c1` bins, read out as its
        expectation through a fixed 1x1 conv whose weights are 0..c1-1."""

        def forward(self, x: Any) -> Any:
            b, _, a = x.shape
            p = x.view(b, 4, self.c1, a).transpose(2, 1).softmax(1)
            return self.conv(p).view(b, 4, a)

    class Detect(Module):
        """Anchor-free decoupled head (YOLOv8 onwards; YOLOv10/26 add a one-to-one branch).

        Export-mode output, chosen by `edgedet_end2end` (set by the loader):
        - False: the one-to-many branch, [B, 4+nc, A]: cx, cy, w, h in input pixels, sigmoid class scores
          (needs NMS; edgedet's "yolov8" format).
        - True: the one-to-one branch, top `max_det` (anchor, class) pairs, [B, K, 6]: x1, y1, x2, y2, score,
          class (no NMS; edgedet's "end2end" format).
        """

        def forward(self, xs: list[Any]) -> Any:
            e2e = bool(getattr(self, "edgedet_end2end", False))
            box_head = self._modules["one2one_cv2" if e2e else "cv2"]
            cls_head = self._modules["one2one_cv3" if e2e else "cv3"]
            bs = xs[0].shape[0]
            boxes = torch.cat(
                [box_head[i](x).view(bs, 4 * self.reg_max, -1) for i, x in enumerate(xs)], dim=-1
            )
            scores = torch.cat([cls_head[i](x).view(bs, self.nc, -1) for i, x in enumerate(xs)], dim=-1)
            anchors, strides = self._anchors(xs, boxes.dtype)
            dist = self.dfl(boxes)  # (B, 4, A): distances to the left, top, right, bottom in grid cells
            lt, rb = dist.chunk(2, 1)
            x1y1, x2y2 = anchors - lt, anchors + rb
            if e2e:
                box = torch.cat((x1y1, x2y2), 1) * strides
            else:
                box = torch.cat(((x1y1 + x2y2) / 2, x2y2 - x1y1), 1) * strides
            y = torch.cat((box, scores.sigmoid()), 1)
            return self._top_k(y.permute(0, 2, 1)) if e2e else y

        def _anchors(self, xs: list[Any], dtype: Any) -> tuple[Any, Any]:
            """Cell centres (2, A) in grid units and each anchor's stride (1, A), level after level."""
            points, strides = [], []
            for x, s in zip(xs, self.stride, strict=True):
                h, w = x.shape[2:]
                gy, gx = torch.meshgrid(
                    torch.arange(h, dtype=dtype) + 0.5, torch.arange(w, dtype=dtype) + 0.5, indexing="ij"
                )
                points.append(torch.stack((gx, gy), 0).view(2, -1))
                strides.append(torch.full((1, h * w), float(s), dtype=dtype))
            return torch.cat(points, 1), torch.cat(strides, 1)

        def _top_k(self, y: Any) -> Any:
            """[B, A, 4+nc] -> [B, K, 6]: the K anchors with the best class score, then the K best
            (anchor, class) pairs among them (one anchor may appear with several classes)."""
            boxes, scores = y.split((4, self.nc), dim=-1)
            k = min(int(getattr(self, "max_det", 300)), int(y.shape[1]))
            if getattr(self, "agnostic_nms", False):
                best, labels = scores.max(dim=-1)
                val, idx = best.topk(k, dim=1)
                lab = labels.gather(1, idx).unsqueeze(-1).to(y.dtype)
            else:
                anchor_idx = scores.max(dim=-1)[0].topk(k, dim=1)[1]  # (B, K)
                cand = scores.gather(1, anchor_idx.unsqueeze(-1).expand(-1, -1, self.nc))  # (B, K, nc)
                val, flat = cand.flatten(1).topk(k, dim=1)
                lab = (flat % self.nc).unsqueeze(-1).to(y.dtype)
                idx = anchor_idx.gather(1, flat // self.nc)
            box = boxes.gather(1, idx.unsqueeze(-1).expand(-1, -1, 4))
            return torch.cat((box, val.unsqueeze(-1), lab), -1)

    class DetectionModel(Module):
        """`model` is an nn.Sequential whose layers carry `f` (input layer index or list, -1 = previous) and
        `i` (own index); `save` lists the layer outputs later layers read."""

        def forward(self, x: Any) -> Any:
            outs: list[Any] = []
            for m in self.model:
                if m.f != -1:
                    x = outs[m.f] if isinstance(m.f, int) else [x if j == -1 else outs[j] for j in m.f]
                x = m(x)
                outs.append(x if m.i in self.save else None)
            return x

    classes: dict[str, Any] = {
        "Conv": Conv,
        "DWConv": type("DWConv", (Conv,), {"__doc__": "Depthwise Conv (groups in the stored conv)."}),
        "RepConv": RepConv,
        "GhostConv": GhostConv,
        "Concat": Concat,
        "Bottleneck": Bottleneck,
        "RepBottleneck": type("RepBottleneck", (Bottleneck,), {}),
        "GhostBottleneck": GhostBottleneck,
        "C3": C3,
        "C3k": type("C3k", (C3,), {}),
        "C3Ghost": type("C3Ghost", (C3,), {}),
        "RepCSP": type("RepCSP", (C3,), {}),
        "C2": C2,
        "C2f": C2f,
        "C3k2": type("C3k2", (C2f,), {}),
        "C2fCIB": type("C2fCIB", (C2f,), {}),
        "SPP": SPP,
        "SPPF": SPPF,
        "RepNCSPELAN4": RepNCSPELAN4,
        "ELAN1": type("ELAN1", (RepNCSPELAN4,), {}),
        "SPPELAN": SPPELAN,
        "AConv": AConv,
        "ADown": ADown,
        "CBLinear": CBLinear,
        "CBFuse": CBFuse,
        "SCDown": SCDown,
        "RepVGGDW": RepVGGDW,
        "CIB": CIB,
        "Attention": Attention,
        "PSABlock": PSABlock,
        "PSA": PSA,
        "C2PSA": C2PSA,
        "AAttn": AAttn,
        "ABlock": ABlock,
        "A2C2f": A2C2f,
        "DFL": DFL,
        "Detect": Detect,
        "v10Detect": type("v10Detect", (Detect,), {}),
        "DetectionModel": DetectionModel,
    }
    return classes


def fuse_for_export(model: Any) -> Any:
    """float32, eval, no grad; BatchNorm folded into the conv before it and re-parameterisable branches
    (RepConv, RepVGGDW) summed into one conv: the exported graph has plain convs only. Returns `model`."""
    torch = require("torch", "loading an Ultralytics checkpoint")
    cls = ultralytics_classes()
    model = model.float().eval()
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, cls["Conv"]) and m._modules.get("bn") is not None:
                m.conv = _fold_bn(torch, m.conv, m.bn)
                del m.bn
            elif isinstance(m, cls["RepConv"]) and m._modules.get("conv") is None:
                _fuse_repconv(torch, m)
            elif isinstance(m, cls["RepVGGDW"]) and m._modules.get("conv1") is not None:
                _fuse_repvggdw(torch, m)
            elif isinstance(m, torch.nn.Upsample) and not hasattr(m, "recompute_scale_factor"):
                m.recompute_scale_factor = None  # pickled by an older torch that lacked the attribute
    for p in model.parameters():
        p.requires_grad_(False)
    return model


def _bn_scale_shift(bn: Any) -> tuple[Any, Any]:
    scale = bn.weight / (bn.running_var + bn.eps).sqrt()
    return scale, bn.bias - bn.running_mean * scale


def _fold_bn(torch: Any, conv: Any, bn: Any) -> Any:
    """Conv2d (+ bias or not) followed by BatchNorm2d -> one Conv2d with bias (eval-mode statistics)."""
    scale, shift = _bn_scale_shift(bn)
    fused = torch.nn.Conv2d(
        conv.in_channels,
        conv.out_channels,
        conv.kernel_size,
        conv.stride,
        conv.padding,
        conv.dilation,
        conv.groups,
        bias=True,
    ).requires_grad_(False)
    fused.weight.copy_(conv.weight * scale.view(-1, 1, 1, 1))
    bias = shift if conv.bias is None else shift + conv.bias * scale
    fused.bias.copy_(bias)
    return fused


def _conv_kernel_bias(torch: Any, conv_bn: Any) -> tuple[Any, Any]:
    """An edgedet Conv (conv + bn, or already folded) -> (kernel, bias) of the equivalent plain conv."""
    bn = conv_bn._modules.get("bn")
    w = conv_bn.conv.weight
    b = conv_bn.conv.bias if conv_bn.conv.bias is not None else torch.zeros(w.shape[0])
    if bn is None:
        return w, b
    scale, shift = _bn_scale_shift(bn)
    return w * scale.view(-1, 1, 1, 1), shift + b * scale


def _fuse_repconv(torch: Any, m: Any) -> None:
    """3x3 branch + 1x1 branch (padded to 3x3) + identity BatchNorm (as a 3x3 identity kernel) -> one conv."""
    k3, b3 = _conv_kernel_bias(torch, m.conv1)
    k1, b1 = _conv_kernel_bias(torch, m.conv2)
    kernel = k3 + torch.nn.functional.pad(k1, [1, 1, 1, 1])
    bias = b3 + b1
    ident = m._modules.get("bn")
    if ident is not None:
        c_in = k3.shape[1]  # input channels per group
        eye = torch.zeros_like(k3)
        for o in range(k3.shape[0]):
            eye[o, o % c_in, 1, 1] = 1.0
        scale, shift = _bn_scale_shift(ident)
        kernel = kernel + eye * scale.view(-1, 1, 1, 1)
        bias = bias + shift
    c = m.conv1.conv
    fused = torch.nn.Conv2d(
        c.in_channels, c.out_channels, c.kernel_size, c.stride, c.padding, c.dilation, c.groups, bias=True
    ).requires_grad_(False)
    fused.weight.copy_(kernel)
    fused.bias.copy_(bias)
    m.conv = fused
    for name in ("conv1", "conv2", "bn"):
        m._modules.pop(name, None)
        m.__dict__.pop(name, None)


def _fuse_repvggdw(torch: Any, m: Any) -> None:
    """7x7 dw conv-bn + 3x3 dw conv-bn (padded to 7x7) -> one 7x7 dw conv, kept as `m.conv` (a plain Conv2d
    wrapped so RepVGGDW.forward still reads `self.conv(x)`)."""
    k7, b7 = _conv_kernel_bias(torch, m.conv)
    k3, b3 = _conv_kernel_bias(torch, m.conv1)
    c = m.conv.conv
    fused = torch.nn.Conv2d(
        c.in_channels, c.out_channels, c.kernel_size, c.stride, c.padding, c.dilation, c.groups, bias=True
    ).requires_grad_(False)
    fused.weight.copy_(k7 + torch.nn.functional.pad(k3, [2, 2, 2, 2]))
    fused.bias.copy_(b7 + b3)
    m.conv = fused
    m._modules.pop("conv1", None)
