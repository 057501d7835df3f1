"""Phone-CPU execution without a phone: aarch64 Python + the aarch64 LiteRT wheel under qemu-user, and ExecuTorch's
aarch64 runtime libraries behind a small C shim (ctypes).

Set up once, explicitly (``mnv2deploy setup arm64``; ``make android-setup`` runs it), into the user cache
(``<cache>/arm64-emu``): an arm64 sysroot unpacked from Debian packages (``apt-get download`` + ``dpkg -x``),
aarch64 wheels (``pip install --target --platform``), and a fake ARM ``/proc/cpuinfo`` per emulated CPU inside the
prefix (qemu-user's ``-L`` resolves absolute paths in the prefix first; without it ai-edge-litert segfaults under
qemu 7.2). ExecuTorch: the aarch64 wheel's Python bindings link libtorch, its runtime libraries do not, so setup
takes only ``lib/`` and ``include/`` from that wheel and builds ``_native/pte_shim.cpp`` against them with Debian's
cross compiler (g++-aarch64-linux-gnu) into ``<cache>/arm64-emu/executorch``. Commands that need it never download anything: when it is missing they say what to run (exit 4). Never
``-cpu max``: its SME path gives wrong int8 sums in this qemu. Timings from here are sanity checks, never phone
numbers.
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
from typing import Callable, Iterator

from .errors import MissingToolError, UsageError
from .weights import cache_dir

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
EXECUTORCH_VERSION = "1.5.1"
EXECUTORCH_STAMP = "ready-executorch.json"
CROSS_CXX = "aarch64-linux-gnu-g++"
SHIM_SOURCE = Path(__file__).with_name("_native") / "pte_shim.cpp"
SHIM_LIB = "libmnv2_pte.so"
# the wheel's runtime libraries the shim links; backends and kernels register themselves when loaded, so all stay
# needed (--no-as-needed) though the shim calls none of them by name
EXECUTORCH_LIBS = ("executorch", "executorch_backend_xnnpack", "executorch_kernels_optimized",
                   "executorch_kernels_quantized", "executorch_threadpool")
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


SETUP_HINT = "run `mnv2deploy setup arm64` once (or `make android-setup`, which also installs qemu and adb)"


def _stderr_progress(message: str) -> None:
    print(f"[arm64-emu] {message}", file=sys.stderr, flush=True)


def _require(tool: str, package: str, why: str = "") -> str:
    path = shutil.which(tool)
    if not path:
        raise MissingToolError(f"{tool} not found on PATH{why}",
                               f"apt-get install -y {package} (`make android-setup` does it all)")
    return path


def _require_tools() -> str:
    return _require(QEMU, "qemu-user-static")


def _run(cmd: list[str], cwd: Path | None = None, timeout: float = 900) -> None:
    try:
        proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    except FileNotFoundError:
        raise MissingToolError(f"{cmd[0]} not found", "run `make android-setup` (Debian/Ubuntu host)") from None
    except subprocess.TimeoutExpired:
        raise MissingToolError(f"`{' '.join(cmd[:3])} ...` timed out after {timeout:.0f}s",
                               "check access to the Debian mirror and PyPI") from None
    if proc.returncode != 0:
        last = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or [""]
        hint = "run `make android-setup` (it adds the arm64 architecture to apt)" if cmd[0] == "apt-get" \
            else "check access to PyPI"
        raise MissingToolError(f"`{' '.join(cmd[:4])} ...` failed: {last[0][:200]}", hint)


def _build(into: Path, progress: Callable[[str], None]) -> None:
    sysroot, site, debs = into / "sysroot", into / "site-packages", into / "debs"
    for d in (sysroot, site, debs):
        d.mkdir(parents=True)
    progress(f"downloading {len(DEBIAN_PACKAGES)} arm64 Debian packages (apt-get download)")
    _run(["apt-get", "download", *[f"{p}:arm64" for p in DEBIAN_PACKAGES]], cwd=debs)
    for deb in sorted(debs.glob("*.deb")):
        _run(["dpkg", "-x", str(deb), str(sysroot)])
    progress(f"unpacked into {sysroot}")
    for cpu in CPUS:  # one prefix per CPU: shared files by symlink, its own /proc/cpuinfo
        prefix = into / f"root-{cpu}"
        prefix.mkdir()
        for entry in sysroot.iterdir():
            (prefix / entry.name).symlink_to(Path("..") / "sysroot" / entry.name)
        (prefix / "proc").mkdir()
        (prefix / "proc" / "cpuinfo").write_text(fake_cpuinfo(cpu))
    progress(f"downloading aarch64 wheels: {', '.join(WHEELS)}")
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


def is_set_up() -> bool:
    return (emulation_dir() / STAMP).is_file()


def unavailable_reason() -> str | None:
    """None when aarch64 code can run here now; else what is missing and what to run."""
    if not shutil.which(QEMU):
        return f"{QEMU} is not installed (apt-get install -y qemu-user-static, or `make android-setup`)"
    if not is_set_up():
        return f"the arm64 emulation environment is not set up in {emulation_dir()} ({SETUP_HINT})"
    return None


def environment() -> Path:
    """The emulation root (sysroot/, site-packages/, root-<cpu>/); MissingToolError (exit 4) naming the setup step
    when it is not there. Nothing is downloaded here."""
    _require_tools()
    root = emulation_dir()
    if not (root / STAMP).is_file():
        raise MissingToolError(f"the arm64 emulation environment is not set up in {root}", SETUP_HINT)
    return root


def setup_environment(rebuild: bool = False, progress: Callable[[str], None] = _stderr_progress) -> Path:
    """Build the emulation environment (Debian packages and aarch64 wheels, a few minutes; then ExecuTorch's aarch64
    runtime and its shim, about 30 s); the explicit setup step behind ``mnv2deploy setup arm64``. Idempotent unless
    ``rebuild``; an environment built before ExecuTorch was part of it only gets the ExecuTorch part added."""
    _require_tools()
    root = emulation_dir()
    if rebuild or not (root / STAMP).is_file():
        with _lock(root.with_name("arm64-emu.lock")):
            if rebuild or not (root / STAMP).is_file():
                progress(f"building the aarch64 emulation environment in {root} (a few minutes)")
                _build_into(root, _build, progress)
                rebuild = False  # the ExecuTorch part went with the old root
    if rebuild or not (root / EXECUTORCH_STAMP).is_file():
        with _lock(root.with_name("arm64-emu.lock")):
            if rebuild or not (root / EXECUTORCH_STAMP).is_file():
                _require_cross_compiler()
                progress(f"adding ExecuTorch {EXECUTORCH_VERSION}'s aarch64 runtime and its shim")
                _build_into(executorch_dir(root), _build_executorch, progress)
                (root / EXECUTORCH_STAMP).write_text(json.dumps({"executorch": EXECUTORCH_VERSION,
                                                                 "shim": SHIM_SOURCE.name}))
    return root


def _build_into(final: Path, build: Callable[[Path, Callable[[str], None]], None],
                progress: Callable[[str], None]) -> None:
    """Build into a temporary folder beside ``final``, then swap it in: an interrupted build leaves nothing."""
    start = time.monotonic()
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=final.name + ".", dir=final.parent))
    try:
        shutil.rmtree(tmp)
        build(tmp, progress)
        if final.exists():
            shutil.rmtree(final)
        tmp.rename(final)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    progress(f"ready in {time.monotonic() - start:.0f}s")


def _require_cross_compiler() -> str:
    return _require(CROSS_CXX, "g++-aarch64-linux-gnu", " (it builds the ExecuTorch shim)")


def _build_executorch(into: Path, progress: Callable[[str], None]) -> None:
    """The aarch64 executorch wheel's runtime libraries and headers (not its Python side, which needs aarch64
    torch), and the shim compiled against them into ``lib/``; the headers go once the shim is built."""
    import zipfile

    download = into / "wheel"
    download.mkdir(parents=True)
    progress(f"downloading the aarch64 executorch=={EXECUTORCH_VERSION} wheel (18 MB)")
    platforms = [a for p in PLATFORMS for a in ("--platform", p)]
    _run([sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check", "--no-deps",
          "--dest", str(download), "--only-binary=:all:", "--python-version", "3.11", "--implementation", "cp",
          "--abi", "cp311", *platforms, f"executorch=={EXECUTORCH_VERSION}"])
    wheel = next(download.glob("executorch-*.whl"))
    with zipfile.ZipFile(wheel) as zf:
        for name in zf.namelist():
            if name.startswith(("executorch/lib/", "executorch/include/")) and not name.endswith("/"):
                zf.extract(name, into)
    lib, include = into / "executorch" / "lib", into / "executorch" / "include"
    progress(f"compiling {SHIM_SOURCE.name} with {CROSS_CXX}")
    _run([_require_cross_compiler(), "-std=c++17", "-O2", "-shared", "-fPIC", "-I", str(include),
          "-I", str(include / "executorch/runtime/core/portable_type/c10"), "-DC10_USING_CUSTOM_GENERATED_MACROS",
          "-o", str(lib / SHIM_LIB), str(SHIM_SOURCE), "-L", str(lib), "-Wl,--no-as-needed",
          *[f"-l{name}" for name in EXECUTORCH_LIBS], "-Wl,-rpath,$ORIGIN"], timeout=300)
    for d in (download, include, lib / "cmake"):
        shutil.rmtree(d, ignore_errors=True)


def executorch_dir(root: Path | None = None) -> Path:
    return (root or emulation_dir()) / "executorch"


def shim_path(root: Path | None = None) -> Path:
    return executorch_dir(root) / "executorch" / "lib" / SHIM_LIB


def executorch_unavailable_reason() -> str | None:
    """None when .pte files can run as aarch64 code here now; else what is missing and what to run."""
    reason = unavailable_reason()
    if reason is None and not (emulation_dir() / EXECUTORCH_STAMP).is_file():
        return f"ExecuTorch's aarch64 runtime is not set up in {executorch_dir()} ({SETUP_HINT})"
    return reason


def executorch_environment() -> Path:
    """The emulation root with ExecuTorch's aarch64 runtime in it; MissingToolError (exit 4) naming the setup step
    when it is not there. Nothing is downloaded here."""
    root = environment()
    if not (root / EXECUTORCH_STAMP).is_file():
        raise MissingToolError(f"ExecuTorch's aarch64 runtime is not set up in {executorch_dir(root)}", SETUP_HINT)
    return root


def python_command(cpu: str = "cortex-a76", root: Path | None = None) -> list[str]:
    """argv prefix that runs the aarch64 Python under qemu (append a script and its arguments)."""
    if cpu not in CPUS:
        raise UsageError(f"emulated CPU {cpu!r} not supported", f"choose one of {', '.join(CPUS)} (never 'max')")
    qemu = _require_tools()
    root = root or environment()
    prefix = root / f"root-{cpu}"
    return [qemu, "-cpu", cpu, "-L", str(prefix), str(prefix / PYTHON), "-S", "-s"]


def qemu_version() -> str:
    out = subprocess.run([_require_tools(), "--version"], capture_output=True, text=True).stdout
    return out.split("\n")[0].replace("qemu-aarch64 version ", "")


def python_env(root: Path | None = None) -> dict[str, str]:
    root = root or emulation_dir()
    env = {"PYTHONPATH": str(root / "site-packages"), "PYTHONNOUSERSITE": "1", "PYTHONDONTWRITEBYTECODE": "1",
           "PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C"}
    if (root / EXECUTORCH_STAMP).is_file():  # where the .pte runner (runtimes/pte_runner_arm64.py) finds the shim
        env["MNV2DEPLOY_PTE_SHIM"] = str(shim_path(root))
    return env
