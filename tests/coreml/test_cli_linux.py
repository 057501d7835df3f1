"""The commands other issues own, on a Core ML artifact on Linux: parity skips with static checks, bench exits 4.

They run once those commands exist (importorskip until then, as tests/android does for bench).
"""

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
def test_parity_on_linux_is_skipped_with_static_checks(coreml_export, capsys):
    pytest.importorskip("mnv2deploy.cli.parity")
    from mnv2deploy.cli.app import main

    artifact = coreml_export("coreml-int8").artifact
    code = main(["parity", str(artifact), "--json"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    report = json.loads(captured.out.strip().splitlines()[-1])
    assert report["status"] == "skipped"
    assert "Core ML runs only on macOS" in json.dumps(report)
    names = {c["name"]: c["passed"] for c in _find_checks(report)}
    assert names["package loads as a spec"] and names["weights have the promised dtype"]
    assert names["quantized torch model accuracy"] and all(names.values())


@pytest.mark.slow
def test_parity_strict_turns_the_skip_into_exit_4(coreml_export, capsys):
    pytest.importorskip("mnv2deploy.cli.parity")
    from mnv2deploy.cli.app import main

    assert main(["parity", str(coreml_export("coreml").artifact), "--strict"]) == 4


@pytest.mark.slow
def test_bench_on_an_iphone_from_linux_exits_4(coreml_export, capsys):
    pytest.importorskip("mnv2deploy.cli.bench")
    from mnv2deploy.cli.app import main

    code = main(["bench", str(coreml_export("coreml").artifact), "--device", "iphone"])
    err = capsys.readouterr().err.strip()
    assert code == 4
    assert err.startswith("error:") and "macOS" in err and len(err.splitlines()) == 1
