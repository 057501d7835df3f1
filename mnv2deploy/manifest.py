"""The manifest beside every artifact: what later steps read instead of guessing.

``<artifact>.manifest.json`` records tensors (names, shapes, dtypes, layout, int8 scale/zero point),
preprocessing, labels, the weights it came from, hashes, export options and tool versions.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .contract import InputContract
from .errors import BadArtifactError
from .fileio import discard, publish, sha256_file, staged_path, write_json_atomic

SCHEMA_VERSION = 1
DTYPES = ("float32", "float16", "int8", "uint8", "int32", "int64")
LAYOUTS = ("NCHW", "NHWC", "NC")
MAX_MANIFEST_BYTES = 16 << 20  # ours are a few KB; anything this large is not a manifest


class SchemaError(ValueError):
    """A manifest field with the wrong type or value; the message names the field."""


def _field(d: Any, key: str, kinds: type | tuple[type, ...], where: str, optional: bool = False) -> Any:
    if not isinstance(d, dict):
        raise SchemaError(f"{where or 'manifest'} is {type(d).__name__}, not an object")
    if key not in d or d[key] is None:
        if optional:
            return None
        raise SchemaError(f"{where + '.' if where else ''}{key} is missing")
    v = d[key]
    kinds = kinds if isinstance(kinds, tuple) else (kinds,)
    if isinstance(v, bool) and bool not in kinds or not isinstance(v, kinds):
        raise SchemaError(f"{where + '.' if where else ''}{key} is {type(v).__name__}, "
                          f"not {' or '.join(k.__name__ for k in kinds)}")
    if isinstance(v, float) and not math.isfinite(v):
        raise SchemaError(f"{where + '.' if where else ''}{key} is not a finite number")
    return v


def _tensor(d: Any, where: str) -> "TensorSpec":
    shape = _field(d, "shape", list, where)
    if not 1 <= len(shape) <= 8 or not all(s is None or (isinstance(s, int) and not isinstance(s, bool) and 0 <= s < 1 << 31)
                                           for s in shape):
        raise SchemaError(f"{where}.shape {str(shape)[:60]} is not 1 to 8 sizes (non-negative integers or null)")
    dtype, layout = _field(d, "dtype", str, where), _field(d, "layout", str, where)
    if dtype not in DTYPES:
        raise SchemaError(f"{where}.dtype {dtype[:30]!r} is not one of {', '.join(DTYPES)}")
    if layout not in LAYOUTS:
        raise SchemaError(f"{where}.layout {layout[:30]!r} is not one of {', '.join(LAYOUTS)}")
    scale = _field(d, "scale", (int, float), where, optional=True)
    zero_point = _field(d, "zero_point", int, where, optional=True)
    if scale is not None and not scale > 0:
        raise SchemaError(f"{where}.scale must be positive")
    if zero_point is not None and not -(1 << 31) <= zero_point < 1 << 31:
        raise SchemaError(f"{where}.zero_point is out of range")
    pixels = _field(d, "pixels", dict, where, optional=True)
    if pixels is not None:
        for key in ("mean", "std"):
            v = _field(pixels, key, list, f"{where}.pixels")
            if len(v) != 3 or not all(isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)
                                      and (key == "mean" or x > 0) for x in v):
                raise SchemaError(f"{where}.pixels.{key} must be three finite numbers (std positive)")
        if not (dtype == "uint8" and scale is None or dtype == "int8" and scale is not None and zero_point is not None):
            raise SchemaError(f"{where}.pixels is for camera bytes (unquantized uint8, or quantized int8), "
                              f"not {dtype}{'' if scale is None else ' quantized'}")
        pixels = {"mean": [float(x) for x in pixels["mean"]], "std": [float(x) for x in pixels["std"]]}
    return TensorSpec(name=_field(d, "name", str, where), shape=tuple(shape), dtype=dtype, layout=layout,
                      scale=float(scale) if scale is not None else None, zero_point=zero_point, pixels=pixels)


def _tensors(d: dict[str, Any], key: str) -> tuple["TensorSpec", ...]:
    items = _field(d, key, list, "")
    if not items or len(items) > 64:
        raise SchemaError(f"{key} must list 1 to 64 tensors")
    return tuple(_tensor(t, f"{key}[{i}]") for i, t in enumerate(items))


def _contract(d: Any) -> InputContract:
    w = "preprocessing"
    resolution, resize = _field(d, "resolution", int, w), _field(d, "resize", int, w)
    if not 1 <= resolution <= 1 << 14 or not resolution <= resize <= 1 << 15:
        raise SchemaError(f"{w}.resolution/resize {resolution}/{resize} are not sizes with resize >= resolution")
    for key in ("mean", "std"):
        v = _field(d, key, list, w)
        if len(v) != 3 or not all(isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) for x in v):
            raise SchemaError(f"{w}.{key} must be three finite numbers")
    if not all(x > 0 for x in d["std"]):
        raise SchemaError(f"{w}.std must be positive")
    labels = _field(d, "labels", list, w, optional=True)
    if labels is not None and not all(isinstance(x, str) for x in labels):
        raise SchemaError(f"{w}.labels must be strings")
    _field(d, "interpolation", str, w, optional=True)
    return InputContract.from_dict(d)


@dataclass(frozen=True)
class TensorSpec:
    name: str
    shape: tuple[int | None, ...]  # None for a dynamic dimension
    dtype: str  # numpy dtype name: float32, float16, int8, uint8
    layout: str  # NCHW, NHWC or NC
    scale: float | None = None  # int8 quantization of this tensor, when quantized
    zero_point: int | None = None
    # camera bytes: this input takes raw 0..255 RGB pixels (uint8, or int8 quantized from them: byte - 128) and the
    # model normalizes them with this mean/std (on 0..1 pixels); the edges turn preprocessed images back into
    # exactly those bytes
    pixels: dict[str, list[float]] | None = field(default=None, compare=False)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "TensorSpec":
        return cls(name=d["name"], shape=tuple(d["shape"]), dtype=d["dtype"], layout=d["layout"],
                   scale=d.get("scale"), zero_point=d.get("zero_point"), pixels=d.get("pixels"))


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
        """Validated: every field has the type and range later steps rely on, else SchemaError naming it."""
        if not isinstance(d, dict):
            raise SchemaError(f"the document is {type(d).__name__}, not an object")
        text = {k: _field(d, k, str, "") for k in ("target", "format", "precision", "artifact", "artifact_sha256")}
        if not re.fullmatch(r"[0-9a-f]{64}", text["artifact_sha256"]):
            raise SchemaError("artifact_sha256 is not 64 lowercase hex digits")
        schema = _field(d, "schema", int, "", optional=True)
        if schema is not None and schema > SCHEMA_VERSION:
            raise SchemaError(f"schema {schema} is newer than this mnv2deploy understands ({SCHEMA_VERSION})")
        inputs, preprocessing = _tensors(d, "inputs"), _contract(_field(d, "preprocessing", dict, ""))
        first = inputs[0]
        if len(first.shape) == 4 and first.layout in ("NCHW", "NHWC"):
            hw = first.shape[2:] if first.layout == "NCHW" else first.shape[1:3]
            if any(s is not None and s != preprocessing.resolution for s in hw):
                raise SchemaError(f"inputs[0] is {first.layout} {list(first.shape)} but preprocessing.resolution "
                                  f"is {preprocessing.resolution}")
        return cls(**text, inputs=inputs, outputs=_tensors(d, "outputs"), preprocessing=preprocessing,
                   model=dict(_field(d, "model", dict, "")), weights=dict(_field(d, "weights", dict, "")),
                   export_options=dict(_field(d, "export_options", dict, "", optional=True) or {}),
                   tool_versions=dict(_field(d, "tool_versions", dict, "", optional=True) or {}),
                   extra=dict(_field(d, "extra", dict, "", optional=True) or {}),
                   schema=schema if schema is not None else SCHEMA_VERSION)


def manifest_path(artifact: Path) -> Path:
    return Path(artifact).with_name(Path(artifact).name + ".manifest.json")


def write_manifest(artifact: Path, manifest: Manifest) -> Path:
    path = manifest_path(artifact)
    write_json_atomic(path, manifest.to_dict())
    return path


def publish_with_manifest(staged: Path, artifact: Path, manifest: Manifest) -> Path:
    """Publish a staged artifact (``fileio.staged_path``) together with its manifest, under the folder's lock.

    The manifest is staged too, then both are renamed in one locked step: two exports into the same folder each
    leave a matching pair, and an export killed before this point leaves the previous pair untouched."""
    path = manifest_path(artifact)
    try:
        with staged_path(path) as tmp:
            tmp.write_text(json.dumps(manifest.to_dict(), indent=2) + "\n")
    except BaseException:
        discard(staged)
        raise
    publish((staged, Path(artifact)), (tmp, path))
    return path


def read_manifest(artifact: Path, verify: bool = True) -> Manifest:
    """Read and validate the manifest beside ``artifact``; with ``verify``, check the artifact's sha256."""
    artifact = Path(artifact)
    if not artifact.exists():
        raise BadArtifactError(f"{artifact} does not exist", "pass the path of an exported artifact")
    path = manifest_path(artifact)
    try:
        if path.stat().st_size > MAX_MANIFEST_BYTES:
            raise SchemaError(f"{path.stat().st_size:,} bytes is too large for a manifest")
        manifest = Manifest.from_dict(json.loads(path.read_bytes()))
    except FileNotFoundError:
        raise BadArtifactError(f"no manifest beside {artifact} (expected {path.name})",
                               "re-export with `mnv2deploy export`, which writes one") from None
    except OSError as e:
        raise BadArtifactError(f"cannot read manifest {path}: {e.strerror or e}", "re-export the artifact") from None
    except SchemaError as e:
        raise BadArtifactError(f"manifest {path.name} is malformed: {str(e)[:160]}", "re-export the artifact") from None
    except (ValueError, RecursionError) as e:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        first = str(e).splitlines()[0][:100] if str(e) else ""
        raise BadArtifactError(f"manifest {path.name} is not valid JSON ({type(e).__name__}: {first})",
                               "re-export the artifact") from None
    if Path(manifest.artifact).name != manifest.artifact:
        raise BadArtifactError(f"manifest {path.name} describes '{manifest.artifact}', not {artifact.name}",
                               "keep each artifact beside its own manifest; re-export if unsure")
    if manifest.artifact != artifact.name:
        # renamed together with its manifest: the manifest names its artifact by content (sha256), not by path
        if sha256_file(artifact) != manifest.artifact_sha256:
            raise BadArtifactError(f"manifest {path.name} describes '{manifest.artifact}', not {artifact.name} "
                                   "(name and sha256 both differ)",
                                   "keep each artifact beside its own manifest; re-export if unsure")
        return manifest
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
