"""Host and ARM side by side, in one run: MobileNetV2 1.0 @ 224 as exported and split into K channel groups, LiteRT
builtin kernels and XNNPACK (default options, and transient indirection buffers), x86 (this host) and aarch64
(LiteRT's arm64 wheel under qemu, cortex-a76 and cortex-a57), through `mnv2deploy.memory` (the code behind
`mnv2deploy memory ART [--arch arm64]`).

- builtin arena: span of tensor addresses after allocate_tensors() (exact on both machines);
- XNNPACK activations: heap bytes (glibc mallinfo2) after create + allocate + 2 runs at 224, minus the same for
  the same weights exported at 32x32 (packed weights cancel; 32x32 activations are ~2% of 224's);
- XNNPACK workspace: with transient indirection buffers XNNPACK allocates its workspace on the first run, so the
  heap growth over the runs is the workspace (activations + the indirection buffer of the op running).

A second table explains the split's XNNPACK cost with one-conv models: the stem group's conv (3x3 s2, 3 -> 8
channels, 224 -> 112) once and twice on the same input, default vs transient (fp32: the indirection buffer holds
pointers, 8 bytes each whatever the dtype).

    .venv/bin/python benchmarks/arm64_memory.py [--out DIR] [--ks 1,4] [--targets tflite-int8,tflite]
        [--cpus cortex-a76,cortex-a57] [--reuse] [--no-doc]

Exports through `benchmarks/split_memory.py`'s export() (the real CLI). Writes DIR/arm64_memory.json and the
section between the arm64_memory markers of docs/memory.md.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from split_memory import BASELINE_RESOLUTION, RESOLUTION, TARGETS, export, write_doc  # noqa: E402

KERNELS = ("builtin", "xnnpack", "xnnpack-transient")
WORST_OP_INT8 = 351_232  # the paper's worst op (input + output of the fused first layer) at 1 byte per activation


def measure(path: Path, arch: str) -> dict:
    """Builtin arena and one footprint per kernel setting, on the host (x86) or under qemu (cortex-*)."""
    if arch == "x86_64":
        from mnv2deploy.memory import process_peak
        from mnv2deploy.memory.tflite_graph import inspect_tflite
        from mnv2deploy.runtimes.child import call_in_child

        inspection = call_in_child(inspect_tflite, str(path), timeout=900)
        footprints = {k: call_in_child(process_peak.probe_tflite, str(path), k, timeout=900) for k in KERNELS}
    else:
        from mnv2deploy.memory.arm64 import _footprint, run_probe

        inspection = run_probe(["inspect", str(path)], arch, timeout=1800)
        footprints = {k: _footprint(path, k, arch, None) for k in KERNELS}
    return {"arena": inspection["arena_bytes"], "scratch": inspection["scratch_bytes"],
            "machine": inspection["machine"],
            "footprint": {k: {"error": f["error"]} if f.get("error") else
                          {"total": f["heap_bytes"], "allocate": f["allocate"]["heap_bytes"],
                           "invoke": f["invoke"]["heap_bytes"], "delegated": f["delegated"]}
                          for k, f in footprints.items()}}


def row(at224: dict, at32: dict) -> dict:
    fp, base = at224["footprint"], at32["footprint"]

    def grown(k: str, key: str = "total") -> int | None:
        ok = "error" not in fp[k] and "error" not in base[k]
        return (fp[k][key] - (base[k]["total"] if key == "total" else 0)) if ok else None

    return {"arena": at224["arena"], "scratch": at224["scratch"], "machine": at224["machine"],
            "xnnpack": grown("xnnpack"), "transient": grown("xnnpack-transient"),
            "workspace": grown("xnnpack-transient", "invoke"),
            "errors": sorted({f["error"] for f in fp.values() if "error" in f}),
            "delegated": all(fp[k].get("delegated", True) for k in ("xnnpack", "xnnpack-transient"))}


def _machine(m: str) -> str:
    return "x86_64 (host)" if m == "x86_64" else f"aarch64 {m}"


def _missing(r: dict) -> str:
    return ", ".join(n for n, key in (("XNNPACK default", "xnnpack"), ("XNNPACK transient", "transient"))
                     if r[key] is None)


def _short(error: str) -> str:
    m = re.search(r"killed by signal (\d+)", error)
    return f"killed by signal {m.group(1)}{' (SIGILL)' if m.group(1) == '4' else ''}" if m else error[:120]


def one_conv_models(out: Path) -> dict[str, Path]:
    """fp32 .tflite files: the split stem group's conv once ("1 conv") and twice on the same input ("2 convs")."""
    import litert_torch
    import torch

    torch.manual_seed(0)

    class Convs(torch.nn.Module):
        def __init__(self, n: int):
            super().__init__()
            self.convs = torch.nn.ModuleList(torch.nn.Conv2d(3, 8, 3, 2, 1) for _ in range(n))

        def forward(self, x):
            y = self.convs[0](x)
            for conv in self.convs[1:]:
                y = y + conv(x)
            return y

    paths = {}
    for n in (1, 2):
        path = out / f"stem-conv-x{n}-{RESOLUTION}.fp32.tflite"
        if not path.exists():
            litert_torch.convert(Convs(n).eval(), (torch.randn(1, 3, RESOLUTION, RESOLUTION),)).export(str(path))
        paths[f"{n} conv{'s' if n > 1 else ''}"] = path
    return paths


