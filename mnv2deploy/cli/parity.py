"""`mnv2deploy parity ARTIFACT`: the artifact in its real runtime against the PyTorch reference it came from."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any, Optional
from xml.etree import ElementTree as ET

import typer
from rich.table import Table

from ..errors import CheckFailedError, PlatformError
from ..fileio import atomic_path, ensure_writable_dir
from .common import JsonOpt, emit, library_output, note, status


def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def junit_xml(report: dict[str, Any]) -> bytes:
    """One testcase per metric (or per static check when skipped) so CI systems show parity natively."""
    name = f"parity[{report.get('target')}]"
    suite = ET.Element("testsuite", name=name)
    cases = report.get("checks") or []
    failures = skipped = 0
    if report["status"] == "skipped":
        for c in report.get("static_checks", []):
            tc = ET.SubElement(suite, "testcase", classname=name, name=f"static: {c['name']}")
            if not c["passed"]:
                failures += 1
                ET.SubElement(tc, "failure", message=str(c["detail"]))
        tc = ET.SubElement(suite, "testcase", classname=name, name="runtime parity")
        ET.SubElement(tc, "skipped", message=str(report.get("skip_reason")))
        skipped += 1
    for c in cases:
        tc = ET.SubElement(suite, "testcase", classname=name, name=c["name"])
        text = f"{c['name']} = {_fmt(c['value'])} (limit {c['limit']}): {c['detail']}"
        if c["passed"] is False:
            failures += 1
            ET.SubElement(tc, "failure", message=text)
        elif c["passed"] is None:
            ET.SubElement(tc, "system-out").text = text + " [informational]"
        else:
            ET.SubElement(tc, "system-out").text = text
    suite.set("tests", str(len(suite)))
    suite.set("failures", str(failures))
    suite.set("skipped", str(skipped))
    suite.set("errors", "0")
    root = ET.Element("testsuites")
    root.append(suite)
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)


def _render(report: dict[str, Any]):
    def render(console) -> None:
        title = (f"parity of {Path(report['artifact']).name} ({report['target']}, {report['precision']}) "
                 f"on {report['runtime']} [{report['arch']}{', ' + report['cpu'] if report.get('cpu') else ''}]")
        if report["status"] == "skipped":
            console.print(f"{title}: [yellow]skipped[/] ({report.get('skip_reason')})")
            rows = report.get("static_checks", [])
            if rows:
                t = Table(title="static checks")
                for col in ("", "check", "detail"):
                    t.add_column(col)
                for c in rows:
                    t.add_row("[green]✓[/]" if c["passed"] else "[red]✗[/]", c["name"], str(c["detail"]))
                console.print(t)
            return
        t = Table(title=title)
        for col in ("", "metric", "value", "limit", "detail"):
            t.add_column(col)
        for c in report["checks"]:
            mark = {True: "[green]✓[/]", False: "[red]✗[/]", None: "·"}[c["passed"]]
            t.add_row(mark, c["name"], _fmt(c["value"]), c["limit"] or "-", c["detail"])
        console.print(t)
        cf = report.get("conversion_fidelity")
        if cf:
            if cf.get("status") == "compared":
                console.print(f"conversion fidelity vs the quantized torch model: agreement {cf['top1_agreement']:.3f}, "
                              f"max abs diff {cf['max_abs_diff']:.4g}")
            else:
                console.print(f"conversion fidelity: n/a ({cf.get('reason')})")
        verdict = "[green]PASSED[/]" if report["passed"] else "[red]FAILED[/]"
        console.print(f"{verdict} on {report['samples']} images ({report.get('data')})")
    return render


def parity(
    artifact: Path = typer.Argument(..., help="An exported artifact with its .manifest.json beside it."),
    data: Optional[Path] = typer.Option(None, "--data", help="Image folder (subfolders = classes); default: embedded eval set."),
    samples: Optional[int] = typer.Option(None, "--samples", min=1, help="Use this many images (spread over the set)."),
    max_drop: Optional[float] = typer.Option(None, "--max-drop", help="Allowed accuracy drop in points (int8 default 1.0)."),
    min_agreement: Optional[float] = typer.Option(None, "--min-agreement", help="Minimum top-1 agreement, 0..1."),
    arch: str = typer.Option("x86_64", "--arch", help="x86_64 (this host) or arm64 (aarch64 LiteRT under qemu)."),
    cpu: Optional[str] = typer.Option(None, "--cpu", help="Emulated CPU for --arch arm64 (cortex-a76, cortex-a57)."),
    threads: Optional[int] = typer.Option(None, "--threads", min=1, help="Runtime threads."),
    strict: bool = typer.Option(False, "--strict", help="A skip (runtime unavailable here) exits 4."),
    junit: Optional[Path] = typer.Option(None, "--junit-xml", help="Write a JUnit XML report (one testcase per metric)."),
    as_json: bool = JsonOpt,
) -> None:
    """Accuracy parity: top-1 agreement, accuracy drop, logit differences; exit 3 when a threshold fails."""
    from ..manifest import read_manifest
    from ..parity import check_parity
    from ..tolerance import tolerance_for

    manifest = read_manifest(artifact, verify=True)  # the one read and sha256 check of this command
    tol = tolerance_for(manifest.precision, max_drop, min_agreement)
    if junit is not None:
        ensure_writable_dir(junit.parent, "--junit-xml")  # fail now, not after the whole run
    # coremltools (and torchao under it) print native-library load failures on Linux at import. Other artifacts
    # keep stderr as it is: the arm64 emulator prints its first-use build progress there.
    quiet = library_output() if manifest.format == "mlpackage" else contextlib.nullcontext()
    with status(f"parity of {artifact.name}"), quiet:
        report = check_parity(artifact, manifest, data, samples, tol, arch=arch, cpu=cpu, threads=threads)
    if junit is not None:
        with atomic_path(junit) as tmp:
            tmp.write_bytes(junit_xml(report))
    emit(report, as_json, _render(report))
    if report["status"] == "skipped":
        if strict:
            raise PlatformError(f"parity skipped: {report.get('skip_reason')}", "run it where the runtime exists, or drop --strict")
        note(f"parity skipped: {report.get('skip_reason')}")
        bad = [c["name"] for c in report.get("static_checks", []) if not c["passed"]]
        if bad:
            raise CheckFailedError(f"static checks failed: {', '.join(bad)}", "re-export the artifact")
        return
    if not report["passed"]:
        failed = [c["name"] for c in report["checks"] if c["passed"] is False]
        raise CheckFailedError(f"parity failed: {', '.join(failed)}", "see the table or --json for values and limits")
