"""Run an exported artifact in its real runtime, directly (no mnv2deploy runtime layer), for export tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def run_artifact(path: Path, x: np.ndarray) -> np.ndarray:
    """Float NCHW batch of 1 in, float logits out; int8 I/O is (de)quantized with the file's own parameters."""
    if path.suffix == ".onnx":
        import onnxruntime as ort

        sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        return sess.run(None, {sess.get_inputs()[0].name: x})[0]
    from ai_edge_litert.interpreter import Interpreter

    interp = Interpreter(model_path=str(path))
    interp.allocate_tensors()
    inp, out = interp.get_input_details()[0], interp.get_output_details()[0]
    if np.dtype(inp["dtype"]) == np.int8:
        scale, zp = inp["quantization"]
        x = np.clip(np.round(x / scale + zp), -128, 127).astype(np.int8)
    interp.set_tensor(inp["index"], x)
    interp.invoke()
    y = interp.get_tensor(out["index"])
    if np.dtype(out["dtype"]) == np.int8:
        scale, zp = out["quantization"]
        y = (y.astype(np.float32) - zp) * scale
    return y.astype(np.float32)


def run_many(path: Path, images: np.ndarray) -> np.ndarray:
    return np.concatenate([run_artifact(path, images[i:i + 1]) for i in range(len(images))])
