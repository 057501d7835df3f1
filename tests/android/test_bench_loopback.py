"""`bench --device SERIAL` end to end through the real adb client and the loopback device (aarch64 under qemu)."""

import json
from pathlib import Path

import pytest

from mnv2deploy.android.adb import Adb
from mnv2deploy.android.bench import run_android_bench
from mnv2deploy.android.devices import list_devices
from mnv2deploy.errors import DeviceError
from mnv2deploy.manifest import read_manifest

STANDIN = Path(__file__).resolve().parents[2] / "android_bench" / "benchmark_model.py"  # the aarch64 stand-in runner


pytestmark = pytest.mark.android


def test_devices_lists_the_loopback_device_with_its_core_layout(make_device):
    dev = make_device()
    found = {d.serial: d for d in list_devices(Adb())}
    d = found[dev.serial]
    assert d.state == "device" and d.model == "Pixel 8 (qemu)" and d.abi == "arm64-v8a"
    assert d.android_version == "14"
    assert d.core_max_khz == (1800000, 1800000, 2400000, 2400000) and d.big_cores == (2, 3)


def test_bench_runs_aarch64_code_and_returns_the_full_schema(make_device, tflite_fp32, tmp_path):
    dev = make_device()
    out = tmp_path / "result.json"
    result = run_android_bench(tflite_fp32, read_manifest(tflite_fp32), device="pixel", threads=1, runs=3,
                               warmup=1, runner=STANDIN, out=out)
    d = result.to_dict()
    assert d["emulated"] is True and d["device_info"]["kind"] == "android" and d["device"] == dev.serial
    assert "EMULATED" in d["notes"][0]
    assert d["latency_ms"]["count"] == 3 and 0 < d["latency_ms"]["min"] <= d["latency_ms"]["mean"]
    assert d["warmup"] == 1 and d["init_ms"] > 0 and d["first_inference_ms"] > 0
    assert d["peak_memory_bytes"] > 1e6 and {"overall_delta_bytes", "peak_footprint_bytes"} <= set(d["memory"])
    assert (dev.root / "taskset.log").read_text().split() == ["c"]  # pinned to cpus 2 and 3 (the big ones)
    info = d["device_info"]["details"]
    assert info["state_before"]["battery_level"] == "87" and info["state_after"]["thermal_max_c"] == 36.5
    raw = (tmp_path / d["raw"]["output"]).read_text()
    assert "count=3" in raw and "Inference timings in us" in raw
    assert not any((dev.root / "data/local/tmp").iterdir())  # everything pushed was removed
    assert any("python3" in c and "--graph=" in c for c in dev.commands)
    json.dumps(d, default=str)


def test_a_device_that_vanishes_mid_run_keeps_the_warmup(make_device, tflite_fp32, tmp_path):
    make_device(vanish_after=b"count=")
    out = tmp_path / "result.json"
    with pytest.raises(DeviceError) as e:
        run_android_bench(tflite_fp32, read_manifest(tflite_fp32), device="pixel", runs=3, warmup=1,
                          runner=STANDIN, out=out)
    assert "disconnected" in e.value.message and "kept warm-up 1 runs" in e.value.message
    raw = next(tmp_path.glob("result.android-*.txt")).read_text()
    assert "count=1 " in raw and "Inference timings" not in raw


def test_devices_command_json_lists_the_device_and_its_profile(make_device, capsys):
    from mnv2deploy.cli.app import main

    dev = make_device()
    assert main(["devices", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    row = next(r for r in d["devices"] if r["serial"] == dev.serial)
    assert row["profiles"] == ["pixel"] and row["big_cores"] == [2, 3] and "pixel" in d["profiles"]


def test_manual_helper_finds_the_big_cores_mask(make_device):
    import subprocess


    dev = make_device()
    out = subprocess.run(["sh", str(STANDIN.parent / "big_cores_mask.sh"), dev.serial],
                         capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "c", out.stderr


def test_cli_bench_device_serial_end_to_end(make_device, tflite_fp32, tmp_path, capsys):
    pytest.importorskip("mnv2deploy.cli.bench")  # the bench command (host bench issue) dispatches to android
    from mnv2deploy.cli.app import main

    dev = make_device()
    out = tmp_path / "bench.json"
    code = main(["bench", str(tflite_fp32), "--device", dev.serial, "--runner", str(STANDIN), "--runs", "2",
                 "--warmup", "1", "--threads", "1", "--out", str(out), "--json"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    d = json.loads(captured.out.strip().splitlines()[-1])
    d = d.get("results", [d])[0] if "results" in d else d
    assert d["emulated"] is True and d["device_info"]["kind"] == "android" and d["latency_ms"]["count"] == 2
    assert d["peak_memory_bytes"] > 0 and d["memory"]["source"] and d["init_ms"] > 0
