"""The admin key: from the environment, or generated once and kept in the data dir.

The key signs boto3/AWS CLI requests (SigV4) and is also the MQTT
username/password with full topic rights. The secret is never logged.

Every command follows one rule: ``IOTJOBS_ACCESS_KEY_ID`` and
``IOTJOBS_SECRET_ACCESS_KEY`` when both are set, else the key stored in the
data dir. ``serve`` makes that stored key on first start; the client commands
(``run``, ``schedule``, ``simulate``) only read it, through :func:`client_admin_key`.
"""

from __future__ import annotations

import json
import os
import secrets
import string
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "CREDENTIALS_FILE",
    "CREDENTIALS_HELP",
    "AdminKey",
    "client_admin_key",
    "load_admin_key",
    "read_admin_key",
]

CREDENTIALS_FILE = "admin-credentials.json"
# For the --help of every client command.
CREDENTIALS_HELP = (
    "The admin key comes from IOTJOBS_ACCESS_KEY_ID and IOTJOBS_SECRET_ACCESS_KEY, "
    f"else from {CREDENTIALS_FILE} in --data-dir."
)
_KEY_ALPHABET = string.ascii_uppercase + string.digits


@dataclass(frozen=True)
class AdminKey:
    access_key_id: str
    secret_access_key: str
    # Where the key came from: "environment" or the path of the stored file.
    source: str

    def __repr__(self) -> str:
        return f"AdminKey(access_key_id={self.access_key_id!r}, source={self.source!r})"


def read_admin_key(data_dir: Path, environ: Mapping[str, str] | None = None) -> AdminKey | None:
    """The admin key from the environment or the data dir, or ``None`` if there is none yet.

    ValueError, naming the file, when only one variable is set or the stored file
    cannot be read.
    """
    env = os.environ if environ is None else environ
    key_id, secret = env.get("IOTJOBS_ACCESS_KEY_ID"), env.get("IOTJOBS_SECRET_ACCESS_KEY")
    if key_id and secret:
        return AdminKey(key_id, secret, "environment")
    if key_id or secret:
        raise ValueError("Set both IOTJOBS_ACCESS_KEY_ID and IOTJOBS_SECRET_ACCESS_KEY, or neither")
    path = data_dir / CREDENTIALS_FILE
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ValueError(f"cannot read the admin key in {path.absolute()}: {exc.strerror}") from exc
    try:
        stored = json.loads(text)
        return AdminKey(str(stored["accessKeyId"]), str(stored["secretAccessKey"]), str(path))
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(
            f"{path.absolute()} is not an admin key file: it needs accessKeyId and secretAccessKey"
        ) from exc


def client_admin_key(data_dir: Path, environ: Mapping[str, str] | None = None) -> AdminKey:
    """The admin key a client command signs with; ValueError naming where it looked when there is none.

    From ``IOTJOBS_ACCESS_KEY_ID``/``IOTJOBS_SECRET_ACCESS_KEY``, else from
    ``data_dir``'s ``admin-credentials.json`` (the server's ``--data-dir``).
    A client never makes a key: only ``serve`` does.
    """
    key = read_admin_key(data_dir, environ)
    if key is None:
        raise ValueError(
            "no admin key: set IOTJOBS_ACCESS_KEY_ID and IOTJOBS_SECRET_ACCESS_KEY, or point --data-dir "
            f"at the server's data dir ({(data_dir / CREDENTIALS_FILE).absolute()} does not exist)"
        )
    return key


def load_admin_key(data_dir: Path, environ: Mapping[str, str] | None = None) -> tuple[AdminKey, bool]:
    """The admin key, and whether it was generated just now.

    ``IOTJOBS_ACCESS_KEY_ID`` and ``IOTJOBS_SECRET_ACCESS_KEY`` win when both are
    set; otherwise the key stored in the data dir is used, made on first start.
    """
    existing = read_admin_key(data_dir, environ)
    if existing is not None:
        return existing, False
    path = data_dir / CREDENTIALS_FILE
    key = AdminKey(
        "AKIA" + "".join(secrets.choice(_KEY_ALPHABET) for _ in range(16)),
        secrets.token_urlsafe(30)[:40],
        str(path),
    )
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    # Created with owner-only permissions before the secret is written.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(
            {"accessKeyId": key.access_key_id, "secretAccessKey": key.secret_access_key}, handle, indent=2
        )
        handle.write("\n")
    return key, True
