"""LiteRT's aarch64 kernels (XNNPACK, as on a phone CPU) under qemu-user, through the emulation environment
(``mnv2deploy/emulation.py``); the same manifest-driven edges as the host LiteRtRuntime. Numerics are a phone CPU's;
timings are not."""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from .. import emulation
from ..errors import BadArtifactError, UsageError
from ..manifest import Manifest
from .base import Runtime
from .edges import from_model_output, to_model_input

_RUN_SCRIPT = r"""
import sys, numpy as np
from ai_edge_litert.interpreter import Interpreter
model, inp, out, threads = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
it = Interpreter(model_path=model, num_threads=threads if threads > 0 else None)
it.allocate_tensors()
i, o = it.get_input_details()[0], it.get_output_details()[0]
x = np.load(inp)
ys = []
for k in range(x.shape[0]):
    it.set_tensor(i["index"], x[k:k + 1].astype(i["dtype"]))
    it.invoke()
    ys.append(it.get_tensor(o["index"]).copy())
np.save(out, np.concatenate(ys, 0))
"""


def run_model_inputs(artifact: Path, x: np.ndarray, cpu: str = "cortex-a76", threads: int = 1,
                     root: Path | None = None) -> np.ndarray:
    """Raw model inputs (already in the model's layout and dtype) -> raw outputs, one invoke per sample,
    in one aarch64 process under qemu (numpy + LiteRT start once)."""
    artifact = Path(artifact)
    root = root or emulation.environment()
    cmd = emulation.python_command(cpu, root)
    with tempfile.TemporaryDirectory(prefix="mnv2-arm64-") as tmp:
        inp, out, script = Path(tmp, "in.npy"), Path(tmp, "out.npy"), Path(tmp, "run.py")
        np.save(inp, x)
        script.write_text(_RUN_SCRIPT)
        try:
            proc = subprocess.run(cmd + [str(script), str(artifact), str(inp), str(out), str(threads)],
                                  capture_output=True, text=True, env=emulation.python_env(root),
                                  timeout=600 + 10 * len(x))
        except subprocess.TimeoutExpired:
            raise BadArtifactError(f"emulated aarch64 LiteRT run of {artifact.name} timed out") from None
        if proc.returncode != 0 or not out.is_file():
            why = f"killed by signal {-proc.returncode}" if proc.returncode < 0 else f"exit {proc.returncode}"
            last = (proc.stderr.strip().splitlines() or [""])[-1][:200]
            raise BadArtifactError(f"aarch64 LiteRT under qemu failed on {artifact.name} ({why}): {last}",
                                   "check the artifact with host parity first")
        return np.load(out)


class EmulatedArm64LiteRtRuntime(Runtime):
    """LiteRT's aarch64 kernels (XNNPACK) under qemu; same edges as the host LiteRtRuntime."""
    name: ClassVar[str] = "litert-arm64"
    formats: ClassVar[tuple[str, ...]] = ("tflite",)
    arch: ClassVar[str] = "arm64"
    option_names: ClassVar[tuple[str, ...]] = ("cpu",)

    def __init__(self) -> None:
        self._artifact: Path | None = None
        self._manifest: Manifest | None = None
        self._threads = 1
        self._cpu = "cortex-a76"
        self._root: Path | None = None

    @classmethod
    def unavailable_reason(cls) -> str | None:
        return emulation.unavailable_reason()

    def load(self, artifact: Path, manifest: Manifest, threads: int | None = None, cpu: str = "cortex-a76",
             **options: Any) -> None:
        if manifest.format not in self.formats:
            raise UsageError(f"{self.name} runs {', '.join(self.formats)} artifacts, not {manifest.format}",
                             "export with a tflite target")
        if options:
            raise UsageError(f"{self.name} options {sorted(options)} unknown", "valid: threads, cpu")
        self._root = emulation.environment()
        emulation.python_command(cpu, self._root)  # validates the CPU
        self._artifact, self._manifest, self._cpu = Path(artifact), manifest, cpu
        self._threads = threads or 1

    def run(self, batch: np.ndarray) -> np.ndarray:
        if self._manifest is None or self._artifact is None:
            raise UsageError("load() an artifact before run()")
        x = to_model_input(np.asarray(batch, dtype=np.float32), self._manifest.inputs[0])
        y = run_model_inputs(self._artifact, x, self._cpu, self._threads, self._root)
        return from_model_output(y, self._manifest.outputs[0])

    def versions(self) -> dict[str, str]:
        return {"ai-edge-litert (aarch64 wheel)": emulation.LITERT_VERSION, "qemu": emulation.qemu_version()}

    def details(self) -> dict[str, Any]:
        return {"arch": "aarch64", "emulated": True, "emulated_cpu": self._cpu, "delegate": "xnnpack",
                "threads": self._threads, "emulator": emulation.QEMU,
                "note": "EMULATED aarch64 kernels under qemu: numerics as on a phone CPU, timings are not"}
