"""A store that is briefly unreachable is a clean, retryable refusal (503 + Retry-After), not a 500
(found by the Redis chaos drill: every request during the restart was a 500 from the authorizer)."""

from __future__ import annotations

import dataclasses
import json

import pymysql
import pytest
import redis

from goodsdrop import clients
from goodsdrop.http import OUTAGES, make_resolver
from goodsdrop_local.template import load


def _event(path: str) -> dict:
    return {"httpMethod": "GET", "path": path, "resource": path, "headers": {}, "multiValueHeaders": {},
            "queryStringParameters": None, "pathParameters": None, "body": None, "isBase64Encoded": False,
            "requestContext": {"requestId": "r", "stage": "test", "identity": {"sourceIp": "127.0.0.1"}}}


@pytest.mark.parametrize("error", [
    redis.exceptions.ConnectionError("Error 111 connecting to 127.0.0.1:6390. Connection refused."),
    redis.exceptions.TimeoutError("Timeout reading from socket"),
    redis.exceptions.ClusterDownError("CLUSTERDOWN The cluster is down"),  # Redis Cluster mid-failover
    redis.exceptions.SlotNotCoveredError("Slot 42 not covered by the cluster"),
    pymysql.err.OperationalError(2003, "Can't connect to MySQL server on '127.0.0.1'"),
    pymysql.err.InterfaceError(0, ""),
])
def test_an_unreachable_store_is_503_with_retry_after(error):
    app = make_resolver()

    @app.get("/boom")
    def boom():
        raise error

    result = app.resolve(_event("/boom"), None)
    assert result["statusCode"] == 503
    assert result["multiValueHeaders"]["Retry-After"] == ["1"]
    body = json.loads(result["body"])
    assert body["error"]["code"] == "SERVICE_UNAVAILABLE" and set(body["error"]) == {"code", "message", "details"}
    assert "127.0.0.1" not in body["error"]["message"]  # nothing internal leaks


def test_a_bug_is_still_a_500():
    app = make_resolver()

    @app.get("/bug")
    def bug():
        raise KeyError("x")

    assert app.resolve(_event("/bug"), None)["statusCode"] == 500


def test_an_authorizer_that_cannot_check_a_token_is_503():
    response = load().gateway_responses["AUTHORIZER_FAILURE"]
    assert response.status == 503 and response.headers["Retry-After"] == "1"
    assert json.loads(response.template)["error"]["code"] == "SERVICE_UNAVAILABLE"


def test_a_cluster_client_with_no_node_answering_is_an_outage(monkeypatch):
    # The cluster client reads the slot map when it is created; nobody listens on port 1.
    monkeypatch.setattr(clients, "settings", dataclasses.replace(
        clients.settings, redis_cluster=True, redis_url="redis://127.0.0.1:1/0"))
    monkeypatch.setitem(clients._REDIS_OPTIONS, "socket_connect_timeout", 0.2)
    clients.redis_client.cache_clear()
    try:
        with pytest.raises(OUTAGES) as raised:
            clients.redis_client()
        assert isinstance(raised.value, redis.exceptions.ConnectionError)
    finally:
        clients.redis_client.cache_clear()


def test_a_kafka_broker_that_cannot_answer_yet_is_503():
    # e.g. a stock rebuild asking a fresh broker for the payments group's offsets before its coordinator loads
    from kafka.errors import CoordinatorNotAvailableError

    app = make_resolver()

    @app.get("/boom")
    def boom():
        raise CoordinatorNotAvailableError("The coordinator is not available.")

    result = app.resolve(_event("/boom"), None)
    assert result["statusCode"] == 503
    assert json.loads(result["body"])["error"]["code"] == "SERVICE_UNAVAILABLE"
