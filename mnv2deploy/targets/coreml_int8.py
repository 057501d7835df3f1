"""`coreml-int8`: int8 weights (linear symmetric, per output channel); ``activations=int8`` for W8A8.

Weight-only: convert as `coreml` does, then ``coremltools.optimize.coreml.linear_quantize_weights``; compute stays
float (fp16 by default). W8A8: activation calibration through Core ML needs ``predict`` (macOS only), so the torch
model is quantized first with ``coremltools.optimize.torch`` LinearQuantizer (observers calibrated on real images,
no training) and the quantized model is converted (iOS 17: activation quantize/dequantize ops need it).

Either way the accuracy of the quantized torch model that was converted is measured here and recorded in
``manifest.extra["quantized_torch"]``: parity cannot run Core ML on Linux, so this is the number that can be checked.
For weight-only the torch model carries the same per-channel symmetric int8 weights (quantize-dequantize); BatchNorm
scales each output channel, so quantizing before or after Core ML folds BN into the conv gives the same codes.
"""

from __future__ import annotations

import copy
from typing import Any, ClassVar

import numpy as np

from ..data import Batch, load_dataset
from . import _common as c
from .base import Converted, ExportRequest
from .coreml import (CoremlTarget, InputPlan, annotate, convert, plan_input, torch_model_for_export, trace,
                     write_package)

EVAL_BATCH = 50


def quantize_weights_coreml(mlmodel: Any) -> Any:
    """Every conv and linear weight to int8, symmetric, one scale per output channel (biases stay float)."""
    import coremltools.optimize as cto

    op = cto.coreml.OpLinearQuantizerConfig(mode="linear_symmetric", dtype="int8", granularity="per_channel",
                                            weight_threshold=0)  # the default (2048) would leave small convs float
    config = cto.coreml.OptimizationConfig(op_type_configs={"conv": op, "linear": op})
    return cto.coreml.linear_quantize_weights(mlmodel, config=config)


def int8_weight_copy(model: Any) -> Any:
    """The torch model with conv/linear weights replaced by their per-channel symmetric int8 quantize-dequantize."""
    import torch

    q = copy.deepcopy(model).eval()
    with torch.no_grad():
        for m in q.modules():
            if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear)):
                w = m.weight
                scale = w.abs().amax(dim=tuple(range(1, w.ndim)), keepdim=True).clamp_min(1e-12) / 127.0
                w.copy_(torch.clamp(torch.round(w / scale), -127, 127) * scale)
    return q


def quantize_w8a8_torch(model: Any, calib: np.ndarray, request: ExportRequest) -> Any:
    """LinearQuantizer (symmetric, per-channel weights, 8-bit activations) calibrated on ``calib``; returns the
    finalized model ready for tracing."""
    import torch
    from coremltools.optimize.torch.quantization import (LinearQuantizer, LinearQuantizerConfig,
                                                         ModuleLinearQuantizerConfig)

    model = copy.deepcopy(model).eval()
    for m in model.modules():  # prepare() puts the model in train mode; dropout must not disturb calibration
        if isinstance(m, torch.nn.Dropout):
            m.p = 0.0
    config = LinearQuantizerConfig(global_config=ModuleLinearQuantizerConfig(
        quantization_scheme="symmetric", weight_per_channel=True))
    quantizer = LinearQuantizer(model, config)
    prepared = quantizer.prepare(example_inputs=(c.sample_input(request),), inplace=False)
    prepared.eval()  # BatchNorm uses its running statistics; observers still record (they ignore train/eval)
    with torch.no_grad():
        for i in range(0, len(calib), EVAL_BATCH):
            prepared(torch.from_numpy(calib[i:i + EVAL_BATCH]))
    return quantizer.finalize(inplace=False).eval()


def measure_quantized(float_model: Any, quant_model: Any, batch: Batch, plan: InputPlan, what: str) -> dict[str, Any]:
    """Accuracy of the quantized torch model next to the float one, on the same images."""
    x = plan.to_model_space(batch.images)
    ref, q = c.torch_logits(float_model, x, EVAL_BATCH), c.torch_logits(quant_model, x, EVAL_BATCH)
    out: dict[str, Any] = {"what": what, "samples": len(batch), "source": batch.source,
                           "top1_agreement_with_float": float((ref.argmax(1) == q.argmax(1)).mean()),
                           "max_abs_logit_diff": float(np.abs(ref - q).max()),
                           "float_logit_std": float(ref.std())}  # scale for the diff; ~0 means ties (random weights)
    if batch.labels is not None:
        out["accuracy"] = float((q.argmax(1) == batch.labels).mean())
        out["float_accuracy"] = float((ref.argmax(1) == batch.labels).mean())
    else:
        out["accuracy"] = out["float_accuracy"] = None
        out["accuracy_note"] = "the weights have no labels for these images; see top1_agreement_with_float"
    return out


class CoremlInt8Target(CoremlTarget):
    name: ClassVar[str] = "coreml-int8"
    precision: ClassVar[str] = "int8"
    option_names: ClassVar[tuple[str, ...]] = ("precision", "input_type", "activations", "eval_samples")

    def convert(self, request: ExportRequest) -> Converted:
        opts = self.parse_options(request)
        contract = request.reference.spec.contract.at_resolution(request.resolution)
        plan = plan_input(contract, opts.input_type)
        w8a8 = opts.activations == "int8"
        calib, source = c.calibration_batch(request) if w8a8 else (None, None)  # bad folders fail before converting
        model = torch_model_for_export(request, plan)
        evalset = load_dataset(None, contract, opts.eval_samples, kind="eval")
        if w8a8:
            quantized = quantize_w8a8_torch(model, plan.to_model_space(calib.images), request)
            deployment = "iOS17"  # activation quantize/dequantize ops exist from iOS 17
            mlmodel = convert(trace(quantized, request), request, plan, opts.precision, deployment)
            quant = {"weights": "int8 symmetric per-channel (coremltools.optimize.torch LinearQuantizer)",
                     "activations": "int8 (8-bit, calibrated on the torch side)",
                     "calibration": {"source": source, "samples": len(calib)}}
            what = "coremltools.optimize.torch LinearQuantizer model (finalized) that was traced and converted"
        else:
            quantized = int8_weight_copy(model)
            deployment = "iOS16"
            mlmodel = quantize_weights_coreml(convert(trace(model, request), request, plan, opts.precision, deployment))
            quant = {"weights": "int8 linear_symmetric per-channel (coremltools.optimize.coreml.linear_quantize_weights)",
                     "activations": f"float ({opts.precision} compute)", "calibration": None}
            what = "torch model with the same per-channel symmetric int8 weights (quantize-dequantize)"
        measured = measure_quantized(model, quantized, evalset, plan, what)
        options = {"precision": opts.precision, "input_type": opts.input_type, "activations": opts.activations,
                   "minimum_deployment_target": deployment, "eval_samples": opts.eval_samples}
        annotate(mlmodel, request, plan, {"export_options": options, "quantization": quant})
        # weight-only and W8A8 packages get different names so both can sit in one folder
        return write_package(self, request, mlmodel, plan, "w8a8" if w8a8 else "int8", "int8", options,
                             {"quantization": quant, "quantized_torch": measured})
