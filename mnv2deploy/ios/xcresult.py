"""Read `xcrun xcresulttool get test-results metrics --path R.xcresult` (Xcode 16+) into the common bench schema.

The document is a list of tests, each with runs per device and test-plan configuration, each run with XCTest
metrics (identifier, displayName, unitOfMeasurement, measurements). The harness in ios_bench/ names its tests
``MNV2BenchTests/test<Load|Predict>_<computeUnits>()`` and, for the plain model beside its split twin,
``MNV2BenchTests/testMemory_<plain|split>_<computeUnits>()``; other tests in the document are ignored.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..bench.result import BenchResult, DeviceInfo, LatencyStats
from ..errors import BadInputError

CLOCK = "com.apple.dt.XCTMetric_Clock.time.monotonic"
MEMORY = "com.apple.dt.XCTMetric_Memory.physical"
MEMORY_PEAK = "com.apple.dt.XCTMetric_Memory.physical_peak"
DISPLAY_NAMES = {"Clock Monotonic Time": CLOCK, "Memory Physical": MEMORY, "Memory Peak Physical": MEMORY_PEAK}
TO_MS = {"s": 1e3, "ms": 1.0, "us": 1e-3, "µs": 1e-3, "ns": 1e-6}
TO_BYTES = {"B": 1, "bytes": 1, "kB": 1024, "KB": 1024, "KiB": 1024, "MB": 1024 ** 2, "MiB": 1024 ** 2}
TEST_NAME = re.compile(r"(?:^|/)test(Load|Predict)_(cpuOnly|cpuAndGPU|all)(?:\(\))?$")
MEMORY_TEST_NAME = re.compile(r"(?:^|/)testMemory_(plain|split)_(cpuOnly|cpuAndGPU|all)(?:\(\))?$")
MAX_VALUE = 1e15  # ms or bytes: far beyond any real run, and 1e15 x many samples stays finite
BUSY_SPREAD = 0.2  # (p90 - p50) / p50 above this: the phone was busy or throttling


class XcresultError(BadInputError):
    """The metrics document lacks something the benchmark needs (a field, a test, a metric)."""


@dataclass(frozen=True)
class Metric:
    identifier: str
    unit: str
    values: tuple[float, ...]


@dataclass(frozen=True)
class RunMetrics:
    """One test method on one device in one configuration."""
    test: str
    phase: str  # "load", "predict" or "memory"
    compute_units: str
    device: dict[str, Any]
    configuration: str | None
    metrics: dict[str, Metric] = field(default_factory=dict)
    model: str | None = None  # memory tests: "plain" or "split"

    @property
    def device_key(self) -> str:
        return str(self.device.get("deviceId") or self.device.get("deviceName"))


def load_document(text: str) -> list[Any]:
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as e:
        raise XcresultError(f"xcresulttool output is not JSON ({e.msg} at line {e.lineno})",
                            "run `xcrun xcresulttool get test-results metrics --path R.xcresult` by hand") from None
    except (ValueError, RecursionError) as e:  # nesting too deep, integers too long to convert
        raise XcresultError(f"xcresulttool output is not usable JSON ({type(e).__name__})",
                            "run `xcrun xcresulttool get test-results metrics --path R.xcresult` by hand") from None
    if not isinstance(doc, list):
        raise XcresultError("xcresulttool metrics output is not a list of tests",
                            "Xcode 16 or newer is needed (older versions need --legacy and another format)")
    return doc


def _require(obj: Any, key: str, kind: type, where: str) -> Any:
    if not isinstance(obj, dict) or key not in obj:
        raise XcresultError(f"xcresulttool metrics: {where} has no '{key}'")
    value = obj[key]
    if not isinstance(value, kind):
        raise XcresultError(f"xcresulttool metrics: {where}.{key} is {type(value).__name__}, not {kind.__name__}")
    return value


def _metric(raw: Any, where: str) -> Metric | None:
    if not isinstance(raw, dict):
        raise XcresultError(f"xcresulttool metrics: {where} is not an object")
    display = raw.get("displayName")
    identifier = raw.get("identifier") or (DISPLAY_NAMES.get(display) if isinstance(display, str) else None)
    if identifier not in (CLOCK, MEMORY, MEMORY_PEAK):
        return None  # CPU, disk, signposts: not part of the schema
    unit = _require(raw, "unitOfMeasurement", str, where)
    values = _require(raw, "measurements", list, where)
    table = TO_MS if identifier == CLOCK else TO_BYTES
    if unit not in table:
        raise XcresultError(f"xcresulttool metrics: {where} has unit {unit[:20]!r}; expected one of {', '.join(table)}")
    if not values or not all(_plausible(v, table[unit]) for v in values):
        raise XcresultError(f"xcresulttool metrics: {where} ({identifier}) has no finite measurements "
                            "(each must be a non-negative number)")
    return Metric(identifier, unit, tuple(float(v) for v in values))


def _plausible(v: Any, factor: float) -> bool:
    """A finite, non-negative number that stays finite (and summable) once converted to ms or bytes."""
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return False
    try:
        f = float(v) * factor
    except OverflowError:  # an integer too large for a float
        return False
    return math.isfinite(f) and 0 <= f < MAX_VALUE


def parse_metrics(doc: list[Any]) -> list[RunMetrics]:
    """Every harness test run in the document; raises XcresultError for malformed entries."""
    runs: list[RunMetrics] = []
    for i, test in enumerate(doc):
        name = _require(test, "testIdentifier", str, f"test[{i}]")
        match, memory = TEST_NAME.search(name), MEMORY_TEST_NAME.search(name)
        if not match and not memory:
            continue
        phase, units, model = ((match.group(1).lower(), match.group(2), None) if match else
                               ("memory", memory.group(2), memory.group(1)))
        for j, run in enumerate(_require(test, "testRuns", list, name)):
            where = f"{name} run[{j}]"
            device = _require(run, "device", dict, where)
            if not any(isinstance(device.get(k), str) and device.get(k) for k in ("deviceId", "deviceName")):
                raise XcresultError(f"xcresulttool metrics: {where} names no device (deviceId/deviceName)")
            device = {k: v for k, v in device.items() if isinstance(v, str)}  # names and versions are strings
            config = run.get("testPlanConfiguration") or {}
            metrics = {}
            for k, raw in enumerate(_require(run, "metrics", list, where)):
                m = _metric(raw, f"{where} metric[{k}]")
                if m is not None:
                    metrics[m.identifier] = m
            name_of_config = config.get("configurationName") if isinstance(config, dict) else None
            runs.append(RunMetrics(name, phase, units, device,
                                   name_of_config if isinstance(name_of_config, str) else None, metrics, model))
    return runs


def _ms(metric: Metric) -> np.ndarray:
    return np.asarray(metric.values) * TO_MS[metric.unit]


def _bytes(metric: Metric | None) -> float | None:
    return float(np.median(metric.values)) * TO_BYTES[metric.unit] if metric else None


def to_bench_results(runs: list[RunMetrics], artifact: str, target: str, precision: str, warmup: int,
                     raw: dict[str, Any] | None = None) -> list[BenchResult]:
    """One BenchResult per (device, compute units) that has a prediction test with clock measurements."""
    results = []
    predicts = [r for r in runs if r.phase == "predict"]
    if not predicts:
        raise XcresultError("no prediction test in the result bundle (testPredict_<units>)",
                            "the tests may have been skipped: check the compute units in bench_config.json")
    for p in predicts:
        if CLOCK not in p.metrics:
            raise XcresultError(f"{p.test} on {p.device_key} has no Clock Monotonic Time measurements",
                                "the harness measures with XCTClockMetric; was the test changed?")
        load = next((r for r in runs if r.phase == "load" and r.compute_units == p.compute_units
                     and r.device_key == p.device_key and r.configuration == p.configuration), None)
        latency = LatencyStats.from_samples(_ms(p.metrics[CLOCK]))
        memory = {"source": "XCTMemoryMetric: change of physical memory over each measured block, median of "
                            "iterations, kB read as KiB"}
        for phase_run, phase in ((load, "load"), (p, "predict")):
            if phase_run is None:
                continue
            for ident, label in ((MEMORY_PEAK, "peak_physical_bytes"), (MEMORY, "physical_bytes")):
                value = _bytes(phase_run.metrics.get(ident))
                if value is not None:
                    memory[f"{phase}_{label}"] = value
        peaks = [memory[k] for k in ("load_peak_physical_bytes", "predict_peak_physical_bytes") if k in memory]
        notes = ["Core ML picks its own threads; threads=0 means not set",
                 "timed by XCTest (XCTClockMetric) on the device"]
        if load is None:
            notes.append("no load test for these compute units: init_ms unknown")
        d = p.device
        results.append(BenchResult(
            artifact=artifact, target=target, precision=precision, runtime="coreml",
            runtime_version=f"iOS {d.get('osVersion', '?')}",
            device=DeviceInfo("ios", str(d.get("deviceId") or d.get("deviceName")),
                              d.get("modelName") or d.get("deviceName"), False,
                              {k: d[k] for k in ("deviceName", "osVersion", "osBuildNumber", "architecture", "platform")
                               if k in d} | {"configuration": p.configuration}),
            threads=0, delegate=p.compute_units,
            init_ms=float(np.median(_ms(load.metrics[CLOCK]))) if load and CLOCK in load.metrics else None,
            first_inference_ms=None, latency_ms=latency,
            peak_memory_bytes=int(max(peaks)) if peaks else None, memory=memory, warmup=warmup, batch=1,
            loaded=latency.spread > BUSY_SPREAD, notes=tuple(notes),
            raw={**(raw or {}), "tests": [p.test] + ([load.test] if load else [])}))
    return results


MEMORY_SOURCE = ("XCTMemoryMetric over a fresh load plus one prediction per iteration, after one untimed load and "
                 "prediction; physical = change at the end of the block, peak = highest during it; medians of "
                 "iterations, kB read as KiB. Same weights in both models: the difference is activation memory")


def memory_comparison(runs: list[RunMetrics]) -> list[dict[str, Any]]:
    """The plain model beside its split twin, per (device, compute units, configuration) that measured both."""
    out = []
    plains = [r for r in runs if r.phase == "memory" and r.model == "plain"]
    for p in plains:
        s = next((r for r in runs if r.phase == "memory" and r.model == "split" and r.device_key == p.device_key
                  and r.compute_units == p.compute_units and r.configuration == p.configuration), None)
        entry: dict[str, Any] = {"device": p.device_key, "model_name": p.device.get("modelName"),
                                 "os_version": p.device.get("osVersion"), "compute_units": p.compute_units,
                                 "configuration": p.configuration, "source": MEMORY_SOURCE}
        for key, run in (("plain", p), ("split", s)):
            if run is None:
                entry[key] = None
                continue
            peak, physical = run.metrics.get(MEMORY_PEAK), run.metrics.get(MEMORY)
            if peak is None and physical is None:
                raise XcresultError(f"{run.test} on {run.device_key} has no Memory Physical measurements",
                                    "the harness measures with XCTMemoryMetric; was the test changed?")
            entry[key] = {"test": run.test, "peak_physical_bytes": _bytes(peak), "physical_bytes": _bytes(physical),
                          "iterations": len((peak or physical).values)}
        both = entry["plain"] and entry["split"]
        entry["split_over_plain_peak"] = (entry["split"]["peak_physical_bytes"] / entry["plain"]["peak_physical_bytes"]
                                          if both and entry["plain"]["peak_physical_bytes"] and
                                          entry["split"]["peak_physical_bytes"] is not None else None)
        out.append(entry)
    if not out:
        raise XcresultError("no memory test in the result bundle (testMemory_plain_<units>)",
                            "run the harness's testMemory_* tests with splitModel set in bench_config.json")
    return out


def parse_memory_comparison(text: str) -> list[dict[str, Any]]:
    return memory_comparison(parse_metrics(load_document(text)))


def parse_xcresult_metrics(text: str, artifact: str, target: str, precision: str, warmup: int,
                           raw: dict[str, Any] | None = None) -> list[BenchResult]:
    return to_bench_results(parse_metrics(load_document(text)), artifact, target, precision, warmup, raw)
