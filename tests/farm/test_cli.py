"""The commands of the issue's 'What it must show', usage errors, `farm devices`, and the iOS path."""

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from .conftest import DUMMY_KEY, DUMMY_SECRET
from .script import FarmScript, GALAXY, PIXEL, customer_artifact, device

pytestmark = pytest.mark.farm
REPO = Path(__file__).resolve().parents[2]
PHONES = ["--device", "Google Pixel 8", "--device", "Samsung Galaxy S24"]


def cli(args, aws_env) -> subprocess.CompletedProcess:
    """The installed CLI in a child process, with no AWS credentials anywhere."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update({"AWS_CONFIG_FILE": str(aws_env / "none"), "AWS_SHARED_CREDENTIALS_FILE": str(aws_env / "none"),
                "AWS_EC2_METADATA_DISABLED": "true", "HOME": str(aws_env), "PYTHONPATH": str(REPO),
                "MNV2DEPLOY_CACHE": str(aws_env / "cache")})
    return subprocess.run([sys.executable, "-m", "mnv2deploy", *args], env=env, capture_output=True, text=True,
                          timeout=300)


def test_dry_run_json_is_the_plan_with_both_phones_without_credentials(tflite_artifact, aws_env):
    done = cli(["bench", str(tflite_artifact), "--farm", "aws", *PHONES, "--dry-run", "--json"], aws_env)
    assert done.returncode == 0, done.stderr
    plan = json.loads(done.stdout)
    assert set(plan) == {"farm", "devices", "package_files", "test_spec", "api_calls", "estimated_device_minutes"}
    assert plan["farm"] == "aws" and [d["name"] for d in plan["devices"]] == ["Google Pixel 8", "Samsung Galaxy S24"]
    assert "benchmark_model" in plan["test_spec"] and "run_benchmark.sh model.tflite 1 100" in plan["test_spec"]
    ops = [c["operation"] for c in plan["api_calls"]]
    assert ops.index("CreateUpload") < ops.index("ScheduleRun") < ops.index("GetRun") and "PUT" in ops
    assert plan["estimated_device_minutes"] > 0


def test_without_dry_run_and_without_credentials_exit_4_one_line(tflite_artifact, aws_env):
    done = cli(["bench", str(tflite_artifact), "--farm", "aws", *PHONES], aws_env)
    assert done.returncode == 4 and done.stdout == ""
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith("error: no AWS credentials found") and "AWS_ACCESS_KEY_ID" in line and "aws configure" in line


@pytest.mark.parametrize("args, message", [
    (["--project", "p"], "--project only apply with --farm"),
    (["--dry-run"], "--dry-run only apply with --farm"),
    (["--device", "a", "--device", "b"], "--device is repeatable only with --farm"),
    (["--farm", "aws"], "--farm needs --device NAME"),
    (["--farm", "aws", "--device", "x", "--cores", "4-7"], "--cores do not apply to farm runs"),
    (["--farm", "aws", "--device", "x", "--timeout-minutes", "2", "--dry-run"], "--timeout-minutes 2 is outside"),
    (["--farm", "gcp", "--device", "x", "--dry-run"], "unknown farm 'gcp'"),
    (["--farm", "aws", "--device", "x", "--out", "r.json", "--dry-run"], "--out for farm runs is a folder"),
])
def test_bad_farm_options_are_one_line_exit_2(tflite_artifact, harness, args, message):
    code, _, err = harness.main(["bench", str(tflite_artifact), *args])
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err
    assert harness.calls == []


def test_farm_devices_pages_filters_and_prints_names_bench_takes(harness):
    old = device("Google Pixel 8", "C2A8A8A3271A67139420F197D4D9A18E", os="13", availability="BUSY")
    harness.stubber.add_response("list_devices", {"devices": [PIXEL, old], "nextToken": "RW5DdDJkMWYwZjM2MzM2VHVp"},
                                 {"filters": [{"attribute": "PLATFORM", "operator": "EQUALS", "values": ["ANDROID"]}]})
    harness.stubber.add_response("list_devices", {"devices": [GALAXY]},
                                 {"filters": [{"attribute": "PLATFORM", "operator": "EQUALS", "values": ["ANDROID"]}],
                                  "nextToken": "RW5DdDJkMWYwZjM2MzM2VHVp"})
    code, out, err = harness.main(["farm", "devices", "--platform", "android", "--json"])
    assert code == 0, err
    rows = json.loads(out)["devices"]
    assert [(r["name"], r["os"], r["availability"]) for r in rows] == [
        ("Google Pixel 8", "13", "BUSY"), ("Google Pixel 8", "14", "AVAILABLE"), ("Samsung Galaxy S24", "14", "AVAILABLE")]
    assert rows[1]["cpu"] == "arm64-v8a 2.90 GHz" and rows[1]["form_factor"] == "PHONE"
    assert DUMMY_KEY not in out + err and DUMMY_SECRET not in out + err
    harness.stubber.assert_no_pending_responses()


def test_farm_devices_without_credentials_is_exit_4(aws_env):
    done = cli(["farm", "devices"], aws_env)
    assert done.returncode == 4 and "no AWS credentials" in done.stderr and done.stderr.count("\n") == 1


# ---- iOS: the .xctestrun zip built on a Mac, run with xcodebuild on the farm, read with the xcresult parser ----

def xctestrun_zip(mlpackage: Path, path: Path) -> Path:
    """The shape `xcodebuild build-for-testing` leaves (the .xctestrun beside Debug-iphoneos/), model staged."""
    runner = "Debug-iphoneos/MNV2BenchTests-Runner.app"
    model_at = f"{runner}/PlugIns/MNV2BenchTests.xctest/MNV2Bench_MNV2BenchTests.bundle/Model.mlpackage"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("MNV2Bench_iphoneos18.0-arm64.xctestrun", "<?xml version=\"1.0\"?><plist version=\"1.0\"/>")
        z.writestr(f"{runner}/Info.plist", "<plist/>")
        z.writestr(f"{runner}/MNV2BenchTests-Runner", b"\xcf\xfa\xed\xfe (arm64 Mach-O stand-in)")
        for f in sorted(p for p in mlpackage.rglob("*") if p.is_file()):
            z.write(f, f"{model_at}/{f.relative_to(mlpackage).as_posix()}")
    return path


def test_ios_run_parses_the_returned_metrics_with_the_xcresult_parser(harness, export_artifact):
    mlpackage = export_artifact("coreml").artifact
    zip_path = xctestrun_zip(Path(mlpackage), harness.tmp / "MNV2Bench.xctestrun.zip")
    iphone = device("Apple iPhone 15", "D3B9B9B4382B78240531F208E5E0B29F", os="18.1", platform="IOS",
                    manufacturer="Apple")
    doc = json.loads((Path(__file__).parents[1] / "ios" / "fixtures" / "metrics_two_devices.json").read_text())
    for test in doc:  # one phone per farm job: keep one device's runs of the recorded document
        test["testRuns"] = [r for r in test["testRuns"] if r["device"]["deviceName"] == "Jo's iPhone"]
    metrics = json.dumps(doc)
    script = FarmScript(harness.stubber, harness.http).devices(iphone, platform="IOS").project().pool(iphone)
    script.upload("MNV2BenchRunner.ipa", "IOS_APP").upload("mnv2deploy-test-package.zip", "APPIUM_NODE_TEST_PACKAGE")
    script.upload("mnv2deploy-test-spec.yml", "APPIUM_NODE_TEST_SPEC").schedule(total=1)
    script.get_run("COMPLETED", "PASSED", done=1, total=1).jobs((iphone, "PASSED", None))
    script.artifacts(0, customer_artifact({"metrics.json": metrics}))
    code, out, err = harness.main(["bench", str(mlpackage), "--farm", "aws", "--device", "Apple iPhone 15",
                                   "--xctestrun", str(zip_path), "--json"])
    assert code == 0, err
    (r,) = json.loads(out)["results"]  # the spec runs compute units "all"; the cpuOnly test is not ours
    assert r["device"] == "Apple iPhone 15" and r["device_info"]["kind"] == "farm" and r["delegate"] == "all"
    predict = next(t for t in doc if t["testIdentifier"].startswith("MNV2BenchTests/testPredict_all"))
    clock = next(m for m in predict["testRuns"][0]["metrics"] if m["displayName"] == "Clock Monotonic Time")
    assert r["runtime"] == "coreml" and r["latency_ms"]["count"] == len(clock["measurements"]) and r["init_ms"] > 0
    assert r["device_info"]["details"]["rooted"] is False and r["device_info"]["details"]["osVersion"] == "18.1"
    ipa, package_put, spec = harness.http.puts
    with zipfile.ZipFile(__import__("io").BytesIO(ipa["body"])) as z:
        assert "Payload/MNV2BenchTests-Runner.app/Info.plist" in z.namelist()
    assert package_put["body"] == zip_path.read_bytes()
    assert b"xcodebuild test-without-building" in spec["body"]
    harness.stubber.assert_no_pending_responses()


def test_ios_zip_with_another_model_is_refused_before_any_call(harness, export_artifact, tmp_path):
    mlpackage = Path(export_artifact("coreml").artifact)
    other = tmp_path / "Other.mlpackage"
    import shutil

    shutil.copytree(mlpackage, other)
    next(p for p in sorted(other.rglob("*")) if p.is_file()).write_bytes(b"changed")
    zip_path = xctestrun_zip(other, tmp_path / "x.zip")
    harness.stubber.add_response("list_devices", {"devices": []})  # never reached
    code, _, err = harness.main(["bench", str(mlpackage), "--farm", "aws", "--device", "Apple iPhone 15",
                                 "--xctestrun", str(zip_path)])
    assert code == 2 and "is not this artifact (sha256 differs)" in err and harness.calls == []


def test_ios_without_xctestrun_says_how_to_build_it(harness, export_artifact):
    code, _, err = harness.main(["bench", str(export_artifact("coreml").artifact), "--farm", "aws", "--device",
                                 "Apple iPhone 15", "--dry-run"])
    assert code == 2 and "needs --xctestrun ZIP" in err and "docs/farm.md" in err
