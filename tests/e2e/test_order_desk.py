"""The seller's order desk in Debian's headless Chromium: find the lines to ship, ship and deliver them,
accept a return (the refund and restock follow once), filter by status. Screenshots go to .stack/screenshots/
(docs/storefront-order-desk.png is one of them)."""

from __future__ import annotations

import httpx

from goodsdrop import payment_gateway
from goodsdrop.clients import mysql_transaction
from tests.support.accounts import new_account
from tests.support.browser import SHOTS
from tests.support.orders import API, make_product, mysql_stock, place, wait_final, wait_for

BUYERS = (("Kim Minji", "12 Yulgok-ro, Jongno-gu, Seoul"), ("Lee Jiho", "3 Haeundae-ro, Busan"),
          ("Park Seoyeon", "88 Dongseong-ro, Daegu"))


def line_row(page, order_id: str, product_id: int):
    return page.locator(f"tr[data-line='{order_id}:{product_id}']")


def wait_status(page, order_id: str, product_id: int, label: str) -> None:
    """Until the line's status badge reads `label` (the desk re-renders after each action)."""
    page.wait_for_function(f"document.querySelector(\"tr[data-line='{order_id}:{product_id}'] .badge\")"
                           f"?.textContent === '{label}'")


def test_a_seller_ships_delivers_and_accepts_a_return_at_the_order_desk(page):
    seller = new_account(seller=True)
    figure = make_product(seller, 20, price=39000)
    poster = make_product(seller, 50, price=12000)
    with mysql_transaction() as cur:
        cur.execute("UPDATE products SET name = 'Moonlight Figure' WHERE id = %s", (figure,))
        cur.execute("UPDATE products SET name = 'Drop Poster A2' WHERE id = %s", (poster,))
    orders = []
    with httpx.Client(timeout=30) as client:
        for (name, address), items in zip(BUYERS, ([(figure, 1), (poster, 2)], [(figure, 2)], [(poster, 1)]),
                                          strict=True):
            buyer = new_account()
            with mysql_transaction() as cur:
                cur.execute("UPDATE members SET name = %s, address = %s WHERE id = %s",
                            (name, address, buyer.member_id))
            order_id = place(client, buyer, items).json()["orderId"]
            assert wait_final(client, buyer, order_id)["status"] == "CONFIRMED"
            orders.append((buyer, order_id))
        # The first buyer's figure arrived and they asked to return it.
        first_buyer, first = orders[0]
        for status in ("SHIPPED", "DELIVERED"):
            assert client.patch(f"{API}/seller/orders/{first}/items/{figure}", json={"deliveryStatus": status},
                                headers=seller.headers()).status_code == 200
        assert client.post(f"{API}/orders/{first}/items/{figure}/return",
                           headers=first_buyer.headers()).status_code == 200

    page.goto(f"{API}/#/login")
    page.fill("input[name=email]", seller.email)
    page.fill("input[name=password]", seller.password)
    page.click("button.primary")
    page.wait_for_selector("#nav-logout:not([hidden])")
    page.click("#nav-desk")
    page.wait_for_selector("#desk-lines")
    assert page.locator("#desk-lines tr[data-line]").count() == 4  # the seller's four lines, newest order first
    _, second = orders[1]
    _, third = orders[2]
    assert page.locator("#desk-lines tr[data-line]").first.get_attribute("data-line") == f"{third}:{poster}"

    # Ship the second order's figures, then deliver them.
    line_row(page, second, figure).get_by_role("button", name="Mark shipped").click()
    wait_status(page, second, figure, "shipped")
    assert page.locator("#message").inner_text() == "Marked as shipped."
    page.screenshot(path=str(SHOTS / "desk-1-lines.png"))
    line_row(page, second, figure).get_by_role("button", name="Mark delivered").click()
    wait_status(page, second, figure, "delivered")

    # The return request: accept it once the goods are back; the refund and restock follow.
    returned = line_row(page, first, figure)
    assert returned.locator(".badge").inner_text() == "return requested"
    assert mysql_stock(figure) == 17 and payment_gateway.books(first)["refunded"] == 0
    returned.get_by_role("button", name="Accept return").click()
    wait_status(page, first, figure, "returned")
    assert "refunded" in page.locator("#message").inner_text()
    assert line_row(page, first, figure).locator("button").count() == 0  # decided: nothing more to do
    assert wait_for(lambda: payment_gateway.books(first)["refunded"] == 39000 and mysql_stock(figure) == 18)

    # Filter: only the lines still to ship.
    page.select_option("select[name=status]", "PREPARING")
    page.click("#desk-filters button")
    page.wait_for_function("document.querySelectorAll('#desk-lines tr[data-line]').length === 2")
    assert {page.locator("#desk-lines tr[data-line]").nth(i).get_attribute("data-line") for i in range(2)} == {
        f"{first}:{poster}", f"{third}:{poster}"}
    page.screenshot(path=str(SHOTS / "desk-2-to-ship.png"))


def test_a_member_who_is_not_a_seller_is_told_so(page):
    member = new_account()
    page.goto(f"{API}/#/login")
    page.fill("input[name=email]", member.email)
    page.fill("input[name=password]", member.password)
    page.click("button.primary")
    page.wait_for_selector("#nav-logout:not([hidden])")
    page.goto(f"{API}/#/desk")
    page.wait_for_function("document.querySelector('#view')?.textContent.includes('Only sellers have an order desk.')")
