"""A runtime-neutral view of a model graph: tensors and ops in the order the runtime executes them.

Readers for each format (``tflite_graph``, ``onnx_graph``) produce a ``Graph``; ``lifetimes`` computes what is
alive when. A tensor is an activation when it is a graph input or some op's output; everything else an op reads
(weights, biases, shapes) is constant and not counted.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class TensorInfo:
    name: str
    shape: tuple[int, ...]
    dtype: str  # numpy dtype name
    nbytes: int


@dataclass(frozen=True)
class OpInfo:
    index: int  # position in execution order
    op_type: str  # "CONV_2D", "Conv", ...
    name: str  # a readable label (first output's name when the format has no op names)
    inputs: tuple[str, ...]  # tensor names, activations and constants alike
    outputs: tuple[str, ...]
    block: str | None = None  # "features.N" when the model is ours (from names the exporters keep)


@dataclass(frozen=True)
class Graph:
    format: str  # "tflite" or "onnx"
    tensors: dict[str, TensorInfo]  # activations only (graph inputs and op outputs)
    ops: tuple[OpInfo, ...]  # execution order
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    extra: dict[str, Any]  # format facts, e.g. tflite {"delegated": False}

    def activation(self, name: str) -> TensorInfo | None:
        return self.tensors.get(name)


_BLOCK_PATTERNS = (
    re.compile(r"'features\.(\d+)'"),  # onnx dynamo name_scopes: ['', 'features', 'features.3', ...]
    re.compile(r"Sequential_features/[\w.]+?_(\d+)(?:/|;|$)"),  # litert-torch tensor names: ..._features/..InvertedResidual_3/..
    re.compile(r"(?:^|/)features\.(\d+)(?:[./]|$)"),  # torchscript onnx names: /features.3/conv/...
)


def block_of(text: str) -> str | None:
    """``features.N`` named in an op's scope or tensor name (first ';'-separated part), else None."""
    head = text.split(";", 1)[0]
    for pattern in _BLOCK_PATTERNS:
        m = pattern.search(head)
        if m:
            return f"features.{m.group(1)}"
    return None
