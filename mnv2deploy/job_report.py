"""The main job's report: Markdown for people, a latency/size chart, JSON for machines (written by the CLI)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .fileio import atomic_path


def _f(v: Any, fmt: str = "{:.3g}", none: str = "-") -> str:
    return none if v is None else fmt.format(v)


def _mb(n: Any) -> str:
    return "-" if n is None else f"{n / 1e6:.2f} MB"


# Measured in docs/memory.md section 4 (benchmarks/arm64_memory.py, int8 MobileNetV2 1.0 at 224, split 4 vs 1,
# identical on x86 and emulated aarch64): which kernels the split helps. Re-measure there, not here.
KERNEL_SAVINGS = (
    "LiteRT builtin kernels (the arena above): **saved**, 2.60 -> 1.04 MB (0.40x).",
    "XNNPACK with LiteRT's default options, the delegate apps actually use: **no saving**, activations 3.17 -> "
    "6.99 MB (2.21x more: XNNPACK keeps an indirection buffer per convolution, and the split adds convolutions).",
    "XNNPACK with transient indirection buffers: **saved**, 1.77 -> 1.48 MB (0.84x), 0.47x of the default-option "
    "plain model.",
)


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


def _settings(report: dict[str, Any]) -> list[str]:
    """What a reader needs to judge the numbers: how many runs and images, threads, the machine and its load."""
    h, c = report["host"], report.get("config") or {}
    samples = c.get("parity_samples")
    sampled = {r.get("parity", {}).get("samples") for r in report["targets"] if r.get("parity", {}).get("samples")}
    loaded = [r["target"] for r in report["targets"] if (r.get("bench") or {}).get("loaded")]
    load = h.get("load_average_start")
    lines = [
        f"Host: {h['cpu'] or 'unknown CPU'} ({h.get('logical_cpus') or '?'} logical CPUs; CPU flags: "
        f"{', '.join(h.get('cpu_flags') or []) or 'none of the listed SIMD flags'}), load average "
        f"{_f(load[0] if load else None, '{:.2f}')} at the start and "
        f"{_f(h['load_average_end'][0] if h.get('load_average_end') else None, '{:.2f}')} at the end. "
        "Latencies are this host's CPU, not a phone's.",
        f"Settings: host bench {c.get('runs', '?')} timed runs after {c.get('warmup', '?')} warm-up runs, "
        f"{h['threads']} runtime thread(s) for parity and bench (torch and math libraries capped at "
        f"{h.get('thread_cap', '?')}); parity on {', '.join(map(str, sorted(sampled))) or '-'} images"
        f"{' (--samples)' if samples else ' (the whole evaluation set)'}. "
        f"Exports and parity checks ran in {c.get('workers', 1)} worker process(es); the benches one at a time after "
        "them, with no converter running.",
        (f"Load flag: **loaded** for {', '.join(loaded)}: other work disturbed the timed runs (see `loaded_notes` in "
         "report.json); treat those latencies as upper bounds." if loaded else
         "Load flag: no bench was flagged loaded (run-to-run spread and other processes' CPU time were low)."),
    ]
    return lines


def render_markdown(report: dict[str, Any], chart: str | None) -> str:
    m = report["model"]
    w = m["weights"]
    lines = [
        "# mnv2deploy run",
        "",
        f"Model: MobileNetV2 width {w['width_mult']}, {w['num_classes']} classes, weights `{w['id']}` "
        f"(sha256 {m['weights_sha256'][:12]}), input {m['resolution']}x{m['resolution']}.",
        *_settings(report),
        f"Verdict: **{'all parity checks passed' if report['passed'] else 'a parity check FAILED'}** "
        f"({report['seconds']:.0f} s).",
        "",
        "| target | artifact | size | export s | parity | images | agreement | accuracy ref / artifact | max abs diff "
        "| p50 ms | p90 ms | runs (warm-up) | loaded | model RSS | process peak RSS |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    blank = " | " * 13
    for r in report["targets"]:
        e, p, b = r.get("export"), r.get("parity") or {}, r.get("bench") or {}
        if e is None:
            lines.append(f"| {r['target']} | export failed: {r.get('export_error')}{blank}|")
            continue
        acc = (f"{_f(p.get('reference_accuracy'), '{:.1%}')} / {_f(p.get('artifact_accuracy'), '{:.1%}')}"
               if p.get("status") != "skipped" else "-")
        runs = f"{b['runs']} ({b.get('warmup', '?')})" if b else "-"
        loaded = ("**yes**" if b.get("loaded") else "no") if b else "-"
        lines.append(
            f"| {r['target']} | `{Path(e['artifact']).name}` | {_mb(e['size_bytes'])} | {e['seconds']:.0f} | "
            f"{_parity_cell(r)} | {p.get('samples') or '-'} | {_f(p.get('top1_agreement'), '{:.3f}')} | {acc} | "
            f"{_f(p.get('max_abs_diff'))} | {_f(b.get('p50_ms'), '{:.2f}')} | {_f(b.get('p90_ms'), '{:.2f}')} | "
            f"{runs} | {loaded} | {_mb(b.get('model_rss_bytes'))} | {_mb(b.get('peak_memory_bytes'))} |")
    for s in report["skipped_targets"]:
        lines.append(f"| {s['target']} | not exported: {s['reason']}{blank}|")
    lines += ["", "Model RSS: what loading the artifact added to the benchmark process (RSS after load minus before); "
                  "process peak RSS: the whole process at its peak, mostly Python and the runtime framework."]
    if chart:
        lines += ["", f"![latency and size per target]({chart})"]
    mem = report["memory"]
    lines += ["", f"## Activation memory (the paper's claim) at {mem.get('resolution', '?')}x{mem.get('resolution', '?')}", ""]
    if "skipped" in mem:
        lines.append(f"Skipped: {mem['skipped']}.")
    else:
        if mem.get("calibration_samples"):
            lines += [f"The memory models are calibrated on {mem['calibration_samples']} images: their arena depends on "
                      "the graph's tensor sizes, not on its quantization scales.", ""]
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
                          f"{mem['reduction']:.2f}x. That arena is LiteRT's **builtin kernels**; not every kernel "
                          "sees the saving (docs/memory.md section 4, int8 at 224, split 4 vs as exported):",
                      "",
                      *[f"- {k}" for k in KERNEL_SAVINGS]]
        if mem.get("arm64_skipped"):
            lines += ["", f"aarch64 arena not measured: {mem['arm64_skipped']}."]
        elif mem.get("plain", {}).get("arm64"):
            lines += ["", "The aarch64 column is LiteRT's arm64 kernels run under qemu (emulated): tensor addresses are "
                          "the aarch64 planner's own, so the bytes are exact; no phone was used."]
    lines += ["", "Artifacts and their manifests are in `artifacts/`; `report.json` holds every number.", ""]
    return "\n".join(lines)


def write_chart(report: dict[str, Any], path: Path) -> Path | None:
    """Horizontal bars per target: host p50 latency (hatched when the run was flagged loaded), artifact size, and
    memory as the model's share beside the whole process's peak; runs, warm-up, threads and load in the title."""
    rows = [r for r in report["targets"] if r.get("bench") and r.get("export")]
    if not rows:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [r["target"] for r in rows]
    fig, (ax_lat, ax_size, ax_mem) = plt.subplots(1, 3, figsize=(12, 0.45 * len(rows) + 1.8), sharey=True)
    ax_lat.barh(names, [r["bench"]["p50_ms"] for r in rows], color="tab:blue", edgecolor="white")
    for bar, r in zip(ax_lat.patches, rows):
        if r["bench"].get("loaded"):
            bar.set_hatch("//")
    b0, c = rows[0]["bench"], report.get("config") or {}
    ax_lat.set_xlabel(f"host p50 ms, {b0['runs']} runs after {b0.get('warmup', c.get('warmup', '?'))} warm-up, "
                      f"{report['host']['threads']} thread (// = loaded)", fontsize=8)
    ax_lat.invert_yaxis()
    ax_size.barh(names, [r["export"]["size_bytes"] / 1e6 for r in rows], color="tab:gray")
    ax_size.set_xlabel("artifact size, MB", fontsize=8)
    y = range(len(rows))
    peak = [(r["bench"].get("peak_memory_bytes") or 0) / 2**20 for r in rows]
    model = [(r["bench"].get("model_rss_bytes") or 0) / 2**20 for r in rows]
    ax_mem.barh([i + 0.2 for i in y], peak, height=0.4, color="tab:gray", label="process peak RSS")
    ax_mem.barh([i - 0.2 for i in y], model, height=0.4, color="tab:green", label="model's share (RSS after load - before)")
    ax_mem.set_xlabel("memory, MiB", fontsize=8)
    ax_mem.legend(fontsize=7, loc="lower right")
    res = report["model"]["resolution"]
    samples = sorted({r.get("parity", {}).get("samples") for r in rows if r.get("parity", {}).get("samples")})
    load = report["host"].get("load_average_start")
    fig.suptitle(f"MobileNetV2 {report['model']['weights']['width_mult']} @ {res}x{res} on "
                 f"{report['host']['cpu'] or 'host'} ({', '.join(report['host'].get('cpu_flags') or []) or '-'}); "
                 f"parity on {'/'.join(map(str, samples)) or '-'} images; load average "
                 f"{_f(load[0] if load else None, '{:.1f}')} at start", fontsize=8)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100, format="png")
    plt.close(fig)
    return path
