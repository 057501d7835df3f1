"""The machine around the command: a missing optional package, an output folder that cannot be written or fills
up, an export killed mid-way, two exports into one folder at once, no adb, no qemu, Ctrl-C. Each ends in one
line with the documented exit code, and the folder holds either the previous good artifact+manifest pair or a
new one, never a finished-looking partial file.

A device that disappears mid-run is covered by tests/android/test_bench_loopback.py
(test_a_device_that_vanishes_mid_run_keeps_the_warmup: exit 4, the warm-up numbers kept); a runtime that
crashes or hangs in its child process by tests/runtimes/test_runtimes.py (test_child_signal_becomes_bad_artifact_error,
test_child_timeout_kills_the_child)."""

from __future__ import annotations

import json
import os
import resource
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest

from mnv2deploy.fileio import publish, sha256_file, staged_path, write_text_atomic
from mnv2deploy.manifest import manifest_path, read_manifest

from .conftest import cli, cli_subprocess, copy_pair, expect_error, leftovers, pair_is_consistent, record, visible


def expect_export_error(outcome, code, *needles, case, scrub):
    """An export run as a subprocess: converters log to stderr before failing (torch's "torchvision is not
    installed" lines), so here the error must be the only error line and the last one, with no traceback."""
    assert outcome.code == code, outcome.err
    assert "Traceback" not in outcome.err, outcome.err
    lines = [line for line in outcome.err.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error:")]
    assert len(errors) == 1 and lines[-1] == errors[0] and "(hint: " in errors[0], outcome.err
    for needle in needles:
        assert needle in errors[0], errors[0]
    record(case, errors[0], code, scrub)


# ---------------------------------------------------------------------------------------- missing packages

MISSING = [
    # case id, modules made unimportable, command (ARTIFACT = the session's onnx/tflite), exit, what the line says
    ("env-missing-onnx-export", ("onnx",), ["export", "--target", "onnx", "--out", "OUT"], 4, "onnx is not installed"),
    ("env-missing-onnxruntime-bench", ("onnxruntime",), ["bench", "ONNX", "--runs", "2"], 4,
     "onnxruntime is not installed"),
    ("env-missing-onnxruntime-parity-strict", ("onnxruntime",), ["parity", "ONNX", "--strict"], 4,
     "parity skipped: onnxruntime is not installed"),
    ("env-missing-litert-memory", ("ai_edge_litert",), ["memory", "TFLITE", "--no-xnnpack"], 4,
     "ai-edge-litert is not installed"),
    ("env-missing-executorch-export", ("executorch",), ["export", "--target", "executorch", "--out", "OUT"], 4,
     "is not installed"),
]


@pytest.mark.parametrize("case,block,argv,code,needle", MISSING, ids=[m[0] for m in MISSING])
def test_missing_optional_package_is_exit_4_with_an_install_hint(tmp_path, onnx_artifact, tflite_artifact, case,
                                                                 block, argv, code, needle):
    subs = {"ONNX": onnx_artifact, "TFLITE": tflite_artifact, "OUT": tmp_path / "out"}
    result = cli_subprocess(*[subs.get(a, a) for a in argv], block=block, tmp=tmp_path)
    line = expect_error(result, code, needle, case=case, scrub=(tmp_path, onnx_artifact.parent))
    assert "pip install" in line or "install" in line.split("(hint:")[1]
    assert not (tmp_path / "out").exists()


def test_missing_runtime_without_strict_skips_parity(tmp_path, onnx_artifact):
    result = cli_subprocess("parity", onnx_artifact, "--json", block=("onnxruntime",), tmp=tmp_path)
    assert result.code == 0, result.err
    report = json.loads(result.out)
    assert report["status"] == "skipped" and "onnxruntime is not installed" in report["skip_reason"]
    record("env-missing-onnxruntime-parity", f"exit 0, status skipped, note: parity skipped: {report['skip_reason']}", 0)


# ------------------------------------------------------------------------------------- unwritable output

def test_out_under_a_file(capsys, tmp_path):
    (tmp_path / "file").write_text("x")
    result = cli(capsys, "export", "--target", "onnx", "--out", tmp_path / "file" / "sub")
    expect_error(result, 2, "cannot create output folder", case="env-out-is-under-a-file", scrub=(tmp_path,))


@pytest.fixture
def read_only_folder(tmp_path):
    """A folder nobody may write: chmod for a normal user; for root (who ignores modes) the immutable flag."""
    folder = tmp_path / "ro"
    folder.mkdir()
    if os.geteuid() != 0:
        folder.chmod(0o555)
        yield folder
        folder.chmod(0o755)
        return
    if not shutil.which("chattr") or subprocess.run(["chattr", "+i", str(folder)], capture_output=True).returncode:
        pytest.skip("running as root on a filesystem without chattr +i: no way to make a folder unwritable")
    try:
        yield folder
    finally:
        subprocess.run(["chattr", "-i", str(folder)], capture_output=True)


def test_read_only_output_folder(capsys, tmp_path, read_only_folder):
    result = cli(capsys, "export", "--target", "onnx", "--out", read_only_folder)
    line = expect_error(result, 2, case="env-out-read-only", scrub=(tmp_path,))
    assert "not writable" in line or "not permitted" in line or "denied" in line
    assert list(read_only_folder.iterdir()) == []


def test_unwritable_junit_and_bench_out_fail_before_the_run(capsys, tmp_path, onnx_artifact):
    (tmp_path / "file").write_text("x")
    started = time.monotonic()
    expect_error(cli(capsys, "parity", onnx_artifact, "--junit-xml", tmp_path / "file" / "r.xml"), 2,
                 "cannot create output folder", case="env-junit-xml-unwritable", scrub=(tmp_path,))
    expect_error(cli(capsys, "bench", onnx_artifact, "--out", tmp_path / "file" / "b"), 2,
                 "cannot create output folder", case="env-bench-out-unwritable", scrub=(tmp_path,))
    assert time.monotonic() - started < 20  # refused up front, not after a parity or bench run


# ----------------------------------------------------------------- full disk, kill, concurrent exports

def _disk_fills_at_2_mb():
    """In the child before exec: writes past 2 MB fail with EFBIG, as on a full disk (SIGXFSZ ignored)."""
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (2_000_000, 2_000_000))


