"""Read an ExecuTorch program (.pte): the forward method's instructions in execution order and the memory plan
ExecuTorch laid out ahead of time and wrote into the program: the planned buffer sizes (``non_const_buffer_sizes``;
entry 0 is reserved for constants) and each planned tensor's buffer id and offset.

Parsed with executorch's own deserializer (``runtimes.executorch.read_program``) in a child process. A delegated
program (XNNPACK) plans only what runs outside the delegate; the delegate plans its own memory at load time."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from .graph import Graph, OpInfo, TensorInfo

PLAN_METHOD = "executorch memory plan written into the program (non_const_buffer_sizes)"


def inspect_pte(path: str) -> dict[str, Any]:
    """Child-side: tensors, instructions and the plan as plain data (picklable)."""
    from ..runtimes.executorch import SCALAR_TYPES, plan_of, read_program

    program = read_program(Path(path))
    plan = plan_of(program, Path(path))
    tensors: dict[str, dict[str, Any]] = {}
    for i, value in enumerate(plan.values):
        t = value.val
        alloc = getattr(t, "allocation_info", None)
        if alloc is None or not hasattr(t, "sizes"):  # constants and unplanned values are not activations
            continue
        dtype = SCALAR_TYPES.get(int(t.scalar_type), "float32")
        shape = [int(s) for s in t.sizes]
        offset = int(alloc.memory_offset_low) + (int(alloc.memory_offset_high) << 32)
        tensors[str(i)] = {"name": f"value{i}", "shape": shape, "dtype": dtype,
                           "nbytes": int(np.prod(shape, dtype=np.int64)) * np.dtype(dtype).itemsize,
                           "buffer": int(alloc.memory_id), "offset": offset}
    seen = {str(i) for i in plan.inputs}
    ops = []
    for chain in plan.chains:
        for ins in chain.instructions:
            call = ins.instr_args
            if hasattr(call, "op_index"):
                op = plan.operators[call.op_index]
                op_type = f"{op.name}.{op.overload}" if op.overload else op.name
            elif hasattr(call, "delegate_index"):
                op_type = f"delegate:{plan.delegates[call.delegate_index].id}"
            else:  # moves, frees, jumps: no kernel runs
                continue
            args = [str(a) for a in call.args if str(a) in tensors]
            # out-variant kernels: a planned tensor first named by an instruction is what that instruction writes
            outputs = [a for a in args if a not in seen]
            seen.update(outputs)
            ops.append({"index": len(ops), "op_type": op_type, "inputs": [a for a in args if a not in outputs],
                        "outputs": outputs})
    sizes = [int(s) for s in plan.non_const_buffer_sizes]
    spans: dict[int, int] = {}
    for t in tensors.values():
        spans[t["buffer"]] = max(spans.get(t["buffer"], 0), t["offset"] + t["nbytes"])
    return {"tensors": tensors, "ops": ops, "inputs": [str(i) for i in plan.inputs if str(i) in tensors],
            "outputs": [str(i) for i in plan.outputs if str(i) in tensors], "buffer_sizes": sizes,
            "planned_bytes": sum(sizes[1:]), "tensor_span_bytes": sum(spans.values()),
            "delegates": [d.id for d in plan.delegates]}


def graph_from_inspection(data: dict[str, Any]) -> Graph:
    tensors = {k: TensorInfo(v["name"], tuple(v["shape"]), v["dtype"], v["nbytes"]) for k, v in data["tensors"].items()}
    ops = tuple(OpInfo(r["index"], r["op_type"], r["op_type"], tuple(r["inputs"]), tuple(r["outputs"]))
                for r in data["ops"])
    return Graph("pte", tensors, ops, tuple(data["inputs"]), tuple(data["outputs"]),
                 {"planned_bytes": data["planned_bytes"], "delegates": data["delegates"]})


def pte_measurements(data: dict[str, Any]) -> dict[str, Any]:
    delegated = bool(data["delegates"])
    return {"planned_bytes": data["planned_bytes"], "planned_buffer_sizes": data["buffer_sizes"],
            "planned_tensor_span_bytes": data["tensor_span_bytes"], "delegates": data["delegates"],
            "note": ("delegated: the plan covers only what runs outside the delegate (XNNPACK plans its own memory "
                     "at load time); export with --option delegate=none to see every activation planned")
            if delegated else "portable kernels: every activation is in the plan"}
