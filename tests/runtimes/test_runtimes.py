"""Each runtime on real artifacts: shapes, manifest-driven edges, threads, and the child-process guard."""

from __future__ import annotations

import os
import time

import numpy as np
import pytest

from mnv2deploy.errors import BadArtifactError, UsageError
from mnv2deploy.manifest import TensorSpec, read_manifest
from mnv2deploy.runtimes import run_artifact, runtime_class, runtime_for
from mnv2deploy.runtimes.child import ChildTimeoutError, call_in_child
from mnv2deploy.runtimes.edges import from_model_output, to_model_input
from mnv2deploy.runtimes.ort import OrtRuntime
from mnv2deploy.runtimes.torch_eager import TorchRuntime


def _reference(artifact, images):
    rt = TorchRuntime()
    rt.load(artifact, read_manifest(artifact))
    return rt.run(images)


def test_ort_matches_torch_with_threads(onnx_fp32, images):
    manifest = read_manifest(onnx_fp32)
    rt = runtime_for(manifest)()
    assert isinstance(rt, OrtRuntime)
    rt.load(onnx_fp32, manifest, threads=2)
    y = rt.run(images)  # static batch 1: run per image
    assert y.shape == (8, 10) and y.dtype == np.float32
    assert np.abs(y - _reference(onnx_fp32, images)).max() < 1e-3
    assert rt.details() == {"execution_provider": "CPUExecutionProvider", "threads": 2, "session_config": {}}
    assert "onnxruntime" in rt.versions()


@pytest.mark.slow
@pytest.mark.parametrize("xnnpack", [True, False])
def test_litert_matches_torch_with_and_without_xnnpack(tflite_fp32, images, xnnpack):
    manifest = read_manifest(tflite_fp32)
    rt = runtime_for(manifest)()
    rt.load(tflite_fp32, manifest, threads=1, xnnpack=xnnpack)
    y = rt.run(images)
    assert y.shape == (8, 10) and y.dtype == np.float32
    assert np.abs(y - _reference(tflite_fp32, images)).max() < 1e-3
    assert rt.details() == {"delegate": "xnnpack" if xnnpack else "builtin", "threads": 1}


@pytest.mark.slow
def test_litert_int8_edges_follow_the_manifest(tflite_int8, images):
    manifest = read_manifest(tflite_int8)
    assert manifest.inputs[0].dtype == "int8" and manifest.outputs[0].dtype == "int8"
    rt = runtime_for(manifest)()
    rt.load(tflite_int8, manifest, threads=1)
    y = rt.run(images)
    ref = _reference(tflite_int8, images)
    assert y.shape == ref.shape and y.dtype == np.float32
    assert np.mean(y.argmax(1) == ref.argmax(1)) >= 0.75  # dequantized logits, not raw int8 codes
    out = manifest.outputs[0]  # int8 codes dequantize into [(-128 - zp) * scale, (127 - zp) * scale]
    assert (-128 - out.zero_point) * out.scale - 1e-6 <= y.min() and y.max() <= (127 - out.zero_point) * out.scale + 1e-6
    assert len(np.unique(np.round(y / out.scale, 3))) > 1 and np.allclose(y / out.scale, np.round(y / out.scale), atol=1e-3)


def test_edges_quantize_nhwc_int8_exactly():
    spec = TensorSpec("x", (1, 2, 2, 3), "int8", "NHWC", scale=0.5, zero_point=-3)
    x = np.arange(12, dtype=np.float32).reshape(1, 3, 2, 2) - 6  # NCHW
    q = to_model_input(x, spec)
    assert q.dtype == np.int8 and q.shape == (1, 2, 2, 3)
    np.testing.assert_array_equal(q, np.clip(np.round(x.transpose(0, 2, 3, 1) / 0.5) - 3, -128, 127))
    out = TensorSpec("y", (1, 4), "int8", "NC", scale=0.25, zero_point=10)
    y = from_model_output(np.array([[10, 14, -128, 127]], dtype=np.int8), out)
    np.testing.assert_allclose(y, [[0.0, 1.0, -34.5, 29.25]])
    with pytest.raises(BadArtifactError, match="no scale"):
        to_model_input(x, TensorSpec("x", (1, 2, 2, 3), "int8", "NHWC"))


def test_torch_runtime_refuses_other_weights(onnx_fp32, tmp_path, copy_artifact):
    import json

    from mnv2deploy.errors import BadWeightsError
    from mnv2deploy.manifest import manifest_path

    art = copy_artifact(onnx_fp32)
    d = json.loads(manifest_path(art).read_text())
    d["weights"]["sha256"] = "0" * 64
    manifest_path(art).write_text(json.dumps(d))
    with pytest.raises(BadWeightsError, match="not the ones"):
        TorchRuntime().load(art, read_manifest(art))


def test_registry_errors_list_valid_choices(onnx_fp32):
    manifest = read_manifest(onnx_fp32)
    with pytest.raises(UsageError) as e:
        runtime_for(manifest, arch="arm64")
    assert "tflite" in e.value.hint
    with pytest.raises(UsageError, match="arch 'riscv'"):
        runtime_class("onnx", "riscv")
    assert runtime_class("tflite", "arm64").name == "litert-arm64"


