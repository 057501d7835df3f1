"""Results and manifests for bench tests: a hand-built BenchResult for the report layer, and hand-written
manifests beside broken files (the sha256 matches, so the runtime itself has to reject the file)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from mnv2deploy.bench.result import BenchResult, DeviceInfo, LatencyStats
from mnv2deploy.manifest import Manifest, TensorSpec, write_manifest
from mnv2deploy.weights import resolve_weights

LATENCY_KEYS = {"p50", "p90", "p99", "mean", "std", "min", "max", "trimmed_mean", "count"}
TOP_KEYS = {"latency_ms", "peak_memory_bytes", "init_ms", "runtime", "threads", "device", "artifact", "target",
            "precision", "runtime_version", "delegate", "first_inference_ms", "memory", "warmup", "batch", "loaded",
            "notes", "raw", "device_info", "emulated"}


def make_result(samples=(1.0, 1.1, 1.2, 0.9, 5.0), kind="host", raw=None) -> BenchResult:
    return BenchResult(
        artifact="/x/m.int8.tflite", target="tflite-int8", precision="int8", runtime="litert",
        runtime_version="ai-edge-litert 2.3.0", device=DeviceInfo(kind, "box", "Some CPU", kind == "android"),
        threads=1, delegate="xnnpack", init_ms=3.0, first_inference_ms=1.5,
        latency_ms=LatencyStats.from_samples(list(samples)), peak_memory_bytes=50 << 20,
        memory={"source": "test", "peak_increase_bytes": 8 << 20}, warmup=2,
        raw={"samples_ms": list(samples)} if raw is None else raw)


def write_broken(folder: Path, name: str, data: bytes, target: str = "tflite-int8") -> Path:
    """``data`` as an artifact with a well-formed manifest whose sha256 matches it."""
    fmt = "onnx" if name.endswith(".onnx") else "tflite"
    spec = resolve_weights("default")
    r = spec.contract.resolution
    path = folder / name
    path.write_bytes(data)
    int8 = target.endswith("int8") and fmt == "tflite"
    dtype, scale, zp = ("int8", 0.02, 0) if int8 else ("float32", None, None)
    write_manifest(path, Manifest(
        target=target, format=fmt, precision="int8" if target.endswith("int8") else "fp32", artifact=name,
        artifact_sha256=hashlib.sha256(data).hexdigest(),
        inputs=(TensorSpec("input", (1, 3, r, r), dtype, "NCHW", scale, zp),),
        outputs=(TensorSpec("logits", (1, 10), dtype, "NC", scale, zp),), preprocessing=spec.contract,
        model={"name": "mobilenet_v2", "width_mult": 1.0, "num_classes": 10, "resolution": r, "split": 1},
        weights={**spec.to_dict(), "sha256": None}))
    return path


@pytest.fixture
def result() -> BenchResult:
    return make_result()


def load_json_line(text: str) -> dict:
    lines = [ln for ln in text.strip().splitlines() if ln.startswith("{")]
    assert len(lines) == 1, text
    return json.loads(lines[0])
