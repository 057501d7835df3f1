"""Pieces every export target shares: the torch model to convert, artifact names, calibration batches, option
values, and publishing the artifact together with its manifest."""

from __future__ import annotations

import copy
import time
from pathlib import Path
from typing import Any

import numpy as np

from ..data import Batch, load_dataset
from ..errors import BadDataError, MissingToolError, UsageError
from ..fileio import atomic_path, discard, sha256_file
from ..manifest import Manifest, publish_with_manifest, tool_versions
from .base import Converted, ExportRequest, ExportResult, Target

OUTPUT_NAME = "logits"
INPUT_NAME = "input"


def model_tag(request: ExportRequest) -> str:
    """``mobilenet_v2-1.0-224`` or ``mobilenet_v2-1.0-224-split4``: width, resolution and split in the name."""
    spec = request.reference.spec
    split = f"-split{request.split}" if request.split > 1 else ""
    w = spec.width_mult
    width = f"{w:.1f}" if round(w, 1) == w else f"{w:g}"
    return f"mobilenet_v2-{width}-{request.resolution}{split}"


def artifact_path(request: ExportRequest, precision: str, suffix: str) -> Path:
    return Path(request.out_dir) / f"{model_tag(request)}.{precision}{suffix}"


def torch_model(request: ExportRequest) -> Any:
    """A private eval copy of the reference, split into channel groups when asked."""
    model = copy.deepcopy(request.reference.model).eval()
    if request.split > 1:
        from ..split import split_blocks

        model = split_blocks(model, request.split).eval()
    return model


def sample_input(request: ExportRequest) -> Any:
    import torch

    return torch.zeros(1, 3, request.resolution, request.resolution)


def require(module: str, hint: str) -> Any:
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise MissingToolError(f"{module} is not installed", hint) from None


def choose(target: str, option: str, value: Any, choices: tuple[str, ...]) -> str:
    """``value`` (case-insensitive) if it is one of ``choices``, else a UsageError listing them."""
    v = str(value).strip().lower()
    if v not in choices:
        raise UsageError(f"{target}: {option.replace('_', '-')} {value!r} is not supported",
                         f"choose one of {', '.join(choices)}")
    return v


def whole_number(target: str, option: str, value: Any, minimum: int = 1) -> int:
    try:
        n = int(str(value).strip())
    except ValueError:
        raise UsageError(f"{target}: {option.replace('_', '-')} must be a whole number, got {value!r}") from None
    if n < minimum:
        raise UsageError(f"{target}: {option.replace('_', '-')} must be at least {minimum}, got {n}")
    return n


def calibration_batch(request: ExportRequest) -> tuple[Batch, str]:
    """Real images for calibration: ``--calib DIR`` or the embedded calibration set; empty -> BadDataError."""
    if request.calib_samples < 1:
        raise UsageError(f"--calib-samples must be at least 1, got {request.calib_samples}")
    contract = request.reference.spec.contract.at_resolution(request.resolution)
    batch = load_dataset(request.calib, contract, request.calib_samples, kind="calib")
    if len(batch) == 0:
        raise BadDataError(f"no calibration images in {request.calib or 'the embedded set'}",
                           "pass --calib DIR with DIR/<class>/<image>.jpg")
    source = str(request.calib) if request.calib else "embedded:calib"
    return batch, source


def artifact_size(path: Path) -> int:
    """Bytes of a file, or of every file in a package directory (.mlpackage)."""
    path = Path(path)
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return path.stat().st_size


def publish(target: Target, request: ExportRequest, converted: Converted, started: float) -> ExportResult:
    """Publish the staged artifact and its manifest as one pair (fileio's folder lock) and build the result."""
    spec = request.reference.spec
    try:
        manifest = Manifest(
            target=target.name, format=target.format, precision=converted.precision or target.precision,
            artifact=converted.artifact.name, artifact_sha256=sha256_file(converted.staged), inputs=converted.inputs,
            outputs=converted.outputs, preprocessing=spec.contract.at_resolution(request.resolution),
            model={"name": "mobilenet_v2", "width_mult": spec.width_mult, "num_classes": spec.num_classes,
                   "resolution": request.resolution, "split": request.split},
            weights={**spec.to_dict(), "sha256": request.reference.weights_sha256},
            export_options={"dynamic_batch": request.dynamic_batch, "split": request.split, **converted.options},
            tool_versions=tool_versions("torch", *target.tools), extra=converted.extra)
    except BaseException:
        discard(converted.staged)
        raise
    manifest_file = publish_with_manifest(converted.staged, converted.artifact, manifest)
    return ExportResult(target.name, converted.artifact, manifest_file, manifest, time.perf_counter() - started,
                        artifact_size(converted.artifact))


def torch_logits(model: Any, images: np.ndarray, chunk: int = 64) -> np.ndarray:
    import torch

    outs = []
    with torch.no_grad():
        for i in range(0, len(images), chunk):
            outs.append(model(torch.from_numpy(images[i:i + chunk])).numpy())
    return np.concatenate(outs).astype(np.float32)


# What an int8 manifest records when the quantized reference's logits were not saved at export: parity rebuilds the
# quantized torch model (Target.quantized_torch_model) from the float reference and the recorded calibration.
QREF_REBUILT = {"file": None, "reason": "not recorded at export (export --quantized-reference records it); parity "
                                        "rebuilds the quantized torch model from the calibration"}


def batch1_logits(model: Any, images: np.ndarray) -> np.ndarray:
    """Logits one image at a time (graphs exported for batch 1 take nothing else)."""
    return np.concatenate([torch_logits(model, images[i:i + 1]) for i in range(len(images))])


def save_npz_atomic(final: Path, **arrays: np.ndarray) -> None:
    with atomic_path(final) as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, **arrays)
