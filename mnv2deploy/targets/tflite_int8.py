"""`tflite-int8`: full-integer int8 TFLite (int8 weights per channel, int8 activations, int8 input and output)
via litert-torch's PT2E quantizer, calibrated on real images.
``--option input-layout=nhwc`` / ``--option input-dtype=uint8`` give it the camera edge (targets/_camera.py): int8
``byte - 128`` in, the normalization folded into the stem, calibrated on the same images as bytes.
``--option input-dtype=float32``: preprocessed float32 in, the stem conv left in float32 and its output quantized
inside the graph (``_pt2e.float_stem``), so no caller quantizes anything.

The PT2E-converted (fake-quant) torch model is the *quantized reference*, so parity can tell conversion fidelity
(artifact vs quantized torch) from quantization impact (artifact vs fp32 torch). Parity rebuilds it from the float
reference and the recorded calibration (``quantized_torch_model``); its logits on the embedded eval set are saved
beside the artifact (``<artifact>.qref.npz``) only when asked (``export --quantized-reference``): a pass over 500
images inside every export is what parity is for."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from ..contract import InputContract
from ..errors import BadArtifactError
from ..fileio import staged_path
from ..runtimes.edges import bytes_map_exactly
from . import _common as c
from ._camera import camera_batch, camera_inputs, camera_model, camera_options, camera_record, from_preprocessed, \
    recorded_options
from ._pt2e import calibrate_pt2e, float_stem, quantized_reference
from .base import Converted, ExportRequest
from .tflite import HINT, TfliteTarget, convert, tflite_tensor_specs

DTYPES = ("int8", "uint8", "float32")  # input-dtype: int8 quantized by the caller, camera bytes, or floats (float stem)
BYTE_RANGE = (-128.0, 127.0)  # the camera input's range (byte - 128) whatever the calibration images hold


def quantize_pt2e(model: Any, resolution: int, calib: np.ndarray, contract: InputContract | None = None,
                  nhwc: bool = False, uint8: bool = False, float_in: bool = False) -> tuple[Any, Any, Any]:
    """Prepare, calibrate on ``calib`` (preprocessed NCHW float32), convert with litert-torch's symmetric
    per-channel PT2EQuantizer: (quantized graph module, the quantizer, which the conversion needs again, and the
    sample input it takes). With a camera edge the model is wrapped first and calibrated on camera input;
    ``float_in``: the stem stays float32."""
    pt2e = c.require("litert_torch.quantize.pt2e_quantizer", HINT)
    quantizer = pt2e.PT2EQuantizer().set_global(pt2e.get_symmetric_quantization_config(is_per_channel=True))
    if float_in:
        quantizer = float_stem(quantizer)
    sample, input_range = None, None
    if nhwc or uint8:
        model, sample = camera_model(model, contract, resolution, nhwc, uint8, quantized=True)
        calib = camera_batch(calib, contract, nhwc, uint8)
        input_range = BYTE_RANGE if uint8 else None
    qmodel = calibrate_pt2e(model, resolution, calib, quantizer, HINT, example=sample, input_range=input_range)
    return qmodel, quantizer, sample


class TfliteInt8Target(TfliteTarget):
    name: ClassVar[str] = "tflite-int8"
    precision: ClassVar[str] = "int8"

    def quantized_torch_model(self, model: Any, resolution: int, calib: np.ndarray, manifest: Any = None) -> Any:
        nhwc, uint8 = recorded_options(manifest.export_options) if manifest is not None else (False, False)
        float_in = manifest is not None and manifest.export_options.get("input_dtype") == "float32"
        contract = manifest.preprocessing if manifest is not None else None
        qmodel = quantize_pt2e(model, resolution, calib, contract, nhwc, uint8, float_in)[0]
        return from_preprocessed(qmodel, contract, nhwc, uint8) if nhwc or uint8 else qmodel

    def convert(self, request: ExportRequest) -> Converted:
        given = self.given_options(request)
        nhwc, uint8 = camera_options(self.name, request, given, DTYPES)
        float_in = given.get("input_dtype") == "float32"
        contract = request.reference.spec.contract
        calib, source = c.calibration_batch(request)
        qcfg = c.require("litert_torch.quantize.quant_config", HINT)
        qmodel, quantizer, sample = quantize_pt2e(c.torch_model(request), request.resolution, calib.images,
                                                  contract, nhwc, uint8, float_in)
        path = c.artifact_path(request, self.precision, self.suffix)
        with staged_path(path) as tmp:
            convert(qmodel, request, tmp, qcfg.QuantConfig(pt2e_quantizer=quantizer), sample)
            inputs, outputs = tflite_tensor_specs(tmp)
            in_dtype = "float32" if float_in else "int8"
            for t, wanted in [(t, in_dtype) for t in inputs] + [(t, "int8") for t in outputs]:
                if t.dtype != wanted or (wanted == "int8" and t.scale is None):
                    raise BadArtifactError(f"tflite-int8 export has {t.dtype} tensor {t.name}, not {wanted}",
                                           "this is a converter bug; rerun with --debug")
            if uint8 and not bytes_map_exactly(inputs[0].scale, inputs[0].zero_point):
                raise BadArtifactError(f"tflite-int8 camera input got scale {inputs[0].scale}, zero point "
                                       f"{inputs[0].zero_point}: bytes would not map to byte - 128",
                                       "this is a converter bug; rerun with --debug")
        reference = from_preprocessed(qmodel, contract, nhwc, uint8) if nhwc or uint8 else qmodel
        extra = {"calibration": {"source": source, "samples": len(calib)},
                 "quantized_reference": (quantized_reference(reference, request, path) if request.quantized_reference
                                         else c.QREF_REBUILT)}
        options = {"quantizer": "pt2e symmetric per-channel" + (", float32 stem" if float_in else ""),
                   **camera_record(nhwc, uint8, "float32" if float_in else "int8")}
        return Converted(path, tmp, camera_inputs(inputs, contract, nhwc, uint8), outputs, options, extra)
