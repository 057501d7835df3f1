"""Pieces every export target shares: the torch model to convert, artifact names, calibration batches,
reading the manifest facts, and the atomic write of artifact + manifest."""

from __future__ import annotations

import copy
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

from ..data import Batch, load_dataset
from ..errors import BadDataError, MissingToolError, UsageError
from ..fileio import atomic_path, discard, sha256_file, staged_path
from ..manifest import Manifest, TensorSpec, publish_with_manifest, tool_versions, write_manifest
from .base import ExportRequest, ExportResult

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


def missing(modules: tuple[str, ...], hint: str) -> str | None:
    import importlib.util

    for m in modules:
        if importlib.util.find_spec(m) is None:
            return f"{m} is not installed ({hint})"
    return None


def option_key(name: str) -> str:
    """``input-type`` (as typed after --option) and ``input_type`` are the same option."""
    return name.strip().replace("-", "_")


def check_options(request: ExportRequest, target: str, allowed: tuple[str, ...] = ()) -> dict[str, Any]:
    """The request's ``--option`` values keyed by ``option_key``; an option the target does not have is a
    UsageError naming the ones it has (as typed: ``input-type``)."""
    given = {option_key(k): v for k, v in request.options.items() if v is not None}
    unknown = sorted(set(given) - set(allowed))
    if unknown:
        shown = ", ".join(a.replace("_", "-") for a in allowed)
        raise UsageError(f"target {target} has no option {', '.join(u.replace('_', '-') for u in unknown)}",
                         f"its options are {shown}" if allowed else f"{target} takes no extra options")
    if request.split < 1:
        raise UsageError(f"--split must be at least 1, got {request.split}")
    return given


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


def no_dynamic_batch(request: ExportRequest, target: str) -> None:
    if request.dynamic_batch:
        raise UsageError(f"{target} exports batch 1 only", "--dynamic-batch works with: onnx, onnx-int8")


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


_STAGED: dict[Path, Path] = {}  # final artifact path -> its staged copy, waiting for finish()


@contextmanager
def atomic_artifact(final: Path) -> Iterator[Path]:
    """Where to write the artifact: its own name in a hidden staging folder beside ``final`` (converters look at
    the suffix). Nothing is published here: ``finish`` publishes the artifact and its manifest together."""
    final = Path(final)
    leftover = _STAGED.pop(final, None)  # a previous attempt in this process that never reached finish()
    if leftover is not None:
        discard(leftover)
    with staged_path(final) as tmp:
        yield tmp
    _STAGED[final] = tmp


def artifact_size(path: Path) -> int:
    """Bytes of a file, or of every file in a package directory (.mlpackage)."""
    path = Path(path)
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return path.stat().st_size


def finish(target: Any, request: ExportRequest, path: Path, inputs: tuple[TensorSpec, ...],
           outputs: tuple[TensorSpec, ...], options: dict[str, Any], extra: dict[str, Any],
           tools: tuple[str, ...], started: float, precision: str | None = None) -> ExportResult:
    """Publish the staged artifact and its manifest as one pair (fileio's folder lock) and build the result.

    ``precision`` overrides the target's default when an option chose it (``coreml --option precision=fp32``)."""
    spec = request.reference.spec
    staged = _STAGED.pop(Path(path), None)
    manifest = Manifest(
        target=target.name, format=target.format, precision=precision or target.precision, artifact=path.name,
        artifact_sha256=sha256_file(staged or path), inputs=inputs, outputs=outputs,
        preprocessing=spec.contract.at_resolution(request.resolution),
        model={"name": "mobilenet_v2", "width_mult": spec.width_mult, "num_classes": spec.num_classes,
               "resolution": request.resolution, "split": request.split},
        weights={**spec.to_dict(), "sha256": request.reference.weights_sha256},
        export_options={"dynamic_batch": request.dynamic_batch, "split": request.split, **options},
        tool_versions=tool_versions("torch", *tools), extra=extra)
    manifest_file = publish_with_manifest(staged, path, manifest) if staged else write_manifest(path, manifest)
    return ExportResult(target.name, path, manifest_file, manifest, time.perf_counter() - started,
                        artifact_size(path))


def torch_logits(model: Any, images: np.ndarray, chunk: int = 64) -> np.ndarray:
    import torch

    outs = []
    with torch.no_grad():
        for i in range(0, len(images), chunk):
            outs.append(model(torch.from_numpy(images[i:i + chunk])).numpy())
    return np.concatenate(outs).astype(np.float32)


def save_npz_atomic(final: Path, **arrays: np.ndarray) -> None:
    with atomic_path(final) as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, **arrays)


def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    t = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t
