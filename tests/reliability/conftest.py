"""The reliability sweep's harness: drive the real CLI (in-process through ``main`` or as a subprocess), check
the contract every failure keeps, and hand out private copies of real artifacts to break.

The contract (issue 8): the documented exit code, exactly one error line on stderr, last, starting with
``error:`` and carrying a ``(hint: ...)`` (a command may print one progress note before it, e.g. bench's
"bench X on host: ..."), no traceback or library warning, and no half-written output. Each checked line is recorded under its
case id; set MNV2DEPLOY_RELIABILITY_TABLE=FILE.json to write them out (docs/reliability.md is made from that).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest

from mnv2deploy.cli.app import main
from mnv2deploy.fileio import sha256_file
from mnv2deploy.manifest import manifest_path

RECORDED: dict[str, dict] = {}
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session", autouse=True)
def _one_thread_and_the_table():
    """Other engineers share these two cores: one torch thread here; write the recorded table at the end."""
    import torch

    torch.set_num_threads(1)
    yield
    out = os.environ.get("MNV2DEPLOY_RELIABILITY_TABLE")
    if out:
        Path(out).write_text(json.dumps(dict(sorted(RECORDED.items())), indent=1) + "\n")


@dataclass
class Outcome:
    code: int
    out: str
    err: str

    @property
    def lines(self) -> list[str]:
        return [line for line in self.err.splitlines() if line.strip()]


def cli(capsys, *argv) -> Outcome:
    """``mnv2deploy ARGV`` in this process (the real typer app and its error mapping)."""
    capsys.readouterr()
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return Outcome(code, captured.out, captured.err)


# Runs the CLI with some modules made unimportable: None in sys.modules for this process, and for spawned
# children a package of that name first on PYTHONPATH whose import fails (children do not inherit sys.modules).
# MNV2_TEST_STUB_CONVERTER=CLASSES:SECONDS swaps torch.onnx.export for a tiny hand-built ONNX graph with CLASSES
# outputs followed by a pause (the file is then staged and waiting): everything else, staging, manifest and
# publishing, is the real export path. Used where the test needs a precise moment, not a real conversion.
_PRELUDE = textwrap.dedent("""
    import os, sys
    for name in filter(None, os.environ.get("MNV2_TEST_BLOCK", "").split(",")):
        sys.modules[name] = None
    if os.environ.get("MNV2_TEST_STUB_CONVERTER"):
        import time
        import numpy as np
        import onnx
        from onnx import TensorProto, helper, numpy_helper
        from mnv2deploy.targets import onnx as onnx_target

        classes, pause = os.environ["MNV2_TEST_STUB_CONVERTER"].split(":")

        def export_fp32_onnx(request, path):
            r, n = request.resolution, int(classes)
            graph = helper.make_graph(
                [helper.make_node("GlobalAveragePool", ["input"], ["p"]), helper.make_node("Flatten", ["p"], ["f"]),
                 helper.make_node("Gemm", ["f", "w"], ["logits"], transB=1)], "stub",
                [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, r, r])],
                [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, n])],
                [numpy_helper.from_array(np.ones((n, 3), np.float32), "w")])
            onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]), str(path))
            time.sleep(float(pause))

        onnx_target.export_fp32_onnx = export_fp32_onnx
    from mnv2deploy.cli.app import main
    sys.exit(main(sys.argv[1:]))
""")


def cli_subprocess(*argv, block: tuple[str, ...] = (), tmp: Path | None = None, env: dict | None = None,
                   preexec_fn=None, timeout: float = 600, wait: bool = True):
    """``python -m mnv2deploy ARGV`` in a fresh process; ``block`` lists top-level modules to make missing."""
    full_env = {**os.environ, "OMP_NUM_THREADS": "1", **(env or {})}
    if block:
        assert tmp is not None
        shadow = tmp / "shadow"
        for name in block:
            (shadow / name).mkdir(parents=True, exist_ok=True)
            (shadow / name / "__init__.py").write_text(
                f"raise ImportError('simulated for the reliability tests: {name} is not installed')\n")
        full_env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(shadow), full_env.get("PYTHONPATH")]))
        full_env["MNV2_TEST_BLOCK"] = ",".join(block)
    cmd = [sys.executable, "-c", _PRELUDE, *map(str, argv)]
    if not wait:
        return subprocess.Popen(cmd, env=full_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                preexec_fn=preexec_fn, cwd=tmp or REPO)
    proc = subprocess.run(cmd, env=full_env, capture_output=True, text=True, timeout=timeout,
                          preexec_fn=preexec_fn, cwd=tmp or REPO)
    return Outcome(proc.returncode, proc.stdout, proc.stderr)


def expect_error(outcome: Outcome, code: int, *needles: str, case: str | None, scrub: tuple[Path, ...] = ()) -> str:
    """The failure contract; returns the one line (recorded under ``case``, if given, with paths scrubbed)."""
    assert outcome.code == code, f"exit {outcome.code}, expected {code}; stderr:\n{outcome.err}"
    assert "Traceback" not in outcome.err and "Warning" not in outcome.err, outcome.err
    errors = [line for line in outcome.lines if line.startswith("error")]
    assert len(errors) == 1 and outcome.lines[-1] == errors[0], f"expected one error line, last; got:\n{outcome.err}"
    assert len(outcome.lines) <= 2, f"at most one progress note before the error; got:\n{outcome.err}"
    line = errors[0]
    assert line.startswith("error: ") and "(hint: " in line and line.endswith(")"), line
    assert "internal error" not in line, line
    for needle in needles:
        assert needle in line, f"{needle!r} not in {line!r}"
    if case is not None:
        record(case, line, code, scrub)
    return line


def record(case: str, line: str, code: int, scrub: tuple[Path, ...] = ()) -> None:
    for root in sorted((str(p) for p in scrub), key=len, reverse=True):
        line = line.replace(root, "…")
    RECORDED[case] = {"exit": code, "message": line}


def visible(folder: Path) -> list[str]:
    """What a person or a glob sees in ``folder`` (hidden staging folders excluded)."""
    return sorted(p.name for p in Path(folder).iterdir() if not p.name.startswith(".")) if Path(folder).exists() else []


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in Path(folder).iterdir() if ".partial-" in p.name) if Path(folder).exists() else []


def copy_pair(artifact: Path, folder: Path) -> Path:
    """A private copy of an artifact and its manifest, safe to break."""
    folder.mkdir(parents=True, exist_ok=True)
    dst = folder / artifact.name
    shutil.copy(artifact, dst)
    shutil.copy(manifest_path(artifact), manifest_path(dst))
    return dst


def edit_manifest(art: Path, /, rehash: bool = False, **changes) -> None:
    """Change top-level manifest fields; ``rehash`` records the artifact's current sha256 (a manifest regenerated
    for a broken file, so the runtime itself must reject it)."""
    path = manifest_path(art)
    d = json.loads(path.read_text())
    d.update(changes)
    if rehash:
        d["artifact_sha256"] = sha256_file(art)
    path.write_text(json.dumps(d))


def pair_is_consistent(artifact: Path) -> bool:
    d = json.loads(manifest_path(artifact).read_text())
    return d["artifact"] == artifact.name and d["artifact_sha256"] == sha256_file(artifact)


@pytest.fixture(scope="session")
def onnx_artifact(export_artifact) -> Path:
    """The embedded default at 32x32 as fp32 ONNX (the shared session export)."""
    return Path(export_artifact("onnx").artifact)


@pytest.fixture(scope="session")
def tflite_artifact(export_artifact) -> Path:
    return Path(export_artifact("tflite").artifact)
