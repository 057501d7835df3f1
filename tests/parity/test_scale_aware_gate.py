"""The logit gate scales with the logits (issue 15): rounding noise that grows with the logit range passes at
every scale, and another model's logits fail, for every registered target's tolerance entry."""

from __future__ import annotations

import numpy as np
import pytest

from mnv2deploy.parity import compare_logits, evaluate
from mnv2deploy.targets import TARGETS
from mnv2deploy.tolerance import TOLERANCES, logit_limit, tolerance_for

# relative size of a correct conversion's differences, per precision (fp32 measured 2e-5 of the range at logits
# ~88; fp16 keeps 11 bits)
NOISE = {"fp32": 2e-5, "fp16": 5e-4, "int8": 0.0}


def _verdicts(ref: np.ndarray, art: np.ndarray, precision: str) -> dict[str, bool | None]:
    m = compare_logits(ref, art)
    m["reference_accuracy"] = m["artifact_accuracy"] = None
    return {c["name"]: c["passed"] for c in evaluate(m, tolerance_for(precision))}


def _logits(peak: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(64, 100))
    x[np.arange(64), rng.integers(0, 100, 64)] += 4  # a clear top-1, as a trained model has
    return x * peak / np.abs(x).max()


@pytest.mark.parametrize("peak", [1.0, 10.0, 100.0, 1000.0])
def test_every_target_passes_its_own_noise_and_fails_another_model(target_name, peak):
    precision = TARGETS[target_name].precision
    ref = _logits(peak, 0)
    noise = np.random.default_rng(1).uniform(-1, 1, ref.shape) * NOISE[precision] * peak
    assert all(v is not False for v in _verdicts(ref, ref + noise, precision).values())
    wrong = _verdicts(ref, _logits(peak, 2), precision)
    assert wrong["top1_agreement"] is False
    if TOLERANCES[precision].max_abs_diff is not None:
        assert wrong["max_abs_diff"] is False and wrong["sqnr_db"] is False


def test_fp32_allows_the_issue_case_and_catches_a_one_percent_bias():
    tol = TOLERANCES["fp32"]
    assert logit_limit(tol, 88.0) > 1.8e-3  # the correct conversion the absolute 1e-3 gate failed
    ref = _logits(10.0, 0)
    assert _verdicts(ref, ref + 0.1, "fp32")["max_abs_diff"] is False  # 1% of the range
    assert tol.reason and TOLERANCES["fp16"].rtol > tol.rtol
