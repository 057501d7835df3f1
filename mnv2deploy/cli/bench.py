"""`mnv2deploy bench ARTIFACT [--device host|PROFILE|SERIAL|iphone|UDID]`: latency and peak memory of an artifact
in its real runtime, on this CPU (default), an Android phone over adb, or an iPhone via Xcode."""

from __future__ import annotations

import re
from pathlib import Path
from typing import List, Optional

import typer

from ..errors import UsageError
from .common import JsonOpt, emit, note, status

# Apple device ids: 40 hex (older UDIDs), 8-16 hex (newer UDIDs), or a CoreDevice UUID.
APPLE_ID = re.compile(r"^([0-9a-fA-F]{40}|[0-9a-fA-F]{8}-[0-9a-fA-F]{16}|"
                      r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})$")


def single_device(devices: List[str]) -> str:
    """--device is repeatable for farm runs only; everywhere else it names one device."""
    if len(devices) > 1:
        raise UsageError("--device is repeatable only with --farm", "bench one device at a time, or add --farm aws")
    return devices[0]


def device_kind(device: str, artifact: Path) -> str:
    """host, ios or android: iOS for `iphone`, an Apple id or a Core ML package; Android for anything else."""
    if device == "host":
        return "host"
    if device.lower() == "iphone" or APPLE_ID.match(device) or artifact.suffix == ".mlpackage":
        return "ios"
    return "android"


def bench(
    artifact: Path = typer.Argument(..., help="An exported artifact with its .manifest.json beside it."),
    device: List[str] = typer.Option(["host"], "--device", "-d",
                                     help="host (this CPU), an Android profile (pixel) or adb serial, iphone or a "
                                          "UDID; with --farm a phone name (repeatable)."),
    threads: int = typer.Option(1, "--threads", min=1, help="Runtime threads (host and Android)."),
    runs: int = typer.Option(100, "--runs", min=1, help="Timed runs."),
    warmup: int = typer.Option(10, "--warmup", min=0, help="Untimed runs before the timed ones."),
    batch: int = typer.Option(1, "--batch", min=1, help="Images per run (host only)."),
    no_xnnpack: bool = typer.Option(False, "--no-xnnpack", help="LiteRT builtin kernels instead of XNNPACK (host)."),
    runtime: str = typer.Option("auto", "--runtime", help="auto (the artifact's runtime) or torch (the PyTorch eager "
                                                          "reference the artifact was exported from; host only)."),
    cores: Optional[str] = typer.Option(None, "--cores", help="CPUs to pin to, e.g. 4-7 or 0,1 "
                                                              "(Android default: the big cores)."),
    runner: Optional[Path] = typer.Option(None, "--runner", help="Android: a benchmark_model binary to push."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Folder (or FILE.json) for the JSON result and a "
                                                                 "latency histogram PNG."),
    farm: Optional[str] = typer.Option(None, "--farm", help="Run on hosted phones: aws (AWS Device Farm; "
                                                            "docs/farm.md)."),
    project: Optional[str] = typer.Option(None, "--project", help="Farm project name or ARN (default mnv2deploy)."),
    timeout_minutes: Optional[int] = typer.Option(None, "--timeout-minutes", help="Farm job timeout per phone "
                                                                                  "(default 30)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Farm: print the plan; no credentials, no network."),
    app: Optional[Path] = typer.Option(None, "--app", help="Farm: the app upload (.apk/.ipa; default: LiteRT's "
                                                           "benchmark APK from the cache)."),
    xctestrun: Optional[Path] = typer.Option(None, "--xctestrun", help="Farm, .mlpackage: the .xctestrun zip "
                                                                       "built from ios_bench/ on a Mac."),
    as_json: bool = JsonOpt,
) -> None:
    """Latency statistics (p50/p90/p99, mean, trimmed mean), init and first-inference time, peak memory."""
    from ..bench.report import render_result, save_result
    from ..manifest import read_manifest

    farm_only = [name for name, given in (("--project", project is not None), ("--dry-run", dry_run),
                                          ("--timeout-minutes", timeout_minutes is not None),
                                          ("--app", app is not None), ("--xctestrun", xctestrun is not None)) if given]
    if farm is not None:
        from .farm import farm_bench

        not_farm = [name for name, given in (("--batch", batch != 1), ("--no-xnnpack", no_xnnpack),
                                             ("--runtime", runtime != "auto"), ("--cores", bool(cores))) if given]
        if not_farm:
            raise UsageError(f"{', '.join(not_farm)} do not apply to farm runs",
                             "drop them (the farm pins to the big cores where the phone allows it)")
        if device == ["host"]:
            raise UsageError("--farm needs --device NAME (repeatable)", "`mnv2deploy farm devices` lists the phones")
        return farm_bench(farm, artifact, dry_run, as_json, out, devices=tuple(device), threads=threads, runs=runs,
                          warmup=warmup, project=project, timeout_minutes=timeout_minutes or 30, runner=runner,
                          app=app, xctestrun=xctestrun)
    if farm_only:
        raise UsageError(f"{', '.join(farm_only)} only apply with --farm", "add --farm aws, or drop them")
    device = single_device(device)
    kind = device_kind(device, artifact)
    if kind != "host":
        host_only = [name for name, given in (("--batch", batch != 1), ("--no-xnnpack", no_xnnpack),
                                              ("--runtime", runtime != "auto")) if given]
        if host_only:
            raise UsageError(f"{', '.join(host_only)} only apply to --device host",
                             "drop them, or bench on the host")
    if kind != "android" and runner is not None:
        raise UsageError("--runner only applies to Android devices", "drop --runner")
    if kind == "ios" and cores:
        raise UsageError("--cores does not apply to iPhones", "drop --cores")
    manifest = read_manifest(artifact, verify=True)  # the one read and sha256 check of this command
    if out is not None:
        from ..bench.report import output_folder
        from ..fileio import ensure_writable_dir

        ensure_writable_dir(output_folder(out))
    if kind == "host":  # option values first: never announce a run that cannot start
        from ..android.bench import parse_cores  # one CPU-list syntax for host and phone
        from ..bench.host import HostBenchConfig

        config = HostBenchConfig.for_format(manifest.format, threads=threads, runs=runs, warmup=warmup, batch=batch,
                                            xnnpack=not no_xnnpack, runtime=runtime, cores=parse_cores(cores))
    with status(f"benchmarking {artifact.name} on {device}"):
        if kind == "host":
            from ..bench.host import run_host_bench

            note(f"bench {artifact.name} on host: {warmup} warm-up + {runs} runs, {threads} thread(s)")
            result = run_host_bench(artifact, manifest, config)
        elif kind == "ios":
            from ..ios.bench import run_ios_bench

            result = run_ios_bench(artifact, manifest, device=device, runs=runs, warmup=warmup, out=out)
        else:
            from ..android.bench import run_android_bench

            result = run_android_bench(artifact, manifest, device=device, threads=threads, runs=runs,
                                       warmup=warmup, cores=cores, runner=runner, out=out)
    written = save_result(result, out) if out is not None else {}
    if result.loaded:
        note("warning: the machine looked loaded during the run; these numbers are noisy (see the notes)")
    for what, path in written.items():
        note(f"wrote {what}: {path}")
    emit({**result.to_dict(), "files": written}, as_json, lambda console: render_result(result, console))
