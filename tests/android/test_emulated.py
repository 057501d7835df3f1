"""Real aarch64 LiteRT kernels under qemu (cortex-a76 dot-product, cortex-a57 plain NEON) against host LiteRT."""

import numpy as np
import pytest

from mnv2deploy import emulation
from mnv2deploy.data import load_dataset
from mnv2deploy.errors import UsageError
from mnv2deploy.manifest import read_manifest
from mnv2deploy.runtimes.litert_arm64 import EmulatedArm64LiteRtRuntime, run_model_inputs

pytestmark = pytest.mark.android


@pytest.fixture(scope="module")
def images(tflite_fp32):
    return load_dataset(None, read_manifest(tflite_fp32).preprocessing, 8).images.astype(np.float32)


def _host(model, x):
    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(model_path=str(model), num_threads=1)
    it.allocate_tensors()
    i, o = it.get_input_details()[0], it.get_output_details()[0]
    out = []
    for k in range(len(x)):
        it.set_tensor(i["index"], x[k:k + 1])
        it.invoke()
        out.append(it.get_tensor(o["index"]).copy())
    return np.concatenate(out)


@pytest.mark.parametrize("cpu", emulation.CPUS)
def test_aarch64_fp32_matches_x86(tflite_fp32, images, emu_root, cpu):
    arm = run_model_inputs(tflite_fp32, images, cpu, root=emu_root)
    host = _host(tflite_fp32, images)
    assert arm.shape == host.shape == (8, 10)
    assert np.abs(arm - host).max() < 1e-3 and (arm.argmax(1) == host.argmax(1)).all()


def test_each_cpu_has_its_own_cpuinfo(emu_root):
    """An A76 /proc/cpuinfo under -cpu cortex-a57 makes XNNPACK pick dot-product kernels: SIGILL on int8."""
    a57 = (emu_root / "root-cortex-a57" / "proc" / "cpuinfo").read_text()
    a76 = (emu_root / "root-cortex-a76" / "proc" / "cpuinfo").read_text()
    assert "0xd07" in a57 and "asimddp" not in a57 and "0xd0b" in a76 and "asimddp" in a76
    cmd = emulation.python_command("cortex-a57", emu_root)
    assert cmd[1:5] == ["-cpu", "cortex-a57", "-L", str(emu_root / "root-cortex-a57")]


def test_cpu_max_is_refused():
    with pytest.raises(UsageError, match="'max' not supported") as e:
        emulation.python_command("max")
    assert "cortex-a76, cortex-a57" in e.value.hint


def test_runtime_matches_the_host_litert_runtime(tflite_fp32, images, emu_root):
    from mnv2deploy.runtimes import litert

    manifest = read_manifest(tflite_fp32)
    rt = EmulatedArm64LiteRtRuntime()
    rt.load(tflite_fp32, manifest, threads=1, cpu="cortex-a76")
    host = litert.LiteRtRuntime()
    host.load(tflite_fp32, manifest, threads=1)
    y, ref = rt.run(images), host.run(images)
    assert y.dtype == np.float32 and np.abs(y - ref).max() < 1e-3
    d = rt.details()
    assert d["emulated"] is True and d["emulated_cpu"] == "cortex-a76" and d["arch"] == "aarch64"
    assert rt.name == "litert-arm64" and "qemu" in rt.versions()
