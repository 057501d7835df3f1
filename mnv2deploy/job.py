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
# the memory models' activation arena does not depend on their quantization scales, only on the graph: a few real
# images calibrate them (the run's own tflite-int8, whose accuracy parity checks, uses the export default of 200)
MEMORY_CALIB_SAMPLES = 16


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
    workers: int | None = None  # parallel export/parity processes; None = threads.workers()


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
    caller already checked them (``weights.load_reference``), else loaded here from ``cfg``.

    Exports, parity checks and the memory models' exports run first, ``cfg.workers`` at a time in worker processes
    (workers.py); the host benches run after them, one at a time, so no timing shares the CPUs with a converter."""
    from dataclasses import replace
    from functools import partial

    from .bench.host import cpu_facts, cpu_model, load_average
    from .targets.base import ExportRequest
    from .targets.plan import plan_targets
    from .threads import workers as default_workers
    from .weights import load_reference, resolve_weights
    from .workers import run_all

    started = time.time()
    load_before = load_average()
    if reference is None:
        reference = load_reference(resolve_weights(cfg.weights, width_mult=cfg.width, num_classes=cfg.num_classes,
                                                   resolution=cfg.resolution))
    spec = reference.spec
    resolution = cfg.resolution or spec.contract.resolution
    request = ExportRequest(reference=reference, resolution=resolution, out_dir=Path(cfg.out) / "artifacts")
    if cfg.targets:
        names = [n for t in cfg.targets for n in plan_targets(t)[0]]
        skipped: list[dict[str, str]] = []
    else:
        names, skipped = plan_targets("all")

    memory_resolution = cfg.memory_resolution or resolution
    memory_request = replace(request, resolution=memory_resolution, out_dir=Path(cfg.out) / "memory",
                             calib_samples=MEMORY_CALIB_SAMPLES)
    tasks: dict[str, Callable[[], Any]] = {}
    if MEMORY_TARGET in names:  # the longest tasks first, so the last one to start is a short one
        for key, groups in _memory_models(cfg, memory_resolution == resolution):
            tasks[f"memory:{key}"] = partial(_memory_model, replace(memory_request, split=groups))
    for name in reversed(names):  # the registry lists the int8 and ExecuTorch (slowest) targets last
        tasks[name] = partial(_export_and_check, name, request, cfg.samples, cfg.threads)
    workers = min(cfg.workers or default_workers(), len(tasks))
    progress(f"exporting and checking {len(names)} target(s)" + (" and the memory models" if len(tasks) > len(names)
             else "") + (f" in {workers} worker processes" if workers > 1 else ""))
    finished = 0

    def done(key: str, value: Any) -> None:
        nonlocal finished
        finished += 1
        progress(f"[{finished}/{len(tasks)}] {_describe(key, value)}")

    results = run_all(tasks, workers, done)
    rows = [results[name][0] for name in names]
    _bench_all(cfg, [(row, results[row["target"]][1]) for row in rows], progress)
    memory = _memory_step(cfg, rows, results, memory_resolution, resolution, progress)
    return {
        "model": {"weights": spec.to_dict(), "resolution": resolution, "weights_sha256": reference.weights_sha256},
        "host": {"cpu": cpu_model(), "threads": cfg.threads, "cpu_flags": cpu_facts().get("simd", []),
                 "logical_cpus": cpu_facts().get("logical_cpus"), "thread_cap": threads_cap(),
                 "load_average_start": load_before, "load_average_end": load_average()},
        "config": {"runs": cfg.runs, "warmup": cfg.warmup, "threads": cfg.threads, "parity_samples": cfg.samples,
                   "split": cfg.split, "memory_resolution": cfg.memory_resolution, "workers": workers,
                   "memory_calibration_samples": MEMORY_CALIB_SAMPLES},
        "targets": rows, "skipped_targets": skipped, "memory": memory,
        "passed": not any(_failed(r) for r in rows),
        "seconds": round(time.time() - started, 1),
    }


def _describe(key: str, value: Any) -> str:
    """One progress line for a finished task."""
    if key.startswith("memory:"):
        summary, error = value
        return f"memory model {key.removeprefix('memory:')}: " + (
            error or f"exported, arena {summary['measured_peak_bytes'] / 1e6:.2f} MB")
    row = value[0]
    if row.get("export_error"):
        return f"{key}: export failed: {row['export_error']}"
    e, p = row["export"], row.get("parity") or {}
    verdict = (f"parity error: {row['parity_error']}" if row.get("parity_error") else "parity skipped"
               if p.get("status") == "skipped" else "parity pass" if p.get("passed") else "parity FAIL")
    return f"{key}: {e['size_bytes'] / 1e6:.1f} MB, exported in {e['seconds']:.0f} s, {verdict}"


def _export_and_check(name: str, request: Any, samples: int | None, threads: int) -> tuple[dict[str, Any], Any]:
    """One target's export and parity check (a worker's task): its report row, and the export for the bench."""
    from .parity import check_parity
    from .targets import get_target

    row: dict[str, Any] = {"target": name}
    exported, row["export_error"] = _attempt(lambda: get_target(name).export(request))
    if exported is None:
        return row, None
    row["export"] = exported.to_dict()
    # the job's threads for the runtime too (not its all-cores default); conversion fidelity is parity's own
    # report (report.md does not show it): no quantized model rebuilt here
    report, row["parity_error"] = _attempt(lambda: check_parity(exported.artifact, exported.manifest, samples=samples,
                                                                threads=threads, fidelity=False))
    if report is not None:
        row["parity"] = _parity_summary(report)
    if report is None or report["status"] == "skipped":
        row["bench_skipped"] = (report or {}).get("skip_reason") or "parity did not run"
    return row, exported


def _bench_all(cfg: JobConfig, exported: list[tuple[dict[str, Any], Any]], progress: Callable[[str], None]) -> None:
    """Host benches one at a time, after every converter has finished (timings need a quiet CPU)."""
    from .bench.host import HostBenchConfig, run_host_bench

    todo = [(row, e) for row, e in exported if e is not None and "bench_skipped" not in row]
    for i, (row, e) in enumerate(todo, 1):
        progress(f"host bench [{i}/{len(todo)}] {row['target']} ({cfg.warmup} warm-up + {cfg.runs} runs)")
        config = HostBenchConfig.for_format(e.manifest.format, threads=cfg.threads, runs=cfg.runs, warmup=cfg.warmup)
        bench, row["bench_error"] = _attempt(lambda: run_host_bench(e.artifact, e.manifest, config))
        if bench is not None:
            row["bench"] = _bench_summary(bench)


def _memory_models(cfg: JobConfig, same_resolution: bool) -> list[tuple[str, int]]:
    """The memory models to export: ("plain", 1) unless the run's own export is that model, ("split", K)."""
    models = [] if same_resolution else [("plain", 1)]
    return ([("split", cfg.split)] if cfg.split > 1 else []) + models


