"""`mnv2deploy bench X.mlpackage --device iphone|UDID`: the ios_bench XCTest harness on a phone, via Xcode.

macOS only: find the device (devicectl), stage a copy of ios_bench/ with the model and bench_config.json in its
test resources, run ``xcodebuild test -destination 'platform=iOS,id=UDID' -resultBundlePath ...``, then read
``xcrun xcresulttool get test-results metrics`` into the common BenchResult. Command lines are built by pure
functions (tested on Linux); nothing here has been run on a device from this repository's CI.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, Callable

from ..bench.result import BenchResult
from ..errors import DeviceError, MissingToolError, PlatformError, UsageError
from ..fileio import ensure_writable_dir
from ..manifest import Manifest
from .devices import AppleDevice, list_devices_command, parse_devices, pick_device
from .xcresult import parse_xcresult_metrics

SCHEME = "MNV2Bench"
TEST_TARGET = "MNV2BenchTests"
COMPUTE_UNITS = ("cpuOnly", "cpuAndGPU", "all")
RESOURCES = Path("Tests") / TEST_TARGET / "Resources"
MODEL_NAME = "Model.mlpackage"
PACKAGE_ENV = "MNV2_IOS_BENCH_DIR"  # where ios_bench/ is, when not in this checkout
TEAM_ENV = "MNV2_IOS_TEAM"  # Apple development team id for signing the test bundle

Runner = Callable[..., subprocess.CompletedProcess]


def xcodebuild_command(udid: str, result_bundle: Path, compute_units: str, team: str | None = None,
                       derived_data: Path | None = None) -> list[str]:
    """The test run on one device, limited to the tests of the requested compute units."""
    cmd = ["xcodebuild", "test", "-scheme", SCHEME, "-destination", f"platform=iOS,id={udid}",
           "-resultBundlePath", str(result_bundle)]
    if derived_data is not None:
        cmd += ["-derivedDataPath", str(derived_data)]
    cmd += [f"-only-testing:{TEST_TARGET}/{TEST_TARGET}/test{phase}_{compute_units}" for phase in ("Load", "Predict")]
    if team:
        cmd += ["-allowProvisioningUpdates", f"DEVELOPMENT_TEAM={team}"]
    return cmd


def metrics_command(result_bundle: Path) -> list[str]:
    return ["xcrun", "xcresulttool", "get", "test-results", "metrics", "--path", str(result_bundle)]


def bench_config(compute_units: str, runs: int, warmup: int) -> dict[str, Any]:
    """What the Swift side reads from its bundle (ios_bench/Sources/MNV2Bench/BenchConfig.swift)."""
    if compute_units not in COMPUTE_UNITS:
        raise UsageError(f"compute units {compute_units!r} not supported", f"choose one of {', '.join(COMPUTE_UNITS)}")
    if runs < 1 or warmup < 0:
        raise UsageError(f"runs must be >= 1 and warmup >= 0 (got {runs}, {warmup})")
    return {"model": MODEL_NAME, "computeUnits": [compute_units], "runs": runs, "warmup": warmup,
            "resultName": "mnv2bench_result.json"}


def stage_package(source: Path, artifact: Path, config: dict[str, Any], into: Path) -> Path:
    """A copy of ios_bench/ with the model and config in the test resources (the checkout stays untouched)."""
    package = into / "ios_bench"
    shutil.copytree(source, package, ignore=shutil.ignore_patterns(".build", "*.xcresult", ".swiftpm"))
    resources = package / RESOURCES
    resources.mkdir(parents=True, exist_ok=True)
    shutil.copytree(artifact, resources / MODEL_NAME)
    (resources / "bench_config.json").write_text(json.dumps(config, indent=2) + "\n")
    return package


def find_package() -> Path:
    env = os.environ.get(PACKAGE_ENV)
    candidates = [Path(env)] if env else [Path(__file__).resolve().parents[2] / "ios_bench"]
    for c in candidates:
        if (c / "Package.swift").is_file():
            return c
    raise MissingToolError(f"the ios_bench Swift package was not found ({candidates[0]})",
                           f"run from a checkout of mnv2deploy or set {PACKAGE_ENV}")


def require_macos() -> None:
    if sys.platform != "darwin":
        raise PlatformError(f"iOS benchmarks need macOS with Xcode; this is {sys.platform}",
                            "run `mnv2deploy bench X.mlpackage --device iphone` on a Mac with the phone attached")
    for tool in ("xcrun", "xcodebuild"):
        if shutil.which(tool) is None:
            raise MissingToolError(f"{tool} not found", "install Xcode 16+ and run `xcode-select --install`")


def raw_output_dir(artifact: Path, out: Path | None) -> Path:
    """Where the result bundle and xcodebuild log go: --out when it is a folder, beside --out when it names a file
    (the bench JSON), else ios_bench_results/ beside the artifact."""
    if out is None:
        return Path(artifact).parent / "ios_bench_results"
    out = Path(out)
    return out if out.is_dir() or not out.suffix else out.parent


def _run(runner: Runner, cmd: list[str], timeout: float, cwd: Path | None = None) -> subprocess.CompletedProcess:
    try:
        return runner(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise DeviceError(f"`{' '.join(cmd[:3])}` did not finish in {timeout:.0f} s",
                          "check the phone is unlocked and trusts this Mac") from None


def list_devices(runner: Runner, workdir: Path) -> list[AppleDevice]:
    path = workdir / "devices.json"
    done = _run(runner, list_devices_command(path), timeout=60)
    if done.returncode != 0 or not path.is_file():
        raise DeviceError(f"devicectl failed ({done.returncode}): {_last_line(done.stderr)}",
                          "Xcode 15+ provides `xcrun devicectl`")
    return parse_devices(path.read_text())


def _last_line(text: str | None) -> str:
    lines = [ln.strip() for ln in (text or "").splitlines() if ln.strip()]
    return lines[-1][:200] if lines else "no output"


def run_ios_bench(artifact: Path, manifest: Manifest, device: str = "iphone", runs: int = 50, warmup: int = 5,
                  out: Path | None = None, compute_units: str = "all", timeout: float = 3600,
                  runner: Runner = subprocess.run) -> BenchResult:
    """Benchmark an .mlpackage on a phone with XCTest; one BenchResult for ``compute_units``."""
    require_macos()
    artifact = Path(artifact)
    if manifest.format != "mlpackage":
        raise UsageError(f"{artifact.name} is {manifest.format}; iOS benchmarks run .mlpackage (Core ML) files",
                         "export with --target coreml or coreml-int8")
    config = bench_config(compute_units, runs, warmup)
    source = find_package()
    out_dir = raw_output_dir(artifact, out)
    ensure_writable_dir(out_dir)
    with tempfile.TemporaryDirectory(prefix="mnv2bench-") as tmp:
        work = Path(tmp)
        phone = pick_device(list_devices(runner, work), device)
        package = stage_package(source, artifact, config, work)
        bundle = out_dir / f"{artifact.stem}.{compute_units}.{phone.udid}.xcresult"
        if bundle.exists():
            shutil.rmtree(bundle)  # xcodebuild refuses to overwrite a result bundle
        cmd = xcodebuild_command(phone.udid or phone.identifier, bundle, compute_units, os.environ.get(TEAM_ENV),
                                 work / "DerivedData")
        done = _run(runner, cmd, timeout, cwd=package)
        (out_dir / f"{bundle.stem}.xcodebuild.log").write_text((done.stdout or "") + (done.stderr or ""))
        if done.returncode != 0:
            raise DeviceError(f"xcodebuild test failed ({done.returncode}): {_last_line(done.stderr or done.stdout)}",
                              f"see {bundle.stem}.xcodebuild.log in {out_dir}; signing needs {TEAM_ENV}=TEAMID")
        metrics = _run(runner, metrics_command(bundle), timeout=300)
        if metrics.returncode != 0:
            raise MissingToolError(f"xcresulttool failed: {_last_line(metrics.stderr)}", "Xcode 16+ is needed")
    results = parse_xcresult_metrics(metrics.stdout, artifact.name, manifest.target, manifest.precision, warmup,
                                     raw={"command": cmd, "result_bundle": str(bundle)})
    mine = [r for r in results if r.delegate == compute_units]
    if not mine:
        raise DeviceError(f"the result bundle has no {compute_units} measurements", f"see {bundle}")
    return mine[0]
