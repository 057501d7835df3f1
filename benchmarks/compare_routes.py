"""MobileNetV2 export routes side by side, in one run on this machine: mnv2deploy's tflite, tflite-int8, onnx,
onnx-int8, executorch-int8 (ExecuTorch XNNPACK) and PyTorch eager, and the peer routes that install here (onnx2tf
int8, ai-edge-quantizer on the fp32 .tflite), at 1 and 2 threads; then a resolution x width sweep against MACs and the
distance of the best int8 route from this CPU's int8 arithmetic limit.

    .venv/bin/python benchmarks/compare_routes.py            # ~10 min the first time, artifacts are cached

Method: one persistent worker process per (route, threads), pinned to its CPUs, model loaded once; the runs are
interleaved in blocks across all routes, in a new random order each repetition, so drift (clock, other load)
hits every route alike. Each run is timed twice: the model call alone (input already in the model's dtype and
layout, what LiteRT's benchmark_model times) and end to end (float32 NCHW in, float32 logits out, what
`mnv2deploy bench` times). Peer converters run in their own venv (benchmarks/requirements-peers.txt); their
artifacts run in the same LiteRT runtime as everything else. Results: docs/benchmarks.md and
docs/benchmarks.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
HERE = Path(__file__).resolve().parent
BASELINE = "mnv2deploy tflite-int8"
CAMERA = "mnv2deploy tflite-int8, camera bytes in"  # the same model exported for camera frames (uint8 NHWC)
FLOAT_IN = "mnv2deploy tflite-int8, float32 in"  # the same model with its stem in float32, quantizing inside
CAMERA_FLOAT = "mnv2deploy tflite-int8, camera bytes in, float stem"  # uint8 NHWC bytes, cast, stem in float32
# Our other tflite-int8 exports of the same model, each against its own call, the plain file and the best peer:
# (verdict key, route, label in the ratios table, export options; camera routes are fed a frame's bytes)
VARIANTS = (("camera", CAMERA, "camera-input tflite-int8 (full-integer)",
             {"input_layout": "nhwc", "input_dtype": "uint8"}),
            ("camera_float_stem", CAMERA_FLOAT, "camera-input tflite-int8 with a float stem",
             {"input_layout": "nhwc", "input_dtype": "uint8", "stem": "float32"}),
            ("float_in", FLOAT_IN, "float32-input tflite-int8 (float stem)", {"input_dtype": "float32"}))


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


@dataclass
class Route:
    name: str  # shown in tables
    kind: str  # worker kind: litert, ort, torch, executorch
    path: Path
    python: str  # interpreter that runs the worker
    precision: str
    origin: str  # how the artifact was made
    in_spec: dict | None = None  # TensorSpec dicts for the edges (None: the runtime takes NCHW float itself)
    out_spec: dict | None = None
    peer: bool = False
    options: dict = field(default_factory=dict)  # runtime options for the worker (ort: session_config, ...)


# --- artifacts ------------------------------------------------------------------------------------------------

def _specs(path: Path) -> tuple[dict, dict]:
    from dataclasses import asdict

    from mnv2deploy.targets.tflite import tflite_tensor_specs

    ins, outs = tflite_tensor_specs(path)
    return asdict(ins[0]), asdict(outs[0])


def exporter_hash() -> str:
    """Part of the cache key: a change to mnv2deploy's exporters makes new artifacts."""
    import hashlib

    h = hashlib.sha256()
    for f in sorted((REPO / "mnv2deploy" / "targets").glob("*.py")):
        h.update(f.read_bytes())
    return h.hexdigest()[:8]


def artifact_root(cache: Path, spec: Any, ref: Any, res: int) -> Path:
    """The cache folder of one model's artifacts: weights, width, resolution and the exporters' hash."""
    root = cache / f"{spec.id}-{(ref.weights_sha256 or 'random')[:12]}-{spec.width_mult:g}-{res}-{exporter_hash()}"
    root.mkdir(parents=True, exist_ok=True)
    return root


def export_mnv2deploy(target: str, ref: Any, resolution: int, folder: Path, **options: str) -> Path:
    """The project's own exporter, exactly as `mnv2deploy export` runs it (``options``: its --option values);
    cached by file name."""
    from mnv2deploy.targets import get_target
    from mnv2deploy.targets.base import ExportRequest

    folder.mkdir(parents=True, exist_ok=True)
    existing = [p for p in folder.glob("*") if p.suffix in (".tflite", ".onnx", ".pte")]
    if existing:
        return existing[0]
    log(f"exporting {target} at {resolution}")
    return get_target(target).export(ExportRequest(reference=ref, resolution=resolution, out_dir=folder,
                                                   options=options)).artifact


def quantize_aeq(fp32_tflite: Path, calib: np.ndarray, out: Path) -> Path:
    """ai-edge-quantizer's static int8 recipe (int8 weights and activations) on mnv2deploy's fp32 .tflite."""
    if out.exists():
        return out
    from ai_edge_litert.interpreter import Interpreter
    from ai_edge_quantizer import quantizer, recipe

    log("ai-edge-quantizer static_wi8_ai8 on the fp32 .tflite")
    sigs = Interpreter(model_path=str(fp32_tflite)).get_signature_list()
    sig = next(iter(sigs))
    name = sigs[sig]["inputs"][0]
    qt = quantizer.Quantizer(str(fp32_tflite))
    qt.load_quantization_recipe(recipe.static_wi8_ai8())
    result = qt.calibrate({sig: [{name: calib[i:i + 1]} for i in range(len(calib))]})
    tmp = out.with_suffix(".partial.tflite")
    qt.quantize(result).export_model(str(tmp), overwrite=True)
    os.replace(tmp, out)
    return out


