"""`mnv2deploy bench ARTIFACT --device host`: the artifact in its real runtime on this CPU, in a fresh child
process pinned to the requested thread count, through the same Runtime protocol parity uses.

Timed: ``runtime.run(batch)`` from float32 NCHW images to float32 logits, so int8 quantize/dequantize and layout
conversion at the edges count, exactly as an application calling the model would pay them.
"""

from __future__ import annotations

import contextlib
import os
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from ..errors import MissingToolError, PlatformError, UsageError
from ..manifest import Manifest
from ..runtimes import check_threads, runtime_class
from ..runtimes.base import Runtime
from ..threads import child_environment
from .result import BenchResult, DeviceInfo, LatencyStats

RUNTIMES = ("auto", "torch")
MAX_RUNS = 1_000_000  # at 1 ms a run that is already 17 minutes
MAX_BATCH = 1024
SPREAD_LOADED = 0.20  # (p90 - p50) / p50 above this: runs disturbed by other work
# ...and p90 - p50 above this many ms: an idle 2-core VM showed a steady ~0.1 ms jitter on 0.2-0.5 ms calls (20-50%
# of a 32x32 call), while a busy neighbour's time slices are milliseconds
SPREAD_FLOOR_MS = 0.2
OTHER_BUSY_LOADED = 0.25  # CPUs' worth of time other processes used while the timed runs ran
VMHWM_RESET = "5"  # writing 5 to /proc/self/clear_refs resets VmHWM (peak RSS) to the current RSS


@dataclass(frozen=True)
class HostBenchConfig:
    """What a host bench run does; build it with ``for_format`` (validated once) and pass it down."""
    threads: int = 1
    runs: int = 100
    warmup: int = 10
    batch: int = 1
    xnnpack: bool = True
    runtime: str = "auto"  # "auto": the artifact's own runtime; "torch": the PyTorch eager reference it came from
    cores: tuple[int, ...] = ()  # CPUs to pin the child to (sched_setaffinity); () = no pinning

    @classmethod
    def for_format(cls, fmt: str, **values: Any) -> "HostBenchConfig":
        """A config for benchmarking an artifact of manifest format ``fmt``, every value checked once here;
        UsageError naming the bad one."""
        config = cls(**values)
        config._validate(fmt)
        return config

    def runtime_class(self, fmt: str) -> type[Runtime]:
        if self.runtime == "torch":
            from ..runtimes.torch_eager import TorchRuntime

            return TorchRuntime
        return runtime_class(fmt)

    def load_options(self, runtime_cls: type[Runtime]) -> dict[str, Any]:
        return {"xnnpack": self.xnnpack} if "xnnpack" in runtime_cls.option_names else {}

    def _validate(self, fmt: str) -> None:
        if self.runtime not in RUNTIMES:
            raise UsageError(f"--runtime {self.runtime!r} unknown", f"choose one of {', '.join(RUNTIMES)}")
        check_threads(self.threads)
        for name, value, low, high in (("runs", self.runs, 1, MAX_RUNS), ("warmup", self.warmup, 0, MAX_RUNS),
                                       ("batch", self.batch, 1, MAX_BATCH)):
            if not low <= value <= high:
                raise UsageError(f"--{name} must be {low} to {high:,}, got {value}")
        if not self.xnnpack and "xnnpack" not in self.runtime_class(fmt).option_names:
            raise UsageError("--no-xnnpack applies to LiteRT (.tflite) only",
                             "drop --no-xnnpack, or bench a .tflite artifact with --runtime auto")
        usable = _usable_cpus()
        bad = [c for c in self.cores if c not in usable]
        if bad:
            raise UsageError(f"--cores names CPUs {bad} this process cannot use",
                             f"usable CPUs: {','.join(map(str, sorted(usable)))}")


