"""A JSON command-line argument, given inline or as a file, the way the AWS CLI takes them.

``--document`` and ``--settings`` accept ``'{"operation": "reboot"}'``,
``@doc.json``, ``file://doc.json`` (AWS CLI style; ``file:///abs/doc.json``) or
just ``doc.json`` when that file exists. One function decides, for every command.
"""

from __future__ import annotations

import json
from pathlib import Path

__all__ = ["json_argument"]

_FILE_PREFIXES = ("@", "file://")


def json_argument(value: str, option: str) -> str:
    """The JSON text ``value`` stands for; ValueError naming ``option`` (and the file) when it is not JSON.

    The text is returned as given (not re-serialised), so the service reads the
    document exactly as written.
    """
    path: Path | None = None
    for prefix in _FILE_PREFIXES:
        if value.startswith(prefix):
            path = Path(value.removeprefix(prefix)).expanduser()
            break
    else:
        # Inline JSON is never taken for a file name (a long one would not even be a valid path).
        if not value.lstrip().startswith(("{", "[")) and _is_file(value):
            path = Path(value)
    if path is None:
        return _checked(value, f"{option} {_shorten(value)}")
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ValueError(f"{option}: cannot read {path}: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise ValueError(f"{option}: {path} is not UTF-8 text") from exc
    return _checked(text, f"{option} file {path}")


def _checked(text: str, what: str) -> str:
    try:
        json.loads(text)
    except ValueError as exc:
        raise ValueError(
            f"{what} is not JSON ({exc}); give inline JSON, @FILE, file://FILE or the path of a file"
        ) from exc
    return text


def _is_file(value: str) -> bool:
    try:
        return Path(value).expanduser().is_file()
    except (OSError, ValueError):  # a name too long for the file system, or with a NUL
        return False


def _shorten(value: str, limit: int = 60) -> str:
    return repr(value if len(value) <= limit else value[:limit] + "...")
