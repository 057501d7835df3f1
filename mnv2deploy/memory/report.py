"""``analyze_artifact``: static lifetimes plus what the runtime really allocates (or, for an ExecuTorch .pte, plans
ahead of time), for any .tflite, .onnx or .pte."""

from __future__ import annotations

import platform
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import BadArtifactError, UsageError
from .graph import Graph
from .lifetimes import LifetimeReport, analyze_lifetimes

FORMATS = {".tflite": "tflite", ".onnx": "onnx", ".pte": "pte"}
CHILD_TIMEOUT = 600
ARENA_METHOD = "litert builtin-kernel arena span (tensor addresses after allocate_tensors)"


@dataclass(frozen=True)
class MemoryReport:
    artifact: Path
    graph: Graph
    lifetimes: LifetimeReport
    measured_peak_bytes: int | None
    measured_method: str
    measurements: dict[str, Any] = field(default_factory=dict)
    model: dict[str, Any] = field(default_factory=dict)  # from our manifest, when there is one
    arch: str = "x86_64"  # the machine whose kernels were measured ("aarch64" for --arch arm64)
    emulated: dict[str, Any] | None = None  # how, when the arch is not this host's (qemu, CPU model)

    def to_dict(self) -> dict[str, Any]:
        lt = self.lifetimes
        peak = lt.peak_op
        return {
            "artifact": str(self.artifact), "format": self.graph.format, "arch": self.arch,
            "emulated": self.emulated, "ops": len(self.graph.ops),
            "activations": len(lt.lifetimes), "model": self.model,
            "static_peak_bytes": lt.static_peak_bytes,
            "measured_peak_bytes": self.measured_peak_bytes, "measured_method": self.measured_method,
            "measurements": self.measurements,
            "peak_op": None if peak is None else {"index": peak.index, "op_type": peak.op_type, "name": peak.name,
                                                  "block": self.graph.ops[peak.index].block},
            "peak_tensors": [{"name": self.graph.tensors[t.name].name[:120], "shape": list(self.graph.tensors[t.name].shape),
                              "bytes": t.nbytes} for t in lt.peak_tensors],
            "largest_tensor": None if lt.largest_tensor is None else {
                "name": self.graph.tensors[lt.largest_tensor.name].name[:120],
                "shape": list(self.graph.tensors[lt.largest_tensor.name].shape), "bytes": lt.largest_tensor.nbytes},
            "total_activation_bytes": lt.total_activation_bytes,
        }


def artifact_format(path: Path) -> str:
    path = Path(path)
    if not path.is_file():
        raise BadArtifactError(f"{path} does not exist or is not a file", "pass a .tflite, .onnx or .pte file")
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise BadArtifactError(f"{path.name}: memory analysis supports {', '.join(FORMATS)} files",
                               "export with --target onnx*, tflite* or executorch*")
    return fmt


def manifest_model(path: Path) -> dict[str, Any]:
    from ..manifest import manifest_path, read_manifest

    if not manifest_path(path).exists():
        return {}
    try:
        m = read_manifest(path, verify=False)
    except BadArtifactError:
        return {}  # a foreign or stale manifest says nothing we rely on
    return {**m.model, "target": m.target, "precision": m.precision}


def tflite_measurements(inspection: dict[str, Any], footprints: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The measurements block for a .tflite, from one builtin-kernel inspection and one footprint per kernels."""
    return {"builtin_arena_bytes": inspection["arena_bytes"], "builtin_scratch_bytes": inspection["scratch_bytes"],
            "builtin_scratch": inspection.get("scratch", []), "footprint": footprints}


def kernels_for(xnnpack: bool) -> tuple[str, ...]:
    from .litert_probe import KERNELS

    return tuple(KERNELS) if xnnpack else ("builtin",)


def analyze_artifact(path: Path, xnnpack: bool = True, arch: str = "x86_64", cpu: str | None = None) -> MemoryReport:
    """Static peak from lifetimes; measured peak from the runtime (children, since files may be hostile).

    ``arch="arm64"``: the same measurements by the aarch64 LiteRT wheel under qemu (``memory.arm64``)."""
    path = Path(path)
    fmt = artifact_format(path)
    if arch == "arm64":
        if fmt != "tflite":
            raise UsageError(f"--arch arm64 measures .tflite files (LiteRT's aarch64 kernels), not .{fmt}",
                             "export with a tflite target, or drop --arch")
        from .arm64 import analyze_arm64

        return analyze_arm64(path, xnnpack=xnnpack, cpu=cpu or "cortex-a76")
    if arch != "x86_64":
        raise UsageError(f"--arch {arch} is not supported", "use x86_64 (this host) or arm64")
    from ..runtimes.child import call_in_child
    from . import process_peak

    if fmt == "tflite":
        from .tflite_graph import graph_from_inspection, inspect_tflite

        inspection = call_in_child(inspect_tflite, str(path), timeout=CHILD_TIMEOUT)
        footprints = {k: call_in_child(process_peak.probe_tflite, str(path), k, timeout=CHILD_TIMEOUT)
                      for k in kernels_for(xnnpack)}
        graph = graph_from_inspection(inspection)
        measured, method = inspection["arena_bytes"], ARENA_METHOD
        measurements = tflite_measurements(inspection, footprints)
    elif fmt == "pte":
        from .pte_graph import PLAN_METHOD, graph_from_inspection, inspect_pte, pte_measurements

        inspection = call_in_child(inspect_pte, str(path), timeout=CHILD_TIMEOUT)
        graph = graph_from_inspection(inspection)
        measured, method, measurements = inspection["planned_bytes"], PLAN_METHOD, pte_measurements(inspection)
    else:
        from .onnx_graph import read_onnx

        graph = read_onnx(path)
        probe = call_in_child(process_peak.probe_onnx, str(path), timeout=CHILD_TIMEOUT)
        measured = probe["invoke"]["rss_peak_bytes"]
        method = "onnxruntime peak RSS increase while running, in a child (CPU, no arena)"
        measurements = {"ort_rss": probe}
    if graph.extra.get("symbolic_dims_as_1"):
        measurements["note"] = "symbolic dimensions counted as 1"
    return MemoryReport(path, graph, analyze_lifetimes(graph), measured, method, measurements, manifest_model(path),
                        arch=platform.machine() or "x86_64")
