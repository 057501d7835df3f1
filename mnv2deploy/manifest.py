"""The manifest beside every artifact: what later steps read instead of guessing.

``<artifact>.manifest.json`` records tensors (names, shapes, dtypes, layout, int8 scale/zero point),
preprocessing, labels, the weights it came from, hashes, export options and tool versions.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .contract import InputContract
from .errors import BadArtifactError
from .fileio import sha256_file, write_json_atomic

SCHEMA_VERSION = 1


@dataclass(frozen=True)
class TensorSpec:
    name: str
    shape: tuple[int | None, ...]  # None for a dynamic dimension
    dtype: str  # numpy dtype name: float32, float16, int8, uint8
    layout: str  # NCHW, NHWC or NC
    scale: float | None = None  # int8 quantization of this tensor, when quantized
    zero_point: int | None = None

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "TensorSpec":
        return cls(name=d["name"], shape=tuple(d["shape"]), dtype=d["dtype"], layout=d["layout"],
                   scale=d.get("scale"), zero_point=d.get("zero_point"))


@dataclass(frozen=True)
class Manifest:
    target: str  # registry name, e.g. "tflite-int8"
    format: str  # "onnx", "tflite", "mlpackage"
    precision: str  # "fp32", "fp16", "int8"
    artifact: str  # file name, relative to the manifest's folder
    artifact_sha256: str
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    preprocessing: InputContract
    model: dict[str, Any]  # {"name": "mobilenet_v2", "width_mult", "num_classes", "resolution", "split"}
    weights: dict[str, Any]  # WeightsSpec.to_dict() plus "sha256"
    export_options: dict[str, Any] = field(default_factory=dict)
    tool_versions: dict[str, str] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)  # target-specific facts (e.g. calibration, quantized torch accuracy)
    schema: int = SCHEMA_VERSION

    @property
    def labels(self) -> tuple[str, ...] | None:
        return self.preprocessing.labels

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["preprocessing"] = self.preprocessing.to_dict()
        d["labels"] = list(self.labels) if self.labels else None
        d["inputs"] = [asdict(t) for t in self.inputs]
        d["outputs"] = [asdict(t) for t in self.outputs]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Manifest":
        return cls(target=d["target"], format=d["format"], precision=d["precision"], artifact=d["artifact"],
                   artifact_sha256=d["artifact_sha256"],
                   inputs=tuple(TensorSpec.from_dict(t) for t in d["inputs"]),
                   outputs=tuple(TensorSpec.from_dict(t) for t in d["outputs"]),
                   preprocessing=InputContract.from_dict(d["preprocessing"]), model=dict(d["model"]),
                   weights=dict(d["weights"]), export_options=dict(d.get("export_options", {})),
                   tool_versions=dict(d.get("tool_versions", {})), extra=dict(d.get("extra", {})),
                   schema=int(d.get("schema", SCHEMA_VERSION)))


def manifest_path(artifact: Path) -> Path:
    return Path(artifact).with_name(Path(artifact).name + ".manifest.json")


def write_manifest(artifact: Path, manifest: Manifest) -> Path:
    path = manifest_path(artifact)
    write_json_atomic(path, manifest.to_dict())
    return path


def read_manifest(artifact: Path, verify: bool = True) -> Manifest:
    """Read and validate the manifest beside ``artifact``; with ``verify``, check the artifact's sha256."""
    artifact = Path(artifact)
    if not artifact.exists():
        raise BadArtifactError(f"{artifact} does not exist", "pass the path of an exported artifact")
    path = manifest_path(artifact)
    try:
        manifest = Manifest.from_dict(json.loads(path.read_text()))
    except FileNotFoundError:
        raise BadArtifactError(f"no manifest beside {artifact} (expected {path.name})",
                               "re-export with `mnv2deploy export`, which writes one") from None
    except (json.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError, UnicodeDecodeError) as e:
        raise BadArtifactError(f"manifest {path} is malformed ({type(e).__name__}: {str(e)[:100]})",
                               "re-export the artifact") from None
    if Path(manifest.artifact).name != manifest.artifact or manifest.artifact != artifact.name:
        raise BadArtifactError(f"manifest {path.name} describes '{manifest.artifact}', not {artifact.name}",
                               "keep each artifact beside its own manifest; re-export if unsure")
    if verify:
        digest = sha256_file(artifact)
        if digest != manifest.artifact_sha256:
            raise BadArtifactError(f"{artifact.name} sha256 {digest[:12]}... does not match its manifest "
                                   f"({str(manifest.artifact_sha256)[:12]}...): the file changed after export",
                                   "re-export it, or restore the original file")
    return manifest


def tool_versions(*packages: str) -> dict[str, str]:
    """Installed versions of the named distributions (absent ones are left out)."""
    from importlib.metadata import PackageNotFoundError, version

    out = {"mnv2deploy": _own_version()}
    for p in packages:
        try:
            out[p] = version(p)
        except PackageNotFoundError:
            pass
    return out


def _own_version() -> str:
    from . import __version__

    return __version__
