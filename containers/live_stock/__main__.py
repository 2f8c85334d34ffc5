"""`python -m live_stock`: serve the live-stock streams on $HOST:$PORT (container default 0.0.0.0:8080)."""

import os

import uvicorn

if __name__ == "__main__":
    uvicorn.run("live_stock.app:app", host=os.environ.get("HOST", "0.0.0.0"),  # noqa: S104 - container port
                port=int(os.environ.get("PORT", "8080")), log_level="warning", access_log=False,
                timeout_graceful_shutdown=5, backlog=4096)
