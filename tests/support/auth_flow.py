"""HTTP helpers for the member and auth tests: a client on the local API, login, throttle reset."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator

import httpx

from goodsdrop import keys
from goodsdrop.clients import redis_client
from goodsdrop.settings import settings

LOCAL_IP = "127.0.0.1"


def api() -> httpx.Client:
    return httpx.Client(base_url=f"http://127.0.0.1:{settings.api_port}", timeout=15)


def bearer(access_token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {access_token}"}


def login(client: httpx.Client, email: str, password: str) -> dict:
    response = client.post("/auth/login", json={"email": email, "password": password})
    assert response.status_code == 200, response.text
    return response.json()


def claims_of(access_token: str) -> dict:
    """The JWT's payload, unverified (to look at what the server put in it)."""
    payload = access_token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def reset_local_ip_throttle() -> None:
    """Tests' failed logins and sign-ups all come from 127.0.0.1: keep them from throttling other tests."""
    redis_client().delete(keys.login_attempts_by_ip(LOCAL_IP), keys.sign_ups_by_ip(LOCAL_IP))


def clean_api() -> Iterator[httpx.Client]:
    """A client on the local API, with 127.0.0.1's login and sign-up throttles reset before and after
    (for a module fixture: `yield from clean_api()`)."""
    reset_local_ip_throttle()
    with api() as http:
        yield http
    reset_local_ip_throttle()