def _target_of_format(fmt: str) -> str:
    """The registered target a runtime of ``fmt`` is tested on: its fp32 one when there is one (plain numerics)."""
    from mnv2deploy.targets import TARGETS

    names = [n for n, t in TARGETS.items() if t.format == fmt]
    assert names, f"no registered target writes {fmt} artifacts"
    return next((n for n in names if TARGETS[n].precision == "fp32"), names[0])


def _corrupt(path, kind: str) -> None:
    """Truncate every file of the artifact (a package folder has several), or overwrite it with random bytes after
    its first 64 (so a flatbuffer or protobuf reader gets past the magic and walks garbage)."""
    rng = np.random.default_rng(1)
    for f in ([p for p in path.rglob("*") if p.is_file()] if path.is_dir() else [path]):
        data = f.read_bytes()
        f.write_bytes(data[: len(data) // 3] if kind == "truncated" else data[:64] + rng.bytes(max(0, len(data) - 64)))


@pytest.mark.slow
def test_every_runtime_runs_an_export_of_its_format_like_torch(export_artifact, images, runtime_key):
    """Over the runtime registry; where a runtime cannot run here (Core ML on Linux) its static checks must pass."""
    fmt, arch = runtime_key
    result = export_artifact(_target_of_format(fmt))
    runtime = runtime_class(fmt, arch)
    assert fmt in runtime.formats and runtime.arch == arch
    reason = runtime.unavailable_reason()
    if reason and arch == "x86_64":
        checks = runtime.static_checks(result.artifact, result.manifest)
        assert checks and all(c["passed"] for c in checks), checks
        return
    assert reason is None, reason  # another CPU's runtime is the emulation tier: `make android-setup` sets it up
    out = call_in_child(run_artifact, str(result.artifact), result.manifest, images, arch, 1, timeout=600)
    ref = _reference(result.artifact, images)
    assert out["logits"].shape == ref.shape and out["runtime"] == runtime.name
    if result.manifest.precision == "fp32":
        assert np.abs(out["logits"] - ref).max() < 1e-3
    assert (out["logits"].argmax(1) == ref.argmax(1)).mean() >= 0.75


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["truncated", "random"])
def test_every_runtime_turns_a_corrupt_artifact_into_one_line(export_artifact, copy_artifact, images, runtime_key,
                                                              kind):
    """A truncated or garbled file of each runtime's format: one typed line (the runtime runs in a child, so even a
    native crash is one), or a failed static check where the runtime cannot run here."""
    fmt, arch = runtime_key
    art = copy_artifact(export_artifact(_target_of_format(fmt)).artifact)
    _corrupt(art, kind)
    manifest = read_manifest(art, verify=False)
    runtime = runtime_class(fmt, arch)
    if runtime.unavailable_reason() and arch == "x86_64":
        assert not all(c["passed"] for c in runtime.static_checks(art, manifest))
        return
    with pytest.raises(BadArtifactError) as e:
        call_in_child(run_artifact, str(art), manifest, images, arch, timeout=300)
    assert "\n" not in e.value.one_line()


def test_child_signal_becomes_bad_artifact_error():
    with pytest.raises(BadArtifactError, match="SIGABRT"):
        call_in_child(os.abort)


def test_child_timeout_kills_the_child():
    start = time.monotonic()
    with pytest.raises(ChildTimeoutError, match="within 1 s"):
        call_in_child(time.sleep, 30, timeout=1)
    assert time.monotonic() - start < 20


def test_child_typed_errors_cross_unchanged(tmp_path):
    with pytest.raises(BadArtifactError) as e:
        call_in_child(read_manifest, tmp_path / "nope.onnx")
    assert e.value.hint and "exported artifact" in e.value.hint


def test_child_returns_results():
    assert call_in_child(divmod, 7, 2) == (3, 1)


def test_a_child_that_dies_starting_is_reported_not_waited_for(tmp_path):
    """A script without a ``__main__`` guard: the spawned child re-runs it and dies while starting. With megabytes
    of arguments the parent used to hang writing them (spawn holds that pipe's read end itself); now it says so."""
    import subprocess
    import sys
    from pathlib import Path

    script = tmp_path / "no_guard.py"
    script.write_text("import sys\nimport numpy as np\nfrom mnv2deploy.errors import Mnv2Error\n"
                      "from mnv2deploy.runtimes.child import call_in_child\n"
                      "try:\n    print(call_in_child(np.sum, np.zeros((500, 3, 32, 32), np.float32)))\n"
                      "except Mnv2Error as e:\n    sys.exit(e.one_line())\n")
    repo = str(Path(__file__).resolve().parents[2])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([repo, os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120, env=env,
                          cwd=tmp_path)
    assert proc.returncode != 0 and "exited with code 1 without a result" in proc.stderr, proc.stderr[-500:]
    assert '`if __name__ == "__main__":` guard' in proc.stderr  # the hint says what to do, not "corrupt artifact"
