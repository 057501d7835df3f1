"""`xcrun devicectl list devices --json-output` parsing and device choice."""

from __future__ import annotations

from pathlib import Path

import pytest

from mnv2deploy.errors import DeviceError, UsageError
from mnv2deploy.ios.devices import DevicectlError, list_devices_command, parse_devices, pick_device

FIXTURE = (Path(__file__).parent / "fixtures" / "devicectl_list.json").read_text()


def test_command_uses_json_output_and_timeout():
    assert list_devices_command(Path("/tmp/d.json")) == [
        "xcrun", "devicectl", "list", "devices", "--timeout", "5", "--json-output", "/tmp/d.json"]


def test_parse_fields():
    devices = parse_devices(FIXTURE)
    assert [d.name for d in devices] == ["Jo's iPhone", "Studio iPad", "Old iPhone", "Jo's Watch"]
    phone = devices[0]
    assert (phone.udid, phone.model, phone.product_type, phone.os_version) == (
        "00008130-001234560E12001C", "iPhone 15 Pro", "iPhone16,1", "18.1")
    assert phone.usable
    assert not devices[1].usable  # unpaired
    assert not devices[2].usable  # paired once, not attached
    assert devices[3].usable and devices[3].platform == "watchOS"


def test_pick_iphone_takes_the_one_usable_iphone():
    assert pick_device(parse_devices(FIXTURE), "iphone").udid == "00008130-001234560E12001C"


def test_pick_by_udid_identifier_or_name():
    devices = parse_devices(FIXTURE)
    for key in ("00008130-001234560E12001C", "5B4C4E0B-0000-4000-8000-00000000A001", "Jo's iPhone"):
        assert pick_device(devices, key).name == "Jo's iPhone"


def test_unusable_or_unknown_device_is_a_device_error():
    devices = parse_devices(FIXTURE)
    with pytest.raises(DeviceError, match="not attached"):
        pick_device(devices, "00008020-001A2B3C4D5E002F")
    with pytest.raises(DeviceError, match="no device 'nope'"):
        pick_device(devices, "nope")
    with pytest.raises(DeviceError, match="no usable iPhone") as e:
        pick_device(devices[1:], "iphone")
    assert e.value.exit_code == 4 and "Old iPhone (not attached" in e.value.message


def test_two_iphones_need_a_udid():
    devices = parse_devices(FIXTURE)
    twin = devices[0].__class__(**{**devices[0].__dict__, "udid": "00008130-00AAAAAAAAAAAAAA", "name": "Other"})
    with pytest.raises(UsageError, match="2 iPhones"):
        pick_device([devices[0], twin], "iphone")


@pytest.mark.parametrize("text", ["", "[]", '{"info": {"outcome": "failed"}}', '{"result": {"devices": 3}}'])
def test_malformed_output(text):
    with pytest.raises(DevicectlError):
        parse_devices(text)
