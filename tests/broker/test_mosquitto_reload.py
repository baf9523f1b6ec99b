"""A managed Mosquitto's reload: the new ACL is in force once `apply` returns."""

import asyncio
import logging
import os
import signal

from iot_jobs_bridge.broker.mosquitto import ManagedMosquitto, MosquittoListeners, free_port
from iot_jobs_bridge.jobs_service.ca import CertificateAuthority

from .conftest import MqttClient

# Rules before any "user" line are for clients without a username: the plain listener's devices.
BEFORE = "topic readwrite marker\nuser service\ntopic readwrite #\n"
AFTER = "topic readwrite open/#\n" + BEFORE


def test_a_reload_is_in_force_when_apply_returns_even_if_mosquitto_was_slow(tmp_path, caplog):
    ca = CertificateAuthority(tmp_path / "ca")
    certfile, keyfile = ca.write_server_certificate(tmp_path / "ca", ["localhost"])
    host = "127.0.0.1"
    listeners = MosquittoListeners(
        host, free_port(host), host, free_port(host), ca.cert_path, certfile, keyfile
    )
    broker = ManagedMosquitto(tmp_path / "mosquitto", listeners, username="service", password="secret")

    async def main():
        await broker.start(plain_acl=BEFORE, tls_acl="", crl=ca.revocation_list([]))
        try:
            device = MqttClient("device", None, None)
            await device.connect("127.0.0.1", listeners.port)
            await device.subscribe("open/x")
            await device.subscribe("marker")
            await device.publish("open/x", b"not yet")
            await device.publish("marker")
            assert await device.next_topic() == "marker", "open/x is not allowed before the change"

            assert broker.pid is not None
            os.kill(broker.pid, signal.SIGSTOP)  # a Mosquitto too busy to take the signal at once
            try:
                applying = asyncio.create_task(broker.apply(plain_acl=AFTER, tls_acl="", crl=None))
                done, _ = await asyncio.wait([applying], timeout=0.5)
                assert not done, "apply returned before Mosquitto could have read the new ACL"
            finally:
                os.kill(broker.pid, signal.SIGCONT)
            assert await asyncio.wait_for(applying, 5) == "reload"

            # Nothing awaited in between: the device's very next packet meets the new rules.
            await device.publish("open/x", b"now")
            assert await device.next_message() == ("open/x", b"now")
            await device.close()
        finally:
            await broker.close()

    with caplog.at_level(logging.DEBUG, logger=ManagedMosquitto.__module__):
        asyncio.run(main())
    said = [(r.levelno, r.getMessage()) for r in caplog.records if r.name == ManagedMosquitto.__module__]
    routine = [level for level, text in said if "Reloading config." in text or "mosquitto version" in text]
    assert routine and set(routine) == {logging.DEBUG}, "routine lines are no warnings"
