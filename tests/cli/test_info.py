import json

from mnv2deploy.cli.app import main


def test_info_json_has_params_and_macs(capsys):
    assert main(["info", "--width", "1.0", "--resolution", "224", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["params"] == 3_504_872
    assert 300_000_000 < out["macs"] < 301_000_000
    assert len(out["layers"]) == 21 and out["layers"][2]["operator"].startswith("bottleneck t=6 s=2")


def test_info_table_for_people(capsys):
    assert main(["info", "--width", "0.35", "--resolution", "96", "--num-classes", "10"]) == 0
    out = capsys.readouterr().out
    assert "bottleneck t=6 s=2" in out and "multiply-accumulates" in out


def test_bad_option_values_exit_2_with_one_line(capsys):
    assert main(["info", "--width", "2.5"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: width multiplier 2.5") and "\n" not in err and "Traceback" not in err
    assert main(["info", "--resolution", "notanumber"]) == 2


def test_unknown_command_is_a_usage_error(capsys):
    assert main(["frobnicate"]) == 2
