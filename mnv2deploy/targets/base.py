"""What every export target is: its capabilities as class attributes, a ``convert`` step, and one ``export`` that
checks the request against those capabilities and publishes the artifact together with its manifest.

A new target is one module with a ``Target`` subclass and one line in ``targets/__init__.py``; the CLI, the main job
and the tests read everything else (options, dynamic batch, split, suffix, precision) from the class.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from ..errors import UsageError, install_hint
from ..manifest import Manifest, TensorSpec
from ..weights import Reference


@dataclass(frozen=True)
class ExportRequest:
    reference: Reference  # the PyTorch model (eval mode), its weights spec and sha256
    resolution: int
    out_dir: Path
    calib: Path | None = None  # image folder; None = the embedded calibration set
    calib_samples: int = 200
    split: int = 1  # channel groups per inverted residual (memory issue); 1 = plain model
    dynamic_batch: bool = False
    options: dict[str, Any] = field(default_factory=dict)  # target-specific, validated by the target
    # int8: also save the quantized torch model's logits on the embedded eval set beside the artifact (a pass over
    # 500 images; parity rebuilds what it needs otherwise, so export does not pay for it unless asked)
    quantized_reference: bool = False


@dataclass(frozen=True)
class Converted:
    """What a target's ``convert`` wrote and what its manifest must record. ``staged`` is the artifact in its hidden
    staging folder (``fileio.staged_path``); ``export`` publishes it under ``artifact`` beside the manifest."""
    artifact: Path
    staged: Path
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    options: dict[str, Any] = field(default_factory=dict)  # export options the manifest records
    extra: dict[str, Any] = field(default_factory=dict)  # target-specific facts (calibration, quantized reference)
    precision: str | None = None  # when an option chose it (``coreml --option precision=fp32``)


@dataclass(frozen=True)
class ExportResult:
    target: str
    artifact: Path
    manifest_path: Path
    manifest: Manifest
    seconds: float
    size_bytes: int

    def to_dict(self) -> dict[str, Any]:
        return {"target": self.target, "artifact": str(self.artifact), "manifest": str(self.manifest_path),
                "seconds": round(self.seconds, 2), "size_bytes": self.size_bytes,
                "precision": self.manifest.precision, "sha256": self.manifest.artifact_sha256}


def option_key(name: str) -> str:
    """``input-type`` (as typed after --option) and ``input_type`` are the same option."""
    return name.strip().replace("-", "_")


def option_label(key: str) -> str:
    return key.replace("_", "-")


class Target:
    """One export route. Subclasses set the class attributes and implement ``convert``."""
    name: ClassVar[str]  # registry and --target name, e.g. "tflite-int8"
    format: ClassVar[str]  # manifest format, which picks the runtime: "onnx", "tflite", "mlpackage"
    precision: ClassVar[str]  # "fp32", "fp16", "int8" (an option may choose another, see Converted.precision)
    suffix: ClassVar[str]  # ".onnx", ".tflite", ".mlpackage"
    extra: ClassVar[str]  # the mnv2deploy extra that installs what it needs (pyproject.toml)
    requires: ClassVar[tuple[str, ...]] = ()  # modules that must import for the export to run
    tools: ClassVar[tuple[str, ...]] = ()  # distributions whose versions the manifest records (torch always)
    option_names: ClassVar[tuple[str, ...]] = ()  # --option KEY=VALUE names it takes
    supports_dynamic_batch: ClassVar[bool] = False
    supports_split: ClassVar[bool] = True

    def unavailable_reason(self) -> str | None:
        """None when this target can export here, else why not (missing package with install hint, platform)."""
        import importlib.util

        for module in self.requires:
            if importlib.util.find_spec(module) is None:
                return f"{module} is not installed ({install_hint(self.extra)})"
        return None

    def given_options(self, request: ExportRequest) -> dict[str, Any]:
        """The request's ``--option`` values keyed by ``option_key`` (unset ones dropped)."""
        return {option_key(k): v for k, v in request.options.items() if v is not None}

    def unsupported(self, request: ExportRequest) -> str | None:
        """Why this target cannot take the request as asked (short, for ``--target all`` skips), or None."""
        unknown = sorted(set(self.given_options(request)) - set(self.option_names))
        if unknown:
            return f"no option {', '.join(map(option_label, unknown))}"
        if request.dynamic_batch and not self.supports_dynamic_batch:
            return "no --dynamic-batch support"
        if request.split > 1 and not self.supports_split:
            return "no --split support"
        return None

    def check(self, request: ExportRequest) -> None:
        """A UsageError naming what is supported where, for anything this target cannot do."""
        from . import TARGETS

        if request.split < 1:
            raise UsageError(f"--split must be at least 1, got {request.split}")
        unknown = sorted(set(self.given_options(request)) - set(self.option_names))
        if unknown:
            shown = ", ".join(map(option_label, self.option_names))
            raise UsageError(f"target {self.name} has no option {', '.join(map(option_label, unknown))}",
                             f"its options are {shown}" if shown else f"{self.name} takes no extra options")
        for flag, wanted, attr, what in (("--dynamic-batch", request.dynamic_batch, "supports_dynamic_batch",
                                          "exports batch 1 only"),
                                         ("--split", request.split > 1, "supports_split", "cannot split blocks")):
            if wanted and not getattr(self, attr):
                able = [t.name for t in TARGETS.values() if getattr(t, attr)]
                raise UsageError(f"{self.name} {what}", f"{flag} works with: {', '.join(able) or 'no target'}")

    def quantized_torch_model(self, model: Any, resolution: int, calib: Any, manifest: Any = None) -> Any | None:
        """int8 targets that convert a quantized torch model: that model, rebuilt from the float ``model`` and the
        calibration images (NCHW float32) exactly as ``convert`` builds it (the export options recorded in
        ``manifest``), taking preprocessed NCHW float32 images, so parity can measure conversion fidelity without a
        pass inside export. None: the target has no separate quantized torch model."""
        return None

    def convert(self, request: ExportRequest) -> Converted:
        """Write the artifact into a staging path and describe it; nothing is published here."""
        raise NotImplementedError

    def export(self, request: ExportRequest) -> ExportResult:
        from ._common import publish

        from ..threads import cap_torch

        self.check(request)
        cap_torch()  # tracing, calibration and converters: never torch's all-cores default (threads.py)
        started = time.perf_counter()
        return publish(self, request, self.convert(request), started)
