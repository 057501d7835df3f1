"""The paper's Table 3, computed from the architectures: what must be materialized per spatial resolution.

Model (paper Section 5.1): a network runs op by op; a bottleneck block is ONE op whose inner tensor is
disposable (computed in channel groups, never whole), so only the tensors between ops are materialized: the
network input and every op's output. For MobileNetV2 and ShuffleNet the split trick also covers the first layer
(the stem conv is the expansion of MobileNetV2's first t=1 bottleneck; ShuffleNet's stem conv feeds a per-channel
max pool), and the last 1x1 conv feeds a per-channel global pool, so its wide 7x7 output is disposable too.
MobileNetV1 has no bottleneck: every layer's output is materialized. Activations are 16-bit as in the paper.

``max_bytes`` is the paper's measure (largest materialized tensor); ``max_op_bytes`` adds what a sequential
runtime really holds at once: the worst op's input plus output.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

from ..model import INVERTED_RESIDUAL_SETTING, LAST_CHANNELS, STEM_CHANNELS, make_divisible

BYTES_PER_ACTIVATION = 2  # the paper assumes 16-bit floats
PAPER_KB = 1000  # the paper's "K"; its rounded figures match 1000 better than 1024

# What the paper's Table 3 says the maximum is, quoted to compare against (never used to compute).
PAPER_MAX_KB = {"MobileNetV1": 1600, "MobileNetV2": 400, "ShuffleNet (2x, g=3)": 600}

Shape = tuple[int, int, int]  # H, W, C


@dataclass(frozen=True)
class Op:
    name: str
    input: Shape
    output: Shape


def _down(res: int, stride: int) -> int:
    return math.ceil(res / stride)


def mobilenet_v2_ops(resolution: int = 224, width: float = 1.0, num_classes: int = 1000) -> list[Op]:
    """From mnv2deploy.model's own Table 2 constants (the same ones the PyTorch model is built from)."""
    stem = make_divisible(STEM_CHANNELS * width)
    res = _down(resolution, 2)
    ops: list[Op] = []
    ch, shape = stem, (resolution, resolution, 3)
    for t, c, n, s in INVERTED_RESIDUAL_SETTING:
        out_ch = make_divisible(c * width)
        for i in range(n):
            stride = s if i == 0 else 1
            if not ops:  # first layer trick: stem conv + first bottleneck are one op (stem output disposable)
                ops.append(Op(f"conv3x3 s2 ({stem}) + bottleneck t={t}", shape, (res, res, out_ch)))
            else:
                res = _down(res, stride)
                ops.append(Op(f"bottleneck t={t} s={stride}", shape, (res, res, out_ch)))
            shape, ch = ops[-1].output, out_ch
    last = make_divisible(LAST_CHANNELS * max(1.0, width))
    ops.append(Op(f"conv1x1 ({last}) + global avgpool", shape, (1, 1, last)))
    ops.append(Op("classifier", (1, 1, last), (1, 1, num_classes)))
    return ops


# MobileNetV1 (Howard et al. 2017, Table 1): stem conv, then (depthwise stride, pointwise channels) pairs.
MOBILENET_V1_LAYERS = ((1, 64), (2, 128), (1, 128), (2, 256), (1, 256), (2, 512),
                       (1, 512), (1, 512), (1, 512), (1, 512), (1, 512), (2, 1024), (1, 1024))


def mobilenet_v1_ops(resolution: int = 224, width: float = 1.0, num_classes: int = 1000) -> list[Op]:
    """No bottleneck, nothing disposable: every depthwise and pointwise output is materialized."""
    res, ch = _down(resolution, 2), int(32 * width)
    ops = [Op("conv3x3 s2", (resolution, resolution, 3), (res, res, ch))]
    for stride, c in MOBILENET_V1_LAYERS:
        prev = ops[-1].output
        res = _down(res, stride)
        ops.append(Op(f"depthwise s{stride}", prev, (res, res, ch)))
        ch = int(c * width)
        ops.append(Op("pointwise", (res, res, ops[-1].output[2]), (res, res, ch)))
    ops.append(Op("global avgpool", ops[-1].output, (1, 1, ch)))
    ops.append(Op("classifier", (1, 1, ch), (1, 1, num_classes)))
    return ops


