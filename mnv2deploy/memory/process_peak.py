"""Measurements that run in a fresh child process: LiteRT's heap and peak-RSS growth (``litert_probe``), and
onnxruntime's, whose planner we cannot see.

Each phase resets the kernel's resident-set high-water mark (``/proc/self/clear_refs`` = 5) and reads glibc's
bytes in use (``mallinfo2``): ``allocate`` = creating and allocating the runtime (packed weights, workspace
planned up front), ``invoke`` = the first runs (pages first touched by inference). Linux only; pages are 4 KiB.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import install_hint


def probe_tflite(path: str, kernels: str) -> dict[str, Any]:
    """Child-side: heap and peak-RSS growth while LiteRT runs ``path`` with ``kernels`` (litert_probe.KERNELS)."""
    from .litert_probe import footprint
    from .tflite_graph import typed_probe_call

    return typed_probe_call(footprint, path, kernels)


def probe_onnx(path: str) -> dict[str, Any]:
    """Child-side: RSS increase while onnxruntime (CPU, no arena so freed memory is really freed) runs ``path``."""
    import numpy as np

    from .litert_probe import measure_phases

    try:
        import onnxruntime as ort
    except ImportError:
        from ..errors import MissingToolError

        raise MissingToolError("onnxruntime is not installed", install_hint("onnx")) from None
    opts = ort.SessionOptions()
    opts.enable_cpu_mem_arena = False
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL

    def create():
        try:
            sess = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
        except (RuntimeError, ValueError) as e:  # ort raises its own subclasses of RuntimeError
            from ..errors import BadArtifactError

            raise BadArtifactError(f"onnxruntime cannot load {Path(path).name}: {str(e).splitlines()[0][:160]}",
                                   "pass a valid .onnx file") from None
        return sess, feeds(sess)  # inputs made before the runs are measured

    def feeds(sess):
        feeds = {}
        for i in sess.get_inputs():
            shape = [d if isinstance(d, int) and d > 0 else 1 for d in i.shape]
            dtype = {"tensor(float)": np.float32, "tensor(float16)": np.float16, "tensor(int8)": np.int8,
                     "tensor(uint8)": np.uint8, "tensor(int64)": np.int64}.get(i.type, np.float32)
            feeds[i.name] = np.zeros(shape, dtype=dtype)
        return feeds

    def run(state):
        sess, inputs = state
        sess.run(None, inputs)

    return measure_phases(create, run)[0]
