"""docs/reliability.md lists every case this suite tries (the table is made from the recorded lines)."""

from __future__ import annotations

from .conftest import REPO
from .test_artifacts import CASES as ARTIFACT_CASES, MANIFEST_CASES
from .test_data import CASES as DATA_CASES
from .test_environment import MISSING
from .test_options import CASES as OPTION_CASES
from .test_weights import CASES as WEIGHT_CASES

OTHER_IDS = ("weights-default-other-width", "manifest-weights-pickle-runs-code", "data-image-modes",
             "data-label-mismatch", "calib-corrupt-image (onnx-int8)", "calib-corrupt-image (tflite-int8)",
             "env-missing-onnxruntime-parity", "env-out-is-under-a-file", "env-out-read-only",
             "env-junit-xml-unwritable", "env-bench-out-unwritable", "env-disk-full", "env-export-killed",
             "env-concurrent-exports", "env-ctrl-c", "env-no-adb", "env-no-qemu")


def test_every_case_is_in_the_docs():
    doc = (REPO / "docs" / "reliability.md").read_text()
    ids = [c[0] for table in (ARTIFACT_CASES, MANIFEST_CASES, DATA_CASES, MISSING, OPTION_CASES, WEIGHT_CASES)
           for c in table] + list(OTHER_IDS)
    missing = [i for i in ids if f"`{i}`" not in doc]
    assert not missing, f"add these cases to docs/reliability.md: {missing}"
