"""Read an .onnx graph: nodes in file order (a valid topological order) with every value's shape and dtype.

Shapes come from ``onnx.shape_inference``; a symbolic dimension (e.g. a dynamic batch) counts as 1. Outputs of
Constant nodes are constants, not activations. Weights in external data are never loaded.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import BadArtifactError, MissingToolError, install_hint
from .graph import Graph, OpInfo, TensorInfo, block_of

INSTALL_HINT = install_hint("onnx")


def _scope(node) -> str:
    for prop in node.metadata_props:
        if prop.key == "pkg.torch.onnx.name_scopes":
            return prop.value
    return node.name


def read_onnx(path: Path) -> Graph:
    try:
        import numpy as np
        import onnx
        from onnx import helper, shape_inference
    except ImportError:
        raise MissingToolError("onnx is not installed", INSTALL_HINT) from None
    path = Path(path)
    try:
        model = onnx.load(str(path), load_external_data=False)
        model = shape_inference.infer_shapes(model)
    except (onnx.onnx_cpp2py_export.checker.ValidationError, onnx.onnx_cpp2py_export.shape_inference.InferenceError,
            google_protobuf_errors(), ValueError, OSError) as e:
        raise BadArtifactError(f"cannot read {path.name} as ONNX: {str(e).splitlines()[0][:160] if str(e) else type(e).__name__}",
                               "pass a valid .onnx file") from None
    g = model.graph
    if not g.node:
        raise BadArtifactError(f"{path.name} has no operators", "pass a valid .onnx model")
    constants = {init.name for init in g.initializer}
    nodes = []
    for node in g.node:
        if node.op_type == "Constant":
            constants.update(node.output)
        else:
            nodes.append(node)
    tensors: dict[str, TensorInfo] = {}
    symbolic = False
    for vi in list(g.input) + list(g.value_info) + list(g.output):
        if vi.name in constants or not vi.type.HasField("tensor_type"):
            continue
        tt = vi.type.tensor_type
        dims = []
        for d in tt.shape.dim:
            known = d.HasField("dim_value") and d.dim_value > 0
            symbolic |= not known
            dims.append(int(d.dim_value) if known else 1)
        dtype = np.dtype(helper.tensor_dtype_to_np_dtype(tt.elem_type)) if tt.elem_type else np.dtype("float32")
        tensors[vi.name] = TensorInfo(vi.name, tuple(dims), dtype.name, int(np.prod(dims, dtype=np.int64)) * dtype.itemsize)
    ops = tuple(OpInfo(i, n.op_type, n.name or (n.output[0] if n.output else n.op_type),
                       tuple(x for x in n.input if x), tuple(x for x in n.output if x), block_of(_scope(n)))
                for i, n in enumerate(nodes))
    unknown = sorted({o for op in ops for o in op.outputs} - set(tensors))
    return Graph("onnx", tensors, ops, tuple(i.name for i in g.input if i.name not in constants),
                 tuple(o.name for o in g.output), {"symbolic_dims_as_1": symbolic, "unknown_shapes": len(unknown)})


def google_protobuf_errors() -> type[Exception]:
    from google.protobuf.message import DecodeError

    return DecodeError
