"""`tflite-int8`: full-integer int8 TFLite (int8 weights per channel, int8 activations, int8 input and output)
via litert-torch's PT2E quantizer, calibrated on real images.

The PT2E-converted (fake-quant) torch model is the *quantized reference*, so parity can tell conversion fidelity
(artifact vs quantized torch) from quantization impact (artifact vs fp32 torch). Parity rebuilds it from the float
reference and the recorded calibration (``quantized_torch_model``); its logits on the embedded eval set are saved
beside the artifact (``<artifact>.qref.npz``) only when asked (``export --quantized-reference``): a pass over 500
images inside every export is what parity is for."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from ..errors import BadArtifactError
from ..fileio import staged_path
from . import _common as c
from ._pt2e import calibrate_pt2e, quantized_reference
from .base import Converted, ExportRequest
from .tflite import HINT, TfliteTarget, convert, tflite_tensor_specs

def quantize_pt2e(model: Any, resolution: int, calib: np.ndarray) -> tuple[Any, Any]:
    """Prepare, calibrate on ``calib`` (NCHW float32), convert with litert-torch's symmetric per-channel
    PT2EQuantizer: (quantized graph module, the quantizer, which the conversion needs again)."""
    pt2e = c.require("litert_torch.quantize.pt2e_quantizer", HINT)
    quantizer = pt2e.PT2EQuantizer().set_global(pt2e.get_symmetric_quantization_config(is_per_channel=True))
    return calibrate_pt2e(model, resolution, calib, quantizer, HINT), quantizer


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
