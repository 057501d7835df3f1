"""The main job (`mnv2deploy run`): export every target available here, check each artifact's parity in its real
runtime, benchmark it on the host, and measure the activation memory of the int8 model plain and split.

Each step of each target is recorded, not raised: one target that cannot run here (Core ML on Linux) or fails
its check must not hide the others. Only bugs propagate.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from .errors import Mnv2Error
from .threads import cap as threads_cap

MEMORY_TARGET = "tflite-int8"


@dataclass(frozen=True)
class JobConfig:
    out: Path
    weights: str = "default"
    width: float | None = None  # None: what the weights were made for (a file: inferred from its shapes)
    num_classes: int | None = None
    resolution: int | None = None
    targets: tuple[str, ...] = ()  # empty = every target available here
    runs: int = 50
    warmup: int = 5
    threads: int = 1
    split: int = 4  # channel groups for the memory comparison; 1 skips it
    memory_resolution: int | None = 224  # the paper's setting; None = the run's resolution
    samples: int | None = None  # parity images; None = the whole evaluation set


def _attempt(fn: Callable[[], Any]) -> tuple[Any, str | None]:
    """(result, None) or (None, the typed error's one line)."""
    try:
        return fn(), None
    except Mnv2Error as e:
        return None, e.one_line()


def _bench_summary(result: Any) -> dict[str, Any]:
    lat = result.latency_ms
    mem = result.memory or {}
    return {"runtime": result.runtime, "delegate": result.delegate, "threads": result.threads,
            "p50_ms": lat.p50, "p90_ms": lat.p90, "p99_ms": lat.p99, "runs": lat.count, "warmup": result.warmup,
            "init_ms": result.init_ms, "first_inference_ms": result.first_inference_ms,
            "peak_memory_bytes": result.peak_memory_bytes, "model_rss_bytes": mem.get("model_rss_bytes"),
            "loaded": result.loaded, "loaded_notes": list(result.notes) if result.loaded else []}


def _parity_summary(report: dict[str, Any]) -> dict[str, Any]:
    keys = ("status", "passed", "runtime", "samples", "top1_agreement", "reference_accuracy", "artifact_accuracy",
            "max_abs_diff", "sqnr_db", "skip_reason", "static_checks_passed")
    out = {k: report.get(k) for k in keys}
    out["failed_checks"] = [c["name"] for c in report.get("checks", []) if c["passed"] is False]
    out["skipped_checks"] = [c["name"] for c in report.get("checks", []) if c.get("status") == "skipped"]
    if out["static_checks_passed"] is False:
        out["failed_checks"].append("static checks")
    return out


def _failed(row: dict[str, Any]) -> bool:
    """A parity check ran and failed (a skipped artifact's passed is null: not run, neither pass nor fail)."""
    p = row.get("parity") or {}
    return p.get("passed") is False or p.get("static_checks_passed") is False


def _memory_summary(report: Any) -> dict[str, Any]:
    d = report.to_dict()
    return {"artifact": d["artifact"], "static_peak_bytes": d["static_peak_bytes"],
            "measured_peak_bytes": d["measured_peak_bytes"], "measured_method": d["measured_method"],
            "largest_tensor": d["largest_tensor"], "peak_op": d["peak_op"]}


def run_job(cfg: JobConfig, progress: Callable[[str], None] = lambda _m: None, reference: Any = None) -> dict[str, Any]:
    """Run every step; returns the report dict (see `report.json`). ``reference``: the loaded weights when the
    caller already checked them (``weights.load_reference``), else loaded here from ``cfg``."""
    from .bench.host import HostBenchConfig, cpu_facts, cpu_model, load_average, run_host_bench
    from .memory.report import analyze_artifact
    from .parity import check_parity
    from .targets import get_target
    from .targets.base import ExportRequest
    from .targets.plan import plan_targets
    from .weights import load_reference, resolve_weights

    started = time.time()
    load_before = load_average()
    if reference is None:
        reference = load_reference(resolve_weights(cfg.weights, width_mult=cfg.width, num_classes=cfg.num_classes,
                                                   resolution=cfg.resolution))
    spec = reference.spec
    resolution = cfg.resolution or spec.contract.resolution
    artifacts_dir = Path(cfg.out) / "artifacts"
    request = ExportRequest(reference=reference, resolution=resolution, out_dir=artifacts_dir)
    if cfg.targets:
        names = [n for t in cfg.targets for n in plan_targets(t)[0]]
        skipped: list[dict[str, str]] = []
    else:
        names, skipped = plan_targets("all")

    rows: list[dict[str, Any]] = []
    for i, name in enumerate(names, 1):
        row: dict[str, Any] = {"target": name}
        rows.append(row)
        progress(f"[{i}/{len(names)}] {name}: exporting")
        exported, row["export_error"] = _attempt(lambda: get_target(name).export(request))
        if exported is None:
            continue
        row["export"] = exported.to_dict()
        progress(f"[{i}/{len(names)}] {name}: parity ({exported.size_bytes / 1e6:.1f} MB, {exported.seconds:.0f} s export)")
        # the job's threads for the runtime too (not its all-cores default); conversion fidelity is parity's own
        # report (report.md does not show it): no quantized model rebuilt here
        report, row["parity_error"] = _attempt(lambda: check_parity(exported.artifact, exported.manifest,
                                                                    samples=cfg.samples, threads=cfg.threads,
                                                                    fidelity=False))
        if report is not None:
            row["parity"] = _parity_summary(report)
        if report is None or report["status"] == "skipped":
            row["bench_skipped"] = (report or {}).get("skip_reason") or "parity did not run"
            continue
        progress(f"[{i}/{len(names)}] {name}: host bench ({cfg.warmup} warm-up + {cfg.runs} runs)")
        config = HostBenchConfig.for_format(exported.manifest.format, threads=cfg.threads, runs=cfg.runs,
                                            warmup=cfg.warmup)
        bench, row["bench_error"] = _attempt(lambda: run_host_bench(exported.artifact, exported.manifest, config))
        if bench is not None:
            row["bench"] = _bench_summary(bench)

    memory = _memory_step(cfg, request, rows, progress, analyze_artifact, get_target)
    return {
        "model": {"weights": spec.to_dict(), "resolution": resolution, "weights_sha256": reference.weights_sha256},
        "host": {"cpu": cpu_model(), "threads": cfg.threads, "cpu_flags": cpu_facts().get("simd", []),
                 "logical_cpus": cpu_facts().get("logical_cpus"), "thread_cap": threads_cap(),
                 "load_average_start": load_before, "load_average_end": load_average()},
        "config": {"runs": cfg.runs, "warmup": cfg.warmup, "threads": cfg.threads, "parity_samples": cfg.samples,
                   "split": cfg.split, "memory_resolution": cfg.memory_resolution},
        "targets": rows, "skipped_targets": skipped, "memory": memory,
        "passed": not any(_failed(r) for r in rows),
        "seconds": round(time.time() - started, 1),
    }


def _memory_step(cfg: JobConfig, request: Any, rows: list[dict[str, Any]], progress: Callable[[str], None],
                 analyze_artifact: Callable[..., Any], get_target: Callable[[str], Any]) -> dict[str, Any]:
    """Arena of the int8 model as exported, and of the same model with every block split into ``cfg.split`` groups,
    at the memory resolution (224 by default: at CIFAR's 32x32 every tensor is too small to matter)."""
    from dataclasses import replace

    resolution = cfg.memory_resolution or request.resolution
    plain = next((r for r in rows if r["target"] == MEMORY_TARGET and "export" in r), None)
    if plain is None:
        return {"skipped": f"{MEMORY_TARGET} was not exported"}
    result: dict[str, Any] = {"target": MEMORY_TARGET, "resolution": resolution}
    memory_request = replace(request, resolution=resolution, out_dir=Path(cfg.out) / "memory")
    for key, groups in (("plain", 1), ("split", cfg.split)):
        if key == "split" and groups <= 1:
            break
        what = "as exported" if groups == 1 else f"split into {groups} channel groups per block"
        progress(f"memory: {MEMORY_TARGET} at {resolution}x{resolution} {what} (export + arena)")
        if groups == 1 and resolution == request.resolution:  # the run's own export is this model
            artifact, result[f"{key}_error"] = Path(plain["export"]["artifact"]), None
        else:
            exported, result[f"{key}_error"] = _attempt(lambda: get_target(MEMORY_TARGET).export(
                replace(memory_request, split=groups)))
            if exported is None:
                continue
            artifact = exported.artifact
        analysed, result[f"{key}_error"] = _attempt(lambda: analyze_artifact(artifact, xnnpack=False))
        if analysed is not None:
            result[key] = {**_memory_summary(analysed), "groups": groups}
    if "plain" in result and "split" in result and result["split"]["measured_peak_bytes"]:
        result["reduction"] = result["plain"]["measured_peak_bytes"] / result["split"]["measured_peak_bytes"]
    _arm64_arenas(result, progress)
    return result


def _arm64_arenas(result: dict[str, Any], progress: Callable[[str], None]) -> None:
    """The same arenas from LiteRT's aarch64 kernels (qemu), when the emulated arm64 tier is already set up."""
    from .emulation import unavailable_reason
    from .memory.arm64 import arm64_arena

    if "plain" not in result:
        return
    reason = unavailable_reason()  # never built here: `mnv2deploy setup arm64` is the explicit step
    if reason is not None:
        result["arm64_skipped"] = reason
        return
    for key in ("plain", "split"):
        if key in result:
            progress(f"memory: aarch64 arena of the {key} model (LiteRT's arm64 kernels under qemu)")
            result[key]["arm64"], result[key]["arm64_error"] = _attempt(lambda: arm64_arena(result[key]["artifact"]))