def _mb(n) -> str:
    return "-" if n is None else f"{n / 1e6:.2f}"


def _x(a, b) -> str:
    return f"{b / a:.2f}x" if a and b is not None else "-"


def render(results: dict, ks: list[int], cpus: list[str]) -> str:
    host = results["host"]
    lines = [f"Measured {results['when']} on the shared 2-core x86 host ({host['cpu']}; flags include "
             f"{', '.join(host['flags']) or 'no avx512_vnni/avx2'}; load average {host['load']} at the start), "
             "MobileNetV2 1.0 @ 224, embedded weights, batch 1, 1 thread. aarch64 = LiteRT's arm64 wheel under "
             "qemu-user: EMULATED, but these are byte counts (tensor addresses, malloc's bytes in use), which qemu "
             "does not change; no time is reported. MB = 10^6 bytes; 'x K=1' = this K / K=1 on the same machine "
             "and kernels.", ""]
    for target in results["targets"]:
        fmt, prec = TARGETS[target]
        per = results["targets"][target]
        machines = ["x86_64"] + [c for c in cpus if c in per.get("1", {})]
        lines += [f"#### {fmt} {prec}", "",
                  "| K | machine | builtin arena MB | x K=1 | XNNPACK default, activations MB | x K=1 | "
                  "XNNPACK transient, activations MB | x K=1 | transient: workspace MB (first run) | x K=1 |",
                  "|---|---|---|---|---|---|---|---|---|---|"]
        for k in ks:
            for m in machines:
                r, base = per.get(str(k), {}).get(m), per.get("1", {}).get(m)
                if not r:
                    continue
                name = _machine(m)
                lines.append(f"| {k} | {name} | {r['arena']:,} B ({_mb(r['arena'])}) | {_x(base['arena'], r['arena'])} | "
                             f"{_mb(r['xnnpack'])} | {_x(base['xnnpack'], r['xnnpack'])} | {_mb(r['transient'])} | "
                             f"{_x(base['transient'], r['transient'])} | {_mb(r['workspace'])} | "
                             f"{_x(base['workspace'], r['workspace'])} |")
        failed = sorted({f"{_machine(m)} {_missing(r)}: {_short(r['errors'][0])}" for k in ks
                         for m, r in per.get(str(k), {}).items() if r.get("errors")})
        if failed:
            lines += ["", "Not measured ('-'): " + "; ".join(failed) + "."]
        top = str(max(ks))
        if top in per and "1" in per:
            for m in [*machines[1:], machines[0]]:  # an aarch64 row when there is one
                split, plain = per[top].get(m, {}), per["1"].get(m, {})
                if split.get("transient") and plain.get("xnnpack") and plain.get("transient"):
                    lines += ["", f"XNNPACK goal check ({m}): K={top} with transient indirection buffers = "
                                  f"{split['transient'] / plain['xnnpack']:.2f}x the plain export under LiteRT's "
                                  f"default XNNPACK options, {split['transient'] / plain['transient']:.2f}x the plain "
                                  "export with the same option (goal: at most 0.6x)."]
                    break
        if prec == "int8" and top in per:
            best = min(r["arena"] for r in per[top].values())
            lines += ["", f"Stretch check, int8 K={max(ks)}: builtin arena {best:,} bytes = "
                          f"{best / WORST_OP_INT8:.2f}x the paper's worst-op bound at 1 byte per activation "
                          f"({WORST_OP_INT8:,} bytes); the stretch asks for at most 2x."]
        lines.append("")
    conv = results.get("one_conv")
    if conv:
        lines += ["#### XNNPACK's own numbers for the stem group's conv (fp32, 3x3 s2, 3 -> 8 channels, 224 -> 112)", "",
                  "| model | machine | default: heap after allocate MB | transient: heap after allocate MB | "
                  "transient: workspace (first run) MB |", "|---|---|---|---|---|"]
        for name, per in conv.items():
            for m, r in per.items():
                fp = r["footprint"]
                lines.append(f"| {name} | {_machine(m)} | "
                             f"{_mb(fp['xnnpack']['allocate'])} | {_mb(fp['xnnpack-transient']['allocate'])} | "
                             f"{_mb(fp['xnnpack-transient']['invoke'])} |")
        lines += ["", "XNNPACK's indirection buffer for one such conv: 9 taps x 12,544 output pixels x 8-byte "
                      "pointers = 903,168 bytes, whatever the channel count.", ""]
    return "\n".join(lines)


