"""`coreml`: a Core ML ML Program (.mlpackage) via coremltools, fp16 compute by default, iOS 16 or newer.

Input either as an image (``input_type=image``, the default: a pixel buffer with the preprocessing baked in) or as
the normalized float tensor the other targets take (``input_type=tensor``). Core ML's ImageType computes
``scale * pixel + bias`` with ONE scale for all channels and a bias per channel, so a per-channel std cannot go
into it: when the std differs between channels, 1/std is folded into the first convolution's input channels
(exact, zero padding included, since padding happens after normalization where 0 stays 0) and the image type only
does ``pixel / 255 - mean``. Labels and the preprocessing are written into the model's metadata.

Core ML cannot run on Linux; conversion can.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from ..contract import InputContract
from ..errors import install_hint
from ..manifest import TensorSpec
from ..fileio import staged_path
from . import _common as c
from .base import Converted, ExportRequest, Target

PRECISIONS = ("fp16", "fp32")
INPUT_TYPES = ("image", "tensor")
ACTIVATIONS = ("float", "int8")
CHOICES = {"precision": PRECISIONS, "input_type": INPUT_TYPES, "activations": ACTIVATIONS}
HINT = install_hint("coreml")
TOOLS = ("coremltools",)
IMAGE_INPUT, TENSOR_INPUT, OUTPUT = "image", c.INPUT_NAME, c.OUTPUT_NAME
METADATA_PREFIX = "mnv2deploy."


@dataclass(frozen=True)
class CoremlOptions:
    """``--option KEY=VALUE`` of the Core ML targets (docs/ios.md)."""
    precision: str = "fp16"  # compute precision of the ML Program
    input_type: str = "image"
    activations: str = "float"  # coreml-int8 only: "int8" = W8A8 quantized on the torch side
    # coreml-int8: embedded eval images the quantized torch model's accuracy is measured on; 500 = all of them,
    # the same images parity uses, so the static check and parity judge the same data
    eval_samples: int = 500

    @classmethod
    def parse(cls, given: dict[str, Any], target: str) -> "CoremlOptions":
        """Values of ``given`` (as ``Target.given_options`` returns them: names already checked) validated;
        a value that is not one of the choices is a UsageError listing them."""
        values: dict[str, Any] = {}
        for name, value in given.items():
            if name == "eval_samples":
                values[name] = c.whole_number(target, name, value)
            else:
                values[name] = c.choose(target, name, value, CHOICES[name])
        return cls(**values)


@dataclass(frozen=True)
class InputPlan:
    """How pixels or tensors reach the network; ``to_model_space`` maps the normalized batch to what it takes."""
    kind: str  # "image" or "tensor"
    scale: float | None  # ImageType scale (image only)
    bias: tuple[float, float, float] | None  # ImageType per-channel bias (image only)
    folded_std: tuple[float, float, float] | None  # 1/std folded into the first conv (non-uniform std)

    def to_model_space(self, batch: np.ndarray) -> np.ndarray:
        """Normalized NCHW -> the network's input space after the fold ((pixel/255 - mean) when std was folded)."""
        if self.folded_std is None:
            return batch
        return (batch * np.asarray(self.folded_std, dtype=np.float32).reshape(1, 3, 1, 1)).astype(np.float32)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "image_scale": self.scale, "image_bias": list(self.bias) if self.bias else None,
                "color_layout": "RGB" if self.kind == "image" else None,
                "std_folded_into_first_conv": list(self.folded_std) if self.folded_std else None}


def plan_input(contract: InputContract, input_type: str) -> InputPlan:
    if input_type == "tensor":
        return InputPlan("tensor", None, None, None)
    mean, std = contract.mean, contract.std
    if max(std) - min(std) < 1e-9:  # one std: all of it fits in ImageType's scalar scale
        s = float(std[0])
        return InputPlan("image", 1.0 / (255.0 * s), tuple(float(-m / s) for m in mean), None)
    return InputPlan("image", 1.0 / 255.0, tuple(float(-m) for m in mean), tuple(float(v) for v in std))


def torch_model_for_export(request: ExportRequest, plan: InputPlan) -> Any:
    """The shared export copy of the reference (split into channel groups if asked) with 1/std folded in when the
    plan says so."""
    import torch

    model = c.torch_model(request)
    if plan.folded_std is None:
        return model
    std = torch.tensor(plan.folded_std, dtype=torch.float32).reshape(1, 3, 1, 1)
    stem = model.features[0] if hasattr(model, "features") else None
    conv = stem[0] if isinstance(stem, torch.nn.Sequential) and isinstance(stem[0], torch.nn.Conv2d) else None
    if conv is not None and conv.in_channels == 3:
        with torch.no_grad():  # the plain model: fold into the stem conv's input channels, no extra op
            conv.weight.div_(std)
        return model
    return _divide_input_by_std(model, std)  # a split model reads the image in several convs: one multiply up front


