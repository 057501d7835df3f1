"""`memory ARTIFACT --device pixel|SERIAL`: the artifact as exported and its split twin on an Android phone, with
LiteRT's builtin kernels and with XNNPACK, through the on-device runner.

One push of the runner and both models, then one run of ``benchmark_model`` per (model, kernels) with
``--print_preinvoke_state=true --report_peak_memory_footprint=true``; everything pushed is removed in a
``finally``. What is reported is what the runner prints, labelled:

- ``arena_bytes``: the tool's "kTfLiteArenaRw Info ... memory arena is estimated as [...], taking N bytes", the
  span of the tensors LiteRT placed in its arena after allocation, before any invoke. Exact. With the builtin
  kernels it holds every activation and kernel scratch; with XNNPACK only the delegate's inputs and outputs.
- ``arena_allocated_bytes``: "Memory Arena Status ... Arena (Normal)" when the tool prints it (the buffer size).
- ``peak_footprint_bytes`` / ``init_delta_bytes``: the tool's polled whole-process peak and its footprint change
  over initialization; they include the tool itself and everything else in the process (approximate, as the tool
  says). The only number for XNNPACK's own workspace on a real phone.
- ``heap_*_bytes``: only the Python stand-in prints these (glibc's bytes in use); the official tool does not.

A device that reports ``ro.kernel.qemu=1`` or the Python stand-in makes the whole result EMULATED: its arenas are
still exact (the aarch64 planner's own addresses), its footprints include qemu's code cache.
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path
from typing import Any

from ..errors import DeviceError, UsageError
from ..fileio import write_text_atomic
from ..manifest import Manifest, read_manifest

# The runner's flags per kernel setting; 32 = XNN_FLAG_TRANSIENT_INDIRECTION_BUFFER (see docs/memory.md).
KERNEL_FLAGS = {
    "builtin": "--use_xnnpack=false",
    "xnnpack": "--use_xnnpack=true",
    "xnnpack-transient": "--use_xnnpack=true --xnnpack_runtime_flags=32",
}
_NAME = re.compile(r"^(?P<model>mobilenet_v2-[\d.]+-\d+)(?:-split(?P<k>\d+))?(?P<rest>\..+)$")
_ARENA_RW = re.compile(r"kTfLiteArenaRw Info:(?P<body>.*?)(?:\n\s*\n|kTfLiteArenaRwPersistent|\Z)", re.S)
_TAKING_BYTES = re.compile(r"estimated as\s*\[[^\]]*\),?\s*taking\s+(\d{1,15})\s+bytes")
_TAKING_MB = re.compile(r"estimated as\s*\[[^\]]*\),?\s*taking\s+(\d{1,9}(?:\.\d+)?)\s*MB")
_ARENA_STATUS = re.compile(r"Subgraph#0\s+Arena \((Normal|Persistent)\)\s+(\d{1,15})")
_HEAP = re.compile(r"heap bytes in use \(glibc mallinfo2\)[^:]*:\s*init=(-?\d{1,15})\s+overall=(-?\d{1,15})")


def parse_arena(text: str) -> dict[str, Any]:
    """The arena lines of benchmark_model's output (``--print_preinvoke_state``), official tool or stand-in."""
    out: dict[str, Any] = {}
    block = _ARENA_RW.search(text)
    if block:
        if m := _TAKING_BYTES.search(block.group("body")):
            out["arena_bytes"] = int(m.group(1))
        elif m := _TAKING_MB.search(block.group("body")):  # older builds print MB with one decimal only
            out["arena_bytes"] = int(float(m.group(1)) * 2 ** 20)
            out["arena_bytes_rounded"] = True
    for kind, value in _ARENA_STATUS.findall(text):
        out["arena_allocated_bytes" if kind == "Normal" else "arena_persistent_bytes"] = int(value)
    if m := _HEAP.search(text):
        out["heap_init_bytes"], out["heap_overall_bytes"] = int(m.group(1)), int(m.group(2))
    return out


