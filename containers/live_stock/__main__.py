"""`python -m live_stock`: serve the live-stock streams on $HOST:$PORT (container default 0.0.0.0:8080)."""

import asyncio
import os

from live_stock.server import serve

if __name__ == "__main__":
    try:
        import uvloop  # a faster event loop where available (it ships with uvicorn[standard])

        uvloop.install()
    except ImportError:
        pass
    asyncio.run(serve(os.environ.get("HOST", "0.0.0.0"), int(os.environ.get("PORT", "8080"))))  # noqa: S104
