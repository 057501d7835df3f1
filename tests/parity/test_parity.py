"""Parity on real artifacts through the CLI: verdicts, exit codes, JSON keys, JUnit XML, labels or not."""

from __future__ import annotations

import json
from xml.etree import ElementTree as ET

import numpy as np
import pytest
from PIL import Image

from mnv2deploy.cli.app import main
from mnv2deploy.manifest import manifest_path
from mnv2deploy.parity import compare_logits
from mnv2deploy.tolerance import TOLERANCES

KEYS = {"passed", "status", "top1_agreement", "reference_accuracy", "artifact_accuracy", "max_abs_diff",
        "mean_abs_diff", "sqnr_db", "cosine", "thresholds", "precision", "target", "samples", "runtime", "versions",
        "conversion_fidelity", "arch", "cpu"}


def _run(capsys, *args):
    code = main(["parity", *map(str, args), "--json"])
    out, err = capsys.readouterr()
    return code, (json.loads(out) if out.strip() else None), err


def test_fp32_onnx_passes_with_all_keys(onnx_fp32, capsys):
    code, r, err = _run(capsys, onnx_fp32, "--samples", 100)
    assert code == 0, err
    assert KEYS <= set(r) and r["status"] == "passed" and r["passed"] is True
    assert r["samples"] == 100 and r["runtime"] == "onnxruntime" and r["precision"] == "fp32"
    assert r["top1_agreement"] == 1.0 and r["max_abs_diff"] <= 1e-3 and r["cosine"] > 0.9999
    assert 0 <= r["reference_accuracy"] <= 1 and r["artifact_accuracy"] == r["reference_accuracy"]
    assert r["conversion_fidelity"] is None  # only int8 has a quantized torch model
    assert r["thresholds"]["max_abs_diff"] == TOLERANCES["fp32"].max_abs_diff


@pytest.mark.slow
def test_int8_onnx_is_judged_on_decisions_not_logits(onnx_int8, capsys):
    code, r, err = _run(capsys, onnx_int8, "--samples", 200)
    names = {c["name"]: c for c in r["checks"]}
    assert names["max_abs_diff"]["passed"] is None and names["max_abs_diff"]["value"] > 1e-3  # int8 moves logits
    assert names["accuracy_drop"]["limit"] == "<= 1.0 pts" and names["top1_agreement"]["limit"] == ">= 0.98"
    assert code == (0 if r["passed"] else 3), err
    assert r["conversion_fidelity"]["status"] == "n/a"  # this local model records no quantized torch logits


@pytest.mark.slow
def test_overrides_replace_the_int8_defaults(onnx_int8, capsys):
    code, r, err = _run(capsys, onnx_int8, "--samples", 50, "--min-agreement", "0.5", "--max-drop", "30")
    assert code == 0, err
    assert r["thresholds"]["min_agreement"] == 0.5 and r["thresholds"]["max_drop"] == 30.0
    assert main(["parity", str(onnx_int8), "--min-agreement", "2"]) == 2  # out of 0..1 is a usage error


def test_logit_difference_fails_fp32_with_exit_3(onnx_fp32, tmp_path, capsys, copy_artifact):
    """A real artifact whose output disagrees: fp32 Gemm bias nudged by 0.01 in the ONNX file itself."""
    import onnx
    from onnx import numpy_helper

    from mnv2deploy.fileio import sha256_file

    art = copy_artifact(onnx_fp32)
    model = onnx.load(str(art))
    init = [i for i in model.graph.initializer if len(numpy_helper.to_array(i).shape) == 1
            and numpy_helper.to_array(i).shape[0] == 10][-1]
    init.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(init) + np.float32(0.01), init.name))
    onnx.save(model, str(art))
    m = json.loads(manifest_path(art).read_text())
    m["artifact_sha256"] = sha256_file(art)
    manifest_path(art).write_text(json.dumps(m))
    junit = tmp_path / "parity.xml"
    code = main(["parity", str(art), "--samples", "20", "--junit-xml", str(junit)])
    out, err = capsys.readouterr()
    assert code == 3 and "max_abs_diff" in err and err.count("\n") == 1
    assert "✗" in out
    suite = ET.parse(junit).getroot().find("testsuite")
    failures = [tc.get("name") for tc in suite if tc.find("failure") is not None]
    assert failures == ["max_abs_diff"] and int(suite.get("failures")) == 1
    assert int(suite.get("tests")) == len(suite) >= 5


