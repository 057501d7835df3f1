"""The test spec's commands run for real, as the farm's host would run them: the real adb client against the
loopback device of tests/android, whose shell runs the aarch64 stand-in runner under qemu. Its log folder is then
zipped as the farm's CUSTOMER_ARTIFACT and read back through the whole client flow."""

import json
import os
import subprocess
import zipfile
from pathlib import Path

import pytest
import yaml

from mnv2deploy.farm import package

from .script import PIXEL, FarmScript, customer_artifact, log_dir_files

STANDIN = Path(__file__).resolve().parents[2] / "android_bench" / "benchmark_model.py"  # the aarch64 stand-in runner

pytestmark = pytest.mark.farm


def run_spec(spec: str, env: dict, cwd) -> subprocess.CompletedProcess:
    """Every phase's commands in order, in one shell session, stopping at the first failure (as the farm does)."""
    phases = yaml.safe_load(spec)["phases"]
    commands = [c for name in ("install", "pre_test", "test", "post_test") for c in phases[name]["commands"] or []]
    return subprocess.run(["bash", "-ec", "\n".join(commands)], env=env, cwd=cwd, capture_output=True, text=True,
                          timeout=900)


def test_spec_commands_run_against_the_loopback_device_and_parse_back(make_device, tflite_artifact, tmp_path,
                                                                        harness):
    dev = make_device()
    for cpu in range(4):  # what a phone lets the shell user read: current frequency and governor
        freq = dev.root / f"sys/devices/system/cpu/cpu{cpu}/cpufreq"
        (freq / "scaling_cur_freq").write_text(f"{1500000 + cpu * 100000}\n")
        (freq / "scaling_governor").write_text("schedutil\n")
    (dev.root / "sys/class/thermal/thermal_zone0/type").write_text("cpu-big\n")
    pkg_dir, log_dir = tmp_path / "package", tmp_path / "logs"
    with zipfile.ZipFile(package.write_zip(package.android_files(tflite_artifact, STANDIN), tmp_path / "p.zip")) as z:
        z.extractall(pkg_dir)  # what $DEVICEFARM_TEST_PACKAGE_PATH holds on the farm's host
    spec = package.android_spec(threads=1, runs=2, warmup=1, repeats=2, cooldown_s=1, interpreter="python3")
    env = {**os.environ, "DEVICEFARM_DEVICE_UDID": dev.serial, "DEVICEFARM_LOG_DIR": str(log_dir),
           "DEVICEFARM_TEST_PACKAGE_PATH": str(pkg_dir)}
    done = run_spec(spec, env, tmp_path)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "cooling down 1s before run 2" in done.stderr
    files = log_dir_files(log_dir)
    assert {"device.txt", "pinning.txt", "state_before.txt", "state_after.txt", "benchmark_output.1.txt",
            "benchmark_output.2.txt"} <= set(files)
    assert files["device.txt"].decode().split() == ["Pixel", "8", "(qemu)", "14", "arm64-v8a"]
    assert files["pinning.txt"].decode().strip() == "pinning: taskset c"  # cpus 2 and 3, the big ones
    assert "c" in (dev.root / "taskset.log").read_text().split()
    before = files["state_before.txt"].decode()
    assert "thermal thermal_zone0 cpu-big 36500" in before and "cpufreq cpu3 scaling_cur_freq 1800000" in before
    for i in (1, 2):
        assert b"count=2 " in files[f"benchmark_output.{i}.txt"]
    assert not any((dev.root / "data/local/tmp").iterdir())  # the script removed what it pushed
    assert any("--graph=/data/local/tmp/mnv2deploy-manual/model.tflite" in c and "python3" in c
               for c in dev.commands)

    # the farm returns $DEVICEFARM_LOG_DIR as CUSTOMER_ARTIFACT: the client reads it into the common schema
    harness.apk()
    script = FarmScript(harness.stubber, harness.http).devices(PIXEL).project().pool(PIXEL).android_uploads()
    script.schedule(total=1).get_run("COMPLETED", "PASSED", done=1, total=1, minutes=3.1)
    script.jobs((PIXEL, "PASSED", None)).artifacts(0, customer_artifact(files), done.stdout.encode())
    code, out, err = harness.main(["bench", str(tflite_artifact), "--farm", "aws", "--device", "Google Pixel 8",
                                   "--runner", str(STANDIN), "--runs", "2", "--warmup", "1", "--json"])
    assert code == 0, err
    r = json.loads(out)["results"][0]
    assert r["latency_ms"]["count"] == 2 and r["warmup"] == 1 and r["init_ms"] > 0
    details = r["device_info"]["details"]
    assert details["pinned"] is True and details["reported_model"] == "Pixel 8 (qemu)" and details["abi"] == "arm64-v8a"
    assert details["state_before"]["thermal_zones"]["thermal_zone0"] == {"type": "cpu-big", "celsius": 36.5}
    assert details["state_after"]["cpufreq"]["cpu2"]["scaling_governor"] == "schedutil"
    assert [x["invocation"] for x in r["raw"]["repeats_ms"]] == [1, 2]
    harness.stubber.assert_no_pending_responses()


def test_manual_use_of_run_benchmark_sh_still_works(make_device, tflite_artifact, tmp_path):
    dev = make_device()
    env = {**os.environ, "RUNNER": str(STANDIN), "INTERPRETER": "python3", "WARMUP": "1"}
    done = subprocess.run(["sh", str(package.ANDROID_BENCH / "run_benchmark.sh"), str(tflite_artifact), "1", "2",
                           dev.serial], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "count=2 " in done.stdout and "pinning: taskset c" in done.stderr
    assert not any((dev.root / "data/local/tmp").iterdir())
