"""The one benchmark result schema shared by host, Android and iOS runs, and the statistics behind it."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np


@dataclass(frozen=True)
class LatencyStats:
    """Per-run latency in milliseconds. trimmed_mean drops the fastest and slowest 10% (ExecuTorch minibench)."""
    count: int
    p50: float
    p90: float
    p99: float
    mean: float
    std: float
    min: float
    max: float
    trimmed_mean: float

    @classmethod
    def from_samples(cls, samples_ms: Any) -> "LatencyStats":
        a = np.asarray(samples_ms, dtype=np.float64)
        if a.size == 0:
            raise ValueError("no latency samples")
        s = np.sort(a)
        cut = int(len(s) * 0.1)
        core = s[cut:len(s) - cut] if len(s) - 2 * cut > 0 else s
        p50, p90, p99 = np.percentile(a, [50, 90, 99])
        return cls(int(a.size), float(p50), float(p90), float(p99), float(a.mean()), float(a.std()),
                   float(s[0]), float(s[-1]), float(core.mean()))

    @property
    def spread(self) -> float:
        """(p90 - p50) / p50: a cheap sign that the machine was busy."""
        return (self.p90 - self.p50) / self.p50 if self.p50 > 0 else 0.0


@dataclass(frozen=True)
class DeviceInfo:
    kind: str  # "host", "android", "ios"
    name: str  # hostname, adb serial, UDID
    model: str | None = None  # CPU model on host; ro.product.model on Android; device name on iOS
    emulated: bool = False  # True when a phone CPU was emulated (qemu): never a phone time
    details: dict[str, Any] = field(default_factory=dict)  # cores, ABI, OS version, thermal, battery, ...


@dataclass(frozen=True)
class BenchResult:
    artifact: str
    target: str
    precision: str
    runtime: str
    runtime_version: str
    device: DeviceInfo
    threads: int
    delegate: str | None  # "xnnpack", "none", "CPUExecutionProvider", "cpuOnly", ...
    init_ms: float | None
    first_inference_ms: float | None
    latency_ms: LatencyStats
    peak_memory_bytes: int | None  # the headline number; `memory` says which measurement it is
    memory: dict[str, Any] = field(default_factory=dict)  # every memory number, labelled with its source
    warmup: int = 0
    batch: int = 1
    loaded: bool = False  # the machine looked busy (large run-to-run spread or high load average)
    notes: tuple[str, ...] = ()
    raw: dict[str, Any] = field(default_factory=dict)  # raw tool output paths, command lines

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["device"] = self.device.kind if self.device.kind == "host" else self.device.name
        d["device_info"] = asdict(self.device)
        d["emulated"] = self.device.emulated
        d["notes"] = list(self.notes)
        return d
