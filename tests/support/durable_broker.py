"""A tansu broker that keeps its data across restarts: S3 storage on moto's S3 server.

tansu's ``memory://`` engine starts empty after every restart; its ``s3://`` engine
keeps topics, records and the groups' committed offsets in a bucket. moto's server is a
real S3 endpoint on loopback, so a test can stop the broker, start it again on the same
port, and find everything where it was::

    from tests.support.durable_broker import durable_broker, s3_bucket  # noqa: F401

    def test_restart(durable_broker):
        durable_broker.restart()
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator

import pytest

from exporter.kafka.embedded import EmbeddedBroker, free_port

CREDENTIALS = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": "us-east-1"}


@pytest.fixture
def s3_bucket() -> Iterator[tuple[str, str]]:
    """``(endpoint, bucket)``: a moto S3 server on loopback and a new, empty bucket in it.

    moto keeps its buckets in the test process, shared by every server it starts: each
    test gets a bucket of its own, or one broker would find another's topics.
    """
    import boto3
    from moto.server import ThreadedMotoServer

    # One line per S3 request (tansu makes many) would bury a failing test's own log.
    werkzeug = logging.getLogger("werkzeug")
    level = werkzeug.level
    werkzeug.setLevel(logging.WARNING)
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    try:
        s3 = boto3.client(
            "s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="test", aws_secret_access_key="test"
        )
        bucket = f"tansu-{uuid.uuid4().hex[:12]}"
        s3.create_bucket(Bucket=bucket)
        yield endpoint, bucket
    finally:
        server.stop()
        werkzeug.setLevel(level)


@pytest.fixture
def durable_broker(s3_bucket: tuple[str, str]) -> Iterator[EmbeddedBroker]:
    """A started tansu storing in ``s3_bucket``; restartable on its port, data and all."""
    endpoint, bucket = s3_bucket
    env = {"AWS_ENDPOINT": endpoint, "AWS_ALLOW_HTTP": "true", **CREDENTIALS}
    with EmbeddedBroker(storage_engine=f"s3://{bucket}/", env=env) as broker:
        yield broker
