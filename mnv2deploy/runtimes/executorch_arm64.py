"""ExecuTorch's aarch64 runtime (XNNPACK and the optimized/quantized kernels, as in a phone build) under qemu-user:
``pte_runner_arm64.py`` in the emulation environment's aarch64 Python, over the shim setup builds
(``mnv2deploy/emulation.py``); the same manifest-driven edges as the host runtimes. Numerics are a phone CPU's;
timings are not."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from .. import emulation
from ..errors import BadArtifactError
from .emulated_arm64 import EmulatedArm64Runtime, run_in_emulator

RUNNER = Path(__file__).with_name("pte_runner_arm64.py")
MAGIC = b"ET12"  # an ExecuTorch program's flatbuffer identifier, bytes 4..8 (as the host runtime checks it)


def run_model_inputs(artifact: Path, x: np.ndarray, cpu: str = "cortex-a76", threads: int = 1,
                     root: Path | None = None) -> np.ndarray:
    """Raw model inputs (already in the model's layout and dtype) -> raw outputs, one execute per sample, in one
    aarch64 process under qemu (numpy and the program load once)."""
    artifact = Path(artifact)
    with open(artifact, "rb") as fh:  # a file that is not a program never reaches the native loader
        if fh.read(8)[4:8] != MAGIC:
            raise BadArtifactError(f"{artifact.name} is not an ExecuTorch program (no {MAGIC.decode()} identifier)",
                                   "pass a .pte file written by `mnv2deploy export --target executorch*`")
    root = root or emulation.executorch_environment()
    return run_in_emulator(emulation.python_command(cpu, root),
                           lambda inp, out: [str(RUNNER), f"--model_path={artifact}", f"--cpu_threads={threads}",
                                             f"--batch_inputs={inp}", f"--batch_outputs={out}"],
                           x, root, "ExecuTorch", artifact)


class EmulatedArm64ExecuTorchRuntime(EmulatedArm64Runtime):
    """ExecuTorch's aarch64 runtime under qemu; same edges as the host ExecuTorch runtime."""
    name: ClassVar[str] = "executorch-arm64"
    formats: ClassVar[tuple[str, ...]] = ("pte",)
    export_hint: ClassVar[str] = "export with an executorch target"

    @classmethod
    def unavailable_reason(cls) -> str | None:
        return emulation.executorch_unavailable_reason()

    @staticmethod
    def environment() -> Path:
        return emulation.executorch_environment()

    def run_model_inputs(self, artifact: Path, x: np.ndarray, cpu: str, threads: int, root: Path) -> np.ndarray:
        return run_model_inputs(artifact, x, cpu, threads, root)

    def versions(self) -> dict[str, str]:
        return {"executorch (aarch64 wheel's runtime)": emulation.EXECUTORCH_VERSION, "qemu": emulation.qemu_version()}

    def details(self) -> dict[str, Any]:
        delegate = (self._manifest.export_options.get("delegate") if self._manifest else None) or "xnnpack"
        return {**super().details(), "delegate": "xnnpack" if delegate == "xnnpack" else "portable"}
