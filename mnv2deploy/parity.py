"""Accuracy parity: an artifact in its real runtime (in a child process) against the PyTorch reference it came from.

Metrics (docs/parity.md): top-1 agreement, accuracy of both when labels exist, max/mean absolute logit
difference, SQNR and cosine similarity; pass/fail per precision from a Tolerance with its reason.
"""

from __future__ import annotations

import math
import platform
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from .errors import BadArtifactError, BadDataError, MissingToolError, UsageError
from .manifest import Manifest, _own_version
from .runtimes.base import HOST
from .tolerance import Tolerance, limit_text, logit_limit, tolerance_for

ParityReport = dict[str, Any]  # the --json object; keys in docs/parity.md
CHILD_TIMEOUT = 3600.0  # a hung runtime must not block CI forever; qemu-emulated runs are the slow case


def compare_logits(ref: np.ndarray, art: np.ndarray) -> dict[str, float]:
    ref, art = np.asarray(ref, np.float64), np.asarray(art, np.float64)
    if ref.shape != art.shape:
        raise BadArtifactError(f"artifact logits have shape {art.shape}, the reference {ref.shape}",
                               "the artifact does not belong to this reference; re-export it")
    diff = np.abs(ref - art)
    noise = float(np.sum((ref - art) ** 2))
    sqnr = math.inf if noise == 0 else 10 * math.log10(float(np.sum(ref ** 2)) / noise)
    norms = np.linalg.norm(ref, axis=1) * np.linalg.norm(art, axis=1)
    cos = np.sum(ref * art, axis=1) / np.where(norms == 0, 1, norms)
    return {"top1_agreement": float(np.mean(ref.argmax(1) == art.argmax(1))), "max_abs_diff": float(diff.max()),
            "mean_abs_diff": float(diff.mean()), "sqnr_db": sqnr, "cosine": float(cos.mean()),
            "logit_range": float(np.abs(ref).max())}


def _labelled(labels: np.ndarray | None) -> bool:
    return labels is not None and len(labels) > 0 and not np.any(labels < 0)


def _accuracy(logits: np.ndarray, labels: np.ndarray | None) -> float | None:
    if not _labelled(labels):
        return None
    return float(np.mean(logits.argmax(1) == labels))


def _check(name: str, value: Any, limit: Any, passed: bool | None, detail: str, ran: bool = True) -> dict[str, Any]:
    """``status``: passed / failed, informational (no limit for this precision), or skipped (the check could not run,
    e.g. no labels for an accuracy drop): ``passed`` is then null, never true."""
    status = ("skipped" if not ran else "informational" if passed is None else "passed" if passed else "failed")
    return {"name": name, "value": value, "limit": limit, "passed": passed, "status": status, "detail": detail}


def evaluate(m: dict[str, Any], tol: Tolerance) -> list[dict[str, Any]]:
    """One check per metric; passed None = informational (no limit for this precision) or skipped (no labels)."""
    checks = []
    agree = m["top1_agreement"]
    if tol.min_agreement is not None:
        checks.append(_check("top1_agreement", agree, f">= {tol.min_agreement}", agree >= tol.min_agreement,
                             "share of images with the same top-1 class"))
    ra, aa = m["reference_accuracy"], m["artifact_accuracy"]
    if ra is not None and aa is not None:
        drop = (ra - aa) * 100
        m["accuracy_drop"] = drop
        passed = drop <= tol.max_drop + 1e-9 if tol.max_drop is not None else None
        checks.append(_check("accuracy_drop", drop, f"<= {tol.max_drop} pts" if tol.max_drop is not None else None,
                             passed, f"reference {ra:.2%} -> artifact {aa:.2%}"))
    else:
        m["accuracy_drop"] = None
        limit = f"<= {tol.max_drop} pts" if tol.max_drop is not None else None
        checks.append(_check("accuracy_drop", None, limit, None, "no labels for these images: accuracies not computed",
                             ran=False))
    mad, limit = m["max_abs_diff"], logit_limit(tol, m["logit_range"])  # scale-aware: atol + rtol * logit range
    text = limit_text(tol)
    checks.append(_check("max_abs_diff", mad, f"{text} = {limit:.3g}" if limit is not None and tol.rtol else text,
                         mad <= limit if limit is not None else None,
                         f"largest logit difference (reference logits reach {m['logit_range']:.3g})"))
    sq = m["sqnr_db"]
    checks.append(_check("sqnr_db", sq, f">= {tol.min_sqnr_db}" if tol.min_sqnr_db is not None else None,
                         sq >= tol.min_sqnr_db if tol.min_sqnr_db is not None else None,
                         "signal-to-quantization-noise ratio of the logits"))
    checks.append(_check("mean_abs_diff", m["mean_abs_diff"], None, None, "average logit difference"))
    checks.append(_check("cosine", m["cosine"], None, None, "mean cosine similarity of logit vectors"))
    return checks


