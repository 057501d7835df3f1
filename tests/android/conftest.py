"""Android tier: a loopback adb device (tests/android/loopback_device.py), the real Debian adb client on a private
server port, and a real .tflite of the embedded default (32x32) run by aarch64 code under qemu."""

import shutil
import subprocess
from pathlib import Path

import pytest

from mnv2deploy import emulation

from .loopback_device import LoopbackDevice

REPO = Path(__file__).resolve().parents[2]
STANDIN = REPO / "android_bench" / "benchmark_model.py"
PROPS = {"ro.product.name": "mnv2emu", "ro.product.model": "Pixel 8 (qemu)", "ro.product.device": "husky",
         "ro.product.cpu.abi": "arm64-v8a", "ro.build.version.release": "14", "ro.kernel.qemu": "1"}


@pytest.fixture(scope="session")
def emu_root() -> Path:
    return emulation.environment()  # `make android-setup` (mnv2deploy setup arm64) builds it


@pytest.fixture
def adb_server(monkeypatch, tmp_path):
    """A private adb server port per test, killed at the end."""
    if not shutil.which("adb"):
        pytest.fail("adb is not installed (run scripts/ci_android_setup.sh)")
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("ANDROID_ADB_SERVER_PORT", str(port))
    monkeypatch.setenv("HOME", str(tmp_path))  # adb keys and state stay in the test's folder
    yield port
    subprocess.run(["adb", "-P", str(port), "kill-server"], capture_output=True, timeout=30)


@pytest.fixture
def make_device(adb_server, emu_root, tmp_path):
    devices = []

    def make(vanish_after: bytes | None = None, props: dict | None = None) -> LoopbackDevice:
        root = tmp_path / f"device{len(devices)}"
        dev = LoopbackDevice(root, props or PROPS, emulation.python_command("cortex-a76", emu_root),
                             emulation.python_env(emu_root), vanish_after=vanish_after)
        devices.append(dev)
        out = subprocess.run(["adb", "-P", str(adb_server), "connect", f"127.0.0.1:{dev.port}"],
                             capture_output=True, text=True, timeout=60)
        assert "connected" in out.stdout, out.stdout + out.stderr
        dev.serial = f"127.0.0.1:{dev.port}"
        subprocess.run(["adb", "-P", str(adb_server), "-s", dev.serial, "wait-for-device"], timeout=60)
        return dev

    yield make
    for d in devices:
        d.close()
