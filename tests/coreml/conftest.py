"""Core ML exports of the embedded default (32x32), made once per session and shared by the coreml tests."""

from __future__ import annotations

import pytest

from mnv2deploy.targets.base import ExportRequest
from mnv2deploy.weights import load_reference, resolve_weights


@pytest.fixture(scope="session")
def default_reference():
    return load_reference(resolve_weights("default"))


@pytest.fixture(scope="session")
def coreml_export(tmp_path_factory, default_reference):
    """Factory: (target name, options) -> ExportResult, cached for the session."""
    from mnv2deploy.targets.coreml import CoremlTarget
    from mnv2deploy.targets.coreml_int8 import CoremlInt8Target

    targets = {"coreml": CoremlTarget(), "coreml-int8": CoremlInt8Target()}
    cache: dict = {}

    def export(target: str, **options):
        key = (target, tuple(sorted(options.items())))
        if key not in cache:
            out = tmp_path_factory.mktemp(target)
            cache[key] = targets[target].export(ExportRequest(reference=default_reference, resolution=32,
                                                              out_dir=out, options=options))
        return cache[key]

    return export