def conversion_fidelity(artifact: Path, manifest: Manifest, data: Path | None, n: int, labels: np.ndarray | None,
                        logits: np.ndarray, images: np.ndarray | None = None, model: Any = None) -> dict[str, Any] | None:
    """int8: the artifact against the quantized torch model it was converted from: the logits the exporter recorded
    (``export --quantized-reference``) when this run uses the same images, else that model rebuilt from the float
    reference ``model`` and the recorded calibration, run on this run's ``images``."""
    if manifest.precision != "int8":
        return None
    qref = manifest.extra.get("quantized_reference")
    if not qref or not isinstance(qref, dict):
        qref = {"reason": "the manifest records no quantized torch reference"}
    if qref.get("file") is None:
        return _rebuilt_fidelity(manifest, labels, logits, images, model) or {"status": "n/a", "reason": qref.get("reason")}
    if data is not None or qref.get("data") != "embedded:eval" or qref.get("samples") != n:
        rebuilt = _rebuilt_fidelity(manifest, labels, logits, images, model)
        return rebuilt or {"status": "n/a", "reason": f"recorded on {qref.get('data')} x {qref.get('samples')}, this "
                           f"run on {'embedded:eval' if data is None else data} x {n}; run with the same data to compare",
                           "quantized_accuracy": qref.get("accuracy")}
    name = qref.get("file")
    if not isinstance(name, str) or not name or Path(name).name != name:  # never read outside the artifact's folder
        return {"status": "n/a", "reason": f"the manifest's quantized reference file {str(name)[:60]!r} is not a "
                                           "file name beside the artifact"}
    path = artifact.parent / name
    try:
        with np.load(path) as z:
            q_logits, q_labels = z["logits"], z["labels"]
    except (OSError, KeyError, ValueError) as e:
        return {"status": "n/a", "reason": f"cannot read {path.name}: {type(e).__name__}"}
    if labels is not None and (q_labels.shape != labels.shape or np.any(q_labels != labels)):
        return {"status": "n/a", "reason": "the recorded labels differ from this run's images"}
    if q_logits.shape != logits.shape:
        return {"status": "n/a", "reason": f"{path.name} holds logits of shape {q_logits.shape}, not {logits.shape}"}
    out = compare_logits(q_logits, logits)
    out.update(status="compared", source="recorded", quantized_accuracy=_accuracy(q_logits, labels), file=path.name)
    return out


def _rebuilt_fidelity(manifest: Manifest, labels: np.ndarray | None, logits: np.ndarray, images: np.ndarray | None,
                      model: Any) -> dict[str, Any] | None:
    """Conversion fidelity against the quantized torch model rebuilt by the manifest's target; None when the target
    has none (onnx-int8: onnxruntime quantizes the graph itself) or nothing to rebuild it from."""
    from .data import load_dataset
    from .targets import TARGETS
    from .targets._common import batch1_logits
    from .targets.base import Target

    target = TARGETS.get(manifest.target)
    calib = manifest.extra.get("calibration")
    if target is None or model is None or images is None or not isinstance(calib, dict):
        return None
    source, count = calib.get("source"), calib.get("samples")
    if type(target).quantized_torch_model is Target.quantized_torch_model:  # no separate quantized torch model
        return None
    if not isinstance(source, str) or not isinstance(count, int) or count < 1:
        return {"status": "n/a", "reason": "the manifest's calibration record is incomplete"}
    folder = None if source == "embedded:calib" else Path(source)
    if folder is not None and not folder.is_dir():
        return {"status": "n/a", "reason": f"the calibration folder {source} is not here to rebuild the quantized "
                                           "torch model; export with --quantized-reference to record its logits"}
    calib_batch = load_dataset(folder, manifest.preprocessing, count, kind="calib")
    qmodel = target.quantized_torch_model(model, manifest.preprocessing.resolution, calib_batch.images, manifest)
    q_logits = batch1_logits(qmodel, images)
    out = compare_logits(q_logits, logits)
    out.update(status="compared", source="rebuilt", quantized_accuracy=_accuracy(q_logits, labels))
    return out


def _load_images(data: Path | None, manifest: Manifest, samples: int | None):
    """The embedded eval set, or a folder; a folder whose class names are not the model's labels is unlabelled
    (agreement and logit metrics still apply, accuracies are null)."""
    from .data import list_image_folder, load_dataset, load_image_folder

    if data is None:
        return load_dataset(None, manifest.preprocessing, samples)
    _, classes = list_image_folder(data)
    known = manifest.labels or ()
    return load_image_folder(data, manifest.preprocessing, samples, labelled=all(c in known for c in classes))


