"""Lifetimes and the static peak on a graph small enough to work out by hand."""

from mnv2deploy.memory.graph import block_of
from mnv2deploy.memory.lifetimes import analyze_lifetimes
from mnv2deploy.memory.onnx_graph import read_onnx
from mnv2deploy.memory.timeline import CSV_COLUMNS, timeline_csv

# By hand: X, A, D, Y are 1*2*4*4 floats = 128 bytes; B, C are 1*6*4*4 floats = 384 bytes.
# op  alive before (still needed)   + outputs   = during
# 0 relu_a   X                128   + A 128     = 256
# 1 conv_b   X A              256   + B 384     = 640
# 2 relu_c   X B              512   + C 384     = 896   <- peak: X, B, C
# 3 conv_d   X C              512   + D 128     = 640
# 4 add_y    X D              256   + Y 128     = 384
EXPECTED_BEFORE = [128, 256, 512, 512, 256]
EXPECTED_DURING = [256, 640, 896, 640, 384]


def test_tiny_graph_by_hand(tiny_onnx):
    graph = read_onnx(tiny_onnx)
    assert [op.op_type for op in graph.ops] == ["Relu", "Conv", "Relu", "Conv", "Add"]
    assert set(graph.tensors) == {"X", "A", "B", "C", "D", "Y"}  # the weights are constants, not activations
    report = analyze_lifetimes(graph)
    assert [m.before_bytes for m in report.timeline] == EXPECTED_BEFORE
    assert [m.during_bytes for m in report.timeline] == EXPECTED_DURING
    assert report.static_peak_bytes == 896 and report.peak_op.name == "relu_c"
    assert sorted(t.name for t in report.peak_tensors) == ["B", "C", "X"]
    assert report.total_activation_bytes == 4 * 128 + 2 * 384
    spans = {lt.name: (lt.first, lt.last) for lt in report.lifetimes}
    assert spans["X"] == (-1, 4) and spans["A"] == (0, 1) and spans["Y"] == (4, 5)


def test_timeline_csv_has_one_row_per_op(tiny_onnx):
    graph = read_onnx(tiny_onnx)
    lines = timeline_csv(graph, analyze_lifetimes(graph)).splitlines()
    assert lines[0].split(",") == list(CSV_COLUMNS) and len(lines) == 6
    assert lines[3].split(",")[5] == "896"


def test_block_names_from_both_exporters():
    assert block_of("['', 'features', 'features.12', 'features.12.conv.0']") == "features.12"
    assert block_of("mnv2deploy.model.MobileNetV2/torch.nn.modules.container.Sequential_features/"
                    "mnv2deploy.split.GroupedBottleneck_3/torch.nn.modules.conv.Conv2d_1;x") == "features.3"
    assert block_of("/features.7/conv/conv.0/Conv") == "features.7"
    assert block_of("serving_default_output_0") is None
