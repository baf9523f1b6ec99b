"""A device set up the way the official jobs sample is: no CA file, the control plane from the environment.

Usage: sample_like_device.py ENDPOINT PORT CERT KEY THING. It trusts the server
only through SSL_CERT_FILE, finds the control plane only through
AWS_ENDPOINT_URL_IOT, and prints the thing's ARN and queued job ids as JSON.
"""

import json
import sys
from concurrent.futures import Future

import boto3
from awscrt import mqtt_request_response
from awsiot import iotjobs, mqtt5_client_builder


def main() -> None:
    endpoint, port, cert, key, thing = sys.argv[1:]
    connected: Future[None] = Future()

    def failed(data) -> None:
        if not connected.done():
            connected.set_exception(RuntimeError(str(data.exception)))

    client = mqtt5_client_builder.mtls_from_path(
        endpoint=endpoint,
        port=int(port),
        cert_filepath=cert,
        pri_key_filepath=key,
        clean_session=True,
        keep_alive_secs=1200,
        on_lifecycle_connection_success=lambda _data: connected.done() or connected.set_result(None),
        on_lifecycle_connection_failure=failed,
    )
    client.start()
    try:
        connected.result(10)
        jobs = iotjobs.IotJobsClientV2(
            client,
            mqtt_request_response.ClientOptions(
                max_request_response_subscriptions=2,
                max_streaming_subscriptions=2,
                operation_timeout_in_seconds=10,
            ),
        )
        arn = boto3.client("iot", region_name="us-east-1").describe_thing(thingName=thing)["thingArn"]
        request = iotjobs.GetPendingJobExecutionsRequest(thing_name=thing)
        pending = jobs.get_pending_job_executions(request).result(10)
        print(json.dumps({"arn": arn, "queued": [job.job_id for job in pending.queued_jobs]}))
    finally:
        client.stop()


if __name__ == "__main__":
    main()
