"""The `mnv2deploy` command line: one module per command, errors mapped to documented exit codes.

Exit codes: 0 success, 1 a bug, 2 usage or bad input, 3 a check failed, 4 a missing tool, device or platform.
"""

from __future__ import annotations

import importlib
import sys
import traceback

import typer

from ..errors import Mnv2Error

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="MobileNetV2 from the paper to the phone: export, parity, bench, memory.")

# name -> "module:function"; adding a command is one new module and one line here.
COMMANDS = {
    "info": "info:info",
    "bench": "bench:bench",
    "devices": "devices:devices",
    "export": "export:export",
    "memory": "memory:memory",
    "parity": "parity:parity",
}

for _name, _target in COMMANDS.items():
    _module, _func = _target.split(":")
    app.command(_name)(getattr(importlib.import_module(f"{__package__}.{_module}"), _func))


@app.callback()
def _root(debug: bool = typer.Option(False, "--debug", help="Show tracebacks for unexpected errors.")) -> None:
    """MobileNetV2 deployment toolkit."""


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    try:
        result = app(args=argv, prog_name="mnv2deploy", standalone_mode=False)
        return int(result) if isinstance(result, int) else 0
    except typer.Exit as e:
        return e.exit_code
    except typer.TyperException as e:  # typer's own click: bad option values, unknown commands
        e.show()
        return getattr(e, "exit_code", 2)
    except typer.Abort:
        print("error: aborted", file=sys.stderr)
        return 130
    except Mnv2Error as e:
        print(e.one_line(), file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("error: interrupted; nothing half-written was left behind", file=sys.stderr)
        return 130
    except Exception as e:  # the one place that turns a bug into exit 1
        if debug:
            traceback.print_exc()
        first = str(e).splitlines()[0][:200] if str(e) else ""
        print(f"error: internal error {type(e).__name__}: {first} (hint: this is a bug; rerun with --debug and report it)",
              file=sys.stderr)
        return 1


def run() -> None:
    sys.exit(main())
