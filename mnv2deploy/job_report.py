"""The main job's report: Markdown for people, a latency/size chart, JSON for machines (written by the CLI)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .fileio import atomic_path


def _f(v: Any, fmt: str = "{:.3g}", none: str = "-") -> str:
    return none if v is None else fmt.format(v)


def _mb(n: Any) -> str:
    return "-" if n is None else f"{n / 1e6:.2f} MB"


def _parity_cell(row: dict[str, Any]) -> str:
    if row.get("parity_error"):
        return f"error: {row['parity_error']}"
    p = row.get("parity")
    if p is None:
        return "-"
    if p["status"] == "skipped":
        return f"skipped ({p['skip_reason']})"
    verdict = "**pass**" if p["passed"] else f"**FAIL** ({', '.join(p['failed_checks'])})"
    return verdict


def render_markdown(report: dict[str, Any], chart: str | None) -> str:
    m = report["model"]
    w = m["weights"]
    lines = [
        "# mnv2deploy run",
        "",
        f"Model: MobileNetV2 width {w['width_mult']}, {w['num_classes']} classes, weights `{w['id']}` "
        f"(sha256 {m['weights_sha256'][:12]}), input {m['resolution']}x{m['resolution']}.",
        f"Host: {report['host']['cpu'] or 'unknown CPU'}, {report['host']['threads']} thread(s). "
        "Latencies are this host's CPU, not a phone's.",
        f"Verdict: **{'all parity checks passed' if report['passed'] else 'a parity check FAILED'}** "
        f"({report['seconds']:.0f} s).",
        "",
        "| target | artifact | size | export s | parity | agreement | accuracy ref / artifact | max abs diff | p50 ms | p90 ms | peak RSS |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in report["targets"]:
        e, p, b = r.get("export"), r.get("parity") or {}, r.get("bench") or {}
        if e is None:
            lines.append(f"| {r['target']} | export failed: {r.get('export_error')} | | | | | | | | | |")
            continue
        acc = (f"{_f(p.get('reference_accuracy'), '{:.1%}')} / {_f(p.get('artifact_accuracy'), '{:.1%}')}"
               if p.get("status") != "skipped" else "-")
        lines.append(
            f"| {r['target']} | `{Path(e['artifact']).name}` | {_mb(e['size_bytes'])} | {e['seconds']:.0f} | "
            f"{_parity_cell(r)} | {_f(p.get('top1_agreement'), '{:.3f}')} | {acc} | {_f(p.get('max_abs_diff'))} | "
            f"{_f(b.get('p50_ms'), '{:.2f}')} | {_f(b.get('p90_ms'), '{:.2f}')} | {_mb(b.get('peak_memory_bytes'))} |")
    for s in report["skipped_targets"]:
        lines.append(f"| {s['target']} | not exported: {s['reason']} | | | | | | | | | |")
    if chart:
        lines += ["", f"![latency and size per target]({chart})"]
    mem = report["memory"]
    lines += ["", f"## Activation memory (the paper's claim) at {mem.get('resolution', '?')}x{mem.get('resolution', '?')}", ""]
    if "skipped" in mem:
        lines.append(f"Skipped: {mem['skipped']}.")
    else:
        lines += ["| model | arena measured (this host) | arena aarch64 (qemu) | static peak (lifetimes) | largest tensor |",
                  "|---|---|---|---|---|"]
        for key, label in (("plain", "as exported"), ("split", f"split, {mem.get('split', {}).get('groups')} groups per block")):
            if key in mem:
                s = mem[key]
                lt = s["largest_tensor"] or {}
                arm = (_mb(s["arm64"]["arena_bytes"]) if s.get("arm64") else
                       f"error: {s['arm64_error']}" if s.get("arm64_error") else "-")
                lines.append(f"| {mem['target']} {label} | {_mb(s['measured_peak_bytes'])} | {arm} | "
                             f"{_mb(s['static_peak_bytes'])} | {'x'.join(map(str, lt.get('shape', [])))} ({_mb(lt.get('bytes'))}) |")
            elif mem.get(f"{key}_error"):
                lines.append(f"| {mem['target']} {label} | error: {mem[f'{key}_error']} | | | |")
        if "reduction" in mem:
            lines += ["", f"Splitting each block so its expanded tensor never exists whole cuts the measured arena "
                          f"{mem['reduction']:.2f}x (LiteRT builtin kernels; see docs/memory.md)."]
        if mem.get("arm64_skipped"):
            lines += ["", f"aarch64 arena not measured: {mem['arm64_skipped']}."]
        elif mem.get("plain", {}).get("arm64"):
            lines += ["", "The aarch64 column is LiteRT's arm64 kernels run under qemu (emulated): tensor addresses are "
                          "the aarch64 planner's own, so the bytes are exact; no phone was used."]
    lines += ["", "Artifacts and their manifests are in `artifacts/`; `report.json` holds every number.", ""]
    return "\n".join(lines)


def write_chart(report: dict[str, Any], path: Path) -> Path | None:
    """Horizontal bars: host p50 latency and artifact size per target."""
    rows = [r for r in report["targets"] if r.get("bench") and r.get("export")]
    if not rows:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [r["target"] for r in rows]
    fig, (ax_lat, ax_size) = plt.subplots(1, 2, figsize=(9, 0.45 * len(rows) + 1.4), sharey=True)
    ax_lat.barh(names, [r["bench"]["p50_ms"] for r in rows], color="tab:blue")
    ax_lat.set_xlabel(f"host p50 latency, ms ({report['host']['threads']} thread)")
    ax_lat.invert_yaxis()
    ax_size.barh(names, [r["export"]["size_bytes"] / 1e6 for r in rows], color="tab:gray")
    ax_size.set_xlabel("artifact size, MB")
    res = report["model"]["resolution"]
    fig.suptitle(f"MobileNetV2 {report['model']['weights']['width_mult']} @ {res}x{res} on {report['host']['cpu'] or 'host'}",
                 fontsize=9)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100, format="png")
    plt.close(fig)
    return path
