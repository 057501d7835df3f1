"""A tiny hand-built ONNX graph whose lifetimes are worked out by hand in test_lifetimes.py."""

from pathlib import Path

import numpy as np
import pytest


def build_tiny_onnx(path: Path) -> Path:
    """X[1,2,4,4] -> Relu A -> Conv(1x1, 6) B -> Relu C -> Conv(1x1, 2) D -> Add(D, X) Y   (float32)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    w1 = numpy_helper.from_array(rng.standard_normal((6, 2, 1, 1)).astype(np.float32), "W1")
    w2 = numpy_helper.from_array(rng.standard_normal((2, 6, 1, 1)).astype(np.float32), "W2")
    nodes = [helper.make_node("Relu", ["X"], ["A"], name="relu_a"),
             helper.make_node("Conv", ["A", "W1"], ["B"], name="conv_b"),
             helper.make_node("Relu", ["B"], ["C"], name="relu_c"),
             helper.make_node("Conv", ["C", "W2"], ["D"], name="conv_d"),
             helper.make_node("Add", ["D", "X"], ["Y"], name="add_y")]
    graph = helper.make_graph(nodes, "tiny", [helper.make_tensor_value_info("X", TensorProto.FLOAT, [1, 2, 4, 4])],
                              [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [1, 2, 4, 4])], [w1, w2])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 10
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


@pytest.fixture(scope="session")
def tiny_onnx(tmp_path_factory) -> Path:
    return build_tiny_onnx(tmp_path_factory.mktemp("tiny") / "tiny.onnx")


@pytest.fixture(autouse=True)
def one_torch_thread():
    """Many tiny grouped convs: on a shared 2-core box, torch's thread pool makes them 100x slower."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
