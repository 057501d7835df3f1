"""`mnv2deploy export --target T --out DIR`: one artifact plus its manifest per target (or every target with `all`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, List, Optional

import typer
from rich.table import Table

from ..errors import UsageError
from ..targets import available_targets
from .common import JsonOpt, emit, library_output, line, note, status


DEFAULT_OUT = Path("artifacts")


def _export_one(name: str, request: Any) -> dict[str, Any]:
    """One target's export as a picklable result (a worker's task)."""
    from ..targets import get_target

    return get_target(name).export(request).to_dict()


def _export_all(names: list[str], request: Any) -> list[dict[str, Any]]:
    """Export ``names``; several at once in worker processes when there are CPUs for it (threads.workers), since
    each converter uses one core at the thread cap. Results in ``names`` order."""
    from functools import partial

    from ..threads import workers
    from ..workers import run_all

    def done(name: str, r: dict[str, Any]) -> None:
        note(f"{name}: {r['artifact']} ({r['size_bytes'] / 1e6:.1f} MB, {r['seconds']:.1f} s)")

    n = min(workers(), len(names))
    if n > 1:
        note(f"exporting {len(names)} targets in {n} worker processes")
    order = list(reversed(names)) if n > 1 else names  # in parallel, the slowest (last registered) first
    with status(f"exporting {', '.join(names)}"), library_output():  # converters print MLIR timings, absl
        by_name = run_all({name: partial(_export_one, name, request) for name in order}, n, done)
    return [by_name[name] for name in names]


def user_weights(weights: str, width: float | None, num_classes: int | None, resolution: int | None,
                 mean: str | None = None, std: str | None = None, resize: int | None = None,
                 labels: Path | None = None):
    """The weights spec with the contract options applied; says what was inferred and, in one line, assumed."""
    from ..sidecar import override
    from ..weights import assumption_warning, resolve_weights

    spec = resolve_weights(weights, width_mult=width, num_classes=num_classes, resolution=resolution)
    if (mean, std, resize, labels) != (None, None, None, None):
        spec = spec.with_contract(*override(spec.contract, spec.assumed, mean, std, resize, labels))
    if spec.inferred:
        line(f"{' and '.join(spec.inferred)} inferred from the checkpoint's shapes (set --width/--num-classes "
             "to state them)")
    warning = assumption_warning(spec)
    if warning:
        line(warning)
    return spec


def parse_options(pairs: list[str]) -> dict[str, Any]:
    options: dict[str, Any] = {}
    for p in pairs:
        key, sep, value = p.partition("=")
        if not sep or not key:
            raise UsageError(f"--option {p!r} is not KEY=VALUE", "e.g. --option input-type=tensor")
        options[key.strip()] = value.strip()
    return options


def options_help() -> str:
    from ..targets.base import option_label
    from ..targets.plan import known_options

    per_target = [f"{n}: {', '.join(map(option_label, opts))}" for n, opts in known_options().items()]
    return ("Target-specific KEY=VALUE (repeatable), e.g. precision=fp32. "
            + ("; ".join(per_target) + " (values: docs/ios.md)." if per_target else ""))


def dynamic_batch_help() -> str:
    from ..targets import TARGETS

    able = ", ".join(n for n, t in TARGETS.items() if t.supports_dynamic_batch)
    return f"Dynamic batch dimension ({able} only)."


def export(
    target: str = typer.Option(..., "--target", "-t",
                               help=f"One of: {', '.join(available_targets())}, or all (every target available here)."),
    out: Path = typer.Option(DEFAULT_OUT, "--out", "-o", help="Output folder for artifacts and manifests."),
    width: Optional[float] = typer.Option(None, "--width", help="Width multiplier (default: what the weights were "
                                                                "made for; for a file, inferred from its shapes)."),
    resolution: Optional[int] = typer.Option(None, "--resolution", min=16, max=1024, help="Input size in pixels."),
    num_classes: Optional[int] = typer.Option(None, "--num-classes", min=1,
                                              help="Classifier outputs (for a file, inferred from its shapes)."),
    weights: str = typer.Option("default", "--weights", help="default (embedded CIFAR-10 model), imagenet, random or a "
                                                             "PATH (its input contract from PATH's .json sidecar)."),
    mean: Optional[str] = typer.Option(None, "--mean", help="Per-channel mean on 0..1 pixels, e.g. 0.5,0.5,0.5 "
                                                            "(overrides the weights' own)."),
    std: Optional[str] = typer.Option(None, "--std", help="Per-channel std, e.g. 0.25,0.25,0.25."),
    resize: Optional[int] = typer.Option(None, "--resize", help="Shorter side before the center crop (>= resolution)."),
    labels: Optional[Path] = typer.Option(None, "--labels", help="Text file, one class name a line, in output order."),
    calib: Optional[Path] = typer.Option(None, "--calib", help="Image folder DIR/<class>/<image> for int8 calibration "
                                                               "(default: the embedded calibration set)."),
    calib_samples: int = typer.Option(200, "--calib-samples", min=1, help="Calibration images to use."),
    split: int = typer.Option(1, "--split", min=1, help="Channel groups per inverted residual (1 = plain model)."),
    dynamic_batch: bool = typer.Option(False, "--dynamic-batch", help=dynamic_batch_help()),
    option: List[str] = typer.Option([], "--option", help=options_help()),
    quantized_reference: bool = typer.Option(
        False, "--quantized-reference", help="int8: also save the quantized torch model's logits on the embedded "
        "eval set beside the artifact (a 500-image pass; parity otherwise rebuilds what it needs)."),
    as_json: bool = JsonOpt,
) -> None:
    """Export MobileNetV2 to deployment formats, each with a manifest (hashes, tensors, preprocessing, versions)."""
    from ..targets.base import ExportRequest
    from ..targets.plan import accepting, check_option_names, plan_targets
    from ..weights import load_reference

    names, skipped = plan_targets(target)
    options = parse_options(option)
    check_option_names(options)
    spec = user_weights(weights, width, num_classes, resolution, mean, std, resize, labels)
    reference = load_reference(spec)
    if out == DEFAULT_OUT:
        line(f"writing to {out.resolve()} (the default --out)")
    request = ExportRequest(reference=reference, resolution=resolution or spec.contract.resolution, out_dir=out,
                            calib=calib, calib_samples=calib_samples, split=split, dynamic_batch=dynamic_batch,
                            options=options, quantized_reference=quantized_reference)
    if target == "all":
        names, refused = accepting(names, request)
        skipped += refused
    for s in skipped:
        note(f"skipping {s['target']}: {s['reason']}")
    results = _export_all(names, request)

    def render(console):
        t = Table(title="exported")
        for col in ("target", "precision", "artifact", "MB", "seconds"):
            t.add_column(col)
        for r in results:
            t.add_row(r["target"], r["precision"], r["artifact"], f"{r['size_bytes'] / 1e6:.2f}", f"{r['seconds']:.1f}")
        console.print(t)
        for s in skipped:
            console.print(f"skipped {s['target']}: {s['reason']}")

    if target == "all":
        emit({"artifacts": results, "skipped": skipped}, as_json, render)
    else:
        emit(results[0], as_json, render)
