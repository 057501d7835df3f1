"""iOS bench: command construction, staging, the Linux refusal, and the macOS flow with a fake process runner."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from mnv2deploy.contract import InputContract
from mnv2deploy.errors import DeviceError, PlatformError, UsageError
from mnv2deploy.ios import bench
from mnv2deploy.manifest import Manifest, TensorSpec

FIXTURES = Path(__file__).parent / "fixtures"
UDID = "00008130-001234560E12001C"


def manifest(fmt: str = "mlpackage") -> Manifest:
    contract = InputContract(32, 32, (0.5, 0.5, 0.5), (0.25, 0.25, 0.25), ("a", "b"))
    return Manifest(target="coreml-int8", format=fmt, precision="int8", artifact="m.int8.mlpackage",
                    artifact_sha256="0" * 64, inputs=(TensorSpec("image", (1, 32, 32, 3), "uint8", "NHWC"),),
                    outputs=(TensorSpec("logits", (1, 2), "float32", "NC"),), preprocessing=contract,
                    model={"name": "mobilenet_v2"}, weights={"id": "default"})


@pytest.fixture
def artifact(tmp_path: Path) -> Path:
    pkg = tmp_path / "m.int8.mlpackage"
    (pkg / "Data").mkdir(parents=True)
    (pkg / "Manifest.json").write_text("{}")
    return pkg


def test_xcodebuild_command():
    cmd = bench.xcodebuild_command(UDID, Path("/r/R.xcresult"), "cpuOnly")
    assert cmd[:2] == ["xcodebuild", "test"]
    assert cmd[cmd.index("-scheme") + 1] == "MNV2Bench"
    assert cmd[cmd.index("-destination") + 1] == f"platform=iOS,id={UDID}"
    assert cmd[cmd.index("-resultBundlePath") + 1] == "/r/R.xcresult"
    assert [c for c in cmd if c.startswith("-only-testing:")] == [
        "-only-testing:MNV2BenchTests/MNV2BenchTests/testLoad_cpuOnly",
        "-only-testing:MNV2BenchTests/MNV2BenchTests/testPredict_cpuOnly"]
    assert "-allowProvisioningUpdates" not in cmd
    signed = bench.xcodebuild_command(UDID, Path("R.xcresult"), "all", team="ABCDE12345", derived_data=Path("/d"))
    assert signed[-2:] == ["-allowProvisioningUpdates", "DEVELOPMENT_TEAM=ABCDE12345"]
    assert signed[signed.index("-derivedDataPath") + 1] == "/d"


def test_raw_output_dir(tmp_path):
    art = tmp_path / "m.mlpackage"
    assert bench.raw_output_dir(art, None) == tmp_path / "ios_bench_results"
    assert bench.raw_output_dir(art, tmp_path / "results") == tmp_path / "results"
    assert bench.raw_output_dir(art, tmp_path / "bench.json") == tmp_path


def test_metrics_command():
    assert bench.metrics_command(Path("R.xcresult")) == [
        "xcrun", "xcresulttool", "get", "test-results", "metrics", "--path", "R.xcresult"]


def test_bench_config_matches_the_swift_side():
    cfg = bench.bench_config("cpuAndGPU", 30, 3)
    assert cfg == {"model": "Model.mlpackage", "computeUnits": ["cpuAndGPU"], "runs": 30, "warmup": 3,
                   "resultName": "mnv2bench_result.json"}
    swift = (Path(bench.__file__).parents[2] / "ios_bench/Sources/MNV2Bench/BenchConfig.swift").read_text()
    for key in cfg:
        assert f"public var {key}:" in swift
    with pytest.raises(UsageError, match="'ane' not supported") as e:
        bench.bench_config("ane", 30, 3)
    assert e.value.hint == "choose one of cpuOnly, cpuAndGPU, all"
    with pytest.raises(UsageError):
        bench.bench_config("all", 0, 3)


def test_stage_package_copies_model_and_config(tmp_path, artifact):
    staged = bench.stage_package(bench.find_package(), artifact, bench.bench_config("all", 5, 1), tmp_path / "w")
    resources = staged / "Tests/MNV2BenchTests/Resources"
    assert (staged / "Package.swift").is_file()
    assert (resources / "Model.mlpackage/Manifest.json").is_file()
    assert json.loads((resources / "bench_config.json").read_text())["runs"] == 5


@pytest.mark.skipif(sys.platform == "darwin", reason="checks the refusal on non-macOS hosts")
def test_linux_refuses_with_platform_error(artifact):
    with pytest.raises(PlatformError, match="need macOS") as e:
        bench.run_ios_bench(artifact, manifest(), device="iphone")
    assert e.value.exit_code == 4
    assert "\n" not in e.value.one_line()


class FakeXcode:
    """Plays devicectl, xcodebuild and xcresulttool; records the commands it was given."""

    def __init__(self, xcodebuild_rc: int = 0):
        self.calls: list[list[str]] = []
        self.xcodebuild_rc = xcodebuild_rc

    def __call__(self, cmd, cwd=None, capture_output=True, text=True, timeout=None):
        self.calls.append(list(cmd))
        if cmd[:3] == ["xcrun", "devicectl", "list"]:
            Path(cmd[cmd.index("--json-output") + 1]).write_text((FIXTURES / "devicectl_list.json").read_text())
            return subprocess.CompletedProcess(cmd, 0, "", "")
        if cmd[0] == "xcodebuild":
            assert (Path(cwd) / "Tests/MNV2BenchTests/Resources/Model.mlpackage").is_dir()
            return subprocess.CompletedProcess(cmd, self.xcodebuild_rc, "** TEST SUCCEEDED **", "" if self.xcodebuild_rc == 0
                                               else "error: Signing for \"MNV2BenchTests\" requires a development team.")
        if cmd[:3] == ["xcrun", "xcresulttool", "get"]:
            return subprocess.CompletedProcess(cmd, 0, (FIXTURES / "metrics_two_devices.json").read_text(), "")
        raise AssertionError(f"unexpected command {cmd}")


@pytest.fixture
def pretend_macos(monkeypatch):
    monkeypatch.setattr(bench.sys, "platform", "darwin")
    monkeypatch.setattr(bench.shutil, "which", lambda tool: f"/usr/bin/{tool}")


def test_macos_flow_with_fake_tools(pretend_macos, artifact, tmp_path):
    fake = FakeXcode()
    result = bench.run_ios_bench(artifact, manifest(), device="iphone", runs=10, warmup=2, out=tmp_path / "out",
                                 compute_units="all", runner=fake)
    assert [c[0] if c[0] != "xcrun" else c[1] for c in fake.calls] == ["devicectl", "xcodebuild", "xcresulttool"]
    assert f"platform=iOS,id={UDID}" in fake.calls[1]
    assert result.device.name == UDID and result.delegate == "all" and result.warmup == 2
    assert result.target == "coreml-int8" and result.raw["command"] == fake.calls[1]
    assert (tmp_path / "out" / f"m.int8.all.{UDID}.xcodebuild.log").read_text().startswith("** TEST SUCCEEDED")


def test_macos_flow_reports_xcodebuild_failure(pretend_macos, artifact, tmp_path):
    with pytest.raises(DeviceError, match="development team") as e:
        bench.run_ios_bench(artifact, manifest(), out=tmp_path, runner=FakeXcode(xcodebuild_rc=65))
    assert "MNV2_IOS_TEAM" in e.value.hint


def test_non_mlpackage_is_a_usage_error(pretend_macos, artifact):
    with pytest.raises(UsageError, match="iOS benchmarks run .mlpackage"):
        bench.run_ios_bench(artifact, manifest("tflite"), runner=FakeXcode())
