"""The edges of every artifact: NCHW float32 in, float32 logits out; layout and int8 (de)quantization are
read from the manifest's TensorSpecs, never guessed from the model."""

from __future__ import annotations

import numpy as np

from ..errors import BadArtifactError
from ..manifest import TensorSpec

INT_RANGES = {"int8": (-128, 127), "uint8": (0, 255)}


def to_model_input(x: np.ndarray, spec: TensorSpec) -> np.ndarray:
    """float32 NCHW preprocessed images -> what the artifact's input tensor takes."""
    x = np.asarray(x, dtype=np.float32)
    if spec.layout == "NHWC" and x.ndim == 4:
        x = x.transpose(0, 2, 3, 1)
    if spec.dtype in INT_RANGES:
        if spec.scale is None or spec.zero_point is None:
            raise BadArtifactError(f"input {spec.name} is {spec.dtype} but the manifest has no scale/zero point",
                                   "re-export the artifact")
        lo, hi = INT_RANGES[spec.dtype]
        return np.clip(np.round(x / spec.scale) + spec.zero_point, lo, hi).astype(spec.dtype)
    return np.ascontiguousarray(x.astype(spec.dtype))


def from_model_output(y: np.ndarray, spec: TensorSpec) -> np.ndarray:
    """The artifact's raw output -> float32 logits (N, classes)."""
    y = np.asarray(y)
    if spec.dtype in INT_RANGES:
        if spec.scale is None or spec.zero_point is None:
            raise BadArtifactError(f"output {spec.name} is {spec.dtype} but the manifest has no scale/zero point",
                                   "re-export the artifact")
        y = (y.astype(np.float32) - spec.zero_point) * np.float32(spec.scale)
    return y.astype(np.float32).reshape(y.shape[0], -1)


def check_shape(model_shape: list[int | None], spec: TensorSpec, what: str) -> None:
    """The model's tensor shape must agree with the manifest wherever both are fixed; the batch is not compared
    (runtimes report a dynamic batch differently)."""
    ok = len(model_shape) == len(spec.shape) and all(
        i == 0 or m is None or s is None or m == s for i, (m, s) in enumerate(zip(model_shape, spec.shape)))
    if not ok:
        raise BadArtifactError(f"the model's {what} shape {tuple(model_shape)} is not the manifest's {tuple(spec.shape)}",
                               "the artifact is another model than its manifest describes; re-export it")


def static_batch_one(spec: TensorSpec) -> bool:
    return len(spec.shape) > 0 and spec.shape[0] == 1


def run_batched(run_one, x: np.ndarray, spec: TensorSpec) -> np.ndarray:
    """Call ``run_one`` per image when the artifact's batch is fixed at 1, else once."""
    if static_batch_one(spec) and len(x) != 1:
        return np.concatenate([run_one(x[i:i + 1]) for i in range(len(x))])
    return run_one(x)
