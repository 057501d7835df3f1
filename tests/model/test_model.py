import math

import pytest
import torch
from torch import nn

from mnv2deploy.model import InvertedResidual, MobileNetV2, build, make_divisible
from mnv2deploy.profile import profile_model
from mnv2deploy.errors import UsageError

WIDTHS = (0.35, 0.5, 0.75, 1.0, 1.3, 1.4)


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("resolution", (32, 131, 224))
def test_output_shape_at_every_width_and_resolution(width, resolution):
    model = build(width, 17).eval()
    with torch.no_grad():
        out = model(torch.randn(1, 3, resolution, resolution))
    assert out.shape == (1, 17)
    assert torch.isfinite(out).all()


def test_parameter_count_equals_torchvision():
    assert sum(p.numel() for p in build(1.0, 1000).parameters()) == 3_504_872


# torchvision mobilenet_v2 key layout: (key, shape) at width 1.0 / 1000 classes.
TORCHVISION_KEYS = {
    "features.0.0.weight": (32, 3, 3, 3),
    "features.0.1.running_var": (32,),
    "features.1.conv.0.0.weight": (32, 1, 3, 3),  # t=1: depthwise first, no expansion
    "features.1.conv.1.weight": (16, 32, 1, 1),
    "features.1.conv.2.weight": (16,),
    "features.2.conv.0.0.weight": (96, 16, 1, 1),  # t=6: expand
    "features.2.conv.1.0.weight": (96, 1, 3, 3),  # depthwise
    "features.2.conv.2.weight": (24, 96, 1, 1),  # linear projection
    "features.2.conv.3.num_batches_tracked": (),
    "features.17.conv.2.weight": (320, 960, 1, 1),
    "features.18.0.weight": (1280, 320, 1, 1),
    "classifier.1.weight": (1000, 1280),
    "classifier.1.bias": (1000,),
}


def test_state_dict_has_torchvision_layout():
    state = build(1.0, 1000).state_dict()
    for key, shape in TORCHVISION_KEYS.items():
        assert tuple(state[key].shape) == shape, key
    # 19 feature entries (stem, 17 bottlenecks, last 1x1) and nothing outside features/classifier
    assert {k.split(".")[1] for k in state if k.startswith("features.")} == {str(i) for i in range(19)}
    assert all(k.startswith(("features.", "classifier.")) for k in state)
    # convs are bias-free: every feature bias belongs to a BatchNorm
    assert all(k.replace(".bias", ".running_mean") in state for k in state if k.startswith("features") and k.endswith(".bias"))


def test_blocks_follow_table_2():
    model = build(1.0, 1000)
    blocks = [m for m in model.features if isinstance(m, InvertedResidual)]
    assert len(blocks) == 17
    expected = []
    in_ch = 32
    for t, c, n, s in ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)):
        for i in range(n):
            expected.append((in_ch, c, s if i == 0 else 1, t))
            in_ch = c
    assert [(b.in_channels, b.out_channels, b.stride, b.expand_ratio) for b in blocks] == expected
    for b in blocks:
        assert b.use_res_connect == (b.stride == 1 and b.in_channels == b.out_channels)
        # linear bottleneck: the block ends in BatchNorm, no activation after the projection
        assert isinstance(b.conv[-1], nn.BatchNorm2d) and isinstance(b.conv[-2], nn.Conv2d)
    assert sum(isinstance(m, nn.ReLU6) for m in model.modules()) == 1 + 1 + 2 * 16 + 1  # stem, t=1 block, 16 t=6 blocks, last conv
    assert isinstance(model.classifier[0], nn.Dropout) and model.classifier[0].p == 0.2


def test_residual_is_added():
    block = InvertedResidual(24, 24, 1, 6).eval()
    x = torch.randn(1, 24, 8, 8)
    with torch.no_grad():
        assert torch.allclose(block(x), x + block.conv(x))


@pytest.mark.parametrize("value,expected", [(32 * 0.35, 16), (32 * 0.5, 16), (16 * 0.35, 8), (1280 * 1.4, 1792), (24 * 0.75, 24)])
def test_make_divisible(value, expected):
    assert make_divisible(value) == expected


def test_width_scaling_keeps_last_channels_below_one():
    assert build(0.5, 10).last_channel == 1280
    assert build(1.4, 10).last_channel == 1792


# TF-slim's published MobileNetV2 table (million MACs, truncated): derived counts must reproduce it.
PUBLISHED_MMACS = {(1.4, 224): 582, (1.3, 224): 509, (1.0, 224): 300, (1.0, 192): 221, (1.0, 160): 154,
                   (1.0, 128): 99, (1.0, 96): 56, (0.75, 224): 209, (0.75, 160): 107, (0.75, 96): 39,
                   (0.5, 224): 97, (0.5, 128): 32, (0.5, 96): 18, (0.35, 224): 59, (0.35, 160): 30, (0.35, 96): 11}


@pytest.mark.parametrize("width,resolution", sorted(PUBLISHED_MMACS))
def test_macs_match_published_figures(width, resolution):
    prof = profile_model(build(width, 1001), resolution)
    assert math.floor(prof.macs / 1e6) == PUBLISHED_MMACS[(width, resolution)]


def test_profile_params_equal_module_params_and_rows_cover_table_2():
    model = build(0.75, 100)
    prof = profile_model(model, 160)
    assert prof.params == sum(p.numel() for p in model.parameters())
    assert [r.index for r in prof.rows] == [f"features.{i}" for i in range(19)] + ["pool", "classifier"]
    first_t6 = prof.rows[2]
    assert first_t6.output_shape == (1, 24, 40, 40)
    assert first_t6.inner_bytes == 4 * 96 * 80 * 80  # the expanded tensor: 16 channels x t=6 at 80x80


@pytest.mark.parametrize("width", (0.2, 1.5, -1))
def test_bad_width_is_a_usage_error(width):
    with pytest.raises(UsageError, match="width"):
        build(width, 10)


def test_module_is_plain_torch_and_exports_cleanly():
    model = build(0.35, 10).eval()
    ep = torch.export.export(model, (torch.randn(1, 3, 64, 64),))
    assert ep is not None
    assert isinstance(model, MobileNetV2)
