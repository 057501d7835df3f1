"""Connected Android devices from ``adb devices -l`` plus the facts a benchmark needs (ABI, version, cores)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .adb import Adb


@dataclass(frozen=True)
class AndroidDevice:
    serial: str
    state: str  # "device", "unauthorized", "offline", ...
    model: str | None = None
    abi: str | None = None
    android_version: str | None = None
    core_max_khz: tuple[int, ...] = ()  # cpuinfo_max_freq per CPU, index = cpu number
    fields: dict[str, str] = field(default_factory=dict)  # the `adb devices -l` key:value fields

    @property
    def big_cores(self) -> tuple[int, ...]:
        """The CPUs with the highest cpuinfo_max_freq (the ones to pin a benchmark to)."""
        if not self.core_max_khz:
            return ()
        top = max(self.core_max_khz)
        return tuple(i for i, f in enumerate(self.core_max_khz) if f == top)

    def to_dict(self) -> dict[str, Any]:
        return {"serial": self.serial, "state": self.state, "model": self.model, "abi": self.abi,
                "android_version": self.android_version, "core_max_khz": list(self.core_max_khz),
                "big_cores": list(self.big_cores)}


def parse_devices_l(text: str) -> list[AndroidDevice]:
    """``adb devices -l``: ``SERIAL  STATE key:value ...`` after the header line."""
    out = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) < 2 or line.startswith("List of devices") or line.startswith("*"):
            continue
        kv = dict(p.split(":", 1) for p in parts[2:] if ":" in p)
        model = kv.get("model", "").replace("_", " ") or None
        out.append(AndroidDevice(parts[0], parts[1], model=model, fields=kv))
    return out


def parse_core_freqs(text: str) -> tuple[int, ...]:
    """Lines ``cpuN KHZ`` (from the probe in `probe`) -> max kHz per cpu number (missing cpus -> 0)."""
    freqs: dict[int, int] = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0].startswith("cpu") and parts[0][3:].isdigit() and parts[1].isdigit():
            freqs[int(parts[0][3:])] = int(parts[1])
    return tuple(freqs.get(i, 0) for i in range(max(freqs) + 1)) if freqs else ()


CORE_PROBE = ("for d in /sys/devices/system/cpu/cpu[0-9]*; do f=$d/cpufreq/cpuinfo_max_freq; "
              "[ -r $f ] && echo ${d##*/} $(cat $f); done")


def probe(adb: Adb, device: AndroidDevice) -> AndroidDevice:
    """Fill model, ABI, Android version and the core layout of a ready device."""
    if device.state != "device":
        return device
    dev = Adb(device.serial, adb.adb, adb.server_port)
    model = dev.getprop("ro.product.model") or device.model
    return AndroidDevice(device.serial, device.state, model=model, abi=dev.getprop("ro.product.cpu.abi") or None,
                         android_version=dev.getprop("ro.build.version.release") or None,
                         core_max_khz=parse_core_freqs(dev.shell(CORE_PROBE, check=False).output),
                         fields=device.fields)


def list_devices(adb: Adb | None = None, details: bool = True) -> list[AndroidDevice]:
    adb = adb or Adb()
    found = parse_devices_l(adb.run(["devices", "-l"], timeout=30).stdout)
    return [probe(adb, d) for d in found] if details else found
