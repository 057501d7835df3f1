"""`mnv2deploy info`: the per-layer table of MobileNetV2 at a width and resolution."""

from __future__ import annotations

import typer
from rich.table import Table

from .common import JsonOpt, emit


def _shape(s: tuple[int, ...]) -> str:
    return "x".join(str(d) for d in s[1:])


def info(
    width: float = typer.Option(1.0, "--width", help="Width multiplier, 0.35 to 1.4."),
    resolution: int = typer.Option(224, "--resolution", min=16, max=1024, help="Input height and width in pixels."),
    num_classes: int = typer.Option(1000, "--num-classes", min=1, help="Classifier outputs."),
    as_json: bool = JsonOpt,
) -> None:
    """Per-layer operator, shapes, multiply-accumulates, parameters and activation bytes, with totals."""
    from ..model import build
    from ..profile import profile_model
    from ..weights import check_model_args

    check_model_args(width, num_classes, resolution)
    prof = profile_model(build(width, num_classes), resolution)

    def render(console):
        t = Table(title=f"MobileNetV2 {width:g} @ {resolution} ({num_classes} classes)")
        for col in ("layer", "operator", "input", "output", "MACs", "params", "output bytes", "largest inner"):
            t.add_column(col, justify="right" if col not in ("layer", "operator") else "left")
        for r in prof.rows:
            t.add_row(r.index, r.operator, _shape(r.input_shape), _shape(r.output_shape), f"{r.macs:,}",
                      f"{r.params:,}", f"{r.activation_bytes:,}", f"{r.inner_bytes:,}")
        t.add_section()
        t.add_row("total", "", "", "", f"{prof.macs:,}", f"{prof.params:,}", "", "")
        console.print(t)
        console.print(f"{prof.macs / 1e6:.1f}M multiply-accumulates, {prof.params / 1e6:.3f}M parameters (batch 1)")

    emit(prof.to_dict(), as_json, render)
