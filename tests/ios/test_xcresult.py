"""The xcresulttool metrics parser on realistic documents (several devices and compute units, missing pieces)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from mnv2deploy.errors import BadInputError
from mnv2deploy.ios.xcresult import (XcresultError, load_document, parse_metrics, parse_xcresult_metrics,
                                     to_bench_results)

FIXTURES = Path(__file__).parent / "fixtures"


def results(name: str, **kw):
    return parse_xcresult_metrics((FIXTURES / name).read_text(), "m.int8.mlpackage", "coreml-int8", "int8",
                                  warmup=5, **kw)


def test_two_devices_and_two_compute_units():
    out = results("metrics_two_devices.json", raw={"result_bundle": "R.xcresult"})
    keys = sorted((r.device.name, r.delegate) for r in out)
    assert keys == [("00008101-000A1B2C3D4E001E", "all"), ("00008130-001234560E12001C", "all"),
                    ("00008130-001234560E12001C", "cpuOnly")]
    pro = next(r for r in out if r.device.model == "iPhone 15 Pro" and r.delegate == "all")
    clock = [0.00121, 0.00098, 0.00097, 0.00101, 0.00099, 0.00100, 0.00096, 0.00102, 0.00098, 0.00099]
    assert pro.latency_ms.count == 10
    assert pro.latency_ms.p50 == pytest.approx(np.median(clock) * 1e3)
    assert pro.latency_ms.min == pytest.approx(0.96)
    assert pro.init_ms == pytest.approx(20.2)  # median of the load test, s -> ms
    assert pro.runtime == "coreml" and pro.runtime_version == "iOS 18.1"
    assert pro.device.kind == "ios" and pro.device.details["osBuildNumber"] == "22B83"
    # headline memory: the larger of the load/predict peak medians, kB read as KiB
    assert pro.peak_memory_bytes == int(12288 * 1024)
    assert pro.memory["predict_peak_physical_bytes"] == pytest.approx(983.04 * 1024)
    assert pro.memory["load_physical_bytes"] == pytest.approx(0.0)
    assert pro.raw["result_bundle"] == "R.xcresult"
    assert pro.raw["tests"] == ["MNV2BenchTests/testPredict_all()", "MNV2BenchTests/testLoad_all()"]
    json.dumps(pro.to_dict())  # serialisable as the bench CLI prints it


def test_cpu_only_without_load_test_or_memory_metrics():
    cpu = next(r for r in results("metrics_two_devices.json") if r.delegate == "cpuOnly")
    assert cpu.init_ms is None and cpu.peak_memory_bytes is None
    assert any("init_ms unknown" in n for n in cpu.notes)
    assert cpu.latency_ms.p50 == pytest.approx(5.90)


def test_identifiers_missing_but_display_names_and_other_units():
    (r,) = results("metrics_cpu_gpu_display_names.json")
    assert r.delegate == "cpuAndGPU"
    assert r.latency_ms.p50 == pytest.approx(2.0)  # ms stay ms
    assert r.init_ms == pytest.approx(80.0)  # us -> ms
    assert r.peak_memory_bytes == 2 * 1024 ** 2  # MB


def test_other_tests_are_ignored():
    runs = parse_metrics(load_document((FIXTURES / "metrics_two_devices.json").read_text()))
    assert all(r.test.startswith("MNV2BenchTests/") for r in runs)
    assert len(runs) == 5


def test_prediction_without_clock_is_an_error():
    with pytest.raises(XcresultError, match="no Clock Monotonic Time"):
        results("metrics_predict_without_clock.json")


def test_no_prediction_test_is_an_error():
    with pytest.raises(XcresultError, match="no prediction test"):
        results("metrics_all_skipped.json")


@pytest.mark.parametrize("text, message", [
    ("not json", "not JSON"),
    ('{"tests": []}', "not a list"),
    ('[{"testRuns": []}]', "has no 'testIdentifier'"),
    ('[{"testIdentifier": "MNV2BenchTests/testPredict_all()"}]', "has no 'testRuns'"),
    ('[{"testIdentifier": "MNV2BenchTests/testPredict_all()", "testRuns": [{"metrics": []}]}]', "has no 'device'"),
    ('[{"testIdentifier": "MNV2BenchTests/testPredict_all()", "testRuns": [{"device": {}, "metrics": []}]}]',
     "names no device"),
    ('[{"testIdentifier": "MNV2BenchTests/testPredict_all()", "testRuns": [{"device": {"deviceName": "x"}}]}]',
     "has no 'metrics'"),
])
def test_malformed_documents_raise_typed_errors(text, message):
    with pytest.raises(XcresultError, match=message) as e:
        parse_xcresult_metrics(text, "a", "coreml", "fp16", 0)
    assert isinstance(e.value, BadInputError) and e.value.exit_code == 2


def _doc_with_metric(metric: dict) -> list:
    return [{"testIdentifier": "MNV2BenchTests/testPredict_all()",
             "testRuns": [{"device": {"deviceName": "x"}, "metrics": [metric]}]}]


@pytest.mark.parametrize("metric, message", [
    ({"identifier": "com.apple.dt.XCTMetric_Clock.time.monotonic", "measurements": [0.1]}, "unitOfMeasurement"),
    ({"identifier": "com.apple.dt.XCTMetric_Clock.time.monotonic", "unitOfMeasurement": "s"}, "measurements"),
    ({"identifier": "com.apple.dt.XCTMetric_Clock.time.monotonic", "unitOfMeasurement": "s", "measurements": []},
     "no finite"),
    ({"identifier": "com.apple.dt.XCTMetric_Clock.time.monotonic", "unitOfMeasurement": "s",
      "measurements": [0.1, "fast"]}, "no finite"),
    ({"identifier": "com.apple.dt.XCTMetric_Clock.time.monotonic", "unitOfMeasurement": "fortnights",
      "measurements": [0.1]}, "unit 'fortnights'"),
])
def test_broken_metrics(metric, message):
    with pytest.raises(XcresultError, match=message):
        parse_metrics(_doc_with_metric(metric))


def test_unknown_metrics_are_skipped_not_errors():
    doc = _doc_with_metric({"identifier": "com.apple.dt.XCTMetric_CPU.cycles", "unitOfMeasurement": "kC"})
    (run,) = parse_metrics(doc)
    assert run.metrics == {}
    with pytest.raises(XcresultError, match="no Clock"):
        to_bench_results([run], "a", "coreml", "fp16", 0)


def memory(name: str):
    from mnv2deploy.ios.xcresult import parse_memory_comparison

    return parse_memory_comparison((FIXTURES / name).read_text())


def test_memory_reports_the_plain_and_the_split_model_of_one_run():
    rows = {r["compute_units"]: r for r in memory("metrics_memory_plain_split.json")}
    assert sorted(rows) == ["all", "cpuOnly"]
    both = rows["all"]
    assert both["model_name"] == "iPhone 15 Pro" and both["configuration"] == "Test Scheme Action"
    assert both["plain"]["peak_physical_bytes"] == pytest.approx(10649.6 * 1024)  # median of 5, kB read as KiB
    assert both["split"]["peak_physical_bytes"] == pytest.approx(8192 * 1024)  # identified by display name only
    assert both["plain"]["physical_bytes"] == 0 and both["plain"]["iterations"] == 5
    assert both["split_over_plain_peak"] == pytest.approx(8192 / 10649.6)
    assert both["plain"]["test"] == "MNV2BenchTests/testMemory_plain_all()"
    assert "fresh load plus one prediction" in both["source"]


def test_memory_without_a_split_run_keeps_the_plain_one():
    cpu = next(r for r in memory("metrics_memory_plain_split.json") if r["compute_units"] == "cpuOnly")
    assert cpu["split"] is None and cpu["split_over_plain_peak"] is None
    assert cpu["plain"]["peak_physical_bytes"] == pytest.approx(9.25 * 1024 ** 2) and cpu["configuration"] is None


def test_memory_tests_do_not_disturb_the_bench_results():
    out = results("metrics_memory_plain_split.json")
    assert [(r.delegate, r.latency_ms.count) for r in out] == [("all", 3)]
    assert out[0].peak_memory_bytes is None  # the predict test carried no memory metric


def test_no_memory_test_is_an_error():
    with pytest.raises(XcresultError, match="no memory test"):
        memory("metrics_two_devices.json")


def test_a_memory_test_without_memory_metrics_is_an_error():
    doc = [{"testIdentifier": "MNV2BenchTests/testMemory_plain_all()",
            "testRuns": [{"device": {"deviceName": "x"}, "metrics": [
                {"identifier": "com.apple.dt.XCTMetric_Clock.time.monotonic", "unitOfMeasurement": "s",
                 "measurements": [0.1]}]}]}]
    from mnv2deploy.ios.xcresult import memory_comparison

    with pytest.raises(XcresultError, match="no Memory Physical"):
        memory_comparison(parse_metrics(doc))
