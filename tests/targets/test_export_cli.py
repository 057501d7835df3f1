"""The export command end to end: one JSON object on stdout, `--target all`, exit codes (slow: converters)."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

from mnv2deploy.manifest import read_manifest
from mnv2deploy.targets import available_targets


def run_cli(*args: str) -> subprocess.CompletedProcess:
    # `--target all` converts nine targets; executorch-int8 alone took 10 min at load average ~10 on 2 cores
    return subprocess.run([sys.executable, "-m", "mnv2deploy", "export", *args], capture_output=True, text=True,
                          timeout=1800)


@pytest.mark.slow
def test_export_json_prints_one_object(tmp_path):
    proc = run_cli("--target", "onnx", "--out", str(tmp_path), "--json")
    assert proc.returncode == 0, proc.stderr[-500:]
    out = json.loads(proc.stdout)
    assert Path(out["artifact"]).exists() and Path(out["manifest"]).exists()
    assert read_manifest(Path(out["artifact"])).target == "onnx"


@pytest.mark.slow
def test_target_all_exports_every_available_target_with_clean_stdout(tmp_path):
    # a small random model keeps seven conversions cheap
    proc = run_cli("--target", "all", "--out", str(tmp_path), "--weights", "random", "--width", "0.35",
                   "--num-classes", "10", "--resolution", "32", "--calib-samples", "16", "--json")
    assert proc.returncode == 0, proc.stderr[-500:]
    out = json.loads(proc.stdout)  # litert-torch's progress must not leak onto stdout
    exported = {a["target"] for a in out["artifacts"]}
    skipped = {s["target"] for s in out["skipped"]}
    assert exported | skipped == set(available_targets()) and not exported & skipped
    assert {"onnx", "onnx-int8", "tflite", "tflite-fp16", "tflite-int8"} <= exported
    if importlib.util.find_spec("coremltools") is not None:  # converts on Linux too (it only cannot predict)
        assert {"coreml", "coreml-int8"} <= exported
        names = {a["target"]: Path(a["artifact"]).name for a in out["artifacts"]}
        assert names["coreml"] == "mobilenet_v2-0.35-32.fp16.mlpackage"
        assert names["coreml-int8"] == "mobilenet_v2-0.35-32.int8.mlpackage"
    for a in out["artifacts"]:
        assert read_manifest(Path(a["artifact"])).target == a["target"]
    assert all(s["reason"] for s in out["skipped"])


@pytest.mark.parametrize("args, code", [
    (["--target", "nope"], 2),
    (["--target", "tflite", "--dynamic-batch"], 2),
    (["--target", "onnx", "--option", "novalue"], 2),
    (["--target", "onnx", "--split", "0"], 2),
    (["--target", "coreml", "--dynamic-batch"], 2),
    (["--target", "coreml", "--option", "precision=int4"], 2),
])
def test_bad_usage_exits_2_with_one_line(tmp_path, args, code):
    proc = run_cli(*args, "--out", str(tmp_path / "o"))
    assert proc.returncode == code
    assert proc.stdout == ""
    assert proc.stderr.strip().splitlines()[-1].startswith(("error", "Error", "Usage", "Try")) or "Invalid" in proc.stderr
