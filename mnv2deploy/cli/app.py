"""The `mnv2deploy` command line: one module per command, errors mapped to documented exit codes.

Exit codes: 0 success, 1 a bug, 2 usage or bad input, 3 a check failed, 4 a missing tool, device or platform.
"""

from __future__ import annotations

import contextlib
import errno
import importlib
import os
import re
import sys
import traceback
import warnings
from typing import Iterator

import typer

from ..errors import Mnv2Error
from ..threads import cap_environment
from . import common

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
    "run": "run:run",
    "setup": "setup:setup",
}

# name -> "module:typer app" for command groups (`mnv2deploy farm devices`).
GROUPS = {"farm": "farm:app"}

for _name, _target in COMMANDS.items():
    _module, _func = _target.split(":")
    app.command(_name)(getattr(importlib.import_module(f"{__package__}.{_module}"), _func))
for _name, _target in GROUPS.items():
    _module, _attr = _target.split(":")
    app.add_typer(getattr(importlib.import_module(f"{__package__}.{_module}"), _attr), name=_name)


@app.callback()
def _root(debug: bool = typer.Option(False, "--debug", help="Show tracebacks for unexpected errors.")) -> None:
    """MobileNetV2 deployment toolkit."""
    common.debug = debug


INTERRUPTED = 130
INTERRUPTED_LINE = "error: interrupted; nothing half-written was left behind (hint: run the command again)"


def _one_line(text: str, limit: int = 300) -> str:
    return " ".join(str(text).split())[:limit]


def _usage_error(e: Exception) -> str:
    """typer's (vendored click) usage errors as one line; its own show() prints a usage block."""
    ctx = getattr(e, "ctx", None)
    where = ctx.command_path if ctx is not None else "mnv2deploy"
    return f"error: {_one_line(e.format_message())} (hint: see `{where} --help`)"


@contextlib.contextmanager
def _quiet_libraries(debug: bool) -> Iterator[None]:
    """Other libraries' warnings (torch deprecations, converter notices) are not the user's business: hidden unless
    --debug, here and in child processes (PYTHONWARNINGS), so an error stays the one line on stderr."""
    if debug:
        yield
        return
    saved = os.environ.get("PYTHONWARNINGS")
    os.environ["PYTHONWARNINGS"] = "ignore"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            warnings.filterwarnings("default", module=r"mnv2deploy(\.|$)")
            yield
    finally:
        if saved is None:
            os.environ.pop("PYTHONWARNINGS", None)
        else:
            os.environ["PYTHONWARNINGS"] = saved


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; every failure is one line on stderr and a documented exit code (README: Exit codes). With
    --json, stdout holds exactly one JSON object on every exit: the command's result, and on failure
    ``error``/``hint``/``exit_code`` (merged into the result when the command had one, e.g. a failed parity gate)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    head = argv[:argv.index("--")] if "--" in argv else argv
    debug = "--debug" in head
    if debug:  # accepted anywhere before `--`, as the README promises, not only before the command
        argv = ["--debug"] + [a for i, a in enumerate(argv) if not (a == "--debug" and i < len(head))]
    cap_environment()  # before any heavy import: torch/OpenMP/MKL/OpenBLAS here and in every child (threads.py)
    common.take_json_result()  # nothing left over from an earlier in-process call
    _errors.clear()
    from .parity import _written as junit_written

    junit_written.clear()
    code = _run(argv, debug)
    command = next((a for a in head if a in COMMANDS or a in GROUPS), None)
    if code != 0 and command == "parity":  # a usage error before parity ran still leaves its --junit-xml report
        from .parity import junit_after_failure

        junit_after_failure(argv, _errors[-1][2] if _errors else f"error: exit code {code}", code)
    result = common.take_json_result()
    if "--json" in head and (result is not None or code != 0):
        obj = dict(result or {})
        if code != 0:
            message, hint, _ = _errors[-1] if _errors else (f"exit code {code}", None, None)
            obj.update(error=message, hint=hint, exit_code=code)
        common.print_json(obj)
    return code


_errors: list[tuple[str, str | None, str]] = []  # (what is wrong, what to do, the line) of this invocation's error
_LINE = re.compile(r"^error: (?P<message>.*?)(?: \(hint: (?P<hint>.*)\))?$", re.S)


def _error(line: str) -> None:
    """Print the one error line on stderr and keep its parts for the --json object."""
    print(line, file=sys.stderr)
    m = _LINE.match(line)
    _errors.append((m["message"], m["hint"], line) if m else (line, None, line))


def _run(argv: list[str], debug: bool) -> int:
    try:
        with _quiet_libraries(debug):
            result = app(args=argv, prog_name="mnv2deploy", standalone_mode=False)
        if result == INTERRUPTED:  # typer turns Ctrl-C into Exit(130) and returns the code without a word
            _error(INTERRUPTED_LINE)
        return int(result) if isinstance(result, int) else 0
    except typer.Exit as e:
        return e.exit_code
    except typer.Abort:
        _error("error: aborted")
        return 130
    except typer.TyperException as e:  # bad option values, unknown commands: exit 2
        _error(_usage_error(e))
        return int(getattr(e, "exit_code", 2) or 2)
    except Mnv2Error as e:
        command = next((a for a in argv if a in COMMANDS or a in GROUPS), None)
        line = e.one_line()
        _error(line.replace("mnv2deploy COMMAND", f"mnv2deploy {command}") if command else line)
        return e.exit_code
    except KeyboardInterrupt:
        _error(INTERRUPTED_LINE)
        return INTERRUPTED
    except OSError as e:  # out of space or permission denied: the environment, not a bug (exit 2)
        if e.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
            _error(f"error: no space left on device{f' writing {e.filename}' if e.filename else ''} "
                   "(hint: free disk space or choose another --out folder)")
            return 2
        if e.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
            _error(f"error: {e.strerror}{f': {e.filename}' if e.filename else ''} "
                   "(hint: check the file's permissions, or choose a writable --out folder)")
            return 2
        return _bug(e, debug)
    except MemoryError:  # the request is too large for this machine: exit 2 like any option value it cannot take
        if debug:
            traceback.print_exc()
        _error("error: out of memory (hint: use fewer --samples, a smaller --batch or --resolution)")
        return 2
    except Exception as e:  # the one place that turns a bug into exit 1
        return _bug(e, debug)


def _bug(e: BaseException, debug: bool) -> int:
    if debug:
        traceback.print_exc()
    first = _one_line(str(e).splitlines()[0], 200) if str(e) else ""
    _error(f"error: internal error {type(e).__name__}: {first} (hint: this is a bug; rerun with --debug and report it)")
    return 1


def run() -> None:
    exit_without_teardown(main())


def exit_without_teardown(code: int) -> None:
    """Exit with ``code`` once atexit handlers have run and the streams are flushed, skipping the interpreter's
    teardown of every module and object.

    Why: after a conversion that teardown (torch, jax, MLIR objects) took 1.5 s of an 18 s tflite-int8 export; the
    operating system frees a process's memory at once. atexit handlers still run (temporary folders, logging,
    multiprocessing's children). With another non-daemon thread alive, the normal exit joins it as usual."""
    import atexit
    import threading

    if any(not t.daemon for t in threading.enumerate() if t is not threading.main_thread()):
        sys.exit(code)
    atexit._run_exitfuncs()  # what the normal exit would call; public atexit has no "run now" (CPython 3.11-3.13)
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe (`| head`): nothing more can reach the reader anyway
            pass
    os._exit(code)
