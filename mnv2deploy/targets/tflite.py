"""`tflite`: fp32 TFLite via litert-torch (no TensorFlow needed); runs in ai-edge-litert (LiteRT).

litert-torch keeps the torch input layout (NCHW) at the model boundary; the manifest records what the
written file really takes, read back with the LiteRT interpreter."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from ..errors import install_hint
from ..fileio import staged_path
from ..manifest import TensorSpec
from . import _common as c
from .base import Converted, ExportRequest, Target

HINT = install_hint("tflite")
TOOLS = ("litert-torch", "ai-edge-litert", "torchao")


def convert(model: Any, request: ExportRequest, path: Path, quant_config: Any = None, sample: Any = None) -> None:
    litert_torch = c.require("litert_torch", HINT)
    kwargs = {"quant_config": quant_config} if quant_config is not None else {}
    sample = c.sample_input(request) if sample is None else sample
    litert_torch.convert(model, (sample,), **kwargs).export(str(path))


def tflite_tensor_specs(path: Path) -> tuple[tuple[TensorSpec, ...], tuple[TensorSpec, ...]]:
    """Inputs/outputs as the LiteRT interpreter sees them, int8 scale/zero point included."""
    Interpreter = c.require("ai_edge_litert.interpreter", HINT).Interpreter
    interp = Interpreter(model_path=str(path))

    def spec(d: dict[str, Any], is_input: bool) -> TensorSpec:
        shape = tuple(int(v) for v in d["shape"])
        layout = ("NCHW" if shape[1] == 3 else "NHWC") if is_input and len(shape) == 4 else "NC"
        scale, zp = d.get("quantization", (0.0, 0))
        quantized = np.dtype(d["dtype"]).kind in "iu" and scale
        return TensorSpec(d["name"], shape, np.dtype(d["dtype"]).name, layout,
                          float(scale) if quantized else None, int(zp) if quantized else None)

    return (tuple(spec(d, True) for d in interp.get_input_details()),
            tuple(spec(d, False) for d in interp.get_output_details()))


class TfliteTarget(Target):
    name: ClassVar[str] = "tflite"
    format: ClassVar[str] = "tflite"
    precision: ClassVar[str] = "fp32"
    suffix: ClassVar[str] = ".tflite"
    extra: ClassVar[str] = "tflite"
    requires: ClassVar[tuple[str, ...]] = ("litert_torch", "ai_edge_litert")
    tools: ClassVar[tuple[str, ...]] = TOOLS
    option_names: ClassVar[tuple[str, ...]] = ("input_layout", "input_dtype")  # camera edge (targets/_camera.py)

    def quant_config(self) -> Any:
        return None

    def convert(self, request: ExportRequest) -> Converted:
        from ._camera import camera_inputs, camera_model, camera_options, camera_record

        nhwc, uint8 = camera_options(self.name, request, self.given_options(request))
        contract = request.reference.spec.contract
        model, sample = c.torch_model(request), None  # torch_model is in eval mode
        if nhwc or uint8:
            model, sample = camera_model(model, contract, request.resolution, nhwc, uint8)
        path = c.artifact_path(request, self.precision, self.suffix)
        with staged_path(path) as tmp:
            convert(model, request, tmp, self.quant_config(), sample)
            inputs, outputs = tflite_tensor_specs(tmp)
        return Converted(path, tmp, camera_inputs(inputs, contract, nhwc, uint8), outputs, camera_record(nhwc, uint8))
