"""A farm job's downloaded artifacts -> BenchResult, with the existing parsers (benchmark_output, xcresult).

Android: the CUSTOMER_ARTIFACT zip is ``$DEVICEFARM_LOG_DIR`` as run_benchmark.sh left it: one
``benchmark_output.N.txt`` per invocation, ``pinning.txt``, ``state_before.txt``/``state_after.txt`` and
``device.txt``. The headline latency is the invocation with the median average (a real run's own numbers, not a
blend); every invocation is kept in ``raw["repeats_ms"]``. iOS: ``metrics.json`` from xcresulttool.
Zips are read member by member with a size cap and never extracted (no path from the farm touches our disk).
"""

from __future__ import annotations

import re
import zipfile
from dataclasses import replace
from pathlib import Path, PurePosixPath
from typing import Any

from ..android.bench import latency_stats
from ..android.benchmark_output import BenchmarkOutput, parse_benchmark_output
from ..bench.result import BenchResult, DeviceInfo
from ..manifest import Manifest
from .base import FarmDevice
from .package import IOS_COMPUTE_UNITS

MAX_MEMBER = 32 * 1024 * 1024  # bytes read from one member of an artifact zip
FARM_NOTE = ("AWS Device Farm: a non-rooted phone shared with other customers; CPU governor, frequencies, "
             "background load and temperature were not controlled, only recorded (state_before/state_after)")
_OUTPUT = re.compile(r"(?:^|/)benchmark_output\.(\d+)\.txt$")


def read_members(zip_path: Path) -> dict[str, str]:
    """Base name -> text of the small text members of a CUSTOMER_ARTIFACT zip (nested folders flattened)."""
    out: dict[str, str] = {}
    try:
        with zipfile.ZipFile(zip_path) as z:
            for info in z.infolist():
                if info.is_dir() or info.file_size > MAX_MEMBER:
                    continue
                with z.open(info) as fh:
                    data = fh.read(MAX_MEMBER + 1)
                if len(data) <= MAX_MEMBER:
                    out[PurePosixPath(info.filename).name] = data.decode("utf-8", errors="replace")
    except (OSError, zipfile.BadZipFile, RuntimeError, NotImplementedError):
        return {}
    return out


def parse_state(text: str) -> dict[str, Any]:
    """run_benchmark.sh's snapshot: ``thermal ZONE TYPE MILLIC``, ``cpufreq cpuN FILE VALUE``, battery lines."""
    state: dict[str, Any] = {}
    zones: dict[str, Any] = {}
    freqs: dict[str, dict[str, str]] = {}
    for line in text.replace("\r", "").splitlines():
        parts = line.split()
        if len(parts) == 4 and parts[0] == "thermal" and parts[3].lstrip("-").isdigit():
            zones[parts[1]] = {"type": parts[2], "celsius": int(parts[3]) / 1000.0}
        elif len(parts) == 4 and parts[0] == "cpufreq":
            freqs.setdefault(parts[1], {})[parts[2]] = parts[3]
        elif m := re.match(r"^\s*(level|temperature):\s*(-?\d+)", line):
            state[f"battery_{m.group(1)}"] = int(m.group(2))
    if zones:
        state["thermal_zones"] = zones
        state["thermal_max_c"] = max(z["celsius"] for z in zones.values())
    if freqs:
        state["cpufreq"] = freqs
    return state


def _by_invocation(members: dict[str, str]) -> list[tuple[int, BenchmarkOutput]]:
    found = [(int(m.group(1)), parse_benchmark_output(text)) for name, text in members.items()
             if (m := _OUTPUT.search(name))]
    return sorted(found, key=lambda p: p[0])


def android_result(members: dict[str, str], artifact: Path, manifest: Manifest, device: FarmDevice,
                   job: dict[str, Any], threads: int, raw: dict[str, Any]) -> BenchResult | None:
    """None when no invocation printed timed runs (the caller keeps the raw output and says so)."""
    runs = [(i, p) for i, p in _by_invocation(members) if p.complete]
    if not runs:
        return None
    ms = 1e-3
    ordered = sorted(runs, key=lambda r: r[1].timed.avg_us)  # type: ignore[union-attr]
    index, head = ordered[(len(ordered) - 1) // 2]
    pinning = members.get("pinning.txt", "").strip()
    pinned = pinning.startswith("pinning: taskset")
    info = [line.strip() for line in members.get("device.txt", "").replace("\r", "").splitlines() if line.strip()]
    details = {"farm": "aws", "platform": device.platform, "os": device.os, "arn": device.arn,
               "job_arn": job.get("arn"), "rooted": False, "pinned": pinned, "pinning": pinning or None,
               "reported_model": info[0] if info else None, "abi": info[2] if len(info) > 2 else None,
               "state_before": parse_state(members.get("state_before.txt", "")),
               "state_after": parse_state(members.get("state_after.txt", "")),
               "device_minutes": (job.get("deviceMinutes") or {}).get("total")}
    notes = [FARM_NOTE, "latency from benchmark_model's aggregate line of the invocation with the median average "
                        "(count/min/max/avg/std); p50/p90/p99 not reported; every invocation in raw.repeats_ms",
             "pinned to the big cores with taskset" if pinned else "not pinned: taskset was refused or no cpufreq "
                                                                  "information; the scheduler chose the cores"]
    repeats = [{"invocation": i, "count": p.timed.count, "avg": p.timed.avg_us * ms, "std": p.timed.std_us * ms,
                "min": p.timed.min_us * ms, "max": p.timed.max_us * ms} for i, p in runs]  # type: ignore[union-attr]
    avgs = [r["avg"] for r in repeats]
    first = head.first_inference_us / 1000 if head.first_inference_us is not None else None
    return BenchResult(
        artifact=str(artifact), target=manifest.target, precision=manifest.precision,
        runtime="litert-benchmark_model", runtime_version="official android_aarch64 build (on the farm)",
        device=DeviceInfo(kind="farm", name=device.name, model=device.model or device.name, emulated=False,
                          details=details),
        threads=threads, delegate="xnnpack", init_ms=head.init_ms, first_inference_ms=first,
        latency_ms=latency_stats(head.timed), peak_memory_bytes=head.peak_memory_bytes,  # type: ignore[arg-type]
        memory=dict(head.memory), warmup=head.warmup.count if head.warmup else 0,
        loaded=len(avgs) > 1 and (max(avgs) - min(avgs)) / min(avgs) > 0.2, notes=tuple(notes),
        raw={**raw, "headline_invocation": index, "repeats_ms": repeats,
             "samples_ms": None, "samples_note": "benchmark_model prints aggregates only, no per-run samples"})


def ios_results(members: dict[str, str], artifact: Path, manifest: Manifest, device: FarmDevice,
                job: dict[str, Any], warmup: int, raw: dict[str, Any]) -> list[BenchResult]:
    from ..ios.xcresult import parse_xcresult_metrics

    text = members.get("metrics.json")
    if not text:
        return []
    found = parse_xcresult_metrics(text, str(artifact), manifest.target, manifest.precision, warmup, raw)
    out = []
    for r in (r for r in found if r.delegate == IOS_COMPUTE_UNITS):  # what the spec ran
        details = {**r.device.details, "farm": "aws", "platform": device.platform, "os": device.os,
                   "arn": device.arn, "job_arn": job.get("arn"), "rooted": False, "pinned": False,
                   "device_minutes": (job.get("deviceMinutes") or {}).get("total")}
        out.append(replace(r, device=DeviceInfo("farm", device.name, device.model or device.name, False, details),
                           notes=(FARM_NOTE.replace("rooted", "jailbroken"),) + r.notes))
    return out
