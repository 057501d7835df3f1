"""The real int8 exports of the embedded default meet the int8 bar (agreement >= 0.98, drop <= 1.0 pt) on all 500
evaluation images in their runtimes; onnx-int8 only with the session setting its manifest records (x86 ORT
otherwise rewrites S8S8 to U8S8 and saturates: measured 0.874 agreement)."""

import pytest

from mnv2deploy.parity import check_parity

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("target", ["onnx-int8", "tflite-int8"])
def test_int8_export_of_the_default_meets_the_bar(export_artifact, target):
    import torch

    torch.set_num_threads(1)
    result = export_artifact(target)
    report = check_parity(result.artifact, threads=1)
    assert report["samples"] == 500
    assert report["top1_agreement"] >= 0.98, report["checks"]
    assert (report["reference_accuracy"] - report["artifact_accuracy"]) * 100 <= 1.0
    assert report["passed"] is True


def test_onnx_int8_manifest_carries_its_session_setting(export_artifact):
    manifest = export_artifact("onnx-int8").manifest
    assert manifest.extra["onnxruntime_session_config"] == {"session.qdqisint8allowed": "1"}


def test_manifest_cannot_smuggle_other_session_settings(export_artifact):
    from dataclasses import replace

    from mnv2deploy.errors import BadArtifactError
    from mnv2deploy.runtimes.ort import OrtRuntime

    result = export_artifact("onnx-int8")
    hostile = replace(result.manifest, extra={**result.manifest.extra,
                                              "onnxruntime_session_config": {"session.custom_op_library": "/tmp/x.so"}})
    with pytest.raises(BadArtifactError, match="not allowed"):
        OrtRuntime().load(result.artifact, hostile)