def publish(section: str, no_doc: bool) -> int:
    print(section)
    if not no_doc:
        write_doc(section, "arm64_memory")
    return 0


def host_facts() -> dict:
    cpuinfo = Path("/proc/cpuinfo").read_text().splitlines()
    model = next((ln.split(":", 1)[1].strip() for ln in cpuinfo if ln.startswith("model name")), "?")
    flags = next((ln.split(":", 1)[1].split() for ln in cpuinfo if ln.startswith("flags")), [])
    return {"cpu": model, "flags": [f for f in ("avx512_vnni", "avx2") if f in flags],
            "load": os.getloadavg()[0].__round__(1)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("/tmp/mnv2deploy-arm64-memory"))
    ap.add_argument("--ks", default="1,4")
    ap.add_argument("--targets", default="tflite-int8,tflite")
    ap.add_argument("--cpus", default="cortex-a76,cortex-a57", help="emulated CPUs (cortex-a57 for int8 only)")
    ap.add_argument("--calib-samples", type=int, default=64)
    ap.add_argument("--reuse", action="store_true", help="measure artifacts an earlier run exported into --out")
    ap.add_argument("--no-doc", action="store_true")
    ap.add_argument("--render", action="store_true", help="only render DIR/arm64_memory.json of an earlier run")
    args = ap.parse_args()
    ks, cpus = [int(k) for k in args.ks.split(",")], args.cpus.split(",")
    args.out.mkdir(parents=True, exist_ok=True)
    store = args.out / "arm64_memory.json"
    if args.render:
        return publish(render(json.loads(store.read_text()), ks, cpus), args.no_doc)
    results: dict = {"when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "host": host_facts(), "targets": {}}
    for target in args.targets.split(","):
        fmt, prec = TARGETS[target]
        machines = ["x86_64"] + [c for c in cpus if prec == "int8" or c == "cortex-a76"]
        results["targets"][target] = {}
        for k in ks:
            t0 = time.time()
            big = export(target, k, RESOLUTION, args.out, args.calib_samples, args.reuse)
            small = export(target, k, BASELINE_RESOLUTION, args.out, args.calib_samples, args.reuse)
            results["targets"][target][str(k)] = {m: row(measure(big, m), measure(small, m)) for m in machines}
            print(f"{target} K={k}: " + ", ".join(f"{m} arena {r['arena']:,} transient {_mb(r['transient'])} MB"
                                                   for m, r in results["targets"][target][str(k)].items())
                  + f" ({time.time() - t0:.0f} s)", file=sys.stderr, flush=True)
            store.write_text(json.dumps(results, indent=1))
    results["one_conv"] = {name: {m: measure(path, m) for m in ["x86_64", cpus[0]]}
                           for name, path in one_conv_models(args.out).items()}
    store.write_text(json.dumps(results, indent=1))
    return publish(render(results, ks, cpus), args.no_doc)


if __name__ == "__main__":
    sys.exit(main())
