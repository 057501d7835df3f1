"""The on-device runner: LiteRT's official benchmark_model for android_aarch64, from the user cache or --runner.

Nothing is downloaded at run time: offline, the error names the official URL and the cache path to put it at.
``android_bench/benchmark_model.py`` is the stand-in the emulated tier pushes (an aarch64 Python script that
prints the same output); it is never used for a real phone unless given explicitly with --runner.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from ..errors import BadInputError, MissingToolError
from ..weights import cache_dir

RUNNER_NAME = "android_aarch64_benchmark_model"
OFFICIAL_URL = ("https://storage.googleapis.com/tensorflow-nightly-public/prod/tensorflow/release/lite/tools/"
                "nightly/latest/android_aarch64_benchmark_model")


@dataclass(frozen=True)
class Runner:
    """What to push and how to start it: ``command`` is the device-side argv prefix before the flags."""
    local: Path
    remote_name: str
    interpreter: str | None = None  # e.g. "python3" for the stand-in script; None for a native binary

    def command(self, remote_dir: str) -> str:
        path = f"{remote_dir}/{self.remote_name}"
        return f"{self.interpreter} {path}" if self.interpreter else path


def cached_runner_path() -> Path:
    return cache_dir() / "android" / RUNNER_NAME


def resolve_runner(runner: str | os.PathLike | None = None) -> Runner:
    if runner is not None:
        path = Path(runner)
        if not path.is_file():
            raise BadInputError(f"runner {path} does not exist", "pass the path of benchmark_model for android_aarch64")
        if path.suffix == ".py":  # the aarch64 Python stand-in (emulated tier, or a phone with Termux Python)
            return Runner(path, path.name, interpreter=os.environ.get("MNV2DEPLOY_ANDROID_PYTHON", "python3"))
        return Runner(path, "benchmark_model")
    cached = cached_runner_path()
    if cached.is_file():
        return Runner(cached, "benchmark_model")
    raise MissingToolError(
        f"no benchmark_model for android_aarch64 in {cached}",
        f"download {OFFICIAL_URL} to {cached} (or pass --runner PATH); nothing is fetched at run time")
