"""The local API Gateway's HTTP server: uvicorn, with the header names the client sent.

`python -m goodsdrop_local.api_server --port P --workers N` serves goodsdrop_local.gateway (one
warm Gateway per worker process). ASGI servers lowercase header names; API Gateway REST hands
them to functions as the client wrote them, so the protocol below also records each raw name in
the ASGI scope's `extensions` (same order as `scope["headers"]`), and `request_headers` pairs
them up again. X-Forwarded-For from the client never replaces the connection's address (proxy
headers off): API Gateway's sourceIp is the caller's address.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

RAW_HEADER_NAMES = "goodsdrop.raw_header_names"


class HeaderCaseProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol that also keeps each header name as received."""

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._raw_names: list[bytes] = []
        # The runtime's own extension: the header names as the client sent them (a list, not a dict).
        self.scope["extensions"] = {RAW_HEADER_NAMES: self._raw_names}  # type: ignore[dict-item]

    def on_header(self, name: bytes, value: bytes) -> None:
        super().on_header(name, value)
        self._raw_names.append(bytes(name))


def request_headers(scope: dict[str, Any]) -> list[tuple[str, str]]:
    """The request's headers as (name, value) pairs, names in the client's case when the server kept it."""
    raw_names = (scope.get("extensions") or {}).get(RAW_HEADER_NAMES)
    headers = scope["headers"]
    if raw_names is None or len(raw_names) != len(headers):
        raw_names = [name for name, _ in headers]  # another server: the lowercased names are all there is
    return [(name.decode("latin-1"), value.decode("latin-1")) for name, (_, value) in zip(raw_names, headers,
                                                                                          strict=True)]


def main(argv: list[str]) -> None:
    """Serve the template's API on 127.0.0.1 with `--workers` processes (each imports every function)."""
    parser = argparse.ArgumentParser(prog="python -m goodsdrop_local.api_server", description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workers", type=int, default=int(os.environ.get("GOODSDROP_API_WORKERS", "2")))
    args = parser.parse_args(argv)
    uvicorn.run("goodsdrop_local.gateway:create_app", factory=True, host="127.0.0.1", port=args.port,
                workers=args.workers, http="goodsdrop_local.api_server:HeaderCaseProtocol", proxy_headers=False,
                access_log=False, log_level="warning", backlog=4096, timeout_keep_alive=30)


if __name__ == "__main__":
    main(sys.argv[1:])