def peer_export(python: str, args: list[str], cache: Path) -> dict | None:
    """Run peer_exports.py in the peers venv; None (with the reason logged) when it fails."""
    done = subprocess.run([python, str(HERE / "peer_exports.py"), *args], capture_output=True, text=True,
                          cwd=cache, timeout=1800)
    lines = [ln for ln in done.stdout.splitlines() if ln.startswith("{")]
    if done.returncode != 0 or not lines:
        tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        log(f"peer export {args[0]} failed: {' | '.join(tail)}")
        return None
    return json.loads(lines[-1])


def build_routes(args: argparse.Namespace, cache: Path) -> tuple[list[Route], dict[str, Any]]:
    import torch

    from mnv2deploy.data import load_embedded
    from mnv2deploy.weights import load_reference, resolve_weights

    res = args.resolution
    spec = resolve_weights(args.weights, resolution=res)
    ref = load_reference(spec)
    root = artifact_root(cache, spec, ref, res)
    meta: dict[str, Any] = {"weights": spec.id, "weights_sha256": ref.weights_sha256, "resolution": res,
                            "num_classes": spec.num_classes, "cache": str(root), "skipped": {}, "peer_versions": {}}
    contract = spec.contract.at_resolution(res)
    calib = load_embedded("calib", contract, args.calib).images
    np.save(root / "input.npy", load_embedded("eval", contract, 1).images)
    if args.check:
        np.save(root / "check.npy", load_embedded("eval", contract, args.check).images)
    main_py = sys.executable
    paths = {t: export_mnv2deploy(t, ref, res, root / t) for t in ("tflite", "tflite-int8", "onnx", "onnx-int8")}
    routes = []
    for t, kind, prec in (("tflite", "litert", "fp32"), ("tflite-int8", "litert", "int8"), ("onnx", "ort", "fp32"),
                          ("onnx-int8", "ort", "int8")):
        from mnv2deploy.manifest import read_manifest

        m = read_manifest(paths[t], verify=False)
        from dataclasses import asdict

        config = m.extra.get("onnxruntime_session_config")  # what runtimes/ort.py applies from the manifest
        routes.append(Route(f"mnv2deploy {t}", kind, paths[t], main_py, prec, f"mnv2deploy export --target {t}",
                            asdict(m.inputs[0]), asdict(m.outputs[0]),
                            options={"session_config": config} if config else {}))
    for key, name, _, options in VARIANTS:
        camera = options.get("input_dtype") == "uint8"
        path = export_mnv2deploy("tflite-int8", ref, res, root / f"tflite-int8-{key.replace('_', '-')}", **options)
        vm = read_manifest(path, verify=False)
        flags = " ".join(f"--option {k.replace('_', '-')}={v}" for k, v in options.items())
        what = "(end to end: a camera frame's bytes in)" if camera else "(the stem in float32; preprocessed floats in, no edge)"
        routes.append(Route(name, "litert", path, main_py, "int8", f"mnv2deploy export --target tflite-int8 {flags} {what}",
                            asdict(vm.inputs[0]), asdict(vm.outputs[0]), options={"camera": True} if camera else {}))
    routes.append(Route("PyTorch eager", "torch", paths["tflite"], main_py, "fp32", "the reference nn.Module"))
    from mnv2deploy.targets import get_target

    reason = get_target("executorch-int8").unavailable_reason()
    if reason:
        meta["skipped"]["mnv2deploy executorch-int8"] = reason
    else:  # float32 in and out: the program quantizes inside, so the worker needs no edge specs
        pte = export_mnv2deploy("executorch-int8", ref, res, root / "executorch-int8")
        routes.append(Route("mnv2deploy executorch-int8", "executorch", pte, main_py, "int8",
                            "mnv2deploy export --target executorch-int8 (PT2E XNNPACKQuantizer + XnnpackPartitioner)"))
    try:
        aeq = quantize_aeq(paths["tflite"], calib[:32], root / "aeq.int8.tflite")
        routes.append(Route("ai-edge-quantizer int8", "litert", aeq, main_py, "int8",
                            "ai_edge_quantizer static_wi8_ai8 on mnv2deploy's fp32 .tflite", *_specs(aeq), peer=True))
    except ImportError as e:
        meta["skipped"]["ai-edge-quantizer"] = f"not installed ({e})"
    peers = args.peers_python
    if peers and Path(peers).exists():
        routes += peer_routes(args, peers, contract, calib, paths, root, meta)
    else:
        meta["skipped"]["onnx2tf"] = f"no peers venv at {peers}: see benchmarks/requirements-peers.txt"
    if args.investigate:
        routes += investigation_routes(ref, res, calib, root, main_py)
        int8 = next(r for r in routes if r.name == BASELINE)
        # YNNPACK (CpuOptions.enable_ynnpack) is not listed: ai-edge-litert 2.3.0 fails to compile this model with it
        for label, opts in (("CompiledModel API", {"api": "compiled"}),):
            routes.append(Route(f"mnv2deploy tflite-int8, {label} (experiment)", "litert", int8.path, main_py, "int8",
                                f"the tflite-int8 artifact in LiteRT's {label}", int8.in_spec, int8.out_spec,
                                options=opts))
    for item in args.extra:
        label, _, path = item.partition("=")
        routes.append(Route(label, "litert", Path(path).resolve(), main_py, "int8", f"--extra {path}",
                            *_specs(Path(path))))
    return routes, meta


