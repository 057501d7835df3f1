"""`tflite-int8`: full-integer int8 TFLite (int8 weights per channel, int8 activations, int8 input and output)
via litert-torch's PT2E quantizer, calibrated on real images.

The PT2E-converted (fake-quant) torch model is the *quantized reference*, so parity can tell conversion fidelity
(artifact vs quantized torch) from quantization impact (artifact vs fp32 torch). Parity rebuilds it from the float
reference and the recorded calibration (``quantized_torch_model``); its logits on the embedded eval set are saved
beside the artifact (``<artifact>.qref.npz``) only when asked (``export --quantized-reference``): a pass over 500
images inside every export is what parity is for."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from ..data import load_embedded
from ..errors import BadArtifactError
from ..fileio import staged_path
from . import _common as c
from .base import Converted, ExportRequest
from .tflite import HINT, TfliteTarget, convert, tflite_tensor_specs

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


def quantize_pt2e(model: Any, resolution: int, calib: np.ndarray) -> tuple[Any, Any]:
    """Prepare, calibrate on ``calib`` (NCHW float32), convert: (quantized graph module, its PT2EQuantizer)."""
    import torch

    model = without_dropout(model)
    pt2e = c.require("litert_torch.quantize.pt2e_quantizer", HINT)
    qpt2e = c.require("torchao.quantization.pt2e.quantize_pt2e", HINT)
    quantizer = pt2e.PT2EQuantizer().set_global(pt2e.get_symmetric_quantization_config(is_per_channel=True))
    graph = torch.export.export(model, (torch.zeros(1, 3, resolution, resolution),), strict=True).module()
    prepared = qpt2e.prepare_pt2e(graph, quantizer)
    qpt2e_api = c.require("torchao.quantization.pt2e", HINT)
    qpt2e_api.move_exported_model_to_eval(prepared)
    with torch.no_grad():
        for i in range(len(calib)):  # the graph was exported for batch 1
            prepared(torch.from_numpy(calib[i:i + 1]))
    converted = qpt2e.convert_pt2e(prepared, fold_quantize=False)
    qpt2e_api.move_exported_model_to_eval(converted)
    return converted, quantizer


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


class TfliteInt8Target(TfliteTarget):
    name: ClassVar[str] = "tflite-int8"
    precision: ClassVar[str] = "int8"
    option_names: ClassVar[tuple[str, ...]] = ()  # camera edge not here yet: its int8 input is already bytes

    def quantized_torch_model(self, model: Any, resolution: int, calib: np.ndarray) -> Any:
        return quantize_pt2e(model, resolution, calib)[0]

    def convert(self, request: ExportRequest) -> Converted:
        calib, source = c.calibration_batch(request)
        qcfg = c.require("litert_torch.quantize.quant_config", HINT)
        qmodel, quantizer = quantize_pt2e(c.torch_model(request), request.resolution, calib.images)
        path = c.artifact_path(request, self.precision, self.suffix)
        with staged_path(path) as tmp:
            convert(qmodel, request, tmp, qcfg.QuantConfig(pt2e_quantizer=quantizer))
            inputs, outputs = tflite_tensor_specs(tmp)
            for t in inputs + outputs:
                if t.dtype != "int8" or t.scale is None:
                    raise BadArtifactError(f"tflite-int8 export has {t.dtype} tensor {t.name}, not int8",
                                           "this is a converter bug; rerun with --debug")
        extra = {"calibration": {"source": source, "samples": len(calib)},
                 "quantized_reference": (quantized_reference(qmodel, request, path) if request.quantized_reference
                                         else c.QREF_REBUILT)}
        return Converted(path, tmp, inputs, outputs, {"quantizer": "pt2e symmetric per-channel"}, extra)
