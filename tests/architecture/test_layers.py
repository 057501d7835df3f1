"""The package's import graph points down: nothing below the command line imports it, and each layer imports only
the layers under it, whether by an import statement or by a module path in a string (importlib, registries)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "mnv2deploy"

# Each top-level module or subpackage and its layer; a module may import its own layer and the ones below.
LAYERS = {
    0: {"errors", "fileio", "contract", "tolerance", "_data", "profiles", "threads", "workers"},
    1: {"manifest", "model", "weights", "sidecar", "data", "split", "emulation"},
    2: {"targets", "runtimes"},
    3: {"parity", "bench", "memory", "android", "ios", "profile"},
    4: {"farm", "job", "job_report"},
    5: {"cli", "__main__", "__init__"},
}
LAYER_OF = {name: layer for layer, names in LAYERS.items() for name in names}
MODULE_PATH = re.compile(r"^mnv2deploy(\.\w+)+(:\w+)?$")  # "mnv2deploy.android.emulated:Class" and the like


def _modules():
    return sorted(p for p in PACKAGE.rglob("*.py"))


def _unit(path: Path) -> str:
    """The top-level module or subpackage a file belongs to ("runtimes" for runtimes/ort.py, "job" for job.py)."""
    rel = path.relative_to(PACKAGE)
    return rel.parts[0] if len(rel.parts) > 1 else rel.stem


def _imported_units(path: Path) -> set[tuple[str, str]]:
    """(unit, how) for every mnv2deploy module the file imports, relative imports resolved, and every string that
    is a whole mnv2deploy module path."""
    tree = ast.parse(path.read_text())
    package = ["mnv2deploy", *path.relative_to(PACKAGE).parts[:-1]]
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            base = package[:len(package) - node.level + 1] if node.level else []
            parts = base + (node.module.split(".") if node.module else [])
            if parts[:1] != ["mnv2deploy"]:
                continue
            if len(parts) == 1:  # from mnv2deploy import x / from .. import x
                found |= {(alias.name, "import") for alias in node.names}
            else:
                found.add((parts[1], "import"))
        elif isinstance(node, ast.Import):
            found |= {(a.name.split(".")[1], "import") for a in node.names if a.name.startswith("mnv2deploy.")}
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and MODULE_PATH.match(node.value):
            unit = node.value.split(".")[1].split(":")[0]
            if unit in LAYER_OF:  # not metadata keys such as "mnv2deploy.labels"
                found.add((unit, "string"))
    return found


def test_every_unit_has_a_layer():
    units = {_unit(p) for p in _modules()}
    assert units <= set(LAYER_OF), f"give these a layer in LAYERS: {sorted(units - set(LAYER_OF))}"


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_point_down(path):
    unit = _unit(path)
    upward = sorted(f"{other} ({how})" for other, how in _imported_units(path)
                    if other in LAYER_OF and LAYER_OF[other] > LAYER_OF[unit])
    assert not upward, f"{path.relative_to(PACKAGE)} (layer {LAYER_OF[unit]}) imports upward: {', '.join(upward)}"


def test_nothing_below_the_command_line_names_a_module_by_string():
    named = {str(p.relative_to(PACKAGE)): sorted(o for o, how in _imported_units(p) if how == "string")
             for p in _modules() if _unit(p) != "cli"}
    assert not {k: v for k, v in named.items() if v}
