"""Paging of list documents: the bounds of `page`/`size`, the list queries' integer parameters and
the contract's list document.

`goodsdrop.http.page_params(app)` reads `page` and `size` from a request within these bounds;
the domain builds its answer with `page_body`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

MAX_PAGE_SIZE = 100
DEFAULT_PAGE_SIZE = 20
MAX_PAGE = 1_000_000


def page_body(items: list[Any], page: int, size: int, total: int) -> dict[str, Any]:
    """The contract's list document."""
    return {"items": items, "page": page, "size": size, "total": total}


def int_param(params: Mapping[str, str | None], name: str, low: int, high: int, errors: dict[str, str]) -> int | None:
    """A list query's integer parameter within [low, high]; None when absent or bad (bad: named in `errors`)."""
    raw = params.get(name)
    if raw is None or raw == "":
        return None
    if not raw.isascii() or not raw.isdigit() or len(raw) > 19 or not low <= int(raw) <= high:
        errors[name] = f"must be an integer between {low} and {high}"
        return None
    return int(raw)
