"""The project-owned servers answer as the application will use them.

Brings the four servers up with `ensure_up(servers_only=True)` (a no-op when they already run)
and talks to each with the client library the functions use. The Kafka test also pins down
that kafka-python and the broker version from infra/kafka/pom.xml work together.
"""

from __future__ import annotations

import time
import uuid

import boto3
import pymysql
import pytest
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
from kafka.admin import NewTopic

from goodsdrop.clients import redis_client
from goodsdrop.settings import settings
from goodsdrop_local import stack


@pytest.fixture(scope="module", autouse=True)
def _stack_servers() -> None:
    """The four servers, running and healthy."""
    stack.ensure_up(servers_only=True)


def test_status_reports_every_server_healthy() -> None:
    assert stack.is_healthy(servers_only=True)
    assert stack.status(servers_only=True) is True


def test_redis_ping_and_set_get() -> None:
    client = redis_client()  # one Redis, or a cluster client that routes the key to its node
    key = f"test:stack:{uuid.uuid4().hex}"
    try:
        assert client.ping()
        client.set(key, "ok", ex=60)
        assert client.get(key) == "ok"
    finally:
        client.delete(key)


def test_mariadb_app_user_can_create_and_drop_a_table() -> None:
    conn = pymysql.connect(
        host=settings.mysql_host,
        port=settings.mysql_port,
        user=settings.mysql_user,
        password=settings.mysql_password,
        database=settings.mysql_database,
        autocommit=True,
    )
    table = f"tmp_stack_{uuid.uuid4().hex[:8]}"
    try:
        with conn.cursor() as cur:
            cur.execute(f"CREATE TABLE `{table}` (id INT PRIMARY KEY, name VARCHAR(20))")
            cur.execute(f"INSERT INTO `{table}` VALUES (1, %s)", ("굿즈",))
            cur.execute(f"SELECT name FROM `{table}` WHERE id = 1")
            assert cur.fetchone() == ("굿즈",)
            cur.execute("SELECT @@character_set_server")
            assert cur.fetchone() == ("utf8mb4",)
            cur.execute(f"DROP TABLE `{table}`")
    finally:
        conn.close()


def test_kafka_round_trip_with_kafka_python() -> None:
    bootstrap = settings.kafka_bootstrap
    topic = f"{settings.topic_prefix}test-stack-{uuid.uuid4().hex[:10]}"
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="test-stack")
    try:
        # The broker's advertised API versions reach what kafka-python knows as Kafka 3.9
        # (check_version() itself stops guessing at (2, 6) in kafka-python 2.3).
        assert admin._client.check_version() >= (2, 6)
        broker = admin._client.get_api_versions()
        assert broker[0][1] >= 11, "Produce v11 (Kafka >= 3.7)"
        assert broker[1][1] >= 17, "Fetch v17 (Kafka >= 3.9)"

        admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])
        producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
        producer.send(topic, key=b"k", value=b"hello goodsdrop").get(timeout=15)
        producer.close()

        consumer = KafkaConsumer(
            topic,
            bootstrap_servers=bootstrap,
            group_id=f"test-stack-{uuid.uuid4().hex[:6]}",
            auto_offset_reset="earliest",
            consumer_timeout_ms=20000,
        )
        try:
            deadline = time.monotonic() + 30
            values: list[bytes] = []
            while not values and time.monotonic() < deadline:
                for records in consumer.poll(timeout_ms=1000).values():
                    values += [r.value for r in records]
            assert values == [b"hello goodsdrop"]
        finally:
            consumer.close()
    finally:
        admin.delete_topics([topic])
        admin.close()


@pytest.mark.skipif(settings.aws_target != "moto", reason="the local stack serves AWS APIs with moto")
def test_moto_ssm_parameter_round_trip() -> None:
    ssm = boto3.client(
        "ssm",
        endpoint_url=settings.aws_endpoint_url,
        region_name=settings.aws_region,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    name = f"/goodsdrop/test/{uuid.uuid4().hex[:8]}"
    ssm.put_parameter(Name=name, Value="s3cret", Type="SecureString")
    got = ssm.get_parameter(Name=name, WithDecryption=True)
    assert got["Parameter"]["Value"] == "s3cret"
    ssm.delete_parameter(Name=name)
