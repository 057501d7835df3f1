"""`mnv2deploy memory`: activation memory of a .tflite/.onnx (static lifetimes and measured) or a .pte (static
lifetimes and ExecuTorch's own plan), or the paper's Table 3."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from ..errors import UsageError
from .common import JsonOpt, emit, note, status


def _mb(n: int | None) -> str:
    return "-" if n is None else f"{n / 1e6:.2f} MB"


def _paper(as_json: bool) -> None:
    from ..memory.paper import PAPER_KB, paper_table

    table = paper_table()

    def render(console):
        names = list(table)
        resolutions = []
        for entry in table.values():
            resolutions += [r["resolution"] for r in entry["rows"] if r["resolution"] not in resolutions]
        t = Table(title="Channels / memory (KB, 16-bit) materialized per resolution, bottleneck = one op (paper Table 3)")
        t.add_column("size")
        for name in names:
            t.add_column(name, justify="right")
        for res in resolutions:
            cells = []
            for name in names:
                row = next((r for r in table[name]["rows"] if r["resolution"] == res), None)
                cells.append(f"{row['channels']}/{row['bytes'] / PAPER_KB:.0f}" if row else "-")
            t.add_row(res, *cells)
        t.add_section()
        t.add_row("max", *[f"{table[n]['max_bytes'] / PAPER_KB:.0f}K" for n in names])
        t.add_row("paper's max", *[f"{table[n]['paper_max_kb']}K" if table[n]["paper_max_kb"] else "-" for n in names])
        t.add_row("worst op in+out", *[f"{table[n]['max_op_bytes'] / PAPER_KB:.0f}K" for n in names])
        console.print(t)
        console.print("K = 1000 bytes. Derivation: docs/memory.md.")

    emit(table, as_json, render)


def _footprint_cell(fp: dict | None) -> str:
    if not fp:
        return "-"
    if fp.get("error"):
        return "failed (see --json)"
    heap = fp.get("heap_bytes")
    extra = "" if fp.get("delegated", True) or fp["kernels"] == "builtin" else " (NOT delegated)"
    return f"{_mb(heap)}{extra}"


def _artifact_render(result: dict, artifact: Path):
    m = result["measurements"]
    arm = result["arch"] == "aarch64"
    host = m.get("host", {})

    def render(console):
        title = f"Activation memory of {artifact.name} ({result['ops']} ops)"
        if arm:
            title += f", LiteRT aarch64 kernels on {result['emulated']['cpu']} (EMULATED by qemu; bytes are exact)"
        t = Table(title=title)
        t.add_column("what")
        t.add_column("aarch64" if arm else result["arch"], justify="right")
        if arm:
            t.add_column(f"{host.get('arch', 'host')} (this host)", justify="right")

        def row(label, value, host_value=None):
            t.add_row(label, value, *([host_value] if arm else []))

        row("static peak (lifetimes, execution order)", _mb(result["static_peak_bytes"]))
        if "builtin_arena_bytes" in m:
            row("builtin-kernel arena (measured)", _mb(m["builtin_arena_bytes"]), _mb(host.get("builtin_arena_bytes")))
            row("kernel scratch tensors (im2col, ...), summed", _mb(m["builtin_scratch_bytes"]),
                _mb(host.get("builtin_scratch_bytes")))
            for kernels, fp in m["footprint"].items():
                row(f"heap after allocate + 2 runs: {kernels}", _footprint_cell(fp),
                    _footprint_cell(host.get("footprint", {}).get(kernels)))
        elif "planned_bytes" in m:
            row("ExecuTorch memory plan (in the program)", _mb(m["planned_bytes"]))
            row("delegates", ", ".join(m["delegates"]) or "none (portable kernels)")
        else:
            row(f"measured ({result['measured_method']})", _mb(result["measured_peak_bytes"]))
        peak = result["peak_op"]
        if peak:
            row("peak op", f"#{peak['index']} {peak['op_type']} {peak['block'] or ''}")
        for tensor in result["peak_tensors"][:4]:
            row("  alive at peak", f"{'x'.join(map(str, tensor['shape']))} {_mb(tensor['bytes'])}")
        if result["largest_tensor"]:
            lt = result["largest_tensor"]
            row("largest tensor", f"{'x'.join(map(str, lt['shape']))} {_mb(lt['bytes'])}")
        row("sum of all activations (no reuse)", _mb(result["total_activation_bytes"]))
        console.print(t)
        if arm:
            diffs = m.get("scratch_differences") or []
            console.print("aarch64 and x86_64 scratch buffers: " + ("identical" if not diffs else "; ".join(diffs)))
        if "planned_bytes" in m:
            console.print(f"note: {m['note']}")
        if "footprint" in m:
            console.print("heap = bytes malloc holds after creating, allocating and running (packed weights, "
                          "XNNPACK's workspace, LiteRT's arena); kernels: docs/memory.md")

    return render


def _device_render(result: dict):
    def render(console):
        t = Table(title=f"Memory on {result['device']} ({result['device_info']['model']})"
                        + (" EMULATED" if result["emulated"] else ""))
        for col in ("kernels", "model", "arena", "peak footprint", "init delta", "heap (stand-in)", "error"):
            t.add_column(col, justify="left" if col in ("kernels", "model", "error") else "right")
        for r in result["runs"]:
            t.add_row(r["kernels"], f"{r['model']} (K={r['split']})", _mb(r.get("arena_bytes")),
                      _mb(r.get("peak_footprint_bytes")), _mb(r.get("init_delta_bytes")),
                      _mb(r.get("heap_init_bytes")), r.get("error", ""))
        console.print(t)
        for k, ratios in result["ratios"].items():
            cells = ", ".join(f"{f.replace('_bytes', '')} {v:.2f}x" for f, v in ratios.items() if v is not None)
            console.print(f"split / plain, {k}: {cells or '-'}")
        for n in result["notes"]:
            console.print(f"note: {n}")

    return render


def memory(
    artifact: Optional[Path] = typer.Argument(None, help="A .tflite, .onnx or .pte file (ours or anyone's)."),
    paper: bool = typer.Option(False, "--paper", help="Print the paper's Table 3 computed from the architectures."),
    out: Optional[Path] = typer.Option(None, "--out", help="Folder for the per-op timeline CSV and PNG "
                                                           "(with --device: the runner's raw output)."),
    xnnpack: bool = typer.Option(True, "--xnnpack/--no-xnnpack",
                                 help="Also measure LiteRT with XNNPACK (default options, and transient "
                                      "indirection buffers)."),
    arch: str = typer.Option("x86_64", "--arch", help="x86_64 (this host) or arm64 (LiteRT's aarch64 kernels "
                                                      "under qemu; host figures beside them)."),
    cpu: Optional[str] = typer.Option(None, "--cpu", help="Emulated CPU for --arch arm64 (cortex-a76, cortex-a57)."),
    device: Optional[str] = typer.Option(None, "--device", "-d", help="An Android profile (pixel) or adb serial: "
                                                                      "plain and split twin on the phone."),
    twin: Optional[Path] = typer.Option(None, "--twin", help="--device: the other export of the pair (default: "
                                                             "the -splitK file beside ARTIFACT)."),
    split: Optional[int] = typer.Option(None, "--split", min=2, help="--device: K of the split twin to look for "
                                                                     "(default 4)."),
    runs: Optional[int] = typer.Option(None, "--runs", min=1, help="--device: timed runs per model and kernels "
                                                                   "(default 3)."),
    cores: Optional[str] = typer.Option(None, "--cores", help="--device: CPUs to pin to (default: the big cores)."),
    runner: Optional[Path] = typer.Option(None, "--runner", help="--device: a benchmark_model binary to push."),
    as_json: bool = JsonOpt,
) -> None:
    """Static activation peak from tensor lifetimes, what the runtime really allocates, and a per-op timeline."""
    if paper:
        if artifact is not None:
            raise UsageError("--paper takes no ARTIFACT", "run `mnv2deploy memory --paper` or `mnv2deploy memory FILE`")
        return _paper(as_json)
    if artifact is None:
        raise UsageError("missing ARTIFACT", "pass a .tflite, .onnx or .pte file, or --paper")
    if arch not in ("x86_64", "arm64"):
        raise UsageError(f"--arch {arch[:20]!r} is not supported", "use x86_64 (this host) or arm64")
    if cpu is not None and arch != "arm64":
        raise UsageError("--cpu only applies to --arch arm64", "add --arch arm64 or drop --cpu")
    device_only = [n for n, v in (("--twin", twin), ("--split", split), ("--runs", runs), ("--cores", cores),
                                  ("--runner", runner)) if v is not None]
    if device is None and device_only:
        raise UsageError(f"{', '.join(device_only)} only apply to --device", "add --device, or drop them")
    if device is not None:
        if arch != "x86_64":
            raise UsageError("--device measures on the phone itself; --arch does not apply",
                             "drop --arch (use --arch arm64 without a phone)")
        from .bench import device_kind

        if device_kind(device, artifact) == "ios":
            raise UsageError("memory --device measures Android phones (LiteRT)",
                             "on an iPhone run the ios_bench testMemory_plain/split tests (docs/ios.md)")
        from ..memory.device import KERNEL_FLAGS, run_device_memory

        kernels = tuple(KERNEL_FLAGS) if xnnpack else ("builtin",)
        with status(f"measuring {artifact.name} and its split twin on {device}"):
            result = run_device_memory(artifact, device, twin=twin, split=split or 4, kernels=kernels,
                                       runs=runs or 3, cores=cores, runner=runner, out=out)
        return emit(result, as_json, _device_render(result))
    from ..memory.report import analyze_artifact
    from ..memory.timeline import write_timeline

    where = f" (aarch64 under qemu, {cpu or 'cortex-a76'})" if arch == "arm64" else ""
    with status(f"analysing {artifact.name}{where}"):
        report = analyze_artifact(artifact, xnnpack=xnnpack, arch=arch, cpu=cpu)
    result = report.to_dict()
    if out is not None:
        title = f"{artifact.name}: activation bytes alive per op"
        files = write_timeline(report.graph, report.lifetimes, out, artifact.name, title, report.measured_peak_bytes)
        result["files"] = {k: str(v) for k, v in files.items()}
        note(f"timeline: {files['csv']} {files['png']}")
    emit(result, as_json, _artifact_render(result, artifact))
