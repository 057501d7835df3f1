"""LiteRT's aarch64 kernels (XNNPACK, as on a phone CPU) under qemu-user, through the emulation environment
(``mnv2deploy/emulation.py``); the same manifest-driven edges as the host LiteRtRuntime. Numerics are a phone CPU's;
timings are not."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from .. import emulation
from .emulated_arm64 import EmulatedArm64Runtime, run_in_emulator


def run_model_inputs(artifact: Path, x: np.ndarray, cpu: str = "cortex-a76", threads: int = 1,
                     root: Path | None = None) -> np.ndarray:
    """Raw model inputs (already in the model's layout and dtype) -> raw outputs, one invoke per sample,
    in one aarch64 process under qemu (numpy + LiteRT start once)."""
    artifact = Path(artifact)
    root = root or emulation.environment()
    script = Path(__file__).with_name("litert_runner_arm64.py")
    return run_in_emulator(emulation.python_command(cpu, root),
                           lambda inp, out: [str(script), str(artifact), str(inp), str(out), str(threads)],
                           x, root, "LiteRT", artifact)


class EmulatedArm64LiteRtRuntime(EmulatedArm64Runtime):
    """LiteRT's aarch64 kernels (XNNPACK) under qemu; same edges as the host LiteRtRuntime."""
    name: ClassVar[str] = "litert-arm64"
    formats: ClassVar[tuple[str, ...]] = ("tflite",)
    export_hint: ClassVar[str] = "export with a tflite target"

    @classmethod
    def unavailable_reason(cls) -> str | None:
        return emulation.unavailable_reason()

    def run_model_inputs(self, artifact: Path, x: np.ndarray, cpu: str, threads: int, root: Path) -> np.ndarray:
        return run_model_inputs(artifact, x, cpu, threads, root)

    def versions(self) -> dict[str, str]:
        return {"ai-edge-litert (aarch64 wheel)": emulation.LITERT_VERSION, "qemu": emulation.qemu_version()}

    def details(self) -> dict[str, Any]:
        return {**super().details(), "delegate": "xnnpack"}
