"""How long access-changing control-plane calls take to answer, per broker.

On the managed Mosquitto the call answers only once Mosquitto has the change:
an ACL change is a SIGHUP, a revocation a restart plus the service's own
reconnection. Prints medians of 7 calls each. Run: PYTHONPATH=. python bench/access_changes.py
"""

import json
import statistics
import tempfile
import time
from pathlib import Path

from tests.integration.conftest import start_server

EVERYTHING = {"Statement": [{"Effect": "Allow", "Action": "iot:*", "Resource": "*"}]}


def measure(broker: str, data_dir: Path, rounds: int = 7) -> tuple[float, float]:
    server = start_server(data_dir, extra_args=["--broker", broker, "--mqtts-port", "0"])
    try:
        iot = server.iot()
        iot.create_policy(policyName="everything", policyDocument=json.dumps(EVERYTHING))
        attach, revoke = [], []
        for _ in range(rounds):
            made = iot.create_keys_and_certificate(setAsActive=True)
            start = time.perf_counter()
            iot.attach_policy(policyName="everything", target=made["certificateArn"])
            attach.append(time.perf_counter() - start)
            start = time.perf_counter()
            iot.update_certificate(certificateId=made["certificateId"], newStatus="REVOKED")
            revoke.append(time.perf_counter() - start)
        return statistics.median(attach), statistics.median(revoke)
    finally:
        server.stop()


def main() -> None:
    with tempfile.TemporaryDirectory() as directory:
        for broker in ("embedded", "mosquitto"):
            attach, revoke = measure(broker, Path(directory) / broker)
            print(f"{broker:10} AttachPolicy {attach * 1000:7.1f} ms", end="   ")
            print(f"UpdateCertificate REVOKED {revoke * 1000:7.1f} ms")


if __name__ == "__main__":
    main()