def test_junit_xml_is_well_formed_on_pass(onnx_fp32, tmp_path, capsys):
    junit = tmp_path / "sub" / "parity.xml"
    junit.parent.mkdir()
    assert main(["parity", str(onnx_fp32), "--samples", "10", "--junit-xml", str(junit)]) == 0
    root = ET.parse(junit).getroot()
    suite = root.find("testsuite")
    names = {tc.get("name") for tc in suite.iter("testcase")}
    assert {"top1_agreement", "max_abs_diff", "accuracy_drop", "sqnr_db", "cosine"} <= names
    assert suite.get("failures") == "0" and list(junit.parent.iterdir()) == [junit]  # no temp file left


def test_sha256_mismatch_exits_2(onnx_fp32, tmp_path, capsys, copy_artifact):
    art = copy_artifact(onnx_fp32)
    with open(art, "ab") as f:
        f.write(b"\0")
    code, r, err = _run(capsys, art)
    assert code == 2 and "sha256" in err and "does not match" in err
    assert r["exit_code"] == 2 and "does not match" in r["error"] and "passed" not in r  # the error object


def test_missing_manifest_exits_2(onnx_fp32, tmp_path, capsys, copy_artifact):
    art = copy_artifact(onnx_fp32)
    manifest_path(art).unlink()
    code, r, err = _run(capsys, art)
    assert code == 2 and "no manifest" in err


def test_corrupt_model_with_matching_hash_exits_2(onnx_fp32, tmp_path, capsys, copy_artifact):
    from mnv2deploy.fileio import sha256_file

    art = copy_artifact(onnx_fp32)
    art.write_bytes(art.read_bytes()[:5000])
    m = json.loads(manifest_path(art).read_text())
    m["artifact_sha256"] = sha256_file(art)
    manifest_path(art).write_text(json.dumps(m))
    code, r, err = _run(capsys, art, "--samples", 4)
    assert code == 2 and err.count("\n") == 1 and "onnxruntime cannot load" in err


def test_unlabelled_folder_gives_null_accuracies(onnx_fp32, tmp_path, capsys):
    folder = tmp_path / "imgs" / "holiday photos"  # not one of the model's classes
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(6):
        Image.fromarray(rng.integers(0, 255, (40, 48, 3), dtype=np.uint8)).save(folder / f"{i}.png")
    junit = tmp_path / "r.xml"
    code, r, err = _run(capsys, onnx_fp32, "--data", folder.parent, "--junit-xml", junit)
    assert code == 0, err
    assert r["samples"] == 6 and r["reference_accuracy"] is None and r["artifact_accuracy"] is None
    assert r["top1_agreement"] == 1.0
    drop = next(c for c in r["checks"] if c["name"] == "accuracy_drop")
    assert drop["status"] == "skipped" and drop["passed"] is None  # not run, never passed
    case = next(tc for tc in ET.parse(junit).getroot().iter("testcase") if tc.get("name") == "accuracy_drop")
    assert "no labels" in case.find("skipped").get("message")
    # asking for an accuracy gate on images without labels is a usage error, not a check that silently cannot run
    code, r, err = _run(capsys, onnx_fp32, "--data", folder.parent, "--max-drop", "1")
    assert code == 2 and "--max-drop needs labelled images" in r["error"] and err.count("\n") == 1


def _truncated_with_matching_manifest(onnx_fp32, copy_artifact):
    from mnv2deploy.fileio import sha256_file

    art = copy_artifact(onnx_fp32)
    art.write_bytes(art.read_bytes()[:5000])
    m = json.loads(manifest_path(art).read_text())
    m["artifact_sha256"] = sha256_file(art)
    manifest_path(art).write_text(json.dumps(m))
    return art