def check_parity(artifact: Path, manifest: Manifest, data: Path | None = None, samples: int | None = None,
                 thresholds: Tolerance | None = None, arch: str = HOST, cpu: str | None = None,
                 threads: int | None = None, labels_required: bool = False, fidelity: bool = True,
                 weights: Path | None = None) -> ParityReport:
    """The parity report (a dict, as printed by --json) of ``artifact``, whose ``manifest`` the caller has read and
    verified (``read_manifest(artifact, verify=True)``). Raises typed errors for bad artifacts/data.

    ``labels_required``: the caller asked for an accuracy gate (--max-drop), so unlabelled images are a usage error
    rather than a check that silently cannot run. ``fidelity``: int8 conversion fidelity (may rebuild the quantized
    torch model; the main job skips it, its report does not show it). ``weights``: where the reference checkpoint
    is now, when not where the export ran (checked by sha256)."""
    from .runtimes import check_threads, run_artifact, runtime_for
    from .runtimes.child import call_in_child
    from .runtimes.torch_eager import TorchRuntime, moved_weights_spec

    artifact = Path(artifact)
    check_threads(threads)
    if weights is not None:
        moved_weights_spec(manifest, Path(weights))  # a wrong checkpoint is refused first, even where parity skips
    tol = thresholds or tolerance_for(manifest.precision)
    runtime_cls = runtime_for(manifest, arch)
    if cpu is not None and "cpu" not in runtime_cls.option_names:
        raise UsageError(f"--cpu does not apply to {runtime_cls.name}", "add --arch arm64 or drop --cpu")
    report: dict[str, Any] = {
        "artifact": str(artifact), "target": manifest.target, "precision": manifest.precision,
        "arch": "aarch64" if runtime_cls.arch == "arm64" else platform.machine(), "cpu": cpu,
        "runtime": runtime_cls.name, "thresholds": {**asdict(tol)}, "passed": False, "status": "failed",
        "top1_agreement": None, "reference_accuracy": None, "artifact_accuracy": None, "max_abs_diff": None,
        "mean_abs_diff": None, "sqnr_db": None, "cosine": None, "samples": 0, "conversion_fidelity": None,
        "versions": {}, "export_tool_versions": dict(manifest.tool_versions), "checks": []}
    reason = runtime_cls.unavailable_reason()
    if reason and runtime_cls.arch != HOST:  # asked for explicitly: say what to set up, never skip quietly
        raise MissingToolError(f"{runtime_cls.name} cannot run here: {reason}")
    if reason:
        checks = runtime_cls.static_checks(artifact, manifest)
        # not run is not passed: the static checks' verdict has its own key (and a failed one still exits 3)
        report.update(status="skipped", passed=None, static_checks_passed=all(c["passed"] for c in checks),
                      skip_reason=reason, static_checks=checks)
        return report

    batch = _load_images(data, manifest, samples)
    if len(batch) == 0:
        raise BadDataError("no images to compare", "give a folder with images (one subfolder per class for labels)")
    if labels_required and not _labelled(batch.labels):
        raise UsageError(f"--max-drop needs labelled images, and {batch.source} has no labels the model knows",
                         "drop --max-drop, or give --data DIR/<class>/<image> with the model's class names as folders")
    ref_rt = TorchRuntime()
    ref_rt.load(artifact, manifest, threads=threads, **({"weights": weights} if weights is not None else {}))
    ref = ref_rt.run(batch.images)
    options = {"cpu": cpu} if cpu is not None else {}
    out = call_in_child(run_artifact, str(artifact), manifest, batch.images, arch, threads, timeout=CHILD_TIMEOUT,
                        **options)
    logits = out["logits"]
    metrics = compare_logits(ref, logits)
    metrics["reference_accuracy"] = _accuracy(ref, batch.labels)
    metrics["artifact_accuracy"] = _accuracy(logits, batch.labels)
    checks = evaluate(metrics, tol)
    passed = all(c["passed"] is not False for c in checks)
    report.update(metrics, checks=checks, passed=passed, status="passed" if passed else "failed",
                  samples=len(batch), data=batch.source, runtime=out["runtime"], runtime_details=out["details"],
                  versions={**out["versions"], **ref_rt.versions(), "mnv2deploy": _own_version()},
                  conversion_fidelity=(conversion_fidelity(artifact, manifest, data, len(batch), batch.labels, logits,
                                                           batch.images, ref_rt.model) if fidelity else None),
                  cpu=out["details"].get("emulated_cpu", cpu))
    return report
