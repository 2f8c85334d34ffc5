"""The runtime's HTTP server hands functions the header names as the client wrote them (API Gateway REST
does; ASGI servers lowercase them), and the client's X-Forwarded-For never becomes the source IP."""

from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from goodsdrop_local.template import REPO_ROOT

FIXTURE = Path(__file__).parents[1] / "fixtures" / "template.yaml"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _request(port: int, method: str, path: str, headers: list[tuple[str, str]], body: bytes = b"") -> tuple[int, dict]:
    """Send headers exactly as given (http.client keeps their case and repeats); the JSON answer."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
        for name, value in headers:
            conn.putheader(name, value)
        if body:
            conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body or None)
        response = conn.getresponse()
        return response.status, json.loads(response.read())
    finally:
        conn.close()


@pytest.fixture(scope="module")
def port():
    port = _free_port()
    env = {**os.environ, "GOODSDROP_TEMPLATE": str(FIXTURE), "GOODSDROP_STATIC_DIR": "/nonexistent",
           "PYTHONPATH": f"{REPO_ROOT}/layers/common:{REPO_ROOT}/local:{REPO_ROOT}"}
    server = subprocess.Popen([sys.executable, "-m", "goodsdrop_local.api_server", "--port", str(port),
                               "--workers", "1"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            break
        except OSError:
            assert server.poll() is None, server.stderr.read().decode() if server.stderr else ""
            assert time.monotonic() < deadline, "the API server did not start"
            time.sleep(0.1)
    yield port
    server.terminate()
    server.wait(timeout=15)


def test_functions_see_header_names_in_the_clients_case(port):
    status, event = _request(port, "GET", "/things/7?x=1", [("Host", "shop.test"), ("X-MiXeD-CaSe", "one"),
                                                            ("x-lower", "two"), ("X-Repeat", "a"), ("X-Repeat", "b")])
    assert status == 200, event
    assert event["headers"]["X-MiXeD-CaSe"] == "one" and event["headers"]["x-lower"] == "two"
    assert event["headers"]["Host"] == "shop.test" and event["requestContext"]["domainName"] == "shop.test"
    assert event["multiValueHeaders"]["X-Repeat"] == ["a", "b"]
    assert "x-mixed-case" not in event["headers"]


def test_the_source_ip_is_the_connections_not_the_clients_forwarded_for(port):
    _, event = _request(port, "GET", "/things/7", [("Host", "a"), ("X-Forwarded-For", "203.0.113.9")])
    assert event["requestContext"]["identity"]["sourceIp"] == "127.0.0.1"
    assert event["headers"]["X-Forwarded-For"] == "203.0.113.9, 127.0.0.1"


def test_an_authorization_header_in_any_case_reaches_the_authorizer(port):
    for name in ("Authorization", "authorization", "AUTHORIZATION"):
        status, event = _request(port, "POST", "/me", [("Host", "a"), (name, "Bearer allow")], b"{}")
        assert status == 200, (name, event)
        assert event["requestContext"]["authorizer"]["memberId"] == "42"
        assert event["headers"][name] == "Bearer allow"
