"""Real converters, real runtimes: `memory` on a non-MobileNet model, and the split export's arena really shrinks."""

import json

import pytest
import torch
from torch import nn

from mnv2deploy.cli.app import main


class TwoBranchNet(nn.Module):
    """Not a MobileNet: two parallel branches concatenated, a max pool, a dense head."""

    def __init__(self):
        super().__init__()
        self.left = nn.Sequential(nn.Conv2d(3, 12, 3, padding=1), nn.ReLU())
        self.right = nn.Sequential(nn.Conv2d(3, 4, 5, padding=2), nn.Sigmoid())
        self.pool = nn.MaxPool2d(2)
        self.head = nn.Linear(16 * 8 * 8, 5)

    def forward(self, x):
        y = self.pool(torch.cat([self.left(x), self.right(x)], dim=1))
        return self.head(torch.flatten(y, 1))


@pytest.fixture(scope="module")
def foreign(tmp_path_factory):
    folder = tmp_path_factory.mktemp("foreign")
    model, x = TwoBranchNet().eval(), torch.randn(1, 3, 16, 16)
    onnx_path, tflite_path = folder / "twobranch.onnx", folder / "twobranch.tflite"
    torch.onnx.export(model, (x,), str(onnx_path), dynamo=True, opset_version=18, external_data=False)
    import litert_torch

    litert_torch.convert(model, (x,)).export(str(tflite_path))
    return onnx_path, tflite_path


def _memory_json(capsys, path, *extra):
    capsys.readouterr()  # drop the converters' progress output
    assert main(["memory", str(path), "--json", *extra]) == 0
    return json.loads(capsys.readouterr().out)


@pytest.mark.slow
def test_memory_on_a_foreign_graph(foreign, capsys, tmp_path):
    onnx_path, tflite_path = foreign
    # Both concat inputs (16x16x12 and 16x16x4 floats) and the concat output must be alive together.
    concat_bytes = 16 * 16 * (12 + 4) * 4 * 2
    for path in (onnx_path, tflite_path):
        out = _memory_json(capsys, path, "--out", str(tmp_path))
        assert out["static_peak_bytes"] >= concat_bytes, path.suffix
        assert out["measured_peak_bytes"] > 0 and out["peak_op"]["block"] is None
        assert (tmp_path / f"{path.name}.memory.png").exists()
    tfl = _memory_json(capsys, tflite_path, "--no-xnnpack")
    assert set(tfl["measurements"]["footprint"]) == {"builtin"}
    # the planner's arena holds at least the biggest op's inputs and outputs, and reuses memory
    assert tfl["largest_tensor"]["bytes"] <= tfl["measured_peak_bytes"] <= tfl["total_activation_bytes"] + \
        tfl["measurements"]["builtin_scratch_bytes"]


@pytest.mark.slow
def test_split_export_keeps_groups_together_and_shrinks_the_arena(export_artifact, capsys):
    """Default weights at 32x32, tflite fp32, split 1 vs 4 (the session's shared exports through the real target):
    the arena LiteRT planned must shrink."""
    arenas = {}
    for k in (1, 4):
        path = export_artifact("tflite", split=k).artifact
        out = _memory_json(capsys, path, "--no-xnnpack")
        arenas[k] = out["measured_peak_bytes"]
        blocks = [b for b in _op_blocks(path) if b]
        # a block's ops are contiguous in execution order (its groups are not interleaved with other blocks)
        starts = [b for i, b in enumerate(blocks) if i == 0 or blocks[i - 1] != b]
        assert len(starts) == len(set(starts)), starts
    assert arenas[4] * 1.5 < arenas[1], arenas


def _op_blocks(path):
    from mnv2deploy.memory.tflite_graph import read_tflite

    return [op.block for op in read_tflite(path).ops]
