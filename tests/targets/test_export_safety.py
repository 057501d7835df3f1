"""Atomic writes, bad calibration data and unsupported combinations: no converter runs, so fast."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mnv2deploy.errors import BadDataError, UsageError
from mnv2deploy.targets import get_target
from mnv2deploy.targets.base import ExportRequest
from mnv2deploy.weights import load_reference, resolve_weights


@pytest.fixture(scope="module")
def reference():
    return load_reference(resolve_weights("default"))


def request_for(reference, out: Path, **kw) -> ExportRequest:
    return ExportRequest(reference=reference, resolution=32, out_dir=out, **kw)


def test_unknown_target_lists_the_valid_ones():
    with pytest.raises(UsageError) as err:
        get_target("tflite-int4")
    assert "onnx" in err.value.hint and "tflite-int8" in err.value.hint


@pytest.mark.parametrize("target", ["tflite", "tflite-fp16", "tflite-int8"])
def test_dynamic_batch_is_refused_for_tflite(reference, tmp_path, target):
    with pytest.raises(UsageError) as err:
        get_target(target).export(request_for(reference, tmp_path, dynamic_batch=True))
    assert "onnx" in err.value.hint
    assert list(tmp_path.iterdir()) == []


def test_unknown_option_is_refused(reference, tmp_path):
    with pytest.raises(UsageError, match="no option"):
        get_target("onnx").export(request_for(reference, tmp_path, options={"colour": "blue"}))


def _write_broken(root: Path, case: str) -> Path:
    if case == "missing":
        return root / "nope"
    root.mkdir()
    if case == "no_images":
        (root / "cat").mkdir()
        (root / "cat" / "notes.txt").write_text("x")
    elif case == "corrupt":
        (root / "cat").mkdir()
        Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(root / "cat" / "ok.png")
        (root / "cat" / "bad.jpg").write_bytes(b"\xff\xd8\xff not a jpeg")
    return root


@pytest.mark.parametrize("target", ["onnx-int8", "tflite-int8"])
@pytest.mark.parametrize("case", ["missing", "empty", "no_images", "corrupt"])
def test_empty_or_broken_calibration_folder_is_bad_data(reference, tmp_path, target, case):
    calib = _write_broken(tmp_path / "calib", case)
    out = tmp_path / "out"
    with pytest.raises(BadDataError):
        get_target(target).export(request_for(reference, out, calib=calib))
    assert not out.exists() or list(out.iterdir()) == []


def test_failed_export_keeps_the_previous_artifact_and_leaves_nothing_finished_looking(reference, tmp_path,
                                                                                      monkeypatch):
    from mnv2deploy.targets import onnx as onnx_target

    final = tmp_path / "mobilenet_v2-1.0-32.fp32.onnx"
    final.write_bytes(b"previous good artifact")

    def half_written(request, path):
        Path(path).write_bytes(b"half a graph")
        raise KeyboardInterrupt  # interrupted mid-conversion

    monkeypatch.setattr(onnx_target, "export_fp32_onnx", half_written)
    with pytest.raises(KeyboardInterrupt):
        get_target("onnx").export(request_for(reference, tmp_path))
    assert final.read_bytes() == b"previous good artifact"
    assert sorted(p.name for p in tmp_path.iterdir()) == [final.name]


@pytest.mark.parametrize("target", ["coreml", "coreml-int8"])
def test_dynamic_batch_is_refused_for_coreml(reference, tmp_path, target):
    with pytest.raises(UsageError, match="batch 1 only") as err:
        get_target(target).export(request_for(reference, tmp_path, dynamic_batch=True))
    assert "onnx" in err.value.hint
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("case", ["missing", "empty", "no_images", "corrupt"])
def test_broken_calibration_folder_for_w8a8_is_bad_data(reference, tmp_path, case):
    calib = _write_broken(tmp_path / "calib", case)
    out = tmp_path / "out"
    with pytest.raises(BadDataError):
        get_target("coreml-int8").export(request_for(reference, out, calib=calib, options={"activations": "int8"}))
    assert not out.exists() or list(out.iterdir()) == []


def test_failed_coreml_export_keeps_the_previous_package(reference, tmp_path, monkeypatch):
    """The .mlpackage directory goes through the same staging as every artifact (targets/_common.py)."""
    from mnv2deploy.targets import coreml as coreml_target

    final = tmp_path / "mobilenet_v2-1.0-32.fp16.mlpackage"
    (final / "Data").mkdir(parents=True)
    (final / "Manifest.json").write_text("previous good package")

    class HalfSaved:
        def save(self, path):
            (Path(path) / "Data").mkdir(parents=True)
            (Path(path) / "Manifest.json").write_text("half a package")
            raise KeyboardInterrupt  # interrupted mid-save

    monkeypatch.setattr(coreml_target, "convert", lambda *a, **k: HalfSaved())
    monkeypatch.setattr(coreml_target, "annotate", lambda *a, **k: None)
    with pytest.raises(KeyboardInterrupt):
        get_target("coreml").export(request_for(reference, tmp_path))
    assert (final / "Manifest.json").read_text() == "previous good package"
    assert sorted(p.name for p in tmp_path.iterdir()) == [final.name]
