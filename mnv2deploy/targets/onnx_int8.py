"""`onnx-int8`: static QDQ int8 ONNX (per-channel int8 weights, int8 activations) via
onnxruntime.quantization.quantize_static, calibrated on real images. Input and output stay float32
(QuantizeLinear/DequantizeLinear at the edges), which is what onnxruntime's QDQ format produces.

On x86, onnxruntime rewrites S8S8 QDQ graphs to U8S8 for speed, and its VPMADDUBSW kernels then saturate: on the
embedded default top-1 agreement with fp32 fell to 0.874 (0.984 with the rewrite off, the same as the unoptimised
QDQ math). The manifest therefore carries the session setting that keeps int8 as int8; our ORT runtime applies
it, and anyone running the file on x86 should too. ARM kernels do not saturate."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from . import _common as c
from .base import ExportRequest, ExportResult
from .onnx import HINT, OnnxTarget, export_fp32_onnx, onnx_tensor_specs


# See the module docstring: without it, x86 onnxruntime saturates the int8 convolutions.
SESSION_CONFIG = {"session.qdqisint8allowed": "1"}


def quantize(fp32: Path, out: Path, calib: np.ndarray, input_name: str) -> None:
    q = c.require("onnxruntime.quantization", HINT)

    class Reader(q.CalibrationDataReader):
        def __init__(self) -> None:
            self._it = iter(calib[i:i + 1] for i in range(len(calib)))

        def get_next(self) -> dict[str, Any] | None:
            x = next(self._it, None)
            return None if x is None else {input_name: x}

    q.quantize_static(str(fp32), str(out), Reader(), quant_format=q.QuantFormat.QDQ, per_channel=True,
                      activation_type=q.QuantType.QInt8, weight_type=q.QuantType.QInt8,
                      calibrate_method=q.CalibrationMethod.MinMax)


class OnnxInt8Target(OnnxTarget):
    name: ClassVar[str] = "onnx-int8"
    precision: ClassVar[str] = "int8"

    def unavailable_reason(self) -> str | None:
        return c.missing(("onnx", "onnxscript", "onnxruntime"), HINT)

    def export(self, request: ExportRequest) -> ExportResult:
        started = time.perf_counter()
        c.check_options(request, self.name)
        calib, source = c.calibration_batch(request)
        path = c.artifact_path(request, self.precision, self.suffix)
        with tempfile.TemporaryDirectory(prefix="mnv2deploy-onnx-int8-") as work, c.atomic_artifact(path) as tmp:
            fp32 = Path(work) / "fp32.onnx"
            export_fp32_onnx(request, fp32)
            quantize(fp32, tmp, calib.images, c.INPUT_NAME)
            inputs, outputs = onnx_tensor_specs(tmp)
        extra = {"calibration": {"source": source, "samples": len(calib), "method": "minmax"},
                 "onnxruntime_session_config": dict(SESSION_CONFIG),
                 "quantized_reference": {"file": None, "reason": "onnxruntime quantizes the ONNX graph itself; "
                                         "there is no separate quantized torch model to compare against"}}
        return c.finish(self, request, path, inputs, outputs,
                        {"opset": 18, "format": "QDQ", "per_channel": True}, extra,
                        ("onnx", "onnxscript", "onnxruntime"), started)
