"""`mnv2deploy setup arm64`: the one-time setup that commands needing it never do on their own (they say to run this).

arm64: the aarch64 emulation environment (an arm64 Python sysroot from Debian packages and aarch64 wheels, a few
minutes, about 170 MB in the user cache; then ExecuTorch's aarch64 runtime libraries and a shim compiled against
them, about 15 s and 12 MB) that `parity --arch arm64` and the emulated Android tier run in. Needs qemu-user-static,
g++-aarch64-linux-gnu and apt-get (`make android-setup` installs them first and then runs this)."""

from __future__ import annotations

import typer

from ..errors import UsageError
from .common import JsonOpt, emit, note

WHAT = ("arm64",)


def setup(
    what: str = typer.Argument(..., help=f"What to set up: {', '.join(WHAT)} (the aarch64 emulation environment)."),
    rebuild: bool = typer.Option(False, "--rebuild", help="Build it again even if it is there."),
    as_json: bool = JsonOpt,
) -> None:
    """Set up what other commands need and never install at run time (downloads from Debian and PyPI)."""
    from .. import emulation

    if what not in WHAT:
        raise UsageError(f"nothing called {what!r} to set up", f"choose one of {', '.join(WHAT)}")
    already = emulation.is_set_up() and emulation.executorch_unavailable_reason() is None and not rebuild
    root = emulation.setup_environment(rebuild=rebuild, progress=note)
    result = {"what": what, "path": str(root), "built": not already, "cpus": list(emulation.CPUS)}
    emit(result, as_json, lambda console: console.print(
        f"arm64 emulation environment {'already set up' if already else 'ready'} in {root} "
        f"(CPUs: {', '.join(emulation.CPUS)})"))
