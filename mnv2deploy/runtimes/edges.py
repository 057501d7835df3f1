"""The edges of every artifact: NCHW float32 in, float32 logits out; layout and int8 (de)quantization are
read from the manifest's TensorSpecs, never guessed from the model."""

from __future__ import annotations

import functools
import threading

import numpy as np

from ..errors import BadArtifactError
from ..manifest import TensorSpec

INT_RANGES = {"int8": (-128, 127), "uint8": (0, 255)}


def to_model_input(x: np.ndarray, spec: TensorSpec, out: np.ndarray | None = None) -> np.ndarray:
    """float32 NCHW preprocessed images -> what the artifact's input tensor takes.

    int8/uint8: ``clip(round_half_even(x / scale) + zero_point, lo, hi)``, computed in place in one float32
    buffer kept per thread and shape and written into ``out`` (e.g. the interpreter's own input tensor) or a new
    array. Why: this runs on every inference, and the plain numpy expression made four fresh 600 KB temporaries
    per 224x224 image, which cost more than the arithmetic (benchmarks/input_edge.py measures both)."""
    x = np.asarray(x, dtype=np.float32)
    if spec.pixels is not None:
        x = to_pixels(x, spec.pixels)
    if spec.layout == "NHWC" and x.ndim == 4:
        x = x.transpose(0, 2, 3, 1)
    if spec.pixels is not None:  # exact integers 0..255
        if spec.dtype == "int8":  # tflite-int8's camera input: the bytes centred
            return from_camera_bytes(x.astype(np.uint8), spec, out)
        if out is None:
            return np.ascontiguousarray(x.astype(np.uint8))
        np.copyto(out, x, casting="unsafe")
        return out
    if spec.dtype not in INT_RANGES:
        if out is None:
            return np.ascontiguousarray(x.astype(spec.dtype))
        np.copyto(out, x, casting="same_kind")
        return out
    if spec.scale is None or spec.zero_point is None:
        raise BadArtifactError(f"input {spec.name} is {spec.dtype} but the manifest has no scale/zero point",
                               "re-export the artifact")
    lo, hi = INT_RANGES[spec.dtype]
    zp = spec.zero_point
    buf = _scratch(x.shape)
    np.divide(x, spec.scale, out=buf)  # also does the NHWC transpose, into contiguous memory
    np.rint(buf, out=buf)  # half to even, as np.round
    np.clip(buf, lo - zp, hi - zp, out=buf)  # integer bounds: clipping before adding zp is exact
    if zp:
        np.add(buf, zp, out=buf)
    if out is None:
        out = np.empty(x.shape, spec.dtype)
    np.copyto(out, buf, casting="unsafe")  # exact integers in [lo, hi]: the cast cannot wrap
    return out


def from_camera_bytes(frame: np.ndarray, spec: TensorSpec, out: np.ndarray | None = None) -> np.ndarray:
    """Camera bytes (uint8, in the input's layout) -> a camera-input artifact's input tensor: the bytes themselves
    (uint8) or the bytes with their top bit flipped (int8 ``byte - 128``, tflite-int8's camera input). This is all
    the per-pixel work an app does for such an artifact; ``out`` may be the interpreter's own input tensor."""
    frame = np.asarray(frame)
    if spec.pixels is None or frame.dtype != np.uint8:
        raise BadArtifactError(f"input {spec.name} does not take camera bytes (or the frame is {frame.dtype}, not uint8)",
                               "export with --option input-dtype=uint8, and pass uint8 RGB frames")
    if spec.dtype == "int8" and not bytes_map_exactly(spec.scale, spec.zero_point):
        raise BadArtifactError(f"input {spec.name}'s quantization (scale {spec.scale}, zero point {spec.zero_point}) "
                               "does not map bytes to byte - 128", "re-export the artifact")
    target = np.empty(frame.shape, spec.dtype) if out is None else out
    if spec.dtype == "int8":
        np.bitwise_xor(frame, np.uint8(0x80), out=target.view(np.uint8))
    else:
        np.copyto(target, frame)
    return target


@functools.lru_cache(maxsize=8)
def bytes_map_exactly(scale: float | None, zero_point: int | None) -> bool:
    """Whether int8 quantization with ``scale``/``zero_point`` takes every centred byte b - 128 to itself
    (tflite-int8's camera input: calibrated on -128..127, the converter writes scale 1 - 2**-11, which still does)."""
    if scale is None or zero_point is None:
        return False
    b = np.arange(256, dtype=np.float32)
    return bool(np.array_equal(np.clip(np.rint((b - 128) / np.float32(scale)) + zero_point, -128, 127), b - 128))


def to_pixels(x: np.ndarray, pixels: dict[str, list[float]]) -> np.ndarray:
    """Preprocessed NCHW floats back to the 0..255 RGB bytes they came from (float32 holding exact integers):
    ``(x * std + mean) * 255``, rounded; preprocessing's float error is far below half a step."""
    if x.ndim != 4 or x.shape[1] != 3:
        raise BadArtifactError(f"camera-byte input needs NCHW RGB images, got shape {x.shape}", "re-export the artifact")
    std = np.asarray(pixels["std"], np.float32).reshape(1, 3, 1, 1)
    mean = np.asarray(pixels["mean"], np.float32).reshape(1, 3, 1, 1)
    return np.clip(np.rint((x * std + mean) * np.float32(255)), 0, 255)


_SCRATCH = threading.local()


def _scratch(shape: tuple[int, ...]) -> np.ndarray:
    """A float32 work buffer for this thread and shape, reused across calls (a few shapes at most)."""
    bufs = _SCRATCH.__dict__.setdefault("bufs", {})
    buf = bufs.get(shape)
    if buf is None:
        if len(bufs) >= 4:
            bufs.clear()
        buf = bufs[shape] = np.empty(shape, np.float32)
    return buf


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
