"""`executorch`: an fp32 ExecuTorch program (.pte), lowered to the XNNPACK delegate with
``to_edge_transform_and_lower`` and the XnnpackPartitioner; runs in ExecuTorch's runtime (runtimes/executorch.py).

``--option delegate=none`` lowers nothing: every op runs on ExecuTorch's portable kernels, and every activation then
lives in the memory plan ExecuTorch lays out ahead of time and writes into the program (``memory FILE.pte`` reads
it). That file is named ``{model}.{precision}.portable.pte``. Input float32 NCHW, output float32 logits, batch 1."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from ..errors import install_hint
from ..fileio import staged_path
from . import _common as c
from .base import Converted, ExportRequest, Target

HINT = install_hint("executorch")
TOOLS = ("executorch", "torchao")
DELEGATES = ("xnnpack", "none")


def lower_and_write(model: Any, request: ExportRequest, path: Path, delegate: str) -> None:
    """torch.export -> edge dialect, XNNPACK partitions lowered (unless ``delegate`` is none) -> program -> ``path``."""
    import torch

    exir = c.require("executorch.exir", HINT)
    partitioner = []
    if delegate == "xnnpack":
        xnn = c.require("executorch.backends.xnnpack.partition.xnnpack_partitioner", HINT)
        partitioner = [xnn.XnnpackPartitioner()]
    with torch.no_grad():
        exported = torch.export.export(model, (c.sample_input(request),))
    program = exir.to_edge_transform_and_lower(exported, partitioner=partitioner).to_executorch()
    with open(path, "wb") as fh:
        program.write_to_file(fh)


def tensor_specs(path: Path) -> tuple[tuple[Any, ...], tuple[Any, ...]]:
    from ..runtimes.executorch import pte_tensor_specs

    return pte_tensor_specs(path, c.INPUT_NAME, c.OUTPUT_NAME)


class ExecutorchTarget(Target):
    name: ClassVar[str] = "executorch"
    format: ClassVar[str] = "pte"
    precision: ClassVar[str] = "fp32"
    suffix: ClassVar[str] = ".pte"
    extra: ClassVar[str] = "executorch"
    requires: ClassVar[tuple[str, ...]] = ("executorch",)
    tools: ClassVar[tuple[str, ...]] = TOOLS
    option_names: ClassVar[tuple[str, ...]] = ("delegate",)

    def delegate(self, request: ExportRequest) -> str:
        value = self.given_options(request).get("delegate", "xnnpack")
        return c.choose(self.name, "delegate", value, DELEGATES)

    def path(self, request: ExportRequest, delegate: str) -> Path:
        tag = self.precision if delegate == "xnnpack" else f"{self.precision}.portable"
        return c.artifact_path(request, tag, self.suffix)

    def convert(self, request: ExportRequest) -> Converted:
        delegate = self.delegate(request)
        c.require("executorch.exir", HINT)
        path = self.path(request, delegate)
        with staged_path(path) as tmp:
            lower_and_write(c.torch_model(request), request, tmp, delegate)
            inputs, outputs = tensor_specs(tmp)
        return Converted(path, tmp, inputs, outputs, {"delegate": delegate})
