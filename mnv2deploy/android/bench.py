"""`mnv2deploy bench X.tflite|X.pte --device pixel|SERIAL`: LiteRT benchmark_model (.tflite) or ExecuTorch's
executor_runner (.pte) on an Android phone over adb.

Push the artifact and runner to /data/local/tmp, pin to the big cores with taskset (or --cores), record thermal
and battery state before and after, run, stream the output back (so a device that vanishes mid-run still leaves
what was measured), pull the raw output, and always remove what was pushed. A device that reports
``ro.kernel.qemu=1`` or runs the Python stand-in is EMULATED: its times are never phone times.
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path
from typing import Any

from ..bench.result import BenchResult, DeviceInfo, LatencyStats
from ..errors import DeviceError, UsageError
from ..fileio import write_text_atomic
from ..manifest import Manifest
from ..weights import cache_dir
from .adb import Adb
from .benchmark_output import BenchmarkOutput, RunCounts, parse_benchmark_output
from .devices import AndroidDevice, list_devices
from .executor_runner_output import ExecutorRunnerOutput, parse_executor_runner_output
from .profiles import resolve_device
from .runner import Runner, resolve_runner, run_count_flags

REMOTE_ROOT = "/data/local/tmp"
EMULATED_NOTE = "EMULATED: aarch64 code under qemu on an x86 host; a sanity check, not a phone time"
_NAN = float("nan")
FORMATS = ("tflite", "pte")  # benchmark_model, executor_runner


MAX_CPU = 1023


def parse_cores(cores: str | None) -> tuple[int, ...]:
    """'4-7' or '4,5,6,7' or '6' -> CPU numbers."""
    if not cores:
        return ()
    out: set[int] = set()
    bad = UsageError(f"--cores {cores[:40]!r} is not a CPU list", f"write e.g. 4-7 or 4,5,6,7 (CPUs 0 to {MAX_CPU})")
    for part in cores.split(","):
        m = re.fullmatch(r"\s*(\d{1,5})\s*(?:-\s*(\d{1,5})\s*)?", part)
        if not m:
            raise bad
        lo, hi = int(m.group(1)), int(m.group(2) or m.group(1))
        if not lo <= hi <= MAX_CPU:
            raise bad
        out.update(range(lo, hi + 1))
    return tuple(sorted(out))


def taskset_mask(cores: tuple[int, ...]) -> str:
    return format(sum(1 << c for c in cores), "x")


def read_state(adb: Adb) -> dict[str, Any]:
    """Thermal zones (milli-degC) and `dumpsys battery` level/temperature/status; missing pieces are left out."""
    state: dict[str, Any] = {}
    temps = adb.shell("cat /sys/class/thermal/thermal_zone*/temp 2>/dev/null", check=False).output.split()
    zones = [int(t) / 1000.0 for t in temps if t.lstrip("-").isdigit()]
    if zones:
        state["thermal_max_c"] = max(zones)
        state["thermal_zones_c"] = zones
    battery = adb.shell("dumpsys battery 2>/dev/null", check=False).output
    for key in ("level", "temperature", "status", "AC powered", "USB powered"):
        m = re.search(rf"^\s*{key}:\s*(\S+)", battery, re.M)
        if m:
            state[f"battery_{key.replace(' ', '_').lower()}"] = m.group(1)
    return state


def latency_stats(counts: RunCounts) -> LatencyStats:
    """benchmark_model prints count/min/max/avg/std only: percentiles are not available (NaN), never invented."""
    ms = 1e-3
    return LatencyStats(counts.count, _NAN, _NAN, _NAN, counts.avg_us * ms, counts.std_us * ms,
                        counts.min_us * ms, counts.max_us * ms, _NAN)


def _raw_path(out: Path | None, serial: str) -> Path:
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", serial)
    if out is not None and Path(out).is_dir():
        return Path(out) / f"android-{safe}.txt"
    if out is not None:
        return Path(out).with_name(Path(out).stem + f".android-{safe}.txt")
    return cache_dir() / "android" / "runs" / f"{time.strftime('%Y%m%dT%H%M%S')}-{safe}.txt"


def _pick(device: str, adb: Adb) -> AndroidDevice:
    return resolve_device(device, list_devices(adb))


def run_android_bench(artifact: Path, manifest: Manifest, device: str, threads: int = 1, runs: int = 50,
                      warmup: int = 1, cores: str | None = None, runner: str | os.PathLike | None = None,
                      out: Path | None = None) -> BenchResult:
    fmt = manifest.format
    if fmt not in FORMATS:
        from ..targets import TARGETS

        able = ", ".join(name for name, t in TARGETS.items() if t.format in FORMATS)
        raise UsageError(f"Android bench runs .tflite and .pte artifacts, not {fmt}",
                         f"export with one of these targets: {able}")
    if runs < 1 or warmup < 1 or threads < 1:  # the output tells warm-up from timed runs only by their order
        raise UsageError(f"on Android runs, warmup and threads must be >= 1 (got {runs}, {warmup}, {threads})")
    server = Adb()  # only locates adb: no adb at all is the first thing to fix
    tool = resolve_runner(runner, fmt)  # before any device traffic: a missing runner is one line, exit 4
    dev = _pick(device, server)
    adb = Adb(dev.serial, server.adb, server.server_port)
    pinned = parse_cores(cores) or dev.big_cores
    if dev.core_max_khz and any(c >= len(dev.core_max_khz) for c in pinned):
        raise UsageError(f"--cores {cores} names CPUs the device lacks (it has {len(dev.core_max_khz)})")
    emulated = adb.getprop("ro.kernel.qemu") == "1" or tool.interpreter is not None
    remote = f"{REMOTE_ROOT}/mnv2deploy-{os.getpid()}-{int(time.time())}"
    graph = f"{remote}/{Path(artifact).name}"
    timeout = 120 + (runs + warmup) * (30 if emulated else 5)
    if fmt == "pte":  # executor_runner has no warm-up flag: the first `warmup` executions are the warm-up
        flags = f"--model_path={graph} --num_executions={warmup + runs} --cpu_threads={threads}"
    else:
        flags = (f"--graph={graph} --num_threads={threads} {run_count_flags(runs, warmup, timeout)} "
                 "--report_peak_memory_footprint=true")
    prefix = f"taskset {taskset_mask(pinned)} " if pinned else ""
    command = f"cd {remote} && {prefix}{tool.command(remote)} {flags} 2>&1 | tee {remote}/benchmark_output.txt"
    raw_file = _raw_path(out, dev.serial)
    raw_file.parent.mkdir(parents=True, exist_ok=True)
    before = after = {}
    try:
        adb.shell(f"mkdir -p {remote}")
        adb.push(Path(artifact), graph)
        adb.push(tool.local, f"{remote}/{tool.remote_name}")
        if tool.interpreter is None:
            adb.shell(f"chmod 755 {remote}/{tool.remote_name}")
        before = read_state(adb)
        try:
            text = adb.shell(command, timeout=timeout, check=False).output
        except DeviceError as e:
            partial = getattr(e, "partial_output", "") or ""
            write_text_atomic(raw_file, partial)
            _raise_partial(dev.serial, _kept(fmt, partial, warmup), raw_file)
        write_text_atomic(raw_file, text)
        after = read_state(adb)
        try:  # the device copy is the tool's own record; the streamed text is the fallback
            adb.pull(f"{remote}/benchmark_output.txt", raw_file)
        except DeviceError:
            pass
    finally:
        try:
            adb.shell(f"rm -rf {remote}", timeout=30, check=False)
        except DeviceError:
            pass  # the device is gone; nothing more can be removed
    text = raw_file.read_text(errors="replace")
    parsed = parse_executor_runner_output(text) if fmt == "pte" else parse_benchmark_output(text)
    if not (parsed.complete(warmup) if fmt == "pte" else parsed.complete):
        name = "executor_runner" if fmt == "pte" else "benchmark_model"
        raise DeviceError(f"{name} on {dev.serial} printed no timed runs (raw output: {raw_file})",
                          "read the raw output; check the runner matches the device ABI "
                          f"({dev.abi or 'unknown'})" + (" and was built with the posix PAL (docs/android.md)"
                                                         if fmt == "pte" else ""))
    if fmt == "pte":
        return _pte_result(artifact, manifest, dev, tool, parsed, threads, pinned, emulated, before, after, raw_file,
                           command, warmup)
    return _result(artifact, manifest, dev, tool, parsed, threads, pinned, emulated, before, after, raw_file, command)


def _kept(fmt: str, partial: str, warmup: int) -> str:
    """What a run cut short had measured, for the error."""
    if fmt == "pte":
        pte = parse_executor_runner_output(partial)
        if not pte.iterations_ms:
            return "nothing measured yet"
        done, timed = pte.split(warmup)
        return (f"kept {len(done)} warm-up and {len(timed)} timed executions"
                + (f", load {pte.load_ms:.3f} ms" if pte.load_ms is not None else ""))
    parsed = parse_benchmark_output(partial)
    if parsed.warmup is None:
        return "nothing measured yet"
    return (f"kept warm-up {parsed.warmup.count} runs avg {parsed.warmup.avg_us / 1000:.3f} ms"
            + (f", init {parsed.init_ms:.3f} ms" if parsed.init_ms is not None else ""))


def _raise_partial(serial: str, kept: str, raw_file: Path) -> None:
    raise DeviceError(f"device {serial} disconnected during the benchmark; {kept}; raw output in {raw_file}",
                      "reconnect the device (check the cable, keep the screen on) and run again")


def _result(artifact: Path, manifest: Manifest, dev: AndroidDevice, tool: Runner, parsed: BenchmarkOutput,
            threads: int, pinned: tuple[int, ...], emulated: bool, before: dict, after: dict, raw_file: Path,
            command: str) -> BenchResult:
    if parsed.timed is None:  # the caller checks `complete` first
        raise DeviceError("benchmark_model printed no timed runs")
    notes = _notes("latency from benchmark_model's aggregate line (count/min/max/avg/std); p50/p90/p99 not reported",
                   emulated, pinned)
    runtime = "litert-benchmark_model" if tool.interpreter is None else "litert-arm64-standin"
    runner = tool.describe()
    version = (f"LiteRT {tool.release or '(release not checked: --runner)'} benchmark_model for android_aarch64, "
               f"sha256 {runner['sha256'][:12]}" if tool.interpreter is None else "ai-edge-litert (aarch64 wheel)")
    first = parsed.first_inference_us / 1000 if parsed.first_inference_us is not None else None
    warmup_ms = parsed.warmup.avg_us / 1000 if parsed.warmup else None
    memory = dict(parsed.memory)
    return BenchResult(
        artifact=str(artifact), target=manifest.target, precision=manifest.precision, runtime=runtime,
        runtime_version=version, device=_device_info(dev, runner, pinned, emulated, before, after),
        threads=threads, delegate="xnnpack", init_ms=parsed.init_ms, first_inference_ms=first,
        latency_ms=latency_stats(parsed.timed), peak_memory_bytes=parsed.peak_memory_bytes, memory=memory,
        warmup=parsed.warmup.count if parsed.warmup else 0, notes=tuple(notes),
        raw={"output": str(raw_file), "command": command, "warmup_avg_ms": warmup_ms})


def _notes(first: str, emulated: bool, pinned: tuple[int, ...]) -> list[str]:
    notes = [first]
    if emulated:
        notes.insert(0, EMULATED_NOTE)
    if not pinned:
        notes.append("no cpufreq information: not pinned to big cores")
    return notes


def _device_info(dev: AndroidDevice, runner: dict, pinned: tuple[int, ...], emulated: bool, before: dict,
                 after: dict) -> DeviceInfo:
    details = {"abi": dev.abi, "android_version": dev.android_version, "core_max_khz": list(dev.core_max_khz),
               "pinned_cores": list(pinned), "state_before": before, "state_after": after, "runner": runner}
    return DeviceInfo(kind="android", name=dev.serial, model=dev.model, emulated=emulated, details=details)


def _pte_result(artifact: Path, manifest: Manifest, dev: AndroidDevice, tool: Runner, parsed: ExecutorRunnerOutput,
                threads: int, pinned: tuple[int, ...], emulated: bool, before: dict, after: dict, raw_file: Path,
                command: str, warmup: int) -> BenchResult:
    """executor_runner (v1.3+) times every execution: real percentiles over the timed ones. An older runner prints
    only the total over all executions, warm-up included: then only the mean, said so. No memory figures."""
    done, timed = parsed.split(warmup) if parsed.per_iteration else ((), ())
    if parsed.per_iteration:
        latency = LatencyStats.from_samples(timed)
        first_note = (f"latency over executor_runner's per-execution lines: {len(timed)} timed after {len(done)} "
                      "warm-up executions")
    else:
        count, mean = parsed.executions or 0, (parsed.total_ms or _NAN) / max(parsed.executions or 1, 1)
        latency = LatencyStats(count, _NAN, _NAN, _NAN, mean, _NAN, _NAN, _NAN, _NAN)
        first_note = ("executor_runner older than v1.3 prints only its total: mean over all executions, warm-up "
                      "included; p50/p90/p99 not reported")
    notes = _notes(first_note, emulated, pinned)
    notes.append("executor_runner reports no memory; see `mnv2deploy memory` for the program's planned buffers")
    standin, runner = tool.interpreter is not None, tool.describe()
    return BenchResult(
        artifact=str(artifact), target=manifest.target, precision=manifest.precision,
        runtime="executorch-arm64-standin" if standin else "executorch-executor_runner",
        runtime_version=("executorch (aarch64 wheel's runtime)" if standin
                         else f"user-built executor_runner, sha256 {runner['sha256'][:12]}"),
        device=_device_info(dev, runner, pinned, emulated, before, after), threads=threads,
        delegate=manifest.export_options.get("delegate") or "xnnpack", init_ms=parsed.load_ms,
        first_inference_ms=parsed.iterations_ms[0] if parsed.iterations_ms else None, latency_ms=latency,
        peak_memory_bytes=None, memory={}, warmup=len(done), notes=tuple(notes),
        raw={"output": str(raw_file), "command": command,
             "warmup_avg_ms": sum(done) / len(done) if done else None})
