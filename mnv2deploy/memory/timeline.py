"""The per-op timeline as CSV (every op) and PNG (bytes alive per op, block boundaries marked)."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from ..fileio import atomic_path, write_text_atomic
from .graph import Graph
from .lifetimes import LifetimeReport

CSV_COLUMNS = ("op_index", "op_type", "op_name", "block", "before_bytes", "during_bytes", "output_bytes")


def timeline_csv(graph: Graph, report: LifetimeReport) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(CSV_COLUMNS)
    for op, m in zip(graph.ops, report.timeline):
        w.writerow((m.index, m.op_type, m.name, op.block or "", m.before_bytes, m.during_bytes, m.output_bytes))
    return buf.getvalue()


def block_starts(graph: Graph) -> list[tuple[int, str]]:
    """(op index, block) where a new ``features.N`` block begins; empty when the graph is not ours."""
    starts, current = [], None
    for op in graph.ops:
        if op.block and op.block != current:
            starts.append((op.index, op.block))
            current = op.block
    return starts


def write_timeline(graph: Graph, report: LifetimeReport, out_dir: Path, stem: str, title: str,
                   measured_bytes: int | None = None) -> dict[str, Path]:
    out_dir = Path(out_dir)
    csv_path = out_dir / f"{stem}.memory.csv"
    write_text_atomic(csv_path, timeline_csv(graph, report))
    png_path = out_dir / f"{stem}.memory.png"
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    xs = [m.index for m in report.timeline]
    fig, ax = plt.subplots(figsize=(12, 4.5))
    ax.step(xs, [m.during_bytes / 1e6 for m in report.timeline], where="mid", label="alive during op")
    ax.step(xs, [m.before_bytes / 1e6 for m in report.timeline], where="mid", alpha=0.6, label="alive before op")
    if measured_bytes:
        ax.axhline(measured_bytes / 1e6, color="red", linestyle="--", label=f"measured {measured_bytes / 1e6:.2f} MB")
    for index, block in block_starts(graph):
        ax.axvline(index - 0.5, color="grey", linewidth=0.4, alpha=0.6)
        ax.text(index - 0.5, ax.get_ylim()[1] * 0.98, block.split(".")[-1], fontsize=6, va="top", color="grey")
    if report.peak_op:
        ax.annotate(f"peak {report.static_peak_bytes / 1e6:.2f} MB ({report.peak_op.op_type})",
                    (report.peak_op.index, report.static_peak_bytes / 1e6), fontsize=8)
    ax.set_xlabel("op (execution order)" + ("; grey lines: block starts (features.N)" if block_starts(graph) else ""))
    ax.set_ylabel("activation MB")
    ax.set_title(title)
    ax.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    with atomic_path(png_path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)
    return {"csv": csv_path, "png": png_path}
