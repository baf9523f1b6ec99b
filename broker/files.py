"""Small file helpers for configuration the broker reads while running."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["write_if_changed", "write_private"]


def write_if_changed(path: Path, content: bytes) -> bool:
    """Replace ``path`` with ``content`` unless it holds it already; whether it changed."""
    if path.exists() and path.read_bytes() == content:
        return False
    temporary = path.with_name(path.name + ".new")
    temporary.write_bytes(content)
    temporary.replace(path)  # a reader never sees a half-written file
    return True


def write_private(path: Path, text: str) -> None:
    """Write ``text`` to a file only its owner can read (made so before the text goes in)."""
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
