"""Phone-CPU execution without a phone: aarch64 Python + the aarch64 LiteRT wheel under qemu-user.

Built once into the user cache (``<cache>/arm64-emu``) with progress on stderr: an arm64 sysroot unpacked from
Debian packages (``apt-get download`` + ``dpkg -x``), aarch64 wheels (``pip install --target --platform``), and a
fake ARM ``/proc/cpuinfo`` per emulated CPU inside the prefix (qemu-user's ``-L`` resolves absolute paths in the prefix first;
without it ai-edge-litert segfaults under qemu 7.2). Never ``-cpu max``: its SME path gives wrong int8 sums in
this qemu. Timings from here are sanity checks, never phone numbers.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, ClassVar, Iterator

import numpy as np

from ..errors import BadArtifactError, MissingToolError, UsageError
from ..manifest import Manifest
from ..weights import cache_dir

QEMU = "qemu-aarch64-static"
PYTHON = "usr/bin/python3.11"
LITERT_VERSION = "2.3.0"
# cortex-a76: dot-product int8 kernels (most current phones); cortex-a57: plain NEON (older phones).
CPUS = ("cortex-a76", "cortex-a57")
DEBIAN_PACKAGES = (
    "libc6", "libgcc-s1", "libstdc++6", "zlib1g", "libffi8", "libexpat1", "libbz2-1.0", "liblzma5",
    "libcrypt1", "libuuid1", "libssl3", "libsqlite3-0", "libncursesw6", "libtinfo6",
    "libreadline8", "libdb5.3", "libnsl2", "libtirpc3", "libgssapi-krb5-2", "libkrb5-3", "libk5crypto3",
    "libkrb5support0", "libcom-err2", "libkeyutils1",
    "libpython3.11-minimal", "python3.11-minimal", "libpython3.11-stdlib",
)
WHEELS = (f"ai-edge-litert=={LITERT_VERSION}", "numpy==2.4.6")  # numpy as in the host venv
PLATFORMS = ("manylinux_2_27_aarch64", "manylinux_2_28_aarch64", "manylinux2014_aarch64")
# What each CPU reports in /proc/cpuinfo. XNNPACK's cpuinfo reads the part number and features there too, so it
# must match the -cpu qemu emulates: an A76 cpuinfo under -cpu cortex-a57 picks dot-product kernels -> SIGILL.
_CPUINFO = {
    "cortex-a76": ("0x4", "0xd0b", "fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid "
                                   "asimdrdm lrcpc dcpop asimddp"),
    "cortex-a57": ("0x1", "0xd07", "fp asimd evtstrm aes pmull sha1 sha2 crc32 cpuid"),
}


def fake_cpuinfo(cpu: str, cores: int = 4) -> str:
    variant, part, features = _CPUINFO[cpu]
    return "".join(f"processor\t: {i}\nBogoMIPS\t: 38.40\nFeatures\t: {features}\nCPU implementer\t: 0x41\n"
                   f"CPU architecture: 8\nCPU variant\t: {variant}\nCPU part\t: {part}\nCPU revision\t: 1\n\n"
                   for i in range(cores))


STAMP = "ready-v2.json"


def emulation_dir() -> Path:
    return cache_dir() / "arm64-emu"


def _progress(message: str) -> None:
    print(f"[arm64-emu] {message}", file=sys.stderr, flush=True)


def _require_tools() -> str:
    qemu = shutil.which(QEMU)
    if not qemu:
        raise MissingToolError(f"{QEMU} not found on PATH",
                               "apt-get install -y qemu-user-static (scripts/ci_android_setup.sh does it all)")
    return qemu


def _run(cmd: list[str], cwd: Path | None = None, timeout: float = 900) -> None:
    try:
        proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    except FileNotFoundError:
        raise MissingToolError(f"{cmd[0]} not found", "run scripts/ci_android_setup.sh (Debian/Ubuntu host)") from None
    except subprocess.TimeoutExpired:
        raise MissingToolError(f"`{' '.join(cmd[:3])} ...` timed out after {timeout:.0f}s",
                               "check access to the Debian mirror and PyPI") from None
    if proc.returncode != 0:
        last = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or [""]
        hint = "run scripts/ci_android_setup.sh (it adds the arm64 architecture to apt)" if cmd[0] == "apt-get" \
            else "check access to PyPI"
        raise MissingToolError(f"`{' '.join(cmd[:4])} ...` failed: {last[0][:200]}", hint)


def _build(into: Path) -> None:
    sysroot, site, debs = into / "sysroot", into / "site-packages", into / "debs"
    for d in (sysroot, site, debs):
        d.mkdir(parents=True)
    _progress(f"downloading {len(DEBIAN_PACKAGES)} arm64 Debian packages (apt-get download)")
    _run(["apt-get", "download", *[f"{p}:arm64" for p in DEBIAN_PACKAGES]], cwd=debs)
    for deb in sorted(debs.glob("*.deb")):
        _run(["dpkg", "-x", str(deb), str(sysroot)])
    _progress(f"unpacked into {sysroot}")
    for cpu in CPUS:  # one prefix per CPU: shared files by symlink, its own /proc/cpuinfo
        prefix = into / f"root-{cpu}"
        prefix.mkdir()
        for entry in sysroot.iterdir():
            (prefix / entry.name).symlink_to(Path("..") / "sysroot" / entry.name)
        (prefix / "proc").mkdir()
        (prefix / "proc" / "cpuinfo").write_text(fake_cpuinfo(cpu))
    _progress(f"downloading aarch64 wheels: {', '.join(WHEELS)}")
    platforms = [a for p in PLATFORMS for a in ("--platform", p)]
    _run([sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-compile",
          "--target", str(site), "--only-binary=:all:", "--python-version", "3.11", "--implementation", "cp",
          "--abi", "cp311", *platforms, *WHEELS])
    shutil.rmtree(debs)
    (into / STAMP).write_text(json.dumps({"packages": list(DEBIAN_PACKAGES), "wheels": list(WHEELS),
                                          "built": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}))


@contextlib.contextmanager
def _lock(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)  # tests and commands may build it concurrently
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def ensure_environment() -> Path:
    """The emulation root (with sysroot/ and site-packages/), built on first use."""
    _require_tools()
    root = emulation_dir()
    if (root / STAMP).is_file():
        return root
    with _lock(root.with_name("arm64-emu.lock")):
        if (root / STAMP).is_file():
            return root
        _progress(f"building the aarch64 emulation environment in {root} (first use, a few minutes)")
        start = time.monotonic()
        tmp = Path(tempfile.mkdtemp(prefix="arm64-emu.", dir=root.parent))
        try:
            _build(tmp)
            if root.exists():
                shutil.rmtree(root)
            tmp.rename(root)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
        _progress(f"ready in {time.monotonic() - start:.0f}s")
    return root


def python_command(cpu: str = "cortex-a76", root: Path | None = None) -> list[str]:
    """argv prefix that runs the aarch64 Python under qemu (append a script and its arguments)."""
    if cpu not in CPUS:
        raise UsageError(f"emulated CPU {cpu!r} not supported", f"choose one of {', '.join(CPUS)} (never 'max')")
    qemu = _require_tools()
    root = root or ensure_environment()
    prefix = root / f"root-{cpu}"
    return [qemu, "-cpu", cpu, "-L", str(prefix), str(prefix / PYTHON), "-S", "-s"]


def python_env(root: Path | None = None) -> dict[str, str]:
    root = root or emulation_dir()
    return {"PYTHONPATH": str(root / "site-packages"), "PYTHONNOUSERSITE": "1", "PYTHONDONTWRITEBYTECODE": "1",
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C"}


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
    cmd = python_command(cpu, root)
    root = root or ensure_environment()
    with tempfile.TemporaryDirectory(prefix="mnv2-arm64-") as tmp:
        inp, out, script = Path(tmp, "in.npy"), Path(tmp, "out.npy"), Path(tmp, "run.py")
        np.save(inp, x)
        script.write_text(_RUN_SCRIPT)
        try:
            proc = subprocess.run(cmd + [str(script), str(artifact), str(inp), str(out), str(threads)],
                                  capture_output=True, text=True, env=python_env(root), timeout=600 + 10 * len(x))
        except subprocess.TimeoutExpired:
            raise BadArtifactError(f"emulated aarch64 LiteRT run of {artifact.name} timed out") from None
        if proc.returncode != 0 or not out.is_file():
            why = f"killed by signal {-proc.returncode}" if proc.returncode < 0 else f"exit {proc.returncode}"
            last = (proc.stderr.strip().splitlines() or [""])[-1][:200]
            raise BadArtifactError(f"aarch64 LiteRT under qemu failed on {artifact.name} ({why}): {last}",
                                   "check the artifact with host parity first")
        return np.load(out)


class EmulatedArm64LiteRtRuntime:
    """LiteRT's aarch64 kernels (XNNPACK) under qemu; same edges as the host LiteRtRuntime."""
    name: ClassVar[str] = "litert-arm64"
    formats: ClassVar[tuple[str, ...]] = ("tflite",)

    def __init__(self) -> None:
        self._artifact: Path | None = None
        self._manifest: Manifest | None = None
        self._threads = 1
        self._cpu = "cortex-a76"
        self._root: Path | None = None

    @classmethod
    def unavailable_reason(cls) -> str | None:
        if not shutil.which(QEMU):
            return f"{QEMU} is not installed (apt-get install -y qemu-user-static)"
        if not (emulation_dir() / STAMP).is_file() and not shutil.which("apt-get"):
            return "the arm64 sysroot is built from Debian packages and needs apt-get"
        return None

    def load(self, artifact: Path, manifest: Manifest, threads: int | None = None, cpu: str = "cortex-a76",
             **options: Any) -> None:
        if manifest.format not in self.formats:
            raise UsageError(f"{self.name} runs {', '.join(self.formats)} artifacts, not {manifest.format}",
                             "export with a tflite target")
        python_command(cpu)  # validates the CPU and builds the environment on first use
        self._artifact, self._manifest, self._cpu = Path(artifact), manifest, cpu
        self._threads = threads or 1
        self._root = ensure_environment()

    def run(self, batch: np.ndarray) -> np.ndarray:
        from ..runtimes.litert import from_model_output, to_model_input

        if self._manifest is None or self._artifact is None:
            raise UsageError("load() an artifact before run()")
        x = to_model_input(np.asarray(batch, dtype=np.float32), self._manifest.inputs[0])
        y = run_model_inputs(self._artifact, x, self._cpu, self._threads, self._root)
        return from_model_output(y, self._manifest.outputs[0])

    def versions(self) -> dict[str, str]:
        qemu = subprocess.run([_require_tools(), "--version"], capture_output=True, text=True).stdout.split("\n")[0]
        return {"ai-edge-litert (aarch64 wheel)": LITERT_VERSION, "qemu": qemu.replace("qemu-aarch64 version ", "")}

    def details(self) -> dict[str, Any]:
        return {"arch": "aarch64", "emulated": True, "emulated_cpu": self._cpu, "delegate": "xnnpack",
                "threads": self._threads, "emulator": QEMU,
                "note": "EMULATED aarch64 kernels under qemu: numerics as on a phone CPU, timings are not"}
