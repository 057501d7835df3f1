"""Activation memory measured as the peak resident-memory increase of a fresh child process during inference.

For runtimes whose planner we cannot see (XNNPACK's own workspace, onnxruntime): read the file into memory
(so weights are resident before we start), reset the kernel's high-water mark (``/proc/self/clear_refs`` = 5)
and record VmRSS, then create and allocate the runtime (``allocate`` phase: packed weights and any workspace
planned up front), then run twice (``invoke`` phase: pages first touched by inference). Increases are of VmHWM
over VmRSS at the start of the phase. Linux only; pages are 4 KiB.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import PlatformError, install_hint

RUNS = 2


def _status_kib(field: str) -> int:
    try:
        text = Path("/proc/self/status").read_text()
    except OSError:
        raise PlatformError("no /proc/self/status here", "process peak memory is measured on Linux only") from None
    for line in text.splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise PlatformError(f"/proc/self/status has no {field}", "process peak memory is measured on Linux only")


def _release_freed_memory() -> None:
    """glibc: serve big blocks from mmap and unmap them on free (no dynamic threshold), so a freed tensor
    leaves the resident set and the high-water mark tracks live memory rather than heap reuse."""
    import ctypes

    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(-3, 64 * 1024)  # M_MMAP_THRESHOLD
        libc.mallopt(-1, 128 * 1024)  # M_TRIM_THRESHOLD
    except (OSError, AttributeError):  # not glibc: measure as is
        pass


def _reset_peak() -> tuple[int, bool]:
    try:
        Path("/proc/self/clear_refs").write_text("5")
        reset = True
    except OSError:  # no permission: the lifetime high-water mark stays (an upper bound)
        reset = False
    return _status_kib("VmRSS"), reset


def _measure(create, make_run) -> tuple[dict[str, Any], Any]:
    _release_freed_memory()
    base, reset = _reset_peak()
    runtime = create()
    allocate = max(0, _status_kib("VmHWM") - base) * 1024
    run = make_run(runtime)
    base, reset2 = _reset_peak()
    for _ in range(RUNS):
        run()
    invoke = max(0, _status_kib("VmHWM") - base) * 1024
    # rss_increase_bytes: both phases together (weights packed at load + what running touched)
    return {"allocate_rss_increase_bytes": allocate, "invoke_rss_increase_bytes": invoke,
            "rss_increase_bytes": allocate + invoke, "peak_reset": reset and reset2}, runtime


def probe_tflite(path: str, xnnpack: bool) -> dict[str, Any]:
    """Child-side: RSS increase while LiteRT runs ``path`` (XNNPACK delegate on or off), 1 thread."""
    import numpy as np

    from .tflite_graph import _interpreter

    content = Path(path).read_bytes()

    def create():
        it = _interpreter(path, xnnpack=xnnpack, content=content)
        it.allocate_tensors()
        return it

    def make_run(it):
        for d in it.get_input_details():
            it.set_tensor(d["index"], np.zeros(d["shape"], dtype=d["dtype"]))
        return it.invoke

    out, it = _measure(create, make_run)
    out["delegated"] = any(op["op_name"] == "DELEGATE" for op in it._get_ops_details())
    return out


def probe_onnx(path: str) -> dict[str, Any]:
    """Child-side: RSS increase while onnxruntime (CPU, no arena so freed memory is really freed) runs ``path``."""
    import numpy as np

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
            return ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
        except (RuntimeError, ValueError) as e:  # ort raises its own subclasses of RuntimeError
            from ..errors import BadArtifactError

            raise BadArtifactError(f"onnxruntime cannot load {Path(path).name}: {str(e).splitlines()[0][:160]}",
                                   "pass a valid .onnx file") from None

    def make_run(sess):
        feeds = {}
        for i in sess.get_inputs():
            shape = [d if isinstance(d, int) and d > 0 else 1 for d in i.shape]
            dtype = {"tensor(float)": np.float32, "tensor(float16)": np.float16, "tensor(int8)": np.int8,
                     "tensor(uint8)": np.uint8, "tensor(int64)": np.int64}.get(i.type, np.float32)
            feeds[i.name] = np.zeros(shape, dtype=dtype)
        return lambda: sess.run(None, feeds)

    return _measure(create, make_run)[0]
