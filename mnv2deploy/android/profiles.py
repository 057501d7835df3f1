"""Device profiles are data: ``mnv2deploy/profiles/*.json`` plus a user file, matched on the device model.

A profile is ``{"name", "description", "match": {"model_contains" | "model_prefix": str}}``. The user file
``<user config dir>/mnv2deploy/android_profiles.json`` (a list of profiles, or MNV2DEPLOY_ANDROID_PROFILES)
adds profiles or overrides shipped ones by name. ``--device`` is a profile name or an adb serial.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from ..errors import BadInputError, DeviceError
from .devices import AndroidDevice

USER_FILE_ENV = "MNV2DEPLOY_ANDROID_PROFILES"


@dataclass(frozen=True)
class DeviceProfile:
    name: str
    description: str
    model_contains: str | None = None
    model_prefix: str | None = None

    def matches(self, device: AndroidDevice) -> bool:
        model = device.model or ""
        if self.model_contains is not None and self.model_contains.lower() not in model.lower():
            return False
        if self.model_prefix is not None and not model.startswith(self.model_prefix):
            return False
        return self.model_contains is not None or self.model_prefix is not None

    @classmethod
    def from_dict(cls, d: dict[str, Any], source: str) -> "DeviceProfile":
        try:
            match = d["match"]
            return cls(str(d["name"]), str(d.get("description", "")), match.get("model_contains"),
                       match.get("model_prefix"))
        except (KeyError, TypeError, AttributeError) as e:
            raise BadInputError(f"device profile in {source} is malformed ({type(e).__name__}: {e})",
                                'write {"name": ..., "match": {"model_contains": ...}}') from None


def user_profiles_path() -> Path:
    env = os.environ.get(USER_FILE_ENV)
    if env:
        return Path(env)
    import platformdirs

    return Path(platformdirs.user_config_dir("mnv2deploy")) / "android_profiles.json"


def load_profiles() -> dict[str, DeviceProfile]:
    profiles: dict[str, DeviceProfile] = {}
    for f in sorted(resources.files("mnv2deploy").joinpath("profiles").iterdir(), key=lambda p: p.name):
        if f.name.endswith(".json"):
            p = DeviceProfile.from_dict(json.loads(f.read_text()), f.name)
            profiles[p.name] = p
    user = user_profiles_path()
    if user.is_file():
        try:
            data = json.loads(user.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise BadInputError(f"{user} is not valid JSON ({e})", "fix or remove the file") from None
        for d in data if isinstance(data, list) else [data]:
            p = DeviceProfile.from_dict(d, str(user))
            profiles[p.name] = p
    return profiles


def matching_profiles(device: AndroidDevice, profiles: dict[str, DeviceProfile] | None = None) -> list[str]:
    profiles = load_profiles() if profiles is None else profiles
    return [name for name, p in profiles.items() if p.matches(device)]


def _usable(device: AndroidDevice) -> AndroidDevice:
    if device.state == "unauthorized":
        raise DeviceError(f"device {device.serial} is unauthorized",
                          "unlock the phone and accept the USB debugging prompt")
    if device.state != "device":
        raise DeviceError(f"device {device.serial} is {device.state}", "reconnect it; check `adb devices -l`")
    return device


def resolve_device(wanted: str, devices: list[AndroidDevice],
                   profiles: dict[str, DeviceProfile] | None = None) -> AndroidDevice:
    """``wanted`` as an adb serial first, then as a profile name; exactly one ready device must match."""
    for d in devices:
        if d.serial == wanted:
            return _usable(d)
    profiles = load_profiles() if profiles is None else profiles
    if wanted not in profiles:
        raise DeviceError(f"no connected device with serial {wanted!r} and no profile named {wanted!r}",
                          f"profiles: {', '.join(sorted(profiles))}; serials: "
                          f"{', '.join(d.serial for d in devices) or 'none connected'} (mnv2deploy devices)")
    hits = [d for d in devices if profiles[wanted].matches(d)]
    if not hits:
        not_ready = [d for d in devices if d.state != "device"]
        hint = (f"{len(not_ready)} device(s) not ready ({', '.join(f'{d.serial} {d.state}' for d in not_ready)}); "
                "unlock and authorize them") if not_ready else "connect one and check `mnv2deploy devices`"
        raise DeviceError(f"no connected device matches profile {wanted!r}", hint)
    if len(hits) > 1:
        raise DeviceError(f"{len(hits)} devices match profile {wanted!r}: {', '.join(d.serial for d in hits)}",
                          "pass one serial with --device")
    return _usable(hits[0])
