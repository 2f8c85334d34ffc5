"""The storefront on another origin than the API (as on S3/CloudFront), in Debian's headless Chromium.

A small static server started here serves storefront/ on its own port, with a config.js that points
the page at the API's and the stream's origins. Log in, search, buy, a 401 → refresh → retry and a 429
then only work if every answer the page reads carries CORS headers the browser accepts: the functions'
own (Powertools' CORS configuration), API Gateway's gateway responses (the authorizer's Deny) and the
OPTIONS preflights (SAM's mock integration). The local runtime adds none of its own.
"""

from __future__ import annotations

import functools
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from goodsdrop.settings import settings
from goodsdrop_local.template import REPO_ROOT
from tests.support.accounts import new_account
from tests.support.browser import SHOTS
from tests.support.products import new_product

API = f"http://127.0.0.1:{settings.api_port}"
STREAM = f"http://127.0.0.1:{settings.stream_port}"


class StorefrontFiles(SimpleHTTPRequestHandler):
    """storefront/ as a static host serves it, with config.js naming the API's origin."""

    def do_GET(self) -> None:
        if self.path.split("?")[0] == "/config.js":
            body = f'window.GOODSDROP_CONFIG = {{ api: "{API}", stream: "{STREAM}" }};\n'.encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/javascript")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        super().do_GET()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def storefront(stack) -> Iterator[str]:
    """The storefront's own origin (another port than the API's)."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(StorefrontFiles,
                                                                    directory=str(REPO_ROOT / "storefront")))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@dataclass
class Traffic:
    """What the page sent to the API and what came back, and what the browser refused."""

    exchanges: list[tuple[str, str, int, dict[str, str]]] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)

    def calls(self, method: str | None = None) -> list[tuple[str, str, int]]:
        return [(m, path, status) for m, path, status, _ in self.exchanges if method in (None, m)]

    def since(self, mark: int) -> list[tuple[str, str, int]]:
        return [(m, path, status) for m, path, status, _ in self.exchanges[mark:] if m != "OPTIONS"]


@pytest.fixture
def traffic(page) -> Traffic:
    seen = Traffic()

    def on_response(response: Any) -> None:
        if response.url.startswith(API):
            path = response.url.removeprefix(API).split("?")[0]
            seen.exchanges.append((response.request.method, path, response.status, response.headers))

    page.on("response", on_response)
    # Preflights never reach Playwright's events; Chromium's DevTools protocol shows them.
    devtools = page.context.new_cdp_session(page)
    devtools.send("Network.enable")
    devtools.on("Network.responseReceived", lambda e: seen.exchanges.append(
        ("OPTIONS", e["response"]["url"].removeprefix(API).split("?")[0], e["response"]["status"],
         {k.lower(): v for k, v in e["response"]["headers"].items()}))
        if e.get("type") == "Preflight" and e["response"]["url"].startswith(API) else None)
    # A refused CORS request fails (net::ERR_FAILED) and logs a console error; a stream closed on leaving a
    # page is merely aborted.
    page.on("requestfailed", lambda request: seen.refused.append(f"{request.method} {request.url}: {request.failure}")
            if request.failure != "net::ERR_ABORTED" else None)
    page.on("console", lambda message: seen.refused.append(message.text)
            if message.type == "error" and "CORS" in message.text else None)
    return seen


def _submit_login(page: Any, email: str, password: str) -> Any:
    # The first page of a Chromium started beside a runtime still warming up its environments can
    # take longer than the page's default 15 s to render on 2 busy cores (CI met it twice).
    page.wait_for_selector("#login input[name=email]", timeout=60_000)
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", password)
    with page.expect_response(lambda r: r.url == f"{API}/auth/login" and r.request.method == "POST") as answer:
        page.click("button.primary")
    return answer.value


def test_the_storefront_on_another_origin_logs_in_searches_buys_refreshes_and_is_throttled(
        page, storefront, traffic):
    assert storefront.split(":")[-1] != API.split(":")[-1]  # another origin: another port
    buyer = new_account()
    name = f"Cross Origin Figure {uuid.uuid4().hex[:6]}"
    product = new_product(stock=20, price=4900, name=name)

    # Log in: a JSON POST, so the browser preflights it first.
    page.goto(f"{storefront}/#/login")
    assert _submit_login(page, buyer.email, buyer.password).status == 200
    page.wait_for_selector("#nav-logout:not([hidden])")
    assert ("OPTIONS", "/auth/login", 200) in traffic.calls("OPTIONS")

    # Search (a simple GET: no preflight, the function's own CORS headers let the page read it).
    page.fill("#search input[name=q]", name)
    page.press("#search input[name=q]", "Enter")
    page.wait_for_selector(f'.card[data-product="{product}"]')

    # Buy: the Idempotency-Key and Authorization headers pass the preflight; the order is confirmed.
    page.click(f'.card[data-product="{product}"]')
    page.wait_for_function("document.querySelector('#buy')?.disabled === false")
    page.click("#buy")
    page.wait_for_url("**/#/order/*")
    page.wait_for_function("document.querySelector('#order-status')?.textContent === 'CONFIRMED'", timeout=30_000)
    page.screenshot(path=str(SHOTS / "cross-origin-1-confirmed.png"))
    assert ("POST", "/orders", 202) in traffic.calls()

    # 401 → refresh → retry: the authorizer denies a bad access token (API Gateway's ACCESS_DENIED
    # response, which must carry the CORS headers for the page to see the 401 at all).
    refresh_before = page.evaluate("localStorage.getItem('gd.refresh')")
    page.evaluate("localStorage.setItem('gd.access', 'not-a-valid-token')")
    mark = len(traffic.exchanges)
    page.goto(f"{storefront}/#/cart")
    page.wait_for_selector("text=Your cart")
    assert traffic.since(mark)[:3] == [("GET", "/cart", 401), ("POST", "/auth/refresh", 200), ("GET", "/cart", 200)]
    assert page.evaluate("localStorage.getItem('gd.access')") != "not-a-valid-token"
    assert page.evaluate("localStorage.getItem('gd.refresh')") != refresh_before  # rotated

    # 429: the sixth wrong password for one email in a row is throttled; the page reads the error's code.
    page.click("#nav-logout")
    page.wait_for_selector("#nav-login:not([hidden])")
    victim = new_account()
    page.goto(f"{storefront}/#/login")
    for _ in range(5):
        assert _submit_login(page, victim.email, "wrong-password-1").status == 401
        page.wait_for_function("document.querySelector('#message')?.textContent === 'Wrong email or password.'")
    throttled = _submit_login(page, victim.email, "wrong-password-1")
    assert throttled.status == 429
    page.wait_for_function(
        "document.querySelector('#message')?.textContent === 'Too many attempts; please wait a moment.'")
    assert int(page.evaluate(f"""async () => (await fetch("{API}/auth/login", {{method: "POST",
        headers: {{"Content-Type": "application/json"}},
        body: JSON.stringify({{email: "{victim.email}", password: "x"}})}})).headers.get("Retry-After")""")) > 0
    page.screenshot(path=str(SHOTS / "cross-origin-2-throttled.png"))

    # The browser refused nothing, and every answer it read carried the CORS headers.
    assert traffic.refused == []
    for method, path, status, headers in traffic.exchanges:
        assert headers.get("access-control-allow-origin") in ("*", storefront), (method, path, status, headers)
