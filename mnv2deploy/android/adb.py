"""The adb client: found on PATH or under ANDROID_HOME/platform-tools; every call with a timeout.

``shell`` appends ``; echo RC=$?`` because the legacy shell protocol (older devices, and loopback test devices)
loses the exit code. A device that disappears turns into a DeviceError (exit 4), never a hang.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from ..errors import DeviceError, MissingToolError

_RC = re.compile(r"RC=(-?\d+)\s*$")
_GONE = ("device offline", "no devices", "not found", "device unauthorized", "closed", "protocol fault",
         "failed to connect", "cannot connect", "connection reset", "broken pipe")


def find_adb() -> str:
    found = shutil.which("adb")
    if found:
        return found
    for var in ("ANDROID_HOME", "ANDROID_SDK_ROOT"):
        home = os.environ.get(var)
        if home and (Path(home) / "platform-tools" / "adb").is_file():
            return str(Path(home) / "platform-tools" / "adb")
    raise MissingToolError("adb not found on PATH or in $ANDROID_HOME/platform-tools",
                           "install Android platform-tools (Debian: apt-get install adb) or set ANDROID_HOME")


@dataclass(frozen=True)
class ShellResult:
    output: str
    returncode: int


class Adb:
    """adb for one device (``serial``), or for the server when serial is None."""

    def __init__(self, serial: str | None = None, adb: str | None = None, server_port: int | None = None):
        self.adb = adb or find_adb()
        self.serial = serial
        self.server_port = server_port or (int(os.environ["ANDROID_ADB_SERVER_PORT"])
                                           if os.environ.get("ANDROID_ADB_SERVER_PORT") else None)

    def _argv(self, args: list[str]) -> list[str]:
        argv = [self.adb]
        if self.server_port:
            argv += ["-P", str(self.server_port)]
        if self.serial:
            argv += ["-s", self.serial]
        return argv + args

    def run(self, args: list[str], timeout: float = 60, check: bool = True) -> subprocess.CompletedProcess:
        what = f"adb {' '.join(args[:2])}"
        try:
            proc = subprocess.run(self._argv(args), capture_output=True, text=True, timeout=timeout,
                                  stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired as e:
            err = DeviceError(f"{what} on {self.serial or 'the adb server'} timed out after {timeout:.0f}s",
                              "check the device is connected and unlocked (adb devices -l)")
            out = e.stdout or b""
            err.partial_output = out.decode(errors="replace") if isinstance(out, bytes) else out
            raise err from None
        except FileNotFoundError:
            raise MissingToolError(f"adb not runnable at {self.adb}", "reinstall Android platform-tools") from None
        if check and proc.returncode != 0:
            msg = (proc.stderr.strip() or proc.stdout.strip()).splitlines()
            raise DeviceError(f"{what} failed on {self.serial or 'the adb server'}: {(msg or ['?'])[-1][:200]}",
                              "check `adb devices -l`; reconnect the device")
        return proc

    def shell(self, command: str, timeout: float = 60, check: bool = True) -> ShellResult:
        out = self.run(["shell", f"{command}; echo RC=$?"], timeout=timeout, check=False).stdout
        out = out.replace("\r\n", "\n")
        m = _RC.search(out)
        if not m:  # the marker never came back: the connection dropped mid-command
            err = DeviceError(f"device {self.serial} went away during `{command[:60]}`",
                              "reconnect it and check `adb devices -l`")
            err.partial_output = out  # what the command printed before the device vanished
            raise err
        result = ShellResult(out[:m.start()], int(m.group(1)))
        if check and result.returncode != 0:
            raise DeviceError(f"`{command[:80]}` exited {result.returncode} on {self.serial}: "
                              f"{result.output.strip()[-200:]}")
        return result

    def push(self, local: Path, remote: str, timeout: float = 300) -> None:
        self.run(["push", str(local), remote], timeout=timeout)

    def pull(self, remote: str, local: Path, timeout: float = 300) -> None:
        self.run(["pull", remote, str(local)], timeout=timeout)

    def getprop(self, name: str) -> str:
        return self.shell(f"getprop {name}", check=False).output.strip()
