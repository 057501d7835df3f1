"""Per-layer shapes, multiply-accumulates, parameters and activation bytes, derived by tracing the model.

Nothing is tabulated: counts come from forward hooks on the real modules, so they hold for any width and
resolution.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

from .model import ConvBNReLU6, InvertedResidual, MobileNetV2


@dataclass(frozen=True)
class LayerRow:
    index: str  # features.N, pool, classifier
    operator: str  # "conv2d 3x3 s2", "bottleneck t=6 s=2", ...
    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]
    macs: int
    params: int
    activation_bytes: int  # the layer's output, fp32
    inner_bytes: int  # the largest tensor inside the layer (a bottleneck's expanded tensor), fp32


@dataclass(frozen=True)
class Profile:
    width_mult: float
    resolution: int
    num_classes: int
    rows: tuple[LayerRow, ...]

    @property
    def macs(self) -> int:
        return sum(r.macs for r in self.rows)

    @property
    def params(self) -> int:
        return sum(r.params for r in self.rows)

    def to_dict(self) -> dict:
        return {"width_mult": self.width_mult, "resolution": self.resolution, "num_classes": self.num_classes,
                "params": self.params, "macs": self.macs, "layers": [asdict(r) for r in self.rows]}


def _leaf_macs(module: nn.Module, out: torch.Tensor) -> int:
    if isinstance(module, nn.Conv2d):
        kh, kw = module.kernel_size
        return out.numel() * (module.in_channels // module.groups) * kh * kw
    if isinstance(module, nn.Linear):
        return out.numel() // out.shape[-1] * module.in_features * module.out_features
    return 0


def _describe(block: nn.Module) -> str:
    if isinstance(block, InvertedResidual):
        res = " +res" if block.use_res_connect else ""
        return f"bottleneck t={block.expand_ratio} s={block.stride}{res}"
    if isinstance(block, ConvBNReLU6):
        conv = block[0]
        return f"conv2d {conv.kernel_size[0]}x{conv.kernel_size[1]} s{conv.stride[0]}"
    return type(block).__name__.lower()


@torch.no_grad()
def profile_model(model: MobileNetV2, resolution: int) -> Profile:
    """Trace one batch-1 forward pass and account every layer of Table 2."""
    macs: dict[nn.Module, int] = {}
    largest: dict[nn.Module, int] = {}
    hooks = []
    blocks = [(f"features.{i}", b) for i, b in enumerate(model.features)] + [("classifier", model.classifier)]
    owner = {leaf: blk for _, blk in blocks for leaf in blk.modules()}

    def leaf_hook(mod, inp, out):
        blk = owner[mod]
        macs[blk] = macs.get(blk, 0) + _leaf_macs(mod, out)
        largest[blk] = max(largest.get(blk, 0), out.numel() * out.element_size())

    shapes: dict[str, tuple[tuple[int, ...], tuple[int, ...]]] = {}
    for name, blk in blocks:
        hooks.append(blk.register_forward_hook(lambda m, i, o, name=name: shapes.__setitem__(name, (tuple(i[0].shape), tuple(o.shape)))))
        for leaf in blk.modules():
            if not list(leaf.children()):
                hooks.append(leaf.register_forward_hook(leaf_hook))
    was_training = model.training
    model.eval()
    try:
        model(torch.zeros(1, 3, resolution, resolution))
    finally:
        model.train(was_training)
        for h in hooks:
            h.remove()

    rows = []
    for name, blk in blocks:
        i_shape, o_shape = shapes[name]
        if name == "classifier":  # the global average pool sits between features and classifier
            last = shapes[blocks[-2][0]][1]
            rows.append(LayerRow("pool", f"avgpool {last[2]}x{last[3]}", last, (1, last[1], 1, 1), 0, 0, last[1] * 4, last[1] * 4))
        out_bytes = 4 * int(torch.Size(o_shape).numel())
        rows.append(LayerRow(name, _describe(blk) if name != "classifier" else "linear (classifier)", i_shape, o_shape,
                             macs.get(blk, 0), sum(p.numel() for p in blk.parameters()), out_bytes, largest.get(blk, out_bytes)))
    return Profile(model.width_mult, resolution, model.num_classes, tuple(rows))
