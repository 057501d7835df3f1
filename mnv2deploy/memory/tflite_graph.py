"""Read a .tflite graph in LiteRT's execution order and the tensor arena its planner laid out.

With the builtin kernels (no default XNNPACK delegate) every activation lives in the interpreter's arena after
``allocate_tensors()``, so its data address tells where the planner put it: the arena's extent is
max(end) - min(start) over all non-constant tensors, kernel scratch (e.g. im2col) included. Runs in a child
process because a malformed file can crash the native interpreter.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import BadArtifactError, MissingToolError, install_hint
from .graph import Graph, OpInfo, TensorInfo, block_of

INSTALL_HINT = install_hint("tflite")


def _interpreter(path: str, xnnpack: bool, content: bytes | None = None):
    try:
        from ai_edge_litert.interpreter import Interpreter, OpResolverType
    except ImportError:
        raise MissingToolError("ai-edge-litert is not installed", INSTALL_HINT) from None
    resolver = OpResolverType.AUTO if xnnpack else OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    try:
        if content is not None:
            return Interpreter(model_content=content, experimental_op_resolver_type=resolver, num_threads=1)
        return Interpreter(model_path=path, experimental_op_resolver_type=resolver, num_threads=1)
    except (ValueError, RuntimeError) as e:
        raise BadArtifactError(f"LiteRT cannot load {Path(path).name}: {str(e).splitlines()[0][:160]}",
                               "pass a valid .tflite file") from None


def _key(index: int) -> str:
    return f"t{index}"


def inspect_tflite(path: str) -> dict[str, Any]:
    """Child-side: graph, tensor sizes and arena addresses as plain data (picklable)."""
    import numpy as np

    it = _interpreter(path, xnnpack=False)
    try:
        it.allocate_tensors()
    except (ValueError, RuntimeError) as e:
        raise BadArtifactError(f"LiteRT cannot allocate {Path(path).name}: {str(e).splitlines()[0][:160]}",
                               "pass a valid .tflite file") from None
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
    return dict(tensors=tensors, ops=op_rows, inputs=[_key(i) for i in inputs], outputs=[_key(i) for i in outputs],
                arena_bytes=arena, scratch_bytes=sum(size(i) for i in scratch),
                delegated=any(r["op_type"] == "DELEGATE" for r in op_rows))


def graph_from_inspection(data: dict[str, Any]) -> Graph:
    tensors = {k: TensorInfo(v["name"], tuple(v["shape"]), v["dtype"], v["nbytes"]) for k, v in data["tensors"].items()}
    ops = tuple(OpInfo(r["index"], r["op_type"], (r["label"].split(";", 1)[0][-80:] or r["op_type"]),
                       tuple(r["inputs"]), tuple(r["outputs"]), block_of(r["label"])) for r in data["ops"])
    return Graph("tflite", tensors, ops, tuple(data["inputs"]), tuple(data["outputs"]),
                 {"arena_bytes": data["arena_bytes"], "scratch_bytes": data["scratch_bytes"]})


def read_tflite(path: Path, timeout: float = 300) -> Graph:
    """The graph and the builtin-kernel arena of ``path`` (inspected in a child process)."""
    from ..runtimes.child import call_in_child

    return graph_from_inspection(call_in_child(inspect_tflite, str(path), timeout=timeout))
