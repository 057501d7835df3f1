"""`bench --farm aws` through the real CLI: a real boto3 client under Stubber, uploads PUT to 127.0.0.1, artifacts
downloaded from there; the happy path and every fault path (one line, documented exit code, no run left going)."""

import json
from pathlib import Path

import pytest

from .conftest import DUMMY_KEY, DUMMY_SECRET, SIGNATURE, sha
from .script import GALAXY, PIXEL, FarmScript, customer_artifact

STANDIN = Path(__file__).resolve().parents[2] / "android_bench" / "benchmark_model.py"  # the aarch64 stand-in runner

pytestmark = pytest.mark.farm
BENCH_OUTPUT = (Path(__file__).parents[1] / "android" / "fixtures" / "benchmark_model_info.txt").read_text()
STATE = "thermal thermal_zone0 cpu-0-0 38500\ncpufreq cpu7 scaling_cur_freq 2850000\n  level: 92\n"


def artifact_zip(pinned: bool = True, outputs: int = 3) -> bytes:
    files = {f"benchmark_output.{i}.txt": BENCH_OUTPUT for i in range(1, outputs + 1)}
    files.update({"pinning.txt": "pinning: taskset f0\n" if pinned else "pinning: none (taskset refused)\n",
                  "state_before.txt": STATE, "state_after.txt": STATE.replace("38500", "44000"),
                  "device.txt": "Pixel 8\n14\narm64-v8a\n"})
    return customer_artifact(files)


def argv(artifact, *extra, devices=("Google Pixel 8", "Samsung Galaxy S24")):
    out = ["bench", str(artifact), "--farm", "aws", "--runner", str(STANDIN), "--runs", "50", "--warmup", "1"]
    for d in devices:
        out += ["--device", d]
    return out + list(extra)


