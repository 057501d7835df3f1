"""Runtimes by manifest format and CPU architecture, each declaring what it runs (``formats``, ``arch``); adding one is
a module and a line in ``_register``. The runtime modules import their frameworks lazily, so a missing framework
only matters for the artifacts that need it."""

from __future__ import annotations

import importlib
import os
from pathlib import Path
from typing import Any

from ..errors import UsageError
from ..manifest import Manifest
from .base import HOST, Runtime

RUNTIMES: dict[tuple[str, str], type[Runtime]] = {}  # (format, arch) -> runtime class
MAX_THREADS = 256


def _register(module: str, cls: str) -> None:
    runtime = getattr(importlib.import_module(f"{__name__}.{module}"), cls)
    for fmt in runtime.formats:
        RUNTIMES[(fmt, runtime.arch)] = runtime


_register("ort", "OrtRuntime")
_register("litert", "LiteRtRuntime")
_register("coreml", "CoreMLRuntime")
_register("executorch", "ExecutorchRuntime")
_register("litert_arm64", "EmulatedArm64LiteRtRuntime")
_register("executorch_arm64", "EmulatedArm64ExecuTorchRuntime")

ARCHES = tuple(dict.fromkeys([HOST, *(arch for _, arch in RUNTIMES)]))


def check_threads(threads: int | None) -> None:
    """--threads for any runtime: 1 to MAX_THREADS (None = the runtime's default)."""
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int)
                                or not 1 <= threads <= MAX_THREADS):
        raise UsageError(f"--threads must be 1 to {MAX_THREADS}, got {threads}",
                         f"this machine has {os.cpu_count() or '?'} CPUs")


def runtime_class(fmt: str, arch: str = HOST) -> type[Runtime]:
    if arch not in ARCHES:
        raise UsageError(f"arch {arch!r} unknown", f"choose one of {', '.join(ARCHES)}")
    try:
        return RUNTIMES[(fmt, arch)]
    except KeyError:
        valid = ", ".join(f for f, a in RUNTIMES if a == arch)
        raise UsageError(f"no {arch} runtime for {fmt} artifacts", f"{arch} runs: {valid}") from None


def runtime_for(manifest: Manifest, arch: str = HOST) -> type[Runtime]:
    """The Runtime class that runs this manifest's artifact on ``arch`` (arm64 = emulated aarch64)."""
    return runtime_class(manifest.format, arch)


def run_artifact(artifact: str, manifest: Manifest, images: Any, arch: str = HOST, threads: int | None = None,
                 **options: Any) -> dict[str, Any]:
    """Load and run an artifact whose manifest the caller has read and verified (top-level, so call_in_child can
    run it in a fresh process)."""
    runtime = runtime_for(manifest, arch)()
    runtime.load(Path(artifact), manifest, threads=threads, **options)
    logits = runtime.run(images)
    return {"logits": logits, "runtime": runtime.name, "versions": runtime.versions(), "details": runtime.details()}
