"""What LiteRT allocates for a .tflite, read inside the process that runs it.

Self-contained on purpose (stdlib, numpy, ai_edge_litert; no mnv2deploy imports): the host runs these functions
in a child process (``call_in_child``), and the same file runs as a script under the aarch64 Python in qemu
(``python litert_probe.py inspect|footprint MODEL [KERNELS]``, one JSON object on stdout), so x86 and ARM
numbers come from the same code.

- ``inspect``: builtin kernels (no delegate), every activation and kernel scratch tensor (im2col, ...) has an
  address in the interpreter's arena after ``allocate_tensors()``; the arena the planner laid out is
  max(end) - min(start). Read before ``invoke()``: afterwards some tensors are reported outside the arena.
- ``footprint``: a fresh process creates the runtime, allocates and runs it twice; we record the bytes glibc has
  handed out and not taken back (``mallinfo2``: exact, and blind to qemu's own code cache) and the resident-set
  high-water mark (``/proc/self/status``), before and after each phase. XNNPACK plans its own workspace inside
  its delegate node, where no tensor address is visible; its heap growth is the measurement.
"""

from __future__ import annotations

import ctypes
import json
import os
import sys
from pathlib import Path
from typing import Any

# XNNPACK delegate flags (tflite/delegates/xnnpack/xnnpack_delegate.h). LiteRT's CpuOptions.xnnpack_flags
# replaces the defaults, so QS8 | QU8 must stay set or int8 ops fall back to the builtin kernels.
FLAG_QS8, FLAG_QU8, FLAG_TRANSIENT_INDIRECTION_BUFFER = 0x1, 0x2, 0x20
# What each kernel setting means (the keys are the CLI's and the JSON's names).
KERNELS = {
    "builtin": "LiteRT builtin kernels, no delegate (Interpreter, BUILTIN_WITHOUT_DEFAULT_DELEGATES)",
    "xnnpack": "XNNPACK delegate with LiteRT's default options (Interpreter), what phones run by default",
    "xnnpack-transient": "XNNPACK with TRANSIENT_INDIRECTION_BUFFER (CompiledModel, xnnpack_flags=0x23): "
                         "indirection buffers live in the shared workspace only while their op runs",
}
RUNS = 2


class ProbeError(ValueError):
    """The runtime refused the file (the caller turns it into its own typed error)."""


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return text[0][:160] if text else type(e).__name__


def _interpreter(content: bytes, delegate: bool, **kwargs: Any):
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    resolver = OpResolverType.AUTO if delegate else OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    try:
        return Interpreter(model_content=content, experimental_op_resolver_type=resolver, num_threads=1, **kwargs)
    except (ValueError, RuntimeError) as e:
        raise ProbeError(f"LiteRT cannot load the model: {_first_line(e)}") from None


def _allocate(it) -> None:
    try:
        it.allocate_tensors()
    except (ValueError, RuntimeError) as e:
        raise ProbeError(f"LiteRT cannot allocate the model: {_first_line(e)}") from None


def _key(index: int) -> str:
    return f"t{index}"


def inspect(path: str) -> dict[str, Any]:
    """Graph (ops in execution order, activations), arena span and scratch tensors, builtin kernels."""
    import numpy as np

    it = _interpreter(Path(path).read_bytes(), delegate=False)
    _allocate(it)
    details = {d["index"]: d for d in it.get_tensor_details()}
    ops = it._get_ops_details()  # node order = execution plan order without delegates
    inputs = [int(d["index"]) for d in it.get_input_details()]
    outputs = [int(d["index"]) for d in it.get_output_details()]
    produced = {int(o) for op in ops for o in op["outputs"] if o >= 0}
    read = {int(i) for op in ops for i in op["inputs"] if i >= 0}
    activations = sorted(produced | set(inputs))
    # Tensors no op names are kernel scratch added at prepare time (im2col, ...): in the arena, not in the graph.
    scratch = sorted(set(details) - produced - read - set(inputs) - set(outputs))

    def size(i: int) -> int:
        d = details[i]
        return int(np.prod(d["shape"], dtype=np.int64)) * np.dtype(d["dtype"]).itemsize

    def address(i: int) -> int | None:
        try:
            view = it.tensor(i)()
        except ValueError:  # no data (dynamic or optional tensor)
            return None
        return int(view.__array_interface__["data"][0]) if view.nbytes else None

    placed = [(a, size(i)) for i in activations + scratch if (a := address(i)) is not None and size(i)]
    arena = (max(a + n for a, n in placed) - min(a for a, _ in placed)) if placed else 0
    tensors = {_key(i): dict(name=details[i]["name"] or _key(i), shape=[int(s) for s in details[i]["shape"]],
                             dtype=np.dtype(details[i]["dtype"]).name, nbytes=size(i)) for i in activations}
    op_rows = []
    for op in ops:
        outs = [int(o) for o in op["outputs"] if o >= 0]
        label = details[outs[0]]["name"] if outs else ""
        op_rows.append(dict(index=int(op["index"]), op_type=str(op["op_name"]), label=label,
                            inputs=[_key(int(i)) for i in op["inputs"] if i >= 0], outputs=[_key(o) for o in outs]))
    scratch_rows = [dict(shape=[int(s) for s in details[i]["shape"]], dtype=np.dtype(details[i]["dtype"]).name,
                         nbytes=size(i)) for i in scratch if size(i)]
    return dict(tensors=tensors, ops=op_rows, inputs=[_key(i) for i in inputs], outputs=[_key(i) for i in outputs],
                arena_bytes=arena, scratch_bytes=sum(size(i) for i in scratch), scratch=scratch_rows,
                delegated=any(r["op_type"] == "DELEGATE" for r in op_rows), machine=os.uname().machine)


