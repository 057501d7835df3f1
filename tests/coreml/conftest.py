"""Core ML exports of the embedded default (32x32) through the target registry, made once per session and shared
with every other test layer (tests/conftest.py ``export_artifact``)."""

from __future__ import annotations

import pytest

from mnv2deploy.weights import load_reference, resolve_weights


@pytest.fixture(scope="session")
def default_reference():
    return load_reference(resolve_weights("default"))


@pytest.fixture(scope="session")
def coreml_export(export_artifact):
    """Factory: (registry name, **options) -> ExportResult of the embedded default at 32x32, cached per session."""
    def export(target: str, **options):
        return export_artifact(target, **options)

    return export
