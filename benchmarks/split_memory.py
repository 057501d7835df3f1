"""Split-block memory, side by side in one run: MobileNetV2 1.0 @ 224, K = 1, 2, 3, 4, 6, tflite fp32 and int8
(and onnx fp32): static peak, LiteRT arena (builtin kernels), XNNPACK activation memory, onnxruntime, the
paper's bound scaled to the activation width, and the latency cost of K (median, 1 thread, XNNPACK and builtin
kernels; timed in a fresh child per artifact, since mnv2deploy.bench.host was not merged when this was written).

XNNPACK's figure is the peak RSS increase of a child over create + allocate + run, minus the same for the same
weights exported at 32x32 (whose activations are negligible), so that repacked weights cancel out.

    .venv/bin/python benchmarks/split_memory.py [--out DIR] [--ks 1,2,3,4,6] [--runs 30] [--from-dir DIR]

Writes DIR/split_memory.json and the results section of docs/memory.md.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

RESOLUTION, BASELINE_RESOLUTION = 224, 32
DOC = ROOT / "docs" / "memory.md"
BYTES = {"fp32": 4, "int8": 1}


def export(target: str, k: int, resolution: int, out_dir: Path, from_dir: Path | None = None) -> Path:
    """One artifact through the project's own export targets (what `mnv2deploy export --split K` runs), or a
    pre-exported file ``mnv2_k{K}_{resolution}.{precision}.{tflite|onnx}`` from ``from_dir``."""
    if from_dir is not None:
        prec = "fp32" if target == "onnx" else target.split("-")[1]
        path = from_dir / f"mnv2_k{k}_{resolution}.{prec}.{'onnx' if target == 'onnx' else 'tflite'}"
        if not path.exists():
            raise SystemExit(f"missing {path}")
        return path
    from mnv2deploy.targets import get_target
    from mnv2deploy.targets.base import ExportRequest
    from mnv2deploy.weights import load_reference, resolve_weights

    folder = out_dir / f"{target}-k{k}-{resolution}"
    reference = load_reference(resolve_weights("default", resolution=resolution))
    result = get_target(target).export(ExportRequest(reference=reference, resolution=resolution, out_dir=folder,
                                                     split=k, calib_samples=64))
    return Path(result.artifact)


def xnnpack_total(path: Path) -> int:
    from mnv2deploy.memory.process_peak import probe_tflite
    from mnv2deploy.runtimes.child import call_in_child

    return call_in_child(probe_tflite, str(path), True, timeout=600)["rss_increase_bytes"]


def latency_ms(path: Path, runs: int) -> dict:
    """Median latency, 1 thread: LiteRT with XNNPACK and with the builtin kernels (the ones whose arena we
    measure), or onnxruntime. Each in a fresh child."""
    from mnv2deploy.runtimes.child import call_in_child

    out = {"median_ms": call_in_child(_raw_latency, str(path), runs, True, timeout=900)}
    if path.suffix == ".tflite":
        out["builtin_median_ms"] = call_in_child(_raw_latency, str(path), max(5, runs // 3), False, timeout=900)
    return out


def _raw_latency(path: str, runs: int, xnnpack: bool) -> float:
    import numpy as np

    if path.endswith(".onnx"):
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = opts.inter_op_num_threads = 1
        sess = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
        i = sess.get_inputs()[0]
        feed = {i.name: np.zeros(i.shape, np.float32)}
        run = lambda: sess.run(None, feed)  # noqa: E731
    else:
        from ai_edge_litert.interpreter import Interpreter, OpResolverType

        resolver = OpResolverType.AUTO if xnnpack else OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
        it = Interpreter(model_path=path, num_threads=1, experimental_op_resolver_type=resolver)
        it.allocate_tensors()
        d = it.get_input_details()[0]
        it.set_tensor(d["index"], np.zeros(d["shape"], d["dtype"]))
        run = it.invoke
    for _ in range(5):
        run()
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        run()
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def measure(artifact: Path, baseline: Path | None, runs: int) -> dict:
    from mnv2deploy.memory.report import analyze_artifact

    rep = analyze_artifact(artifact, xnnpack=artifact.suffix == ".tflite").to_dict()
    row = {"static_peak_bytes": rep["static_peak_bytes"], "measured_peak_bytes": rep["measured_peak_bytes"],
           "largest_tensor": rep["largest_tensor"], "peak_op": rep["peak_op"], "ops": rep["ops"],
           "measurements": rep["measurements"]}
    if baseline is not None:
        total = rep["measurements"]["xnnpack_rss"]["rss_increase_bytes"]
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


def write_doc(section: str) -> None:
    text = DOC.read_text()
    new = re.sub(r"(<!-- split_memory:begin -->\n).*?(<!-- split_memory:end -->)",
                 lambda m: m.group(1) + section + "\n" + m.group(2), text, flags=re.S)
    from mnv2deploy.fileio import write_text_atomic

    write_text_atomic(DOC, new)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("/tmp/mnv2deploy-split-memory"))
    ap.add_argument("--ks", default="1,2,3,4,6")
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--targets", default="tflite-int8,tflite-fp32,onnx")
    ap.add_argument("--no-doc", action="store_true", help="do not rewrite docs/memory.md")
    ap.add_argument("--from-dir", type=Path, help="measure pre-exported files instead of exporting")
    args = ap.parse_args()
    ks = [int(k) for k in args.ks.split(",")]
    results: dict = {}
    for target in args.targets.split(","):
        fmt, prec = ("onnx", "fp32") if target == "onnx" else ("tflite", target.split("-")[1])
        key = f"{fmt}-{prec}"
        results[key] = {}
        for k in ks:
            t0 = time.time()
            artifact = export(target, k, RESOLUTION, args.out, args.from_dir)
            baseline = export(target, k, BASELINE_RESOLUTION, args.out, args.from_dir) if fmt == "tflite" else None
            results[key][str(k)] = measure(artifact, baseline, args.runs)
            print(f"{key} K={k}: arena/measured {_mb(results[key][str(k)]['measured_peak_bytes'])} MB "
                  f"({time.time() - t0:.0f} s)", file=sys.stderr)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "split_memory.json").write_text(json.dumps(results, indent=1, default=str))
    section = render(results, ks)
    print(section)
    if not args.no_doc:
        write_doc(section)
    return 0


if __name__ == "__main__":
    sys.exit(main())
