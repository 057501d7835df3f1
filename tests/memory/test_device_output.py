"""What `memory --device` reads from the runner's output, and how it pairs an export with its split twin."""

from __future__ import annotations

from pathlib import Path

import pytest

from mnv2deploy.errors import UsageError
from mnv2deploy.memory.device import find_twin, order_pair, parse_arena

FIXTURES = Path(__file__).parent / "fixtures"


def test_official_print_interpreter_state_arena_and_status():
    out = parse_arena((FIXTURES / "print_interpreter_state.txt").read_text())
    # the kTfLiteArenaRw estimate, not the persistent or mmap ones printed after it
    assert out == {"arena_bytes": 58752, "arena_allocated_bytes": 59776, "arena_persistent_bytes": 1024}


def test_older_builds_print_megabytes_only():
    text = ("kTfLiteArenaRw Info: \nTensor 30 has the max size 17424 bytes (0.0 MB).\n"
            "This memory arena is estimated as[0x44dc50, 0x447b00), taking 2.5 MB.\n\n")
    assert parse_arena(text) == {"arena_bytes": int(2.5 * 2 ** 20), "arena_bytes_rounded": True}


def test_stand_in_lines_and_nothing_invented():
    text = ("kTfLiteArenaRw Info: \nTensor 0 has the max size 3072 bytes (0.003 MB).\n"
            "This memory arena is estimated as[0x55ab594af80a, 0x55ab594aec00), taking 3082 bytes (0.003 MB).\n"
            "INFO: Stand-in only: heap bytes in use (glibc mallinfo2) since the model was loaded: "
            "init=3089424 overall=3715168\n")
    assert parse_arena(text) == {"arena_bytes": 3082, "heap_init_bytes": 3089424, "heap_overall_bytes": 3715168}
    assert parse_arena("kTfLiteArenaRw Info: not holding any allocation.\nINFO: count=1 first=1") == {}
    assert parse_arena("") == {}


def test_twin_names_both_ways(tmp_path):
    plain = tmp_path / "mobilenet_v2-1.0-224.int8.tflite"
    split = tmp_path / "mobilenet_v2-1.0-224-split4.int8.tflite"
    for p in (plain, split):
        p.write_bytes(b"x")
    assert find_twin(plain, 4) == split
    assert find_twin(split, 2) == plain  # a split export's twin is the plain one, whatever --split says
    with pytest.raises(UsageError, match="no split twin mobilenet_v2-1.0-224-split2.int8.tflite") as e:
        find_twin(plain, 2)
    assert "--split 2" in e.value.hint and "--twin" in e.value.hint
    with pytest.raises(UsageError, match="cannot tell the split twin"):
        find_twin(tmp_path / "my_model.tflite", 4)


@pytest.mark.slow
def test_a_pair_must_be_one_model_plain_and_split(export_artifact):
    plain = export_artifact("tflite-int8").artifact
    split = export_artifact("tflite-int8", split=2).artifact
    pair = order_pair(split, plain)  # given in either order
    assert pair["plain"][0] == plain and pair["split"][0] == split
    with pytest.raises(UsageError, match="not one model exported plain and split"):
        order_pair(plain, plain)
    with pytest.raises(UsageError, match="not one model exported plain and split"):
        order_pair(plain, export_artifact("tflite").artifact)  # fp32 vs int8


def test_a_missing_twin_is_a_usage_error_before_any_device_work(tmp_path, capsys):
    from mnv2deploy.cli.app import main

    lonely = tmp_path / "mobilenet_v2-1.0-224.int8.tflite"
    lonely.write_bytes(b"never read: the twin is looked for first")
    assert main(["memory", str(lonely), "--device", "pixel", "--split", "4"]) == 2
    err = capsys.readouterr().err.strip()
    assert "no split twin" in err and "--split 4" in err and "\n" not in err
