"""The paper's Table 3 maxima come out of the architecture definitions (not tabulated)."""

import pytest

from mnv2deploy.memory.paper import (PAPER_MAX_KB, materialized_table, mobilenet_v1_ops, mobilenet_v2_bound,
                                     mobilenet_v2_ops, paper_table, shufflenet_ops)


def _within(ours_bytes: int, paper_kb: int, rel: float = 0.05) -> bool:
    # the paper rounds to about two significant figures
    return abs(ours_bytes / 1000 - paper_kb) <= rel * paper_kb


def test_mobilenet_v2_and_v1_maxima_match_the_paper():
    table = paper_table()
    assert table["MobileNetV2"]["max_bytes"] == 112 * 112 * 16 * 2  # the first bottleneck output, 16-bit
    assert table["MobileNetV1"]["max_bytes"] == 112 * 112 * 64 * 2
    for name in ("MobileNetV2", "MobileNetV1"):
        assert _within(table[name]["max_bytes"], PAPER_MAX_KB[name]), name
    assert table["MobileNetV2"]["max_bytes"] < table["MobileNetV1"]["max_bytes"] / 3


def test_shufflenet_paper_figure_matches_the_g2_widths_not_g3():
    # The paper's ShuffleNet column (400/800/1600 channels) is ShuffleNet 2x with g=2's widths; g=3 is 480/960/1920.
    g2, g3 = materialized_table(shufflenet_ops(groups=2)), materialized_table(shufflenet_ops(groups=3))
    assert _within(g2["max_bytes"], PAPER_MAX_KB["ShuffleNet (2x, g=3)"])
    assert g3["max_bytes"] == 28 * 28 * 480 * 2
    assert [r["channels"] for r in g2["rows"] if r["resolution"] in ("28x28", "14x14", "7x7")] == [400, 800, 1600]


def test_mobilenet_v2_smallest_of_the_three():
    table = paper_table()
    assert table["MobileNetV2"]["max_bytes"] < min(v["max_bytes"] for k, v in table.items() if k != "MobileNetV2")


def test_rows_follow_the_architecture():
    ops = mobilenet_v2_ops()
    assert ops[0].output == (112, 112, 16) and ops[-2].output == (1, 1, 1280)
    assert len(ops) == 1 + 16 + 1 + 1  # stem+first block fused, 16 more bottlenecks, last conv+pool, classifier
    assert mobilenet_v1_ops()[2].output == (112, 112, 64)
    rows = {r["resolution"]: r["channels"] for r in paper_table()["MobileNetV2"]["rows"]}
    assert rows == {"224x224": 3, "112x112": 16, "56x56": 24, "28x28": 32, "14x14": 96, "7x7": 320, "1x1": 1280}


@pytest.mark.parametrize("bytes_per", [1, 2, 4])
def test_bound_scales_with_dtype_and_size(bytes_per):
    b = mobilenet_v2_bound(224, 1.0, bytes_per)
    assert b["max_bytes"] == 112 * 112 * 16 * bytes_per
    assert mobilenet_v2_bound(32, 1.0, bytes_per)["max_bytes"] == 16 * 16 * 16 * bytes_per
