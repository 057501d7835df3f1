"""`mnv2deploy memory`: JSON keys, timeline files, measured numbers from a real runtime, bad input -> exit 2."""

import json

import pytest

from mnv2deploy.cli.app import main


def test_paper_json_one_key_per_network(capsys):
    assert main(["memory", "--paper", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert {"MobileNetV2", "MobileNetV1"} <= set(out)
    for entry in out.values():
        assert entry["max_bytes"] == max(r["bytes"] for r in entry["rows"])
        assert {"resolution", "channels", "bytes"} <= set(entry["rows"][0])


def test_paper_table_for_people(capsys):
    assert main(["memory", "--paper"]) == 0
    assert "MobileNetV2" in capsys.readouterr().out


def test_onnx_json_keys_timeline_and_measurement(tiny_onnx, tmp_path, capsys):
    assert main(["memory", str(tiny_onnx), "--json", "--out", str(tmp_path)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["static_peak_bytes"] == 896 and out["peak_op"]["name"] == "relu_c"
    assert isinstance(out["measured_peak_bytes"], int) and out["measured_peak_bytes"] >= 0
    ort = out["measurements"]["ort_rss"]
    assert ort["invoke"]["peak_reset"] in (True, False) and ort["invoke"]["rss_peak_bytes"] == out["measured_peak_bytes"]
    assert ort["heap_bytes"] is None or ort["heap_bytes"] == ort["allocate"]["heap_bytes"] + ort["invoke"]["heap_bytes"]
    csv = (tmp_path / "tiny.onnx.memory.csv").read_text().splitlines()
    assert len(csv) == 6
    assert (tmp_path / "tiny.onnx.memory.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize("name,content", [("garbage.tflite", b"not a flatbuffer at all" * 10),
                                          ("garbage.onnx", b"\x08\x07 not protobuf \xff\xff"),
                                          ("model.pt", b"whatever")])
def test_bad_artifact_exits_2(tmp_path, capsys, name, content):
    path = tmp_path / name
    path.write_bytes(content)
    assert main(["memory", str(path), "--json"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "\n" not in err


def test_missing_artifact_and_paper_with_artifact_exit_2(tmp_path, capsys):
    assert main(["memory", str(tmp_path / "nope.onnx")]) == 2
    assert main(["memory"]) == 2
    assert main(["memory", "--paper", str(tmp_path / "x.onnx")]) == 2
