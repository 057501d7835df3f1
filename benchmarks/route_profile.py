"""Where an int8 route's time goes, per XNNPACK microkernel, from Linux perf sampling: LiteRT's Python API has no
per-op profiler (its XNNPACK delegate runs the whole graph as one node, and benchmark_model is not installable
here), but the LiteRT wheel keeps its symbols, so each sample lands on the microkernel that ran (depthwise
`dwconv`, pointwise/dense `gemm`, 3x3 `igemm`, `vadd`, `transpose`, `pad`, ...). ExecuTorch's XNNPACK library
exports only some symbols, so its samples are grouped per library.

    .venv/bin/python benchmarks/route_profile.py                   # the int8 routes of docs/benchmarks.json
    .venv/bin/python benchmarks/route_profile.py --tflite LABEL=FILE.tflite ...

Each route runs in its own process (its own venv for ExecuTorch), pinned to one CPU, 1 thread; perf records only
the timed loop (started disabled, enabled through a control FIFO). One sample per fixed period of this process's
own CPU time (cpu-clock), so ms per inference per category = samples x period / runs is CPU time, which other
load on the machine does not inflate (wall time is reported beside it). Writes this host class's key of
docs/route_profile.json and its block in docs/benchmarks.md (one per class).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(HERE))

from compare_routes import cpus_for, host_class, log, machine_facts, results_by_class, write_host_docs  # noqa: E402

# First match wins; order matters (dwconv before conv, igemm before gemm).
CATEGORIES = [
    ("depthwise conv", r"dwconv"),
    ("3x3 conv (igemm)", r"igemm"),
    ("1x1 conv / FC (gemm)", r"_gemm|gemm_"),
    ("packing / im2col", r"pack|im2col|indirection"),
    ("residual add", r"vadd|add_nd|binary"),
    ("transpose", r"transpose"),
    ("pad", r"_pad|pad_"),
    ("pooling / mean", r"avgpool|rdsum|gavg|reduce|mean"),
    ("quantize / convert", r"vcvt|convert|quantiz"),
    ("memcpy / memset", r"memcpy|memmove|memset"),
    ("threadpool", r"pthreadpool|thread_main|futex"),
    ("python + interpreter", r"^_Py|^Py|python|pybind|tflite::|litert"),
]

CHILD = r"""
import json, os, sys, time
import numpy as np
cfg = json.loads(sys.argv[1])
os.sched_setaffinity(0, cfg["cpus"])
x = np.load(cfg["input"])
if cfg["kind"] == "litert":
    from ai_edge_litert.interpreter import Interpreter
    it = Interpreter(model_path=cfg["path"], num_threads=1)
    it.allocate_tensors()
    i, o = it.get_input_details()[0], it.get_output_details()[0]
    if i["dtype"] != np.float32:
        s, z = i["quantization"]
        info = np.iinfo(i["dtype"])
        x = np.clip(np.round(x / s) + z, info.min, info.max).astype(i["dtype"])
    if tuple(i["shape"]) != x.shape:
        x = np.ascontiguousarray(x.transpose(0, 2, 3, 1))
    def run():
        it.set_tensor(i["index"], x); it.invoke(); it.get_tensor(o["index"])
else:
    import torch
    from executorch.extension.pybindings import portable_lib as pl
    pl._unsafe_reset_threadpool(1)
    m = pl._load_for_executorch(cfg["path"])
    t = torch.from_numpy(x)
    def run():
        m.forward((t,))
for _ in range(50):
    run()
ctl, ack = open(cfg["ctl"], "w"), open(cfg["ack"], "r")
ctl.write("enable\n"); ctl.flush(); ack.readline()
t0 = time.perf_counter()
for _ in range(cfg["runs"]):
    run()
