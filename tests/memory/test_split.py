"""split_blocks: same function as the plain model, groups really partition the inner tensors, clear errors."""

import pytest
import torch
from torch import nn

from mnv2deploy.errors import UsageError
from mnv2deploy.model import InvertedResidual, MobileNetV2
from mnv2deploy.split import GroupedBottleneck, group_sizes, max_split, split_blocks
from mnv2deploy.weights import load_reference, resolve_weights


def _randomize_bn(model: nn.Module, seed: int = 0) -> nn.Module:
    """Non-trivial BN statistics, so folding them is really exercised (fresh BN is the identity)."""
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.copy_(torch.rand(m.num_features, generator=g) - 0.5)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) * 1.5 + 0.5)
            m.weight.data.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.bias.data.copy_(torch.rand(m.num_features, generator=g) * 0.4 - 0.2)
    return model.eval()


@pytest.fixture(scope="module")
def trained():
    return load_reference(resolve_weights("default")).model.eval()


@pytest.mark.parametrize("k", [2, 3, 4, 6])
def test_trained_default_logits_match(trained, k):
    x = torch.randn(4, 3, 32, 32, generator=torch.Generator().manual_seed(k))
    with torch.no_grad():
        ref, out = trained(x), split_blocks(trained, k)(x)
    assert ref.abs().max() > 0.5  # real logits, not the tiny ones of a fresh classifier
    assert (out - ref).abs().max().item() <= 1e-4


@pytest.mark.parametrize("width,resolution,k", [(0.35, 64, 6), (0.5, 48, 16), (1.0, 96, 3), (1.4, 32, 5)])
def test_random_models_match_at_several_widths(width, resolution, k):
    torch.manual_seed(0)
    model = _randomize_bn(MobileNetV2(width, 10))
    with torch.no_grad():  # scale the classifier so logits are O(1) and the tolerance means something
        model.classifier[1].weight.mul_(100)
    x = torch.randn(2, 3, resolution, resolution)
    with torch.no_grad():
        ref, out = model(x), split_blocks(model, k)(x)
    assert ref.abs().max() > 0.1
    assert (out - ref).abs().max().item() <= 1e-4


def test_structure_partitions_every_inner_tensor():
    model = _randomize_bn(MobileNetV2(1.0, 10))
    split = split_blocks(model, 4)
    assert len(split.features) == len(model.features)
    assert isinstance(split.features[1], nn.Identity)  # the stem and first bottleneck are one grouped op
    grouped = [m for m in split.features if isinstance(m, GroupedBottleneck)]
    plain = [m for m in model.features if isinstance(m, InvertedResidual) and m.expand_ratio != 1]
    assert len(grouped) == len(plain) + 1
    for g, p in zip(grouped[1:], plain):
        widths = [e[0].out_channels for e in g.expand]
        assert sum(widths) == p.hidden_channels and max(widths) - min(widths) <= 1
        assert [d[0].groups for d in g.depthwise] == widths  # depthwise stays per channel
        assert sum(pr.in_channels for pr in g.project) == p.hidden_channels
        assert [pr.bias is not None for pr in g.project] == [True, False, False, False]  # BN shift added once
        # the projection's groups are column slices of the (BN-scaled) original projection
        proj, bn = p.conv[2], p.conv[3]
        scale = (bn.weight / torch.sqrt(bn.running_var + bn.eps)).reshape(-1, 1, 1, 1)
        torch.testing.assert_close(torch.cat([pr.weight for pr in g.project], dim=1), proj.weight * scale)
    assert split_blocks(model, 1) is model


def test_the_residual_is_added_after_the_partial_sums():
    """As the plain block adds it: int8 then quantizes the partial sums with the projection's own range (logit SQNR
    +0.1 to +0.9 dB at K=2-6 against adding x to the first partial; docs/memory.md)."""
    model = _randomize_bn(MobileNetV2(1.0, 10))
    block = next(m for m in split_blocks(model, 3).features if isinstance(m, GroupedBottleneck) and m.residual)
    graph = torch.fx.symbolic_trace(block).graph
    x = next(n for n in graph.nodes if n.op == "placeholder")
    adds = [n for n in graph.nodes if n.op == "call_function" and "add" in str(n.target)]
    assert len(adds) == 3 and [x in a.args for a in adds] == [False, False, True]


def test_group_sizes():
    assert group_sizes(96, 4) == [24] * 4
    assert group_sizes(10, 3) == [4, 3, 3]


@pytest.mark.parametrize("k", [0, -1, 33, True, 2.0])
def test_bad_k_is_a_usage_error_listing_valid_values(k):
    model = MobileNetV2(1.0, 10).eval()
    assert max_split(model) == 32  # the stem's 32 channels are the narrowest inner tensor at width 1.0
    with pytest.raises(UsageError) as e:
        split_blocks(model, k)
    if isinstance(k, int) and not isinstance(k, bool):
        assert "1 to 32" in e.value.message


def test_training_mode_is_refused():
    with pytest.raises(UsageError):
        split_blocks(MobileNetV2(1.0, 10).train(), 2)


def test_other_models_are_refused():
    with pytest.raises(UsageError):
        split_blocks(nn.Sequential(nn.Conv2d(3, 8, 3)), 2)
