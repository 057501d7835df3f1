"""Connected Apple devices from `xcrun devicectl list devices --json-output FILE` (Xcode 15+).

The JSON has ``result.devices[]`` with ``identifier`` (the CoreDevice id), ``hardwareProperties`` (udid, platform,
marketingName, productType, deviceType), ``deviceProperties`` (name, osVersionNumber, developerModeStatus) and
``connectionProperties`` (pairingState, transportType, tunnelState). xcodebuild's ``-destination id=`` wants the
UDID, not the CoreDevice identifier. A device paired once but not attached now is still listed, with no
transportType and tunnelState "unavailable".
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import DeviceError, UsageError


class DevicectlError(DeviceError):
    """devicectl answered with something that is not its device list."""


@dataclass(frozen=True)
class AppleDevice:
    udid: str | None
    identifier: str
    name: str
    model: str | None  # marketing name, e.g. "iPhone 15 Pro"
    product_type: str | None  # e.g. "iPhone16,1"
    platform: str | None
    device_type: str | None  # "iPhone", "iPad", ...
    os_version: str | None
    paired: bool
    transport: str | None
    tunnel_state: str | None
    developer_mode: str | None

    @property
    def usable(self) -> bool:
        """Paired, attached (wired or network) and not marked unavailable: xcodebuild can test on it."""
        return (self.paired and self.udid is not None and self.transport in ("wired", "localNetwork", "network")
                and self.tunnel_state != "unavailable" and self.developer_mode in (None, "enabled"))


def list_devices_command(json_path: Path, timeout_s: int = 5) -> list[str]:
    return ["xcrun", "devicectl", "list", "devices", "--timeout", str(timeout_s), "--json-output", str(json_path)]


def parse_devices(text: str) -> list[AppleDevice]:
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as e:
        raise DevicectlError(f"devicectl output is not JSON ({e.msg})") from None
    result = doc.get("result") if isinstance(doc, dict) else None
    devices = result.get("devices") if isinstance(result, dict) else None
    if not isinstance(devices, list):
        outcome = doc.get("info", {}).get("outcome") if isinstance(doc, dict) else None
        raise DevicectlError(f"devicectl output has no result.devices (outcome: {outcome})",
                            "run `xcrun devicectl list devices` by hand")
    return [_device(d) for d in devices if isinstance(d, dict)]


def _device(d: dict[str, Any]) -> AppleDevice:
    hw, props, conn = (d.get(k) if isinstance(d.get(k), dict) else {} for k in
                       ("hardwareProperties", "deviceProperties", "connectionProperties"))
    return AppleDevice(udid=hw.get("udid"), identifier=str(d.get("identifier", "")), name=str(props.get("name", "")),
                       model=hw.get("marketingName"), product_type=hw.get("productType"), platform=hw.get("platform"),
                       device_type=hw.get("deviceType"), os_version=props.get("osVersionNumber"),
                       paired=conn.get("pairingState") == "paired", transport=conn.get("transportType"),
                       tunnel_state=conn.get("tunnelState"), developer_mode=props.get("developerModeStatus"))


def pick_device(devices: list[AppleDevice], wanted: str) -> AppleDevice:
    """``iphone`` = the one usable iPhone; anything else matches a UDID, CoreDevice identifier or device name."""
    if wanted.lower() == "iphone":
        phones = [d for d in devices if d.usable and d.platform == "iOS" and (d.device_type or "iPhone") == "iPhone"]
        if not phones:
            seen = ", ".join(f"{d.name} ({_why_unusable(d)})" for d in devices) or "none listed"
            raise DeviceError(f"no usable iPhone connected (devicectl: {seen})",
                              "connect and unlock the iPhone, trust this Mac, enable Developer Mode")
        if len(phones) > 1:
            raise UsageError(f"{len(phones)} iPhones connected", "pass --device UDID: "
                             + ", ".join(f"{d.udid} ({d.name})" for d in phones))
        return phones[0]
    for d in devices:
        if wanted in (d.udid, d.identifier, d.name):
            if not d.usable:
                raise DeviceError(f"device {d.name} is not usable now: {_why_unusable(d)}",
                                  "connect and unlock it, trust this Mac, enable Developer Mode")
            return d
    raise DeviceError(f"no device {wanted!r} among {len(devices)} listed by devicectl",
                      "pass --device iphone or a UDID from `xcrun devicectl list devices`")


def _why_unusable(d: AppleDevice) -> str:
    if d.usable:
        return "usable"
    if not d.paired:
        return "not paired"
    if d.developer_mode not in (None, "enabled"):
        return f"developer mode {d.developer_mode}"
    if d.udid is None:
        return "no UDID"
    return f"not attached (transport {d.transport}, tunnel {d.tunnel_state})"