def find_twin(artifact: Path, split: int) -> Path:
    """The split export beside a plain one (``-splitK`` in the name), or the plain one beside a split export."""
    m = _NAME.match(artifact.name)
    if not m:
        raise UsageError(f"cannot tell the split twin of {artifact.name} from its name",
                         "pass it with --twin PATH (a split export of the same model)")
    name = m["model"] + m["rest"] if m["k"] else f"{m['model']}-split{split}{m['rest']}"
    twin = artifact.with_name(name)
    if not twin.is_file():
        k = m["k"] or split
        raise UsageError(f"no split twin {twin.name} beside {artifact.name}",
                         f"export it: mnv2deploy export --target TARGET --split {k} --resolution R --out "
                         f"{artifact.parent} (same target and resolution), or pass --twin PATH")
    return twin


def order_pair(artifact: Path, twin: Path) -> dict[str, tuple[Path, Manifest]]:
    """{"plain": ..., "split": ...} from two exports of the same model (checked in their manifests)."""
    pair = [(p, read_manifest(p, verify=True)) for p in (artifact, twin)]
    for p, m in pair:
        if m.format != "tflite":
            raise UsageError(f"{p.name} is {m.format}; --device runs .tflite files", "export with a tflite target")
    (a, ma), (b, mb) = pair
    splits = [int(m.model.get("split") or 1) for m in (ma, mb)]
    same = [k for k in ("name", "width_mult", "num_classes", "resolution") if ma.model.get(k) != mb.model.get(k)]
    if same or ma.precision != mb.precision or sorted(splits)[0] != 1 or splits[0] == splits[1]:
        raise UsageError(f"{a.name} and {b.name} are not one model exported plain and split "
                         f"(split {splits[0]} vs {splits[1]}; differ in: {', '.join(same) or 'precision'})",
                         "pass an export with --split 1 and one with --split K of the same model")
    plain, split = (pair[0], pair[1]) if splits[0] == 1 else (pair[1], pair[0])
    return {"plain": plain, "split": split}


def _ratio(a: Any, b: Any) -> float | None:
    return round(b / a, 4) if isinstance(a, (int, float)) and isinstance(b, (int, float)) and a > 0 else None


def _raw_dir(out: Path | None, serial: str) -> Path:
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", serial)
    from ..weights import cache_dir

    base = Path(out) if out is not None else cache_dir() / "android" / "runs"
    return base / f"memory-{time.strftime('%Y%m%dT%H%M%S')}-{safe}"


def run_device_memory(artifact: Path, device: str, twin: Path | None = None, split: int = 4,
                      kernels: tuple[str, ...] = tuple(KERNEL_FLAGS), runs: int = 3, warmup: int = 1,
                      cores: str | None = None, runner: str | os.PathLike | None = None,
                      out: Path | None = None) -> dict[str, Any]:
    """Plain and split on the phone, each with every ``kernels`` setting; returns the JSON result."""
    from ..android.adb import Adb
    from ..android.bench import REMOTE_ROOT, parse_cores, read_state, taskset_mask
    from ..android.benchmark_output import parse_benchmark_output
    from ..android.devices import list_devices
    from ..android.profiles import resolve_device
    from ..android.runner import resolve_runner, run_count_flags

    unknown = [k for k in kernels if k not in KERNEL_FLAGS]
    if unknown:
        raise UsageError(f"unknown kernels {', '.join(unknown)}", f"choose from {', '.join(KERNEL_FLAGS)}")
    if runs < 1 or warmup < 1:
        raise UsageError(f"on Android runs and warmup must be >= 1 (got {runs}, {warmup})")
    artifact = Path(artifact)
    pair = order_pair(artifact, Path(twin) if twin is not None else find_twin(artifact, split))
    server = Adb()
    dev = resolve_device(device, list_devices(server))
    tool = resolve_runner(runner)
    adb = Adb(dev.serial, server.adb, server.server_port)
    pinned = parse_cores(cores) or dev.big_cores
    emulated = adb.getprop("ro.kernel.qemu") == "1" or tool.interpreter is not None
    remote = f"{REMOTE_ROOT}/mnv2deploy-memory-{os.getpid()}-{int(time.time())}"
    raw_dir = _raw_dir(out, dev.serial)
    raw_dir.mkdir(parents=True, exist_ok=True)
    prefix = f"taskset {taskset_mask(pinned)} " if pinned else ""
    rows: list[dict[str, Any]] = []
    state: dict[str, Any] = {}
    try:
        adb.shell(f"mkdir -p {remote}")
        adb.push(tool.local, f"{remote}/{tool.remote_name}")
        if tool.interpreter is None:
            adb.shell(f"chmod 755 {remote}/{tool.remote_name}")
        for key, (path, _) in pair.items():
            adb.push(path, f"{remote}/{key}.tflite")
        state["before"] = read_state(adb)
        for key, (path, manifest) in pair.items():
            for k in kernels:
                timeout = 120 + (runs + warmup) * (60 if emulated else 5)
                flags = (f"--graph={remote}/{key}.tflite --num_threads=1 {run_count_flags(runs, warmup, timeout)} "
                         f"--report_peak_memory_footprint=true --print_preinvoke_state=true {KERNEL_FLAGS[k]}")
                command = f"cd {remote} && {prefix}{tool.command(remote)} {flags} 2>&1"
                raw = raw_dir / f"{key}.{k}.txt"
                try:
                    text = adb.shell(command, timeout=timeout, check=False).output
                except DeviceError as e:
                    write_text_atomic(raw, getattr(e, "partial_output", "") or "")
                    raise DeviceError(f"device {dev.serial} went away while measuring {key} with {k}; "
                                      f"kept {len(rows)} finished run(s); raw output in {raw_dir}",
                                      "reconnect the device (check the cable, keep the screen on) and run again") from None
                write_text_atomic(raw, text)
                rows.append(_row(key, k, path, manifest, text, raw, parse_benchmark_output(text)))
        state["after"] = read_state(adb)
    finally:
        try:
            adb.shell(f"rm -rf {remote}", timeout=30, check=False)
        except DeviceError:
            pass  # the device is gone; nothing more can be removed
    return _result(pair, rows, dev, tool, emulated, pinned, state, raw_dir)


