"""Every Swift file of the harness parses with tree-sitter-swift (no Swift compiler exists here)."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2] / "ios_bench"
SWIFT_FILES = sorted(ROOT.rglob("*.swift"))


def syntax_errors(source: bytes) -> list[str]:
    import tree_sitter_swift
    from tree_sitter import Language, Parser

    tree = Parser(Language(tree_sitter_swift.language())).parse(source)
    errors: list[str] = []

    def walk(node) -> None:
        if node.type == "ERROR" or node.is_missing:
            row, col = node.start_point
            errors.append(f"line {row + 1}:{col + 1} {'missing ' + node.type if node.is_missing else 'unexpected'} "
                          f"{node.text[:40].decode(errors='replace')!r}")
        for child in node.children:
            walk(child)

    walk(tree.root_node)
    return errors


def test_the_harness_has_the_expected_files():
    names = {p.relative_to(ROOT).as_posix() for p in SWIFT_FILES}
    assert {"Package.swift", "Tests/MNV2BenchTests/MNV2BenchTests.swift"} <= names
    assert len(names) >= 4


@pytest.mark.parametrize("path", SWIFT_FILES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_swift_file_parses(path):
    assert syntax_errors(path.read_bytes()) == []


@pytest.mark.parametrize("snippet", [
    b"func load( -> Int { return 1 }\n",
    b"let x = [1, 2\nfunc f() {}\n",
    b"final class T: XCTestCase {\n    func testA() {\n        measure {\n    }\n",
    b"struct S { var a: Int = }\n",
])
def test_broken_swift_is_caught(snippet):
    assert syntax_errors(snippet), "the checker must reject broken Swift"


def test_metric_and_test_names_match_the_python_parser():
    from mnv2deploy.ios.xcresult import TEST_NAME

    tests = (ROOT / "Tests/MNV2BenchTests/MNV2BenchTests.swift").read_text()
    assert "XCTClockMetric()" in tests and "XCTMemoryMetric()" in tests
    for units in ("cpuOnly", "cpuAndGPU", "all"):
        for phase in ("Load", "Predict"):
            name = f"test{phase}_{units}"
            assert f"func {name}()" in tests
            assert TEST_NAME.search(f"MNV2BenchTests/{name}()")


def test_memory_test_names_match_the_python_parser():
    from mnv2deploy.ios.xcresult import MEMORY_TEST_NAME

    tests = (ROOT / "Tests/MNV2BenchTests/MNV2BenchTests.swift").read_text()
    config = (ROOT / "Sources/MNV2Bench/BenchConfig.swift").read_text()
    assert "splitModel" in config and "MNV2_BENCH_SPLIT_MODEL" in config
    for units in ("cpuOnly", "cpuAndGPU", "all"):
        for model in ("plain", "split"):
            name = f"testMemory_{model}_{units}"
            assert f"func {name}() throws {{ try measureMemory(of: \"{model}\", units: \"{units}\") }}" in tests
            assert MEMORY_TEST_NAME.search(f"MNV2BenchTests/{name}()").groups() == (model, units)
