"""Broken, foreign and tampered artifacts through `parity`, `bench` and `memory`: one line, exit 2, the parent
process survives (native runtimes load them in a child process), and nothing outside the artifact's folder is
read or executed. (tests/runtimes covers the runtimes themselves on corrupt files at the API level.)"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from mnv2deploy.manifest import manifest_path, read_manifest

from .conftest import cli, copy_pair, edit_manifest, expect_error

RNG = np.random.default_rng(8)


def truncate(art: Path) -> None:
    art.write_bytes(art.read_bytes()[: art.stat().st_size // 3])


def random_bytes(art: Path) -> None:
    data = art.read_bytes()
    # keep the first 64 bytes (the flatbuffer/protobuf header) so the runtime gets past the magic and walks garbage
    art.write_bytes(data[:64] + RNG.bytes(len(data) - 64))


def flip_one_byte(art: Path) -> None:
    data = bytearray(art.read_bytes())
    data[len(data) // 2] ^= 0xFF
    art.write_bytes(bytes(data))


def other_onnx_model(art: Path) -> None:
    """A valid ONNX model of something else (64x64 input, 10 outputs) under the artifact's name."""
    import torch
    from torch import nn

    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 10)).eval()
    torch.onnx.export(model, (torch.zeros(1, 3, 64, 64),), str(art), input_names=["input"], output_names=["logits"],
                      dynamo=False, opset_version=17)


def claims_64(art: Path) -> None:
    """The manifest edited to describe a 64x64 model (its sha256 still matches the unchanged 32x32 file)."""
    d = json.loads(manifest_path(art).read_text())
    d["inputs"][0]["shape"] = [1, 3, 64, 64]
    d["preprocessing"].update(resolution=64, resize=64)
    d["model"]["resolution"] = 64
    manifest_path(art).write_text(json.dumps(d))


# case id, which artifact, command, how to break it, rehash the manifest afterwards, exit code, what the line says
CASES = [
    ("artifact-truncated", "onnx", "parity", truncate, False, 2, "does not match its manifest"),
    ("artifact-truncated-rehashed", "onnx", "parity", truncate, True, 2, "onnxruntime cannot load"),
    ("artifact-random-bytes-onnx", "onnx", "parity", random_bytes, True, 2, "onnxruntime cannot load"),
    ("artifact-random-bytes-tflite", "tflite", "parity", random_bytes, True, 2, ""),
    ("artifact-truncated-tflite-bench", "tflite", "bench", truncate, True, 2, ""),
    ("artifact-random-bytes-onnx-bench", "onnx", "bench", random_bytes, True, 2, "onnxruntime cannot load"),
    ("artifact-truncated-tflite-memory", "tflite", "memory", truncate, False, 2, "LiteRT cannot load"),
    ("artifact-random-bytes-onnx-memory", "onnx", "memory", random_bytes, False, 2, "as ONNX"),
    ("artifact-empty-rehashed", "onnx", "parity", lambda a: a.write_bytes(b""), True, 2, "cannot load"),
    ("artifact-one-byte-changed", "tflite", "parity", flip_one_byte, False, 2, "the file changed after export"),
    ("artifact-of-another-model", "onnx", "parity", other_onnx_model, True, 2, "input shape (1, 3, 64, 64)"),
    ("manifest-describes-another-shape", "tflite", "parity", claims_64, False, 2, "is not the manifest's (1, 3, 64, 64)"),
]


def _argv(command: str, art: Path) -> list:
    if command == "parity":
        return ["parity", art, "--samples", "4"]
    if command == "bench":
        return ["bench", art, "--runs", "2", "--warmup", "0"]
    return ["memory", art, "--no-xnnpack"]


@pytest.mark.parametrize("case,which,command,breaker,rehash,code,needle", CASES, ids=[c[0] for c in CASES])
def test_broken_artifact(capsys, tmp_path, onnx_artifact, tflite_artifact, case, which, command, breaker, rehash,
                         code, needle):
    art = copy_pair(onnx_artifact if which == "onnx" else tflite_artifact, tmp_path)
    breaker(art)
    if rehash:
        edit_manifest(art, rehash=True)
    line = expect_error(cli(capsys, *_argv(command, art)), code, needle, case=case, scrub=(tmp_path,))
    if which == "tflite" and rehash and command != "memory":  # LiteRT either rejects the file or crashes its child
        assert "LiteRT cannot load" in line or "runtime process" in line, line


def _manifest_missing(art: Path) -> None:
    manifest_path(art).unlink()


