"""One Runtime protocol shared by parity and bench, so both measure exactly the same execution.

A runtime takes preprocessed float32 NCHW batches and returns float32 logits; layout conversion (NCHW/NHWC)
and int8 quantize/dequantize at the edges happen inside, driven by the manifest. Each runtime declares what it runs
(``formats``, ``arch``) and which ``load`` options it takes, so nothing above it needs to know which one it is.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, Protocol

import numpy as np

from ..manifest import Manifest

HOST = "x86_64"


class Runtime(Protocol):
    name: ClassVar[str]  # "litert", "onnxruntime", "torch", "coreml", "litert-arm64"
    formats: ClassVar[tuple[str, ...]]  # manifest formats it runs
    arch: ClassVar[str] = HOST  # the CPU architecture its kernels are built for ("arm64": emulated aarch64)
    option_names: ClassVar[tuple[str, ...]] = ()  # ``load`` options besides threads (e.g. "xnnpack", "cpu")

    @classmethod
    def unavailable_reason(cls) -> str | None:
        """None when it can run here; else why not (platform or missing package, with hint)."""

    @classmethod
    def static_checks(cls, artifact: Path, manifest: Manifest) -> list[dict[str, Any]]:
        """What can be checked about the artifact without running it (reported when the runtime is unavailable);
        each check is {"name", "passed", "detail"}."""
        return []

    def load(self, artifact: Path, manifest: Manifest, threads: int | None = None, **options: Any) -> None:
        ...

    def run(self, batch: np.ndarray) -> np.ndarray:
        """float32 NCHW preprocessed images -> float32 logits (N, num_classes)."""

    def versions(self) -> dict[str, str]:
        ...

    def details(self) -> dict[str, Any]:
        """Facts worth reporting: delegate (e.g. XNNPACK on/off), threads, execution provider."""
