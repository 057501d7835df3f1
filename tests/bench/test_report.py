"""The shared report: JSON schema, atomic files in --out, the histogram, NaN for numbers a phone does not report."""

from __future__ import annotations

import json
import math

from rich.console import Console

from mnv2deploy.bench.report import output_paths, render_result, save_result

from .conftest import LATENCY_KEYS, TOP_KEYS, make_result


def test_to_dict_has_the_schema(result):
    d = result.to_dict()
    assert TOP_KEYS <= set(d)
    assert set(d["latency_ms"]) == LATENCY_KEYS
    assert d["device"] == "host" and d["device_info"]["model"] == "Some CPU" and d["emulated"] is False


def test_save_result_writes_json_and_histogram(result, tmp_path):
    written = save_result(result, tmp_path / "out")
    doc = json.loads((tmp_path / "out" / "m.int8.tflite.host-box.litert.t1.json").read_text())
    assert doc["latency_ms"]["p50"] == result.latency_ms.p50 and doc["files"] == written
    png = (tmp_path / "out" / "m.int8.tflite.host-box.litert.t1.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000
    assert not [p for p in (tmp_path / "out").iterdir() if ".partial-" in p.name]  # atomic: no leftovers


def test_out_naming_a_json_file_puts_the_png_beside_it(result, tmp_path):
    j, p = output_paths(result, tmp_path / "run.json")
    assert (j.name, p.name) == ("run.json", "run.png")
    save_result(result, tmp_path / "run.json")
    assert json.loads((tmp_path / "run.json").read_text())["threads"] == 1 and (tmp_path / "run.png").exists()


def test_aggregate_only_result_has_null_percentiles_and_no_histogram(tmp_path):
    from mnv2deploy.bench.result import BenchResult, LatencyStats

    base = make_result(kind="android", raw={})
    nan = float("nan")
    phone = BenchResult(**{**base.__dict__, "latency_ms": LatencyStats(50, nan, nan, nan, 4.0, 0.2, 3.7, 5.1, nan)})
    written = save_result(phone, tmp_path)
    assert set(written) == {"json"}
    doc = json.loads(open(written["json"]).read())  # strict JSON: NaN became null
    assert doc["latency_ms"]["p50"] is None and doc["latency_ms"]["mean"] == 4.0 and doc["emulated"] is True
    console = Console(record=True, width=200)
    render_result(phone, console)
    text = console.export_text()
    assert "EMULATED" in text and "4.000" in text and math.isnan(phone.latency_ms.p90)


def test_table_shows_statistics_memory_and_loaded_flag(result):
    console = Console(record=True, width=200)
    render_result(result, console)
    text = console.export_text()
    for want in ("p50", "trimmed mean", "xnnpack", "ai-edge-litert 2.3.0", "50.0 MiB", "8.0 MiB", "looked loaded"):
        assert want in text
