"""Export targets by name: adding a target is one module and one line in ``_register``; the CLI, the main job and
the tests take names, options and capabilities from here (``targets/plan.py`` decides which run)."""

from __future__ import annotations

from ..errors import UsageError
from .base import ExportRequest, ExportResult, Target

TARGETS: dict[str, Target] = {}


def _register(module: str, cls: str) -> None:
    import importlib

    target = getattr(importlib.import_module(f"{__name__}.{module}"), cls)()
    TARGETS[target.name] = target


_register("onnx", "OnnxTarget")
_register("onnx_int8", "OnnxInt8Target")
_register("tflite", "TfliteTarget")
_register("tflite_fp16", "TfliteFp16Target")
_register("tflite_int8", "TfliteInt8Target")
_register("coreml", "CoremlTarget")
_register("coreml_int8", "CoremlInt8Target")
_register("executorch", "ExecutorchTarget")
_register("executorch_int8", "ExecutorchInt8Target")


def available_targets() -> tuple[str, ...]:
    """Every registered target name (available here or not), in registry order."""
    return tuple(TARGETS)


def get_target(name: str) -> Target:
    try:
        return TARGETS[name]
    except KeyError:
        raise UsageError(f"unknown target {name!r}", f"choose one of {', '.join(TARGETS)}, or all") from None


def export(target_name: str, request: ExportRequest) -> ExportResult:
    return get_target(target_name).export(request)
