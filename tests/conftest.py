"""Fixtures every test folder shares (pytest finds them here; no test module imports another folder's code).

``export_artifact`` exports once per argument set per session, so CI converts each artifact once and every layer
tests the same real files. ``target_name`` and ``runtime_key`` parametrize a test over the target and runtime
registries, so a newly registered target or runtime is exported, run and parity-checked by the existing tests."""

from __future__ import annotations

import logging
import sys
import shutil
import subprocess
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest

from mnv2deploy import emulation
from mnv2deploy.runtimes import RUNTIMES
from mnv2deploy.runtimes.base import HOST
from mnv2deploy.targets import TARGETS
from support.loopback_device import LoopbackDevice  # tests/support: helpers, not tests

# What the loopback device reports: a Pixel 8 that says it is emulated (ro.kernel.qemu=1).
PROPS = {"ro.product.name": "mnv2emu", "ro.product.model": "Pixel 8 (qemu)", "ro.product.device": "husky",
         "ro.product.cpu.abi": "arm64-v8a", "ro.build.version.release": "14", "ro.kernel.qemu": "1"}


def pytest_generate_tests(metafunc) -> None:
    """``target_name``: every registered target. ``runtime_key``: every registered (format, arch) runtime, those for
    another CPU architecture marked ``android`` (they run emulated aarch64 code under qemu)."""
    if "target_name" in metafunc.fixturenames:
        metafunc.parametrize("target_name", list(TARGETS))
    if "runtime_key" in metafunc.fixturenames:
        metafunc.parametrize("runtime_key", [
            pytest.param(key, id=f"{key[0]}-{key[1]}", marks=() if key[1] == HOST else pytest.mark.android)
            for key in RUNTIMES])


@pytest.fixture(autouse=True)
def _logging_handlers_on_open_streams() -> None:
    """Libraries attach logging StreamHandlers to sys.stderr at import (coremltools.optimize.torch does). Imported
    first inside a capsys test, such a handler keeps that test's capture, closed afterwards, and every later log
    line becomes a 'Logging error' traceback in whichever test logs next. Repoint those at the current stderr."""
    for logger in [logging.root, *logging.root.manager.loggerDict.values()]:
        for handler in getattr(logger, "handlers", []):
            if isinstance(handler, logging.StreamHandler) and getattr(handler.stream, "closed", False):
                handler.stream = sys.stderr  # not setStream(): it flushes the closed stream first


@pytest.fixture(scope="session")
def export_artifact(tmp_path_factory) -> Callable[..., Any]:
    """Factory: ``export_artifact(target, weights="default", resolution=None, width=None, num_classes=None,
    split=1, **options) -> ExportResult``; the embedded default at 32x32 unless told otherwise."""
    from mnv2deploy.targets import get_target
    from mnv2deploy.targets.base import ExportRequest
    from mnv2deploy.weights import load_reference, resolve_weights

    cache: dict[tuple, Any] = {}
    root = tmp_path_factory.mktemp("exports")

    def factory(target: str, weights: str = "default", resolution: int | None = None, width: float | None = None,
                num_classes: int | None = None, split: int = 1, **options: Any) -> Any:
        key = (target, str(weights), resolution, width, num_classes, split, tuple(sorted(options.items())))
        if key not in cache:
            spec = resolve_weights(weights, width_mult=width, num_classes=num_classes, resolution=resolution)
            reference = load_reference(spec)
            dynamic = bool(options.pop("dynamic_batch", False))
            calib = options.pop("calib", None)
            samples = int(options.pop("calib_samples", 200))
            qref = bool(options.pop("quantized_reference", False))
            out = root / f"e{len(cache)}"
            request = ExportRequest(reference=reference, resolution=resolution or spec.contract.resolution,
                                    out_dir=Path(out), calib=calib, calib_samples=samples, split=split,
                                    dynamic_batch=dynamic, options=options, quantized_reference=qref)
            cache[key] = get_target(target).export(request)
        return cache[key]

    return factory


@pytest.fixture(scope="session")
def onnx_fp32(export_artifact) -> Path:
    return export_artifact("onnx").artifact


@pytest.fixture(scope="session")
def onnx_int8(export_artifact) -> Path:
    return export_artifact("onnx-int8").artifact


@pytest.fixture(scope="session")
def tflite_fp32(export_artifact) -> Path:
    return export_artifact("tflite").artifact


@pytest.fixture(scope="session")
def tflite_int8(export_artifact) -> Path:
    return export_artifact("tflite-int8").artifact


@pytest.fixture(scope="session")
def executorch_fp32(export_artifact) -> Path:
    return export_artifact("executorch").artifact


@pytest.fixture(scope="session")
def executorch_int8(export_artifact) -> Path:
    return export_artifact("executorch-int8").artifact


@pytest.fixture(scope="session")
def images() -> np.ndarray:
    """Eight preprocessed images of the embedded evaluation set at the default's 32x32."""
    from mnv2deploy.data import load_embedded
    from mnv2deploy.weights import resolve_weights

    return load_embedded("eval", resolve_weights("default").contract, 8).images


@pytest.fixture
def copy_artifact(tmp_path) -> Callable[[Path], Path]:
    """Factory: a private copy of an artifact (file or package folder) and its manifest, safe to corrupt."""
    from mnv2deploy.manifest import manifest_path

    def copy(src: Path) -> Path:
        src = Path(src)
        dst = tmp_path / src.name
        if src.is_dir():
            shutil.copytree(src, dst)
        else:
            shutil.copy(src, dst)
        shutil.copy(manifest_path(src), manifest_path(dst))
        return dst

    return copy


# --- the Android tier's loopback device (tests/android, tests/farm): the real Debian adb client on a private
# server port, talking to tests/support/loopback_device.py, whose shell runs aarch64 code under qemu.

@pytest.fixture(scope="session")
def emu_root() -> Path:
    return emulation.environment()  # `make android-setup` (mnv2deploy setup arm64) builds it


@pytest.fixture
def adb_server(monkeypatch, tmp_path):
    """A private adb server port per test, killed at the end."""
    if not shutil.which("adb"):
        pytest.fail("adb is not installed (run `make android-setup`)")
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
