"""onnx-int8 quantization formats and onnxruntime session settings side by side: accuracy on the 500 embedded
evaluation images at 32x32 (natively, and with the AVX2-only kernels of an emulated Haswell CPU), speed at
1.0@224 against the fp32 .onnx, interleaved in one run (the compare_routes workers), at 1 and 2 threads.

    .venv/bin/python benchmarks/onnx_int8_variants.py                  # ~10 min on 2 cores, artifacts cached
    .venv/bin/python benchmarks/onnx_int8_variants.py --ort-python /venv-with-ort-1.32/bin/python

Why two CPUs: onnxruntime (MLAS) picks its int8 kernels by CPUID. With AVX-512 VNNI (or AVX-VNNI) a u8 x s8
product is one exact vpdpbusd into int32; on AVX2 alone the u8 x s8 kernels use vpmaddubsw, whose int16 pair
sums saturate, and u8 x u8 goes through exact 16-bit vpmaddwd. So a format can be exact on one host class and
wrong on the other. `qemu-x86_64-static -cpu Haswell` runs the very same wheel with AVX2 and no AVX-512: its
numerics are those of an AVX2 host (its timings mean nothing and are not taken).

Writes this host class's key of docs/onnx_int8_variants.json and its block in docs/export.md (one per class).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(HERE))

from compare_routes import Route, cpus_for, host_class, interleave, log, machine_facts, start_worker, write_host_docs  # noqa: E402

from mnv2deploy.targets.onnx_int8 import SCHEME, QuantScheme  # noqa: E402

QUIET = {"session.qdqisint8allowed": "1"}


@dataclass(frozen=True)
class Variant:
    name: str
    scheme: QuantScheme
    session_config: dict = field(default_factory=dict)
    graph_optimization_level: str | None = None  # None: onnxruntime's default (all)

    @property
    def file_key(self) -> str:
        s = self.scheme
        return (f"{s.activations}-{s.weights}-{s.format}-{'pc' if s.per_channel else 'pt'}"
                f"{'-rr' if s.reduce_range else ''}{'-' + s.reduce_range_only if s.reduce_range_only else ''}")

    def options(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.session_config:
            out["session_config"] = self.session_config
        if self.graph_optimization_level:
            out["graph_optimization_level"] = self.graph_optimization_level
        return out


U8S8 = QuantScheme(activations="uint8", weights="int8")
DENSE7 = QuantScheme(activations="uint8", weights="int8", reduce_range=True, reduce_range_only="dense")
VARIANTS = [
    Variant("U8U8 QDQ per-channel", QuantScheme(activations="uint8", weights="uint8")),
    Variant("U8S8 QDQ per-channel", U8S8),
    Variant("S8S8 QDQ per-channel", QuantScheme(activations="int8", weights="int8")),
    Variant("S8S8 QDQ per-channel, qdqisint8allowed", QuantScheme(activations="int8", weights="int8"), QUIET),
    Variant("U8S8 QDQ per-channel, reduce_range", QuantScheme(activations="uint8", weights="int8", reduce_range=True)),
    Variant("U8S8 QDQ per-channel, reduce_range dense only", DENSE7),
    Variant("U8S8 QDQ per-channel, reduce_range depthwise only",
            QuantScheme(activations="uint8", weights="int8", reduce_range=True, reduce_range_only="depthwise")),
    Variant("U8S8 QDQ per-tensor", QuantScheme(activations="uint8", weights="int8", per_channel=False)),
    Variant("U8S8 QOperator per-channel", QuantScheme(activations="uint8", weights="int8", format="QOperator")),
    Variant("U8U8 QOperator per-channel", QuantScheme(activations="uint8", weights="uint8", format="QOperator")),
    Variant("U8S8 QOperator per-channel, reduce_range dense only",
            QuantScheme(activations="uint8", weights="int8", format="QOperator", reduce_range=True,
                        reduce_range_only="dense")),
    Variant("U8S8 QDQ per-channel, reduce_range dense only, graph level extended", DENSE7,
            graph_optimization_level="extended"),
    Variant("U8S8 QDQ per-channel, reduce_range dense only, graph level basic", DENSE7,
            graph_optimization_level="basic"),
]


# --- artifacts ------------------------------------------------------------------------------------------------

def build(resolution: int, root: Path, variants: list[Variant], calib_n: int) -> tuple[Path, dict[str, Path]]:
    """fp32 .onnx (the `onnx` target's exporter) and each scheme quantized by the `onnx-int8` target's own
    quantize(), all from one calibration (onnxruntime's range cache)."""
    from mnv2deploy.data import load_embedded
    from mnv2deploy.targets.base import ExportRequest
    from mnv2deploy.targets.onnx import export_fp32_onnx
    from mnv2deploy.targets.onnx_int8 import quantize
    from mnv2deploy.weights import load_reference, resolve_weights

    folder = root / str(resolution)
    folder.mkdir(parents=True, exist_ok=True)
    fp32 = folder / "fp32.onnx"
    spec = resolve_weights("default", resolution=resolution)
    if not fp32.exists():
        log(f"fp32 onnx at {resolution}")
        request = ExportRequest(reference=load_reference(spec), resolution=resolution, out_dir=folder)
        export_fp32_onnx(request, folder / "fp32.partial.onnx")
        os.replace(folder / "fp32.partial.onnx", fp32)
    calib = None
    cache = folder / "calibration.json"
    paths = {}
    for v in variants:
        out = folder / f"{v.file_key}.onnx"
        if not out.exists():
            if calib is None and not cache.exists():
                calib = load_embedded("calib", spec.contract.at_resolution(resolution), calib_n).images
            log(f"quantize {v.file_key} at {resolution}")
            quantize(fp32, folder / f"{v.file_key}.partial.onnx", calib, "input", v.scheme, cache)
            os.replace(folder / f"{v.file_key}.partial.onnx", out)
        paths[v.file_key] = out
    return fp32, paths


# --- accuracy -------------------------------------------------------------------------------------------------

def logits_of(model: str, images: np.ndarray, options: dict[str, Any]) -> np.ndarray:
    """One image at a time, 1 thread, as parity runs the artifact. Used in-process and in the emulated child."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.log_severity_level = 3
    for k, v in (options.get("session_config") or {}).items():
        so.add_session_config_entry(k, str(v))
    if options.get("graph_optimization_level"):
        so.graph_optimization_level = getattr(ort.GraphOptimizationLevel,
                                              f"ORT_ENABLE_{options['graph_optimization_level'].upper()}")
    sess = ort.InferenceSession(model, so, providers=["CPUExecutionProvider"])
    return np.concatenate([sess.run(None, {"input": images[i:i + 1]})[0] for i in range(len(images))])


def emulated_logits(cpu: str, jobs: list[tuple[str, dict]], images_npy: Path, out_dir: Path) -> list[np.ndarray]:
    """Every job in one qemu-x86_64 child (the same Python and wheel, CPUID of ``cpu``)."""
    qemu = shutil.which("qemu-x86_64-static") or shutil.which("qemu-x86_64")
    if qemu is None:
        raise FileNotFoundError("qemu-x86_64-static (Debian: qemu-user-static)")
    spec = out_dir / "emulated_jobs.json"
    spec.write_text(json.dumps({"images": str(images_npy), "jobs": [
        {"model": m, "options": o, "out": str(out_dir / f"emulated-{i}.npy")} for i, (m, o) in enumerate(jobs)]}))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    done = subprocess.run([qemu, "-cpu", cpu, sys.executable, __file__, "--emulated-child", str(spec)],
                          capture_output=True, text=True, env=env)
    if done.returncode != 0:
        raise RuntimeError(f"emulated child failed: {done.stderr.strip().splitlines()[-3:]}")
    return [np.load(out_dir / f"emulated-{i}.npy") for i in range(len(jobs))]


def emulated_child(spec_file: str) -> None:
    spec = json.loads(Path(spec_file).read_text())
    images = np.load(spec["images"])
    for job in spec["jobs"]:
        np.save(job["out"], logits_of(job["model"], images, job["options"]))


def scores(ref: np.ndarray, art: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    return {"agreement": float(np.mean(ref.argmax(1) == art.argmax(1))),
            "accuracy": float(np.mean(art.argmax(1) == labels)),
            "drop_points": float(100 * (np.mean(ref.argmax(1) == labels) - np.mean(art.argmax(1) == labels)))}


def accuracy(root: Path, variants: list[Variant], paths: dict[str, Path], emulate: str | None) -> dict[str, Any]:
    from mnv2deploy.data import load_embedded
    from mnv2deploy.targets._common import torch_logits
    from mnv2deploy.weights import load_reference, resolve_weights

    spec = resolve_weights("default")
    batch = load_embedded("eval", spec.contract.at_resolution(32))
    ref = torch_logits(load_reference(spec).model.eval(), batch.images)
    out: dict[str, Any] = {"samples": len(batch), "reference_accuracy": float(np.mean(ref.argmax(1) == batch.labels))}
    for v in variants:
        log(f"accuracy (native): {v.name}")
        out[v.name] = {"native": scores(ref, logits_of(str(paths[v.file_key]), batch.images, v.options()),
                                        batch.labels)}
    if emulate:
        npy = root / "eval32.npy"
        np.save(npy, batch.images)
        log(f"accuracy under qemu -cpu {emulate} (AVX2 kernels; a few minutes)")
        got = emulated_logits(emulate, [(str(paths[v.file_key]), v.options()) for v in variants], npy, root)
        for v, logits in zip(variants, got):
            out[v.name]["emulated"] = scores(ref, logits, batch.labels)
    return out


# --- speed ----------------------------------------------------------------------------------------------------

def speed(args: argparse.Namespace, root: Path, fp32: Path, variants: list[Variant],
          paths: dict[str, Path]) -> tuple[list[dict[str, Any]], dict | None]:
    from mnv2deploy.data import load_embedded
    from mnv2deploy.weights import resolve_weights

    npy = root / "input224.npy"
    np.save(npy, load_embedded("eval", resolve_weights("default").contract.at_resolution(224), 1).images)
    py = sys.executable
    routes = [Route("fp32 onnx", "ort", fp32, py, "fp32", "onnx target")]
    routes += [Route(v.name, "ort", paths[v.file_key], py, "int8", v.file_key, options=v.options()) for v in variants]
    if args.ort_python:
        routes += [Route(f"fp32 onnx, {args.ort_label}", "ort", fp32, args.ort_python, "fp32", "onnx target")]
        routes += [Route(f"{v.name}, {args.ort_label}", "ort", paths[v.file_key], args.ort_python, "int8", v.file_key,
                         options=v.options()) for v in variants if v.graph_optimization_level is None]
    workers = []
    try:
        for t in args.threads:
            workers += [start_worker(r, t, npy, root / "worker.log") for r in routes]
        log(f"{len(workers)} workers; {args.reps} interleaved repetitions of {args.runs} runs")
        other = interleave(workers, args.reps, args.runs, args.warmup)
    finally:
        for w in workers:
            w.close()
    rows = []
    for w in workers:
        call = np.asarray(w.call_ns) / 1e6
        rows.append({"variant": w.route.name.split(", onnxruntime ")[0], "threads": w.threads,
                     "runtime": w.facts.get("runtime"), "options": w.route.options, "p50_ms": float(np.median(call)),
                     "block_median_range_ms": [min(w.block_medians), max(w.block_medians)]})
    for r in rows:
        base = next(b for b in rows if b["variant"] == "fp32 onnx" and b["threads"] == r["threads"]
                    and b["runtime"] == r["runtime"])
        r["x_fp32"] = r["p50_ms"] / base["p50_ms"]
    return rows, other


# --- report ---------------------------------------------------------------------------------------------------

def markdown(doc: dict[str, Any], command: str) -> str:
    m, acc = doc["machine"], doc["accuracy"]
    emu = doc.get("emulated_cpu")
    L = [f"Measured {m['date_utc']} with `{command}`.", "",
         f"Machine: {m['cpu']}, {m['logical_cpus']} logical CPUs, SIMD {', '.join(m.get('simd', []))}; "
         f"load average at start {m['load_average_at_start']}. {doc['settings']}", "",
         f"Accuracy: embedded default at 32x32, {acc['samples']} eval images, 1 thread, top-1 agreement with PyTorch "
         f"fp32 and accuracy drop in points (fp32 {acc['reference_accuracy']:.1%}); the bar is >= 0.98 and <= 1.0. "
         + (f"\"AVX2\" columns: the same wheel under `qemu-x86_64-static -cpu {emu}` (AVX2, no AVX-512/VNNI; "
            "numerics only)." if emu else "AVX2 not emulated in this run."
            + (" This CPU is AVX2-only: its own columns are the AVX2 kernels' numerics."
               if host_class(m) == "avx2" else "")),
         "Speed: 1.0@224, batch 1, model call p50 and its ratio to fp32 .onnx in the same run.", ""]
    threads = sorted({r["threads"] for r in doc["speed"]})
    head = ["variant", "agreement (this CPU)", "drop (this CPU)"] + (["agreement (AVX2)", "drop (AVX2)"] if emu else [])
    for t in threads:
        head += [f"ms {t}T", f"x fp32 {t}T"]
    L += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    keys = list(dict.fromkeys((r["variant"], r["runtime"]) for r in doc["speed"]))
    ours = doc["speed"][0]["runtime"]
    for name, runtime in keys:
        a = acc.get(name)
        cells = [name + ("" if runtime == ours else f" ({runtime})")]
        cells += ([f"{a['native']['agreement']:.3f}", f"{a['native']['drop_points']:+.1f}"] if a else ["-", "-"])
        if emu:
            e = (a or {}).get("emulated")
            cells += [f"{e['agreement']:.3f}", f"{e['drop_points']:+.1f}"] if e else ["-", "-"]
        for t in threads:
            r = next((r for r in doc["speed"] if (r["variant"], r["runtime"]) == (name, runtime) and r["threads"] == t),
                     None)
            cells += [f"{r['p50_ms']:.3f}", f"{r['x_fp32']:.2f}"] if r else ["-", "-"]
        L.append("| " + " | ".join(cells) + " |")
    return "\n".join(L) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    p.add_argument("--reps", type=int, default=6)
    p.add_argument("--runs", type=int, default=30)
    p.add_argument("--warmup", type=int, default=10)
    p.add_argument("--calib", type=int, default=200, help="calibration images, as the target uses")
    p.add_argument("--emulate", default=None,
                   help="qemu CPU model for the AVX2 accuracy columns ('' = none; default: Haswell on a VNNI host, "
                        "none on an AVX2-only host, whose own columns are the AVX2 kernels')")
    p.add_argument("--ort-python", default=None, help="a Python with another onnxruntime, timed beside ours")
    p.add_argument("--ort-label", default=None)
    p.add_argument("--only", nargs="*", default=None, help="variant names to run (default: all)")
    p.add_argument("--cache", type=Path, default=None)
    p.add_argument("--md", type=Path, default=REPO / "docs" / "export.md")
    p.add_argument("--json", type=Path, default=REPO / "docs" / "onnx_int8_variants.json")
    p.add_argument("--label", default="")
    p.add_argument("--emulated-child", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.emulated_child:
        emulated_child(args.emulated_child)
        return 0
    if args.ort_python and not args.ort_label:
        args.ort_label = "onnxruntime " + subprocess.run([args.ort_python, "-c", "import onnxruntime as o; print(o.__version__)"],
                                                         capture_output=True, text=True, check=True).stdout.strip()
    from mnv2deploy.weights import cache_dir

    root = (args.cache or cache_dir() / "onnx_int8_variants").resolve()
    variants = [v for v in VARIANTS if args.only is None or v.name in args.only]
    started = time.time()
    machine = machine_facts()
    if args.emulate is None:
        args.emulate = "" if host_class(machine) == "avx2" else "Haswell"
    _, paths32 = build(32, root, variants, args.calib)
    fp32, paths224 = build(224, root, variants, args.calib)
    acc = accuracy(root / "32", variants, paths32, args.emulate or None)
    rows, other = speed(args, root / "224", fp32, variants, paths224)
    busy = (f"Other processes used {other['other_busy_cpus']:.2f} CPUs on average during the timed blocks."
            if other else "")
    settings = (f"{args.reps} interleaved repetitions x {args.runs} runs per variant and thread count after "
                f"{args.warmup} warm-up runs; 1 thread pinned to CPU {cpus_for(1)}, 2 threads to {cpus_for(2)}. "
                + busy + (f" **{args.label}**" if args.label else ""))
    doc = {"machine": machine, "settings": settings, "other_load": other, "emulated_cpu": args.emulate or None,
           "target_scheme": asdict(SCHEME), "variants": [{**asdict(v), "file": v.file_key} for v in variants],
           "accuracy": acc, "speed": rows, "seconds": time.time() - started}
    import shlex

    text = markdown(doc, shlex.join(["python", "benchmarks/onnx_int8_variants.py",
                                     *(argv if argv is not None else sys.argv[1:])]))
    print(text)
    write_host_docs(args.md, args.json, doc, text, "onnx_int8_variants")
    log(f"done in {time.time() - started:.0f} s; wrote {args.md} and {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