def peer_routes(args: argparse.Namespace, peers: str, contract: Any, calib: np.ndarray,
                paths: dict[str, Path], root: Path, meta: dict[str, Any]) -> list[Route]:
    """onnx2tf, converted in the peers venv from the same reference and calibration images."""
    main_py, routes = sys.executable, []
    versions_file = root / "peer_versions.json"
    if versions_file.exists():
        meta["peer_versions"].update(json.loads(versions_file.read_text()))
    raw_npy = root / "calib_raw_nhwc.npy"
    if not raw_npy.exists():
        mean, std = (np.asarray(v, np.float32).reshape(1, 3, 1, 1) for v in (contract.mean, contract.std))
        np.save(raw_npy, (calib * std + mean).transpose(0, 2, 3, 1).astype(np.float32))
    mean_s = json.dumps([[[list(contract.mean)]]]).replace(" ", "")
    std_s = json.dumps([[[list(contract.std)]]]).replace(" ", "")
    variants = [("per-channel", "onnx2tf int8")] + ([("per-tensor", "onnx2tf int8 per-tensor")] if args.investigate else [])
    for qt, label in variants:
        out = root / f"onnx2tf-{qt}"
        if not list(out.glob("*_full_integer_quant.tflite")):
            log(f"onnx2tf {qt} int8 (peers venv)")
            done = peer_export(peers, ["onnx2tf", str(paths["onnx"]), str(raw_npy), mean_s, std_s, str(out), qt], root)
            if done:
                meta["peer_versions"].update(done["versions"])
                versions_file.write_text(json.dumps(meta["peer_versions"]))
        full = next(iter(out.glob("*_full_integer_quant.tflite")), None)
        if full is None:
            meta["skipped"][label] = "export failed (see the log above)"
            continue
        routes.append(Route(label, "litert", full, main_py, "int8",
                            f"onnx2tf -oiqt -qt {qt} on mnv2deploy's .onnx (int8 I/O, NHWC)", *_specs(full), peer=True))
    return routes


def investigation_routes(ref: Any, res: int, calib: np.ndarray, root: Path, main_py: str) -> list[Route]:
    """What the fast routes do differently, tried on mnv2deploy's own int8 flow (same PT2E quantizer config as
    targets/tflite_int8.py): an NHWC input, so no TRANSPOSE op in the graph, as onnx2tf's models have."""
    out = root / "int8-nhwc.tflite"
    if not out.exists():
        import litert_torch
        import torch
        from litert_torch.quantize import pt2e_quantizer as pt2e
        from litert_torch.quantize.quant_config import QuantConfig
        from torchao.quantization.pt2e import move_exported_model_to_eval
        from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

        log("investigation: mnv2deploy int8 flow with an NHWC input (litert_torch.to_channel_last_io)")
        model = litert_torch.to_channel_last_io(ref.model.eval(), args=[0]).eval()
        nhwc = np.ascontiguousarray(calib.transpose(0, 2, 3, 1))
        sample = (torch.from_numpy(nhwc[:1]),)
        quantizer = pt2e.PT2EQuantizer().set_global(pt2e.get_symmetric_quantization_config(is_per_channel=True))
        prepared = prepare_pt2e(torch.export.export(model, sample).module(), quantizer)
        move_exported_model_to_eval(prepared)
        with torch.no_grad():
            for i in range(len(nhwc)):
                prepared(torch.from_numpy(nhwc[i:i + 1]))
        converted = convert_pt2e(prepared, fold_quantize=False)
        move_exported_model_to_eval(converted)
        litert_torch.convert(converted, sample, quant_config=QuantConfig(pt2e_quantizer=quantizer)).export(str(out))
    return [Route("mnv2deploy int8 NHWC-input (experiment)", "litert", out, main_py, "int8",
                  "tflite-int8 flow with litert_torch.to_channel_last_io", *_specs(out))]


# --- measurement ----------------------------------------------------------------------------------------------

@dataclass
class Worker:
    route: Route
    threads: int
    proc: subprocess.Popen
    facts: dict
    call_ns: list = field(default_factory=list)
    e2e_ns: list = field(default_factory=list)
    block_medians: list = field(default_factory=list)

    def ask(self, msg: dict) -> dict:
        self.proc.stdin.write(json.dumps(msg) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"worker for {self.route.name} died (see {self.route.path.parent}/worker.log)")
        return json.loads(line)

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self.proc.stdin.write(json.dumps({"quit": True}) + "\n")
                self.proc.stdin.flush()
                self.proc.wait(10)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()


def cpus_for(threads: int) -> list[int]:
    usable = sorted(os.sched_getaffinity(0))
    return usable[-threads:] if threads <= len(usable) else usable


