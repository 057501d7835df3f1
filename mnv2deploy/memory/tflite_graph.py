"""Read a .tflite graph in LiteRT's execution order and the tensor arena its planner laid out.

The reading itself is ``litert_probe.inspect`` (builtin kernels, tensor addresses after ``allocate_tensors()``),
run in a child process because a malformed file can crash the native interpreter; this module turns its plain
data into a ``Graph`` and its errors into typed ones.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import BadArtifactError, MissingToolError, install_hint
from .graph import Graph, OpInfo, TensorInfo, block_of

INSTALL_HINT = install_hint("tflite")


def typed_probe_call(func, path: str, *args: Any) -> Any:
    """Child-side: ``func(path, *args)`` from litert_probe with its errors typed (they cross the process)."""
    from .litert_probe import ProbeError

    try:
        return func(path, *args)
    except ImportError:
        raise MissingToolError("ai-edge-litert is not installed", INSTALL_HINT) from None
    except ProbeError as e:
        raise BadArtifactError(f"{Path(path).name}: {e}", "pass a valid .tflite file") from None


def inspect_tflite(path: str) -> dict[str, Any]:
    """Child-side: graph, tensor sizes, arena span and scratch tensors as plain data (picklable)."""
    from .litert_probe import inspect

    return typed_probe_call(inspect, path)


def graph_from_inspection(data: dict[str, Any]) -> Graph:
    tensors = {k: TensorInfo(v["name"], tuple(v["shape"]), v["dtype"], v["nbytes"]) for k, v in data["tensors"].items()}
    ops = tuple(OpInfo(r["index"], r["op_type"], (r["label"].split(";", 1)[0][-80:] or r["op_type"]),
                       tuple(r["inputs"]), tuple(r["outputs"]), block_of(r["label"])) for r in data["ops"])
    return Graph("tflite", tensors, ops, tuple(data["inputs"]), tuple(data["outputs"]),
                 {"arena_bytes": data["arena_bytes"], "scratch_bytes": data["scratch_bytes"],
                  "scratch": data.get("scratch", []), "machine": data.get("machine")})


def read_tflite(path: Path, timeout: float = 300) -> Graph:
    """The graph and the builtin-kernel arena of ``path`` (inspected in a child process)."""
    from ..runtimes.child import call_in_child

    return graph_from_inspection(call_in_child(inspect_tflite, str(path), timeout=timeout))
