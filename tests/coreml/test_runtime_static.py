"""CoreMLRuntime on Linux: refuses to run, and its static checks pass on good packages and fail on bad ones."""

from __future__ import annotations

import dataclasses
import shutil
import sys

import numpy as np
import pytest
from PIL import Image

from mnv2deploy.data import preprocess
from mnv2deploy.errors import PlatformError
from mnv2deploy.manifest import TensorSpec, read_manifest
from mnv2deploy.parity import tolerance_for
from mnv2deploy.runtimes.coreml import CoreMLRuntime, check_quantized_accuracy, to_pil_image

EXPECTED = ["package loads as a spec", "minimum deployment target iOS 16+", "inputs match the manifest",
            "outputs match the manifest", "labels and preprocessing in metadata", "weights have the promised dtype"]


def by_name(checks):
    return {c["name"]: c for c in checks}


@pytest.mark.skipif(sys.platform == "darwin", reason="the Linux behaviour")
def test_core_ml_does_not_run_on_linux(tmp_path):
    assert CoreMLRuntime.unavailable_reason() == "Core ML runs only on macOS"
    with pytest.raises(PlatformError, match="only on macOS"):
        CoreMLRuntime().load(tmp_path, None)


@pytest.mark.slow
@pytest.mark.parametrize("target, extra", [("coreml", []), ("coreml-int8", ["quantized torch model accuracy"])])
def test_checks_pass_on_exported_packages(coreml_export, target, extra):
    r = coreml_export(target)
    checks = CoreMLRuntime.static_checks(r.artifact, read_manifest(r.artifact))
    assert [c["name"] for c in checks] == EXPECTED + extra
    assert all(c["passed"] for c in checks), checks
    weights = by_name(checks)["weights have the promised dtype"]["detail"]
    assert weights.startswith("53/53") and ("int8" in weights if target == "coreml-int8" else "fp16" in weights)


@pytest.mark.slow
def test_w8a8_checks_include_activations(coreml_export):
    r = coreml_export("coreml-int8", activations="int8")
    checks = by_name(CoreMLRuntime.static_checks(r.artifact, r.manifest))
    assert checks["activations quantized to 8 bits (W8A8)"]["passed"]
    assert checks["minimum deployment target iOS 16+"]["detail"].endswith("iOS17")
    assert all(c["passed"] for name, c in checks.items() if name != "quantized torch model accuracy")
    # the accuracy check applies parity's int8 bar to what the manifest records (measured at 32x32: accuracy
    # 0.776 = float, top-1 agreement 0.976 < 0.98, so W8A8 fails it here; docs/ios.md)
    q, tol = r.manifest.extra["quantized_torch"], tolerance_for("int8")
    expected = (q["top1_agreement_with_float"] >= tol.min_agreement
                and (q["float_accuracy"] - q["accuracy"]) * 100 <= tol.max_drop + 1e-9)
    assert checks["quantized torch model accuracy"]["passed"] == expected


@pytest.mark.slow
def test_fp16_package_claimed_as_int8_fails_the_weight_check(coreml_export):
    r = coreml_export("coreml")
    lie = dataclasses.replace(r.manifest, precision="int8", extra={**r.manifest.extra, "quantized_torch": {
        "accuracy": 0.5, "float_accuracy": 0.5, "top1_agreement_with_float": 1.0, "samples": 10}})
    check = by_name(CoreMLRuntime.static_checks(r.artifact, lie))["weights have the promised dtype"]
    assert not check["passed"] and check["detail"].startswith("0/53")


@pytest.mark.slow
def test_wrong_shapes_and_labels_fail(coreml_export):
    r = coreml_export("coreml")
    m = r.manifest
    wrong = dataclasses.replace(m, inputs=(TensorSpec("image", (1, 64, 64, 3), "uint8", "NHWC"),),
                                outputs=(TensorSpec("probs", (1, 10), "float32", "NC"),),
                                preprocessing=dataclasses.replace(m.preprocessing, labels=tuple("abcdefghij")))
    checks = by_name(CoreMLRuntime.static_checks(r.artifact, wrong))
    assert not checks["inputs match the manifest"]["passed"]
    assert "manifest: image 1x64x64x3 uint8" in checks["inputs match the manifest"]["detail"]
    assert not checks["outputs match the manifest"]["passed"]
    assert not checks["labels and preprocessing in metadata"]["passed"]