def _usable_cpus() -> set[int]:
    try:
        return set(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return set(range(os.cpu_count() or 1))


# --- facts about the machine -------------------------------------------------------------------------------

def cpu_model() -> str | None:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    import platform

    return platform.processor() or None


def cpu_facts() -> dict[str, Any]:
    """Cores, the SIMD features that decide which kernels run, and what is known of the clock."""
    facts: dict[str, Any] = {"logical_cpus": os.cpu_count(), "usable_cpus": sorted(_usable_cpus())}
    with contextlib.suppress(OSError):
        text = Path("/proc/cpuinfo").read_text()
        flags = next((ln.split(":", 1)[1].split() for ln in text.splitlines() if ln.startswith("flags")), [])
        facts["simd"] = [f for f in ("avx2", "fma", "avx512f", "avx512bw", "avx512_vnni", "avx_vnni", "avx512_bf16",
                                     "amx_int8") if f in flags]
        mhz = [float(ln.split(":", 1)[1]) for ln in text.splitlines() if ln.startswith("cpu MHz")]
        if mhz:
            facts["cpu_mhz_reported"] = max(mhz)
        facts["hypervisor"] = "hypervisor" in flags
    return facts


def load_average() -> tuple[float, float, float] | None:
    with contextlib.suppress(OSError, AttributeError):
        return os.getloadavg()
    return None


def _status_bytes(field_name: str) -> int | None:
    """A field of /proc/self/status in bytes (VmRSS, VmHWM), None where /proc does not exist."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field_name + ":"):
                return int(line.split()[1]) * 1024
    return None


def _ru_maxrss_bytes() -> int | None:
    with contextlib.suppress(ImportError):
        import resource
        import sys

        v = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return int(v if sys.platform == "darwin" else v * 1024)  # bytes on macOS, KiB on Linux
    return None


def cpu_busy_seconds() -> tuple[float, float] | None:
    """(busy, steal) seconds summed over all CPUs since boot, from /proc/stat's first line."""
    with contextlib.suppress(OSError, ValueError, IndexError):
        f = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
        hz = os.sysconf("SC_CLK_TCK")
        # user nice system idle iowait irq softirq steal: busy excludes idle and iowait
        return (f[0] + f[1] + f[2] + f[5] + f[6] + f[7]) / hz, f[7] / hz
    return None


class OtherLoad:
    """CPU time the rest of the machine used while we ran: all CPUs' busy time minus this process's own."""

    def __init__(self) -> None:
        self.wall, self.jiffies, self.own = time.monotonic(), cpu_busy_seconds(), _own_cpu()

    def cpus(self) -> dict[str, float] | None:
        now = cpu_busy_seconds()
        wall = time.monotonic() - self.wall
        if now is None or self.jiffies is None or wall <= 0:
            return None
        other = (now[0] - self.jiffies[0]) - (_own_cpu() - self.own)
        return {"other_busy_cpus": max(0.0, other / wall), "steal_cpus": (now[1] - self.jiffies[1]) / wall,
                "seconds": wall}


def _own_cpu() -> float:
    t = os.times()
    return t.user + t.system


def _reset_peak() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text(VMHWM_RESET)
        return True
    except OSError:
        return False


# --- the child ---------------------------------------------------------------------------------------------

def _input_batch(manifest: Any, batch: int) -> Any:
    """Real preprocessed images at the artifact's resolution (embedded eval set), repeated to fill the batch."""
    import numpy as np

    from ..data import load_dataset

    images = load_dataset(None, manifest.preprocessing, batch).images
    reps = -(-batch // max(1, len(images)))
    return np.ascontiguousarray(np.concatenate([images] * reps)[:batch], dtype=np.float32)


def measure_in_child(artifact: str, manifest: Manifest, cfg: HostBenchConfig) -> dict[str, Any]:
    """Top-level (picklable) for call_in_child: load, first inference, warm-up, timed runs, memory."""
    if cfg.cores:
        os.sched_setaffinity(0, cfg.cores)
    rss_start = _status_bytes("VmRSS")
    runtime_cls = cfg.runtime_class(manifest.format)
    reason = runtime_cls.unavailable_reason()  # also imports the framework, so the baseline includes it
    if reason and "pip install" in reason:  # a missing package: the reason names the extra to install
        raise MissingToolError(f"{runtime_cls.name} cannot run here: {reason}")
    if reason:  # the platform: nothing to install here
        raise PlatformError(f"{runtime_cls.name} cannot run here: {reason}",
                            f"bench it where {runtime_cls.name} runs (a .mlpackage: on macOS, or `--device iphone` "
                            "from a Mac); here `mnv2deploy parity` still runs its static checks")
    if cfg.runtime == "torch":
        import torch

        torch.set_num_threads(cfg.threads)
        with contextlib.suppress(RuntimeError):  # only settable before any inter-op work
            torch.set_num_interop_threads(1)
    x = _input_batch(manifest, cfg.batch)
    baseline = _status_bytes("VmRSS")
    peak_reset = _reset_peak()
    runtime = runtime_cls()
    t0 = time.perf_counter_ns()
    runtime.load(Path(artifact), manifest, threads=cfg.threads, **cfg.load_options(runtime_cls))
    t1 = time.perf_counter_ns()
    after_load = _status_bytes("VmRSS")
    runtime.run(x)
    t2 = time.perf_counter_ns()
    for _ in range(cfg.warmup):
        runtime.run(x)
    samples = []
    other = OtherLoad()
    for _ in range(cfg.runs):
        s = time.perf_counter_ns()
        runtime.run(x)
        samples.append(time.perf_counter_ns() - s)
    peak = _status_bytes("VmHWM")
    return {"samples_ns": samples, "init_ns": t1 - t0, "first_ns": t2 - t1, "runtime": runtime.name,
            "versions": runtime.versions(), "details": runtime.details(),
            "memory": {"rss_at_start_bytes": rss_start, "baseline_rss_bytes": baseline, "peak_rss_bytes": peak,
                       "rss_after_load_bytes": after_load,
                       "peak_reset_after_import": peak_reset, "ru_maxrss_bytes": _ru_maxrss_bytes()},
            "affinity": sorted(_usable_cpus()), "pid": os.getpid(), "other_load": other.cpus()}


# --- the parent --------------------------------------------------------------------------------------------

def _delegate(runtime: str, details: dict[str, Any], xnnpack: bool) -> str:
    if runtime == "litert":
        return "xnnpack" if xnnpack else "none"
    if runtime == "onnxruntime":
        return str(details.get("execution_provider", "CPUExecutionProvider"))
    return str(details.get("delegate") or "eager")  # executorch: xnnpack or portable


def _memory(raw: dict[str, Any]) -> tuple[int | None, dict[str, Any]]:
    peak, base = raw.get("peak_rss_bytes"), raw.get("baseline_rss_bytes")
    source = ("VmHWM of the benchmark process (/proc/self/status), reset after the framework import"
              if raw.get("peak_reset_after_import") else "VmHWM of the benchmark process over its whole life")
    if peak is None:  # no /proc (macOS): getrusage is the only peak there is
        peak, source = raw.get("ru_maxrss_bytes"), "ru_maxrss of the benchmark process"
    increase = peak - base if peak is not None and base is not None else None
    loaded = raw.get("rss_after_load_bytes")
    memory = {"source": source, "peak_rss_bytes": peak, "baseline_rss_bytes": base,
              "peak_increase_bytes": increase,
              # the model's own share: what loading it added to the process (the peak is mostly Python + framework)
              "model_rss_bytes": loaded - base if loaded is not None and base is not None else None,
              "rss_after_load_bytes": loaded,
              "baseline": "RSS after importing the runtime framework and reading the inputs, before loading the model",
              "rss_at_start_bytes": raw.get("rss_at_start_bytes"), "ru_maxrss_bytes": raw.get("ru_maxrss_bytes")}
    return peak, memory


def _loaded(stats: LatencyStats, other: dict[str, float] | None) -> tuple[bool, list[str]]:
    """Busy if runs spread widely, or other processes (or the hypervisor) took CPU time while we ran."""
    notes = []
    if other and other["seconds"] < 0.5:  # /proc/stat counts in 10 ms ticks: too coarse for a short window
        other = None
    if stats.spread > SPREAD_LOADED and stats.p90 - stats.p50 > SPREAD_FLOOR_MS:
        notes.append(f"run-to-run spread (p90-p50)/p50 = {stats.spread:.0%} > {SPREAD_LOADED:.0%} "
                     f"(p90-p50 = {stats.p90 - stats.p50:.2f} ms)")
    if other and other["other_busy_cpus"] > OTHER_BUSY_LOADED:
        notes.append(f"other processes kept {other['other_busy_cpus']:.2f} CPUs busy during the timed runs")
    if other and other["steal_cpus"] > OTHER_BUSY_LOADED:
        notes.append(f"the hypervisor stole {other['steal_cpus']:.2f} CPUs of time during the timed runs")
    return bool(notes), notes


def run_host_bench(artifact: str | os.PathLike, manifest: Manifest, config: HostBenchConfig,
                   timeout: float | None = None) -> BenchResult:
    """Benchmark ``artifact`` (its ``manifest`` read and verified by the caller) on this CPU in a fresh child process
    with ``config`` (``HostBenchConfig.for_format``); see the module docstring for what is timed."""
    from ..runtimes.child import call_in_child

    artifact = Path(artifact)
    threads, runs, warmup, batch, xnnpack = config.threads, config.runs, config.warmup, config.batch, config.xnnpack
    if timeout is None:
        timeout = 300 + (runs + warmup + 1) * batch * 5.0
    before = load_average()
    with child_environment(threads):  # the timed child's math libraries at exactly --threads
        raw = call_in_child(measure_in_child, str(artifact), manifest, config, timeout=timeout)
    after = load_average()
    stats = LatencyStats.from_samples([ns / 1e6 for ns in raw["samples_ns"]])
    loaded, busy_notes = _loaded(stats, raw["other_load"])
    peak, memory = _memory(raw["memory"])
    notes = list(busy_notes)
    precision = manifest.precision
    if config.runtime == "torch":
        precision = "fp32"
        notes.insert(0, f"PyTorch eager: the fp32 reference model {manifest.target} was exported from, not the artifact")
    if batch > 1:
        notes.append(f"latency is per call of {batch} images")
    details = {**cpu_facts(), "load_average_before": before, "load_average_after": after,
               "affinity": raw["affinity"], "pinned_cores": list(config.cores), "spread": stats.spread,
               "other_load_during_runs": raw["other_load"],
               "runtime_details": raw["details"]}
    version = ", ".join(f"{k} {v}" for k, v in raw["versions"].items())
    return BenchResult(
        artifact=str(artifact), target=manifest.target, precision=precision, runtime=raw["runtime"],
        runtime_version=version, device=DeviceInfo("host", socket.gethostname(), cpu_model(), False, details),
        threads=threads, delegate=_delegate(raw["runtime"], raw["details"], xnnpack),
        init_ms=raw["init_ns"] / 1e6, first_inference_ms=raw["first_ns"] / 1e6, latency_ms=stats,
        peak_memory_bytes=peak, memory=memory, warmup=warmup, batch=batch, loaded=loaded, notes=tuple(notes),
        raw={"child_pid": raw["pid"], "samples_ms": [round(ns / 1e6, 4) for ns in raw["samples_ns"]]})
