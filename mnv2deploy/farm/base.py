"""The farm interface: hosted phones behind an API. AWS Device Farm today; Google's DDP Device Run can plug in as
another module behind the same protocol (``FARMS``) once it leaves Preview."""

from __future__ import annotations

import importlib
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, ClassVar, Protocol

from ..bench.result import BenchResult
from ..errors import Mnv2Error, MissingToolError, UsageError
from ..manifest import Manifest

FARMS = {"aws": ("aws", "AwsDeviceFarm")}  # name -> (module in this package, class); imported when used
PLATFORMS = {"tflite": "ANDROID", "mlpackage": "IOS"}
SETUP_MINUTES = 2.0  # install, pre_test and teardown per phone: an allowance, not a measurement
SECONDS_PER_RUN = 0.1  # a generous phone CPU time per MobileNetV2 inference, for the estimate only
PRICE_PER_DEVICE_MINUTE = 0.17  # USD, AWS's metered list price when this was written


class FarmError(MissingToolError):
    """The farm refused or failed something (exit 4: the device, not the input)."""
    default_hint = "see the farm's message above; docs/farm.md lists what each failure means"


class FarmInterrupted(Mnv2Error):
    """Ctrl-C during a scheduled run: the stop was requested before exiting."""
    exit_code = 130
    default_hint = "the farm bills until its jobs reach STOPPED; check the run in the console if in doubt"


@dataclass(frozen=True)
class FarmDevice:
    name: str
    platform: str  # ANDROID or IOS
    os: str
    arn: str
    form_factor: str | None = None
    manufacturer: str | None = None
    model: str | None = None
    cpu: str | None = None  # "arm64-v8a 2.84 GHz"
    availability: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class FarmJob:
    """One bench request for a farm: an artifact on the named phones."""
    artifact: Path
    manifest: Manifest
    devices: tuple[str, ...]
    threads: int = 1
    runs: int = 100
    warmup: int = 10
    project: str | None = None  # name or ARN; None: the default project name
    timeout_minutes: int = 30
    runner: Path | None = None
    app: Path | None = None
    xctestrun: Path | None = None
    out: Path | None = None
    repeats: int = 3
    cooldown_s: int = 60

    @property
    def platform(self) -> str:
        try:
            return PLATFORMS[self.manifest.format]
        except KeyError:
            raise UsageError(f"farm runs take .tflite (Android) or .mlpackage (iOS) artifacts, not "
                             f"{self.manifest.format}", "export with a tflite or coreml target") from None

    def validate(self) -> None:
        if not self.devices:
            raise UsageError("--farm needs at least one --device NAME", "`mnv2deploy farm devices` lists them")
        if len(set(self.devices)) != len(self.devices):
            raise UsageError("the same --device is named twice", "name each phone once")
        if not 5 <= self.timeout_minutes <= 150:  # Device Farm's job timeout range for metered runs
            raise UsageError(f"--timeout-minutes {self.timeout_minutes} is outside 5..150",
                             "Device Farm accepts job timeouts of 5 to 150 minutes")
        if self.runs < 1 or self.warmup < 1 or self.threads < 1:
            raise UsageError(f"farm runs need runs, warmup and threads >= 1 (got {self.runs}, {self.warmup}, "
                             f"{self.threads})")
        if self.platform == "IOS" and self.xctestrun is None:
            raise UsageError("an .mlpackage on the farm needs --xctestrun ZIP (ios_bench/ built on a Mac)",
                             "see docs/farm.md, 'iOS', for the three commands that build it")
        if self.platform == "ANDROID" and self.xctestrun is not None:
            raise UsageError("--xctestrun only applies to .mlpackage artifacts", "drop --xctestrun")

    def minutes_per_phone(self) -> float:
        if self.platform == "IOS":
            return SETUP_MINUTES + 2 * (self.runs + self.warmup) * SECONDS_PER_RUN / 60
        run = self.repeats * (self.cooldown_s + (self.runs + self.warmup) * SECONDS_PER_RUN)
        return SETUP_MINUTES + run / 60

    def estimated_device_minutes(self) -> float:
        per = min(self.minutes_per_phone(), float(self.timeout_minutes))
        return math.ceil(per * len(self.devices) * 10) / 10


@dataclass(frozen=True)
class FarmPlan:
    """What a run would do; ``--dry-run --json`` prints exactly these keys."""
    farm: str
    devices: list[dict[str, Any]]
    package_files: list[dict[str, Any]]
    test_spec: str
    api_calls: list[dict[str, Any]]
    estimated_device_minutes: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class FarmRun:
    farm: str
    run_arn: str
    results: list[BenchResult]
    device_minutes: float | None
    raw_dir: Path
    failures: list[str] = field(default_factory=list)


class Farm(Protocol):
    name: ClassVar[str]

    def list_devices(self, platform: str | None = None) -> list[FarmDevice]: ...

    def plan(self, job: FarmJob) -> FarmPlan: ...

    def run(self, job: FarmJob, progress: Callable[[str], None]) -> FarmRun: ...


def get_farm(name: str, **kwargs: Any) -> Farm:
    if name not in FARMS:
        raise UsageError(f"unknown farm {name!r}", f"choose one of {', '.join(sorted(FARMS))}")
    module, cls = FARMS[name]
    return getattr(importlib.import_module(f"{__package__}.{module}"), cls)(**kwargs)
