"""Typed errors with a hint, each mapped to a documented exit code (README: Exit codes).

0 success, 1 a bug, 2 usage or bad input, 3 a check failed, 4 a missing tool, device or platform.
"""

from __future__ import annotations


def install_hint(extra: str) -> str:
    """The one spelling of an install hint: the mnv2deploy extra (pyproject.toml) that brings what is missing."""
    return f"pip install 'mnv2deploy[{extra}]'"


class Mnv2Error(Exception):
    exit_code = 1
    default_hint: str | None = None  # what to do when the raiser had nothing more specific to say

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.message, self.hint = message, hint or self.default_hint

    def __reduce__(self):  # keep the hint when the error crosses a process boundary
        return (type(self), (self.message, self.hint))

    def one_line(self) -> str:
        line = f"error: {self.message}"
        return f"{line} (hint: {self.hint})" if self.hint else line


class UsageError(Mnv2Error):
    """An option value or combination that is not supported."""
    exit_code = 2
    default_hint = "see `mnv2deploy COMMAND --help` for the valid values"


class BadInputError(Mnv2Error):
    """A file or folder the user gave cannot be used."""
    exit_code = 2
    default_hint = "check the file or folder named above"


class BadWeightsError(BadInputError):
    default_hint = "pass a state_dict saved with torch.save(model.state_dict(), path)"


class BadArtifactError(BadInputError):
    default_hint = "re-export it with `mnv2deploy export`"


class BadDataError(BadInputError):
    default_hint = "lay images out as DIR/<class>/<image>.jpg and remove unreadable files"


class OutputError(BadInputError):
    """An output location that cannot be written: not a folder, no permission, no space left."""
    default_hint = "choose a writable --out folder"


class CheckFailedError(Mnv2Error):
    """A parity or other gate ran and did not pass."""
    exit_code = 3
    default_hint = "see the report for the values and their limits"


class MissingToolError(Mnv2Error):
    """An optional dependency, external tool, device or platform is not available."""
    exit_code = 4
    default_hint = "install it, or run where it is available"


class DeviceError(MissingToolError):
    default_hint = "check `adb devices -l`; reconnect or unlock the device"


class PlatformError(MissingToolError):
    default_hint = "run it on a platform that has it"
