"""Every registered target's export of the embedded default passes parity on all 500 evaluation images in its
runtime; int8 meets the int8 bar (agreement >= 0.98, drop <= 1.0 pt), onnx-int8 in a plain onnxruntime session (its
U8U8 graph does not hit the x86 U8S8 saturation that took signed int8 QDQ to 0.874 agreement)."""

import pytest

from mnv2deploy.parity import check_parity

pytestmark = pytest.mark.slow


def test_every_target_export_of_the_default_passes_parity(export_artifact, target_name):
    """Over the registry, on all 500 evaluation images: a newly registered target is parity-checked for free. int8
    meets the bar (agreement >= 0.98, drop <= 1.0 pt); a runtime that cannot run here reports skipped and its static
    checks pass."""
    import torch

    from mnv2deploy.targets import get_target

    if get_target(target_name).unavailable_reason():  # every target's extra is in [dev]: not in CI
        pytest.skip(get_target(target_name).unavailable_reason())
    torch.set_num_threads(1)
    result = export_artifact(target_name)
    report = check_parity(result.artifact, result.manifest, threads=1)
    assert report["target"] == target_name and report["passed"] is True, report["checks"]
    if report["status"] == "skipped":
        assert report["static_checks"] and all(c["passed"] for c in report["static_checks"])
        return
    assert report["status"] == "passed" and report["samples"] == 500
    if report["precision"] == "int8":
        assert report["top1_agreement"] >= 0.98, report["checks"]
        assert (report["reference_accuracy"] - report["artifact_accuracy"]) * 100 <= 1.0


def test_onnx_int8_is_uint8_qdq_and_needs_no_session_setting(export_artifact):
    import onnx

    result = export_artifact("onnx-int8")
    assert "onnxruntime_session_config" not in result.manifest.extra
    graph = onnx.load(str(result.artifact)).graph
    zero_points = {i.name: i.data_type for i in graph.initializer if i.name.endswith("_zero_point")}
    quant_inputs = [n.input[2] for n in graph.node if n.op_type in ("QuantizeLinear", "DequantizeLinear")]
    eight_bit = [z for z in quant_inputs if "bias_quantized" not in z]  # biases are int32, as in every QDQ model
    assert len(eight_bit) > 100 and all(zero_points[z] == onnx.TensorProto.UINT8 for z in eight_bit)


def test_manifest_cannot_smuggle_other_session_settings(export_artifact):
    from dataclasses import replace

    from mnv2deploy.errors import BadArtifactError
    from mnv2deploy.runtimes.ort import OrtRuntime

    result = export_artifact("onnx-int8")
    hostile = replace(result.manifest, extra={**result.manifest.extra,
                                              "onnxruntime_session_config": {"session.custom_op_library": "/tmp/x.so"}})
    with pytest.raises(BadArtifactError, match="not allowed"):
        OrtRuntime().load(result.artifact, hostile)
