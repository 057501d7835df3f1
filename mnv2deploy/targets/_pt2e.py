"""PT2E quantization shared by the int8 targets that quantize on the torch side (tflite-int8, executorch-int8): the
model as exported, calibration on real images with the target's own quantizer (also how parity rebuilds the quantized
torch model, ``Target.quantized_torch_model``), and, when asked (``export --quantized-reference``), its logits saved
beside the artifact (``<artifact>.qref.npz``) as the recorded reference for conversion fidelity."""

from __future__ import annotations

import contextlib
import re
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from ..data import load_embedded
from . import _common as c
from .base import ExportRequest

QREF_SUFFIX = ".qref.npz"
STEM = re.compile(r"(^|\.)features\.0(\.|$)")  # the stem's module path, inside a wrapper or not
SPLIT_STEM = re.compile(r"(^|\.)features\.0\.expand(\.|$)")  # a split model's: block 1's expansion (split.py)


def without_dropout(model: Any) -> Any:
    """An eval copy with every Dropout replaced by Identity (what eval-mode Dropout computes anyway).

    Why: PT2E puts an observer after the classifier's Dropout, and litert-torch drops that requantization when
    it removes the Dropout, so the .tflite fed the FC with the coarse scale of the last ReLU6 while the quantized
    torch model used the fine one. Measured on the embedded default: conversion fidelity (agreement with the
    quantized torch model) 0.978 -> 0.996 at 32x32 and 0.58 -> 0.988 at 224x224; fp32 agreement 0.976 -> 0.986."""
    import copy

    from torch import nn

    model = copy.deepcopy(model).eval()
    for parent in list(model.modules()):
        for attr, sub in list(parent.named_children()):
            if isinstance(sub, nn.Dropout):
                setattr(parent, attr, nn.Identity())
    return model


def _mark_adds(graph: Any) -> Any:
    """Give every tensor add the ``source_fn_stack`` a strict export records and a non-strict one leaves out.

    Why: the quantizers find residual adds (and the split's partial sums) by that entry; without it they stay float
    (DEQUANTIZE -> float ADD -> QUANTIZE). A strict (dynamo) export records it but took 2.8 s of the tflite-int8
    export's ~19 s; non-strict plus this mark takes 1.0 s and wrote a byte-identical .tflite for the default."""
    import operator

    import torch

    for node in graph.graph.nodes:
        if node.op == "call_function" and node.target == torch.ops.aten.add.Tensor:
            node.meta.setdefault("source_fn_stack", [(node.name, operator.add)])
    return graph


@contextlib.contextmanager
def _constants_observed(prepared: Any) -> Iterator[None]:
    """Pass constants (the weights) through their observers untouched while inside: they have seen them once.

    Why: a weight's min/max cannot change between calibration images, yet its per-channel observer ran on every
    image (53 observers x 200 images): calibrating the 1.0@32 default took 3.55 s, now 2.49 s (medians of 5). The
    activations' observers still see every image; the written .tflite is byte-identical."""
    frozen = constant_observers(prepared)
    for observer in frozen:
        observer.forward = _unchanged  # an instance attribute shadows the class's forward until deleted
    try:
        yield
    finally:
        for observer in frozen:
            del observer.forward


def _unchanged(x: Any) -> Any:
    return x


def float_stem(quantizer: Any) -> Any:
    """``quantizer`` made to leave the stem (conv, batch norm, ReLU6) and everything before it (a camera input's
    cast and normalization) unannotated, so they stay float32 and the graph quantizes the stem's output for the
    first block instead of quantizing the input.

    Why: with 3 input channels the stem is int8's worst layer on XNNPACK (x86 AVX2: 11% of the int8 model's time
    for 4% of its MACs, each 3-channel tap padded to 8), and a float stem takes the preprocessed image as it is,
    so the caller quantizes nothing: the float32-input tflite-int8 export (targets/tflite_int8.py)."""
    annotate = quantizer.annotate

    def annotate_after_stem(model: Any) -> Any:
        model = annotate(model)
        for node in _with_ancestors(stem_nodes(model.graph)):
            node.meta.pop("quantization_annotation", None)
        return model

    quantizer.annotate = annotate_after_stem  # an instance attribute: prepare_pt2e calls quantizer.annotate(model)
    return quantizer


