"""`executorch-int8`: an int8 ExecuTorch program (.pte): PT2E with ExecuTorch's XNNPACKQuantizer (symmetric, int8
weights per channel, int8 activations), calibrated on the same real images as tflite-int8, lowered to XNNPACK
(``--option delegate=none``: the portable quantized kernels). Input and output stay float32: the program quantizes
and dequantizes at its edges.

As for tflite-int8, the quantized (fake-quant) torch model is the reference for conversion fidelity: parity rebuilds
it (``quantized_torch_model``), or reads its logits on the embedded eval set when export recorded them
(``--quantized-reference``: ``<artifact>.qref.npz``), so parity reports fidelity as well as agreement with fp32."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from ..errors import BadArtifactError
from ..fileio import staged_path
from . import _common as c
from ._pt2e import calibrate_pt2e, quantized_reference
from .base import Converted, ExportRequest
from .executorch import HINT, ExecutorchTarget, lower_and_write, tensor_specs

QUANTIZER = "executorch XNNPACKQuantizer, symmetric, per-channel weights"


def xnnpack_quantizer():
    q = c.require("executorch.backends.xnnpack.quantizer.xnnpack_quantizer", HINT)
    return q.XNNPACKQuantizer().set_global(q.get_symmetric_quantization_config(is_per_channel=True))


class ExecutorchInt8Target(ExecutorchTarget):
    name: ClassVar[str] = "executorch-int8"
    precision: ClassVar[str] = "int8"

    def quantized_torch_model(self, model: Any, resolution: int, calib: np.ndarray, manifest: Any = None) -> Any:
        return calibrate_pt2e(model, resolution, calib, xnnpack_quantizer(), HINT, fold_quantize=True)

    def convert(self, request: ExportRequest) -> Converted:
        delegate = self.delegate(request)
        calib, source = c.calibration_batch(request)
        qmodel = self.quantized_torch_model(c.torch_model(request), request.resolution, calib.images)
        path = self.path(request, delegate)
        with staged_path(path) as tmp:
            lower_and_write(qmodel, request, tmp, delegate)
            inputs, outputs = tensor_specs(tmp)
            for t in inputs + outputs:
                if t.dtype != "float32":
                    raise BadArtifactError(f"executorch-int8 export has {t.dtype} tensor {t.name}, not float32 edges",
                                           "this is a converter bug; rerun with --debug")
        extra = {"calibration": {"source": source, "samples": len(calib)},
                 "quantized_reference": (quantized_reference(qmodel, request, path) if request.quantized_reference
                                         else c.QREF_REBUILT)}
        return Converted(path, tmp, inputs, outputs, {"delegate": delegate, "quantizer": QUANTIZER}, extra)