def _divide_input_by_std(model: Any, std: Any) -> Any:
    import torch

    class DivideInputByStd(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.inner = model
            self.register_buffer("inv_std", 1.0 / std)

        def forward(self, x: Any) -> Any:
            return self.inner(x * self.inv_std)

    return DivideInputByStd().eval()


def convert(traced: Any, request: ExportRequest, plan: InputPlan, precision: str, deployment: str) -> Any:
    """torch.jit trace -> ML Program, batch 1."""
    ct = c.require("coremltools", HINT)
    r = request.resolution
    if plan.kind == "image":
        inputs = [ct.ImageType(name=IMAGE_INPUT, shape=(1, 3, r, r), scale=plan.scale, bias=list(plan.bias),
                               color_layout=ct.colorlayout.RGB)]
    else:
        inputs = [ct.TensorType(name=TENSOR_INPUT, shape=(1, 3, r, r), dtype=np.float32)]
    return ct.convert(traced, inputs=inputs, outputs=[ct.TensorType(name=OUTPUT, dtype=np.float32)],
                      convert_to="mlprogram", minimum_deployment_target=getattr(ct.target, deployment),
                      compute_precision=ct.precision.FLOAT16 if precision == "fp16" else ct.precision.FLOAT32)


def trace(model: Any, request: ExportRequest) -> Any:
    import torch

    with torch.no_grad():
        return torch.jit.trace(model, c.sample_input(request), check_trace=False)


def annotate(mlmodel: Any, request: ExportRequest, plan: InputPlan, extra: dict[str, Any]) -> None:
    """Labels, preprocessing and provenance in the package, so an app needs nothing but the .mlpackage."""
    spec = request.reference.spec
    contract = spec.contract.at_resolution(request.resolution)
    mlmodel.short_description = (f"MobileNetV2 {spec.width_mult:g} ({spec.num_classes} classes, weights {spec.id}) "
                                 f"at {request.resolution}x{request.resolution}; output: logits")
    mlmodel.author = "mnv2deploy"
    meta = mlmodel.user_defined_metadata
    meta[METADATA_PREFIX + "labels"] = json.dumps(list(contract.labels) if contract.labels else None)
    meta[METADATA_PREFIX + "preprocessing"] = json.dumps(contract.to_dict())
    meta[METADATA_PREFIX + "input"] = json.dumps(plan.to_dict())
    meta[METADATA_PREFIX + "weights_sha256"] = str(request.reference.weights_sha256)
    for k, v in extra.items():
        meta[METADATA_PREFIX + k] = json.dumps(v)
    name = IMAGE_INPUT if plan.kind == "image" else TENSOR_INPUT
    mlmodel.input_description[name] = (
        f"RGB image {request.resolution}x{request.resolution}; resize shorter side to {contract.resize} and center "
        f"crop first; normalization is inside the model" if plan.kind == "image"
        else "float32 NCHW, (pixel/255 - mean) / std per channel (see metadata mnv2deploy.preprocessing)")
    mlmodel.output_description[OUTPUT] = "logits (no softmax), classes in the order of mnv2deploy.labels"


def tensor_specs(request: ExportRequest, plan: InputPlan) -> tuple[tuple[TensorSpec, ...], tuple[TensorSpec, ...]]:
    """What the package promises; the static checks compare the written spec against these."""
    r = request.resolution
    if plan.kind == "image":  # a pixel buffer: 8-bit RGB, interleaved
        inp = TensorSpec(IMAGE_INPUT, (1, r, r, 3), "uint8", "NHWC")
    else:
        inp = TensorSpec(TENSOR_INPUT, (1, 3, r, r), "float32", "NCHW")
    return (inp,), (TensorSpec(OUTPUT, (1, request.reference.spec.num_classes), "float32", "NC"),)


def write_package(target: Target, request: ExportRequest, mlmodel: Any, plan: InputPlan, tag: str, precision: str,
                  options: dict[str, Any], extra: dict[str, Any]) -> Converted:
    """The package staged as ``{model}.{tag}.mlpackage``; ``Target.export`` publishes it with its manifest."""
    path = c.artifact_path(request, tag, target.suffix)
    with staged_path(path) as staged:  # the staged name ends in .mlpackage, which coremltools insists on
        mlmodel.save(str(staged))
    inputs, outputs = tensor_specs(request, plan)
    return Converted(path, staged, inputs, outputs, options, {"coreml_input": plan.to_dict(), **extra}, precision)


class CoremlTarget(Target):
    name: ClassVar[str] = "coreml"
    format: ClassVar[str] = "mlpackage"
    precision: ClassVar[str] = "fp16"  # the default; --option precision=fp32 changes it
    suffix: ClassVar[str] = ".mlpackage"
    extra: ClassVar[str] = "coreml"
    requires: ClassVar[tuple[str, ...]] = ("coremltools",)
    tools: ClassVar[tuple[str, ...]] = TOOLS
    option_names: ClassVar[tuple[str, ...]] = ("precision", "input_type")
    deployment: ClassVar[str] = "iOS16"

    def parse_options(self, request: ExportRequest) -> CoremlOptions:
        opts = CoremlOptions.parse(self.given_options(request), self.name)
        c.require("coremltools", HINT)
        return opts

    def convert(self, request: ExportRequest) -> Converted:
        opts = self.parse_options(request)
        plan = plan_input(request.reference.spec.contract.at_resolution(request.resolution), opts.input_type)
        mlmodel = convert(trace(torch_model_for_export(request, plan), request), request, plan, opts.precision,
                          self.deployment)
        options = {"precision": opts.precision, "input_type": opts.input_type,
                   "minimum_deployment_target": self.deployment}
        annotate(mlmodel, request, plan, {"export_options": options})
        return write_package(self, request, mlmodel, plan, opts.precision, opts.precision, options, {})
