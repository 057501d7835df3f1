"""How a BenchResult is shown and kept, the same for host, Android and iOS runs: a rich table for people,
and with ``--out`` the JSON and a latency histogram PNG (when per-run samples exist), written atomically."""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

from ..fileio import atomic_path, ensure_writable_dir, write_json_atomic
from .result import BenchResult


def _ms(v: float | None) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    return f"{v:.3f}"


def _mib(v: int | None) -> str:
    return "-" if v is None else f"{v / 2**20:.1f} MiB"


def render_result(result: BenchResult, console: Any) -> None:
    """Two tables: what ran where, then the latency statistics (ms) and memory."""
    from rich.table import Table

    dev = result.device
    where = f"{dev.kind} {dev.name}" + (f" ({dev.model})" if dev.model else "")
    if dev.emulated:
        where += " [bold red]EMULATED[/]"
    facts = Table(title=f"bench {Path(result.artifact).name}", show_header=False)
    facts.add_column("")
    facts.add_column("")
    rows = [("target", f"{result.target} ({result.precision})"),
            ("runtime", f"{result.runtime} {result.runtime_version}"),
            ("delegate", str(result.delegate)), ("threads", str(result.threads)), ("device", where),
            ("batch", str(result.batch)), ("warm-up / timed runs", f"{result.warmup} / {result.latency_ms.count}"),
            ("init (load)", f"{_ms(result.init_ms)} ms"), ("first inference", f"{_ms(result.first_inference_ms)} ms"),
            ("peak memory", f"{_mib(result.peak_memory_bytes)}  ({result.memory.get('source', '-')})")]
    if result.memory.get("peak_increase_bytes") is not None:
        rows.append(("increase over baseline", _mib(result.memory["peak_increase_bytes"])))
    rows.append(("machine looked loaded", "[yellow]yes[/]" if result.loaded else "no"))
    for k, v in rows:
        facts.add_row(k, v)
    console.print(facts)
    lat = result.latency_ms
    table = Table(title="latency per run (ms)")
    cols = ("p50", "p90", "p99", "mean", "std", "min", "max", "trimmed mean")
    for c in cols:
        table.add_column(c, justify="right")
    table.add_row(*(_ms(getattr(lat, c.replace(" ", "_"))) for c in cols))
    console.print(table)
    for n in result.notes:
        console.print(f"note: {n}")


def result_json(result: BenchResult) -> dict[str, Any]:
    return result.to_dict()


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_") or "bench"


def output_folder(out: Path) -> Path:
    """The folder ``--out`` writes into (checked before benchmarking, so a bad --out fails in a second)."""
    out = Path(out)
    return out.parent if out.suffix.lower() == ".json" and not out.is_dir() else out


def output_paths(result: BenchResult, out: Path) -> tuple[Path, Path]:
    """``--out DIR``: DIR/<artifact>.<device>.<runtime>.t<threads>.{json,png}; ``--out FILE.json``: FILE.json and
    FILE.png beside it."""
    out = Path(out)
    if out.suffix.lower() == ".json" and not out.is_dir():
        return out, out.with_suffix(".png")
    stem = _safe(f"{Path(result.artifact).name}.{result.device.kind}-{result.device.name}.{result.runtime}"
                 f".t{result.threads}")
    return out / f"{stem}.json", out / f"{stem}.png"


def write_histogram(samples_ms: list[float], title: str, path: Path) -> Path:
    """Latency histogram with p50/p90/p99 marked; matplotlib (Agg) imported only here."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    a = np.asarray(samples_ms, dtype=np.float64)
    fig, ax = plt.subplots(figsize=(7, 4), dpi=100)
    try:
        ax.hist(a, bins=min(50, max(5, len(a) // 3)), color="#4477aa")
        for q, style in ((50, "-"), (90, "--"), (99, ":")):
            v = float(np.percentile(a, q))
            ax.axvline(v, color="#cc3311", linestyle=style, label=f"p{q} {v:.3f} ms")
        ax.set_xlabel("latency per run (ms)")
        ax.set_ylabel("runs")
        ax.set_title(title, fontsize=9)
        ax.legend()
        fig.tight_layout()
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format="png")
    finally:
        plt.close(fig)
    return path


def save_result(result: BenchResult, out: Path) -> dict[str, str]:
    """JSON always; the histogram only when the run kept per-run samples (phones report aggregates only)."""
    json_path, png_path = output_paths(result, out)
    ensure_writable_dir(json_path.parent)
    written = {"json": str(json_path)}
    samples = result.raw.get("samples_ms")
    if samples:
        title = (f"{Path(result.artifact).name} | {result.runtime} {result.delegate or ''} | "
                 f"{result.threads} thread(s) | {result.device.kind} {result.device.model or result.device.name}")
        written["histogram"] = str(write_histogram(samples, title, png_path))
    write_json_atomic(json_path, {**result_json(result), "files": written})
    return written