@pytest.mark.slow
def test_full_disk_keeps_the_previous_pair(tmp_path, onnx_artifact):
    out = tmp_path / "out"
    art = copy_pair(onnx_artifact, out)
    before = (art.read_bytes(), manifest_path(art).read_bytes())
    result = cli_subprocess("export", "--target", "onnx", "--out", out, tmp=tmp_path, preexec_fn=_disk_fills_at_2_mb)
    expect_export_error(result, 2, "no space left writing", case="env-disk-full", scrub=(tmp_path,))
    assert (art.read_bytes(), manifest_path(art).read_bytes()) == before
    assert visible(out) == [art.name, manifest_path(art).name] and leftovers(out) == []


def _wait_for_staged(out: Path, proc: subprocess.Popen, timeout: float = 300) -> Path:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        staged = [p for p in out.glob(".*.partial-*/*.onnx") if p.is_file() and p.stat().st_size > 0]
        if staged:
            return staged[0]
        if proc.poll() is not None:
            pytest.fail(f"the export ended (exit {proc.returncode}) before its staged file was seen: "
                        f"{proc.stderr.read()[-2000:]}")
        time.sleep(0.02)
    proc.kill()
    pytest.fail("no staged file appeared")


def test_export_killed_mid_write_keeps_the_previous_pair(tmp_path, onnx_artifact):
    """SIGKILL while the new artifact sits staged (written, not yet published): the previous pair is
    byte-identical, nothing finished-looking appears, and the next write into the folder removes the staging."""
    out = tmp_path / "out"
    art = copy_pair(onnx_artifact, out)
    before = (art.read_bytes(), manifest_path(art).read_bytes())
    proc = cli_subprocess("export", "--target", "onnx", "--out", out, tmp=tmp_path, wait=False,
                          env={"MNV2_TEST_STUB_CONVERTER": "7:120"})
    try:
        staged = _wait_for_staged(out, proc)
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()
    assert proc.returncode == -signal.SIGKILL
    assert (art.read_bytes(), manifest_path(art).read_bytes()) == before and pair_is_consistent(art)
    assert visible(out) == [art.name, manifest_path(art).name]
    assert leftovers(out) == [staged.parent.name]  # hidden, and not under the artifact's name
    write_text_atomic(out / "notes.txt", "next write")  # any write into the folder sweeps dead writers' staging
    assert leftovers(out) == []
    record("env-export-killed", "SIGKILL while the new artifact was staged: previous pair byte-identical, only a "
           "hidden .<name>.partial-<pid>-<id>/ left, removed by the next write into the folder", -9)