# ShuffleNet (Zhang et al. 2017, Table 1): stage output channels at 1x per group count; repeats per stage.
SHUFFLENET_STAGE_CHANNELS = {1: (144, 288, 576), 2: (200, 400, 800), 3: (240, 480, 960), 4: (272, 544, 1088),
                             8: (384, 768, 1536)}
SHUFFLENET_REPEATS = (4, 8, 4)  # the first unit of each stage has stride 2 (concat with an avg-pooled shortcut)


def shufflenet_ops(resolution: int = 224, scale: float = 2.0, groups: int = 3, num_classes: int = 1000) -> list[Op]:
    """Each ShuffleNet unit is one op (its narrow bottleneck is disposable); the stem conv feeds a per-channel
    max pool, so with the split trick its 112x112 output is never whole."""
    stem = int(24 * scale)
    res = _down(_down(resolution, 2), 2)
    ops = [Op("conv3x3 s2 + maxpool s2", (resolution, resolution, 3), (res, res, stem))]
    for out_1x, repeats in zip(SHUFFLENET_STAGE_CHANNELS[groups], SHUFFLENET_REPEATS):
        ch = int(out_1x * scale)
        for i in range(repeats):
            prev = ops[-1].output
            res = _down(res, 2) if i == 0 else res
            ops.append(Op(f"shuffle unit s{2 if i == 0 else 1}", prev, (res, res, ch)))
    ops.append(Op("global avgpool", ops[-1].output, (1, 1, ops[-1].output[2])))
    ops.append(Op("classifier", ops[-1].output, (1, 1, num_classes)))
    return ops


NETWORKS: dict[str, Callable[[], list[Op]]] = {
    "MobileNetV1": mobilenet_v1_ops,
    "MobileNetV2": mobilenet_v2_ops,
    "ShuffleNet (2x, g=3)": lambda: shufflenet_ops(groups=3),
    "ShuffleNet (2x, g=2)": lambda: shufflenet_ops(groups=2),
}


def _nbytes(shape: Shape, bytes_per: int) -> int:
    return shape[0] * shape[1] * shape[2] * bytes_per


def materialized_table(ops: list[Op], bytes_per: int = BYTES_PER_ACTIVATION) -> dict:
    """Per spatial resolution the widest materialized tensor; the max over the network; the worst op."""
    tensors = [ops[0].input] + [op.output for op in ops]
    rows: dict[tuple[int, int], int] = {}
    for h, w, c in tensors:
        rows[(h, w)] = max(rows.get((h, w), 0), c)
    table = [{"resolution": f"{h}x{w}", "channels": c, "bytes": _nbytes((h, w, c), bytes_per)}
             for (h, w), c in sorted(rows.items(), key=lambda kv: -kv[0][0] * kv[0][1])]
    worst = max(ops, key=lambda op: _nbytes(op.input, bytes_per) + _nbytes(op.output, bytes_per))
    largest = max(table, key=lambda r: r["bytes"])
    return {"rows": table, "max_bytes": largest["bytes"], "max_at": largest["resolution"],
            "max_op_bytes": _nbytes(worst.input, bytes_per) + _nbytes(worst.output, bytes_per),
            "max_op": worst.name, "bytes_per_activation": bytes_per}


def paper_table(bytes_per: int = BYTES_PER_ACTIVATION) -> dict[str, dict]:
    """One entry per network (at 224, width 1), with the paper's quoted maximum beside ours where it gives one."""
    out = {}
    for name, build in NETWORKS.items():
        entry = materialized_table(build(), bytes_per)
        quoted = PAPER_MAX_KB.get(name)
        entry["paper_max_kb"] = quoted
        entry["max_kb"] = round(entry["max_bytes"] / PAPER_KB, 1)
        out[name] = entry
    return out


def mobilenet_v2_bound(resolution: int, width: float, bytes_per: int) -> dict:
    """The paper's bound for our model at any size and activation width (e.g. 1 byte for int8, 4 for fp32)."""
    return materialized_table(mobilenet_v2_ops(resolution, width), bytes_per)
