"""Android tier: a loopback adb device (tests/android/loopback_device.py), the real Debian adb client on a private
server port, and a real .tflite of the embedded default (32x32) run by aarch64 code under qemu."""

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from mnv2deploy.android import emulated

from .loopback_device import LoopbackDevice

REPO = Path(__file__).resolve().parents[2]
STANDIN = REPO / "android_bench" / "benchmark_model.py"
PROPS = {"ro.product.name": "mnv2emu", "ro.product.model": "Pixel 8 (qemu)", "ro.product.device": "husky",
         "ro.product.cpu.abi": "arm64-v8a", "ro.build.version.release": "14", "ro.kernel.qemu": "1"}


def _tflite_fp32(folder: Path) -> Path:
    """A real fp32 .tflite of the embedded default with its manifest (the shared export fixture when present)."""
    import torch

    import litert_torch
    from mnv2deploy.manifest import Manifest, TensorSpec, tool_versions, write_manifest
    from mnv2deploy.fileio import sha256_file
    from mnv2deploy.weights import load_reference, resolve_weights

    spec = resolve_weights("default")
    ref = load_reference(spec)
    r = spec.contract.resolution
    path = folder / "mobilenet_v2.fp32.tflite"
    litert_torch.convert(ref.model.eval(), (torch.zeros(1, 3, r, r),)).export(str(path))
    manifest = Manifest(target="tflite-fp32", format="tflite", precision="fp32", artifact=path.name,
                        artifact_sha256=sha256_file(path),
                        inputs=(TensorSpec("input", (1, 3, r, r), "float32", "NCHW"),),
                        outputs=(TensorSpec("logits", (1, spec.num_classes), "float32", "NC"),),
                        preprocessing=spec.contract,
                        model={"name": "mobilenet_v2", "width_mult": spec.width_mult,
                               "num_classes": spec.num_classes, "resolution": r, "split": 1},
                        weights={**spec.to_dict(), "sha256": ref.weights_sha256},
                        tool_versions=tool_versions("litert-torch"))
    write_manifest(path, manifest)
    return path


@pytest.fixture(scope="session")
def tflite_fp32(request, tmp_path_factory) -> Path:
    """The shared session export (tests/conftest.py) when it exists, so CI converts once; else a local one."""
    try:
        export_artifact = request.getfixturevalue("export_artifact")
    except pytest.FixtureLookupError:
        return _tflite_fp32(tmp_path_factory.mktemp("android_artifact"))
    return export_artifact("tflite-fp32").artifact


@pytest.fixture(scope="session")
def emu_root() -> Path:
    return emulated.ensure_environment()


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
        dev = LoopbackDevice(root, props or PROPS, emulated.python_command("cortex-a76", emu_root),
                             emulated.python_env(emu_root), vanish_after=vanish_after)
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
