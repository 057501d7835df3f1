"""The benchmark scripts keep one result per host class: a run on an AVX2-only host replaces that class's block in
the docs and its key in the JSON, and never the VNNI host's (int8 kernels differ by class)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import compare_routes  # noqa: E402  (a script directory, not a package)

VNNI = {"cpu": "Xeon", "simd": ["avx2", "fma", "avx512f", "avx512_vnni"]}
AVX2 = {"cpu": "EPYC", "simd": ["avx2", "fma"]}
DOC = """# Benchmarks

<!-- demo:avx512_vnni:start -->
old vnni table
<!-- demo:avx512_vnni:end -->

between

<!-- demo:avx2:start -->
old avx2 table
<!-- demo:avx2:end -->
"""


def test_a_run_replaces_only_its_own_host_class(tmp_path):
    md, js = tmp_path / "b.md", tmp_path / "b.json"
    md.write_text(DOC)
    js.write_text(json.dumps({"machine": VNNI, "rows": [1]}))  # a single result, from before the per-class keys

    compare_routes.write_host_docs(md, js, {"machine": AVX2, "rows": [2]}, "new avx2 table\n", "demo")

    text = md.read_text()
    assert "new avx2 table" in text and "old avx2 table" not in text
    assert "old vnni table" in text and "between" in text
    assert text.index("old vnni table") < text.index("between") < text.index("new avx2 table")
    saved = json.loads(js.read_text())
    assert saved == {"avx512_vnni": {"machine": VNNI, "rows": [1]}, "avx2": {"machine": AVX2, "rows": [2]}}


def test_a_class_measured_first_gets_a_block_after_the_last_one(tmp_path):
    md, js = tmp_path / "b.md", tmp_path / "b.json"
    md.write_text(DOC + "\n## The next section\n")
    compare_routes.write_host_docs(md, js, {"machine": {"simd": ["avx2", "avx_vnni"]}}, "avx-vnni table\n", "demo")
    text = md.read_text()
    block = "### AVX-VNNI host (no AVX-512)\n\n<!-- demo:avx_vnni:start -->\navx-vnni table\n<!-- demo:avx_vnni:end -->"
    assert block in text and text.index("old avx2 table") < text.index(block) < text.index("## The next section")
    assert "old vnni table" in text
    assert list(json.loads(js.read_text())) == ["avx_vnni"]


def test_a_marker_without_blocks_is_appended_and_speed_reports_name_their_host(tmp_path):
    md, js = tmp_path / "b.md", tmp_path / "b.json"
    md.write_text(DOC)
    compare_routes.write_host_docs(md, js, {"host": AVX2, "results": {}}, "speed table\n", "speed")  # speed.py's
    text = md.read_text()
    assert text.rstrip().endswith("<!-- speed:avx2:start -->\nspeed table\n<!-- speed:avx2:end -->")
    assert "old avx2 table" in text and list(json.loads(js.read_text())) == ["avx2"]


def test_speed_results_are_kept_per_class_too(tmp_path):
    js = tmp_path / "speed.json"
    js.write_text(json.dumps({"host": AVX2, "results": {"export": 36.5}}))  # speed.py's single result of old
    merged = compare_routes.with_class_result(js, {"host": VNNI, "results": {"export": 16.7}}, "avx512_vnni")
    assert merged == {"avx2": {"host": AVX2, "results": {"export": 36.5}},
                      "avx512_vnni": {"host": VNNI, "results": {"export": 16.7}}}
