"""PT2E quantization shared by the int8 targets that quantize on the torch side (tflite-int8, executorch-int8): the
model as exported, calibration on real images with the target's own quantizer (also how parity rebuilds the quantized
torch model, ``Target.quantized_torch_model``), and, when asked (``export --quantized-reference``), its logits saved
beside the artifact (``<artifact>.qref.npz``) as the recorded reference for conversion fidelity."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..data import load_embedded
from . import _common as c
from .base import ExportRequest

QREF_SUFFIX = ".qref.npz"


def without_dropout(model: Any) -> Any:
    """An eval copy with every Dropout replaced by Identity (what eval-mode Dropout computes anyway).

    Why: PT2E puts an observer after the classifier's Dropout, and litert-torch drops that requantization when
    it removes the Dropout, so the .tflite fed the FC with the coarse scale of the last ReLU6 while the quantized
    torch model used the fine one. Measured on the embedded default: conversion fidelity (agreement with the
    quantized torch model) 0.978 -> 0.996 at 32x32 and 0.58 -> 0.988 at 224x224; fp32 agreement 0.976 -> 0.986."""
    import copy

    from torch import nn

    model = copy.deepcopy(model).eval()
    for parent in list(model.modules()):
        for attr, sub in list(parent.named_children()):
            if isinstance(sub, nn.Dropout):
                setattr(parent, attr, nn.Identity())
    return model


# calibration batches hold about this many input pixels (32x32: 32 images; 224x224: 1): large enough that the
# observers run a few times instead of once per image, small enough to keep the activations of a 224 batch in memory
CALIB_BATCH_PIXELS = 1 << 15


def calib_batch_size(resolution: int) -> int:
    return max(1, CALIB_BATCH_PIXELS // (resolution * resolution))


def calibrate_pt2e(model: Any, resolution: int, calib: np.ndarray, quantizer: Any, hint: str,
                   fold_quantize: bool = False) -> Any:
    """Prepare with ``quantizer``, calibrate on ``calib`` (NCHW float32) in batches of ``calib_batch_size``, convert:
    the quantized (fake-quant) graph module in eval mode, which the converters re-export at batch 1.
    ``hint``: the install hint of the target's extra, for torchao.

    Why batches: the observers (histograms for activations) dominated calibration when fed one image at a time
    (200 images at 32x32: 2.8 s -> about 0.3 s); the graph is exported with a dynamic batch for it (an example of 2, since
    torch.export specializes a batch of 1)."""
    import torch

    model = without_dropout(model)
    qpt2e = c.require("torchao.quantization.pt2e.quantize_pt2e", hint)
    qpt2e_api = c.require("torchao.quantization.pt2e", hint)
    step = calib_batch_size(resolution)
    example = torch.zeros(2 if step > 1 else 1, 3, resolution, resolution)
    dynamic = ({0: torch.export.Dim("batch", min=1, max=max(2, step))},) if step > 1 else None
    # strict: non-strict graphs carry no source_fn_stack on `add`, and quantizers then leave residual adds float
    graph = torch.export.export(model, (example,), dynamic_shapes=dynamic, strict=True).module()
    prepared = qpt2e.prepare_pt2e(graph, quantizer)
    qpt2e_api.move_exported_model_to_eval(prepared)
    with torch.no_grad():
        for i in range(0, len(calib), step):
            prepared(torch.from_numpy(np.ascontiguousarray(calib[i:i + step])))
    converted = qpt2e.convert_pt2e(prepared, fold_quantize=fold_quantize)
    qpt2e_api.move_exported_model_to_eval(converted)
    return converted


def quantized_reference(qmodel: Any, request: ExportRequest, artifact: Path) -> dict[str, Any]:
    """Run the fake-quant torch model on the embedded eval set, batch 1 as exported, and save its logits."""
    contract = request.reference.spec.contract.at_resolution(request.resolution)
    batch = load_embedded("eval", contract)
    logits = c.batch1_logits(qmodel, batch.images)
    labels = batch.labels if batch.labels is not None else np.full(len(batch), -1)
    qref = artifact.with_name(artifact.name + QREF_SUFFIX)
    c.save_npz_atomic(qref, logits=logits, labels=np.asarray(labels))
    acc = float((logits.argmax(1) == labels).mean()) if batch.labels is not None else None
    return {"file": qref.name, "data": "embedded:eval", "samples": int(len(batch)), "accuracy": acc}
