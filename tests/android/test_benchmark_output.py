"""The benchmark_model parser on the tool's real output format, with and without the `INFO: ` prefix."""

from pathlib import Path

import pytest

from mnv2deploy.android.bench import latency_stats
from mnv2deploy.android.benchmark_output import MB, parse_benchmark_output

pytestmark = pytest.mark.android
FIXTURES = Path(__file__).parent / "fixtures"


def test_newer_format_with_info_prefix():
    p = parse_benchmark_output((FIXTURES / "benchmark_model_info.txt").read_text())
    assert p.warmup.count == 9 and p.warmup.first_us == 81913 and p.warmup.avg_us == 58984.7
    assert p.timed.count == 1061 and p.timed.min_us == 54669 and p.timed.std_us == 982
    assert p.init_ms == 3.337 and p.first_inference_us == 81913
    assert p.memory["init_delta_bytes"] == int(2.43359 * MB) and p.memory["overall_delta_bytes"] == int(8.67578 * MB)
    assert p.memory["peak_footprint_bytes"] == int(13.1797 * MB) and p.memory["vmrss_end_bytes"] == 13 * MB
    assert p.peak_memory_bytes == int(13.1797 * MB) and "not dumpsys meminfo" in p.memory["source"]
    stats = latency_stats(p.timed)
    assert stats.count == 1061 and stats.mean == pytest.approx(56.2658) and stats.min == pytest.approx(54.669)


def test_older_format_without_prefix_and_without_peak_line():
    p = parse_benchmark_output((FIXTURES / "benchmark_model_plain.txt").read_text())
    assert p.warmup.count == 9 and p.timed.count == 1061 and p.init_ms == 3.337
    assert "peak_footprint_bytes" not in p.memory and "vmrss_end_bytes" not in p.memory
    assert p.peak_memory_bytes == int(8.67578 * MB)  # falls back to the overall delta, labelled as such


def test_output_cut_after_the_warmup_is_incomplete_but_keeps_the_warmup():
    text = (FIXTURES / "benchmark_model_info.txt").read_text().split("INFO: Running benchmark for at least 50")[0]
    p = parse_benchmark_output(text)
    assert not p.complete and p.warmup.count == 9 and p.timed is None
