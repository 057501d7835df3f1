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

import copy
import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from ..contract import InputContract
from ..errors import MissingToolError, UsageError
from ..fileio import atomic_path, sha256_file
from ..manifest import Manifest, TensorSpec, tool_versions, write_manifest
from .base import ExportRequest, ExportResult

PRECISIONS = ("fp16", "fp32")
INPUT_TYPES = ("image", "tensor")
ACTIVATIONS = ("float", "int8")
INSTALL_HINT = "pip install 'mnv2deploy[coreml]' (coremltools==9.0)"
IMAGE_INPUT, TENSOR_INPUT, OUTPUT = "image", "input", "logits"
METADATA_PREFIX = "mnv2deploy."


@dataclass(frozen=True)
class CoremlOptions:
    precision: str = "fp16"  # compute precision of the ML Program
    input_type: str = "image"
    activations: str = "float"  # coreml-int8 only: "int8" = W8A8 quantized on the torch side
    eval_samples: int = 200  # coreml-int8: images used to measure the quantized torch model's accuracy

    @classmethod
    def parse(cls, options: dict[str, Any], target: str, allowed: tuple[str, ...]) -> "CoremlOptions":
        given = {k.replace("-", "_"): v for k, v in options.items() if v is not None}
        unknown = sorted(set(given) - set(allowed))
        if unknown:
            raise UsageError(f"target {target} has no option {', '.join(unknown)}",
                             f"its options are {', '.join(allowed)}")
        if "eval_samples" in given:
            try:
                given["eval_samples"] = int(given["eval_samples"])
            except (TypeError, ValueError):
                raise UsageError(f"{target}: eval-samples must be a whole number, got {given['eval_samples']!r}") from None
        opts = cls(**{k: (v if k == "eval_samples" else str(v).lower()) for k, v in given.items()})
        for name, valid in (("precision", PRECISIONS), ("input_type", INPUT_TYPES), ("activations", ACTIVATIONS)):
            if getattr(opts, name) not in valid:
                raise UsageError(f"{target}: {name.replace('_', '-')} {getattr(opts, name)!r} is not supported",
                                 f"choose one of {', '.join(valid)}")
        if opts.eval_samples < 1:
            raise UsageError(f"{target}: eval-samples must be at least 1")
        return opts


def require_coremltools() -> Any:
    try:
        import coremltools as ct
    except ImportError:
        raise MissingToolError("coremltools is not installed", INSTALL_HINT) from None
    return ct


def coremltools_missing() -> str | None:
    import importlib.util

    return None if importlib.util.find_spec("coremltools") else f"coremltools is not installed ({INSTALL_HINT})"


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
    """A copy of the reference (split into channel groups if asked) with 1/std folded in when the plan says so."""
    import torch

    model = copy.deepcopy(request.reference.model).eval()
    if request.split > 1:
        from ..split import split_blocks

        model = split_blocks(model, request.split).eval()
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
    ct = require_coremltools()
    r = request.resolution
    if plan.kind == "image":
        inputs = [ct.ImageType(name=IMAGE_INPUT, shape=(1, 3, r, r), scale=plan.scale, bias=list(plan.bias),
                               color_layout=ct.colorlayout.RGB)]
    else:
        inputs = [ct.TensorType(name=TENSOR_INPUT, shape=(1, 3, r, r), dtype=np.float32)]
    return ct.convert(traced, inputs=inputs, outputs=[ct.TensorType(name=OUTPUT, dtype=np.float32)],
                      convert_to="mlprogram", minimum_deployment_target=getattr(ct.target, deployment),
                      compute_precision=ct.precision.FLOAT16 if precision == "fp16" else ct.precision.FLOAT32)


def trace(model: Any, resolution: int) -> Any:
    import torch

    with torch.no_grad():
        return torch.jit.trace(model, torch.zeros(1, 3, resolution, resolution), check_trace=False)


