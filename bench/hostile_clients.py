"""What clients that never log in cost the embedded broker: memory, and how long they stay.

Three floods against one ``iotjobs serve --mqtts-port 0``, each measured by the
server's resident memory (VmRSS) before, while the sockets are open, and after
the broker has had its connect timeout to close them:

* 2,000 plain sockets that never send CONNECT;
* 2,000 sockets to the TLS listener that never start their handshake;
* 4 sockets that announce a 150 MB CONNECT and then send it, 1 MB at a time.

Run: PYTHONPATH=. python bench/hostile_clients.py
"""

from __future__ import annotations

import re
import socket
import tempfile
import threading
import time
from pathlib import Path

from tests.integration.conftest import start_server

IDLE_SOCKETS = 2000
STREAMS = 4
STREAM_BYTES = 150 * 1024 * 1024
SETTLE = 12.0  # longer than the broker's connect timeout (10 s by default)


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def still_open(sockets: list[socket.socket]) -> int:
    """How many of ``sockets`` the server has not closed (a closed one reads as EOF or a reset)."""
    count = 0
    for sock in sockets:
        sock.setblocking(False)
        try:
            if sock.recv(1) != b"":
                count += 1
        except BlockingIOError:
            count += 1
        except OSError:
            pass
    return count


def idle_flood(pid: int, port: int) -> tuple[float, float, int]:
    """(RSS growth with the sockets open, growth once the connect timeout passed, sockets left)."""
    before = rss_mb(pid)
    sockets = [socket.create_connection(("127.0.0.1", port)) for _ in range(IDLE_SOCKETS)]
    try:
        time.sleep(1.0)
        opened = rss_mb(pid) - before
        time.sleep(SETTLE)
        return opened, rss_mb(pid) - before, still_open(sockets)
    finally:
        for sock in sockets:
            sock.close()


def stream(port: int, sent: list[int]) -> None:
    header = bytes([0x10]) + _remaining_length(STREAM_BYTES)
    chunk = b"\x00" * (1024 * 1024)
    with socket.create_connection(("127.0.0.1", port)) as sock:
        try:
            sock.sendall(header)
            total = 0
            while total < STREAM_BYTES:
                sock.sendall(chunk)
                total += len(chunk)
                sent.append(len(chunk))
        except OSError:
            return  # the server closed it


def stream_flood(pid: int, port: int) -> tuple[float, float, int]:
    """(peak RSS growth while streaming, seconds until every stream ended, MiB the server accepted)."""
    before = rss_mb(pid)
    sent: list[int] = []
    threads = [threading.Thread(target=stream, args=(port, sent)) for _ in range(STREAMS)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    peak = 0.0
    while any(thread.is_alive() for thread in threads):
        peak = max(peak, rss_mb(pid) - before)
        time.sleep(0.05)
    return peak, time.monotonic() - started, sum(sent) // (1024 * 1024)


def _remaining_length(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n % 128, n // 128
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def main() -> None:
    with tempfile.TemporaryDirectory() as directory:
        server = start_server(Path(directory), extra_args=["--mqtts-port", "0", "--log-level", "WARNING"])
        try:
            line = next(line for line in server.lines if line.startswith("mqtts listening on"))
            tls_port = int(re.search(r":(\d+) ", line)[1])
            pid = server.process.pid
            print(f"server at start: {rss_mb(pid):.0f} MiB")
            for name, port in (("plain", server.mqtt_port), ("TLS", tls_port)):
                opened, settled, left = idle_flood(pid, port)
                print(
                    f"{IDLE_SOCKETS} idle {name} sockets: +{opened:.0f} MiB while open, "
                    f"+{settled:.0f} MiB after {SETTLE:.0f} s, {left} still open"
                )
            peak, seconds, accepted = stream_flood(pid, server.mqtt_port)
            print(
                f"{STREAMS} streams announcing a {STREAM_BYTES // 2**20} MB CONNECT: peak +{peak:.0f} MiB, "
                f"all ended after {seconds:.1f} s, {accepted} MiB sent before the server closed them"
            )
        finally:
            server.stop()


if __name__ == "__main__":
    main()
