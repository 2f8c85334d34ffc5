"""The SSE fan-out keeps only the latest value per subscriber: slow clients never build a backlog."""

import asyncio

from live_stock.hub import Hub


def change(product, stock, version):
    return {"productId": product, "stock": stock, "status": "on_sale", "version": version}


def test_latest_value_wins_for_a_slow_subscriber():
    async def scenario():
        hub = Hub()
        slow = hub.subscribe("7")
        for version in range(1, 101):
            hub.publish(change("7", 100 - version, version))
        assert slow.wake.is_set()
        assert slow.take()["version"] == 100  # one value, the newest, not a backlog of 100
        assert slow.take() is None and not slow.wake.is_set()

    asyncio.run(scenario())


def test_changes_reach_only_the_products_subscribers():
    async def scenario():
        hub = Hub()
        a, b = hub.subscribe("1"), hub.subscribe("2")
        hub.publish(change("1", 5, 2))
        assert a.take()["stock"] == 5 and b.take() is None
        hub.unsubscribe(a)
        hub.unsubscribe(b)
        assert hub.count() == 0
        assert hub.last["1"]["version"] == 2

    asyncio.run(scenario())