def start_worker(route: Route, threads: int, input_npy: Path, logfile: Path, check: Path | None = None) -> Worker:
    env = {**os.environ, "PYTHONPATH": str(REPO), **{k: str(threads) for k in
                                                     ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")}}
    proc = subprocess.Popen([route.python, str(HERE / "route_worker.py")], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=open(logfile, "a"), text=True, env=env, cwd=str(REPO))
    w = Worker(route, threads, proc, {})
    w.facts = w.ask({"kind": route.kind, "path": str(route.path), "threads": threads, "cpus": cpus_for(threads),
                     "input": str(input_npy), "in_spec": route.in_spec, "out_spec": route.out_spec,
                     "options": route.options,
                     "check": str(check) if check else None})["ok"]
    return w


def _proc_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def interleave(workers: list[Worker], reps: int, runs: int, warmup: int, seed: int = 0) -> dict[str, float] | None:
    """Returns how many CPUs' worth of time processes other than ours used during the timed blocks."""
    from mnv2deploy.bench.host import cpu_busy_seconds

    rng = np.random.default_rng(seed)
    for w in workers:
        w.ask({"runs": warmup})
    t0, j0 = time.monotonic(), cpu_busy_seconds()
    own0 = sum(_proc_cpu(w.proc.pid) for w in workers) + sum(os.times()[:2])
    for rep in range(reps):
        for i in rng.permutation(len(workers)):
            w = workers[i]
            got = w.ask({"runs": runs})
            w.call_ns += got["call_ns"]
            w.e2e_ns += got["e2e_ns"]
            w.block_medians.append(float(np.median(got["call_ns"])) / 1e6)
            time.sleep(0.05)  # let ORT/XNNPACK spinning threads settle before the next route runs
        log(f"  repetition {rep + 1}/{reps} done")
    j1, wall = cpu_busy_seconds(), time.monotonic() - t0
    if j0 is None or j1 is None:
        return None
    own = sum(_proc_cpu(w.proc.pid) for w in workers) + sum(os.times()[:2]) - own0
    return {"other_busy_cpus": max(0.0, (j1[0] - j0[0] - own) / wall), "steal_cpus": (j1[1] - j0[1]) / wall,
            "seconds": wall}


def summarize(w: Worker) -> dict[str, Any]:
    call, e2e = np.asarray(w.call_ns) / 1e6, np.asarray(w.e2e_ns) / 1e6
    return {"route": w.route.name, "threads": w.threads, "precision": w.route.precision, "kind": w.route.kind,
            "peer": w.route.peer, "artifact": str(w.route.path), "origin": w.route.origin, "python": w.route.python,
            "runtime": w.facts.get("runtime"), "delegate": w.facts.get("delegate"), "cpus": w.facts.get("cpus"),
            "top1": w.facts.get("top1"), "runs": int(call.size),
            "call_p50_ms": float(np.median(call)), "call_p90_ms": float(np.percentile(call, 90)),
            "e2e_p50_ms": float(np.median(e2e)), "e2e_p90_ms": float(np.percentile(e2e, 90)),
            "block_median_range_ms": [min(w.block_medians), max(w.block_medians)]}


# --- the sweep and the arithmetic limit ---------------------------------------------------------------------

SWEEP_RES = (96, 128, 160, 192, 224)
SWEEP_WIDTH = (0.35, 0.5, 0.75, 1.0, 1.4)


def sweep_points(mode: str) -> list[tuple[float, int]]:
    if mode == "none":
        return []
    if mode == "full":
        return [(w, r) for w in SWEEP_WIDTH for r in SWEEP_RES]
    return sorted({(1.0, r) for r in SWEEP_RES} | {(w, 224) for w in SWEEP_WIDTH})


def sweep_artifact(width: float, res: int, cache: Path, calib_n: int) -> Path:
    """mnv2deploy's tflite-int8 conversion (PT2E per-channel) of a random-init 1000-class model; only the
    quantized-reference logits that `export` also writes are skipped, to keep the sweep short."""
    from mnv2deploy.data import load_embedded
    from mnv2deploy.targets import tflite_int8 as ti
    from mnv2deploy.targets.base import ExportRequest
    from mnv2deploy.targets.tflite import convert
    from mnv2deploy.weights import load_reference, resolve_weights

    out = cache / f"sweep-{exporter_hash()}" / f"mobilenet_v2-{width:g}-{res}.int8.tflite"
    if out.exists():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    log(f"sweep: int8 export of width {width:g} at {res}")
    spec = resolve_weights("random", width_mult=width, num_classes=1000, resolution=res)
    ref = load_reference(spec)
    request = ExportRequest(reference=ref, resolution=res, out_dir=out.parent)
    calib = load_embedded("calib", spec.contract.at_resolution(res), calib_n).images
    qmodel, quantizer, _ = ti.quantize_pt2e(ref.model, res, calib)
    from litert_torch.quantize.quant_config import QuantConfig

    tmp = out.with_suffix(".partial.tflite")
    convert(qmodel, request, tmp, QuantConfig(pt2e_quantizer=quantizer))
    os.replace(tmp, out)
    return out


def macs_of(width: float, res: int) -> int:
    from mnv2deploy.model import build
    from mnv2deploy.profile import profile_model

    return profile_model(build(width, 1000), res).macs


def int8_peak(cache: Path) -> dict[str, Any]:
    """Measured: 12 independent AVX-512 VNNI vpdpbusd chains on one core (64 int8 MACs per instruction) and a
    dependent add chain for the clock. Needs gcc and avx512_vnni; else the reason."""
    flags = next((ln.split(":", 1)[1].split() for ln in Path("/proc/cpuinfo").read_text().splitlines()
                  if ln.startswith("flags")), [])
    if "avx512_vnni" not in flags:
        return {"skipped": "no avx512_vnni on this CPU"}
    gcc = shutil.which("gcc") or shutil.which("cc")
    if not gcc:
        return {"skipped": "no C compiler to build benchmarks/int8_peak.c"}
    exe = cache / "int8_peak"
    subprocess.run([gcc, "-O2", "-mavx512f", "-mavx512vnni", "-o", str(exe), str(HERE / "int8_peak.c")], check=True)
    cpu = cpus_for(1)
    out = subprocess.run(["taskset", "-c", ",".join(map(str, cpu)), str(exe)] if shutil.which("taskset") else [str(exe)],
                         capture_output=True, text=True, check=True)
    d = json.loads(out.stdout)
    d["cores"] = len(os.sched_getaffinity(0))
    return d


# --- report ---------------------------------------------------------------------------------------------------

def machine_facts() -> dict[str, Any]:
    from importlib.metadata import PackageNotFoundError, version

    from mnv2deploy.bench.host import cpu_facts, cpu_model, load_average

    versions = {}
    for pkg in ("mnv2deploy", "torch", "ai-edge-litert", "litert-torch", "ai-edge-quantizer", "onnxruntime", "onnx",
                "executorch", "numpy"):
        try:
            versions[pkg] = version(pkg)
        except PackageNotFoundError:
            pass
    return {"cpu": cpu_model(), **cpu_facts(), "kernel": platform.release(), "python": platform.python_version(),
            "load_average_at_start": load_average(), "versions": versions,
            "date_utc": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}


def agreement(rows: list[dict], workers: list[Worker]) -> None:
    """Top-1 agreement of every route with PyTorch fp32 on the check images: a sanity check that each route
    computes the same model (parity proper is `mnv2deploy parity`)."""
    checks = {w.route.name: w.facts["check_top1"] for w in workers if "check_top1" in w.facts}
    ref = checks.get("PyTorch eager")
    for r in rows:
        mine = checks.get(r["route"])
        r["agreement_with_torch"] = (float(np.mean(np.asarray(mine) == np.asarray(ref)))
                                     if mine is not None and ref is not None else None)


def ratios(rows: list[dict]) -> None:
    for r in rows:
        base = next((b for b in rows if b["route"] == BASELINE and b["threads"] == r["threads"]), None)
        r["ratio_call"] = r["call_p50_ms"] / base["call_p50_ms"] if base else None
        r["ratio_e2e"] = r["e2e_p50_ms"] / base["e2e_p50_ms"] if base else None


LOADED_OTHER_CPUS = 0.25  # other processes' average CPU use during the timed blocks above which a run is "loaded"


def host_class(machine: dict[str, Any]) -> str:
    """Which int8 kernels this CPU gets: 8-bit dot products (AVX-512 VNNI or AVX-VNNI) or AVX2 only."""
    simd = set(machine.get("simd", []))
    if "avx512_vnni" in simd:
        return "avx512_vnni"
    if "avx_vnni" in simd:
        return "avx_vnni"
    return "avx2" if "avx2" in simd else "other"


HOST_TITLES = {"avx512_vnni": "AVX-512 VNNI host", "avx_vnni": "AVX-VNNI host (no AVX-512)",
               "avx2": "AVX2-only host (no VNNI)", "other": "other x86 host"}


def verdicts(rows: list[dict], cls: str = "avx512_vnni") -> dict[str, Any]:
    """The issue's ratios per thread count: onnx-int8 / onnx fp32 (goal <= 0.6 with VNNI, <= 1.0 on AVX2),
    tflite-int8 end to end / its own model call (<= 1.05), tflite-int8 / best peer end to end (<= 0.9)."""
    out: dict[str, Any] = {}
    for t in sorted({r["threads"] for r in rows}):
        at = {r["route"]: r for r in rows if r["threads"] == t}
        v: dict[str, Any] = {}
        base, onnx, onnx8 = at.get(BASELINE), at.get("mnv2deploy onnx"), at.get("mnv2deploy onnx-int8")
        if onnx and onnx8:
            v["onnx_int8_over_fp32"] = onnx8["e2e_p50_ms"] / onnx["e2e_p50_ms"]
            v["onnx_int8_goal"] = 0.6 if cls in ("avx512_vnni", "avx_vnni") else 1.0
        if base:
            v["tflite_int8_e2e_over_call"] = base["e2e_p50_ms"] / base["call_p50_ms"]
            v["tflite_int8_e2e_over_call_goal"] = 1.05
        variants = {key: at[name] for key, name, _, _ in VARIANTS if name in at}
        for key, r in variants.items():  # side by side with their own model call and the plain export
            v[f"{key}_e2e_over_call"] = r["e2e_p50_ms"] / r["call_p50_ms"]
            if base:
                v[f"{key}_call_over_plain_call"] = r["call_p50_ms"] / base["call_p50_ms"]
                v[f"{key}_e2e_over_plain_e2e"] = r["e2e_p50_ms"] / base["e2e_p50_ms"]
        peers = [r for r in at.values() if r["peer"]]
        if base and peers:
            best_e2e = min(peers, key=lambda r: r["e2e_p50_ms"])
            best_call = min(peers, key=lambda r: r["call_p50_ms"])
            v.update({"best_peer_e2e": best_e2e["route"], "over_best_peer_e2e": base["e2e_p50_ms"] / best_e2e["e2e_p50_ms"],
                      "best_peer_call": best_call["route"],
                      "over_best_peer_call": base["call_p50_ms"] / best_call["call_p50_ms"], "peer_goal": 0.9})
            for key, r in variants.items():
                v[f"{key}_over_best_peer_e2e"] = r["e2e_p50_ms"] / best_e2e["e2e_p50_ms"]
        fp32 = at.get("mnv2deploy tflite")
        if base and fp32:
            v["tflite_int8_over_fp32_e2e"] = base["e2e_p50_ms"] / fp32["e2e_p50_ms"]
        v["fastest_e2e"] = min(at.values(), key=lambda r: r["e2e_p50_ms"])["route"]
        out[str(t)] = v
    return out


def _variants_table(verdicts: dict[str, Any]) -> list[str]:
    """Our other tflite-int8 exports (VARIANTS) against their own model call, the plain export and the best peer."""
    rows = [(t, what, key) for t, v in verdicts.items() for key, _, what, _ in VARIANTS if f"{key}_e2e_over_call" in v]
    if not rows:
        return []
    L = ["", "Our tflite-int8 exports side by side (goals: end to end / own call <= 1.05, / best peer <= 0.9):", "",
         "| export | threads | end to end / its model call | its call / full-integer call | "
         "end to end / full-integer end to end | end to end / best peer end to end |", "|---|---|---|---|---|---|"]
    for t, what, key in rows:
        v = verdicts[t]
        cell = lambda k: f"{v[k]:.3f}" if k in v else "-"  # noqa: E731
        L.append(f"| {what} | {t} | {_met(v[f'{key}_e2e_over_call'], 1.05)} | {cell(f'{key}_call_over_plain_call')} | "
                 f"{cell(f'{key}_e2e_over_plain_e2e')} | "
                 + (_met(v[f"{key}_over_best_peer_e2e"], 0.9) if f"{key}_over_best_peer_e2e" in v else "-") + " |")
    return L


def _met(value: float, goal: float) -> str:
    return f"**{value:.3f}** (goal <= {goal:g}: {'met' if value <= goal else 'not met'})"


def _agree(rows: list[dict], r: dict) -> str:
    """The agreement is measured once per route (first thread count); show it on every row of that route."""
    a = next((x["agreement_with_torch"] for x in rows if x["route"] == r["route"]
              and x.get("agreement_with_torch") is not None), None)
    return "-" if a is None else f"{a:.2f}"


def markdown(doc: dict[str, Any], command: str) -> str:
    m, rows = doc["machine"], doc["routes"]
    other = (doc.get("other_load") or {}).get("other_busy_cpus")
    state = ("**Loaded: preliminary, rerun on a quiet machine before quoting** (other processes used "
             f"{other:.2f} CPUs on average; ratios from this interleaved run are still side by side)."
             if doc.get("loaded") else "Machine quiet while timed (other processes under "
             f"{LOADED_OTHER_CPUS} CPUs on average).")
    L = [f"Host class: **{HOST_TITLES[doc['host_class']]}**. Measured {m['date_utc']} with `{command}`. {state}", "",
         f"Machine: {m['cpu']}, {m['logical_cpus']} logical CPUs ({'VM' if m.get('hypervisor') else 'bare metal'}), "
         f"SIMD {', '.join(m.get('simd', []))}; Linux {m['kernel']}, Python {m['python']}; "
         f"load average at start {m['load_average_at_start']}.",
         "Versions: " + ", ".join(f"{k} {v}" for k, v in {**m['versions'], **doc['artifacts'].get('peer_versions', {})}.items())
         + ".", "",
         f"Model: MobileNetV2 1.0 / {doc['artifacts']['resolution']}, {doc['artifacts']['num_classes']} classes, "
         f"weights `{doc['artifacts']['weights']}`, batch 1. {doc['settings']}", "",
         "| route | threads | model call p50 (ms) | x tflite-int8 | end to end p50 (ms) | x tflite-int8 | "
         "block medians (ms) | top-1 agreement with torch | runtime |",
         "|---|---|---|---|---|---|---|---|---|"]
    for r in sorted(rows, key=lambda r: (r["threads"], r["call_p50_ms"])):
        lo, hi = r["block_median_range_ms"]
        L.append(f"| {r['route']} | {r['threads']} | {r['call_p50_ms']:.3f} | {r['ratio_call']:.2f} | "
                 f"{r['e2e_p50_ms']:.3f} | {r['ratio_e2e']:.2f} | {lo:.3f}-{hi:.3f} | {_agree(rows, r)} | {r['runtime']} |")
    if doc["artifacts"].get("skipped"):
        L += ["", "Not measured: " + "; ".join(f"{k}: {v}" for k, v in doc["artifacts"]["skipped"].items()) + "."]
    L += ["", "Ratios (p50 medians from this one interleaved run):", ""]
    for t, v in doc["verdicts"].items():
        parts = []
        if "onnx_int8_over_fp32" in v:
            parts.append(f"onnx-int8 / onnx fp32 (end to end) = {_met(v['onnx_int8_over_fp32'], v['onnx_int8_goal'])}")
        if "tflite_int8_e2e_over_call" in v:
            parts.append("tflite-int8 end to end / model call = "
                         + _met(v["tflite_int8_e2e_over_call"], v["tflite_int8_e2e_over_call_goal"]))
        if "over_best_peer_e2e" in v:
            parts.append(f"tflite-int8 / best peer end to end ({v['best_peer_e2e']}) = "
                         f"{_met(v['over_best_peer_e2e'], v['peer_goal'])}; model call vs {v['best_peer_call']}: "
                         f"{v['over_best_peer_call']:.3f}")
        if "tflite_int8_over_fp32_e2e" in v:
            parts.append(f"tflite-int8 / tflite fp32 (end to end) = {v['tflite_int8_over_fp32_e2e']:.3f}")
        parts.append(f"fastest end to end: {v['fastest_e2e']}")
        L.append(f"- {t} thread{'s' if t != '1' else ''}: " + "; ".join(parts) + ".")
    L += _variants_table(doc["verdicts"])
    sw = doc.get("sweep") or []
    if sw:
        fit = doc["sweep_fit"]
        L += ["", f"### Resolution x width sweep (mnv2deploy tflite-int8, random init, 1000 classes, 1 thread, model call)",
              "", "| width | resolution | MMACs | p50 (ms) | GMAC/s |", "|---|---|---|---|---|"]
        for s in sorted(sw, key=lambda s: (s["width"], s["resolution"])):
            L.append(f"| {s['width']:g} | {s['resolution']} | {s['macs'] / 1e6:.1f} | {s['p50_ms']:.3f} | "
                     f"{s['gmacs_per_s']:.1f} |")
        L += ["", f"Least-squares fit: latency = {fit['ms_per_gmac']:.2f} ms per GMAC x MACs + {fit['intercept_ms']:.3f} ms "
                  f"(R^2 {fit['r2']:.3f})."]
    pk = doc.get("int8_peak") or {}
    if "vnni_int8_macs_per_s" in pk:
        L += ["", "### Distance from the int8 arithmetic limit", "",
              f"Measured with benchmarks/int8_peak.c on one pinned core: {pk['vnni_int8_macs_per_s'] / 1e9:.0f} GMAC/s "
              f"from vpdpbusd (AVX-512 VNNI, 64 u8 x s8 MACs per instruction) at an estimated "
              f"{pk['clock_hz_estimate'] / 1e9:.2f} GHz (a dependent add chain, one add per cycle) = "
              f"{pk['macs_per_cycle']:.0f} MACs per cycle, i.e. {pk['macs_per_cycle'] / 64:.1f} vpdpbusd per cycle; "
              f"x {pk['cores']} cores = {pk['cores'] * pk['vnni_int8_macs_per_s'] / 1e9:.0f} GMAC/s."]
        if doc.get("limit"):
            lim = doc["limit"]
            L.append(f"Best int8 route at 1 thread: {lim['route']} at {lim['p50_ms']:.3f} ms for {lim['macs'] / 1e6:.0f} "
                     f"MMACs = {lim['gmacs_per_s']:.0f} GMAC/s = {lim['fraction_of_peak']:.1%} of one core's limit "
                     f"(the limit would allow {lim['bound_ms']:.3f} ms). Assumptions: every MAC could be a VNNI lane "
                     "(depthwise 3x3 convolutions cannot fill them: 9 MACs per output, no reduction over channels), "
                     "no memory stalls, requantization and padding free.")
    elif pk:
        L += ["", f"int8 limit not measured: {pk.get('skipped')}."]
    return "\n".join(L) + "\n"


def results_by_class(json_path: Path) -> dict[str, dict]:
    """A benchmark's JSON as {host class: result}; a single result written before results were kept per class
    is filed under its own class."""
    doc = json.loads(json_path.read_text()) if json_path.exists() else {}
    if "machine" in doc or "host" in doc:
        return {host_class(doc.get("machine") or doc["host"]): doc}
    return doc


def with_class_result(json_path: Path, doc: dict, key: str) -> dict:
    """The per-host-class JSON at ``json_path`` with ``doc`` as its ``key``, the other classes' results kept."""
    return {**results_by_class(json_path), key: doc}


def write_host_docs(md_path: Path, json_path: Path, doc: dict, text: str, marker: str) -> None:
    """A result that holds on its host class only (``doc["machine"]``'s, or ``doc["host"]``'s): the block between
    ``<!-- {marker}:{class}:start -->`` and ``<!-- {marker}:{class}:end -->`` in ``md_path`` and that class's key in
    the JSON, other classes' blocks and results kept. A class measured for the first time gets its block, under a
    heading, after the marker's last block (appended if it has none)."""
    from mnv2deploy.fileio import write_json_atomic, write_text_atomic

    cls = host_class(doc.get("machine") or doc["host"])
    start, end = f"<!-- {marker}:{cls}:start -->", f"<!-- {marker}:{cls}:end -->"
    block = f"{start}\n{text}{end}"
    old = md_path.read_text() if md_path.exists() else f"# Benchmarks\n\n{start}\n{end}\n"
    ends = [m.end() for m in re.finditer(rf"<!-- {marker}:\w+:end -->", old)]  # other classes' blocks, in order
    if start in old and end in old:
        new = old[:old.index(start)] + block + old[old.index(end) + len(end):]
    elif ends:
        new = old[:ends[-1]] + f"\n\n### {HOST_TITLES[cls]}\n\n{block}" + old[ends[-1]:]
    else:
        new = old.rstrip() + "\n\n" + block + "\n"
    write_text_atomic(md_path, new)
    write_json_atomic(json_path, with_class_result(json_path, doc, cls))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    p.add_argument("--reps", type=int, default=8, help="interleaved repetitions (blocks per route)")
    p.add_argument("--runs", type=int, default=40, help="timed runs per block")
    p.add_argument("--warmup", type=int, default=20)
    p.add_argument("--resolution", type=int, default=224)
    p.add_argument("--weights", default="default", help="default (embedded, trained) or random (1000 classes)")
    p.add_argument("--calib", type=int, default=64, help="calibration images for the peer routes")
    p.add_argument("--check", type=int, default=100, help="images for the top-1 agreement sanity check (0: none)")
    p.add_argument("--sweep", choices=("cross", "full", "none"), default="cross")
    p.add_argument("--sweep-reps", type=int, default=4)
    p.add_argument("--investigate", action="store_true", help="also the experiment routes (per-tensor, NHWC input)")
    p.add_argument("--extra", action="append", default=[], metavar="LABEL=FILE.tflite",
                   help="also measure this .tflite (repeatable), e.g. a candidate export")
    p.add_argument("--peers-python", default="/tmp/peers-venv/bin/python")
    p.add_argument("--cache", type=Path, default=None, help="artifact cache (default: the mnv2deploy user cache)")
    p.add_argument("--md", type=Path, default=REPO / "docs" / "benchmarks.md")
    p.add_argument("--json", type=Path, default=REPO / "docs" / "benchmarks.json")
    p.add_argument("--label", default="", help="a note printed with the table (e.g. 'preliminary, machine busy')")
    args = p.parse_args(argv)
    from mnv2deploy.weights import cache_dir

    cache = (args.cache or cache_dir() / "compare_routes").resolve()
    cache.mkdir(parents=True, exist_ok=True)
    started = time.time()
    machine = machine_facts()
    routes, meta = build_routes(args, cache)
    log(f"artifacts ready after {time.time() - started:.0f} s: {', '.join(r.name for r in routes)}")
    input_npy = Path(meta["cache"]) / "input.npy"
    workers: list[Worker] = []
    try:
        for i, t in enumerate(args.threads):
            for r in routes:
                check = input_npy.with_name("check.npy") if i == 0 and args.check else None
                workers.append(start_worker(r, t, input_npy, cache / "worker.log", check))
        log(f"{len(workers)} workers loaded; {args.reps} interleaved repetitions of {args.runs} runs")
        other = interleave(workers, args.reps, args.runs, args.warmup)
        rows = [summarize(w) for w in workers]
    finally:
        for w in workers:
            w.close()
    ratios(rows)
    agreement(rows, workers)
    sweep, fit, sweep_workers = [], None, []
    points = sweep_points(args.sweep)
    if points:
        arts = {pt: sweep_artifact(*pt, cache, 32) for pt in points}
        sweep_input = {}
        try:
            for (wd, res), path in arts.items():
                npy = path.parent / f"input{res}.npy"
                if not npy.exists():
                    np.save(npy, np.random.default_rng(0).standard_normal((1, 3, res, res)).astype(np.float32))
                sweep_input[(wd, res)] = npy
                sweep_workers.append(start_worker(Route(f"{wd:g}/{res}", "litert", path, sys.executable, "int8", "sweep",
                                                        *_specs(path)), 1, npy, cache / "worker.log"))
            log(f"sweep: {len(sweep_workers)} models, {args.sweep_reps} interleaved repetitions")
            interleave(sweep_workers, args.sweep_reps, args.runs, args.warmup, seed=1)
        finally:
            for w in sweep_workers:
                w.close()
        for w, (wd, res) in zip(sweep_workers, arts):
            p50 = float(np.median(w.call_ns)) / 1e6
            macs = macs_of(wd, res)
            sweep.append({"width": wd, "resolution": res, "macs": macs, "p50_ms": p50, "gmacs_per_s": macs / p50 / 1e6})
        x = np.array([s["macs"] for s in sweep]) / 1e9
        y = np.array([s["p50_ms"] for s in sweep])
        a, b = np.polyfit(x, y, 1)
        r2 = 1 - ((y - (a * x + b)) ** 2).sum() / ((y - y.mean()) ** 2).sum()
        fit = {"ms_per_gmac": float(a), "intercept_ms": float(b), "r2": float(r2)}
    peak = int8_peak(cache)
    limit = None
    int8_one = [r for r in rows if r["threads"] == 1 and r["precision"] == "int8"]
    if "vnni_int8_macs_per_s" in peak and int8_one:
        best = min(int8_one, key=lambda r: r["call_p50_ms"])
        macs = macs_of(1.0, args.resolution) - 1280 * (1000 - meta["num_classes"])
        rate = macs / (best["call_p50_ms"] / 1e3)
        limit = {"route": best["route"], "p50_ms": best["call_p50_ms"], "macs": macs, "gmacs_per_s": rate / 1e9,
                 "fraction_of_peak": rate / peak["vnni_int8_macs_per_s"],
                 "bound_ms": macs / peak["vnni_int8_macs_per_s"] * 1e3}
    busy = (f" Other processes used {other['other_busy_cpus']:.2f} CPUs on average during the timed blocks "
            f"(hypervisor steal {other['steal_cpus']:.2f})." if other else "")
    settings = (f"{args.reps} interleaved repetitions x {args.runs} runs per route and thread count after "
                f"{args.warmup} warm-up runs; 1 thread pinned to CPU {cpus_for(1)}, 2 threads to {cpus_for(2)}."
                + busy + (f" **{args.label}**" if args.label else ""))
    cls = host_class(machine)
    loaded = other is None or other["other_busy_cpus"] > LOADED_OTHER_CPUS
    doc = {"machine": machine, "host_class": cls, "loaded": loaded, "artifacts": meta, "settings": settings,
           "other_load": other, "routes": rows, "verdicts": verdicts(rows, cls),
           "sweep": sweep, "sweep_fit": fit, "int8_peak": peak, "limit": limit, "seconds": time.time() - started}
    import shlex

    command = shlex.join(["python", "benchmarks/compare_routes.py", *(argv if argv is not None else sys.argv[1:])])
    text = markdown(doc, command.strip())
    print(text)
    write_host_docs(args.md, args.json, doc, text, "compare_routes")
    log(f"done in {time.time() - started:.0f} s; wrote {args.md} and {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
