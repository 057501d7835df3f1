"""Typed errors with a hint, each mapped to a documented exit code (README: Exit codes).

0 success, 1 a bug, 2 usage or bad input, 3 a check failed, 4 a missing tool, device or platform.
"""

from __future__ import annotations


class Mnv2Error(Exception):
    exit_code = 1

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.message, self.hint = message, hint

    def __reduce__(self):  # keep the hint when the error crosses a process boundary
        return (type(self), (self.message, self.hint))

    def one_line(self) -> str:
        line = f"error: {self.message}"
        return f"{line} (hint: {self.hint})" if self.hint else line


class UsageError(Mnv2Error):
    """An option value or combination that is not supported."""
    exit_code = 2


class BadInputError(Mnv2Error):
    """A file or folder the user gave cannot be used."""
    exit_code = 2


class BadWeightsError(BadInputError):
    pass


class BadArtifactError(BadInputError):
    pass


class BadDataError(BadInputError):
    pass


class OutputError(BadInputError):
    """An output location that cannot be written: not a folder, no permission, no space left."""


class CheckFailedError(Mnv2Error):
    """A parity or other gate ran and did not pass."""
    exit_code = 3


class MissingToolError(Mnv2Error):
    """An optional dependency, external tool, device or platform is not available."""
    exit_code = 4


class DeviceError(MissingToolError):
    pass


class PlatformError(MissingToolError):
    pass
