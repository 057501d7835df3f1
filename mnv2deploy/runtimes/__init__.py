"""Runtimes by manifest format (and target CPU architecture); imported lazily so a missing framework only
matters for the artifacts that need it."""

from __future__ import annotations

import importlib
import os
from pathlib import Path
from typing import Any

from ..errors import UsageError
from ..manifest import Manifest

# (format, arch) -> "module:Class"
RUNTIMES = {
    ("onnx", "x86_64"): "mnv2deploy.runtimes.ort:OrtRuntime",
    ("tflite", "x86_64"): "mnv2deploy.runtimes.litert:LiteRtRuntime",
    ("mlpackage", "x86_64"): "mnv2deploy.runtimes.coreml:CoreMLRuntime",
    ("tflite", "arm64"): "mnv2deploy.android.emulated:EmulatedArm64LiteRtRuntime",
}
ARCHES = ("x86_64", "arm64")
MAX_THREADS = 256


def check_threads(threads: int | None) -> None:
    """--threads for any runtime: 1 to MAX_THREADS (None = the runtime's default)."""
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int)
                                or not 1 <= threads <= MAX_THREADS):
        raise UsageError(f"--threads must be 1 to {MAX_THREADS}, got {threads}",
                         f"this machine has {os.cpu_count() or '?'} CPUs")


def runtime_class(fmt: str, arch: str = "x86_64") -> type:
    if arch not in ARCHES:
        raise UsageError(f"arch {arch!r} unknown", f"choose one of {', '.join(ARCHES)}")
    key = (fmt, arch)
    if key not in RUNTIMES:
        valid = ", ".join(f for f, a in RUNTIMES if a == arch)
        raise UsageError(f"no {arch} runtime for {fmt} artifacts", f"{arch} runs: {valid}")
    module, cls = RUNTIMES[key].split(":")
    return getattr(importlib.import_module(module), cls)


def runtime_for(manifest: Manifest, arch: str = "x86_64") -> type:
    """The Runtime class that runs this manifest's artifact on ``arch`` (arm64 = emulated aarch64 LiteRT)."""
    return runtime_class(manifest.format, arch)


def run_artifact(artifact: str, images: Any, arch: str = "x86_64", threads: int | None = None,
                 **options: Any) -> dict[str, Any]:
    """Load and run an artifact (top-level, so call_in_child can run it in a fresh process)."""
    from ..manifest import read_manifest

    manifest = read_manifest(Path(artifact), verify=False)  # the parent verified the sha256 already
    runtime = runtime_for(manifest, arch)()
    runtime.load(Path(artifact), manifest, threads=threads, **options)
    logits = runtime.run(images)
    return {"logits": logits, "runtime": runtime.name, "versions": runtime.versions(), "details": runtime.details()}
