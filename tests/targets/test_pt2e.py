"""PT2E calibration (targets/_pt2e.py): weights are observed once, and that changes no quantization parameter."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mnv2deploy.model import build
from mnv2deploy.targets._pt2e import calibrate_pt2e, constant_observers, prepare

pytest.importorskip("litert_torch")


def _quantizer():
    from litert_torch.quantize import pt2e_quantizer as pt2e

    return pt2e.PT2EQuantizer().set_global(pt2e.get_symmetric_quantization_config(is_per_channel=True))


def _observed_every_image(model, calib):
    """The plain PT2E recipe: every observer, weights included, on every image."""
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e

    prepared = prepare(model, 32, _quantizer(), "hint")
    with torch.no_grad():
        for i in range(len(calib)):
            prepared(torch.from_numpy(calib[i:i + 1]))
    return convert_pt2e(prepared, fold_quantize=False)


def test_weights_observed_once_give_the_same_quantized_model():
    torch.manual_seed(0)
    model = build(0.35, 10).eval()
    calib = np.random.default_rng(0).normal(size=(6, 3, 32, 32)).astype(np.float32)
    ours = calibrate_pt2e(model, 32, calib, _quantizer(), "hint")
    plain = _observed_every_image(model, calib)
    x = torch.from_numpy(np.random.default_rng(1).normal(size=(2, 1, 3, 32, 32)).astype(np.float32))
    with torch.no_grad():
        for xi in x:
            np.testing.assert_array_equal(ours(xi).numpy(), plain(xi).numpy())
    ours_q, plain_q = _qparams(ours), _qparams(plain)
    assert len(ours_q) > 100 and len(ours_q) == len(plain_q)
    for a, b in zip(ours_q, plain_q):
        np.testing.assert_array_equal(a, b)


def _qparams(graph) -> list[np.ndarray]:
    """Every (de)quantize node's scale and zero point, in graph order (per-channel ones are attributes)."""
    out = []
    for node in graph.graph.nodes:
        if "quantize_per" in str(node.target):
            for a in node.args[1:3]:
                out.append(np.asarray(graph.get_buffer(a.target) if getattr(a, "op", None) == "get_attr" else a))
    return out


def test_weight_observers_see_only_the_first_image():
    """Inside the calibration loop the weights' observers are bypassed, and restored after it."""
    from mnv2deploy.targets._pt2e import _constants_observed

    prepared = prepare(build(0.35, 10).eval(), 32, _quantizer(), "hint")
    weight_observers = constant_observers(prepared)
    assert len(weight_observers) == 53  # every conv and the classifier: one per-channel observer each
    with _constants_observed(prepared):
        assert all("forward" in vars(o) for o in weight_observers)
    assert not any("forward" in vars(o) for o in weight_observers)


def _float_convs_and_their_inputs(graph) -> tuple[int, set[str]]:
    """(convs whose weights stay float, the ops those convs are computed from)."""
    from mnv2deploy.targets._pt2e import _with_ancestors

    convs = [n for n in graph.graph.nodes if n.op == "call_function" and "conv" in str(n.target)
             and "dequantize" not in str(n.args[1].target)]
    upstream = _with_ancestors(convs) - set(convs)
    return len(convs), {str(n.target) for n in upstream if n.op == "call_function"}


@pytest.mark.parametrize("camera", [False, True])
def test_a_float_stem_is_the_stem_alone_and_nothing_before_it_is_quantized(camera):
    """float_stem leaves the stem in float32: in a split model, whose features.0 is the stem fused with the first
    block, only the stem's channel groups (once, the block's depthwise and projection convs too), and a split
    camera model's multiply-add normalization in front of it stays float as well (once, it was quantized and
    dequantized again). The plain model's float stem: tests/cli/test_user_model.py, on the written .tflite."""
    from mnv2deploy.split import split_blocks
    from mnv2deploy.targets._camera import camera_model
    from mnv2deploy.targets._pt2e import float_stem
    from mnv2deploy.weights import default_contract

    torch.manual_seed(0)
    model = split_blocks(build(0.35, 10).eval(), 2).eval()
    calib = np.random.default_rng(0).normal(size=(3, 3, 32, 32)).astype(np.float32)
    sample = None
    if camera:
        model, sample = camera_model(model, default_contract(), 32, True, True)
        calib = np.random.default_rng(0).integers(0, 256, size=(3, 32, 32, 3)).astype(np.uint8)
    qmodel = calibrate_pt2e(model, 32, calib, float_stem(_quantizer()), "hint", example=sample)
    n_float, computed_from = _float_convs_and_their_inputs(qmodel)
    assert n_float == 2  # the stem, one conv per channel group
    assert not any("quantize" in op for op in computed_from), computed_from
    if camera:
        assert {"aten.mul.Tensor", "aten.add.Tensor"} <= computed_from  # a split stem cannot fold the normalization
