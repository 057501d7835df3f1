"""The camera edge's model (targets/_camera.py) in float, no converter: bytes in, the reference's logits out, with
the normalization folded into the stem and the stem padded with the mean colour, or (split models) a multiply-add."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mnv2deploy.data import load_embedded
from mnv2deploy.runtimes.edges import to_pixels
from mnv2deploy.split import split_blocks
from mnv2deploy.targets._camera import INT8_OFFSET, camera_model, folded_stem
from mnv2deploy.weights import load_reference, resolve_weights


@pytest.fixture(scope="module")
def reference():
    spec = resolve_weights("default")
    images = load_embedded("eval", spec.contract, 16).images
    with torch.no_grad():
        logits = load_reference(spec).model.eval()(torch.from_numpy(images)).numpy()
    return load_reference(spec).model.eval(), spec.contract, images, logits


def _camera_logits(model, contract, images, nhwc, quantized):
    cam, sample = camera_model(model, contract, images.shape[-1], nhwc, True, quantized=quantized)
    x = to_pixels(images, {"mean": list(contract.mean), "std": list(contract.std)})
    x = x.transpose(0, 2, 3, 1) if nhwc else x
    x = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32) - (INT8_OFFSET if quantized else 0))
    x = x if quantized else x.to(torch.uint8)
    assert x.dtype == sample.dtype and x.shape[1:] == sample.shape[1:]
    with torch.no_grad():
        return np.concatenate([cam(x[i:i + 1]).numpy() for i in range(len(x))])


@pytest.mark.parametrize("nhwc, quantized", [(True, False), (False, False), (True, True)])
def test_bytes_in_give_the_reference_logits_borders_included(reference, nhwc, quantized):
    model, contract, images, logits = reference
    assert folded_stem(model, contract, images.shape[-1], 0) is not None  # the folded path is the one tested
    np.testing.assert_allclose(_camera_logits(model, contract, images, nhwc, quantized), logits, atol=2e-5)


def test_a_zero_padded_fold_would_be_wrong(reference):
    """The mean-colour padding is what keeps the borders: the same fold with the stem padded by zero bytes moves the
    logits far beyond the float noise above."""
    model, contract, images, logits = reference
    folded = folded_stem(model, contract, images.shape[-1], 0)
    pad = folded.features[0][0][0]
    pad.cols.zero_(), pad.rows.zero_()
    bytes_ = torch.from_numpy(to_pixels(images, {"mean": list(contract.mean), "std": list(contract.std)}))
    with torch.no_grad():
        wrong = np.concatenate([folded(bytes_[i:i + 1]).numpy() for i in range(len(images))])
    assert np.abs(wrong - logits).max() > 0.01


def test_a_split_stem_keeps_the_multiply_add(reference):
    model, contract, images, _ = reference
    split = split_blocks(model, 2).eval()
    assert folded_stem(split, contract, images.shape[-1], 0) is None
    with torch.no_grad():
        expected = split(torch.from_numpy(images)).numpy()
    np.testing.assert_allclose(_camera_logits(split, contract, images, True, True), expected, atol=2e-5)
