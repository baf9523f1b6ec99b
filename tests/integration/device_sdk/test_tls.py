"""The device client over TLS with a client certificate, through a TLS front on the broker."""

import asyncio
import contextlib
import ssl

import pytest

from iot_jobs_bridge.device_sdk import AsyncJobsClient, JobRunner, RequestTimedOut, TlsOptions
from tests.certs import TestCA

from .helpers import create_job, execution, make_thing, wait_until_async

pytestmark = pytest.mark.integration


@contextlib.asynccontextmanager
async def tls_front(target_host: str, target_port: int, context: ssl.SSLContext):
    """A TLS listener on 127.0.0.1 that forwards each connection to the plain MQTT port."""

    async def pipe(reader, writer):
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, ssl.SSLError):
            pass
        finally:
            writer.close()

    async def handle(client_reader, client_writer):
        try:
            broker_reader, broker_writer = await asyncio.open_connection(target_host, target_port)
        except OSError:
            client_writer.close()
            return
        await asyncio.gather(pipe(client_reader, broker_writer), pipe(broker_reader, client_writer))

    server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=context)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()


def server_context(ca: TestCA) -> ssl.SSLContext:
    issued = ca.issue("broker", server=True)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(ca.cert))
    context.load_cert_chain(str(issued.cert), str(issued.key))
    context.verify_mode = ssl.CERT_REQUIRED  # mutual TLS, as AWS IoT Core does
    return context


def test_a_device_with_a_client_certificate_runs_a_job_over_tls(server, iot, unique, tmp_path):
    ca = TestCA(tmp_path / "ca")
    thing = f"{unique}-tls"
    device = ca.issue(thing)
    arn = make_thing(iot, thing)
    create_job(iot, f"{unique}-job", arn, {"operation": "hello"})

    async def scenario():
        async with tls_front(server.mqtt_host, server.mqtt_port, server_context(ca)) as port:
            tls = TlsOptions(ca_file=ca.cert, cert_file=device.cert, key_file=device.key)
            async with AsyncJobsClient(thing, f"mqtts://localhost:{port}", tls=tls) as client:
                runner = JobRunner(client)
                runner.register("hello", lambda job: None)
                task = asyncio.ensure_future(runner.run())
                await wait_until_async(lambda: len(runner.reports) == 1)
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)

    asyncio.run(scenario())
    assert execution(iot, f"{unique}-job", thing)["status"] == "SUCCEEDED"


def test_a_broker_certificate_from_another_ca_is_refused(server, iot, unique, tmp_path):
    trusted, impostor = TestCA(tmp_path / "trusted"), TestCA(tmp_path / "impostor", name="impostor CA")
    thing = f"{unique}-tls"
    device = trusted.issue(thing)
    make_thing(iot, thing)

    async def scenario():
        async with tls_front(server.mqtt_host, server.mqtt_port, server_context(impostor)) as port:
            tls = TlsOptions(ca_file=trusted.cert, cert_file=device.cert, key_file=device.key)
            async with AsyncJobsClient(
                thing, f"mqtts://localhost:{port}", tls=tls, request_timeout=1.5
            ) as client:
                with pytest.raises(RequestTimedOut):
                    await client.get_pending()
                return client.connected

    assert asyncio.run(scenario()) is False


def test_missing_tls_files_are_reported_when_the_client_is_made(tmp_path):
    with pytest.raises(ValueError, match="cannot load TLS files"):
        AsyncJobsClient("t", "mqtts://localhost:8883", tls=TlsOptions(ca_file=tmp_path / "missing.pem"))