def stem_nodes(graph: Any) -> list[Any]:
    """The nodes of the stem: ``features.0``, or in a split model (whose ``features.0`` is the stem fused with the
    first block, split.py) only its expansion groups."""
    def paths(node: Any) -> list[str]:
        return [path for path, _ in node.meta.get("nn_module_stack", {}).values()]

    split = any(SPLIT_STEM.search(p) for n in graph.nodes for p in paths(n))
    pattern = SPLIT_STEM if split else STEM
    return [n for n in graph.nodes if any(pattern.search(p) for p in paths(n))]


def _with_ancestors(nodes: list[Any]) -> set[Any]:
    """``nodes`` and every node they are computed from."""
    seen, frontier = set(nodes), list(nodes)
    while frontier:
        fresh = [i for i in frontier.pop().all_input_nodes if i not in seen]
        seen.update(fresh)
        frontier += fresh
    return seen


def input_observer(prepared: Any) -> Any:
    """The observer nearest the graph's input (breadth first from it: a layout permute may come before it)."""
    frontier = [n for n in prepared.graph.nodes if n.op == "placeholder"]
    seen = set(frontier)
    while frontier:
        node = frontier.pop(0)
        if node.op == "call_module" and hasattr(prepared.get_submodule(node.target), "min_val"):
            return prepared.get_submodule(node.target)
        fresh = [u for u in node.users if u not in seen]
        seen.update(fresh)
        frontier += fresh
    raise RuntimeError("the prepared graph has no input observer")


def constant_observers(prepared: Any) -> list[Any]:
    """The observer modules whose input is a constant of the graph (``get_attr``: the weights)."""
    return [prepared.get_submodule(n.target) for n in prepared.graph.nodes
            if n.op == "call_module" and n.args and getattr(n.args[0], "op", None) == "get_attr"]


def prepare(model: Any, resolution: int, quantizer: Any, hint: str, example: Any = None) -> Any:
    """The model exported for batch 1 (non-strict, adds marked) and prepared with ``quantizer``, in eval mode:
    observers in place, nothing calibrated yet. ``example``: an input of another shape than NCHW float32 (camera
    models, targets/_camera.py)."""
    import torch

    qpt2e = c.require("torchao.quantization.pt2e.quantize_pt2e", hint)
    example = (torch.zeros(1, 3, resolution, resolution) if example is None else example,)
    graph = _mark_adds(torch.export.export(without_dropout(model), example, strict=False).module())
    prepared = qpt2e.prepare_pt2e(graph, quantizer)
    c.require("torchao.quantization.pt2e", hint).move_exported_model_to_eval(prepared)
    return prepared


def calibrate_pt2e(model: Any, resolution: int, calib: np.ndarray, quantizer: Any, hint: str,
                   fold_quantize: bool = False, example: Any = None,
                   input_range: tuple[float, float] | None = None) -> Any:
    """Prepare with ``quantizer``, calibrate on ``calib`` (NCHW float32, or as ``example``) one image at a time,
    convert: the quantized (fake-quant) graph module in eval mode. ``hint``: the install hint of the target's extra,
    for torchao. ``input_range``: (lo, hi) the input's observer sees too, whatever the images hold."""
    import torch

    qpt2e = c.require("torchao.quantization.pt2e.quantize_pt2e", hint)
    qpt2e_api = c.require("torchao.quantization.pt2e", hint)
    prepared = prepare(model, resolution, quantizer, hint, example)
    with torch.no_grad():
        if input_range is not None:
            input_observer(prepared)(torch.tensor(input_range, dtype=torch.float32))
        prepared(torch.from_numpy(calib[:1]))
        with _constants_observed(prepared):
            for i in range(1, len(calib)):  # the graph was exported for batch 1
                prepared(torch.from_numpy(calib[i:i + 1]))
    converted = qpt2e.convert_pt2e(prepared, fold_quantize=fold_quantize)
    qpt2e_api.move_exported_model_to_eval(converted)
    return converted


def quantized_reference(qmodel: Any, request: ExportRequest, artifact: Path) -> dict[str, Any]:
    """Run the fake-quant torch model on the embedded eval set, batch 1 as exported, and save its logits."""
    contract = request.reference.spec.contract.at_resolution(request.resolution)
    batch = load_embedded("eval", contract)
    logits = c.batch1_logits(qmodel, batch.images)
    labels = batch.labels if batch.labels is not None else np.full(len(batch), -1)
    qref = artifact.with_name(artifact.name + QREF_SUFFIX)
    c.save_npz_atomic(qref, logits=logits, labels=np.asarray(labels))
    acc = float((logits.argmax(1) == labels).mean()) if batch.labels is not None else None
    return {"file": qref.name, "data": "embedded:eval", "samples": int(len(batch)), "accuracy": acc}
