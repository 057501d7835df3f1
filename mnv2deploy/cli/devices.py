"""`mnv2deploy devices [--json]`: connected Android devices and the device profiles that match them."""

from __future__ import annotations

from rich.table import Table

from ..android.adb import Adb
from ..android.devices import list_devices
from ..android.profiles import load_profiles, matching_profiles
from .common import JsonOpt, emit


def devices(as_json: bool = JsonOpt) -> None:
    """List Android devices over adb (serial, model, ABI, Android version, core layout) and matching profiles."""
    profiles = load_profiles()
    found = list_devices(Adb())
    rows = [{**d.to_dict(), "profiles": matching_profiles(d, profiles)} for d in found]

    def render(console) -> None:
        if not rows:
            console.print("no Android devices connected (adb devices -l is empty)")
            return
        table = Table("serial", "state", "model", "ABI", "Android", "cores (max MHz)", "profiles")
        for r in rows:
            cores = " ".join(str(k // 1000) for k in r["core_max_khz"]) or "-"
            table.add_row(r["serial"], r["state"], r["model"] or "-", r["abi"] or "-", r["android_version"] or "-",
                          cores, ", ".join(r["profiles"]) or "-")
        console.print(table)

    emit({"devices": rows, "profiles": sorted(profiles)}, as_json, render)
