"""``analyze_artifact``: static lifetimes plus what the runtime really allocates, for any .tflite or .onnx."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import BadArtifactError
from .graph import Graph
from .lifetimes import LifetimeReport, analyze_lifetimes

FORMATS = {".tflite": "tflite", ".onnx": "onnx"}
CHILD_TIMEOUT = 600


@dataclass(frozen=True)
class MemoryReport:
    artifact: Path
    graph: Graph
    lifetimes: LifetimeReport
    measured_peak_bytes: int | None
    measured_method: str
    measurements: dict[str, Any] = field(default_factory=dict)
    model: dict[str, Any] = field(default_factory=dict)  # from our manifest, when there is one

    def to_dict(self) -> dict[str, Any]:
        lt = self.lifetimes
        peak = lt.peak_op
        return {
            "artifact": str(self.artifact), "format": self.graph.format, "ops": len(self.graph.ops),
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
        raise BadArtifactError(f"{path} does not exist or is not a file", "pass a .tflite or .onnx file")
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise BadArtifactError(f"{path.name}: memory analysis supports {', '.join(FORMATS)} files",
                               "export with --target onnx or tflite-*")
    return fmt


def _manifest_model(path: Path) -> dict[str, Any]:
    from ..manifest import manifest_path, read_manifest

    if not manifest_path(path).exists():
        return {}
    try:
        m = read_manifest(path, verify=False)
    except BadArtifactError:
        return {}  # a foreign or stale manifest says nothing we rely on
    return {**m.model, "target": m.target, "precision": m.precision}


def analyze_artifact(path: Path, xnnpack: bool = True) -> MemoryReport:
    """Static peak from lifetimes; measured peak from the runtime (children, since files may be hostile)."""
    path = Path(path)
    fmt = artifact_format(path)
    from ..runtimes.child import call_in_child
    from . import process_peak

    measurements: dict[str, Any] = {}
    if fmt == "tflite":
        from .tflite_graph import graph_from_inspection, inspect_tflite

        graph = graph_from_inspection(call_in_child(inspect_tflite, str(path), timeout=CHILD_TIMEOUT))
        measured, method = graph.extra["arena_bytes"], "litert builtin-kernel arena span (tensor addresses)"
        measurements["builtin_arena_bytes"] = graph.extra["arena_bytes"]
        measurements["builtin_scratch_bytes"] = graph.extra["scratch_bytes"]
        probe = call_in_child(process_peak.probe_tflite, str(path), False, timeout=CHILD_TIMEOUT)
        measurements["builtin_rss"] = {k: v for k, v in probe.items() if k != "delegated"}
        if xnnpack:
            probe = call_in_child(process_peak.probe_tflite, str(path), True, timeout=CHILD_TIMEOUT)
            measurements["xnnpack_rss"] = {k: v for k, v in probe.items() if k != "delegated"}
            measurements["xnnpack_delegated"] = probe["delegated"]
    else:
        from .onnx_graph import read_onnx

        graph = read_onnx(path)
        probe = call_in_child(process_peak.probe_onnx, str(path), timeout=CHILD_TIMEOUT)
        measured, method = probe["invoke_rss_increase_bytes"], "onnxruntime peak RSS increase while running, in a child (CPU, no arena)"
        measurements["ort_rss"] = probe
    if graph.extra.get("symbolic_dims_as_1"):
        measurements["note"] = "symbolic dimensions counted as 1"
    return MemoryReport(path, graph, analyze_lifetimes(graph), measured, method, measurements, _manifest_model(path))