def test_two_exports_into_one_folder_each_leave_a_matching_pair(tmp_path):
    """Two exports of the same artifact name with different bytes (7 and 5 outputs), staged at the same time:
    neither sweeps the other's live staging, both exit 0, and the pair left is one writer's artifact with that
    writer's manifest."""
    out = tmp_path / "out"
    procs = [cli_subprocess("export", "--target", "onnx", "--out", out, tmp=tmp_path, wait=False,
                            env={"MNV2_TEST_STUB_CONVERTER": f"{n}:3"}) for n in (7, 5)]
    results = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [r[1][-2000:] for r in results]
    art = out / "mobilenet_v2-1.0-32.fp32.onnx"
    assert visible(out) == [art.name, manifest_path(art).name] and leftovers(out) == []
    manifest = read_manifest(art, verify=True)  # the sha256 matches the bytes on disk
    import onnx

    outputs = onnx.load(str(art)).graph.output[0].type.tensor_type.shape.dim[1].dim_value
    assert manifest.outputs[0].shape[1] == outputs  # and the manifest describes those bytes
    record("env-concurrent-exports", "both exit 0; the folder holds one artifact and the manifest that describes "
           "it (sha256 and output shape)", 0)


def test_publishing_pairs_never_interleaves(tmp_path, monkeypatch):
    """The lock itself, deterministically: writer A stalls between its two renames while B publishes."""
    import mnv2deploy.fileio as fileio

    final_art, final_man = tmp_path / "m.onnx", tmp_path / "m.onnx.manifest.json"
    original = fileio._replace
    stall = threading.Event()

    def slow_replace(staged, final):
        original(staged, final)
        if final == final_art and threading.current_thread().name == "A":
            stall.set()
            time.sleep(0.5)  # B tries to publish now

    monkeypatch.setattr(fileio, "_replace", slow_replace)

    def writer(tag: str) -> None:
        with staged_path(final_art) as a:
            a.write_text(tag)
        with staged_path(final_man) as m:
            m.write_text(tag)
        publish((a, final_art), (m, final_man))

    a = threading.Thread(target=writer, args=("A",), name="A")
    a.start()
    stall.wait(10)
    b = threading.Thread(target=writer, args=("B",), name="B")
    b.start()
    a.join(10)
    b.join(10)
    assert final_art.read_text() == final_man.read_text() == "B"
    assert leftovers(tmp_path) == []


# ---------------------------------------------------------------------------------- tools, Ctrl-C

def test_no_adb(capsys, tmp_path, monkeypatch, tflite_artifact):
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv("ANDROID_HOME", raising=False)
    monkeypatch.delenv("ANDROID_SDK_ROOT", raising=False)
    expect_error(cli(capsys, "bench", tflite_artifact, "--device", "pixel"), 4, "adb not found",
                 case="env-no-adb", scrub=(tmp_path,))
    expect_error(cli(capsys, "devices"), 4, "adb not found", case=None)


def test_no_qemu(capsys, tmp_path, monkeypatch, tflite_artifact):
    monkeypatch.setenv("PATH", str(tmp_path))
    result = cli(capsys, "parity", tflite_artifact, "--arch", "arm64", "--strict")
    expect_error(result, 4, "qemu-aarch64-static is not installed", case="env-no-qemu", scrub=(tmp_path,))


def test_ctrl_c_mid_export_keeps_the_previous_pair(capsys, tmp_path, onnx_artifact, monkeypatch):
    from mnv2deploy.targets import onnx as onnx_target

    out = tmp_path / "out"
    art = copy_pair(onnx_artifact, out)
    before = (art.read_bytes(), manifest_path(art).read_bytes())

    def interrupted(request, path):
        Path(path).write_bytes(b"half a graph")
        raise KeyboardInterrupt

    monkeypatch.setattr(onnx_target, "export_fp32_onnx", interrupted)
    result = cli(capsys, "export", "--target", "onnx", "--out", out)
    expect_error(result, 130, "interrupted; nothing half-written was left behind", case="env-ctrl-c")
    assert (art.read_bytes(), manifest_path(art).read_bytes()) == before
    assert visible(out) == [art.name, manifest_path(art).name] and leftovers(out) == []
