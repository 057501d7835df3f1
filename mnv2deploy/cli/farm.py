"""`mnv2deploy farm devices [--platform android|ios] [--json]`, and the farm side of `bench --farm`."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import typer

from ..errors import UsageError
from .common import JsonOpt, emit, note

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Hosted phones (AWS Device Farm).")


@app.command("devices")
def devices(
    platform: Optional[str] = typer.Option(None, "--platform", help="android or ios (default: both)."),
    name: Optional[str] = typer.Option(None, "--name", help="Only phones whose name contains this text."),
    farm: str = typer.Option("aws", "--farm", help="The farm (aws)."),
    as_json: bool = JsonOpt,
) -> None:
    """The farm's phones: name (what `bench --farm aws --device` takes), OS, form factor, CPU, availability."""
    from ..farm import get_farm

    if platform is not None and platform.lower() not in ("android", "ios"):
        raise UsageError(f"--platform {platform[:20]!r} is not android or ios")
    found = get_farm(farm).list_devices(platform.upper() if platform else None)
    if name:
        found = [d for d in found if name.lower() in d.name.lower()]
    rows = sorted((d.to_dict() for d in found), key=lambda r: (r["platform"], r["name"], r["os"]))

    def render(console: Any) -> None:
        from rich.table import Table

        if not rows:
            console.print("no phones match")
            return
        table = Table("name", "platform", "OS", "form factor", "CPU", "availability")
        for r in rows:
            table.add_row(r["name"], r["platform"], r["os"], r["form_factor"] or "-", r["cpu"] or "-",
                          r["availability"] or "-")
        console.print(table)

    emit({"farm": farm, "devices": rows}, as_json, render)


def farm_bench(farm: str, artifact: Path, dry_run: bool, as_json: bool, out: Optional[Path], **job: Any) -> None:
    """`bench ARTIFACT --farm NAME --device ...`: the plan (--dry-run) or the run, one result per phone; ``job`` holds
    the remaining FarmJob fields (devices, threads, runs, ...)."""
    from ..bench.report import render_result, save_result
    from ..farm import FARMS, FarmError, FarmJob, get_farm
    from ..fileio import ensure_writable_dir
    from ..manifest import read_manifest

    if farm not in FARMS:
        raise UsageError(f"unknown farm {farm[:20]!r}", f"choose one of {', '.join(sorted(FARMS))}")
    manifest = read_manifest(artifact, verify=True)
    if out is not None:
        if out.suffix.lower() == ".json":
            raise UsageError("--out for farm runs is a folder (one JSON per phone and the raw outputs)",
                             "pass a folder")
        ensure_writable_dir(out)
    request = FarmJob(artifact=artifact, manifest=manifest, out=out, **job)
    client = get_farm(farm)
    if dry_run:
        plan = client.plan(request).to_dict()
        emit(plan, as_json, lambda console: _render_plan(plan, console))
        return
    done = client.run(request, progress=note)
    written: dict[str, str] = {}
    for r in done.results:
        for what, path in (save_result(r, out) if out is not None else {}).items():
            written[f"{r.device.name} {what}"] = path
    for what, path in written.items():
        note(f"wrote {what}: {path}")
    if done.failures or not done.results:
        kept = f"; {len(done.results)} result(s) written to {out}" if done.results and out is not None else ""
        raise FarmError(f"{len(done.failures)} of {len(request.devices)} phone(s) gave no result: "
                        f"{'; '.join(done.failures) or 'no jobs'}{kept}",
                        f"raw output kept in {done.raw_dir}; see docs/farm.md, 'Faults'")
    payload = {"farm": farm, "run_arn": done.run_arn, "device_minutes": done.device_minutes,
               "raw_dir": str(done.raw_dir), "results": [r.to_dict() for r in done.results], "files": written}

    def render(console: Any) -> None:
        for r in done.results:
            render_result(r, console)
        console.print(f"device-minutes billed: {done.device_minutes if done.device_minutes is not None else '?'}")

    emit(payload, as_json, render)


def _render_plan(plan: dict[str, Any], console: Any) -> None:
    from rich.table import Table

    console.print(f"farm {plan['farm']}: {len(plan['devices'])} phone(s), ~{plan['estimated_device_minutes']} "
                  "device-minutes (dry run: nothing was sent)")
    for d in plan["devices"]:
        console.print(f"  phone: {d['name']} ({d['platform']})")
    files = Table("role", "name", "bytes", "present", "path")
    for f in plan["package_files"]:
        files.add_row(f["role"], f["name"], str(f.get("bytes", "-")), "yes" if f["present"] else "[red]no[/]",
                      f["path"] or "(generated)")
    console.print(files)
    console.print("test spec:")
    console.print(plan["test_spec"], markup=False, soft_wrap=True)  # a copyable spec: no wrapping
    console.print("API calls:")
    for c in plan["api_calls"]:
        console.print(f"  {c['operation']}: {c.get('note', '')}", markup=False)
