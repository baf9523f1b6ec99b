"""The admin key: from the environment, or generated once and kept in the data dir.

The key signs boto3/AWS CLI requests (SigV4) and is also the MQTT
username/password with full topic rights. The secret is never logged.
"""

from __future__ import annotations

import json
import os
import secrets
import string
from dataclasses import dataclass
from pathlib import Path

__all__ = ["CREDENTIALS_FILE", "AdminKey", "load_admin_key", "read_admin_key"]

CREDENTIALS_FILE = "admin-credentials.json"
_KEY_ALPHABET = string.ascii_uppercase + string.digits


@dataclass(frozen=True)
class AdminKey:
    access_key_id: str
    secret_access_key: str
    # Where the key came from: "environment" or the path of the stored file.
    source: str

    def __repr__(self) -> str:
        return f"AdminKey(access_key_id={self.access_key_id!r}, source={self.source!r})"


def read_admin_key(data_dir: Path, environ: dict[str, str] | None = None) -> AdminKey | None:
    """The admin key from the environment or the data dir, or ``None`` if there is none yet.

    Command-line clients (``iotjobs run``) use this: they never make a key.
    """
    env = dict(os.environ) if environ is None else environ
    key_id, secret = env.get("IOTJOBS_ACCESS_KEY_ID"), env.get("IOTJOBS_SECRET_ACCESS_KEY")
    if key_id and secret:
        return AdminKey(key_id, secret, "environment")
    if key_id or secret:
        raise ValueError("Set both IOTJOBS_ACCESS_KEY_ID and IOTJOBS_SECRET_ACCESS_KEY, or neither")
    path = data_dir / CREDENTIALS_FILE
    if path.exists():
        stored = json.loads(path.read_text(encoding="utf-8"))
        return AdminKey(stored["accessKeyId"], stored["secretAccessKey"], str(path))
    return None


def load_admin_key(data_dir: Path, environ: dict[str, str] | None = None) -> tuple[AdminKey, bool]:
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
    data_dir.mkdir(parents=True, exist_ok=True)
    # Created with owner-only permissions before the secret is written.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(
            {"accessKeyId": key.access_key_id, "secretAccessKey": key.secret_access_key}, handle, indent=2
        )
        handle.write("\n")
    return key, True
