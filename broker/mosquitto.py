"""A Mosquitto the service runs itself: its configuration, its process, its reloads.

`ManagedMosquitto` writes everything Mosquitto reads into one directory:

* ``mosquitto.conf``: a plain listener (the service, monitoring tools, local
  devices known by client id) and a TLS listener that requires a client
  certificate from the service's CA and knows each client by the certificate's
  common name; every listener speaks MQTT 5, 3.1.1 and 3.1;
* ``passwd``: the service's own account;
* ``acl-plain``/``acl-tls``: who may use which topics (`broker.mosquitto_acl`);
* ``crl.pem``: certificates that may no longer connect.

It starts Mosquitto, restarts it if it dies, and applies new access files as
they come: a changed ACL is reloaded in place (SIGHUP), while a changed
revocation list needs a restart, because Mosquitto reads CRLs only when it
starts, and so does a change that takes rights away, because Mosquitto cannot
close one client's connection. Sessions and queued messages survive restarts
(``persistence``).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import getpass
import hashlib
import logging
import os
import shutil
import signal
import socket
from dataclasses import dataclass
from pathlib import Path

from iot_jobs_bridge.broker.files import write_if_changed, write_private

__all__ = ["ManagedMosquitto", "MosquittoError", "MosquittoListeners", "find_mosquitto", "password_line"]

log = logging.getLogger(__name__)

_BINARIES = ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto")
_PBKDF2_ITERATIONS = 101  # what mosquitto_passwd writes for its $7$ format
_START_WITHIN = 10.0
_RELOAD_WITHIN = 5.0
# What Mosquitto prints when it takes a SIGHUP; it rereads its files before it serves another packet.
_RELOADING = "Reloading config."
# Routine "information" lines, kept out of the warnings (everything else Mosquitto prints is one).
_ROUTINE = (
    "mosquitto version",
    "Config loaded from",
    "Opening ipv",
    "Saving in-memory database",
    _RELOADING,
)


class MosquittoError(Exception):
    """Mosquitto is missing, or would not start; the message says which."""


@dataclass(frozen=True)
class MosquittoListeners:
    host: str
    port: int
    tls_host: str
    tls_port: int
    cafile: Path
    certfile: Path
    keyfile: Path
    # Whether devices may log in on the plain listener by client id (otherwise only the service).
    plain_devices: bool = True
    max_packet_bytes: int = 128 * 1024 + 260  # after the fixed header, as BrokerLimits counts it
    max_connections: int = 10_000


def find_mosquitto() -> str:
    """The mosquitto executable; `MosquittoError` naming the package when there is none."""
    found = shutil.which("mosquitto") or next((b for b in _BINARIES if Path(b).exists()), None)
    if found is None:
        raise MosquittoError(
            "--broker mosquitto needs Mosquitto 2.0 or later (Debian/Ubuntu: apt-get install mosquitto)"
        )
    return found


def password_line(username: str, password: str, salt: bytes | None = None) -> str:
    """A ``passwd`` line in mosquitto_passwd's PBKDF2-SHA512 (``$7$``) format."""
    salt = salt or os.urandom(12)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, _PBKDF2_ITERATIONS)
    encode = base64.b64encode
    return f"{username}:$7${_PBKDF2_ITERATIONS}${encode(salt).decode()}${encode(digest).decode()}"


def free_port(host: str) -> int:
    """A port the OS has just had free on ``host`` (Mosquitto cannot report one it picked)."""
    with socket.socket() as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


