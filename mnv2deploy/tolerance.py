"""Parity thresholds per precision, each with the reason it is what it is (ExecuTorch's ToleranceConfig in spirit).

Low level on purpose: parity judges artifacts by these, and runtimes that can only check statically (Core ML on
Linux) judge the recorded quantized model by the same table.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from .errors import BadArtifactError, UsageError


@dataclass(frozen=True)
class Tolerance:
    # ExecuTorch-style logit gate: every |artifact - reference| <= max_abs_diff + rtol * |ref|, where |ref| is the
    # image's largest absolute reference logit (its logit range), not each element's own value: rounding error in
    # a logit comes from the sums that made it, whose size is the range's, so a logit near 0 is no more exact.
    max_abs_diff: float | None = None  # atol, in logits
    rtol: float = 0.0  # relative to the logit range
    min_agreement: float | None = None  # top-1 agreement, 0..1
    max_drop: float | None = None  # accuracy points (percent) the artifact may lose vs the reference
    min_sqnr_db: float | None = None
    reason: str = ""


TOLERANCES = {
    # Same math in float32, only kernel order differs: differences are rounding noise (~1e-5). 0.99 agreement
    # leaves room for a near-tie flipping among hundreds of images, never for a real error.
    # Relative part: float32 keeps 24 bits (6e-8), and reordered sums over ~50 layers grow that to about 2e-5 of
    # the logit range (a correct conversion with logits up to 88 differed by 1.8e-3); 1e-4 leaves 5x headroom,
    # while a wrong weight or a bias off by 1% is far outside. SQNR >= 40 dB, fp16's bar (an fp32 file must be at
    # least as close as an fp16 one): rounding noise measures 100-130 dB, another model's logits near 0 dB.
    "fp32": Tolerance(max_abs_diff=1e-3, rtol=1e-4, min_agreement=0.99, min_sqnr_db=40.0,
                      reason="float32 rounding noise only, which grows with the logit range"),
    # fp16 weights keep ~3 significant digits. Measured on the embedded default (tflite-fp16, 500 images, LiteRT
    # x86 and aarch64): max abs diff 0.011, SQNR 60.7 dB, agreement 0.998. Gates leave ~9x / 20 dB of headroom for
    # larger models and logits (ImageNet 224), yet a wrong op or a float cast bug lands far outside them.
    # fp16 rounding is relative too (2^-11 = 5e-4 per value): 5e-3 of the logit range (10x) over the 0.1 floor.
    "fp16": Tolerance(max_abs_diff=0.1, rtol=5e-3, min_agreement=0.99, min_sqnr_db=40.0,
                      reason="fp16 rounding of weights, about 3 significant digits"),
    # int8 logits differ by design; what matters is the decision: the bar, <=1 point of accuracy and
    # >=98% same top-1.
    "int8": Tolerance(max_drop=1.0, min_agreement=0.98, reason="int8 changes logits by design; gate the decisions"),
}


def tolerance_for(precision: str, max_drop: float | None = None, min_agreement: float | None = None) -> Tolerance:
    if precision not in TOLERANCES:
        raise BadArtifactError(f"precision {precision!r} has no parity thresholds",
                               f"known precisions: {', '.join(TOLERANCES)}")
    tol = TOLERANCES[precision]
    if max_drop is not None:
        if not max_drop >= 0:  # also NaN
            raise UsageError(f"--max-drop {max_drop} is not a non-negative number", "give accuracy points, e.g. 1.0")
        tol = replace(tol, max_drop=max_drop)
    if min_agreement is not None:
        if not 0 <= min_agreement <= 1:
            raise UsageError(f"--min-agreement {min_agreement} is not in 0..1", "e.g. 0.98")
        tol = replace(tol, min_agreement=min_agreement)
    return tol


def logit_limit(tol: Tolerance, ref_range: float) -> float | None:
    """The largest allowed logit difference for an image whose reference logits reach ``ref_range`` in absolute
    value (None: this precision does not gate logits)."""
    if tol.max_abs_diff is None:
        return None
    return tol.max_abs_diff + tol.rtol * ref_range


def limit_text(tol: Tolerance) -> str | None:
    if tol.max_abs_diff is None:
        return None
    return f"<= {tol.max_abs_diff:g} + {tol.rtol:g}*|ref|" if tol.rtol else f"<= {tol.max_abs_diff}"
