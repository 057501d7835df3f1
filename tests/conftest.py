"""Shared test helpers: ``export_artifact`` exports once per argument set per session, so CI converts each
artifact once and every layer tests the same real files."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any, Callable

import pytest


@pytest.fixture(autouse=True)
def _logging_handlers_on_open_streams() -> None:
    """Libraries attach logging StreamHandlers to sys.stderr at import (coremltools.optimize.torch does). Imported
    first inside a capsys test, such a handler keeps that test's capture, closed afterwards, and every later log
    line becomes a 'Logging error' traceback in whichever test logs next. Repoint those at the current stderr."""
    for logger in [logging.root, *logging.root.manager.loggerDict.values()]:
        for handler in getattr(logger, "handlers", []):
            if isinstance(handler, logging.StreamHandler) and getattr(handler.stream, "closed", False):
                handler.stream = sys.stderr  # not setStream(): it flushes the closed stream first


@pytest.fixture(scope="session")
def export_artifact(tmp_path_factory) -> Callable[..., Any]:
    """Factory: ``export_artifact(target, weights="default", resolution=None, width=None, num_classes=None,
    split=1, **options) -> ExportResult``; the embedded default at 32x32 unless told otherwise."""
    from mnv2deploy.targets import get_target
    from mnv2deploy.targets.base import ExportRequest
    from mnv2deploy.weights import load_reference, resolve_weights

    cache: dict[tuple, Any] = {}
    root = tmp_path_factory.mktemp("exports")

    def factory(target: str, weights: str = "default", resolution: int | None = None, width: float | None = None,
                num_classes: int | None = None, split: int = 1, **options: Any) -> Any:
        key = (target, str(weights), resolution, width, num_classes, split, tuple(sorted(options.items())))
        if key not in cache:
            spec = resolve_weights(weights, width_mult=width, num_classes=num_classes, resolution=resolution)
            reference = load_reference(spec)
            dynamic = bool(options.pop("dynamic_batch", False))
            calib = options.pop("calib", None)
            samples = int(options.pop("calib_samples", 200))
            out = root / f"e{len(cache)}"
            request = ExportRequest(reference=reference, resolution=resolution or spec.contract.resolution,
                                    out_dir=Path(out), calib=calib, calib_samples=samples, split=split,
                                    dynamic_batch=dynamic, options=options)
            cache[key] = get_target(target).export(request)
        return cache[key]

    return factory
