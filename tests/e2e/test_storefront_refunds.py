"""The buyer's money and mail in the storefront (issue 20), in Debian's headless Chromium.

Order history shows what each order charged and refunded; the order page shows it per line, with
the time of each refund, and cancelling a line there shows its refund in flight, then done. The
verification mail's link lands on a page that says what became of it. Screenshots go to
.stack/screenshots/ (docs/storefront-refunds.png in the README is one of them).
"""

from __future__ import annotations

import httpx

from goodsdrop.settings import settings
from tests.support.auth_flow import bearer, login, reset_local_ip_throttle
from tests.support.browser import SHOTS
from tests.support.mail import new_email, verification_links
from tests.support.orders import confirmed_sale, order_status, wait_for

API = f"http://127.0.0.1:{settings.api_port}"


def _log_in(page, email: str, password: str) -> None:
    page.goto(f"{API}/#/login")
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", password)
    page.click("button.primary")
    page.wait_for_selector("#nav-logout:not([hidden])")


def test_order_history_shows_what_was_charged_and_refunded(page):
    with httpx.Client(base_url=API, timeout=30) as client:
        _seller, buyer, order_id, a, b = confirmed_sale(client)  # a: 2 x 1,000, b: 3 x 300
        assert client.post(f"/orders/{order_id}/items/{a}/cancel", headers=buyer.headers()).status_code == 200
        assert wait_for(lambda: order_status(client, buyer, order_id)["paymentStatus"] == "PARTIALLY_REFUNDED")
    _log_in(page, buyer.email, buyer.password)

    page.goto(f"{API}/#/orders")
    row = page.locator(f"tr[data-order='{order_id}']")
    row.wait_for()
    assert "₩2,900" in row.inner_text() and row.locator(".refunded").inner_text() == "₩2,000"
    assert "partially refunded" in row.inner_text()
    page.screenshot(path=str(SHOTS / "refunds-1-history.png"))

    page.goto(f"{API}/#/order/{order_id}")
    line_a = page.locator(f"tr[data-line='{a}']")
    line_a.wait_for()
    assert "refunded ₩2,000" in line_a.locator(".refund").inner_text() and "UTC" in line_a.inner_text()
    assert page.locator("#payment-status").inner_text() == "partially refunded"
    # Cancelling the other line in the page: its refund shows in flight, then done.
    page.click(f"button[data-cancel-line='{b}']")
    page.wait_for_function("document.querySelector('#order-status')?.textContent === 'CANCELLED'")
    try:
        page.wait_for_function("document.querySelector('#payment-status')?.textContent === 'refunded'",
                               timeout=60_000)
    finally:
        page.screenshot(path=str(SHOTS / "refunds-2-order.png"))
    assert "refunded ₩900" in page.locator(f"tr[data-line='{b}'] .refund").inner_text()
    assert "Charged ₩2,900 · refunded ₩2,900" in page.locator("#order-money").inner_text()
    page.screenshot(path=str(SHOTS / "refunds-2-order.png"))

    page.goto(f"{API}/#/orders")
    page.locator(f"tr[data-order='{order_id}'] .refunded").wait_for()
    assert page.locator(f"tr[data-order='{order_id}'] .refunded").inner_text() == "₩2,900"
    page.screenshot(path=str(SHOTS / "refunds-3-history.png"))


def test_a_delivered_line_is_asked_back_from_the_order_page(page):
    with httpx.Client(base_url=API, timeout=30) as client:
        seller, buyer, order_id, a, b = confirmed_sale(client)  # a: 2 x 1,000, b: 3 x 300
        for status in ("SHIPPED", "DELIVERED"):
            moved = client.patch(f"/seller/orders/{order_id}/items/{a}", json={"deliveryStatus": status},
                                 headers=seller.headers())
            assert moved.status_code == 200, moved.text
    _log_in(page, buyer.email, buyer.password)

    page.goto(f"{API}/#/order/{order_id}")
    page.locator(f"button[data-return-line='{a}']").wait_for()
    # b is still being prepared: it can be cancelled, not returned.
    assert page.locator(f"button[data-return-line='{b}']").count() == 0
    assert page.locator(f"button[data-cancel-line='{b}']").count() == 1
    page.click(f"button[data-return-line='{a}']")
    page.wait_for_function(f"document.querySelector(\"tr[data-line='{a}']\")?.textContent.includes('RETURN_REQUESTED')")
    assert page.locator(f"button[data-return-line='{a}']").count() == 0
    page.screenshot(path=str(SHOTS / "refunds-4-return-requested.png"))
    with httpx.Client(base_url=API, timeout=30) as client:
        doc = order_status(client, buyer, order_id)
    line = next(item for item in doc["items"] if item["productId"] == str(a))
    # Asked, not decided: nothing is refunded until the seller accepts the parcel.
    assert line["deliveryStatus"] == "RETURN_REQUESTED" and line["refundStatus"] is None
    assert doc["refundedAmount"] == 0 and doc["paymentStatus"] == "CHARGED"


def test_the_verification_link_lands_on_a_page_that_says_what_became_of_it(page):
    email = new_email()
    with httpx.Client(base_url=API, timeout=30) as client:
        assert client.post("/members", json={"email": email, "password": "password-123", "name": "Kim"}).status_code \
            == 202
        tokens = login(client, email, "password-123")
        assert client.post("/members/verify/resend", headers=bearer(tokens["accessToken"])).status_code == 202
    reset_local_ip_throttle()
    first, latest = verification_links(email, at_least=2)

    def outcome(link: str) -> str:
        page.goto("about:blank")  # a fresh load each time (the links differ only after the #)
        page.goto(link)
        page.wait_for_function("document.querySelector('#verify-result')?.dataset.outcome")
        return page.locator("#verify-result").get_attribute("data-outcome") or ""

    assert outcome(first) == "VERIFICATION_LINK_REPLACED"
    assert "replaced by a newer one" in page.locator("#verify-result").inner_text()
    assert outcome(latest) == "VERIFIED"
    page.screenshot(path=str(SHOTS / "verify-verified.png"))
    assert outcome(latest) == "VERIFICATION_LINK_USED"