def test_truncated_artifact_json_error_and_junit_error_testcase(onnx_fp32, tmp_path, copy_artifact):
    """Issue 17's must-show through the real CLI in a child process: exit 2, stdout one JSON object with the error,
    and the JUnit file written anyway, holding an <error> testcase (a CI publish step has something to show)."""
    import subprocess
    import sys

    art = _truncated_with_matching_manifest(onnx_fp32, copy_artifact)
    junit = tmp_path / "r.xml"
    proc = subprocess.run([sys.executable, "-m", "mnv2deploy", "parity", str(art), "--json", "--junit-xml",
                           str(junit), "--samples", "4"], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 2, proc.stderr
    assert len(proc.stdout.strip().splitlines()) == 1
    obj = json.loads(proc.stdout)
    assert obj["exit_code"] == 2 and "cannot load" in obj["error"] and obj["hint"]
    suite = ET.parse(junit).getroot().find("testsuite")
    errors = [tc.find("error") for tc in suite.iter("testcase") if tc.find("error") is not None]
    assert suite.get("errors") == "1" and len(errors) == 1 and "cannot load" in errors[0].get("message")
    assert proc.stderr.strip().splitlines()[-1].startswith("error: ") and "Traceback" not in proc.stderr


def test_usage_error_before_parity_runs_still_writes_the_junit_error(onnx_fp32, tmp_path, capsys):
    junit = tmp_path / "r.xml"
    code, r, err = _run(capsys, onnx_fp32, "--samples", "0", "--junit-xml", junit)
    assert code == 2 and r["exit_code"] == 2
    error = ET.parse(junit).getroot().find("testsuite/testcase/error")
    assert "--samples" in error.get("message") and error.get("type") == "exit 2"


def test_bad_manifest_still_writes_the_junit_error(onnx_fp32, tmp_path, capsys, copy_artifact):
    art = copy_artifact(onnx_fp32)
    manifest_path(art).unlink()
    junit = tmp_path / "r.xml"
    code, r, err = _run(capsys, art, "--junit-xml", junit)
    assert code == 2 and r["exit_code"] == 2
    assert ET.parse(junit).getroot().find("testsuite").get("errors") == "1"


def test_empty_data_folder_exits_2(onnx_fp32, tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    code, r, err = _run(capsys, onnx_fp32, "--data", tmp_path / "empty")
    assert code == 2


def test_cpu_without_arm64_is_a_usage_error(onnx_fp32, capsys):
    assert main(["parity", str(onnx_fp32), "--cpu", "cortex-a57"]) == 2


def test_compare_logits_metrics():
    ref = np.array([[1.0, 2.0, 3.0], [3.0, 1.0, 0.0]])
    art = ref + np.array([[0.0, 0.0, 0.1], [0.0, 3.0, 0.0]])
    m = compare_logits(ref, art)
    assert m["top1_agreement"] == 0.5 and m["max_abs_diff"] == pytest.approx(3.0)
    assert m["mean_abs_diff"] == pytest.approx(3.1 / 6)
    assert m["sqnr_db"] == pytest.approx(10 * np.log10(24 / 9.01))
    assert compare_logits(ref, ref)["sqnr_db"] == float("inf")


@pytest.mark.slow
@pytest.mark.android
def test_arm64_parity_runs_emulated_litert(tflite_fp32, capsys):
    code, r, err = _run(capsys, tflite_fp32, "--arch", "arm64", "--cpu", "cortex-a57", "--samples", 10)
    assert code == 0, err
    assert r["arch"] == "aarch64" and r["cpu"] == "cortex-a57" and r["runtime"] == "litert-arm64"
    assert r["max_abs_diff"] <= 1e-3 and r["runtime_details"]["emulated"] is True


def test_arm64_refuses_onnx(onnx_fp32, capsys):
    code, r, err = _run(capsys, onnx_fp32, "--arch", "arm64")
    assert code == 2 and "no arm64 runtime for onnx" in err


@pytest.mark.slow
def test_conversion_fidelity_compares_with_the_recorded_quantized_logits(onnx_int8, tmp_path, capsys,
                                                                        copy_artifact):
    """Record the quantized-model logits the way the exporter does (here: the int8 graph's own outputs, via
    onnxruntime with the builtin providers), then parity on the same data compares against them."""
    from mnv2deploy.data import load_embedded
    from mnv2deploy.manifest import read_manifest
    from mnv2deploy.runtimes.ort import OrtRuntime

    art = copy_artifact(onnx_int8)
    manifest = read_manifest(art)
    batch = load_embedded("eval", manifest.preprocessing, 40)
    rt = OrtRuntime()
    rt.load(art, manifest, threads=1)
    logits = rt.run(batch.images)
    np.savez(tmp_path / (art.name + ".qref.npz"), logits=logits, labels=batch.labels)
    m = json.loads(manifest_path(art).read_text())
    m["extra"]["quantized_reference"] = {"file": art.name + ".qref.npz", "data": "embedded:eval", "samples": 40,
                                         "accuracy": float(np.mean(logits.argmax(1) == batch.labels))}
    manifest_path(art).write_text(json.dumps(m))
    _, r, err = _run(capsys, art, "--samples", 40)
    cf = r["conversion_fidelity"]
    assert cf["status"] == "compared" and cf["top1_agreement"] == 1.0 and cf["max_abs_diff"] < 1e-4, err
    _, r, _ = _run(capsys, art, "--samples", 30)
    assert r["conversion_fidelity"]["status"] == "n/a" and "x 30" in r["conversion_fidelity"]["reason"]
