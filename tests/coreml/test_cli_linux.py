"""The parity, bench and export commands on Core ML artifacts on Linux: parity skips with static checks (exit 0,
--strict 4), bench on an iPhone exits 4, export takes the Core ML options."""

from __future__ import annotations

import json
import sys

import pytest

pytestmark = pytest.mark.skipif(sys.platform == "darwin", reason="the Linux behaviour (Core ML runs on macOS)")


def _find_checks(obj):
    """The static-check list wherever the parity report puts it."""
    if isinstance(obj, list) and obj and all(isinstance(c, dict) and "passed" in c and "name" in c for c in obj):
        return obj
    children = obj.values() if isinstance(obj, dict) else obj if isinstance(obj, list) else []
    for child in children:
        found = _find_checks(child)
        if found:
            return found
    return None


@pytest.mark.slow
def test_parity_on_linux_is_skipped_with_static_checks(coreml_export, capsys, tmp_path):
    """Issue 17's must-show: exit 0, status skipped, passed null (not run is never passed); JUnit says skipped."""
    from xml.etree import ElementTree as ET

    from mnv2deploy.cli.app import main

    artifact = coreml_export("coreml-int8").artifact
    code = main(["parity", str(artifact), "--json", "--junit-xml", str(tmp_path / "r.xml")])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert len(captured.out.strip().splitlines()) == 1
    report = json.loads(captured.out)
    assert report["status"] == "skipped" and report["passed"] is None and report["static_checks_passed"] is True
    suite = ET.parse(tmp_path / "r.xml").getroot().find("testsuite")
    assert suite.get("skipped") == "1" and suite.get("failures") == "0"
    assert "Core ML runs only on macOS" in suite.find("testcase/skipped").get("message")
    assert "Core ML runs only on macOS" in json.dumps(report)
    names = {c["name"]: c["passed"] for c in _find_checks(report)}
    assert names["package loads as a spec"] and names["weights have the promised dtype"]
    assert names["quantized torch model accuracy"] and all(names.values())


@pytest.mark.slow
def test_parity_keeps_core_ml_import_noise_off_the_terminal(coreml_export):
    """A fresh process imports coremltools, which prints its native-library load failures on Linux."""
    import subprocess

    artifact = coreml_export("coreml").artifact
    cmd = [sys.executable, "-m", "mnv2deploy", "parity", str(artifact)]
    quiet = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert quiet.returncode == 0, quiet.stderr[-500:]
    assert "Failed to load" not in quiet.stderr and "parity skipped: Core ML runs only on macOS" in quiet.stderr
    loud = subprocess.run([*cmd, "--debug"], capture_output=True, text=True, timeout=600)
    assert loud.returncode == 0 and "Failed to load" in loud.stderr  # the noise is real: --debug shows it


@pytest.mark.slow
def test_host_bench_of_a_package_on_linux_says_where_it_runs(coreml_export, capsys):
    """Nothing to install on Linux for Core ML: the hint names macOS, never a pip install of what is installed."""
    from mnv2deploy.cli.app import main

    assert main(["bench", str(coreml_export("coreml").artifact), "--json"]) == 4
    out, err = capsys.readouterr()
    line = err.strip().splitlines()[-1]
    assert "Core ML runs only on macOS" in line and "macOS" in line.split("(hint:")[1] and "pip install" not in line
    assert json.loads(out)["exit_code"] == 4


@pytest.mark.slow
def test_parity_strict_turns_the_skip_into_exit_4(coreml_export, capsys):
    from mnv2deploy.cli.app import main

    assert main(["parity", str(coreml_export("coreml").artifact), "--strict"]) == 4


@pytest.mark.slow
def test_bench_on_an_iphone_from_linux_exits_4(coreml_export, capsys):
    from mnv2deploy.cli.app import main

    code = main(["bench", str(coreml_export("coreml").artifact), "--device", "iphone"])
    err = capsys.readouterr().err.strip()
    assert code == 4
    assert err.startswith("error:") and "macOS" in err and len(err.splitlines()) == 1


@pytest.mark.slow
def test_parity_on_a_w8a8_package_applies_the_int8_bar(coreml_export, capsys):
    """W8A8 at 32x32 keeps accuracy but agrees with float on 97.6% of top-1s (< parity's 0.98): exit 3, not 0."""
    from mnv2deploy.cli.app import main

    r = coreml_export("coreml-int8", activations="int8")
    code = main(["parity", str(r.artifact), "--json"])
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    failed = [c["name"] for c in _find_checks(report) if not c["passed"]]
    assert report["status"] == "skipped"
    assert code == (3 if failed else 0) and set(failed) <= {"quantized torch model accuracy"}


@pytest.mark.slow
def test_export_command_takes_core_ml_options(tmp_path, capsys):
    from mnv2deploy.cli.app import main
    from mnv2deploy.manifest import read_manifest

    code = main(["export", "--target", "coreml", "--option", "precision=fp32", "--out", str(tmp_path), "--json"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    out = json.loads(captured.out)
    assert out["precision"] == "fp32" and out["artifact"].endswith("mobilenet_v2-1.0-32.fp32.mlpackage")
    m = read_manifest(tmp_path / "mobilenet_v2-1.0-32.fp32.mlpackage")
    assert (m.target, m.precision, m.export_options["precision"], m.inputs[0].dtype) == ("coreml", "fp32", "fp32", "uint8")
    assert out["size_bytes"] == sum(p.stat().st_size for p in (tmp_path / m.artifact).rglob("*") if p.is_file())


@pytest.mark.parametrize("args, message, hint", [
    (["--target", "coreml", "--option", "precision=int4"], "coreml: precision 'int4' is not supported",
     "choose one of fp16, fp32"),
    (["--target", "coreml-int8", "--option", "activations=int4"], "coreml-int8: activations 'int4' is not supported",
     "choose one of float, int8"),
    (["--target", "coreml", "--option", "input-type=video"], "input-type 'video' is not supported",
     "choose one of image, tensor"),
    (["--target", "coreml", "--option", "activations=int8"], "target coreml has no option activations",
     "its options are precision, input-type"),
    (["--target", "all", "--option", "colour=red"], "no target has option colour", "input-type, precision"),
])
def test_export_bad_core_ml_option_is_one_line_exit_2(tmp_path, capsys, args, message, hint):
    from mnv2deploy.cli.app import main

    code = main(["export", *args, "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and err[-1].startswith("error: ") and message in err[-1] and hint in err[-1]
    assert not (tmp_path / "o").exists() or not any((tmp_path / "o").iterdir())


def test_target_all_with_a_core_ml_option_skips_targets_without_it(default_reference, tmp_path):
    from mnv2deploy.targets import available_targets
    from mnv2deploy.targets.base import ExportRequest
    from mnv2deploy.targets.plan import accepting

    request = ExportRequest(reference=default_reference, resolution=32, out_dir=tmp_path,
                            options={"precision": "fp32"})
    kept, skipped = accepting(list(available_targets()), request)
    assert kept == ["coreml", "coreml-int8"]
    assert {s["target"] for s in skipped} == set(available_targets()) - set(kept)
    assert all(s["reason"] == "no option precision" for s in skipped)