@pytest.mark.slow
def test_large_quantized_accuracy_drop_fails(coreml_export):
    r = coreml_export("coreml-int8")
    q = {**r.manifest.extra["quantized_torch"], "accuracy": 0.10, "float_accuracy": 0.60}
    bad = dataclasses.replace(r.manifest, extra={**r.manifest.extra, "quantized_torch": q})
    check = by_name(CoreMLRuntime.static_checks(r.artifact, bad))["quantized torch model accuracy"]
    assert not check["passed"] and "drop +50.0 pts, limit 1.0 pts" in check["detail"]
    missing = dataclasses.replace(r.manifest, extra={})
    assert not by_name(CoreMLRuntime.static_checks(r.artifact, missing))["quantized torch model accuracy"]["passed"]


@pytest.mark.slow
@pytest.mark.parametrize("damage", ["truncate weights", "remove weights", "garbage spec", "remove Manifest.json"])
def test_damaged_package_fails_to_load_as_a_spec(coreml_export, tmp_path, damage):
    r = coreml_export("coreml-int8")
    bad = tmp_path / r.artifact.name
    shutil.copytree(r.artifact, bad)
    data = bad / "Data" / "com.apple.CoreML"
    if damage == "truncate weights":
        with open(data / "weights" / "weight.bin", "r+b") as f:
            f.truncate(1000)
    elif damage == "remove weights":
        (data / "weights" / "weight.bin").unlink()
    elif damage == "garbage spec":
        (data / "model.mlmodel").write_bytes(np.random.default_rng(0).bytes(4000))
    else:
        (bad / "Manifest.json").unlink()
    checks = CoreMLRuntime.static_checks(bad, r.manifest)
    assert len(checks) == 1 and checks[0]["name"] == "package loads as a spec" and not checks[0]["passed"]
    assert "does not parse as a Core ML package" in checks[0]["detail"]


def test_image_feed_reproduces_the_pixels(default_reference):
    """On macOS the runtime turns normalized batches back into the 8-bit RGB image the package takes."""
    contract = default_reference.spec.contract
    pixels = np.random.default_rng(1).integers(0, 256, size=(32, 32, 3), dtype=np.uint8)
    x = preprocess(Image.fromarray(pixels), contract)

    class M:
        preprocessing = contract
    assert np.array_equal(np.asarray(to_pil_image(x, M)), pixels)


def _manifest_with(q):
    class M:
        extra = {"quantized_torch": q}
    return M


@pytest.mark.parametrize("accuracy, agreement, passed", [
    (0.770, 0.986, True),  # -0.6 pts, agreement above 0.98
    (0.764, 0.990, False),  # 1.2 pts lost: over parity's 1.0-point int8 allowance (the old check allowed 5)
    (0.776, 0.976, False),  # accuracy kept but top-1 agreement under 0.98 (W8A8 at 32x32 measures this)
])
def test_quantized_accuracy_uses_parity_int8_tolerance(accuracy, agreement, passed):
    tol = tolerance_for("int8")
    assert (tol.max_drop, tol.min_agreement) == (1.0, 0.98)
    check = check_quantized_accuracy(_manifest_with({"accuracy": accuracy, "float_accuracy": 0.776,
                                                     "top1_agreement_with_float": agreement, "samples": 500}))
    assert check["passed"] is passed, check["detail"]
    assert "limit 1.0 pts" in check["detail"] and "limit >= 0.98" in check["detail"]


def test_quantized_accuracy_without_labels_gates_agreement():
    good = check_quantized_accuracy(_manifest_with({"accuracy": None, "float_accuracy": None,
                                                    "top1_agreement_with_float": 0.99, "samples": 500}))
    bad = check_quantized_accuracy(_manifest_with({"accuracy": None, "float_accuracy": None,
                                                   "top1_agreement_with_float": 0.5, "samples": 500}))
    assert good["passed"] and not bad["passed"] and "no labels" in bad["detail"]
