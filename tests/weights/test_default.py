"""The embedded default: its files match the recorded sha256, and its logits match the golden values.

Refresh the golden file after retraining with MNV2_ACCEPT_GOLDEN=1 (torchvision's "expect" pattern).
"""

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from mnv2deploy.data import load_embedded
from mnv2deploy.fileio import sha256_file
from mnv2deploy.weights import DATA_DIR, default_meta, load_reference, resolve_weights

GOLDEN = Path(__file__).parent / "golden_default_logits.json"


def test_embedded_files_match_recorded_sha256():
    meta = default_meta()
    assert meta["sha256"], "default_weights.json records no hashes"
    for name, digest in meta["sha256"].items():
        assert sha256_file(DATA_DIR / name) == digest, name


def test_default_contract_and_labels():
    spec = resolve_weights("default")
    assert spec.width_mult == 1.0 and spec.num_classes == 10
    assert spec.contract.resolution == default_meta()["resolution"]
    assert spec.contract.labels[0] == "airplane" and len(spec.contract.labels) == 10
    assert resolve_weights("default", resolution=224).contract.resolution == 224


def test_golden_logits():
    spec = resolve_weights("default")
    model = load_reference(spec).model
    batch = load_embedded("eval", spec.contract, samples=8)
    with torch.no_grad():
        logits = model(torch.from_numpy(batch.images)).numpy()
    if os.environ.get("MNV2_ACCEPT_GOLDEN"):
        GOLDEN.write_text(json.dumps({"samples": 8, "logits": logits.round(5).tolist()}, indent=1) + "\n")
    golden = np.array(json.loads(GOLDEN.read_text())["logits"], dtype=np.float32)
    np.testing.assert_allclose(logits, golden, atol=1e-3)


def test_default_is_trained_on_held_out_data():
    spec = resolve_weights("default")
    model = load_reference(spec).model
    batch = load_embedded("eval", spec.contract)
    with torch.no_grad():
        pred = model(torch.from_numpy(batch.images)).argmax(1).numpy()
    acc = float((pred == batch.labels).mean())
    assert acc == pytest.approx(default_meta()["eval_accuracy_500"], abs=0.01)
    assert acc > 0.6
