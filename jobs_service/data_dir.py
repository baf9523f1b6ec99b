"""The data dir is its owner's alone: it holds job documents, device output and keys."""

from __future__ import annotations

import contextlib
import logging
import os
import stat
from collections.abc import Iterator
from pathlib import Path

__all__ = ["make_data_dir", "owner_only_files"]

log = logging.getLogger(__name__)


def make_data_dir(data_dir: Path) -> None:
    """Create the data dir for its owner alone; warn when an existing one is open to others."""
    try:
        data_dir.mkdir(mode=0o700, parents=True)
    except FileExistsError:
        if not data_dir.is_dir():
            raise
        mode = stat.S_IMODE(data_dir.stat().st_mode)
        if mode & 0o077:
            log.warning(
                "the data dir %s can be read by other users (mode %o); it holds job documents, device "
                "output and keys: chmod 700 it",
                data_dir.absolute(),
                mode,
            )


@contextlib.contextmanager
def owner_only_files() -> Iterator[None]:
    """Files and folders made meanwhile are the owner's alone (0600, 0700).

    The umask is process-wide: hold this only around start-up steps that write
    into the data dir.
    """
    previous = os.umask(0o077)
    try:
        yield
    finally:
        os.umask(previous)
