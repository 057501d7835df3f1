"""Split-block memory, side by side in one run: MobileNetV2 1.0 @ 224, K = 1, 2, 3, 4, 6, tflite fp32 and int8
(and onnx fp32): static peak, LiteRT arena (builtin kernels), XNNPACK activation memory, onnxruntime, the
paper's bound scaled to the activation width, and the latency cost of K (median, 1 thread, XNNPACK and builtin
kernels, through `mnv2deploy.bench.host.run_host_bench`, the host bench of `mnv2deploy bench`).

Every artifact is made by the real command, `mnv2deploy export --target T --split K --resolution R` (a child
process per export, torch on 1 thread), so the numbers describe what users export.

XNNPACK's figure is the heap growth (glibc's bytes in use, `mnv2deploy.memory.litert_probe`) of a fresh child over
create + allocate + run with LiteRT's default XNNPACK options, minus the same for the same weights exported at
32x32 (whose activations are negligible), so that repacked weights cancel out. (The table in docs/memory.md, run 2026-11-22, used the
peak RSS increase instead; benchmarks/arm64_memory.py has the aarch64 side and XNNPACK's transient option.)

    .venv/bin/python benchmarks/split_memory.py [--out DIR] [--ks 1,2,3,4,6] [--runs 30]
        [--targets tflite-int8,tflite,onnx] [--calib-samples 64] [--reuse] [--no-doc]

Writes DIR/split_memory.json and the results section of docs/memory.md (with --targets a subset, the other
sections are taken from DIR/split_memory.json of an earlier run when it has them).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

RESOLUTION, BASELINE_RESOLUTION = 224, 32
DOC = ROOT / "docs" / "memory.md"
BYTES = {"fp32": 4, "int8": 1}
# registry target -> (file format, activation precision) as the tables name them
TARGETS = {"tflite-int8": ("tflite", "int8"), "tflite": ("tflite", "fp32"), "onnx": ("onnx", "fp32")}


def export(target: str, k: int, resolution: int, out_dir: Path, calib_samples: int, reuse: bool = False) -> Path:
    """One artifact via `mnv2deploy export --target T --split K --resolution R --json` in a child process; with
    ``reuse``, an artifact a previous run of this script exported into the same folder (manifest beside it)."""
    folder = out_dir / f"{target}-k{k}-{resolution}"
    fmt, prec = TARGETS[target]
    split = f"-split{k}" if k > 1 else ""
    expected = folder / f"mobilenet_v2-1.0-{resolution}{split}.{prec}.{fmt}"
    if reuse and expected.exists() and expected.with_name(expected.name + ".manifest.json").exists():
        return expected
    cmd = [sys.executable, "-m", "mnv2deploy", "export", "--target", target, "--split", str(k),
           "--resolution", str(resolution), "--calib-samples", str(calib_samples), "--out", str(folder), "--json"]
    # K-way splits have K times more tiny convs; an oversubscribed torch thread pool made calibration ~100x slower
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} exited {proc.returncode}: {proc.stderr.strip().splitlines()[-1:]}")
    return Path(json.loads(proc.stdout)["artifact"])


def xnnpack_total(path: Path) -> int:
    from mnv2deploy.memory.process_peak import probe_tflite
    from mnv2deploy.runtimes.child import call_in_child

    return call_in_child(probe_tflite, str(path), "xnnpack", timeout=600)["heap_bytes"]


def latency_ms(path: Path, runs: int) -> dict:
    """Median latency, 1 thread, in `mnv2deploy bench`'s host bench (fresh pinned child): LiteRT with XNNPACK and
    with the builtin kernels (the ones whose arena we measure), or onnxruntime."""
    from mnv2deploy.bench.host import HostBenchConfig, run_host_bench
    from mnv2deploy.manifest import read_manifest

    manifest = read_manifest(path)
    bench = HostBenchConfig.for_format(manifest.format, threads=1, runs=runs, warmup=5)
    out = {"median_ms": run_host_bench(path, manifest, bench).latency_ms.p50}
    if path.suffix == ".tflite":
        builtin = HostBenchConfig.for_format(manifest.format, threads=1, runs=max(5, runs // 3), warmup=5,
                                             xnnpack=False)
        out["builtin_median_ms"] = run_host_bench(path, manifest, builtin).latency_ms.p50
    return out


def measure(artifact: Path, baseline: Path | None, runs: int) -> dict:
    from mnv2deploy.memory.report import analyze_artifact

    rep = analyze_artifact(artifact, xnnpack=artifact.suffix == ".tflite").to_dict()
    row = {"static_peak_bytes": rep["static_peak_bytes"], "measured_peak_bytes": rep["measured_peak_bytes"],
           "largest_tensor": rep["largest_tensor"], "peak_op": rep["peak_op"], "ops": rep["ops"],
           "measurements": rep["measurements"]}
    if baseline is not None:
        total = rep["measurements"]["footprint"]["xnnpack"]["heap_bytes"]
        row["xnnpack_activation_bytes"] = total - xnnpack_total(baseline)
    row["latency"] = latency_ms(artifact, runs)
    return row


def _mb(n) -> str:
    return "-" if n is None else f"{n / 1e6:.2f}"


def _latency_cells(row: dict, base: dict, key: str) -> tuple[str, str]:
    lat, lat0 = row.get("latency", {}).get(key), base.get("latency", {}).get(key)
    return (f"{lat:.2f}" if lat else "-"), (f"{lat / lat0:.2f}x" if lat and lat0 else "-")


def render(results: dict, ks: list[int]) -> str:
    from mnv2deploy.memory.paper import mobilenet_v2_bound

    lines = [f"Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} on the shared 2-core x86 host "
             f"(MobileNetV2 1.0 @ {RESOLUTION}, embedded weights, batch 1). MB = 10^6 bytes. Latency: median of "
             f"timed runs in a fresh child, 1 thread, under the machine's shared load; 'vs K=1' is the cost of K.", ""]
    for prec, fmt in (("int8", "tflite"), ("fp32", "tflite"), ("fp32", "onnx")):
        key = f"{fmt}-{prec}"
        if key not in results:
            continue
        bound = mobilenet_v2_bound(RESOLUTION, 1.0, BYTES[prec])
        lines += [f"### {fmt} {prec} (paper bound at {BYTES[prec]} byte(s)/activation: {_mb(bound['max_bytes'])} MB "
                  f"largest tensor, {_mb(bound['max_op_bytes'])} MB worst op in+out)", ""]
        if fmt == "tflite":
            lines += ["| K | static peak MB | LiteRT arena MB (builtin) | arena / K=1 | arena / paper bound | "
                      "XNNPACK activations MB | largest tensor | ms XNNPACK | vs K=1 | ms builtin | vs K=1 |",
                      "|---|---|---|---|---|---|---|---|---|---|---|"]
        else:
            lines += ["| K | static peak MB | onnxruntime RSS while running MB | vs K=1 | latency ms (1 thread) | vs K=1 |",
                      "|---|---|---|---|---|---|"]
        base = results[key].get("1", {})
        for k in ks:
            r = results[key].get(str(k))
            if not r:
                continue
            lat_s, lat_r = _latency_cells(r, base, "median_ms")
            blt_s, blt_r = _latency_cells(r, base, "builtin_median_ms")
            ratio = f"{base['measured_peak_bytes'] / r['measured_peak_bytes']:.2f}x lower" if base else "-"
            if fmt == "tflite":
                lt = r["largest_tensor"]
                lines.append(f"| {k} | {_mb(r['static_peak_bytes'])} | {_mb(r['measured_peak_bytes'])} | {ratio} | "
                             f"{r['measured_peak_bytes'] / bound['max_bytes']:.1f}x | {_mb(r.get('xnnpack_activation_bytes'))} | "
                             f"{'x'.join(map(str, lt['shape']))} | {lat_s} | {lat_r} | {blt_s} | {blt_r} |")
            else:
                lines.append(f"| {k} | {_mb(r['static_peak_bytes'])} | {_mb(r['measured_peak_bytes'])} | {ratio} | "
                             f"{lat_s} | {lat_r} |")
        lines.append("")
    return "\n".join(lines)


def write_doc(section: str, marker: str = "split_memory") -> None:
    """Replace what docs/memory.md holds between <!-- MARKER:begin --> and <!-- MARKER:end -->."""
    text = DOC.read_text()
    new = re.sub(rf"(<!-- {marker}:begin -->\n).*?(<!-- {marker}:end -->)",
                 lambda m: m.group(1) + section + "\n" + m.group(2), text, flags=re.S)
    from mnv2deploy.fileio import write_text_atomic

    write_text_atomic(DOC, new)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("/tmp/mnv2deploy-split-memory"))
    ap.add_argument("--ks", default="1,2,3,4,6")
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--targets", default="tflite-int8,tflite,onnx", help=f"any of {', '.join(TARGETS)}")
    ap.add_argument("--calib-samples", type=int, default=64, help="int8 calibration images (export --calib-samples)")
    ap.add_argument("--reuse", action="store_true", help="measure artifacts an earlier run exported into --out")
    ap.add_argument("--no-doc", action="store_true", help="do not rewrite docs/memory.md")
    args = ap.parse_args()
    ks = [int(k) for k in args.ks.split(",")]
    targets = args.targets.split(",")
    unknown = [t for t in targets if t not in TARGETS]
    if unknown:
        raise SystemExit(f"unknown target(s) {', '.join(unknown)}; choose from {', '.join(TARGETS)}")
    store = args.out / "split_memory.json"
    results: dict = json.loads(store.read_text()) if store.exists() else {}
    for target in targets:
        fmt, prec = TARGETS[target]
        key = f"{fmt}-{prec}"
        results[key] = {}
        for k in ks:
            t0 = time.time()
            artifact = export(target, k, RESOLUTION, args.out, args.calib_samples, args.reuse)
            baseline = (export(target, k, BASELINE_RESOLUTION, args.out, args.calib_samples, args.reuse)
                        if fmt == "tflite" else None)
            results[key][str(k)] = measure(artifact, baseline, args.runs)
            results[key][str(k)]["artifact"] = str(artifact)
            print(f"{key} K={k}: arena/measured {_mb(results[key][str(k)]['measured_peak_bytes'])} MB "
                  f"({time.time() - t0:.0f} s)", file=sys.stderr)
            args.out.mkdir(parents=True, exist_ok=True)
            store.write_text(json.dumps(results, indent=1, default=str))  # a long run keeps what it measured
    section = render(results, ks)
    print(section)
    if not args.no_doc:
        write_doc(section)
    return 0


if __name__ == "__main__":
    sys.exit(main())
