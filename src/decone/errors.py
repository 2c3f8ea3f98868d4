"""User-facing errors.

Every error a user can cause (bad data, a bad model path, a bad flag) is a :class:`DeconeError`. Its message is one
line that names the file, the line or the field, and what is wrong. The CLI prints it and exits with code 2, with no
traceback.
"""

from __future__ import annotations


class DeconeError(Exception):
    """An error caused by the user's input, reported as one line (CLI exit code 2)."""

    exit_code = 2


class DataError(DeconeError):
    """A data file is missing, unreadable or malformed. The message names the file and the line."""


class ModelError(DeconeError):
    """A model path or folder cannot be loaded (missing, no weights, pickle-only, not an encoder)."""


class ConfigError(DeconeError):
    """A configuration value is out of range (temperature <= 0, batch size < 2, ...)."""


def where(path, line: int | None = None) -> str:
    """Format ``file:line`` for error messages."""
    return f"{path}:{line}" if line is not None else f"{path}"
