"""`onnx`: fp32 ONNX via torch.onnx.export (dynamo exporter, opset 18), checked by onnx.checker.

Batch 1 is static unless ``--dynamic-batch``; layout NCHW like the torch model."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from ..errors import BadArtifactError, install_hint
from ..fileio import staged_path
from ..manifest import TensorSpec
from . import _common as c
from .base import Converted, ExportRequest, Target

OPSET = 18
HINT = install_hint("onnx")


def export_fp32_onnx(request: ExportRequest, path: Path) -> None:
    """Write the fp32 graph to ``path`` (not atomic by itself) and run the checker on it."""
    import torch

    onnx = c.require("onnx", HINT)
    c.require("onnxscript", HINT)
    model = c.torch_model(request)
    dynamic = ({0: torch.export.Dim("batch", min=1, max=1024)},) if request.dynamic_batch else None
    with torch.no_grad():
        torch.onnx.export(model, (c.sample_input(request),), str(path), input_names=[c.INPUT_NAME],
                          output_names=[c.OUTPUT_NAME], opset_version=OPSET, dynamo=True,
                          dynamic_shapes=dynamic, external_data=False, verbose=False)
    try:
        onnx.checker.check_model(onnx.load(str(path)), full_check=True)
    except onnx.checker.ValidationError as e:
        raise BadArtifactError(f"onnx.checker rejected the export: {str(e).splitlines()[0][:160]}",
                               "this is a converter bug; rerun with --debug") from None


def onnx_tensor_specs(path: Path) -> tuple[tuple[TensorSpec, ...], tuple[TensorSpec, ...]]:
    """Names, shapes and dtypes read back from the written graph."""
    import onnx
    from onnx import helper

    graph = onnx.load(str(path)).graph
    init = {i.name for i in graph.initializer}

    def spec(v: Any, layout: str) -> TensorSpec:
        t = v.type.tensor_type
        shape = tuple(d.dim_value if d.HasField("dim_value") else None for d in t.shape.dim)
        return TensorSpec(v.name, shape, helper.tensor_dtype_to_np_dtype(t.elem_type).name, layout)

    inputs = tuple(spec(v, "NCHW") for v in graph.input if v.name not in init)
    outputs = tuple(spec(v, "NC") for v in graph.output)
    return inputs, outputs


class OnnxTarget(Target):
    name: ClassVar[str] = "onnx"
    format: ClassVar[str] = "onnx"
    precision: ClassVar[str] = "fp32"
    suffix: ClassVar[str] = ".onnx"
    extra: ClassVar[str] = "onnx"
    requires: ClassVar[tuple[str, ...]] = ("onnx", "onnxscript")
    tools: ClassVar[tuple[str, ...]] = ("onnx", "onnxscript")
    supports_dynamic_batch: ClassVar[bool] = True

    def convert(self, request: ExportRequest) -> Converted:
        path = c.artifact_path(request, self.precision, self.suffix)
        with staged_path(path) as tmp:
            export_fp32_onnx(request, tmp)
            inputs, outputs = onnx_tensor_specs(tmp)
        return Converted(path, tmp, inputs, outputs, {"opset": OPSET})
