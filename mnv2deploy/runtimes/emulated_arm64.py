"""What the emulated aarch64 runtimes share: a batch goes to one aarch64 process under qemu as .npy and comes back
as .npy; the manifest-driven edges stay on the host, as in the host runtimes. Numerics are a phone CPU's; timings
are not."""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path
from typing import Any, Callable, ClassVar

import numpy as np

from .. import emulation
from ..errors import BadArtifactError, UsageError
from ..manifest import Manifest
from .base import Runtime
from .edges import from_model_output, to_model_input

EMULATED_NOTE = "EMULATED aarch64 kernels under qemu: numerics as on a phone CPU, timings are not"


def run_in_emulator(cmd: list[str], argv: Callable[[Path, Path], list[str]], x: np.ndarray, root: Path,
                    what: str, artifact: Path) -> np.ndarray:
    """``cmd + argv(in.npy, out.npy)`` under qemu with ``x`` saved as in.npy: the array it saved as out.npy.
    ``what`` names the runtime in errors; a last stderr line starting ``error:`` is the program's own reason."""
    with tempfile.TemporaryDirectory(prefix="mnv2-arm64-") as tmp:
        inp, out = Path(tmp, "in.npy"), Path(tmp, "out.npy")
        np.save(inp, x)
        try:
            proc = subprocess.run(cmd + argv(inp, out), capture_output=True, text=True,
                                  env=emulation.python_env(root), timeout=600 + 10 * len(x))
        except subprocess.TimeoutExpired:
            raise BadArtifactError(f"emulated aarch64 {what} run of {artifact.name} timed out") from None
        if proc.returncode != 0 or not out.is_file():
            why = f"killed by signal {-proc.returncode}" if proc.returncode < 0 else f"exit {proc.returncode}"
            lines = proc.stderr.strip().splitlines()
            own = [ln.removeprefix("error:").strip() for ln in lines if ln.startswith("error:")]
            last = (own or lines or [""])[-1][:200]
            raise BadArtifactError(f"aarch64 {what} under qemu failed on {artifact.name} ({why}): {last}",
                                   "check the artifact with host parity first")
        return np.load(out)


class EmulatedArm64Runtime(Runtime):
    """Base of the runtimes whose kernels are aarch64 code under qemu; subclasses say how to run model inputs."""
    arch: ClassVar[str] = "arm64"
    option_names: ClassVar[tuple[str, ...]] = ("cpu",)
    export_hint: ClassVar[str] = ""

    def __init__(self) -> None:
        self._artifact: Path | None = None
        self._manifest: Manifest | None = None
        self._threads = 1
        self._cpu = "cortex-a76"
        self._root: Path | None = None

    @staticmethod
    def environment() -> Path:
        return emulation.environment()

    def run_model_inputs(self, artifact: Path, x: np.ndarray, cpu: str, threads: int, root: Path) -> np.ndarray:
        raise NotImplementedError

    def load(self, artifact: Path, manifest: Manifest, threads: int | None = None, cpu: str = "cortex-a76",
             **options: Any) -> None:
        if manifest.format not in self.formats:
            raise UsageError(f"{self.name} runs {', '.join(self.formats)} artifacts, not {manifest.format}",
                             self.export_hint)
        if options:
            raise UsageError(f"{self.name} options {sorted(options)} unknown", "valid: threads, cpu")
        self._root = self.environment()
        emulation.python_command(cpu, self._root)  # validates the CPU
        self._artifact, self._manifest, self._cpu = Path(artifact), manifest, cpu
        self._threads = threads or 1

    def run(self, batch: np.ndarray) -> np.ndarray:
        if self._manifest is None or self._artifact is None or self._root is None:
            raise UsageError("load() an artifact before run()")
        x = to_model_input(np.asarray(batch, dtype=np.float32), self._manifest.inputs[0])
        y = self.run_model_inputs(self._artifact, x, self._cpu, self._threads, self._root)
        return from_model_output(y, self._manifest.outputs[0])

    def details(self) -> dict[str, Any]:
        return {"arch": "aarch64", "emulated": True, "emulated_cpu": self._cpu, "threads": self._threads,
                "emulator": emulation.QEMU, "note": EMULATED_NOTE}
