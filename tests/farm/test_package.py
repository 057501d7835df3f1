"""The test package and test spec: golden files, the structure Device Farm documents, deterministic zips."""

import gzip
import io
import json
import tarfile
import zipfile
from pathlib import Path

import pytest
import yaml

from mnv2deploy.farm import package

STANDIN = Path(__file__).resolve().parents[2] / "android_bench" / "benchmark_model.py"  # the aarch64 stand-in runner


pytestmark = pytest.mark.farm
GOLDEN = Path(__file__).parent / "golden"


@pytest.mark.parametrize("name, spec", [("android-test-spec.yml", lambda: package.android_spec(1, 100, 10)),
                                        ("ios-test-spec.yml", package.ios_spec)])
def test_test_spec_matches_its_golden_file(name, spec):
    assert spec() == (GOLDEN / name).read_text(), f"regenerate {name} only for an intended change"


def test_android_spec_has_the_structure_of_the_farm_and_executorch_specs():
    spec = yaml.safe_load(package.android_spec(2, 50, 5))
    assert spec["version"] == 0.1 and spec["android_test_host"] == "amazon_linux_2"
    assert list(spec["phases"]) == ["install", "pre_test", "test", "post_test"]
    assert spec["artifacts"] == ["$DEVICEFARM_LOG_DIR"]
    every = [c for phase in spec["phases"].values() for c in phase["commands"]]
    assert all(isinstance(c, str) for c in every)  # each reads back as one shell line
    adb = [c for c in every if c.startswith("adb ") and c != "adb version"]
    assert adb and all(c.startswith("adb -s $DEVICEFARM_DEVICE_UDID ") for c in adb)
    (test,) = spec["phases"]["test"]["commands"]
    assert "sh ./run_benchmark.sh model.tflite 2 50 $DEVICEFARM_DEVICE_UDID" in test
    assert "OUT_DIR=$DEVICEFARM_LOG_DIR" in test and "WARMUP=5" in test and "COOLDOWN=60" in test


def test_a_command_yaml_would_misread_is_quoted():
    spec = yaml.safe_load(package._spec(None, ["echo a: b", "- dash", "x # not a comment"], [], [], []))
    assert spec["phases"]["install"]["commands"] == ["echo a: b", "- dash", "x # not a comment"]


def test_package_zip_is_deterministic_and_holds_model_runner_scripts_and_npm_stub(tflite_artifact, tmp_path):
    files = package.android_files(tflite_artifact, STANDIN)
    a = package.write_zip(files, tmp_path / "a.zip").read_bytes()
    b = package.write_zip(files, tmp_path / "b.zip").read_bytes()
    assert a == b
    with zipfile.ZipFile(io.BytesIO(a)) as z:
        assert sorted(z.namelist()) == sorted(["model.tflite", "benchmark_model", "run_benchmark.sh",
                                               "big_cores_mask.sh", package.NPM_STUB])
        assert z.read("model.tflite") == Path(tflite_artifact).read_bytes()
        assert z.read("run_benchmark.sh") == (package.ANDROID_BENCH / "run_benchmark.sh").read_bytes()
        assert (z.getinfo("benchmark_model").external_attr >> 16) & 0o111
        stub = z.read(package.NPM_STUB)
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(stub))) as tar:
        meta = json.load(tar.extractfile("package/package.json"))
    assert meta["name"] == "mnv2deploy-farm" and meta["version"] == "0.1.0"


def test_plan_lists_missing_runner_and_apk_with_where_they_belong(tflite_artifact, aws_env):
    from mnv2deploy.farm.aws import AwsDeviceFarm
    from mnv2deploy.farm.base import FarmJob
    from mnv2deploy.manifest import read_manifest

    plan = AwsDeviceFarm().plan(FarmJob(tflite_artifact, read_manifest(tflite_artifact), ("Google Pixel 8",)))
    by_role = {f["role"]: f for f in plan.package_files}
    assert by_role["runner"]["present"] is False and "android_aarch64_benchmark_model" in by_role["runner"]["path"]
    assert by_role["app"]["present"] is False and by_role["app"]["path"].endswith(package.APK_NAME)
    assert by_role["model"]["sha256"] == read_manifest(tflite_artifact).artifact_sha256
