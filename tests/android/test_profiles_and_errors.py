"""Profiles are data and resolve --device; every way of not having a usable device is one line, exit 4."""

import json

import pytest

from mnv2deploy.android.adb import Adb, find_adb
from mnv2deploy.android.devices import AndroidDevice, parse_core_freqs, parse_devices_l
from mnv2deploy.android.profiles import load_profiles, matching_profiles, resolve_device
from mnv2deploy.cli.app import main
from mnv2deploy.errors import DeviceError, MissingToolError

pytestmark = pytest.mark.android

DEVICES_L = """List of devices attached
37241FDJH000XA         device usb:1-1 product:husky model:Pixel_8_Pro device:husky transport_id:3
R58N12ABCDE            device usb:1-2 product:a52q model:SM_A525F device:a52q transport_id:4
0A1B2C3D               unauthorized usb:1-3 transport_id:5
emulator-5556          offline transport_id:6
"""


def test_parse_devices_l_and_core_layout():
    devs = parse_devices_l(DEVICES_L)
    assert [(d.serial, d.state, d.model) for d in devs] == [
        ("37241FDJH000XA", "device", "Pixel 8 Pro"), ("R58N12ABCDE", "device", "SM A525F"),
        ("0A1B2C3D", "unauthorized", None), ("emulator-5556", "offline", None)]
    freqs = parse_core_freqs("cpu0 1800000\ncpu1 1800000\ncpu4 2850000\ncpu7 3050000\n")
    assert freqs == (1800000, 1800000, 0, 0, 2850000, 0, 0, 3050000)
    assert AndroidDevice("x", "device", core_max_khz=freqs).big_cores == (7,)


def test_profiles_match_by_model_and_resolve_serial_or_name():
    devs = parse_devices_l(DEVICES_L)
    assert matching_profiles(devs[0]) == ["pixel"] and resolve_device("pixel", devs).serial == "37241FDJH000XA"
    assert resolve_device("R58N12ABCDE", devs).model == "SM A525F"
    with pytest.raises(DeviceError, match="unauthorized"):
        resolve_device("0A1B2C3D", devs)
    with pytest.raises(DeviceError, match="is offline"):
        resolve_device("emulator-5556", devs)
    with pytest.raises(DeviceError, match="no connected device with serial 'nokia'"):
        resolve_device("nokia", devs)
    with pytest.raises(DeviceError, match="2 devices match profile 'pixel'"):
        resolve_device("pixel", devs[:1] * 2)
    with pytest.raises(DeviceError, match="no connected device matches profile 'pixel'") as e:
        resolve_device("pixel", devs[2:])
    assert "2 device(s) not ready" in e.value.hint and e.value.exit_code == 4


def test_a_user_profile_file_adds_profiles(tmp_path, monkeypatch):
    user = tmp_path / "android_profiles.json"
    user.write_text(json.dumps([{"name": "lab-a52", "match": {"model_contains": "A525"}}]))
    monkeypatch.setenv("MNV2DEPLOY_ANDROID_PROFILES", str(user))
    assert {"pixel", "galaxy", "lab-a52"} <= set(load_profiles())
    assert resolve_device("lab-a52", parse_devices_l(DEVICES_L)).serial == "R58N12ABCDE"


def test_no_adb_is_exit_4_with_one_line(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv("ANDROID_HOME", raising=False)
    monkeypatch.delenv("ANDROID_SDK_ROOT", raising=False)
    with pytest.raises(MissingToolError):
        find_adb()
    assert main(["devices"]) == 4
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "adb not found" in err[0]


def test_adb_from_android_home(monkeypatch, tmp_path):
    tools = tmp_path / "sdk" / "platform-tools"
    tools.mkdir(parents=True)
    (tools / "adb").write_text("#!/bin/sh\n")
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setenv("ANDROID_HOME", str(tmp_path / "sdk"))
    assert Adb().adb == str(tools / "adb")


def test_without_a_runner_says_which_release_to_build_and_the_cache_path(tmp_path, monkeypatch):
    """Pinned to the LiteRT release parity runs (not a moving nightly), and named in what the result records."""
    from mnv2deploy.android.runner import LITERT_RELEASE, resolve_runner

    monkeypatch.setenv("MNV2DEPLOY_CACHE", str(tmp_path))
    with pytest.raises(MissingToolError) as e:
        resolve_runner(None)
    where = tmp_path / "android" / f"litert-{LITERT_RELEASE}" / "android_aarch64_benchmark_model"
    assert f"v{LITERT_RELEASE}" in e.value.hint and str(where) in e.value.hint and e.value.exit_code == 4
    assert "nightly/latest" not in e.value.hint
    where.parent.mkdir(parents=True)
    where.write_bytes(b"\x7fELF")
    r = resolve_runner(None)
    assert r.local == where and r.interpreter is None and r.command("/d") == "/d/benchmark_model"
    assert r.describe()["litert_release"] == LITERT_RELEASE and len(r.describe()["sha256"]) == 64
