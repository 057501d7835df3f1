"""Output conventions shared by every command: one JSON object on stdout with --json, rich text otherwise,
progress and errors on stderr."""

from __future__ import annotations

import contextlib
import json
import sys
from pathlib import Path
from typing import Any, Callable, Iterator

import typer
from rich.console import Console

from ..fileio import json_safe

stdout = Console(highlight=False, width=None if sys.stdout.isatty() else 150)
stderr = Console(stderr=True, highlight=False)
debug = False  # set per invocation by the root callback (--debug): converters' chatter then reaches the terminal

JsonOpt = typer.Option(False, "--json", help="Print one JSON object on stdout instead of tables.")


# The --json object of this invocation: emit() keeps it and app.main prints it once on exit, with the error merged
# in when the command fails after emitting (a failed parity gate), so stdout holds exactly one object on every exit.
_json_result: list[dict[str, Any]] = []


def emit(result: dict[str, Any], as_json: bool, render: Callable[[Console], None]) -> None:
    """``result`` as the command's JSON object (printed by app.main on exit), or let ``render`` draw it for people."""
    if as_json:
        _json_result[:] = [json_safe(result)]
    else:
        render(stdout)


def take_json_result() -> dict[str, Any] | None:
    result = _json_result[0] if _json_result else None
    _json_result.clear()
    return result


def print_json(obj: dict[str, Any]) -> None:
    print(json.dumps(json_safe(obj)), flush=True)


@contextlib.contextmanager
def status(message: str) -> Iterator[None]:
    """A spinner on stderr for work longer than a second (silent when stderr is not a terminal)."""
    if stderr.is_terminal:
        with stderr.status(message):
            yield
    else:
        yield


def note(message: str) -> None:
    stderr.print(message)


def line(message: str) -> None:
    """A note that stays one line whatever the terminal width (a warning a log parser may grep)."""
    stderr.print(message, soft_wrap=True, markup=False, highlight=False)


@contextlib.contextmanager
def converter_output(log: Path | None) -> Iterator[None]:
    """Send what converters print, Python and native alike (absl, MLIR timings, tqdm, warnings), to ``log``
    (appended; /dev/null when None) so stdout stays JSON-clean and stderr readable; our own progress lines
    still reach the terminal."""
    import os

    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    terminal = os.fdopen(os.dup(saved[1]), "w", buffering=1)
    # Console.file falls back to the *current* sys.stderr when unset; reading it would pin the console to
    # whatever stream sys.stderr is now (pytest's capture, closed later), so keep the unset state itself
    previous_file = stderr._file
    sink = open(log, "ab") if log is not None else open(os.devnull, "wb")
    try:
        stderr.file = terminal
        os.dup2(sink.fileno(), 1)
        os.dup2(sink.fileno(), 2)
        yield
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in saved:
            os.close(fd)
        stderr.file = previous_file
        terminal.close()
        sink.close()


@contextlib.contextmanager
def stdout_to_stderr() -> Iterator[None]:
    """Libraries that print on stdout, native code included: fd 1 goes to stderr meanwhile, so ``--json`` keeps
    stdout to exactly one JSON object."""
    import os

    sys.stdout.flush()
    saved = os.dup(1)
    try:
        os.dup2(2, 1)
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


def library_output() -> contextlib.AbstractContextManager:
    """Around in-process library work (converters, coremltools' import): what libraries print is discarded, or
    with --debug shown on stderr; stdout stays the command's own either way."""
    return stdout_to_stderr() if debug else converter_output(None)
