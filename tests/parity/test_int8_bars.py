"""The real int8 exports of the embedded default meet the int8 bar (agreement >= 0.98, drop <= 1.0 pt) on all 500
evaluation images in their runtimes; onnx-int8 in a plain onnxruntime session (its U8U8 graph does not hit the x86
U8S8 saturation that took signed int8 QDQ to 0.874 agreement)."""

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