wall = time.perf_counter() - t0
ctl.write("disable\n"); ctl.flush(); ack.readline()
print(json.dumps({"wall_ms_per_run": wall / cfg["runs"] * 1e3}))
"""


def profile(kind: str, path: Path, python: str, npy: Path, runs: int, period_us: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="route-profile-") as tmp:
        ctl, ack, data = Path(tmp) / "ctl", Path(tmp) / "ack", Path(tmp) / "perf.data"
        os.mkfifo(ctl)
        os.mkfifo(ack)
        cfg = {"kind": kind, "path": str(path), "input": str(npy), "runs": runs, "cpus": cpus_for(1),
               "ctl": str(ctl), "ack": str(ack)}
        env = {**os.environ, "OMP_NUM_THREADS": "1"}
        rec = subprocess.run(["perf", "record", "-q", "-e", "cpu-clock", "-c", str(period_us * 1000), "-D", "-1",
                              f"--control=fifo:{ctl},{ack}", "-o", str(data), "--",
                              python, "-c", CHILD, json.dumps(cfg)], capture_output=True, text=True, env=env)
        if rec.returncode != 0:
            raise RuntimeError(f"perf record failed: {rec.stderr.strip().splitlines()[-3:]}")
        wall = json.loads([ln for ln in rec.stdout.splitlines() if ln.startswith("{")][-1])["wall_ms_per_run"]
        rep = subprocess.run(["perf", "report", "-i", str(data), "--stdio", "--sort", "dso,sym", "-F",
                              "sample,dso,sym", "--percent-limit", "0"], capture_output=True, text=True, check=True)
    symbols = []
    for line in rep.stdout.splitlines():
        m = re.match(r"\s*(\d+)\s+(\S+)\s+\[[.kH]\]\s+(.*)$", line)
        if m:
            symbols.append((int(m.group(1)), m.group(2), m.group(3).strip()))
    total = sum(n for n, _, _ in symbols)
    ms_per_sample = period_us / 1000
    cats: dict[str, float] = {}
    for n, dso, sym in symbols:
        cats[categorize(dso, sym)] = cats.get(categorize(dso, sym), 0.0) + n * ms_per_sample / runs
    top = [{"samples": n, "ms": n * ms_per_sample / runs, "dso": dso, "symbol": sym}
           for n, dso, sym in sorted(symbols, reverse=True)[:12]]
    return {"wall_ms_per_run": wall, "cpu_ms_per_run": total * ms_per_sample / runs, "samples": total, "categories_ms": dict(sorted(cats.items(), key=lambda kv: -kv[1])),
            "top_symbols": top}


def categorize(dso: str, sym: str) -> str:
    for name, pattern in CATEGORIES:
        if re.search(pattern, sym):
            return name
    if sym.startswith("0x") and "xnnpack" in dso:
        return "XNNPACK, unsymbolized (ExecuTorch exports few symbols)"
    if sym.startswith("0x"):
        return f"unsymbolized in {dso}"
    return "other"


MAC_KINDS = {"depthwise conv": "depthwise", "3x3 conv (igemm)": "stem", "1x1 conv / FC (gemm)": "dense"}


def macs_by_kind(resolution: int = 224, num_classes: int = 10) -> dict[str, int]:
    """MobileNetV2 1.0's multiply-accumulates split as XNNPACK runs them: depthwise 3x3, the 3x3 stem (igemm),
    and 1x1 convolutions plus the classifier (gemm); counted with forward hooks on the real modules."""
    import torch
    from torch import nn

    from mnv2deploy.model import build

    model, out = build(1.0, num_classes).eval(), {"depthwise": 0, "stem": 0, "dense": 0}

    def hook(module, _, y):
        if isinstance(module, nn.Linear):
            out["dense"] += module.in_features * module.out_features
        elif module.groups > 1:
            out["depthwise"] += y.numel() * module.kernel_size[0] * module.kernel_size[1]
        else:
            kind = "dense" if module.kernel_size == (1, 1) else "stem"
            out[kind] += y.numel() * module.in_channels * module.kernel_size[0] * module.kernel_size[1]

    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            m.register_forward_hook(hook)
    with torch.no_grad():
        model(torch.zeros(1, 3, resolution, resolution))
    return out


def routes_from_benchmarks(path: Path, cls: str) -> list[tuple[str, str, Path, str]]:
    """The 1-thread int8 LiteRT and ExecuTorch routes of compare_routes' result for host class ``cls``."""
    doc = results_by_class(path).get(cls, {})
    out = []
    for r in doc.get("routes", []):
        if r["threads"] == 1 and r["precision"] == "int8" and r["kind"] in ("litert", "executorch"):
            out.append((r["route"], r["kind"], Path(r["artifact"]), r.get("python") or sys.executable))
    return out


