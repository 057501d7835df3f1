"""What every export target implements, and the request/result they exchange with the CLI."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Protocol

from ..manifest import Manifest
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


class Target(Protocol):
    name: ClassVar[str]  # registry and --target name, e.g. "tflite-int8"
    format: ClassVar[str]  # "onnx", "tflite", "mlpackage"
    precision: ClassVar[str]  # "fp32", "fp16", "int8"
    suffix: ClassVar[str]  # ".onnx", ".tflite", ".mlpackage"

    def unavailable_reason(self) -> str | None:
        """None when this target can export here, else why not (missing package with install hint, platform)."""

    def export(self, request: ExportRequest) -> ExportResult:
        ...