class ManagedMosquitto:
    def __init__(
        self,
        directory: Path,
        listeners: MosquittoListeners,
        *,
        username: str,
        password: str,
        binary: str | None = None,
    ) -> None:
        self.directory = directory
        self.listeners = listeners
        self._binary = binary or find_mosquitto()
        self._credentials = (username, password)
        self._process: asyncio.subprocess.Process | None = None
        self._watcher: asyncio.Task[None] | None = None
        self._logger: asyncio.Task[None] | None = None
        self._closing = False
        self._reloaded = asyncio.Event()
        self.restarts = 0  # unplanned restarts, after Mosquitto died

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    async def start(self, *, plain_acl: str, tls_acl: str, crl: bytes) -> None:
        """Write the configuration and access files, start Mosquitto, wait until it listens."""
        self.directory.mkdir(parents=True, exist_ok=True)
        (self.directory / "persistence").mkdir(exist_ok=True)
        write_private(self.directory / "passwd", password_line(*self._credentials) + "\n")
        (self.directory / "mosquitto.conf").write_text(self._config())
        self._write_if_changed("acl-plain", plain_acl.encode())
        self._write_if_changed("acl-tls", tls_acl.encode())
        self._write_if_changed("crl.pem", crl)
        await self._launch()
        self._watcher = asyncio.create_task(self._watch(), name="mosquitto-watch")

    async def apply(
        self, *, plain_acl: str, tls_acl: str, crl: bytes | None, reconnect: bool = False
    ) -> str | None:
        """Bring Mosquitto in step with new access files (``crl`` None: unchanged).

        ``reconnect``: the change takes rights away, so open connections must go;
        Mosquitto 2.0 cannot close one client's connection, so it restarts.
        Returns "reload", "restart" or None when nothing changed.
        """
        acl_changed = self._write_if_changed("acl-plain", plain_acl.encode())
        acl_changed = self._write_if_changed("acl-tls", tls_acl.encode()) or acl_changed
        crl_changed = crl is not None and self._write_if_changed("crl.pem", crl)
        if crl_changed or (reconnect and acl_changed):
            await self.restart()
            return "restart"
        if acl_changed and self._process is not None and self._process.returncode is None:
            await self._reload(self._process)
            return "reload"
        return None

    async def _reload(self, process: asyncio.subprocess.Process) -> None:
        """SIGHUP, then wait until Mosquitto says it is reloading.

        Mosquitto serves clients on one thread and rereads its files before the
        next packet, so once the line is out, whoever hears of the change next
        (a device just given rights) meets the new ACL, not the old one.
        """
        self._reloaded.clear()
        process.send_signal(signal.SIGHUP)
        try:
            await asyncio.wait_for(self._reloaded.wait(), _RELOAD_WITHIN)
        except TimeoutError:
            log.warning("mosquitto did not confirm the reload within %.0f s", _RELOAD_WITHIN)

    async def restart(self) -> None:
        """Stop and start Mosquitto again (clients reconnect; persistent sessions are kept)."""
        if self._watcher is not None:
            self._watcher.cancel()
            await asyncio.gather(self._watcher, return_exceptions=True)
        await self._stop_process()
        await self._launch()
        self._watcher = asyncio.create_task(self._watch(), name="mosquitto-watch")

    async def close(self) -> None:
        self._closing = True
        if self._watcher is not None:
            self._watcher.cancel()
            await asyncio.gather(self._watcher, return_exceptions=True)
            self._watcher = None
        await self._stop_process()

    def _config(self) -> str:
        folder, listen = self.directory, self.listeners
        return "\n".join(
            [
                "# Written by iotjobs serve --broker mosquitto at every start; changes here are overwritten.",
                "per_listener_settings true",
                "persistence true",
                f"persistence_location {folder / 'persistence'}/",
                # Saved often enough that the service's session survives a crash, not only a restart.
                "autosave_interval 60",
                # Requests queued for the service while it reconnects, across the whole fleet.
                "max_queued_messages 100000",
                "log_dest stderr",
                "log_type error",
                "log_type warning",
                # Says when a reload is done with ("Reloading config."); quiet otherwise.
                "log_type information",
                # Mosquitto counts the fixed header too (at most 5 bytes).
                f"max_packet_size {listen.max_packet_bytes + 5}",
                # Mosquitto drops root privileges unless told to stay the user it was started as.
                f"user {getpass.getuser()}",
                "",
                f"listener {listen.port} {listen.host}",
                f"max_connections {listen.max_connections}",
                f"allow_anonymous {'true' if listen.plain_devices else 'false'}",
                f"password_file {folder / 'passwd'}",
                f"acl_file {folder / 'acl-plain'}",
                "",
                f"listener {listen.tls_port} {listen.tls_host}",
                f"max_connections {listen.max_connections}",
                "allow_anonymous false",
                f"cafile {listen.cafile}",
                f"certfile {listen.certfile}",
                f"keyfile {listen.keyfile}",
                "require_certificate true",
                "use_identity_as_username true",
                f"crlfile {folder / 'crl.pem'}",
                f"acl_file {folder / 'acl-tls'}",
                "",
            ]
        )

    def _write_if_changed(self, name: str, content: bytes) -> bool:
        return write_if_changed(self.directory / name, content)

    async def _launch(self) -> None:
        self._process = await asyncio.create_subprocess_exec(
            self._binary,
            "-c",
            str(self.directory / "mosquitto.conf"),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
            start_new_session=True,  # a Ctrl-C meant for iotjobs reaches Mosquitto through close()
        )
        process = self._process
        self._logger = asyncio.create_task(_log_lines(process, self._reloaded), name="mosquitto-log")
        deadline = asyncio.get_running_loop().time() + _START_WITHIN
        listen = self.listeners
        for host, port in ((listen.host, listen.port), (listen.tls_host, listen.tls_port)):
            while not await _accepts(host, port):
                if process.returncode is not None:
                    await asyncio.gather(self._logger, return_exceptions=True)
                    raise MosquittoError(
                        f"Mosquitto exited with status {process.returncode} while starting (see its log)"
                    )
                if asyncio.get_running_loop().time() > deadline:
                    await self._stop_process()
                    raise MosquittoError(f"Mosquitto did not listen on {host}:{port} in time")
                await asyncio.sleep(0.05)
        log.info("mosquitto %s running (pid %d)", self._binary, process.pid)

    async def _watch(self) -> None:
        delay = 1.0
        while not self._closing:
            assert self._process is not None
            status = await self._process.wait()
            if self._closing:
                return
            log.error("mosquitto exited with status %s; starting it again in %.0f s", status, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 30.0)
            try:
                await self._launch()
                self.restarts += 1
                delay = 1.0
            except MosquittoError as exc:
                log.error("%s", exc)

    async def _stop_process(self) -> None:
        process, self._process = self._process, None
        if process is None or process.returncode is not None:
            return
        process.terminate()
        try:
            await asyncio.wait_for(process.wait(), 10)
        except TimeoutError:
            process.kill()
            await process.wait()


async def _accepts(host: str, port: int) -> bool:
    try:
        _reader, writer = await asyncio.open_connection(host, port)
    except OSError:
        return False
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return True


async def _log_lines(process: asyncio.subprocess.Process, reloaded: asyncio.Event) -> None:
    assert process.stderr is not None
    async for line in process.stderr:
        text = line.decode(errors="replace").rstrip()
        message = text.partition(": ")[2]  # after Mosquitto's timestamp
        if message == _RELOADING:
            reloaded.set()
        # Inside containers the service often runs as root; Mosquitto says so at every start.
        routine = message.startswith(_ROUTINE) or "should not be run as root" in message
        level = logging.DEBUG if routine else logging.WARNING
        log.log(level, "mosquitto: %s", text)
