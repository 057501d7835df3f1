"""One Runtime protocol shared by parity and bench, so both measure exactly the same execution.

A runtime takes preprocessed float32 NCHW batches and returns float32 logits; layout conversion (NCHW/NHWC)
and int8 quantize/dequantize at the edges happen inside, driven by the manifest.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, Protocol

import numpy as np

from ..manifest import Manifest


class Runtime(Protocol):
    name: ClassVar[str]  # "litert", "onnxruntime", "torch", "coreml"
    formats: ClassVar[tuple[str, ...]]  # manifest formats it runs

    @classmethod
    def unavailable_reason(cls) -> str | None:
        """None when it can run here; else why not (platform or missing package, with hint)."""

    def load(self, artifact: Path, manifest: Manifest, threads: int | None = None, **options: Any) -> None:
        ...

    def run(self, batch: np.ndarray) -> np.ndarray:
        """float32 NCHW preprocessed images -> float32 logits (N, num_classes)."""

    def versions(self) -> dict[str, str]:
        ...

    def details(self) -> dict[str, Any]:
        """Facts worth reporting: delegate (e.g. XNNPACK on/off), threads, execution provider."""