def _manifest_of_another_artifact(art: Path) -> None:
    # another file's name and sha256 (a renamed pair with the same content is accepted: manifests name their
    # artifact by content)
    edit_manifest(art, artifact="mobilenet_v2-1.0-32.fp32.tflite", artifact_sha256="ab" * 32)


def _not_json(art: Path) -> None:
    manifest_path(art).write_text('{"target": "onnx", "artifact": ')


def _wrong_types(art: Path) -> None:
    edit_manifest(art, inputs="input")


def _points_outside(art: Path) -> None:
    edit_manifest(art, artifact=f"../{art.name}")


def _absolute(art: Path) -> None:
    edit_manifest(art, artifact="/etc/passwd")


def _newer_schema(art: Path) -> None:
    edit_manifest(art, schema=99)


def _deeply_nested(art: Path) -> None:
    manifest_path(art).write_text("[" * 100_000)


def _unknown_dtype(art: Path) -> None:
    d = json.loads(manifest_path(art).read_text())
    d["inputs"][0]["dtype"] = "object"
    manifest_path(art).write_text(json.dumps(d))


def _artifact_missing(art: Path) -> None:
    art.unlink()


MANIFEST_CASES = [
    ("manifest-missing", _manifest_missing, "no manifest beside"),
    ("manifest-of-another-artifact", _manifest_of_another_artifact, "describes 'mobilenet_v2-1.0-32.fp32.tflite'"),
    ("manifest-not-json", _not_json, "is not valid JSON"),
    ("manifest-wrong-types", _wrong_types, "inputs is str, not list"),
    ("manifest-points-outside-its-folder", _points_outside, "describes '../"),
    ("manifest-absolute-path", _absolute, "describes '/etc/passwd'"),
    ("manifest-newer-schema", _newer_schema, "schema 99 is newer"),
    ("manifest-deeply-nested", _deeply_nested, "RecursionError"),
    ("manifest-unknown-dtype", _unknown_dtype, "inputs[0].dtype 'object' is not one of"),
    ("artifact-missing", _artifact_missing, "does not exist"),
]


@pytest.mark.parametrize("command", ["parity", "bench"])
@pytest.mark.parametrize("case,breaker,needle", MANIFEST_CASES, ids=[c[0] for c in MANIFEST_CASES])
def test_missing_or_tampered_manifest(capsys, tmp_path, onnx_artifact, command, case, breaker, needle):
    """Refused from the manifest alone, before any runtime or reference model is loaded."""
    art = copy_pair(onnx_artifact, tmp_path / "a")
    breaker(art)
    expect_error(cli(capsys, *_argv(command, art)), 2, needle, case=case if command == "parity" else None,
                 scrub=(tmp_path,))


def test_manifest_weights_that_would_run_code_are_not_run(capsys, tmp_path, onnx_artifact):
    """A manifest names the weights its reference comes from; pointing it at a code-running pickle only gets the
    pickle refused (torch.load(weights_only=True)), never executed."""
    import torch

    from .test_weights import RunsCode

    evil = tmp_path / "evil.pth"
    torch.save({"features.0.0.weight": RunsCode(tmp_path / "PWNED")}, evil)
    art = copy_pair(onnx_artifact, tmp_path / "a")
    d = json.loads(manifest_path(art).read_text())
    d["weights"] = {**d["weights"], "id": "file", "path": str(evil)}
    manifest_path(art).write_text(json.dumps(d))
    expect_error(cli(capsys, "parity", art, "--samples", "4"), 2, "is refused: loading it would import code",
                 case="manifest-weights-pickle-runs-code", scrub=(tmp_path,))
    assert not (tmp_path / "PWNED").exists()


def test_quantized_reference_outside_the_folder_is_not_read(tmp_path, onnx_artifact):
    """int8 manifests name a .qref.npz beside the artifact; a name that leaves the folder is n/a, not read."""
    from dataclasses import replace

    from mnv2deploy.parity import conversion_fidelity

    art = copy_pair(onnx_artifact, tmp_path / "a")
    secret = tmp_path / "secret.npz"
    np.savez(secret, logits=np.zeros((4, 10), np.float32), labels=np.zeros(4, np.int64))
    manifest = replace(read_manifest(art), precision="int8")
    for name in ("../secret.npz", str(secret), "", 5):
        m = replace(manifest, extra={"quantized_reference": {"file": name, "data": "embedded:eval", "samples": 4}})
        out = conversion_fidelity(art, m, None, 4, np.zeros(4, np.int64), np.zeros((4, 10), np.float32))
        assert out["status"] == "n/a" and "not a file name beside the artifact" in out["reason"], (name, out)