def one_line(err: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def never_leaked(harness, *texts: str) -> None:
    files = [p.read_bytes().decode("utf-8", "replace") for p in harness.tmp.rglob("*")
             if p.is_file() and p.suffix in (".json", ".txt", ".yml")]
    for text in [*texts, *files]:
        assert DUMMY_KEY not in text and DUMMY_SECRET not in text and SIGNATURE not in text


def test_two_phones_end_to_end_one_result_each(harness, tflite_artifact):
    apk = harness.apk()
    script = FarmScript(harness.stubber, harness.http).devices(PIXEL, GALAXY).project(exists=False)
    script.pool(PIXEL, GALAXY).android_uploads().schedule()
    script.get_run("RUNNING").get_run("RUNNING", done=1, minutes=4.2)
    script.get_run("COMPLETED", "PASSED", done=2, minutes=8.4).jobs((PIXEL, "PASSED", None), (GALAXY, "PASSED", None))
    script.artifacts(0, artifact_zip(), b"test spec output").artifacts(1, artifact_zip(pinned=False), None)
    out = harness.tmp / "out"
    code, stdout, err = harness.main(argv(tflite_artifact, "--out", str(out), "--json"))
    assert code == 0, err
    harness.stubber.assert_no_pending_responses()
    d = json.loads(stdout)
    assert d["run_arn"].endswith("0fcac17b-6122-44d7") and d["device_minutes"] == 8.4
    pixel, galaxy = d["results"]
    assert pixel["device"] == "Google Pixel 8" and galaxy["device"] == "Samsung Galaxy S24"
    info = pixel["device_info"]
    assert info["kind"] == "farm" and info["emulated"] is False
    assert info["details"]["rooted"] is False and info["details"]["pinned"] is True
    assert info["details"]["arn"] == PIXEL["arn"] and info["details"]["os"] == "14"
    assert info["details"]["state_before"]["thermal_max_c"] == 38.5
    assert info["details"]["state_after"]["thermal_max_c"] == 44.0
    assert galaxy["device_info"]["details"]["pinned"] is False
    assert "non-rooted" in pixel["notes"][0] and any("not pinned" in n for n in galaxy["notes"])
    assert pixel["latency_ms"]["count"] == 1061 and pixel["latency_ms"]["mean"] == pytest.approx(56.2658)
    assert len(pixel["raw"]["repeats_ms"]) == 3 and pixel["peak_memory_bytes"] > 0
    # the uploads arrived as PUTs with the content type the upload was created with, byte for byte
    puts = harness.http.puts
    assert [p["method"] for p in puts] == ["PUT"] * 3
    assert all(p["headers"]["Content-Type"] == "application/octet-stream" for p in puts)
    assert puts[0]["body"] == apk.read_bytes() and puts[0]["path"].startswith("/uploads/1/android_aarch64")
    assert int(puts[1]["headers"]["Content-Length"]) == len(puts[1]["body"])
    spec = puts[2]["body"].decode()
    assert "INTERPRETER=python3" in spec and "sh ./run_benchmark.sh model.tflite 1 50" in spec
    staged = next(out.glob("farm-*/upload/mnv2deploy-test-package.zip"))
    assert sha(puts[1]["body"]) == sha(staged.read_bytes())
    # before scheduling: the phones and the cost, on stderr
    assert "Google Pixel 8 (ANDROID 14" in err and "device-minutes expected" in err
    assert (harness.calls.index("ScheduleRun") > harness.calls.index("CreateUpload")
            and "StopRun" not in harness.calls)
    assert len(list(out.glob("*.json"))) == 2
    never_leaked(harness, stdout, err)


def test_upload_rejected_by_the_farm_stops_before_scheduling(harness, tflite_artifact):
    harness.apk()
    script = FarmScript(harness.stubber, harness.http).devices(PIXEL, GALAXY).project().pool(PIXEL, GALAXY)
    script.upload("android_aarch64_benchmark_model.apk", "ANDROID_APP", fail="The APK is not a valid Android app.")
    code, _, err = harness.main(argv(tflite_artifact))
    assert code == 4
    line = one_line(err)
    assert "rejected the upload android_aarch64_benchmark_model.apk" in line and "not a valid Android app" in line
    assert "ScheduleRun" not in harness.calls
    harness.stubber.assert_no_pending_responses()


def test_upload_put_refused_is_one_line_without_the_signed_url(harness, tflite_artifact):
    harness.apk()
    harness.http.fail_puts = True
    FarmScript(harness.stubber, harness.http).devices(PIXEL).project().pool(PIXEL)
    harness.stubber.add_response("create_upload", {"upload": {
        "arn": "arn:aws:devicefarm:us-west-2:123456789101:upload:5e01a8c7-c861-4c0a-b1d5-5ec6e6c6dd23/00000001",
        "status": "INITIALIZED", "url": harness.http.url("/uploads/1/app.apk")}})
    code, out, err = harness.main(argv(tflite_artifact, devices=("Google Pixel 8",)))
    assert code == 4 and "upload of android_aarch64_benchmark_model.apk failed (HTTP 403)" in one_line(err)
    never_leaked(harness, out, err)


@pytest.mark.parametrize("result", ["ERRORED", "STOPPED"])
def test_run_errored_or_stopped_without_output_keeps_raw_and_exits_4(harness, tflite_artifact, result):
    harness.apk()
    script = FarmScript(harness.stubber, harness.http).devices(PIXEL).project().pool(PIXEL).android_uploads()
    script.schedule(total=1).get_run("COMPLETED", result, done=1, total=1, message="Device setup failed")
    script.jobs((PIXEL, result, "Setup failed on device")).artifacts(0, None, b"setup log: adb: device offline")
    code, _, err = harness.main(argv(tflite_artifact, devices=("Google Pixel 8",)))
    assert code == 4
    line = one_line(err)
    assert f"Google Pixel 8 gave no parsable output (job {result}: Setup failed on device" in line
    raw = Path(line.split("raw output in ")[1].split(")")[0])
    assert (raw / "testspec_output.txt").read_bytes() == b"setup log: adb: device offline"
    assert "StopRun" not in harness.calls  # it had completed: nothing left running
    harness.stubber.assert_no_pending_responses()


def test_a_phone_with_no_parsable_output_is_named_and_the_other_result_kept(harness, tflite_artifact):
    harness.apk()
    script = FarmScript(harness.stubber, harness.http).devices(PIXEL, GALAXY).project().pool(PIXEL, GALAXY)
    script.android_uploads().schedule().get_run("COMPLETED", "FAILED", done=2)
    script.jobs((PIXEL, "PASSED", None), (GALAXY, "FAILED", "test phase failed"))
    garbled = customer_artifact({"benchmark_output.1.txt": "ERROR: Unconsumed cmdline flags\nSegmentation fault\n"})
    script.artifacts(0, artifact_zip()).artifacts(1, garbled)
    out = harness.tmp / "out"
    code, _, err = harness.main(argv(tflite_artifact, "--out", str(out)))
    assert code == 4
    line = one_line(err)
    assert "1 of 2 phone(s) gave no result: Samsung Galaxy S24 gave no parsable output (job FAILED" in line
    assert "1 result(s) written to" in line
    assert [p.name for p in out.glob("*.json")] == [next(out.glob("*Google_Pixel_8*.json")).name]
    kept = next(out.glob("farm-*/Samsung_Galaxy_S24/customer_artifact.zip"))
    assert b"Segmentation fault" in kept.read_bytes() or kept.stat().st_size > 0


def test_unavailable_phone_stops_before_anything_is_created(harness, tflite_artifact):
    harness.apk()
    busy = {**GALAXY, "availability": "TEMPORARY_NOT_AVAILABLE"}
    FarmScript(harness.stubber, harness.http).devices(PIXEL, busy)
    code, _, err = harness.main(argv(tflite_artifact))
    assert code == 4
    assert "Samsung Galaxy S24 is TEMPORARY_NOT_AVAILABLE on the farm (device unavailable)" in one_line(err)
    assert harness.calls == ["ListDevices"]


def test_unknown_phone_name_suggests_close_names(harness, tflite_artifact):
    harness.apk()
    FarmScript(harness.stubber, harness.http).devices(PIXEL, GALAXY)
    code, _, err = harness.main(argv(tflite_artifact, devices=("Pixel",)))
    assert code == 4 and "no android phone named 'Pixel'" in one_line(err) and "Google Pixel 8?" in err


def test_throttling_is_retried_with_backoff(harness, tflite_artifact):
    harness.apk()
    for _ in range(2):
        harness.stubber.add_client_error("list_devices", "ThrottlingException", "Rate exceeded", 400)
    script = FarmScript(harness.stubber, harness.http).devices(PIXEL).project().pool(PIXEL).android_uploads()
    script.schedule(total=1).get_run("COMPLETED", "PASSED", done=1, total=1, minutes=4.0)
    script.jobs((PIXEL, "PASSED", None)).artifacts(0, artifact_zip())
    code, out, err = harness.main(argv(tflite_artifact, "--json", devices=("Google Pixel 8",)))
    assert code == 0, err
    assert harness.sleeps[:2] == [1.0, 2.0] and harness.calls[:3] == ["ListDevices"] * 3
    assert json.loads(out)["results"][0]["device"] == "Google Pixel 8"


def test_throttling_that_never_ends_is_one_line(harness, tflite_artifact):
    harness.apk()
    for _ in range(6):
        harness.stubber.add_client_error("list_devices", "ThrottlingException", "Rate exceeded", 400)
    code, _, err = harness.main(argv(tflite_artifact))
    assert code == 4 and "Device Farm list_devices failed: ThrottlingException: Rate exceeded" in one_line(err)
    assert len(harness.calls) == 6 and "wait a minute" in err


def test_timeout_stops_the_run_on_the_farm(harness, tflite_artifact):
    harness.apk()
    harness.poll_seconds = 600.0  # the 5-minute job timeout + 15 minutes of queue: gives up after the 4th poll
    script = FarmScript(harness.stubber, harness.http).devices(PIXEL).project().pool(PIXEL).android_uploads()
    script.schedule(total=1)
    for _ in range(4):
        script.get_run("PENDING_DEVICE", total=1)
    script.stop()
    code, _, err = harness.main(argv(tflite_artifact, "--timeout-minutes", "5", devices=("Google Pixel 8",)))
    assert code == 4
    assert "did not complete in 20 minutes; stop requested (run STOPPING)" in one_line(err)
    assert harness.calls[-1] == "StopRun"
    harness.stubber.assert_no_pending_responses()


def test_ctrl_c_requests_stop_and_exits_130(harness, tflite_artifact):
    harness.apk()
    harness.interrupt_at_poll = 2
    script = FarmScript(harness.stubber, harness.http).devices(PIXEL).project().pool(PIXEL).android_uploads()
    script.schedule(total=1).get_run("RUNNING", total=1).get_run("RUNNING", total=1).stop()
    code, _, err = harness.main(argv(tflite_artifact, devices=("Google Pixel 8",)))
    assert code == 130
    assert "interrupted; stop requested (run STOPPING) on the farm" in one_line(err)
    assert harness.calls[-1] == "StopRun"
    harness.stubber.assert_no_pending_responses()


def test_missing_apk_is_one_line_naming_where_to_get_it(harness, tflite_artifact):
    code, _, err = harness.main(argv(tflite_artifact))
    assert code == 4
    line = one_line(err)
    assert "no LiteRT benchmark APK at" in line and "android_aarch64_benchmark_model.apk" in line
    assert "--app PATH" in line and harness.calls == []