def markdown(doc: dict[str, Any], command: str) -> str:
    m = doc["machine"]
    routes = doc["routes"]
    cats = list(dict.fromkeys(c for r in routes.values() for c in r["categories_ms"]))
    L = [f"Measured {m['date_utc']} with `{command}`.", "",
         f"Machine: {m['cpu']}, SIMD {', '.join(m.get('simd', []))}; load average at start "
         f"{m['load_average_at_start']}. 1 thread pinned to CPU {cpus_for(1)}, {doc['runs']} runs per route, perf "
         f"cpu-clock sampling every {doc['period_us']} us of the route's own CPU time, during the timed loop only." + (f" **{doc['label']}**" if doc['label'] else ""),
         "", "CPU ms per inference (model call, input already in the model's dtype) spent in each kind of kernel:", "",
         "| kernel | " + " | ".join(routes) + " |", "|---|" + "---|" * len(routes)]
    for c in cats:
        L.append(f"| {c} | " + " | ".join(f"{r['categories_ms'].get(c, 0):.3f}" for r in routes.values()) + " |")
    macs = doc.get("macs") or {}
    for c, kind in MAC_KINDS.items():
        if kind in macs:
            L.append(f"| {c}: GMAC/s ({macs[kind] / 1e6:.0f} MMACs) | " + " | ".join(
                f"{macs[kind] / r['categories_ms'][c] / 1e6:.0f}"
                if r["categories_ms"].get(c, 0) > 0.05 * r["cpu_ms_per_run"] else "-"  # unsymbolized: unknown
                for r in routes.values()) + " |")
    L.append("| **total CPU** | " + " | ".join(f"**{r['cpu_ms_per_run']:.3f}**" for r in routes.values()) + " |")
    L.append("| wall (loaded machines: more) | " + " | ".join(f"{r['wall_ms_per_run']:.3f}" for r in routes.values()) + " |")
    L += ["", "Top microkernels per route:"]
    for name, r in routes.items():
        L.append(f"- {name}: " + "; ".join(f"`{t['symbol'][:70]}` {t['ms']:.3f} ms" for t in r["top_symbols"][:6]))
    return "\n".join(L) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--benchmarks", type=Path, default=REPO / "docs" / "benchmarks.json",
                   help="take the int8 LiteRT/ExecuTorch routes (1 thread) of this compare_routes result")
    p.add_argument("--tflite", action="append", default=[], metavar="LABEL=FILE.tflite")
    p.add_argument("--runs", type=int, default=1000)
    p.add_argument("--period-us", type=int, default=50, help="one sample per this much CPU time")
    p.add_argument("--md", type=Path, default=REPO / "docs" / "benchmarks.md")
    p.add_argument("--json", type=Path, default=REPO / "docs" / "route_profile.json")
    p.add_argument("--label", default="")
    args = p.parse_args(argv)
    if shutil.which("perf") is None:
        print("error: perf is not installed (hint: apt-get install linux-perf)", file=sys.stderr)
        return 4
    machine = machine_facts()
    cls = host_class(machine)
    routes = routes_from_benchmarks(args.benchmarks, cls)
    routes += [(item.partition("=")[0], "litert", Path(item.partition("=")[2]), sys.executable) for item in args.tflite]
    if not routes:
        print(f"error: no routes for this host class ({cls}) (hint: run benchmarks/compare_routes.py here first or "
              "pass --tflite)", file=sys.stderr)
        return 2
    import numpy as np

    from mnv2deploy.data import load_embedded
    from mnv2deploy.weights import resolve_weights

    npy = Path(tempfile.gettempdir()) / "route_profile_input224.npy"
    np.save(npy, load_embedded("eval", resolve_weights("default").contract.at_resolution(224), 1).images)
    out = {}
    for name, kind, path, python in routes:
        log(f"profiling {name}")
        out[name] = profile(kind, path, python, npy, args.runs, args.period_us)
    doc = {"machine": machine, "runs": args.runs, "period_us": args.period_us, "macs": macs_by_kind(), "label": args.label, "routes": out,
           "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    import shlex

    text = markdown(doc, shlex.join(["python", "benchmarks/route_profile.py", *(argv if argv is not None else sys.argv[1:])]))
    print(text)
    write_host_docs(args.md, args.json, doc, text, "route_profile")
    return 0


if __name__ == "__main__":
    sys.exit(main())