def _memory_model(request: Any | None, artifact: Path | None = None) -> tuple[dict[str, Any] | None, str | None]:
    """Export (unless ``artifact`` is given: the run's own export, ``request`` None) and analyse one memory model:
    (summary, None) or (None, error)."""
    from .memory.report import analyze_artifact
    from .targets import get_target

    if artifact is None:
        exported, error = _attempt(lambda: get_target(MEMORY_TARGET).export(request))
        if exported is None:
            return None, error
        artifact = exported.artifact
    analysed, error = _attempt(lambda: analyze_artifact(artifact, xnnpack=False))
    groups = 1 if request is None else request.split
    return ({**_memory_summary(analysed), "groups": groups} if analysed is not None else None), error


def _memory_step(cfg: JobConfig, rows: list[dict[str, Any]], results: dict[str, Any], resolution: int,
                 run_resolution: int, progress: Callable[[str], None]) -> dict[str, Any]:
    """Arena of the int8 model as exported, and of the same model with every block split into ``cfg.split`` groups,
    at the memory resolution (224 by default: at CIFAR's 32x32 every tensor is too small to matter)."""
    plain = next((r for r in rows if r["target"] == MEMORY_TARGET and "export" in r), None)
    if plain is None:
        return {"skipped": f"{MEMORY_TARGET} was not exported"}
    result: dict[str, Any] = {"target": MEMORY_TARGET, "resolution": resolution,
                              "calibration_samples": MEMORY_CALIB_SAMPLES}
    models = {key: results[f"memory:{key}"] for key in ("plain", "split") if f"memory:{key}" in results}
    if resolution == run_resolution:  # the run's own export is the plain model
        progress(f"memory: arena of {MEMORY_TARGET} as exported")
        models["plain"] = _memory_model(None, Path(plain["export"]["artifact"]))
    for key, (summary, error) in models.items():
        result[f"{key}_error"] = error
        if summary is not None:
            result[key] = summary
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
