"""MobileNetV2 exactly as the paper's Table 2, with torchvision's state_dict layout.

Keys and shapes match ``torchvision.models.mobilenet_v2`` so its checkpoints load unchanged, but torchvision
itself is not needed (it does not install beside the CPU torch we pin).
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

# Paper Table 2: expansion t, output channels c, repeats n, first stride s.
INVERTED_RESIDUAL_SETTING: tuple[tuple[int, int, int, int], ...] = (
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
)
STEM_CHANNELS = 32
LAST_CHANNELS = 1280
WIDTH_RANGE = (0.35, 1.4)


def make_divisible(value: float, divisor: int = 8) -> int:
    """Round a channel count to a multiple of ``divisor`` without dropping more than 10% (as the reference code)."""
    new_value = max(divisor, int(value + divisor / 2) // divisor * divisor)
    if new_value < 0.9 * value:
        new_value += divisor
    return new_value


class ConvBNReLU6(nn.Sequential):
    """Conv -> BatchNorm -> ReLU6; children named 0, 1, 2 like torchvision's Conv2dNormActivation."""

    def __init__(self, in_ch: int, out_ch: int, kernel: int = 3, stride: int = 1, groups: int = 1):
        super().__init__(
            nn.Conv2d(in_ch, out_ch, kernel, stride, (kernel - 1) // 2, groups=groups, bias=False),
            nn.BatchNorm2d(out_ch),
            nn.ReLU6(inplace=True),
        )


class InvertedResidual(nn.Module):
    """Bottleneck block: 1x1 expand (absent when t == 1), 3x3 depthwise, linear 1x1 projection."""

    def __init__(self, in_ch: int, out_ch: int, stride: int, expand_ratio: int):
        super().__init__()
        if stride not in (1, 2):
            raise ValueError(f"stride must be 1 or 2, got {stride}")
        hidden = int(round(in_ch * expand_ratio))
        self.in_channels, self.out_channels, self.hidden_channels = in_ch, out_ch, hidden
        self.stride, self.expand_ratio = stride, expand_ratio
        self.use_res_connect = stride == 1 and in_ch == out_ch
        layers: list[nn.Module] = []
        if expand_ratio != 1:
            layers.append(ConvBNReLU6(in_ch, hidden, kernel=1))
        layers += [
            ConvBNReLU6(hidden, hidden, stride=stride, groups=hidden),
            nn.Conv2d(hidden, out_ch, 1, 1, 0, bias=False),  # linear bottleneck: no activation
            nn.BatchNorm2d(out_ch),
        ]
        self.conv = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(x) if self.use_res_connect else self.conv(x)


class MobileNetV2(nn.Module):
    def __init__(self, width_mult: float = 1.0, num_classes: int = 1000, dropout: float = 0.2,
                 setting: Sequence[tuple[int, int, int, int]] = INVERTED_RESIDUAL_SETTING):
        super().__init__()
        self.width_mult, self.num_classes = width_mult, num_classes
        in_ch = make_divisible(STEM_CHANNELS * width_mult)
        self.last_channel = make_divisible(LAST_CHANNELS * max(1.0, width_mult))
        features: list[nn.Module] = [ConvBNReLU6(3, in_ch, stride=2)]
        for t, c, n, s in setting:
            out_ch = make_divisible(c * width_mult)
            for i in range(n):
                features.append(InvertedResidual(in_ch, out_ch, s if i == 0 else 1, t))
                in_ch = out_ch
        features.append(ConvBNReLU6(in_ch, self.last_channel, kernel=1))
        self.features = nn.Sequential(*features)
        self.classifier = nn.Sequential(nn.Dropout(p=dropout), nn.Linear(self.last_channel, num_classes))
        self._init_weights()

    def _init_weights(self) -> None:
        # torchvision's scheme, so a random model behaves like theirs.
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0, 0.01)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)
        x = nn.functional.adaptive_avg_pool2d(x, 1)
        return self.classifier(torch.flatten(x, 1))


def build(width_mult: float = 1.0, num_classes: int = 1000) -> MobileNetV2:
    """A randomly initialised MobileNetV2; validates the arguments the CLI exposes."""
    from .errors import UsageError

    lo, hi = WIDTH_RANGE
    if not lo <= width_mult <= hi:
        raise UsageError(f"width multiplier {width_mult} is outside {lo} to {hi}", "pick a width such as 0.35, 0.5, 0.75, 1.0 or 1.4")
    if num_classes < 1:
        raise UsageError(f"num_classes must be at least 1, got {num_classes}")
    return MobileNetV2(width_mult=width_mult, num_classes=num_classes)
