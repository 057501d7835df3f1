"""Split-block MobileNetV2 (paper Section 5.1): each bottleneck computes its expanded tensor in k channel groups.

A bottleneck is F(x) = A(N(B(x))) with B the expansion, N the per-channel depthwise + ReLU6 and A the linear
projection. Because N acts per channel, F(x) = sum_i A_i(N_i(B_i(x))), where B_i makes one group of the inner
channels and A_i takes the matching input slice of the projection, so the whole inner tensor never exists.

The paper also applies the trick to the first layer: the stem conv (3 -> 32, 3x3 s2) plays B for the first
bottleneck (t = 1: depthwise + project), so the stem's 112x112x32 output is never whole either.

BatchNorm (eval mode) is folded into the convolutions so each group is plain Conv2d -> ReLU6 ops that every
exporter and the PT2E int8 quantizer understand; the projection's BN shift is a bias applied once (group 0).
Partial sums accumulate sequentially (acc = acc + proj_i) so the ops of a group stay together in execution order.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from .errors import UsageError
from .model import ConvBNReLU6, InvertedResidual, MobileNetV2


def _fold(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> tuple[torch.Tensor, torch.Tensor]:
    """Weight and bias of conv followed by eval-mode BN, as one conv."""
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    weight = conv.weight * scale.reshape(-1, 1, 1, 1)
    bias = bn.bias - bn.running_mean * scale
    if conv.bias is not None:
        bias = bias + conv.bias * scale
    return weight.detach().clone(), bias.detach().clone()


def _conv(weight: torch.Tensor, bias: torch.Tensor | None, like: nn.Conv2d, groups: int = 1) -> nn.Conv2d:
    out_ch, in_per_group = weight.shape[:2]
    conv = nn.Conv2d(in_per_group * groups, out_ch, like.kernel_size, like.stride, like.padding,
                     groups=groups, bias=bias is not None)
    with torch.no_grad():
        conv.weight.copy_(weight)
        if bias is not None:
            conv.bias.copy_(bias)
    return conv


def group_sizes(channels: int, k: int) -> list[int]:
    """k near-equal channel counts summing to ``channels`` (the first ones one larger when it does not divide)."""
    base, extra = divmod(channels, k)
    return [base + (1 if i < extra else 0) for i in range(k)]


class GroupedBottleneck(nn.Module):
    """sum_i project_i(depthwise_i(expand_i(x))) [+ x]; one group's ops run before the next group's."""

    def __init__(self, expand: nn.Conv2d, expand_bn: nn.BatchNorm2d, depthwise: nn.Conv2d,
                 depthwise_bn: nn.BatchNorm2d, project: nn.Conv2d, project_bn: nn.BatchNorm2d, k: int,
                 residual: bool):
        super().__init__()
        we, be = _fold(expand, expand_bn)
        wd, bd = _fold(depthwise, depthwise_bn)
        wp, bp = _fold(project, project_bn)
        self.residual, self.k = residual, k
        self.hidden_channels = we.shape[0]
        self.expand, self.depthwise, self.project = nn.ModuleList(), nn.ModuleList(), nn.ModuleList()
        start = 0
        for i, size in enumerate(group_sizes(self.hidden_channels, k)):
            sl = slice(start, start + size)
            start += size
            self.expand.append(nn.Sequential(_conv(we[sl], be[sl], expand), nn.ReLU6()))
            self.depthwise.append(nn.Sequential(_conv(wd[sl], bd[sl], depthwise, groups=size), nn.ReLU6()))
            self.project.append(_conv(wp[:, sl], bp if i == 0 else None, project))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # The partial projections are summed first and the residual added last, as the plain block adds it: int8
        # then quantizes one intermediate with the projection's own range instead of x + part_1's (logit SQNR at
        # 32x32, K=2/3/4/6: 25.5/25.4/25.0/24.8 -> 25.6/25.9/25.5/25.7 dB); the same number of adds either way.
        acc = None
        for expand, depthwise, project in zip(self.expand, self.depthwise, self.project):
            part = project(depthwise(expand(x)))
            acc = part if acc is None else acc + part
        return acc + x if self.residual else acc


def _split_block(block: InvertedResidual, k: int) -> GroupedBottleneck:
    expand, dw, project, project_bn = block.conv
    return GroupedBottleneck(expand[0], expand[1], dw[0], dw[1], project, project_bn, k, block.use_res_connect)


def _split_stem(stem: ConvBNReLU6, first: InvertedResidual, k: int) -> GroupedBottleneck:
    """The paper's first-layer trick: the stem conv is the expansion of the first (t = 1) bottleneck."""
    dw, project, project_bn = first.conv
    return GroupedBottleneck(stem[0], stem[1], dw[0], dw[1], project, project_bn, k, first.use_res_connect)


def max_split(model: MobileNetV2) -> int:
    """The largest k: no group may be empty, so k is bounded by the narrowest inner tensor (incl. the stem)."""
    widths = [model.features[0][0].out_channels]
    widths += [b.hidden_channels for b in model.features if isinstance(b, InvertedResidual) and b.expand_ratio != 1]
    return min(widths)


def split_blocks(model: MobileNetV2, k: int) -> nn.Module:
    """A functionally equivalent copy of ``model`` (eval mode) whose bottlenecks run in ``k`` channel groups.

    k = 1 returns ``model`` itself (the plain graph). ``model.features`` keeps its length and indices, so
    ``features.N`` still names block N; the fused stem + first bottleneck sits at index 0 and index 1 is Identity.
    """
    if not isinstance(model, MobileNetV2):
        raise UsageError(f"split_blocks needs mnv2deploy's MobileNetV2, got {type(model).__name__}",
                         "load it with mnv2deploy.weights.load_reference")
    if isinstance(k, bool) or not isinstance(k, int):
        raise UsageError(f"split must be an integer, got {k!r}", "use --split 1 (plain) or a small K such as 2, 4")
    limit = max_split(model)
    if not 1 <= k <= limit:
        raise UsageError(f"split {k} is not valid for this model: valid values are 1 to {limit}",
                         f"{limit} is the narrowest inner tensor (channels); the paper finds 2 to 5 a good trade")
    if k == 1:
        return model
    if model.training:
        raise UsageError("split_blocks needs a model in eval mode (BatchNorm is folded)", "call model.eval() first")
    out = copy.deepcopy(model)
    features = list(out.features)
    first = features[1]
    if isinstance(first, InvertedResidual) and first.expand_ratio == 1 and isinstance(features[0], ConvBNReLU6):
        features[0], features[1] = _split_stem(features[0], first, k), nn.Identity()
    for i, block in enumerate(features):
        if isinstance(block, InvertedResidual) and block.expand_ratio != 1:
            features[i] = _split_block(block, k)
    out.features = nn.Sequential(*features)
    out.split = k
    return out.eval()
