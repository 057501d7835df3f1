"""Parse LiteRT ``benchmark_model`` output (with or without the ``INFO: `` prefix of newer builds).

The first ``count=`` line is the warm-up runs, the second the timed runs; values are microseconds. The tool's
own memory numbers are whole-process figures (they include the tool itself), so both are kept, labelled.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

_N = r"([-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?)"  # one number, strictly (not "1.2.3" or "e")
_PREFIX = re.compile(r"^\s*(?:INFO:\s*)?")
_COUNT = re.compile(rf"count=(\d{{1,18}})\s+first={_N}\s+curr={_N}\s+min={_N}\s+max={_N}\s+avg={_N}\s+std={_N}")
_INIT = re.compile(rf"Initialized session in {_N}\s*ms")
_TIMINGS = re.compile(r"Inference timings in us:\s*(.*)")
_DELTA = re.compile(rf"Memory footprint delta from the start of the tool \(MB\):\s*init={_N}\s+overall={_N}")
_PEAK = re.compile(rf"Overall peak memory footprint \(MB\) via periodic monitoring:\s*{_N}")
_VMRSS = re.compile(rf"-\s*VmRSS\s*:\s*{_N}\s*MB")
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


def _finite(*texts: str) -> list[float] | None:
    """The numbers, or None when any is not finite (a garbled line is skipped, never a crash)."""
    values = [float(t) for t in texts]
    return values if all(math.isfinite(v) for v in values) else None


def _bytes(mb: float) -> int | None:
    return int(mb * MB) if math.isfinite(mb * MB) else None


def parse_benchmark_output(text: str) -> BenchmarkOutput:
    """Whatever benchmark_model printed, complete or cut short; lines that do not parse are ignored."""
    counts: list[RunCounts] = []
    init_ms = first_us = None
    memory: dict[str, Any] = {}
    timings: dict[str, float] = {}
    for raw in text.splitlines():
        line = _PREFIX.sub("", raw, count=1)
        if m := _COUNT.search(line):
            v = _finite(*m.groups()[1:])
            if v is not None:
                counts.append(RunCounts(int(m.group(1)), *v))
        elif m := _INIT.search(line):
            v = _finite(m.group(1))
            init_ms = v[0] if v else init_ms
        elif m := _TIMINGS.search(line):
            for part in m.group(1).split(","):
                key, _, value = part.partition(":")
                try:
                    number = float(value)
                except ValueError:
                    continue
                if math.isfinite(number):
                    timings[key.strip()] = number
            first_us = timings.get("First inference", first_us)
        elif m := _DELTA.search(line):
            init, overall = _bytes(float(m.group(1))), _bytes(float(m.group(2)))
            if init is not None and overall is not None:
                memory["init_delta_bytes"], memory["overall_delta_bytes"] = init, overall
        elif m := _PEAK.search(line):
            if (peak := _bytes(float(m.group(1)))) is not None:
                memory["peak_footprint_bytes"] = peak
        elif m := _VMRSS.search(line):
            if (rss := _bytes(float(m.group(1)))) is not None:
                memory["vmrss_end_bytes"] = rss
    if memory:
        memory["source"] = ("benchmark_model's own process numbers: deltas of the tool's footprint since its "
                            "start (init_delta, overall_delta) and the periodically polled whole-process peak "
                            "(peak_footprint); not dumpsys meminfo")
    if init_ms is None and "Init" in timings:
        init_ms = timings["Init"] / 1000.0
    warmup = counts[0] if len(counts) >= 1 else None
    timed = counts[1] if len(counts) >= 2 else None
    return BenchmarkOutput(warmup, timed, init_ms, first_us, memory, timings)
