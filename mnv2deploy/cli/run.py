"""`mnv2deploy run --out DIR`: the main job: export, parity, host bench and memory for every target available here,
with `report.md`, `report.json` and a chart in DIR. Exits 3 when any artifact fails its parity check."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer
from rich.table import Table

from ..errors import CheckFailedError
from .common import JsonOpt, converter_output, emit, note


def run(
    out: Path = typer.Option(Path("out/run"), "--out", "-o", help="Folder for the report and the artifacts."),
    weights: str = typer.Option("default", "--weights", help="default (embedded CIFAR-10 model), imagenet or a PATH."),
    width: Optional[float] = typer.Option(None, "--width", help="Width multiplier (default: what the weights were "
                                                                "made for; for a file, inferred from its shapes)."),
    num_classes: Optional[int] = typer.Option(None, "--num-classes", min=1,
                                              help="Classifier outputs (for a file, inferred from its shapes)."),
    resolution: Optional[int] = typer.Option(None, "--resolution", min=16, max=1024,
                                             help="Input size (default: the weights' own, 32 for the default)."),
    target: List[str] = typer.Option([], "--target", "-t", help="Only these targets (repeatable; default: all available)."),
    runs: int = typer.Option(50, "--runs", min=1, help="Timed host runs per artifact."),
    warmup: int = typer.Option(5, "--warmup", min=0, help="Untimed runs before them."),
    threads: int = typer.Option(1, "--threads", min=1, help="Runtime threads for parity and bench."),
    split: int = typer.Option(4, "--split", min=1, max=32,
                              help="Channel groups per block for the memory comparison (1 skips it)."),
    memory_resolution: int = typer.Option(224, "--memory-resolution", min=16, max=1024,
                                          help="Input size for the memory comparison (the paper's 224)."),
    samples: Optional[int] = typer.Option(None, "--samples", min=1, help="Parity images (default: the whole eval set)."),
    workers: Optional[int] = typer.Option(None, "--workers", min=1,
                                          help="Exports and parity checks at once, in worker processes (default: "
                                               "$MNV2DEPLOY_WORKERS, else CPUs / thread cap; benches always run alone)."),
    as_json: bool = JsonOpt,
) -> None:
    """The main job: every artifact exported, checked against PyTorch in its runtime, timed, and its memory measured."""
    from ..fileio import ensure_writable_dir, write_json_atomic, write_text_atomic
    from ..job import JobConfig, run_job
    from ..job_report import render_markdown, write_chart

    from ..weights import load_reference
    from .export import user_weights

    # weights first: a bad file or width is refused before the folder or its log exists
    reference = load_reference(user_weights(weights, width, num_classes, resolution))
    created = not out.exists()
    ensure_writable_dir(out)  # fail before minutes of work, not after
    cfg = JobConfig(out=out, weights=weights, width=width, num_classes=num_classes, resolution=resolution,
                    targets=tuple(target), runs=runs, warmup=warmup, threads=threads, split=split, samples=samples,
                    memory_resolution=memory_resolution, workers=workers)
    log = out / "run.log"
    note(f"converter and runtime output goes to {log}")
    try:
        with converter_output(log):
            report = run_job(cfg, progress=note, reference=reference)
    except BaseException:
        _remove_empty(log, out if created else None)
        raise
    chart = write_chart(report, out / "report.png")
    files = {"markdown": str(out / "report.md"), "json": str(out / "report.json"), "log": str(log)}
    if chart:
        files["chart"] = str(chart)
    report["files"] = files
    write_json_atomic(out / "report.json", report)
    write_text_atomic(out / "report.md", render_markdown(report, chart.name if chart else None))
    note(f"wrote {out / 'report.md'} and {out / 'report.json'}")

    def render(console) -> None:
        t = Table(title=f"mnv2deploy run ({report['seconds']:.0f} s; host CPU, not a phone)")
        for col in ("target", "MB", "parity", "agreement", "max abs diff", "p50 ms", "peak RSS MB"):
            t.add_column(col)
        for r in report["targets"]:
            e, p, b = r.get("export") or {}, r.get("parity") or {}, r.get("bench") or {}
            verdict = ("[red]export failed[/]" if not e else "skipped" if p.get("status") == "skipped"
                       else "[green]pass[/]" if p.get("passed") else "[red]FAIL[/]" if p else "-")
            t.add_row(r["target"], f"{e['size_bytes'] / 1e6:.2f}" if e else "-", verdict,
                      f"{p['top1_agreement']:.3f}" if p.get("top1_agreement") is not None else "-",
                      f"{p['max_abs_diff']:.3g}" if p.get("max_abs_diff") is not None else "-",
                      f"{b['p50_ms']:.2f}" if b else "-",
                      f"{b['peak_memory_bytes'] / 1e6:.1f}" if b.get("peak_memory_bytes") else "-")
        console.print(t)
        mem = report["memory"]
        if "reduction" in mem:
            console.print(f"memory at {mem['resolution']}x{mem['resolution']}: {mem['target']} arena {mem['plain']['measured_peak_bytes'] / 1e6:.2f} MB as exported, "
                          f"{mem['split']['measured_peak_bytes'] / 1e6:.2f} MB split into {mem['split']['groups']} groups "
                          f"per block ({mem['reduction']:.2f}x less)")
        console.print(f"report: {files['markdown']}")

    emit(report, as_json, render)
    if not report["passed"]:
        failed = [r["target"] for r in report["targets"] if (r.get("parity") or {}).get("failed_checks")]
        raise CheckFailedError(f"parity failed for {', '.join(failed)}", f"see {files['markdown']}")


def _remove_empty(log: Path, folder: Path | None) -> None:
    """A failed run leaves no empty files: an empty log goes, and so does the folder when this run made it."""
    try:
        if log.is_file() and log.stat().st_size == 0:
            log.unlink()
        if folder is not None and folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()
    except OSError:
        pass  # best effort: the error being raised is what the user must see
