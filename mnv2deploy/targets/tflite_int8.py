"""`tflite-int8`: int8 TFLite (int8 weights per channel, int8 activations, int8 output) via litert-torch's PT2E
quantizer, calibrated on real images. What it takes (``--option``, ``Int8Input``):

- default: full-integer, int8 NCHW input quantized by the caller (runtimes/edges.to_model_input);
- ``input-dtype=uint8`` (camera bytes, targets/_camera.py): full-integer, int8 ``byte - 128`` in (the app flips each
  byte's top bit), the normalization folded into the stem, calibrated on the same images as bytes;
- ``input-dtype=float32``: preprocessed float32 in, the stem conv left in float32 and its output quantized inside
  the graph (``_pt2e.float_stem``), so no caller quantizes anything;
- ``input-dtype=uint8 --option stem=float32``: camera bytes in as uint8, cast and normalized inside, the folded stem
  in float32;
- ``input-layout=nhwc`` with any of them.

The PT2E-converted (fake-quant) torch model is the *quantized reference*, so parity can tell conversion fidelity
(artifact vs quantized torch) from quantization impact (artifact vs fp32 torch). Parity rebuilds it from the float
reference and the recorded calibration (``quantized_torch_model``); its logits on the embedded eval set are saved
beside the artifact (``<artifact>.qref.npz``) only when asked (``export --quantized-reference``): a pass over 500
images inside every export is what parity is for."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from ..contract import InputContract
from ..errors import BadArtifactError, UsageError
from ..fileio import staged_path
from ..runtimes.edges import bytes_map_exactly
from . import _common as c
from ._camera import camera_batch, camera_inputs, camera_model, camera_options, camera_record, from_preprocessed, \
    recorded_options
from ._pt2e import calibrate_pt2e, float_stem, quantized_reference
from .base import Converted, ExportRequest
from .tflite import HINT, TfliteTarget, convert, tflite_tensor_specs

DTYPES = ("int8", "uint8", "float32")  # input-dtype: int8 quantized by the caller, camera bytes, or floats
STEMS = ("int8", "float32")
BYTE_RANGE = (-128.0, 127.0)  # the camera input's range (byte - 128) whatever the calibration images hold


@dataclass(frozen=True)
class Int8Input:
    """What a tflite-int8 file takes and whether its stem runs in float32."""

    nhwc: bool = False
    dtype: str = "int8"
    float_stem: bool = False

    @property
    def camera(self) -> bool:
        return self.dtype == "uint8"

    @property
    def centred(self) -> bool:
        """Full-integer camera input: int8 ``byte - 128``."""
        return self.camera and not self.float_stem

    @classmethod
    def from_options(cls, target: str, request: ExportRequest, given: dict[str, Any]) -> "Int8Input":
        nhwc, _ = camera_options(target, request, given, DTYPES)
        dtype = c.choose(target, "input_dtype", given.get("input_dtype", "int8"), DTYPES)
        stem = c.choose(target, "stem", given.get("stem", "float32" if dtype == "float32" else "int8"), STEMS)
        if dtype == "float32" and stem == "int8":
            raise UsageError(f"{target}: a float32 input goes with a float32 stem",
                             "drop --option stem=int8, or use input-dtype int8 for a full-integer file")
        if dtype == "int8" and stem == "float32":
            raise UsageError(f"{target}: an int8 input cannot feed a float32 stem",
                             "use --option input-dtype=float32 (preprocessed floats) or uint8 (camera bytes)")
        return cls(nhwc, dtype, stem == "float32")

    @classmethod
    def from_manifest(cls, manifest: Any) -> "Int8Input":
        if manifest is None:
            return cls()
        options = manifest.export_options
        nhwc, _ = recorded_options(options)
        dtype = options.get("input_dtype", "int8")
        return cls(nhwc, dtype, options.get("stem") == "float32")

    def record(self) -> dict[str, str]:
        return {**camera_record(self.nhwc, self.camera, self.dtype), "stem": "float32" if self.float_stem else "int8"}


def quantize_pt2e(model: Any, resolution: int, calib: np.ndarray, contract: InputContract | None = None,
                  edge: Int8Input = Int8Input()) -> tuple[Any, Any, Any]:
    """Prepare, calibrate on ``calib`` (preprocessed NCHW float32), convert with litert-torch's symmetric
    per-channel PT2EQuantizer: (quantized graph module, the quantizer, which the conversion needs again, and the
    sample input it takes). With a camera edge or NHWC the model is wrapped first and calibrated on what the file
    takes; a float stem is left unannotated."""
    pt2e = c.require("litert_torch.quantize.pt2e_quantizer", HINT)
    quantizer = pt2e.PT2EQuantizer().set_global(pt2e.get_symmetric_quantization_config(is_per_channel=True))
    if edge.float_stem:
        quantizer = float_stem(quantizer)
    sample, input_range = None, None
    if edge.nhwc or edge.camera:
        model, sample = camera_model(model, contract, resolution, edge.nhwc, edge.camera, quantized=edge.centred)
        calib = camera_batch(calib, contract, edge.nhwc, edge.camera, centred=edge.centred)
        input_range = BYTE_RANGE if edge.centred else None
    qmodel = calibrate_pt2e(model, resolution, calib, quantizer, HINT, example=sample, input_range=input_range)
    return qmodel, quantizer, sample


def _preprocessed(qmodel: Any, contract: InputContract | None, edge: Int8Input) -> Any:
    """The quantized model as parity calls it: on preprocessed NCHW float32 images."""
    if not (edge.nhwc or edge.camera):
        return qmodel
    return from_preprocessed(qmodel, contract, edge.nhwc, edge.camera, centred=edge.centred)


class TfliteInt8Target(TfliteTarget):
    name: ClassVar[str] = "tflite-int8"
    precision: ClassVar[str] = "int8"
    option_names: ClassVar[tuple[str, ...]] = ("input_layout", "input_dtype", "stem")

    def quantized_torch_model(self, model: Any, resolution: int, calib: np.ndarray, manifest: Any = None) -> Any:
        edge = Int8Input.from_manifest(manifest)
        contract = manifest.preprocessing if manifest is not None else None
        return _preprocessed(quantize_pt2e(model, resolution, calib, contract, edge)[0], contract, edge)

    def convert(self, request: ExportRequest) -> Converted:
        edge = Int8Input.from_options(self.name, request, self.given_options(request))
        contract = request.reference.spec.contract
        calib, source = c.calibration_batch(request)
        qcfg = c.require("litert_torch.quantize.quant_config", HINT)
        qmodel, quantizer, sample = quantize_pt2e(c.torch_model(request), request.resolution, calib.images,
                                                  contract, edge)
        path = c.artifact_path(request, self.precision, self.suffix)
        with staged_path(path) as tmp:
            convert(qmodel, request, tmp, qcfg.QuantConfig(pt2e_quantizer=quantizer), sample)
            inputs, outputs = tflite_tensor_specs(tmp)
            in_dtype = "int8" if edge.centred else edge.dtype
            for t, wanted in [(t, in_dtype) for t in inputs] + [(t, "int8") for t in outputs]:
                if t.dtype != wanted or (wanted == "int8" and t.scale is None):
                    raise BadArtifactError(f"tflite-int8 export has {t.dtype} tensor {t.name}, not {wanted}",
                                           "this is a converter bug; rerun with --debug")
            if edge.centred and not bytes_map_exactly(inputs[0].scale, inputs[0].zero_point):
                raise BadArtifactError(f"tflite-int8 camera input got scale {inputs[0].scale}, zero point "
                                       f"{inputs[0].zero_point}: bytes would not map to byte - 128",
                                       "this is a converter bug; rerun with --debug")
        reference = _preprocessed(qmodel, contract, edge)
        extra = {"calibration": {"source": source, "samples": len(calib)},
                 "quantized_reference": (quantized_reference(reference, request, path) if request.quantized_reference
                                         else c.QREF_REBUILT)}
        options = {"quantizer": "pt2e symmetric per-channel" + (", float32 stem" if edge.float_stem else ""),
                   **edge.record()}
        return Converted(path, tmp, camera_inputs(inputs, contract, edge.nhwc, edge.camera), outputs, options, extra)
