"""`memory ARTIFACT --arch arm64`: the same measurements made by LiteRT's aarch64 kernels, under qemu.

``litert_probe.py`` runs as a script under the emulated tier's aarch64 Python with the aarch64 ai-edge-litert
wheel (``mnv2deploy.emulation``): one fresh process for the builtin-kernel inspection and one per footprint, so
each starts from a clean heap. Memory, unlike time, is deterministic: the addresses LiteRT's aarch64 planner
hands out and the bytes its kernels allocate are what a phone with the same LiteRT and kernels allocates; qemu
translates instructions, not malloc. The host's own figures are measured beside them, so a difference between
the two kernel sets (scratch buffers, im2col) shows up in the report rather than being assumed away.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from ..errors import BadArtifactError
from .report import ARENA_METHOD, CHILD_TIMEOUT, MemoryReport, kernels_for, manifest_model, tflite_measurements

PROBE = Path(__file__).with_name("litert_probe.py")


def run_probe(args: list[str], cpu: str, root: Path | None = None, timeout: float = CHILD_TIMEOUT) -> dict[str, Any]:
    """``litert_probe.py ARGS`` under qemu-aarch64 (``cpu``): its JSON object, or a typed error."""
    from ..emulation import environment, python_command, python_env

    cmd = python_command(cpu, root)  # validates the CPU; qemu and the set-up environment or MissingToolError (exit 4)
    root = root or environment()
    name = Path(args[1]).name if len(args) > 1 else "probe"
    try:
        proc = subprocess.run(cmd + [str(PROBE), *args], capture_output=True, text=True, env=python_env(root),
                              timeout=timeout)
    except subprocess.TimeoutExpired:
        raise BadArtifactError(f"aarch64 LiteRT under qemu did not finish {args[0]} of {name} in {timeout:g} s",
                               "the machine may be overloaded; try again, or check the artifact on the host") from None
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    try:
        out = json.loads(lines[-1]) if lines else None
    except json.JSONDecodeError:
        out = None
    if isinstance(out, dict) and "error" in out:
        raise BadArtifactError(f"aarch64 LiteRT: {name}: {out['error']}", "pass a valid .tflite file")
    if proc.returncode != 0 or not isinstance(out, dict):
        why = f"killed by signal {-proc.returncode}" if proc.returncode < 0 else f"exit {proc.returncode}"
        last = (proc.stderr.strip().splitlines() or [""])[-1][:200]
        raise BadArtifactError(f"aarch64 LiteRT under qemu failed on {name} ({why}): {last}",
                               "check the artifact on the host first (`mnv2deploy memory ARTIFACT`)")
    return out


def _footprint(path: Path, kernels: str, cpu: str, root: Path | None) -> dict[str, Any]:
    """One footprint; an XNNPACK setting that crashes on this CPU is recorded, not fatal (the file already loaded
    with the builtin kernels). Seen: LiteRT 2.3.0's CompiledModel (xnnpack-transient) dies with SIGILL under
    -cpu cortex-a57 even on a 32x32 model, while its Interpreter runs there."""
    try:
        return run_probe(["footprint", str(path), kernels], cpu, root)
    except BadArtifactError as e:
        if kernels == "builtin":
            raise
        return {"kernels": kernels, "error": e.message, "heap_bytes": None}


def _host_side(path: Path, kernels: tuple[str, ...]) -> dict[str, Any]:
    """The same numbers from this host's x86 kernels, for the side-by-side columns."""
    from ..runtimes.child import call_in_child
    from . import process_peak
    from .tflite_graph import inspect_tflite

    inspection = call_in_child(inspect_tflite, str(path), timeout=CHILD_TIMEOUT)
    footprints = {k: call_in_child(process_peak.probe_tflite, str(path), k, timeout=CHILD_TIMEOUT) for k in kernels}
    return {"arch": inspection["machine"], **tflite_measurements(inspection, footprints)}


def scratch_differences(arm: list[dict[str, Any]], host: list[dict[str, Any]]) -> list[str]:
    """Scratch tensors (shape, dtype, bytes) one kernel set allocates and the other does not."""
    def key(row: dict[str, Any]) -> str:
        return f"{'x'.join(map(str, row['shape']))} {row['dtype']} ({row['nbytes']} B)"

    left, right = [key(r) for r in arm], [key(r) for r in host]
    out = []
    for k in sorted(set(left) | set(right)):
        a, h = left.count(k), right.count(k)
        if a != h:
            out.append(f"{k}: aarch64 x{a}, x86_64 x{h}")
    return out


def analyze_arm64(path: Path, xnnpack: bool = True, cpu: str = "cortex-a76", host: bool = True,
                  root: Path | None = None) -> MemoryReport:
    """Graph, builtin arena and footprints from the aarch64 kernels (and, with ``host``, x86's beside them)."""
    from ..emulation import LITERT_VERSION, QEMU
    from .lifetimes import analyze_lifetimes
    from .tflite_graph import graph_from_inspection

    path = Path(path).resolve()
    kernels = kernels_for(xnnpack)
    inspection = run_probe(["inspect", str(path)], cpu, root)
    footprints = {k: _footprint(path, k, cpu, root) for k in kernels}
    graph = graph_from_inspection(inspection)
    measurements = tflite_measurements(inspection, footprints)
    if host:
        x86 = _host_side(path, kernels)
        measurements["host"] = x86
        measurements["scratch_differences"] = scratch_differences(inspection.get("scratch", []), x86["builtin_scratch"])
        measurements["same_arena_as_host"] = x86["builtin_arena_bytes"] == inspection["arena_bytes"]
    emulated = {"emulator": QEMU, "cpu": cpu, "litert": f"ai-edge-litert {LITERT_VERSION} (aarch64 wheel)",
                "note": "aarch64 kernels under qemu-user: tensor addresses and heap bytes are the kernels' own "
                        "(exact); peak RSS includes qemu's translation cache, so use the heap figures"}
    return MemoryReport(path, graph, analyze_lifetimes(graph), inspection["arena_bytes"], ARENA_METHOD,
                        measurements, manifest_model(path), arch=inspection.get("machine") or "aarch64",
                        emulated=emulated)


def arm64_arena(path: Path, cpu: str = "cortex-a76") -> dict[str, Any]:
    """Only the builtin-kernel arena from the aarch64 kernels (one qemu process): what the main job adds."""
    out = run_probe(["inspect", str(Path(path).resolve())], cpu)
    return {"arena_bytes": out["arena_bytes"], "scratch_bytes": out["scratch_bytes"], "arch": out["machine"],
            "cpu": cpu, "emulated": True}
