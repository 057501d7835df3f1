"""The on-device runner: LiteRT's benchmark_model for android_aarch64 (.tflite), pinned to the LiteRT release parity
uses, or ExecuTorch's executor_runner built by the user with the NDK (.pte; docs/android.md), from the user cache or
--runner.

Pinned, not a moving nightly: the cache path names the release (``android/litert-2.3.0/``), the result names the
release and the binary's sha256, so a phone number can be traced to the kernels that made it. Nothing is downloaded
at run time: without it, the error says how to build that release's binary and where to put it.
``android_bench/benchmark_model.py`` and ``mnv2deploy/runtimes/pte_runner_arm64.py`` are the stand-ins the emulated
tier pushes (aarch64 Python scripts that print the same output); never used for a real phone unless given with
--runner.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from ..errors import BadInputError, MissingToolError
from ..weights import cache_dir

RUNNER_NAME = "android_aarch64_benchmark_model"
LITERT_RELEASE = "2.3.0"  # the ai-edge-litert release parity and the emulated tier run (pyproject.toml [tflite])
SOURCE = "https://github.com/google-ai-edge/LiteRT"
BUILD = ("bazel build -c opt --config=android_arm64 //tflite/tools/benchmark:benchmark_model")
PTE_RUNNER_NAME = "executor_runner"


@dataclass(frozen=True)
class Runner:
    """What to push and how to start it: ``command`` is the device-side argv prefix before the flags."""
    local: Path
    remote_name: str
    interpreter: str | None = None  # e.g. "python3" for the stand-in script; None for a native binary
    release: str | None = None  # the LiteRT release it is pinned to; None: given by --runner, not checked

    def describe(self) -> dict[str, str | None]:
        """What the result names: the path, the binary's sha256 and the LiteRT release."""
        from ..fileio import sha256_file

        return {"path": str(self.local), "sha256": sha256_file(self.local), "litert_release": self.release}

    def command(self, remote_dir: str) -> str:
        path = f"{remote_dir}/{self.remote_name}"
        return f"{self.interpreter} {path}" if self.interpreter else path


def run_count_flags(runs: int, warmup: int, max_secs: float) -> str:
    """benchmark_model's run-count flags so it runs exactly ``warmup`` + ``runs`` times: by default it repeats until
    --warmup_min_secs 0.5 / --min_secs 1.0 have passed (hundreds of runs of a fast model for --runs 50) and stops
    at --max_secs 150 (a slow model short of its runs)."""
    return (f"--warmup_runs={warmup} --num_runs={runs} --warmup_min_secs=0 --min_secs=0 "
            f"--max_secs={max(1, int(max_secs))}")


def cached_runner_path(fmt: str = "tflite") -> Path:
    if fmt == "pte":
        return cache_dir() / "android" / PTE_RUNNER_NAME
    return cache_dir() / "android" / f"litert-{LITERT_RELEASE}" / RUNNER_NAME


def resolve_runner(runner: str | os.PathLike | None = None, fmt: str = "tflite") -> Runner:
    """The runner for ``fmt`` artifacts ("tflite": benchmark_model, "pte": executor_runner)."""
    remote = PTE_RUNNER_NAME if fmt == "pte" else "benchmark_model"
    what = ("ExecuTorch's executor_runner built for android arm64-v8a" if fmt == "pte"
            else "benchmark_model for android_aarch64")
    if runner is not None:
        path = Path(runner)
        if not path.is_file():
            raise BadInputError(f"runner {path} does not exist", f"pass the path of {what}")
        if path.suffix == ".py":  # the aarch64 Python stand-in (emulated tier, or a phone with Termux Python)
            return Runner(path, path.name, interpreter=os.environ.get("MNV2DEPLOY_ANDROID_PYTHON", "python3"))
        return Runner(path, remote)
    cached = cached_runner_path(fmt)
    if fmt == "pte":
        if cached.is_file():
            return Runner(cached, remote)
        raise MissingToolError(f"no {what} in {cached}",
                               f"build it with the Android NDK (docs/android.md) and pass --runner PATH or copy it "
                               f"to {cached}; nothing is fetched at run time")
    if cached.is_file():
        return Runner(cached, remote, release=LITERT_RELEASE)
    raise MissingToolError(
        f"no LiteRT {LITERT_RELEASE} {what} in {cached}",
        f"build it from {SOURCE} at the v{LITERT_RELEASE} release ({BUILD}) and copy it to {cached}, or pass "
        "--runner PATH; nothing is fetched at run time, and a nightly build is not the release parity checked")