class _MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks",
                                                     "fsmblks", "uordblks", "fordblks", "keepcost")]


def _libc():
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallinfo2.restype = _MallInfo2
        return libc
    except (OSError, AttributeError):  # not glibc, or glibc < 2.33
        return None


def _heap_bytes(libc) -> int | None:
    """Bytes handed out by malloc and not yet freed (small blocks + mmapped ones)."""
    if libc is None:
        return None
    info = libc.mallinfo2()
    return int(info.uordblks + info.hblkhd)


def _status_bytes(field: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def _reset_peak() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current VmRSS
        return True
    except OSError:
        return False


class _Phase:
    """Heap and resident-set growth over one phase (peak RSS via the kernel's high-water mark)."""

    def __init__(self, libc) -> None:
        self.libc, self.reset = libc, _reset_peak()
        self.heap0, self.rss0 = _heap_bytes(libc), _status_bytes("VmRSS")

    def end(self) -> dict[str, Any]:
        heap, hwm = _heap_bytes(self.libc), _status_bytes("VmHWM")
        return {"heap_bytes": None if heap is None or self.heap0 is None else heap - self.heap0,
                "rss_peak_bytes": None if hwm is None or self.rss0 is None else max(0, hwm - self.rss0),
                "peak_reset": self.reset}


def _zeros(details: list[dict[str, Any]]) -> list[Any]:
    import numpy as np

    return [np.zeros(d["shape"], dtype=d["dtype"]) for d in details]


def _interpreter_runtime(content: bytes, delegate: bool):
    """create() and run() for the Interpreter API (builtin kernels, or XNNPACK applied by default)."""
    import ai_edge_litert.interpreter  # noqa: F401  (imported before the measurement: not the model's cost)
    import numpy  # noqa: F401

    def create():
        it = _interpreter(content, delegate)
        _allocate(it)
        for d, x in zip(it.get_input_details(), _zeros(it.get_input_details())):
            it.set_tensor(d["index"], x)
        return it

    def run(it):
        it.invoke()

    def facts(it) -> dict[str, Any]:
        ops = it._get_ops_details()
        return {"delegated": any(op["op_name"] == "DELEGATE" for op in ops)}

    return create, run, facts


def _compiled_runtime(content: bytes, flags: int):
    """create() and run() for LiteRT's CompiledModel on CPU with explicit XNNPACK delegate flags."""
    from ai_edge_litert.compiled_model import CompiledModel, _create_default_environment
    from ai_edge_litert.options import CpuOptions, Options

    environment = _create_default_environment()  # made before the measurement: not the model's cost

    def create():
        try:
            model = CompiledModel.from_buffer(content, environment=environment,
                                              options=Options(cpu_options=CpuOptions(num_threads=1, xnnpack_flags=flags)))
        except (ValueError, RuntimeError) as e:
            raise ProbeError(f"LiteRT cannot compile the model: {_first_line(e)}") from None
        return model, model.create_input_buffers(0), model.create_output_buffers(0)

    def run(state):
        model, inputs, outputs = state
        model.run_by_index(0, inputs, outputs)

    def facts(state) -> dict[str, Any]:
        return {"delegated": bool(state[0].is_fully_accelerated()), "xnnpack_flags": flags}

    return create, run, facts


def measure_phases(create, run, runs: int = RUNS) -> tuple[dict[str, Any], Any]:
    """Heap and peak-RSS growth over ``create()`` (``allocate``) and ``runs`` calls of ``run(state)``
    (``invoke``), in this process; returns the numbers and the created state."""
    libc = _libc()
    if libc is not None:  # big blocks from mmap, returned on free: freed tensors leave the resident set
        libc.mallopt(-3, 64 * 1024)  # M_MMAP_THRESHOLD
        libc.mallopt(-1, 128 * 1024)  # M_TRIM_THRESHOLD
    phase = _Phase(libc)
    state = create()
    allocate = phase.end()
    phase = _Phase(libc)
    for _ in range(runs):
        run(state)
    invoke = phase.end()
    total = None if allocate["heap_bytes"] is None else allocate["heap_bytes"] + invoke["heap_bytes"]
    return {"allocate": allocate, "invoke": invoke, "heap_bytes": total}, state


def footprint(path: str, kernels: str) -> dict[str, Any]:
    """LiteRT with ``kernels``: heap and peak-RSS growth over create + allocate and over the first runs."""
    if kernels not in KERNELS:
        raise ProbeError(f"unknown kernels {kernels!r}; choose one of {', '.join(KERNELS)}")
    content = Path(path).read_bytes()
    if kernels == "xnnpack-transient":
        create, run, facts = _compiled_runtime(content, FLAG_QS8 | FLAG_QU8 | FLAG_TRANSIENT_INDIRECTION_BUFFER)
    else:
        create, run, facts = _interpreter_runtime(content, delegate=kernels != "builtin")
    out, state = measure_phases(create, run)
    return {"kernels": kernels, **out, "machine": os.uname().machine, **facts(state)}


def main(argv: list[str]) -> int:
    """Script entry (the aarch64 side): one JSON object on stdout, or {"error": ...} and exit 2."""
    try:
        if len(argv) == 2 and argv[0] == "inspect":
            out = inspect(argv[1])
        elif len(argv) == 3 and argv[0] == "footprint":
            out = footprint(argv[1], argv[2])
        else:
            print(json.dumps({"error": "usage: litert_probe.py inspect MODEL | footprint MODEL KERNELS"}))
            return 2
    except (ProbeError, OSError) as e:
        print(json.dumps({"error": _first_line(e)}))
        return 2
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
