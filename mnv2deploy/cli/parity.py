"""`mnv2deploy parity ARTIFACT`: the artifact in its real runtime against the PyTorch reference it came from."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional
from xml.etree import ElementTree as ET

import typer
from rich.table import Table

from ..errors import CheckFailedError, Mnv2Error, PlatformError
from ..fileio import atomic_path, ensure_writable_dir
from .common import JsonOpt, emit, library_output, note, status


def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def _suite(report: dict[str, Any]) -> tuple[ET.Element, ET.Element]:
    name = f"parity[{report.get('target')}]"
    root = ET.Element("testsuites")
    return root, ET.SubElement(root, "testsuite", name=name)


def _finish(root: ET.Element, suite: ET.Element) -> bytes:
    cases = list(suite.iter("testcase"))
    for key, tag in (("failures", "failure"), ("skipped", "skipped"), ("errors", "error")):
        suite.set(key, str(sum(1 for tc in cases if tc.find(tag) is not None)))
    suite.set("tests", str(len(cases)))
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)


def junit_xml(report: dict[str, Any]) -> bytes:
    """One testcase per metric (or per static check when skipped) so CI systems show parity natively; a check
    that could not run (no labels for the accuracy drop) is ``<skipped>`` with the reason, never a pass."""
    root, suite = _suite(report)
    name = suite.get("name")
    if report["status"] == "skipped":
        for c in report.get("static_checks", []):
            tc = ET.SubElement(suite, "testcase", classname=name, name=f"static: {c['name']}")
            if not c["passed"]:
                ET.SubElement(tc, "failure", message=str(c["detail"]))
        tc = ET.SubElement(suite, "testcase", classname=name, name="runtime parity")
        ET.SubElement(tc, "skipped", message=str(report.get("skip_reason")))
    for c in report.get("checks") or []:
        tc = ET.SubElement(suite, "testcase", classname=name, name=c["name"])
        text = f"{c['name']} = {_fmt(c['value'])} (limit {c['limit']}): {c['detail']}"
        if c.get("status") == "skipped":
            ET.SubElement(tc, "skipped", message=f"not run: {c['detail']}")
        elif c["passed"] is False:
            ET.SubElement(tc, "failure", message=text)
        elif c["passed"] is None:
            ET.SubElement(tc, "system-out").text = text + " [informational]"
        else:
            ET.SubElement(tc, "system-out").text = text
    return _finish(root, suite)


def junit_error_xml(artifact: str, line: str, exit_code: int) -> bytes:
    """The artifact could not be checked (bad file, data or options): one ``<error>`` testcase, so a CI job's
    publish step still has a report that says why."""
    root, suite = _suite({"target": artifact})
    tc = ET.SubElement(suite, "testcase", classname=suite.get("name"), name="parity")
    ET.SubElement(tc, "error", message=line, type=f"exit {exit_code}")
    return _finish(root, suite)


_written: list[Path] = []  # the --junit-xml file this invocation wrote


def _write_junit(path: Path, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    _written.append(path)


def junit_after_failure(argv: list[str], line: str, exit_code: int) -> None:
    """app.main's hook for failures before the command ran (typer's usage errors): --junit-xml is still written,
    with the error, unless this invocation already wrote it."""
    if _written:
        return
    path = next((argv[i + 1] for i, a in enumerate(argv[:-1]) if a == "--junit-xml"), None)
    path = path or next((a.split("=", 1)[1] for a in argv if a.startswith("--junit-xml=")), None)
    if not path:
        return
    artifact = next((a for a in argv[argv.index("parity") + 1:] if not a.startswith("-")), "?")
    try:
        _write_junit(Path(path), junit_error_xml(Path(artifact).name, line, exit_code))
    except (OSError, Mnv2Error):  # the folder is not writable: the one error line already says what is wrong
        pass


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
            mark = "-" if c.get("status") == "skipped" else {True: "[green]✓[/]", False: "[red]✗[/]", None: "·"}[c["passed"]]
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
    max_drop: Optional[float] = typer.Option(None, "--max-drop", help="Allowed accuracy drop in points (int8 default 1.0); needs labelled images."),
    min_agreement: Optional[float] = typer.Option(None, "--min-agreement", help="Minimum top-1 agreement, 0..1."),
    arch: str = typer.Option("x86_64", "--arch", help="x86_64 (this host) or arm64 (aarch64 LiteRT or ExecuTorch under qemu)."),
    cpu: Optional[str] = typer.Option(None, "--cpu", help="Emulated CPU for --arch arm64 (cortex-a76, cortex-a57)."),
    threads: Optional[int] = typer.Option(None, "--threads", min=1, help="Runtime threads."),
    strict: bool = typer.Option(False, "--strict", help="A skip (runtime unavailable here) exits 4."),
    junit: Optional[Path] = typer.Option(None, "--junit-xml", help="Write a JUnit XML report (one testcase per metric)."),
    weights: Optional[Path] = typer.Option(None, "--weights", help="The reference checkpoint, wherever it is now "
                                                                   "(must have the manifest's weights sha256)."),
    as_json: bool = JsonOpt,
) -> None:
    """Accuracy parity: top-1 agreement, accuracy drop, logit differences; exit 3 when a threshold fails."""
    if junit is not None:
        ensure_writable_dir(junit.parent, "--junit-xml")  # fail now, not after the whole run
    try:
        report = _check(artifact, data, samples, max_drop, min_agreement, arch, cpu, threads, weights)
    except Mnv2Error as e:  # the artifact could not be checked: CI still gets a report saying why
        if junit is not None:
            _write_junit(junit, junit_error_xml(artifact.name, e.one_line(), e.exit_code))
        raise
    if junit is not None:
        _write_junit(junit, junit_xml(report))
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


def _check(artifact: Path, data: Optional[Path], samples: Optional[int], max_drop: Optional[float],
           min_agreement: Optional[float], arch: str, cpu: Optional[str], threads: Optional[int],
           weights: Optional[Path] = None) -> dict[str, Any]:
    from ..manifest import read_manifest
    from ..parity import check_parity
    from ..tolerance import tolerance_for

    manifest = read_manifest(artifact, verify=True)  # the one read and sha256 check of this command
    tol = tolerance_for(manifest.precision, max_drop, min_agreement)
    # Runtimes print on their own (LiteRT's "Created TensorFlow Lite XNNPACK delegate", coremltools' native load
    # failures on Linux): discarded, or with --debug shown, for every artifact alike.
    with status(f"parity of {artifact.name}"), library_output():
        return check_parity(artifact, manifest, data, samples, tol, arch=arch, cpu=cpu, threads=threads,
                            labels_required=max_drop is not None, weights=weights)
