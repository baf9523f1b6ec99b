"""Access files for a Mosquitto someone else runs (``--broker external --broker-acl-dir``).

The service writes the device listener's ACL (``acl-devices``, one section per
certificate from its registry) and revocation list (``crl.pem``) into a
directory the operator's Mosquitto reads, and after each change runs the
operator's reload command, with ``IOTJOBS_BROKER_CHANGE`` set to ``reload``
(the ACL changed: SIGHUP is enough) or ``restart`` (the revocation list
changed: Mosquitto 2.0 reads it only when it starts; or rights were taken away:
the connections that had them must end).
"""

from __future__ import annotations

import asyncio
import logging
import os
import shlex
from pathlib import Path

from iot_jobs_bridge.broker.files import write_if_changed

__all__ = ["AclExport"]

log = logging.getLogger(__name__)

DEVICES_ACL = "acl-devices"
CRL = "crl.pem"
_COMMAND_WITHIN = 60.0


class AclExport:
    def __init__(self, directory: Path, reload_command: str | None = None) -> None:
        self.directory = directory
        self._command = shlex.split(reload_command) if reload_command else None

    async def start(self, *, plain_acl: str, tls_acl: str, crl: bytes) -> None:
        """Write the files; the operator's broker is assumed to be reading them already or soon."""
        self.directory.mkdir(parents=True, exist_ok=True)
        await self.apply(plain_acl=plain_acl, tls_acl=tls_acl, crl=crl)

    async def apply(
        self, *, plain_acl: str, tls_acl: str, crl: bytes | None, reconnect: bool = False
    ) -> str | None:
        del plain_acl  # the operator's local listener has its own rules
        acl_changed = write_if_changed(self.directory / DEVICES_ACL, tls_acl.encode())
        crl_changed = crl is not None and write_if_changed(self.directory / CRL, crl)
        if crl_changed or (reconnect and acl_changed):
            await self._run("restart")
            return "restart"
        if acl_changed:
            await self._run("reload")
            return "reload"
        return None

    async def close(self) -> None:
        """Nothing runs; the files stay for the operator's broker."""

    async def _run(self, change: str) -> None:
        if self._command is None:
            return
        process = await asyncio.create_subprocess_exec(
            *self._command,
            env={**os.environ, "IOTJOBS_BROKER_CHANGE": change},
            stdin=asyncio.subprocess.DEVNULL,
        )
        try:
            status = await asyncio.wait_for(process.wait(), _COMMAND_WITHIN)
        except TimeoutError:
            process.kill()
            await process.wait()
            raise RuntimeError(f"the broker reload command ran over {_COMMAND_WITHIN:.0f} s") from None
        if status != 0:
            raise RuntimeError(f"the broker reload command exited with status {status}")
