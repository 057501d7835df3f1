"""Real artifacts of the embedded default (32x32) for runtime and parity tests: the shared session export
(tests/conftest.py `export_artifact`) when it exists, so CI converts once; else built here with the same tools."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mnv2deploy.fileio import sha256_file
from mnv2deploy.manifest import Manifest, TensorSpec, tool_versions, write_manifest
from mnv2deploy.weights import load_reference, resolve_weights


def _write_manifest(path: Path, target: str, fmt: str, precision: str, spec, ref, inp: TensorSpec, out: TensorSpec):
    r = spec.contract.resolution
    write_manifest(path, Manifest(
        target=target, format=fmt, precision=precision, artifact=path.name, artifact_sha256=sha256_file(path),
        inputs=(inp,), outputs=(out,), preprocessing=spec.contract,
        model={"name": "mobilenet_v2", "width_mult": spec.width_mult, "num_classes": spec.num_classes,
               "resolution": r, "split": 1},
        weights={**spec.to_dict(), "sha256": ref.weights_sha256}, tool_versions=tool_versions("torch")))
    return path


def build_onnx(folder: Path, weights: str = "default", **kw) -> Path:
    import torch

    spec = resolve_weights(weights, **kw)
    ref = load_reference(spec)
    r, n = spec.contract.resolution, spec.num_classes
    path = folder / "model.onnx"
    torch.onnx.export(ref.model.eval(), (torch.zeros(1, 3, r, r),), str(path), input_names=["input"],
                      output_names=["logits"], dynamo=False, opset_version=17)
    return _write_manifest(path, "onnx", "onnx", "fp32", spec, ref, TensorSpec("input", (1, 3, r, r), "float32", "NCHW"),
                           TensorSpec("logits", (1, n), "float32", "NC"))


def build_onnx_int8(folder: Path, fp32: Path) -> Path:
    """Static QDQ int8 (per-channel weights) calibrated on the embedded calibration set."""
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    from mnv2deploy.data import load_embedded

    spec = resolve_weights("default")
    calib = load_embedded("calib", spec.contract, 64).images

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.it = iter([{"input": calib[i:i + 1]} for i in range(len(calib))])

        def get_next(self):
            return next(self.it, None)

    path = folder / "model.int8.onnx"
    quantize_static(str(fp32), str(path), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                    activation_type=QuantType.QInt8, weight_type=QuantType.QInt8)
    r, n = spec.contract.resolution, spec.num_classes
    return _write_manifest(path, "onnx-int8", "onnx", "int8", spec, load_reference(spec),
                           TensorSpec("input", (1, 3, r, r), "float32", "NCHW"), TensorSpec("logits", (1, n), "float32", "NC"))


def build_tflite(folder: Path) -> Path:
    import litert_torch
    import torch

    spec = resolve_weights("default")
    ref = load_reference(spec)
    r, n = spec.contract.resolution, spec.num_classes
    path = folder / "model.tflite"
    litert_torch.convert(ref.model.eval(), (torch.zeros(1, 3, r, r),)).export(str(path))
    return _write_manifest(path, "tflite", "tflite", "fp32", spec, ref, TensorSpec("input", (1, 3, r, r), "float32", "NCHW"),
                           TensorSpec("logits", (1, n), "float32", "NC"))


def _shared(request, target: str) -> Path | None:
    try:
        export_artifact = request.getfixturevalue("export_artifact")
    except pytest.FixtureLookupError:
        return None
    return Path(export_artifact(target).artifact)


@pytest.fixture(scope="session")
def onnx_fp32(request, tmp_path_factory) -> Path:
    return _shared(request, "onnx") or build_onnx(tmp_path_factory.mktemp("onnx"))


@pytest.fixture(scope="session")
def onnx_int8(request, tmp_path_factory, onnx_fp32) -> Path:
    return _shared(request, "onnx-int8") or build_onnx_int8(tmp_path_factory.mktemp("onnx_int8"), onnx_fp32)


@pytest.fixture(scope="session")
def tflite_fp32(request, tmp_path_factory) -> Path:
    return _shared(request, "tflite") or build_tflite(tmp_path_factory.mktemp("tflite"))


@pytest.fixture(scope="session")
def tflite_int8(request) -> Path:
    """Full-integer int8 (int8 input and output) needs the exporter's PT2E pipeline: only the shared fixture."""
    path = _shared(request, "tflite-int8")
    if path is None:
        pytest.skip("tflite-int8 comes from the export_artifact fixture (tests/conftest.py), not there yet")
    return path


@pytest.fixture(scope="session")
def images() -> np.ndarray:
    from mnv2deploy.data import load_embedded

    return load_embedded("eval", resolve_weights("default").contract, 8).images


def copy_artifact(src: Path, folder: Path) -> Path:
    """A private copy of an artifact and its manifest, safe to corrupt."""
    import shutil

    from mnv2deploy.manifest import manifest_path

    dst = folder / src.name
    shutil.copy(src, dst)
    shutil.copy(manifest_path(src), manifest_path(dst))
    return dst
