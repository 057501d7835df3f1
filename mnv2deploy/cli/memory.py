"""`mnv2deploy memory`: activation memory of a .tflite/.onnx (static lifetimes and measured), or the paper's Table 3."""

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


def memory(
    artifact: Optional[Path] = typer.Argument(None, help="A .tflite or .onnx file (ours or anyone's)."),
    paper: bool = typer.Option(False, "--paper", help="Print the paper's Table 3 computed from the architectures."),
    out: Optional[Path] = typer.Option(None, "--out", help="Folder for the per-op timeline CSV and PNG."),
    xnnpack: bool = typer.Option(True, "--xnnpack/--no-xnnpack",
                                 help="Also measure LiteRT with its default XNNPACK delegate (a child process)."),
    as_json: bool = JsonOpt,
) -> None:
    """Static activation peak from tensor lifetimes, what the runtime really allocates, and a per-op timeline."""
    if paper:
        if artifact is not None:
            raise UsageError("--paper takes no ARTIFACT", "run `mnv2deploy memory --paper` or `mnv2deploy memory FILE`")
        return _paper(as_json)
    if artifact is None:
        raise UsageError("missing ARTIFACT", "pass a .tflite or .onnx file, or --paper")
    from ..memory.report import analyze_artifact
    from ..memory.timeline import write_timeline

    with status(f"analysing {artifact.name}"):
        report = analyze_artifact(artifact, xnnpack=xnnpack)
    result = report.to_dict()
    if out is not None:
        title = f"{artifact.name}: activation bytes alive per op"
        files = write_timeline(report.graph, report.lifetimes, out, artifact.name, title, report.measured_peak_bytes)
        result["files"] = {k: str(v) for k, v in files.items()}
        note(f"timeline: {files['csv']} {files['png']}")

    def render(console):
        t = Table(title=f"Activation memory of {artifact.name} ({result['ops']} ops)")
        t.add_column("what")
        t.add_column("value", justify="right")
        t.add_row("static peak (lifetimes, execution order)", _mb(result["static_peak_bytes"]))
        t.add_row(f"measured ({result['measured_method']})", _mb(result["measured_peak_bytes"]))
        m = result["measurements"]
        for key in ("builtin_rss", "xnnpack_rss", "ort_rss"):
            if key in m:
                t.add_row(f"{key.replace('_rss', '')} RSS increase: allocate / run",
                          f"{_mb(m[key]['allocate_rss_increase_bytes'])} / {_mb(m[key]['invoke_rss_increase_bytes'])}")
        peak = result["peak_op"]
        if peak:
            t.add_row("peak op", f"#{peak['index']} {peak['op_type']} {peak['block'] or ''}")
        for tensor in result["peak_tensors"][:4]:
            t.add_row("  alive at peak", f"{'x'.join(map(str, tensor['shape']))} {_mb(tensor['bytes'])}")
        if result["largest_tensor"]:
            lt = result["largest_tensor"]
            t.add_row("largest tensor", f"{'x'.join(map(str, lt['shape']))} {_mb(lt['bytes'])}")
        t.add_row("sum of all activations (no reuse)", _mb(result["total_activation_bytes"]))
        console.print(t)

    emit(result, as_json, render)