def _row(key: str, kernels: str, path: Path, manifest: Manifest, text: str, raw: Path, parsed: Any) -> dict[str, Any]:
    memory = {k: v for k, v in parsed.memory.items() if k != "source"}
    row = {"model": key, "kernels": kernels, "artifact": path.name, "split": int(manifest.model.get("split") or 1),
           **parse_arena(text), **memory, "raw": str(raw)}
    if not parsed.complete:
        lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
        row["error"] = (lines[-1] if lines else "no output")[:200]
    return row


def _result(pair: dict[str, tuple[Path, Manifest]], rows: list[dict[str, Any]], dev: Any, tool: Any, emulated: bool,
            pinned: tuple[int, ...], state: dict[str, Any], raw_dir: Path) -> dict[str, Any]:
    if not any("error" not in r for r in rows):
        raise DeviceError(f"the runner on {dev.serial} completed no run (raw output in {raw_dir})",
                          "read the raw output; check the runner matches the device ABI")
    by = {(r["model"], r["kernels"]): r for r in rows}
    ratios = {}
    for k in {r["kernels"] for r in rows}:
        plain, split = by.get(("plain", k), {}), by.get(("split", k), {})
        ratios[k] = {f: _ratio(plain.get(f), split.get(f)) for f in
                     ("arena_bytes", "peak_footprint_bytes", "init_delta_bytes", "heap_init_bytes")
                     if f in plain and f in split}
    notes = ["arena_bytes: the runner's arena summary (tensor addresses after allocation), exact; with XNNPACK it "
             "holds only the delegate's inputs and outputs, XNNPACK's own workspace is not in it",
             "peak_footprint_bytes / init_delta_bytes: the runner's whole-process numbers (include the runner "
             "itself; approximate, as benchmark_model says); ratios are split / plain"]
    if emulated:
        notes.insert(0, "EMULATED: aarch64 LiteRT under qemu on an x86 host; arenas and heap bytes are the aarch64 "
                        "kernels' own (exact), footprints include qemu's code cache: not a phone's footprint")
    if tool.interpreter is not None:
        notes.append("runner: the Python stand-in (android_bench/benchmark_model.py), not the official binary")
    return {"device": dev.serial, "device_info": {"model": dev.model, "abi": dev.abi,
                                                  "android_version": dev.android_version, "pinned_cores": list(pinned),
                                                  "state_before": state.get("before"), "state_after": state.get("after")},
            "emulated": emulated, "runner": str(tool.local),
            "artifacts": {k: str(p) for k, (p, _) in pair.items()},
            "splits": {k: int(m.model.get("split") or 1) for k, (_, m) in pair.items()},
            "runs": rows, "ratios": ratios, "raw_dir": str(raw_dir), "notes": notes}
