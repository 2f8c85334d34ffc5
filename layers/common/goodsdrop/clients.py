"""Factories for the clients of Redis, MySQL, Kafka and AWS.

Each client is built once per warm Lambda container (module-level cache) and reused across
invocations, as AWS recommends. Everything reads `goodsdrop.settings`; nothing else connects.
"""

from __future__ import annotations

import os
import ssl
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from functools import cache
from typing import TYPE_CHECKING, Any

import pymysql
import redis
from pymysql.cursors import DictCursor
from redis.cluster import RedisCluster
from redis.exceptions import RedisClusterException

from goodsdrop.settings import settings

if TYPE_CHECKING:
    from kafka import KafkaProducer

# The same connection behaviour for one Redis and for every node of a Redis Cluster.
_REDIS_OPTIONS: dict[str, Any] = {
    "decode_responses": True,
    "socket_timeout": 2.0,
    "socket_connect_timeout": 2.0,
    "max_connections": 256,  # per node on a cluster
}


# MySQL's error numbers the domain tells apart (pymysql.err.IntegrityError's args[0]).
DUPLICATE_KEY = 1062
NO_REFERENCED_ROW = 1452  # a foreign key names a row that is not there

# redis-py types every command for its sync and asyncio clients at once (`Awaitable[Any] | Any`), so
# typed results would need a cast at every call: to the type checker the client is `Any`.
RedisClient = Any


@cache
def redis_client() -> RedisClient:
    """The shared Redis client (strings in, strings out).

    With `GOODSDROP_REDIS_CLUSTER=1` it is a cluster client: `REDIS_URL` names any node, the
    client learns the slot map from it and sends each command to the node owning its key (and
    follows MOVED/ASK when slots move). Callers use both the same way; every key a script or
    transaction combines shares a hash tag (goodsdrop.keys), so one node can serve it.
    """
    if settings.redis_cluster:
        try:
            return RedisCluster.from_url(settings.redis_url, **_REDIS_OPTIONS)
        except RedisClusterException as err:
            # It reads the slot map on creation: no node answering is an outage (503), not a bug.
            raise redis.exceptions.ConnectionError(f"Redis Cluster unreachable: {err}") from err
    # (The cluster client has no idle health check; it reconnects and re-reads the slot map on errors.)
    return redis.Redis.from_url(settings.redis_url, health_check_interval=30, **_REDIS_OPTIONS)


@cache
def _mysql_tls() -> ssl.SSLContext | None:
    """The one TLS context of this process's MySQL connections, or None for plain TCP.

    Said explicitly either way: left alone, PyMySQL "prefers" TLS and builds a fresh default context
    (loading the system's CA store, ~28 ms of CPU) for every connection, then trusts any certificate.
    """
    if not settings.mysql_tls_ca:
        return None
    context = ssl.create_default_context(cafile=settings.mysql_tls_ca)  # verifies certificate and host name
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


def _mysql_connect() -> pymysql.connections.Connection:
    tls = _mysql_tls()
    return pymysql.connect(
        host=settings.mysql_host,
        port=settings.mysql_port,
        user=settings.mysql_user,
        password=settings.mysql_password,
        database=settings.mysql_database,
        charset="utf8mb4",
        cursorclass=DictCursor,
        autocommit=True,
        connect_timeout=3,
        read_timeout=10,
        write_timeout=10,
        **({"ssl": tls} if tls is not None else {"ssl_disabled": True}),
    )


_mysql: dict[int, pymysql.connections.Connection] = {}


def mysql_connection() -> pymysql.connections.Connection:
    """This process's MySQL connection, reconnected if the server dropped it."""
    conn = _mysql.get(os.getpid())
    if conn is not None:
        try:
            conn.ping()
            return conn
        except pymysql.err.Error:
            with suppress(pymysql.err.Error):  # the server dropped us (restart, idle timeout): start afresh
                conn.close()
    conn = _mysql[os.getpid()] = _mysql_connect()
    return conn


def fetch_one(cursor: DictCursor) -> dict[str, Any]:
    """The row of a query that always has one (a COUNT or SUM, a row this transaction just wrote)."""
    row = cursor.fetchone()
    if row is None:
        raise LookupError("the query returned no row")
    return row


@contextmanager
def mysql_cursor() -> Iterator[DictCursor]:
    """A cursor in autocommit mode (one statement, one transaction)."""
    with mysql_connection().cursor(DictCursor) as cursor:
        yield cursor


@contextmanager
def mysql_transaction() -> Iterator[DictCursor]:
    """A cursor inside one transaction: committed on success, rolled back on any error."""
    conn = mysql_connection()
    conn.begin()
    try:
        with conn.cursor(DictCursor) as cursor:
            yield cursor
        conn.commit()
    except BaseException:
        conn.rollback()
        raise


@cache
def kafka_producer() -> KafkaProducer:
    """The shared idempotence-friendly Kafka producer (acks=all, bounded blocking)."""
    # Imported here, at the first use: kafka-python costs ~100 ms of import, and most functions (the
    # authorizer on every request path, every read) never publish, so their cold start should not pay it.
    from kafka import KafkaProducer

    return KafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap.split(","),
        acks="all",
        linger_ms=1,
        retries=5,
        max_block_ms=5000,
        request_timeout_ms=5000,
        metrics_enabled=False,  # never read; recording them costs CPU on every request
    )


def aws_client(service: str) -> Any:
    """A boto3 client for `service` at the one configured endpoint (moto, LocalStack or AWS)."""
    return _aws_client(service)


@cache
def _aws_client(service: str) -> Any:
    if settings.aws_target == "localstack":
        # localstack-client knows LocalStack's edge endpoint and test credentials.
        import localstack_client.session

        return localstack_client.session.Session(region_name=settings.aws_region).client(service)
    import boto3

    kwargs: dict[str, Any] = {"region_name": settings.aws_region}
    if settings.aws_endpoint_url:
        kwargs["endpoint_url"] = settings.aws_endpoint_url
        # moto accepts any credentials; don't let a missing profile break local runs.
        kwargs.setdefault("aws_access_key_id", os.environ.get("AWS_ACCESS_KEY_ID", "testing"))
        kwargs.setdefault("aws_secret_access_key", os.environ.get("AWS_SECRET_ACCESS_KEY", "testing"))
    return boto3.client(service, **kwargs)
