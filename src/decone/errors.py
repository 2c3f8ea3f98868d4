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


def check_device(device: str | None, flag: str = "--device") -> str | None:
    """``device`` if torch can use it here (``cpu``, ``cuda``, ``cuda:1``, ``mps``, ...), else a one-line ConfigError."""
    if device is None:
        return None
    import torch

    try:
        dev = torch.device(device)
    except (RuntimeError, ValueError, TypeError):
        raise ConfigError(f"{flag} {device!r}: not a device name (cpu, cuda, cuda:0, mps, ...)") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"{flag} {device!r}: this torch build or machine has no CUDA GPU")
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise ConfigError(f"{flag} {device!r}: there are {torch.cuda.device_count()} CUDA GPUs")
    if dev.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ConfigError(f"{flag} {device!r}: MPS is not available on this machine")
    return device


def _writable_parent(path, flag: str) -> None:
    """The nearest existing ancestor of ``path`` must be a folder this process may write into."""
    import os
    from pathlib import Path

    parent = Path(path).absolute().parent
    while not parent.exists():
        if parent.is_symlink():  # a dangling link
            raise ConfigError(f"{flag} {path}: {parent} is a broken link")
        parent = parent.parent
    if not parent.is_dir():
        raise ConfigError(f"{flag} {path}: {parent} is a file, not a folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ConfigError(f"{flag} {path}: cannot write in {parent} (permission denied)")


def check_output_file(path, flag: str = "--output") -> None:
    """Fail before any work where ``path`` cannot become a file: it is a folder, or its folder cannot be made."""
    from pathlib import Path

    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"{flag} {path}: is a folder, expected a file path")
    _writable_parent(path, flag)


def check_output_dir(path, flag: str = "--output", overwrite: bool = False) -> None:
    """Fail before any work where ``path`` cannot become an output folder: it is a file, its parent cannot be made,
    or (unless ``overwrite``) it is a folder that already holds files."""
    from pathlib import Path

    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ConfigError(f"{flag} {path}: exists and is a file, expected a folder")
    if path.is_dir():
        if not overwrite and any(path.iterdir()):
            raise ConfigError(f"{flag} {path}: folder exists and is not empty; pass --overwrite to replace its files")
        return
    _writable_parent(path, flag)