def check_batch(request: ExportRequest, target: str) -> None:
    if request.dynamic_batch:
        raise UsageError(f"{target} exports batch 1 only (an image input is one pixel buffer)",
                         "drop --dynamic-batch for Core ML targets")


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


def save_mlpackage(mlmodel: Any, final: Path) -> None:
    """Write the package directory atomically: coremltools insists on a .mlpackage name, so stage one beside."""
    with atomic_path(final) as tmp:
        staging = tmp.with_name(tmp.name + ".mlpackage")
        try:
            mlmodel.save(str(staging))
            os.replace(staging, tmp)
        finally:
            if staging.exists():
                shutil.rmtree(staging, ignore_errors=True)


def tensor_specs(request: ExportRequest, plan: InputPlan) -> tuple[tuple[TensorSpec, ...], tuple[TensorSpec, ...]]:
    r = request.resolution
    if plan.kind == "image":  # a pixel buffer: 8-bit RGB, interleaved
        inp = TensorSpec(IMAGE_INPUT, (1, r, r, 3), "uint8", "NHWC")
    else:
        inp = TensorSpec(TENSOR_INPUT, (1, 3, r, r), "float32", "NCHW")
    return (inp,), (TensorSpec(OUTPUT, (1, request.reference.spec.num_classes), "float32", "NC"),)


def artifact_name(request: ExportRequest, precision_tag: str) -> str:
    spec = request.reference.spec
    split = f"_split{request.split}" if request.split > 1 else ""
    return f"mobilenet_v2_{spec.width_mult:g}_{request.resolution}{split}.{precision_tag}.mlpackage"


def finish(target: Any, request: ExportRequest, path: Path, plan: InputPlan, precision: str,
           options: dict[str, Any], extra: dict[str, Any], started: float) -> ExportResult:
    """Manifest beside the package and the ExportResult."""
    spec = request.reference.spec
    inputs, outputs = tensor_specs(request, plan)
    manifest = Manifest(
        target=target.name, format=target.format, precision=precision, artifact=path.name,
        artifact_sha256=sha256_file(path), inputs=inputs, outputs=outputs,
        preprocessing=spec.contract.at_resolution(request.resolution),
        model={"name": "mobilenet_v2", "width_mult": spec.width_mult, "num_classes": spec.num_classes,
               "resolution": request.resolution, "split": request.split},
        weights={**spec.to_dict(), "sha256": request.reference.weights_sha256},
        export_options=options, tool_versions=tool_versions("torch", "coremltools"),
        extra={"coreml_input": plan.to_dict(), **extra})
    manifest_file = write_manifest(path, manifest)
    size = sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return ExportResult(target.name, path, manifest_file, manifest, time.perf_counter() - started, size)


class CoremlTarget:
    name: ClassVar[str] = "coreml"
    format: ClassVar[str] = "mlpackage"
    precision: ClassVar[str] = "fp16"
    suffix: ClassVar[str] = ".mlpackage"
    option_names: ClassVar[tuple[str, ...]] = ("precision", "input_type")
    deployment: ClassVar[str] = "iOS16"

    def unavailable_reason(self) -> str | None:
        return coremltools_missing()

    def export(self, request: ExportRequest) -> ExportResult:
        started = time.perf_counter()
        opts = CoremlOptions.parse(request.options, self.name, self.option_names)
        check_batch(request, self.name)
        require_coremltools()
        plan = plan_input(request.reference.spec.contract.at_resolution(request.resolution), opts.input_type)
        mlmodel = convert(trace(torch_model_for_export(request, plan), request.resolution), request, plan,
                          opts.precision, self.deployment)
        options = {"precision": opts.precision, "input_type": opts.input_type,
                   "minimum_deployment_target": self.deployment}
        annotate(mlmodel, request, plan, {"export_options": options})
        path = Path(request.out_dir) / artifact_name(request, opts.precision)
        save_mlpackage(mlmodel, path)
        return finish(self, request, path, plan, opts.precision, options, {}, started)
