"""`onnx-int8`: static QDQ 8-bit ONNX via onnxruntime.quantization.quantize_static, calibrated on real images
(MinMax). Input and output stay float32 (QuantizeLinear/DequantizeLinear at the edges), as onnxruntime's QDQ
format produces.

The scheme (``SCHEME``): uint8 activations (asymmetric), int8 weights per channel and symmetric (U8S8), with the
weights of the dense layers (Convs with group 1 and the classifier Gemm) in 7 bits ([-64, 64]) and the depthwise
weights in full 8 bits. Why: onnxruntime (MLAS) runs u8 x s8 with one exact VPDPBUSD on CPUs with VNNI, but on
AVX2-only x86 with VPMADDUBSW, whose int16 sum of two u8 x s8 products saturates (255 x 127 x 2 > 32767): 8-bit
U8S8 was 0.984 top-1 agreement on a VNNI CPU and 0.876 with AVX2 kernels. With |w| <= 64 no pair can saturate
(255 x 64 x 2 = 32640), so one file is exact on both. The depthwise kernels did not saturate with 8-bit weights
(identical results with AVX2 kernels) and lose accuracy at 7 bits (0.974), so they keep 8. Measured side by side with U8U8 (the previous
scheme: exact, but on MLAS's 16-bit path as slow as fp32), S8S8 with and without `session.qdqisint8allowed`,
QOperator, per-tensor and full reduce_range by benchmarks/onnx_int8_variants.py (docs/export.md)."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from ..fileio import staged_path
from . import _common as c
from .base import Converted, ExportRequest
from .onnx import HINT, OnnxTarget, export_fp32_onnx, onnx_tensor_specs


@dataclass(frozen=True)
class QuantScheme:
    """One way to quantize the fp32 graph with onnxruntime.quantization (benchmarks/onnx_int8_variants.py
    measures several side by side; ``SCHEME`` is the one the target exports)."""
    activations: str = "uint8"  # "uint8" | "int8"
    weights: str = "uint8"  # "uint8" | "int8"
    format: str = "QDQ"  # "QDQ" | "QOperator"
    per_channel: bool = True
    reduce_range: bool = False  # 7-bit weights
    reduce_range_only: str | None = None  # with reduce_range: only "depthwise" or "dense" (Conv group 1, Gemm)


SCHEME = QuantScheme(activations="uint8", weights="int8", reduce_range=True, reduce_range_only="dense")


def quantize(fp32: Path, out: Path, calib: np.ndarray | None, input_name: str, scheme: QuantScheme = SCHEME,
             calibration_cache: Path | None = None) -> None:
    """``calibration_cache``: onnxruntime's JSON of tensor ranges (written on the first call, reused after, so
    variants of one graph share one calibration)."""
    q = c.require("onnxruntime.quantization", HINT)

    class Reader(q.CalibrationDataReader):
        def __init__(self) -> None:
            self._it = iter(calib[i:i + 1] for i in range(len(calib)))

        def get_next(self) -> dict[str, Any] | None:
            x = next(self._it, None)
            return None if x is None else {input_name: x}

    qtype = {"uint8": q.QuantType.QUInt8, "int8": q.QuantType.QInt8}
    cache = {} if calibration_cache is None else {"calibration_cache_path": str(calibration_cache)}
    extra = {}
    if scheme.reduce_range and scheme.reduce_range_only:
        extra["TensorQuantOverrides"] = {w: [{"axis": axis, "reduce_range": True}]
                                         for w, axis in weights_of(fp32, scheme.reduce_range_only).items()}
    q.quantize_static(str(fp32), str(out), Reader() if calib is not None else None,
                      quant_format=getattr(q.QuantFormat, scheme.format), per_channel=scheme.per_channel,
                      reduce_range=scheme.reduce_range and not scheme.reduce_range_only,
                      activation_type=qtype[scheme.activations], weight_type=qtype[scheme.weights],
                      calibrate_method=q.CalibrationMethod.MinMax, extra_options=extra, **cache)


def weights_of(fp32: Path, kind: str) -> dict[str, int]:
    """Weight initializers of the depthwise Convs (group == channels) or of the dense ones (other Convs, Gemm),
    with their output-channel axis."""
    import onnx
    from onnx import helper

    graph = onnx.load(str(fp32)).graph
    shapes = {i.name: list(i.dims) for i in graph.initializer}
    out = {}
    for n in graph.node:
        attrs = {a.name: helper.get_attribute_value(a) for a in n.attribute}
        if n.op_type == "Conv" and n.input[1] in shapes:
            depthwise = attrs.get("group", 1) > 1 and attrs.get("group") == shapes[n.input[1]][0]
            if depthwise == (kind == "depthwise"):
                out[n.input[1]] = 0
        elif n.op_type == "Gemm" and kind == "dense" and n.input[1] in shapes:
            out[n.input[1]] = 0 if attrs.get("transB", 0) else 1
    return out


class OnnxInt8Target(OnnxTarget):
    name: ClassVar[str] = "onnx-int8"
    precision: ClassVar[str] = "int8"
    requires: ClassVar[tuple[str, ...]] = ("onnx", "onnxscript", "onnxruntime")
    tools: ClassVar[tuple[str, ...]] = ("onnx", "onnxscript", "onnxruntime")

    def convert(self, request: ExportRequest) -> Converted:
        calib, source = c.calibration_batch(request)
        path = c.artifact_path(request, self.precision, self.suffix)
        with tempfile.TemporaryDirectory(prefix="mnv2deploy-onnx-int8-") as work, staged_path(path) as tmp:
            fp32 = Path(work) / "fp32.onnx"
            export_fp32_onnx(request, fp32)
            quantize(fp32, tmp, calib.images, c.INPUT_NAME, SCHEME)
            inputs, outputs = onnx_tensor_specs(tmp)
        extra = {"calibration": {"source": source, "samples": len(calib), "method": "minmax"},
                 "quant_types": {"activations": "uint8 asymmetric",
                                 "weights": "int8 per-channel symmetric; 7-bit [-64, 64] in dense Convs and Gemm "
                                            "(no int16 saturation in AVX2 u8 x s8 kernels), 8-bit in depthwise"},
                 "quantized_reference": {"file": None, "reason": "onnxruntime quantizes the ONNX graph itself; "
                                         "there is no separate quantized torch model to compare against"}}
        return Converted(path, tmp, inputs, outputs, {"opset": 18, "format": "QDQ", "per_channel": True}, extra)
