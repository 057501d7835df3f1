"""Parse LiteRT ``benchmark_model`` output (with or without the ``INFO: `` prefix of newer builds).

The first ``count=`` line is the warm-up runs, the second the timed runs; values are microseconds. The tool's
own memory numbers are whole-process figures (they include the tool itself), so both are kept, labelled.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

_PREFIX = re.compile(r"^\s*(?:INFO:\s*)?")
_COUNT = re.compile(r"count=(\d+)\s+first=([\d.]+)\s+curr=([\d.]+)\s+min=([\d.]+)\s+max=([\d.]+)\s+"
                    r"avg=([\d.eE+-]+)\s+std=([\d.eE+-]+)")
_INIT = re.compile(r"Initialized session in ([\d.]+)\s*ms")
_TIMINGS = re.compile(r"Inference timings in us:\s*(.*)")
_DELTA = re.compile(r"Memory footprint delta from the start of the tool \(MB\):\s*init=([\d.eE+-]+)\s+"
                    r"overall=([\d.eE+-]+)")
_PEAK = re.compile(r"Overall peak memory footprint \(MB\) via periodic monitoring:\s*([\d.eE+-]+)")
_VMRSS = re.compile(r"-\s*VmRSS\s*:\s*([\d.]+)\s*MB")
MB = 1024 * 1024


@dataclass(frozen=True)
class RunCounts:
    """One ``count=`` line, in microseconds as printed."""
    count: int
    first_us: float
    curr_us: float
    min_us: float
    max_us: float
    avg_us: float
    std_us: float


@dataclass(frozen=True)
class BenchmarkOutput:
    warmup: RunCounts | None = None
    timed: RunCounts | None = None
    init_ms: float | None = None
    first_inference_us: float | None = None
    memory: dict[str, Any] = field(default_factory=dict)  # labelled, in bytes
    timings: dict[str, float] = field(default_factory=dict)  # the "Inference timings in us" line

    @property
    def peak_memory_bytes(self) -> int | None:
        """The headline: the polled peak when reported, else the overall delta."""
        for key in ("peak_footprint_bytes", "overall_delta_bytes"):
            if key in self.memory:
                return int(self.memory[key])
        return None

    @property
    def complete(self) -> bool:
        return self.timed is not None


def _counts(m: re.Match[str]) -> RunCounts:
    g = m.groups()
    return RunCounts(int(g[0]), *(float(v) for v in g[1:]))


def parse_benchmark_output(text: str) -> BenchmarkOutput:
    counts: list[RunCounts] = []
    init_ms = first_us = None
    memory: dict[str, Any] = {}
    timings: dict[str, float] = {}
    for raw in text.splitlines():
        line = _PREFIX.sub("", raw, count=1)
        if m := _COUNT.search(line):
            counts.append(_counts(m))
        elif m := _INIT.search(line):
            init_ms = float(m.group(1))
        elif m := _TIMINGS.search(line):
            for part in m.group(1).split(","):
                key, _, value = part.partition(":")
                try:
                    timings[key.strip()] = float(value)
                except ValueError:
                    continue
            first_us = timings.get("First inference", first_us)
        elif m := _DELTA.search(line):
            memory["init_delta_bytes"] = int(float(m.group(1)) * MB)
            memory["overall_delta_bytes"] = int(float(m.group(2)) * MB)
        elif m := _PEAK.search(line):
            memory["peak_footprint_bytes"] = int(float(m.group(1)) * MB)
        elif m := _VMRSS.search(line):
            memory["vmrss_end_bytes"] = int(float(m.group(1)) * MB)
    if memory:
        memory["source"] = ("benchmark_model's own process numbers: deltas of the tool's footprint since its "
                            "start (init_delta, overall_delta) and the periodically polled whole-process peak "
                            "(peak_footprint); not dumpsys meminfo")
    if init_ms is None and "Init" in timings:
        init_ms = timings["Init"] / 1000.0
    warmup = counts[0] if len(counts) >= 1 else None
    timed = counts[1] if len(counts) >= 2 else None
    return BenchmarkOutput(warmup, timed, init_ms, first_us, memory, timings)
